//! Typed manifests: the fields Ferry's users write, checked for type,
//! enumeration and range the way Control Plane's API checks them.
//!
//! Pure and source-free: rules run on a JSON value, so the same
//! [`check`] serves written manifests (`ferry validate`), rendered bodies
//! (after overrides) and the simulator's request bodies. A [`Violation`]
//! names the field with a JSON pointer; callers that have a YAML tree turn
//! it into a file/line/column with [`crate::manifest::Resource::location_at`].
//! Unknown fields are never an error (Control Plane adds fields and Ferry
//! keeps every one): a warning names one only when a known field of that
//! object has a close name. docs/validation.md says where each rule comes from.

mod cron;
mod gvc;
mod org;
mod quantity;
mod secret;
mod workload;

use std::fmt;

use serde_json::{Map, Value};

pub use crate::diagnostic::Severity;
use crate::diagnostic::{Location, Problem, edit_distance};
use crate::manifest::Kind;
pub use secret::TYPES as SECRET_TYPES;

/// One field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the field (RFC 6901), such as
    /// `/spec/containers/0/ports/1/number`; for a missing field, where it
    /// should be.
    pub path: String,
    pub message: String,
    pub help: String,
    pub severity: Severity,
    /// True when the problem is the key at `path` (an unknown field), not
    /// its value.
    pub on_key: bool,
}

impl Violation {
    /// The field as users read it: `spec.containers[0].ports[1].number`.
    pub fn field(&self) -> String {
        field_name(&self.path)
    }
}

/// A violation as a [`Problem`] about `subject` (such as `workload/api`),
/// at `location` when the caller knows where the field is written.
pub fn problem(violation: &Violation, subject: &str, location: Option<Location>) -> Problem {
    let code = match (violation.severity, violation.on_key) {
        (_, true) => "ferry::validate::unknown-field",
        (Severity::Error, false) => "ferry::validate::invalid-field",
        (Severity::Warning, false) => "ferry::validate::questionable-field",
    };
    let problem = Problem::new(code, format!("{subject}: {}", violation.message))
        .at_opt(location, violation.field())
        .help(violation.help.clone());
    match violation.severity {
        Severity::Error => problem,
        Severity::Warning => problem.warning(),
    }
}

/// Every violation of Control Plane's field rules in the body of a `kind`
/// resource, errors and warnings, in document order. Kinds without rules
/// here (agent, auditctx, group, ipset, serviceaccount) have none.
pub fn check(kind: Kind, body: &Value) -> Vec<Violation> {
    let mut checker = Checker::default();
    let root = Ptr::root();
    match kind {
        Kind::Workload => workload::check(&mut checker, &root, body),
        Kind::Gvc => gvc::check(&mut checker, &root, body),
        Kind::Secret => secret::check(&mut checker, &root, body),
        Kind::Identity => org::identity(&mut checker, &root, body),
        Kind::Policy => org::policy(&mut checker, &root, body),
        Kind::VolumeSet => org::volume_set(&mut checker, &root, body),
        Kind::Domain => org::domain(&mut checker, &root, body),
        Kind::CloudAccount => org::cloud_account(&mut checker, &root, body),
        Kind::Agent | Kind::AuditCtx | Kind::Group | Kind::IpSet | Kind::ServiceAccount => {}
    }
    checker.violations
}

/// Fields every resource may carry: what users write and what the API adds
/// (a `-o yaml` export keeps them; `yaml-slim` drops most of the server's
/// but keeps `gvc` and a workload's `health` summary).
const COMMON_FIELDS: [&str; 14] = [
    "kind",
    "name",
    "description",
    "tags",
    "id",
    "version",
    "created",
    "lastModified",
    "links",
    "status",
    "alias",
    "origin",
    "gvc",
    "health",
];

/// The known top-level fields of a kind: the common ones and `extra`.
fn top_level<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    COMMON_FIELDS.iter().copied().chain(extra.iter().copied()).collect()
}

/// A JSON pointer being built while walking a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ptr(String);

impl Ptr {
    pub fn root() -> Self {
        Ptr(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        Ptr(format!("{}/{}", self.0, key.replace('~', "~0").replace('/', "~1")))
    }

    pub fn index(&self, index: usize) -> Self {
        Ptr(format!("{}/{index}", self.0))
    }
}

impl fmt::Display for Ptr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&field_name(&self.0))
    }
}

/// `/spec/containers/0/name` → `spec.containers[0].name`.
pub(crate) fn field_name(pointer: &str) -> String {
    let mut name = String::new();
    for step in pointer.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        if step.chars().all(|c| c.is_ascii_digit()) && !step.is_empty() {
            name.push_str(&format!("[{step}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(&step);
        }
    }
    if name.is_empty() { "the document".to_owned() } else { name }
}

/// "a string", "a list", …: what a value is, for "expected X, found Y".
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Collects violations while rules walk a body.
#[derive(Default)]
pub(crate) struct Checker {
    violations: Vec<Violation>,
    /// Set while checking secret payloads: messages then say what type a
    /// value has, never what it is.
    hide_values: bool,
}

impl Checker {
    pub fn error(&mut self, at: &Ptr, message: impl Into<String>, help: impl Into<String>) {
        self.push(at, message, help, Severity::Error, false);
    }

    pub fn warn(&mut self, at: &Ptr, message: impl Into<String>, help: impl Into<String>) {
        self.push(at, message, help, Severity::Warning, false);
    }

    fn push(
        &mut self,
        at: &Ptr,
        message: impl Into<String>,
        help: impl Into<String>,
        severity: Severity,
        on_key: bool,
    ) {
        self.violations.push(Violation {
            path: at.0.clone(),
            message: message.into(),
            help: help.into(),
            severity,
            on_key,
        });
    }

    /// `value` must be a mapping. Its keys are compared with `known`: an
    /// unknown key close to a known one (edit distance ≤ 2, or the same but
    /// for case) is a warning; other unknown keys are kept silently.
    pub fn mapping<'v>(
        &mut self,
        at: &Ptr,
        value: &'v Value,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.wrong_type(at, value, "a mapping", "write `key: value` lines indented under it");
            return None;
        };
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            if let Some(close) = close_name(key, known) {
                self.push(
                    &at.key(key),
                    format!("unknown field `{key}` in {at}"),
                    format!(
                        "did you mean `{close}`? Ferry keeps unknown fields as written, but Control Plane will not read this one as `{close}`"
                    ),
                    Severity::Warning,
                    true,
                );
            }
        }
        Some(map)
    }

    /// "expected X, found Y" at `at`.
    pub fn wrong_type(&mut self, at: &Ptr, value: &Value, expected: &str, help: &str) {
        let found = match value {
            _ if self.hide_values => type_name(value).to_owned(),
            Value::String(s) => format!("the string `{s}`"),
            Value::Number(n) => format!("the number {n}"),
            Value::Bool(b) => format!("`{b}`"),
            other => type_name(other).to_owned(),
        };
        self.error(at, format!("{at} must be {expected}, found {found}"), help);
    }

    /// A required field: its value, or an error at the mapping.
    pub fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        at: &Ptr,
        key: &str,
        help: &str,
    ) -> Option<&'v Value> {
        match map.get(key) {
            Some(value) if !value.is_null() => Some(value),
            _ => {
                self.error(&at.key(key), format!("{} is required", at.key(key)), help);
                None
            }
        }
    }

    pub fn string<'v>(&mut self, at: &Ptr, value: &'v Value) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            Value::Number(_) | Value::Bool(_) => {
                self.wrong_type(
                    at,
                    value,
                    "a string",
                    "quote the value: YAML reads it as another type",
                );
                None
            }
            _ => {
                self.wrong_type(at, value, "a string", "write a single text value");
                None
            }
        }
    }

    /// A string that must be one of `allowed`.
    pub fn one_of(&mut self, at: &Ptr, value: &Value, allowed: &[&str]) -> Option<String> {
        let text = self.string(at, value)?;
        if allowed.contains(&text) {
            return Some(text.to_owned());
        }
        let suggestion =
            close_name(text, allowed).map_or(String::new(), |s| format!("did you mean `{s}`? "));
        self.error(
            at,
            format!("{at} is `{text}`, which is not one of: {}", allowed.join(", ")),
            format!("{suggestion}use one of: {}", allowed.join(", ")),
        );
        None
    }

    pub fn boolean(&mut self, at: &Ptr, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(at, value, "true or false", "write `true` or `false`, unquoted");
                None
            }
        }
    }

    /// A number within `min..=max`.
    pub fn number(&mut self, at: &Ptr, value: &Value, min: f64, max: f64) -> Option<f64> {
        let Some(n) = value.as_f64() else {
            let help = if value.is_string() {
                "write the number without quotes"
            } else {
                "write a number"
            };
            self.wrong_type(at, value, "a number", help);
            return None;
        };
        if n < min || n > max {
            self.error(
                at,
                format!("{at} is {n}, out of range {}", range_text(min, max)),
                range_help(min, max),
            );
            return None;
        }
        Some(n)
    }

    /// A whole number within `min..=max`.
    pub fn integer(&mut self, at: &Ptr, value: &Value, min: i64, max: i64) -> Option<i64> {
        #[allow(clippy::cast_precision_loss)]
        let n = self.number(at, value, min as f64, max as f64)?;
        if n.fract() != 0.0 {
            self.error(
                at,
                format!("{at} is {n}, but it must be a whole number"),
                range_help(min as f64, max as f64),
            );
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Some(n as i64)
    }

    pub fn list<'v>(&mut self, at: &Ptr, value: &'v Value, help: &str) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            _ => {
                self.wrong_type(at, value, "a list", help);
                None
            }
        }
    }

    /// A list of strings.
    pub fn strings<'v>(&mut self, at: &Ptr, value: &'v Value) -> Vec<(Ptr, &'v str)> {
        let items = self.list(at, value, "write one `- item` line per value").unwrap_or_default();
        let mut found = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let at = at.index(index);
            if let Some(text) = self.string(&at, item) {
                found.push((at, text));
            }
        }
        found
    }

    /// The list at `key` of `map`, if it is one, holds at most `max` items;
    /// the error points at the first item past the limit.
    pub fn at_most(
        &mut self,
        map: &Map<String, Value>,
        at: &Ptr,
        key: &str,
        max: usize,
        help: &str,
    ) {
        if let Some(items) = map.get(key).and_then(Value::as_array)
            && items.len() > max
        {
            let at = at.key(key);
            self.error(
                &at.index(max),
                format!("{at} has {} items, at most {max} allowed", items.len()),
                help,
            );
        }
    }

    /// Runs `rule` on the field `key` of `map` when it is present (and not
    /// null: the API treats an explicit null as absent).
    pub fn field<'v, T>(
        &mut self,
        map: &'v Map<String, Value>,
        at: &Ptr,
        key: &str,
        rule: impl FnOnce(&mut Self, &Ptr, &'v Value) -> T,
    ) -> Option<T> {
        match map.get(key) {
            Some(value) if !value.is_null() => Some(rule(self, &at.key(key), value)),
            _ => None,
        }
    }

    /// Each item of the list at `key`, if present.
    pub fn each<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        at: &Ptr,
        key: &str,
        help: &str,
        mut rule: impl FnMut(&mut Self, &Ptr, &'v Value),
    ) {
        let Some(value) = map.get(key).filter(|v| !v.is_null()) else { return };
        let at = at.key(key);
        let Some(items) = self.list(&at, value, help) else { return };
        for (index, item) in items.iter().enumerate() {
            rule(self, &at.index(index), item);
        }
    }
}

/// Bounds past this are "no bound" (`i64::MAX` as a float, `f64::MAX`).
const UNBOUNDED: f64 = 9.0e15;

fn range_text(min: f64, max: f64) -> String {
    if max >= UNBOUNDED { format!("(at least {min})") } else { format!("{min}–{max}") }
}

fn range_help(min: f64, max: f64) -> String {
    if min <= -UNBOUNDED && max >= UNBOUNDED {
        "use a whole number".to_owned()
    } else if max >= UNBOUNDED {
        format!("use a value of at least {min}")
    } else {
        format!("use a value from {min} to {max}")
    }
}

/// A known name close to `word`: the same but for case, or at most two
/// edits away.
fn close_name<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(&word.to_ascii_lowercase(), &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2 && *k != word && k.len() > 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A Control Plane link's last two segments, if `text` is a link to `kind`
/// in one of its forms: `//kind/NAME`, `/org/ORG/kind/NAME`, or
/// `//gvc/G/kind/NAME` / `/org/O/gvc/G/kind/NAME` for GVC-scoped kinds.
fn link_name<'a>(text: &'a str, kind: &str) -> Option<&'a str> {
    let rest = text
        .strip_prefix("//")
        .or_else(|| text.strip_prefix("/org/").and_then(|r| r.split_once('/').map(|(_, r)| r)))?;
    let rest = match rest.strip_prefix("gvc/") {
        Some(inner) if kind != "gvc" => inner.split_once('/').map(|(_, r)| r)?,
        _ => rest,
    };
    let name = rest.strip_prefix(kind)?.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// A string that must be a link to a `kind` resource.
fn link(checker: &mut Checker, at: &Ptr, value: &Value, kind: &str) {
    let Some(text) = checker.string(at, value) else { return };
    if link_name(text, kind).is_none() {
        checker.error(
            at,
            format!("{at} is `{text}`, which is not a link to a {kind}"),
            format!("write `//{kind}/NAME` or `/org/ORG/{kind}/NAME`"),
        );
    }
}

/// A location: `//location/NAME` or `/org/ORG/location/NAME` (or, where
/// `bare` allows it, `NAME` alone), NAME in Control Plane's form
/// (`aws-us-east-2`, `gcp-us-west1`, `azure-eastus2`, or a custom
/// location's name).
fn location(c: &mut Checker, at: &Ptr, text: &str, bare: bool) {
    let valid_name = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let name = link_name(text, "location").or(Some(text).filter(|_| bare));
    if name.is_none() && valid_name(text) {
        // A bare name where the API's examples write a link: no source
        // says the API refuses one, so a warning.
        c.warn(
            at,
            format!("{at} is `{text}`, a location name where a link is expected"),
            format!("write `//location/{text}`"),
        );
    } else if !name.is_some_and(valid_name) {
        let help = if text.starts_with("//") || text.starts_with('/') || bare {
            "write `//location/NAME` or `/org/ORG/location/NAME`, NAME such as `aws-us-east-2`"
                .to_owned()
        } else {
            format!("write `//location/{text}`")
        };
        c.error(at, format!("{at} is `{text}`, not a location link"), help);
    }
}

/// `env` as Control Plane has it: a list of `{name, value}`.
fn env(checker: &mut Checker, at: &Ptr, value: &Value) {
    const HELP: &str = "write env as a list: `- name: LOG_LEVEL` with `value: debug` under it";
    if value.is_object() {
        checker.error(
            at,
            format!("{at} must be a list of `name`/`value` items, found a mapping"),
            HELP,
        );
        return;
    }
    let Some(items) = checker.list(at, value, HELP) else { return };
    for (index, item) in items.iter().enumerate() {
        let at = at.index(index);
        let Some(var) = checker.mapping(&at, item, &["name", "value"]) else { continue };
        if let Some(name) = checker.required(var, &at, "name", "every variable needs a `name`") {
            checker.string(&at.key("name"), name);
        }
        checker.field(var, &at, "value", |c, at, v| {
            if !v.is_string() {
                c.wrong_type(at, v, "a string", "quote the value: environment variables are text");
            }
        });
    }
}

/// A port number: 1–65535, and none of the ports the platform keeps for
/// itself.
fn port(checker: &mut Checker, at: &Ptr, value: &Value) -> Option<i64> {
    const RESERVED: [i64; 11] =
        [8012, 8022, 9090, 9091, 15000, 15001, 15006, 15020, 15021, 15090, 41000];
    let number = checker.integer(at, value, 1, 65_535)?;
    if RESERVED.contains(&number) {
        checker.error(
            at,
            format!("{at} is {number}, a port Control Plane reserves for its sidecars"),
            "reserved ports: 8012, 8022, 9090, 9091, 15000, 15001, 15006, 15020, 15021, 15090, 41000",
        );
        return None;
    }
    Some(number)
}

#[cfg(test)]
mod tests;
