//! The promotion lock of an environment: a secret created atomically in
//! the target org (POST answers 409 when it exists), so that two runners
//! anywhere cannot both hold it. It names its holder, start time, expiry
//! and CI run; it is renewed while held and deleted on release. An expired
//! lock (its holder died) is taken over by the next promotion in one
//! version-conditioned PATCH (the `version` read with it, as `cpln KIND
//! update` sends it "for optimistic locking": the CLI's
//! dist/src/commands/generic.js, `Update.handle`), so that of two runners
//! that saw the same expired lock only one takes it; `ferry unlock ENV`
//! deletes one. A POST whose answer is lost (a 500, a timeout) is resolved
//! by reading the lock back: its holder id names this very acquisition, so
//! Ferry knows whether it holds it. Every loop pauses (with backoff) and
//! ends by a deadline.
//!
//! A held lock carries a [`Fence`]: whether it is still this run's. Each
//! renewal is a PATCH conditioned on the `version` last seen of the lock
//! and on its holder (read back, and in the answer), so that a runner
//! whose lock was taken over cannot renew it; the fence is lost when a
//! renewal finds another holder (or none), or when the expiry last written
//! comes within [`Fence`]'s margin unrenewed. The executor checks it before
//! every write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// How long races for the lock (a 409 on the POST and then no lock to
/// read, a takeover lost to another runner) are tried again beyond the
/// time given to wait for a holder, so that `--lock-timeout 0s` (the
/// default) does not give up on a lock that was only changing hands.
const CONTENTION_BOUND: Duration = Duration::from_secs(30);
/// How long after its takeover PATCH the lock is read back. Should the API
/// ignore the `version` a PATCH carries (that it answers 409 to a stale one
/// is assumed, docs/promote.md), two runners that took over the same
/// expired lock each read back the holder this long after their write:
/// the last writer reads itself and goes ahead, the other reads it and
/// stands back.
const TAKEOVER_SETTLE: Duration = Duration::from_secs(1);

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

    #[error("the lock of {environment} kept changing hands for {waited:?}; it was not taken")]
    #[diagnostic(
        code(ferry::lock::contended),
        help(
            "other runners are taking and releasing it; run again, or raise --lock-timeout to wait longer"
        )
    )]
    Contended { environment: String, waited: Duration },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] ApiError),
}

/// Why a run no longer holds the lock it took.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockLost {
    #[error("it could not be renewed before it expired (at {expires})")]
    Expired { expires: String },
    #[error("another runner holds it now: {holder}")]
    TakenBy { holder: String },
    #[error("it was deleted while held (`ferry unlock --force`?)")]
    Gone,
}

/// Whether a held lock is still this run's: cheap and synchronous, for
/// the executor to ask before every write. Shared with the renewal task,
/// which moves the expiry on and marks the lock lost.
#[derive(Clone, Debug)]
pub struct Fence {
    state: Arc<FenceState>,
}

#[derive(Debug)]
struct FenceState {
    /// The expiry last written, in ms on the `ControlPlane`'s clock.
    expires_ms: AtomicU64,
    /// How long before that expiry the lock counts as lost: a write that
    /// starts then should land before another runner can take over.
    margin_ms: u64,
    lost: Mutex<Option<LockLost>>,
}

impl Fence {
    fn new(expires_ms: u64, ttl: Duration) -> Self {
        Fence {
            state: Arc::new(FenceState {
                expires_ms: AtomicU64::new(expires_ms),
                margin_ms: millis(ttl / 6),
                lost: Mutex::new(None),
            }),
        }
    }

    fn lost_slot(&self) -> std::sync::MutexGuard<'_, Option<LockLost>> {
        self.state.lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Ok` while the lock is this run's at `now_ms` (the `ControlPlane`'s
    /// clock); once lost, lost for good.
    pub fn check(&self, now_ms: u64) -> Result<(), LockLost> {
        let mut lost = self.lost_slot();
        if let Some(reason) = &*lost {
            return Err(reason.clone());
        }
        let expires = self.state.expires_ms.load(Ordering::SeqCst);
        if now_ms.saturating_add(self.state.margin_ms) >= expires {
            let reason = LockLost::Expired { expires: rfc3339(expires) };
            *lost = Some(reason.clone());
            return Err(reason);
        }
        Ok(())
    }

    fn renewed(&self, expires_ms: u64) {
        if self.lost_slot().is_none() {
            self.state.expires_ms.store(expires_ms, Ordering::SeqCst);
        }
    }

    fn lose(&self, reason: LockLost) {
        self.lost_slot().get_or_insert(reason);
    }
}

/// A held lock. Release it with [`Lock::release`]; if the process dies
/// instead, the lock expires.
pub struct Lock<A: ControlPlane> {
    client: A,
    path: String,
    holder: String,
    renewal: JoinHandle<()>,
    fence: Fence,
}

fn lock_name(env: &Environment) -> String {
    own_resource_name("ferry-lock", &env.resource_key(), "")
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
    /// expired lock is taken over (with a warning).
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
        let started_at = tokio::time::Instant::now();
        let deadline = started_at + wait;
        let contention_deadline = deadline + CONTENTION_BOUND;
        let holder = holder(actor);
        // A POST whose answer was lost and did not take effect is sent again
        // as the retry policy allows, whatever `wait` is: `wait` bounds the
        // time spent waiting for another holder, and with the default
        // `--lock-timeout 0s` one 503 must not end a promotion.
        let mut resend = crate::retry::RetryPolicy::default().delays();
        // A race lost is tried again after a pause, growing to `POLL`.
        let mut contended = crate::retry::RetryPolicy {
            attempts: u32::MAX,
            first_delay: Duration::from_millis(100),
            max_delay: POLL,
            ..crate::retry::RetryPolicy::default()
        }
        .delays();
        let mut pause_after_race = || {
            let now = tokio::time::Instant::now();
            let delay = contended.next().unwrap_or(POLL);
            if now + delay > contention_deadline {
                return Err(LockError::Contended {
                    environment: env.name.clone(),
                    waited: now.saturating_duration_since(started_at),
                });
            }
            Ok(delay)
        };
        loop {
            let started = client.now_ms();
            let tags = json!({
                LOCK_OF_TAG: env.scope(),
                HOLDER_TAG: holder,
                STARTED_TAG: rfc3339(started),
                EXPIRES_TAG: rfc3339(started + millis(ttl)),
                RUN_TAG: actor.ci_run,
            });
            let body = json!({
                "kind": "secret",
                "name": name,
                "description": format!("Ferry promotion lock of {}", env.name),
                "type": "opaque",
                "tags": tags,
                "data": {"encoding": "plain", "payload": "locked"},
            });
            // Held, as `live` (the lock as written or read back) shows.
            let held = |live: Option<&Value>| {
                let expires = live
                    .and_then(|l| parse_rfc3339(&LockInfo::from_secret(l).expires))
                    .unwrap_or(started + millis(ttl));
                let fence = Fence::new(expires, ttl);
                let renewal = Renewal {
                    client: client.clone(),
                    path: path.clone(),
                    holder: holder.clone(),
                    ttl,
                    version: live.and_then(|l| l.get("version")).cloned(),
                    fence: fence.clone(),
                };
                let renewal = tokio::spawn(renewal.run());
                Lock {
                    client: client.clone(),
                    path: path.clone(),
                    holder: holder.clone(),
                    renewal,
                    fence,
                }
            };
            let lost = match client.post(&collection, &body).await {
                Ok(outcome) => return Ok(held(outcome.body.as_ref())),
                Err(error) if error.status() == Some(409) => None,
                Err(error) if error.is_ambiguous() => Some(error),
                Err(error) => return Err(error.into()),
            };
            let Some(existing) = client.get_opt(&path).await? else {
                match lost {
                    // Nobody holds it: a lost POST did not take effect.
                    Some(error) => {
                        let Some(delay) = resend.next() else { return Err(error.into()) };
                        tokio::time::sleep(delay).await;
                    }
                    // It existed at the POST and is gone now: released
                    // meanwhile, another runner may be taking it.
                    None => tokio::time::sleep(pause_after_race()?).await,
                }
                continue;
            };
            let info = LockInfo::from_secret(&existing);
            if info.holder == holder {
                // The POST whose answer was lost took effect.
                return Ok(held(Some(&existing)));
            }
            if info.is_expired(client.now_ms()) {
                tracing::warn!("breaking the expired lock of {}: {}", env.name, info.describe());
                if let Some(live) = take_over(client, &path, &existing, &tags, &holder).await? {
                    return Ok(held(Some(&live)));
                }
                tracing::info!("another runner took over the expired lock of {} first", env.name);
                tokio::time::sleep(pause_after_race()?).await;
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LockError::Held { environment: env.name.clone(), info });
            }
            tracing::info!("{} is locked by {}; waiting", env.name, info.describe());
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the lock is still this run's, for checks before each write.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// This acquisition's holder id, as the lock's tag says.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Deletes the lock, unless it was lost: then it may be another
    /// runner's, and is left alone (`Ok(false)`).
    pub async fn release(self) -> Result<bool, ApiError> {
        self.renewal.abort();
        if self.fence.check(self.client.now_ms()).is_err() {
            return Ok(false);
        }
        self.client.delete(&self.path).await.map(|_| true)
    }
}

/// A lock dropped without [`Lock::release`] (its run cancelled) stops
/// renewing and expires, as when the process dies.
impl<A: ControlPlane> Drop for Lock<A> {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Takes over the expired lock `existing` at `path`: one PATCH of its
/// tags (`tags`, this acquisition's) that carries the `version` read with
/// it, which the API refuses (409) when another runner wrote the lock
/// since [assumed; the CLI sends it for that purpose]. Whether it is ours
/// is then decided by reading the holder back [`TAKEOVER_SETTLE`] later,
/// never by the PATCH's answer alone, so that Ferry stays safe should the
/// API ignore the version (the last writer holds it) or the answer be
/// lost. The lock as read back when it is ours; `None`: another runner
/// has it, or it is gone.
async fn take_over<A: ControlPlane>(
    client: &A,
    path: &str,
    existing: &Value,
    tags: &Value,
    holder: &str,
) -> Result<Option<Value>, ApiError> {
    let mut patch = json!({"tags": tags});
    if let Some(version) = existing.get("version") {
        patch["version"] = version.clone();
    }
    match client.patch(path, &patch).await {
        Ok(_) => {}
        Err(error) if matches!(error.status(), Some(404 | 409)) => return Ok(None),
        Err(error) if error.is_ambiguous() => {}
        Err(error) => return Err(error),
    }
    tokio::time::sleep(TAKEOVER_SETTLE).await;
    let live = client.get_opt(path).await?;
    Ok(live.filter(|live| LockInfo::from_secret(live).holder == holder))
}

/// The task that keeps a held lock: pushes its expiry forward every third
/// of `ttl` (a failed renewal is tried again after a twelfth), each time
/// a PATCH carrying the `version` last seen, so that it lands only on the
/// lock as this run left it. A conflict (409) or an unknown version is
/// settled by reading the lock: another holder, or none, and the lock is
/// lost; this run's, and the PATCH goes again with the version read. A
/// PATCH whose answer is lost is resolved by reading the expiry back.
struct Renewal<A: ControlPlane> {
    client: A,
    path: String,
    holder: String,
    ttl: Duration,
    /// The lock's `version` as last written or read; `None`: read it.
    version: Option<Value>,
    fence: Fence,
}

/// Why one renewal did not move the expiry.
enum NotRenewed {
    Lost(LockLost),
    Failed(ApiError),
}

impl<A: ControlPlane> Renewal<A> {
    async fn run(mut self) {
        let mut pause = self.ttl / 3;
        loop {
            tokio::time::sleep(pause).await;
            if self.fence.check(self.client.now_ms()).is_err() {
                break;
            }
            match self.renew().await {
                Ok(expires) => {
                    self.fence.renewed(expires);
                    pause = self.ttl / 3;
                }
                Err(NotRenewed::Lost(reason)) => {
                    tracing::warn!("the promotion lock was lost: {reason}");
                    self.fence.lose(reason);
                    break;
                }
                Err(NotRenewed::Failed(error)) => {
                    tracing::warn!("could not renew the promotion lock: {error}");
                    pause = self.ttl / 12;
                }
            }
        }
    }

    /// One renewal; the expiry written (ms).
    async fn renew(&mut self) -> Result<u64, NotRenewed> {
        let client = &self.client;
        let policy = crate::retry::RetryPolicy::default();
        // A conflict is read and tried again, twice at most.
        let mut conflicts = 0;
        loop {
            let version = match self.version.take() {
                Some(version) => version,
                None => {
                    let live = client.get_opt(&self.path).await.map_err(NotRenewed::Failed)?;
                    let live = self.ours(live.as_ref())?;
                    live.get("version").cloned().unwrap_or(Value::Null)
                }
            };
            let expires_ms = client.now_ms() + millis(self.ttl);
            let expires = rfc3339(expires_ms);
            let mut patch = json!({"tags": {EXPIRES_TAG: expires}});
            if !version.is_null() {
                patch["version"] = version;
            }
            let holder = &self.holder;
            let landed = |live: Option<&Value>| {
                live.map(LockInfo::from_secret)
                    .is_some_and(|info| info.holder == *holder && info.expires == expires)
            };
            let path = &self.path;
            match write_resolved(client, &policy, path, landed, || client.patch(path, &patch)).await
            {
                Ok(answer) => {
                    let answer = answer.flatten();
                    if let Some(answer) = &answer {
                        // An API that ignored the version still names the
                        // holder in its answer.
                        self.ours(Some(answer))?;
                    }
                    self.version = answer.and_then(|a| a.get("version").cloned());
                    return Ok(expires_ms);
                }
                Err(error) if error.status() == Some(404) => {
                    return Err(NotRenewed::Lost(LockLost::Gone));
                }
                Err(error) if error.status() == Some(409) && conflicts < 2 => conflicts += 1,
                Err(error) => return Err(NotRenewed::Failed(error)),
            }
        }
    }

    /// `live` when it is this run's lock; else the lock is lost.
    fn ours<'v>(&self, live: Option<&'v Value>) -> Result<&'v Value, NotRenewed> {
        let Some(live) = live else { return Err(NotRenewed::Lost(LockLost::Gone)) };
        let info = LockInfo::from_secret(live);
        if info.holder == self.holder {
            Ok(live)
        } else {
            Err(NotRenewed::Lost(LockLost::TakenBy { holder: info.describe() }))
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
            json!({"kind": "secret", "name": "ferry-lock-prod", "version": 1, "tags": {
                LOCK_OF_TAG: "prod", HOLDER_TAG: holder,
                STARTED_TAG: rfc3339(expires_ms.saturating_sub(60_000)),
                EXPIRES_TAG: rfc3339(expires_ms)}}),
        );
    }

    /// The status answered to each PATCH of the lock, in order.
    fn lock_patches(fake: &Fake) -> Vec<u16> {
        let calls = fake.calls();
        calls.iter().filter(|c| c.verb == Verb::Patch && c.path == LOCK).map(|c| c.status).collect()
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
    async fn an_expired_lock_is_taken_over_by_a_version_conditioned_patch() {
        let fake = Fake::new();
        held_by(&fake, "bob@ci (pid 7)", fake.now_ms() + 1_000);
        tokio::time::advance(Duration::from_secs(2)).await;
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, Duration::ZERO).await;
        assert!(lock.is_ok(), "{:?}", lock.err());
        let info = live_info(&fake).unwrap_or_else(|| panic!("no lock"));
        assert!(info.holder.starts_with("alice@"), "{info:?}");
        assert!(!info.is_expired(fake.now_ms()), "{info:?}");
        assert_eq!(fake.count(Verb::Delete, LOCK), 0, "never deleted, taken over");
        assert_eq!(fake.count(Verb::Patch, LOCK), 1, "taken over once");
    }

    /// Two runners that both see the same expired lock race for it; the
    /// outcome of each.
    async fn race_for_an_expired_lock(fake: &Fake) -> [Result<Lock<Fake>, LockError>; 2] {
        held_by(fake, "bob@ci (pid 7)", fake.now_ms() + 1_000);
        tokio::time::advance(Duration::from_secs(2)).await;
        // Every call takes 10 ms, so that both read the lock before
        // either writes it.
        fake.set_latency(Duration::from_millis(10));
        let env = environment();
        let (carol, dave) = (
            Actor { user: Some("carol".into()), ..actor() },
            Actor { user: Some("dave".into()), ..actor() },
        );
        let (first, second) = tokio::join!(
            Lock::acquire(fake, &env, &carol, MINUTE, Duration::ZERO),
            Lock::acquire(fake, &env, &dave, MINUTE, Duration::ZERO),
        );
        [first, second]
    }

    fn exactly_one_proceeds(fake: &Fake, outcomes: &[Result<Lock<Fake>, LockError>; 2]) {
        let taken: Vec<&Lock<Fake>> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(
            taken.len(),
            1,
            "{:?}",
            outcomes.iter().map(|o| o.as_ref().err()).collect::<Vec<_>>()
        );
        let refused = outcomes.iter().find_map(|o| o.as_ref().err());
        let live = live_info(fake).unwrap_or_else(|| panic!("no lock"));
        match refused {
            Some(LockError::Held { info, .. }) => assert_eq!(info.holder, live.holder),
            other => panic!("the other runner: {other:?}"),
        }
        assert!(live.holder.starts_with("carol@") || live.holder.starts_with("dave@"), "{live:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn two_runners_racing_for_one_expired_lock_exactly_one_proceeds() {
        let fake = Fake::new();
        let outcomes = race_for_an_expired_lock(&fake).await;
        exactly_one_proceeds(&fake, &outcomes);
        let patches = lock_patches(&fake);
        assert_eq!(patches, [200, 409], "the second takeover carried a stale version");
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_one_proceeds_even_where_the_api_ignored_the_version() {
        let fake = Fake::new();
        fake.ignore_patch_version();
        let outcomes = race_for_an_expired_lock(&fake).await;
        // Both PATCHes were taken; the holder read back after them decides.
        assert_eq!(fake.count(Verb::Patch, LOCK), 2);
        exactly_one_proceeds(&fake, &outcomes);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_that_keeps_vanishing_between_409_and_read_ends_by_its_deadline() {
        let fake = Fake::new();
        // Each POST is refused as if a lock existed, and none is there to read.
        fake.inject(Fault::new(Verb::Post, "/org/acme/secret", 409).times(100_000));
        let started = Instant::now();
        let wait = Duration::from_secs(5);
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, wait).await;
        assert!(matches!(lock, Err(LockError::Contended { .. })), "{:?}", lock.err());
        let took = started.elapsed();
        assert!(took <= wait + CONTENTION_BOUND, "{took:?}");
        // It stops when the next pause (at most twice `POLL`, jitter
        // included) would pass the deadline.
        assert!(took + 2 * POLL >= wait + CONTENTION_BOUND, "{took:?}");
        // Paused between tries, growing from 100 ms to 500 ms (with up to
        // as much again of jitter): not thousands of POSTs in a tight loop.
        let posts = fake.count(Verb::Post, "/org/acme/secret");
        assert!((30..=120).contains(&posts), "{posts} POSTs");
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

    /// Bob takes prod's lock over from under its holder (as after an
    /// outage longer than its TTL), writing it as version 50.
    fn taken_over_by_bob(fake: &Fake) {
        held_by(fake, "bob@ci (pid 7)", fake.now_ms() + 3_600_000);
        let mut lock = fake.body(LOCK).unwrap_or_default();
        lock["version"] = json!(50);
        fake.seed(LOCK, lock);
    }

    async fn lost_to_bob(fake: &Fake) {
        let lock = Lock::acquire(fake, &environment(), &actor(), MINUTE, MINUTE).await;
        let lock = lock.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lock.fence().check(fake.now_ms()), Ok(()));
        taken_over_by_bob(fake);
        // The next renewal (at 20 s) finds bob.
        tokio::time::sleep(Duration::from_secs(25)).await;
        let lost = lock.fence().check(fake.now_ms());
        assert!(
            matches!(&lost, Err(LockLost::TakenBy { holder }) if holder.starts_with("bob@ci")),
            "{lost:?}"
        );
        // Not renewed again, and not deleted on release: it is bob's.
        let patches = fake.count(Verb::Patch, LOCK);
        tokio::time::sleep(2 * MINUTE).await;
        assert_eq!(fake.count(Verb::Patch, LOCK), patches);
        assert!(matches!(lock.release().await, Ok(false)));
        assert_eq!(live_info(fake).map(|i| i.holder).as_deref(), Some("bob@ci (pid 7)"));
        assert_eq!(fake.count(Verb::Delete, LOCK), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_carries_the_version_so_an_old_holder_cannot_renew_a_lock_taken_over() {
        let fake = Fake::new();
        lost_to_bob(&fake).await;
        assert_eq!(lock_patches(&fake), [409], "refused for its stale version");
        let info = live_info(&fake).unwrap_or_else(|| panic!("no lock"));
        assert!(parse_rfc3339(&info.expires) > Some(fake.now_ms() + 3_000_000), "bob's expiry");
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_that_ignores_the_version_still_names_the_holder_in_its_answer() {
        let fake = Fake::new();
        fake.ignore_patch_version();
        lost_to_bob(&fake).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_not_renewed_before_its_expiry_is_lost_a_margin_before_it() {
        let fake = Fake::new();
        let lock = Lock::acquire(&fake, &environment(), &actor(), MINUTE, MINUTE).await;
        let lock = lock.unwrap_or_else(|e| panic!("{e}"));
        // The API answers nothing about the lock from here on.
        fake.inject(Fault::new(Verb::Patch, LOCK, 503).times(100_000));
        fake.inject(Fault::new(Verb::Get, LOCK, 503).times(100_000));
        tokio::time::sleep(Duration::from_secs(45)).await;
        assert_eq!(lock.fence().check(fake.now_ms()), Ok(()), "still within its TTL");
        tokio::time::sleep(Duration::from_secs(6)).await;
        let lost = lock.fence().check(fake.now_ms());
        assert!(
            matches!(lost, Err(LockLost::Expired { .. })),
            "a sixth of the TTL early: {lost:?}"
        );
        // Renewing stops; the lock is not deleted (it may be another's soon).
        let patches = fake.count(Verb::Patch, LOCK);
        tokio::time::sleep(MINUTE).await;
        assert_eq!(fake.count(Verb::Patch, LOCK), patches);
        assert!(matches!(lock.release().await, Ok(false)));
        assert_eq!(fake.count(Verb::Delete, LOCK), 0);
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
