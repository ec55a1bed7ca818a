//! The promotion lock of an environment: a secret created atomically in
//! the target org (POST answers 409 when it exists), so that two runners
//! anywhere cannot both hold it. It names its holder, start time, expiry
//! and CI run; it is renewed while held and deleted on release. An expired
//! lock (its holder died) is broken by the next promotion, or by
//! `ferry unlock ENV`. A POST whose answer is lost (a 500, a timeout) is
//! resolved by reading the lock back: its holder id names this very
//! acquisition, so Ferry knows whether it holds it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use miette::Diagnostic;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api::{ApiError, ControlPlane, paths, write_resolved};
use crate::config::Environment;
use crate::manifest::Kind;
use crate::release::{Actor, own_resource_name};
use crate::timestamp::{parse_rfc3339, rfc3339};

/// The tag that marks a secret as the promotion lock of an environment.
pub const LOCK_OF_TAG: &str = "ferry/lock-of";
const HOLDER_TAG: &str = "ferry/lock-holder";
const STARTED_TAG: &str = "ferry/lock-started";
const EXPIRES_TAG: &str = "ferry/lock-expires";
const RUN_TAG: &str = "ferry/lock-run";
/// How often a held lock is looked at again while waiting for it.
const POLL: Duration = Duration::from_millis(500);

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

    /// Past its expiry at `now_ms` (or with no readable expiry).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        parse_rfc3339(&self.expires).is_none_or(|expires| expires <= now_ms)
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
pub struct Lock<A: ControlPlane> {
    client: A,
    path: String,
    renewal: JoinHandle<()>,
}

fn lock_name(env: &Environment) -> String {
    own_resource_name("ferry-lock", &env.name, "")
}

/// Who is taking the lock: user, host, process and which acquisition of
/// this process, so that no two acquisitions anywhere have the same id.
fn holder(actor: &Actor) -> String {
    static ACQUISITIONS: AtomicU64 = AtomicU64::new(0);
    // The same host the release records name (Actor::from_environment).
    let host = actor.host.as_deref().unwrap_or("localhost");
    let number = ACQUISITIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let user = actor.user.as_deref().unwrap_or("unknown");
    format!("{user}@{host} (pid {}, lock {number})", std::process::id())
}

impl<A: ControlPlane> Lock<A> {
    /// Takes `env`'s lock, waiting up to `wait` for a holder to finish. An
    /// expired lock is broken (with a warning).
    pub async fn acquire(
        client: &A,
        env: &Environment,
        actor: &Actor,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Self, LockError> {
        let name = lock_name(env);
        let collection = paths::collection(&env.org, &env.gvc, Kind::Secret);
        let path = paths::item(&env.org, &env.gvc, Kind::Secret, &name);
        let deadline = tokio::time::Instant::now() + wait;
        let holder = holder(actor);
        // A POST whose answer was lost and did not take effect is sent again
        // as the retry policy allows, whatever `wait` is: `wait` bounds the
        // time spent waiting for another holder, and with the default
        // `--lock-timeout 0s` one 503 must not end a promotion.
        let mut resend = crate::retry::RetryPolicy::default().delays();
        loop {
            let started = client.now_ms();
            let body = json!({
                "kind": "secret",
                "name": name,
                "description": format!("Ferry promotion lock of {}", env.name),
                "type": "opaque",
                "tags": {
                    LOCK_OF_TAG: env.name,
                    HOLDER_TAG: holder,
                    STARTED_TAG: rfc3339(started),
                    EXPIRES_TAG: rfc3339(started + millis(ttl)),
                    RUN_TAG: actor.ci_run,
                },
                "data": {"encoding": "plain", "payload": "locked"},
            });
            let held = || {
                let renewal = tokio::spawn(renew(client.clone(), path.clone(), ttl));
                Lock { client: client.clone(), path: path.clone(), renewal }
            };
            let lost = match client.post(&collection, &body).await {
                Ok(_) => return Ok(held()),
                Err(error) if error.status() == Some(409) => None,
                Err(error) if error.is_ambiguous() => Some(error),
                Err(error) => return Err(error.into()),
            };
            let Some(existing) = client.get_opt(&path).await? else {
                // Nobody holds it: a lost POST did not take effect.
                if let Some(error) = lost {
                    let Some(delay) = resend.next() else { return Err(error.into()) };
                    tokio::time::sleep(delay).await;
                }
                continue;
            };
            let info = LockInfo::from_secret(&existing);
            if info.holder == holder {
                // The POST whose answer was lost took effect.
                return Ok(held());
            }
            if info.is_expired(client.now_ms()) {
                tracing::warn!("breaking the expired lock of {}: {}", env.name, info.describe());
                client.delete(&path).await?;
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LockError::Held { environment: env.name.clone(), info });
            }
            tracing::info!("{} is locked by {}; waiting", env.name, info.describe());
            tokio::time::sleep(POLL).await;
        }
    }

    /// Deletes the lock.
    pub async fn release(self) -> Result<(), ApiError> {
        self.renewal.abort();
        self.client.delete(&self.path).await.map(|_| ())
    }
}

/// Pushes the expiry forward every third of `ttl` while the lock is held.
/// A PATCH whose answer is lost is resolved by reading the expiry back.
async fn renew<A: ControlPlane>(client: A, path: String, ttl: Duration) {
    let policy = crate::retry::RetryPolicy::default();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let expires = rfc3339(client.now_ms() + millis(ttl));
        let patch = json!({"tags": {EXPIRES_TAG: expires}});
        let landed = |live: Option<&Value>| {
            live.is_some_and(|l| LockInfo::from_secret(l).expires == expires)
        };
        let renewed =
            write_resolved(&client, &policy, &path, landed, || client.patch(&path, &patch)).await;
        if let Err(error) = renewed {
            tracing::warn!("could not renew the promotion lock: {error}");
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `ferry unlock ENV`: deletes the lock if it has expired (or with
/// `force`). Returns who held it, `None` when there was no lock.
pub async fn unlock<A: ControlPlane>(
    client: &A,
    env: &Environment,
    force: bool,
) -> Result<Option<LockInfo>, LockError> {
    let Some(info) = held(client, env).await? else { return Ok(None) };
    if !force && !info.is_expired(client.now_ms()) {
        return Err(LockError::NotExpired { environment: env.name.clone(), info });
    }
    client.delete(&paths::item(&env.org, &env.gvc, Kind::Secret, &lock_name(env))).await?;
    Ok(Some(info))
}

/// Who holds `env`'s lock, if anyone (for `ferry status` and `unlock`).
pub async fn held<A: ControlPlane>(
    client: &A,
    env: &Environment,
) -> Result<Option<LockInfo>, ApiError> {
    let path = paths::item(&env.org, &env.gvc, Kind::Secret, &lock_name(env));
    Ok(client.get_opt(&path).await?.map(|existing| LockInfo::from_secret(&existing)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{Fake, Fault, Verb, environment};
    use crate::timestamp::now_ms;
    use tokio::time::Instant;

    const LOCK: &str = "/org/acme/secret/ferry-lock-prod";
    const MINUTE: Duration = Duration::from_secs(60);

    fn actor() -> Actor {
        Actor { user: Some("alice".into()), ci_run: None, host: None }
    }

    /// A lock of prod held by `holder` until `expires_ms`.
    fn held_by(fake: &Fake, holder: &str, expires_ms: u64) {
        fake.seed(
            LOCK,
            json!({"kind": "secret", "name": "ferry-lock-prod", "tags": {
                LOCK_OF_TAG: "prod", HOLDER_TAG: holder,
                STARTED_TAG: rfc3339(expires_ms.saturating_sub(60_000)),
                EXPIRES_TAG: rfc3339(expires_ms)}}),
        );
    }

    fn live_info(fake: &Fake) -> Option<LockInfo> {
        fake.body(LOCK).map(|secret| LockInfo::from_secret(&secret))
    }

    #[test]
    fn the_holder_names_the_host_release_records_name() {
        let on = Actor { host: Some("build-7".into()), ..actor() };
        let id = holder(&on);
        assert!(id.starts_with("alice@build-7 (pid "), "{id}");
        assert!(holder(&actor()).starts_with("alice@localhost (pid "));
    }

    #[test]
    fn reads_holder_and_expiry_from_tags() {
        let secret = json!({"tags": {HOLDER_TAG: "alice@ci (pid 1)", STARTED_TAG: "2026-01-01T00:00:00.000Z", EXPIRES_TAG: "2026-01-01T00:05:00.000Z"}});
        let info = LockInfo::from_secret(&secret);
        assert!(info.is_expired(now_ms()));
        assert_eq!(
            info.describe(),
            "alice@ci (pid 1), since 2026-01-01T00:00:00.000Z, until 2026-01-01T00:05:00.000Z"
        );
        let fresh = LockInfo { expires: rfc3339(now_ms() + 60_000), ..info };
        assert!(!fresh.is_expired(now_ms()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_lock_is_renewed_until_released() {
        let fake = Fake::new();
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        let lock = lock.unwrap_or_else(|e| panic!("{e}"));
        let first = live_info(&fake).unwrap_or_else(|| panic!("no lock"));
        assert!(first.holder.starts_with("alice@"), "{first:?}");
        // Five minutes on, five times its TTL, it is still held and not expired.
        tokio::time::sleep(5 * MINUTE).await;
        let later = live_info(&fake).unwrap_or_else(|| panic!("no lock"));
        assert!(!later.is_expired(fake.now_ms()), "renewed: {later:?}");
        assert!(fake.count(Verb::Patch, LOCK) >= 14, "renewed every 20 s");
        lock.release().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(fake.body(LOCK).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_lock_is_waited_for_then_reported() {
        let fake = Fake::new();
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 3_600_000);
        let started = Instant::now();
        let wait = Duration::from_secs(10);
        let result = Lock::acquire(&fake, &environment(), &actor(), MINUTE, wait).await;
        match result {
            Err(LockError::Held { info, .. }) => assert_eq!(info.holder, "bob@ci (pid 7)"),
            Err(error) => panic!("{error}"),
            Ok(_) => panic!("took a lock that is held"),
        }
        assert!(started.elapsed() >= wait, "gave up after {:?}", started.elapsed());
        assert_eq!(live_info(&fake).map(|i| i.holder).as_deref(), Some("bob@ci (pid 7)"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_released_while_waiting_is_taken() {
        let fake = Fake::new();
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 3_600_000);
        let other = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let _ = other.delete(LOCK).await;
        });
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        assert!(lock.is_ok(), "{:?}", lock.err());
        assert!(live_info(&fake).is_some_and(|i| i.holder.starts_with("alice@")));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_lock_is_broken_and_taken() {
        let fake = Fake::new();
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 1_000);
        tokio::time::advance(Duration::from_secs(2)).await;
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, Duration::ZERO).await;
        assert!(lock.is_ok(), "{:?}", lock.err());
        assert!(live_info(&fake).is_some_and(|i| i.holder.starts_with("alice@")));
        assert_eq!(fake.count(Verb::Delete, LOCK), 1, "broken once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_to_the_post_is_resolved_by_the_holder_id() {
        // The lock was created, but the answer said 500: it is ours.
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, "/org/acme/secret", 500).after_effect());
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        assert!(lock.is_ok(), "{:?}", lock.err());
        assert_eq!(fake.count(Verb::Post, "/org/acme/secret"), 1, "not posted again");
        // It was not created: posted again, and held.
        // Also with no time to wait for another holder (`--lock-timeout 0s`,
        // the default): a lost POST is not another holder.
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, "/org/acme/secret", 504));
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, Duration::ZERO).await;
        assert!(lock.is_ok(), "{:?}", lock.err());
        assert_eq!(fake.count(Verb::Post, "/org/acme/secret"), 2);
        // Someone else's lock is there: theirs, however the POST ended.
        let fake = Fake::new();
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 3_600_000);
        fake.inject(Fault::new(Verb::Post, "/org/acme/secret", 500));
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, Duration::ZERO).await;
        assert!(matches!(lock, Err(LockError::Held { .. })), "{:?}", lock.err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_that_keeps_failing_gives_up_after_the_policys_attempts() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, "/org/acme/secret", 503).times(1000));
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        assert_eq!(
            lock.err().map(|e| e.to_string()).as_deref(),
            Some("POST /org/acme/secret: the fake answered 503")
        );
        let attempts = crate::retry::RetryPolicy::default().attempts;
        assert_eq!(fake.count(Verb::Post, "/org/acme/secret"), attempts as usize);
        assert!(fake.body(LOCK).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_whose_answer_is_lost_is_read_back() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Patch, LOCK, 500).after_effect().times(100));
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        let lock = lock.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(5 * MINUTE).await;
        let info = live_info(&fake).unwrap_or_else(|| panic!("no lock"));
        assert!(!info.is_expired(fake.now_ms()), "{info:?}");
        let patches = fake.count(Verb::Patch, LOCK);
        assert!((14..=16).contains(&patches), "one PATCH per renewal, not repeated: {patches}");
        drop(lock);
    }

    #[tokio::test(start_paused = true)]
    async fn unlock_breaks_only_expired_locks_unless_forced() {
        let fake = Fake::new();
        let env = environment();
        assert!(matches!(unlock(&fake, &env, false).await, Ok(None)));
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 60_000);
        assert!(matches!(unlock(&fake, &env, false).await, Err(LockError::NotExpired { .. })));
        assert!(fake.body(LOCK).is_some());
        tokio::time::advance(MINUTE).await;
        let broken = unlock(&fake, &env, false).await.ok().flatten().map(|i| i.holder);
        assert_eq!(broken.as_deref(), Some("bob@ci (pid 7)"));
        held_by(&fake, "carol@ci (pid 9)", fake.now_ms() + 60_000);
        assert!(matches!(unlock(&fake, &env, true).await, Ok(Some(_))));
        assert!(fake.body(LOCK).is_none());
    }
}
