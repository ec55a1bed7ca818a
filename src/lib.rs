//! Ferry promotes releases between Control Plane environments,
//! declaratively, from manifests kept in git.
//!
//! The pure core ([`manifest`], [`config`], [`validate`], [`graph`]) does
//! no I/O; the edges ([`repo`], [`registry`], [`sim`], [`output`]) do. See
//! `docs/architecture.md` for the path data takes through the modules.

pub mod api;
pub mod applied;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connect;
pub mod diagnostic;
pub mod diff;
pub mod error;
pub mod execute;
pub mod external_digest;
pub mod gate;
pub mod github;
pub mod graph;
pub mod history;
pub mod import;
pub mod input_file;
pub mod inputs;
pub mod lock;
pub mod manifest;
pub mod normalize;
pub mod observe;
pub mod output;
pub mod patch;
pub mod plan;
pub mod promote;
pub mod promotion_plan;
pub mod pull_secrets;
pub mod readiness;
pub mod registry;
pub mod release;
pub mod render;
pub mod repo;
pub mod retry;
pub mod rollback;
pub mod secret;
pub mod shutdown;
pub mod sim;
pub mod status;
pub mod timestamp;
pub mod validate;

pub use error::{Error, ExitStatus};

/// Runs Ferry with the process's arguments and returns its exit status.
///
/// A usage error (an unknown flag, a missing argument) exits 1 like any
/// other error, never 2, which means "changes present"; `--help` and
/// `--version` exit 0.
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitStatus::Failure } else { ExitStatus::Success }
                .into();
        }
    };
    output::install(&cli.global);
    github::install(&cli.global);
    let status = match commands::run(cli) {
        Ok(status) => status,
        Err(error) => {
            output::report(error);
            ExitStatus::Failure
        }
    };
    if let Some(github) = github::active() {
        github.close();
    }
    status.into()
}
