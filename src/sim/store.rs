//! Resource writes and reads on [`State`]: upsert, create, replace, patch
//! and delete with server-managed fields, and the GVC deletion rules.
//! No I/O: the API layer saves the state after a change.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::state::{Item, ItemKey, Rollout, State};
use crate::normalize::{Scope, normalize};
use crate::patch;

/// Kinds addressed as `/org/ORG/KIND`.
pub(crate) const ORG_KINDS: &[&str] = &[
    "secret",
    "gvc",
    "policy",
    "domain",
    "cloudaccount",
    "serviceaccount",
    "group",
    "ipset",
    "agent",
    "auditctx",
];

/// Kinds addressed as `/org/ORG/gvc/GVC/KIND`.
pub(crate) const GVC_KINDS: &[&str] = &["workload", "identity", "volumeset"];

/// How a write treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// PUT on the collection: create, or deep-merge into the existing item.
    Upsert,
    /// POST on the collection: create, 409 if it exists.
    Create,
    /// PUT on the item: create, or replace the user fields.
    Replace,
    /// PATCH on the item: directives onto the existing item, 404 if absent.
    Patch,
}

/// What a write did.
#[derive(Debug)]
pub(crate) struct Written {
    pub item: Item,
    pub created: bool,
    /// False when the write changed nothing (same version).
    pub changed: bool,
}

impl State {
    pub fn item(&self, key: &ItemKey) -> Option<&Item> {
        self.items.get(&key.id())
    }

    /// Items of `kind` in an org; for GVC-scoped kinds, in one GVC or
    /// (with `gvc: None`) across all of them. Sorted by GVC, then name.
    pub fn list(&self, org: &str, gvc: Option<&str>, kind: &str) -> Vec<&Item> {
        self.items
            .values()
            .filter(|i| i.org == org && i.kind == kind)
            .filter(|i| gvc.is_none() || i.gvc.as_deref() == gvc)
            .collect()
    }

    /// Writes `body` as the item `name` (taken from the body unless given).
    pub fn write(
        &mut self,
        scope: Scope<'_>,
        kind: &str,
        name: Option<&str>,
        body: &Map<String, Value>,
        mode: WriteMode,
        now_ms: u64,
    ) -> Result<Written, ApiError> {
        if let Some(body_kind) = body.get("kind").and_then(Value::as_str)
            && body_kind != kind
        {
            return Err(ApiError::bad_request(format!(
                "kind '{body_kind}' cannot be written as {kind}"
            )));
        }
        let body_name = body.get("name").and_then(Value::as_str);
        let name = match (name, body_name) {
            (Some(path), Some(given)) if path != given => {
                return Err(ApiError::bad_request(format!(
                    "name '{given}' does not match '{path}'; names are immutable"
                )));
            }
            (Some(path), _) => path,
            (None, Some(given)) => given,
            (None, None) => return Err(ApiError::bad_request("the body has no name")),
        };
        check_name(kind, name)?;
        if let Some(gvc) = scope.gvc
            && self.item(&ItemKey::new(scope.org, None, "gvc", gvc)).is_none()
        {
            return Err(ApiError::not_found("gvc", gvc));
        }
        let key = ItemKey::new(scope.org, scope.gvc, kind, name);
        let existing = self.item(&key);
        let mut doc = match (existing, mode) {
            (Some(_), WriteMode::Create) => {
                return Err(ApiError::conflict(format!("{kind} '{name}' already exists"))
                    .with_details(Value::String(key.path())));
            }
            (None, WriteMode::Patch) => return Err(ApiError::not_found(kind, name)),
            // Optimistic locking: `cpln KIND update` sends the `version` it
            // read "for optimistic locking" (the CLI's commands/generic.js,
            // `Update.handle`); a stale one is answered 409 [assumed].
            (Some(item), WriteMode::Patch)
                if body.get("version").is_some_and(|v| v.as_u64() != Some(item.version)) =>
            {
                return Err(ApiError::conflict(format!(
                    "{kind} '{name}' is at version {}, not {}",
                    item.version,
                    body.get("version").unwrap_or(&Value::Null)
                ))
                .with_details(Value::String(key.path())));
            }
            (Some(item), WriteMode::Upsert | WriteMode::Patch) => item.body.clone(),
            _ => Map::new(),
        };
        patch::apply(&mut doc, body)?;
        check_schema(kind, &doc)?;
        normalize(kind, name, scope, &mut doc);
        self.server_fields.fill(kind, &mut doc);
        if let Some(item) = existing {
            check_immutable(item, &doc)?;
            if item.body == doc {
                return Ok(Written { item: item.clone(), created: false, changed: false });
            }
        }
        let item = match existing {
            Some(item) => {
                let mut item = item.clone();
                item.version += 1;
                item.modified_ms = now_ms;
                item.body = doc;
                item
            }
            None => Item {
                org: scope.org.into(),
                gvc: scope.gvc.map(Into::into),
                kind: kind.into(),
                name: name.into(),
                id: super::clock::new_id(),
                version: 1,
                created_ms: now_ms,
                modified_ms: now_ms,
                body: doc,
                rollouts: Vec::new(),
            },
        };
        let mut item = item;
        if kind == "workload" {
            item.rollouts.push(Rollout {
                version: item.version,
                at_ms: now_ms,
                body: item.body.clone(),
            });
            let excess = item.rollouts.len().saturating_sub(5);
            item.rollouts.drain(..excess);
        }
        let created = existing.is_none();
        self.items.insert(key.id(), item.clone());
        Ok(Written { item, created, changed: true })
    }

    /// Deletes an item. A GVC takes its workloads and identities with it,
    /// and is refused (409) while volume sets remain in it.
    pub fn delete(&mut self, key: &ItemKey) -> Result<(), ApiError> {
        if self.item(key).is_none() {
            return Err(ApiError::not_found(&key.kind, &key.name));
        }
        if key.kind == "gvc" {
            let volumesets: Vec<String> = self
                .list(&key.org, Some(&key.name), "volumeset")
                .iter()
                .map(|v| v.name.clone())
                .collect();
            if !volumesets.is_empty() {
                return Err(ApiError::conflict(format!(
                    "gvc '{}' still has volume sets ({}); delete them first",
                    key.name,
                    volumesets.join(", ")
                ))
                .with_details(serde_json::json!({"volumesets": volumesets})));
            }
            self.items
                .retain(|_, i| !(i.org == key.org && i.gvc.as_deref() == Some(key.name.as_str())));
        }
        self.items.remove(&key.id());
        Ok(())
    }
}

/// Resource names: `^[a-z][-a-z0-9]*[a-z0-9]$`, at most 63 characters
/// (domains are FQDNs; workload names at most 49).
fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if kind == "domain" {
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        return if valid {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!("'{name}' is not a valid domain name")))
        };
    }
    let bytes = name.as_bytes();
    let max = if kind == "workload" { 49 } else { 63 };
    let valid = bytes.len() >= 2
        && bytes.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last().is_some_and(|b| *b != b'-');
    if valid && !(kind == "workload" && name.ends_with("-headless")) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("'{name}' is not a valid {kind} name"))
            .with_details(serde_json::json!({"name": name, "pattern": "^[a-z][-a-z0-9]*[a-z0-9]$", "maxLength": max})))
    }
}

/// Refuses (400) an item that breaks Control Plane's field rules: the
/// same rules `ferry validate` runs (`validate::schema`), errors only, on
/// the item as it would be stored (a PUT merged into the existing item, a
/// PATCH's directives applied), so a test can show that what Ferry lets
/// through the API would accept. Every violation is named in `details`.
fn check_schema(kind: &str, doc: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(kind) = crate::manifest::Kind::parse(kind) else { return Ok(()) };
    let errors: Vec<_> = crate::validate::schema::check(kind, &Value::Object(doc.clone()))
        .into_iter()
        .filter(|v| v.severity == crate::validate::schema::Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ");
    let details: Vec<Value> = errors
        .iter()
        .map(|v| serde_json::json!({"field": v.field(), "path": v.path, "message": v.message}))
        .collect();
    Err(ApiError::bad_request(message).with_details(serde_json::json!({"errors": details})))
}

/// A workload's `spec.type` never changes.
fn check_immutable(item: &Item, doc: &Map<String, Value>) -> Result<(), ApiError> {
    if item.kind != "workload" {
        return Ok(());
    }
    let old = item.spec().and_then(|s| s.get("type"));
    let new = doc.get("spec").and_then(|s| s.get("type"));
    if old != new {
        return Err(ApiError::bad_request("spec.type of a workload is immutable"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ORG: Scope<'static> = Scope { org: "acme", gvc: None };
    const APP: Scope<'static> = Scope { org: "acme", gvc: Some("app") };

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn seeded() -> State {
        let mut state = State::default();
        state.write(ORG, "gvc", None, &body(json!({"name": "app"})), WriteMode::Upsert, 1).unwrap();
        state
    }

    #[test]
    fn versions_only_move_on_change() {
        let mut state = seeded();
        let w = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
            "containers": [{"name": "main", "image": "//image/api:1"}]}});
        let first =
            state.write(APP, "workload", None, &body(w.clone()), WriteMode::Upsert, 2).unwrap();
        assert!(first.created);
        let again = state.write(APP, "workload", None, &body(w), WriteMode::Upsert, 3).unwrap();
        assert_eq!((again.created, again.item.version), (false, 1));
        let patched = state
            .write(
                APP,
                "workload",
                Some("api"),
                &body(json!({"spec": {"$patch/containers": [
                {"name": "main", "image": "//image/api:2"}]}})),
                WriteMode::Patch,
                4,
            )
            .unwrap();
        assert_eq!(patched.item.version, 2);
        assert_eq!(patched.item.rollouts.len(), 2);
        let tag = |version: u64| body(json!({"version": version, "tags": {"t": "x"}}));
        let stale = state.write(APP, "workload", Some("api"), &tag(1), WriteMode::Patch, 5);
        assert_eq!(stale.map(|w| w.item.version).map_err(|e| e.status.as_u16()), Err(409));
        let current = state.write(APP, "workload", Some("api"), &tag(2), WriteMode::Patch, 6);
        assert_eq!(current.map(|w| w.item.version).map_err(|e| e.status.as_u16()), Ok(3));
    }

    #[test]
    fn create_conflicts_and_patch_needs_an_item() {
        let mut state = seeded();
        let err = state
            .write(ORG, "gvc", None, &body(json!({"name": "app"})), WriteMode::Create, 2)
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 409);
        let err = state
            .write(ORG, "secret", Some("nope"), &body(json!({})), WriteMode::Patch, 2)
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 404);
        let err = state
            .write(APP, "identity", None, &body(json!({"name": "Bad_Name"})), WriteMode::Upsert, 2)
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
    }

    #[test]
    fn a_body_breaking_the_field_rules_is_refused_and_not_stored() {
        let mut state = seeded();
        let w = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
            "containers": [{"name": "main", "image": "//image/api:1", "cpu": "five",
                "ports": [{"number": 70000, "protocol": "http"}]}]}});
        let err = state.write(APP, "workload", None, &body(w), WriteMode::Upsert, 2).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert_eq!(err.code, "invalid");
        let fields: Vec<&str> = err.details["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, ["spec.containers[0].ports[0].number", "spec.containers[0].cpu"]);
        assert!(state.item(&ItemKey::new("acme", Some("app"), "workload", "api")).is_none());
        // A PATCH is judged on the item it would leave.
        let good = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
            "containers": [{"name": "main", "image": "//image/api:1"}]}});
        state.write(APP, "workload", None, &body(good), WriteMode::Upsert, 3).unwrap();
        let patch = json!({"spec": {"job": {"schedule": "0 3 * * *"}}});
        let err = state
            .write(APP, "workload", Some("api"), &body(patch), WriteMode::Patch, 4)
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 400, "{}", err.message);
    }

    #[test]
    fn gvc_delete_cascades_but_not_past_volumesets() {
        let mut state = seeded();
        state
            .write(APP, "identity", None, &body(json!({"name": "api-id"})), WriteMode::Upsert, 2)
            .unwrap();
        state
            .write(
                APP,
                "volumeset",
                None,
                &body(json!({"name": "data", "spec": {"initialCapacity": 10, "performanceClass": "general-purpose-ssd"}})),
                WriteMode::Upsert,
                2,
            )
            .unwrap();
        let gvc = ItemKey::new("acme", None, "gvc", "app");
        assert_eq!(state.delete(&gvc).unwrap_err().status.as_u16(), 409);
        state.delete(&ItemKey::new("acme", Some("app"), "volumeset", "data")).unwrap();
        state.delete(&gvc).unwrap();
        assert!(state.items.is_empty());
        assert_eq!(state.delete(&gvc).unwrap_err().status.as_u16(), 404);
    }
}
