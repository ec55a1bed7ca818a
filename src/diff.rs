//! Field-level differences between what an environment should run and
//! what it runs. Pure.
//!
//! Both sides are normalized first ([`crate::normalize`]), platform tags
//! are ignored, and secret payloads are compared by hash: callers replace
//! `data` with [`hidden_data`] on both sides, and no payload ever reaches
//! a [`Change`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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

/// The marker that stands for a secret's `data`: its hash, so that two
/// payloads compare equal exactly when they are equal.
pub fn hidden_data(data: &Value) -> Value {
    Value::String(format!("{HIDDEN} sha256:{}", hash(data)))
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

/// The action and field changes that take `live` to `desired`.
pub fn compare(kind: Kind, desired: Option<&Value>, live: Option<&Value>) -> (Action, Vec<Change>) {
    match (desired, live) {
        (Some(_), None) => (Action::Create, Vec::new()),
        (None, Some(_)) => (Action::Delete, Vec::new()),
        (None, None) => (Action::Unchanged, Vec::new()),
        (Some(desired), Some(live)) => {
            let mut changes = Vec::new();
            walk(kind, "", Some(desired), Some(live), &mut changes);
            let action = if changes.is_empty() {
                Action::Unchanged
            } else if changes.iter().any(|c| c.forces_replacement) {
                Action::Replace
            } else {
                Action::Update
            };
            (action, changes)
        }
    }
}

fn walk(
    kind: Kind,
    path: &str,
    desired: Option<&Value>,
    live: Option<&Value>,
    out: &mut Vec<Change>,
) {
    match (desired, live) {
        (Some(Value::Object(d)), Some(Value::Object(l))) => {
            for key in union(d, l) {
                walk(kind, &join(path, key), d.get(key), l.get(key), out);
            }
        }
        (Some(Value::Array(d)), Some(Value::Array(l))) if named(d) && named(l) => {
            for item in d {
                let name = item_name(item);
                let before = l.iter().find(|i| item_name(i) == name);
                walk(kind, &format!("{path}[{name}]"), Some(item), before, out);
            }
            for item in l.iter().filter(|i| !d.iter().any(|j| item_name(j) == item_name(i))) {
                walk(kind, &format!("{path}[{}]", item_name(item)), None, Some(item), out);
            }
        }
        (Some(d), Some(l)) if d == l => {}
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
            out.push(Change {
                path: path.to_owned(),
                op,
                before: shown(l),
                after: shown(d),
                sensitive,
                forces_replacement: forces_replacement(kind, path),
            });
        }
    }
}

/// Keys of both maps: the desired order, then keys only live has.
fn union<'a>(desired: &'a Map<String, Value>, live: &'a Map<String, Value>) -> Vec<&'a String> {
    desired.keys().chain(live.keys().filter(|k| !desired.contains_key(*k))).collect()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn named(items: &[Value]) -> bool {
    items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

fn item_name(item: &Value) -> &str {
    item.get("name").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_values_are_unchanged() {
        let body = json!({"spec": {"containers": [{"name": "main", "image": "a"}]}});
        assert_eq!(compare(Kind::Workload, Some(&body), Some(&body)), (Action::Unchanged, vec![]));
    }

    #[test]
    fn named_lists_compare_by_name() {
        let live = json!({"spec": {"containers": [{"name": "main", "image": "a", "cpu": "50m"}, {"name": "side", "image": "s"}]}});
        let desired = json!({"spec": {"containers": [{"name": "main", "image": "b", "cpu": "50m"}, {"name": "log", "image": "l"}]}});
        let (action, changes) = compare(Kind::Workload, Some(&desired), Some(&live));
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
        let (action, changes) = compare(
            Kind::Workload,
            Some(&json!({"spec": {"type": "stateful"}})),
            Some(&json!({"spec": {"type": "standard"}})),
        );
        assert_eq!(action, Action::Replace);
        assert!(changes[0].forces_replacement);
    }

    #[test]
    fn secret_payloads_compare_by_hash_and_never_show() {
        let desired = json!({"data": hidden_data(&json!({"payload": "new-password"}))});
        let live = json!({"data": hidden_data(&json!({"payload": "old-password"}))});
        let (action, changes) = compare(Kind::Secret, Some(&desired), Some(&live));
        assert_eq!(action, Action::Update);
        assert!(changes[0].sensitive);
        assert_eq!(changes[0].after, Some(json!(HIDDEN)));
        let shown = serde_json::to_string(&changes).unwrap_or_default();
        assert!(!shown.contains("password") && !shown.contains("sha256"), "{shown}");
        let same = json!({"data": hidden_data(&json!({"payload": "x"}))});
        assert_eq!(compare(Kind::Secret, Some(&same), Some(&same)).0, Action::Unchanged);
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
}
