//! Whether releases into an environment are allowed now: not inside one of
//! its freeze windows (the plan file, [`crate::config::FreezeWindow`]) and
//! not halted by a `ferry/halt` tag on its org or its GVC (set in Control
//! Plane, so that anyone with access to the org stops every pipeline at
//! once without a commit: `cpln gvc tag app --tag ferry/halt="incident
//! 42"`, lifted with `--remove-tag ferry/halt`). `promote`, `deploy` and `apply` are refused (exit 3);
//! `rollback` goes through with `--during-freeze` (docs/approval.md).

use miette::Diagnostic;
use serde_json::Value;

use crate::api::{ApiError, ControlPlane};
use crate::config::{Environment, FreezeWindow};

/// On an org or a GVC: releases into it are halted; the value says why.
pub const HALT_TAG: &str = "ferry/halt";

/// Why releases into an environment are refused now.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Closed {
    #[error(
        "{environment} is frozen from {} until {}: {} (freeze window at {})",
        window.start, window.end, window.reason, window.location.describe()
    )]
    #[diagnostic(
        code(ferry::gate::frozen),
        help(
            "wait for the window to end, or change `freeze` in the plan file; a rollback goes through with `ferry rollback ENV --during-freeze`"
        )
    )]
    Frozen { environment: String, window: Box<FreezeWindow> },

    #[error("releases into {environment} are halted by the `{HALT_TAG}` tag on {on}: {reason}")]
    #[diagnostic(
        code(ferry::gate::halted),
        help(
            "remove the tag when releases may go on (`cpln {kind} tag NAME --remove-tag {HALT_TAG}`); a rollback goes through with `ferry rollback ENV --during-freeze`"
        )
    )]
    Halted { environment: String, on: String, kind: &'static str, reason: String },
}

/// The first reason releases into `env` are refused at `now_ms`: a freeze
/// window, then a halt tag on its org, then on its GVC (a GVC that does
/// not exist yet halts nothing; nor does an org the token may not read:
/// a service account's policy need not grant it, and the GVC's tag still
/// works).
pub async fn closed<A: ControlPlane>(
    client: &A,
    env: &Environment,
    now_ms: u64,
) -> Result<Option<Closed>, ApiError> {
    if let Some(window) = crate::config::active_freeze(&env.freeze, now_ms) {
        return Ok(Some(frozen(env, window)));
    }
    // Both tags are read at once: one round before the lock, not two.
    let (org_path, gvc_path) =
        (format!("/org/{}", env.org), format!("/org/{}/gvc/{}", env.org, env.gvc));
    let (org, gvc) = futures::join!(client.get(&org_path), client.get_opt(&gvc_path));
    let org = match org {
        Ok(org) => Some(org),
        Err(error) if matches!(error.status(), Some(403 | 404)) => {
            tracing::debug!("the org {} cannot be read for a halt tag: {error}", env.org);
            None
        }
        Err(error) => return Err(error),
    };
    if let Some(reason) = org.as_ref().and_then(halt_reason) {
        return Ok(Some(halted(env, format!("org {}", env.org), "org", reason)));
    }
    if let Some(reason) = gvc?.as_ref().and_then(halt_reason) {
        return Ok(Some(halted(env, format!("GVC {}", env.gvc), "gvc", reason)));
    }
    Ok(None)
}

fn frozen(env: &Environment, window: &FreezeWindow) -> Closed {
    Closed::Frozen { environment: env.name.clone(), window: Box::new(window.clone()) }
}

fn halted(env: &Environment, on: String, kind: &'static str, reason: String) -> Closed {
    Closed::Halted { environment: env.name.clone(), on, kind, reason }
}

/// The `ferry/halt` tag's value (or a note that it has none).
fn halt_reason(resource: &Value) -> Option<String> {
    let value = resource.get("tags")?.get(HALT_TAG)?;
    Some(match value {
        Value::String(text) if !text.trim().is_empty() => text.clone(),
        Value::Null => return None,
        Value::String(_) => "no reason given".to_owned(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{Fake, environment};
    use serde_json::json;

    #[tokio::test]
    async fn a_halt_tag_on_the_org_or_the_gvc_closes_the_environment() {
        let (fake, env) = (Fake::new(), environment());
        let open = closed(&fake, &env, 0).await.map(|c| c.map(|c| c.to_string()));
        assert_eq!(open.ok(), Some(None), "an unreadable org and no GVC halt nothing");
        fake.seed(
            "/org/acme/gvc/app",
            json!({"name": "app", "tags": {"ferry/halt": "db migration"}}),
        );
        let gvc = closed(&fake, &env, 0).await.ok().flatten().map(|c| c.to_string());
        assert_eq!(
            gvc.as_deref(),
            Some("releases into prod are halted by the `ferry/halt` tag on GVC app: db migration")
        );
        fake.seed("/org/acme", json!({"name": "acme", "tags": {"ferry/halt": "incident 42"}}));
        let org = closed(&fake, &env, 0).await.ok().flatten().map(|c| c.to_string());
        assert_eq!(
            org.as_deref(),
            Some("releases into prod are halted by the `ferry/halt` tag on org acme: incident 42")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_org_and_the_gvc_are_read_in_one_round() {
        let (fake, env) = (Fake::new(), environment());
        // Every call takes a second: rounds show as distinct times.
        fake.set_latency(std::time::Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        assert!(matches!(closed(&fake, &env, 0).await, Ok(None)));
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(1), "one round, not two");
        let calls = fake.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].at, calls[1].at, "{calls:?}");
    }

    #[test]
    fn the_halt_tag_value_is_the_reason() {
        assert_eq!(
            halt_reason(&json!({"tags": {"ferry/halt": "incident 42"}})).as_deref(),
            Some("incident 42")
        );
        assert_eq!(
            halt_reason(&json!({"tags": {"ferry/halt": ""}})).as_deref(),
            Some("no reason given")
        );
        assert_eq!(halt_reason(&json!({"tags": {"ferry/halt": true}})).as_deref(), Some("true"));
        assert_eq!(halt_reason(&json!({"tags": {"ferry/halt": null}})), None);
        assert_eq!(halt_reason(&json!({"tags": {"ferry/environment": "prod"}})), None);
        assert_eq!(halt_reason(&json!({})), None);
    }
}
