//! `ferry rollback ENV [--to REVISION]`: arguments in, the rollback
//! library ([`crate::rollback`]), and the same outcomes, exit codes and
//! JSON shape as `promote` (the schema says which).

use std::path::Path;

use serde_json::json;

use super::Session;
use super::promote::{Console, finish, options};
use crate::cli::PromotionArgs;
use crate::diagnostic::Problem;
use crate::plan::Plan;
use crate::release::Release;
use crate::{Error, ExitStatus, connect, output};

/// Version of `rollback --output json`.
pub const SCHEMA: &str = "ferry.rollback/v1";

pub(crate) fn run(
    session: &Session<'_>,
    env: &str,
    to: Option<u64>,
    args: &PromotionArgs,
    during_freeze: bool,
) -> Result<ExitStatus, Error> {
    refuse_prune(args)?;
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let console = Console::new(session);
    let options = crate::promote::Options { during_freeze, ..options(session, args) };
    let outcome = super::runtime()?.block_on(crate::rollback::rollback(
        &workspace.config,
        env,
        to,
        &options,
        &console,
    ));
    finish(session, &console, outcome)
}

/// `ferry rollback ENV [--to N] --out PLAN.json`: the rollback planned
/// exactly as `run` plans it, printed and saved, not carried out; `ferry
/// apply PLAN.json` carries it out later (and records it as a rollback).
pub(crate) fn save(
    session: &Session<'_>,
    env: &str,
    to: Option<u64>,
    args: &PromotionArgs,
    out: &Path,
) -> Result<ExitStatus, Error> {
    refuse_prune(args)?;
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let (plan, _) = super::runtime()?.block_on(async {
        crate::rollback::plan(&workspace.config, &connect::client(env)?, env, to).await
    })?;
    super::plan::show(session.global.output, &plan, Some(out), workspace.config.max_plan_age)
}

fn refuse_prune(args: &PromotionArgs) -> Result<(), Error> {
    if args.prune {
        return Err(Problem::new(
            "ferry::rollback::prune",
            "--prune does not apply to a rollback: it deletes nothing",
        )
        .help("leave --prune out; a rollback only re-points workloads at earlier images")
        .into());
    }
    Ok(())
}

/// Prints a rollback that was carried out.
pub(super) fn released(json: bool, plan: &Plan, release: &Release) -> Result<(), Error> {
    if json {
        return output::print(&format!(
            "{:#}\n",
            json!({"schema": SCHEMA, "outcome": "released", "plan": plan, "release": release})
        ));
    }
    let to = plan.rollback.as_ref().map_or(0, |r| r.to);
    output::print(&format!(
        "Rolled {} back to the images of release {to}, recorded as revision {}: {} re-pointed, {} copied back, every changed workload ready.\n",
        release.environment,
        release.revision,
        output::count(plan.summary.update, "workload"),
        output::count(plan.summary.images_to_copy, "image"),
    ))
}
