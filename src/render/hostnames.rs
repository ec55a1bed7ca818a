//! Internal hostnames. A workload calls another of its org at
//! `WORKLOAD.GVC.cpln.local[:PORT]` ("Service Endpoint Syntax",
//! <https://docs.controlplane.com/guides/service-to-service>), so a string
//! written for the manifests' template GVC (`cart.boutique.cpln.local:7070`
//! in an env value) must name the environment's GVC once rendered:
//! [`rewrite_body`] moves every such host of a body under the
//! environment's GVC, and [`problems`] warns, at the string, about what it
//! leaves as written and which then calls the wrong GVC in some
//! environment. Pure.
//!
//! What counts as a host: the label right before `.cpln.local` is the GVC,
//! and the host must end there (at the end of the text, or before anything
//! that cannot continue a host name: `:`, `/`, `,`, a space, a quote, …;
//! `x.boutique.cpln.localhost` is not one). A host with a label before the
//! GVC's (`cart.boutique…`, a replica's `redis-0.redis.boutique…`, a
//! wildcard `*.boutique…`) is under the GVC, and is what is rewritten;
//! the GVC's label alone (`boutique.cpln.local`) is not an internal name.
//! A label is ASCII letters, digits, `-` and `_`; the GVC is compared
//! without regard to case (DNS names are not case-sensitive).
//!
//! Left alone: a secret's `data` (Ferry never changes a payload: one that
//! names the template GVC is a warning, and the payload is never quoted),
//! the fields the server manages (`status.internalName` of an export,
//! `normalize::SERVER_MANAGED`), `kind` and `name`.

use serde_json::{Map, Value};

use crate::config::Patch;
use crate::diagnostic::{Location, Problem};
use crate::manifest::{Kind, Resource, link};

/// What follows an internal hostname's GVC.
const SUFFIX: &str = ".cpln.local";

/// An internal hostname in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Host<'a> {
    /// The host as written, `cart.boutique.cpln.local`.
    pub text: &'a str,
    /// The GVC's label, `boutique`.
    pub gvc: &'a str,
    /// Where the GVC's label starts in the text (bytes).
    pub gvc_at: usize,
    /// Something of the GVC (a workload, a replica, a wildcard) is named
    /// before it; else the host is the GVC's label alone.
    pub under_gvc: bool,
}

fn label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Where the label that ends at `end` starts (`end` itself when no label
/// ends there).
fn label_start(bytes: &[u8], end: usize) -> usize {
    let mut start = end;
    while start > 0 && label_byte(bytes[start - 1]) {
        start -= 1;
    }
    start
}

/// Whether a host that would end at `end` ends there: nothing that
/// continues a name follows (a dot may, as in the absolute
/// `cart.boutique.cpln.local.`, when no label follows it).
fn host_ends(bytes: &[u8], end: usize) -> bool {
    match bytes.get(end) {
        None => true,
        Some(b'.') => !bytes.get(end + 1).is_some_and(|b| label_byte(*b)),
        Some(byte) => !label_byte(*byte),
    }
}

/// Every internal hostname in `text`, in order.
pub(crate) fn find(text: &str) -> Vec<Host<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.match_indices(SUFFIX) {
        let end = at + SUFFIX.len();
        let gvc_at = label_start(bytes, at);
        // `${GVC}.cpln.local`, a template's: no GVC to read.
        if gvc_at == at || !host_ends(bytes, end) {
            continue;
        }
        let under_gvc = gvc_at > 0 && bytes[gvc_at - 1] == b'.';
        let mut start = gvc_at;
        while start > 0 && bytes[start - 1] == b'.' {
            let label = label_start(bytes, start - 1);
            if label == start - 1 {
                break;
            }
            start = label;
        }
        found.push(Host { text: &text[start..end], gvc: &text[gvc_at..at], gvc_at, under_gvc });
    }
    found
}

fn same_gvc(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `text` with every host under one of the `from` GVCs moved under `to`;
/// `None` when that changes nothing.
pub(crate) fn rewrite(text: &str, from: &[&str], to: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for host in find(text) {
        if host.under_gvc && host.gvc != to && from.iter().any(|f| same_gvc(host.gvc, f)) {
            out.push_str(&text[copied..host.gvc_at]);
            out.push_str(to);
            copied = host.gvc_at + host.gvc.len();
        }
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// Whether the top-level field `key` of a `kind` body is left alone.
fn skipped(kind: Kind, key: &str) -> bool {
    key == "kind"
        || key == "name"
        || (kind == Kind::Secret && key == "data")
        || crate::normalize::SERVER_MANAGED.contains(&key)
}

/// Rewrites the hosts under one of the `from` GVCs of every string of a
/// `kind` body (not its keys) under `to`.
pub(crate) fn rewrite_body(body: &mut Value, kind: Kind, from: &[&str], to: &str) {
    if let Some(fields) = body.as_object_mut() {
        rewrite_fields(fields, kind, from, to);
    }
}

/// [`rewrite_body`] of a body's fields.
pub(crate) fn rewrite_fields(fields: &mut Map<String, Value>, kind: Kind, from: &[&str], to: &str) {
    if from.is_empty() {
        return;
    }
    for (key, value) in fields.iter_mut() {
        if !skipped(kind, key) {
            rewrite_strings(value, from, to);
        }
    }
}

fn rewrite_strings(value: &mut Value, from: &[&str], to: &str) {
    match value {
        Value::String(text) => {
            if let Some(rewritten) = rewrite(text, from, to) {
                *text = rewritten;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_strings(v, from, to)),
        _ => {}
    }
}

/// Something a string of a rendered body names that rendering leaves as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// A host under a GVC that is neither the template nor one the body is
    /// rendered for.
    OtherGvc { host: String, gvc: String },
    /// The template GVC's label alone, `boutique.cpln.local`.
    GvcAlone { host: String, template: String },
    /// A link into the template GVC inside a longer text
    /// (`--target=/org/acme/gvc/boutique/workload/cart`): Ferry renders a
    /// link only when it is the whole string.
    LinkInText { template: String },
}

impl Finding {
    /// What to look for in the string as written, to point at it.
    fn needle(&self) -> String {
        match self {
            Finding::OtherGvc { host, .. } | Finding::GvcAlone { host, .. } => host.clone(),
            Finding::LinkInText { template } => format!("/gvc/{template}"),
        }
    }
}

/// Where `text` names `gvc` in a link inside it: `/gvc/GVC` followed by
/// `/` or by anything that does not continue a name.
fn link_in_text(text: &str, gvc: &str) -> bool {
    let needle = format!("/gvc/{gvc}");
    text.match_indices(&needle).any(|(at, _)| {
        let next = text.as_bytes().get(at + needle.len());
        next.is_none_or(|b| !label_byte(*b) && *b != b'.')
    })
}

/// What `text` names that rendering for `gvcs` (the GVCs the body is
/// rendered for: the environment's, or every environment's for a shared
/// resource) leaves as written, from manifests whose template GVC is one
/// of `template`. The template in another form is said only when some
/// GVC of `gvcs` is not the template (otherwise it is right as written).
pub(crate) fn check(text: &str, template: &[&str], gvcs: &[String]) -> Vec<Finding> {
    let is_template = |gvc: &str| template.iter().any(|t| same_gvc(gvc, t));
    let renamed = gvcs.iter().any(|g| !is_template(g));
    let mut found = Vec::new();
    for host in find(text) {
        let finding = if host.under_gvc {
            if is_template(host.gvc) || gvcs.iter().any(|g| same_gvc(host.gvc, g)) {
                continue;
            }
            Finding::OtherGvc { host: host.text.to_owned(), gvc: host.gvc.to_owned() }
        } else if renamed && is_template(host.gvc) {
            Finding::GvcAlone { host: host.text.to_owned(), template: host.gvc.to_owned() }
        } else {
            continue;
        };
        if !found.contains(&finding) {
            found.push(finding);
        }
    }
    // A string that is a link is rendered as one (`LinkRewrite`).
    if renamed && link::parse(text).is_none() {
        for template in template.iter().filter(|t| link_in_text(text, t)) {
            found.push(Finding::LinkInText { template: (*template).to_owned() });
        }
    }
    found
}

/// Every string of a `kind` body that [`skipped`] leaves in, with its JSON
/// pointer.
fn strings(body: &Value, kind: Kind) -> Vec<(String, &str)> {
    fn walk<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match value {
            Value::String(text) => out.push((at, text)),
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{index}"), out);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    walk(item, format!("{at}/{}", escape(key)), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in body.as_object().into_iter().flatten() {
        if !skipped(kind, key) {
            walk(value, format!("/{}", escape(key)), &mut out);
        }
    }
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The warnings for `resource` rendered for the GVCs `gvcs`: for
/// each string of `merged` (the manifest with the environment's overrides
/// `applied` merged, each with the fields it merged), what [`check`]
/// finds, at the string in the override that set it or else in the
/// manifest; and a secret whose payload names the template GVC's hosts.
pub(super) fn problems(
    resource: &Resource,
    merged: &Value,
    applied: &[(&Patch, Value)],
    template: &[&str],
    gvcs: &[String],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let written = resource.body();
    for (pointer, text) in strings(merged, resource.kind) {
        let found = check(text, template, gvcs);
        if found.is_empty() {
            continue;
        }
        let (location, patch) = origin(resource, &written, merged, applied, &pointer, text);
        for finding in found {
            let problem = warning(&finding, narrowed(&location, &finding.needle()));
            // An override of a secret is never shown (it may hold the
            // payload): its position goes into the message.
            problems.push(match patch {
                Some(patch) => super::unshown_if_secret(problem, patch),
                None => problem,
            });
        }
    }
    problems.extend(secret_payload(resource, template, gvcs));
    problems
}

/// Where the string `text` at `pointer` of `merged` was written: in the
/// last override that set it (and which), else in the manifest (else at
/// the resource).
fn origin<'p>(
    resource: &Resource,
    written: &Value,
    merged: &Value,
    applied: &[(&'p Patch, Value)],
    pointer: &str,
    text: &str,
) -> (Location, Option<&'p Patch>) {
    for (patch, fields) in applied.iter().rev() {
        let at = super::patch_pointer(fields, merged, pointer);
        if fields.pointer(&at).and_then(Value::as_str) == Some(text) {
            return (patch.location_at(&at, false), Some(patch));
        }
    }
    if written.pointer(pointer).and_then(Value::as_str) == Some(text) {
        (resource.location_at(pointer, false), None)
    } else {
        (resource.location(), None)
    }
}

/// `location` narrowed to the first `needle` in the text it spans, when
/// the text has it as written (a quoted string with escapes may not).
fn narrowed(location: &Location, needle: &str) -> Location {
    let (start, len) = (location.span.offset(), location.span.len());
    let found = location
        .source
        .text()
        .get(start..start + len)
        .and_then(|spanned| spanned.find(needle))
        .map(|at| (start + at, needle.len()));
    match found {
        Some(span) => Location::new(&location.source, span),
        None => location.clone(),
    }
}

fn warning(finding: &Finding, location: Location) -> Problem {
    match finding {
        Finding::OtherGvc { host, gvc } => Problem::new(
            "ferry::render::other-gvc-hostname",
            format!(
                "`{host}` names a workload of GVC `{gvc}`, not of the manifests' GVC: Ferry renders only the manifests' GVC's internal hostnames for each environment, and leaves this one as written, calling `{gvc}` from every environment"
            ),
        )
        .at(location, format!("GVC `{gvc}`"))
        .help(
            "to call this app's own workload, name the manifests' GVC (`WORKLOAD.TEMPLATE.cpln.local`, TEMPLATE as `ferry validate` names it) and each environment calls its own; if another GVC is meant, nothing to change (an address that differs per environment belongs in the environment's overrides)",
        )
        .warning(),
        Finding::GvcAlone { host, template } => Problem::new(
            "ferry::render::gvc-hostname-without-workload",
            format!(
                "`{host}` names the manifests' GVC `{template}` without a workload: an internal hostname is `WORKLOAD.GVC.cpln.local`, and Ferry renders only those for each environment's GVC, so this one stays `{template}`"
            ),
        )
        .at(location, format!("the manifests' GVC `{template}`"))
        .help(format!("name the workload: `WORKLOAD.{template}.cpln.local`"))
        .warning(),
        Finding::LinkInText { template } => Problem::new(
            "ferry::render::gvc-link-in-text",
            format!(
                "a link into the manifests' GVC `{template}` inside a longer text stays as written: Ferry renders a link for each environment's GVC only when it is the whole value, so this one names `{template}` in every environment"
            ),
        )
        .at(location, format!("`/gvc/{template}` in a text"))
        .help(
            "give the link a value of its own (an env value, a field), or set the text per environment in its overrides",
        )
        .warning(),
    }
}

/// A secret whose payload, as written, names a host under the template GVC
/// while some GVC it is rendered for is another: one warning, at `data`,
/// which never quotes the payload.
fn secret_payload(resource: &Resource, template: &[&str], gvcs: &[String]) -> Option<Problem> {
    if resource.kind != Kind::Secret {
        return None;
    }
    let is_template = |gvc: &str| template.iter().any(|t| same_gvc(gvc, t));
    if !gvcs.iter().any(|g| !is_template(g)) {
        return None;
    }
    let data = resource.node.get("data")?;
    let key = resource.node.key("data")?;
    let mut texts = Vec::new();
    collect_texts(&data.to_json(), &mut texts);
    let named = texts
        .iter()
        .flat_map(|t| find(t))
        .find(|h| h.under_gvc && is_template(h.gvc))
        .map(|h| h.gvc.to_owned())?;
    Some(
        Problem::new(
            "ferry::render::hostname-in-secret",
            format!(
                "the payload of secret/{} names a workload of the manifests' GVC `{named}` (`….{named}.cpln.local`): Ferry never changes a secret's payload, so it names `{named}` in every environment, whatever its GVC",
                resource.name
            ),
        )
        .at(Location::new(&resource.source, key.span), "the payload (not shown)")
        .help(
            "keep the address out of the payload, in a workload's env value (Ferry renders it for each environment), or give each environment its own value through its overrides",
        )
        .warning(),
    )
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_texts(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str) -> Vec<(&str, &str, bool)> {
        find(text).into_iter().map(|h| (h.text, h.gvc, h.under_gvc)).collect()
    }

    #[test]
    fn finds_hosts_in_every_form_a_string_writes_them() {
        assert_eq!(
            hosts("cart.boutique.cpln.local"),
            [("cart.boutique.cpln.local", "boutique", true)]
        );
        assert_eq!(
            hosts("http://cart.boutique.cpln.local:7070/api?x=1"),
            [("cart.boutique.cpln.local", "boutique", true)]
        );
        assert_eq!(
            hosts("a.boutique.cpln.local:1,b.shop-prod.cpln.local:2 c.x.cpln.local"),
            [
                ("a.boutique.cpln.local", "boutique", true),
                ("b.shop-prod.cpln.local", "shop-prod", true),
                ("c.x.cpln.local", "x", true)
            ]
        );
        assert_eq!(
            hosts("redis://u:p@redis-0.redis.boutique.cpln.local."),
            [("redis-0.redis.boutique.cpln.local", "boutique", true)],
            "a replica's, absolute"
        );
        assert_eq!(
            hosts("HOST='frontend.boutique.cpln.local'"),
            [("frontend.boutique.cpln.local", "boutique", true)]
        );
        assert_eq!(hosts("*.boutique.cpln.local"), [("boutique.cpln.local", "boutique", true)]);
        assert_eq!(hosts("boutique.cpln.local"), [("boutique.cpln.local", "boutique", false)]);
    }

    #[test]
    fn what_only_looks_like_a_host_is_not_one() {
        for text in [
            "x.boutique.cpln.localhost",
            "x.boutique.cpln.local-dev",
            "x.boutique.cpln.local.example.com",
            "x.boutique.cpln.locale",
            "${WORKLOAD}.${CPLN_GVC}.cpln.local",
            "{{ .Values.gvc }}.cpln.local:80",
            ".cpln.local",
            "cpln.local",
            "x.boutique.cpln.io",
        ] {
            assert_eq!(hosts(text), [], "{text}");
        }
    }

    #[test]
    fn rewrites_the_template_gvc_and_nothing_else() {
        let to_prod = |text: &str| rewrite(text, &["boutique"], "shop-prod");
        assert_eq!(
            to_prod("http://cart.boutique.cpln.local:7070/path").as_deref(),
            Some("http://cart.shop-prod.cpln.local:7070/path")
        );
        assert_eq!(
            to_prod("cart.boutique.cpln.local:7070,ads.boutique.cpln.local:9555").as_deref(),
            Some("cart.shop-prod.cpln.local:7070,ads.shop-prod.cpln.local:9555")
        );
        assert_eq!(
            to_prod("--join=redis-0.redis.boutique.cpln.local --peer x.Boutique.cpln.local")
                .as_deref(),
            Some("--join=redis-0.redis.shop-prod.cpln.local --peer x.shop-prod.cpln.local")
        );
        assert_eq!(
            to_prod("x.boutiquefoo.cpln.local"),
            None,
            "another GVC, whose name starts alike"
        );
        assert_eq!(to_prod("x.myboutique.cpln.local"), None);
        assert_eq!(to_prod("x.boutique.cpln.localhost"), None);
        assert_eq!(to_prod("boutique.cpln.local"), None, "no workload: not an internal name");
        assert_eq!(to_prod("the boutique GVC"), None);
        assert_eq!(rewrite("x.boutique.cpln.local", &["boutique"], "boutique"), None);
        assert_eq!(rewrite("x.boutique.cpln.local", &[], "shop-prod"), None);
    }

    #[test]
    fn a_body_is_rewritten_but_a_secrets_payload_and_server_fields() {
        let mut workload = serde_json::json!({
            "kind": "workload", "name": "w",
            "description": "calls cart.boutique.cpln.local",
            "spec": {"containers": [{"name": "main", "args": ["--cart", "cart.boutique.cpln.local:7070"],
                "readinessProbe": {"httpGet": {"httpHeaders": [{"name": "Host", "value": "w.boutique.cpln.local"}]}}}]},
            "status": {"internalName": "w.boutique.cpln.local"}
        });
        rewrite_body(&mut workload, Kind::Workload, &["boutique"], "shop-prod");
        let container = &workload["spec"]["containers"][0];
        assert_eq!(container["args"][1], "cart.shop-prod.cpln.local:7070");
        assert_eq!(
            container["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"],
            "w.shop-prod.cpln.local"
        );
        assert_eq!(workload["description"], "calls cart.shop-prod.cpln.local");
        assert_eq!(workload["status"]["internalName"], "w.boutique.cpln.local");
        let mut secret = serde_json::json!({"kind": "secret", "name": "s", "type": "opaque",
            "data": {"payload": "upstream cart.boutique.cpln.local"}});
        let before = secret.clone();
        rewrite_body(&mut secret, Kind::Secret, &["boutique"], "shop-prod");
        assert_eq!(secret, before, "a payload is never changed");
    }

    fn findings(text: &str, gvcs: &[&str]) -> Vec<Finding> {
        let gvcs: Vec<String> = gvcs.iter().map(|g| (*g).to_owned()).collect();
        check(text, &["boutique"], &gvcs)
    }

    #[test]
    fn another_gvcs_host_is_found_and_the_own_ones_are_not() {
        let other =
            |host: &str, gvc: &str| Finding::OtherGvc { host: host.into(), gvc: gvc.into() };
        assert_eq!(
            findings(
                "http://fraud.platform.cpln.local:9000,cart.boutique.cpln.local",
                &["shop-prod"]
            ),
            [other("fraud.platform.cpln.local", "platform")]
        );
        assert_eq!(findings("x.shop-prod.cpln.local", &["shop-prod"]), [], "the environment's own");
        assert_eq!(
            findings("x.shop-staging.cpln.local", &["shop-prod"]),
            [other("x.shop-staging.cpln.local", "shop-staging")],
            "another environment's"
        );
        assert_eq!(
            findings("a.p.cpln.local b.p.cpln.local a.p.cpln.local", &["shop-prod"]).len(),
            2,
            "each host once"
        );
        assert_eq!(findings("x.boutique.cpln.localhost x.boutiquefoo.cpln.localx", &["p"]), []);
    }

    #[test]
    fn the_template_in_another_form_is_found_only_where_it_differs() {
        let alone =
            Finding::GvcAlone { host: "boutique.cpln.local".into(), template: "boutique".into() };
        assert_eq!(findings("http://boutique.cpln.local", &["shop-prod"]), [alone]);
        assert_eq!(findings("http://boutique.cpln.local", &["boutique"]), [], "right as written");
        let link = Finding::LinkInText { template: "boutique".into() };
        assert_eq!(
            findings("--target=/org/acme/gvc/boutique/workload/cart", &["shop-prod"]),
            std::slice::from_ref(&link)
        );
        assert_eq!(findings("see //gvc/boutique", &["shop-prod"]), [link]);
        assert_eq!(
            findings("//gvc/boutique/workload/cart", &["shop-prod"]),
            [],
            "a link: rendered"
        );
        assert_eq!(findings("/gvc/boutique-old/x /gvc/boutiques", &["shop-prod"]), []);
        assert_eq!(findings("/gvc/boutique/x", &["boutique"]), []);
    }
}
