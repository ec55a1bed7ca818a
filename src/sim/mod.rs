//! `ferry sim`: a local Control Plane (API plus per-org OCI registries).
//!
//! Not built yet (issue 3); the command reports that plainly.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator on a loopback address.
    Serve,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SimError {
    #[error("the simulator is not available in this build yet")]
    #[diagnostic(code(ferry::sim::unavailable))]
    Unavailable,
}

pub fn run(_command: SimCommand) -> Result<crate::ExitStatus, SimError> {
    Err(SimError::Unavailable)
}
