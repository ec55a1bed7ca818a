//! Registry-to-registry image copy over the OCI Distribution API.
//!
//! Not built yet (issue 5); the command reports that plainly.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Copy an image between registries without a Docker daemon.
    Copy,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error("image copy is not available in this build yet")]
    #[diagnostic(code(ferry::registry::unavailable))]
    Unavailable,
}

pub fn run(_command: ImageCommand) -> Result<crate::ExitStatus, RegistryError> {
    Err(RegistryError::Unavailable)
}
