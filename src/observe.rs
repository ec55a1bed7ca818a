//! Reads what an environment runs: the live state of the resources a plan
//! is about, the resources Ferry manages there (for deletes), the images
//! another environment runs (for `--from`), and whether images exist in
//! an org's registry. Requests run concurrently, bounded by the client.

use std::collections::HashMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, Client, paths};
use crate::config::Environment;
use crate::manifest::link::parse_image;
use crate::manifest::{Kind, ResourceId};
use crate::plan::{self, ImageChange, State};
use crate::render::{ImageMap, PromotedImage};

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
}

/// Reads the live state of `ids` (secrets with their payloads, so that they
/// can be compared by hash) and every resource Ferry manages in `env`.
pub async fn observe(
    client: &Client,
    env: &Environment,
    ids: &[ResourceId],
) -> Result<Observation, ApiError> {
    let fetched: Vec<(ResourceId, Option<Value>)> = stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let body = fetch(client, env, &id).await?;
            Ok::<_, ApiError>((id, body))
        })
        .buffer_unordered(QUEUE)
        .try_collect()
        .await?;
    let managed: Vec<Vec<State>> = stream::iter(Kind::ALL)
        .map(|kind| managed_of_kind(client, env, kind))
        .buffer_unordered(QUEUE)
        .try_collect()
        .await?;
    let mut observation =
        Observation { managed: managed.into_iter().flatten().collect(), ..Observation::default() };
    for (id, body) in fetched {
        if let Some(body) = body {
            observation.live.insert(id.clone(), state(env, &id, &body));
            observation.raw.insert(id, body);
        }
    }
    Ok(observation)
}

fn state(env: &Environment, id: &ResourceId, body: &Value) -> State {
    State {
        id: id.clone(),
        body: plan::comparable(id.kind, &id.name, &env.org, &env.gvc, body),
        version: body.get("version").and_then(Value::as_u64),
    }
}

/// One resource; secrets through `-reveal` (falling back to the plain GET
/// when the token may not reveal).
async fn fetch(
    client: &Client,
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

/// Resources of one kind tagged as managed for `env`.
async fn managed_of_kind(
    client: &Client,
    env: &Environment,
    kind: Kind,
) -> Result<Vec<State>, ApiError> {
    let path = format!("{}/-query", paths::collection(&env.org, &env.gvc, kind));
    let query = json!({
        "kind": kind.as_str(),
        "spec": {"match": "all", "terms": [{"op": "=", "tag": plan::MANAGED_TAG, "value": env.name}]},
    });
    let items = match client.query(&path, &query).await {
        Ok(items) => items,
        // A kind the API cannot query here has nothing Ferry manages.
        Err(error) if matches!(error.status(), Some(404 | 405)) => Vec::new(),
        Err(error) => return Err(error),
    };
    Ok(items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?;
            let id = ResourceId::new(kind, name);
            Some(state(env, &id, item))
        })
        .collect())
}

/// The images `source`'s live workloads run, by workload and container,
/// with digests (from the image resources when the reference has none).
pub async fn running_images(
    client: &Client,
    source: &Environment,
    workloads: &[String],
    pull_from: Option<&str>,
) -> Result<ImageMap, ApiError> {
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
    for (workload, body) in &bodies {
        let Some(body) = body else { continue };
        for (container, image) in plan::container_images(body) {
            let registry = parse_image(image).registry;
            if registry.is_none() || registry == Some(source.registry.as_str()) {
                running.push((workload.clone(), container.to_owned(), image.to_owned()));
            }
        }
    }
    // Each distinct image is resolved once, all of them concurrently.
    let mut distinct: Vec<String> = running.iter().map(|(_, _, image)| image.clone()).collect();
    distinct.sort();
    distinct.dedup();
    let resolved: HashMap<String, (Option<String>, Option<String>)> = stream::iter(distinct)
        .map(|image| async move {
            let parsed = parse_image(&image);
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
                repository: parse_image(&image).repository.to_owned(),
                tag,
                digest,
                registry: pull_from.map(str::to_owned),
            },
        );
    }
    Ok(images)
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
async fn image_digest(
    client: &Client,
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
pub async fn registry_digests(
    client: &Client,
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

/// The repository and tag an image change lands as (`latest` without a tag).
pub fn landing(change: &ImageChange) -> (String, String) {
    let repository = parse_image(&change.after).repository.to_owned();
    (repository, change.tag.clone().unwrap_or_else(|| "latest".to_owned()))
}

/// Fills `copy` for images that land in `env`'s own registry: `true` when
/// the registry lacks the tag (or has it at another digest).
pub async fn check_copies(
    client: &Client,
    env: &Environment,
    changes: &mut [ImageChange],
    tags: &ImageMap,
) -> Result<(), ApiError> {
    let own_prefix = format!("/org/{}/image/", env.org);
    let copying = env.images == crate::config::ImageStrategy::Copy;
    for change in changes.iter_mut() {
        if change.tag.is_none() {
            change.tag = tags
                .get(&(change.workload.clone(), change.container.clone()))
                .and_then(|p| p.tag.clone());
        }
    }
    let lands_here = |change: &ImageChange| copying && change.after.starts_with(&own_prefix);
    let found =
        registry_digests(client, &env.org, changes.iter().filter(|c| lands_here(c)).map(landing))
            .await?;
    for change in changes.iter_mut() {
        change.copy = Some(
            lands_here(change) && {
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
