//! One function per command: gather inputs, call the core, print.

mod graph;
mod validate;

use crate::cli::{Cli, Command};
use crate::{Error, ExitStatus};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    let global = &cli.global;
    match cli.command {
        Command::Validate { env, source } => validate::run(global, env.as_deref(), &source),
        Command::Graph { env, source, format } => {
            graph::run(global, env.as_deref(), &source, format)
        }
        Command::Sim { command } => Ok(crate::sim::run(command)?),
        Command::Image { command } => Ok(crate::registry::run(command)?),
    }
}
