//! API paths of resources (reference §2). Pure.

use crate::manifest::Kind;

/// `/org/ORG/KIND` or `/org/ORG/gvc/GVC/KIND`: where lists are read and
/// upserts are PUT.
pub fn collection(org: &str, gvc: &str, kind: Kind) -> String {
    if kind.is_gvc_scoped() {
        format!("/org/{}/gvc/{}/{kind}", encode(org), encode(gvc))
    } else {
        format!("/org/{}/{kind}", encode(org))
    }
}

/// The path of one resource.
pub fn item(org: &str, gvc: &str, kind: Kind, name: &str) -> String {
    if kind == Kind::Gvc {
        return format!("/org/{}/gvc/{}", encode(org), encode(name));
    }
    format!("{}/{}", collection(org, gvc, kind), encode(name))
}

/// `/org/ORG/KIND/-query`: where resources of any kind are queried. Queries
/// are org-level for GVC-scoped kinds too (narrowed by a `rel: gvc` term):
/// there is no `/org/ORG/gvc/GVC/KIND/-query` (docs/control-plane-api.md).
pub fn query(org: &str, kind: Kind) -> String {
    format!("/org/{}/{kind}/-query", encode(org))
}

/// The per-location deployments of a workload.
pub fn deployments(org: &str, gvc: &str, workload: &str) -> String {
    format!("{}/deployment", item(org, gvc, Kind::Workload, workload))
}

/// Percent-encodes a path segment (names are plain, but never trust input).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_decide_the_path() {
        assert_eq!(collection("acme", "app", Kind::Secret), "/org/acme/secret");
        assert_eq!(collection("acme", "app", Kind::Workload), "/org/acme/gvc/app/workload");
        assert_eq!(item("acme", "app", Kind::Gvc, "app"), "/org/acme/gvc/app");
        assert_eq!(
            item("acme", "app", Kind::Identity, "api-id"),
            "/org/acme/gvc/app/identity/api-id"
        );
        assert_eq!(deployments("acme", "app", "api"), "/org/acme/gvc/app/workload/api/deployment");
        assert_eq!(query("acme", Kind::Workload), "/org/acme/workload/-query");
        assert_eq!(item("acme", "app", Kind::Domain, "a b/c"), "/org/acme/domain/a%20b%2Fc");
    }
}
