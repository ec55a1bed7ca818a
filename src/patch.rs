//! The PATCH directive language (reference §4.2), applied to a JSON object.
//!
//! Plain keys deep-merge objects and replace anything else; `null` deletes
//! the key. Directives: `$drop: [keys]`, `$replace/F`, `$patch/F` (merge
//! array elements by `name`, append unknown names), `$append/F`,
//! `$drop/F` (remove elements by name or by value) and `$retain/F` (keep
//! only those). The same engine serves PUT upserts, whose bodies simply
//! carry no directives.

use serde_json::{Map, Value};

/// Why a patch could not be applied: the directive and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError(pub String);

/// Applies `patch` to `target` in place.
pub fn apply(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    for (key, value) in patch {
        if key == "$drop" {
            for name in string_list(key, value)? {
                target.remove(name);
            }
        } else if let Some(field) = key.strip_prefix("$replace/") {
            target.insert(field.to_owned(), value.clone());
        } else if let Some(field) = key.strip_prefix("$patch/") {
            merge_by_name(array_field(target, field, key)?, elements(key, value)?)?;
        } else if let Some(field) = key.strip_prefix("$append/") {
            array_field(target, field, key)?.extend(elements(key, value)?.iter().cloned());
        } else if let Some(field) = key.strip_prefix("$drop/") {
            let listed = elements(key, value)?;
            array_field(target, field, key)?.retain(|e| !listed.iter().any(|l| same_element(e, l)));
        } else if let Some(field) = key.strip_prefix("$retain/") {
            let listed = elements(key, value)?;
            array_field(target, field, key)?.retain(|e| listed.iter().any(|l| same_element(e, l)));
        } else if key.starts_with('$') {
            return Err(PatchError(format!("unknown directive '{key}'")));
        } else {
            set_field(target, key, value)?;
        }
    }
    Ok(())
}

fn set_field(target: &mut Map<String, Value>, key: &str, value: &Value) -> Result<(), PatchError> {
    match value {
        Value::Null => {
            target.remove(key);
        }
        Value::Object(inner) => {
            let slot = target.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(existing) = slot {
                apply(existing, inner)?;
            }
        }
        other => {
            target.insert(key.to_owned(), other.clone());
        }
    }
    Ok(())
}

/// `$patch/`: elements with a known `name` are patched, others appended.
fn merge_by_name(existing: &mut Vec<Value>, patches: &[Value]) -> Result<(), PatchError> {
    for patch in patches {
        let found = element_name(patch)
            .and_then(|name| existing.iter_mut().find(|e| element_name(e) == Some(name)));
        match (found, patch) {
            (Some(Value::Object(element)), Value::Object(fields)) => apply(element, fields)?,
            _ => {
                let mut fresh = Map::new();
                match patch {
                    Value::Object(fields) => {
                        apply(&mut fresh, fields)?;
                        existing.push(Value::Object(fresh));
                    }
                    other => existing.push(other.clone()),
                }
            }
        }
    }
    Ok(())
}

fn element_name(value: &Value) -> Option<&str> {
    value.get("name").and_then(Value::as_str)
}

/// Elements match by name when they have one (a listed string names an
/// element), by value otherwise.
fn same_element(element: &Value, listed: &Value) -> bool {
    match (element_name(element), listed) {
        (Some(name), Value::String(s)) => name == s,
        (Some(name), other) if other.is_object() => element_name(other) == Some(name),
        _ => element == listed,
    }
}

fn array_field<'a>(
    target: &'a mut Map<String, Value>,
    field: &str,
    directive: &str,
) -> Result<&'a mut Vec<Value>, PatchError> {
    let slot = target.entry(field.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| PatchError(format!("'{directive}' targets a field that is not an array")))
}

fn elements<'a>(directive: &str, value: &'a Value) -> Result<&'a [Value], PatchError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| PatchError(format!("'{directive}' needs an array")))
}

fn string_list<'a>(directive: &str, value: &'a Value) -> Result<Vec<&'a str>, PatchError> {
    elements(directive, value)?
        .iter()
        .map(|v| v.as_str().ok_or_else(|| PatchError(format!("'{directive}' lists field names"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(target: Value, patch: Value) -> Value {
        let (Value::Object(mut target), Value::Object(patch)) = (target, patch) else {
            panic!("objects expected");
        };
        apply(&mut target, &patch).unwrap();
        Value::Object(target)
    }

    #[test]
    fn plain_fields_deep_merge_and_null_deletes() {
        let out = patched(
            json!({"tags": {"a": "1", "b": "2"}, "spec": {"x": 1, "y": [1, 2]}}),
            json!({"tags": {"a": null, "c": 3}, "spec": {"y": [3]}}),
        );
        assert_eq!(out, json!({"tags": {"b": "2", "c": 3}, "spec": {"x": 1, "y": [3]}}));
    }

    #[test]
    fn replace_swaps_the_whole_field() {
        let out = patched(json!({"tags": {"a": 1}, "x": 1}), json!({"$replace/tags": {"b": 2}}));
        assert_eq!(out, json!({"tags": {"b": 2}, "x": 1}));
    }

    #[test]
    fn drop_removes_keys() {
        let out =
            patched(json!({"aws": {}, "gcp": {}, "name": "x"}), json!({"$drop": ["aws", "gcp"]}));
        assert_eq!(out, json!({"name": "x"}));
    }

    #[test]
    fn patch_merges_array_elements_by_name() {
        let out = patched(
            json!({"spec": {"containers": [
                {"name": "main", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "s:1"}]}}),
            json!({"spec": {"$patch/containers": [
                {"name": "main", "image": "a:2", "$patch/env": [{"name": "B", "value": "2"}]},
                {"name": "new", "image": "n:1"}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "main", "image": "a:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "side", "image": "s:1"},
                {"name": "new", "image": "n:1"}]}})
        );
    }

    #[test]
    fn append_drop_and_retain_work_on_arrays() {
        let out = patched(json!({"l": ["a", "b"]}), json!({"$append/l": ["c"]}));
        assert_eq!(out, json!({"l": ["a", "b", "c"]}));
        let out = patched(json!({"l": ["a", "b", "c"]}), json!({"$drop/l": ["b"]}));
        assert_eq!(out, json!({"l": ["a", "c"]}));
        let out =
            patched(json!({"env": [{"name": "A"}, {"name": "B"}]}), json!({"$drop/env": ["A"]}));
        assert_eq!(out, json!({"env": [{"name": "B"}]}));
        let out = patched(json!({"l": ["a", "b", "c"]}), json!({"$retain/l": ["a", "c"]}));
        assert_eq!(out, json!({"l": ["a", "c"]}));
        let out = patched(json!({}), json!({"$append/l": [1]}));
        assert_eq!(out, json!({"l": [1]}));
    }

    #[test]
    fn bad_directives_are_errors() {
        let mut target = Map::new();
        let patch = json!({"$bogus": 1});
        assert!(apply(&mut target, patch.as_object().unwrap()).is_err());
        let mut target = json!({"x": 1}).as_object().unwrap().clone();
        let patch = json!({"$append/x": [1]});
        assert!(apply(&mut target, patch.as_object().unwrap()).is_err());
        let patch = json!({"$drop": "x"});
        assert!(apply(&mut target, patch.as_object().unwrap()).is_err());
    }
}
