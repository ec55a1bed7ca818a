//! The job summary (`$GITHUB_STEP_SUMMARY`) as Markdown, from the same
//! typed values the human and JSON outputs print: the plan, the images it
//! moves, readiness per location and the outcome.
//!
//! Pure. GitHub refuses a step summary over 1 MiB ("Adding a job
//! summary", docs.github.com), so [`fit`] drops whole resource sections
//! from the end, with a note saying how many, before the limit.

use std::fmt::Write as _;

use crate::diff::Action;
use crate::plan::{self, Plan};
use crate::readiness::{LocationState, WorkloadReport};

/// GitHub's limit on one step's summary.
pub const LIMIT: usize = 1024 * 1024;

/// A summary in parts, so that it can be shortened by whole resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub head: String,
    /// One collapsible section per changed resource.
    pub resources: Vec<String>,
    pub tail: String,
}

impl Summary {
    /// The plan: where it goes, what it was made from, its hash, one
    /// `<details>` per changed resource, the images.
    pub fn plan(title: &str, plan: &Plan) -> Self {
        let target = &plan.target;
        let mut head = format!("## {title}\n\n");
        let [manifests, images] = plan::origins(plan);
        let _ = writeln!(head, "| | |\n| --- | --- |");
        let _ = writeln!(
            head,
            "| Environment | `{}` (org `{}`, GVC `{}`) |",
            target.environment, target.org, target.gvc
        );
        if let Some(source) = &target.source {
            let _ = writeln!(head, "| From | `{source}` |");
        }
        let _ = writeln!(head, "| Manifests | {} |", cell(&manifests));
        let _ = writeln!(head, "| Images | {} |", cell(&images));
        let _ = writeln!(head, "| Plan hash | `{}` |", plan.hash);
        if let Some(rollback) = &plan.rollback {
            let _ = writeln!(head, "| Rolls back to | release {} |", rollback.to);
        }
        let _ = writeln!(head, "\n**{}**\n", plan::summary_line(plan));
        let resources: Vec<String> = plan
            .resources
            .iter()
            .filter(|r| r.action != Action::Unchanged)
            .map(|resource| {
                let wave = resource.wave.map_or_else(String::new, |w| format!(", wave {w}"));
                let what = match resource.action {
                    Action::Create => "to create".to_owned(),
                    Action::Delete => "to delete (only with --prune)".to_owned(),
                    Action::Adopt => format!(
                        "to adopt (not created by Ferry), {}",
                        crate::output::count(resource.changes.len(), "field change")
                    ),
                    _ => crate::output::count(resource.changes.len(), "change"),
                };
                details(
                    &format!(
                        "<code>{} {}</code>{wave}: {what}",
                        html(resource.action.symbol()),
                        html(&resource.id),
                    ),
                    &diff_at_column_zero(&plan::resource_plain(resource)),
                )
            })
            .collect();
        if !resources.is_empty() {
            head.push_str("### Resources\n\n");
        }
        let mut tail = String::new();
        let images = plan::images_plain(plan);
        if !images.trim().is_empty() {
            let lines = images.trim_start().strip_prefix("Images:\n").unwrap_or(&images);
            let _ = writeln!(tail, "### Images\n\n{}", fenced("text", lines));
        }
        Summary { head, resources, tail }
    }

    /// Adds Markdown after everything else.
    pub fn then(mut self, markdown: &str) -> Self {
        self.tail.push_str(markdown);
        self
    }

    /// The whole summary, shortened to at most `budget` bytes by leaving
    /// out resource sections from the end (and saying how many).
    pub fn fit(&self, budget: usize) -> String {
        let note_room = 200;
        let fixed = self.head.len() + self.tail.len();
        let mut out = self.head.clone();
        let mut used = fixed;
        let mut shown = 0;
        for section in &self.resources {
            if used + section.len() + note_room > budget {
                break;
            }
            used += section.len();
            out.push_str(section);
            shown += 1;
        }
        let left = self.resources.len() - shown;
        if left > 0 {
            let _ = writeln!(
                out,
                "> {} not shown: GitHub keeps at most 1 MiB of a step's summary. The job log and `ferry plan --output json` have them all.\n",
                crate::output::count(left, "more resource")
            );
        }
        if out.len() + self.tail.len() <= budget {
            out.push_str(&self.tail);
        }
        out
    }
}

/// Readiness per workload and location, as the last check saw it.
pub fn readiness(reports: &[WorkloadReport]) -> String {
    if reports.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### Readiness\n\n| workload | location | state | detail |\n| --- | --- | --- | --- |\n",
    );
    for report in reports {
        for location in &report.locations {
            let state = match location.state {
                LocationState::Ready => "ready",
                LocationState::Waiting => "waiting",
                LocationState::Suspended => "suspended",
            };
            let detail = match &location.container {
                Some(container) => format!("{} (container {container})", location.message),
                None => location.message.clone(),
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {state} | {} |",
                report.workload,
                location.location,
                cell(&detail)
            );
        }
    }
    out.push('\n');
    out
}

/// How the run ended: a headline and, when there is one, the reason.
pub fn outcome(headline: &str, detail: Option<&str>) -> String {
    let mut out = format!("### Outcome\n\n**{}**\n", cell(headline));
    if let Some(detail) = detail.filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "\n{}", fenced("text", detail));
    }
    out
}

/// The plan's resource text with its diff lines (indented 8) moved to the
/// first column, where a `diff` code block colours `+` and `-`.
fn diff_at_column_zero(text: &str) -> String {
    text.lines()
        .map(|line| line.strip_prefix("        ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `<details>` with a summary line and the body as a code block.
fn details(summary: &str, body: &str) -> String {
    format!("<details><summary>{summary}</summary>\n\n{}\n</details>\n\n", fenced("diff", body))
}

/// A code block whose fence is longer than any run of backticks inside.
pub fn fenced(language: &str, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}\n", body.trim_end_matches('\n'))
}

/// Text safe in a table cell: no pipes or line breaks.
fn cell(text: &str) -> String {
    html(text).replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Text safe in HTML (the `<summary>` of a section).
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_longer_than_any_backticks_inside() {
        assert_eq!(fenced("diff", "a\n"), "```diff\na\n```\n");
        assert_eq!(fenced("", "x ```` y"), "`````\nx ```` y\n`````\n");
    }

    #[test]
    fn a_summary_over_its_budget_drops_resources_from_the_end_and_says_so() {
        let summary = Summary {
            head: "H\n".into(),
            resources: (0..10).map(|i| format!("{i}{}\n", "x".repeat(98))).collect(),
            tail: "T\n".into(),
        };
        let all = summary.fit(LIMIT);
        assert_eq!(all.len(), 2 + 1000 + 2);
        assert!(!all.contains("not shown"));
        let short = summary.fit(600);
        assert!(short.len() <= 600, "{}", short.len());
        assert!(short.contains("\n2xxx"), "{short}");
        assert!(!short.contains("\n3xxx"), "{short}");
        assert!(short.contains("7 more resources not shown"), "{short}");
        assert!(short.ends_with("T\n"));
    }
}
