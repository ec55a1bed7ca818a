//! The promotion plan file (`promotion.yaml`): environments in promotion
//! order, their topology, how images travel, readiness rules, overrides
//! and explicit ordering.
//!
//! Pure: [`parse`] turns the file's text into a [`PromotionConfig`] or
//! reports every problem it has, each pointing at a line and column.

mod duration;
mod freeze;
mod host;
mod parse;
mod reader;

use std::time::Duration;

use crate::diagnostic::{Location, Problem, SourceFile};
use crate::manifest::ResourceId;
use crate::manifest::yaml::Node;

pub use duration::parse_duration;
pub use freeze::{DEFAULT_MAX_PLAN_AGE, FreezeWindow, active as active_freeze, parse_time};
pub use parse::{is_loopback_http, manifest_source_lenient, parse, parse_patch_file};

/// Default Control Plane API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.cpln.io";
/// Default registry host; `{org}` is replaced with the environment's org.
pub const DEFAULT_REGISTRY: &str = "{org}.registry.cpln.io";

/// `value` (an environment's name, or the shared owner) as the tag value
/// of `app`'s scope: `APP/VALUE`, or `VALUE` without an app.
pub fn scoped(app: Option<&str>, value: &str) -> String {
    match app {
        Some(app) => format!("{app}/{value}"),
        None => value.to_owned(),
    }
}

/// An environment's part of Ferry's own resource names: `APP--ENV`, or
/// `ENV` without an app.
pub fn resource_key(app: Option<&str>, environment: &str) -> String {
    match app {
        Some(app) => format!("{app}--{environment}"),
        None => environment.to_owned(),
    }
}

/// The app a managed tag's value names (`APP/…`), `None` for a value
/// written without one.
pub fn app_of(value: &str) -> Option<&str> {
    value.split_once('/').map(|(app, _)| app)
}

/// The whole plan file.
#[derive(Debug, Clone)]
pub struct PromotionConfig {
    pub source: SourceFile,
    /// The app the plan file releases (`app`), when several share an org:
    /// its resources, locks and records are its own (docs/apps.md).
    pub app: Option<String>,
    /// `sharedResources: perEnvironment`.
    pub shared_per_environment: bool,
    pub manifests: ManifestSource,
    pub topology: Topology,
    /// In promotion order.
    pub environments: Vec<Environment>,
    pub ordering: Vec<OrderRule>,
    /// How old a saved plan `ferry apply` still carries out
    /// (`approval.maxPlanAge`).
    pub max_plan_age: Duration,
    /// The `environments` key, for "unknown environment" problems.
    pub environments_location: Location,
}

/// Where the manifests live.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    /// Git repository, relative to the plan file's directory.
    pub repository: String,
    /// Folder inside the repository holding the manifests.
    pub path: String,
    /// The `manifests.path` value in the plan file, for problems about the
    /// folder (`None` when read leniently from a broken plan file).
    pub path_location: Option<Location>,
    /// Revision read when none is given on the command line.
    pub revision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// One org per environment, the same GVC and resource names in each.
    OrgPerEnv,
    /// One org, one GVC per environment.
    GvcPerEnv,
}

/// One environment of the pipeline.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The environment whose live state this one is promoted from; the
    /// previous one in order when the file does not say.
    pub from: Option<String>,
    pub org: String,
    pub gvc: String,
    /// The API endpoint the file names; `None` means `$CPLN_ENDPOINT`, or
    /// [`DEFAULT_ENDPOINT`] (see `connect`).
    pub endpoint: Option<String>,
    /// Name of the environment variable holding this environment's token.
    pub token_env: String,
    pub images: ImageStrategy,
    /// Registry host, with `{org}` already replaced.
    pub registry: String,
    pub readiness: Readiness,
    pub overrides: Vec<OverrideSource>,
    /// Refuse mutable image tags (`latest`, or none).
    pub immutable_tags: bool,
    /// Write external images pinned to the digest the source ran
    /// (`images.pinExternal`).
    pub pin_external: bool,
    pub require_approval: bool,
    /// How many releases are kept in the environment's history.
    pub history_limit: u32,
    /// How many deletes `--prune` may carry out (`prune.maxDeletes`).
    pub max_deletes: Option<MaxDeletes>,
    /// `ferry rollback` may copy an image the release ran back from the
    /// source environment's registry when this one lost it
    /// (`rollback.copyMissingImages`).
    pub copy_missing_images: bool,
    /// When releases into it are refused: its own `freeze` windows, then
    /// the plan file's top-level ones.
    pub freeze: Vec<FreezeWindow>,
    /// The environment's `name` value in the plan file.
    pub location: Location,
    /// The plan file's `app`, when it names one.
    pub app: Option<String>,
    /// `sharedResources: perEnvironment` (gvc-per-env): each environment
    /// gets its own copy of the org-level secrets and policies, under a
    /// derived name ([`crate::render`]).
    pub shared_per_environment: bool,
}

impl Environment {
    /// What Ferry's tags name as the owner of this environment's resources
    /// and records: `APP/ENV` when the plan file names its app, else the
    /// environment's name alone (as before apps; docs/apps.md).
    pub fn scope(&self) -> String {
        scoped(self.app.as_deref(), &self.name)
    }

    /// The part of Ferry's own resource names (lock, release records, the
    /// record of what Ferry wrote) that stands for this environment:
    /// `APP--ENV` when the plan file names its app, else its name.
    pub fn resource_key(&self) -> String {
        resource_key(self.app.as_deref(), &self.name)
    }

    /// This environment's own registry, for classifying image references.
    pub fn own_registry(&self) -> crate::manifest::image::OwnRegistry<'_> {
        crate::manifest::image::OwnRegistry { org: &self.org, host: &self.registry }
    }
}

/// `prune.maxDeletes` of an environment: `--prune` refuses a plan with
/// more deletes (the default, without it: see [`MaxDeletes::default_for`]).
#[derive(Debug, Clone)]
pub struct MaxDeletes {
    pub count: u32,
    /// The value in the plan file.
    pub location: Location,
}

impl MaxDeletes {
    /// The limit without `prune.maxDeletes`: a quarter of the `managed`
    /// resources, rounded down, but at least 1, so that a small
    /// environment can still lose one resource (a rename is a delete and a
    /// create).
    pub fn default_for(managed: usize) -> usize {
        (managed / 4).max(1)
    }
}

/// How images reach an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStrategy {
    /// Copy images into this environment's registry.
    Copy,
    /// Pull from the source environment's registry with this docker pull
    /// secret attached to the GVC.
    PullSecret { secret: String },
    /// Images are already reachable (gvc-per-env shares one registry).
    None,
}

/// When a rollout counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successful checks required.
    pub consecutive_checks: u32,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
            consecutive_checks: 3,
        }
    }
}

/// An override as the plan file names it: inline, or a file of patches.
#[derive(Debug, Clone)]
pub enum OverrideSource {
    Inline(Patch),
    /// A YAML file (relative to the plan file) of patch documents, each
    /// with `kind`, `name` and the fields to change.
    File {
        path: String,
        location: Location,
    },
}

/// A patch merged into one resource when rendering for an environment:
/// mappings merge, lists of named items merge by `name`, other lists are
/// replaced and `null` removes a key.
#[derive(Debug, Clone)]
pub struct Patch {
    pub target: ResourceId,
    pub patch: Node,
    pub location: Location,
}

impl Patch {
    /// Where a JSON pointer into the patch's fields is written (the key
    /// itself when `on_key`; the closest field written when the pointer
    /// goes further).
    pub fn location_at(&self, pointer: &str, on_key: bool) -> Location {
        Location::new(&self.location.source, self.patch.resolve(pointer).span(on_key))
    }
}

/// `first` is applied (and ready) before `then`.
#[derive(Debug, Clone)]
pub struct OrderRule {
    pub first: ResourceId,
    pub then: ResourceId,
    pub first_location: Location,
    pub then_location: Location,
}

impl PromotionConfig {
    /// The environment called `name`, or a problem listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, Problem> {
        self.environments.iter().find(|e| e.name == name).ok_or_else(|| {
            let known = self.environment_names().join(", ");
            let suggestion = crate::diagnostic::did_you_mean(
                name,
                self.environments.iter().map(|e| e.name.as_str()),
            )
            .map_or(String::new(), |s| format!("did you mean `{s}`? "));
            Problem::new(
                "ferry::config::unknown-environment",
                format!("unknown environment `{name}`"),
            )
            .at(self.environments_location.clone(), "environments are declared here")
            .help(format!("{suggestion}this plan file declares: {known}"))
        })
    }

    pub fn environment_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }

    /// The environment `target` is promoted from, if any.
    pub fn source_of(&self, target: &Environment) -> Option<&Environment> {
        match &target.from {
            Some(from) => self.environments.iter().find(|e| &e.name == from),
            None => {
                let index = self.environments.iter().position(|e| e.name == target.name)?;
                index.checked_sub(1).and_then(|i| self.environments.get(i))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::SourceFile;

    fn parsed(app: &str) -> Result<super::PromotionConfig, crate::diagnostic::Problems> {
        let text = format!(
            "{app}manifests: {{path: m}}\ntopology: org-per-env\nenvironments:\n  - {{name: prod, org: acme, gvc: app, tokenEnv: T}}\n"
        );
        super::parse(&SourceFile::new("promotion.yaml", text))
    }

    #[test]
    fn an_app_scopes_tags_and_names_and_none_keeps_them_as_they_were() {
        let shop = parsed("app: shop\n").unwrap_or_else(|p| panic!("{p:?}"));
        let env = &shop.environments[0];
        assert_eq!((env.scope(), env.resource_key()), ("shop/prod".into(), "shop--prod".into()));
        assert_eq!(super::app_of(&env.scope()), Some("shop"));
        let plain = parsed("").unwrap_or_else(|p| panic!("{p:?}"));
        let env = &plain.environments[0];
        assert_eq!((env.scope(), env.resource_key()), ("prod".into(), "prod".into()));
        assert_eq!(super::app_of(&env.scope()), None);
    }

    #[test]
    fn an_app_name_is_a_short_label_without_double_hyphens() {
        for bad in ["Shop", "shop--api", "-shop", "shop-", "a/b", &"a".repeat(31)] {
            let refused = parsed(&format!("app: {bad}\n")).err().unwrap_or_default();
            let said = format!("{refused:?}");
            assert!(said.contains("invalid app name"), "{bad}: {said}");
        }
        let empty = format!("{:?}", parsed("app: \"\"\n").err().unwrap_or_default());
        assert!(empty.contains("`app` is empty"), "{empty}");
        assert!(parsed("app: billing-api-2\n").is_ok());
    }
}
