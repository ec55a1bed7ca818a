//! `ferry rollback ENV [--to REVISION]`: reads what the rollback planner
//! ([`crate::plan::rollback`]) needs, makes the plan, and carries it out
//! the way every plan is: shown, approved, executed ([`crate::promote`]'s
//! shared path, then [`crate::execute`]).
//!
//! Read: ENV's release records (in its own org), the live workloads the
//! target release ran, and which tags ENV's registry holds at the
//! release's digests; when one is missing and the plan file allows
//! copying it back, the same of the source environment's registry (the
//! only time the source's token is needed).

use std::collections::HashMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, ControlPlane};
use crate::config::{Environment, PromotionConfig};
use crate::manifest::{Kind, ResourceId};
use crate::plan::Plan;
use crate::plan::rollback::{self, Holdings, Inputs, RollbackError};
use crate::promote::{Frontend, Options, Promoted};
use crate::release::{Approval, ApprovalMethod};
use crate::{Error, connect, history, observe};

/// Plans the rollback of `env` (to `to`, or the release before the
/// current one), shows it, asks for approval (unless `--yes`) and carries
/// it out.
pub async fn rollback(
    config: &PromotionConfig,
    env: &Environment,
    to: Option<u64>,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let client = connect::client(env)?;
    // A release a stopped run left in progress is finished first: the
    // rollback is planned from the history it leaves.
    crate::promote::look_and_settle(&client, env, options, frontend).await?;
    let (plan, src) = plan(config, &client, env, to).await?;
    frontend.plan(&plan);
    if plan.summary.has_changes() {
        crate::promote::open(&client, env, options, frontend).await?;
    }
    let Some(approval) = crate::promote::approved(&plan, env, options, frontend)? else {
        return Ok(Promoted::UpToDate(Box::new(plan)));
    };
    crate::promote::execute_plan(plan, src, &client, env, options, approval, frontend).await
}

/// Carries out a rollback plan saved with `ferry rollback ENV --out
/// PLAN.json` (by `ferry apply PLAN.json`), as it was approved: refused if
/// it was altered or if live state moved since it was made (before even
/// the lock is taken), too old (`approval.maxPlanAge`), or inside a freeze
/// window or under a halt tag without `--during-freeze`; recorded as a
/// rollback approved by its saved plan.
pub async fn apply(
    config: &PromotionConfig,
    env: &Environment,
    saved: Plan,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    crate::promote::unaltered(&saved, env)?;
    let client = connect::client(env)?;
    crate::promote::look_and_settle(&client, env, options, frontend).await?;
    frontend.plan(&saved);
    if !saved.summary.has_changes() {
        return Ok(Promoted::UpToDate(Box::new(saved)));
    }
    crate::promote::fresh(&saved, config.max_plan_age, crate::timestamp::now_ms())?;
    crate::promote::open(&client, env, options, frontend).await?;
    // Made again from the release it restores, as recorded now: only the
    // same rollback is carried out.
    let to = saved.rollback.as_ref().map(|r| r.to);
    let (rebuilt, src) = plan(config, &client, env, to).await?;
    crate::promote::reproduced(&saved, &rebuilt, env)?;
    let approval = Approval::from_environment(ApprovalMethod::SavedPlan);
    crate::promote::execute_plan(saved, src, &client, env, options, approval, frontend).await
}

/// The rollback plan of `env`, and the environment missing images are
/// copied back from.
pub async fn plan<'a, A: ControlPlane>(
    config: &'a PromotionConfig,
    client: &A,
    env: &Environment,
    to: Option<u64>,
) -> Result<(Plan, Option<&'a Environment>), Error> {
    let releases: Vec<_> =
        history::releases(client, env).await?.into_iter().filter_map(|(_, r)| r).collect();
    let (_, target) = rollback::choose(&env.name, &releases, to).map_err(Error::from)?;
    // Copied back from where the release's images came from.
    let src = target
        .source
        .as_deref()
        .and_then(|name| config.environments.iter().find(|e| e.name == name))
        .or_else(|| config.source_of(env));
    let mut names: Vec<String> = target.images.iter().map(|i| i.workload.clone()).collect();
    names.sort();
    names.dedup();
    let live: HashMap<String, Value> = stream::iter(names)
        .map(|name| async move {
            let body = observe::fetch(client, env, &ResourceId::new(Kind::Workload, &name)).await?;
            Ok::<_, ApiError>(body.map(|b| (name, b)))
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let wanted = rollback::own_images(env, target);
    let held = holdings(client, &env.org, &wanted).await?;
    let missing: Vec<(String, String)> =
        wanted.into_iter().filter(|key| !held.contains_key(key)).collect();
    let source_held = match src {
        Some(src) if env.copy_missing_images && !missing.is_empty() => {
            holdings(&connect::client(src)?, &src.org, &missing).await?
        }
        _ => Holdings::new(),
    };
    let mut plan = rollback::plan(&Inputs {
        env,
        src,
        releases: &releases,
        to,
        live: &live,
        held: &held,
        source_held: &source_held,
    })?;
    plan.bind(crate::promotion_plan::origin(config, env, src));
    Ok((plan, src))
}

/// The tags `org`'s registry holds at each wanted `(repository, digest)`:
/// one image query by repository (reference §6.1).
async fn holdings<A: ControlPlane>(
    client: &A,
    org: &str,
    wanted: &[(String, String)],
) -> Result<Holdings, ApiError> {
    let mut repositories: Vec<&str> = wanted.iter().map(|(r, _)| r.as_str()).collect();
    repositories.sort_unstable();
    repositories.dedup();
    let path = format!("/org/{org}/image/-query");
    let images: Vec<Vec<Value>> = stream::iter(repositories)
        .map(|repository| {
            let query = json!({
                "kind": "image",
                "spec": {"match": "all", "terms": [{"op": "=", "property": "repository", "value": repository}]},
            });
            let path = path.clone();
            async move { client.query(&path, &query).await }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let mut held = Holdings::new();
    for image in images.iter().flatten() {
        let text = |field: &str| image.get(field).and_then(Value::as_str).map(str::to_owned);
        if let (Some(repository), Some(tag), Some(digest)) =
            (text("repository"), text("tag"), text("digest"))
        {
            let key = (repository, digest);
            if wanted.contains(&key) {
                held.entry(key).or_default().insert(tag);
            }
        }
    }
    Ok(held)
}

impl From<RollbackError> for Error {
    fn from(error: RollbackError) -> Self {
        Error::Rollback(Box::new(error))
    }
}
