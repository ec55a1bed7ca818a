//! `ferry image …`: arguments, credentials from the environment, and the
//! summary for people (stderr) or machines (`--output json`, stdout).

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::RegistryError;
use super::copy::{CopyReport, CopyRequest, DEFAULT_JOBS, copy_image};
use super::credentials::{Credential, Credentials};
use super::progress::{Reporter, Silent};
use super::reference::ImageRef;
use super::terminal::Bars;
use crate::cli::{GlobalArgs, OutputFormat};
use crate::{Error, ExitStatus};

/// The JSON schema of `ferry image copy --output json`.
pub const COPY_SCHEMA: &str = "ferry.image-copy/v1";

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Copy an image between registries without a Docker daemon, verifying
    /// every digest. Multi-platform indexes are copied whole.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source image: `HOST/REPO:TAG`, or `HOST/REPO@sha256:…` to copy by
    /// digest.
    pub source: String,

    /// Destination image: `HOST/REPO:TAG` (the tag is written last), or
    /// `HOST/REPO@sha256:…` to copy without a tag.
    pub destination: String,

    /// Environment variable holding the source registry's credentials:
    /// `user:password`, or a bare token sent as user `<token>` (Control
    /// Plane). Without it, the Docker config is used, else anonymous.
    #[arg(long, value_name = "VAR")]
    pub src_creds_env: Option<String>,

    /// Environment variable holding the destination registry's
    /// credentials, in the same forms.
    #[arg(long, value_name = "VAR")]
    pub dst_creds_env: Option<String>,

    /// Move the destination tag even if it names another digest.
    #[arg(long)]
    pub force: bool,

    /// Blobs transferred in parallel.
    #[arg(short = 'j', long, default_value_t = DEFAULT_JOBS,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

/// Runs an image command; its report goes to stdout (JSON) or stderr.
pub fn run(command: ImageCommand, global: &GlobalArgs) -> Result<ExitStatus, Error> {
    match command {
        ImageCommand::Copy(args) => copy(args, global),
    }
}

fn copy(args: CopyArgs, global: &GlobalArgs) -> Result<ExitStatus, Error> {
    let source: ImageRef = args.source.parse().map_err(RegistryError::from)?;
    let destination: ImageRef = args.destination.parse().map_err(RegistryError::from)?;
    let mut credentials = Credentials::anonymous().with_default_docker_config();
    // Same host: one credential serves both ends; the destination's wins.
    for (variable, image) in [(&args.src_creds_env, &source), (&args.dst_creds_env, &destination)] {
        if let Some(variable) = variable {
            credentials.insert(image.registry.clone(), Credential::from_env(variable)?);
        }
    }
    let request = CopyRequest {
        force: args.force,
        jobs: usize::from(args.jobs),
        ..CopyRequest::new(source, destination)
    };
    let show_bars =
        global.output == OutputFormat::Human && !global.quiet && std::io::stderr().is_terminal();
    let bars;
    let reporter: &dyn Reporter = if show_bars {
        bars = Bars::new();
        &bars
    } else {
        &Silent
    };
    // One thread: a copy is I/O plus hashing at a few hundred MB/s, and on
    // small machines the registries need the other cores (measured faster
    // than a multi-threaded runtime, see docs/performance.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)?;
    let report = runtime.block_on(copy_image(&request, &credentials, reporter))?;
    match global.output {
        OutputFormat::Json => crate::output::print(&json(&report))?,
        OutputFormat::Human if !global.quiet => crate::output::status(&summary(&report)),
        OutputFormat::Human => {}
    }
    Ok(ExitStatus::Success)
}

/// The `--output json` document: the report under a versioned schema.
pub fn json(report: &CopyReport) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        schema: &'static str,
        #[serde(flatten)]
        report: &'a CopyReport,
    }
    let document = Document { schema: COPY_SCHEMA, report };
    serde_json::to_string_pretty(&document).map_or_else(|_| String::new(), |text| text + "\n")
}

/// One or two lines for people.
pub fn summary(report: &CopyReport) -> String {
    let time = seconds(report.duration);
    if report.up_to_date {
        return format!(
            "{} is already at {}: nothing to copy ({time})",
            report.destination, report.digest
        );
    }
    let blobs = report.blobs;
    let mut text = format!(
        "copied {} to {} ({}) in {time}: {} blob(s) copied ({}), {} mounted, {} already present; {} manifest(s) written",
        report.source,
        report.destination,
        report.digest,
        blobs.copied,
        bytes(report.bytes_copied),
        blobs.mounted,
        blobs.skipped,
        report.manifests_pushed,
    );
    if let Some(previous) = &report.moved_tag_from {
        text.push_str(&format!("\nmoved the tag from {previous} (--force)"));
    }
    text
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

fn bytes(count: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    #[allow(clippy::cast_precision_loss)]
    let mib = count as f64 / MIB;
    if mib >= 1.0 { format!("{mib:.1} MiB") } else { format!("{count} bytes") }
}
