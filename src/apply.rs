//! Carries out steps against an environment: wave by wave, the resources
//! of a wave in parallel (bounded by the client), PUT upserts as
//! `cpln apply` does, then a PATCH with `$replace/…` and `$drop` where the
//! desired state removes fields (a PUT merges and would keep them),
//! delete-then-create for replacements. After each wave that changed
//! workloads, waits until they are ready. A failure stops the waves after
//! it. Restoring what a failed promotion changed is a list of steps too
//! ([`restore_steps`]).

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use miette::Diagnostic;
use serde_json::{Map, Value, json};
pub use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, paths};
use crate::config::{Environment, Readiness};
use crate::diff::Action;
use crate::manifest::{Kind, ResourceId};
use crate::readiness::{self, WorkloadReport};

/// One resource to write.
#[derive(Clone, Debug)]
pub struct Step {
    pub id: ResourceId,
    pub action: Action,
    /// 1-based wave; steps of a wave run together.
    pub wave: usize,
    /// The body to write (`None` for deletes).
    pub body: Option<Value>,
    /// Fields present live must be removed: follow the PUT with a PATCH.
    pub removes_fields: bool,
    /// How that PATCH treats tags (a PUT merges them).
    pub tags: TagWrite,
}

/// What the follow-up PATCH does to tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TagWrite {
    /// Leave them merged (platform tags survive).
    #[default]
    Merge,
    /// Remove these keys (tags that left git).
    Drop(Vec<String>),
    /// Make them exactly the body's (restoring an earlier state).
    Replace,
}

/// What the executor tells whoever shows progress.
pub enum Event<'a> {
    Wave { number: usize, steps: usize },
    Written { id: &'a ResourceId, action: Action },
    Waiting { report: &'a WorkloadReport },
    Ready { workload: &'a str, report: &'a WorkloadReport },
}

/// Shows progress; the library never prints.
pub trait Reporter: Sync {
    fn event(&self, event: Event<'_>);
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ApplyError {
    #[error("writing {id} failed")]
    #[diagnostic(code(ferry::apply::write))]
    Write {
        id: ResourceId,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error("workload/{workload} was not ready after {timeout:?}: location {location}{}: {message}", container.as_deref().map_or(String::new(), |c| format!(", container {c}")))]
    #[diagnostic(
        code(ferry::apply::not_ready),
        help(
            "look at the workload's deployments in that location; raise `readiness.timeout` if it only needs longer"
        )
    )]
    NotReady {
        workload: String,
        location: String,
        container: Option<String>,
        message: String,
        timeout: Duration,
    },

    #[error("reading the readiness of workload/{workload} failed")]
    #[diagnostic(code(ferry::apply::readiness))]
    Readiness {
        workload: String,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error("interrupted by a signal")]
    #[diagnostic(code(ferry::apply::interrupted))]
    Interrupted,
}

/// What was written before the run ended, in order, and how it ended.
pub struct Outcome {
    pub written: Vec<ResourceId>,
    pub result: Result<(), ApplyError>,
}

/// Runs `steps` wave by wave.
pub async fn execute(
    client: &Client,
    env: &Environment,
    steps: &[Step],
    reporter: &dyn Reporter,
    stop: &CancellationToken,
) -> Outcome {
    let mut written = Vec::new();
    let mut waves: Vec<usize> = steps.iter().map(|s| s.wave).collect();
    waves.sort_unstable();
    waves.dedup();
    for wave in waves {
        // Writes in flight finish; no new wave starts after a stop.
        if stop.is_cancelled() {
            return Outcome { written, result: Err(ApplyError::Interrupted) };
        }
        let in_wave: Vec<&Step> = steps.iter().filter(|s| s.wave == wave).collect();
        reporter.event(Event::Wave { number: wave, steps: in_wave.len() });
        let results: Vec<(ResourceId, Result<(), ApiError>)> =
            stream::iter(in_wave.iter().copied())
                .map(|step| async move { (step.id.clone(), write(client, env, step).await) })
                .buffer_unordered(64)
                .collect()
                .await;
        let mut failure = None;
        for (id, result) in results {
            match result {
                Ok(()) => {
                    reporter.event(Event::Written { id: &id, action: action_of(steps, &id) });
                    written.push(id);
                }
                Err(source) => failure = failure.or(Some(ApplyError::Write { id, source })),
            }
        }
        if let Some(error) = failure {
            return Outcome { written, result: Err(error) };
        }
        let workloads: Vec<String> = in_wave
            .iter()
            .filter(|s| s.id.kind == Kind::Workload && s.action != Action::Delete)
            .map(|s| s.id.name.clone())
            .collect();
        let ready = tokio::select! {
            ready = wait_ready(client, env, &workloads, env.readiness, reporter) => ready,
            () = stop.cancelled() => Err(ApplyError::Interrupted),
        };
        if let Err(error) = ready {
            return Outcome { written, result: Err(error) };
        }
    }
    Outcome { written, result: Ok(()) }
}

fn action_of(steps: &[Step], id: &ResourceId) -> Action {
    steps.iter().find(|s| &s.id == id).map_or(Action::Update, |s| s.action)
}

/// Writes one step.
async fn write(client: &Client, env: &Environment, step: &Step) -> Result<(), ApiError> {
    let item = paths::item(&env.org, &env.gvc, step.id.kind, &step.id.name);
    let collection = if step.id.kind == Kind::Gvc {
        format!("/org/{}/gvc", env.org)
    } else {
        paths::collection(&env.org, &env.gvc, step.id.kind)
    };
    match (step.action, &step.body) {
        (Action::Delete, _) => client.delete(&item).await.map(|_| ()),
        (Action::Unchanged, _) | (_, None) => Ok(()),
        (Action::Replace, Some(body)) => {
            client.delete(&item).await?;
            wait_gone(client, &item).await?;
            client.put(&collection, body).await.map(|_| ())
        }
        (Action::Create | Action::Update, Some(body)) => {
            client.put(&collection, body).await?;
            if step.removes_fields
                && let Some(patch) = removal_patch(body, &step.tags)
            {
                client.patch(&item, &patch).await?;
            }
            Ok(())
        }
    }
}

/// A PATCH that makes the live object's own fields exactly the desired
/// ones: `$replace/` for what the body sets; tags as `tags` says.
fn removal_patch(body: &Value, tags: &TagWrite) -> Option<Value> {
    let object = body.as_object()?;
    let mut patch = Map::new();
    for (key, value) in object {
        if !matches!(key.as_str(), "kind" | "name" | "tags" | "description" | "gvc") {
            patch.insert(format!("$replace/{key}"), value.clone());
        }
    }
    match tags {
        TagWrite::Merge => {}
        TagWrite::Drop(keys) => {
            let nulls: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            patch.insert("tags".to_owned(), Value::Object(nulls));
        }
        TagWrite::Replace => {
            patch.insert(
                "$replace/tags".to_owned(),
                object.get("tags").cloned().unwrap_or_else(|| json!({})),
            );
        }
    }
    Some(Value::Object(patch))
}

/// Deletes are asynchronous for some kinds: poll until the item is gone.
async fn wait_gone(client: &Client, item: &str) -> Result<(), ApiError> {
    for _ in 0..120 {
        if client.get_opt(item).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Waits until every one of `workloads` is ready `consecutive_checks` times
/// in a row, checking every `interval`, for at most `timeout`.
pub async fn wait_ready(
    client: &Client,
    env: &Environment,
    workloads: &[String],
    readiness: Readiness,
    reporter: &dyn Reporter,
) -> Result<(), ApplyError> {
    if workloads.is_empty() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + readiness.timeout;
    let mut streak: HashMap<&str, u32> = workloads.iter().map(|w| (w.as_str(), 0)).collect();
    let mut last: HashMap<&str, WorkloadReport> = HashMap::new();
    loop {
        let pending: Vec<&str> = workloads
            .iter()
            .map(String::as_str)
            .filter(|w| streak[w] < readiness.consecutive_checks)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let reports: Vec<(&str, Result<WorkloadReport, ApiError>)> = stream::iter(pending)
            .map(|workload| async move { (workload, check(client, env, workload).await) })
            .buffer_unordered(64)
            .collect()
            .await;
        for (workload, report) in reports {
            let report = report.map_err(|source| ApplyError::Readiness {
                workload: workload.to_owned(),
                source,
            })?;
            let count = streak.entry(workload).or_insert(0);
            if report.is_ready() {
                *count += 1;
                if *count >= readiness.consecutive_checks {
                    reporter.event(Event::Ready { workload, report: &report });
                }
            } else {
                *count = 0;
                reporter.event(Event::Waiting { report: &report });
            }
            last.insert(workload, report);
        }
        if streak.values().all(|c| *c >= readiness.consecutive_checks) {
            return Ok(());
        }
        if tokio::time::Instant::now() + readiness.interval > deadline {
            let (workload, report) = last
                .iter()
                .find(|(w, _)| streak.get(*w).is_some_and(|c| *c < readiness.consecutive_checks))
                .map(|(w, r)| ((*w).to_owned(), r.clone()))
                .unwrap_or_default();
            let blocking = report.blocking().cloned();
            return Err(ApplyError::NotReady {
                workload,
                location: blocking
                    .as_ref()
                    .map_or_else(|| "(all)".to_owned(), |b| b.location.clone()),
                container: blocking.as_ref().and_then(|b| b.container.clone()),
                message: blocking
                    .map_or_else(|| "ready, but not for long enough".to_owned(), |b| b.message),
                timeout: readiness.timeout,
            });
        }
        tokio::time::sleep(readiness.interval).await;
    }
}

async fn check(
    client: &Client,
    env: &Environment,
    workload: &str,
) -> Result<WorkloadReport, ApiError> {
    let body = client.get(&paths::item(&env.org, &env.gvc, Kind::Workload, workload)).await?;
    let deployments = client.list(&paths::deployments(&env.org, &env.gvc, workload)).await?;
    Ok(readiness::assess(&body, &deployments))
}

/// The steps that put back what `written` changed: resources that existed
/// before get their earlier state back (every field, so added ones are
/// removed); resources that did not exist are deleted. Reverse order, one
/// wave each, so that dependents go first.
pub fn restore_steps(written: &[ResourceId], before: &HashMap<ResourceId, Value>) -> Vec<Step> {
    written
        .iter()
        .rev()
        .enumerate()
        .map(|(index, id)| match before.get(id) {
            Some(previous) => Step {
                id: id.clone(),
                action: Action::Update,
                wave: index + 1,
                body: Some(writable(previous)),
                removes_fields: true,
                tags: TagWrite::Replace,
            },
            None => Step {
                id: id.clone(),
                action: Action::Delete,
                wave: index + 1,
                body: None,
                removes_fields: false,
                tags: TagWrite::Merge,
            },
        })
        .collect()
}

/// A live body as it can be written back: server-managed fields dropped.
pub fn writable(live: &Value) -> Value {
    let mut body = live.clone();
    if let Some(object) = body.as_object_mut() {
        for field in crate::normalize::SERVER_MANAGED {
            object.remove(*field);
        }
    }
    body
}

/// A body with `tag` set to `value`.
pub fn with_tag(body: &Value, tag: &str, value: &str) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        let tags = object.entry("tags").or_insert_with(|| json!({}));
        if let Some(tags) = tags.as_object_mut() {
            tags.insert(tag.to_owned(), Value::String(value.to_owned()));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_patches_replace_what_the_body_sets() {
        let body = json!({"kind": "workload", "name": "api", "tags": {"a": "b"}, "spec": {"type": "standard"}});
        assert_eq!(
            removal_patch(&body, &TagWrite::Merge),
            Some(json!({"$replace/spec": {"type": "standard"}}))
        );
        assert_eq!(
            removal_patch(&body, &TagWrite::Drop(vec!["old".into()])),
            Some(json!({"$replace/spec": {"type": "standard"}, "tags": {"old": null}}))
        );
        assert_eq!(
            removal_patch(&body, &TagWrite::Replace),
            Some(json!({"$replace/spec": {"type": "standard"}, "$replace/tags": {"a": "b"}}))
        );
    }

    #[test]
    fn restoring_reverses_and_deletes_what_was_created() {
        let (a, b): (ResourceId, ResourceId) = (
            "secret/a".parse().unwrap_or_else(|_| panic!()),
            "workload/b".parse().unwrap_or_else(|_| panic!()),
        );
        let before: HashMap<ResourceId, Value> =
            [(a.clone(), json!({"name": "a", "version": 3, "data": {"x": 1}}))].into();
        let steps = restore_steps(&[a.clone(), b.clone()], &before);
        assert_eq!(
            steps.iter().map(|s| (s.id.to_string(), s.action)).collect::<Vec<_>>(),
            [("workload/b".to_owned(), Action::Delete), ("secret/a".to_owned(), Action::Update)]
        );
        assert_eq!(steps[1].body, Some(json!({"name": "a", "data": {"x": 1}})));
    }
}
