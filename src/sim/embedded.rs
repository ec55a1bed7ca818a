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

/// What `.ferry/.gitignore` says: everything under `.ferry/` is this
/// machine's (the embedded simulator's state), never the repository's.
pub const GITIGNORE: &str = "# Written by Ferry: .ferry/ holds this machine's state (the embedded simulator's), not for git.\n*\n";

/// In the state directory once its first use has set it up (what it set
/// up, one line per environment).
pub const FIRST_USE_MARKER: &str = "ferry-bootstrapped";

/// The simulator's state file in its directory.
const STATE_FILE: &str = "state.json";

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

/// Creates `ferry_dir` (`.ferry/`, where the embedded simulator's state
/// lives) if needed, with a `.gitignore` that keeps all of it out of git;
/// an existing `.gitignore` there is left as it is.
pub fn keep_out_of_git(ferry_dir: &Path) -> Result<(), SimError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimError::Io { path, source }
    };
    std::fs::create_dir_all(ferry_dir).map_err(io(ferry_dir))?;
    let file = ferry_dir.join(".gitignore");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&file) {
        Ok(mut created) => {
            std::io::Write::write_all(&mut created, GITIGNORE.as_bytes()).map_err(io(&file))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io(&file)(error)),
    }
}

/// What `ferry sim reset` removed: the orgs the state held, with how many
/// API resources and image tags (`None` when `state.json` was unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub orgs: Vec<String>,
    pub counts: Option<(usize, usize)>,
}

/// Removes the embedded simulator's state directory, after checking that
/// it is one (a `state.json` or the first-use marker in it): the next
/// `--sim` command starts from scratch.
pub fn reset(state_dir: &Path) -> Result<Removed, SimError> {
    if !state_dir.exists() {
        return Err(SimError::NothingToReset { path: state_dir.to_path_buf() });
    }
    let file = state_dir.join(STATE_FILE);
    let ours = [STATE_FILE, FIRST_USE_MARKER, REGISTRY_ADDRESSES]
        .iter()
        .any(|name| state_dir.join(name).is_file());
    if !ours {
        return Err(SimError::NotState { path: state_dir.to_path_buf() });
    }
    let state: Option<super::state::State> =
        std::fs::read(&file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut orgs: Vec<String> = std::fs::read_to_string(state_dir.join(REGISTRY_ADDRESSES))
        .ok()
        .and_then(|text| serde_json::from_str::<HashMap<String, SocketAddr>>(&text).ok())
        .map(|addresses| addresses.into_keys().collect())
        .unwrap_or_default();
    let counts = state.map(|state| {
        orgs.extend(state.registries.keys().cloned());
        orgs.extend(state.items.values().map(|item| item.org.clone()));
        let tags = state.registries.values().flat_map(|r| r.repos.values()).map(|r| r.tags.len());
        (state.items.len(), tags.sum())
    });
    orgs.sort();
    orgs.dedup();
    std::fs::remove_dir_all(state_dir)
        .map_err(|source| SimError::Io { path: state_dir.to_path_buf(), source })?;
    Ok(Removed { orgs, counts })
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
