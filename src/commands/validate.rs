//! `ferry validate [ENV]`: every check, every problem, one run.

use std::collections::HashSet;

use serde_json::json;

use crate::cli::{GlobalArgs, OutputFormat, SourceArgs};
use crate::diagnostic::{Problem, Problems};
use crate::inputs;
use crate::manifest::ManifestSet;
use crate::{Error, ExitStatus, graph, output, validate};

/// Schema of `ferry validate --output json`.
pub const SCHEMA: &str = "ferry.validate/v1";

pub fn run(
    global: &GlobalArgs,
    env: Option<&str>,
    source: &SourceArgs,
) -> Result<ExitStatus, Error> {
    let plan = inputs::plan_file(&global.file)?;
    let config = &plan.config;
    let environments = match env {
        Some(name) => vec![config.environment(name)?],
        None => config.environments.iter().collect(),
    };
    let (manifests, mut problems) = plan.manifests(source)?;
    for env in &environments {
        problems.extend(validate::check(&manifests.set, config, env));
        match plan.overrides(env) {
            Ok(patches) => problems.extend(
                patches.iter().filter(|p| manifests.set.get(&p.target).is_none()).map(|p| {
                    Problem::new(
                        "ferry::validate::unknown-override-target",
                        format!(
                            "override for `{}` targets {}, which no manifest defines",
                            env.name, p.target
                        ),
                    )
                    .at(p.location.clone(), "nothing to patch")
                    .help("fix the kind or name, or remove the override")
                }),
            ),
            Err(found) => problems.extend(found),
        }
    }
    if let Err(cycle) = graph::build(&manifests.set, &config.ordering) {
        problems.push(cycle);
    }
    let problems = deduplicate(problems);
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let revision = manifests.revision.as_ref();
    if global.output == OutputFormat::Json {
        output::print(&format!("{:#}\n", report(&manifests.set, revision, &names, &problems)))?;
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    if global.output == OutputFormat::Human {
        let at = revision.map_or_else(
            || "the work tree".to_owned(),
            |r| format!("{} ({})", r.requested, r.short()),
        );
        output::print(&format!(
            "valid: {} resources at {at} for {}\n",
            manifests.set.resources.len(),
            names.join(", ")
        ))?;
    }
    Ok(ExitStatus::Success)
}

/// The same problem found for several environments is reported once.
fn deduplicate(problems: Problems) -> Problems {
    let mut seen = HashSet::new();
    let mut unique = Problems::default();
    for problem in problems {
        if seen.insert((problem.code, problem.message.clone(), problem.position())) {
            unique.push(problem);
        }
    }
    unique
}

fn report(
    set: &ManifestSet,
    revision: Option<&crate::repo::Revision>,
    envs: &[&str],
    problems: &Problems,
) -> serde_json::Value {
    json!({
        "schema": SCHEMA,
        "valid": problems.is_empty(),
        "revision": revision,
        "environments": envs,
        "resources": set.resources.len(),
        "problems": problems.problems.iter().map(problem_json).collect::<Vec<_>>(),
    })
}

/// A problem as data, for CI annotations.
pub fn problem_json(problem: &Problem) -> serde_json::Value {
    let (file, line, column) = problem.location.as_ref().map_or((None, None, None), |l| {
        let (line, column) = l.source.line_column(l.span.offset());
        (Some(l.source.name().to_owned()), Some(line), Some(column))
    });
    json!({
        "code": problem.code,
        "message": problem.message,
        "file": file,
        "line": line,
        "column": column,
        "help": problem.help,
    })
}
