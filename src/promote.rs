//! `promote SRC DST` and `apply PLAN.json`: two ways to make a [`Plan`]
//! that end in the same executor ([`crate::execute`]).
//!
//! - `promote`: the plan is made by [`crate::promotion_plan`], exactly as
//!   `ferry plan` makes it (the manifests at the git commit of SRC's last
//!   successful release, or `--ref`, or the plan file's revision; the
//!   images SRC's live workloads run, by digest); it is shown, and a person
//!   confirms it (or `--yes`).
//! - `apply`: the saved plan is carried out as it was approved; its
//!   secret payloads are read again from the manifests at its revision
//!   and must compare with the live ones as the plan says (it holds no
//!   digest of them).
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
use crate::release::{Actor, Approval, ApprovalMethod, Release};
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
    /// Running on the embedded simulator with its sandbox exception: with
    /// nobody to ask, or `--yes` into an environment that requires
    /// approval, it goes ahead and says so ([`SIM_STRICT_APPROVAL`] turns
    /// the exception off).
    pub sandbox: bool,
    /// Go through a freeze window or a halt tag (`rollback --during-freeze`).
    pub during_freeze: bool,
}

/// Set to `1` (or anything but `0` or empty), the embedded simulator
/// requires approval as real environments do: for tests of the approval
/// rules on `--sim`.
pub const SIM_STRICT_APPROVAL: &str = "FERRY_SIM_STRICT_APPROVAL";

/// Whether the embedded simulator's sandbox exception applies: `--sim`,
/// and [`SIM_STRICT_APPROVAL`] not set.
pub fn sandbox_exception(sim: bool) -> bool {
    sim && std::env::var(SIM_STRICT_APPROVAL).map_or(true, |v| v.is_empty() || v == "0")
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
    #[error("changing {environment} needs an approval; nothing was written")]
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

    #[error(
        "{environment} requires approval (`requireApproval: true`): --yes alone does not approve a change there; nothing was written"
    )]
    #[diagnostic(code(ferry::promote::approval_required))]
    ApprovalRequired {
        environment: String,
        #[help]
        how: String,
    },

    #[error("the saved plan {what}; nothing was written")]
    #[diagnostic(
        code(ferry::apply::too_old),
        help(
            "make the plan again (`ferry plan ENV --from SRC --out PLAN.json`), have it reviewed and apply that; `approval.maxPlanAge` in the plan file sets the limit"
        )
    )]
    PlanTooOld { what: String },

    #[error("the saved plan was made at {created}, in the future; nothing was written")]
    #[diagnostic(
        code(ferry::apply::future),
        help(
            "a plan's creation time is under its hash and may be at most {CLOCK_SKEW_MINUTES} minutes ahead of this machine's clock; check the clocks, or make the plan again"
        )
    )]
    FromTheFuture { created: String },

    #[error(
        "the saved plan's hash is {found}, not the {expected} that --expect-hash gives; nothing was written"
    )]
    #[diagnostic(
        code(ferry::apply::expect_hash),
        help(
            "this is not the plan that was approved (a swapped or edited file): apply the plan whose hash was reviewed, or make, review and approve a new one"
        )
    )]
    UnexpectedHash { expected: String, found: String },

    #[error("the saved plan for {environment} was made {what}; nothing was written")]
    #[diagnostic(
        code(ferry::apply::origin),
        help(
            "a saved plan is carried out only where it was made: make the plan again with this plan file (`ferry plan ENV --out PLAN.json`), have it reviewed and apply that"
        )
    )]
    ElsewhereMade { environment: String, what: String },

    #[error(
        "the saved plan for {environment} is not what its inputs give now: {difference}; nothing was written"
    )]
    #[diagnostic(
        code(ferry::apply::rebuilt),
        help(
            "`ferry apply` makes the plan again from what the saved one records (the manifests at its commit, the source's images, the live state) and carries it out only if both are the same. If the file was not edited, something moved since it was made: make the plan again, have it reviewed and apply that"
        )
    )]
    NotReproduced { environment: String, difference: String },

    #[error(
        "{environment} has release {revision} in progress, so what runs there is not verified yet; nothing was written"
    )]
    #[diagnostic(
        code(ferry::promote::source_unfinished),
        help(
            "wait for it to finish; if its run stopped (killed, cancelled), `ferry recover {environment}` finishes it (waits for what it wrote, or restores it). Then promote again"
        )
    )]
    SourceUnfinished { environment: String, revision: u64 },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Closed(#[from] crate::gate::Closed),
}

/// How far a saved plan's `created` may be ahead of this machine's clock.
pub const CLOCK_SKEW_MINUTES: u64 = 5;

impl PromoteError {
    /// Whether it means "blocked" (exit 3) rather than an error: a missing
    /// approval, a stale plan, a freeze or a halt. A plan that is not the
    /// one approved, or not where it was made, is an error.
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            PromoteError::NotApproved { .. }
                | PromoteError::ApprovalRequired { .. }
                | PromoteError::PlanTooOld { .. }
                | PromoteError::SourceUnfinished { .. }
                | PromoteError::Closed(_)
        )
    }
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
    // The freeze and halt tags are read while the plan is made, not after
    // it: they do not depend on it (one round less before the lock), and
    // are only looked at when the plan changes something.
    let client = connect::client(dst)?;
    // What a stopped run left in DST (and whether SRC has a release in
    // progress) is read while the plan is made, too.
    let (made, closed, look, src_unfinished) = futures::join!(
        promotion.make(workspace),
        crate::gate::closed(&client, dst, crate::timestamp::now_ms()),
        execute::look(&client, dst),
        source_unfinished(promotion.src),
    );
    if let Some((source, revision)) = src_unfinished? {
        return Err(PromoteError::SourceUnfinished { environment: source, revision }.into());
    }
    let mut made = made?;
    if !settle(&client, dst, look?, options, frontend).await?.finished.is_empty() {
        // A release finished as succeeded changes what a deploy keeps.
        made = promotion.make(workspace).await?;
    }
    frontend.plan(&made.plan);
    deletes_allowed(&made.plan, dst, options.prune)?;
    shared_allowed(&made.plan, &workspace.config, dst)?;
    if made.plan.summary.has_changes() {
        let_through(closed?, options, frontend)?;
    }
    let Some(approval) = approved(&made.plan, dst, options, frontend)? else {
        return Ok(Promoted::UpToDate(Box::new(made.plan)));
    };
    carry_out(made.plan, promotion, &made.rendered, options, approval, frontend).await
}

/// Finishes what a stopped run left in progress in `dst` and clears an
/// expired lock ([`execute::settle`]), as every run into an environment
/// does before it writes, and whatever it then does.
pub async fn settle<A: ControlPlane>(
    client: &A,
    dst: &Environment,
    look: execute::Look,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<execute::Settled, Error> {
    let how = execute::Settle {
        lock_timeout: options.lock_timeout,
        lock_ttl: options.lock_ttl,
        actor: Actor::from_environment(),
    };
    execute::settle(client, dst, &look, &how, frontend).await
}

/// Reads `dst`'s lock and releases in progress, then [`settle`]s them.
pub async fn look_and_settle<A: ControlPlane>(
    client: &A,
    dst: &Environment,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<execute::Settled, Error> {
    let look = execute::look(client, dst).await?;
    settle(client, dst, look, options, frontend).await
}

/// The release in progress in the source of a promotion, if any: what
/// runs there is not verified yet.
pub async fn source_unfinished(src: Option<&Environment>) -> Result<Option<(String, u64)>, Error> {
    let Some(src) = src else { return Ok(None) };
    let revision = crate::history::in_progress_revision(&connect::client(src)?, src).await?;
    Ok(revision.map(|r| (src.name.clone(), r)))
}

/// The gates a plan shown passes before it is carried out: freeze windows
/// and halt tags ([`open`], when it changes something), then approval
/// ([`approved`]). `None` when it changes nothing.
pub async fn gates<A: ControlPlane>(
    plan: &Plan,
    client: &A,
    dst: &Environment,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Option<Approval>, Error> {
    if plan.summary.has_changes() {
        open(client, dst, options, frontend).await?;
    }
    approved(plan, dst, options, frontend)
}

/// Refuses a release into `dst` inside a freeze window or under a halt
/// tag ([`crate::gate`]), unless `--during-freeze` lets it through (with a
/// note saying what it went through).
pub async fn open<A: ControlPlane>(
    client: &A,
    dst: &Environment,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<(), Error> {
    let_through(
        crate::gate::closed(client, dst, crate::timestamp::now_ms()).await?,
        options,
        frontend,
    )
}

/// What [`open`] decides once the gate is read.
fn let_through(
    closed: Option<crate::gate::Closed>,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<(), Error> {
    let Some(closed) = closed else {
        return Ok(());
    };
    if options.during_freeze {
        frontend.note(&format!("Going through, as --during-freeze asks: {closed}"));
        return Ok(());
    }
    Err(PromoteError::Closed(closed).into())
}

/// Whether a plan shown is to be carried out, and how it was approved:
/// `None` when it changes nothing; else approved (`--yes` where no
/// approval is required, or a person typed `yes`), declined, or blocked:
/// nobody to ask, or `--yes` alone into an environment with
/// `requireApproval` (a saved plan, `ferry apply`, is its other way in).
/// The embedded simulator's sandbox exception goes ahead and says so.
pub fn approved(
    plan: &Plan,
    dst: &Environment,
    options: &Options,
    frontend: &dyn Frontend,
) -> Result<Option<Approval>, Error> {
    if !plan.summary.has_changes() {
        return Ok(None);
    }
    let method = if options.yes && !dst.require_approval {
        ApprovalMethod::Flag
    } else if options.yes && options.sandbox {
        frontend.note(&format!(
            "{} requires approval; going ahead on --yes only because this is the embedded simulator (--sim; {SIM_STRICT_APPROVAL}=1 refuses as a real environment does)",
            dst.name
        ));
        ApprovalMethod::Sandbox
    } else if options.yes {
        return Err(approval_required(plan, dst).into());
    } else {
        match frontend.confirm(plan) {
            Some(true) => ApprovalMethod::Terminal,
            Some(false) => return Err(PromoteError::Declined.into()),
            None if options.sandbox => {
                frontend.note(
                    "No terminal to ask: going ahead, as this is the embedded simulator (--sim)",
                );
                ApprovalMethod::Sandbox
            }
            None if dst.require_approval => return Err(approval_required(plan, dst).into()),
            None => {
                return Err(PromoteError::NotApproved { environment: dst.name.clone() }.into());
            }
        }
    };
    Ok(Some(Approval::from_environment(method)))
}

/// `--yes` alone into an environment that requires approval, with how to
/// approve this kind of change.
fn approval_required(plan: &Plan, dst: &Environment) -> PromoteError {
    let how = if plan.rollback.is_some() {
        "run `ferry rollback` on a terminal and type `yes` after reviewing the plan".to_owned()
    } else {
        let from = plan.target.source.as_deref().map_or(String::new(), |s| format!(" --from {s}"));
        format!(
            "save the plan (`ferry plan {}{from} --out plan.json`), have it reviewed, then `ferry apply plan.json` (or run this on a terminal and type `yes`)",
            dst.name
        )
    };
    PromoteError::ApprovalRequired { environment: dst.name.clone(), how }
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
    let client = connect::client(promotion.dst())?;
    let (src_unfinished, look) =
        futures::join!(source_unfinished(promotion.src), execute::look(&client, promotion.dst()));
    if let Some((source, revision)) = src_unfinished? {
        return Err(PromoteError::SourceUnfinished { environment: source, revision }.into());
    }
    settle(&client, promotion.dst(), look?, options, frontend).await?;
    frontend.plan(&saved);
    deletes_allowed(&saved, promotion.dst(), options.prune)?;
    shared_allowed(&saved, &workspace.config, promotion.dst())?;
    if !saved.summary.has_changes() {
        return Ok(Promoted::UpToDate(Box::new(saved)));
    }
    fresh(&saved, workspace.config.max_plan_age, crate::timestamp::now_ms())?;
    open(&connect::client(promotion.dst())?, promotion.dst(), options, frontend).await?;
    // The plan made again from what the saved one records: the manifests
    // at its commit, the source's images, the target's live state. Only
    // if it is the same is the saved plan carried out, with the secret
    // payloads read from git (or kept live) again; a secret whose payload
    // no longer changes as the plan says is named first.
    let made = promotion.make(workspace).await?;
    payloads_as_planned(&saved, promotion.dst(), &made.rendered).await?;
    reproduced(&saved, &made.plan, promotion.dst())?;
    saved.secrets = made.plan.secrets;
    let approval = Approval::from_environment(ApprovalMethod::SavedPlan);
    carry_out(saved, promotion, &made.rendered, options, approval, frontend).await
}

/// A saved plan equal to the plan made again from its inputs (`rebuilt`),
/// but for its hash, `created` and origin (checked before: [`admissible`]).
/// A resource whose live state moved is named as the executor names it;
/// any other difference (an edited file: an image, a variable, a write
/// added) refuses it, naming the first differing field by its path only
/// (a value may be a secret's).
pub fn reproduced(saved: &Plan, rebuilt: &Plan, dst: &Environment) -> Result<(), Error> {
    let moved: Vec<&str> = saved
        .resources
        .iter()
        .filter(|r| rebuilt.resources.iter().any(|b| b.id == r.id && b.live != r.live))
        .map(|r| r.id.as_str())
        .collect();
    if !moved.is_empty() {
        return Err(ExecuteError::Moved {
            environment: dst.name.clone(),
            resource: moved.join(", "),
        }
        .into());
    }
    // A plan that cannot be written as JSON is never taken as equal to
    // another: both would compare as nothing.
    let not_comparable = |_| PromoteError::NotReproduced {
        environment: dst.name.clone(),
        difference: "a plan could not be compared (not serializable)".to_owned(),
    };
    let comparable = |plan: &Plan| {
        let mut value = serde_json::to_value(plan).map_err(not_comparable)?;
        if let Some(map) = value.as_object_mut() {
            for unbound in ["hash", "created", "origin"] {
                map.remove(unbound);
            }
        }
        Ok::<_, PromoteError>(value)
    };
    match first_difference(&comparable(saved)?, &comparable(rebuilt)?, "") {
        None => Ok(()),
        Some(difference) => {
            Err(PromoteError::NotReproduced { environment: dst.name.clone(), difference }.into())
        }
    }
}

/// Where two JSON values first differ, by path, in words (no value).
fn first_difference(
    saved: &serde_json::Value,
    now: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    let only = |at: String, side: &str| Some(format!("`{at}` is only in {side}"));
    let (saved_side, now_side) = ("the saved plan", "the plan made now");
    match (saved, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(x, y, &at),
                    (Some(_), None) => only(at, saved_side),
                    (None, _) => only(at, now_side),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => (0..a.len().max(b.len())).find_map(|i| {
            let at = format!("{path}[{i}]");
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) => first_difference(x, y, &at),
                (Some(_), None) => only(at, saved_side),
                (None, _) => only(at, now_side),
            }
        }),
        (a, b) if a == b => None,
        _ => Some(format!("`{path}` differs")),
    }
}

/// A saved plan no older than `max_age` at `now_ms` (`created`, which
/// `ferry plan --out` writes); one without a time is refused too.
pub fn fresh(saved: &Plan, max_age: Duration, now_ms: u64) -> Result<(), PromoteError> {
    let limit =
        crate::release::format_duration(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
    let Some(created) = saved.created.as_deref() else {
        return Err(PromoteError::PlanTooOld {
            what: format!("records no creation time, so its age (at most {limit}) cannot be known"),
        });
    };
    let Some(made) = crate::timestamp::parse_rfc3339(created) else {
        return Err(PromoteError::PlanTooOld {
            what: format!("has a creation time that is not RFC 3339 (`{created}`)"),
        });
    };
    if made > now_ms.saturating_add(CLOCK_SKEW_MINUTES * 60_000) {
        return Err(PromoteError::FromTheFuture { created: created.to_owned() });
    }
    let age = Duration::from_millis(now_ms.saturating_sub(made));
    if age > max_age {
        return Err(PromoteError::PlanTooOld {
            what: format!(
                "was made at {created}, {} ago: older than {limit} (`approval.maxPlanAge`)",
                crate::release::format_duration(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
            ),
        });
    }
    Ok(())
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

/// What a saved plan must be before anything else is read: intact (its
/// hash matches its content), the one approved (`--expect-hash`), and made
/// where it is applied: the same org, GVC, endpoints and topology
/// (and source) as the plan file says now ([`plan::Origin`]). On the
/// embedded simulator (`embedded`: `--sim`), whose address changes with
/// every run, endpoints are not compared.
pub fn admissible(
    saved: &Plan,
    config: &crate::config::PromotionConfig,
    dst: &Environment,
    expect_hash: Option<&str>,
    embedded: bool,
) -> Result<(), Error> {
    unaltered(saved, dst)?;
    if let Some(expected) = expect_hash
        && !expected.trim().eq_ignore_ascii_case(&saved.hash)
    {
        return Err(PromoteError::UnexpectedHash {
            expected: expected.trim().to_owned(),
            found: saved.hash.clone(),
        }
        .into());
    }
    let src = saved.target.source.as_deref().map(|s| config.environment(s)).transpose()?;
    let elsewhere =
        |what: String| PromoteError::ElsewhereMade { environment: dst.name.clone(), what };
    if (saved.target.org.as_str(), saved.target.gvc.as_str())
        != (dst.org.as_str(), dst.gvc.as_str())
    {
        return Err(elsewhere(format!(
            "for org {}, GVC {}; the plan file says org {}, GVC {}",
            saved.target.org, saved.target.gvc, dst.org, dst.gvc
        ))
        .into());
    }
    let mut now = crate::promotion_plan::origin(config, dst, src);
    let Some(made) = &saved.origin else {
        return Err(elsewhere("without recording where (no `origin`)".to_owned()).into());
    };
    if embedded {
        now.endpoint.clone_from(&made.endpoint);
        if let (Some(now), Some(made)) = (&mut now.source, &made.source) {
            now.endpoint.clone_from(&made.endpoint);
        }
    }
    if let Some(what) = origin_difference(made, &now) {
        return Err(elsewhere(what).into());
    }
    Ok(())
}

/// Refuses a saved plan whose secrets, with their payloads read again,
/// no longer change as it says ([`plan::steps::payloads_moved`]), naming
/// them all; the live secrets are read again for it.
async fn payloads_as_planned(
    saved: &Plan,
    dst: &Environment,
    rendered: &[Rendered],
) -> Result<(), Error> {
    let client = connect::client(dst)?;
    let secrets: Vec<&Rendered> =
        rendered.iter().filter(|r| r.id.kind == crate::manifest::Kind::Secret).collect();
    let read = futures::future::try_join_all(
        secrets.iter().map(|r| crate::observe::fetch(&client, dst, &r.id)),
    )
    .await?;
    let live = secrets.iter().zip(read).filter_map(|(r, body)| Some((r.id.clone(), body?)));
    let desired = secrets.iter().map(|r| (r.id.clone(), r.body.clone()));
    let moved =
        plan::steps::payloads_moved(&saved.resources, dst, &desired.collect(), &live.collect());
    if moved.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = moved.iter().map(ToString::to_string).collect();
    Err(ExecuteError::Moved {
        environment: dst.name.clone(),
        resource: format!("the payload of {}", names.join(", ")),
    }
    .into())
}

/// The first difference between where a plan was made and where it is
/// applied, in words.
fn origin_difference(made: &plan::Origin, now: &plan::Origin) -> Option<String> {
    let topology = |t: crate::config::Topology| {
        serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    };
    if made.topology != now.topology {
        return Some(format!(
            "under topology {}; the plan file says {}",
            topology(made.topology),
            topology(now.topology)
        ));
    }
    if made.endpoint != now.endpoint {
        return Some(format!(
            "against the API {}; the plan file gives {}",
            made.endpoint, now.endpoint
        ));
    }
    match (&made.source, &now.source) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "from a source at org {}, GVC {} ({}); the plan file says org {}, GVC {} ({})",
            a.org, a.gvc, a.endpoint, b.org, b.gvc, b.endpoint
        )),
        (None, None) | (Some(_), Some(_)) => None,
        _ => Some("with another source than the plan file gives".to_owned()),
    }
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

/// A release that changes what other environments share goes through
/// only into the last environment or with `--change-shared`
/// ([`plan::shared_refusal`]).
fn shared_allowed(
    plan: &Plan,
    config: &crate::config::PromotionConfig,
    dst: &Environment,
) -> Result<(), Error> {
    let last = config.environments.last().map_or("", |e| e.name.as_str());
    match plan::shared_refusal(plan, dst, last) {
        Some(refused) => Err(refused.into()),
        None => Ok(()),
    }
}

/// The source-side check, then the executor.
async fn carry_out(
    plan: Plan,
    promotion: &Promotion<'_>,
    rendered: &[Rendered],
    options: &Options,
    approval: Approval,
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
    execute_plan(plan, src, &client, dst, options, approval, frontend).await
}

/// The executor on `plan` in `dst`, with the registry credentials its
/// copies need (`src`'s and `dst`'s tokens); a saved plan is also compared
/// with live state before the lock is taken. The release records
/// `approval`.
pub async fn execute_plan<A: ControlPlane>(
    plan: Plan,
    src: Option<&Environment>,
    client: &A,
    dst: &Environment,
    options: &Options,
    approval: Approval,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let saved = approval.method == ApprovalMethod::SavedPlan;
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
        approval: Some(approval),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_its_path_without_its_value() {
        let saved = json!({"steps": {"writes": [{"id": "a", "body": {"data": "secret-value"}}]}});
        let same = first_difference(&saved, &saved.clone(), "");
        assert_eq!(same, None);
        let changed = json!({"steps": {"writes": [{"id": "a", "body": {"data": "other"}}]}});
        let said = first_difference(&saved, &changed, "");
        assert_eq!(said.as_deref(), Some("`steps.writes[0].body.data` differs"));
        let added =
            json!({"steps": {"writes": [{"id": "a", "body": {"data": "secret-value"}}, {}]}});
        let said = first_difference(&added, &saved, "").unwrap_or_default();
        assert_eq!(said, "`steps.writes[1]` is only in the saved plan");
        let said = first_difference(&json!({}), &json!({"x": 1}), "").unwrap_or_default();
        assert_eq!(said, "`x` is only in the plan made now");
        assert!(!format!("{:?}", first_difference(&saved, &changed, "")).contains("secret"));
    }

    #[test]
    fn a_plan_from_the_future_is_refused_beyond_the_clock_skew() {
        let plan = |created: &str| {
            Plan {
            created: Some(created.to_owned()),
            ..serde_json::from_value::<Plan>(json!({
                "schema": plan::SCHEMA, "environment": "prod", "org": "o", "gvc": "g",
                "source": null, "revision": null, "manifests_from": {"kind": "worktree"},
                "images_from": "manifests", "resources": [], "images": [],
                "summary": {"create": 0, "update": 0, "replace": 0, "delete": 0, "unchanged": 0, "images_to_copy": 0},
                "steps": {"copies": [], "checks": [], "writes": [], "release": {"source": null, "commit": null, "images": []}},
                "hash": ""
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        }
        };
        let now = crate::timestamp::parse_rfc3339("2026-06-01T12:00:00Z").unwrap_or_default();
        let day = Duration::from_secs(86_400);
        assert!(fresh(&plan("2026-06-01T12:04:59Z"), day, now).is_ok(), "within the skew");
        assert!(matches!(
            fresh(&plan("2026-06-01T12:05:01Z"), day, now),
            Err(PromoteError::FromTheFuture { .. })
        ));
        assert!(matches!(
            fresh(&plan("2099-01-01T00:00:00Z"), day, now),
            Err(PromoteError::FromTheFuture { .. })
        ));
        assert!(fresh(&plan("2026-05-31T12:00:01Z"), day, now).is_ok());
        assert!(matches!(
            fresh(&plan("2026-05-31T11:59:59Z"), day, now),
            Err(PromoteError::PlanTooOld { .. })
        ));
    }
}
