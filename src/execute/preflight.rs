//! The checks a plan lists, run against the target just before the first
//! write; what fails is a [`Finding`], all of them reported together.

use std::fmt;

use futures::TryFutureExt;
use futures::stream::{self, StreamExt, TryStreamExt};

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

/// Runs `checks` against `env`: `copied` first (the plan's image
/// copies), then its image checks; the other checks at the same time, as
/// they do not depend on the copies. The payloads of secrets the plan
/// writes are taken from `secrets`, others read from the org.
pub(super) async fn run<A: ControlPlane, E: From<ApiError>>(
    client: &A,
    env: &Environment,
    checks: &[Check],
    secrets: &Secrets,
    copied: impl Future<Output = Result<(), E>>,
) -> Result<Vec<Finding>, E> {
    let images = async {
        copied.await?;
        images(client, env, checks).await.map_err(E::from)
    };
    let others = stream::iter(checks)
        .map(|check| other(client, env, check, secrets))
        .buffered(QUEUE)
        .try_concat();
    let (mut findings, others) = futures::try_join!(images, others.map_err(E::from))?;
    findings.extend(others);
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// How many checks read at once.
const QUEUE: usize = 16;

/// The image checks of `checks`: each tag in the org's registry, at the
/// digest the plan names.
async fn images<A: ControlPlane>(
    client: &A,
    env: &Environment,
    checks: &[Check],
) -> Result<Vec<Finding>, ApiError> {
    let images: Vec<(&String, &String, &Option<String>)> = checks
        .iter()
        .filter_map(|c| match c {
            Check::Image { repository, tag, digest } => Some((repository, tag, digest)),
            _ => None,
        })
        .collect();
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
