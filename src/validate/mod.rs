//! Checks that catch mistakes before they reach an environment: naming,
//! duplicates, GVC contradictions, dangling references, mutable tags,
//! duplicated container names. Pure; every problem is reported.

pub mod naming;
pub mod schema;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::config::{Environment, ManifestSource, PromotionConfig};
use crate::diagnostic::{Location, Problem, Severity};
use crate::manifest::image::{self, Source};
use crate::manifest::refs::references;
use crate::manifest::template::{self, GvcMention, Template};
use crate::manifest::yaml::Node;
use crate::manifest::{Kind, ManifestSet, Resource, ResourceId};

/// Every problem the manifests have for `env`.
pub fn check(manifests: &ManifestSet, config: &PromotionConfig, env: &Environment) -> Vec<Problem> {
    let mut problems = Vec::new();
    let defined = duplicates(manifests, &mut problems);
    let template = template::template(manifests);
    let gvc_names: HashSet<&str> = template.names().into_iter().collect();
    // One GVC per name: the same GVC defined twice is a duplicate (said
    // above, with both places), not several GVCs.
    let mut gvcs: Vec<&Resource> = Vec::new();
    for gvc in manifests.gvcs() {
        if gvcs.iter().all(|g| g.name != gvc.name) {
            gvcs.push(gvc);
        }
    }
    if let [_, second, ..] = gvcs.as_slice() {
        let names: Vec<String> = gvcs.iter().map(|g| format!("`{}`", g.name)).collect();
        problems.push(
            Problem::new(
                "ferry::validate::several-gvcs",
                format!("the manifests define {} GVCs ({})", gvcs.len(), names.join(", ")),
            )
            .at(second.location(), "another GVC")
            .help(format!(
                "an environment has one GVC (`{}` for {}); keep one `kind: gvc` document",
                env.gvc, env.name
            )),
        );
    }
    if let Template::Ambiguous(first) = &template {
        problems.push(ambiguous_template(first));
    }
    let other_gvc = |name: &str| match &template {
        Template::One { name: template, source } if *template != name => {
            Some(format!("the manifests' GVC is `{template}` ({})", source.describe()))
        }
        _ => None,
    };
    for resource in &manifests.resources {
        let body = resource.body();
        let subject = resource.id().to_string();
        let located = |found: Vec<Finding>| found.into_iter().map(|f| f.problem_in(resource));
        problems.extend(located(field_rules(resource.kind, &body, &subject)));
        if let Some(name) =
            resource.kind.is_gvc_scoped().then_some(resource.gvc.as_deref()).flatten()
            && let Some(why) = other_gvc(name)
        {
            let node = resource.node.get("gvc").unwrap_or(&resource.node);
            let template = template.name().unwrap_or_default();
            problems.push(
                Problem::new(
                    "ferry::validate::gvc-mismatch",
                    format!("{} says `gvc: {name}`, but {why}", resource.id()),
                )
                .at(resource.location_of(node), "another GVC")
                .help(format!(
                    "write `gvc: {template}` or remove the field: Ferry renders the template GVC `{template}` as each environment's GVC"
                )),
            );
        }
        for reference in references(resource) {
            let exists = if reference.target.kind == Kind::Gvc {
                gvc_names.contains(reference.target.name.as_str())
            } else {
                defined.contains_key(&reference.target)
            };
            let wrong_gvc = reference.gvc.and_then(|g| other_gvc(g).map(|why| (g, why)));
            if let Some((gvc, why)) = wrong_gvc {
                let template = template.name().unwrap_or_default();
                problems.push(
                    Problem::new(
                        "ferry::validate::dangling-reference",
                        format!(
                            "{} refers to {} in GVC `{gvc}`, but {why}",
                            resource.id(),
                            reference.target
                        ),
                    )
                    .at(resource.location_of(reference.node), "another GVC")
                    .help(format!(
                        "use `//gvc/{template}/{}/{}`: Ferry renders the template GVC `{template}` as each environment's GVC",
                        reference.target.kind, reference.target.name
                    )),
                );
            } else if !exists {
                problems.push(dangling(
                    resource,
                    reference.node,
                    &reference.target,
                    &reference.field,
                    manifests,
                ));
            }
        }
        problems.extend(located(container_rules(&body, &subject, env)));
    }
    for rule in &config.ordering {
        for (id, location) in
            [(&rule.first, &rule.first_location), (&rule.then, &rule.then_location)]
        {
            if !defined.contains_key(id) {
                problems.push(
                    Problem::new(
                        "ferry::validate::unknown-ordering-target",
                        format!("`ordering` names {id}, which no manifest defines"),
                    )
                    .at(location.clone(), "not in the manifests")
                    .help("fix the name, or remove the rule"),
                );
            }
        }
    }
    problems
}

/// A manifest set without a single resource: an error, since applying it
/// (with `--prune`) would delete everything Ferry manages. `at` says where
/// the folder was read (a revision, or the work tree).
pub fn no_resources(spec: &ManifestSource, at: &str) -> Problem {
    Problem::new(
        "ferry::validate::no-resources",
        format!("no resources in `{}` at {at}", spec.path),
    )
    .at_opt(spec.path_location.clone(), "holds no manifest")
    .help("Ferry reads the *.yaml and *.yml files of this folder (relative to `manifests.repository`); check the path, and that the manifests are committed at that revision (--worktree reads the files on disk instead)")
}

/// Records every resource; a second definition of the same kind and name
/// is a problem.
fn duplicates<'a>(
    manifests: &'a ManifestSet,
    problems: &mut Vec<Problem>,
) -> HashMap<ResourceId, &'a Resource> {
    let mut seen: HashMap<ResourceId, &Resource> = HashMap::new();
    for resource in &manifests.resources {
        if let Some(first) = seen.get(&resource.id()) {
            problems.push(
                Problem::new(
                    "ferry::validate::duplicate",
                    format!("{} is defined twice", resource.id()),
                )
                .at(resource.location(), "defined again here")
                .note(first.location(), "first defined here")
                .help(format!(
                    "first definition: {}; keep one document per resource",
                    first.location().describe()
                )),
            );
        } else {
            seen.insert(resource.id(), resource);
        }
    }
    seen
}

/// No `kind: gvc` document, and the manifests name several GVCs: which
/// one is the template is not Ferry's guess to make.
fn ambiguous_template(first: &[GvcMention<'_>]) -> Problem {
    let names: Vec<String> = first.iter().map(|m| format!("`{}`", m.name)).collect();
    let what = if first.iter().any(|m| m.field) { "`gvc:` fields" } else { "links" };
    let mut problem = Problem::new(
        "ferry::validate::several-gvcs",
        format!(
            "the manifests' {what} name {} GVCs ({}), and no `kind: gvc` document says which is theirs",
            first.len(),
            names.join(", ")
        ),
    );
    if let [template, second, more @ ..] = first {
        problem = problem
            .at(second.resource.location_of(second.node), "another GVC")
            .note(template.resource.location_of(template.node), "the first GVC named");
        for other in more {
            problem = problem.note(other.resource.location_of(other.node), "another GVC");
        }
    }
    problem.help("manifests are written for one GVC, which Ferry renders as each environment's GVC: name one GVC in every `gvc:` field and link, or add the `kind: gvc` document that says which")
}

fn dangling(
    resource: &Resource,
    node: &Node,
    target: &ResourceId,
    field: &str,
    manifests: &ManifestSet,
) -> Problem {
    let same_kind =
        manifests.resources.iter().filter(|r| r.kind == target.kind).map(|r| r.name.as_str());
    let suggestion = crate::diagnostic::did_you_mean(&target.name, same_kind)
        .map_or(String::new(), |s| format!("did you mean `{s}`? "));
    Problem::new(
        "ferry::validate::dangling-reference",
        format!("{} refers to {target}, which no manifest defines", resource.id()),
    )
    .at(resource.location_of(node), format!("{field} points nowhere"))
    .help(format!(
        "{suggestion}add a `kind: {}` manifest named `{}`, or fix the reference",
        target.kind, target.name
    ))
}

/// A mutable reference that stays mutable in `env`: an external one that
/// `images.pinExternal` pins to a digest does not.
fn mutable_in(env: &Environment, text: &str) -> bool {
    let image = image::classify(text, Some(env.own_registry()));
    let pinned = env.pin_external && matches!(image.source, Source::External { .. });
    image.is_mutable() && !pinned
}

/// A rule broken in a resource's body: a field, by JSON pointer, and what
/// is wrong with it. The same rules run on what is written (located in the
/// manifest) and on what is rendered for an environment (located in the
/// override that brought the problem in; see `render`).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub code: &'static str,
    /// JSON pointer to the field.
    pub path: String,
    /// The problem is the key at `path`, not its value.
    pub on_key: bool,
    pub message: String,
    /// What the snippet says at the field.
    pub label: String,
    pub help: String,
    pub severity: Severity,
    /// An earlier field this one clashes with (a duplicate's first).
    pub first: Option<String>,
}

impl Finding {
    fn new(code: &'static str, path: String, message: String, label: &str, help: &str) -> Self {
        Finding {
            code,
            path,
            on_key: false,
            message,
            label: label.to_owned(),
            help: help.to_owned(),
            severity: Severity::Error,
            first: None,
        }
    }

    /// As a problem located at `location` (where the field is written);
    /// `first` locates [`Finding::first`].
    pub fn problem(&self, message: String, location: Location, first: Option<Location>) -> Problem {
        let mut problem =
            Problem::new(self.code, message).at(location, &self.label).help(&self.help);
        if let Some(first) = first {
            problem = problem.note(first, "first one");
        }
        if self.severity == Severity::Warning {
            problem = problem.warning();
        }
        problem
    }

    /// As a problem located in the written manifest.
    fn problem_in(&self, resource: &Resource) -> Problem {
        let first = self.first.as_ref().map(|f| resource.location_at(f, false));
        self.problem(self.message.clone(), resource.location_at(&self.path, self.on_key), first)
    }
}

/// Every rule a body must follow wherever it comes from: Control Plane's
/// field types, ranges and enumerations (`schema`), the resource's name,
/// and its containers' names, env names and image tags. `subject` names
/// the resource in messages (`workload/api`).
pub fn body_rules(kind: Kind, body: &Value, subject: &str, env: &Environment) -> Vec<Finding> {
    let mut found = field_rules(kind, body, subject);
    found.extend(container_rules(body, subject, env));
    found
}

/// Field types (`schema`) and the resource's name.
fn field_rules(kind: Kind, body: &Value, subject: &str) -> Vec<Finding> {
    let mut found: Vec<Finding> = schema::check(kind, body)
        .iter()
        .map(|v| {
            let problem = schema::problem(v, subject, None);
            Finding {
                code: problem.code,
                path: v.path.clone(),
                on_key: v.on_key,
                message: problem.message.clone(),
                label: v.field(),
                help: v.help.clone(),
                severity: v.severity,
                first: None,
            }
        })
        .collect();
    let check = match kind {
        Kind::Workload => naming::check_workload_name,
        Kind::Domain => naming::check_domain_name,
        _ => naming::check_resource_name,
    };
    if let Some(Err(reason)) =
        body.get("name").and_then(Value::as_str).map(|n| (n, check(n))).map(|(name, checked)| {
            checked.map_err(|reason| format!("invalid {kind} name `{name}`: {reason}"))
        })
    {
        let help = if kind == Kind::Domain {
            "a domain's name is its host name"
        } else {
            naming::NAME_HELP
        };
        found.push(Finding::new(
            "ferry::validate::invalid-name",
            "/name".to_owned(),
            reason,
            "invalid name",
            help,
        ));
    }
    found
}

/// A workload's containers: unique valid names, valid env names, and no
/// mutable tag where `env` requires immutable ones.
fn container_rules(body: &Value, subject: &str, env: &Environment) -> Vec<Finding> {
    let mut found = Vec::new();
    if body.get("kind").and_then(Value::as_str) != Some("workload") {
        return found;
    }
    let containers = body.pointer("/spec/containers").and_then(Value::as_array);
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (index, container) in containers.into_iter().flatten().enumerate() {
        let at = format!("/spec/containers/{index}");
        let Some(name) = container.get("name").and_then(Value::as_str) else { continue };
        if let Some(first) = seen.insert(name, format!("{at}/name")) {
            let mut duplicate = Finding::new(
                "ferry::validate::duplicate-container",
                format!("{at}/name"),
                format!("{subject} has two containers named `{name}`"),
                "second container with this name",
                "container names must be unique within a workload",
            );
            duplicate.first = Some(first);
            found.push(duplicate);
        }
        if let Err(reason) = naming::check_container_name(name) {
            found.push(Finding::new(
                "ferry::validate::invalid-name",
                format!("{at}/name"),
                format!("invalid container name `{name}` in {subject}: {reason}"),
                "invalid name",
                "container names use lowercase letters, digits and `-`, at most 64 characters",
            ));
        }
        let vars = container.get("env").and_then(Value::as_array);
        for (j, var) in vars.into_iter().flatten().enumerate() {
            if let Some(Err(reason)) =
                var.get("name").and_then(Value::as_str).map(naming::check_env_name)
            {
                found.push(Finding::new(
                    "ferry::validate::invalid-env-name",
                    format!("{at}/env/{j}/name"),
                    format!("invalid environment variable name in {subject}: {reason}"),
                    "invalid name",
                    "use letters, digits, `-`, `.` and `_`; `CPLN_` is reserved",
                ));
            }
        }
        if let Some(image) = container.get("image").and_then(Value::as_str)
            && env.immutable_tags
            && mutable_in(env, image)
        {
            found.push(Finding::new(
                "ferry::validate::mutable-tag",
                format!("{at}/image"),
                format!("{subject} uses the mutable image `{image}`, but `{}` requires immutable tags", env.name),
                "mutable tag",
                "use an immutable tag (a version or commit SHA) or pin a digest (`NAME@sha256:…`); `latest` or no tag can change under a release",
            ));
        }
    }
    found
}
