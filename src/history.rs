//! Reading and writing an environment's release records through the API
//! (the records themselves are [`crate::release`]).

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, ControlPlane, paths};
use crate::config::Environment;
use crate::manifest::Kind;
use crate::release::{self, Outcome, RELEASE_OF_TAG, Release};

/// Every release of `env`, oldest first. Records are read with `-reveal`;
/// one that cannot be read still counts for numbering.
pub async fn releases<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Vec<(u64, Option<Release>)>, ApiError> {
    let path = format!("{}/-query", paths::collection(&env.org, &env.gvc, Kind::Secret));
    let query = json!({
        "kind": "secret",
        "spec": {"match": "all", "terms": [{"op": "=", "tag": RELEASE_OF_TAG, "value": env.name}]},
    });
    let secrets = client.query(&path, &query).await?;
    let mut found: Vec<(u64, Option<Release>)> = stream::iter(secrets.iter().filter_map(|s| {
        let name = s.get("name").and_then(Value::as_str)?.to_owned();
        Some((release::revision_of(s)?, name))
    }))
    .map(|(revision, name)| async move {
        let item = paths::item(&env.org, &env.gvc, Kind::Secret, &name);
        let revealed = client.get_opt(&format!("{item}/-reveal")).await?;
        Ok::<_, ApiError>((revision, revealed.as_ref().and_then(release::from_secret)))
    })
    .buffer_unordered(16)
    .try_collect()
    .await?;
    found.sort_by_key(|(revision, _)| *revision);
    Ok(found)
}

/// The newest release of `env` that succeeded.
pub async fn last_succeeded<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Option<Release>, ApiError> {
    let all = releases(client, env).await?;
    Ok(all.into_iter().rev().filter_map(|(_, r)| r).find(|r| r.outcome == Outcome::Succeeded))
}

/// Stores `release` and deletes the oldest records beyond the environment's
/// history limit.
pub async fn record<A: ControlPlane>(
    client: &A,
    env: &Environment,
    release: &Release,
    existing: &[u64],
) -> Result<(), ApiError> {
    client
        .put(&paths::collection(&env.org, &env.gvc, Kind::Secret), &release::to_secret(release))
        .await?;
    let mut revisions = existing.to_vec();
    revisions.push(release.revision);
    for old in release::beyond_limit(&revisions, env.history_limit) {
        let name = release::secret_name(&env.name, old);
        client.delete(&paths::item(&env.org, &env.gvc, Kind::Secret, &name)).await?;
    }
    Ok(())
}
