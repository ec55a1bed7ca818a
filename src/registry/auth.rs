//! Authentication per registry host: anonymous, Basic, or Bearer tokens
//! obtained from the token server a registry's challenge names.
//!
//! A host's scheme is learnt from its first 401. Bearer tokens are cached
//! per set of scopes until shortly before they expire, and fetched again
//! when a request is refused (an expired token, or a scope it lacks, such
//! as `pull` on the source repository of a mount).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

// tokio's clock, so that a test can let a token expire under paused time.
use tokio::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::HeaderValue;

use super::RegistryError;
use super::credentials::{Credential, Secret};
use super::reference::is_loopback_host;

/// Token scopes a request needs, such as `repository:team/app:pull,push`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    pub fn pull(repository: &str) -> Self {
        Self::default().with(repository, "pull")
    }

    pub fn push(repository: &str) -> Self {
        Self::default().with(repository, "pull,push")
    }

    /// Listing the registry's repositories (`/v2/_catalog`).
    pub fn catalog() -> Self {
        let mut scopes = Self::default();
        scopes.0.insert("registry:catalog:*".to_owned());
        scopes
    }

    pub fn with(mut self, repository: &str, actions: &str) -> Self {
        self.0.insert(format!("repository:{repository}:{actions}"));
        self
    }

    fn key(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
        Some(Challenge::Bearer {
            realm: get("realm")?.1.clone(),
            service: get("service").map(|(_, v)| v.clone()),
            scope: get("scope").map(|(_, v)| v.clone()),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may contain commas.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = index + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        pairs.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    pairs
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

/// Authentication state for one registry host.
pub struct Auth {
    host: String,
    credential: Credential,
    /// Held across a token fetch, so that parallel transfers fetch once.
    state: tokio::sync::Mutex<State>,
}

/// What the client should do after a 401.
pub enum Retry {
    /// Send the request again: something new was learnt.
    Again,
    /// The registry refused what it asked for: give up.
    Refused(RegistryError),
}

impl Auth {
    /// With a Control Plane credential (user `<token>`), Basic is assumed
    /// before any challenge: Control Plane documents Basic `<token>:KEY`
    /// for daemonless clients, so the first request of each copy need not
    /// be refused first to learn it (under injected faults each such 401
    /// round was one more request on a copy's chain, docs/performance.md).
    /// A registry that wants Bearer still says so in its 401, and is then
    /// answered as before.
    pub fn new(host: &str, credential: Credential) -> Self {
        let assumed = matches!(&credential, Credential::Basic { username, .. } if username == super::TOKEN_USER);
        let state = State { challenge: assumed.then_some(Challenge::Basic), ..State::default() };
        Self { host: host.to_owned(), credential, state: tokio::sync::Mutex::new(state) }
    }

    /// The `Authorization` header for a request needing `scopes`, fetching
    /// a token if needed. `None` until the host has challenged us.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        scopes: &Scopes,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let mut state = self.state.lock().await;
        match state.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic()),
            Some(Challenge::Bearer { realm, service, scope }) => {
                let key = scopes.key();
                if let Some(token) = state.tokens.get(&key)
                    && token.refresh_at > Instant::now()
                {
                    return Ok(Some(sensitive(&format!("Bearer {}", token.value.expose()))));
                }
                let mut wanted = scopes.clone();
                wanted.0.extend(
                    scope
                        .into_iter()
                        .flat_map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>()),
                );
                let token = self.fetch_token(http, &realm, service.as_deref(), &wanted).await?;
                let header = sensitive(&format!("Bearer {}", token.value.expose()));
                state.tokens.insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// Learns from a 401's challenge. `attempt` counts the 401s this
    /// request has had: the first may be answered, the second is final.
    pub async fn unauthorized(
        &self,
        challenge: Option<&str>,
        scopes: &Scopes,
        attempt: u32,
    ) -> Retry {
        let Some(challenge) = challenge.and_then(Challenge::parse) else {
            return Retry::Refused(
                self.refused("the registry answered 401 without a usable challenge"),
            );
        };
        let mut state = self.state.lock().await;
        let known = state.challenge.as_ref().map(std::mem::discriminant)
            == Some(std::mem::discriminant(&challenge));
        if attempt > 1 || (known && matches!(challenge, Challenge::Basic)) {
            let reason = match (&self.credential, &challenge) {
                (Credential::Anonymous, _) => {
                    "the registry requires credentials and none were given"
                }
                (_, Challenge::Basic) => "the registry rejected the credentials",
                (_, Challenge::Bearer { .. }) => {
                    "the token does not grant the access this copy needs"
                }
            };
            return Retry::Refused(self.refused(reason));
        }
        if matches!(challenge, Challenge::Basic) && self.credential == Credential::Anonymous {
            return Retry::Refused(
                self.refused("the registry requires credentials and none were given"),
            );
        }
        // A new scope, or an expired token: fetch a fresh one.
        state.tokens.remove(&scopes.key());
        state.challenge = Some(challenge);
        Retry::Again
    }

    fn refused(&self, reason: &str) -> RegistryError {
        RegistryError::Unauthorized { host: self.host.clone(), reason: reason.to_owned() }
    }

    fn basic(&self) -> Option<HeaderValue> {
        match &self.credential {
            Credential::Anonymous => None,
            Credential::Basic { username, password } => {
                let pair = BASE64.encode(format!("{username}:{}", password.expose()));
                Some(sensitive(&format!("Basic {pair}")))
            }
        }
    }

    /// GETs a token from the realm (Basic credentials, when we have them).
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<Token, RegistryError> {
        let mut url = reqwest::Url::parse(realm).map_err(|error| RegistryError::TokenResponse {
            realm: realm.to_owned(),
            reason: format!("the realm is not a URL ({error})"),
        })?;
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "https" && !is_loopback_host(host) {
            return Err(RegistryError::Insecure { url: realm.to_owned() });
        }
        {
            let mut query = url.query_pairs_mut();
            for scope in &scopes.0 {
                query.append_pair("scope", scope);
            }
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Credential::Basic { username, .. } = &self.credential {
                query.append_pair("account", username);
            }
        }
        let mut request = http.get(url);
        if let Some(header) = self.basic() {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|cause| RegistryError::Transport { url: realm.to_owned(), cause })?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.refused(match self.credential {
                Credential::Anonymous => {
                    "the token server requires credentials and none were given"
                }
                Credential::Basic { .. } => "the token server rejected the credentials",
            }));
        }
        if super::client::is_transient_status(status) {
            // Busy or briefly down: the request asking for the token is
            // tried again as any transient failure is.
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(crate::retry::parse_retry_after);
            return Err(RegistryError::Unexpected {
                url: realm.to_owned(),
                status,
                detail: "the token server could not answer".into(),
                retry_after,
            });
        }
        let invalid =
            |reason: String| RegistryError::TokenResponse { realm: realm.to_owned(), reason };
        if status != 200 {
            return Err(invalid(format!("status {status}")));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let answer: Answer = response.json().await.map_err(|error| invalid(error.to_string()))?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("no `token` or `access_token`".to_owned()))?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 5).min(Duration::from_secs(30));
        Ok(Token { value: Secret::new(value), refresh_at: started + lifetime - margin })
    }
}

fn sensitive(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(Challenge::parse(r#"Basic realm="basic-realm""#), Some(Challenge::Basic));
        let header = r#"Bearer realm="http://127.0.0.1:5004/token",service="registry-c",scope="repository:my-app:pull,push repository:other:pull""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5004/token".into(),
                service: Some("registry-c".into()),
                scope: Some("repository:my-app:pull,push repository:other:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://a/t, service=\"x\\\"y\""),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("x\"y".into()),
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    /// A token server on loopback that issues `t1`, `t2`, … living 1 s.
    async fn token_server() -> (String, Arc<AtomicUsize>) {
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&issued);
        let app =
            axum::Router::new().route(
                "/token",
                axum::routing::get(move || {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        axum::Json(serde_json::json!({"token": format!("t{n}"), "expires_in": 1}))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/token"), issued)
    }

    #[tokio::test]
    async fn tokens_are_cached_renewed_before_expiry_and_refetched_after_a_401() {
        let (realm, issued) = token_server().await;
        let auth = Auth::new("127.0.0.1:1", Credential::basic(crate::registry::TOKEN_USER, "key"));
        let http = reqwest::Client::new();
        let scopes = Scopes::pull("app");
        let bearer = format!(r#"Bearer realm="{realm}",service="s""#);
        let header = |value: Option<HeaderValue>| value.unwrap().to_str().unwrap().to_owned();
        assert!(matches!(auth.unauthorized(Some(&bearer), &scopes, 1).await, Retry::Again));
        assert_eq!(header(auth.header(&http, &scopes).await.unwrap()), "Bearer t1");
        assert_eq!(header(auth.header(&http, &scopes).await.unwrap()), "Bearer t1");
        assert_eq!(issued.load(Ordering::SeqCst), 1, "a live token is reused");
        // Past the token's refresh (1 s less a fifth) on tokio's clock, in
        // no real time.
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(900)).await;
        tokio::time::resume();
        assert_eq!(header(auth.header(&http, &scopes).await.unwrap()), "Bearer t2");
        // The registry refuses the token (expired early, revoked): fetch anew.
        assert!(matches!(auth.unauthorized(Some(&bearer), &scopes, 1).await, Retry::Again));
        assert_eq!(header(auth.header(&http, &scopes).await.unwrap()), "Bearer t3");
        // A second 401 for the same request is final.
        assert!(matches!(auth.unauthorized(Some(&bearer), &scopes, 2).await, Retry::Refused(_)));
    }

    #[tokio::test]
    async fn a_control_plane_credential_is_sent_before_any_challenge() {
        let http = reqwest::Client::new();
        let scopes = Scopes::pull("app");
        let token = Auth::new("h", Credential::basic(crate::registry::TOKEN_USER, "key"));
        let sent = token.header(&http, &scopes).await.unwrap().unwrap();
        assert_eq!(sent.to_str().unwrap(), format!("Basic {}", BASE64.encode("<token>:key")));
        // Refused as it is: the credentials are wrong, no second try.
        let basic = Some(r#"Basic realm="h""#);
        assert!(matches!(token.unauthorized(basic, &scopes, 1).await, Retry::Refused(_)));
        // A registry that wants Bearer still says so, and is answered.
        let bearer = Some(r#"Bearer realm="https://h/token""#);
        assert!(matches!(token.unauthorized(bearer, &scopes, 1).await, Retry::Again));
        // Other users wait for the registry to ask.
        let other = Auth::new("h", Credential::basic("user", "pw"));
        assert!(other.header(&http, &scopes).await.unwrap().is_none());
    }

    #[test]
    fn scope_keys_are_order_independent() {
        let a = Scopes::push("dst").with("src", "pull");
        let b = Scopes::pull("src").with("dst", "pull,push");
        assert_eq!(a.key(), b.key());
    }
}
