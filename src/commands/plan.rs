//! `ferry plan ENV [--from SRC] [--ref REV] [--out PLAN.json]`: what
//! promoting into an environment would change, without changing anything.

use std::path::Path;

use crate::cli::{OutputFormat, SourceArgs};
use crate::config::{Environment, ImageStrategy};
use crate::inputs::{Prepared, Workspace};
use crate::manifest::Kind;
use crate::plan::{self, Plan, State, Target};
use crate::render::{self, ImageMap, Rendered};
use crate::{Error, ExitStatus, connect, observe, output};

pub(crate) fn run(
    session: &super::Session<'_>,
    env: &str,
    from: Option<&str>,
    source: &SourceArgs,
    out: Option<&Path>,
) -> Result<ExitStatus, Error> {
    let global = session.global;
    let workspace = session.workspace()?;
    let prepared = workspace.prepare(env, source)?;
    let from = from.map(|name| workspace.config.environment(name)).transpose()?;
    let plan = super::runtime()?.block_on(make(&workspace, &prepared, from))?.plan;
    match global.output {
        OutputFormat::Json => {
            output::print(&format!("{:#}\n", serde_json::to_value(&plan).unwrap_or_default()))?
        }
        OutputFormat::Human => {
            output::print(&plan::text(&plan, plan::Style { color: output::stdout_color() }))?
        }
    }
    if let Some(path) = out {
        save(&plan, path)?;
        output::status(&format!(
            "Saved the plan to {} (hash {}). Apply exactly this with: ferry apply {}",
            path.display(),
            &plan.hash[..12.min(plan.hash.len())],
            path.display()
        ));
    }
    Ok(if plan.summary.has_changes() { ExitStatus::Changes } else { ExitStatus::Success })
}

/// Renders `prepared.env`'s manifests, with the images `from`'s live
/// workloads run when given (read from its API), else as written in git.
pub(crate) async fn render_for(
    workspace: &Workspace,
    prepared: &Prepared,
    from: Option<&Environment>,
) -> Result<(Vec<Rendered>, ImageMap), Error> {
    let env = &prepared.env;
    let pull_from = match (&env.images, from) {
        (ImageStrategy::PullSecret { .. }, Some(source)) => Some(source.registry.clone()),
        _ => None,
    };
    let images = match from {
        Some(source) => {
            let workloads: Vec<String> = prepared
                .manifests
                .set
                .resources
                .iter()
                .filter(|r| r.kind == Kind::Workload)
                .map(|r| r.name.clone())
                .collect();
            observe::running_images(
                &connect::client(source)?,
                source,
                &workloads,
                pull_from.as_deref(),
            )
            .await?
        }
        None => ImageMap::new(),
    };
    let source_registry =
        pull_from.or_else(|| workspace.config.source_of(env).map(|s| s.registry.clone()));
    let gvcs: Vec<String> = workspace.config.environments.iter().map(|e| e.gvc.clone()).collect();
    let shared = (workspace.config.topology == crate::config::Topology::GvcPerEnv)
        .then_some(gvcs.as_slice());
    let rendered = render::render(
        &prepared.manifests.set,
        env,
        shared,
        &prepared.patches,
        &images,
        source_registry.as_deref(),
    )?;
    Ok((rendered, images))
}

/// A plan with what it was made from.
pub(crate) struct Made {
    pub plan: Plan,
    pub rendered: Vec<Rendered>,
    /// Live bodies of the planned resources that exist: the state a failed
    /// promotion restores.
    pub before: std::collections::HashMap<crate::manifest::ResourceId, serde_json::Value>,
}

/// Renders, reads live state and makes the plan for `prepared.env`, with
/// the images `from` runs when given.
pub(crate) async fn make(
    workspace: &Workspace,
    prepared: &Prepared,
    from: Option<&Environment>,
) -> Result<Made, Error> {
    let env = &prepared.env;
    let client = connect::client(env)?;
    let (rendered, images) = render_for(workspace, prepared, from).await?;
    let ids: Vec<_> = rendered.iter().map(|r| r.id.clone()).collect();
    let observation = observe::observe(&client, env, &ids).await?;
    let mut image_changes =
        plan::image_changes(rendered.iter().map(|r| (&r.id, &r.body)), &observation.raw);
    observe::check_copies(&client, env, &mut image_changes, &images).await?;
    let desired = rendered
        .iter()
        .map(|r| State {
            id: r.id.clone(),
            body: plan::comparable(r.id.kind, &r.id.name, &env.org, &env.gvc, &r.body),
            version: None,
        })
        .collect();
    let plan = plan::build(plan::Input {
        target: Target {
            environment: env.name.clone(),
            org: env.org.clone(),
            gvc: env.gvc.clone(),
            source: from.map(|f| f.name.clone()),
            revision: prepared.manifests.revision.clone(),
        },
        graph: &prepared.graph,
        desired,
        live: observation.live.clone(),
        managed: observation.managed,
        images: image_changes,
    });
    Ok(Made { plan, rendered, before: observation.raw })
}

/// Writes a saved plan: to a temporary file first, then renamed, so that
/// a reader never sees half a plan.
fn save(plan: &Plan, path: &Path) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(plan).unwrap_or_default();
    let temporary = path.with_extension("json.partial");
    std::fs::write(&temporary, text + "\n")
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(Error::Output)
}
