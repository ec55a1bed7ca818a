//! Added latency, injected errors and the request log, for every request
//! the simulator serves (API and registries alike). With
//! `FERRY_SIM_REQUEST_LOG=FILE` in its environment a simulator also appends
//! each record to FILE as a JSON line, so that the requests a `ferry --sim`
//! process sent can be read after it ends (the integration tests check
//! them against docs/control-plane-api.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::clock::now_ms;
use super::error::ApiError;

/// Latency and errors to add. Set them in [`super::SimConfig`] or at run
/// time with [`super::SimHandle::set_faults`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every request before it is handled.
    pub latency_ms: u64,
    /// Share of requests (0.0–1.0) answered with an error instead.
    pub error_rate: f64,
    /// Which errors to answer with, picked at random: 500, 503 and/or 429.
    pub error_statuses: Vec<u16>,
    /// `Retry-After` on an injected 429, in seconds.
    pub retry_after_secs: u64,
    /// Which servers the faults apply to.
    pub target: FaultTarget,
    /// Seed of the pseudo-random choices, so that runs repeat.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            error_statuses: vec![500, 503, 429],
            retry_after_secs: 1,
            target: FaultTarget::All,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    #[default]
    All,
    Api,
    Registry,
}

/// Which server answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Api,
    Registry,
}

/// The environment variable naming a file every request record is
/// appended to, as a JSON line.
pub const REQUEST_LOG_VAR: &str = "FERRY_SIM_REQUEST_LOG";

/// One request as the simulator saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub service: Service,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub status: u16,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub duration_ms: u64,
    /// The org the request addressed, when it named one.
    pub org: Option<String>,
    /// The answer was an injected fault.
    pub injected: bool,
    /// The client's `User-Agent` (Ferry's is `ferry/VERSION`).
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl RequestRecord {
    /// A request Ferry sent (its API and registry clients say `ferry/…`),
    /// not the `cpln` CLI's or a test's own.
    pub fn is_ferrys(&self) -> bool {
        self.user_agent.as_deref().is_some_and(|agent| agent.starts_with("ferry/"))
    }

    /// A request that could change state (anything but GET and HEAD).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// The fault settings and the log, shared by all servers of a simulator.
#[derive(Debug)]
pub(crate) struct Faults {
    config: Mutex<FaultConfig>,
    rng: AtomicU64,
    log: Mutex<Vec<RequestRecord>>,
    /// [`REQUEST_LOG_VAR`]'s file, when set.
    log_file: Option<std::path::PathBuf>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed | 1;
        Self {
            config: Mutex::new(config),
            rng: AtomicU64::new(seed),
            log: Mutex::new(Vec::new()),
            log_file: std::env::var_os(REQUEST_LOG_VAR)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
        }
    }

    pub fn set(&self, config: FaultConfig) {
        self.rng.store(config.seed | 1, Ordering::Relaxed);
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    pub fn update(&self, change: impl FnOnce(&mut FaultConfig)) {
        change(&mut self.config.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub fn config(&self) -> FaultConfig {
        self.config.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn log(&self) -> Vec<RequestRecord> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn record(&self, record: RequestRecord) {
        if let Some(file) = &self.log_file {
            append(file, &record);
        }
        self.log.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }

    /// xorshift64*: a value in [0, 1).
    fn next_unit(&self) -> f64 {
        let step = |mut x: u64| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x
        };
        let previous = self
            .rng
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
            .unwrap_or(1);
        let value = step(previous).wrapping_mul(0x2545_F491_4F6C_DD1D);
        // 53 high bits give an exact f64 fraction.
        #[allow(clippy::cast_precision_loss)]
        let unit = (value >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }

    /// The status to inject for this request, if any.
    fn pick(&self, config: &FaultConfig, service: Service) -> Option<StatusCode> {
        let applies = match config.target {
            FaultTarget::All => true,
            FaultTarget::Api => service == Service::Api,
            FaultTarget::Registry => service == Service::Registry,
        };
        if !applies || config.error_rate <= 0.0 || config.error_statuses.is_empty() {
            return None;
        }
        if self.next_unit() >= config.error_rate {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = (self.next_unit() * config.error_statuses.len() as f64) as usize;
        let code = config.error_statuses.get(index).or(config.error_statuses.first()).copied()?;
        StatusCode::from_u16(code).ok()
    }
}

/// What the middleware needs to know about the server it wraps.
#[derive(Clone, Debug)]
pub(crate) struct FaultLayer {
    pub faults: Arc<Faults>,
    pub service: Service,
    /// The registry's org; the API takes the org from the path.
    pub org: Option<String>,
}

/// Sleeps, maybe answers with an injected error, and logs the request.
pub(crate) async fn middleware(
    State(layer): State<FaultLayer>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let at_ms = now_ms();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let org = layer.org.clone().or_else(|| org_of(&path));
    let user_agent =
        request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let config = layer.faults.config();
    if config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(config.latency_ms)).await;
    }
    let injected = layer.faults.pick(&config, layer.service);
    let response = match injected {
        Some(status) => injected_response(status, &config, layer.service),
        None => next.run(request).await,
    };
    layer.faults.record(RequestRecord {
        service: layer.service,
        method: method_name(&method),
        path,
        status: response.status().as_u16(),
        at_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        org,
        injected: injected.is_some(),
        user_agent,
    });
    response
}

/// Appends `record` to `file` as one JSON line (one `write`, so that
/// processes sharing the file do not interleave); a failure is logged.
fn append(file: &std::path::Path, record: &RequestRecord) {
    use std::io::Write;
    let Ok(mut line) = serde_json::to_vec(record) else { return };
    line.push(b'\n');
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(&line));
    if let Err(error) = written {
        tracing::warn!("could not append to the request log {}: {error}", file.display());
    }
}

fn method_name(method: &Method) -> String {
    method.as_str().to_owned()
}

/// `/org/ORG/…` → `ORG`.
fn org_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/org/")?;
    let org = rest.split('/').next()?;
    (!org.is_empty()).then(|| org.to_owned())
}

fn injected_response(status: StatusCode, config: &FaultConfig, service: Service) -> Response {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "too many requests (simulated fault)".to_owned(),
        other => format!("{} (simulated fault)", other.canonical_reason().unwrap_or("error")),
    };
    let mut response = match service {
        Service::Api => ApiError::new(status, "simulated_fault", message).into_response(),
        Service::Registry => super::registry::oci_error(status, "UNAVAILABLE", &message),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(config.retry_after_secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_bounds_hold() {
        let faults = Faults::new(FaultConfig { error_rate: 1.0, ..FaultConfig::default() });
        let config = faults.config();
        assert!((0..50).all(|_| faults.pick(&config, Service::Api).is_some()));
        let never = FaultConfig::default();
        assert!((0..50).all(|_| faults.pick(&never, Service::Api).is_none()));
        let api_only =
            FaultConfig { error_rate: 1.0, target: FaultTarget::Api, ..FaultConfig::default() };
        assert!(faults.pick(&api_only, Service::Registry).is_none());
    }

    #[test]
    fn half_the_requests_fail_at_half_rate() {
        let faults = Faults::new(FaultConfig::default());
        let config = FaultConfig { error_rate: 0.5, ..FaultConfig::default() };
        let failed = (0..1000).filter(|_| faults.pick(&config, Service::Api).is_some()).count();
        assert!((400..600).contains(&failed), "{failed}");
    }

    #[test]
    fn reads_the_org_from_api_paths() {
        assert_eq!(org_of("/org/acme/gvc").as_deref(), Some("acme"));
        assert_eq!(org_of("/discovery"), None);
    }
}
