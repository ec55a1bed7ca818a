//! Reading and writing an environment's release records through the API
//! (the records themselves are [`crate::release`]).
//!
//! Integrity rules (issue 11, item 6):
//! - a record that cannot be read is reported and skipped, never fatal:
//!   [`read`] returns it apart, with the reason, and it still counts for
//!   numbering;
//! - a revision is taken while the environment's lock is held
//!   ([`next_revision`]), and written create-only ([`record`]): a record is
//!   never overwritten, so two releases never share a number even if a
//!   lock was lost;
//! - the oldest records beyond `historyLimit` are deleted only after the
//!   newest was written, and failing to delete one does not fail the
//!   release.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, ControlPlane, paths, write_resolved};
use crate::config::Environment;
use crate::manifest::Kind;
use crate::release::{self, Outcome, RELEASE_OF_TAG, Release};

/// An environment's release records as read from its org.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The records that could be read, oldest first.
    pub releases: Vec<Release>,
    /// The records that could not be read, oldest first.
    pub unreadable: Vec<Unreadable>,
}

/// A release record that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The secret holding it.
    pub secret: String,
    /// Its revision, from its tag or its name, when either says.
    pub revision: Option<u64>,
    pub reason: String,
}

impl History {
    /// Every revision present, readable or not (for numbering and trimming).
    pub fn revisions(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .releases
            .iter()
            .map(|r| r.revision)
            .chain(self.unreadable.iter().filter_map(|u| u.revision))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The release numbered `revision`.
    pub fn find(&self, revision: u64) -> Option<&Release> {
        self.releases.iter().find(|r| r.revision == revision)
    }
}

/// Every release record of `env`, read with `-reveal`: the readable ones
/// and, apart, the ones that cannot be read and why.
pub async fn read<A: ControlPlane>(client: &A, env: &Environment) -> Result<History, ApiError> {
    read_matching(client, env, None).await
}

/// The records of `env`'s releases in progress ([`Outcome::InProgress`]):
/// one query by tag (normally answered with nothing), and the ones found
/// read with `-reveal`.
pub async fn in_progress<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<History, ApiError> {
    read_matching(client, env, Some(Outcome::InProgress)).await
}

/// The revision of `env`'s (oldest) release in progress, if any.
pub async fn in_progress_revision<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Option<u64>, ApiError> {
    Ok(in_progress(client, env).await?.releases.first().map(|r| r.revision))
}

/// The release records of `env`, of any outcome or of `outcome` only.
async fn read_matching<A: ControlPlane>(
    client: &A,
    env: &Environment,
    outcome: Option<Outcome>,
) -> Result<History, ApiError> {
    let path = format!("{}/-query", paths::collection(&env.org, &env.gvc, Kind::Secret));
    let mut terms = vec![json!({"op": "=", "tag": RELEASE_OF_TAG, "value": env.scope()})];
    if let Some(outcome) = outcome {
        terms.push(json!({"op": "=", "tag": release::OUTCOME_TAG, "value": outcome.as_str()}));
    }
    let query = json!({"kind": "secret", "spec": {"match": "all", "terms": terms}});
    let secrets = client.query(&path, &query).await?;
    let found: Vec<Result<Release, Unreadable>> =
        stream::iter(secrets.iter().filter_map(|s| s.get("name").and_then(Value::as_str)))
            .map(|name| async move {
                let item = paths::item(&env.org, &env.gvc, Kind::Secret, name);
                let revealed = client.get_opt(&format!("{item}/-reveal")).await?;
                Ok::<_, ApiError>(examine(env, name, revealed.as_ref()))
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
    let mut history = History::default();
    for entry in found {
        match entry {
            Ok(release) => history.releases.push(release),
            Err(unreadable) => history.unreadable.push(unreadable),
        }
    }
    history.releases.sort_by_key(|r| r.revision);
    history.unreadable.sort_by(|a, b| (a.revision, &a.secret).cmp(&(b.revision, &b.secret)));
    Ok(history)
}

/// The release in the revealed secret `name`, or why it is not one.
fn examine(env: &Environment, name: &str, secret: Option<&Value>) -> Result<Release, Unreadable> {
    let numbered = secret.and_then(release::revision_of).or_else(|| {
        let number = name.rsplit_once('-')?.1.parse().ok()?;
        (release::secret_name(&env.resource_key(), number) == name).then_some(number)
    });
    let unreadable =
        |reason: String| Unreadable { secret: name.to_owned(), revision: numbered, reason };
    let Some(secret) = secret else {
        return Err(unreadable("it was deleted while being read".to_owned()));
    };
    let release = release::read_secret(secret).map_err(unreadable)?;
    match numbered {
        Some(tagged) if tagged != release.revision => Err(unreadable(format!(
            "its tag says revision {tagged} but the record says {}",
            release.revision
        ))),
        _ if release.environment != env.name => Err(unreadable(format!(
            "the record is of environment {}, not {}",
            release.environment, env.name
        ))),
        _ => Ok(release),
    }
}

/// Logs each unreadable record as a warning (for the commands that use
/// the history without showing it).
pub fn warn_unreadable(env: &Environment, history: &History) {
    for skipped in &history.unreadable {
        tracing::warn!(
            "skipped release record {} of {}: {}",
            skipped.secret,
            env.name,
            skipped.reason
        );
    }
}

/// Every release of `env`, oldest first, by revision; `None` for a record
/// that cannot be read (it still counts for numbering, and is logged).
pub async fn releases<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Vec<(u64, Option<Release>)>, ApiError> {
    let history = read(client, env).await?;
    warn_unreadable(env, &history);
    let mut all: Vec<(u64, Option<Release>)> = history
        .unreadable
        .iter()
        .filter_map(|u| u.revision)
        .filter(|r| history.find(*r).is_none())
        .map(|r| (r, None))
        .collect();
    all.extend(history.releases.into_iter().map(|r| (r.revision, Some(r))));
    all.sort_by_key(|(revision, _)| *revision);
    Ok(all)
}

/// The newest release of `env` that succeeded.
pub async fn last_succeeded<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Option<Release>, ApiError> {
    let history = read(client, env).await?;
    warn_unreadable(env, &history);
    Ok(history.releases.into_iter().rev().find(|r| r.outcome == Outcome::Succeeded))
}

/// The revision the next release of an environment takes, and the ones
/// that exist (for trimming after it is recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Numbering {
    pub revision: u64,
    pub existing: Vec<u64>,
    /// Releases in progress, with the lock holder of the run that started
    /// each ([`release::Pending`]).
    pub unfinished: Vec<(u64, Option<String>)>,
}

/// The next revision of `env`. Call it only while holding `env`'s lock
/// ([`crate::lock::Lock`]): numbers taken before the lock could be taken
/// twice.
pub async fn next_revision<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Numbering, ApiError> {
    let history = read(client, env).await?;
    warn_unreadable(env, &history);
    let existing = history.revisions();
    let unfinished = history
        .releases
        .iter()
        .filter(|r| r.outcome == Outcome::InProgress)
        .map(|r| (r.revision, r.pending.as_ref().map(|p| p.holder.clone())))
        .collect();
    Ok(Numbering { revision: release::next_revision(&existing), existing, unfinished })
}

/// How many times a record is moved to a later revision because its own
/// was taken (by a promotion that broke an expired lock) before giving up.
const RENUMBER_ATTEMPTS: usize = 5;

/// Stores `release` create-only, then deletes the oldest records beyond
/// the environment's history limit. Returns the revision it was stored
/// as: `release.revision`, unless another record already had that number
/// (then the next free one, with a warning). A write whose answer is lost
/// (a 500, a timeout) is resolved by reading the record back: stored when
/// it holds this very release, written again otherwise
/// ([`write_resolved`]).
pub async fn record<A: ControlPlane>(
    client: &A,
    env: &Environment,
    release: &Release,
    existing: &[u64],
) -> Result<u64, ApiError> {
    let collection = paths::collection(&env.org, &env.gvc, Kind::Secret);
    // The executor refused a plan whose record cannot fit before it wrote
    // anything; what can still grow is the message, trimmed here.
    let mut release = fitted(env, release);
    let mut taken = existing.to_vec();
    let policy = crate::retry::RetryPolicy::default();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let secret = release::to_secret(&release);
        let landed =
            |live: Option<&Value>| live.and_then(release::from_secret).as_ref() == Some(&release);
        let written =
            write_resolved(client, &policy, &reveal_path(env, release.revision), landed, || {
                client.post(&collection, &secret)
            })
            .await;
        let error = match written {
            Ok(_) => break,
            Err(error) => error,
        };
        // 409: taken, by this very record (a retry after an answer that was
        // lost) or by another run's.
        if error.status() != Some(409) || attempts > RENUMBER_ATTEMPTS {
            return Err(error);
        }
        if stored(client, env, &release).await? {
            break;
        }
        taken.push(release.revision);
        taken.extend(read(client, env).await?.revisions());
        let next = release::next_revision(&taken);
        tracing::warn!(
            "release {} of {} was already recorded by another run; recording this one as {next}",
            release.revision,
            env.name
        );
        release.revision = next;
    }
    taken.push(release.revision);
    trim(client, env, &taken).await;
    Ok(release.revision)
}

/// Rewrites the record of a release that was recorded in progress with
/// its outcome: PUT, as `cpln apply` upserts (the record is the one this
/// run, holding the lock, wrote or took over; [`record`] alone is
/// create-only). A PUT whose answer is lost is sent again by the client.
pub async fn finish<A: ControlPlane>(
    client: &A,
    env: &Environment,
    release: &Release,
) -> Result<u64, ApiError> {
    let collection = paths::collection(&env.org, &env.gvc, Kind::Secret);
    let release = fitted(env, release);
    client.put(&collection, &release::to_secret(&release)).await?;
    Ok(release.revision)
}

/// `release` as it is stored ([`release::fit`]), saying when its message
/// was trimmed. The executor refused a plan whose record cannot fit
/// before it wrote anything; what can still grow is the message.
fn fitted(env: &Environment, release: &Release) -> Release {
    match release::fit(release) {
        Ok((fitted, trimmed)) => {
            if trimmed {
                tracing::warn!(
                    "the record of release {} of {} was over its {} KiB budget: its message is trimmed",
                    release.revision,
                    env.name,
                    release::RECORD_BUDGET / 1024
                );
            }
            fitted
        }
        Err(over) => {
            tracing::warn!("{over}; writing it anyway");
            release.clone()
        }
    }
}

/// The path that reads release `revision` of `env` with its payload.
fn reveal_path(env: &Environment, revision: u64) -> String {
    let name = release::secret_name(&env.resource_key(), revision);
    format!("{}/-reveal", paths::item(&env.org, &env.gvc, Kind::Secret, &name))
}

/// Whether `release` is what is stored under its revision.
async fn stored<A: ControlPlane>(
    client: &A,
    env: &Environment,
    release: &Release,
) -> Result<bool, ApiError> {
    let found = client.get_opt(&reveal_path(env, release.revision)).await?;
    Ok(found.as_ref().and_then(release::from_secret).as_ref() == Some(release))
}

/// Deletes the oldest of `revisions` beyond the history limit; a failed
/// delete is a warning (the next release deletes it).
async fn trim<A: ControlPlane>(client: &A, env: &Environment, revisions: &[u64]) {
    for old in release::beyond_limit(revisions, env.history_limit) {
        let name = release::secret_name(&env.resource_key(), old);
        if let Err(error) =
            client.delete(&paths::item(&env.org, &env.gvc, Kind::Secret, &name)).await
        {
            tracing::warn!(
                "could not delete release {old} of {} beyond its history limit: {error}; the next release tries again",
                env.name
            );
        }
    }
}

/// `own` for an image in `env`'s own registry, `external` otherwise.
pub fn image_origin(env: &Environment, image: &str) -> &'static str {
    match crate::manifest::image::classify(image, Some(env.own_registry())).source {
        crate::manifest::image::Source::Own => "own",
        _ => "external",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{Fake, Fault, Verb, environment};

    const SECRETS: &str = "/org/acme/secret";

    fn release(revision: u64) -> Release {
        Release {
            plan_hash: format!("hash-{revision}"),
            ..crate::release::tests::release(revision)
        }
    }

    fn seed(fake: &Fake, revisions: impl IntoIterator<Item = u64>) {
        for revision in revisions {
            let secret = release::to_secret(&release(revision));
            let name = secret["name"].as_str().unwrap_or_default().to_owned();
            fake.seed(&format!("{SECRETS}/{name}"), secret);
        }
    }

    /// prod with `historyLimit: 2` and these releases.
    fn kept_two_of(revisions: impl IntoIterator<Item = u64>) -> (Fake, Environment) {
        let fake = Fake::new();
        let mut env = environment();
        env.history_limit = 2;
        seed(&fake, revisions);
        (fake, env)
    }

    fn stored(fake: &Fake) -> Vec<u64> {
        (1..10)
            .filter(|r| fake.body(&format!("{SECRETS}/ferry-release-prod-{r}")).is_some())
            .collect()
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_read_is_reported_and_skipped_but_still_numbered() {
        let fake = Fake::new();
        seed(&fake, [1, 3]);
        let mut corrupt = release::to_secret(&release(2));
        corrupt["data"] = json!({"encoding": "plain", "payload": "{not json"});
        fake.seed(&format!("{SECRETS}/ferry-release-prod-2"), corrupt);
        let history = read(&fake, &environment()).await.unwrap_or_else(|e| panic!("{e}"));
        let readable: Vec<u64> = history.releases.iter().map(|r| r.revision).collect();
        assert_eq!(readable, [1, 3]);
        assert_eq!(history.unreadable.len(), 1);
        assert_eq!(history.unreadable[0].revision, Some(2));
        assert!(history.unreadable[0].reason.starts_with("the payload is not a release record"));
        let numbering = next_revision(&fake, &environment()).await.ok();
        assert_eq!(numbering.map(|n| (n.revision, n.existing)), Some((4, vec![1, 2, 3])));
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_records_go_only_after_the_newest_is_written() {
        let (fake, env) = kept_two_of([1, 2]);
        fake.inject(Fault::new(Verb::Post, "/secret", 403));
        let failed = record(&fake, &env, &release(3), &[1, 2]).await;
        assert_eq!(failed.err().and_then(|e| e.status()), Some(403));
        assert_eq!(stored(&fake), [1, 2], "nothing is deleted when the write fails");
        assert_eq!(fake.count(Verb::Delete, "/secret"), 0);

        let recorded = record(&fake, &env, &release(3), &[1, 2]).await.ok();
        assert_eq!(recorded, Some(3));
        assert_eq!(stored(&fake), [2, 3]);
    }

    #[tokio::test]
    async fn a_failed_trim_does_not_fail_the_release() {
        let fake = Fake::new();
        let mut env = environment();
        env.history_limit = 1;
        seed(&fake, [1]);
        fake.inject(Fault::new(Verb::Delete, "ferry-release-prod-1", 503));
        assert_eq!(record(&fake, &env, &release(2), &[1]).await.ok(), Some(2));
        assert_eq!(stored(&fake), [1, 2]);
        // The next release deletes what was left.
        assert_eq!(record(&fake, &env, &release(3), &[1, 2]).await.ok(), Some(3));
        assert_eq!(stored(&fake), [3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_whose_answer_is_lost_is_read_back_once() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, "/secret", 500).after_effect());
        let recorded = record(&fake, &environment(), &release(1), &[]).await;
        assert_eq!(recorded.ok(), Some(1));
        assert_eq!(fake.count(Verb::Post, "/secret"), 1, "not written twice");
        let history = read(&fake, &environment()).await.ok();
        assert_eq!(history.map(|h| h.releases), Some(vec![release(1)]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_was_not_stored_is_written_again_and_old_ones_go() {
        let (fake, env) = kept_two_of([1, 2]);
        fake.inject(Fault::new(Verb::Post, "/secret", 503).times(2));
        assert_eq!(record(&fake, &env, &release(3), &[1, 2]).await.ok(), Some(3));
        assert_eq!(stored(&fake), [2, 3]);
    }

    #[tokio::test]
    async fn a_revision_is_never_recorded_twice() {
        let fake = Fake::new();
        // Another run (which broke an expired lock) recorded 4 meanwhile.
        seed(&fake, [3, 4]);
        let mine = Release { plan_hash: "mine".into(), ..release(4) };
        let recorded = record(&fake, &environment(), &mine, &[3]).await.ok();
        assert_eq!(recorded, Some(5));
        let history = read(&fake, &environment()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(history.find(4).map(|r| r.plan_hash.as_str()), Some("hash-4"));
        assert_eq!(history.find(5).map(|r| r.plan_hash.as_str()), Some("mine"));
    }
}
