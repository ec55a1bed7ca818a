//! `ferry validate [ENV]`: every check, every problem, one run.

use std::collections::HashSet;

use serde_json::json;

use crate::cli::{OutputFormat, SourceArgs};
use crate::config::{Environment, Patch};
use crate::diagnostic::{Problem, Problems};
use crate::inputs;
use crate::manifest::ManifestSet;
use crate::manifest::template::{self, Template, TemplateSource};
use crate::repo::Revision;
use crate::{Error, ExitStatus, graph, output, render, validate};

/// Schema of `ferry validate --output json`.
pub const SCHEMA: &str = "ferry.validate/v1";

pub(crate) fn run(
    session: &super::Session<'_>,
    env: Option<&str>,
    source: &SourceArgs,
) -> Result<ExitStatus, Error> {
    let global = session.global;
    let outcome = check(session, env, source);
    let warnings = outcome.as_ref().map(|s| s.warnings.clone()).unwrap_or_default();
    output::warnings(&warnings);
    if let Some(github) = crate::github::active() {
        match &outcome {
            Ok(summary) => github.validate(&verdict(summary), &warnings),
            Err(Error::Problems(problems)) => {
                let errors = problems.problems.iter().filter(|p| p.is_error()).count();
                let verdict = format!(
                    "invalid: {}, {}",
                    output::count(errors, "error"),
                    output::count(problems.len() - errors, "warning")
                );
                github.validate(&verdict, &problems.problems);
            }
            Err(error) => github.validate(&format!("could not validate: {error}"), &[]),
        }
    }
    if global.output == OutputFormat::Json {
        let report = match &outcome {
            Ok(summary) => Some(report(Some(summary), &Problems { problems: warnings })),
            Err(Error::Problems(problems)) => Some(report(None, problems)),
            Err(_) => None,
        };
        if let Some(report) = report {
            output::print(&format!("{report:#}\n"))?;
        }
    }
    let summary = outcome?;
    if global.output == OutputFormat::Human {
        output::print(&format!("{}\n", verdict(&summary)))?;
        if let Some(template) = &summary.template {
            output::print(&format!("{}\n", template.line()))?;
        }
    }
    Ok(ExitStatus::Success)
}

/// `valid: 13 resources at HEAD (abc1234) for dev, prod (1 warning)`.
fn verdict(summary: &Summary) -> String {
    let at = summary
        .revision
        .as_ref()
        .map_or_else(|| "the work tree".to_owned(), |r| format!("{} ({})", r.requested, r.short()));
    format!(
        "valid: {} at {at} for {}{}",
        output::count(summary.resources, "resource"),
        summary.environments.join(", "),
        if summary.warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", output::count(summary.warnings.len(), "warning"))
        }
    )
}

/// What a successful validation covered.
struct Summary {
    revision: Option<Revision>,
    environments: Vec<String>,
    resources: usize,
    /// Problems that do not make the manifests invalid.
    warnings: Vec<Problem>,
    /// The manifests' template GVC and what it renders as.
    template: Option<TemplateGvc>,
}

/// The manifests' template GVC (`manifest::template`), reported so that a
/// reader sees which name Ferry renders as each environment's GVC.
#[derive(Debug, Clone, serde::Serialize)]
struct TemplateGvc {
    name: String,
    source: TemplateSource,
    /// Each environment checked, in the plan file's order, with its GVC.
    rendered: Vec<RenderedAs>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct RenderedAs {
    environment: String,
    gvc: String,
}

impl TemplateGvc {
    fn new(manifests: &ManifestSet, environments: &[&Environment]) -> Option<Self> {
        let Template::One { name, source } = template::template(manifests) else { return None };
        let rendered = environments
            .iter()
            .map(|e| RenderedAs { environment: e.name.clone(), gvc: e.gvc.clone() })
            .collect();
        Some(TemplateGvc { name: name.to_owned(), source, rendered })
    }

    /// `template GVC: `shop` (…), rendered as `shop-staging` for staging, …`
    fn line(&self) -> String {
        let rendered: Vec<String> =
            self.rendered.iter().map(|r| format!("`{}` for {}", r.gvc, r.environment)).collect();
        format!(
            "template GVC: `{}` ({}), rendered as {}",
            self.name,
            self.source.describe(),
            rendered.join(", ")
        )
    }
}

fn check(
    session: &super::Session<'_>,
    env: Option<&str>,
    source: &SourceArgs,
) -> Result<Summary, Error> {
    let global = session.global;
    let plan = match inputs::workspace(&global.file) {
        Ok(plan) => plan,
        Err(Error::Problems(mut problems)) => {
            problems.extend(inputs::manifest_problems(&global.file, source));
            return Err(problems.into());
        }
        Err(other) => return Err(other),
    };
    let config = &plan.config;
    let environments = match env {
        Some(name) => vec![config.environment(name)?],
        None => config.environments.iter().collect(),
    };
    let (manifests, mut problems) = plan.manifests(source)?;
    for env in &environments {
        problems.extend(validate::check(&manifests.set, config, env));
        match plan.overrides(env) {
            Ok(patches) => {
                problems.extend(
                    patches
                        .iter()
                        .filter(|p| manifests.set.get(&p.target).is_none())
                        .map(|p| unknown_target(env, p)),
                );
                // What would be applied: overrides merged, images as the
                // manifests write them (a promotion pins its source's).
                let images = render::SourceImages::default();
                problems.extend(render::problems_for_environment(
                    config,
                    env,
                    &manifests.set,
                    &patches,
                    &images,
                ));
            }
            Err(found) => problems.extend(found),
        }
    }
    if let Err(cycle) = graph::build(&manifests.set, &config.ordering) {
        problems.push(cycle);
    }
    let mut problems = deduplicate(problems);
    if problems.has_errors() {
        return Err(problems.into());
    }
    Ok(Summary {
        revision: manifests.revision,
        environments: environments.iter().map(|e| e.name.clone()).collect(),
        resources: manifests.set.resources.len(),
        warnings: problems.take_warnings(),
        template: TemplateGvc::new(&manifests.set, &environments),
    })
}

fn unknown_target(env: &Environment, patch: &Patch) -> Problem {
    Problem::new(
        "ferry::validate::unknown-override-target",
        format!("override for `{}` targets {}, which no manifest defines", env.name, patch.target),
    )
    .at(patch.location.clone(), "nothing to patch")
    .help("fix the kind or name, or remove the override")
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

fn report(summary: Option<&Summary>, problems: &Problems) -> serde_json::Value {
    json!({
        "schema": SCHEMA,
        "valid": !problems.has_errors(),
        "revision": summary.and_then(|s| s.revision.as_ref()),
        "environments": summary.map(|s| &s.environments),
        "resources": summary.map(|s| s.resources),
        "templateGvc": summary.and_then(|s| s.template.as_ref()),
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
        "severity": problem.severity,
        "message": problem.shown_message(),
        "file": file,
        "line": line,
        "column": column,
        "help": problem.shown_help(),
    })
}
