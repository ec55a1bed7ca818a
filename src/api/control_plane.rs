//! The seam between Ferry's logic and Control Plane: the handful of calls
//! the lock, readiness waits, release records and the executor make.
//! [`Client`] speaks them over HTTP; [`super::fake::Fake`] keeps bodies in
//! memory so that that logic is unit-tested under `tokio::time::pause()`
//! (style.md §3.2: "a small trait, the HTTP implementation, an in-memory
//! fake for tests", after kube's `Client::new(mock_service)`).
//!
//! Generic parameters, not `dyn`: the futures are `Send`, so a held lock
//! can renew itself on a spawned task.

use std::future::Future;

use serde_json::Value;

use super::client::{Client, WriteOutcome};
use super::error::ApiError;

/// Control Plane as Ferry uses it. Paths are API paths (`/org/O/…`, see
/// [`super::paths`]); errors are [`ApiError`] with the HTTP status when
/// the server answered.
pub trait ControlPlane: Clone + Send + Sync + 'static {
    /// GET one resource.
    fn get(&self, path: &str) -> impl Future<Output = Result<Value, ApiError>> + Send;

    /// GET one resource; `None` when it does not exist (404).
    fn get_opt(&self, path: &str) -> impl Future<Output = Result<Option<Value>, ApiError>> + Send {
        async move {
            match self.get(path).await {
                Ok(value) => Ok(Some(value)),
                Err(error) if error.status() == Some(404) => Ok(None),
                Err(error) => Err(error),
            }
        }
    }

    /// The items of a list, every page.
    fn list(&self, path: &str) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send;

    /// `POST …/-query`: the matching items, every page.
    fn query(
        &self,
        path: &str,
        query: &Value,
    ) -> impl Future<Output = Result<Vec<Value>, ApiError>> + Send;

    /// PUT: an upsert on a collection path.
    fn put(
        &self,
        path: &str,
        body: &Value,
    ) -> impl Future<Output = Result<WriteOutcome, ApiError>> + Send;

    /// POST: create; 409 when it exists.
    fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> impl Future<Output = Result<WriteOutcome, ApiError>> + Send;

    /// PATCH with the directive language; the updated resource.
    fn patch(
        &self,
        path: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Option<Value>, ApiError>> + Send;

    /// DELETE; `false` when there was nothing to delete.
    fn delete(&self, path: &str) -> impl Future<Output = Result<bool, ApiError>> + Send;

    /// Milliseconds since the Unix epoch, as expiries written to this
    /// control plane are judged. The wall clock for the real API; the fake
    /// follows tokio's clock, so that a paused test can let a lock expire.
    fn now_ms(&self) -> u64 {
        crate::timestamp::now_ms()
    }
}

impl ControlPlane for Client {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        Client::get(self, path).await
    }

    async fn get_opt(&self, path: &str) -> Result<Option<Value>, ApiError> {
        Client::get_opt(self, path).await
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        Client::list(self, path).await
    }

    async fn query(&self, path: &str, query: &Value) -> Result<Vec<Value>, ApiError> {
        Client::query(self, path, query).await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        Client::put(self, path, body).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        Client::post(self, path, body).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        Client::patch(self, path, body).await
    }

    async fn delete(&self, path: &str) -> Result<bool, ApiError> {
        Client::delete(self, path).await
    }
}

/// Carries out a write that may fail ambiguously (a 500, a 502–504, an
/// answer that never came: [`ApiError::is_ambiguous`]) without failing
/// blind or repeating blind: after such a failure it reads `path` back
/// and asks `landed` whether the write took effect. If it did, that is
/// success; if not, the write is sent again, up to `policy.attempts` in
/// all, waiting the policy's backoff in between. Any other failure is
/// returned as it is.
pub async fn write_resolved<A, W, F, T>(
    api: &A,
    policy: &crate::retry::RetryPolicy,
    path: &str,
    landed: impl Fn(Option<&Value>) -> bool,
    write: W,
) -> Result<Option<T>, ApiError>
where
    A: ControlPlane,
    W: Fn() -> F,
    F: Future<Output = Result<T, ApiError>>,
{
    let mut delays = policy.delays();
    loop {
        let error = match write().await {
            Ok(answer) => return Ok(Some(answer)),
            Err(error) if error.is_ambiguous() => error,
            Err(error) => return Err(error),
        };
        let live = api.get_opt(path).await?;
        if landed(live.as_ref()) {
            tracing::debug!("{error}; reading {path} back shows that it took effect");
            return Ok(None);
        }
        let Some(delay) = delays.next() else { return Err(error) };
        tracing::debug!("{error}; reading {path} back shows that it did not: again in {delay:?}");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::api::fake::{Fake, Fault, Verb};
    use crate::retry::RetryPolicy;

    const COLLECTION: &str = "/org/acme/secret";
    const ITEM: &str = "/org/acme/secret/record";

    fn landed(live: Option<&Value>) -> bool {
        live.is_some_and(|l| l["tags"]["n"] == "1")
    }

    async fn write(fake: &Fake) -> Result<Option<WriteOutcome>, ApiError> {
        let body = json!({"kind": "secret", "name": "record", "tags": {"n": "1"}});
        let policy = RetryPolicy { attempts: 3, ..RetryPolicy::default() };
        write_resolved(fake, &policy, ITEM, landed, || fake.post(COLLECTION, &body)).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_took_effect_is_read_back_not_repeated() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, COLLECTION, 500).after_effect());
        assert!(matches!(write(&fake).await, Ok(None)));
        assert_eq!(fake.count(Verb::Post, COLLECTION), 1, "not repeated");
        assert_eq!(fake.count(Verb::Get, ITEM), 1, "read back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_did_not_is_sent_again_within_bounds() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, COLLECTION, 504));
        assert!(matches!(write(&fake).await, Ok(Some(_))));
        assert_eq!(fake.count(Verb::Post, COLLECTION), 2);
        assert!(fake.body(ITEM).is_some());
        let again = Fake::new();
        again.inject(Fault::new(Verb::Post, COLLECTION, 500).times(3));
        let started = tokio::time::Instant::now();
        let failed = write(&again).await;
        assert_eq!(failed.err().and_then(|e| e.status()), Some(500));
        assert_eq!(again.count(Verb::Post, COLLECTION), 3, "attempts are bounded");
        assert!(started.elapsed() >= Duration::from_millis(600), "backed off");
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_are_not_resolved() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, COLLECTION, 403));
        assert_eq!(write(&fake).await.err().and_then(|e| e.status()), Some(403));
        assert_eq!(fake.count(Verb::Get, ITEM), 0);
    }
}
