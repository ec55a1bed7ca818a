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

use crate::api::{ApiError, ControlPlane, paths};
use crate::config::Environment;
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

    #[error(transparent)]
    #[diagnostic(transparent)]
    Readiness(#[from] readiness::WaitError),

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
pub async fn execute<A: ControlPlane>(
    client: &A,
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
        let progress = |progress: readiness::Progress<'_>| match progress {
            readiness::Progress::Waiting(report) => reporter.event(Event::Waiting { report }),
            readiness::Progress::Ready(report) => {
                reporter.event(Event::Ready { workload: &report.workload, report });
            }
        };
        let ready = tokio::select! {
            ready = readiness::wait(client, env, &workloads, env.readiness, &progress) => {
                ready.map_err(ApplyError::from)
            }
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
async fn write<A: ControlPlane>(
    client: &A,
    env: &Environment,
    step: &Step,
) -> Result<(), ApiError> {
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
async fn wait_gone<A: ControlPlane>(client: &A, item: &str) -> Result<(), ApiError> {
    for _ in 0..120 {
        if client.get_opt(item).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
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
