//! `ferry promote SRC DST`, `ferry apply PLAN.json`, `ferry unlock ENV`:
//! arguments in, the promotion library, and what people and CI see.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;

use super::Session;
use crate::cli::{OutputFormat, PromotionArgs, SourceArgs};
use crate::config::Environment;
use crate::execute::{Event, ExecuteError, Reporter};
use crate::inputs::Workspace;
use crate::lock::{self, LockError};
use crate::plan::deploy::ImageOverride;
use crate::plan::{self, Plan};
use crate::promote::{Frontend, Options, Promoted};
use crate::promotion_plan::Promotion;
use crate::{Error, ExitStatus, connect, output};

/// Version of `promote --output json`.
pub const SCHEMA: &str = "ferry.promote/v1";

pub(super) fn options(session: &Session<'_>, args: &PromotionArgs) -> Options {
    Options {
        yes: args.yes,
        no_rollback: args.no_rollback,
        prune: args.prune,
        lock_timeout: args.lock.lock_timeout,
        lock_ttl: args.lock.lock_ttl,
        sandbox: crate::promote::sandbox_exception(session.global.sim),
        during_freeze: false,
    }
}

pub(crate) fn promote(
    session: &Session<'_>,
    src: &str,
    dst: &str,
    revision: Option<String>,
    args: &PromotionArgs,
) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let src = workspace.config.environment(src)?;
    let dst = workspace.config.environment(dst)?;
    release(session, &workspace, Some(src), dst, revision, args, Vec::new())
}

/// `ferry deploy ENV`: a promotion without a source, refused (unless
/// `--force`) for an environment that has one.
pub(crate) fn deploy(
    session: &Session<'_>,
    env: &str,
    revision: Option<String>,
    args: &PromotionArgs,
    images: Vec<ImageOverride>,
    force: bool,
) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let dst = workspace.config.environment(env)?;
    if let Some(refused) = plan::deploy::refusal(&workspace.config, dst) {
        if !force {
            return Err(refused.into());
        }
        output::warnings(&[refused.warning()]);
    }
    release(session, &workspace, None, dst, revision, args, images)
}

/// Makes the plan of a release into `dst` (from `src`, else from git),
/// shows it, confirms it and carries it out.
fn release(
    session: &Session<'_>,
    workspace: &Workspace,
    src: Option<&Environment>,
    dst: &Environment,
    revision: Option<String>,
    args: &PromotionArgs,
    images: Vec<ImageOverride>,
) -> Result<ExitStatus, Error> {
    let console = Console::new(session);
    let source = SourceArgs { revision, worktree: false };
    let outcome = super::runtime()?.block_on(async {
        let mut promotion = Promotion::prepare(workspace, src, &dst.name, &source).await?;
        promotion.prune = args.prune;
        promotion.images = images;
        promotion.change_shared = args.change_shared;
        crate::promote::promote(workspace, &promotion, &options(session, args), &console).await
    });
    finish(session, &console, outcome)
}

pub(crate) fn apply(
    session: &Session<'_>,
    path: &Path,
    args: &PromotionArgs,
    during_freeze: bool,
    expect_hash: Option<&str>,
) -> Result<ExitStatus, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::diagnostic::Problem::new(
            "ferry::apply::read",
            format!("cannot read the saved plan {}: {e}", path.display()),
        )
        .help("save one with `ferry plan ENV --from SRC --out PLAN.json`")
    })?;
    let saved = saved_plan(path, text)?;
    let workspace = session.workspace()?;
    let dst = workspace.config.environment(&saved.target.environment)?;
    crate::promote::admissible(&saved, &workspace.config, dst, expect_hash, session.global.sim)?;
    let console = Console::new(session);
    if during_freeze && saved.rollback.is_none() {
        return Err(crate::diagnostic::Problem::new(
            "ferry::apply::during-freeze",
            "--during-freeze lets only a rollback through a freeze window or a halt tag",
        )
        .help("wait for the freeze or halt to end, or save a rollback with `ferry rollback ENV --out PLAN.json`")
        .into());
    }
    if saved.rollback.is_some() {
        // A rollback reads no manifests: it re-points images only.
        let options = Options { during_freeze, ..options(session, args) };
        let outcome = super::runtime()?.block_on(crate::rollback::apply(
            &workspace.config,
            dst,
            saved,
            &options,
            &console,
        ));
        return finish(session, &console, outcome);
    }
    let src =
        saved.target.source.as_deref().map(|s| workspace.config.environment(s)).transpose()?;
    // The manifests chosen again as `ferry plan` chose them for the reason
    // the saved plan gives (the source's last successful release, the plan
    // file's revision, the `--ref` asked, the work tree): a plan pointed
    // at another commit is not the plan made again, and is refused.
    let from = &saved.target.manifests_from;
    let source = SourceArgs {
        revision: saved
            .target
            .revision
            .as_ref()
            .filter(|_| *from == plan::ManifestsFrom::Ref)
            .map(|r| r.requested.clone()),
        worktree: *from == plan::ManifestsFrom::Worktree,
    };
    let outcome = super::runtime()?.block_on(async {
        let mut promotion = Promotion::prepare(&workspace, src, &dst.name, &source).await?;
        // Made again as it was: with deletes if its steps delete, with the
        // deploy's `--image`.
        promotion.prune = saved.steps.writes.iter().any(|w| w.method == plan::Method::Delete);
        promotion.change_shared = saved.change_shared;
        promotion.images = saved
            .image_overrides
            .iter()
            .map(|o| o.parse::<ImageOverride>())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                crate::diagnostic::Problem::new(
                    "ferry::apply::invalid",
                    format!("the saved plan's image_overrides: {e}"),
                )
            })?;
        crate::promote::apply(&workspace, &promotion, saved, &options(session, args), &console)
            .await
    });
    finish(session, &console, outcome)
}

/// A saved plan of this Ferry's schema: anything else is refused, located.
fn saved_plan(path: &Path, text: String) -> Result<Plan, Error> {
    let source = crate::diagnostic::SourceFile::new(path.display().to_string(), text);
    let help = "save one with `ferry plan ENV --from SRC --out PLAN.json`";
    let at = |line: usize, column: usize| {
        let offset = source.offset_of(line, column);
        crate::diagnostic::Location::new(&source, offset..offset)
    };
    let value: serde_json::Value = serde_json::from_str(source.text()).map_err(|e| {
        crate::diagnostic::Problem::new(
            "ferry::apply::invalid",
            format!("{} is not a saved plan", path.display()),
        )
        .at(at(e.line(), e.column()), e.to_string())
        .help(help)
    })?;
    let schema = value.get("schema").and_then(serde_json::Value::as_str).unwrap_or("(none)");
    if schema != plan::SCHEMA {
        return Err(crate::diagnostic::Problem::new(
            "ferry::apply::schema",
            format!(
                "{} is a plan of schema {schema}; this Ferry carries out {} plans",
                path.display(),
                plan::SCHEMA
            ),
        )
        .help(format!("make the plan again with this Ferry: {help}"))
        .into());
    }
    serde_json::from_value(value).map_err(|e| {
        crate::diagnostic::Problem::new(
            "ferry::apply::invalid",
            format!("{} is not a saved plan: {e}", path.display()),
        )
        .help(help)
        .into()
    })
}

/// The version of the JSON a command's outcome is printed with.
fn schema_of(plan: &Plan) -> &'static str {
    if plan.rollback.is_some() { super::rollback::SCHEMA } else { SCHEMA }
}

/// The version of the JSON a failed release is printed with.
fn failed_schema(what: crate::release::ReleaseKind) -> &'static str {
    if what == crate::release::ReleaseKind::Rollback { super::rollback::SCHEMA } else { SCHEMA }
}

/// Prints the outcome; a held lock or a missing approval is "blocked" (3).
pub(super) fn finish(
    session: &Session<'_>,
    console: &Console,
    outcome: Result<Promoted, Error>,
) -> Result<ExitStatus, Error> {
    let json = session.global.output == OutputFormat::Json;
    if let Some(github) = &console.github {
        github.finish(&outcome);
    }
    match outcome {
        Ok(Promoted::UpToDate(plan)) => {
            if json {
                output::print(&format!(
                    "{:#}\n",
                    json!({"schema": schema_of(&plan), "outcome": "up-to-date", "plan": plan})
                ))?;
            }
            console.note(&format!(
                "{} already runs this release; nothing to do",
                plan.target.environment
            ));
            Ok(ExitStatus::Success)
        }
        Ok(Promoted::Released { plan, release }) if plan.rollback.is_some() => {
            super::rollback::released(json, &plan, &release)?;
            Ok(ExitStatus::Success)
        }
        Ok(Promoted::Released { plan, release }) => {
            if json {
                output::print(&format!(
                    "{:#}\n",
                    json!({"schema": SCHEMA, "outcome": "released", "plan": plan, "release": release})
                ))?;
            } else {
                let commit = release
                    .commit
                    .as_deref()
                    .map_or(String::new(), |c| format!(" at git {}", &c[..8.min(c.len())]));
                let from =
                    release.source.as_deref().map_or(String::new(), |s| format!(" from {s}"));
                // What was written, not what the plan listed (a resource
                // that left git is deleted only with --prune).
                let changed = plan
                    .steps
                    .writes
                    .iter()
                    .map(|w| &w.id)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                output::print(&format!(
                    "Released {} revision {}{from}{commit}: {} changed, {} copied, every changed workload ready.\n",
                    release.environment,
                    release.revision,
                    output::count(changed, "resource"),
                    output::count(plan.summary.images_to_copy, "image"),
                ))?;
            }
            Ok(ExitStatus::Success)
        }
        Err(error) => {
            if json {
                print_failure(&error)?;
            }
            blocked(error)
        }
    }
}

/// With `--output json`: what a failed release left, for CI to read as it
/// reads a release (a release a stopped run left in progress, finished
/// as failed, names its revision).
fn print_failure(error: &Error) -> Result<(), Error> {
    let Error::Execute(failed) = error else { return Ok(()) };
    let (what, left, cause, revision) = match &**failed {
        ExecuteError::Failed { what, left, cause } => (what, left, cause, None),
        ExecuteError::Finished { revision, what, left, cause } => {
            (what, left, cause, Some(*revision))
        }
        _ => return Ok(()),
    };
    let mut report = json!({"schema": failed_schema(*what), "outcome": "failed", "kind": what,
        "error": failed.to_string(), "cause": cause.to_string(), "failure": left.to_json()});
    if let Some(revision) = revision {
        report["left_in_progress"] = json!(revision);
    }
    output::print(&format!("{report:#}\n"))
}

/// `ferry recover ENV`: finishes what a stopped run left in progress
/// there and clears an expired lock ([`crate::promote::look_and_settle`]).
pub(crate) fn recover(
    session: &Session<'_>,
    env: &str,
    lock: &crate::cli::LockArgs,
) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let console = Console::new(session);
    let options = Options {
        yes: false,
        no_rollback: false,
        prune: false,
        lock_timeout: lock.lock_timeout,
        lock_ttl: lock.lock_ttl,
        sandbox: false,
        during_freeze: false,
    };
    let settled = super::runtime()?.block_on(async {
        crate::promote::look_and_settle(&connect::client(env)?, env, &options, &console).await
    });
    let settled = match settled {
        Ok(settled) => settled,
        Err(error) => {
            if session.global.output == OutputFormat::Json {
                print_failure(&error)?;
            }
            return blocked(error);
        }
    };
    let finished: Vec<u64> = settled.finished.iter().map(|r| r.revision).collect();
    if session.global.output == OutputFormat::Json {
        output::print(&format!(
            "{:#}\n",
            json!({"schema": RECOVER_SCHEMA, "environment": env.name,
                "finished": finished,
                "cleared_lock": settled.cleared.is_some()})
        ))?;
        return Ok(ExitStatus::Success);
    }
    let mut lines = Vec::new();
    for revision in &finished {
        lines.push(format!("Finished release {revision} of {}: succeeded", env.name));
    }
    if let Some(cleared) = &settled.cleared {
        lines.push(format!("Cleared the expired lock of {} ({})", env.name, cleared.describe()));
    }
    if lines.is_empty() {
        lines.push(format!("{} has no release in progress and no expired lock", env.name));
    }
    output::print(&format!("{}\n", lines.join("\n")))?;
    Ok(ExitStatus::Success)
}

/// Version of `recover --output json`.
pub const RECOVER_SCHEMA: &str = "ferry.recover/v1";

/// A refusal that blocks (a missing approval, a stale plan, a freeze, a
/// halt, a held lock) reported, exit 3; any other error as it is.
pub(super) fn blocked(error: Error) -> Result<ExitStatus, Error> {
    let blocks = match &error {
        Error::Promote(e) => e.blocks(),
        Error::Execute(e) => matches!(**e, ExecuteError::Lock(LockError::Held { .. })),
        _ => false,
    };
    if !blocks {
        return Err(error);
    }
    output::report(error);
    Ok(ExitStatus::Blocked)
}

pub(crate) fn unlock(session: &Session<'_>, env: &str, force: bool) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let broken = super::runtime()?.block_on(async {
        lock::unlock(&connect::client(env)?, env, force).await.map_err(lock_error)
    })?;
    match broken {
        Some(info) => {
            output::print(&format!("Broke the lock of {} held by {}\n", env.name, info.describe()))?
        }
        None => output::print(&format!("{} is not locked\n", env.name))?,
    }
    Ok(ExitStatus::Success)
}

fn lock_error(error: LockError) -> Error {
    ExecuteError::Lock(error).into()
}

/// The terminal (or CI log) as a promotion's frontend.
pub(super) struct Console {
    json: bool,
    quiet: bool,
    color: bool,
    /// The last waiting line per workload, to print only changes.
    waiting: Mutex<HashMap<String, String>>,
    /// What the GitHub job summary needs, when `GITHUB_ACTIONS=true`.
    github: Option<crate::github::Record>,
}

impl Console {
    pub(super) fn new(session: &Session<'_>) -> Self {
        Console {
            json: session.global.output == OutputFormat::Json,
            quiet: session.global.quiet,
            color: output::stdout_color(),
            waiting: Mutex::new(HashMap::new()),
            github: crate::github::Record::new(),
        }
    }

    /// A console that shows nothing (the simulator's first use says
    /// what it did in its own words).
    pub(super) fn quiet(session: &Session<'_>) -> Self {
        Console { quiet: true, json: true, github: None, ..Console::new(session) }
    }
}

impl Frontend for Console {
    fn plan(&self, plan: &Plan) {
        if let Some(github) = &self.github {
            github.plan_shown(plan, self.json);
        }
        if !self.json {
            let _ = output::print(&plan::text(plan, plan::Style { color: self.color }));
        }
        if let Some(github) = &self.github {
            github.plan_done(plan, self.json);
        }
    }

    fn confirm(&self, plan: &Plan) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            // Nobody to ask (the embedded simulator's sandbox exception is
            // `promote::approved`'s).
            return None;
        }
        let mut stderr = std::io::stderr().lock();
        let question = match &plan.rollback {
            Some(rollback) => {
                format!("Roll {} back to release {}?", plan.target.environment, rollback.to)
            }
            None if plan.target.manifests_from == plan::ManifestsFrom::Imported => format!(
                "Put what runs in {} under Ferry's management (only tags are written)?",
                plan.target.environment
            ),
            None if plan.target.source.is_none() => {
                format!("Deploy into {}?", plan.target.environment)
            }
            None => format!("Promote into {}?", plan.target.environment),
        };
        let _ = write!(stderr, "\n{question} Only `yes` goes ahead: ");
        let _ = stderr.flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer.trim() == "yes")
    }
}

impl Reporter for Console {
    fn note(&self, line: &str) {
        if !self.quiet {
            output::status(line);
        }
    }

    fn event(&self, event: Event<'_>) {
        if let Some(github) = &self.github {
            github.event(&event);
        }
        match event {
            Event::Written { id, action } => self.note(&format!("  {} {id}", action.symbol())),
            Event::Waiting { report } => {
                let blocking = report
                    .blocking()
                    .map_or(String::new(), |b| format!(" ({}: {})", b.location, b.message));
                let line = format!(
                    "  waiting for workload/{}: {}{blocking}",
                    report.workload,
                    report.progress()
                );
                let mut seen =
                    self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.get(&report.workload) != Some(&line) {
                    seen.insert(report.workload.clone(), line.clone());
                    drop(seen);
                    self.note(&line);
                }
            }
            Event::Ready { workload, report } => {
                let locations: Vec<&str> = report
                    .locations
                    .iter()
                    .filter(|l| l.state == crate::readiness::LocationState::Ready)
                    .map(|l| l.location.as_str())
                    .collect();
                self.note(&format!(
                    "  workload/{workload} ready: {} ({})",
                    report.progress(),
                    locations.join(", ")
                ));
            }
        }
    }
}

impl crate::registry::Reporter for Console {}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match saved_plan(Path::new("prod.json"), text.to_owned()) {
            Ok(_) => panic!("accepted {text}"),
            Err(Error::Problems(problems)) => problems
                .problems
                .iter()
                .map(|p| format!("{} {} at {:?}", p.code, p.message, p.position()))
                .collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_saved_plan_of_another_schema_or_not_json_is_refused_saying_why() {
        let old = refused(r#"{"schema": "ferry.plan/v1", "resources": []}"#);
        assert!(old.contains("a plan of schema ferry.plan/v1"), "{old}");
        assert!(old.contains("ferry.plan/v3"), "{old}");
        // Today's format from before the plan was bound to its origin (v2:
        // `created` outside the hash, no `origin`) is refused as clearly.
        let v2 = refused(r#"{"schema": "ferry.plan/v2", "resources": []}"#);
        assert!(
            v2.contains("a plan of schema ferry.plan/v2; this Ferry carries out ferry.plan/v3"),
            "{v2}"
        );
        let broken = refused("{\n  \"schema\": ");
        assert!(broken.contains("ferry::apply::invalid"), "{broken}");
        assert!(broken.contains("prod.json:2:"), "located: {broken}");
        let incomplete = refused(r#"{"schema": "ferry.plan/v3"}"#);
        assert!(incomplete.contains("is not a saved plan: missing field"), "{incomplete}");
    }
}
