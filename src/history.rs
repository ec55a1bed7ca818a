//! Reading and writing an environment's release records through the API
//! (the records themselves are [`crate::release`]).

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, ControlPlane, paths, write_resolved};
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
/// history limit. A write whose answer is lost is resolved by reading the
/// record back: stored when it holds this very release.
pub async fn record<A: ControlPlane>(
    client: &A,
    env: &Environment,
    release: &Release,
    existing: &[u64],
) -> Result<(), ApiError> {
    let collection = paths::collection(&env.org, &env.gvc, Kind::Secret);
    let item = paths::item(
        &env.org,
        &env.gvc,
        Kind::Secret,
        &release::secret_name(&env.name, release.revision),
    );
    let secret = release::to_secret(release);
    let landed =
        |live: Option<&Value>| live.and_then(release::from_secret).as_ref() == Some(release);
    let policy = crate::retry::RetryPolicy::default();
    write_resolved(client, &policy, &format!("{item}/-reveal"), landed, || {
        client.put(&collection, &secret)
    })
    .await?;
    let mut revisions = existing.to_vec();
    revisions.push(release.revision);
    for old in release::beyond_limit(&revisions, env.history_limit) {
        let name = release::secret_name(&env.name, old);
        client.delete(&paths::item(&env.org, &env.gvc, Kind::Secret, &name)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{Fake, Fault, Verb, environment};
    use crate::release::tests::release;

    #[tokio::test(start_paused = true)]
    async fn a_record_whose_answer_is_lost_is_read_back_once() {
        let fake = Fake::new();
        let env = environment();
        fake.inject(Fault::new(Verb::Put, "/org/acme/secret", 500).after_effect());
        let recorded = record(&fake, &env, &release(1), &[]).await;
        assert!(recorded.is_ok(), "{recorded:?}");
        assert_eq!(fake.count(Verb::Put, "/org/acme/secret"), 1, "not written twice");
        let found = releases(&fake, &env).await.unwrap_or_default();
        assert_eq!(found, [(1, Some(release(1)))]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_was_not_stored_is_written_again_and_old_ones_go() {
        let fake = Fake::new();
        let mut env = environment();
        env.history_limit = 2;
        for revision in 1..=2 {
            assert!(record(&fake, &env, &release(revision), &[]).await.is_ok());
        }
        fake.inject(Fault::new(Verb::Put, "/org/acme/secret", 503).times(2));
        let recorded = record(&fake, &env, &release(3), &[1, 2]).await;
        assert!(recorded.is_ok(), "{recorded:?}");
        let revisions: Vec<u64> =
            releases(&fake, &env).await.unwrap_or_default().into_iter().map(|(r, _)| r).collect();
        assert_eq!(revisions, [2, 3]);
    }
}
