//! An in-process simulator with two orgs, and a small JSON client for its
//! API.

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

pub async fn start() -> SimHandle {
    Simulator::start(config()).await.expect("simulator starts")
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
