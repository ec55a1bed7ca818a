//! One function per command: resolve inputs, call the core, print.

use crate::cli::{Cli, Command};
use crate::{Error, ExitStatus};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    let Cli { command, global } = cli;
    match command {
        Command::Validate { .. } | Command::Graph { .. } => Ok(ExitStatus::Success),
        Command::Sim { command } => Ok(crate::sim::run(command)?),
        Command::Image { command } => crate::registry::run(command, &global),
    }
}
