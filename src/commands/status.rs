//! `ferry status [ENV…]`: every environment of the plan file (or those
//! named) side by side, and what promoting into each would change
//! ([`crate::status`]). Exit 0 when every environment was read and every
//! edge planned, 1 when any could not be (the rest is still shown).

use crate::cli::OutputFormat;
use crate::{Error, ExitStatus, output, status};

pub(crate) fn run(session: &super::Session<'_>, names: &[String]) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let config = &workspace.config;
    let shown = if names.is_empty() {
        config.environments.iter().collect()
    } else {
        names.iter().map(|name| config.environment(name)).collect::<Result<Vec<_>, _>>()?
    };
    let report = super::runtime()?.block_on(status::read(&workspace, &shown));
    match session.global.output {
        OutputFormat::Json => {
            output::print(&format!("{:#}\n", serde_json::to_value(&report).unwrap_or_default()))?
        }
        OutputFormat::Human => output::print(&status::text(&report))?,
    }
    Ok(if report.complete() { ExitStatus::Success } else { ExitStatus::Failure })
}
