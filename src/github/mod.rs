//! GitHub Actions output, when `GITHUB_ACTIONS=true`: the job summary,
//! annotations, step outputs and log groups (docs/github-actions.md).
//!
//! Edge: it writes to `$GITHUB_STEP_SUMMARY`, `$GITHUB_OUTPUT` and the log.
//! What it writes is made from the same typed values the human and JSON
//! outputs print (`Plan`, readiness reports, the promotion's outcome, the
//! `Problem`s), by the pure [`summary`] and [`workflow`] modules; no text
//! printed for people is parsed back.
//!
//! Workflow commands go to stdout (GitHub reads them there), except with
//! `--output json`, where stdout is data: then they go to stderr, which
//! the runner reads for commands too. A log group goes to the stream that
//! carries its lines.

pub mod summary;
pub mod workflow;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::collections::HashMap;

use crate::Error;
use crate::cli::{GlobalArgs, OutputFormat};
use crate::diagnostic::{Problem, Severity};
use crate::execute::{Event, ExecuteError};
use crate::plan::Plan;
use crate::promote::Promoted;
use crate::readiness::WorkloadReport;
pub use summary::Summary;

/// The names Ferry writes to `$GITHUB_OUTPUT` (action.yml's outputs).
pub const OUTPUTS: [&str; 4] = ["changes_present", "plan_hash", "release", "rolled_back"];

/// GitHub shows at most this many annotations of each kind per step; the
/// rest are counted in one closing line.
const ANNOTATIONS: usize = 10;

/// The run's GitHub output; set once, when `GITHUB_ACTIONS=true`.
static ACTIVE: std::sync::OnceLock<Github> = std::sync::OnceLock::new();

/// Where GitHub output goes in this run.
#[derive(Debug, Default)]
pub struct Github {
    summary: Option<PathBuf>,
    output: Option<PathBuf>,
    /// `$GITHUB_WORKSPACE`: annotation paths are made relative to it.
    workspace: Option<String>,
    /// Workflow commands on stderr (stdout carries JSON).
    on_stderr: bool,
    errors: AtomicUsize,
    warnings: AtomicUsize,
}

/// Turns GitHub output on when `GITHUB_ACTIONS=true`. No token is ever
/// written, not even in an `::add-mask::` command: stdout may be kept (a
/// plan redirected to a file, an artifact, a PR comment), and GitHub
/// already masks the secrets a workflow passes in (docs/github-actions.md).
pub fn install(global: &GlobalArgs) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("GITHUB_ACTIONS").as_deref() != Some("true") {
        return;
    }
    ACTIVE.get_or_init(|| Github {
        summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        output: var("GITHUB_OUTPUT").map(PathBuf::from),
        workspace: var("GITHUB_WORKSPACE"),
        on_stderr: global.output == OutputFormat::Json,
        ..Github::default()
    });
}

/// The run's GitHub output, if on.
pub fn active() -> Option<&'static Github> {
    ACTIVE.get()
}

impl Github {
    /// Writes one workflow command line.
    fn command(&self, line: &str) {
        if self.on_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    /// Problems as annotations at their manifest lines, at most
    /// [`ANNOTATIONS`] of each kind in a run.
    pub fn annotate(&self, problems: &[Problem]) {
        for problem in problems {
            let shown = match problem.severity {
                Severity::Warning => &self.warnings,
                _ => &self.errors,
            };
            if shown.fetch_add(1, Ordering::Relaxed) < ANNOTATIONS {
                self.command(&workflow::annotation(problem, self.workspace.as_deref()));
            }
        }
    }

    /// An error that stopped the run: its problems located, or one
    /// annotation with its code and message.
    pub fn annotate_error(&self, error: &Error) {
        if let Error::Problems(problems) = error {
            return self.annotate(&problems.problems);
        }
        let code = miette::Diagnostic::code(error).map(|c| c.to_string());
        let mut message = chain(error);
        if let Some(help) = miette::Diagnostic::help(error) {
            message.push_str(&format!("\nhelp: {help}"));
        }
        if self.errors.fetch_add(1, Ordering::Relaxed) < ANNOTATIONS {
            let title = code.unwrap_or_else(|| "ferry".to_owned());
            self.command(&workflow::command("error", &[("title", title)], &message));
        }
    }

    /// At the end of a run: one line for the annotations left out.
    pub fn close(&self) {
        let over = |count: &AtomicUsize| count.load(Ordering::Relaxed).saturating_sub(ANNOTATIONS);
        let (errors, warnings) = (over(&self.errors), over(&self.warnings));
        if errors + warnings > 0 {
            self.command(&workflow::command(
                "notice",
                &[("title", "ferry".to_owned())],
                &format!(
                    "{} and {} more than GitHub annotates (at most {ANNOTATIONS} of each per step); the log has every one",
                    crate::output::count(errors, "error"),
                    crate::output::count(warnings, "warning"),
                ),
            ));
        }
    }

    /// Starts a collapsible log group on stdout, or on stderr with the
    /// progress lines it holds.
    pub fn group(&self, title: &str, on_stderr: bool) {
        let line = workflow::command("group", &[], title);
        write_line(on_stderr || self.on_stderr, &line);
    }

    /// Ends the log group started on the same stream.
    pub fn end_group(&self, on_stderr: bool) {
        write_line(on_stderr || self.on_stderr, "::endgroup::");
    }

    /// Appends to the job summary, within what GitHub keeps of it.
    pub fn summary(&self, summary: &Summary) {
        let Some(path) = &self.summary else { return };
        let used = std::fs::metadata(path).map_or(0, |m| m.len());
        let budget = summary::LIMIT
            .saturating_sub(usize::try_from(used).unwrap_or(usize::MAX))
            .saturating_sub(4 * 1024);
        append(path, &summary.fit(budget));
    }

    /// Writes step outputs.
    pub fn outputs(&self, values: &[(&str, String)]) {
        let Some(path) = &self.output else { return };
        let text: String =
            values.iter().map(|(name, value)| workflow::output(name, value)).collect();
        append(path, &text);
    }

    /// `ferry plan`'s summary and outputs.
    pub fn plan(&self, plan: &Plan, saved: Option<&Path>) {
        let mut summary = Summary::plan(&title(plan, "plan"), plan);
        if let Some(path) = saved {
            summary = summary.then(&format!(
                "Saved to `{}`: `ferry apply {}` carries out exactly this plan, and refuses if anything moved.\n",
                path.display(),
                path.display()
            ));
        }
        self.summary(&summary);
        self.outputs(&[
            ("changes_present", plan.summary.has_changes().to_string()),
            ("plan_hash", plan.hash.clone()),
        ]);
    }

    /// `ferry validate`'s summary: the verdict and every problem located.
    pub fn validate(&self, verdict: &str, problems: &[Problem]) {
        let mut head = format!("## Ferry validate\n\n**{verdict}**\n\n");
        if !problems.is_empty() {
            head.push_str("| | where | code | problem |\n| --- | --- | --- | --- |\n");
            for problem in problems {
                let at = workflow::position(problem, self.workspace.as_deref())
                    .map_or_else(String::new, |p| format!("`{}:{}:{}`", p.file, p.line, p.column));
                let kind = if problem.severity == Severity::Warning { "warning" } else { "error" };
                head.push_str(&format!(
                    "| {kind} | {at} | `{}` | {} |\n",
                    problem.code,
                    problem.shown_message().replace('|', "\\|").replace('\n', " ")
                ));
            }
        }
        self.summary(&Summary { head, ..Summary::default() });
    }
}

fn write_line(on_stderr: bool, line: &str) {
    if on_stderr {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    } else {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// Appends to a file GitHub gave; a failure is logged, not fatal: the
/// release already happened or not, whatever the summary says.
fn append(path: &Path, text: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = written {
        tracing::warn!("could not write GitHub output to {}: {error}", path.display());
    }
}

/// An error and its causes, one per line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\ncaused by: {cause}"));
        source = cause.source();
    }
    text
}

/// `Ferry promote: staging → prod`, from what the plan is.
fn title(plan: &Plan, verb: &str) -> String {
    let target = &plan.target;
    match (&plan.rollback, &target.source) {
        (Some(rollback), _) => {
            format!("Ferry {verb}: roll {} back to release {}", target.environment, rollback.to)
        }
        (None, Some(source)) => format!("Ferry {verb}: {source} → {}", target.environment),
        (None, None) => format!("Ferry {verb}: git → {}", target.environment),
    }
}

/// What a promotion, deploy, apply or rollback showed, for its summary:
/// the plan and readiness as the last check saw each workload.
#[derive(Debug, Default)]
pub struct Record {
    plan: Mutex<Option<Plan>>,
    readiness: Mutex<HashMap<String, WorkloadReport>>,
    /// A log group around the carrying out is open (on stderr).
    carrying_out: AtomicBool,
}

impl Record {
    /// A record when GitHub output is on.
    pub fn new() -> Option<Self> {
        active().map(|_| Record::default())
    }

    /// The plan is about to be shown (on stdout, unless `json`).
    pub fn plan_shown(&self, plan: &Plan, json: bool) {
        if let Ok(mut slot) = self.plan.lock() {
            *slot = Some(plan.clone());
        }
        if !json && let Some(github) = active() {
            github.group(&format!("Plan for {}", plan.target.environment), false);
        }
    }

    /// The plan was shown: what follows is carrying it out.
    pub fn plan_done(&self, plan: &Plan, json: bool) {
        let Some(github) = active() else { return };
        if !json {
            github.end_group(false);
        }
        if plan.summary.has_changes() && !self.carrying_out.swap(true, Ordering::Relaxed) {
            github.group(&format!("Carrying out the plan for {}", plan.target.environment), true);
        }
    }

    pub fn event(&self, event: &Event<'_>) {
        let report = match event {
            Event::Waiting { report } | Event::Ready { report, .. } => *report,
            Event::Written { .. } => return,
        };
        if let Ok(mut readiness) = self.readiness.lock() {
            readiness.insert(report.workload.clone(), report.clone());
        }
    }

    /// The run ended: the summary (plan, images, readiness, outcome) and
    /// the outputs.
    pub fn finish(&self, outcome: &Result<Promoted, Error>) {
        let Some(github) = active() else { return };
        if self.carrying_out.swap(false, Ordering::Relaxed) {
            github.end_group(true);
        }
        let recorded = self.plan.lock().ok().and_then(|p| p.clone());
        let plan = match outcome {
            Ok(Promoted::UpToDate(plan) | Promoted::Released { plan, .. }) => Some(&**plan),
            Err(_) => recorded.as_ref(),
        };
        let ended = Ended::of(outcome);
        let mut readiness: Vec<WorkloadReport> =
            self.readiness.lock().map(|r| r.values().cloned().collect()).unwrap_or_default();
        readiness.sort_by(|a, b| a.workload.cmp(&b.workload));
        let tail = summary::readiness(&readiness)
            + &summary::outcome(&ended.headline, ended.detail.as_deref());
        let summary = match plan {
            Some(plan) => Summary::plan(&title(plan, "release"), plan).then(&tail),
            None => Summary { head: "## Ferry\n\n".to_owned(), tail, ..Summary::default() },
        };
        github.summary(&summary);
        github.outputs(&[
            ("changes_present", plan.is_some_and(|p| p.summary.has_changes()).to_string()),
            ("plan_hash", plan.map_or_else(String::new, |p| p.hash.clone())),
            ("release", ended.release.map_or_else(String::new, |r| r.to_string())),
            ("rolled_back", ended.rolled_back.to_string()),
        ]);
    }
}

/// How a run ended, for the summary and the outputs.
struct Ended {
    headline: String,
    detail: Option<String>,
    /// The revision recorded (succeeded or failed).
    release: Option<u64>,
    /// What the release changed was put back after it failed (the release
    /// record's `rolledBack`).
    rolled_back: bool,
}

impl Ended {
    fn of(outcome: &Result<Promoted, Error>) -> Self {
        let plain = |headline: String, detail: Option<String>| Ended {
            headline,
            detail,
            release: None,
            rolled_back: false,
        };
        match outcome {
            Ok(Promoted::UpToDate(plan)) => plain(
                format!("{} already runs this release: nothing to do", plan.target.environment),
                None,
            ),
            Ok(Promoted::Released { plan, release }) => Ended {
                headline: match &plan.rollback {
                    Some(rollback) => format!(
                        "Rolled {} back to the images of release {}, recorded as revision {}",
                        release.environment, rollback.to, release.revision
                    ),
                    None => format!(
                        "Released {} revision {}: every changed workload ready",
                        release.environment, release.revision
                    ),
                },
                detail: None,
                release: Some(release.revision),
                rolled_back: false,
            },
            Err(error) if blocked(error) => plain(format!("Blocked: {error}"), Some(chain(error))),
            Err(Error::Execute(failed)) => match &**failed {
                ExecuteError::Failed { left, .. } => Ended {
                    headline: format!("Failed: {failed}"),
                    detail: Some(chain(&**failed)),
                    release: match left.recorded {
                        crate::execute::Recorded::Revision(revision) => Some(revision),
                        crate::execute::Recorded::Not(_) => None,
                    },
                    rolled_back: matches!(left.restored, crate::execute::Restored::Restored(_)),
                },
                other => plain(format!("Failed: {other}"), Some(chain(other))),
            },
            Err(error) => plain(format!("Failed: {error}"), Some(chain(error))),
        }
    }
}

/// Whether an error is one that exits 3 (blocked).
fn blocked(error: &Error) -> bool {
    match error {
        Error::Promote(e) => e.blocks(),
        Error::Execute(e) => {
            matches!(**e, ExecuteError::Lock(crate::lock::LockError::Held { .. }))
        }
        _ => false,
    }
}
