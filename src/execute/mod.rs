//! The executor: carries out any [`Plan`], whoever made it (`promote`,
//! `apply PLAN.json`, and later `deploy` and `rollback`), and knows nothing
//! of how it was made:
//!
//! 1. every secret payload the writes need is at hand and, within the run
//!    that made the plan, is the one whose mark the plan carries (a saved
//!    plan's were compared by `ferry apply`);
//! 2. the target's lock is taken (a signal while waiting changes nothing;
//!    a saved plan is first compared as in 3, to be refused before even
//!    the lock is written);
//! 3. the live state of every resource of the plan is read again and
//!    compared with the fingerprint the plan was made against: if
//!    anything moved, nothing is written and the error names it; what was
//!    read is what a failure restores;
//! 4. the release revision is taken (under the lock), images are copied,
//!    the plan's checks run (all findings together);
//! 5. writes run by dependency ([`schedule`]), workloads waited for;
//! 6. on failure, what was written is restored (unless `no_rollback`);
//! 7. the release is recorded in the target's org, whatever the outcome;
//!    the lock is released.
//!
//! A first signal stops gracefully (writes in flight finish, what was
//! changed is restored, the release recorded); a second stops at once.

mod preflight;
mod schedule;
mod unfinished;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use miette::Diagnostic;
use serde_json::Value;

use crate::api::{ApiError, ControlPlane, paths};
use crate::applied::{self, Applied};
use crate::config::Environment;
use crate::diff::Action;
use crate::lock::{Fence, Lock, LockError};
use crate::manifest::ResourceId;
use crate::plan::{self, Plan, steps};
use crate::readiness::WorkloadReport;
use crate::release::{self, Actor, Outcome, Release, ReleaseKind};
use crate::timestamp::{now_ms, rfc3339};
use crate::{Error, history, observe};

pub use preflight::{Finding, listed};
pub use schedule::Outcome as Written;
pub use tokio_util::sync::CancellationToken;
pub use unfinished::{Look, Settle, Settled, look, settle};

/// What the executor tells whoever shows progress.
pub enum Event<'a> {
    Written { id: &'a ResourceId, action: Action },
    Waiting { report: &'a WorkloadReport },
    Ready { workload: &'a str, report: &'a WorkloadReport },
}

/// Why the writes stopped.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum StepError {
    #[error("writing {id} failed")]
    #[diagnostic(code(ferry::apply::write))]
    Write {
        id: ResourceId,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Readiness(#[from] crate::readiness::WaitError),

    #[error("{id} waits for a write that never came (a dependency cycle in the plan)")]
    #[diagnostic(code(ferry::apply::unordered), help("make the plan again"))]
    Unordered { id: ResourceId },

    #[error("interrupted by a signal")]
    #[diagnostic(code(ferry::apply::interrupted))]
    Interrupted,

    #[error("the lock of {environment} was lost: {reason}")]
    #[diagnostic(
        code(ferry::apply::lock_lost),
        help(
            "another runner may hold {environment} now; nothing more was written under the lost lock"
        )
    )]
    LockLost { environment: String, reason: crate::lock::LockLost },

    #[error("recording the release failed")]
    #[diagnostic(code(ferry::apply::record))]
    Record {
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error("its run stopped after {made} of its {planned} writes")]
    #[diagnostic(code(ferry::release::stopped))]
    Stopped { made: usize, planned: usize },

    #[error(
        "the state before it of {resources} is not kept (a secret's payload is stored nowhere but in the secret itself)"
    )]
    #[diagnostic(code(ferry::release::not_kept))]
    NotKept { resources: String },
}

impl StepError {
    /// The step that failed, for the report of what a failure left.
    pub fn step(&self) -> String {
        use crate::readiness::WaitError;
        match self {
            StepError::Write { id, .. } => format!("writing {id}"),
            StepError::Readiness(
                WaitError::NotReady { workload, .. } | WaitError::Read { workload, .. },
            ) => format!("waiting for workload/{workload} to be ready"),
            StepError::Readiness(_) => "waiting for a replaced resource to be gone".to_owned(),
            StepError::Unordered { id } => format!("ordering the write of {id}"),
            StepError::Interrupted => "stopping at a signal".to_owned(),
            StepError::LockLost { .. } => "keeping the lock".to_owned(),
            StepError::Record { .. } => "recording the release".to_owned(),
            StepError::Stopped { .. } => "making its writes".to_owned(),
            StepError::NotKept { .. } => "restoring".to_owned(),
        }
    }
}

/// How the executor runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Leave a failed run as it is.
    pub no_rollback: bool,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
    /// How long the lock lives without renewal (renewed every third of it).
    pub lock_ttl: Duration,
    /// Who runs it (the lock's holder and the release's actor).
    pub actor: Actor,
    /// Also compare live state before taking the lock, so that a plan that
    /// moved is refused without writing even the lock (a saved plan; a
    /// plan made a moment ago has little chance to have moved).
    pub check_before_lock: bool,
    /// The kind the release is recorded as, instead of the plan's (a saved
    /// plan carried out by `ferry apply` is an `apply`).
    pub record_as: Option<ReleaseKind>,
    /// How the plan was approved, recorded with the release.
    pub approval: Option<crate::release::Approval>,
}

/// Where a plan is carried out: the target environment and its API, and
/// the registry credentials its copies need.
pub struct Target<'a, A: ControlPlane> {
    pub client: &'a A,
    pub env: &'a Environment,
    pub credentials: &'a crate::registry::Credentials,
}

/// Shows what the executor does; the library never prints.
pub trait Reporter: crate::registry::Reporter + Sync {
    /// A write done, a workload waited for.
    fn event(&self, event: Event<'_>);
    /// One line of progress or outcome.
    fn note(&self, line: &str);
}

/// What became of the resources a failed run had written.
#[derive(Debug)]
pub enum Restored {
    /// The run failed before its first write.
    NothingWritten,
    /// Every one was put back.
    Restored(Vec<ResourceId>),
    /// Left as they were written, and why.
    Left { resources: Vec<ResourceId>, why: Unrestored },
    /// Putting them back failed part of the way: `restored` were put back,
    /// `unrestored` were not.
    Failed { error: Box<StepError>, restored: Vec<ResourceId>, unrestored: Vec<ResourceId> },
}

/// Why written resources were not restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrestored {
    /// `--no-rollback`.
    NoRollback,
    /// The lock was lost: the environment may be another runner's now,
    /// and a restore would write over its work.
    LockLost,
    /// The writes all succeeded (only recording the release failed).
    Succeeded,
}

impl fmt::Display for Unrestored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unrestored::NoRollback => "--no-rollback",
            Unrestored::LockLost => {
                "the lock was lost, so another runner may be changing the environment: Ferry wrote nothing more, restores included"
            }
            Unrestored::Succeeded => "every write succeeded and every changed workload was ready",
        })
    }
}

impl Restored {
    /// Whether the target is as it was before the run.
    pub fn is_restored(&self) -> bool {
        matches!(self, Restored::NothingWritten | Restored::Restored(_))
    }

    /// The resources put back.
    pub fn restored(&self) -> &[ResourceId] {
        match self {
            Restored::Restored(ids) | Restored::Failed { restored: ids, .. } => ids,
            _ => &[],
        }
    }

    /// The resources written and not put back, with why.
    pub fn unrestored(&self) -> (&[ResourceId], String) {
        match self {
            Restored::Left { resources, why } => (resources, why.to_string()),
            Restored::Failed { error, unrestored, .. } => {
                (unrestored, format!("restoring failed: {}", chain(&**error)))
            }
            _ => (&[], String::new()),
        }
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn names(ids: &[ResourceId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restored::NothingWritten => f.write_str("nothing had been written"),
            Restored::Restored(ids) => write!(f, "restored {}", names(ids)),
            Restored::Left { resources, why } => write!(
                f,
                "{} left as written ({why})",
                crate::output::count(resources.len(), "changed resource")
            ),
            Restored::Failed { error, restored, unrestored } => write!(
                f,
                "restoring failed ({error}); restored {}, not restored {}",
                if restored.is_empty() { "none".to_owned() } else { names(restored) },
                names(unrestored)
            ),
        }
    }
}

/// Whether the failed run's release was recorded.
#[derive(Debug)]
pub enum Recorded {
    /// As this revision, outcome `failed`.
    Revision(u64),
    /// Not recorded, and why.
    Not(String),
}

/// What became of the lock of a failed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockLeft {
    Released,
    /// Lost during the run: another runner's now, or expired; not deleted.
    Lost,
    /// Deleting it failed (the reason); it expires by itself.
    Left(String),
}

/// What a failed run left in its environment: the step that failed, what
/// was written, restored and not (with why), whether the release was
/// recorded, the lock, and what to run next. Shown by the error's help
/// and, with `--output json`, as `failure` ([`Left::to_json`]).
#[derive(Debug)]
pub struct Left {
    pub environment: String,
    /// The source environment of a promotion, for the `ferry plan` to run.
    pub source: Option<String>,
    pub step: String,
    /// In the order written.
    pub written: Vec<ResourceId>,
    pub restored: Restored,
    pub recorded: Recorded,
    pub lock: LockLeft,
}

impl Left {
    /// One clause: the state the environment is in.
    pub fn state(&self) -> String {
        let env = &self.environment;
        let written = crate::output::count(self.written.len(), "resource");
        match &self.restored {
            Restored::NothingWritten => format!("nothing was written, {env} is as it was"),
            Restored::Restored(_) => {
                format!("{env} is as it was: {written} written and restored")
            }
            Restored::Left { resources, .. } => format!(
                "{env} is left changed: {} written, not restored",
                crate::output::count(resources.len(), "resource")
            ),
            Restored::Failed { restored, unrestored, .. } => format!(
                "{env} is left half-changed: {written} written, {} restored, {} not restored",
                restored.len(),
                unrestored.len()
            ),
        }
    }

    /// The commands to run next, most useful first.
    pub fn next(&self) -> Vec<String> {
        let env = &self.environment;
        let mut next = Vec::new();
        if self.lock == LockLeft::Lost {
            next.push(format!(
                "ferry status {env}  # after the runner that holds the lock now has finished"
            ));
        } else if !self.restored.is_restored() {
            next.push(format!("ferry status {env}  # what runs there now"));
        }
        if !self.restored.is_restored() {
            let from = self.source.as_deref().map_or(String::new(), |s| format!(" --from {s}"));
            next.push(format!("ferry plan {env}{from}  # what differs from the release"));
            next.push(format!(
                "ferry rollback {env}  # back to the last successful release, if any"
            ));
        }
        if let Recorded::Revision(revision) = self.recorded {
            next.push(format!("ferry history {env} {revision}  # this failed release"));
        }
        if let LockLeft::Left(_) = self.lock {
            next.push(format!("ferry unlock {env}  # once the lock has expired"));
        }
        next
    }

    /// The `failure` object of `--output json`.
    pub fn to_json(&self) -> Value {
        let (unrestored, why) = self.restored.unrestored();
        let (revision, not_recorded) = match &self.recorded {
            Recorded::Revision(revision) => (Some(*revision), None),
            Recorded::Not(reason) => (None, Some(reason.clone())),
        };
        let (lock, lock_error) = match &self.lock {
            LockLeft::Released => ("released", None),
            LockLeft::Lost => ("lost", None),
            LockLeft::Left(error) => ("left", Some(error.clone())),
        };
        serde_json::json!({
            "environment": self.environment,
            "step": self.step,
            "state": self.state(),
            "written": self.written,
            "restored": self.restored.restored(),
            "not_restored": unrestored,
            "not_restored_because": (!unrestored.is_empty()).then_some(why),
            "release": revision,
            "release_not_recorded_because": not_recorded,
            "lock": lock,
            "lock_error": lock_error,
            "next": self.next(),
        })
    }
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = |ids: &[ResourceId]| if ids.is_empty() { "none".to_owned() } else { names(ids) };
        writeln!(f, "written: {}", none(&self.written))?;
        if !self.written.is_empty() {
            writeln!(f, "restored: {}", none(self.restored.restored()))?;
            let (unrestored, why) = self.restored.unrestored();
            if unrestored == self.written.as_slice() && unrestored.len() > 1 {
                writeln!(f, "not restored: all {} ({why})", unrestored.len())?;
            } else if !unrestored.is_empty() {
                writeln!(f, "not restored: {} ({why})", names(unrestored))?;
            }
        }
        match &self.recorded {
            Recorded::Revision(revision) => {
                writeln!(f, "release {revision} is recorded as failed")?
            }
            Recorded::Not(reason) => writeln!(f, "no release was recorded: {reason}")?,
        }
        match &self.lock {
            LockLeft::Released => writeln!(f, "the lock was released")?,
            LockLeft::Lost => writeln!(f, "the lock was lost and left to its holder")?,
            LockLeft::Left(error) => {
                writeln!(f, "the lock could not be released ({error}); it expires by itself")?;
            }
        }
        write!(f, "next:")?;
        for command in self.next() {
            write!(f, "\n  {command}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ExecuteError {
    #[error("{resource} changed in {environment} since the plan was made")]
    #[diagnostic(
        code(ferry::promote::moved),
        help("nothing was written; make the plan again and review it")
    )]
    Moved { environment: String, resource: String },

    #[error("the payload of {resource} is not the one the plan was made with")]
    #[diagnostic(
        code(ferry::execute::payload),
        help(
            "a plan holds no digest of a secret's payload; within a run it is checked against a mark keyed for that run only. Make the plan again"
        )
    )]
    Payload { resource: ResourceId },

    #[error("{environment} is not ready for this release")]
    #[diagnostic(
        code(ferry::promote::preflight),
        help("{}; nothing was written", listed(findings))
    )]
    Preflight { environment: String, findings: Vec<Finding> },

    #[error("{} {} failed while {}; {}", what.failed_run(), left.environment, left.step, left.state())]
    #[diagnostic(code(ferry::promote::failed), help("{left}"))]
    Failed {
        /// What was carried out (a rollback's failure says so).
        what: ReleaseKind,
        left: Box<Left>,
        #[source]
        #[diagnostic_source]
        cause: StepError,
    },

    #[error(
        "release {revision} of {}, a {} left in progress when its run stopped, did not finish; {}",
        left.environment, what.as_str(), left.state()
    )]
    #[diagnostic(
        code(ferry::release::finished_failed),
        help("this run changed nothing else; run it again\n{left}")
    )]
    Finished {
        revision: u64,
        what: ReleaseKind,
        left: Box<Left>,
        #[source]
        #[diagnostic_source]
        cause: StepError,
    },

    #[error("copying {image} failed")]
    #[diagnostic(code(ferry::promote::copy))]
    Copy {
        image: String,
        #[source]
        #[diagnostic_source]
        source: crate::registry::RegistryError,
    },

    #[error("interrupted before anything was written; the lock of {environment} was released")]
    #[diagnostic(code(ferry::promote::interrupted), help("run the promotion again"))]
    Interrupted { environment: String },

    #[error("interrupted twice, so stopped at once; the lock of {environment} was released")]
    #[diagnostic(
        code(ferry::promote::interrupted),
        help(
            "what was written so far stays, and the release stays recorded as in progress: the next run into {environment} (or `ferry recover {environment}`) finishes it, waiting for what was written or restoring it"
        )
    )]
    Abandoned { environment: String },

    #[error(
        "release {revision} of {environment} is still recorded as in progress; nothing was written"
    )]
    #[diagnostic(
        code(ferry::release::unfinished),
        help(
            "its run stopped before finishing it (or another run is finishing it now); `ferry recover {environment}` finishes it (waits for what it wrote, or restores it), then run this again"
        )
    )]
    Unfinished { environment: String, revision: u64 },

    #[error("interrupted while waiting for the lock of {environment}; nothing was changed")]
    #[diagnostic(
        code(ferry::promote::interrupted),
        help("a lock created at the instant of the interruption expires by itself")
    )]
    InterruptedWaiting { environment: String },

    #[error("{} {environment} failed before its first write; nothing was changed", what.failed_run())]
    #[diagnostic(
        code(ferry::promote::not_started),
        help(
            "the lock was released (or expires by itself); run again once the API answers, `ferry status {environment}` shows what runs there"
        )
    )]
    BeforeWrites {
        environment: String,
        what: ReleaseKind,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    RecordOverBudget(#[from] release::OverBudget),
}

impl From<ExecuteError> for Error {
    fn from(error: ExecuteError) -> Self {
        Error::Execute(Box::new(error))
    }
}

/// Carries out `plan` in `target`; the release it recorded.
pub async fn execute<A: ControlPlane>(
    plan: &Plan,
    target: &Target<'_, A>,
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Release, Error> {
    let env = target.env;
    // Payloads first: a plan that cannot be carried out takes no lock.
    let bodies: Vec<Option<Value>> = plan
        .steps
        .writes
        .iter()
        .map(|w| plan.secrets.body_of(w))
        .collect::<Result<_, _>>()
        .map_err(|resource| ExecuteError::Payload { resource })?;
    // A release that could not be recorded is refused before any write.
    release::fit(&release_record(plan, options, env, 0, 0))
        .and_then(|_| release::fit(&pre_ferry_record(plan, options, env, 0)))
        .map_err(ExecuteError::from)?;
    if options.check_before_lock {
        unmoved(target.client, env, plan).await?;
    }
    // Listening before the lock exists: a signal from here on releases it.
    let mut signals = crate::shutdown::Signals::listen();
    let acquire = Lock::acquire(
        target.client,
        env,
        &options.actor,
        options.lock_ttl.max(Duration::from_secs(1)),
        options.lock_timeout,
    );
    let lock = tokio::select! {
        lock = acquire => lock.map_err(ExecuteError::from)?,
        () = signals.received() => {
            return Err(ExecuteError::InterruptedWaiting { environment: env.name.clone() }.into());
        }
    };
    let what = match options.record_as.or(plan.steps.release.kind) {
        Some(ReleaseKind::Rollback) => "rollback",
        Some(ReleaseKind::Deploy) => "deploy",
        Some(ReleaseKind::PreFerry) => "adoption",
        _ => "promotion",
    };
    reporter.note(&format!("Locked {} for this {what}", env.name));
    let run = Run {
        plan,
        target,
        options,
        reporter,
        bodies,
        fence: lock.fence().clone(),
        holder: lock.holder().to_owned(),
    };
    let stop = CancellationToken::new();
    let locked = run.locked(&stop);
    tokio::pin!(locked);
    let result = tokio::select! {
        result = &mut locked => result,
        () = signals.received() => {
            reporter.note("Interrupted: letting the writes in flight finish, then restoring what changed (signal again to stop at once)");
            stop.cancel();
            tokio::select! {
                result = &mut locked => result,
                () = signals.received() => Err(ExecuteError::Abandoned { environment: env.name.clone() }.into()),
            }
        }
    };
    let released = match lock.release().await {
        Ok(true) => LockLeft::Released,
        Ok(false) => LockLeft::Lost,
        Err(error) => {
            tracing::warn!(
                "could not release the lock of {}: {error}; it expires by itself",
                env.name
            );
            LockLeft::Left(error.to_string())
        }
    };
    let what = options.record_as.or(plan.steps.release.kind).unwrap_or(ReleaseKind::Promote);
    result.map_err(|error| match error {
        Error::Execute(mut failed) => {
            if let ExecuteError::Failed { left, .. } = &mut *failed {
                left.lock = released;
            }
            Error::Execute(failed)
        }
        // Under the lock the API fails only before the first write: the
        // writes' own failures, the restore's and the record's are in
        // `Failed`. Said so, not as a bare request error.
        Error::Api(source) => {
            ExecuteError::BeforeWrites { environment: env.name.clone(), what, source }.into()
        }
        other => other,
    })
}

/// The record of carrying out `plan` as release `revision`, started at
/// `started` (ms), before its outcome is known.
fn release_record(
    plan: &Plan,
    options: &Options,
    env: &Environment,
    revision: u64,
    started: u64,
) -> Release {
    let info = &plan.steps.release;
    Release {
        schema: release::SCHEMA.to_owned(),
        environment: env.name.clone(),
        revision,
        kind: options.record_as.or(info.kind),
        source: info.source.clone(),
        commit: info.commit.clone(),
        images: info.images.clone(),
        plan_hash: plan.hash.clone(),
        actor: options.actor.clone(),
        started: rfc3339(started),
        finished: String::new(),
        outcome: Outcome::Succeeded,
        rolled_back: false,
        message: info.note.clone(),
        approval: options.approval.clone(),
        pending: None,
        app: env.app.clone(),
        shared_changed: plan::shared_changes(plan).iter().map(|r| r.id.clone()).collect(),
    }
}

/// The `pre-ferry` record, as release `revision`, of what the workloads
/// `plan` adopts ran before Ferry.
fn pre_ferry_record(plan: &Plan, options: &Options, env: &Environment, revision: u64) -> Release {
    let now = rfc3339(now_ms());
    Release {
        schema: release::SCHEMA.to_owned(),
        environment: env.name.clone(),
        revision,
        kind: Some(ReleaseKind::PreFerry),
        source: None,
        commit: None,
        images: plan.steps.release.adopted.clone(),
        plan_hash: plan.hash.clone(),
        actor: options.actor.clone(),
        started: now.clone(),
        finished: now,
        outcome: Outcome::Succeeded,
        rolled_back: false,
        message: Some(format!("what ran in {} before Ferry adopted it", env.name)),
        approval: None,
        pending: None,
        app: env.app.clone(),
        shared_changed: Vec::new(),
    }
}

struct Run<'a, A: ControlPlane> {
    plan: &'a Plan,
    target: &'a Target<'a, A>,
    options: &'a Options,
    reporter: &'a dyn Reporter,
    /// Each write's body, payloads put back.
    bodies: Vec<Option<Value>>,
    /// Whether the lock is still this run's: checked before every write.
    fence: Fence,
    /// The lock's holder id, which the record in progress names.
    holder: String,
}

impl<A: ControlPlane> Run<'_, A> {
    async fn locked(&self, stop: &CancellationToken) -> Result<Release, Error> {
        let (client, env) = (self.target.client, self.target.env);
        let started = now_ms();
        // Under the lock: the revision cannot be taken twice (history.rs).
        // Both only read, so they go out together: one round, not two.
        // The copies start at the same time, but no tag is written before
        // these reads found nothing moved (`checked`): until then a copy
        // only adds blobs, which nothing names.
        let (checked, unchecked) = tokio::sync::watch::channel(None);
        let records = !self.plan.steps.applied.is_empty();
        let reads = async {
            let read = futures::try_join!(
                unmoved(client, env, self.plan),
                async {
                    // A release in progress that is not this run's: its run
                    // is gone (or it would hold the lock), and what it wrote
                    // is not what this plan was made against.
                    let numbering = history::next_revision(client, env).await?;
                    match numbering.unfinished.first() {
                        Some((revision, _)) => Err(Error::from(ExecuteError::Unfinished {
                            environment: env.name.clone(),
                            revision: *revision,
                        })),
                        None => Ok(numbering),
                    }
                },
                async {
                    // What Ferry last wrote, read under the lock (it is
                    // rewritten after the writes).
                    Ok(if records { observe::applied(client, env).await } else { None })
                },
            );
            checked.send_replace(Some(read.is_ok()));
            read
        };
        let prepared = async {
            // The copies, then the image checks; the other checks meanwhile.
            let findings = preflight::run(
                client,
                env,
                &self.plan.steps.checks,
                &self.plan.secrets,
                &self.plan.steps.copies.iter().filter_map(|c| landing(&c.destination)).collect(),
                self.copy_images(unchecked),
            )
            .await?;
            if findings.is_empty() {
                Ok(())
            } else {
                Err(Error::from(ExecuteError::Preflight {
                    environment: env.name.clone(),
                    findings,
                }))
            }
        };
        let (before, history::Numbering { mut revision, mut existing, .. }, applied) = tokio::select! {
            done = async { futures::try_join!(reads, prepared) } => done?.0,
            () = stop.cancelled() => {
                return Err(ExecuteError::Interrupted { environment: env.name.clone() }.into());
            }
        };
        if existing.is_empty() && !self.plan.steps.release.adopted.is_empty() {
            existing.push(self.record_pre_ferry(revision).await?);
            revision = release::next_revision(&existing);
        }
        // Recorded in progress before the first write, so that a run that
        // dies from here on leaves what the next run needs to finish it
        // (`unfinished`); it also takes the revision the workloads are
        // stamped with.
        let mut record = release_record(self.plan, self.options, env, revision, started);
        record.outcome = Outcome::InProgress;
        record.pending = Some(self.pending(&before));
        if release::fit(&record).is_err() {
            record.pending = record.pending.map(release::Pending::versions_only);
        }
        release::fit(&record).map_err(ExecuteError::from)?;
        if let Some(lost) = self.lock_lost() {
            let why = Recorded::Not("its lock was lost before it began".to_owned());
            return Err(self.failed(lost, Vec::new(), Restored::NothingWritten, why));
        }
        record.revision = history::record(client, env, &record, &existing).await?;
        record.pending = None;
        record.outcome = Outcome::Succeeded;
        let revision = record.revision;
        let stamp = revision.to_string();
        let writes: Vec<schedule::Ready<'_>> = self
            .plan
            .steps
            .writes
            .iter()
            .zip(&self.bodies)
            .map(|(write, body)| schedule::Ready {
                write,
                body: match body {
                    Some(body) if write.stamp => {
                        Some(steps::with_tag(body, release::RELEASE_TAG, &stamp))
                    }
                    other => other.clone(),
                },
            })
            .collect();
        let outcome =
            schedule::run(client, env, &writes, self.reporter, stop, Some(&self.fence)).await;
        if let Some(applied) = &applied
            && self.lock_lost().is_none()
        {
            self.record_applied(applied, &outcome).await;
        }
        let (cause, restored) = match outcome.result {
            Ok(()) => match self.lock_lost() {
                None => {
                    record.finished = rfc3339(now_ms());
                    match history::finish(client, env, &record).await {
                        Ok(revision) => {
                            record.revision = revision;
                            return Ok(record);
                        }
                        Err(source) => {
                            let left = Restored::Left {
                                resources: outcome.written.clone(),
                                why: Unrestored::Succeeded,
                            };
                            return Err(self.failed(
                                StepError::Record { source },
                                outcome.written,
                                left,
                                Recorded::Not("writing its record failed".to_owned()),
                            ));
                        }
                    }
                }
                Some(lost) => {
                    let why = Unrestored::LockLost;
                    (lost, Restored::Left { resources: outcome.written.clone(), why })
                }
            },
            Err(cause) => {
                let restored = if self.options.no_rollback {
                    let why = Unrestored::NoRollback;
                    Restored::Left { resources: outcome.written.clone(), why }
                } else if let StepError::LockLost { .. } = cause {
                    let why = Unrestored::LockLost;
                    Restored::Left { resources: outcome.written.clone(), why }
                } else {
                    self.restore(outcome.written.clone(), &before).await
                };
                (cause, restored)
            }
        };
        // A lost lock is another runner's: the record stays in progress,
        // for that runner (or the next) to finish.
        let recorded = if let Some(lost) = self.lock_lost() {
            Recorded::Not(format!(
                "{lost}; release {revision} stays recorded as in progress, and the next run into {} finishes it",
                env.name
            ))
        } else {
            let info = &self.plan.steps.release;
            record.outcome = Outcome::Failed;
            record.rolled_back = !self.options.no_rollback && restored.is_restored();
            let failure = format!("{cause}; {restored}");
            record.message = Some(match &info.note {
                Some(note) => format!("{note}: {failure}"),
                None => failure,
            });
            record.finished = rfc3339(now_ms());
            match history::finish(client, env, &record).await {
                Ok(revision) => Recorded::Revision(revision),
                Err(error) => {
                    Recorded::Not(format!("writing its record failed: {}", chain(&error)))
                }
            }
        };
        Err(self.failed(cause, outcome.written, restored, recorded))
    }

    /// What a later run needs to finish this release should this run die:
    /// every write, with the state `before` it as read under the lock
    /// (`unmoved`). A resource not read there did not exist (as
    /// [`steps::restore`] takes it); a secret keeps only its version.
    fn pending(&self, before: &HashMap<ResourceId, Value>) -> release::Pending {
        let writes = self
            .plan
            .steps
            .writes
            .iter()
            .map(|write| release::PendingWrite {
                id: write.id.clone(),
                delete: write.method == steps::Method::Delete,
                gate: write.gate,
                stamp: write.stamp,
                before: match before.get(&write.id) {
                    None => release::Before::Absent,
                    Some(body) if write.id.kind == crate::manifest::Kind::Secret => {
                        release::Before::Version { version: body.get("version").cloned() }
                    }
                    Some(body) => release::Before::Kept {
                        body: steps::writable(body),
                        version: body.get("version").cloned(),
                    },
                },
            })
            .collect();
        release::Pending {
            holder: self.holder.clone(),
            writes,
            no_rollback: self.options.no_rollback,
        }
    }

    /// The lock, if it was lost, as the step error that says so.
    fn lock_lost(&self) -> Option<StepError> {
        let env = self.target.env;
        self.fence
            .check(self.target.client.now_ms())
            .err()
            .map(|reason| StepError::LockLost { environment: env.name.clone(), reason })
    }

    /// The error of a failed run, saying what it left.
    fn failed(
        &self,
        cause: StepError,
        written: Vec<ResourceId>,
        restored: Restored,
        recorded: Recorded,
    ) -> Error {
        let what = self.options.record_as.or(self.plan.steps.release.kind);
        let lost = matches!(cause, StepError::LockLost { .. });
        let left = Left {
            environment: self.target.env.name.clone(),
            source: self.plan.steps.release.source.clone(),
            step: cause.step(),
            written,
            restored,
            recorded,
            lock: if lost { LockLeft::Lost } else { LockLeft::Released },
        };
        ExecuteError::Failed {
            what: what.unwrap_or(ReleaseKind::Promote),
            left: Box::new(left),
            cause,
        }
        .into()
    }

    /// Records what the workloads the plan adopts ran before Ferry, as
    /// the `pre-ferry` release `revision` of an environment that has none
    /// yet: `ferry rollback` can then go back to it. Its revision.
    async fn record_pre_ferry(&self, revision: u64) -> Result<u64, Error> {
        let (client, env) = (self.target.client, self.target.env);
        let record = pre_ferry_record(self.plan, self.options, env, revision);
        let revision = history::record(client, env, &record, &[]).await?;
        self.reporter.note(&format!(
            "Recorded what {} ran before Ferry as release {revision} (`ferry rollback` goes back to it)",
            env.name
        ));
        Ok(revision)
    }

    /// Rewrites the record of what Ferry last wrote (`before`, read under
    /// the lock) for what this run wrote, when that changes it: PUT to the
    /// secrets, as `cpln apply` upserts. Not fatal: the writes stand, and
    /// a record left behind only makes later plans leave more as it is.
    async fn record_applied(&self, before: &Applied, outcome: &Written) {
        let (client, env) = (self.target.client, self.target.env);
        let steps = &self.plan.steps;
        let deleted: Vec<ResourceId> = steps
            .writes
            .iter()
            .filter(|w| w.method == steps::Method::Delete && outcome.written.contains(&w.id))
            .map(|w| w.id.clone())
            .collect();
        let (after, over) = before.after_within_budget(&applied::Run {
            planned: &steps.applied,
            deleted: &deleted,
            written: &outcome.written,
            succeeded: outcome.result.is_ok(),
        });
        if over {
            tracing::warn!(
                "the record of what Ferry wrote in {} would exceed {} KiB; the resources of this run are left out of it",
                env.name,
                applied::BUDGET / 1024
            );
        }
        if after == *before {
            return;
        }
        let collection = paths::collection(&env.org, &env.gvc, crate::manifest::Kind::Secret);
        if let Err(error) = client.put(&collection, &after.to_secret(env)).await {
            tracing::warn!(
                "could not write {}, the record of what Ferry wrote in {}: {error}; later plans leave fields git does not set as they are",
                applied::secret_name(&env.resource_key()),
                env.name
            );
        }
    }

    /// Puts back what `written` changed.
    async fn restore(
        &self,
        written: Vec<ResourceId>,
        before: &HashMap<ResourceId, Value>,
    ) -> Restored {
        if !written.is_empty() {
            self.reporter.note(&format!(
                "Restoring the {} this run changed",
                crate::output::count(written.len(), "resource")
            ));
        }
        let (client, env) = (self.target.client, self.target.env);
        put_back(client, env, written, before, &self.fence, self.reporter).await
    }

    /// Copies the plan's images, [`COPIES`] at a time: each copy is a
    /// chain of dependent registry rounds (manifest, blob checks, blobs,
    /// manifest), so one after the other would add up those chains. Each
    /// tag waits for `checked` to say the re-read under the lock found
    /// nothing moved; when it found something, no tag is written (the
    /// re-read's error is the run's). Yields each tag written, as
    /// repository and tag.
    fn copy_images(
        &self,
        checked: tokio::sync::watch::Receiver<Option<bool>>,
    ) -> impl Stream<Item = Result<(String, String), Error>> + '_ {
        stream::iter(&self.plan.steps.copies)
            .map(move |copy| {
                let mut checked = checked.clone();
                async move {
                    let (source, destination) = (&copy.source, &copy.destination);
                    self.reporter.note(&format!("Copying {source} -> {destination}"));
                    let mut request = crate::registry::CopyRequest::new(
                        source.parse().map_err(|e| copy_error(source, e))?,
                        destination.parse().map_err(|e| copy_error(destination, e))?,
                    );
                    // The plan saw the tag absent or elsewhere.
                    request.planned = true;
                    let failed =
                        |error| ExecuteError::Copy { image: source.clone(), source: error };
                    let staged =
                        crate::registry::stage(&request, self.target.credentials, self.reporter)
                            .await
                            .map_err(failed)?;
                    let unmoved = checked.wait_for(Option::is_some).await;
                    if !unmoved.is_ok_and(|unmoved| *unmoved == Some(true)) {
                        return Ok(None);
                    }
                    let report = staged.tag(self.reporter).await.map_err(failed)?;
                    self.reporter
                        .note(&format!("Copied {} ({})", report.destination, report.digest));
                    Ok::<_, Error>(landing(destination))
                }
            })
            .buffer_unordered(COPIES)
            .try_filter_map(|landed| async move { Ok(landed) })
    }
}

/// Puts back what `written` changed, from the state `before` it (a
/// resource not in it did not exist, and is deleted; [`steps::restore`]).
/// Not stopped by a signal; a lock lost meanwhile (`fence`) stops it.
async fn put_back<A: ControlPlane>(
    client: &A,
    env: &Environment,
    written: Vec<ResourceId>,
    before: &HashMap<ResourceId, Value>,
    fence: &Fence,
    reporter: &dyn Reporter,
) -> Restored {
    if written.is_empty() {
        return Restored::NothingWritten;
    }
    let writes = steps::restore(&written, before);
    let ready: Vec<schedule::Ready<'_>> =
        writes.iter().map(|write| schedule::Ready { write, body: write.body.clone() }).collect();
    let outcome =
        schedule::run(client, env, &ready, reporter, &CancellationToken::new(), Some(fence)).await;
    match outcome.result {
        Ok(()) => Restored::Restored(written),
        Err(error) => {
            let unrestored =
                written.into_iter().filter(|id| !outcome.written.contains(id)).collect();
            Restored::Failed { error: Box::new(error), restored: outcome.written, unrestored }
        }
    }
}

/// The repository and tag of a copy's `destination`.
fn landing(destination: &str) -> Option<(String, String)> {
    let image: crate::registry::ImageRef = destination.parse().ok()?;
    Some((image.repository, image.tag?))
}

/// How many images are copied at once (each also copies its blobs in
/// parallel, crate::registry).
const COPIES: usize = 4;

fn copy_error(reference: &str, error: crate::registry::InvalidReference) -> ExecuteError {
    ExecuteError::Copy {
        image: reference.to_owned(),
        source: crate::registry::RegistryError::from(error),
    }
}

/// Reads the live state of every resource of `plan` again and compares it
/// with what the plan was made against (a delete by existence and version,
/// as the managed resources were listed; everything else by fingerprint).
/// Refuses, naming every resource that moved; else the live bodies, the
/// state a failure restores.
async fn unmoved<A: ControlPlane>(
    client: &A,
    env: &Environment,
    plan: &Plan,
) -> Result<HashMap<ResourceId, Value>, Error> {
    let read: Vec<(ResourceId, bool, Option<Value>)> =
        stream::iter(plan.resources.iter().filter_map(|r| {
            let id: ResourceId = r.id.parse().ok()?;
            Some((id, r))
        }))
        .map(|(id, resource)| async move {
            let body = if resource.action == Action::Delete {
                client.get_opt(&paths::item(&env.org, &env.gvc, id.kind, &id.name)).await?
            } else {
                observe::fetch(client, env, &id).await?
            };
            let now = plan::live_state(body.as_ref().map(|b| observe::state(env, &id, b)).as_ref());
            let same = if resource.action == Action::Delete {
                (now.exists, now.version) == (resource.live.exists, resource.live.version)
            } else {
                now == resource.live
            };
            Ok::<_, ApiError>((id, same, body))
        })
        .buffered(64)
        .try_collect()
        .await?;
    let moved: Vec<String> =
        read.iter().filter(|(_, same, _)| !same).map(|(id, _, _)| id.to_string()).collect();
    if !moved.is_empty() {
        return Err(ExecuteError::Moved {
            environment: env.name.clone(),
            resource: moved.join(", "),
        }
        .into());
    }
    Ok(read.into_iter().filter_map(|(id, _, body)| Some((id, body?))).collect())
}

#[cfg(test)]
mod tests;
