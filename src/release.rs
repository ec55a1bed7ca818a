//! Release records: every promotion, successful or not, kept in the target
//! environment's own org (the way `cpln helm` keeps release history in
//! tagged secrets), so that no local file is needed to know what runs
//! where. Pure: this module builds and reads the records; `promote`,
//! `history` and `rollback` read and write them through the API.
//!
//! A release is an opaque secret `ferry-release-ENV-N` whose payload is the
//! record as JSON, tagged `ferry/release-of: ENV`, `ferry/revision: N`
//! and `ferry/outcome`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Version of the record's JSON.
pub const SCHEMA: &str = "ferry.release/v1";
/// On release secrets: the environment they belong to.
pub const RELEASE_OF_TAG: &str = "ferry/release-of";
/// On release secrets: the revision number.
pub const REVISION_TAG: &str = "ferry/revision";
/// On release secrets: `succeeded` or `failed`.
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
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
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
        Actor {
            user: var("GITHUB_ACTOR").or_else(|| var("USER")).or_else(|| var("USERNAME")),
            ci_run,
        }
    }

    /// `alice`, `alice (https://…/runs/1)`, or `unknown`.
    pub fn describe(&self) -> String {
        match (&self.user, &self.ci_run) {
            (Some(user), Some(run)) => format!("{user} ({run})"),
            (Some(user), None) => user.clone(),
            (None, Some(run)) => run.clone(),
            (None, None) => "unknown".to_owned(),
        }
    }
}

/// One promotion into one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub schema: String,
    pub environment: String,
    pub revision: u64,
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
    /// What failed and what was restored, for failed releases.
    pub message: Option<String>,
}

/// The secret name of `environment`'s release `revision`.
pub fn secret_name(environment: &str, revision: u64) -> String {
    own_resource_name("ferry-release", environment, &format!("-{revision}"))
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

/// The release as the secret that stores it.
pub fn to_secret(release: &Release) -> Value {
    let payload = serde_json::to_string(release).unwrap_or_default();
    json!({
        "kind": "secret",
        "name": secret_name(&release.environment, release.revision),
        "description": format!("Ferry release {} of {}", release.revision, release.environment),
        "type": "opaque",
        "tags": {
            RELEASE_OF_TAG: release.environment,
            REVISION_TAG: release.revision.to_string(),
            OUTCOME_TAG: release.outcome.as_str(),
        },
        "data": {"encoding": "plain", "payload": payload},
    })
}

/// The release stored in a (revealed) secret.
pub fn from_secret(secret: &Value) -> Option<Release> {
    let payload = secret.pointer("/data/payload")?.as_str()?;
    serde_json::from_str(payload).ok()
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
            source: Some("staging".into()),
            commit: Some("4128bda3".into()),
            images: vec![ReleaseImage {
                workload: "api".into(),
                container: "main".into(),
                image: "/org/p/image/api@sha256:ab".into(),
                digest: Some("sha256:ab".into()),
            }],
            plan_hash: "0f3a".into(),
            actor: Actor { user: Some("alice".into()), ci_run: None },
            started: "2026-11-22T10:00:00.000Z".into(),
            finished: "2026-11-22T10:01:00.000Z".into(),
            outcome: Outcome::Succeeded,
            rolled_back: false,
            message: None,
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
    fn history_is_numbered_and_bounded() {
        assert_eq!(next_revision(&[]), 1);
        assert_eq!(next_revision(&[3, 1, 2]), 4);
        assert_eq!(beyond_limit(&[5, 1, 4, 2, 3], 3), [1, 2]);
        assert!(beyond_limit(&[1, 2], 3).is_empty());
        assert!(secret_name(&"e".repeat(60), 12).len() <= 63);
    }
}
