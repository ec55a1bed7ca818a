//! The manifests as one environment must have them. Pure.
//!
//! For each resource: the inline `gvc:` is dropped (the environment decides
//! where GVC-scoped resources live); the `kind: gvc` document takes the
//! environment's GVC name; every link is rewritten for the environment's
//! org and written in full (`/org/ORG/…`, the form the API returns), a link
//! into the manifests' template GVC (`manifest::template`: the `kind: gvc`
//! document's name, else the one GVC the `gvc:` fields and links name)
//! naming the environment's GVC instead; so does every internal hostname
//! `WORKLOAD.TEMPLATE.cpln.local` in any string but a secret's payload
//! ([`hostnames`], which warns about what it leaves naming another GVC);
//! the environment's overrides are merged in; container images
//! are set to what is being promoted, in the form the image strategy
//! needs.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::config::{Environment, ImageStrategy, Patch, PromotionConfig, Topology};
use crate::diagnostic::{Location, Problem, Problems, Severity};
use crate::manifest::image::{self, Source};
use crate::manifest::{Kind, ManifestSet, Resource, ResourceId};
use crate::manifest::{link, template};
use crate::validate::{self, Finding, schema};

pub(crate) mod hostnames;

/// One resource ready to compare with live state and to apply.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub id: ResourceId,
    pub body: Value,
    /// Where the resource is defined in the manifests.
    pub location: Location,
    /// Warnings an override brought in (such as a field whose name is
    /// close to a known one): shown, they do not stop a run.
    pub warnings: Vec<Problem>,
}

impl Rendered {
    /// A rendered resource without warnings.
    pub fn new(id: ResourceId, body: Value, location: Location) -> Self {
        Rendered { id, body, location, warnings: Vec::new() }
    }
}

/// The image one container is promoted with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PromotedImage {
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`, when known (always, when promoting from live state).
    pub digest: Option<String>,
    /// The registry host the image is read from when it comes from another
    /// org (`pull-secret`); `None` for the environment's own registry.
    pub registry: Option<String>,
}

/// Images being promoted, by workload and container name.
pub type ImageMap = HashMap<(String, String), PromotedImage>;

/// An image from an external registry that the source environment runs:
/// never copied, never rewritten (pinned only with `images.pinExternal`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalImage {
    /// The reference as the source's workload has it.
    pub image: String,
    /// The digest it ran (`sha256:…`); `None` when the registry could not
    /// tell (unreachable, or refused).
    pub digest: Option<String>,
}

/// What a source environment runs, by workload and container name.
#[derive(Debug, Clone, Default)]
pub struct SourceImages {
    /// Images of the source's own registry: what moves.
    pub promoted: ImageMap,
    /// Images of external registries: what is recorded (and pinned).
    pub external: HashMap<(String, String), ExternalImage>,
}

/// Renders every resource for `env`. `source_registry` is the registry
/// host images are pulled from with the `pull-secret` strategy.
///
/// `shared_gvcs` (gvc-per-env: every environment's GVC, in order) makes
/// org-scoped resources, which all environments of the org share, render
/// the same for each: a list of links into the manifests' GVC names every
/// environment's GVC, a single link names the last environment's, and the
/// resource is marked as shared.
pub fn render(
    manifests: &ManifestSet,
    env: &Environment,
    shared_gvcs: Option<&[String]>,
    patches: &[Patch],
    images: &SourceImages,
    source_registry: Option<&str>,
) -> Result<Vec<Rendered>, Problems> {
    let mut rendered = Vec::with_capacity(manifests.resources.len());
    let mut problems =
        render_each(manifests, env, shared_gvcs, patches, images, source_registry, |r| {
            rendered.push(r);
        });
    if problems.has_errors() {
        problems.extend(rendered.into_iter().flat_map(|r| r.warnings));
        return Err(problems);
    }
    problems.into_result(rendered)
}

/// [`render`], handing each resource to `each` as soon as it is rendered
/// instead of keeping them all; the problems found.
fn render_each(
    manifests: &ManifestSet,
    env: &Environment,
    shared_gvcs: Option<&[String]>,
    patches: &[Patch],
    images: &SourceImages,
    source_registry: Option<&str>,
    mut each: impl FnMut(Rendered),
) -> Problems {
    let manifest_gvcs = template::template(manifests).names();
    let own_gvc = [env.gvc.clone()];
    let copies = copies(manifests, env, shared_gvcs.is_some());
    let links = LinkRewrite {
        org: &env.org,
        gvcs: &own_gvc,
        manifest_gvcs: &manifest_gvcs,
        copies: &copies,
    };
    let shared_links = shared_gvcs.map(|gvcs| LinkRewrite {
        org: &env.org,
        gvcs,
        manifest_gvcs: &manifest_gvcs,
        copies: &copies,
    });
    let mut problems = Problems::default();
    for resource in &manifests.resources {
        let mut body = resource.body();
        let Some(object) = body.as_object_mut() else { continue };
        object.remove("gvc");
        let copy = copies.get(&(resource.kind.as_str().to_owned(), resource.name.clone()));
        let name = match copy {
            _ if resource.kind == Kind::Gvc => env.gvc.clone(),
            Some(copy) => copy.clone(),
            None => resource.name.clone(),
        };
        if name.len() > 63 {
            problems.push(
                Problem::new(
                    "ferry::render::copy-name",
                    format!(
                        "{}'s copy for {} would be named `{name}`, longer than the 63 characters a name may have",
                        resource.id(),
                        env.name
                    ),
                )
                .at(resource.location(), "copied per environment")
                .help("`sharedResources: perEnvironment` names each copy NAME-ENVIRONMENT: shorten the resource's name"),
            );
        }
        object.insert("name".to_owned(), Value::String(name.clone()));
        let is_shared = shared_links.is_some() && shares(resource.kind) && copy.is_none();
        let owner = match copy {
            Some(_) => env.scope(),
            None => owner(env, resource.kind, shared_links.is_some()),
        };
        let rewrite = match &shared_links {
            Some(shared_links) if is_shared => shared_links,
            _ => &links,
        };
        // Internal hostnames follow links: a shared resource names the
        // last environment's GVC, as a single link does.
        let host_gvc = rewrite.gvcs.last().unwrap_or(&env.gvc);
        // Managed tag, images and links: what makes a merged body the one
        // applied.
        let finish = |merged: &Value, problems: &mut Problems| {
            let mut body = merged.clone();
            mark_managed(&mut body, &owner);
            if resource.kind == Kind::Workload {
                set_images(
                    &mut body,
                    &resource.name,
                    env,
                    images,
                    source_registry,
                    problems,
                    resource.location(),
                );
            }
            rewrite.apply(&mut body);
            hostnames::rewrite_body(&mut body, resource.kind, &manifest_gvcs, host_gvc);
            body
        };
        let id = ResourceId::new(resource.kind, name);
        let mut checks = Checks::new(resource, &id, env);
        checks.rendered(&finish(&body, &mut Problems::default()), &mut problems);
        let mut applied = Vec::new();
        for patch in patches.iter().filter(|p| p.target == resource.id()) {
            let mut fields = patch.patch.to_json();
            let mut conflicts = identity_conflicts(resource, &fields);
            if let Some(fields) = fields.as_object_mut() {
                for key in ["kind", "name", "gvc"] {
                    fields.remove(key);
                }
            }
            conflicts.extend(merge(&mut body, &fields));
            for conflict in &conflicts {
                problems.push(unshown_if_secret(conflict.problem(resource, patch, env), patch));
            }
            let merged = finish(&body, &mut Problems::default());
            checks.patched(&merged, patch, &fields, &mut problems);
            applied.push((patch, fields));
        }
        let mut warnings = checks.warnings;
        warnings.extend(hostnames::problems(
            resource,
            &body,
            &applied,
            &manifest_gvcs,
            rewrite.gvcs,
        ));
        let body = finish(&body, &mut problems);
        each(Rendered { id, body, location: resource.location(), warnings });
    }
    problems
}

/// [`render`] for `env` of `config`: org-scoped resources shared by every
/// environment of a gvc-per-env pipeline, and images pulled with a pull
/// secret from `pull_from`, else from the environment's source's registry.
pub fn for_environment(
    config: &PromotionConfig,
    env: &Environment,
    manifests: &ManifestSet,
    patches: &[Patch],
    images: &SourceImages,
    pull_from: Option<&str>,
) -> Result<Vec<Rendered>, Problems> {
    let source_registry =
        pull_from.map(str::to_owned).or_else(|| config.source_of(env).map(|s| s.registry.clone()));
    let gvcs: Vec<String> = config.environments.iter().map(|e| e.gvc.clone()).collect();
    let shared = (config.topology == Topology::GvcPerEnv).then_some(gvcs.as_slice());
    render(manifests, env, shared, patches, images, source_registry.as_deref())
}

/// What [`for_environment`] finds wrong, without keeping what it renders
/// (`ferry validate` needs the problems only, and the rendered bodies of a
/// large manifest set would be the largest thing it holds): its errors
/// and warnings when it would fail, else the rendered resources' warnings.
pub fn problems_for_environment(
    config: &PromotionConfig,
    env: &Environment,
    manifests: &ManifestSet,
    patches: &[Patch],
    images: &SourceImages,
) -> Vec<Problem> {
    let source_registry = config.source_of(env).map(|s| s.registry.clone());
    let gvcs: Vec<String> = config.environments.iter().map(|e| e.gvc.clone()).collect();
    let shared = (config.topology == Topology::GvcPerEnv).then_some(gvcs.as_slice());
    let mut warnings = Vec::new();
    let mut problems =
        render_each(manifests, env, shared, patches, images, source_registry.as_deref(), |r| {
            warnings.extend(r.warnings);
        });
    if problems.has_errors() {
        problems.extend(warnings);
        problems.problems
    } else if !problems.is_empty() {
        problems.problems
    } else {
        warnings
    }
}

/// The rules of `validate` run again on what is rendered: each problem an
/// override brings in is reported at that override; a problem rendering
/// alone brings in (not in the manifest as written) at the resource.
struct Checks<'a> {
    resource: &'a Resource,
    subject: String,
    env: &'a Environment,
    /// `(code, field)` of what the written manifest breaks already
    /// (reported by `validate` at the manifest).
    written: HashSet<(&'static str, String)>,
    /// What the body broke before the current override.
    before: Vec<Finding>,
    /// Warnings overrides brought in.
    warnings: Vec<Problem>,
}

impl<'a> Checks<'a> {
    fn new(resource: &'a Resource, id: &ResourceId, env: &'a Environment) -> Self {
        let written =
            validate::body_rules(resource.kind, &resource.body(), &resource.id().to_string(), env)
                .into_iter()
                .map(|f| (f.code, f.path))
                .collect();
        let subject = id.to_string();
        Checks { resource, subject, env, written, before: Vec::new(), warnings: Vec::new() }
    }

    fn rules(&self, body: &Value) -> Vec<Finding> {
        validate::body_rules(self.resource.kind, body, &self.subject, self.env)
    }

    /// The body rendered without overrides.
    fn rendered(&mut self, body: &Value, problems: &mut Problems) {
        self.before = self.rules(body);
        for found in self.before.iter().filter(|f| f.severity == Severity::Error) {
            if !self.written.contains(&(found.code, found.path.clone())) {
                let message = format!("as rendered for `{}`, {}", self.env.name, found.message);
                problems.push(found.problem(message, self.resource.location(), None));
            }
        }
    }

    /// The body rendered after `patch` (whose fields, as merged, are
    /// `fields`).
    fn patched(&mut self, body: &Value, patch: &Patch, fields: &Value, problems: &mut Problems) {
        let after = self.rules(body);
        for found in after.iter().filter(|f| !self.before.contains(f)) {
            let pointer = patch_pointer(fields, body, &found.path);
            let location = patch.location_at(&pointer, found.on_key && pointer == found.path);
            let message = format!("with the override of `{}`, {}", self.env.name, found.message);
            let problem = found
                .problem(message, location, None)
                .note(self.resource.location(), "in the resource it patches");
            let problem = unshown_if_secret(problem, patch);
            if problem.is_error() {
                problems.push(problem);
            } else {
                self.warnings.push(problem);
            }
        }
        self.before = after;
    }
}

/// A problem in an override of a secret is shown without a snippet (an
/// inline patch in the plan file is not masked as a manifest is, and may
/// hold the payload): its position goes into the message instead, and
/// every payload value of the file it points into is taken out of the
/// message and help first, since the location that would have redacted
/// them at display is gone.
fn unshown_if_secret(mut problem: Problem, patch: &Patch) -> Problem {
    if patch.target.kind == Kind::Secret
        && let Some(location) = problem.location.take()
    {
        problem.message = format!(
            "{} (at {}; not shown, as an override of a secret may hold its payload)",
            location.source.redact(&problem.message),
            location.describe()
        );
        problem.help = problem.help.take().map(|help| location.source.redact(&help));
    }
    problem
}

/// Where, in an override's fields, the field at `pointer` of the merged
/// `body` was set: lists merged by name are followed by the item's name.
/// As far as the override goes (its closest field) when it did not set it.
fn patch_pointer(fields: &Value, body: &Value, pointer: &str) -> String {
    let mut found = String::new();
    let (mut patch, mut body) = (fields, body);
    for step in pointer.split('/').skip(1) {
        let key = step.replace("~1", "/").replace("~0", "~");
        let next = match (patch, body) {
            (Value::Object(patch), Value::Object(body)) => {
                patch.get(&key).zip(body.get(&key)).map(|(p, b)| (p, b, key.clone()))
            }
            (Value::Array(patch), Value::Array(body)) => {
                let index = key.parse::<usize>().ok();
                let item = index.and_then(|i| body.get(i));
                let named = item.and_then(|i| i.get("name")).filter(|n| n.is_string());
                let position = match named {
                    Some(name) => patch.iter().position(|p| p.get("name") == Some(name)),
                    None => index.filter(|i| *i < patch.len()),
                };
                position.zip(item).map(|(p, b)| (&patch[p], b, p.to_string()))
            }
            _ => None,
        };
        let Some((next_patch, next_body, written)) = next else { break };
        found.push('/');
        found.push_str(&written.replace('~', "~0").replace('/', "~1"));
        (patch, body) = (next_patch, next_body);
    }
    found
}

/// Something an override would do that Ferry refuses: drop what it does
/// not name, or change the resource's `kind`, `name` or `gvc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub code: &'static str,
    /// JSON pointer into the override's fields.
    pub at: String,
    /// The problem is the key at `at`.
    pub on_key: bool,
    pub message: String,
    pub help: String,
}

impl Conflict {
    fn problem(&self, resource: &Resource, patch: &Patch, env: &Environment) -> Problem {
        Problem::new(
            self.code,
            format!("the override of `{}` for {} {}", env.name, resource.id(), self.message),
        )
        .at(patch.location_at(&self.at, self.on_key), "in this override")
        .note(resource.location(), "the resource it patches")
        .help(self.help.clone())
    }
}

/// An override may not change what identifies the resource: a `kind`,
/// `name` or `gvc` other than the manifest's (a patch file names `kind`
/// and `name` to say which resource it patches).
fn identity_conflicts(resource: &Resource, fields: &Value) -> Vec<Conflict> {
    let mut found = Vec::new();
    for key in ["kind", "name", "gvc"] {
        let Some(value) = fields.get(key) else { continue };
        let written = match key {
            "kind" => Some(resource.kind.as_str()),
            "name" => Some(resource.name.as_str()),
            _ => resource.gvc.as_deref(),
        };
        if value.as_str() == written {
            continue;
        }
        let help = match key {
            "gvc" => {
                "remove `gvc` from the override: Ferry places GVC-scoped resources in the environment's GVC (`gvc` of the environment in the plan file)"
            }
            _ => {
                "remove it from the override; to rename a resource, rename it in the manifests (an override targets one resource by its `kind` and `name`)"
            }
        };
        found.push(Conflict {
            code: "ferry::validate::override-changes-identity",
            at: format!("/{key}"),
            on_key: false,
            message: format!("would change its `{key}` to {value}"),
            help: help.to_owned(),
        });
    }
    found
}

/// Every warning of `rendered` (see [`Rendered::warnings`]).
pub fn warnings(rendered: &[Rendered]) -> Vec<Problem> {
    rendered.iter().flat_map(|r| r.warnings.iter().cloned()).collect()
}

/// The owner of org-scoped resources that every environment of a
/// gvc-per-env pipeline shares (never pruned by one environment).
pub const SHARED: &str = "shared";

/// The value of the managed tag on a resource of `kind` in `env`: the
/// environment's name, or [`SHARED`] for an org-scoped resource (not the
/// GVC) when the pipeline's environments share their org (`shared`:
/// gvc-per-env); `APP/…` for a plan file that names its app.
pub fn owner(env: &Environment, kind: Kind, shared: bool) -> String {
    if shared && shares(kind) {
        crate::config::scoped(env.app.as_deref(), SHARED)
    } else {
        env.scope()
    }
}

/// The kinds `sharedResources: perEnvironment` copies per environment:
/// secrets and policies, the per-environment settings and grants; a
/// domain (its name is the DNS name), a cloud account or an agent stays
/// one object (docs/promotion-file.md, "Shared resources").
pub const COPIED_KINDS: &[Kind] = &[Kind::Secret, Kind::Policy];

/// With `sharedResources: perEnvironment` in a gvc-per-env pipeline
/// (`shared`), the name of `env`'s copy of each org-level secret and
/// policy of the manifests, by kind and manifest name: `NAME-ENV`.
fn copies(
    manifests: &ManifestSet,
    env: &Environment,
    shared: bool,
) -> HashMap<(String, String), String> {
    if !(shared && env.shared_per_environment) {
        return HashMap::new();
    }
    manifests
        .resources
        .iter()
        .filter(|r| COPIED_KINDS.contains(&r.kind))
        .map(|r| ((r.kind.as_str().to_owned(), r.name.clone()), format!("{}-{}", r.name, env.name)))
        .collect()
}

/// Whether a resource of `kind` is one object for every environment that
/// shares an org: org-scoped, and not the GVC.
fn shares(kind: Kind) -> bool {
    !kind.is_gvc_scoped() && kind != Kind::Gvc
}

/// Tags the resource as managed by Ferry for this environment, so that it
/// can be pruned once it leaves git.
fn mark_managed(body: &mut Value, env: &str) {
    let Some(object) = body.as_object_mut() else { return };
    let tags = object.entry("tags").or_insert_with(|| Value::Object(Map::new()));
    if let Some(tags) = tags.as_object_mut() {
        tags.insert(crate::plan::MANAGED_TAG.to_owned(), Value::String(env.to_owned()));
    }
}

/// Merges an override into a document: mappings merge key by key, lists
/// of named items merge by `name` (new names are appended; unnamed items of
/// the document are kept), other lists and scalars are replaced, and `null`
/// removes a key. What would drop something the override does not name is
/// not merged but returned: an item without `name` in a list merged by
/// name, an empty list over named items, or a mapping or named list
/// replaced by a value of another type.
pub fn merge(target: &mut Value, patch: &Value) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    merge_at(target, patch, "", &mut conflicts);
    conflicts
}

fn merge_at(target: &mut Value, patch: &Value, at: &str, conflicts: &mut Vec<Conflict>) {
    let drops = |message: String, help: &str| Conflict {
        code: "ferry::validate::override-drops-fields",
        at: at.to_owned(),
        on_key: false,
        message,
        help: help.to_owned(),
    };
    let field = schema::field_name(at);
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                if value.is_null() {
                    target.remove(key);
                } else if let Some(existing) = target.get_mut(key) {
                    merge_at(existing, value, &here, conflicts);
                } else {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(target), Value::Array(patch)) if named(target) || named(patch) => {
            merge_named(target, patch, at, conflicts);
        }
        (Value::Object(fields), patch) if !fields.is_empty() => {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            conflicts.push(drops(
                format!(
                    "would replace the mapping `{field}` with {}, dropping {}",
                    schema::type_name(patch),
                    names.join(", ")
                ),
                "patch the fields inside it; `FIELD: null` removes one field, `{field}: null` the whole mapping",
            ));
        }
        (Value::Array(items), patch) if named(items) => {
            conflicts.push(drops(
                format!(
                    "would replace the list `{field}` with {}, dropping {}",
                    schema::type_name(patch),
                    item_names(items)
                ),
                "write the items to change as a list, each with its `name`",
            ));
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// Merges a list by `name`. Each item of the override must name the item
/// it changes (or adds).
fn merge_named(target: &mut Vec<Value>, patch: &[Value], at: &str, conflicts: &mut Vec<Conflict>) {
    let field = schema::field_name(at);
    if patch.is_empty() {
        conflicts.push(Conflict {
            code: "ferry::validate::override-drops-fields",
            at: at.to_owned(),
            on_key: false,
            message: format!("sets `{field}` to an empty list, which would drop {}", item_names(target)),
            help: format!("`{field}` is merged by name: list the items to change, each with its `name`; to remove the whole list, write `null`"),
        });
        return;
    }
    for (index, item) in patch.iter().enumerate() {
        let here = format!("{at}/{index}");
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            conflicts.push(Conflict {
                code: "ferry::validate::override-drops-fields",
                at: here,
                on_key: false,
                message: format!(
                    "has an item without `name` in `{field}`, a list merged by name: Ferry cannot tell which item it changes, and replacing the list would drop {}",
                    item_names(target)
                ),
                help: "give the item the `name` of the one it changes, or a new name to add it".to_owned(),
            });
            continue;
        };
        let existing =
            target.iter_mut().find(|t| t.get("name").and_then(Value::as_str) == Some(name));
        match existing {
            Some(existing) => merge_at(existing, item, &here, conflicts),
            None => target.push(item.clone()),
        }
    }
}

/// A list with at least one mapping item that has a `name`: merged by name.
fn named(items: &[Value]) -> bool {
    items.iter().any(|i| i.get("name").is_some_and(Value::is_string))
}

/// The named items of a list, for messages: `DATABASE_URL, LOG_LEVEL`.
fn item_names(items: &[Value]) -> String {
    let names: Vec<String> = items
        .iter()
        .filter_map(|i| i.get("name").and_then(Value::as_str))
        .map(|n| format!("`{n}`"))
        .collect();
    if names.is_empty() { "its items".to_owned() } else { names.join(", ") }
}

fn set_images(
    body: &mut Value,
    workload: &str,
    env: &Environment,
    images: &SourceImages,
    source_registry: Option<&str>,
    problems: &mut Problems,
    location: Location,
) {
    let Some(containers) = body.pointer_mut("/spec/containers").and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in containers {
        let Some(name) = container.get("name").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        let Some(current) = container.get("image").and_then(Value::as_str).map(str::to_owned)
        else {
            continue;
        };
        let written = image::classify(&current, Some(env.own_registry()));
        let key = (workload.to_owned(), name.clone());
        if let Source::External { .. } = written.source {
            // The string in git is what runs; pinned only when asked.
            let ran = images.external.get(&key).filter(|_| env.pin_external);
            if let Some(pinned) = ran.and_then(|ran| pin_external(&current, ran))
                && let Some(object) = container.as_object_mut()
            {
                object.insert("image".to_owned(), Value::String(pinned));
            }
            continue;
        }
        let promoted = images.promoted.get(&key).cloned().or_else(|| {
            (written.source == Source::Own).then(|| PromotedImage {
                repository: written.repository.to_owned(),
                tag: written.tag.map(str::to_owned),
                digest: written.digest.map(str::to_owned),
                registry: None,
            })
        });
        let Some(promoted) = promoted else { continue };
        let reference = match (&env.images, promoted.registry.as_deref().or(source_registry)) {
            (ImageStrategy::PullSecret { .. }, Some(registry)) => {
                external_reference(registry, &promoted)
            }
            (ImageStrategy::PullSecret { secret }, None) => {
                problems.push(
                    Problem::new(
                        "ferry::render::no-source-registry",
                        format!("workload/{workload} pulls `{current}` through pull secret `{secret}`, but no source environment has a registry to pull from"),
                    )
                    .at(location.clone(), "this workload")
                    .help("give the environment a `from` environment, or use `images: copy`"),
                );
                continue;
            }
            _ => own_reference(&env.org, &promoted),
        };
        if let Some(object) = container.as_object_mut() {
            object.insert("image".to_owned(), Value::String(reference));
        }
    }
}

/// `written` pinned to the digest the source ran, when the source ran the
/// same image (host and repository) and its digest is known.
fn pin_external(written: &str, ran: &ExternalImage) -> Option<String> {
    let digest = ran.digest.as_deref()?;
    let (a, b) = (image::classify(written, None), image::classify(&ran.image, None));
    (a.source == b.source && a.repository == b.repository && a.digest.is_none())
        .then(|| image::pinned(written, digest))
}

/// `/org/ORG/image/REPO:TAG` or `…@sha256:…`: the environment's registry,
/// in the full link form the API returns.
fn own_reference(org: &str, image: &PromotedImage) -> String {
    format!("/org/{org}/image/{}", name_and_version(image))
}

/// `HOST/REPO:TAG` or `HOST/REPO@sha256:…`: another org's registry.
fn external_reference(registry: &str, image: &PromotedImage) -> String {
    format!("{registry}/{}", name_and_version(image))
}

/// A digest pins exactly; a tag is used only when no digest is known.
fn name_and_version(image: &PromotedImage) -> String {
    match (&image.digest, &image.tag) {
        (Some(digest), _) => format!("{}@{digest}", image.repository),
        (None, Some(tag)) => format!("{}:{tag}", image.repository),
        (None, None) => image.repository.clone(),
    }
}

/// Rewrites links for the target org and GVC, in full form.
struct LinkRewrite<'a> {
    org: &'a str,
    /// The GVCs links into the manifests' GVC name: the environment's, or
    /// (shared resources) every environment's, the last one for a single
    /// link.
    gvcs: &'a [String],
    /// The manifests' template GVC (every candidate, when several are
    /// named: validation refuses that).
    manifest_gvcs: &'a [&'a str],
    /// The per-environment copies' names (`sharedResources:
    /// perEnvironment`), by kind and manifest name: links and
    /// `cpln://secret/…` references to them follow.
    copies: &'a HashMap<(String, String), String>,
}

/// Kinds that appear in links (managed or not).
const LINK_KINDS: &[&str] = &[
    "agent",
    "auditctx",
    "cloudaccount",
    "domain",
    "group",
    "gvc",
    "identity",
    "image",
    "ipset",
    "location",
    "policy",
    "secret",
    "serviceaccount",
    "user",
    "volumeset",
    "workload",
    "mk8s",
];

impl LinkRewrite<'_> {
    fn apply(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Some(rewritten) = self.rewrite(text) {
                    *text = rewritten;
                }
            }
            Value::Array(items) => {
                let expanded: Vec<Value> = items
                    .iter()
                    .flat_map(|item| match item.as_str().and_then(|text| self.rewrite_all(text)) {
                        Some(links) => links.into_iter().map(Value::String).collect(),
                        None => {
                            let mut item = item.clone();
                            self.apply(&mut item);
                            vec![item]
                        }
                    })
                    .collect();
                *items = expanded;
            }
            Value::Object(map) => self.apply_map(map),
            _ => {}
        }
    }

    fn apply_map(&self, map: &mut Map<String, Value>) {
        for (key, value) in map.iter_mut() {
            // Images were set already; `cpln://` URIs are org-relative.
            if key != "image" {
                self.apply(value);
            }
        }
    }

    /// A single link: into the manifests' GVC, the last of `gvcs`.
    fn rewrite(&self, text: &str) -> Option<String> {
        self.rewrite_all(text).and_then(|mut all| all.pop())
    }

    /// A link as it appears in a list: one per GVC of `gvcs` when it points
    /// into the manifests' GVC.
    fn rewrite_all(&self, text: &str) -> Option<Vec<String>> {
        if let Some(rest) = text.strip_prefix("cpln://secret/") {
            let end = rest.find(['.', '/']).unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            let copy = self.copies.get(&("secret".to_owned(), name.to_owned()))?;
            return Some(vec![format!("cpln://secret/{copy}{tail}")]);
        }
        if text.starts_with("cpln://") {
            return None;
        }
        let parsed = link::parse(text)?;
        if !LINK_KINDS.contains(&parsed.kind) {
            return None;
        }
        let org = self.org;
        let name = parsed.name;
        let ours = |gvc: &str| self.manifest_gvcs.contains(&gvc);
        let each =
            |make: &dyn Fn(&str) -> String| self.gvcs.iter().map(|g| make(g)).collect::<Vec<_>>();
        Some(match (parsed.gvc, parsed.kind) {
            (Some(gvc), kind) if ours(gvc) => {
                each(&|g| format!("/org/{org}/gvc/{g}/{kind}/{name}"))
            }
            (Some(gvc), kind) => vec![format!("/org/{org}/gvc/{gvc}/{kind}/{name}")],
            // A bare `//workload/x` (identity, volume set) means the
            // environment's GVC, wherever it is written: Ferry sends the
            // full link, as the API resolves it in a GVC's item.
            (None, kind) if link::names_gvc_item(kind) => {
                each(&|g| format!("/org/{org}/gvc/{g}/{kind}/{name}"))
            }
            (None, "gvc") if ours(name) => each(&|g| format!("/org/{org}/gvc/{g}")),
            (None, kind) => {
                let name = self
                    .copies
                    .get(&(kind.to_owned(), name.to_owned()))
                    .map_or(name, String::as_str);
                vec![format!("/org/{org}/{kind}/{name}")]
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Readiness;
    use crate::diagnostic::SourceFile;
    use crate::manifest::load_documents;

    fn env(images: ImageStrategy) -> Environment {
        Environment {
            name: "prod".into(),
            from: None,
            org: "acme-prod".into(),
            gvc: "shop-prod".into(),
            endpoint: None,
            token_env: "T".into(),
            images,
            registry: "acme-prod.registry.cpln.io".into(),
            readiness: Readiness::default(),
            overrides: Vec::new(),
            immutable_tags: true,
            pin_external: false,
            require_approval: false,
            history_limit: 20,
            max_deletes: None,
            copy_missing_images: false,
            freeze: Vec::new(),
            location: Location::new(&SourceFile::new("p", "x"), (0, 1)),
            app: None,
            shared_per_environment: false,
        }
    }

    fn manifests(text: &str) -> ManifestSet {
        let (resources, problems) = load_documents(&[SourceFile::new("m.yaml", text)]);
        assert!(problems.is_empty());
        ManifestSet { resources }
    }

    /// `text` rendered for `env` with `images`, without overrides.
    fn rendered(text: &str, env: &Environment, images: &SourceImages) -> Vec<Rendered> {
        render(&manifests(text), env, None, &[], images, None).unwrap_or_else(|p| panic!("{p:?}"))
    }

    const APP: &str = "kind: gvc\nname: app\nspec:\n  pullSecretLinks: [//secret/pull]\n---\nkind: workload\nname: api\ngvc: app\nspec:\n  identityLink: //gvc/app/identity/api-id\n  containers:\n    - name: main\n      image: //image/api:1.0\n      env:\n        - {name: A, value: cpln://secret/db.url}\n        - {name: B, value: //cdn.example.com/x}\n        - {name: C, value: one}\n";

    #[test]
    fn rewrites_gvc_links_and_images_for_the_environment() {
        let out = rendered(APP, &env(ImageStrategy::Copy), &SourceImages::default());
        assert_eq!(out[0].id.to_string(), "gvc/shop-prod");
        assert_eq!(out[0].body["spec"]["pullSecretLinks"][0], "/org/acme-prod/secret/pull");
        let api = &out[1].body;
        assert!(api.get("gvc").is_none());
        assert_eq!(api["spec"]["identityLink"], "/org/acme-prod/gvc/shop-prod/identity/api-id");
        let container = &api["spec"]["containers"][0];
        assert_eq!(container["image"], "/org/acme-prod/image/api:1.0");
        assert_eq!(container["env"][0]["value"], "cpln://secret/db.url");
        assert_eq!(container["env"][1]["value"], "//cdn.example.com/x", "not a link");
    }

    #[test]
    fn bare_links_to_gvc_items_render_where_the_api_stores_them() {
        let text = "kind: workload\nname: api\ngvc: app\nspec:\n  identityLink: //identity/api-id\n  containers:\n    - {name: main, image: nginx:1}\n  firewallConfig:\n    internal:\n      inboundAllowType: workload-list\n      inboundAllowWorkload: [//workload/web, //gvc/edge/workload/proxy]\n";
        let env = env(ImageStrategy::Copy);
        let out = rendered(text, &env, &SourceImages::default());
        let body = &out[0].body;
        let admitted = &body["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"];
        assert_eq!(
            admitted,
            &serde_json::json!([
                "/org/acme-prod/gvc/shop-prod/workload/web",
                "/org/acme-prod/gvc/edge/workload/proxy"
            ])
        );
        // What the API (normalize) makes of the manifest as written is
        // what render sends.
        let Value::Object(mut written) = serde_json::json!({"spec": {
            "identityLink": "//identity/api-id",
            "firewallConfig": {"internal": {"inboundAllowType": "workload-list",
                "inboundAllowWorkload": ["//workload/web", "//gvc/edge/workload/proxy"]}}}})
        else {
            unreachable!()
        };
        let scope = crate::normalize::Scope { org: &env.org, gvc: Some(&env.gvc) };
        crate::normalize::normalize("workload", "api", scope, &mut written);
        assert_eq!(
            &written["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"],
            admitted
        );
        assert_eq!(written["spec"]["identityLink"], body["spec"]["identityLink"]);
    }

    #[test]
    fn promoted_images_pin_digests_per_strategy() {
        let mut images = SourceImages::default();
        images.promoted.insert(
            ("api".into(), "main".into()),
            PromotedImage {
                repository: "api".into(),
                tag: Some("1.1".into()),
                digest: Some("sha256:ab".into()),
                registry: None,
            },
        );
        let copy = render(&manifests(APP), &env(ImageStrategy::Copy), None, &[], &images, None)
            .unwrap_or_default();
        assert_eq!(
            copy[1].body["spec"]["containers"][0]["image"],
            "/org/acme-prod/image/api@sha256:ab"
        );
        let pull = ImageStrategy::PullSecret { secret: "pull".into() };
        let pulled = render(
            &manifests(APP),
            &env(pull),
            None,
            &[],
            &images,
            Some("acme-staging.registry.cpln.io"),
        )
        .unwrap_or_default();
        assert_eq!(
            pulled[1].body["spec"]["containers"][0]["image"],
            "acme-staging.registry.cpln.io/api@sha256:ab"
        );
    }

    /// `text` rendered for prod of a gvc-per-env org whose environments'
    /// GVCs are `gvcs`.
    fn shared(text: &str, gvcs: &[&str]) -> Vec<Rendered> {
        let gvcs: Vec<String> = gvcs.iter().map(|g| (*g).to_owned()).collect();
        let none = SourceImages::default();
        render(&manifests(text), &env(ImageStrategy::None), Some(&gvcs), &[], &none, None)
            .unwrap_or_else(|p| panic!("{p:?}"))
    }

    const PUBLIC: &str = "kind: workload\nname: cache\nspec:\n  containers:\n    - {name: redis, image: 'redis:alpine'}\n    - {name: app, image: 'someuser/app:1.0'}\n    - {name: gcr, image: 'gcr.io/proj/app:v1'}\n    - {name: other, image: 'partner.registry.cpln.io/api:3'}\n    - {name: own, image: 'acme-prod.registry.cpln.io/api:2'}\n";

    fn images_of(rendered: &[Rendered]) -> Vec<String> {
        crate::plan::container_images(&rendered[0].body)
            .into_iter()
            .map(|(_, image)| image.to_owned())
            .collect()
    }

    #[test]
    fn external_and_other_org_images_run_as_written() {
        let out = rendered(PUBLIC, &env(ImageStrategy::Copy), &SourceImages::default());
        assert_eq!(
            images_of(&out),
            [
                "redis:alpine",
                "someuser/app:1.0",
                "gcr.io/proj/app:v1",
                "partner.registry.cpln.io/api:3",
                "/org/acme-prod/image/api:2"
            ]
        );
    }

    #[test]
    fn pin_external_writes_the_digest_the_source_ran() {
        let mut images = SourceImages::default();
        let ran = |image: &str, digest: Option<&str>| ExternalImage {
            image: image.into(),
            digest: digest.map(Into::into),
        };
        images
            .external
            .insert(("cache".into(), "redis".into()), ran("redis:alpine", Some("sha256:ab")));
        images.external.insert(("cache".into(), "app".into()), ran("someuser/app:1.0", None));
        images
            .external
            .insert(("cache".into(), "gcr".into()), ran("gcr.io/other/app:v1", Some("sha256:cd")));
        let mut pinning = env(ImageStrategy::Copy);
        pinning.pin_external = true;
        let out = rendered(PUBLIC, &pinning, &images);
        let written = images_of(&out);
        assert_eq!(written[0], "redis@sha256:ab");
        assert_eq!(written[1], "someuser/app:1.0", "digest unknown: as written");
        assert_eq!(written[2], "gcr.io/proj/app:v1", "the source ran another repository");
        let plain = rendered(PUBLIC, &env(ImageStrategy::Copy), &images);
        assert_eq!(images_of(&plain)[0], "redis:alpine", "pinned only when asked");
    }

    #[test]
    fn shared_resources_render_the_same_for_every_environment() {
        let text = "kind: policy\nname: p\ntargetKind: secret\ntargetLinks: [//secret/db]\nbindings:\n  - permissions: [reveal]\n    principalLinks: [//gvc/app/identity/api-id]\n---\nkind: domain\nname: a.example.com\nspec: {ports: [{routes: [{workloadLink: //gvc/app/workload/web}]}]}\n---\nkind: gvc\nname: app\n";
        let out = shared(text, &["app-staging", "shop-prod"]);
        assert_eq!(
            out[0].body["bindings"][0]["principalLinks"],
            serde_json::json!([
                "/org/acme-prod/gvc/app-staging/identity/api-id",
                "/org/acme-prod/gvc/shop-prod/identity/api-id"
            ])
        );
        assert_eq!(out[0].body["tags"][crate::plan::MANAGED_TAG], SHARED);
        assert_eq!(
            out[1].body["spec"]["ports"][0]["routes"][0]["workloadLink"],
            "/org/acme-prod/gvc/shop-prod/workload/web"
        );
        assert_eq!(
            out[2].body["tags"][crate::plan::MANAGED_TAG],
            "prod",
            "the GVC is the environment's own"
        );
    }

    /// `cpln helm template` output: no `kind: gvc`, every GVC-scoped
    /// resource says `gvc: online-boutique`, links name it in every form.
    const HELM: &str = "kind: workload\nname: frontend\ngvc: online-boutique\nspec:\n  identityLink: //gvc/online-boutique/identity/frontend\n  containers:\n    - name: server\n      image: //image/frontend:v0.10.2\n  firewallConfig:\n    internal:\n      inboundAllowType: workload-list\n      inboundAllowWorkload: [//gvc/online-boutique/workload/loadgenerator, //gvc/partner/workload/probe]\n---\nkind: identity\nname: frontend\ngvc: online-boutique\n---\nkind: policy\nname: frontend-secrets\ntargetKind: secret\ntargetLinks: [//secret/frontend-config]\nbindings:\n  - permissions: [reveal]\n    principalLinks: [/org/acme-staging/gvc/online-boutique/identity/frontend]\n---\nkind: domain\nname: shop.example.com\nspec:\n  gvcLink: //gvc/online-boutique\n";

    #[test]
    fn the_manifests_gvc_is_a_template_for_the_environments() {
        let out = rendered(HELM, &env(ImageStrategy::None), &SourceImages::default());
        let frontend = &out[0].body;
        assert!(frontend.get("gvc").is_none(), "the environment places it");
        assert_eq!(
            frontend["spec"]["identityLink"],
            "/org/acme-prod/gvc/shop-prod/identity/frontend"
        );
        assert_eq!(
            frontend["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"],
            serde_json::json!([
                "/org/acme-prod/gvc/shop-prod/workload/loadgenerator",
                "/org/acme-prod/gvc/partner/workload/probe"
            ]),
            "a link into another GVC is kept (validation judges references)"
        );
        assert!(out[1].body.get("gvc").is_none());
        assert_eq!(
            out[2].body["bindings"][0]["principalLinks"][0],
            "/org/acme-prod/gvc/shop-prod/identity/frontend",
            "the full form, from another org, too"
        );
        assert_eq!(out[3].body["spec"]["gvcLink"], "/org/acme-prod/gvc/shop-prod");
    }

    #[test]
    fn a_template_gvc_renders_for_every_environment_of_a_gvc_per_env_org() {
        let out = shared(HELM, &["shop-staging", "shop-prod"]);
        assert_eq!(
            out[2].body["bindings"][0]["principalLinks"],
            serde_json::json!([
                "/org/acme-prod/gvc/shop-staging/identity/frontend",
                "/org/acme-prod/gvc/shop-prod/identity/frontend"
            ]),
            "an org-scoped policy serves every environment's identity"
        );
        assert_eq!(
            out[0].body["spec"]["identityLink"],
            "/org/acme-prod/gvc/shop-prod/identity/frontend"
        );
    }

    #[test]
    fn overrides_merge_by_name() {
        let mut target = serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}], "keep": 1, "drop": 2}});
        let patch = serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}], "drop": null}});
        assert_eq!(merge(&mut target, &patch), []);
        assert_eq!(
            target,
            serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}], "keep": 1}})
        );
        let mut list = serde_json::json!({"links": ["a", "b"], "ports": [{"number": 80}]});
        let replaced = serde_json::json!({"links": ["c"], "ports": [{"number": 81}]});
        assert_eq!(merge(&mut list, &replaced), []);
        assert_eq!(list, replaced, "lists without names are replaced");
    }

    /// `(code, pointer into the patch)` of each conflict.
    fn conflicts(
        target: serde_json::Value,
        patch: serde_json::Value,
    ) -> Vec<(&'static str, String)> {
        let mut target = target;
        merge(&mut target, &patch).into_iter().map(|c| (c.code, c.at)).collect()
    }

    #[test]
    fn an_override_never_drops_what_it_does_not_name() {
        const DROPS: &str = "ferry::validate::override-drops-fields";
        let env = || serde_json::json!({"env": [{"name": "DATABASE_URL", "value": "x"}, {"name": "LOG_LEVEL", "value": "info"}]});
        // An item without a name: which one does it change?
        assert_eq!(
            conflicts(
                env(),
                serde_json::json!({"env": [{"name": "LOG_LEVEL", "value": "warn"}, {"value": "debug"}]})
            ),
            [(DROPS, "/env/1".to_owned())]
        );
        let mut merged = env();
        let _ = merge(
            &mut merged,
            &serde_json::json!({"env": [{"value": "debug"}, {"name": "NEW", "value": "1"}]}),
        );
        let names: Vec<&str> = merged["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["DATABASE_URL", "LOG_LEVEL", "NEW"],
            "the named items are still merged, none dropped"
        );
        // An empty list, or another type, over named items.
        assert_eq!(conflicts(env(), serde_json::json!({"env": []})), [(DROPS, "/env".to_owned())]);
        assert_eq!(
            conflicts(env(), serde_json::json!({"env": {"DATABASE_URL": "y"}})),
            [(DROPS, "/env".to_owned())]
        );
        // A mapping replaced by a scalar drops its fields.
        assert_eq!(
            conflicts(serde_json::json!({"spec": {"a": 1}}), serde_json::json!({"spec": "x"})),
            [(DROPS, "/spec".to_owned())]
        );
        // `null` names what it removes; unnamed items of the manifest stay.
        assert_eq!(conflicts(env(), serde_json::json!({"env": null})), []);
        let mut mixed =
            serde_json::json!({"env": [{"value": "orphan"}, {"name": "A", "value": "1"}]});
        assert_eq!(
            merge(&mut mixed, &serde_json::json!({"env": [{"name": "A", "value": "2"}]})),
            []
        );
        assert_eq!(
            mixed,
            serde_json::json!({"env": [{"value": "orphan"}, {"name": "A", "value": "2"}]})
        );
    }

    fn patch(text: &str) -> Patch {
        let source = SourceFile::new("overrides/prod.yaml", text);
        crate::config::parse_patch_file(&source).unwrap_or_else(|p| panic!("{p:?}")).remove(0)
    }

    /// `(code, position)` of every problem rendering `patches` brings.
    /// `text` rendered for prod with `patches`, images as written.
    fn patched(text: &str, patches: &[Patch]) -> Result<Vec<Rendered>, Problems> {
        let env = env(ImageStrategy::Copy);
        render(&manifests(text), &env, None, patches, &SourceImages::default(), None)
    }

    fn rendering_problems(patches: &[Patch]) -> Vec<(&'static str, String)> {
        match patched(APP, patches) {
            Ok(_) => Vec::new(),
            Err(problems) => {
                problems.into_iter().map(|p| (p.code, p.position().unwrap_or_default())).collect()
            }
        }
    }

    #[test]
    fn what_an_override_breaks_is_reported_at_the_override() {
        let latest = patch(
            "kind: workload\nname: api\nspec:\n  containers:\n    - name: main\n      cpu: \"1\"\n    - name: cache\n      image: redis:latest\n",
        );
        assert_eq!(
            rendering_problems(&[latest]),
            [("ferry::validate::mutable-tag", "overrides/prod.yaml:8:14".to_owned())]
        );
        let types = patch(
            "kind: workload\nname: api\nspec:\n  containers:\n    - name: main\n      env:\n        - {name: CPLN_X, value: y}\n",
        );
        assert_eq!(
            rendering_problems(&[types]),
            [("ferry::validate::invalid-env-name", "overrides/prod.yaml:7:18".to_owned())]
        );
        let cpu = patch(
            "kind: workload\nname: api\nspec:\n  containers:\n    - name: main\n      cpu: five\n",
        );
        assert_eq!(
            rendering_problems(&[cpu]),
            [("ferry::validate::invalid-field", "overrides/prod.yaml:6:12".to_owned())]
        );
        let renames = patch("kind: workload\nname: api\ngvc: shop\n");
        assert_eq!(
            rendering_problems(&[renames]),
            [("ferry::validate::override-changes-identity", "overrides/prod.yaml:3:6".to_owned())]
        );
        let same = patch(
            "kind: workload\nname: api\nspec:\n  containers:\n    - name: main\n      image: //image/api:1.5\n",
        );
        assert_eq!(rendering_problems(&[same]), []);
    }

    #[test]
    fn a_likely_typo_in_an_override_is_a_warning_at_the_override() {
        let typo = patch(
            "kind: workload\nname: api\nspec:\n  defaultOptions:\n    autoscaling:\n      minScal: 3\n",
        );
        let out = patched(APP, &[typo])
            .unwrap_or_else(|p| panic!("warnings do not stop rendering: {p:?}"));
        let found: Vec<_> =
            warnings(&out).iter().map(|w| (w.code, w.is_error(), w.position())).collect();
        assert_eq!(
            found,
            [("ferry::validate::unknown-field", false, Some("overrides/prod.yaml:6:7".to_owned()))]
        );
        assert_eq!(
            out[1].body["spec"]["defaultOptions"]["autoscaling"]["minScal"], 3,
            "kept as written"
        );
    }

    #[test]
    fn an_override_of_a_secret_is_never_shown() {
        let text = "kind: secret\nname: db\ntype: opaque\ndata: {payload: s3cr3t-payload, encoding: plain}\n";
        let secret = patch("kind: secret\nname: db\ndata: hunter2-payload\n");
        let Err(problems) = patched(text, &[secret]) else {
            panic!("a mapping replaced by a string is refused");
        };
        let problem = &problems.problems[0];
        assert_eq!(problem.code, "ferry::validate::override-drops-fields");
        assert!(problem.location.is_none(), "no snippet");
        assert!(problem.message.contains("overrides/prod.yaml:3:7"), "{}", problem.message);
        assert!(!format!("{problems:?}").contains("hunter2"), "{problems:?}");
    }

    #[test]
    fn a_problem_is_traced_to_the_override_field_that_set_it() {
        let fields = serde_json::json!({"spec": {"containers": [{"name": "b", "image": "x"}]}});
        let body = serde_json::json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "x"}]}});
        assert_eq!(
            patch_pointer(&fields, &body, "/spec/containers/1/image"),
            "/spec/containers/0/image"
        );
        assert_eq!(patch_pointer(&fields, &body, "/spec/containers/0/image"), "/spec/containers");
        assert_eq!(patch_pointer(&fields, &body, "/spec/minScale"), "/spec");
    }

    /// A shop written for GVC `boutique`: services that call each other by
    /// internal hostname, one that calls another GVC's, a config secret
    /// that names one of them.
    const SHOP: &str = "kind: gvc\nname: boutique\n---\nkind: workload\nname: frontend\nspec:\n  containers:\n    - name: server\n      image: nginx:1.27\n      args: ['--upstream', 'http://cart.boutique.cpln.local:7070/cart']\n      env:\n        - name: CART_ADDR\n          value: 'cart.boutique.cpln.local:7070'\n        - name: FRAUD_ADDR\n          value: http://fraud.platform.cpln.local:9000\n        - name: ALL\n          value: ads.boutique.cpln.local:9555,email.boutique.cpln.local:8080\n---\nkind: secret\nname: shop-config\ntype: opaque\ndata:\n  encoding: plain\n  payload: 'upstream cart.boutique.cpln.local:7070'\n";

    /// `(code, position)` of every warning.
    /// The shop's manifests rendered for prod with `patches`.
    fn shop_with(patches: &[Patch]) -> Vec<Rendered> {
        render(
            &manifests(SHOP),
            &env(ImageStrategy::None),
            None,
            patches,
            &SourceImages::default(),
            None,
        )
        .unwrap_or_else(|p| panic!("{p:?}"))
    }

    fn warned(rendered: &[Rendered]) -> Vec<(&'static str, String)> {
        warnings(rendered)
            .iter()
            .map(|w| {
                assert!(!w.is_error());
                (w.code, w.position().unwrap_or_default())
            })
            .collect()
    }

    #[test]
    fn internal_hostnames_name_the_environments_gvc() {
        let out = rendered(SHOP, &env(ImageStrategy::None), &SourceImages::default());
        let server = &out[1].body["spec"]["containers"][0];
        assert_eq!(server["args"][1], "http://cart.shop-prod.cpln.local:7070/cart");
        assert_eq!(server["env"][0]["value"], "cart.shop-prod.cpln.local:7070");
        assert_eq!(server["env"][1]["value"], "http://fraud.platform.cpln.local:9000");
        assert_eq!(
            server["env"][2]["value"],
            "ads.shop-prod.cpln.local:9555,email.shop-prod.cpln.local:8080"
        );
        assert_eq!(
            out[2].body["data"]["payload"], "upstream cart.boutique.cpln.local:7070",
            "a payload as written"
        );
        assert_eq!(
            warned(&out),
            [
                ("ferry::render::other-gvc-hostname", "m.yaml:15:25".to_owned()),
                ("ferry::render::hostname-in-secret", "m.yaml:22:1".to_owned()),
            ]
        );
        let all = warnings(&out);
        assert!(all[0].message.contains("`fraud.platform.cpln.local`"), "{}", all[0].message);
        assert!(
            !all[1].message.contains("upstream"),
            "the payload is never quoted: {}",
            all[1].message
        );
        // Another environment of the same pipeline: its own GVC.
        let mut staging = env(ImageStrategy::None);
        staging.gvc = "shop-staging".into();
        let out = rendered(SHOP, &staging, &SourceImages::default());
        assert_eq!(
            out[1].body["spec"]["containers"][0]["env"][0]["value"],
            "cart.shop-staging.cpln.local:7070"
        );
    }

    #[test]
    fn a_gvc_named_as_the_template_needs_nothing_rewritten_nor_said() {
        let mut same = env(ImageStrategy::None);
        same.gvc = "boutique".into();
        let out = rendered(SHOP, &same, &SourceImages::default());
        assert_eq!(
            out[1].body["spec"]["containers"][0]["env"][0]["value"],
            "cart.boutique.cpln.local:7070"
        );
        assert_eq!(
            warned(&out),
            [("ferry::render::other-gvc-hostname", "m.yaml:15:25".to_owned())],
            "the secret's payload is right as written"
        );
    }

    #[test]
    fn a_hostname_an_override_sets_is_rendered_and_warned_about_at_the_override() {
        let partner = patch(
            "kind: workload\nname: frontend\nspec:\n  containers:\n    - name: server\n      env:\n        - name: FRAUD_ADDR\n          value: 'http://fraud.partner.cpln.local:9000'\n        - name: EXTRA\n          value: extra.boutique.cpln.local\n",
        );
        let out = shop_with(&[partner]);
        let server = &out[1].body["spec"]["containers"][0];
        assert_eq!(server["env"][1]["value"], "http://fraud.partner.cpln.local:9000");
        assert_eq!(server["env"][3]["value"], "extra.shop-prod.cpln.local");
        assert_eq!(
            warned(&out),
            [
                ("ferry::render::other-gvc-hostname", "overrides/prod.yaml:8:26".to_owned()),
                ("ferry::render::hostname-in-secret", "m.yaml:22:1".to_owned()),
            ],
            "the manifest's `platform` is not rendered: not said"
        );
    }

    #[test]
    fn a_hostname_in_an_override_of_a_secret_is_said_without_showing_the_override() {
        let secret = patch(
            "kind: secret\nname: shop-config\ndescription: read by fraud.platform.cpln.local\n",
        );
        let out = shop_with(&[secret]);
        let said = warnings(&out);
        let other: Vec<&Problem> =
            said.iter().filter(|w| w.code == "ferry::render::other-gvc-hostname").collect();
        assert_eq!(other.len(), 2, "{said:?}");
        assert_eq!(other[0].position().as_deref(), Some("m.yaml:15:25"));
        assert!(other[1].location.is_none(), "no snippet of the override");
        assert!(other[1].message.contains("overrides/prod.yaml:3:22"), "{}", other[1].message);
    }

    #[test]
    fn a_shared_resource_names_the_last_environments_gvc_as_its_links_do() {
        let text = "kind: gvc\nname: boutique\n---\nkind: domain\nname: shop.example.com\ndescription: routes to frontend.boutique.cpln.local\nspec: {ports: [{routes: [{workloadLink: //gvc/boutique/workload/frontend}]}]}\n";
        let out = shared(text, &["shop-staging", "shop-prod"]);
        assert_eq!(out[1].body["description"], "routes to frontend.shop-prod.cpln.local");
        assert_eq!(warned(&out), []);
    }
}
