//! Checks that catch mistakes before they reach an environment: naming,
//! duplicates, GVC contradictions, dangling references, mutable tags,
//! duplicated container names. Pure; every problem is reported.

pub mod naming;
pub mod schema;

use std::collections::{HashMap, HashSet};

use crate::config::{Environment, ManifestSource, PromotionConfig};
use crate::diagnostic::Problem;
use crate::manifest::image::{self, Source};
use crate::manifest::refs::references;
use crate::manifest::yaml::Node;
use crate::manifest::{Kind, ManifestSet, Resource, ResourceId};

/// Every problem the manifests have for `env`.
pub fn check(manifests: &ManifestSet, config: &PromotionConfig, env: &Environment) -> Vec<Problem> {
    let mut problems = Vec::new();
    let defined = duplicates(manifests, &mut problems);
    let gvc_names: HashSet<&str> =
        manifests.gvcs().map(|g| g.name.as_str()).chain([env.gvc.as_str()]).collect();
    let gvcs: Vec<&Resource> = manifests.gvcs().collect();
    if let [_, second, ..] = gvcs.as_slice() {
        problems.push(
            Problem::new(
                "ferry::validate::several-gvcs",
                format!("the manifests define {} GVCs", gvcs.len()),
            )
            .at(second.location(), "another GVC")
            .help(format!(
                "an environment has one GVC (`{}` for {}); keep one `kind: gvc` document",
                env.gvc, env.name
            )),
        );
    }
    for resource in &manifests.resources {
        problems.extend(
            schema::check(resource.kind, &resource.body())
                .iter()
                .map(|v| field_problem(resource, v)),
        );
        names(resource, &mut problems);
        gvc_field(resource, env, &mut problems);
        for reference in references(resource) {
            let exists = if reference.target.kind == Kind::Gvc {
                gvc_names.contains(reference.target.name.as_str())
            } else {
                defined.contains_key(&reference.target)
            };
            let wrong_gvc = reference.gvc.filter(|g| !gvc_names.contains(g));
            if let Some(gvc) = wrong_gvc {
                problems.push(
                    Problem::new(
                        "ferry::validate::dangling-reference",
                        format!(
                            "{} refers to {} in GVC `{gvc}`, which is not this environment's GVC",
                            resource.id(),
                            reference.target
                        ),
                    )
                    .at(resource.location_of(reference.node), "unknown GVC")
                    .help(format!(
                        "use `//gvc/{}/{}/{}`; Ferry rewrites GVC names per environment",
                        env.gvc, reference.target.kind, reference.target.name
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
        if resource.kind == Kind::Workload {
            containers(resource, env, &mut problems);
        }
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

/// A schema violation in a written manifest, located in its file.
pub fn field_problem(resource: &Resource, violation: &schema::Violation) -> Problem {
    let location = resource.location_at(&violation.path, violation.on_key);
    schema::problem(violation, &resource.id().to_string(), Some(location))
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

fn names(resource: &Resource, problems: &mut Vec<Problem>) {
    let check = match resource.kind {
        Kind::Workload => naming::check_workload_name,
        Kind::Domain => naming::check_domain_name,
        _ => naming::check_resource_name,
    };
    if let Err(reason) = check(&resource.name) {
        let help = if resource.kind == Kind::Domain {
            "a domain's name is its host name"
        } else {
            naming::NAME_HELP
        };
        problems.push(
            Problem::new(
                "ferry::validate::invalid-name",
                format!("invalid {} name `{}`: {reason}", resource.kind, resource.name),
            )
            .at(resource.location(), "invalid name")
            .help(help),
        );
    }
}

fn gvc_field(resource: &Resource, env: &Environment, problems: &mut Vec<Problem>) {
    let Some(gvc) = &resource.gvc else { return };
    let node = resource.node.get("gvc").unwrap_or(&resource.node);
    if !resource.kind.is_gvc_scoped() {
        return;
    }
    if gvc != &env.gvc {
        problems.push(
            Problem::new(
                "ferry::validate::gvc-mismatch",
                format!("{} says `gvc: {gvc}`, but environment `{}` uses GVC `{}`", resource.id(), env.name, env.gvc),
            )
            .at(resource.location_of(node), "contradicts the environment")
            .help("remove the `gvc:` field; Ferry places GVC-scoped resources in each environment's GVC"),
        );
    }
}

fn containers(resource: &Resource, env: &Environment, problems: &mut Vec<Problem>) {
    let containers =
        resource.node.path(&["spec", "containers"]).and_then(Node::items).unwrap_or_default();
    let mut seen: HashMap<&str, &Node> = HashMap::new();
    for container in containers {
        let Some(name_node) = container.get("name") else { continue };
        let Some(name) = name_node.as_str() else { continue };
        if let Some(first) = seen.insert(name, name_node) {
            problems.push(
                Problem::new(
                    "ferry::validate::duplicate-container",
                    format!("{} has two containers named `{name}`", resource.id()),
                )
                .at(resource.location_of(name_node), "second container with this name")
                .note(resource.location_of(first), "first one")
                .help("container names must be unique within a workload"),
            );
        }
        if let Err(reason) = naming::check_container_name(name) {
            problems.push(
                Problem::new(
                    "ferry::validate::invalid-name",
                    format!("invalid container name `{name}` in {}: {reason}", resource.id()),
                )
                .at(resource.location_of(name_node), "invalid name")
                .help(
                    "container names use lowercase letters, digits and `-`, at most 64 characters",
                ),
            );
        }
        for env_var in container.get("env").and_then(Node::items).unwrap_or_default() {
            let Some(var) = env_var.get("name") else { continue };
            if let Some(Err(reason)) = var.as_str().map(naming::check_env_name) {
                problems.push(
                    Problem::new(
                        "ferry::validate::invalid-env-name",
                        format!("invalid environment variable name in {}: {reason}", resource.id()),
                    )
                    .at(resource.location_of(var), "invalid name")
                    .help("use letters, digits, `-`, `.` and `_`; `CPLN_` is reserved"),
                );
            }
        }
        if env.immutable_tags
            && let Some(image_node) = container.get("image")
            && let Some(image) = image_node.as_str().filter(|i| mutable_in(env, i))
        {
            problems.push(mutable_tag(resource, image_node, image, env));
        }
    }
}

/// A mutable reference that stays mutable in `env`: an external one that
/// `images.pinExternal` pins to a digest does not.
fn mutable_in(env: &Environment, text: &str) -> bool {
    let image = image::classify(text, Some(env.own_registry()));
    let pinned = env.pin_external && matches!(image.source, Source::External { .. });
    image.is_mutable() && !pinned
}

fn mutable_tag(resource: &Resource, node: &Node, image: &str, env: &Environment) -> Problem {
    Problem::new(
        "ferry::validate::mutable-tag",
        format!("{} uses the mutable image `{image}`, but `{}` requires immutable tags", resource.id(), env.name),
    )
    .at(resource.location_of(node), "mutable tag")
    .help("use an immutable tag (a version or commit SHA) or pin a digest (`NAME@sha256:…`); `latest` or no tag can change under a release")
}
