//! One function per command: gather inputs, call the core, print.

mod graph;
mod plan;
mod render;
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
        Command::Plan { env, from, source, out } => {
            plan::run(global, &env, from.as_deref(), &source, out.as_deref())
        }
        Command::Render { env, from, source } => {
            render::run(global, &env, from.as_deref(), &source)
        }
        Command::Sim { command } => Ok(crate::sim::run(command)?),
        Command::Image { command } => crate::registry::run(command, global),
    }
}

/// The async runtime for commands that talk to the network.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Error::Runtime)
}
