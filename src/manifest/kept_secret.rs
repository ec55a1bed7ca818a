//! Secret values kept out of git: a value of a secret's `data` written as
//! [`KEEP_LIVE`] stands for the value the environment's live secret holds.
//! `ferry import` writes it instead of every value it reads, so that an
//! imported secret names its type and keys but never its payload; `plan`
//! and `promote` put the live value back before comparing and writing
//! ([`fill`]), so that such a secret plans as unchanged and a write of it
//! keeps what the environment has. Pure.

use serde_json::Value;

/// The placeholder: "keep the value this environment's secret holds".
pub const KEEP_LIVE: &str = "ferry:keep-live";

/// Keys of a secret's `data` that name how a value is written, not the
/// value: imported as they are.
pub const NOT_SECRET: &[&str] = &["encoding"];

/// Whether `data` (a secret's) holds a placeholder anywhere.
pub fn holds(data: &Value) -> bool {
    match data {
        Value::String(text) => text == KEEP_LIVE,
        Value::Array(items) => items.iter().any(holds),
        Value::Object(map) => map.values().any(holds),
        _ => false,
    }
}

/// `data` with every value replaced by the placeholder: a string (docker,
/// gcp and azure-sdk secrets) as a whole, a mapping key by key, except the
/// keys of [`NOT_SECRET`].
pub fn placeholders(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let kept = if NOT_SECRET.contains(&key.as_str()) {
                        value.clone()
                    } else {
                        Value::String(KEEP_LIVE.to_owned())
                    };
                    (key.clone(), kept)
                })
                .collect(),
        ),
        Value::Null => Value::Null,
        _ => Value::String(KEEP_LIVE.to_owned()),
    }
}

/// Replaces each placeholder in `desired` with the value at the same place
/// in `live` (a secret's `data`, as revealed). The places `live` has no
/// value for are returned (`data`, `data.password`), and left as they are.
pub fn fill(desired: &mut Value, live: Option<&Value>) -> Vec<String> {
    let mut missing = Vec::new();
    fill_at(desired, live, "data", &mut missing);
    missing
}

fn fill_at(desired: &mut Value, live: Option<&Value>, at: &str, missing: &mut Vec<String>) {
    match desired {
        Value::String(text) if text == KEEP_LIVE => match live {
            Some(value) if !value.is_null() => *desired = value.clone(),
            _ => missing.push(at.to_owned()),
        },
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let live = live.and_then(|l| l.get(key));
                fill_at(value, live, &format!("{at}.{key}"), missing);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter_mut().enumerate() {
                let live = live.and_then(|l| l.get(index));
                fill_at(value, live, &format!("{at}[{index}]"), missing);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_keep_keys_and_encoding_only() {
        let data = json!({"payload": "hunter2", "encoding": "base64"});
        assert_eq!(placeholders(&data), json!({"payload": KEEP_LIVE, "encoding": "base64"}));
        assert_eq!(placeholders(&json!("{\"auths\":{}}")), json!(KEEP_LIVE));
        assert!(holds(&placeholders(&data)) && !holds(&data));
    }

    #[test]
    fn fill_puts_live_values_back_and_names_what_live_lacks() {
        let live = json!({"username": "u", "password": "p", "encoding": "plain"});
        let mut desired = placeholders(&live);
        assert!(fill(&mut desired, Some(&live)).is_empty());
        assert_eq!(desired, live);
        let mut whole = json!(KEEP_LIVE);
        assert!(fill(&mut whole, Some(&json!("{\"auths\":{}}"))).is_empty());
        assert_eq!(whole, json!("{\"auths\":{}}"));
        let mut more = json!({"username": KEEP_LIVE, "token": KEEP_LIVE});
        assert_eq!(fill(&mut more, Some(&live)), ["data.token"]);
        assert_eq!(fill(&mut json!(KEEP_LIVE), None), ["data"]);
    }
}
