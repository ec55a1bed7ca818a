//! `ferry plan ENV [--from SRC] [--ref REV] [--prune] [--out PLAN.json]`: what
//! promoting into an environment would change, without changing anything:
//! exactly the plan `ferry promote SRC ENV` would carry out (SRC defaults to
//! the environment's source; see [`crate::promotion_plan`]).

use std::path::Path;

use crate::cli::{OutputFormat, SourceArgs};
use crate::plan::deploy::ImageOverride;
use crate::plan::{self, Plan};
use crate::promotion_plan::Promotion;
use crate::{Error, ExitStatus, output};

/// What `plan` is asked beyond the environment and the manifests.
pub(crate) struct Choices<'a> {
    pub out: Option<&'a Path>,
    pub prune: bool,
    /// `--image`: a deploy's images (no source only).
    pub images: Vec<ImageOverride>,
    /// `--change-shared`.
    pub change_shared: bool,
}

pub(crate) fn run(
    session: &super::Session<'_>,
    env: &str,
    from: Option<&str>,
    source: &SourceArgs,
    choices: Choices<'_>,
) -> Result<ExitStatus, Error> {
    let Choices { out, prune, images, change_shared } = choices;
    let global = session.global;
    let workspace = session.workspace()?;
    let target = workspace.config.environment(env)?;
    let from = match from {
        Some(name) => Some(workspace.config.environment(name)?),
        None => workspace.config.source_of(target),
    };
    if let Some(from) = from.filter(|_| !images.is_empty()) {
        return Err(crate::diagnostic::Problem::new(
            "ferry::plan::image-with-source",
            format!("--image is for a deploy, but {env} is promoted into from {}", from.name),
        )
        .help("plan a deploy of the first environment: `ferry plan ENV --image NAME=REF`")
        .into());
    }
    let (plan, unfinished) = super::runtime()?.block_on(async {
        let made = async {
            let mut promotion = Promotion::prepare(&workspace, from, env, source).await?;
            promotion.prune = prune;
            promotion.images = images;
            promotion.change_shared = change_shared;
            promotion.make(&workspace).await
        };
        // Releases in progress are said, not finished: `plan` only reads.
        futures::join!(made, in_progress(from, target))
    });
    let plan = plan?;
    output::warnings(&unfinished);
    output::warnings(&crate::render::warnings(&plan.rendered));
    let plan = plan.plan;
    if let Some(refused) = plan::prune_refusal(&plan, target) {
        // Said now, so that CI sees it before `promote --prune` refuses.
        output::warnings(&[refused.warning()]);
    }
    let last = workspace.config.environments.last().map_or("", |e| e.name.as_str());
    if let Some(refused) = plan::shared_refusal(&plan, target, last) {
        output::warnings(&[refused.warning()]);
    }
    show(global.output, &plan, out, workspace.config.max_plan_age)
}

/// Warnings for releases in progress in the source and the target (one
/// query each; one that cannot be read is left to the plan's own reads).
async fn in_progress(
    src: Option<&crate::config::Environment>,
    dst: &crate::config::Environment,
) -> Vec<crate::diagnostic::Problem> {
    let (from, into) = futures::join!(
        async {
            match src {
                Some(src) => in_progress_revision(src).await,
                None => None,
            }
        },
        in_progress_revision(dst)
    );
    let mut warnings = Vec::new();
    if let (Some(src), Some(revision)) = (src, from) {
        warnings.push(crate::diagnostic::Problem::new(
            "ferry::plan::source_unfinished",
            format!("{} has release {revision} in progress: promoting from it is refused until it is finished", src.name),
        ).help(format!("`ferry recover {}` finishes it if its run stopped", src.name)).warning());
    }
    if let Some(revision) = into {
        warnings.push(crate::diagnostic::Problem::new(
            "ferry::plan::unfinished",
            format!("{} has release {revision} in progress: this plan is made against what it has written so far", dst.name),
        ).help(format!("the next promote, deploy, apply or rollback into {} (or `ferry recover {}`) finishes it first", dst.name, dst.name)).warning());
    }
    warnings
}

/// The revision of `env`'s release in progress, if one can be read.
async fn in_progress_revision(env: &crate::config::Environment) -> Option<u64> {
    let client = crate::connect::client(env).ok()?;
    crate::history::in_progress_revision(&client, env).await.ok().flatten()
}

/// A plan printed, saved to `out` (if given) and said so; the exit status
/// of a plan (2 when it changes something).
pub(super) fn show(
    format: OutputFormat,
    plan: &Plan,
    out: Option<&Path>,
    max_age: std::time::Duration,
) -> Result<ExitStatus, Error> {
    // A saved plan carries when it was made, under its hash: what is
    // shown, saved and given as `plan_hash` is one plan.
    let stamped = out.map(|_| {
        let mut saved = plan.clone();
        saved.stamp(crate::timestamp::rfc3339(crate::timestamp::now_ms()));
        saved
    });
    let plan = stamped.as_ref().unwrap_or(plan);
    let github = crate::github::active();
    if let Some(github) = github.filter(|_| format == OutputFormat::Human) {
        github.group(&format!("Plan for {}", plan.target.environment), false);
    }
    match format {
        OutputFormat::Json => {
            output::print(&format!("{:#}\n", serde_json::to_value(plan).unwrap_or_default()))?
        }
        OutputFormat::Human => {
            output::print(&plan::text(plan, plan::Style { color: output::stdout_color() }))?
        }
    }
    if let Some(github) = github.filter(|_| format == OutputFormat::Human) {
        github.end_group(false);
    }
    if let Some(path) = out {
        save(plan, path)?;
        output::status(&format!(
            "Saved the plan to {} (hash {}). Apply exactly this with: ferry apply {} (within {})",
            path.display(),
            &plan.hash[..12.min(plan.hash.len())],
            path.display(),
            crate::release::format_duration(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX)),
        ));
    }
    if let Some(github) = github {
        github.plan(plan, out);
    }
    Ok(if plan.summary.has_changes() { ExitStatus::Changes } else { ExitStatus::Success })
}

/// Writes a saved plan (stamped with when it was made, for
/// `approval.maxPlanAge`): to a temporary file first, then renamed, so
/// that a reader never sees half a plan.
fn save(plan: &Plan, path: &Path) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(plan).unwrap_or_default();
    let temporary = path.with_extension("json.partial");
    std::fs::write(&temporary, text + "\n")
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(Error::Output)
}
