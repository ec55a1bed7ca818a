//! Field-level differences between what an environment should run and
//! what it runs. Pure.
//!
//! Both sides are normalized first ([`crate::normalize`]), platform tags
//! are ignored, and secret payloads are compared in memory: callers
//! replace `data` with [`hidden_data`] on both sides, a mark keyed with a
//! key that lives only in this process, so no payload ever reaches a
//! [`Change`] and nothing that is saved or printed can be checked against
//! a guessed payload ([`unmarked`] takes the marks away before anything is
//! serialized).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::applied::{Fields, item_name, named};
use crate::manifest::Kind;

/// What happens to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// Delete, then create: a field that cannot change in place changed.
    Replace,
    Unchanged,
    Delete,
    /// The resource exists but Ferry did not create it (it lacks the
    /// managed tag): written with the tag, and with its field changes if
    /// any, so that Ferry manages it from then on.
    Adopt,
}

impl Action {
    /// The Terraform-like symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Unchanged => " ",
            Action::Delete => "-",
            Action::Adopt => "=>",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Remove,
    Change,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Remove => "-",
            Op::Change => "~",
        }
    }
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Such as `spec.containers[main].image`.
    pub path: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The value is secret: `before`/`after` say "(value hidden)".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// This field cannot change in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// Shown instead of any secret value.
pub const HIDDEN: &str = "(value hidden)";

/// Tags the platform and other tools set; never drift (reference §3.2, §7.2).
const PLATFORM_TAG_PREFIXES: &[&str] = &[
    "cpln/deployTimestamp",
    "cpln/aws",
    "cpln/azure",
    "cpln/docker",
    "cpln/gcp",
    "cpln/tls",
    "cpln/city",
    "cpln/continent",
    "cpln/country",
    "cpln/state",
    "cpln/release",
    "cpln/managedByTerraform",
    "cpln/terraformProviderVersion",
    "cpln/marketplace",
    "syncer.cpln.io/",
    "firebase/",
    // Ferry's own bookkeeping: the release that last changed a workload.
    "ferry/release",
];

/// Fields that cannot change in place (reference §3.4, §3.8).
fn forces_replacement(kind: Kind, path: &str) -> bool {
    match kind {
        Kind::Workload => path == "spec.type",
        Kind::VolumeSet => path == "spec.fileSystemType" || path == "spec.performanceClass",
        _ => false,
    }
}

/// The mark that stands for a secret's `data` while a run compares it:
/// HMAC-SHA256 of its canonical JSON under [`run_key`], so that within
/// one run two payloads compare equal exactly when they are equal. The key
/// is random, held in memory and never written, so a mark that escaped
/// could not be checked against guessed payloads (an unsalted hash of a
/// weak password is reversed with a dictionary); and marks are never
/// meant to escape: everything serialized goes through [`unmarked`].
pub fn hidden_data(data: &Value) -> Value {
    Value::String(format!("{HIDDEN} #{}", hex::encode(hmac(run_key(), canonical(data).as_bytes()))))
}

/// `value` with every secret mark ([`hidden_data`]) reduced to
/// [`HIDDEN`]: the form in which a body is hashed, fingerprinted, saved or
/// shown, so that nothing derived from a payload leaves the run.
pub fn unmarked(value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with(HIDDEN) => Value::String(HIDDEN.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(unmarked).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), unmarked(v))).collect())
        }
        other => other.clone(),
    }
}

/// This run's key for secret marks: 32 random bytes from the operating
/// system, made once, kept only in memory.
fn run_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: std's hasher keys are seeded from it too
            // (or from the address space layout and time at worst).
            use std::hash::{BuildHasher, RandomState};
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let word = RandomState::new().hash_one((i, std::time::SystemTime::now()));
                chunk.copy_from_slice(&word.to_le_bytes());
            }
        }
        key
    })
}

/// HMAC-SHA256 (RFC 2104) of `message` under a 32-byte `key`.
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let pad = |byte: u8| {
        let mut block = [byte; 64];
        block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        block
    };
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// sha256 of a value's canonical JSON (keys sorted).
pub fn hash(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical(value).as_bytes()))
}

/// JSON with object keys sorted, so equal values hash equally.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&map[*k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// Drops platform tags (and an empty `tags`) so that they never show as changes.
pub fn without_platform_tags(body: &mut Value) {
    if let Some(Value::Object(tags)) = body.get_mut("tags") {
        tags.retain(|key, _| !PLATFORM_TAG_PREFIXES.iter().any(|p| key.starts_with(p)));
    }
}

/// What a comparison found.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    pub action: Action,
    pub changes: Vec<Change>,
    /// A PATCH that removes exactly the fields and named items git removed
    /// (`null`, `$drop/F` inside `$patch/F`, as the CLI's `--unset` writes
    /// them), leaving every other field as it is; `None` when none was.
    pub removals: Option<Value>,
}

/// The action and field changes that take `live` to `desired`, three-way:
/// `last` is what Ferry last wrote to the resource ([`Fields`]; `None`
/// when it recorded nothing). A field `live` has and `desired` lacks is a
/// change only when Ferry last wrote it (git removed it); one it never
/// wrote belongs to the server (a default Ferry's model lacks) and is
/// never a change. At every level: object keys, and items of lists merged
/// by name. Fields `desired` sets are compared as they are.
pub fn compare(
    kind: Kind,
    desired: Option<&Value>,
    live: Option<&Value>,
    last: Option<&Fields>,
) -> Compared {
    let unchanged = |action| Compared { action, changes: Vec::new(), removals: None };
    match (desired, live) {
        (Some(_), None) => unchanged(Action::Create),
        (None, Some(_)) => unchanged(Action::Delete),
        (None, None) => unchanged(Action::Unchanged),
        (Some(desired), Some(live)) => {
            let mut found = Found::default();
            walk(kind, &mut Vec::new(), Some(desired), Some(live), last, &mut found);
            let action = if found.changes.is_empty() {
                Action::Unchanged
            } else if found.changes.iter().any(|c| c.forces_replacement) {
                Action::Replace
            } else {
                Action::Update
            };
            Compared { action, changes: found.changes, removals: removal_patch(&found.removed) }
        }
    }
}

/// `live` as the comparison sees it: without the fields that belong to the
/// server (neither in `desired` nor written by Ferry, `last`), so that a
/// diff of it against `desired` shows the changes and only them.
pub fn owned(desired: &Value, live: &Value, last: Option<&Fields>) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            l.iter()
                .filter_map(|(key, value)| {
                    let last = last.and_then(|f| f.child(key));
                    match d.get(key) {
                        Some(wanted) => Some((key.clone(), owned(wanted, value, last))),
                        None => last.map(|_| (key.clone(), value.clone())),
                    }
                })
                .collect(),
        ),
        (Value::Array(d), Value::Array(l)) if named(d) && named(l) => Value::Array(
            l.iter()
                .filter_map(|item| {
                    let name = item_name(item);
                    let last = last.and_then(|f| f.child(name));
                    match d.iter().find(|i| item_name(i) == name) {
                        Some(wanted) => Some(owned(wanted, item, last)),
                        None => last.map(|_| item.clone()),
                    }
                })
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// One step of a path into a body.
#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    /// An object's key.
    Key(&'a str),
    /// The item of a named list (the key before it) with this name.
    Item(&'a str),
}

#[derive(Default)]
struct Found<'a> {
    changes: Vec<Change>,
    /// Paths of what git removed.
    removed: Vec<Vec<Step<'a>>>,
}

fn walk<'a>(
    kind: Kind,
    path: &mut Vec<Step<'a>>,
    desired: Option<&'a Value>,
    live: Option<&'a Value>,
    last: Option<&Fields>,
    out: &mut Found<'a>,
) {
    match (desired, live) {
        (Some(Value::Object(d)), Some(Value::Object(l))) => {
            for key in union(d, l) {
                let last = last.and_then(|f| f.child(key));
                if !d.contains_key(key) && last.is_none() {
                    continue; // the server's
                }
                path.push(Step::Key(key));
                walk(kind, path, d.get(key), l.get(key), last, out);
                path.pop();
            }
        }
        (Some(Value::Array(d)), Some(Value::Array(l))) if named(d) && named(l) => {
            for item in d {
                let name = item_name(item);
                let before = l.iter().find(|i| item_name(i) == name);
                path.push(Step::Item(name));
                walk(kind, path, Some(item), before, last.and_then(|f| f.child(name)), out);
                path.pop();
            }
            for item in l.iter().filter(|i| !d.iter().any(|j| item_name(j) == item_name(i))) {
                let name = item_name(item);
                let Some(last) = last.and_then(|f| f.child(name)) else { continue };
                path.push(Step::Item(name));
                walk(kind, path, None, Some(item), Some(last), out);
                path.pop();
            }
        }
        (Some(d), Some(l)) if d == l => {}
        (None, None) => {}
        (d, l) => {
            let op = match (d, l) {
                (Some(_), None) => Op::Add,
                (None, Some(_)) => Op::Remove,
                _ => Op::Change,
            };
            let sensitive =
                [d, l].iter().flatten().any(|v| v.as_str().is_some_and(|s| s.starts_with(HIDDEN)));
            let shown = |v: Option<&Value>| {
                v.map(|v| if sensitive { Value::String(HIDDEN.to_owned()) } else { v.clone() })
            };
            let text = path_text(path);
            if op == Op::Remove {
                out.removed.push(path.clone());
            }
            out.changes.push(Change {
                forces_replacement: forces_replacement(kind, &text),
                path: text,
                op,
                before: shown(l),
                after: shown(d),
                sensitive,
            });
        }
    }
}

/// Such as `spec.containers[main].image`.
fn path_text(path: &[Step<'_>]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Item(name) => {
                text.push('[');
                text.push_str(name);
                text.push(']');
            }
        }
    }
    text
}

/// The PATCH that removes `removed` and nothing else.
fn removal_patch(removed: &[Vec<Step<'_>>]) -> Option<Value> {
    if removed.is_empty() {
        return None;
    }
    let mut patch = Map::new();
    for path in removed {
        remove_at(&mut patch, path);
    }
    Some(Value::Object(patch))
}

fn remove_at(patch: &mut Map<String, Value>, path: &[Step<'_>]) {
    match path {
        [Step::Key(key)] => {
            patch.insert((*key).to_owned(), Value::Null);
        }
        [Step::Key(key), Step::Item(name)] => {
            if let Some(names) = list(patch, format!("$drop/{key}")) {
                names.push(Value::String((*name).to_owned()));
            }
        }
        [Step::Key(key), Step::Item(name), rest @ ..] => {
            let Some(items) = list(patch, format!("$patch/{key}")) else { return };
            let found = items.iter().position(|i| item_name(i) == *name);
            let index = found.unwrap_or_else(|| {
                items.push(json!({"name": name}));
                items.len() - 1
            });
            if let Some(Value::Object(item)) = items.get_mut(index) {
                remove_at(item, rest);
            }
        }
        [Step::Key(key), rest @ ..] => {
            let inner = patch.entry((*key).to_owned()).or_insert_with(|| json!({}));
            if let Value::Object(inner) = inner {
                remove_at(inner, rest);
            }
        }
        _ => {}
    }
}

/// The list at `key` of a patch, created empty.
fn list(patch: &mut Map<String, Value>, key: String) -> Option<&mut Vec<Value>> {
    patch.entry(key).or_insert_with(|| Value::Array(Vec::new())).as_array_mut()
}

/// Keys of both maps: the desired order, then keys only live has.
fn union<'a>(desired: &'a Map<String, Value>, live: &'a Map<String, Value>) -> Vec<&'a String> {
    desired.keys().chain(live.keys().filter(|k| !desired.contains_key(*k))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-way: Ferry wrote everything live has.
    fn two_way(kind: Kind, desired: &Value, live: &Value) -> (Action, Vec<Change>) {
        let compared = compare(kind, Some(desired), Some(live), Some(&Fields::Value));
        (compared.action, compared.changes)
    }

    fn paths(compared: &Compared) -> Vec<(&str, Op)> {
        compared.changes.iter().map(|c| (c.path.as_str(), c.op)).collect()
    }

    #[test]
    fn same_values_are_unchanged() {
        let body = json!({"spec": {"containers": [{"name": "main", "image": "a"}]}});
        assert_eq!(two_way(Kind::Workload, &body, &body), (Action::Unchanged, vec![]));
    }

    #[test]
    fn named_lists_compare_by_name() {
        let live = json!({"spec": {"containers": [{"name": "main", "image": "a", "cpu": "50m"}, {"name": "side", "image": "s"}]}});
        let desired = json!({"spec": {"containers": [{"name": "main", "image": "b", "cpu": "50m"}, {"name": "log", "image": "l"}]}});
        let (action, changes) = two_way(Kind::Workload, &desired, &live);
        assert_eq!(action, Action::Update);
        let paths: Vec<(&str, Op)> = changes.iter().map(|c| (c.path.as_str(), c.op)).collect();
        assert_eq!(
            paths,
            [
                ("spec.containers[main].image", Op::Change),
                ("spec.containers[log]", Op::Add),
                ("spec.containers[side]", Op::Remove)
            ]
        );
    }

    #[test]
    fn immutable_fields_force_replacement() {
        let (action, changes) = two_way(
            Kind::Workload,
            &json!({"spec": {"type": "stateful"}}),
            &json!({"spec": {"type": "standard"}}),
        );
        assert_eq!(action, Action::Replace);
        assert!(changes[0].forces_replacement);
    }

    #[test]
    fn secret_payloads_compare_in_memory_and_never_show() {
        let desired = json!({"data": hidden_data(&json!({"payload": "new-password"}))});
        let live = json!({"data": hidden_data(&json!({"payload": "old-password"}))});
        let (action, changes) = two_way(Kind::Secret, &desired, &live);
        assert_eq!(action, Action::Update);
        assert!(changes[0].sensitive);
        assert_eq!(changes[0].after, Some(json!(HIDDEN)));
        let shown = serde_json::to_string(&changes).unwrap_or_default();
        assert!(!shown.contains("password") && !shown.contains("sha256"), "{shown}");
        let same = json!({"data": hidden_data(&json!({"payload": "x"}))});
        assert_eq!(two_way(Kind::Secret, &same, &same).0, Action::Unchanged);
        let reordered = json!({"data": hidden_data(&json!({"b": "2", "a": "1"}))});
        let ordered = json!({"data": hidden_data(&json!({"a": "1", "b": "2"}))});
        assert_eq!(two_way(Kind::Secret, &reordered, &ordered).0, Action::Unchanged);
    }

    #[test]
    fn a_mark_is_keyed_so_no_guess_can_be_checked_against_it_and_never_leaves() {
        let data = json!({"encoding": "plain", "payload": "hunter2"});
        let mark = hidden_data(&data);
        let text = mark.as_str().unwrap_or_default();
        for unkeyed in [hash(&data), hex::encode(Sha256::digest(b"hunter2"))] {
            assert!(!text.contains(&unkeyed), "{text}");
        }
        assert_eq!(mark, hidden_data(&data), "one run, one mark per payload");
        assert_ne!(mark, hidden_data(&json!({"encoding": "plain", "payload": "hunter3"})));
        let body = json!({"data": mark, "tags": {"t": "x"}, "list": [{"v": text}]});
        assert_eq!(
            unmarked(&body),
            json!({"data": HIDDEN, "tags": {"t": "x"}, "list": [{"v": HIDDEN}]})
        );
    }

    #[test]
    fn hmac_is_rfc_4231() {
        // Test case 2 ("Jefe"): a key shorter than the block is padded with
        // zeros, as ours is.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hashes_ignore_key_order() {
        assert_eq!(
            hash(&json!({"a": 1, "b": [1, {"c": 2, "d": 3}]})),
            hash(&json!({"b": [1, {"d": 3, "c": 2}], "a": 1}))
        );
    }

    #[test]
    fn platform_tags_are_not_drift() {
        let mut live = json!({"tags": {"cpln/deployTimestamp": "now", "team": "shop", "cpln/protected": "true"}});
        without_platform_tags(&mut live);
        assert_eq!(live, json!({"tags": {"team": "shop", "cpln/protected": "true"}}));
    }

    /// Bodies of the shapes Ferry compares: nested objects, lists merged
    /// by name (nested too), unnamed lists, secrets' markers.
    fn samples() -> Vec<Value> {
        vec![
            json!({}),
            json!({"description": "d", "tags": {"team": "shop"}}),
            json!({"spec": {"type": "standard", "containers": [
                {"name": "main", "image": "/org/o/image/api:1", "args": ["a", "b"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"number": 8080, "protocol": "http"}]},
                {"name": "side", "image": "nginx", "cpu": "50m"}],
                "defaultOptions": {"autoscaling": {"minScale": 1, "maxScale": 3}}}}),
            json!({"type": "opaque", "data": hidden_data(&json!({"payload": "p"}))}),
            json!({"spec": {"staticPlacement": {"locationLinks": ["/org/o/location/a"]}, "env": []}}),
        ]
    }

    /// `body` with server fields added at every level: top, nested
    /// objects, and inside every item of a named list.
    fn with_server_fields(body: &Value) -> Value {
        match body {
            Value::Object(map) => {
                let mut map: Map<String, Value> =
                    map.iter().map(|(k, v)| (k.clone(), with_server_fields(v))).collect();
                map.insert("serverField".into(), json!({"filled": true}));
                Value::Object(map)
            }
            Value::Array(items) if named(items) => {
                Value::Array(items.iter().map(with_server_fields).collect())
            }
            other => other.clone(),
        }
    }

    /// Every path of `body` to an object key or a named item, as the
    /// pointer segments that reach it.
    fn removable(body: &Value, at: &[String], out: &mut Vec<Vec<String>>) {
        match body {
            Value::Object(map) => {
                for (key, value) in map.iter().filter(|(key, _)| *key != "name") {
                    let path = [at, std::slice::from_ref(key)].concat();
                    out.push(path.clone());
                    removable(value, &path, out);
                }
            }
            Value::Array(items) if named(items) => {
                for (index, item) in items.iter().enumerate() {
                    let path = [at, &[index.to_string()]].concat();
                    out.push(path.clone());
                    removable(item, &path, out);
                }
            }
            _ => {}
        }
    }

    fn without(body: &Value, path: &[String]) -> Value {
        let mut body = body.clone();
        let (last, parent) = path.split_last().unwrap_or_else(|| panic!("empty path"));
        let pointer: String = parent.iter().map(|p| format!("/{p}")).collect();
        match body.pointer_mut(&pointer) {
            Some(Value::Object(map)) => {
                map.shift_remove(last);
            }
            Some(Value::Array(items)) => {
                items.remove(last.parse::<usize>().unwrap_or_default());
            }
            _ => panic!("{pointer}"),
        }
        body
    }

    #[test]
    fn a_body_against_itself_has_no_changes_whatever_was_written() {
        for body in samples() {
            for last in
                [None, Some(Fields::Value), Some(Fields::of(&body)), Some(Fields::of(&json!({})))]
            {
                let compared = compare(Kind::Workload, Some(&body), Some(&body), last.as_ref());
                assert_eq!(compared.action, Action::Unchanged, "{body} with {last:?}");
                assert_eq!(compared.removals, None);
            }
        }
    }

    #[test]
    fn fields_only_the_server_sets_are_never_changes_at_any_level() {
        for body in samples() {
            let live = with_server_fields(&body);
            for last in [None, Some(Fields::of(&body))] {
                let compared = compare(Kind::Workload, Some(&body), Some(&live), last.as_ref());
                assert_eq!(compared.changes, vec![], "{body}");
                assert_eq!(owned(&body, &live, last.as_ref()), body, "the diff shows none of them");
            }
        }
    }

    #[test]
    fn every_field_removed_from_git_is_reported_alone_even_among_server_fields() {
        for body in samples() {
            let live = with_server_fields(&body);
            let last = Fields::of(&body);
            let mut paths = Vec::new();
            removable(&body, &[], &mut paths);
            for path in paths {
                let desired = without(&body, &path);
                let compared = compare(Kind::Workload, Some(&desired), Some(&live), Some(&last));
                let removed: Vec<_> =
                    compared.changes.iter().filter(|c| c.op == Op::Remove).collect();
                assert_eq!(removed.len(), 1, "{path:?} of {body}: {:?}", compared.changes);
                assert!(compared.removals.is_some(), "{path:?}");
                // The removal patch, applied to live, takes exactly that away.
                let (Value::Object(mut after), Some(Value::Object(patch))) =
                    (live.clone(), compared.removals.clone())
                else {
                    panic!("objects")
                };
                crate::patch::apply(&mut after, &patch).unwrap_or_else(|e| panic!("{e:?}"));
                assert_eq!(
                    owned(&desired, &Value::Object(after), Some(&last)),
                    desired,
                    "{path:?}: {patch:?}"
                );
            }
        }
    }

    #[test]
    fn an_env_var_removed_from_git_is_one_removal_and_one_drop() {
        let old = json!({"spec": {"containers": [{"name": "main", "image": "a",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}});
        let new = json!({"spec": {"containers": [{"name": "main", "image": "a",
            "env": [{"name": "A", "value": "1"}]}]}});
        let live = with_server_fields(&old);
        let compared = compare(Kind::Workload, Some(&new), Some(&live), Some(&Fields::of(&old)));
        assert_eq!(compared.action, Action::Update);
        assert_eq!(paths(&compared), [("spec.containers[main].env[B]", Op::Remove)]);
        assert_eq!(
            compared.removals,
            Some(json!({"spec": {"$patch/containers": [{"name": "main", "$drop/env": ["B"]}]}}))
        );
        let tag = compare(
            Kind::Workload,
            Some(&json!({"tags": {}, "spec": {"x": {}}})),
            Some(&json!({"tags": {"old": "1", "cpln/x": "s"}, "spec": {"x": {"y": 1}}})),
            Some(&Fields::of(&json!({"tags": {"old": "1"}, "spec": {"x": {"y": 1}}}))),
        );
        assert_eq!(paths(&tag), [("tags.old", Op::Remove), ("spec.x.y", Op::Remove)]);
        assert_eq!(tag.removals, Some(json!({"tags": {"old": null}, "spec": {"x": {"y": null}}})));
    }

    #[test]
    fn without_a_record_a_field_git_lacks_is_left_as_it_is() {
        let live = json!({"spec": {"x": 1, "containers": [{"name": "main"}, {"name": "extra"}]}});
        let desired = json!({"spec": {"containers": [{"name": "main"}]}});
        let compared = compare(Kind::Workload, Some(&desired), Some(&live), None);
        assert_eq!(compared.action, Action::Unchanged);
        let recorded = Fields::of(&live);
        let compared = compare(Kind::Workload, Some(&desired), Some(&live), Some(&recorded));
        assert_eq!(
            paths(&compared),
            [("spec.containers[extra]", Op::Remove), ("spec.x", Op::Remove)]
        );
    }
}
