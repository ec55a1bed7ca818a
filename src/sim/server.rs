//! Starting and stopping a simulator: the shared state, one API server
//! and one registry server per org, all on loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::Tokens;
use super::clock::now_ms;
use super::config::SimConfig;
use super::deploy::World;
use super::error::{ApiError, SimError};
use super::faults::{FaultConfig, FaultLayer, Faults, RequestRecord, Service};
use super::locations::Locations;
use super::registry::Uploads;
use super::state::{Disk, State};
use super::upstream::Upstreams;

/// Everything the servers of one simulator share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub disk: Disk,
    pub faults: Arc<Faults>,
    pub tokens: Tokens,
    pub orgs: Vec<String>,
    /// Org → `127.0.0.1:PORT` of its registry.
    pub registry_hosts: BTreeMap<String, String>,
    timing: Mutex<SimConfig>,
    pub uploads: Uploads,
    /// Orgs whose registry is an external one.
    pub upstreams: Upstreams,
    /// The locations every org has.
    pub locations: Locations,
    /// Org → kinds whose lists and queries its tokens are refused.
    pub query_denied: BTreeMap<String, Vec<String>>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Persists the state after a change (call with the lock held).
    pub fn save(&self, state: &State) -> Result<(), ApiError> {
        self.disk.save(state).map_err(|e| {
            tracing::error!("could not save simulator state: {e}");
            ApiError::internal("the simulator could not save its state")
        })
    }

    pub fn page_size(&self) -> usize {
        self.timing.lock().unwrap_or_else(PoisonError::into_inner).page_size.max(1)
    }

    /// Runs `f` with a [`World`] over `state` at the current time.
    pub fn with_world<T>(&self, state: &State, f: impl FnOnce(&World<'_>) -> T) -> T {
        let timing = self.timing.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let delay = |workload: &str, location: &str| timing.delay_for(workload, location);
        let world = World {
            state,
            registry_hosts: &self.registry_hosts,
            external_registries: &timing.external_registries,
            token_orgs: self.tokens.by_token(),
            now_ms: now_ms(),
            delay_ms: &delay,
        };
        f(&world)
    }
}

/// Starts simulators. See [`Simulator::start`].
pub struct Simulator;

impl Simulator {
    /// Binds the API and one registry per org on loopback (ephemeral ports
    /// unless the config fixes them), loads any saved state and serves
    /// until [`SimHandle::shutdown`] (or until the handle is dropped).
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        config.check()?;
        let (root, temporary) = match &config.state_dir {
            Some(dir) => (dir.clone(), false),
            None => (temp_state_dir(), true),
        };
        let disk = Disk::open(&root)?;
        let mut state = disk.load()?;
        state.server_fields = config.server_fields.clone();
        for org in &config.orgs {
            state.registries.entry(org.name.clone()).or_default();
        }
        let api_addr = config.api_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let api_listener = bind(api_addr).await?;
        let mut registry_listeners = Vec::new();
        let mut registry_hosts = BTreeMap::new();
        let upstreams = Upstreams::new(&config.orgs, &config.external_registries);
        for (org, host) in upstreams.hosts() {
            registry_hosts.insert(org.clone(), host.clone());
        }
        for org in config.orgs.iter().filter(|o| o.registry_upstream.is_none()) {
            let addr = org.registry_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let listener = bind(addr).await?;
            let local = local_addr(&listener, addr)?;
            registry_hosts.insert(org.name.clone(), local.to_string());
            registry_listeners.push((org.name.clone(), local, listener));
        }
        let tokens = Tokens::new(
            config
                .orgs
                .iter()
                .flat_map(|o| o.tokens.iter().map(move |t| (o.name.as_str(), t.as_str()))),
        );
        let faults = Arc::new(Faults::new(config.faults.clone()));
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            disk,
            faults: Arc::clone(&faults),
            tokens,
            orgs: config.orgs.iter().map(|o| o.name.clone()).collect(),
            registry_hosts,
            timing: Mutex::new(config.clone()),
            uploads: Uploads::default(),
            upstreams,
            locations: Locations::new(&config.locations),
            query_denied: config
                .orgs
                .iter()
                .map(|o| (o.name.clone(), o.query_denied.clone()))
                .collect(),
        });
        {
            let state = shared.lock();
            shared
                .disk
                .save(&state)
                .map_err(|source| SimError::Io { path: root.clone(), source })?;
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let api_local = local_addr(&api_listener, api_addr)?;
        let api = super::api::router(Arc::clone(&shared));
        let layer = FaultLayer { faults: Arc::clone(&faults), service: Service::Api, org: None };
        tasks.push(serve(api_listener, with_faults(api, layer), stopped.clone()));
        let mut registries = BTreeMap::new();
        for (org, local, listener) in registry_listeners {
            let router = super::registry::router(Arc::clone(&shared), org.clone());
            let layer = FaultLayer {
                faults: Arc::clone(&faults),
                service: Service::Registry,
                org: Some(org.clone()),
            };
            tasks.push(serve(listener, with_faults(router, layer), stopped.clone()));
            registries.insert(org, local);
        }
        tracing::info!("simulator API on http://{api_local}, state in {}", root.display());
        Ok(SimHandle { api_addr: api_local, registries, shared, stop, tasks, root, temporary })
    }
}

fn with_faults(router: Router, layer: FaultLayer) -> Router {
    router.layer(axum::middleware::from_fn_with_state(layer, super::faults::middleware))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SimError> {
    if !addr.ip().is_loopback() {
        return Err(SimError::NotLoopback(addr));
    }
    TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, SimError> {
    listener.local_addr().map_err(|source| SimError::Bind { addr, source })
}

fn serve(
    listener: TcpListener,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!("simulator server stopped: {error}");
        }
    })
}

fn temp_state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ferry-sim-{}", super::clock::new_id()))
}

/// A running simulator. Dropping it stops the servers (without waiting);
/// [`SimHandle::shutdown`] stops them and waits.
pub struct SimHandle {
    api_addr: SocketAddr,
    registries: BTreeMap<String, SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    root: PathBuf,
    temporary: bool,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, the value for `CPLN_ENDPOINT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The address of the registry the simulator serves for an org
    /// (`None` for an org on an external registry).
    pub fn registry_addr(&self, org: &str) -> Option<SocketAddr> {
        self.registries.get(org).copied()
    }

    /// `127.0.0.1:PORT`, the registry host to put in image references
    /// (`127.0.0.1:PORT/NAME:TAG`) and docker pull secrets: the served one,
    /// or the org's external registry.
    pub fn registry_host(&self, org: &str) -> Option<String> {
        self.shared.registry_hosts.get(org).cloned()
    }

    /// The orgs this simulator serves.
    pub fn orgs(&self) -> &[String] {
        &self.shared.orgs
    }

    /// Where the state is kept.
    pub fn state_dir(&self) -> &Path {
        &self.root
    }

    /// Every request served so far, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.faults.log()
    }

    pub fn clear_request_log(&self) {
        self.shared.faults.clear_log();
    }

    pub fn faults(&self) -> FaultConfig {
        self.shared.faults.config()
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(faults);
    }

    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.shared.faults.update(|f| f.latency_ms = ms);
    }

    /// Share of requests (0.0–1.0) answered with an injected error.
    pub fn set_error_rate(&self, rate: f64) {
        self.shared.faults.update(|f| f.error_rate = rate.clamp(0.0, 1.0));
    }

    pub fn set_rollout_delay(&self, delay: Duration) {
        let mut timing = self.shared.timing.lock().unwrap_or_else(PoisonError::into_inner);
        timing.rollout_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    }

    pub fn set_location_delay(&self, location: &str, delay: Duration) {
        let mut timing = self.shared.timing.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        timing.location_delay_ms.insert(location.to_owned(), ms);
    }

    /// How long `workload`'s rollouts take, in every location.
    pub fn set_workload_delay(&self, workload: &str, delay: Duration) {
        let mut timing = self.shared.timing.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        timing.workload_delay_ms.insert(workload.to_owned(), ms);
    }

    /// Stops every server and waits for them; a temporary state directory
    /// is removed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            // Graceful shutdown waits for open connections; do not hang on one.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
