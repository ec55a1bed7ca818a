//! Command-line arguments (clap derive). Only parsing lives here: commands
//! receive these values and resolve them against the plan file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::deploy::ImageOverride;

/// Promote releases between Control Plane environments, declaratively.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The promotion plan file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "promotion.yaml",
        env = "FERRY_FILE"
    )]
    pub file: PathBuf,

    /// Output format: text for people, JSON (versioned schema) for machines.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Run against an embedded Control Plane simulator whose state lives in
    /// `.ferry/sim/` next to the plan file (created on first use, with what
    /// that command needs: demo images, and releases into the environment
    /// it promotes from and those before it; `ferry sim reset` starts over).
    #[arg(long, global = true)]
    pub sim: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

/// Which manifests to read.
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Git revision to read manifests at (branch, tag or SHA); defaults to
    /// the plan file's `manifests.revision`.
    #[arg(long = "ref", value_name = "REV", conflicts_with = "worktree")]
    pub revision: Option<String>,

    /// Read manifests from the working directory instead of git, to preview
    /// uncommitted edits.
    #[arg(long)]
    pub worktree: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the plan file and the manifests, for one environment or all.
    Validate {
        /// The environment to validate for; every environment when omitted.
        env: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Print the dependency graph as waves that can be applied in parallel.
    Graph {
        /// The environment to render the graph for; the first when omitted.
        env: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        /// Graph format (`--output json` is the same as `--format json`).
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Show what promoting into an environment would change (exit 2 when
    /// something would).
    Plan {
        /// The environment to plan for.
        env: String,
        /// Plan the promotion from SRC (the images its live workloads run,
        /// by digest; the manifests at its last release). Default: the
        /// environment's source in the plan file; the first environment
        /// plans the manifests as written.
        #[arg(long, value_name = "SRC")]
        from: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        /// Save the plan (live versions, fingerprints, digests, hash) for a
        /// later `ferry apply`.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
        /// Plan the deletes of managed resources that left git as steps too
        /// (what `promote --prune` carries out); a plan saved with it
        /// deletes them when applied.
        #[arg(long)]
        prune: bool,
        /// What `ferry deploy ENV --image NAME=REF` would run instead of
        /// git's image (an environment with no source only).
        #[arg(long = "image", value_name = "CONTAINER_OR_REPO=REF")]
        images: Vec<ImageOverride>,
        /// Accept changes of resources every environment shares (an
        /// org-level resource of a gvc-per-env pipeline) for all of them; a
        /// plan saved with it carries them out when applied.
        #[arg(long)]
        change_shared: bool,
    },
    /// Print the manifests as an environment must have them (multi-document
    /// YAML that `cpln apply -f` accepts).
    Render {
        /// The environment to render for.
        env: String,
        /// Render what promoting from SRC applies: the images its live
        /// workloads run, the manifests at its last release.
        #[arg(long, value_name = "SRC")]
        from: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Promote what runs in SRC into DST: copy images, apply in waves, wait
    /// for readiness, record the release, roll back on failure.
    Promote {
        /// The environment whose live state is promoted.
        src: String,
        /// The environment promoted into.
        dst: String,
        #[command(flatten)]
        promotion: PromotionArgs,
        /// Git revision of the manifests; by default the commit of SRC's last
        /// successful release (the plan file's revision the first time).
        #[arg(long = "ref", value_name = "REV")]
        revision: Option<String>,
    },
    /// Release git into an environment with no source (the first one): the
    /// manifests at a revision, the images as written or as `--image`
    /// replaces them, each pinned by digest; then as promote.
    Deploy {
        /// The environment deployed into.
        env: String,
        #[command(flatten)]
        promotion: PromotionArgs,
        /// Git revision of the manifests; by default the plan file's.
        #[arg(long = "ref", value_name = "REV")]
        revision: Option<String>,
        /// Run REF (an image of the environment's registry, such as
        /// `//image/api:abc123`, as CI pushed it) in the containers named
        /// NAME or running repository NAME, instead of git's image.
        #[arg(long = "image", value_name = "CONTAINER_OR_REPO=REF")]
        images: Vec<ImageOverride>,
        /// Deploy even into an environment that has a source (which is
        /// otherwise promoted into).
        #[arg(long)]
        force: bool,
    },
    /// Carry out a plan saved with `ferry plan --from SRC --out PLAN.json`,
    /// exactly: refused if anything it was made against has moved.
    Apply {
        /// The saved plan.
        plan: PathBuf,
        #[command(flatten)]
        promotion: PromotionArgs,
        /// Carry out a saved rollback (`ferry rollback ENV --out`) even
        /// inside a freeze window or under a `ferry/halt` tag.
        #[arg(long)]
        during_freeze: bool,
        /// Refuse the plan unless its hash is this one (the hash that was
        /// reviewed and approved: `plan_hash` of the plan job).
        #[arg(long, value_name = "HASH")]
        expect_hash: Option<String>,
    },
    /// Bring back the images an earlier release ran (by default the last
    /// succeeded release before the current one), by digest, container by
    /// container; nothing else is restored.
    Rollback {
        /// The environment to roll back.
        env: String,
        /// The release to go back to (see `ferry history ENV`).
        #[arg(long = "to", value_name = "REVISION")]
        to: Option<u64>,
        #[command(flatten)]
        promotion: PromotionArgs,
        /// Only plan the rollback and save it (exit 2 when it would change
        /// something), for a later `ferry apply PLAN.json`.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
        /// Roll back even inside a freeze window or under a `ferry/halt`
        /// tag (which refuse promote, deploy and apply).
        #[arg(long)]
        during_freeze: bool,
    },
    /// Finish a release that a stopped run (killed, cancelled, its lock
    /// lost) left in progress: wait for what it wrote and record it as
    /// succeeded, or restore it and record the failure; clear an expired
    /// lock. Every promote, deploy, apply and rollback does this first.
    Recover {
        env: String,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Break an environment's promotion lock once it has expired.
    Unlock {
        env: String,
        /// Break it even if it has not expired.
        #[arg(long)]
        force: bool,
    },
    /// The releases recorded in an environment's org, newest first: kind,
    /// outcome, source, git commit, images by digest, plan hash, who, when,
    /// how long; or one release in full.
    History {
        /// The environment whose releases to show.
        env: String,
        /// Show this release in full.
        revision: Option<u64>,
        /// Show only the newest N releases.
        #[arg(long, value_name = "N", conflicts_with = "revision")]
        limit: Option<usize>,
    },
    /// Every environment side by side (release, images, readiness per
    /// location, lock) and what promoting into each would change; exit 1
    /// when any could not be read.
    Status {
        /// The environments to show; every one when omitted.
        envs: Vec<String>,
    },
    /// Write manifests of what runs in an environment's org and GVC, one
    /// file per resource (secret values kept out), and a plan file
    /// skeleton when there is none (docs/adoption.md).
    Import {
        /// The environment to import (named in the plan file, or described
        /// with --org and --gvc when there is none).
        env: String,
        #[command(flatten)]
        args: ImportArgs,
    },
    /// A local Control Plane (API and registries) for trying pipelines and for tests.
    Sim {
        #[command(subcommand)]
        command: crate::sim::SimCommand,
    },
    /// Work with container images across registries.
    Image {
        #[command(subcommand)]
        command: crate::registry::ImageCommand,
    },
}

/// `ferry import`'s choices.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// The folder to write into (`KIND/NAME.yaml`); default: the plan
    /// file's manifests folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these kinds (comma-separated); default: every kind Ferry knows.
    #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    pub kinds: Vec<crate::manifest::Kind>,
    /// Write secret values instead of placeholders (only from a terminal).
    #[arg(long)]
    pub include_secret_values: bool,
    /// Write into a folder that holds files, over those an earlier
    /// `ferry import` wrote (never over others, nor over a plan file).
    #[arg(long)]
    pub force: bool,
    /// With no plan file: the environment's org.
    #[arg(long, requires = "gvc")]
    pub org: Option<String>,
    /// With no plan file: the environment's GVC.
    #[arg(long, requires = "org")]
    pub gvc: Option<String>,
    /// With no plan file: the Control Plane API endpoint.
    #[arg(long, requires = "org")]
    pub endpoint: Option<String>,
    /// With no plan file: the variable holding the token.
    #[arg(long, value_name = "VAR", default_value = "CPLN_TOKEN")]
    pub token_env: String,
    /// Then put what was imported under Ferry's management: its managed
    /// tag written where it lacks one (no other field), and a `pre-ferry`
    /// release of the images that run, by digest.
    #[arg(long)]
    pub adopt: bool,
    /// With --adopt: do not ask for confirmation.
    #[arg(long, short = 'y', requires = "adopt")]
    pub yes: bool,
    /// With --adopt: the lock taken while the tags are written.
    #[command(flatten)]
    pub lock: LockArgs,
}

fn parse_kind(text: &str) -> Result<crate::manifest::Kind, String> {
    crate::manifest::Kind::parse(text).ok_or_else(|| {
        format!("`{text}` is not a kind Ferry knows: {}", crate::manifest::Kind::names())
    })
}

/// Choices shared by `promote`, `deploy` and `apply`.
#[derive(Debug, Args, Clone)]
pub struct PromotionArgs {
    /// Do not ask for confirmation (CI, after the approval gate).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Leave a failed promotion as it is instead of restoring.
    #[arg(long)]
    pub no_rollback: bool,
    /// Also delete managed resources that left git.
    #[arg(long)]
    pub prune: bool,
    /// Change resources every environment shares (an org-level resource of
    /// a gvc-per-env pipeline) for all of them; the release records it.
    #[arg(long)]
    pub change_shared: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// The environment lock's flags, for every command that writes.
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// How long to wait for another promotion's lock before giving up
    /// (exit 3).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration_arg)]
    pub lock_timeout: std::time::Duration,
    /// How long the lock outlives a promotion that dies without releasing
    /// it (renewed every third of it while the promotion runs).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration_arg)]
    pub lock_ttl: std::time::Duration,
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" || text.trim() == "0s" {
        return Ok(std::time::Duration::ZERO);
    }
    crate::config::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s or 5m"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn reads_graph_arguments() {
        let cli =
            Cli::try_parse_from(["ferry", "graph", "prod", "--format", "dot", "-f", "x.yaml"]);
        let Ok(Cli { command: Command::Graph { env, format, .. }, global }) = cli else {
            panic!("graph arguments did not parse");
        };
        assert_eq!((env.as_deref(), format), (Some("prod"), GraphFormat::Dot));
        assert_eq!(global.file, PathBuf::from("x.yaml"));
    }
}
