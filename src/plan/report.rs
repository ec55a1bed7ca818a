//! The plan as people read it: Terraform-like symbols, field changes,
//! unified YAML diffs, image changes and a closing count.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Plan, ResourcePlan};
use crate::diff::{Action, Change, HIDDEN};

/// How to print.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours (a terminal without `NO_COLOR`).
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\u{1b}[{code}m{text}\u{1b}[0m") } else { text.to_owned() }
    }

    fn action(self, action: Action) -> String {
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::Unchanged => "0",
        };
        self.paint(code, action.symbol())
    }
}

/// The whole plan as text.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    let target = &plan.target;
    let _ =
        writeln!(out, "Plan for {}: org {}, GVC {}", target.environment, target.org, target.gvc);
    let manifests = target.revision.as_ref().map_or_else(
        || "the work tree".to_owned(),
        |r| format!("git {} ({})", r.requested, r.short()),
    );
    let _ = writeln!(out, "Manifests: {manifests}");
    if let Some(source) = &target.source {
        let _ = writeln!(out, "Images: as running in {source}");
    }
    let changed: Vec<&ResourcePlan> =
        plan.resources.iter().filter(|r| r.action != Action::Unchanged).collect();
    if changed.is_empty() && !plan.summary.has_changes() {
        let _ = writeln!(out, "\nNo changes. {} matches the manifests.", target.environment);
    } else {
        legend(&mut out, plan, style);
        for resource in &changed {
            resource_text(&mut out, resource, style);
        }
        images(&mut out, plan);
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to update, {} to replace, {} to delete, {} images to copy.",
        s.create, s.update, s.replace, s.delete, s.images_to_copy
    );
    out
}

fn legend(out: &mut String, plan: &Plan, style: Style) {
    let used: Vec<String> = [
        (Action::Create, "create"),
        (Action::Update, "update"),
        (Action::Replace, "replace"),
        (Action::Delete, "delete (only with --prune)"),
    ]
    .iter()
    .filter(|(action, _)| plan.resources.iter().any(|r| r.action == *action))
    .map(|(action, word)| format!("{} {word}", style.action(*action)))
    .collect();
    if !used.is_empty() {
        let _ = writeln!(out, "Symbols: {}", used.join("   "));
    }
    out.push('\n');
}

fn resource_text(out: &mut String, resource: &ResourcePlan, style: Style) {
    let place = match (resource.action, resource.wave) {
        (Action::Delete, _) => "managed by Ferry, no longer in git".to_owned(),
        (_, Some(wave)) => format!("wave {wave}"),
        (_, None) => String::new(),
    };
    let _ = writeln!(out, "{:>3} {:<48} {place}", style.action(resource.action), resource.id);
    for change in &resource.changes {
        let _ = writeln!(out, "      {}", change_line(change, style));
    }
    if let Some(diff) = &resource.diff {
        for line in diff.lines() {
            let painted = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => style.paint("32", line),
                Some('-') if !line.starts_with("---") => style.paint("31", line),
                Some('@') => style.paint("36", line),
                _ => line.to_owned(),
            };
            let _ = writeln!(out, "        {painted}");
        }
    }
}

fn change_line(change: &Change, style: Style) -> String {
    let value = |v: &Option<Value>| v.as_ref().map_or_else(String::new, short);
    let symbol = style.paint(
        match change.op {
            crate::diff::Op::Add => "32",
            crate::diff::Op::Remove => "31",
            crate::diff::Op::Change => "33",
        },
        change.op.symbol(),
    );
    let mut line = match change.op {
        crate::diff::Op::Add => format!("{symbol} {}: {}", change.path, value(&change.after)),
        crate::diff::Op::Remove => format!("{symbol} {}: {}", change.path, value(&change.before)),
        crate::diff::Op::Change if change.sensitive => {
            format!("{symbol} {}: {HIDDEN}, changed", change.path)
        }
        crate::diff::Op::Change => {
            format!(
                "{symbol} {}: {} -> {}",
                change.path,
                value(&change.before),
                value(&change.after)
            )
        }
    };
    if change.forces_replacement {
        line.push_str("  # forces replacement");
    }
    line
}

/// A value on one line, long ones shortened.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(99).collect::<String>())
    } else {
        text
    }
}

fn images(out: &mut String, plan: &Plan) {
    if plan.images.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nImages:");
    for image in &plan.images {
        let version = match (&image.tag, &image.digest) {
            (Some(tag), Some(digest)) => format!("tag {tag}, {digest}"),
            (Some(tag), None) => format!("tag {tag}"),
            (None, Some(digest)) => digest.clone(),
            (None, None) => "no tag".to_owned(),
        };
        let copy = match image.copy {
            Some(true) => "must be copied",
            Some(false) => "already in the registry",
            None => "registry not checked",
        };
        let before = image.before.as_deref().unwrap_or("(none)");
        let _ = writeln!(
            out,
            "  workload/{} {}: {before} -> {} ({version}; {copy})",
            image.workload, image.container, image.after
        );
    }
}
