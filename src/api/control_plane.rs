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
