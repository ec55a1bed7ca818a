//! One function per command: resolve inputs, call the core, print.

use crate::cli::{Cli, Command};
use crate::{Error, ExitStatus};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    match cli.command {
        Command::Validate { .. } | Command::Graph { .. } => Ok(ExitStatus::Success),
        Command::Sim { command } => Ok(crate::sim::run(command)?),
        Command::Image { command } => Ok(crate::registry::run(command)?),
    }
}
