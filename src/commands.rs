//! One function per command: gather inputs, call the core, print.

mod first_run;
mod graph;
mod history;
mod import;
mod plan;
mod promote;
mod render;
mod rollback;
mod session;
mod sim;
mod status;
mod validate;

use crate::cli::{Cli, Command};
use crate::sim::{SimCommand, SimImageCommand};
use crate::{Error, ExitStatus};
pub(crate) use session::Session;

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    let needs_plan_file = !matches!(
        cli.command,
        Command::Sim { command: SimCommand::Serve { .. } | SimCommand::Reset }
            | Command::Image { .. }
            | Command::Import { args: crate::cli::ImportArgs { org: Some(_), .. }, .. }
    );
    let session = if needs_plan_file {
        Session::new(&cli.global, first_use(&cli.command).as_ref())?
    } else {
        Session::plain(&cli.global)
    };
    match cli.command {
        Command::Validate { env, source } => validate::run(&session, env.as_deref(), &source),
        Command::Graph { env, source, format } => {
            graph::run(&session, env.as_deref(), &source, format)
        }
        Command::Plan { env, from, source, out, prune, images, change_shared } => {
            let choices = plan::Choices { out: out.as_deref(), prune, images, change_shared };
            plan::run(&session, &env, from.as_deref(), &source, choices)
        }
        Command::Render { env, from, source } => {
            render::run(&session, &env, from.as_deref(), &source)
        }
        Command::Promote { src, dst, promotion, revision } => {
            promote::promote(&session, &src, &dst, revision, &promotion)
        }
        Command::Deploy { env, promotion, revision, images, force } => {
            promote::deploy(&session, &env, revision, &promotion, images, force)
        }
        Command::Apply { plan, promotion, during_freeze, expect_hash } => {
            promote::apply(&session, &plan, &promotion, during_freeze, expect_hash.as_deref())
        }
        Command::Rollback { env, to, promotion, out, during_freeze } => match out {
            Some(out) => rollback::save(&session, &env, to, &promotion, &out),
            None => rollback::run(&session, &env, to, &promotion, during_freeze),
        },
        Command::Unlock { env, force } => promote::unlock(&session, &env, force),
        Command::Recover { env, lock } => promote::recover(&session, &env, &lock),
        Command::History { env, revision, limit } => history::run(&session, &env, revision, limit),
        Command::Sim { command: SimCommand::Serve { addr, state, config, orgs } } => {
            Ok(crate::sim::serve(addr, state, config, orgs)?)
        }
        Command::Sim {
            command: SimCommand::Image { command: SimImageCommand::Push { env, image } },
        } => sim::push(&session, &env, &image),
        Command::Sim { command: SimCommand::Reset } => first_run::reset(&session),
        Command::Status { envs } => status::run(&session, &envs),
        Command::Import { env, args } => import::run(&session, &env, &args),
        Command::Image { command } => crate::registry::run(command, &cli.global),
    }
}

/// What `command` needs of the embedded simulator on its first use
/// (`--sim`); `None` for a command that only reads the manifests, which
/// leaves the simulator as it is.
fn first_use(command: &Command) -> Option<first_run::FirstUse> {
    use first_run::{FirstUse, Origin};
    Some(match command {
        Command::Validate { .. } | Command::Graph { .. } | Command::Render { from: None, .. } => {
            return None;
        }
        Command::Render { env, from: Some(from), .. } => {
            FirstUse::of(env, Origin::Env(from.clone()))
        }
        Command::Plan { env, from, .. } => {
            FirstUse::of(env, from.clone().map_or(Origin::Configured, Origin::Env))
        }
        Command::Promote { src, dst, .. } => FirstUse::of(dst, Origin::Env(src.clone())),
        Command::Deploy { env, .. } => FirstUse::of(env, Origin::Git),
        _ => FirstUse::default(),
    })
}

/// The start of a command's JSON about one environment: its schema and
/// where the environment is; the command adds the rest.
fn json_about(schema: &str, env: &crate::config::Environment, rest: serde_json::Value) -> String {
    let mut value = serde_json::json!({
        "schema": schema,
        "environment": env.name,
        "org": env.org,
        "gvc": env.gvc,
    });
    if let (Some(all), serde_json::Value::Object(rest)) = (value.as_object_mut(), rest) {
        all.extend(rest);
    }
    format!("{value:#}\n")
}

/// The async runtime for commands that talk to the network.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Error::Runtime)
}
