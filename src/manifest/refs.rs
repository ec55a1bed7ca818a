//! The references one resource makes to others, found in the fields that
//! carry links (reference §4.6). Validation checks that they resolve; the
//! graph turns them into ordering edges.

use super::kind::Kind;
use super::link;
use super::yaml::Node;
use super::{Resource, ResourceId};

/// One link from a resource to another resource that manifests can define.
#[derive(Debug, Clone)]
pub struct Reference<'a> {
    pub target: ResourceId,
    /// The GVC named in the link (`//gvc/app/identity/x`), if any.
    pub gvc: Option<&'a str>,
    /// The value holding the link.
    pub node: &'a Node,
    /// Where it is, such as `spec.identityLink`.
    pub field: String,
}

/// Every reference `resource` makes to a kind Ferry manages. Links to other
/// kinds (locations, images, users) are not references here.
pub fn references(resource: &Resource) -> Vec<Reference<'_>> {
    let mut found = Finder { found: Vec::new() };
    let node = &resource.node;
    match resource.kind {
        Kind::Workload => workload(node, &mut found),
        Kind::Gvc => {
            found.links(node.path(&["spec", "pullSecretLinks"]), "spec.pullSecretLinks", None);
            found.link_or_name(
                node.path(&["spec", "loadBalancer", "ipSet"]),
                "spec.loadBalancer.ipSet",
                Kind::IpSet,
            );
            found.link(
                node.path(&["spec", "keda", "identityLink"]),
                "spec.keda.identityLink",
                Some(Kind::Identity),
            );
            found.links(
                node.path(&["spec", "keda", "secrets"]),
                "spec.keda.secrets",
                Some(Kind::Secret),
            );
            found.link(
                node.path(&["spec", "tracing", "lightstep", "credentials"]),
                "spec.tracing.lightstep.credentials",
                Some(Kind::Secret),
            );
        }
        Kind::Identity => {
            for provider in ["aws", "gcp", "azure", "ngs"] {
                found.link(
                    node.path(&[provider, "cloudAccountLink"]),
                    &format!("{provider}.cloudAccountLink"),
                    Some(Kind::CloudAccount),
                );
            }
        }
        Kind::Policy => {
            let target_kind = node.get("targetKind").and_then(Node::as_str).and_then(Kind::parse);
            if target_kind.is_some() {
                found.links(node.get("targetLinks"), "targetLinks", target_kind);
            }
            for binding in items(node.get("bindings")) {
                found.links(binding.get("principalLinks"), "bindings[].principalLinks", None);
            }
        }
        Kind::Domain => {
            found.link(node.path(&["spec", "gvcLink"]), "spec.gvcLink", Some(Kind::Gvc));
            found.link(
                node.path(&["spec", "workloadLink"]),
                "spec.workloadLink",
                Some(Kind::Workload),
            );
            for port in items(node.path(&["spec", "ports"])) {
                for route in items(port.get("routes")) {
                    found.link(
                        route.get("workloadLink"),
                        "spec.ports[].routes[].workloadLink",
                        Some(Kind::Workload),
                    );
                }
                for certificate in ["clientCertificate", "serverCertificate"] {
                    found.link(
                        port.path(&["tls", certificate, "secretLink"]),
                        &format!("spec.ports[].tls.{certificate}.secretLink"),
                        Some(Kind::Secret),
                    );
                }
            }
        }
        Kind::CloudAccount => {
            found.link(node.path(&["data", "secretLink"]), "data.secretLink", Some(Kind::Secret));
        }
        Kind::Group => found.links(node.get("memberLinks"), "memberLinks", None),
        Kind::Agent
        | Kind::AuditCtx
        | Kind::IpSet
        | Kind::Secret
        | Kind::ServiceAccount
        | Kind::VolumeSet => {}
    }
    found.found
}

/// What a policy lets identities do to secrets: the identities it grants
/// `reveal` (or `manage`, which implies it) and the secrets that covers.
#[derive(Debug, Clone)]
pub struct RevealGrant {
    pub identities: Vec<ResourceId>,
    /// The secrets named in `targetLinks`; `None` for every secret (`target:
    /// all`, or a `targetQuery`, which Ferry does not evaluate).
    pub secrets: Option<Vec<ResourceId>>,
}

impl RevealGrant {
    pub fn covers(&self, secret: &ResourceId) -> bool {
        self.secrets.as_ref().is_none_or(|named| named.contains(secret))
    }
}

/// The `reveal` grant of a `targetKind: secret` policy, if it binds any
/// identity to `reveal` or `manage`.
pub fn reveal_grant(policy: &Resource) -> Option<RevealGrant> {
    let node = &policy.node;
    if policy.kind != Kind::Policy
        || node.get("targetKind").and_then(Node::as_str) != Some("secret")
    {
        return None;
    }
    let mut identities = Finder { found: Vec::new() };
    for binding in items(node.get("bindings")) {
        let grants_reveal = items(binding.get("permissions"))
            .iter()
            .any(|p| matches!(p.as_str(), Some("reveal" | "manage")));
        if grants_reveal {
            identities.links(binding.get("principalLinks"), "", Some(Kind::Identity));
        }
    }
    let identities: Vec<ResourceId> = identities.found.into_iter().map(|r| r.target).collect();
    if identities.is_empty() {
        return None;
    }
    let every_secret = node.get("target").and_then(Node::as_str) == Some("all")
        || node.get("targetQuery").is_some();
    let secrets = (!every_secret).then(|| {
        let mut named = Finder { found: Vec::new() };
        named.links(node.get("targetLinks"), "", Some(Kind::Secret));
        named.found.into_iter().map(|r| r.target).collect()
    });
    Some(RevealGrant { identities, secrets })
}

fn workload<'a>(node: &'a Node, found: &mut Finder<'a>) {
    found.link(node.path(&["spec", "identityLink"]), "spec.identityLink", Some(Kind::Identity));
    for container in items(node.path(&["spec", "containers"])) {
        for env in items(container.get("env")) {
            // Plain values are not links; only secret references count.
            if let Some(value) =
                env.get("value").filter(|v| v.as_str().and_then(link::parse).is_some())
            {
                found.link(Some(value), "spec.containers[].env[].value", Some(Kind::Secret));
            }
        }
        for volume in items(container.get("volumes")) {
            found.link(volume.get("uri"), "spec.containers[].volumes[].uri", None);
        }
    }
    found.link_or_name(
        node.path(&["spec", "loadBalancer", "direct", "ipSet"]),
        "spec.loadBalancer.direct.ipSet",
        Kind::IpSet,
    );
}

fn items(node: Option<&Node>) -> &[Node] {
    node.and_then(Node::items).unwrap_or_default()
}

struct Finder<'a> {
    found: Vec<Reference<'a>>,
}

impl<'a> Finder<'a> {
    /// Records `node` if it is a link to a managed kind (`expected`, when
    /// given, is the only kind the field may name).
    fn link(&mut self, node: Option<&'a Node>, field: &str, expected: Option<Kind>) {
        let Some(node) = node else { return };
        let Some(parsed) = node.as_str().and_then(link::parse) else { return };
        let Some(kind) = Kind::parse(parsed.kind) else { return };
        if expected.is_some_and(|e| e != kind) {
            return;
        }
        self.found.push(Reference {
            target: ResourceId::new(kind, parsed.name),
            gvc: parsed.gvc,
            node,
            field: field.to_owned(),
        });
    }

    fn links(&mut self, node: Option<&'a Node>, field: &str, expected: Option<Kind>) {
        for item in items(node) {
            self.link(Some(item), field, expected);
        }
    }

    /// Fields such as `ipSet` accept a link or a bare name.
    fn link_or_name(&mut self, node: Option<&'a Node>, field: &str, kind: Kind) {
        let Some(node) = node else { return };
        match node.as_str() {
            Some(text) if link::parse(text).is_some() => self.link(Some(node), field, Some(kind)),
            Some(name) if !name.is_empty() => self.found.push(Reference {
                target: ResourceId::new(kind, name),
                gvc: None,
                node,
                field: field.to_owned(),
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::manifest::load_documents;

    fn refs_of(text: &str) -> Vec<String> {
        let (resources, _) = load_documents(&[SourceFile::new("m.yaml", text)]);
        resources.iter().flat_map(references).map(|r| format!("{} {}", r.field, r.target)).collect()
    }

    #[test]
    fn finds_workload_references() {
        let refs = refs_of(
            "kind: workload\nname: api\nspec:\n  identityLink: //gvc/app/identity/api-id\n  containers:\n    - name: main\n      env:\n        - {name: A, value: plain}\n        - {name: B, value: cpln://secret/db.url}\n      volumes:\n        - {uri: cpln://volumeset/data, path: /data}\n        - {uri: s3://bucket, path: /s3}\n",
        );
        assert_eq!(
            refs,
            [
                "spec.identityLink identity/api-id",
                "spec.containers[].env[].value secret/db",
                "spec.containers[].volumes[].uri volumeset/data",
            ]
        );
    }

    #[test]
    fn policy_targets_follow_target_kind() {
        let refs = refs_of(
            "kind: policy\nname: p\ntargetKind: secret\ntargetLinks: [//secret/db]\nbindings:\n  - permissions: [reveal]\n    principalLinks: [//gvc/app/identity/api-id, //user/a@b.c]\n",
        );
        assert_eq!(refs, ["targetLinks secret/db", "bindings[].principalLinks identity/api-id"]);
    }

    fn grant_of(text: &str) -> Option<RevealGrant> {
        let (resources, _) = load_documents(&[SourceFile::new("m.yaml", text)]);
        resources.first().and_then(reveal_grant)
    }

    #[test]
    fn reveal_grants_name_identities_and_the_secrets_they_cover() {
        let grant = grant_of(
            "kind: policy\nname: p\ntargetKind: secret\ntargetLinks: [//secret/db]\nbindings:\n  - {permissions: [view], principalLinks: [//gvc/app/identity/viewer]}\n  - {permissions: [reveal], principalLinks: [//gvc/app/identity/api-id, //user/a@b.c]}\n",
        );
        let grant = grant.unwrap_or_else(|| panic!("a reveal grant"));
        assert_eq!(grant.identities, [ResourceId::new(Kind::Identity, "api-id")]);
        assert!(grant.covers(&ResourceId::new(Kind::Secret, "db")));
        assert!(!grant.covers(&ResourceId::new(Kind::Secret, "other")));

        let all = grant_of(
            "kind: policy\nname: p\ntargetKind: secret\ntarget: all\nbindings: [{permissions: [manage], principalLinks: [//identity/x]}]\n",
        );
        assert!(all.is_some_and(|g| g.covers(&ResourceId::new(Kind::Secret, "any"))));
        for no_grant in [
            "kind: policy\nname: p\ntargetKind: secret\nbindings: [{permissions: [view], principalLinks: [//identity/x]}]\n",
            "kind: policy\nname: p\ntargetKind: workload\nbindings: [{permissions: [reveal], principalLinks: [//identity/x]}]\n",
        ] {
            assert!(grant_of(no_grant).is_none(), "{no_grant}");
        }
    }
}
