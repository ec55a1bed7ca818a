//! Release records: every promotion, successful or not, kept in the target
//! environment's own org (the way `cpln helm` keeps release history in
//! tagged secrets), so that no local file is needed to know what runs
//! where. Pure: this module builds and reads the records; `promote`,
//! `history` and `rollback` read and write them through the API.
//!
//! A release is an opaque secret `ferry-release-ENV-N` whose payload is the
//! record as JSON, gzip-compressed and base64-encoded (`encoding: base64`),
//! as `cpln helm` stores its release records (the CLI's
//! dist/src/helm/functions.js `encodeRelease`, helm-base.js), tagged
//! `ferry/release-of: ENV`, `ferry/revision: N` and `ferry/outcome`.
//! Records written before compression (plain JSON, `encoding: plain`) are
//! still read. The encoded payload is kept within [`RECORD_BUDGET`]
//! ([`fit`]).
//!
//! The record's schema stays `ferry.release/v1` as it grows: fields added
//! since the first records (`kind`, `actor.host`, `approval`) are optional, so records
//! written by older versions of Ferry are still read, and older versions
//! ignore the fields they do not know.

use std::io::{Read, Write};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::manifest::ResourceId;

/// Version of the record's JSON.
pub const SCHEMA: &str = "ferry.release/v1";
/// On release secrets: the environment they belong to.
pub const RELEASE_OF_TAG: &str = "ferry/release-of";
/// On release secrets: the revision number.
pub const REVISION_TAG: &str = "ferry/revision";
/// On release secrets: `succeeded`, `failed` or `in-progress`.
pub const OUTCOME_TAG: &str = "ferry/outcome";
/// On workloads a release changed: its revision number.
pub const RELEASE_TAG: &str = "ferry/release";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    /// Applying or readiness failed (what was changed may have been
    /// restored; see `rolled_back`).
    Failed,
    /// Recorded before the release's first write and not finished yet:
    /// its run is still going, or was stopped (SIGKILL, a cancelled job,
    /// a lost lock) and the next run into the environment finishes it
    /// ([`Pending`]).
    InProgress,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::InProgress => "in-progress",
        }
    }
}

/// What made a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// git into an environment with no source.
    Deploy,
    /// What runs in the source environment.
    Promote,
    /// A plan saved with `ferry plan --out` (`ferry apply`).
    Apply,
    /// The images of an earlier release.
    Rollback,
    /// What ran before Ferry's first release into an environment it
    /// adopted: recorded by that release, or carried out by `ferry import
    /// --adopt` (whose only writes are the managed tags).
    PreFerry,
}

impl ReleaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Deploy => "deploy",
            ReleaseKind::Promote => "promote",
            ReleaseKind::Apply => "apply",
            ReleaseKind::Rollback => "rollback",
            ReleaseKind::PreFerry => "pre-ferry",
        }
    }

    /// The run whose failure an error names: `promotion into`, `rollback
    /// of`, followed by the environment.
    pub fn failed_run(self) -> &'static str {
        match self {
            ReleaseKind::Deploy => "deploy into",
            ReleaseKind::Promote => "promotion into",
            ReleaseKind::Apply => "applying the saved plan to",
            ReleaseKind::Rollback => "rollback of",
            // Carried out only by `ferry import --adopt`.
            ReleaseKind::PreFerry => "adopting what runs in",
        }
    }

    /// The kind of a release planned from `source` (`None`: from git).
    /// `ferry apply` records its saved plan as [`ReleaseKind::Apply`].
    pub fn of(source: Option<&str>) -> Self {
        match source {
            None => ReleaseKind::Deploy,
            Some(_) => ReleaseKind::Promote,
        }
    }
}

/// One image of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseImage {
    pub workload: String,
    pub container: String,
    /// The reference the workload was set to.
    pub image: String,
    pub digest: Option<String>,
}

/// Who ran a promotion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: Option<String>,
    /// The CI run's URL, when run in CI.
    pub ci_run: Option<String>,
    /// The machine it ran on (absent from records older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Actor {
    /// From the process environment: GitHub Actions' variables when set,
    /// else the user name.
    pub fn from_environment() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let ci_run =
            match (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID")) {
                (Some(server), Some(repository), Some(run)) => {
                    Some(format!("{server}/{repository}/actions/runs/{run}"))
                }
                _ => var("CI_JOB_URL"),
            };
        let host = var("HOSTNAME").or_else(|| var("COMPUTERNAME")).or_else(|| {
            ["/proc/sys/kernel/hostname", "/etc/hostname"].iter().find_map(|file| {
                std::fs::read_to_string(file)
                    .ok()
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
            })
        });
        Actor {
            user: var("GITHUB_ACTOR")
                .or_else(|| var("USER"))
                .or_else(|| var("USERNAME"))
                .or_else(|| var("LOGNAME")),
            ci_run,
            host,
        }
    }

    /// `alice@build-7`, `alice@build-7 (https://…/runs/1)`,
    /// `https://…/runs/1`; `unknown` only when neither a user, a host nor a
    /// CI run is known.
    pub fn describe(&self) -> String {
        let person = match (&self.user, &self.host) {
            (Some(user), Some(host)) => Some(format!("{user}@{host}")),
            (Some(user), None) => Some(user.clone()),
            (None, Some(host)) => Some(format!("someone@{host}")),
            (None, None) => None,
        };
        match (person, &self.ci_run) {
            (Some(person), Some(run)) => format!("{person} ({run})"),
            (Some(person), None) => person,
            (None, Some(run)) => run.clone(),
            (None, None) => "unknown".to_owned(),
        }
    }
}

/// How a release's plan was approved ([`crate::promote::approved`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMethod {
    /// `ferry apply PLAN.json`: the saved plan that was reviewed (its hash
    /// is the release's `plan_hash`).
    SavedPlan,
    /// A person typed `yes` on a terminal.
    Terminal,
    /// `--yes` into an environment that does not require approval.
    Flag,
    /// The embedded simulator's sandbox exception (`--sim`).
    Sandbox,
}

impl ApprovalMethod {
    pub fn describe(self) -> &'static str {
        match self {
            ApprovalMethod::SavedPlan => "saved plan",
            ApprovalMethod::Terminal => "typed yes",
            ApprovalMethod::Flag => "--yes",
            ApprovalMethod::Sandbox => "simulator sandbox",
        }
    }
}

/// How and by whom a release was approved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub method: ApprovalMethod,
    /// Who approved: in GitHub Actions the user who triggered the run
    /// (`GITHUB_TRIGGERING_ACTOR`, else `GITHUB_ACTOR`), else the user
    /// at the terminal.
    pub by: Option<String>,
    /// The CI run's URL, when run in CI.
    pub ci_run: Option<String>,
}

impl Approval {
    /// Approved by `method`, the reviewer and run read from the process
    /// environment.
    pub fn from_environment(method: ApprovalMethod) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let actor = Actor::from_environment();
        Approval { method, by: var("GITHUB_TRIGGERING_ACTOR").or(actor.user), ci_run: actor.ci_run }
    }

    /// `saved plan 3f2a…, by alice (https://…/runs/1)`.
    pub fn describe(&self, plan_hash: &str) -> String {
        let mut text = self.method.describe().to_owned();
        if self.method == ApprovalMethod::SavedPlan {
            text.push_str(&format!(" {}", &plan_hash[..12.min(plan_hash.len())]));
        }
        if let Some(by) = &self.by {
            text.push_str(&format!(", by {by}"));
        }
        if let Some(run) = &self.ci_run {
            text.push_str(&format!(" ({run})"));
        }
        text
    }
}

/// One promotion into one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub schema: String,
    pub environment: String,
    pub revision: u64,
    /// What made it (absent from records older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReleaseKind>,
    /// The environment promoted from.
    pub source: Option<String>,
    /// The git commit the manifests were read at.
    pub commit: Option<String>,
    pub images: Vec<ReleaseImage>,
    pub plan_hash: String,
    pub actor: Actor,
    pub started: String,
    pub finished: String,
    pub outcome: Outcome,
    /// Whether what the release changed was restored after a failure.
    pub rolled_back: bool,
    /// What the release was ("rollback to 2"), and for failed releases
    /// what failed and what was restored.
    pub message: Option<String>,
    /// How it was approved (absent from records older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// While in progress: what a later run needs to finish it (dropped
    /// from the record once it is finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The app the release belongs to, when its plan file names one
    /// (docs/apps.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// What other environments share that this release changed for them
    /// too (`--change-shared`, or the release into the last environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_changed: Vec<String>,
}

/// What a run that finds a release in progress, whose own run is gone,
/// needs to finish it: every write it planned, with the state before it.
/// Written on the record before the release's first write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The lock holder of the run carrying it out ([`crate::lock`]): while
    /// that holder keeps the lock, the release is still running.
    pub holder: String,
    /// Every write the release planned, in the plan's order.
    pub writes: Vec<PendingWrite>,
    /// Started with `--no-rollback`: a run that finishes it as failed
    /// leaves what it wrote, as its own run would have.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_rollback: bool,
}

impl Pending {
    /// The same writes with only the versions of what existed before:
    /// for a record that would be over its budget with the bodies.
    pub fn versions_only(self) -> Self {
        let writes = self
            .writes
            .into_iter()
            .map(|write| match write.before {
                Before::Kept { version, .. } => {
                    PendingWrite { before: Before::Version { version }, ..write }
                }
                _ => write,
            })
            .collect();
        Pending { writes, ..self }
    }
}

/// One write of a release in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub id: ResourceId,
    /// A delete (else a create or an update).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
    /// A workload the release waits to be ready.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gate: bool,
    /// Written with the release's revision as its `ferry/release` tag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stamp: bool,
    pub before: Before,
}

/// The state of a resource before a release wrote it, as far as the
/// release's record keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Before {
    /// It did not exist.
    Absent,
    /// Its body, as it is written back (server-managed fields dropped),
    /// and its version.
    Kept { body: Value, version: Option<Value> },
    /// Only its version: a secret, whose payload Ferry stores nowhere but
    /// in the secret itself, or any resource when the bodies would take
    /// the record over its budget. Such a resource is not restored by a
    /// later run.
    Version { version: Option<Value> },
}

impl Before {
    /// The version it had, if it existed.
    pub fn version(&self) -> Option<&Value> {
        match self {
            Before::Absent => None,
            Before::Kept { version, .. } | Before::Version { version } => version.as_ref(),
        }
    }
}

impl Release {
    /// How long it took, in milliseconds, when both times can be read.
    pub fn duration_ms(&self) -> Option<u64> {
        let started = crate::timestamp::parse_rfc3339(&self.started)?;
        crate::timestamp::parse_rfc3339(&self.finished)?.checked_sub(started)
    }
}

/// `850ms`, `12.3s`, `4m 05s`, `1h 02m`.
pub fn format_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", ms / 1000, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{}h {:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// The secret name of release `revision` of the environment whose
/// [`crate::config::Environment::resource_key`] is `key`.
pub fn secret_name(key: &str, revision: u64) -> String {
    own_resource_name("ferry-release", key, &format!("-{revision}"))
}

/// A name for one of Ferry's own resources about `environment`: the
/// environment's name is hashed when it would make the name longer than
/// cpln allows.
pub fn own_resource_name(prefix: &str, environment: &str, suffix: &str) -> String {
    let name = format!("{prefix}-{environment}{suffix}");
    if name.len() <= 63 {
        return name;
    }
    let short = &crate::diff::hash(&Value::String(environment.to_owned()))[..12];
    format!("{prefix}-{short}{suffix}")
}

/// The most a release record's encoded payload (base64 of gzip) may take.
/// No source states the size limit of a Control Plane secret [assumed]:
/// 64 KiB keeps a record far below the limits such stores commonly have
/// (1 MiB and more), and holds the images of hundreds of workloads
/// (docs/history.md, "Size").
pub const RECORD_BUDGET: usize = 64 * 1024;

/// At most this much of a message is kept when a record is over budget.
const TRIMMED_MESSAGE: usize = 2 * 1024;

/// A release record too large to be stored, even with its message trimmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error(
    "the record of release {revision} of {environment} takes {size} bytes compressed, over its budget of {budget} bytes"
)]
#[diagnostic(
    code(ferry::release::over_budget),
    help(
        "its images alone are too many to record ({images}); split the manifests into environments with fewer workloads"
    )
)]
pub struct OverBudget {
    pub environment: String,
    pub revision: u64,
    pub size: usize,
    pub budget: usize,
    pub images: usize,
}

/// The payload of `release`: its JSON, gzip-compressed, base64-encoded.
pub fn encode(release: &Release) -> String {
    let json = serde_json::to_vec(release).unwrap_or_default();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let compressed = gzip.write_all(&json).and_then(|()| gzip.finish()).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(compressed)
}

/// `release` as it can be stored within [`RECORD_BUDGET`]: as it is, or
/// with its message (the one part that is free text: a failure's cause and
/// what was restored) trimmed to its first 2 KiB and marked as trimmed
/// (`true`). Everything else is what a rollback and an
/// audit need, so a record still over budget is refused ([`OverBudget`]);
/// the executor asks before its first write whether the plan's record fits.
pub fn fit(release: &Release) -> Result<(Release, bool), OverBudget> {
    if encode(release).len() <= RECORD_BUDGET {
        return Ok((release.clone(), false));
    }
    let mut trimmed = release.clone();
    if let Some(message) = &release.message {
        let mut end = TRIMMED_MESSAGE.min(message.len());
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        trimmed.message = Some(format!(
            "{}… [trimmed from {} bytes: the record was over its {} KiB budget]",
            &message[..end],
            message.len(),
            RECORD_BUDGET / 1024
        ));
    }
    let size = encode(&trimmed).len();
    if size <= RECORD_BUDGET {
        return Ok((trimmed, true));
    }
    Err(OverBudget {
        environment: release.environment.clone(),
        revision: release.revision,
        size,
        budget: RECORD_BUDGET,
        images: release.images.len(),
    })
}

/// The release as the secret that stores it (see [`fit`] for its size).
pub fn to_secret(release: &Release) -> Value {
    let key = crate::config::resource_key(release.app.as_deref(), &release.environment);
    json!({
        "kind": "secret",
        "name": secret_name(&key, release.revision),
        "description": format!("Ferry release {} of {}", release.revision, release.environment),
        "type": "opaque",
        "tags": {
            RELEASE_OF_TAG: crate::config::scoped(release.app.as_deref(), &release.environment),
            REVISION_TAG: release.revision.to_string(),
            OUTCOME_TAG: release.outcome.as_str(),
        },
        "data": {"encoding": "base64", "payload": encode(release)},
    })
}

/// The release stored in a (revealed) secret.
pub fn from_secret(secret: &Value) -> Option<Release> {
    read_secret(secret).ok()
}

/// The release stored in a (revealed) secret, or why it cannot be read:
/// compressed (`encoding: base64`, gzip) or plain JSON as records were
/// written before.
pub fn read_secret(secret: &Value) -> Result<Release, String> {
    let payload = secret
        .pointer("/data/payload")
        .and_then(Value::as_str)
        .ok_or_else(|| "the secret has no payload".to_owned())?;
    let json = match secret.pointer("/data/encoding").and_then(Value::as_str) {
        Some("base64") => decompress(payload)?,
        _ => payload.to_owned(),
    };
    serde_json::from_str(&json).map_err(|e| format!("the payload is not a release record: {e}"))
}

/// A base64 payload's text: gunzipped when it is gzip, as it is otherwise.
fn decompress(payload: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| format!("the payload is not base64: {e}"))?;
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // A payload that inflates beyond this is not one of our records.
        let limit = 64 * RECORD_BUDGET as u64;
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(limit)
            .read_to_string(&mut text)
            .map_err(|e| format!("the payload does not decompress: {e}"))?;
    } else {
        text = String::from_utf8(bytes).map_err(|_| "the payload is not UTF-8".to_owned())?;
    }
    Ok(text)
}

/// The revision number of a release secret, from its tag.
pub fn revision_of(secret: &Value) -> Option<u64> {
    secret.pointer(&format!("/tags/{}", REVISION_TAG.replace('/', "~1")))?.as_str()?.parse().ok()
}

/// The next revision after `existing`.
pub fn next_revision(existing: &[u64]) -> u64 {
    existing.iter().max().map_or(1, |r| r + 1)
}

/// The revisions to delete so that at most `limit` remain (oldest first).
pub fn beyond_limit(existing: &[u64], limit: u32) -> Vec<u64> {
    let mut sorted = existing.to_vec();
    sorted.sort_unstable();
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    let excess = sorted.len().saturating_sub(keep);
    sorted.truncate(excess);
    sorted
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A release of prod from staging, for tests here and in `history`.
    pub(crate) fn release(revision: u64) -> Release {
        Release {
            schema: SCHEMA.into(),
            environment: "prod".into(),
            revision,
            kind: Some(ReleaseKind::Promote),
            source: Some("staging".into()),
            commit: Some("4128bda3".into()),
            images: vec![ReleaseImage {
                workload: "api".into(),
                container: "main".into(),
                image: "/org/p/image/api@sha256:ab".into(),
                digest: Some("sha256:ab".into()),
            }],
            plan_hash: "0f3a".into(),
            actor: Actor { user: Some("alice".into()), ci_run: None, host: Some("build-7".into()) },
            started: "2026-11-22T10:00:00.000Z".into(),
            finished: "2026-11-22T10:01:00.000Z".into(),
            outcome: Outcome::Succeeded,
            rolled_back: false,
            message: None,
            approval: None,
            pending: None,
            app: None,
            shared_changed: Vec::new(),
        }
    }

    #[test]
    fn releases_round_trip_through_secrets() {
        let secret = to_secret(&release(7));
        assert_eq!(secret["name"], "ferry-release-prod-7");
        assert_eq!(revision_of(&secret), Some(7));
        assert_eq!(secret["tags"][OUTCOME_TAG], "succeeded");
        assert_eq!(from_secret(&secret), Some(release(7)));
    }

    #[test]
    fn records_are_stored_compressed_and_plain_ones_still_read() {
        let secret = to_secret(&release(3));
        assert_eq!(secret["data"]["encoding"], "base64");
        let payload = secret["data"]["payload"].as_str().unwrap_or_default();
        assert!(!payload.contains("staging"), "not plain JSON: {payload}");
        // A record written before compression: plain JSON.
        let plain = serde_json::to_string(&release(3)).unwrap_or_default();
        assert!(payload.len() < plain.len(), "{} vs {}", payload.len(), plain.len());
        let old = json!({"data": {"encoding": "plain", "payload": plain}});
        assert_eq!(from_secret(&old), Some(release(3)));
        // And with no encoding at all.
        let older = json!({"data": {"payload": plain}});
        assert_eq!(from_secret(&older), Some(release(3)));
        let broken = json!({"data": {"encoding": "base64", "payload": "H4sI%%%"}});
        assert!(read_secret(&broken).is_err_and(|e| e.contains("not base64")), "{broken}");
    }

    /// `n` images that compress badly (random digests, as real ones are).
    fn images(n: usize) -> Vec<ReleaseImage> {
        (0..n)
            .map(|i| {
                let digest = format!("sha256:{}", crate::diff::hash(&json!(i)));
                ReleaseImage {
                    workload: format!("workload-{i}"),
                    container: "main".into(),
                    image: format!("/org/p/image/workload-{i}@{digest}"),
                    digest: Some(digest),
                }
            })
            .collect()
    }

    #[test]
    fn a_record_over_its_budget_has_its_message_trimmed_or_is_refused() {
        // A hundred workloads fit easily.
        let mut typical = release(4);
        typical.images = images(100);
        let (fitted, trimmed) = fit(&typical).unwrap_or_else(|e| panic!("{e}"));
        assert!(!trimmed && fitted == typical);
        assert!(encode(&typical).len() < RECORD_BUDGET / 4, "{}", encode(&typical).len());
        // A failure message of megabytes (a registry's error page, say):
        // the record keeps its start, says so, and fits.
        let mut failed = typical.clone();
        let noise: String = (0..20_000).map(|i| crate::diff::hash(&json!(i))).collect();
        failed.message = Some(noise.clone());
        assert!(encode(&failed).len() > RECORD_BUDGET);
        let (fitted, trimmed) = fit(&failed).unwrap_or_else(|e| panic!("{e}"));
        assert!(trimmed);
        let message = fitted.message.clone().unwrap_or_default();
        assert!(message.starts_with(&noise[..2048]), "{}", &message[..80]);
        assert!(
            message
                .ends_with("[trimmed from 1280000 bytes: the record was over its 64 KiB budget]"),
            "{message}"
        );
        assert!(
            to_secret(&fitted)["data"]["payload"].as_str().unwrap_or_default().len()
                <= RECORD_BUDGET
        );
        assert_eq!(from_secret(&to_secret(&fitted)), Some(fitted));
        // Images alone over budget: refused, never stored cut short.
        let mut huge = release(5);
        huge.images = images(5_000);
        let refused = fit(&huge).err();
        assert_eq!(refused.as_ref().map(|e| (e.images, e.budget)), Some((5_000, RECORD_BUDGET)));
        assert!(refused.is_some_and(|e| e.size > RECORD_BUDGET));
    }

    #[test]
    fn records_written_before_kind_and_host_are_still_read() {
        let mut old = serde_json::to_value(release(1)).unwrap_or_default();
        old.as_object_mut().map(|o| o.remove("kind"));
        old["actor"].as_object_mut().map(|o| o.remove("host"));
        let secret = json!({"data": {"payload": old.to_string()}});
        let read = read_secret(&secret).map_err(|e| e.to_string());
        assert_eq!(read.as_ref().map(|r| r.kind), Ok(None));
        assert_eq!(read.map(|r| r.actor.describe()), Ok("alice".to_owned()));
        let broken = json!({"data": {"payload": "{\"schema\": 3"}});
        assert!(read_secret(&broken).is_err_and(|e| e.starts_with("the payload is not")));
        assert!(read_secret(&json!({})).is_err());
    }

    #[test]
    fn who_is_never_unknown_when_a_user_host_or_run_is_known() {
        let actor = |user: Option<&str>, host: Option<&str>, run: Option<&str>| Actor {
            user: user.map(Into::into),
            host: host.map(Into::into),
            ci_run: run.map(Into::into),
        };
        let run = "https://github.com/acme/app/actions/runs/9";
        assert_eq!(actor(Some("alice"), Some("box"), None).describe(), "alice@box");
        assert_eq!(actor(Some("alice"), None, Some(run)).describe(), format!("alice ({run})"));
        assert_eq!(actor(None, Some("box"), None).describe(), "someone@box");
        assert_eq!(actor(None, None, Some(run)).describe(), run);
        assert_eq!(actor(None, None, None).describe(), "unknown");
    }

    #[test]
    fn kinds_and_durations() {
        assert_eq!(ReleaseKind::of(None), ReleaseKind::Deploy);
        assert_eq!(ReleaseKind::of(Some("staging")), ReleaseKind::Promote);
        assert_eq!(release(1).duration_ms(), Some(60_000));
        let formatted: Vec<String> =
            [850, 12_345, 245_000, 3_720_000].into_iter().map(format_duration).collect();
        assert_eq!(formatted, ["850ms", "12.3s", "4m 05s", "1h 02m"]);
    }

    #[test]
    fn history_is_numbered_and_bounded() {
        assert_eq!(next_revision(&[]), 1);
        assert_eq!(next_revision(&[3, 1, 2]), 4);
        assert_eq!(beyond_limit(&[5, 1, 4, 2, 3], 3), [1, 2]);
        assert!(beyond_limit(&[1, 2], 3).is_empty());
        assert!(secret_name(&"e".repeat(60), 12).len() <= 63);
    }
}
