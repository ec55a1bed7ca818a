//! `POST …/-query`: terms on name, tags, properties and links, matched
//! `all`, `any` or `none` (reference §4.7). Pure: filters rendered items.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::error::ApiError;

/// A parsed query spec.
#[derive(Debug)]
pub(crate) struct Query {
    pub raw: Value,
    matching: Match,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    All,
    Any,
    None,
}

#[derive(Debug)]
struct Term {
    op: String,
    subject: Subject,
    value: Option<Value>,
}

#[derive(Debug)]
enum Subject {
    Property(String),
    Tag(String),
    Rel(String),
}

impl Query {
    /// Reads a query body; an empty body matches everything.
    pub fn parse(body: &Value, kind: &str) -> Result<Self, ApiError> {
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let matching = match spec.get("match").and_then(Value::as_str).unwrap_or("all") {
            "all" => Match::All,
            "any" => Match::Any,
            "none" => Match::None,
            other => return Err(ApiError::bad_request(format!("unknown match '{other}'"))),
        };
        let mut terms = Vec::new();
        for term in spec.get("terms").and_then(Value::as_array).into_iter().flatten() {
            let text = |key: &str| term.get(key).and_then(Value::as_str).map(str::to_owned);
            let subject = match (text("property"), text("tag"), text("rel")) {
                (Some(p), None, None) => Subject::Property(p),
                (None, Some(t), None) => Subject::Tag(t),
                (None, None, Some(r)) => Subject::Rel(r),
                _ => {
                    return Err(ApiError::bad_request(
                        "each term needs exactly one of property, tag or rel",
                    ));
                }
            };
            let op = text("op").unwrap_or_else(|| "=".into());
            if !["=", "!=", ">", ">=", "<", "<=", "~", "exists", "!exists"].contains(&op.as_str()) {
                return Err(ApiError::bad_request(format!("unknown op '{op}'")));
            }
            terms.push(Term { op, subject, value: term.get("value").cloned() });
        }
        let raw = json!({
            "kind": body.get("kind").cloned().unwrap_or_else(|| Value::String(kind.into())),
            "spec": {"match": spec.get("match").cloned().unwrap_or_else(|| json!("all")), "terms": spec.get("terms").cloned().unwrap_or_else(|| json!([]))},
        });
        Ok(Self { raw, matching, terms })
    }

    pub fn matches(&self, item: &Value) -> bool {
        let mut hits = self.terms.iter().map(|t| t.matches(item));
        match self.matching {
            Match::All => hits.all(|h| h),
            Match::Any => self.terms.is_empty() || hits.any(|h| h),
            Match::None => !hits.any(|h| h),
        }
    }
}

impl Term {
    fn matches(&self, item: &Value) -> bool {
        let found = match &self.subject {
            Subject::Property(path) => path.split('.').try_fold(item, |v, key| v.get(key)).cloned(),
            Subject::Tag(tag) => item.get("tags").and_then(|t| t.get(tag)).cloned(),
            Subject::Rel(rel) => item
                .get("links")
                .and_then(Value::as_array)
                .and_then(|links| {
                    links.iter().find(|l| l.get("rel").and_then(Value::as_str) == Some(rel))
                })
                .and_then(|l| l.get("href"))
                .cloned(),
        };
        match (self.op.as_str(), found, &self.value) {
            ("exists", found, _) => found.is_some_and(|v| !v.is_null()),
            ("!exists", found, _) => found.is_none_or(|v| v.is_null()),
            ("!=", found, Some(want)) => {
                found.is_none_or(|v| compare(&v, want, &self.subject) != Some(Ordering::Equal))
            }
            (_, None, _) | (_, _, None) => false,
            ("~", Some(v), Some(want)) => text(&v).contains(&text(want)),
            (op, Some(v), Some(want)) => {
                let order = compare(&v, want, &self.subject);
                match op {
                    "=" => order == Some(Ordering::Equal),
                    ">" => order == Some(Ordering::Greater),
                    ">=" => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
                    "<" => order == Some(Ordering::Less),
                    "<=" => matches!(order, Some(Ordering::Less | Ordering::Equal)),
                    _ => false,
                }
            }
        }
    }
}

/// Numbers compare as numbers, everything else as text (so a tag `true`
/// matches `"true"`); a `rel` term matches a link by its last segment too.
fn compare(found: &Value, want: &Value, subject: &Subject) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (found.as_f64(), want.as_f64()) {
        return a.partial_cmp(&b);
    }
    let (found, want) = (text(found), text(want));
    if matches!(subject, Subject::Rel(_)) && found.rsplit('/').next() == Some(want.as_str()) {
        return Some(Ordering::Equal);
    }
    Some(found.cmp(&want))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(spec: Value) -> Query {
        Query::parse(&json!({"spec": spec}), "workload").unwrap()
    }

    #[test]
    fn matches_terms_all_any_none() {
        let item = json!({"name": "api", "tags": {"team": "pay", "on": true}, "spec": {"type": "standard"},
            "links": [{"rel": "gvc", "href": "/org/acme/gvc/app"}]});
        assert!(query(json!({"terms": [{"property": "name", "value": "api"}, {"tag": "on", "value": "true"}]})).matches(&item));
        assert!(!query(json!({"terms": [{"property": "name", "value": "api"}, {"tag": "team", "value": "x"}]})).matches(&item));
        assert!(query(json!({"match": "any", "terms": [{"property": "name", "value": "x"}, {"property": "spec.type", "value": "standard"}]})).matches(&item));
        assert!(
            query(json!({"match": "none", "terms": [{"property": "name", "value": "web"}]}))
                .matches(&item)
        );
        assert!(
            query(
                json!({"terms": [{"rel": "gvc", "value": "app"}, {"op": "exists", "tag": "team"}]})
            )
            .matches(&item)
        );
        assert!(
            query(json!({"terms": [{"op": "~", "property": "name", "value": "p"}]})).matches(&item)
        );
    }

    #[test]
    fn rejects_malformed_terms() {
        assert!(Query::parse(&json!({"spec": {"terms": [{"value": 1}]}}), "x").is_err());
        assert!(Query::parse(&json!({"spec": {"match": "most"}}), "x").is_err());
    }
}
