//! HTTP to one registry host: authentication, retries with backoff, and
//! turning unexpected answers into typed errors.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response};

use super::RegistryError;
use super::auth::{Auth, Retry, Scopes};
use super::credentials::Credential;
use super::reference::ImageRef;

use crate::retry::{Backoff, RetryPolicy, parse_retry_after};

/// Statuses that say "try again later" rather than "no".
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Builds the HTTP client shared by every registry of a copy.
pub fn http_client() -> Result<reqwest::Client, RegistryError> {
    reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Blob downloads may be redirected to storage, but not to plain
            // HTTP off this machine.
            let url = attempt.url();
            let insecure = url.scheme() != "https"
                && !url.host_str().is_some_and(super::reference::is_loopback_host);
            if insecure {
                let message = format!("refusing a redirect to plain HTTP: {url}");
                attempt.error(message)
            } else if attempt.previous().len() >= 10 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|cause| RegistryError::Transport { url: "(client setup)".into(), cause })
}

/// One registry host.
pub struct Registry {
    pub host: String,
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl Registry {
    pub fn new(http: reqwest::Client, image: &ImageRef, credential: Credential) -> Arc<Self> {
        Self::for_host(http, &image.registry, credential)
    }

    /// The registry at `host` (`HOST[:PORT]`).
    pub fn for_host(http: reqwest::Client, host: &str, credential: Credential) -> Arc<Self> {
        Arc::new(Self {
            host: host.to_owned(),
            base: super::reference::base_url(host),
            http,
            auth: Auth::new(host, credential),
        })
    }

    /// `…/v2/<path>`, for the routes outside a repository (`_catalog`).
    pub fn root_url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// `…/v2/<repository>/<path>`.
    pub fn url(&self, repository: &str, path: &str) -> String {
        format!("{}/v2/{repository}/{path}", self.base)
    }

    /// A `Location` header made absolute against this registry.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Sends a request that can be rebuilt, answering auth challenges and
    /// retrying transient failures. Any status is returned to the caller
    /// except 401 (handled here) and transient ones that persist.
    pub async fn send(
        &self,
        scopes: &Scopes,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let policy = RetryPolicy::default();
        let mut backoff = Backoff::new(policy);
        let mut challenges = 0;
        loop {
            let request = build(self.http.request(method.clone(), url));
            let result = self.send_authorized(scopes, request).await;
            let delay = match result {
                Ok(response) if response.status() == 401 => {
                    challenges += 1;
                    match self.answer_challenge(&response, scopes, challenges).await {
                        Retry::Again => continue,
                        Retry::Refused(error) => return Err(error),
                    }
                }
                Ok(response) if is_transient_status(response.status().as_u16()) => {
                    let Some(delay) = backoff.next(retry_after(&response)) else {
                        return Ok(response);
                    };
                    delay
                }
                // A connection that failed is tried again; a token server
                // that refused the credentials is final (it was retried
                // ten times, over a minute, before this was told apart).
                Err(error) if error.is_transient() => {
                    let delay = if crate::retry::is_unreachable(&error) {
                        backoff.next_after_refusal()
                    } else {
                        backoff.next(error.retry_after())
                    };
                    let Some(delay) = delay else { return Err(error) };
                    tracing::debug!("{method} {url}: {error}");
                    delay
                }
                other => return other,
            };
            tracing::info!(
                "{method} {url}: retrying in {delay:?} (attempt {} of {})",
                backoff.retries() + 1,
                policy.attempts
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends a request that cannot be rebuilt (a streamed body) once, with
    /// the current authorization. Retrying is the caller's business.
    pub async fn send_once(
        &self,
        scopes: &Scopes,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let response = self.send_authorized(scopes, request).await?;
        if response.status() == 401 {
            // Let the next attempt fetch a fresh token, then report.
            if let Retry::Refused(error) = self.answer_challenge(&response, scopes, 1).await {
                return Err(error);
            }
            return Err(RegistryError::Unexpected {
                url: response.url().to_string(),
                status: 401,
                detail: "the token expired during the upload".into(),
                retry_after: None,
            });
        }
        Ok(response)
    }

    /// A request builder on the shared client, for [`Registry::send_once`].
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, url)
    }

    async fn send_authorized(
        &self,
        scopes: &Scopes,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let request = match self.auth.header(&self.http, scopes).await? {
            Some(header) => request.header(AUTHORIZATION, header),
            None => request,
        };
        request.send().await.map_err(|cause| RegistryError::Transport {
            url: cause.url().map_or_else(|| self.base.clone(), ToString::to_string),
            cause,
        })
    }

    async fn answer_challenge(&self, response: &Response, scopes: &Scopes, count: u32) -> Retry {
        let header = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        self.auth.unauthorized(header, scopes, count).await
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    parse_retry_after(response.headers().get(RETRY_AFTER)?.to_str().ok()?)
}

/// Turns an answer that is not one of `expected` into an error, keeping a
/// short excerpt of the registry's error body.
pub async fn expect(
    response: Response,
    expected: &[u16],
    host: &str,
    repository: &str,
) -> Result<Response, RegistryError> {
    let status = response.status().as_u16();
    if expected.contains(&status) {
        return Ok(response);
    }
    if status == 403 {
        return Err(RegistryError::Denied {
            host: host.to_owned(),
            repository: repository.to_owned(),
            status,
        });
    }
    let url = response.url().to_string();
    let retry_after = retry_after(&response);
    let body = response.text().await.unwrap_or_default();
    let detail: String = body.trim().chars().take(300).collect();
    Err(RegistryError::Unexpected {
        url,
        status,
        detail: if detail.is_empty() { "no details".into() } else { detail },
        retry_after,
    })
}
