//! The checks a plan lists, run against the target just before the first
//! write; what fails is a [`Finding`], all of them reported together.

use std::collections::HashSet;
use std::fmt;

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
/// way to the first write); every other check at once, as they do not
/// depend on the copies. The payloads of secrets the plan writes are
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
            image_findings(client, env, of_it.copied().collect()).await.map_err(E::from)
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
