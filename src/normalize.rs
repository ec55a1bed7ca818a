//! What the API does to a body before storing it (reference §3.3): strip
//! server-managed fields, qualify `//` links with the org, fill defaults,
//! sort env and location links. Pure and idempotent, so re-applying what
//! a GET returned (`-o yaml-slim`) compares equal and bumps no version.
//!
//! One model, two users: the simulator stores bodies this way, and `plan`
//! normalizes desired and live bodies this way before comparing them, so
//! that an environment that was just applied plans as "no changes". The
//! real `cpln` CLI's round trips against the simulator keep it honest.

use serde_json::{Map, Value, json};

use crate::manifest::link;

/// The org and (for GVC-scoped kinds) the GVC a body is written under.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub org: &'a str,
    pub gvc: Option<&'a str>,
}

/// Fields the server manages (or takes from the path): never written from a
/// body, and dropped from a live body before it is written back.
pub const SERVER_MANAGED: &[&str] = &[
    "id",
    "gvc",
    "version",
    "created",
    "lastModified",
    "links",
    "status",
    "health",
    "alias",
    "origin",
];

/// Top-level fields whose strings are user text, never links.
const NOT_LINKS: &[&str] = &["description", "tags", "data"];

/// Normalizes `doc` (the body of a `kind` item called `name`) in place.
pub fn normalize(kind: &str, name: &str, scope: Scope<'_>, doc: &mut Map<String, Value>) {
    for field in SERVER_MANAGED.iter().chain(&["kind", "name"]) {
        doc.remove(*field);
    }
    if !doc.get("description").is_some_and(Value::is_string) {
        doc.insert("description".into(), Value::String(name.to_owned()));
    }
    if !doc.get("tags").is_some_and(Value::is_object) {
        doc.insert("tags".into(), json!({}));
    }
    if let Some(Value::Object(tags)) = doc.get_mut("tags") {
        tags.retain(|_, v| !v.is_null());
    }
    // A GVC's own relative links resolve in it (its `keda.identityLink`).
    let links = if kind == "gvc" { Scope { gvc: Some(name), ..scope } } else { scope };
    for (key, value) in doc.iter_mut() {
        if is_linkable(kind, key) {
            qualify_links(value, links);
        }
    }
    let spec = doc.entry("spec").or_insert_with(|| json!({}));
    let Value::Object(spec) = spec else { return };
    match kind {
        "workload" => workload_spec(spec, scope),
        "gvc" => gvc_spec(spec),
        "volumeset" => defaults(
            spec,
            "snapshots",
            &json!({"createFinalSnapshot": true, "retentionDuration": "7d"}),
        ),
        _ => {}
    }
    if spec.is_empty() && !matches!(kind, "workload" | "gvc" | "volumeset" | "domain" | "ipset") {
        doc.remove("spec");
    }
}

/// Whether a top-level field of a `kind` body may hold links: not user
/// text, and not a secret's payload (a cloud account's `data` holds links,
/// such as `secretLink`).
pub fn is_linkable(kind: &str, key: &str) -> bool {
    !NOT_LINKS.contains(&key) || (key == "data" && kind != "secret")
}

/// `//x/y` → `/org/ORG/x/y`, and a bare `//workload/N` (identity, volume
/// set) in an item of a GVC, or in the GVC itself, → that GVC's
/// ([`link::qualify`], the rule Ferry's render follows too).
fn qualify_links(value: &mut Value, scope: Scope<'_>) {
    match value {
        Value::String(text) => {
            if let Some(full) = link::qualify(text, scope.org, scope.gvc) {
                *text = full;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| qualify_links(v, scope)),
        Value::Object(map) => map.values_mut().for_each(|v| qualify_links(v, scope)),
        _ => {}
    }
}

/// The image as stored: the org's own `ORG.registry.cpln.io/N:T` becomes
/// the link `/org/ORG/image/N:T`; anything else stays as written.
fn normalize_image(image: &str, org: &str) -> Option<String> {
    let rest = image.strip_prefix(&format!("{org}.registry.cpln.io/"))?;
    Some(format!("/org/{org}/image/{rest}"))
}

/// Inserts `value` at `key` unless present, then fills missing nested keys.
fn defaults(target: &mut Map<String, Value>, key: &str, value: &Value) {
    match (target.get_mut(key), value) {
        (Some(Value::Object(existing)), Value::Object(wanted)) => {
            for (k, v) in wanted {
                defaults(existing, k, v);
            }
        }
        (Some(_), _) => {}
        (None, _) => {
            target.insert(key.to_owned(), value.clone());
        }
    }
}

fn workload_spec(spec: &mut Map<String, Value>, scope: Scope<'_>) {
    defaults(spec, "type", &json!("serverless"));
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("serverless").to_owned();
    if let Some(Value::Array(containers)) = spec.get_mut("containers") {
        containers.iter_mut().filter_map(Value::as_object_mut).for_each(|c| container(c, scope));
    }
    let target_written =
        spec.get("defaultOptions").and_then(|o| o.pointer("/autoscaling/target")).is_some();
    defaults(
        spec,
        "defaultOptions",
        &json!({
            "autoscaling": {"target": 95, "minScale": 1, "maxScale": 5, "scaleToZeroDelay": 300, "maxConcurrency": 0},
            "timeoutSeconds": 5, "debug": false, "suspend": false
        }),
    );
    // No default target where the metric takes none: keda's triggers, or
    // `multi`'s own targets (the rules of validate::schema, which a stored
    // body must still pass when it is written back).
    if let Some(Value::Object(scaling)) =
        spec.get_mut("defaultOptions").and_then(|o| o.pointer_mut("/autoscaling"))
        && !target_written
        && (scaling.get("metric").and_then(Value::as_str) == Some("keda")
            || scaling.contains_key("multi"))
    {
        scaling.remove("target");
    }
    defaults(
        spec,
        "firewallConfig",
        &json!({
            "external": {"inboundAllowCIDR": [], "inboundBlockedCIDR": [], "outboundAllowCIDR": [],
                         "outboundAllowHostname": [], "outboundAllowPort": [], "outboundBlockedCIDR": []},
            "internal": {"inboundAllowType": "none", "inboundAllowWorkload": []}
        }),
    );
    if matches!(kind.as_str(), "standard" | "stateful") {
        defaults(
            spec,
            "rolloutOptions",
            &json!({"minReadySeconds": 0, "scalingPolicy": "OrderedReady", "terminationGracePeriodSeconds": 90}),
        );
    }
    if kind == "stateful"
        && let Some(Value::Object(rollout)) = spec.get_mut("rolloutOptions")
    {
        rollout.remove("maxUnavailableReplicas");
    }
}

fn container(container: &mut Map<String, Value>, scope: Scope<'_>) {
    if let Some(Value::String(image)) = container.get_mut("image")
        && let Some(link) = normalize_image(image, scope.org)
    {
        *image = link;
    }
    defaults(container, "cpu", &json!("50m"));
    defaults(container, "memory", &json!("128Mi"));
    if let Some(Value::Array(env)) = container.get_mut("env") {
        env.sort_by(|a, b| {
            let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            name(a).cmp(&name(b))
        });
    }
    for (probe, delay) in [("readinessProbe", 10), ("livenessProbe", 60)] {
        if let Some(Value::Object(probe)) = container.get_mut(probe) {
            for (key, value) in [
                ("initialDelaySeconds", delay),
                ("periodSeconds", 10),
                ("timeoutSeconds", 1),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ] {
                defaults(probe, key, &json!(value));
            }
        }
    }
    if let Some(Value::Array(volumes)) = container.get_mut("volumes") {
        for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
            let secret = volume
                .get("uri")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("cpln://secret/"));
            if secret {
                defaults(volume, "recoveryPolicy", &json!("retain"));
            }
        }
    }
}

fn gvc_spec(spec: &mut Map<String, Value>) {
    if let Some(Value::Object(placement)) = spec.get_mut("staticPlacement")
        && let Some(Value::Array(links)) = placement.get_mut("locationLinks")
    {
        links.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        links.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = Scope { org: "acme", gvc: Some("app") };

    fn normalized(kind: &str, body: Value) -> Value {
        let Value::Object(mut doc) = body else { panic!("object expected") };
        normalize(kind, "api", SCOPE, &mut doc);
        Value::Object(doc)
    }

    #[test]
    fn qualifies_links_and_sorts_env() {
        let out = normalized(
            "workload",
            json!({"id": "x", "version": 3, "spec": {"type": "standard", "identityLink": "//identity/api-id",
                "containers": [{"name": "main", "image": "acme.registry.cpln.io/api:1",
                  "env": [{"name": "B", "value": "cpln://secret/db"}, {"name": "A", "value": "1"}]}]}}),
        );
        assert_eq!(out["description"], "api");
        assert!(out.get("id").is_none() && out.get("version").is_none());
        assert_eq!(out["spec"]["identityLink"], "/org/acme/gvc/app/identity/api-id");
        let main = &out["spec"]["containers"][0];
        assert_eq!(main["image"], "/org/acme/image/api:1");
        assert_eq!(main["env"][0]["name"], "A");
        assert_eq!(main["cpu"], "50m");
        assert_eq!(out["spec"]["rolloutOptions"]["terminationGracePeriodSeconds"], 90);
    }

    #[test]
    fn bare_links_to_gvc_items_name_the_gvc_they_are_written_in() {
        let firewall = json!({"internal": {"inboundAllowType": "workload-list",
            "inboundAllowWorkload": ["//workload/web", "//gvc/edge/workload/proxy", "/org/acme/gvc/app/workload/api"]}});
        let out = normalized(
            "workload",
            json!({"spec": {"firewallConfig": firewall, "containers": [{"name": "main",
                "volumes": [{"uri": "cpln://volumeset/data", "path": "/data"}]}]}}),
        );
        assert_eq!(
            out["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"],
            json!([
                "/org/acme/gvc/app/workload/web",
                "/org/acme/gvc/edge/workload/proxy",
                "/org/acme/gvc/app/workload/api"
            ])
        );
        assert_eq!(out["spec"]["containers"][0]["volumes"][0]["uri"], "cpln://volumeset/data");
        // The GVC's own links resolve in it; an org item's stay the org's.
        let Value::Object(mut gvc) = json!({"spec": {"keda": {"identityLink": "//identity/keda"}}})
        else {
            unreachable!()
        };
        normalize("gvc", "shop", Scope { org: "acme", gvc: None }, &mut gvc);
        assert_eq!(gvc["spec"]["keda"]["identityLink"], "/org/acme/gvc/shop/identity/keda");
        let Value::Object(mut policy) =
            json!({"targetKind": "workload", "targetLinks": ["//workload/web"]})
        else {
            unreachable!()
        };
        normalize("policy", "p", Scope { org: "acme", gvc: None }, &mut policy);
        assert_eq!(policy["targetLinks"][0], "/org/acme/workload/web");
    }

    #[test]
    fn no_default_target_where_the_metric_takes_none() {
        let scaled = |autoscaling: Value| {
            normalized(
                "workload",
                json!({"spec": {"defaultOptions": {"autoscaling": autoscaling}}}),
            )["spec"]["defaultOptions"]["autoscaling"]
                .clone()
        };
        assert!(scaled(json!({"metric": "keda"})).get("target").is_none());
        assert!(
            scaled(json!({"multi": [{"metric": "cpu", "target": 50}]})).get("target").is_none()
        );
        assert_eq!(scaled(json!({"metric": "cpu"}))["target"], 95);
        assert_eq!(scaled(json!({"metric": "keda", "target": 10}))["target"], 10);
    }

    #[test]
    fn is_idempotent() {
        let once = normalized(
            "gvc",
            json!({"spec": {"staticPlacement": {"locationLinks": ["//location/b", "//location/a"]},
                            "pullSecretLinks": ["//secret/pull"]}}),
        );
        assert_eq!(once["spec"]["staticPlacement"]["locationLinks"][0], "/org/acme/location/a");
        assert_eq!(once["spec"]["pullSecretLinks"][0], "/org/acme/secret/pull");
        assert_eq!(normalized("gvc", once.clone()), once);
    }

    #[test]
    fn leaves_user_text_alone() {
        let out = normalized(
            "secret",
            json!({"description": "//not a link", "type": "opaque",
            "data": {"payload": "//x"}, "tags": {"k": "//v", "gone": null}}),
        );
        assert_eq!(out["description"], "//not a link");
        assert_eq!(out["data"]["payload"], "//x");
        assert_eq!(out["tags"], json!({"k": "//v"}));
        let account = normalized("cloudaccount", json!({"data": {"secretLink": "//secret/azure"}}));
        assert_eq!(account["data"]["secretLink"], "/org/acme/secret/azure");
    }
}
