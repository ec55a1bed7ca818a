//! What every command of one run shares: the global options and, with
//! `--sim`, the embedded simulator every environment is pointed at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::config::Readiness;
use crate::inputs::{self, Workspace};
use crate::sim::embedded::{self, Embedded};
use crate::{Error, connect};

pub(crate) struct Session<'a> {
    pub global: &'a GlobalArgs,
    sim: Option<Embedded>,
}

/// Readiness in the embedded simulator, whose rollouts take 300 ms: quick
/// checks, so that the demo runs in seconds.
const SIM_READINESS: Readiness = Readiness {
    interval: Duration::from_millis(250),
    timeout: Duration::from_secs(60),
    consecutive_checks: 2,
};

impl<'a> Session<'a> {
    /// A session for commands that do not read the plan file.
    pub fn plain(global: &'a GlobalArgs) -> Self {
        Self { global, sim: None }
    }

    /// Starts the embedded simulator when `--sim` is given (and, the first
    /// time, sets up what `first_use` needs: `None` for a command that
    /// only reads the manifests).
    pub fn new(
        global: &'a GlobalArgs,
        first_use: Option<&super::first_run::FirstUse>,
    ) -> Result<Self, Error> {
        if !global.sim {
            return Ok(Self::plain(global));
        }
        let workspace = inputs::workspace(&global.file)?;
        let mut orgs: Vec<String> =
            workspace.config.environments.iter().map(|e| e.org.clone()).collect();
        orgs.sort();
        orgs.dedup();
        let state = sim_state_dir(&global.file);
        if let Some(ferry_dir) = state.parent() {
            embedded::keep_out_of_git(ferry_dir)?;
        }
        let sim = Embedded::start(&orgs, &state)?;
        // A sandbox reaches no registry beyond this machine, unless told to.
        crate::external_digest::sim_session();
        connect::use_own_tokens(
            orgs.iter().map(|org| (org.clone(), embedded::token_for(org))).collect(),
        );
        let session = Self { global, sim: Some(sim) };
        if let Some(first_use) = first_use {
            super::first_run::bootstrap(&session, &state, first_use)?;
        }
        Ok(session)
    }

    /// The plan file, pointed at the simulator with `--sim`.
    pub fn workspace(&self) -> Result<Workspace, Error> {
        let mut workspace = inputs::workspace(&self.global.file)?;
        if let Some(sim) = &self.sim {
            for env in &mut workspace.config.environments {
                env.endpoint = Some(sim.api_url.clone());
                if let Some(host) = sim.registries.get(&env.org) {
                    env.registry.clone_from(host);
                }
                env.readiness = SIM_READINESS;
            }
        }
        Ok(workspace)
    }
}

/// `.ferry/sim/` next to the plan file.
pub(super) fn sim_state_dir(plan_file: &Path) -> PathBuf {
    plan_file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join(".ferry")
        .join("sim")
}
