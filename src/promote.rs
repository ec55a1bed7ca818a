//! `promote SRC DST` and `apply PLAN.json`: two ways to make a [`Plan`]
//! that end in the same executor ([`crate::execute`]).
//!
//! - `promote`: the plan is made by [`crate::promotion_plan`], exactly as
//!   `ferry plan` makes it (the manifests at the git commit of SRC's last
//!   successful release, or `--ref`, or the plan file's revision; the
//!   images SRC's live workloads run, by digest); it is shown, and a person
//!   confirms it (or `--yes`).
//! - `apply`: the saved plan is carried out as it was approved; its
//!   secret payloads are read again from the manifests at its revision and
//!   must hash as the plan says.
//!
//! Then, for both: DST's GVC is checked to carry a pull secret for every
//! image outside the org that SRC's needed one for, and the executor
//! takes the lock, refuses if anything moved since the plan was made,
//! copies, checks, writes by dependency, waits, restores on failure and
//! records the release.

use std::time::Duration;

use miette::Diagnostic;

use crate::api::ControlPlane;
use crate::config::Environment;
use crate::execute::{self, ExecuteError};
use crate::inputs::Workspace;
use crate::plan::{self, Plan};
use crate::promotion_plan::Promotion;
use crate::release::{Actor, Release};
use crate::render::Rendered;
use crate::{Error, connect};

/// Choices of one promotion.
#[derive(Clone, Debug)]
pub struct Options {
    /// Do not ask; for CI.
    pub yes: bool,
    /// Leave a failed promotion as it is.
    pub no_rollback: bool,
    /// Also delete managed resources that left git.
    pub prune: bool,
    /// How long to wait for another promotion's lock.
    pub lock_timeout: Duration,
    /// How long the lock lives without renewal (renewed every third of it).
    pub lock_ttl: Duration,
}

/// What the person running Ferry sees and decides.
pub trait Frontend: execute::Reporter {
    /// Show the plan.
    fn plan(&self, plan: &Plan);
    /// Ask whether to go ahead; `None` when nobody can be asked.
    fn confirm(&self, plan: &Plan) -> Option<bool>;
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PromoteError {
    #[error("promoting into {environment} needs an approval")]
    #[diagnostic(
        code(ferry::promote::approval),
        help(
            "run it on a terminal to confirm the plan, or pass --yes (in CI, after the environment's approval gate)"
        )
    )]
    NotApproved { environment: String },

    #[error("the promotion was declined")]
    #[diagnostic(code(ferry::promote::declined))]
    Declined,
}

/// How a promotion ended.
pub enum Promoted {
    /// Nothing to change.
    UpToDate(Box<Plan>),
    /// Written, ready and recorded.
    Released { plan: Box<Plan>, release: Box<Release> },
}

/// Makes `promotion`'s plan, shows it, asks for approval (unless
/// `--yes`) and carries it out (without a source: deploys its target from
/// git, as written).
pub async fn promote(
    workspace: &Workspace,
    promotion: &Promotion<'_>,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let dst = promotion.dst();
    let made = promotion.make(workspace).await?;
    frontend.plan(&made.plan);
    deletes_allowed(&made.plan, dst, options.prune)?;
    if !approved(&made.plan, dst, options, frontend)? {
        return Ok(Promoted::UpToDate(Box::new(made.plan)));
    }
    carry_out(made.plan, promotion, &made.rendered, options, false, frontend).await
}

/// Whether a plan shown is to be carried out: `false` when it changes
/// nothing; else approved (`--yes`, or confirmed), declined, or blocked
/// for want of someone to ask.
pub fn approved(
    plan: &Plan,
    dst: &Environment,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<bool, Error> {
    if !plan.summary.has_changes() {
        return Ok(false);
    }
    if !options.yes {
        match frontend.confirm(plan) {
            Some(true) => {}
            Some(false) => return Err(PromoteError::Declined.into()),
            None => return Err(PromoteError::NotApproved { environment: dst.name.clone() }.into()),
        }
    }
    Ok(true)
}

/// Carries out a saved plan as it was approved: its hash must match its
/// content, its secret payloads are read again from the manifests at its
/// revision (`promotion`), and the executor refuses if live state moved.
pub async fn apply(
    workspace: &Workspace,
    promotion: &Promotion<'_>,
    mut saved: Plan,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    unaltered(&saved, promotion.dst())?;
    frontend.plan(&saved);
    deletes_allowed(&saved, promotion.dst(), options.prune)?;
    if !saved.summary.has_changes() {
        return Ok(Promoted::UpToDate(Box::new(saved)));
    }
    let rendered = promotion.render_as_written(workspace)?;
    saved.secrets = plan::Secrets::default();
    for resource in &rendered {
        plan::steps::sealed(&resource.id, &resource.body, &mut saved.secrets);
    }
    carry_out(saved, promotion, &rendered, options, true, frontend).await
}

/// A saved plan whose hash matches its content; else refused as moved.
pub fn unaltered(saved: &Plan, dst: &Environment) -> Result<(), Error> {
    if saved.hash != saved.compute_hash() {
        return Err(ExecuteError::Moved {
            environment: dst.name.clone(),
            resource: "the saved plan (its hash does not match its content)".to_owned(),
        }
        .into());
    }
    Ok(())
}

/// A plan that deletes (made with `--prune`) deletes no more than
/// `prune.maxDeletes` allows; `--prune` on a saved plan made without it
/// is refused rather than silently deleting nothing.
fn deletes_allowed(plan: &Plan, dst: &Environment, asked: bool) -> Result<(), Error> {
    let deletes = plan.steps.writes.iter().any(|w| w.method == plan::Method::Delete);
    if deletes && let Some(refused) = plan::prune_refusal(plan, dst) {
        return Err(refused.into());
    }
    let left = plan.resources.iter().any(|r| r.action == crate::diff::Action::Delete);
    if asked && left && !deletes {
        return Err(crate::diagnostic::Problem::new(
            "ferry::apply::prune",
            format!(
                "--prune, but the saved plan for {} was made without it: it deletes nothing",
                dst.name
            ),
        )
        .help("make the plan with `ferry plan ENV --prune --out PLAN.json` and apply that")
        .into());
    }
    Ok(())
}

/// The source-side check, then the executor.
async fn carry_out(
    plan: Plan,
    promotion: &Promotion<'_>,
    rendered: &[Rendered],
    options: &Options,
    saved: bool,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let (src, dst) = (promotion.src, promotion.dst());
    let client = connect::client(dst)?;
    if let Some(src) = src {
        let findings =
            crate::pull_secrets::missing(&connect::client(src)?, src, &client, dst, rendered)
                .await?;
        if !findings.is_empty() {
            return Err(ExecuteError::Preflight { environment: dst.name.clone(), findings }.into());
        }
    }
    execute_plan(plan, src, &client, dst, options, saved, frontend).await
}

/// The executor on `plan` in `dst`, with the registry credentials its
/// copies need (`src`'s and `dst`'s tokens); `saved`: also compared with
/// live state before the lock is taken.
pub async fn execute_plan<A: ControlPlane>(
    plan: Plan,
    src: Option<&Environment>,
    client: &A,
    dst: &Environment,
    options: &Options,
    saved: bool,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let credentials = credentials(src, dst, &plan)?;
    let target = execute::Target { client, env: dst, credentials: &credentials };
    let run = execute::Options {
        no_rollback: options.no_rollback,
        lock_timeout: options.lock_timeout,
        lock_ttl: options.lock_ttl,
        actor: Actor::from_environment(),
        check_before_lock: saved,
        // A saved rollback is still recorded as a rollback ("rollback to N").
        record_as: (saved && plan.rollback.is_none()).then_some(crate::release::ReleaseKind::Apply),
    };
    let release = execute::execute(&plan, &target, &run, frontend).await?;
    Ok(Promoted::Released { plan: Box::new(plan), release: Box::new(release) })
}

/// Registry credentials for the plan's copies: both environments' tokens.
fn credentials(
    src: Option<&Environment>,
    dst: &Environment,
    plan: &Plan,
) -> Result<crate::registry::Credentials, Error> {
    let mut credentials = crate::registry::Credentials::anonymous();
    if plan.steps.copies.is_empty() {
        return Ok(credentials);
    }
    for env in src.into_iter().chain([dst]) {
        let token = connect::token(env)?;
        credentials.insert(
            env.registry.clone(),
            crate::registry::Credential::basic(crate::registry::TOKEN_USER, token.expose()),
        );
    }
    Ok(credentials)
}

impl From<PromoteError> for Error {
    fn from(error: PromoteError) -> Self {
        Error::Promote(Box::new(error))
    }
}
