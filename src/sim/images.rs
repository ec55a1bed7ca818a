//! Image references in workload specs, and `image` resources derived from
//! what was pushed to an org's registry.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::clock::rfc3339;
use super::state::{RegistryIndex, TagEntry};
use crate::manifest::image::{OwnRegistry, Source, classify};

/// Where a container image comes from, for the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageRef {
    /// A simulated org registry; `host` is how the reference named it
    /// (`None` for the link forms `//image/…` and `/org/ORG/image/…`).
    Sim { org: String, repo: String, reference: String, host: Option<String> },
    /// An external registry (Docker Hub, ghcr.io, …): pullable unless the
    /// simulator's config maps `host` to a registry it can read.
    External { host: String, repo: String, reference: String },
}

/// Classifies `image` with Ferry's one classification
/// ([`crate::manifest::image`]), then places it: the org's own registry
/// and `ORG.registry.cpln.io` in a simulated org; a loopback
/// `127.0.0.1:PORT` that is a simulated org's registry in that org;
/// anything else external.
pub(crate) fn parse_ref(image: &str, own_org: &str, hosts: &BTreeMap<String, String>) -> ImageRef {
    let own_host = hosts.get(own_org).map_or("", String::as_str);
    let parsed = classify(image, Some(OwnRegistry { org: own_org, host: own_host }));
    let reference = parsed.digest.or(parsed.tag).unwrap_or("latest").to_owned();
    let repo = parsed.repository.to_owned();
    let sim = |org: &str, host: Option<&str>| ImageRef::Sim {
        org: org.to_owned(),
        repo: repo.clone(),
        reference: reference.clone(),
        host: host.map(Into::into),
    };
    let written_host = image.split_once('/').map(|(host, _)| host).filter(|h| !h.is_empty());
    match parsed.source {
        Source::Own => sim(own_org, written_host.filter(|_| !image.starts_with('/'))),
        Source::OtherOrg { org, host } => sim(org, Some(host)),
        Source::External { host } => {
            let local = host.replacen("localhost:", "127.0.0.1:", 1);
            match hosts.iter().find(|(_, h)| **h == local) {
                Some((org, _)) => sim(org, Some(host)),
                None => ImageRef::External { host: host.to_owned(), repo, reference },
            }
        }
    }
}

/// `repo:tag`, `repo@sha256:…` or `repo` (meaning `:latest`).
pub(crate) fn split_reference(rest: &str) -> (String, String) {
    if let Some((repo, digest)) = rest.split_once('@') {
        return (repo.into(), digest.into());
    }
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (rest[..slash + colon].into(), rest[slash + colon + 1..].into()),
        None => (rest.into(), "latest".into()),
    }
}

/// The manifest digest a tag or digest reference resolves to.
pub(crate) fn resolve(index: &RegistryIndex, repo: &str, reference: &str) -> Option<String> {
    let repo = index.repos.get(repo)?;
    if reference.starts_with("sha256:") {
        return repo.manifests.contains_key(reference).then(|| reference.to_owned());
    }
    repo.tags.get(reference).map(|t| t.digest.clone())
}

/// The `image` resource for one pushed tag.
pub(crate) fn render(org: &str, repo: &str, tag: &str, entry: &TagEntry, manifest: Value) -> Value {
    let name = format!("{repo}:{tag}");
    json!({
        "id": entry.id,
        "kind": "image",
        "name": name,
        "version": entry.version,
        "description": name,
        "tags": {},
        "created": rfc3339(entry.created_ms),
        "lastModified": rfc3339(entry.modified_ms),
        "links": [
            {"rel": "self", "href": format!("/org/{org}/image/{name}")},
            {"rel": "org", "href": format!("/org/{org}")},
        ],
        "repository": repo,
        "tag": tag,
        "digest": entry.digest,
        "manifest": manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> BTreeMap<String, String> {
        BTreeMap::from([("dev".to_owned(), "127.0.0.1:5001".to_owned())])
    }

    fn sim(org: &str, repo: &str, reference: &str, host: Option<&str>) -> ImageRef {
        ImageRef::Sim {
            org: org.into(),
            repo: repo.into(),
            reference: reference.into(),
            host: host.map(Into::into),
        }
    }

    #[test]
    fn reads_every_reference_form() {
        let h = hosts();
        assert_eq!(parse_ref("//image/api:1.4.2", "prod", &h), sim("prod", "api", "1.4.2", None));
        assert_eq!(
            parse_ref("/org/prod/image/team/api", "prod", &h),
            sim("prod", "team/api", "latest", None)
        );
        assert_eq!(
            parse_ref("dev.registry.cpln.io/api@sha256:ab", "prod", &h),
            sim("dev", "api", "sha256:ab", Some("dev.registry.cpln.io"))
        );
        assert_eq!(
            parse_ref("localhost:5001/a/b:2", "prod", &h),
            sim("dev", "a/b", "2", Some("localhost:5001"))
        );
        let external = |host: &str, repo: &str, reference: &str| ImageRef::External {
            host: host.into(),
            repo: repo.into(),
            reference: reference.into(),
        };
        assert_eq!(parse_ref("nginx:1.27", "prod", &h), external("docker.io", "nginx", "1.27"));
        assert_eq!(
            parse_ref("someuser/app", "prod", &h),
            external("docker.io", "someuser/app", "latest")
        );
        assert_eq!(parse_ref("ghcr.io/o/a:v1", "prod", &h), external("ghcr.io", "o/a", "v1"));
        assert_eq!(split_reference("host:5000/a"), ("host:5000/a".into(), "latest".into()));
    }
}
