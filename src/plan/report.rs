//! The plan as people read it: Terraform-like symbols, field changes,
//! unified YAML diffs, image changes and a closing count.

use std::fmt::Write as _;

use serde_json::Value;

use super::{ImageChange, ImagesFrom, ManifestsFrom, Plan, ResourcePlan, Target};
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
            Action::Adopt => "36",
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
    let _ = writeln!(out, "Manifests: {}", manifests_origin(target));
    let _ = writeln!(out, "Images: {}", images_origin(plan));
    if let Some(rollback) = &plan.rollback {
        rollback_text(&mut out, target, rollback);
    }
    let changed: Vec<&ResourcePlan> =
        plan.resources.iter().filter(|r| r.action != Action::Unchanged).collect();
    if changed.is_empty() && !plan.summary.has_changes() {
        let _ = match &plan.rollback {
            Some(rollback) => writeln!(
                out,
                "\nNo changes. {} already runs the images of release {}.",
                target.environment, rollback.to
            ),
            None => writeln!(out, "\nNo changes. {} matches the manifests.", target.environment),
        };
    } else {
        legend(&mut out, plan, style);
        for resource in &changed {
            resource_text(&mut out, resource, style);
        }
        images(&mut out, plan);
    }
    let _ = writeln!(out, "\n{}", summary_line(plan));
    out
}

/// `Plan: 1 to create, … 2 images to copy.`
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let adopt = if s.adopt > 0 { format!("{} to adopt, ", s.adopt) } else { String::new() };
    format!(
        "Plan: {adopt}{} to create, {} to update, {} to replace, {} to delete, {} {} to copy.",
        s.create,
        s.update,
        s.replace,
        s.delete,
        s.images_to_copy,
        if s.images_to_copy == 1 { "image" } else { "images" }
    )
}

/// Which manifests and which images a plan was made from, as sentences
/// (the `Manifests:` and `Images:` lines of [`text`]).
pub fn origins(plan: &Plan) -> [String; 2] {
    [manifests_origin(&plan.target), images_origin(plan)]
}

/// One resource as [`text`] shows it (symbol, id, wave, field changes,
/// diff), without colour.
pub fn resource_plain(resource: &ResourcePlan) -> String {
    let mut out = String::new();
    resource_text(&mut out, resource, Style::default());
    out
}

/// The image lines of [`text`] (empty when no image changes).
pub fn images_plain(plan: &Plan) -> String {
    let mut out = String::new();
    images(&mut out, plan);
    out
}

/// What a rollback goes back to and what it leaves as it is.
fn rollback_text(out: &mut String, target: &Target, rollback: &super::Rollback) {
    let now = rollback.current.map_or_else(String::new, |c| format!(" (now release {c})"));
    let _ = writeln!(
        out,
        "Rollback: {}{now} back to the images of release {}, re-pointed container by container",
        target.environment, rollback.to
    );
    let _ = writeln!(out, "Not restored by a rollback:");
    for line in &rollback.not_restored {
        let _ = writeln!(out, "  - {line}");
    }
}

/// Which manifests the plan was made from, and why.
fn manifests_origin(target: &Target) -> String {
    match target.manifests_from {
        ManifestsFrom::Unread => return "none read: a rollback changes images only".to_owned(),
        ManifestsFrom::Imported => {
            return "none read: what runs, as `ferry import` wrote it; only the managed tag is written"
                .to_owned();
        }
        _ => {}
    }
    let Some(revision) = &target.revision else {
        return "the work tree (--worktree)".to_owned();
    };
    let why = match &target.manifests_from {
        ManifestsFrom::Release { environment, release } => {
            format!("the commit of {environment}'s release {release}")
        }
        ManifestsFrom::Ref => format!("--ref {}", revision.requested),
        ManifestsFrom::PlanFile => match &target.source {
            Some(source) => format!(
                "the plan file's revision {} ({source} has no successful release to follow yet)",
                revision.requested
            ),
            None => format!("the plan file's revision {}", revision.requested),
        },
        ManifestsFrom::Worktree => "--worktree".to_owned(),
        ManifestsFrom::Unread | ManifestsFrom::Imported => "none read".to_owned(),
    };
    format!("git {}, {why}", revision.short())
}

/// Where the plan's images come from.
fn images_origin(plan: &Plan) -> String {
    let target = &plan.target;
    match (target.images_from, &target.source) {
        (ImagesFrom::Source, Some(source)) => {
            format!("as {source}'s live workloads run them, by digest")
        }
        (ImagesFrom::Release, _) => match &plan.rollback {
            Some(rollback) => {
                format!("as {}'s release {} ran them, by digest", target.environment, rollback.to)
            }
            None => "as an earlier release ran them, by digest".to_owned(),
        },
        (ImagesFrom::Running, _) => {
            format!("as {}'s workloads run them, unchanged", target.environment)
        }
        _ => "as the manifests write them".to_owned(),
    }
}

fn legend(out: &mut String, plan: &Plan, style: Style) {
    let used: Vec<String> = [
        (Action::Create, "create"),
        (Action::Update, "update"),
        (Action::Replace, "replace"),
        (Action::Delete, "delete (only with --prune)"),
        (Action::Adopt, "adopt (exists, not created by Ferry: tagged as managed when written)"),
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
    let place = if resource.shared_with.is_empty() {
        place
    } else {
        format!("{place}  (shared by {})", resource.shared_with.join(", ")).trim_start().to_owned()
    };
    let _ = writeln!(out, "{:>3} {:<48} {place}", style.action(resource.action), resource.id);
    if let Some(value) = &resource.adopt_tag {
        let why = if resource.changes.is_empty() {
            "no field changes: only the tag is written"
        } else {
            "with the field changes below"
        };
        let tag = style.paint("32", "+");
        let _ =
            writeln!(out, "      {tag} tags.{}: \"{value}\"  # adopted, {why}", super::MANAGED_TAG);
    }
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
    let org = &plan.target.org;
    for image in &plan.images {
        let was = image.before.as_deref().map_or_else(
            || "new".to_owned(),
            |before| format!("was {}", short_image(before, None, org)),
        );
        let _ = writeln!(
            out,
            "  workload/{} {}: {} ({was}; {})",
            image.workload,
            image.container,
            short_image(&image.after, image.tag.as_deref(), org),
            movement(image, org)
        );
    }
}

/// An image as a row shows it: without the environment's own registry
/// prefix (the header names the org), with its tag and digest once each.
fn short_image(reference: &str, tag: Option<&str>, org: &str) -> String {
    let own = format!("/org/{org}/image/");
    let shown = reference.strip_prefix(own.as_str()).unwrap_or(reference);
    let parsed = crate::manifest::image::classify(shown, None);
    match (tag, parsed.tag, shown.split_once('@')) {
        (Some(tag), None, Some((name, digest))) => format!("{name}:{tag}@{digest}"),
        _ => shown.to_owned(),
    }
}

/// How the image reaches the environment.
fn movement(image: &ImageChange, org: &str) -> String {
    let lands_here = image.after.starts_with(&format!("/org/{org}/image/"));
    if let Some(host) = &image.external {
        return format!("external, {host}: not copied");
    }
    match (lands_here, image.copy) {
        (true, Some(true)) => format!("to copy into {org}'s registry"),
        (true, Some(false)) => format!("already in {org}'s registry"),
        (false, _) => {
            let host = crate::manifest::image::classify(&image.after, None).source.host();
            host.map_or_else(|| "not copied".to_owned(), |host| format!("pulled from {host}"))
        }
        (true, None) => "registry not checked".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::graph::Graph;
    use crate::plan::{Input, State, build};
    use crate::repo::Revision;

    const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn plan(manifests_from: ManifestsFrom, source: Option<&str>, images: Vec<ImageChange>) -> Plan {
        let id: crate::manifest::ResourceId = "workload/api".parse().unwrap_or_else(|_| panic!());
        let state = |image: &str| State {
            id: id.clone(),
            body: json!({"spec": {"containers": [{"name": "main", "image": image}]}}),
            version: Some(4),
            item: None,
        };
        let revision = (manifests_from != ManifestsFrom::Worktree).then(|| Revision {
            requested: match manifests_from {
                ManifestsFrom::Ref => "v1.5".to_owned(),
                ManifestsFrom::PlanFile => "HEAD".to_owned(),
                _ => "4128bda3c0ffee00".to_owned(),
            },
            commit: "4128bda3c0ffee0000000000000000000000000a".to_owned(),
        });
        build(Input {
            target: Target {
                environment: "prod".into(),
                org: "acme-prod".into(),
                gvc: "app".into(),
                source: source.map(str::to_owned),
                revision,
                manifests_from,
                images_from: if source.is_some() {
                    ImagesFrom::Source
                } else {
                    ImagesFrom::Manifests
                },
            },
            graph: &Graph { waves: vec![vec![id.clone()]], dependencies: vec![] },
            desired: vec![state(&format!("/org/acme-prod/image/api@{DIGEST}"))],
            live: [(id.clone(), state("/org/acme-prod/image/api:1.4.1"))].into_iter().collect(),
            managed: vec![],
            images,
            applied: Default::default(),
            steps: Default::default(),
        })
    }

    fn change(before: Option<&str>, after: &str, copy: Option<bool>) -> ImageChange {
        let parsed = crate::manifest::image::classify(after, None);
        ImageChange {
            workload: "api".into(),
            container: "main".into(),
            before: before.map(str::to_owned),
            after: after.to_owned(),
            tag: Some(parsed.tag.unwrap_or("1.4.2").to_owned()),
            digest: parsed.digest.map(str::to_owned),
            copy,
            external: None,
        }
    }

    #[test]
    fn an_external_image_is_its_own_kind_of_row() {
        let mut redis = change(Some("redis:7"), "redis:alpine", Some(false));
        redis.external = Some("docker.io".into());
        assert_eq!(movement(&redis, "acme-prod"), "external, docker.io: not copied");
        let partner = change(None, "partner.registry.cpln.io/lib:3", Some(false));
        assert_eq!(movement(&partner, "acme-prod"), "pulled from partner.registry.cpln.io");
    }

    #[test]
    fn a_promotion_says_where_manifests_and_images_come_from_and_what_moves() {
        let images = vec![
            change(
                Some("/org/acme-prod/image/api:1.4.1"),
                &format!("/org/acme-prod/image/api@{DIGEST}"),
                Some(true),
            ),
            change(None, &format!("/org/acme-prod/image/api:1.4.2@{DIGEST}"), Some(false)),
            change(
                Some("acme-staging.registry.cpln.io/api:1.4.1"),
                &format!("acme-staging.registry.cpln.io/api@{DIGEST}"),
                Some(false),
            ),
        ];
        let release = ManifestsFrom::Release { environment: "staging".into(), release: 3 };
        insta::assert_snapshot!(text(&plan(release, Some("staging"), images), Style::default()));
    }

    #[test]
    fn every_manifest_origin_has_its_header() {
        let headers: Vec<String> = [
            (ManifestsFrom::Ref, Some("staging")),
            (ManifestsFrom::PlanFile, Some("staging")),
            (ManifestsFrom::PlanFile, None),
            (ManifestsFrom::Worktree, None),
        ]
        .into_iter()
        .map(|(from, source)| {
            text(&plan(from, source, vec![]), Style::default())
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
        insta::assert_snapshot!(headers.join("\n\n"));
    }
}
