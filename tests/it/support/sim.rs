//! An in-process simulator with two orgs, every simulator a test starts
//! ([`Sim`]: its requests from Ferry checked against
//! docs/control-plane-api.md when the test is done with it), and a small
//! JSON client for its API.

use ferry::sim::{SimConfig, SimHandle, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const DEV: &str = "acme-dev";
pub const DEV_TOKEN: &str = "dev-token-1";
pub const PROD: &str = "acme-prod";
pub const PROD_TOKEN: &str = "prod-token-1";

/// The config every simulator test starts from: orgs `acme-dev` and
/// `acme-prod`, a short rollout delay.
pub fn config() -> SimConfig {
    SimConfig::new()
        .with_org(DEV, DEV_TOKEN)
        .with_org(PROD, PROD_TOKEN)
        .with_rollout_delay(std::time::Duration::from_millis(200))
}

pub async fn start() -> Sim {
    Sim::start(config()).await
}

/// A simulator started by a test. Every request Ferry sent it must be in
/// docs/control-plane-api.md: checked when it is shut down or dropped, and
/// before its request log is cleared. Derefs to the [`SimHandle`].
pub struct Sim(Option<SimHandle>);

impl Sim {
    /// Starts a simulator with `config`.
    pub async fn start(config: SimConfig) -> Sim {
        Sim(Some(Simulator::start(config).await.expect("simulator starts")))
    }

    /// Checks the request log, then stops the simulator and waits.
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.0.take() {
            super::api_table::check(&handle.request_log(), "a simulator shut down");
            handle.shutdown().await;
        }
    }

    /// Checks the request log before clearing it.
    pub fn clear_request_log(&self) {
        super::api_table::check(&self.request_log(), "a simulator's log cleared");
        std::ops::Deref::deref(self).clear_request_log();
    }
}

impl std::ops::Deref for Sim {
    type Target = SimHandle;

    fn deref(&self) -> &SimHandle {
        self.0.as_ref().expect("a simulator not yet shut down")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // A test that failed already says why; a second panic would abort.
        if let Some(handle) = &self.0
            && !std::thread::panicking()
        {
            super::api_table::check(&handle.request_log(), "a simulator dropped");
        }
    }
}

/// Talks JSON to a simulator's API with one token.
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(sim: &SimHandle, token: Option<&str>) -> Self {
        Self { base: sim.api_url(), token: token.map(Into::into), http: reqwest::Client::new() }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the simulator");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, value, headers)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, body, _) = self.send(Method::GET, path, None).await;
        (status, body)
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self.send(Method::PUT, path, Some(body)).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self.send(Method::POST, path, Some(body)).await;
        (status, body)
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self.send(Method::PATCH, path, Some(body)).await;
        (status, body)
    }

    pub async fn delete(&self, path: &str) -> StatusCode {
        self.send(Method::DELETE, path, None).await.0
    }

    /// Polls `path` until `ready` holds for its body, or panics after `secs`.
    pub async fn wait_for(&self, path: &str, secs: u64, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let (_, body) = self.get(path).await;
            if ready(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never satisfied the condition: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Asserts the API error shape `{status, message, code, details, id}`.
pub fn assert_error_body(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["code"].is_string(), "{body}");
    assert!(body.get("details").is_some(), "{body}");
    assert!(body["id"].as_str().is_some_and(|i| !i.is_empty()), "{body}");
}

#[cfg(test)]
mod tests {
    /// Every `.rs` file under `dir`.
    fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn every_simulator_a_test_starts_has_its_requests_checked() {
        let root = crate::support::command::repo_root().join("tests/it");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let direct: Vec<String> = files
            .iter()
            .filter(|f| !f.ends_with("support/sim.rs"))
            .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("Simulator::start(")))
            .map(|f| f.display().to_string())
            .collect();
        assert!(direct.is_empty(), "start simulators with support::sim::Sim::start: {direct:?}");
    }
}
