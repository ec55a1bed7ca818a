//! Container image references as Control Plane reads them. Pure.
//!
//! Where an image comes from decides what a promotion does with it:
//!
//! | Written                                  | Source                       |
//! |------------------------------------------|------------------------------|
//! | `//image/api:1`, `/org/ORG/image/api:1`  | the org's own registry       |
//! | `OWN.registry.cpln.io/api:1`             | the org's own registry       |
//! | `OTHER.registry.cpln.io/api:1`           | another Control Plane org    |
//! | `redis:alpine`, `someuser/app:1.0`       | Docker Hub (`docker.io`)     |
//! | `gcr.io/p/app:1`, `127.0.0.1:5000/app`   | that registry host           |
//!
//! The first path segment is a registry host only when it contains `.` or
//! `:` or is `localhost` (Docker's rule, which Control Plane follows); link
//! forms always name the org's own registry (the seed
//! `000_b8c83c5cfb9d90fc`: links must point into the same org).

use serde_json::Value;

/// Docker Hub, the registry of references written without a host.
pub const DOCKER_HUB: &str = "docker.io";

/// The suffix of every Control Plane org registry host.
pub const CPLN_REGISTRY_SUFFIX: &str = ".registry.cpln.io";

/// Where an image is pulled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// The org's own registry: moved by promotion (copied or pulled).
    Own,
    /// Another Control Plane org's registry, reached through a pull secret.
    OtherOrg { org: &'a str, host: &'a str },
    /// Any other registry (`docker.io` when no host is written): never
    /// copied, never rewritten.
    External { host: &'a str },
}

impl<'a> Source<'a> {
    /// The registry host of an image outside the org (`None` for `Own`).
    pub fn host(&self) -> Option<&'a str> {
        match *self {
            Source::Own => None,
            Source::OtherOrg { host, .. } | Source::External { host } => Some(host),
        }
    }
}

/// The registry an environment owns: its org, and the host its registry
/// is reached at (`ORG.registry.cpln.io`, or a loopback host in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnRegistry<'a> {
    pub org: &'a str,
    pub host: &'a str,
}

/// An image reference, split into what promotion cares about. Every part
/// is a slice of the text as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    pub source: Source<'a>,
    /// The repository as written after the host (`redis`, `someuser/app`,
    /// `team/api`); Docker Hub's implicit `library/` is not added.
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:…`, when pinned.
    pub digest: Option<&'a str>,
}

impl ImageRef<'_> {
    /// `latest`, or no tag and no digest: the image may change under the
    /// same reference.
    pub fn is_mutable(&self) -> bool {
        self.digest.is_none() && self.tag.is_none_or(|t| t == "latest")
    }

    /// Outside the org: another org's registry or an external one.
    pub fn is_foreign(&self) -> bool {
        self.source != Source::Own
    }

    /// Docker Hub with a single path segment (`nginx:1.25`): the form
    /// Control Plane's tag resolver cannot read when the tag has anything
    /// but letters and digits (the seed's "unable to parse image").
    pub fn is_single_segment_docker_hub(&self) -> bool {
        self.source == (Source::External { host: DOCKER_HUB }) && !self.repository.contains('/')
    }
}

/// Classifies a container `image` value. `own` is the environment whose
/// workload runs it; without one, every `*.registry.cpln.io` host counts
/// as another org.
pub fn classify<'a>(text: &'a str, own: Option<OwnRegistry<'_>>) -> ImageRef<'a> {
    let (source, rest) = if let Some(rest) = text.strip_prefix("//image/") {
        (Source::Own, rest)
    } else if let Some(rest) = text.strip_prefix("/org/") {
        (Source::Own, rest.split_once("/image/").map_or(rest, |(_, r)| r))
    } else {
        match text.split_once('/') {
            Some((host, rest)) if is_host(host) => (source_of_host(host, own), rest),
            _ => (Source::External { host: DOCKER_HUB }, text),
        }
    };
    let (rest, digest) = match rest.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (rest, None),
    };
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (rest, None),
    };
    ImageRef { source, repository, tag, digest }
}

/// Docker's rule: a first segment is a host when it has `.` or `:` or is
/// `localhost`.
fn is_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

fn source_of_host<'a>(host: &'a str, own: Option<OwnRegistry<'_>>) -> Source<'a> {
    let cpln_org = host.strip_suffix(CPLN_REGISTRY_SUFFIX);
    match own {
        Some(own) if host == own.host || cpln_org == Some(own.org) => Source::Own,
        _ => match cpln_org {
            Some(org) => Source::OtherOrg { org, host },
            None => Source::External { host },
        },
    }
}

/// The reference with its tag replaced by `digest`, host and repository
/// kept as written (`ghcr.io/o/app:v1` → `ghcr.io/o/app@sha256:…`):
/// `NAME@sha256:HEX`, the pinned form Control Plane accepts.
pub fn pinned(text: &str, digest: &str) -> String {
    let without_digest = text.split_once('@').map_or(text, |(name, _)| name);
    let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let name = match without_digest[slash..].rfind(':') {
        Some(colon) => &without_digest[..slash + colon],
        None => without_digest,
    };
    format!("{name}@{digest}")
}

/// The registry hosts a docker secret holds credentials for (its `data`
/// is the JSON of a docker config, as a string or an object), as written
/// in its `auths`.
pub fn docker_hosts(data: &Value) -> Vec<String> {
    let config: Option<Value> = match data {
        Value::String(text) => serde_json::from_str(text).ok(),
        other => Some(other.clone()),
    };
    let mut hosts: Vec<String> = config
        .as_ref()
        .and_then(|c| c.get("auths"))
        .and_then(Value::as_object)
        .map(|auths| auths.keys().cloned().collect())
        .unwrap_or_default();
    hosts.sort();
    hosts
}

/// An `auths` key as the host it names: scheme and path dropped, and
/// Docker Hub's aliases (`https://index.docker.io/v1/`) as `docker.io`.
fn auths_host(key: &str) -> &str {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    }
}

/// Whether Control Plane pulls `image` with this pull secret (`type` and
/// `data` of a secret). From the seed `000_b8c83c5cfb9d90fc`: only three
/// types work; `docker` matches by registry host in its `auths`, `ecr` by
/// its `repos` list, `gcp` only for images of its own project
/// (`gcr.io/PROJECT/…`, `REGION-docker.pkg.dev/PROJECT/…`).
pub fn pull_secret_serves(secret_type: &str, data: &Value, image: &ImageRef<'_>) -> bool {
    let Some(host) = image.source.host() else { return false };
    let text_field = |name: &str| -> Option<String> {
        let object = match data {
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            other => other.clone(),
        };
        object.get(name).and_then(Value::as_str).map(str::to_owned)
    };
    match secret_type {
        "docker" => docker_hosts(data).iter().any(|key| auths_host(key) == host),
        "ecr" => {
            let wanted = format!("{host}/{}", image.repository);
            let repos = data.get("repos").and_then(Value::as_array);
            repos.into_iter().flatten().filter_map(Value::as_str).any(|repo| {
                let repo = repo.split_once("://").map_or(repo, |(_, rest)| rest);
                wanted == repo || wanted.starts_with(&format!("{repo}/"))
            })
        }
        "gcp" => {
            let google =
                host == "gcr.io" || host.ends_with(".gcr.io") || host.ends_with("-docker.pkg.dev");
            let project = image.repository.split('/').next();
            google && text_field("project_id").is_some_and(|id| project == Some(id.as_str()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: OwnRegistry<'static> = OwnRegistry { org: "acme", host: "acme.registry.cpln.io" };

    fn parts(text: &str) -> (Source<'_>, &str, Option<&str>, Option<&str>) {
        let image = classify(text, Some(OWN));
        (image.source, image.repository, image.tag, image.digest)
    }

    fn hub() -> Source<'static> {
        Source::External { host: DOCKER_HUB }
    }

    #[test]
    fn link_forms_and_the_own_host_are_the_org_registry() {
        assert_eq!(parts("//image/api:1.4.2"), (Source::Own, "api", Some("1.4.2"), None));
        assert_eq!(parts("/org/acme/image/team/api"), (Source::Own, "team/api", None, None));
        assert_eq!(
            parts("acme.registry.cpln.io/api@sha256:ab"),
            (Source::Own, "api", None, Some("sha256:ab"))
        );
        let loopback = OwnRegistry { org: "acme", host: "127.0.0.1:5001" };
        assert_eq!(classify("127.0.0.1:5001/api:2", Some(loopback)).source, Source::Own);
    }

    #[test]
    fn other_orgs_are_their_registry_host() {
        let other = Source::OtherOrg { org: "partner", host: "partner.registry.cpln.io" };
        assert_eq!(parts("partner.registry.cpln.io/api:3"), (other, "api", Some("3"), None));
        // Without an own registry, even `acme` is another org.
        let unknown = classify("acme.registry.cpln.io/api:3", None).source;
        assert_eq!(unknown, Source::OtherOrg { org: "acme", host: "acme.registry.cpln.io" });
    }

    #[test]
    fn no_host_is_docker_hub_with_or_without_a_namespace() {
        assert_eq!(parts("redis:alpine"), (hub(), "redis", Some("alpine"), None));
        assert_eq!(parts("someuser/app:1.0"), (hub(), "someuser/app", Some("1.0"), None));
        assert_eq!(parts("library/nginx:1.25"), (hub(), "library/nginx", Some("1.25"), None));
        assert_eq!(parts("nginx"), (hub(), "nginx", None, None));
        assert!(classify("nginx:1.25", None).is_single_segment_docker_hub());
        assert!(!classify("library/nginx:1.25", None).is_single_segment_docker_hub());
    }

    #[test]
    fn dotted_ported_and_localhost_hosts_are_external_registries() {
        let gcr = Source::External { host: "gcr.io" };
        assert_eq!(parts("gcr.io/proj/app:v1"), (gcr, "proj/app", Some("v1"), None));
        let ghcr = Source::External { host: "ghcr.io" };
        assert_eq!(
            parts("ghcr.io/owner/app@sha256:cd"),
            (ghcr, "owner/app", None, Some("sha256:cd"))
        );
        let port = Source::External { host: "127.0.0.1:5000" };
        assert_eq!(parts("127.0.0.1:5000/api"), (port, "api", None, None));
        let local = Source::External { host: "localhost" };
        assert_eq!(parts("localhost/api:1"), (local, "api", Some("1"), None));
        assert_eq!(Source::External { host: "gcr.io" }.host(), Some("gcr.io"));
        assert_eq!(Source::Own.host(), None);
    }

    #[test]
    fn mutability_follows_tag_and_digest() {
        assert!(classify("nginx:latest", None).is_mutable());
        assert!(classify("ghcr.io/o/a", None).is_mutable());
        assert!(!classify("nginx:1.27", None).is_mutable());
        assert!(!classify("nginx@sha256:ab", None).is_mutable());
        assert!(classify("redis:alpine", None).is_foreign());
        assert!(!classify("//image/api:1", None).is_foreign());
    }

    #[test]
    fn pull_secrets_serve_images_as_the_seed_describes() {
        let image = |text| classify(text, Some(OWN));
        let docker = Value::String(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"x"},"ghcr.io":{"auth":"y"}}}"#
                .into(),
        );
        assert_eq!(docker_hosts(&docker), ["ghcr.io", "https://index.docker.io/v1/"]);
        assert!(pull_secret_serves("docker", &docker, &image("someuser/app:1.0")));
        assert!(pull_secret_serves("docker", &docker, &image("ghcr.io/o/app:1")));
        assert!(!pull_secret_serves("docker", &docker, &image("quay.io/o/app:1")));
        assert!(!pull_secret_serves("opaque", &docker, &image("ghcr.io/o/app:1")));
        assert!(!pull_secret_serves("docker", &docker, &image("//image/api:1")));

        let ecr = serde_json::json!({"repos": ["1.dkr.ecr.us-east-1.amazonaws.com/app"]});
        assert!(pull_secret_serves("ecr", &ecr, &image("1.dkr.ecr.us-east-1.amazonaws.com/app:2")));
        assert!(!pull_secret_serves(
            "ecr",
            &ecr,
            &image("1.dkr.ecr.us-east-1.amazonaws.com/apps:2")
        ));

        let gcp = Value::String(r#"{"type":"service_account","project_id":"proj"}"#.into());
        assert!(pull_secret_serves("gcp", &gcp, &image("gcr.io/proj/app:v1")));
        assert!(pull_secret_serves(
            "gcp",
            &gcp,
            &image("us-west1-docker.pkg.dev/proj/repo/app:v1")
        ));
        assert!(!pull_secret_serves("gcp", &gcp, &image("gcr.io/other/app:v1")));
        assert!(!pull_secret_serves("gcp", &gcp, &image("ghcr.io/proj/app:v1")));
        assert!(docker_hosts(&Value::String("not json".into())).is_empty());
    }

    #[test]
    fn pinning_replaces_the_tag_and_keeps_host_and_repository() {
        assert_eq!(pinned("redis:alpine", "sha256:ab"), "redis@sha256:ab");
        assert_eq!(pinned("ghcr.io/o/app:v1", "sha256:ab"), "ghcr.io/o/app@sha256:ab");
        assert_eq!(pinned("127.0.0.1:5000/app", "sha256:ab"), "127.0.0.1:5000/app@sha256:ab");
        assert_eq!(pinned("gcr.io/p/app@sha256:00", "sha256:ab"), "gcr.io/p/app@sha256:ab");
    }
}
