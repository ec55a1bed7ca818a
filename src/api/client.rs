//! HTTP to the Control Plane API.
//!
//! Bearer token on every request; bounded concurrency (a semaphore shared
//! by clones of one client); list paging by the `rel: next` link;
//! per-request timeouts; retries with backoff and jitter
//! ([`crate::retry`]) only for transient failures: connection errors,
//! 502/503/504 and 429 (honouring `Retry-After`, but never a 429 whose
//! message says a quota is exhausted), 500 on reads, and only for requests
//! that are safe to repeat. A POST or PATCH that fails ambiguously is not
//! repeated here: its caller reads back what is there
//! ([`super::ApiError::is_ambiguous`]).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::retry::{Backoff, RetryPolicy, parse_retry_after};

/// A bearer token: never in `Debug` output, logs or errors.
pub use crate::secret::Secret as Token;

/// How to reach one org.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Base URL, such as `https://api.cpln.io`.
    pub endpoint: String,
    pub token: Token,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Timeout of one request attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientSettings {
    pub fn new(endpoint: impl Into<String>, token: Token) -> Self {
        Self {
            endpoint: endpoint.into(),
            token,
            concurrency: 16,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// A client for one endpoint and token. Cheap to clone; clones share the
/// concurrency limit.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: Token,
    limit: Arc<Semaphore>,
    retry: RetryPolicy,
}

/// What a PUT or POST did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// 201: the resource did not exist before.
    pub created: bool,
    /// The `Location` header, when the server sent one.
    pub location: Option<String>,
    /// The body the server answered with, if any.
    pub body: Option<Value>,
}

impl Client {
    pub fn new(settings: ClientSettings) -> Result<Self, ApiError> {
        let endpoint = settings.endpoint.trim_end_matches('/').to_owned();
        if !endpoint.starts_with("https://") && !crate::config::is_loopback_http(&endpoint) {
            return Err(ApiError::Insecure { endpoint });
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ApiError::Client)?;
        Ok(Self {
            http,
            endpoint,
            token: settings.token,
            limit: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            retry: settings.retry,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// GET one resource.
    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let (_, body) = self.send(Method::GET, path, None, Repeat::Read).await?;
        body.ok_or_else(|| decode_error(&Method::GET, path, "empty body"))
    }

    /// GET one resource; `None` when it does not exist (404).
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// GET a list and every following page (`rel: next` links).
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        let first = self.get(path).await?;
        self.pages(path, first).await
    }

    /// `POST …/-query` and every following page. A query changes nothing,
    /// so it is retried like a GET.
    pub async fn query(&self, path: &str, query: &Value) -> Result<Vec<Value>, ApiError> {
        let (_, body) = self.send(Method::POST, path, Some(query), Repeat::Read).await?;
        let first = body.ok_or_else(|| decode_error(&Method::POST, path, "empty body"))?;
        self.pages(path, first).await
    }

    /// The items of a list page and of the pages after it.
    async fn pages(&self, path: &str, first: Value) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut page = path.to_owned();
        let mut next = Some(first);
        while let Some(body) = next.take() {
            match body.get("items") {
                Some(Value::Array(found)) => items.extend(found.iter().cloned()),
                _ => return Err(decode_error(&Method::GET, &page, "a list without `items`")),
            }
            if let Some(href) = next_link(&body) {
                page = self.relative(&href);
                next = Some(self.get(&page).await?);
            }
        }
        Ok(items)
    }

    /// PUT (an upsert on a collection path, or a replace on an item).
    pub async fn put(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        self.write(Method::PUT, path, body).await
    }

    /// POST (create; 409 when it exists).
    pub async fn post(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        self.write(Method::POST, path, body).await
    }

    /// PATCH with the directive language; returns the updated resource.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        Ok(self.send(Method::PATCH, path, Some(body), Repeat::Unsafe).await?.1)
    }

    /// DELETE; `false` when there was nothing to delete.
    pub async fn delete(&self, path: &str) -> Result<bool, ApiError> {
        match self.send(Method::DELETE, path, None, Repeat::Idempotent).await {
            Ok(_) => Ok(true),
            Err(error) if error.status() == Some(404) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn write(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<WriteOutcome, ApiError> {
        let repeat = if method == Method::PUT { Repeat::Idempotent } else { Repeat::Unsafe };
        let (head, body) = self.send(method, path, Some(body), repeat).await?;
        Ok(WriteOutcome {
            created: head.status == StatusCode::CREATED,
            location: head.location,
            body,
        })
    }

    /// An href from a `links` list as a path on this endpoint.
    fn relative(&self, href: &str) -> String {
        href.strip_prefix(&self.endpoint).unwrap_or(href).to_owned()
    }

    /// One request with its retries.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<(Head, Option<Value>), ApiError> {
        let mut backoff = Backoff::new(self.retry);
        loop {
            let failure = match self.attempt(&method, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let delay = match failure.retry_after(&method, repeat) {
                Some(_) if failure.is_unreachable() => backoff.next_after_refusal(),
                Some(after) => backoff.next(after),
                None => None,
            };
            let Some(delay) = delay else {
                return Err(failure.into_error(&method, path));
            };
            let retry = backoff.retries();
            tracing::debug!("{method} {path}: {}; retry {retry} in {delay:?}", failure.describe());
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Head, Option<Value>), Failure> {
        let _permit = self.limit.acquire().await.map_err(|_| Failure::Closed)?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.endpoint))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(Failure::Transport)?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.map_err(Failure::Transport)?;
        if status.is_success() {
            let body = if text.trim().is_empty() {
                None
            } else {
                Some(serde_json::from_str(&text).map_err(|e| Failure::Decode(e.to_string()))?)
            };
            return Ok((Head { status, location }, body));
        }
        Err(Failure::Status { status, retry_after, error: ErrorBody::parse(status, &text) })
    }
}

/// Whether a request may be sent again after it may have been processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repeat {
    /// GET and queries change nothing: even a 500 is worth another try,
    /// as the major cloud SDKs do.
    Read,
    /// PUT and DELETE leave the same state however often they are sent.
    Idempotent,
    /// POST and PATCH: the caller resolves an ambiguous failure.
    Unsafe,
}

struct Head {
    status: StatusCode,
    location: Option<String>,
}

/// One failed attempt, before deciding whether to retry.
enum Failure {
    Transport(reqwest::Error),
    Status { status: StatusCode, retry_after: Option<Duration>, error: ErrorBody },
    Decode(String),
    Closed,
}

impl Failure {
    /// `Some(server's wait)` when this failure should be retried.
    fn retry_after(&self, method: &Method, repeat: Repeat) -> Option<Option<Duration>> {
        let repeatable = repeat != Repeat::Unsafe;
        match self {
            // Never sent: safe for any method.
            Failure::Transport(error) if error.is_connect() => Some(None),
            Failure::Transport(_) => repeatable.then_some(None),
            Failure::Status { status, retry_after, error } => match status.as_u16() {
                // The server did not process it, unless a quota is exhausted.
                429 if !error.message.to_ascii_lowercase().contains("quota") => Some(*retry_after),
                500 => (repeat == Repeat::Read).then_some(*retry_after),
                502..=504 => repeatable.then_some(*retry_after),
                // Dependents are still being deleted.
                409 if *method == Method::DELETE => Some(*retry_after),
                _ => None,
            },
            Failure::Decode(_) | Failure::Closed => None,
        }
    }

    /// Nothing listens at the endpoint, or its host does not resolve.
    fn is_unreachable(&self) -> bool {
        matches!(self, Failure::Transport(error) if crate::retry::is_unreachable(error))
    }

    fn describe(&self) -> String {
        match self {
            Failure::Transport(error) => format!("transport error: {error}"),
            Failure::Status { status, error, .. } => format!("{status}: {}", error.message),
            Failure::Decode(reason) => reason.clone(),
            Failure::Closed => "client closed".to_owned(),
        }
    }

    fn into_error(self, method: &Method, path: &str) -> ApiError {
        let (method, path) = (method.to_string(), path.to_owned());
        match self {
            Failure::Transport(source) => {
                ApiError::Transport { method, path, source: source.without_url() }
            }
            Failure::Status { status, error, .. }
                if status == StatusCode::TOO_MANY_REQUESTS
                    && error.message.to_ascii_lowercase().contains("quota") =>
            {
                ApiError::Quota { method, path, message: error.message }
            }
            Failure::Status { status, error, .. } => ApiError::Status {
                method,
                path,
                status: status.as_u16(),
                message: error.message,
                code: error.code,
            },
            Failure::Decode(reason) => ApiError::Decode { method, path, reason },
            Failure::Closed => {
                ApiError::Decode { method, path, reason: "the client was shut down".to_owned() }
            }
        }
    }
}

/// The API's error shape: `{status, message, code, details, id}`.
struct ErrorBody {
    message: String,
    code: Option<String>,
}

impl ErrorBody {
    /// Falls back to the raw body, then to the reason phrase, as the
    /// official Go client does.
    fn parse(status: StatusCode, text: &str) -> Self {
        let json: Option<Value> = serde_json::from_str(text).ok();
        let field = |name: &str| {
            json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str).map(str::to_owned)
        };
        let message = field("message")
            .or_else(|| (!text.trim().is_empty()).then(|| text.trim().chars().take(300).collect()))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Self { message, code: field("code") }
    }
}

fn next_link(body: &Value) -> Option<String> {
    body.get("links")?
        .as_array()?
        .iter()
        .find(|link| link.get("rel").and_then(Value::as_str) == Some("next"))?
        .get("href")?
        .as_str()
        .map(str::to_owned)
}

fn decode_error(method: &Method, path: &str, reason: &str) -> ApiError {
    ApiError::Decode {
        method: method.to_string(),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_failure(status: u16, message: &str) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after: Some(Duration::from_secs(1)),
            error: ErrorBody { message: message.to_owned(), code: None },
        }
    }

    #[test]
    fn retries_only_what_is_transient_and_safe() {
        let (get, patch, read, no) = (Method::GET, Method::PATCH, Repeat::Read, Repeat::Unsafe);
        let (put, same) = (Method::PUT, Repeat::Idempotent);
        let later = Some(Some(Duration::from_secs(1)));
        assert_eq!(status_failure(503, "busy").retry_after(&get, read,), later);
        assert_eq!(status_failure(503, "busy").retry_after(&put, same), later);
        assert_eq!(status_failure(503, "busy").retry_after(&patch, no), None);
        assert_eq!(status_failure(429, "slow down").retry_after(&patch, no), later);
        let quota = status_failure(429, "Quota exceeded for workloads");
        assert_eq!(quota.retry_after(&get, read), None);
        assert_eq!(status_failure(500, "boom").retry_after(&get, read), later);
        assert_eq!(status_failure(500, "boom").retry_after(&put, same), None);
        assert_eq!(status_failure(500, "boom").retry_after(&patch, no), None);
        assert_eq!(status_failure(404, "gone").retry_after(&get, read), None);
        assert_eq!(status_failure(409, "in use").retry_after(&Method::DELETE, same), later);
        assert_eq!(status_failure(409, "exists").retry_after(&Method::POST, no), None);
    }

    #[test]
    fn error_bodies_fall_back_to_text_and_reason() {
        let json = ErrorBody::parse(
            StatusCode::CONFLICT,
            r#"{"status":409,"message":"exists","code":"conflict"}"#,
        );
        assert_eq!((json.message.as_str(), json.code.as_deref()), ("exists", Some("conflict")));
        assert_eq!(
            ErrorBody::parse(StatusCode::BAD_GATEWAY, "upstream down").message,
            "upstream down"
        );
        assert_eq!(ErrorBody::parse(StatusCode::NOT_FOUND, "").message, "Not Found");
    }

    #[test]
    fn refuses_plain_http_except_to_loopback() {
        let token = || Token::new("t");
        assert!(Client::new(ClientSettings::new("http://api.cpln.io", token())).is_err());
        assert!(Client::new(ClientSettings::new("http://127.0.0.1:8080", token())).is_ok());
        assert!(Client::new(ClientSettings::new("https://api.cpln.io", token())).is_ok());
        assert_eq!(format!("{:?}", token()), "<redacted>");
    }

    #[test]
    fn follows_next_links() {
        let body = serde_json::json!({"links": [{"rel": "self", "href": "/a"}, {"rel": "next", "href": "/a?next=2"}]});
        assert_eq!(next_link(&body).as_deref(), Some("/a?next=2"));
    }
}
