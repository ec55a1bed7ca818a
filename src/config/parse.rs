//! Reading and checking the plan file.

use std::collections::HashMap;

use crate::diagnostic::{Location, Problem, Problems, SourceFile};
use crate::manifest::ResourceId;
use crate::manifest::yaml::{self, Node, NodeValue};
use crate::validate::naming;

use super::reader::Reader;
use super::{
    DEFAULT_REGISTRY, Environment, ImageStrategy, ManifestSource, MaxDeletes, OrderRule,
    OverrideSource, Patch, PromotionConfig, Readiness, Topology,
};

const TOP_KEYS: &[&str] = &[
    "version",
    "app",
    "sharedResources",
    "manifests",
    "topology",
    "environments",
    "ordering",
    "approval",
    "freeze",
];
const MANIFEST_KEYS: &[&str] = &["repository", "path", "revision"];
const ENVIRONMENT_KEYS: &[&str] = &[
    "name",
    "from",
    "org",
    "gvc",
    "endpoint",
    "tokenEnv",
    "images",
    "registry",
    "readiness",
    "overrides",
    "immutableTags",
    "requireApproval",
    "historyLimit",
    "prune",
    "rollback",
    "freeze",
];
const IMAGE_KEYS: &[&str] = &["strategy", "pullSecret", "pinExternal"];
const PRUNE_KEYS: &[&str] = &["maxDeletes"];
const ROLLBACK_KEYS: &[&str] = &["copyMissingImages"];
const READINESS_KEYS: &[&str] = &["interval", "timeout", "consecutiveChecks"];
const INLINE_OVERRIDE_KEYS: &[&str] = &["kind", "name", "patch"];
const FILE_OVERRIDE_KEYS: &[&str] = &["file"];
const ORDER_KEYS: &[&str] = &["first", "then"];

/// The schema version this build reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Parses and checks a plan file; every problem is reported at once.
pub fn parse(source: &SourceFile) -> Result<PromotionConfig, Problems> {
    let documents = yaml::parse_documents(source).map_err(Problems::from)?;
    let root = match documents.as_slice() {
        [root] => root,
        [] => {
            return Err(Problem::new("ferry::config::empty", "the plan file is empty")
                .help("start from promotion.example.yaml")
                .into());
        }
        [_, second, ..] => {
            return Err(Problem::new(
                "ferry::config::several-documents",
                "the plan file must hold one YAML document",
            )
            .at(Location::new(source, second.span), "a second document starts here")
            .help("remove the `---` separator and merge the documents")
            .into());
        }
    };
    let mut reader = Reader::new(source);
    let config = read_root(&mut reader, root);
    match config {
        Some(config) if reader.problems.is_empty() => {
            let mut problems = reader.problems;
            problems.extend(check_environments(&config));
            problems.into_result(config)
        }
        _ => Err(reader.problems),
    }
}

fn read_root(reader: &mut Reader, root: &Node) -> Option<PromotionConfig> {
    reader.mapping(root, "the plan file", TOP_KEYS)?;
    if let Some(version) = root.get("version") {
        let supported =
            matches!(&version.value, NodeValue::Number(n) if n.as_u64() == Some(SCHEMA_VERSION));
        if !supported {
            reader.invalid(
                version,
                "unsupported plan file version",
                "not supported",
                format!("this Ferry reads `version: {SCHEMA_VERSION}`"),
            );
        }
    }
    let manifests =
        reader.required(root, "manifests", "the plan file").and_then(|m| read_manifests(reader, m));
    let topology = match reader.required(root, "topology", "the plan file") {
        Some(node) => read_topology(reader, node),
        None => None,
    };
    let environments_node = reader.required(root, "environments", "the plan file");
    let topology_value = topology.unwrap_or(Topology::OrgPerEnv);
    let environments =
        environments_node.map(|node| read_environments(reader, node, topology_value));
    let ordering = root.get("ordering").map(|node| read_ordering(reader, node)).unwrap_or_default();
    let max_plan_age = super::freeze::read_approval(reader, root.get("approval"));
    let freeze = root
        .get("freeze")
        .map(|node| super::freeze::read_freeze(reader, node, "the plan file"))
        .unwrap_or_default();
    let app = match root.get("app") {
        Some(node) => read_app(reader, node).map(Some),
        None => Some(None),
    };
    let per_environment = match root.get("sharedResources") {
        Some(node) => read_shared_resources(reader, node, topology_value),
        None => Some(false),
    };
    let environments = environments.map(|mut environments| {
        for env in &mut environments {
            env.freeze.extend(freeze.iter().cloned());
            env.app = app.clone().flatten();
            env.shared_per_environment = per_environment.unwrap_or(false);
        }
        environments
    });
    let environments_location = root
        .key("environments")
        .map_or_else(|| reader.location(root), |key| Location::new(reader.source, key.span));
    Some(PromotionConfig {
        source: reader.source.clone(),
        app: app?,
        manifests: manifests?,
        shared_per_environment: per_environment?,
        topology: topology?,
        environments: environments?,
        ordering,
        max_plan_age: max_plan_age?,
        environments_location,
    })
}

/// Where the manifests are, read leniently from a plan file that has other
/// problems, so that problems in the manifests can still be reported in
/// the same run.
pub fn manifest_source_lenient(source: &SourceFile) -> Option<ManifestSource> {
    let documents = yaml::parse_documents(source).ok()?;
    let manifests = documents.first()?.get("manifests")?;
    let text = |key: &str| manifests.get(key).and_then(Node::as_str).map(str::to_owned);
    Some(ManifestSource {
        repository: text("repository").unwrap_or_else(|| ".".to_owned()),
        path: text("path")?,
        path_location: None,
        revision: text("revision").unwrap_or_else(|| "HEAD".to_owned()),
    })
}

fn read_manifests(reader: &mut Reader, node: &Node) -> Option<ManifestSource> {
    reader.mapping(node, "`manifests`", MANIFEST_KEYS)?;
    let repository = reader.optional_string(node, "repository", "`manifests.repository`");
    let path_node = reader.required(node, "path", "`manifests`");
    let path = path_node.and_then(|p| reader.string(p, "`manifests.path`"));
    let revision = reader.optional_string(node, "revision", "`manifests.revision`");
    Some(ManifestSource {
        repository: repository.unwrap_or_else(|| ".".to_owned()),
        path: path?,
        path_location: path_node.map(|p| reader.location(p)),
        revision: revision.unwrap_or_else(|| "HEAD".to_owned()),
    })
}

fn read_topology(reader: &mut Reader, node: &Node) -> Option<Topology> {
    match node.as_str() {
        Some("org-per-env") => Some(Topology::OrgPerEnv),
        Some("gvc-per-env") => Some(Topology::GvcPerEnv),
        _ => {
            reader.invalid(
                node,
                "`topology` must be `org-per-env` or `gvc-per-env`",
                "unknown topology",
                "org-per-env: one org per environment; gvc-per-env: one org, one GVC per environment",
            );
            None
        }
    }
}

fn read_environments(reader: &mut Reader, node: &Node, topology: Topology) -> Vec<Environment> {
    let items = reader.list(node, "`environments`");
    if items.is_empty() && node.items().is_some() {
        reader.invalid(
            node,
            "no environments are declared",
            "empty",
            "declare the environments in promotion order",
        );
    }
    let last = items.len().saturating_sub(1);
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| read_environment(reader, item, topology, index == last))
        .collect()
}

fn read_environment(
    reader: &mut Reader,
    node: &Node,
    topology: Topology,
    is_last: bool,
) -> Option<Environment> {
    reader.mapping(node, "an environment", ENVIRONMENT_KEYS)?;
    let name_node = reader.required(node, "name", "an environment");
    let name = name_node.and_then(|n| reader.string(n, "the environment's `name`"));
    let what = name
        .as_ref()
        .map_or_else(|| "the environment".to_owned(), |n| format!("environment `{n}`"));
    if let (Some(name), Some(name_node)) = (&name, name_node) {
        check_name(reader, name_node, name, "environment name");
    }
    let from = reader.optional_string(node, "from", &format!("`from` of {what}"));
    let org = reader.required(node, "org", &what).and_then(|n| {
        let org = reader.string(n, &format!("`org` of {what}"))?;
        check_name(reader, n, &org, "org name");
        Some(org)
    });
    let gvc = reader.required(node, "gvc", &what).and_then(|n| {
        let gvc = reader.string(n, &format!("`gvc` of {what}"))?;
        check_name(reader, n, &gvc, "GVC name");
        Some(gvc)
    });
    let endpoint = match node.get("endpoint") {
        Some(n) => read_endpoint(reader, n, &what).map(Some),
        None => Some(None),
    };
    let token_env =
        reader.required(node, "tokenEnv", &what).and_then(|n| read_token_env(reader, n, &what));
    let images = read_images(reader, node.get("images"), topology, &what);
    let pin_external = node
        .get("images")
        .and_then(|images| images.get("pinExternal"))
        .map_or(Some(false), |n| reader.boolean(n, &format!("`images.pinExternal` of {what}")));
    let registry = node.get("registry").map(|n| read_registry(reader, n, &what));
    let readiness = node
        .get("readiness")
        .map_or(Some(Readiness::default()), |n| read_readiness(reader, n, &what));
    let overrides =
        node.get("overrides").map(|n| read_overrides(reader, n, &what)).unwrap_or_default();
    let immutable_tags = node
        .get("immutableTags")
        .map_or(Some(is_last), |n| reader.boolean(n, &format!("`immutableTags` of {what}")));
    let require_approval = node
        .get("requireApproval")
        .map_or(Some(false), |n| reader.boolean(n, &format!("`requireApproval` of {what}")));
    let history_limit = node
        .get("historyLimit")
        .map_or(Some(20), |n| reader.count(n, &format!("`historyLimit` of {what}"), 1));
    let max_deletes = match node.get("prune") {
        Some(prune) => read_prune(reader, prune, &what),
        None => Some(None),
    };
    let copy_missing_images = match node.get("rollback") {
        Some(rollback) => read_rollback(reader, rollback, &what),
        None => Some(false),
    };
    let freeze = node
        .get("freeze")
        .map(|n| super::freeze::read_freeze(reader, n, &what))
        .unwrap_or_default();
    let org = org?;
    Some(Environment {
        location: reader.location(name_node?),
        name: name?,
        from,
        registry: registry
            .unwrap_or_else(|| Some(DEFAULT_REGISTRY.to_owned()))?
            .replace("{org}", &org),
        org,
        gvc: gvc?,
        endpoint: endpoint?,
        token_env: token_env?,
        images: images?,
        readiness: readiness?,
        overrides,
        immutable_tags: immutable_tags?,
        pin_external: pin_external?,
        require_approval: require_approval?,
        history_limit: history_limit?,
        max_deletes: max_deletes?,
        copy_missing_images: copy_missing_images?,
        freeze,
        app: None,
        shared_per_environment: false,
    })
}

/// `rollback: {copyMissingImages: BOOL}`; `false` when left out.
fn read_rollback(reader: &mut Reader, node: &Node, what: &str) -> Option<bool> {
    reader.mapping(node, &format!("`rollback` of {what}"), ROLLBACK_KEYS)?;
    node.get("copyMissingImages").map_or(Some(false), |n| {
        reader.boolean(n, &format!("`rollback.copyMissingImages` of {what}"))
    })
}

/// `prune: {maxDeletes: N}`; `Some(None)` when the key is left out.
fn read_prune(reader: &mut Reader, node: &Node, what: &str) -> Option<Option<MaxDeletes>> {
    reader.mapping(node, &format!("`prune` of {what}"), PRUNE_KEYS)?;
    let Some(count_node) = node.get("maxDeletes") else { return Some(None) };
    let count = reader.count(count_node, &format!("`prune.maxDeletes` of {what}"), 0)?;
    Some(Some(MaxDeletes { count, location: reader.location(count_node) }))
}

/// `sharedResources: shared | perEnvironment`: whether the org-level
/// secrets and policies of a gvc-per-env pipeline are one object for every
/// environment (`shared`, the default) or copied per environment.
fn read_shared_resources(reader: &mut Reader, node: &Node, topology: Topology) -> Option<bool> {
    let value = reader.string(node, "`sharedResources`")?;
    let per_environment = match value.as_str() {
        "shared" => false,
        "perEnvironment" => true,
        _ => {
            reader.invalid(
                node,
                format!("`sharedResources` must be `shared` or `perEnvironment`, not `{value}`"),
                "unknown value",
                "`perEnvironment` gives each environment its own copy of the org-level secrets and policies (docs/promotion-file.md, \"Shared resources\")",
            );
            return None;
        }
    };
    if per_environment && topology != Topology::GvcPerEnv {
        reader.invalid(
            node,
            "`sharedResources: perEnvironment` is for `topology: gvc-per-env`",
            "only with gvc-per-env",
            "with org-per-env every environment has its own org, and nothing is shared",
        );
        return None;
    }
    Some(per_environment)
}

/// `app`: a name for the app this plan file releases, when several share
/// an org (docs/apps.md): a DNS label of at most 30 characters, without
/// `--` (which separates it from the environment in resource names).
fn read_app(reader: &mut Reader, node: &Node) -> Option<String> {
    let app = reader.string(node, "`app`")?;
    let label = !app.is_empty()
        && app.len() <= 30
        && app.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !app.starts_with('-')
        && !app.ends_with('-')
        && !app.contains("--");
    if label {
        return Some(app);
    }
    reader.invalid(
        node,
        format!("invalid app name `{app}`"),
        "not an app name",
        "lowercase letters, digits and single inner hyphens, at most 30 characters (`shop`, `billing-api`): it is part of the tags and names of Ferry's records",
    );
    None
}

fn check_name(reader: &mut Reader, node: &Node, name: &str, what: &str) {
    if let Err(reason) = naming::check_resource_name(name) {
        reader.invalid(
            node,
            format!("invalid {what} `{name}`: {reason}"),
            "invalid name",
            naming::NAME_HELP,
        );
    }
}

fn read_endpoint(reader: &mut Reader, node: &Node, what: &str) -> Option<String> {
    let endpoint = reader.string(node, &format!("`endpoint` of {what}"))?;
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    if endpoint.starts_with("https://") || is_loopback_http(&endpoint) {
        Some(endpoint)
    } else {
        reader.invalid(
            node,
            format!("`endpoint` of {what} must use HTTPS"),
            "not HTTPS",
            "tokens are only sent over HTTPS; plain HTTP is allowed for 127.0.0.1, [::1] and localhost",
        );
        None
    }
}

/// Plain HTTP is allowed to loopback only (the simulator, tests).
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split('/').next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split(']').next().map_or(host, |h| h.trim_start_matches('['))
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host == "localhost"
        || host == "::1"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_registry(reader: &mut Reader, node: &Node, what: &str) -> Option<String> {
    let registry = reader.string(node, &format!("`registry` of {what}"))?;
    let Some(why) = super::host::registry_problem(&registry) else { return Some(registry) };
    reader.invalid(
        node,
        format!("`registry` of {what} is not a registry host: {why}"),
        "expected HOST or HOST:PORT",
        "write the registry as image references name it, such as `{org}.registry.cpln.io` (the default) or `registry.example.com:5000`; `{org}` is replaced by the environment's org",
    );
    None
}

fn read_token_env(reader: &mut Reader, node: &Node, what: &str) -> Option<String> {
    let name = reader.string(node, &format!("`tokenEnv` of {what}"))?;
    let is_variable_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_variable_name {
        return Some(name);
    }
    // Never echo what may be a real token: no source snippet, only the
    // position.
    let position = reader.location(node).describe();
    reader.problem(
        Problem::new(
            "ferry::config::invalid-value",
            format!("`tokenEnv` of {what} must name an environment variable (at {position}; value not shown)"),
        )
        .help("write the variable's name, such as CPLN_TOKEN_PROD; tokens never belong in files kept in git"),
    );
    None
}

fn read_images(
    reader: &mut Reader,
    node: Option<&Node>,
    topology: Topology,
    what: &str,
) -> Option<ImageStrategy> {
    let Some(node) = node else {
        return Some(match topology {
            Topology::OrgPerEnv => ImageStrategy::Copy,
            Topology::GvcPerEnv => ImageStrategy::None,
        });
    };
    let (strategy_node, secret) = if node.as_str().is_some() {
        (node, None)
    } else {
        reader.mapping(node, &format!("`images` of {what}"), IMAGE_KEYS)?;
        match node.get("strategy") {
            Some(strategy) => (strategy, node.get("pullSecret")),
            // `{pinExternal: true}` alone keeps the topology's strategy.
            None if node.get("pullSecret").is_none() => {
                return read_images(reader, None, topology, what);
            }
            None => (reader.required(node, "strategy", &format!("`images` of {what}"))?, None),
        }
    };
    let strategy = match strategy_node.as_str() {
        Some("copy") => ImageStrategy::Copy,
        Some("none") => ImageStrategy::None,
        Some("pull-secret") => {
            let Some(secret) = secret else {
                reader.invalid(
                    strategy_node,
                    format!("`pull-secret` in {what} needs the secret's name"),
                    "which secret?",
                    "add `pullSecret: NAME`, the docker secret attached to the GVC",
                );
                return None;
            };
            let name = reader.string(secret, "`images.pullSecret`")?;
            check_name(reader, secret, &name, "pull secret name");
            ImageStrategy::PullSecret { secret: name }
        }
        _ => {
            reader.invalid(
                strategy_node,
                format!("unknown image strategy in {what}"),
                "unknown strategy",
                "use `copy`, `pull-secret` (with `pullSecret: NAME`) or `none`",
            );
            return None;
        }
    };
    if let (Some(secret), false) = (secret, matches!(strategy, ImageStrategy::PullSecret { .. })) {
        reader.invalid(
            secret,
            "`pullSecret` is only used with `strategy: pull-secret`",
            "unused",
            "remove it, or set `strategy: pull-secret`",
        );
    }
    if topology == Topology::GvcPerEnv && strategy != ImageStrategy::None {
        reader.invalid(
            strategy_node,
            format!(
                "{what} cannot move images: with gvc-per-env every environment shares one registry"
            ),
            "nothing to move",
            "use `images: none` (the default for gvc-per-env)",
        );
        return None;
    }
    Some(strategy)
}

fn read_readiness(reader: &mut Reader, node: &Node, what: &str) -> Option<Readiness> {
    reader.mapping(node, &format!("`readiness` of {what}"), READINESS_KEYS)?;
    let defaults = Readiness::default();
    let interval = node
        .get("interval")
        .map_or(Some(defaults.interval), |n| reader.duration(n, "`readiness.interval`"));
    let timeout = node
        .get("timeout")
        .map_or(Some(defaults.timeout), |n| reader.duration(n, "`readiness.timeout`"));
    let checks = node.get("consecutiveChecks").map_or(Some(defaults.consecutive_checks), |n| {
        reader.count(n, "`readiness.consecutiveChecks`", 1)
    });
    let readiness =
        Readiness { interval: interval?, timeout: timeout?, consecutive_checks: checks? };
    if readiness.interval >= readiness.timeout {
        reader.invalid(
            node.get("timeout").unwrap_or(node),
            format!("readiness timeout of {what} is not longer than its interval"),
            "too short",
            "the timeout must leave room for several checks",
        );
        return None;
    }
    Some(readiness)
}

fn read_overrides(reader: &mut Reader, node: &Node, what: &str) -> Vec<OverrideSource> {
    let mut overrides = Vec::new();
    for item in reader.list(node, &format!("`overrides` of {what}")) {
        if item.get("file").is_some() {
            if reader.mapping(item, "a file override", FILE_OVERRIDE_KEYS).is_none() {
                continue;
            }
            if let Some(file) = item.get("file")
                && let Some(path) = reader.string(file, "`file`")
            {
                if is_absolute(&path) {
                    reader.invalid(
                        file,
                        format!("override file of {what} is an absolute path"),
                        "absolute path",
                        "write the path relative to the plan file; override files stay inside the repository",
                    );
                    continue;
                }
                overrides.push(OverrideSource::File { path, location: reader.location(file) });
            }
            continue;
        }
        if reader.mapping(item, "an inline override", INLINE_OVERRIDE_KEYS).is_none() {
            continue;
        }
        let target = read_target(reader, item, "an inline override");
        let patch = reader.required(item, "patch", "an inline override");
        if let Some(patch) = patch.filter(|p| p.entries().is_none()) {
            reader.wrong_type(patch, "`patch`", "a mapping of the fields to change");
            continue;
        }
        if let (Some(target), Some(patch)) = (target, patch) {
            overrides.push(OverrideSource::Inline(Patch {
                target,
                patch: patch.clone(),
                location: reader.location(item),
            }));
        }
    }
    overrides
}

/// An absolute path on any system the plan file may be read on (`/x`,
/// `\\server\x`, `C:\x`, `C:/x`).
fn is_absolute(path: &str) -> bool {
    let drive = path.as_bytes();
    path.starts_with(['/', '\\'])
        || (drive.len() >= 3
            && drive[0].is_ascii_alphabetic()
            && drive[1] == b':'
            && matches!(drive[2], b'/' | b'\\'))
}

/// `kind` and `name` of a patch's target.
pub(super) fn read_target(reader: &mut Reader, node: &Node, what: &str) -> Option<ResourceId> {
    let kind_node = reader.required(node, "kind", what)?;
    let kind_text = reader.string(kind_node, "`kind`")?;
    let name = reader.required(node, "name", what).and_then(|n| reader.string(n, "`name`"));
    let Some(kind) = crate::manifest::Kind::parse(&kind_text) else {
        reader.invalid(
            kind_node,
            format!("unknown kind `{kind_text}`"),
            "not a kind",
            format!("known kinds: {}", crate::manifest::Kind::names()),
        );
        return None;
    };
    Some(ResourceId::new(kind, name?))
}

fn read_ordering(reader: &mut Reader, node: &Node) -> Vec<OrderRule> {
    let mut rules = Vec::new();
    for item in reader.list(node, "`ordering`") {
        if reader.mapping(item, "an ordering rule", ORDER_KEYS).is_none() {
            continue;
        }
        let first =
            reader.required(item, "first", "an ordering rule").and_then(|n| read_id(reader, n));
        let Some(then_node) = reader.required(item, "then", "an ordering rule") else { continue };
        let thens: Vec<&Node> = match then_node.items() {
            Some(items) => items.iter().collect(),
            None => vec![then_node],
        };
        for then_node in thens {
            if let (Some((first, first_node)), Some((then, _))) =
                (first.clone(), read_id(reader, then_node))
            {
                rules.push(OrderRule {
                    first,
                    then,
                    first_location: reader.location(first_node),
                    then_location: reader.location(then_node),
                });
            }
        }
    }
    rules
}

fn read_id<'n>(reader: &mut Reader, node: &'n Node) -> Option<(ResourceId, &'n Node)> {
    let text = reader.string(node, "a resource in `ordering`")?;
    match text.parse::<ResourceId>() {
        Ok(id) => Some((id, node)),
        Err(_) => {
            reader.invalid(
                node,
                format!("`{text}` is not a resource"),
                "expected KIND/NAME",
                format!(
                    "write it as KIND/NAME, such as workload/api; kinds: {}",
                    crate::manifest::Kind::names()
                ),
            );
            None
        }
    }
}

/// Rules that involve several environments.
fn check_environments(config: &PromotionConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut by_name: HashMap<&str, &Environment> = HashMap::new();
    let mut by_place: HashMap<(&str, &str), &Environment> = HashMap::new();
    for (index, env) in config.environments.iter().enumerate() {
        if let Some(first) = by_name.insert(&env.name, env) {
            problems.push(
                Problem::new(
                    "ferry::config::duplicate-environment",
                    format!("environment `{}` is declared twice", env.name),
                )
                .at(env.location.clone(), "declared again here")
                .note(first.location.clone(), "first declared here")
                .help("give every environment its own name"),
            );
        }
        if let Some(other) = by_place.insert((&env.org, &env.gvc), env) {
            problems.push(
                Problem::new(
                    "ferry::config::same-place",
                    format!(
                        "environments `{}` and `{}` both target org `{}`, GVC `{}`",
                        other.name, env.name, env.org, env.gvc
                    ),
                )
                .at(env.location.clone(), "this environment")
                .note(other.location.clone(), "the other one")
                .help(
                    "each environment needs its own org (org-per-env) or its own GVC (gvc-per-env)",
                ),
            );
        }
        if let Some(from) = &env.from {
            let source = config.environments.iter().position(|e| &e.name == from);
            let problem = match source {
                _ if from == &env.name => Some((
                    format!("environment `{}` is promoted from itself", env.name),
                    "promote from an earlier environment".to_owned(),
                )),
                None => Some((
                    format!(
                        "environment `{}` is promoted from unknown environment `{from}`",
                        env.name
                    ),
                    format!("declared environments: {}", config.environment_names().join(", ")),
                )),
                Some(i) if i > index => Some((
                    format!(
                        "environment `{}` is promoted from `{from}`, which comes after it",
                        env.name
                    ),
                    "environments are listed in promotion order; promote from an earlier one"
                        .to_owned(),
                )),
                Some(_) => None,
            };
            if let Some((message, help)) = problem {
                problems.push(
                    Problem::new("ferry::config::invalid-source", message)
                        .at(env.location.clone(), "this environment")
                        .help(help),
                );
            }
        }
    }
    check_topology(config, &mut problems);
    problems
}

fn check_topology(config: &PromotionConfig, problems: &mut Vec<Problem>) {
    let Some(first) = config.environments.first() else { return };
    for env in config.environments.iter().skip(1) {
        let (fits, name, help) = match config.topology {
            // Sharing org *and* GVC is reported as `same-place` already.
            Topology::OrgPerEnv => (
                config
                    .environments
                    .iter()
                    .take_while(|e| !std::ptr::eq(*e, env))
                    .all(|e| e.org != env.org || e.gvc == env.gvc),
                "org-per-env",
                "with org-per-env every environment has its own org; for one org with a GVC per environment, set `topology: gvc-per-env`",
            ),
            Topology::GvcPerEnv => (
                env.org == first.org,
                "gvc-per-env",
                "with gvc-per-env every environment lives in one org; for one org per environment, set `topology: org-per-env`",
            ),
        };
        if !fits {
            problems.push(
                Problem::new(
                    "ferry::config::topology",
                    format!(
                        "environment `{}` (org `{}`) does not fit the `{name}` topology",
                        env.name, env.org
                    ),
                )
                .at(env.location.clone(), "this environment")
                .note(first.location.clone(), "compared with this one")
                .help(help),
            );
        }
    }
}

impl OverrideSource {
    /// Where the override is declared.
    pub fn location(&self) -> &Location {
        match self {
            OverrideSource::Inline(patch) => &patch.location,
            OverrideSource::File { location, .. } => location,
        }
    }
}

/// Reads a file of patch documents (`kind`, `name`, then the fields to
/// change) named by an environment's `overrides`.
pub fn parse_patch_file(source: &SourceFile) -> Result<Vec<Patch>, Problems> {
    let documents = yaml::parse_documents(source).map_err(Problems::from)?;
    let mut reader = Reader::new(source);
    let mut patches = Vec::new();
    for document in &documents {
        if document.entries().is_none() {
            reader.wrong_type(
                document,
                "a patch document",
                "a mapping with `kind`, `name` and fields",
            );
            continue;
        }
        if let Some(target) = read_target(&mut reader, document, "a patch document") {
            patches.push(Patch {
                target,
                patch: document.clone(),
                location: reader.location(document),
            });
        }
    }
    reader.problems.into_result(patches)
}
