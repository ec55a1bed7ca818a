//! Releases left in progress. The executor records a release as in
//! progress before its first write ([`release::Pending`]: every write it
//! plans, with the state before it), and rewrites the record with the
//! outcome at the end. A run that stops in between (SIGKILL, a CI job
//! cancelled on timeout, a host gone, a lock lost) leaves that record, and
//! every later run into the environment (promote, deploy, apply,
//! rollback, `ferry recover`) finishes it before anything else
//! ([`look`], then [`settle`]), under the environment's lock:
//!
//! - a planned write has landed when the resource differs from the state
//!   before it (a deleted one is gone; a stamped workload carries the
//!   release's revision);
//! - every write landed: the workloads the release waits for are waited
//!   for as the environment's readiness rules say; ready, the release is
//!   recorded as succeeded;
//! - not every write landed, or not ready: what it changed is put back
//!   from the record (a secret, whose payload Ferry stores nowhere but in
//!   the secret, is not) and the release recorded as failed; the run that
//!   found it stops there (exit 1), saying so.
//!
//! A release in progress whose run still holds the lock is running: the
//! run that found it waits for the lock (`--lock-timeout`, exit 3 when it
//! runs out) rather than plan against a target in flux, and then finds it
//! finished, or its run gone and the lock expired. An expired lock with no
//! release in progress is cleared: taken over (as the lock takes over any
//! expired lock) and deleted, whatever the run that found it goes on to do.

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use super::{Event, ExecuteError, Left, LockLeft, Recorded, Reporter, Restored, StepError};
use crate::api::{ApiError, ControlPlane, paths};
use crate::config::Environment;
use crate::lock::{Fence, Lock, LockError, LockInfo};
use crate::manifest::ResourceId;
use crate::plan::steps;
use crate::readiness::Progress;
use crate::release::{self, Actor, Before, Outcome, Pending, Release};
use crate::timestamp::{now_ms, rfc3339};
use crate::{Error, history};

/// What a run into an environment finds before it plans: its lock and
/// its releases in progress.
#[derive(Debug)]
pub struct Look {
    pub lock: Option<LockInfo>,
    pub unfinished: Vec<Release>,
}

/// Reads `env`'s lock and its releases in progress, together.
pub async fn look<A: ControlPlane>(client: &A, env: &Environment) -> Result<Look, ApiError> {
    let (lock, found) =
        futures::try_join!(crate::lock::held(client, env), history::in_progress(client, env))?;
    history::warn_unreadable(env, &found);
    Ok(Look { lock, unfinished: found.releases })
}

impl Look {
    /// The release in progress whose run still holds the lock (running
    /// now), if any.
    pub fn running(&self, now_ms: u64) -> Option<&Release> {
        let lock = self.lock.as_ref().filter(|l| !l.is_expired(now_ms))?;
        self.unfinished.iter().find(|r| r.pending.as_ref().is_some_and(|p| p.holder == lock.holder))
    }
}

/// How [`settle`] takes the lock.
#[derive(Clone, Debug)]
pub struct Settle {
    /// How long to wait for a lock held by a live run.
    pub lock_timeout: Duration,
    pub lock_ttl: Duration,
    pub actor: Actor,
}

/// What [`settle`] did.
#[derive(Debug, Default)]
pub struct Settled {
    /// Releases found in progress whose run had stopped, finished as
    /// succeeded (a failed one is an error).
    pub finished: Vec<Release>,
    /// The expired lock cleared, with who had held it.
    pub cleared: Option<LockInfo>,
}

/// Finishes the releases `look` found in progress whose run is gone, and
/// clears an expired lock; nothing to do (the common case) costs no
/// request beyond `look`'s. A release that cannot be finished as
/// succeeded is restored, recorded as failed, and returned as
/// [`ExecuteError::Finished`].
pub async fn settle<A: ControlPlane>(
    client: &A,
    env: &Environment,
    look: &Look,
    how: &Settle,
    reporter: &dyn Reporter,
) -> Result<Settled, Error> {
    let now = client.now_ms();
    let expired = look.lock.as_ref().filter(|l| l.is_expired(now));
    if look.unfinished.is_empty() && expired.is_none() {
        return Ok(Settled::default());
    }
    if let Some(running) = look.running(now) {
        reporter.note(&format!(
            "Release {} of {} is in progress and its run holds the lock: waiting for the lock",
            running.revision, env.name
        ));
    }
    // Waiting for a live holder only when there is a release to finish:
    // an expired lock alone that someone else took meanwhile is theirs.
    let wait = if look.unfinished.is_empty() { Duration::ZERO } else { how.lock_timeout };
    let ttl = how.lock_ttl.max(Duration::from_secs(1));
    let lock = match Lock::acquire(client, env, &how.actor, ttl, wait).await {
        Ok(lock) => lock,
        Err(LockError::Held { .. }) if look.unfinished.is_empty() => {
            return Ok(Settled::default());
        }
        Err(error) => return Err(ExecuteError::from(error).into()),
    };
    let mut settled = Settled {
        cleared: expired.cloned().filter(|_| look.unfinished.is_empty()),
        ..Settled::default()
    };
    if let Some(cleared) = &settled.cleared {
        reporter.note(&format!(
            "Cleared the expired lock of {} (held by {}, expired at {})",
            env.name, cleared.holder, cleared.expires
        ));
    }
    // Read again under the lock: the run that held it may have finished.
    let result = async {
        let found = history::in_progress(client, env).await?;
        for record in found.releases {
            let revision = record.revision;
            let finished = finish(client, env, record, lock.fence(), reporter).await?;
            reporter.note(&format!(
                "Release {revision} of {} had every write landed and its workloads ready: recorded as succeeded",
                env.name
            ));
            settled.finished.push(finished);
        }
        Ok::<_, Error>(())
    }
    .await;
    let released = match lock.release().await {
        Ok(true) => LockLeft::Released,
        Ok(false) => LockLeft::Lost,
        Err(error) => LockLeft::Left(error.to_string()),
    };
    match result {
        Ok(()) => Ok(settled),
        Err(Error::Execute(mut failed)) => {
            if let ExecuteError::Finished { left, .. } = &mut *failed {
                left.lock = released;
            }
            Err(Error::Execute(failed))
        }
        Err(other) => Err(other),
    }
}

/// Whether the resource `live` differs from the state `before` the write
/// (existence, body or version).
fn changed(write: &release::PendingWrite, live: Option<&Value>) -> bool {
    match (&write.before, live) {
        (Before::Absent, live) => live.is_some(),
        (_, None) => true,
        (Before::Kept { body, .. }, Some(live)) => steps::writable(live) != *body,
        (Before::Version { version }, Some(live)) => live.get("version") != version.as_ref(),
    }
}

/// Whether the write landed: the resource changed as it would (deleted
/// when it deletes), and a stamped workload carries `revision`.
fn landed(write: &release::PendingWrite, live: Option<&Value>, revision: &str) -> bool {
    if write.delete {
        return live.is_none();
    }
    let stamped = || {
        live.and_then(|l| l.pointer(&format!("/tags/{}", release::RELEASE_TAG.replace('/', "~1"))))
            .and_then(Value::as_str)
            == Some(revision)
    };
    changed(write, live) && (!write.stamp || stamped())
}

/// Finishes the release in progress `record` under the lock `fence`
/// guards: succeeded (the record rewritten) when every write landed and
/// its workloads are ready; else restored and recorded as failed, and
/// returned as [`ExecuteError::Finished`].
async fn finish<A: ControlPlane>(
    client: &A,
    env: &Environment,
    mut record: Release,
    fence: &Fence,
    reporter: &dyn Reporter,
) -> Result<Release, Error> {
    let revision = record.revision;
    let pending = record.pending.take().unwrap_or(Pending {
        holder: String::new(),
        writes: vec![],
        no_rollback: false,
    });
    reporter.note(&format!(
        "Release {revision} of {} ({}, started {} by {}) was left in progress: its run stopped before finishing it. Finishing it now",
        env.name,
        record.kind.map_or("a release", |k| k.as_str()),
        record.started,
        record.actor.describe()
    ));
    let live: Vec<Option<Value>> = stream::iter(&pending.writes)
        .map(|write| async move {
            let id = &write.id;
            client.get_opt(&paths::item(&env.org, &env.gvc, id.kind, &id.name)).await
        })
        .buffered(64)
        .try_collect()
        .await?;
    let stamp = revision.to_string();
    let made = pending.writes.iter().zip(&live).filter(|(w, l)| landed(w, l.as_ref(), &stamp));
    let made = made.count();
    let cause = if made < pending.writes.len() {
        Some(StepError::Stopped { made, planned: pending.writes.len() })
    } else {
        let gates: Vec<String> =
            pending.writes.iter().filter(|w| w.gate).map(|w| w.id.name.clone()).collect();
        let progress = |progress: Progress<'_>| match progress {
            Progress::Waiting(report) => reporter.event(Event::Waiting { report }),
            Progress::Ready(report) => {
                reporter.event(Event::Ready { workload: &report.workload, report });
            }
        };
        crate::readiness::wait(client, env, &gates, env.readiness, &progress)
            .await
            .err()
            .map(StepError::from)
    };
    let lost = |fence: &Fence| fence.check(client.now_ms()).err();
    let Some(cause) = cause else {
        if let Some(reason) = lost(fence) {
            let cause = StepError::LockLost { environment: env.name.clone(), reason };
            return Err(finished_failed(&record, env, cause, Vec::new(), Restored::NothingWritten));
        }
        record.outcome = Outcome::Succeeded;
        record.finished = rfc3339(now_ms());
        record.message = Some(append(
            record.message.as_deref(),
            "its run stopped before finishing it; every write had landed and every workload became ready, as the next run found",
        ));
        history::finish(client, env, &record).await?;
        return Ok(record);
    };
    // What it changed, in the order planned, and what can be put back.
    let written: Vec<ResourceId> = pending
        .writes
        .iter()
        .zip(&live)
        .filter(|(w, l)| changed(w, l.as_ref()))
        .map(|(w, _)| w.id.clone())
        .collect();
    let kept: HashMap<ResourceId, Value> = pending
        .writes
        .iter()
        .filter_map(|w| match &w.before {
            Before::Kept { body, .. } => Some((w.id.clone(), body.clone())),
            _ => None,
        })
        .collect();
    let unkept: Vec<ResourceId> = pending
        .writes
        .iter()
        .filter(|w| matches!(w.before, Before::Version { .. }) && written.contains(&w.id))
        .map(|w| w.id.clone())
        .collect();
    let restorable: Vec<ResourceId> =
        written.iter().filter(|id| !unkept.contains(id)).cloned().collect();
    // Started with --no-rollback: left as its own run would have left it.
    let restored = if pending.no_rollback && !written.is_empty() {
        Restored::Left { resources: written.clone(), why: super::Unrestored::NoRollback }
    } else {
        restore(client, env, &restorable, &kept, &unkept, fence, reporter).await
    };
    let recorded = if let Some(reason) = lost(fence) {
        Recorded::Not(format!("{reason}; it stays recorded as in progress"))
    } else {
        record.outcome = Outcome::Failed;
        record.rolled_back = restored.is_restored();
        record.finished = rfc3339(now_ms());
        record.message = Some(append(
            record.message.as_deref(),
            &format!(
                "its run stopped before finishing it; the next run found: {cause}; {restored}"
            ),
        ));
        match history::finish(client, env, &record).await {
            Ok(revision) => Recorded::Revision(revision),
            Err(error) => Recorded::Not(format!("writing its record failed: {error}")),
        }
    };
    let mut error = finished_failed(&record, env, cause, written, restored);
    if let Error::Execute(failed) = &mut error
        && let ExecuteError::Finished { left, .. } = &mut **failed
    {
        left.recorded = recorded;
    }
    Err(error)
}

/// Puts back `written` from `kept` ([`super::put_back`]); `unkept`
/// changed but cannot be put back, and are named as not restored.
async fn restore<A: ControlPlane>(
    client: &A,
    env: &Environment,
    written: &[ResourceId],
    kept: &HashMap<ResourceId, Value>,
    unkept: &[ResourceId],
    fence: &Fence,
    reporter: &dyn Reporter,
) -> Restored {
    let restored = super::put_back(client, env, written.to_vec(), kept, fence, reporter).await;
    if unkept.is_empty() {
        return restored;
    }
    let not_kept = || StepError::NotKept { resources: super::names(unkept) };
    match restored {
        Restored::Failed { error, restored, mut unrestored } => {
            unrestored.extend(unkept.iter().cloned());
            Restored::Failed { error, restored, unrestored }
        }
        Restored::Restored(restored) => {
            Restored::Failed { error: Box::new(not_kept()), restored, unrestored: unkept.to_vec() }
        }
        _ => Restored::Failed {
            error: Box::new(not_kept()),
            restored: Vec::new(),
            unrestored: unkept.to_vec(),
        },
    }
}

/// `message`, then `more`.
fn append(message: Option<&str>, more: &str) -> String {
    match message {
        Some(message) => format!("{message}: {more}"),
        None => more.to_owned(),
    }
}

/// The error of a release in progress finished as failed.
fn finished_failed(
    record: &Release,
    env: &Environment,
    cause: StepError,
    written: Vec<ResourceId>,
    restored: Restored,
) -> Error {
    let left = Left {
        environment: env.name.clone(),
        source: record.source.clone(),
        step: cause.step(),
        written,
        restored,
        recorded: Recorded::Not("not yet".to_owned()),
        lock: LockLeft::Released,
    };
    ExecuteError::Finished {
        revision: record.revision,
        what: record.kind.unwrap_or(release::ReleaseKind::Promote),
        left: Box::new(left),
        cause,
    }
    .into()
}
