//! What Ferry last wrote into an environment, resource by resource: the
//! fields it set (their names, never their values), so that
//! [`crate::diff::compare`] can tell a field git removed (Ferry set it,
//! git no longer does: a change) from a field the server added (neither
//! git nor Ferry ever set it: never a change), as `kubectl apply` does
//! with its last-applied configuration. Pure (docs/last-applied.md).
//!
//! The record of one environment is one opaque secret in its org
//! ([`secret_name`]), read with the live state and written by the
//! executor after the writes ([`Applied::after`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::manifest::ResourceId;

/// Version of the record's payload.
pub const SCHEMA: &str = "ferry.applied/v1";

/// The tag naming the environment a record belongs to.
pub const APPLIED_OF_TAG: &str = "ferry/applied-of";

/// The largest payload written (bytes of JSON): at about 1 KiB per
/// resource, a few hundred resources. Over it, the resources of the run
/// lose their entries (they fall back to having no record) rather than
/// keep stale ones.
pub const BUDGET: usize = 256 * 1024;

/// The fields of one body that were set: an object's keys (each with the
/// fields set inside it), a named list's items by name (likewise), or a
/// value set as a whole (a scalar, an unnamed list, a secret's payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fields {
    /// Set as a whole: everything inside is owned.
    Value,
    /// These keys (or named items) were set, with what was set in each.
    Object(BTreeMap<String, Fields>),
}

impl Fields {
    /// The fields `body` sets (a body in [`crate::plan::comparable`] form:
    /// a secret's payload is already one mark, so no key of it is
    /// recorded).
    pub fn of(body: &Value) -> Fields {
        match body {
            Value::Object(map) => {
                Fields::Object(map.iter().map(|(k, v)| (k.clone(), Fields::of(v))).collect())
            }
            Value::Array(items) if !items.is_empty() && named(items) => Fields::Object(
                items.iter().map(|i| (item_name(i).to_owned(), Fields::of(i))).collect(),
            ),
            _ => Fields::Value,
        }
    }

    /// What was set inside `key` (a field, or a named item), if it was set
    /// at all: everything inside a value set as a whole.
    pub fn child(&self, key: &str) -> Option<&Fields> {
        match self {
            Fields::Value => Some(self),
            Fields::Object(map) => map.get(key),
        }
    }

    /// Fields set by either: what one of two writes may have set.
    pub fn union(&self, other: &Fields) -> Fields {
        match (self, other) {
            (Fields::Object(a), Fields::Object(b)) => {
                let mut merged = a.clone();
                for (key, fields) in b {
                    let joined = match a.get(key) {
                        Some(existing) => existing.union(fields),
                        None => fields.clone(),
                    };
                    merged.insert(key.clone(), joined);
                }
                Fields::Object(merged)
            }
            _ => Fields::Value,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Fields::Value => json!(1),
            Fields::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    fn from_json(value: &Value) -> Fields {
        match value {
            Value::Object(map) => {
                Fields::Object(map.iter().map(|(k, v)| (k.clone(), Fields::from_json(v))).collect())
            }
            _ => Fields::Value,
        }
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|v| Fields::from_json(&v))
    }
}

/// Whether every item of a list has a string `name` (a list merged by name).
pub fn named(items: &[Value]) -> bool {
    items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

/// An item's `name` (empty when it has none).
pub fn item_name(item: &Value) -> &str {
    item.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// One environment's record: the fields Ferry last wrote, by resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub schema: String,
    pub resources: BTreeMap<ResourceId, Fields>,
}

/// What a run wrote, for [`Applied::after`].
pub struct Run<'a> {
    /// The fields of every resource the plan makes desired.
    pub planned: &'a BTreeMap<ResourceId, Fields>,
    /// Resources the run deleted.
    pub deleted: &'a [ResourceId],
    /// Resources the run wrote (on failure, the ones it got to).
    pub written: &'a [ResourceId],
    pub succeeded: bool,
}

impl Applied {
    /// The fields Ferry last wrote to `id`, if it recorded any.
    pub fn get(&self, id: &ResourceId) -> Option<&Fields> {
        self.resources.get(id)
    }

    /// The record after `run`: on success, each planned resource's fields
    /// as planned and deleted ones gone; on failure, the resources it
    /// wrote may hold either state, so they keep the union of both (a
    /// field git removed is still found; one the server added is not
    /// claimed).
    pub fn after(&self, run: &Run<'_>) -> Applied {
        let mut resources = self.resources.clone();
        if run.succeeded {
            for (id, fields) in run.planned {
                resources.insert(id.clone(), fields.clone());
            }
            for id in run.deleted {
                resources.remove(id);
            }
        } else {
            for id in run.written {
                if let Some(fields) = run.planned.get(id) {
                    let joined = match resources.get(id) {
                        Some(old) => old.union(fields),
                        None => fields.clone(),
                    };
                    resources.insert(id.clone(), joined);
                }
            }
        }
        Applied { schema: SCHEMA.to_owned(), resources }
    }

    /// The record to write after `run`, within [`BUDGET`]: over it, the
    /// record as it was without the entries of the run's resources (they
    /// fall back to having no record, rather than keep stale entries), and
    /// `true`.
    pub fn after_within_budget(&self, run: &Run<'_>) -> (Applied, bool) {
        let after = self.after(run);
        if after.payload().len() <= BUDGET {
            return (after, false);
        }
        let mut resources = self.resources.clone();
        for id in run.planned.keys() {
            resources.remove(id);
        }
        (Applied { schema: SCHEMA.to_owned(), resources }, true)
    }

    /// The payload: compact JSON.
    pub fn payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record as the secret that holds it for `env` (its app's).
    pub fn to_secret(&self, env: &crate::config::Environment) -> Value {
        json!({
            "kind": "secret",
            "name": secret_name(&env.resource_key()),
            "description": format!("Ferry: the fields it last wrote in {} (names only, no values)", env.scope()),
            "type": "opaque",
            "tags": {APPLIED_OF_TAG: env.scope()},
            "data": {"encoding": "plain", "payload": self.payload()},
        })
    }

    /// The record in a revealed secret, or why it is not one.
    pub fn from_secret(secret: &Value) -> Result<Applied, String> {
        let payload = secret
            .pointer("/data/payload")
            .and_then(Value::as_str)
            .ok_or_else(|| "the secret has no payload".to_owned())?;
        let applied: Applied = serde_json::from_str(payload)
            .map_err(|e| format!("the payload is not a record of fields: {e}"))?;
        if applied.schema != SCHEMA {
            return Err(format!("unknown schema `{}`", applied.schema));
        }
        Ok(applied)
    }
}

/// The name of the secret holding the record of an environment, by its
/// [`crate::config::Environment::resource_key`].
pub fn secret_name(key: &str) -> String {
    crate::release::own_resource_name("ferry-applied", key, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Kind;

    fn id(name: &str) -> ResourceId {
        ResourceId::new(Kind::Workload, name)
    }

    #[test]
    fn fields_name_keys_and_named_items_never_values() {
        let body = json!({"spec": {"containers": [{"name": "main", "image": "secret-looking-value",
            "env": [{"name": "A", "value": "x"}], "args": ["a", "b"]}]}, "data": "(value hidden) sha256:ff"});
        let fields = Fields::of(&body);
        let text = serde_json::to_string(&fields).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"data":1,"spec":{"containers":{"main":{"args":1,"env":{"A":{"name":1,"value":1}},"image":1,"name":1}}}}"#
        );
        let back: Fields = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, fields);
        assert_eq!(fields.child("spec").and_then(|s| s.child("nope")), None);
        assert_eq!(Fields::Value.child("anything"), Some(&Fields::Value));
    }

    #[test]
    fn a_failed_run_keeps_both_states_and_a_successful_one_the_new() {
        let old = Fields::of(&json!({"a": 1, "b": 2}));
        let new = Fields::of(&json!({"a": 1, "c": 3}));
        let record = Applied {
            schema: SCHEMA.into(),
            resources: BTreeMap::from([(id("api"), old.clone()), (id("gone"), old.clone())]),
        };
        let planned = BTreeMap::from([(id("api"), new.clone())]);
        let run = |succeeded| Run { planned: &planned, deleted: &[], written: &[], succeeded };
        let done = record.after(&Run { deleted: &[id("gone")], ..run(true) });
        assert_eq!(done.resources, BTreeMap::from([(id("api"), new.clone())]));
        let written = [id("api")];
        let failed = record.after(&Run { written: &written, ..run(false) });
        assert_eq!(failed.get(&id("api")), Some(&Fields::of(&json!({"a": 1, "b": 2, "c": 3}))));
        assert_eq!(failed.get(&id("gone")), Some(&old));
        let untouched = record.after(&run(false));
        assert_eq!(untouched.resources, record.resources);
    }

    #[test]
    fn over_the_budget_the_runs_resources_lose_their_entries() {
        let wide: Value = (0..BUDGET / 8)
            .map(|i| (format!("field{i}"), json!(1)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let record = Applied {
            schema: SCHEMA.into(),
            resources: BTreeMap::from([(id("api"), Fields::Value), (id("other"), Fields::Value)]),
        };
        let planned = BTreeMap::from([(id("api"), Fields::of(&wide))]);
        let run = Run { planned: &planned, deleted: &[], written: &[], succeeded: true };
        let (after, over) = record.after_within_budget(&run);
        assert!(over);
        assert_eq!(after.resources, BTreeMap::from([(id("other"), Fields::Value)]));
        let small = BTreeMap::from([(id("api"), Fields::of(&json!({"x": 1})))]);
        let (after, over) = record.after_within_budget(&Run { planned: &small, ..run });
        assert!(!over);
        assert_eq!(after.get(&id("api")), small.get(&id("api")));
    }

    #[test]
    fn the_record_round_trips_through_its_secret() {
        let record = Applied {
            schema: SCHEMA.into(),
            resources: BTreeMap::from([(id("api"), Fields::of(&json!({"spec": {"x": 1}})))]),
        };
        let secret = record.to_secret(&crate::api::fake::environment());
        assert_eq!(secret["name"], "ferry-applied-prod");
        assert_eq!(Applied::from_secret(&secret), Ok(record));
        assert!(Applied::from_secret(&json!({"data": {"payload": "{}"}})).is_err());
        assert!(Applied::from_secret(&json!({})).is_err());
    }
}
