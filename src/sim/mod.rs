//! `ferry sim`: a local Control Plane (the REST API plus one OCI registry
//! per org), faithful enough that the real `cpln` CLI works against it.
//!
//! Start one in-process with [`Simulator::start`], or from the command line
//! with `ferry sim serve`. What it does and where it departs from the real
//! API is in `docs/simulator.md`.
//!
//! Modules, one concept each: [`config`] (what to serve), `server` (start
//! and stop), `api` (REST routing and rendering), `store` (writes and
//! deletes), `normalize` (what the API does to bodies), `patch` (the
//! directive language), `query` (`-query`), `deploy` (deployments and
//! readiness), `images` (image references and resources), `locations` (the location
//! catalogue), `registry` (OCI
//! distribution), `upstream` (orgs on an external registry), `auth` (tokens), `faults` (latency, errors, request log),
//! `state` (the model and crash-safe persistence), `clock`.

mod api;
mod auth;
mod clock;
pub mod config;
mod deploy;
pub mod embedded;
mod error;
pub mod faults;
mod images;
mod locations;
mod query;
mod registry;
pub mod seed;
mod server;
mod state;
mod store;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Subcommand;

pub use config::{OrgConfig, SimConfig};
pub use deploy::FAIL_TAG;
pub use error::SimError;
pub use faults::{FaultConfig, FaultTarget, REQUEST_LOG_VAR, RequestRecord, Service};
pub use locations::{CustomLocation, Geo};
pub use server::{SimHandle, Simulator};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator on loopback until interrupted.
    Serve {
        /// Address of the REST API (loopback only); overrides the config.
        #[arg(long, value_name = "127.0.0.1:PORT")]
        addr: Option<SocketAddr>,
        /// Keep state here, across restarts; a temporary directory otherwise.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Orgs, tokens, timing and faults (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// An org and its token, `ORG=TOKEN` (repeatable; adds to the config).
        #[arg(long = "org", value_name = "ORG=TOKEN")]
        orgs: Vec<String>,
    },
    /// Demo images in a simulated org's registry.
    Image {
        #[command(subcommand)]
        command: SimImageCommand,
    },
    /// Remove the embedded simulator's state (`.ferry/sim/` next to the
    /// plan file): the next `--sim` command prepares it from scratch.
    Reset,
}

#[derive(Debug, Subcommand)]
pub enum SimImageCommand {
    /// Build a small demo image and push it into ENV's registry in the
    /// simulator (with `--sim`, the embedded one), to try a second release.
    Push {
        /// The environment whose org registry receives the image.
        env: String,
        /// `NAME:TAG`: the repository and tag, as a workload's image names
        /// them (`//image/NAME:TAG`).
        image: String,
    },
}

/// Runs `ferry sim serve` (`ferry sim image` reads the plan file, so
/// [`crate::commands`] runs it).
pub fn serve(
    addr: Option<SocketAddr>,
    state: Option<PathBuf>,
    config: Option<PathBuf>,
    orgs: Vec<String>,
) -> Result<crate::ExitStatus, SimError> {
    let mut config = match config {
        Some(path) => SimConfig::load(&path)?,
        None => SimConfig::new(),
    };
    for pair in &orgs {
        let (org, token) = pair
            .split_once('=')
            .ok_or_else(|| SimError::InvalidOrg(format!("'--org {pair}' is not ORG=TOKEN")))?;
        config = config.with_org(org, token);
    }
    if config.orgs.is_empty() {
        config = config.with_org("dev", "dev-token");
    }
    if let Some(addr) = addr {
        config.api_addr = Some(addr);
    }
    if let Some(state) = state {
        config.state_dir = Some(state);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    runtime.block_on(async move {
        let handle = Simulator::start(config).await?;
        let mut lines = vec![format!("api       {}", handle.api_url())];
        for org in handle.orgs() {
            lines.push(format!(
                "registry  {org}  {}",
                handle.registry_host(org).unwrap_or_default()
            ));
        }
        lines.push(format!("state     {}", handle.state_dir().display()));
        crate::output::status(&lines.join("\n"));
        crate::shutdown::signalled().await;
        handle.shutdown().await;
        Ok(crate::ExitStatus::Success)
    })
}
