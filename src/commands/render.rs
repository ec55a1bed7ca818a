//! `ferry render ENV [--from SRC]`: the manifests as the environment must
//! have them, as multi-document YAML (or a JSON list with `--output json`).
//! With `--from`, what `ferry promote SRC ENV` would apply.

use crate::cli::{OutputFormat, SourceArgs};
use crate::manifest::yaml::to_yaml;
use crate::promotion_plan::Promotion;
use crate::{Error, ExitStatus, output};

pub(crate) fn run(
    session: &super::Session<'_>,
    env: &str,
    from: Option<&str>,
    source: &SourceArgs,
) -> Result<ExitStatus, Error> {
    let global = session.global;
    let workspace = session.workspace()?;
    let from = from.map(|name| workspace.config.environment(name)).transpose()?;
    let (rendered, _) = super::runtime()?.block_on(async {
        Promotion::prepare(&workspace, from, env, source).await?.render(&workspace).await
    })?;
    output::warnings(&crate::render::warnings(&rendered));
    let text = match global.output {
        OutputFormat::Json => {
            let bodies: Vec<&serde_json::Value> = rendered.iter().map(|r| &r.body).collect();
            format!(
                "{:#}\n",
                serde_json::Value::from(bodies.into_iter().cloned().collect::<Vec<_>>())
            )
        }
        OutputFormat::Human => {
            rendered.iter().map(|r| format!("---\n{}", to_yaml(&r.body))).collect()
        }
    };
    output::print(&text)?;
    Ok(ExitStatus::Success)
}
