//! `ferry graph [ENV]`: the apply order as waves.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::{GraphFormat, OutputFormat, SourceArgs};
use crate::graph::Graph;
use crate::{Error, ExitStatus, graph, output};

/// Schema of `ferry graph --format json`.
pub const SCHEMA: &str = "ferry.graph/v1";

pub(crate) fn run(
    session: &super::Session<'_>,
    env: Option<&str>,
    source: &SourceArgs,
    format: GraphFormat,
) -> Result<ExitStatus, Error> {
    let global = session.global;
    let plan = session.workspace()?;
    let config = &plan.config;
    let env = match env {
        Some(name) => config.environment(name)?,
        None => config.environments.first().ok_or_else(|| {
            crate::diagnostic::Problem::new(
                "ferry::config::no-environments",
                "no environments are declared",
            )
        })?,
    };
    let (manifests, mut problems) = plan.manifests(source)?;
    let graph = graph::build(&manifests.set, &config.ordering);
    let graph = match graph {
        Ok(graph) if problems.is_empty() => graph,
        Ok(_) => return Err(problems.into()),
        Err(cycle) => {
            problems.push(cycle);
            return Err(problems.into());
        }
    };
    let format = if global.output == OutputFormat::Json { GraphFormat::Json } else { format };
    let text = match format {
        GraphFormat::Text => text(&graph, &env.name),
        GraphFormat::Dot => dot(&graph, &env.name),
        GraphFormat::Json => super::json_about(
            SCHEMA,
            env,
            json!({
                "revision": manifests.revision,
                "waves": graph.waves,
                "dependencies": graph.dependencies.iter().map(|d| {
                    let mut entry = serde_json::to_value(d).unwrap_or_default();
                    entry["why"] = json!(d.why());
                    entry
                }).collect::<Vec<_>>(),
            }),
        ),
    };
    output::print(&text)?;
    Ok(ExitStatus::Success)
}

fn text(graph: &Graph, env: &str) -> String {
    let total: usize = graph.waves.iter().map(Vec::len).sum();
    let mut out = format!(
        "{} for {env} in {}\n",
        crate::output::count(total, "resource"),
        crate::output::count(graph.waves.len(), "wave")
    );
    for (index, wave) in graph.waves.iter().enumerate() {
        let _ = writeln!(out, "wave {}", index + 1);
        for id in wave {
            let after: Vec<String> =
                graph.dependencies_of(id).map(|d| format!("{} ({})", d.first, d.why())).collect();
            if after.is_empty() {
                let _ = writeln!(out, "  {id}");
            } else {
                let _ = writeln!(out, "  {id}  after {}", after.join(", "));
            }
        }
    }
    out
}

fn dot(graph: &Graph, env: &str) -> String {
    let mut out = format!("digraph \"{env}\" {{\n  rankdir=LR;\n  node [shape=box];\n");
    for (index, wave) in graph.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_wave_{} {{\n    label=\"wave {}\";",
            index + 1,
            index + 1
        );
        for id in wave {
            let _ = writeln!(out, "    \"{id}\";");
        }
        out.push_str("  }\n");
    }
    for dependency in &graph.dependencies {
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{}\"];",
            dependency.first,
            dependency.then,
            dependency.why()
        );
    }
    out.push_str("}\n");
    out
}
