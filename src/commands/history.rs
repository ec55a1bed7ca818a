//! `ferry history ENV [REVISION] [--limit N]`: the releases recorded in an
//! environment's own org, newest first, or one release in full. Records
//! that cannot be read are warned about and skipped.

use serde_json::{Value, json};

use super::Session;
use crate::cli::OutputFormat;
use crate::config::Environment;
use crate::diagnostic::Problem;
use crate::history::{self, History, Unreadable};
use crate::release::{Release, ReleaseKind, format_duration};
use crate::{Error, ExitStatus, connect, output};

/// Version of `history --output json`.
pub const SCHEMA: &str = "ferry.history/v2";

pub(crate) fn run(
    session: &Session<'_>,
    env: &str,
    revision: Option<u64>,
    limit: Option<usize>,
) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let history =
        super::runtime()?.block_on(async { history::read(&connect::client(env)?, env).await })?;
    output::warnings(
        &history.unreadable.iter().map(|u| unreadable_warning(env, u)).collect::<Vec<_>>(),
    );
    let json = session.global.output == OutputFormat::Json;
    let text = match revision {
        Some(revision) => {
            let release = find(env, &history, revision)?;
            if json {
                super::json_about(SCHEMA, env, json!({"release": entry(env, release)}))
            } else {
                full(env, release)
            }
        }
        None if json => {
            let shown: Vec<Value> = newest(&history, limit).map(|r| entry(env, r)).collect();
            super::json_about(
                SCHEMA,
                env,
                json!({
                    "total": history.releases.len(),
                    "releases": shown,
                    "unreadable": history.unreadable,
                }),
            )
        }
        None => list(env, &history, limit),
    };
    output::print(&text)?;
    Ok(ExitStatus::Success)
}

fn unreadable_warning(env: &Environment, skipped: &Unreadable) -> Problem {
    Problem::new(
        "ferry::history::unreadable",
        format!("release record {} of {} cannot be read; skipped", skipped.secret, env.name),
    )
    .help(format!(
        "{}; the other releases are shown, and its revision is not reused. Delete the secret once it is no longer needed: cpln secret delete {} --org {}",
        skipped.reason, skipped.secret, env.org
    ))
    .warning()
}

fn find<'a>(env: &Environment, history: &'a History, revision: u64) -> Result<&'a Release, Error> {
    if let Some(release) = history.find(revision) {
        return Ok(release);
    }
    let problem = match history.unreadable.iter().find(|u| u.revision == Some(revision)) {
        Some(skipped) => Problem::new(
            "ferry::history::unreadable",
            format!("release {revision} of {} cannot be read", env.name),
        )
        .help(skipped.reason.clone()),
        None => {
            let known: Vec<String> =
                history.releases.iter().rev().map(|r| r.revision.to_string()).collect();
            Problem::new(
                "ferry::history::no-such-release",
                format!("{} has no release {revision}", env.name),
            )
            .help(if known.is_empty() {
                format!("{} has no recorded releases", env.name)
            } else {
                format!("its recorded releases are {}", known.join(", "))
            })
        }
    };
    Err(problem.into())
}

/// The newest `limit` releases, newest first.
fn newest(history: &History, limit: Option<usize>) -> impl Iterator<Item = &Release> {
    history.releases.iter().rev().take(limit.unwrap_or(usize::MAX))
}

/// A release as `history --output json` shows it: the record, plus who ran
/// it in words, how long it took and where each image comes from.
fn entry(env: &Environment, release: &Release) -> Value {
    let mut value = serde_json::to_value(release).unwrap_or_default();
    value["kind"] = json!(release.kind.map(|k| k.as_str()));
    value["who"] = json!(release.actor.describe());
    if let Some(approval) = &release.approval {
        value["approved"] = json!(approval.describe(&release.plan_hash));
    }
    value["duration_ms"] = json!(release.duration_ms());
    if let Some(images) = value.get_mut("images").and_then(Value::as_array_mut) {
        for image in images {
            let origin = history::image_origin(env, image["image"].as_str().unwrap_or_default());
            image["origin"] = json!(origin);
        }
    }
    value
}

fn outcome(release: &Release) -> String {
    if release.rolled_back {
        format!("{}, restored", release.outcome.as_str())
    } else {
        release.outcome.as_str().to_owned()
    }
}

fn short(text: &str, length: usize) -> &str {
    text.get(..length).unwrap_or(text)
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> &str {
    short(digest, "sha256:".len() + 12)
}

fn took(release: &Release) -> String {
    release.duration_ms().map_or_else(|| "-".to_owned(), format_duration)
}

/// Rows of cells as aligned columns (two spaces apart), each line indented.
fn columns(indent: &str, rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.iter().map(Vec::len).max().unwrap_or(0))
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The image rows of a release: workload/container, origin, digest, image.
fn image_rows(env: &Environment, release: &Release, abbreviate: bool) -> Vec<Vec<String>> {
    release
        .images
        .iter()
        .map(|image| {
            let digest = image.digest.as_deref().unwrap_or("(no digest known)");
            let reference = if abbreviate {
                image.image.split_once('@').map_or(image.image.as_str(), |(name, _)| name)
            } else {
                image.image.as_str()
            };
            vec![
                format!("{}/{}", image.workload, image.container),
                history::image_origin(env, &image.image).to_owned(),
                if abbreviate { short_digest(digest).to_owned() } else { digest.to_owned() },
                reference.to_owned(),
            ]
        })
        .collect()
}

/// The list: one block per release, newest first.
fn list(env: &Environment, history: &History, limit: Option<usize>) -> String {
    let total = history.releases.len();
    if total == 0 {
        return format!(
            "{} has no recorded releases (org {}, GVC {})\n",
            env.name, env.org, env.gvc
        );
    }
    let shown = limit.unwrap_or(total).min(total);
    let mut text = format!(
        "Releases of {} (org {}, GVC {}), newest first{}:\n",
        env.name,
        env.org,
        env.gvc,
        if shown < total { format!(", {shown} of {total}") } else { String::new() }
    );
    for release in newest(history, limit) {
        let what = headline(release);
        text.push_str(&format!(
            "\n#{}  {what}  {}  {} ({})  by {}\n",
            release.revision,
            outcome(release),
            release.started,
            took(release),
            release.actor.describe()
        ));
        text.push_str(&format!(
            "    git {}  plan {}\n",
            release.commit.as_deref().map_or("-", |c| short(c, 8)),
            short(&release.plan_hash, 12)
        ));
        // What the release says of itself ("rollback to N", why it failed),
        // unless the headline said it all.
        if let Some(message) = release.message.as_ref().filter(|m| **m != what) {
            text.push_str(&format!("    {message}\n"));
        }
        text.push_str(&columns("    ", &image_rows(env, release, true)));
    }
    if shown < total {
        text.push_str(&format!("\n{} older not shown (--limit {shown})\n", total - shown));
    }
    text
}

/// What a release was, in the list's words: where it came from ("promote
/// from staging"), or for a rollback the release whose images it brought
/// back ("rollback to 1"): its recorded source is that release's, not
/// where the rollback came from.
fn headline(release: &Release) -> String {
    let from = release.source.as_deref().unwrap_or("git");
    // Records older than `kind` do not say it.
    match release.kind {
        None => format!("from {from}"),
        Some(ReleaseKind::PreFerry) => "pre-ferry (what ran before Ferry)".to_owned(),
        Some(ReleaseKind::Rollback) => rolled_back_to(release)
            .map_or_else(|| "rollback".to_owned(), |to| format!("rollback to {to}")),
        Some(k) => format!("{} from {from}", k.as_str()),
    }
}

/// The release a rollback brought the images of back, as its record's
/// message says ("rollback to 2", maybe followed by why it failed).
fn rolled_back_to(release: &Release) -> Option<u64> {
    let rest = release.message.as_deref()?.strip_prefix("rollback to ")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |end| &rest[..end]);
    digits.parse().ok()
}

/// One release, every field unabbreviated.
fn full(env: &Environment, release: &Release) -> String {
    let mut rows = vec![
        vec!["kind".to_owned(), release.kind.map_or("-", |k| k.as_str()).to_owned()],
        vec!["outcome".to_owned(), outcome(release)],
        vec!["source".to_owned(), source(release)],
        vec!["git".to_owned(), release.commit.clone().unwrap_or_else(|| "-".to_owned())],
        vec!["plan hash".to_owned(), release.plan_hash.clone()],
        vec!["by".to_owned(), release.actor.describe()],
        vec!["started".to_owned(), release.started.clone()],
        vec!["finished".to_owned(), format!("{} (took {})", release.finished, took(release))],
    ];
    if let Some(approval) = &release.approval {
        rows.insert(6, vec!["approved".to_owned(), approval.describe(&release.plan_hash)]);
    }
    if let Some(message) = &release.message {
        rows.push(vec!["message".to_owned(), message.clone()]);
    }
    let mut text = format!(
        "Release {} of {} (org {}, GVC {})\n",
        release.revision, env.name, env.org, env.gvc
    );
    text.push_str(&columns("  ", &rows));
    text.push_str(&format!("  images ({}):\n", release.images.len()));
    let mut images = vec![["CONTAINER", "ORIGIN", "DIGEST", "IMAGE"].map(str::to_owned).to_vec()];
    images.extend(image_rows(env, release, false));
    text.push_str(&columns("    ", &images));
    text
}

/// Where a release came from, in full; a rollback's recorded source is
/// that of the release whose images it brought back, and says so.
fn source(release: &Release) -> String {
    let from = release.source.clone().unwrap_or_else(|| "git".to_owned());
    match (release.kind, rolled_back_to(release)) {
        (Some(ReleaseKind::Rollback), Some(to)) => {
            format!("{from} (of release {to}, whose images the rollback brought back)")
        }
        _ => from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::environment;
    use crate::release::{Actor, Outcome, ReleaseImage, ReleaseKind, SCHEMA as RECORD};

    const DIGEST: &str = "sha256:4f1d3c0aa7b2e9f6c8d5b4a3928170fedcba98765432100123456789abcdef0";

    fn release(revision: u64, kind: Option<ReleaseKind>, outcome: Outcome) -> Release {
        Release {
            schema: RECORD.into(),
            environment: "prod".into(),
            revision,
            kind,
            source: (kind != Some(ReleaseKind::Deploy)).then(|| "staging".into()),
            commit: Some("4128bda3c9e0f1d2b3a4958677a6b5c4d3e2f1a0".into()),
            images: vec![
                ReleaseImage {
                    workload: "api".into(),
                    container: "main".into(),
                    image: format!("/org/acme/image/api:1.4.{revision}@{DIGEST}"),
                    digest: Some(DIGEST.into()),
                },
                ReleaseImage {
                    workload: "queue".into(),
                    container: "rabbitmq".into(),
                    image: "rabbitmq:3.13.7".into(),
                    digest: None,
                },
            ],
            plan_hash: format!(
                "0f3a9c1e7d5b{revision:04}e2a4c6b8d0f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3"
            ),
            actor: Actor {
                user: Some("alice".into()),
                host: Some("build-7".into()),
                ci_run: (revision == 3)
                    .then(|| "https://github.com/acme/app/actions/runs/9".into()),
            },
            started: format!("2026-11-2{revision}T10:00:00.000Z"),
            finished: format!("2026-11-2{revision}T10:01:02.500Z"),
            outcome,
            rolled_back: outcome == Outcome::Failed,
            message: (outcome == Outcome::Failed).then(|| {
                "workload/api did not become ready in 5m; restored the 2 resources it changed"
                    .into()
            }),
            approval: None,
            pending: None,
            app: None,
            shared_changed: Vec::new(),
        }
    }

    fn sample() -> History {
        let mut old = release(1, None, Outcome::Succeeded);
        old.actor = Actor { user: None, host: None, ci_run: None };
        History {
            releases: vec![
                old,
                release(2, Some(ReleaseKind::Promote), Outcome::Failed),
                release(3, Some(ReleaseKind::Apply), Outcome::Succeeded),
            ],
            unreadable: vec![],
        }
    }

    #[test]
    fn the_list_shows_every_release_newest_first() {
        insta::assert_snapshot!(list(&environment(), &sample(), None));
    }

    #[test]
    fn a_release_shows_how_it_was_approved() {
        use crate::release::{Approval, ApprovalMethod};
        let mut release = release(3, Some(ReleaseKind::Apply), Outcome::Succeeded);
        release.approval = Some(Approval {
            method: ApprovalMethod::SavedPlan,
            by: Some("carol".into()),
            ci_run: Some("https://github.com/acme/app/actions/runs/9".into()),
        });
        let text = full(&environment(), &release);
        let approved = "approved   saved plan 0f3a9c1e7d5b, by carol (https://github.com/acme/app/actions/runs/9)";
        assert!(text.contains(approved), "{text}");
        let value = entry(&environment(), &release);
        assert_eq!(value["approval"]["method"], "saved-plan");
        assert_eq!(value["approval"]["by"], "carol");
        assert!(value["approved"].as_str().is_some_and(|a| a.starts_with("saved plan 0f3a")));
    }

    #[test]
    fn a_rollback_is_listed_as_the_release_it_went_back_to() {
        let mut rollback = release(4, Some(ReleaseKind::Rollback), Outcome::Succeeded);
        rollback.message = Some("rollback to 1".into());
        let mut failed = release(5, Some(ReleaseKind::Rollback), Outcome::Failed);
        failed.message = Some(
            "rollback to 3: workload/api did not become ready in 5m; restored the 2 resources it changed".into(),
        );
        let history = History { releases: vec![rollback.clone(), failed], unreadable: vec![] };
        let text = list(&environment(), &history, None);
        assert!(text.contains("\n#4  rollback to 1  succeeded  "), "{text}");
        assert!(text.contains("\n#5  rollback to 3  failed"), "{text}");
        assert!(!text.contains("rollback from"), "{text}");
        assert_eq!(text.matches("rollback to 1").count(), 1, "said once:\n{text}");
        assert!(
            text.contains("    rollback to 3: workload/api did not become ready in 5m"),
            "a failure's message stays:\n{text}"
        );
        let full = full(&environment(), &rollback);
        assert!(
            full.contains(
                "source     staging (of release 1, whose images the rollback brought back)"
            ),
            "{full}"
        );
    }

    #[test]
    fn the_list_can_be_limited() {
        let text = list(&environment(), &sample(), Some(1));
        assert!(text.contains("newest first, 1 of 3:"), "{text}");
        assert!(text.contains("#3 ") && !text.contains("#2 "), "{text}");
        assert!(text.ends_with("2 older not shown (--limit 1)\n"), "{text}");
    }

    #[test]
    fn one_release_is_shown_in_full() {
        let history = sample();
        let shown = find(&environment(), &history, 2).map(|r| full(&environment(), r));
        insta::assert_snapshot!(shown.unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn an_unknown_or_unreadable_revision_is_an_error_naming_what_exists() {
        let mut history = sample();
        history.unreadable.push(Unreadable {
            secret: "ferry-release-prod-4".into(),
            revision: Some(4),
            reason: "the payload is not a release record".into(),
        });
        let missing = find(&environment(), &history, 9).err().map(|e| format!("{e:?}"));
        assert!(
            missing.as_deref().is_some_and(|e| e.contains("its recorded releases are 3, 2, 1"))
        );
        let unreadable = find(&environment(), &history, 4).err().map(|e| format!("{e:?}"));
        assert!(unreadable.as_deref().is_some_and(|e| e.contains("the payload is not")));
    }

    #[test]
    fn json_entries_add_who_duration_and_origins() {
        let value =
            entry(&environment(), &release(3, Some(ReleaseKind::Apply), Outcome::Succeeded));
        assert_eq!(value["kind"], "apply");
        assert_eq!(value["who"], "alice@build-7 (https://github.com/acme/app/actions/runs/9)");
        assert_eq!(value["duration_ms"], 62_500);
        assert_eq!(value["images"][0]["origin"], "own");
        assert_eq!(value["images"][1]["origin"], "external");
        let old = entry(&environment(), &sample().releases[0]);
        assert_eq!((old["kind"].clone(), old["who"].clone()), (Value::Null, json!("unknown")));
    }
}
