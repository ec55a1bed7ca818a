//! The checks a plan lists, run against the target just before the first
//! write; what fails is a [`Finding`], all of them reported together. An
//! image the run has just copied is awaited in the target's registry
//! within [`COPIED_IMAGE_BOUND`], since a registry may index a push a
//! while after it is done (the simulator's does so at once).

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use futures::TryFutureExt;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};

use crate::api::{ApiError, ControlPlane, paths};
use crate::config::Environment;
use crate::manifest::{Kind, ResourceId};
use crate::plan::{Check, Secrets};

/// One reason the target is not ready for a release.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// An own-registry image is not in the target's registry.
    ImageMissing { repository: String, tag: String, org: String },
    /// It is, at another digest.
    ImageDigest { repository: String, tag: String, org: String, found: String, wanted: String },
    /// The `pull-secret` strategy's secret is missing or not linked.
    PullSecretUnlinked { secret: String },
    /// It holds no credentials for the source's registry.
    PullSecretHosts { secret: String, registry: String, source: String, hosts: Vec<String> },
    /// A location the GVC is placed in does not exist.
    LocationMissing { name: String, org: String },
    /// An image the source pulls with a pull secret has none on the
    /// target's GVC ([`crate::pull_secrets`]).
    NoPullSecret { image: String, source: String, used: String, target: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ImageMissing { repository, tag, org } => {
                write!(f, "image {repository}:{tag} is not in {org}'s registry")
            }
            Finding::ImageDigest { repository, tag, org, found, wanted } => {
                write!(f, "image {repository}:{tag} in {org} is {found}, not {wanted}")
            }
            Finding::PullSecretUnlinked { secret } => {
                write!(f, "pull secret `{secret}` must exist and be in the GVC's pullSecretLinks")
            }
            Finding::PullSecretHosts { secret, registry, source, hosts } => write!(
                f,
                "pull secret `{secret}` has no credentials for {registry}, the registry of {source} (it has: {})",
                if hosts.is_empty() { "none".to_owned() } else { hosts.join(", ") }
            ),
            Finding::LocationMissing { name, org } => {
                write!(f, "location {name} does not exist in {org}")
            }
            Finding::NoPullSecret { image, source, used, target } => write!(
                f,
                "image {image} needs a pull secret: {source}'s GVC pulls it with {used}, but no pull secret on {target}'s GVC serves it"
            ),
        }
    }
}

/// The findings, one sentence, `; `-separated.
pub fn listed(findings: &[Finding]) -> String {
    findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Runs `checks` against `env`. The image checks of the tags the plan
/// copies (`copying`) each run as soon as `copied` says its copy landed
/// (not after the last copy: only the slowest copy's check is then on the
/// way to the first write), and look again until the image is there at
/// its digest or [`COPIED_IMAGE_BOUND`] has passed; every other check at
/// once, as they do not depend on the copies. The payloads of secrets the plan writes are
/// taken from `secrets`, others read from the org.
pub(super) async fn run<A: ControlPlane, E: From<ApiError>>(
    client: &A,
    env: &Environment,
    checks: &[Check],
    secrets: &Secrets,
    copying: &HashSet<(String, String)>,
    copied: impl Stream<Item = Result<(String, String), E>>,
) -> Result<Vec<Finding>, E> {
    let images: Vec<Image<'_>> = checks
        .iter()
        .filter_map(|c| match c {
            Check::Image { repository, tag, digest } => Some((repository, tag, digest)),
            _ => None,
        })
        .collect();
    let (after, now): (Vec<Image<'_>>, Vec<Image<'_>>) =
        images.into_iter().partition(|(r, t, _)| copying.contains(&((*r).clone(), (*t).clone())));
    let after = &after;
    let landed = copied
        .map_ok(|landed| async move {
            let of_it = after.iter().filter(|(r, t, _)| (*r, *t) == (&landed.0, &landed.1));
            copied_image_findings(client, env, of_it.copied().collect()).await.map_err(E::from)
        })
        .try_buffer_unordered(QUEUE)
        .try_concat();
    let now = image_findings(client, env, now).map_err(E::from);
    let others = stream::iter(checks)
        .map(|check| other(client, env, check, secrets))
        .buffered(QUEUE)
        .try_concat();
    let (mut findings, landed, others) = futures::try_join!(now, landed, others.map_err(E::from))?;
    findings.extend(landed);
    findings.extend(others);
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// How many checks read at once.
const QUEUE: usize = 16;

/// An image check: repository, tag, and the digest wanted.
type Image<'a> = (&'a String, &'a String, &'a Option<String>);

/// How long an image just copied is waited for in the target's registry
/// (`GET /org/ORG/image/R:T`) before it counts as missing. How soon the
/// real registry's image resources show a push is not documented
/// [assumed: seconds]; a minute leaves it room and still fails a copy
/// that never landed before any write.
pub(super) const COPIED_IMAGE_BOUND: Duration = Duration::from_secs(60);

/// The first look again at a copied image not yet there; doubled after
/// each look that still does not find it, up to [`COPIED_IMAGE_POLL_MAX`].
const COPIED_IMAGE_RECHECK: Duration = Duration::from_millis(250);
const COPIED_IMAGE_POLL_MAX: Duration = Duration::from_secs(5);

/// [`image_findings`] of images just copied, looked at again (with
/// backoff) while any is missing or at another digest, until
/// [`COPIED_IMAGE_BOUND`]: then what is still wrong.
async fn copied_image_findings<A: ControlPlane>(
    client: &A,
    env: &Environment,
    images: Vec<Image<'_>>,
) -> Result<Vec<Finding>, ApiError> {
    let deadline = tokio::time::Instant::now() + COPIED_IMAGE_BOUND;
    let mut wait = COPIED_IMAGE_RECHECK;
    loop {
        let findings = image_findings(client, env, images.clone()).await?;
        if findings.is_empty() || tokio::time::Instant::now() + wait > deadline {
            return Ok(findings);
        }
        tracing::debug!("{}; looking again in {wait:?}", listed(&findings));
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(COPIED_IMAGE_POLL_MAX);
    }
}

/// Image checks: each tag in the org's registry, at the digest the plan
/// names.
async fn image_findings<A: ControlPlane>(
    client: &A,
    env: &Environment,
    images: Vec<Image<'_>>,
) -> Result<Vec<Finding>, ApiError> {
    let found = crate::observe::registry_digests(
        client,
        &env.org,
        images.iter().map(|(r, t, _)| ((*r).clone(), (*t).clone())),
    )
    .await?;
    let mut findings = Vec::new();
    for (repository, tag, wanted) in images {
        let (repository, tag, org) = (repository.clone(), tag.clone(), env.org.clone());
        match (found.get(&(repository.clone(), tag.clone())).cloned().flatten(), wanted) {
            (None, _) => findings.push(Finding::ImageMissing { repository, tag, org }),
            (Some(found), Some(wanted)) if &found != wanted => {
                let wanted = wanted.clone();
                findings.push(Finding::ImageDigest { repository, tag, org, found, wanted });
            }
            _ => {}
        }
    }
    Ok(findings)
}

/// One check other than an image's.
async fn other<A: ControlPlane>(
    client: &A,
    env: &Environment,
    check: &Check,
    secrets: &Secrets,
) -> Result<Vec<Finding>, ApiError> {
    let mut findings = Vec::new();
    {
        match check {
            Check::Image { .. } => {}
            Check::PullSecret { secret, linked, registry, source } => {
                let id = ResourceId::new(Kind::Secret, secret.clone());
                let data = match secrets.get(&id) {
                    Some(data) => Some(data.clone()),
                    None => {
                        let path = paths::item(&env.org, &env.gvc, Kind::Secret, secret);
                        client
                            .get_opt(&format!("{path}/-reveal"))
                            .await?
                            .and_then(|s| s.get("data").cloned())
                    }
                };
                match (linked, data) {
                    (false, _) | (_, None) => {
                        findings.push(Finding::PullSecretUnlinked { secret: secret.clone() });
                    }
                    (true, Some(data)) => {
                        let hosts = crate::manifest::image::docker_hosts(&data);
                        if let (Some(registry), Some(source)) = (registry, source)
                            && !hosts.contains(registry)
                        {
                            findings.push(Finding::PullSecretHosts {
                                secret: secret.clone(),
                                registry: registry.clone(),
                                source: source.clone(),
                                hosts,
                            });
                        }
                    }
                }
            }
            Check::Location { name } => {
                if client.get_opt(&format!("/org/{}/location/{name}", env.org)).await?.is_none() {
                    findings.push(Finding::LocationMissing {
                        name: name.clone(),
                        org: env.org.clone(),
                    });
                }
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::time::Instant;

    use super::*;
    use crate::api::fake::{Fake, Verb, environment};

    const IMAGE: &str = "/org/acme/image/api:1.4.2";

    /// The findings of a run whose one check is the image api:1.4.2 (at
    /// `sha256:aa`), copied at once; and how long the run took.
    async fn after_copying(fake: &Fake) -> (Vec<Finding>, Duration) {
        let checks = [Check::Image {
            repository: "api".into(),
            tag: "1.4.2".into(),
            digest: Some("sha256:aa".into()),
        }];
        let copying: HashSet<(String, String)> = [("api".into(), "1.4.2".into())].into();
        let copied = stream::iter([Ok::<_, ApiError>(("api".to_owned(), "1.4.2".to_owned()))]);
        let started = Instant::now();
        let found = run(fake, &environment(), &checks, &Secrets::default(), &copying, copied).await;
        (found.unwrap_or_else(|e| panic!("{e}")), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_copied_image_the_registry_shows_late_is_waited_for() {
        let fake = Fake::new();
        let indexer = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            indexer.seed(IMAGE, json!({"name": "api:1.4.2", "digest": "sha256:aa"}));
        });
        let (findings, took) = after_copying(&fake).await;
        assert!(findings.is_empty(), "{findings:?}");
        // Looked at after 0, 0.25, 0.75, 1.75 and 3.75 s.
        assert_eq!(took, Duration::from_millis(3_750));
        assert_eq!(fake.count(Verb::Get, IMAGE), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copied_image_that_never_shows_is_missing_once_the_bound_has_passed() {
        let fake = Fake::new();
        let (findings, took) = after_copying(&fake).await;
        assert_eq!(
            findings,
            [Finding::ImageMissing {
                repository: "api".into(),
                tag: "1.4.2".into(),
                org: "acme".into()
            }]
        );
        assert!(
            took <= COPIED_IMAGE_BOUND && took + COPIED_IMAGE_POLL_MAX >= COPIED_IMAGE_BOUND,
            "{took:?}"
        );
        // With backoff: a look every 5 s at most once it has grown.
        assert!(fake.count(Verb::Get, IMAGE) <= 18, "{}", fake.count(Verb::Get, IMAGE));
    }
}
