//! The promotion lock of an environment: a secret created atomically in
//! the target org (POST answers 409 when it exists), so that two runners
//! anywhere cannot both hold it. It names its holder, start time, expiry
//! and CI run; it is renewed while held and deleted on release. An expired
//! lock (its holder died) is broken by the next promotion, or by
//! `ferry unlock ENV`.

use std::time::Duration;

use miette::Diagnostic;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api::{ApiError, Client, paths};
use crate::config::Environment;
use crate::manifest::Kind;
use crate::release::{Actor, own_resource_name};
use crate::timestamp::{now_ms, parse_rfc3339, rfc3339};

const LOCK_OF_TAG: &str = "ferry/lock-of";
const HOLDER_TAG: &str = "ferry/lock-holder";
const STARTED_TAG: &str = "ferry/lock-started";
const EXPIRES_TAG: &str = "ferry/lock-expires";
const RUN_TAG: &str = "ferry/lock-run";

/// Who holds a lock, as its tags say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub holder: String,
    pub started: String,
    pub expires: String,
    pub run: Option<String>,
}

impl LockInfo {
    fn from_secret(secret: &Value) -> Self {
        let tag = |key: &str| {
            secret.get("tags").and_then(|t| t.get(key)).and_then(Value::as_str).map(str::to_owned)
        };
        LockInfo {
            holder: tag(HOLDER_TAG).unwrap_or_else(|| "unknown".to_owned()),
            started: tag(STARTED_TAG).unwrap_or_default(),
            expires: tag(EXPIRES_TAG).unwrap_or_default(),
            run: tag(RUN_TAG),
        }
    }

    /// Past its expiry (or with no readable expiry).
    pub fn is_expired(&self) -> bool {
        parse_rfc3339(&self.expires).is_none_or(|expires| expires <= now_ms())
    }

    /// `alice@ci-runner (pid 42), since …, until …, run …`.
    pub fn describe(&self) -> String {
        let run = self.run.as_deref().map_or(String::new(), |r| format!(", run {r}"));
        format!("{}, since {}, until {}{run}", self.holder, self.started, self.expires)
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LockError {
    #[error("{environment} is locked by {}", info.describe())]
    #[diagnostic(
        code(ferry::lock::held),
        help(
            "another promotion is running; wait for it, raise --lock-timeout, or, if its holder died, run `ferry unlock {environment}` once the lock has expired"
        )
    )]
    Held { environment: String, info: LockInfo },

    #[error("the lock of {environment} has not expired: held by {}", info.describe())]
    #[diagnostic(
        code(ferry::lock::not_expired),
        help(
            "wait until it expires, or break it anyway with `ferry unlock {environment} --force`"
        )
    )]
    NotExpired { environment: String, info: LockInfo },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] ApiError),
}

/// A held lock. Release it with [`Lock::release`]; if the process dies
/// instead, the lock expires.
pub struct Lock {
    client: Client,
    path: String,
    renewal: JoinHandle<()>,
}

fn lock_name(env: &Environment) -> String {
    own_resource_name("ferry-lock", &env.name, "")
}

fn holder(actor: &Actor) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{}@{host} (pid {})", actor.user.as_deref().unwrap_or("unknown"), std::process::id())
}

impl Lock {
    /// Takes `env`'s lock, waiting up to `wait` for a holder to finish. An
    /// expired lock is broken (with a warning).
    pub async fn acquire(
        client: &Client,
        env: &Environment,
        actor: &Actor,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Lock, LockError> {
        let name = lock_name(env);
        let collection = paths::collection(&env.org, &env.gvc, Kind::Secret);
        let path = paths::item(&env.org, &env.gvc, Kind::Secret, &name);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let started = now_ms();
            let body = json!({
                "kind": "secret",
                "name": name,
                "description": format!("Ferry promotion lock of {}", env.name),
                "type": "opaque",
                "tags": {
                    LOCK_OF_TAG: env.name,
                    HOLDER_TAG: holder(actor),
                    STARTED_TAG: rfc3339(started),
                    EXPIRES_TAG: rfc3339(started + millis(ttl)),
                    RUN_TAG: actor.ci_run,
                },
                "data": {"encoding": "plain", "payload": "locked"},
            });
            match client.post(&collection, &body).await {
                Ok(_) => {
                    let renewal = tokio::spawn(renew(client.clone(), path.clone(), ttl));
                    return Ok(Lock { client: client.clone(), path, renewal });
                }
                Err(error) if error.status() == Some(409) => {}
                Err(error) => return Err(error.into()),
            }
            let Some(existing) = client.get_opt(&path).await? else { continue };
            let info = LockInfo::from_secret(&existing);
            if info.is_expired() {
                tracing::warn!("breaking the expired lock of {}: {}", env.name, info.describe());
                client.delete(&path).await?;
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LockError::Held { environment: env.name.clone(), info });
            }
            tracing::info!("{} is locked by {}; waiting", env.name, info.describe());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Deletes the lock.
    pub async fn release(self) -> Result<(), ApiError> {
        self.renewal.abort();
        self.client.delete(&self.path).await.map(|_| ())
    }
}

/// Pushes the expiry forward every third of `ttl` while the lock is held.
async fn renew(client: Client, path: String, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let patch = json!({"tags": {EXPIRES_TAG: rfc3339(now_ms() + millis(ttl))}});
        if let Err(error) = client.patch(&path, &patch).await {
            tracing::warn!("could not renew the promotion lock: {error}");
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `ferry unlock ENV`: deletes the lock if it has expired (or with
/// `force`). Returns who held it, `None` when there was no lock.
pub async fn unlock(
    client: &Client,
    env: &Environment,
    force: bool,
) -> Result<Option<LockInfo>, LockError> {
    let path = paths::item(&env.org, &env.gvc, Kind::Secret, &lock_name(env));
    let Some(existing) = client.get_opt(&path).await? else { return Ok(None) };
    let info = LockInfo::from_secret(&existing);
    if !force && !info.is_expired() {
        return Err(LockError::NotExpired { environment: env.name.clone(), info });
    }
    client.delete(&path).await?;
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_holder_and_expiry_from_tags() {
        let secret = json!({"tags": {HOLDER_TAG: "alice@ci (pid 1)", STARTED_TAG: "2026-01-01T00:00:00.000Z", EXPIRES_TAG: "2026-01-01T00:05:00.000Z"}});
        let info = LockInfo::from_secret(&secret);
        assert!(info.is_expired());
        assert_eq!(
            info.describe(),
            "alice@ci (pid 1), since 2026-01-01T00:00:00.000Z, until 2026-01-01T00:05:00.000Z"
        );
        let fresh = LockInfo { expires: rfc3339(now_ms() + 60_000), ..info };
        assert!(!fresh.is_expired());
    }
}
