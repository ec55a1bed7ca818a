//! Reads what an environment runs: the live state of the resources a plan
//! is about, the resources Ferry manages there (for deletes), the images
//! another environment runs (for `--from`), and whether images exist in
//! an org's registry. Requests run concurrently, bounded by the client.

use std::collections::HashMap;

use futures::FutureExt;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, Client, ControlPlane, paths};
use crate::applied::Applied;
use crate::config::Environment;
use crate::manifest::image::{self, Source};
use crate::manifest::{Kind, ResourceId};
use crate::plan::{self, ImageChange, State};
use crate::render::{ExternalImage, ImageMap, PromotedImage, SourceImages};

/// Futures queued at once; the client's semaphore bounds what is in flight.
const QUEUE: usize = 256;

/// Live state as read.
#[derive(Debug, Default)]
pub struct Observation {
    /// Raw live bodies of the resources that exist.
    pub raw: HashMap<ResourceId, Value>,
    /// The same, in comparable form with their versions.
    pub live: HashMap<ResourceId, State>,
    /// Resources tagged as managed for the environment.
    pub managed: Vec<State>,
    /// Kinds the manifests do not use whose managed resources could not
    /// be queried (403, 404, 405): none of them is deleted by this plan.
    pub unqueried: Vec<Kind>,
    /// What Ferry last wrote there, by resource ([`crate::applied`]).
    pub applied: Applied,
}

/// Reads the live state of `ids` (secrets with their payloads, so that they
/// can be compared by hash) and every resource Ferry manages in `env`. A
/// refused managed-resource query is skipped, with one warning for all
/// such kinds, for a kind none of `ids` has; for a kind they have it is
/// an error naming the permission the token lacks.
pub async fn observe(
    client: &Client,
    env: &Environment,
    ids: &[ResourceId],
) -> Result<Observation, ApiError> {
    // The resources and the managed-resource queries in one round.
    let fetched = stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let body = fetch(client, env, &id).await?;
            Ok::<_, ApiError>((id, body))
        })
        .buffer_unordered(QUEUE)
        .try_collect::<Vec<(ResourceId, Option<Value>)>>();
    let managed = stream::iter(Kind::ALL)
        .map(|kind| managed_of_kind(client, env, kind))
        .buffer_unordered(QUEUE)
        .try_collect::<Vec<Managed>>();
    let (fetched, managed, applied) =
        futures::try_join!(fetched, managed, applied(client, env).map(Ok::<_, ApiError>))?;
    let mut observation =
        Observation { applied: applied.unwrap_or_default(), ..Observation::default() };
    for found in managed {
        match found {
            Managed::Found(states) => observation.managed.extend(states),
            Managed::Refused { kind, path, status } => {
                if ids.iter().any(|id| id.kind == kind) {
                    return Err(refused(env, kind, path, status));
                }
                observation.unqueried.push(kind);
            }
        }
    }
    if !observation.unqueried.is_empty() {
        observation.unqueried.sort();
        let kinds: Vec<&str> = observation.unqueried.iter().map(|k| k.as_str()).collect();
        tracing::warn!(
            "cannot query which {} resources Ferry manages in {} (the token may not, or the API has no such query); the manifests have none, so the plan goes on, but none of them is deleted",
            kinds.join(", "),
            env.name,
        );
    }
    for (id, body) in fetched {
        if let Some(body) = body {
            observation.live.insert(id.clone(), state(env, &id, &body));
            observation.raw.insert(id, body);
        }
    }
    Ok(observation)
}

/// The error for a refused managed-resource query of a kind the manifests
/// use: which permission the token lacks (every kind has `view`, "read-only
/// access"; docs.controlplane.com/reference/policy), or that the API does
/// not answer the query.
fn refused(env: &Environment, kind: Kind, path: String, status: u16) -> ApiError {
    let help = if status == 403 {
        format!(
            "the token lacks the `view` permission on {kind} in org {org}: bind it with a policy (`targetKind: {kind}`, `target: all`, `permissions: [view]`), or add the token's service account to the org's `viewers` group; Ferry reads which {kind} resources it manages to plan their deletes",
            org = env.org
        )
    } else {
        format!(
            "the API does not answer this query; Ferry cannot tell which {kind} resources it manages in {}, so it does not plan (docs/control-plane-api.md)",
            env.name
        )
    };
    ApiError::ManagedQuery { kind: kind.to_string(), org: env.org.clone(), path, status, help }
}

/// The record of what Ferry last wrote in `env` ([`crate::applied`]):
/// empty when there is none yet; `None`, with a warning, when it cannot be
/// read (the token may not reveal it, or it is not a record). Without it,
/// no field is known to be Ferry's: fields git does not set are left as
/// they are (docs/last-applied.md).
pub async fn applied<A: ControlPlane>(client: &A, env: &Environment) -> Option<Applied> {
    let name = crate::applied::secret_name(&env.resource_key());
    let path = format!("{}/-reveal", paths::item(&env.org, &env.gvc, Kind::Secret, &name));
    let why = match client.get_opt(&path).await {
        Ok(None) => return Some(Applied::default()),
        Ok(Some(secret)) => match Applied::from_secret(&secret) {
            Ok(applied) => return Some(applied),
            Err(why) => why,
        },
        Err(error) => error.to_string(),
    };
    tracing::warn!(
        "cannot read {name}, the record of what Ferry last wrote in {} ({why}); fields git does not set are left as they are",
        env.name
    );
    None
}

/// A live body in the form plans compare, with its version.
pub fn state(env: &Environment, id: &ResourceId, body: &Value) -> State {
    State::live(env, id, body)
}

/// One resource; secrets through `-reveal` (falling back to the plain GET
/// when the token may not reveal).
pub async fn fetch<A: ControlPlane>(
    client: &A,
    env: &Environment,
    id: &ResourceId,
) -> Result<Option<Value>, ApiError> {
    let path = paths::item(&env.org, &env.gvc, id.kind, &id.name);
    if id.kind == Kind::Secret {
        match client.get_opt(&format!("{path}/-reveal")).await {
            Err(error) if error.status() == Some(403) => {
                tracing::warn!("cannot reveal {id}; its payload is compared as unknown");
            }
            other => return other,
        }
    }
    client.get_opt(&path).await
}

/// What the managed-resource query of one kind gave.
enum Managed {
    Found(Vec<State>),
    /// 403, 404 or 405: the token may not, or the API does not, answer it.
    Refused {
        kind: Kind,
        path: String,
        status: u16,
    },
}

/// Resources of one kind tagged as managed for `env`: the org-level
/// query, with a `rel: gvc` term for GVC-scoped kinds (as `cpln` queries
/// workloads: dist/src/commands/workload.js `findRunnerWorkload`).
async fn managed_of_kind(
    client: &Client,
    env: &Environment,
    kind: Kind,
) -> Result<Managed, ApiError> {
    let path = paths::query(&env.org, kind);
    let items = match client.query(&path, &managed_query(env, kind)).await {
        Ok(items) => items,
        Err(error) => match error.status() {
            Some(status @ 403..=405) => {
                tracing::debug!("{error}");
                return Ok(Managed::Refused { kind, path, status });
            }
            _ => return Err(error),
        },
    };
    Ok(Managed::Found(
        items
            .iter()
            .filter(|item| !kind.is_gvc_scoped() || in_gvc(item, &env.gvc))
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?;
                let id = ResourceId::new(kind, name);
                Some(state(env, &id, item))
            })
            .collect(),
    ))
}

/// The query body for `kind`'s resources tagged as managed for `env`.
fn managed_query(env: &Environment, kind: Kind) -> Value {
    let mut terms = vec![json!({"op": "=", "tag": plan::MANAGED_TAG, "value": env.scope()})];
    if kind.is_gvc_scoped() {
        terms.push(json!({"op": "=", "rel": "gvc", "value": env.gvc}));
    }
    json!({"kind": kind.as_str(), "spec": {"match": "all", "terms": terms}})
}

/// Whether a queried item of a GVC-scoped kind is in `gvc`, by its `gvc`
/// field or its `rel: gvc` link; an item that says neither is taken to be
/// (the query's `rel: gvc` term chose it). One of another GVC is never
/// taken for this GVC's, should a server ignore the term.
fn in_gvc(item: &Value, gvc: &str) -> bool {
    let field = item.get("gvc").and_then(Value::as_str);
    let link = item
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("gvc"))
        .and_then(|l| l.get("href"))
        .and_then(Value::as_str)
        .and_then(|href| href.rsplit('/').next());
    match field.or(link) {
        Some(found) => found == gvc,
        None => true,
    }
}

/// The images `source`'s live workloads run, by workload and container:
/// those of its own registry with digests (from the image resources when
/// the reference has none), and external ones with the digest their
/// registry gives for them now (unknown, with a warning, when it cannot
/// be asked). Another org's images are neither: they are not moved.
pub async fn running_images(
    client: &Client,
    source: &Environment,
    workloads: &[String],
    pull_from: Option<&str>,
) -> Result<SourceImages, ApiError> {
    let bodies: Vec<(String, Option<Value>)> = stream::iter(workloads.iter().cloned())
        .map(|name| async move {
            let path = paths::item(&source.org, &source.gvc, Kind::Workload, &name);
            Ok::<_, ApiError>((name, client.get_opt(&path).await?))
        })
        .buffer_unordered(QUEUE)
        .try_collect()
        .await?;
    // (workload, container, image) of the images in the source's registry.
    let mut running: Vec<(String, String, String)> = Vec::new();
    let mut external: Vec<(String, String, String)> = Vec::new();
    for (workload, body) in &bodies {
        let Some(body) = body else { continue };
        for (container, image) in plan::container_images(body) {
            let entry = (workload.clone(), container.to_owned(), image.to_owned());
            match image::classify(image, Some(source.own_registry())).source {
                Source::Own => running.push(entry),
                Source::External { .. } => external.push(entry),
                Source::OtherOrg { .. } => {}
            }
        }
    }
    // Each distinct image is resolved once, all of them concurrently.
    let mut distinct: Vec<String> = running.iter().map(|(_, _, image)| image.clone()).collect();
    distinct.sort();
    distinct.dedup();
    let resolved: HashMap<String, (Option<String>, Option<String>)> = stream::iter(distinct)
        .map(|image| async move {
            let parsed = image::classify(&image, Some(source.own_registry()));
            let (tag, digest) = match (parsed.tag, parsed.digest) {
                (Some(tag), Some(digest)) => (Some(tag.to_owned()), Some(digest.to_owned())),
                (None, Some(digest)) => (
                    tag_of(client, &source.org, parsed.repository, digest).await?,
                    Some(digest.to_owned()),
                ),
                (tag, None) => (
                    tag.map(str::to_owned),
                    image_digest(client, &source.org, parsed.repository, tag).await?,
                ),
            };
            Ok::<_, ApiError>((image.clone(), (tag, digest)))
        })
        .buffer_unordered(QUEUE)
        .try_collect()
        .await?;
    let mut images = ImageMap::new();
    for (workload, container, image) in running {
        let (tag, digest) = resolved.get(&image).cloned().unwrap_or_default();
        images.insert(
            (workload, container),
            PromotedImage {
                repository: image::classify(&image, None).repository.to_owned(),
                tag,
                digest,
                registry: pull_from.map(str::to_owned),
            },
        );
    }
    let digests = external_digests(external.iter().map(|(_, _, image)| image.clone())).await;
    let external = external
        .into_iter()
        .map(|(workload, container, image)| {
            let digest = digests.get(&image).cloned().flatten();
            ((workload, container), ExternalImage { image, digest })
        })
        .collect();
    Ok(SourceImages { promoted: images, external })
}

/// The digest each external image reference points at, asked of its
/// registry (anonymously, or with Docker config credentials for its host),
/// all at once within one short bound; those that cannot be resolved are
/// `None`, named in one warning line (`crate::external_digest`).
pub async fn external_digests(
    images: impl IntoIterator<Item = String>,
) -> HashMap<String, Option<String>> {
    crate::external_digest::resolve(images).await
}

/// A tag of `repository` that points at `digest` in an org's registry
/// (a workload pinned by digest keeps its tag this way; `latest` only when
/// no other tag has the digest).
async fn tag_of(
    client: &Client,
    org: &str,
    repository: &str,
    digest: &str,
) -> Result<Option<String>, ApiError> {
    let query = json!({
        "kind": "image",
        "spec": {"match": "all", "terms": [{"op": "=", "property": "repository", "value": repository}]},
    });
    let images = client.query(&format!("/org/{org}/image/-query"), &query).await?;
    let mut tags: Vec<String> = images
        .iter()
        .filter(|i| i.get("digest").and_then(Value::as_str) == Some(digest))
        .filter_map(|i| i.get("tag").and_then(Value::as_str).map(str::to_owned))
        .collect();
    tags.sort_by_key(|t| (t == "latest", t.clone()));
    Ok(tags.into_iter().next())
}

/// The digest of `repository:tag` in an org's registry, from its image
/// resource; `None` when the image does not exist there.
async fn image_digest<A: ControlPlane>(
    client: &A,
    org: &str,
    repository: &str,
    tag: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let name = format!("{repository}:{}", tag.unwrap_or("latest"));
    let image = client.get_opt(&format!("/org/{org}/image/{name}")).await?;
    Ok(image.and_then(|i| i.get("digest").and_then(Value::as_str).map(str::to_owned)))
}

/// The digests of `repository:tag` images in an org's registry, looked up
/// concurrently; `None` for those that do not exist there.
pub async fn registry_digests<A: ControlPlane>(
    client: &A,
    org: &str,
    wanted: impl IntoIterator<Item = (String, String)>,
) -> Result<HashMap<(String, String), Option<String>>, ApiError> {
    let mut wanted: Vec<(String, String)> = wanted.into_iter().collect();
    wanted.sort();
    wanted.dedup();
    stream::iter(wanted)
        .map(|(repository, tag)| async move {
            let digest = image_digest(client, org, &repository, Some(&tag)).await?;
            Ok::<_, ApiError>(((repository, tag), digest))
        })
        .buffer_unordered(QUEUE)
        .try_collect()
        .await
}

pub use crate::plan::landing;

/// Fills `copy` for images that land in `env`'s own registry: `true` when
/// the registry lacks the tag (or has it at another digest); and, for
/// images of external registries, their host and the digest the source
/// ran (they are never copied). Tags already looked up (`known`, by
/// [`landings`]) are not asked again.
pub async fn check_copies(
    client: &Client,
    env: &Environment,
    changes: &mut [ImageChange],
    images: &SourceImages,
    known: &HashMap<(String, String), Option<String>>,
) -> Result<(), ApiError> {
    annotate(env, changes, images);
    let missing: Vec<(String, String)> = changes
        .iter()
        .filter(|c| lands_here(env, c))
        .map(landing)
        .filter(|key| !known.contains_key(key))
        .collect();
    let mut found = registry_digests(client, &env.org, missing).await?;
    found.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
    for change in changes.iter_mut() {
        change.copy = Some(
            lands_here(env, change) && {
                match (found.get(&landing(change)).cloned().flatten(), &change.digest) {
                    (None, _) => true,
                    (Some(found), Some(wanted)) => &found != wanted,
                    (Some(_), None) => false,
                }
            },
        );
    }
    Ok(())
}

/// The tags of `env`'s registry that `rendered`'s images would land on,
/// whatever runs there now: [`check_copies`] looks at a subset of them, so
/// they can be read while the live state is, rather than after it.
pub fn landings(
    env: &Environment,
    rendered: &[crate::render::Rendered],
    images: &SourceImages,
) -> Vec<(String, String)> {
    let mut changes =
        plan::image_changes(rendered.iter().map(|r| (&r.id, &r.body)), &HashMap::new());
    annotate(env, &mut changes, images);
    changes.iter().filter(|c| lands_here(env, c)).map(landing).collect()
}

/// The external host and digest of external images, the promoted tag of
/// the others.
fn annotate(env: &Environment, changes: &mut [ImageChange], images: &SourceImages) {
    for change in changes.iter_mut() {
        if let Source::External { host } =
            image::classify(&change.after, Some(env.own_registry())).source
        {
            change.external = Some(host.to_owned());
            let key = (change.workload.clone(), change.container.clone());
            if change.digest.is_none() {
                change.digest = images.external.get(&key).and_then(|e| e.digest.clone());
            }
        }
        if change.tag.is_none() {
            change.tag = images
                .promoted
                .get(&(change.workload.clone(), change.container.clone()))
                .and_then(|p| p.tag.clone());
        }
    }
}

/// Whether `change`'s image is copied into `env`'s own registry.
fn lands_here(env: &Environment, change: &ImageChange) -> bool {
    env.images == crate::config::ImageStrategy::Copy
        && change.after.starts_with(&format!("/org/{}/image/", env.org))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        crate::api::fake::environment()
    }

    #[test]
    fn gvc_scoped_kinds_are_queried_at_the_org_narrowed_to_the_gvc() {
        let env = env();
        let terms = |kind| managed_query(&env, kind)["spec"]["terms"].clone();
        assert_eq!(
            terms(Kind::Workload),
            json!([{"op": "=", "tag": plan::MANAGED_TAG, "value": "prod"}, {"op": "=", "rel": "gvc", "value": "app"}])
        );
        assert_eq!(
            terms(Kind::Secret),
            json!([{"op": "=", "tag": plan::MANAGED_TAG, "value": "prod"}])
        );
        assert_eq!(paths::query(&env.org, Kind::VolumeSet), "/org/acme/volumeset/-query");
    }

    #[test]
    fn an_item_of_another_gvc_is_never_taken_for_this_ones() {
        let link =
            |gvc: &str| json!({"links": [{"rel": "gvc", "href": format!("/org/o/gvc/{gvc}")}]});
        assert!(in_gvc(&link("app"), "app"));
        assert!(!in_gvc(&link("web"), "app"));
        assert!(!in_gvc(&json!({"gvc": "web"}), "app"));
        assert!(in_gvc(&json!({"name": "api"}), "app"), "the query's term chose it");
    }

    #[test]
    fn a_refusal_names_the_permission_and_a_missing_query_says_so() {
        let help = |status| match refused(&env(), Kind::Workload, "/p".into(), status) {
            ApiError::ManagedQuery { help, .. } => help,
            other => panic!("{other}"),
        };
        assert!(help(403).contains("lacks the `view` permission on workload"), "{}", help(403));
        assert!(help(405).contains("does not answer this query"), "{}", help(405));
    }
}
