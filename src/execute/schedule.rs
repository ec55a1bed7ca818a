//! Runs writes by dependency, not by wave: a write starts as soon as every
//! write it waits for is written (and, for the workloads it waits for,
//! ready), at most [`WRITES_IN_FLIGHT`] at once; a workload that is a
//! readiness gate is waited for on its own, so an unrelated slow workload
//! holds back nothing but what depends on it. The first failure (or a
//! stop) starts nothing new: writes in flight finish, readiness waits are
//! dropped. So does a lost lock: the [`Fence`] is checked before each write
//! starts, and every [`FENCE_POLL`] meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;

use super::{CancellationToken, Event, Reporter, StepError};
use crate::api::ControlPlane;
use crate::config::Environment;
use crate::lock::Fence;
use crate::manifest::ResourceId;
use crate::plan::Write;
use crate::readiness::{self, Progress};

/// How often the lock is looked at while writes and waits are in flight.
const FENCE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes started at once (the client bounds requests in flight too).
const WRITES_IN_FLIGHT: usize = 64;

/// What was written before the run ended, in the order written, and how
/// it ended.
#[derive(Debug)]
pub struct Outcome {
    pub written: Vec<ResourceId>,
    pub result: Result<(), StepError>,
}

/// A write with the body it sends (payloads put back, release stamped).
pub(super) struct Ready<'a> {
    pub write: &'a Write,
    pub body: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Writing,
    Written,
    Ready,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs `writes` against `env`.
pub(super) async fn run<A: ControlPlane>(
    client: &A,
    env: &Environment,
    writes: &[Ready<'_>],
    reporter: &dyn Reporter,
    stop: &CancellationToken,
    fence: Option<&Fence>,
) -> Outcome {
    let index: HashMap<&ResourceId, usize> =
        writes.iter().enumerate().map(|(i, w)| (&w.write.id, i)).collect();
    let mut state = vec![State::Pending; writes.len()];
    let mut written = Vec::new();
    let mut failure: Option<StepError> = None;
    let mut in_flight: FuturesUnordered<Boxed<'_, (usize, Result<(), StepError>)>> =
        FuturesUnordered::new();
    let mut waits: FuturesUnordered<Boxed<'_, (usize, Result<(), StepError>)>> =
        FuturesUnordered::new();
    let satisfied = |state: &[State], i: usize| {
        let write = writes[i].write;
        let done = |id: &ResourceId, needs: State| {
            index.get(id).is_none_or(|&j| {
                let reached = state[j];
                match needs {
                    State::Ready => {
                        reached == State::Ready
                            || (reached == State::Written && !writes[j].write.gate)
                    }
                    _ => matches!(reached, State::Written | State::Ready),
                }
            })
        };
        write.after_written.iter().all(|id| done(id, State::Written))
            && write.after_ready.iter().all(|id| done(id, State::Ready))
    };
    loop {
        let stopping = failure.is_some() || stop.is_cancelled();
        if stopping {
            // Readiness waits end with the run; writes in flight finish.
            waits = FuturesUnordered::new();
        } else {
            for i in 0..writes.len() {
                if in_flight.len() >= WRITES_IN_FLIGHT {
                    break;
                }
                if state[i] == State::Pending && satisfied(&state, i) {
                    if let Some(reason) = fence.and_then(|f| f.check(client.now_ms()).err()) {
                        let environment = env.name.clone();
                        failure.get_or_insert(StepError::LockLost { environment, reason });
                        break;
                    }
                    state[i] = State::Writing;
                    let ready = &writes[i];
                    in_flight.push(Box::pin(async move {
                        let result =
                            super::write::write(client, env, ready.write, ready.body.as_ref())
                                .await;
                        (i, result)
                    }));
                }
            }
        }
        if in_flight.is_empty() && waits.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let write = writes[i].write;
                match result {
                    Ok(()) => {
                        reporter.event(Event::Written { id: &write.id, action: write.action });
                        written.push(write.id.clone());
                        state[i] = State::Written;
                        if write.gate && !stopping {
                            let workload = write.id.name.clone();
                            waits.push(Box::pin(async move {
                                let progress = |progress: Progress<'_>| match progress {
                                    Progress::Waiting(report) => {
                                        reporter.event(Event::Waiting { report });
                                    }
                                    Progress::Ready(report) => reporter.event(Event::Ready {
                                        workload: &report.workload,
                                        report,
                                    }),
                                };
                                let result =
                                    readiness::wait(client, env, &[workload], env.readiness, &progress)
                                        .await
                                        .map_err(StepError::from);
                                (i, result)
                            }));
                        }
                    }
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            Some((i, result)) = waits.next(), if !waits.is_empty() => match result {
                Ok(()) => state[i] = State::Ready,
                Err(error) => {
                    failure.get_or_insert(error);
                }
            },
            () = stop.cancelled(), if !stopping => {}
            // A lock lost while only waiting ends the waits too.
            () = tokio::time::sleep(FENCE_POLL), if fence.is_some() && !stopping => {
                if let Some(reason) = fence.and_then(|f| f.check(client.now_ms()).err()) {
                    let environment = env.name.clone();
                    failure.get_or_insert(StepError::LockLost { environment, reason });
                }
            }
            else => break,
        }
    }
    let result = match failure {
        Some(error) => Err(error),
        None if stop.is_cancelled() => Err(StepError::Interrupted),
        None => match state.iter().position(|s| *s == State::Pending) {
            // Only a dependency cycle leaves a write unstarted.
            Some(i) => Err(StepError::Unordered { id: writes[i].write.id.clone() }),
            None => Ok(()),
        },
    };
    Outcome { written, result }
}
