//! The simulator as the `--sim` flag runs it: on its own thread and
//! runtime (so that commands keep theirs), with one org per environment
//! and its state in a directory that survives between runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{SimConfig, SimError, Simulator};

/// A running embedded simulator; dropping it stops it.
pub struct Embedded {
    pub api_url: String,
    /// Registry host (`127.0.0.1:PORT`) by org.
    pub registries: HashMap<String, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The token of an org in the embedded simulator (local only).
pub fn token_for(org: &str) -> String {
    format!("sim-token-{org}")
}

/// In the state directory: the registry address each org had, reused on
/// the next start so that image references (and plans saved with `ferry
/// plan --out`) stay valid from one run to the next.
const REGISTRY_ADDRESSES: &str = "registry-addresses.json";

impl Embedded {
    /// Starts a simulator serving `orgs`, keeping state in `state_dir`;
    /// each org's registry on the address it had last time when that is
    /// still free.
    pub fn start(orgs: &[String], state_dir: &Path) -> Result<Embedded, SimError> {
        let file = state_dir.join(REGISTRY_ADDRESSES);
        let remembered: HashMap<String, SocketAddr> = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let config = |reuse: bool| {
            let mut config = SimConfig::new()
                .with_state_dir(state_dir)
                .with_rollout_delay(Duration::from_millis(300));
            for org in orgs {
                config = config.with_org(org, token_for(org));
            }
            for org in config.orgs.iter_mut().filter(|_| reuse) {
                org.registry_addr = remembered.get(&org.name).copied();
            }
            config
        };
        let embedded = match Self::spawn(config(true)) {
            Err(SimError::Bind { .. }) if !remembered.is_empty() => Self::spawn(config(false)),
            other => other,
        }?;
        if let Ok(text) = serde_json::to_string(&embedded.registries) {
            // Best effort: without it the next run picks new ports.
            let _ = std::fs::write(&file, text);
        }
        Ok(embedded)
    }

    fn spawn(config: SimConfig) -> Result<Embedded, SimError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(SimError::Runtime(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                match Simulator::start(config).await {
                    Ok(handle) => {
                        let registries = handle
                            .orgs()
                            .iter()
                            .filter_map(|org| {
                                handle.registry_host(org).map(|host| (org.clone(), host))
                            })
                            .collect();
                        let _ = ready_tx.send(Ok((handle.api_url(), registries)));
                        let _ = stop_rx.await;
                        handle.shutdown().await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            });
        });
        let (api_url, registries) = ready_rx.recv().map_err(|_| {
            SimError::Seed("the embedded simulator stopped while starting".to_owned())
        })??;
        Ok(Embedded { api_url, registries, stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
