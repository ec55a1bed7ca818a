//! What carrying out a plan does, as data: the images to copy, the checks
//! that must hold before the first write, the writes (each with its method,
//! body, what it waits for and whether it is a readiness gate) and the
//! release to record. Pure: [`crate::execute`] runs these steps, whoever
//! made them (promote, apply of a saved plan, and later deploy and
//! rollback).
//!
//! Secret payloads never enter the serialized steps, nor anything derived
//! from them: in memory a secret's `data` is its mark, keyed for this run
//! only ([`crate::diff::hidden_data`]), serialized it is `"(value
//! hidden)"`, and the payload travels beside the plan in [`Secrets`],
//! which is never serialized. Within a run the executor checks a payload
//! against its mark; `ferry apply` reads the payloads again (git at the
//! plan's commit, the overrides, a kept live value) and compares them
//! with the live ones as the plan did ([`payloads_moved`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::applied::Fields;
use crate::config::{Environment, ImageStrategy};
use crate::diff::{self, Action};
use crate::graph::Graph;
use crate::manifest::image::{Source, classify};
use crate::manifest::{Kind, ResourceId};
use crate::release::{ReleaseImage, ReleaseKind};

use super::{ImageChange, ResourcePlan, landing};

/// Everything the executor does, in the order it does it: copy, check,
/// write (by dependency), record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Steps {
    /// Images copied into the target's registry before anything is checked.
    pub copies: Vec<ImageCopy>,
    /// What must hold before the first write (after the copies).
    pub checks: Vec<Check>,
    /// The writes; each starts as soon as what it waits for is done.
    pub writes: Vec<Write>,
    /// The release recorded in the target's org.
    pub release: ReleaseInfo,
    /// The fields of each desired resource (names, never values): what
    /// the record of Ferry's last write says once the writes succeed
    /// ([`crate::applied`]); empty for plans that change no field set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub applied: BTreeMap<ResourceId, Fields>,
}

/// One image copied registry to registry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageCopy {
    /// `host/repository@digest` (or `:tag`) in the source's registry.
    pub source: String,
    /// `host/repository:tag` in the target's registry.
    pub destination: String,
}

/// A precondition checked against the target just before the first write.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Check {
    /// An image of the target's own registry is there (at `digest`, when
    /// known).
    Image { repository: String, tag: String, digest: Option<String> },
    /// The `pull-secret` image strategy: `secret` exists, the GVC links it,
    /// and it holds credentials for `registry` (the source's).
    PullSecret { secret: String, linked: bool, registry: Option<String>, source: Option<String> },
    /// A location the GVC is placed in exists in the target's org.
    Location { name: String },
}

/// How one resource is written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Method {
    /// PUT to the collection: `cpln apply`'s upsert (fields are merged).
    Put,
    /// PUT, then a PATCH with `$replace/` for every field the body sets, so
    /// that fields left out are removed; tags as `tags` says (restoring an
    /// earlier state exactly).
    PutExact { tags: TagWrite },
    /// PUT, then the PATCH `removals`: the fields and named items git
    /// removed, and only those ([`crate::diff::Compared::removals`]), so
    /// that fields the server owns are left as they are.
    PutRemoving { removals: Value },
    /// PATCH the item with the body as it is (e.g. `$patch/containers`).
    Patch,
    /// DELETE, wait until it is gone, then PUT (fields that cannot change).
    Recreate,
    /// DELETE.
    Delete,
}

/// What the PATCH after a PUT does to tags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagWrite {
    /// Leave them merged (platform tags survive).
    #[default]
    Merge,
    /// Remove these keys (tags that left git).
    Drop(Vec<String>),
    /// Make them exactly the body's (restoring an earlier state).
    Replace,
}

/// One resource to write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Write {
    pub id: ResourceId,
    /// What the plan says this is (for progress lines).
    pub action: Action,
    #[serde(flatten)]
    pub method: Method,
    /// What is written (`None` for deletes); a secret's `data` as its
    /// mark in memory, `"(value hidden)"` once serialized.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "unmarked")]
    pub body: Option<Value>,
    /// Writes that must have been written first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_written: Vec<ResourceId>,
    /// Workloads that must have been written and be ready first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_ready: Vec<ResourceId>,
    /// A readiness gate: once written, wait until this workload is ready.
    #[serde(default)]
    pub gate: bool,
    /// Tag the body with the release revision (`ferry/release`).
    #[serde(default)]
    pub stamp: bool,
}

/// Writes are equal when they are saved alike: a secret's mark, keyed for
/// one run, is not part of what a plan says.
impl PartialEq for Write {
    fn eq(&self, other: &Self) -> bool {
        let saved = |w: &Write| {
            (
                w.id.clone(),
                w.action,
                w.method.clone(),
                w.body.as_ref().map(diff::unmarked),
                w.after_written.clone(),
                w.after_ready.clone(),
                (w.gate, w.stamp),
            )
        };
        saved(self) == saved(other)
    }
}

/// What the release record says beyond what the executor knows.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// The environment the images come from.
    pub source: Option<String>,
    /// The manifests' git commit.
    pub commit: Option<String>,
    /// Every container image of the release (changed or not).
    pub images: Vec<ReleaseImage>,
    /// What makes the release (absent from plans saved before the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReleaseKind>,
    /// What the release says it is (a rollback: "rollback to 2").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the workloads the plan adopts ran before Ferry, by digest:
    /// recorded as a `pre-ferry` release before this one when the
    /// environment has no release yet, so that `ferry rollback` can go
    /// back to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<ReleaseImage>,
}

/// Secret payloads of a plan's writes, kept out of its JSON.
#[derive(Clone, Default, PartialEq)]
pub struct Secrets(BTreeMap<ResourceId, Value>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} payloads hidden)", self.0.len())
    }
}

impl Secrets {
    /// Keeps `data` as the payload of `id`.
    pub fn insert(&mut self, id: ResourceId, data: Value) {
        self.0.insert(id, data);
    }

    /// The payload of `id`, if kept.
    pub fn get(&self, id: &ResourceId) -> Option<&Value> {
        self.0.get(id)
    }

    /// The body to write for `write`: its body with a hidden secret payload
    /// put back. `Err` names the payload that is missing or is not the one
    /// whose mark the body carries (a saved plan's bodies carry none: its
    /// payloads were compared by [`payloads_moved`]).
    pub fn body_of(&self, write: &Write) -> Result<Option<Value>, ResourceId> {
        let Some(body) = &write.body else { return Ok(None) };
        let Some(marker) = hidden_marker(write, body) else { return Ok(Some(body.clone())) };
        match self.0.get(&write.id) {
            Some(data)
                if marker == diff::HIDDEN || diff::hidden_data(data).as_str() == Some(marker) =>
            {
                let mut full = body.clone();
                full["data"] = data.clone();
                Ok(Some(full))
            }
            _ => Err(write.id.clone()),
        }
    }
}

/// The mark a secret write carries in place of its payload.
fn hidden_marker<'a>(write: &Write, body: &'a Value) -> Option<&'a str> {
    if write.id.kind != Kind::Secret {
        return None;
    }
    body.get("data").and_then(Value::as_str).filter(|d| d.starts_with(diff::HIDDEN))
}

/// A body serialized without the marks of secret payloads.
fn unmarked<S: serde::Serializer>(body: &Option<Value>, serializer: S) -> Result<S::Ok, S::Error> {
    body.as_ref().map(diff::unmarked).serialize(serializer)
}

/// Secrets of a saved plan whose payload, read again to carry it out,
/// no longer compares with the live one as the plan says: changed where
/// the plan saw it unchanged, or the reverse. `desired` are the bodies
/// as rendered again (payloads from git at the plan's commit, the
/// overrides, kept live values), `live` the bodies read now (the executor
/// then checks their versions against the plan's). Nothing derived from a
/// payload is saved, so this, in memory, is how apply knows that what it
/// writes is what was planned (docs/plan-output.md, "Secrets").
pub fn payloads_moved(
    resources: &[ResourcePlan],
    env: &Environment,
    desired: &HashMap<ResourceId, Value>,
    live: &HashMap<ResourceId, Value>,
) -> Vec<ResourceId> {
    let data = |id: &ResourceId, body: &Value| {
        super::comparable(id.kind, &id.name, &env.org, &env.gvc, body).get("data").cloned()
    };
    resources
        .iter()
        .filter_map(|r| Some((r.id.parse::<ResourceId>().ok()?, r)))
        .filter(|(id, r)| id.kind == Kind::Secret && r.action != Action::Delete)
        .filter_map(|(id, r)| {
            let (desired, live) = (desired.get(&id)?, live.get(&id)?);
            let planned = r.changes.iter().any(|c| c.path == "data" || c.path.starts_with("data."));
            let now = data(&id, desired) != data(&id, live);
            (planned != now).then_some(id)
        })
        .collect()
}

/// The body as a plan carries it: a secret's payload moved to `secrets`.
pub fn sealed(id: &ResourceId, body: &Value, secrets: &mut Secrets) -> Value {
    let mut body = body.clone();
    if id.kind == Kind::Secret
        && let Some(data) = body.get_mut("data")
    {
        secrets.insert(id.clone(), data.clone());
        *data = diff::hidden_data(data);
    }
    body
}

/// The writes that bring the target from its live state to the desired
/// one: one per resource that changes (deletes only with `prune`), each
/// waiting for the writes it depends on (through the graph, across
/// resources that do not change) and for every write of the kind phase
/// before it; a write that depends on a workload waits until it is ready.
/// Deletes come after everything else. An adopt with no field change is
/// a PATCH of the managed tag alone (nothing else is touched, so no
/// workload rolls out); with field changes it is written as an update.
/// An update that removes fields is a PUT followed by the PATCH of its
/// removals.
pub fn writes(
    resources: &[ResourcePlan],
    bodies: &Bodies<'_>,
    graph: &Graph,
    prune: bool,
    secrets: &mut Secrets,
) -> Vec<Write> {
    let mut writes: Vec<Write> = resources
        .iter()
        .filter(|r| match r.action {
            Action::Unchanged => false,
            Action::Delete => prune,
            _ => true,
        })
        .filter_map(|r| {
            let id: ResourceId = r.id.parse().ok()?;
            if let (Action::Adopt, true, Some(value)) =
                (r.action, r.changes.is_empty(), &r.adopt_tag)
            {
                return Some(Write {
                    action: r.action,
                    method: Method::Patch,
                    body: Some(json!({"tags": {super::MANAGED_TAG: value}})),
                    after_written: Vec::new(),
                    after_ready: Vec::new(),
                    gate: false,
                    stamp: false,
                    id,
                });
            }
            let body = bodies.bodies.get(&id).map(|body| sealed(&id, body, secrets));
            let method = match (r.action, bodies.removals.get(&id)) {
                (Action::Delete, _) => Method::Delete,
                (Action::Replace, _) => Method::Recreate,
                (_, Some(removals)) => Method::PutRemoving { removals: removals.clone() },
                _ => Method::Put,
            };
            let workload = id.kind == Kind::Workload && r.action != Action::Delete;
            Some(Write {
                action: r.action,
                method,
                body: if r.action == Action::Delete { None } else { body },
                after_written: Vec::new(),
                after_ready: Vec::new(),
                gate: workload,
                stamp: workload,
                id,
            })
        })
        .collect();
    order(&mut writes, graph);
    writes
}

/// What the writes of a plan are made of, by resource.
pub struct Bodies<'a> {
    /// The desired bodies as they are written (secrets with their payload).
    pub bodies: &'a HashMap<ResourceId, Value>,
    /// The PATCHes removing what git removed ([`Method::PutRemoving`]).
    pub removals: &'a HashMap<ResourceId, Value>,
}

/// Fills what each write waits for.
fn order(writes: &mut [Write], graph: &Graph) {
    // The graph names the GVC as the manifests do; the plan as rendered.
    let rendered_gvc = writes.iter().find(|w| w.id.kind == Kind::Gvc).map(|w| w.id.clone());
    let as_planned = |id: &ResourceId| match (&rendered_gvc, id.kind) {
        (Some(gvc), Kind::Gvc) => gvc.clone(),
        _ => id.clone(),
    };
    let as_graphed = |id: &ResourceId| {
        if id.kind == Kind::Gvc {
            graph.waves.iter().flatten().find(|g| g.kind == Kind::Gvc).cloned()
        } else {
            Some(id.clone())
        }
    };
    let upserts: HashMap<ResourceId, bool> = writes
        .iter()
        .filter(|w| w.method != Method::Delete)
        .map(|w| (w.id.clone(), w.gate))
        .collect();
    let phase = |kind: Kind| kind.phase() as usize;
    let mut by_phase: BTreeMap<usize, Vec<ResourceId>> = BTreeMap::new();
    for id in upserts.keys() {
        by_phase.entry(phase(id.kind)).or_default().push(id.clone());
    }
    for list in by_phase.values_mut() {
        list.sort();
    }
    let everything: Vec<ResourceId> = by_phase.values().flatten().cloned().collect();
    for write in writes.iter_mut() {
        let mut written: Vec<ResourceId> = Vec::new();
        let mut ready: Vec<ResourceId> = Vec::new();
        let mut wait_for = |id: ResourceId| match upserts.get(&id) {
            Some(true) => ready.push(id),
            Some(false) => written.push(id),
            None => {}
        };
        if write.method == Method::Delete {
            everything.iter().cloned().for_each(&mut wait_for);
        } else {
            // Through the graph, across resources this plan does not write.
            let mut seen: HashSet<ResourceId> = HashSet::new();
            let mut frontier: Vec<ResourceId> = as_graphed(&write.id).into_iter().collect();
            while let Some(next) = frontier.pop() {
                for dependency in graph.dependencies_of(&next) {
                    let first = as_planned(&dependency.first);
                    if !seen.insert(first.clone()) {
                        continue;
                    }
                    if upserts.contains_key(&first) {
                        wait_for(first);
                    } else {
                        frontier.push(dependency.first.clone());
                    }
                }
            }
            // Kind order: everything of the nearest earlier phase written.
            let own = phase(write.id.kind);
            if let Some((_, earlier)) = by_phase.range(..own).next_back() {
                for id in earlier {
                    if !ready.contains(id) && !written.contains(id) {
                        written.push(id.clone());
                    }
                }
            }
        }
        written.sort();
        written.dedup();
        ready.sort();
        ready.dedup();
        write.after_written = written;
        write.after_ready = ready;
    }
}

/// The writes that put back what `written` changed: a resource that
/// existed gets its earlier state back exactly (fields and tags; a workload
/// is waited for), one that did not is deleted. In reverse order, each
/// after the one before it, so that dependents go first.
pub fn restore(written: &[ResourceId], before: &HashMap<ResourceId, Value>) -> Vec<Write> {
    let mut writes: Vec<Write> = Vec::new();
    for id in written.iter().rev() {
        let (after_written, after_ready) = match writes.last() {
            Some(previous) if previous.gate => (Vec::new(), vec![previous.id.clone()]),
            Some(previous) => (vec![previous.id.clone()], Vec::new()),
            None => (Vec::new(), Vec::new()),
        };
        let write = match before.get(id) {
            Some(previous) => Write {
                id: id.clone(),
                action: Action::Update,
                method: Method::PutExact { tags: TagWrite::Replace },
                body: Some(writable(previous)),
                after_written,
                after_ready,
                gate: id.kind == Kind::Workload,
                stamp: false,
            },
            None => Write {
                id: id.clone(),
                action: Action::Delete,
                method: Method::Delete,
                body: None,
                after_written,
                after_ready,
                gate: false,
                stamp: false,
            },
        };
        writes.push(write);
    }
    writes
}

/// A live body as it can be written back: server-managed fields dropped.
pub fn writable(live: &Value) -> Value {
    let mut body = live.clone();
    if let Some(object) = body.as_object_mut() {
        for field in crate::normalize::SERVER_MANAGED {
            object.remove(*field);
        }
    }
    body
}

/// A body with `tag` set to `value`.
pub fn with_tag(body: &Value, tag: &str, value: &str) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        let tags = object.entry("tags").or_insert_with(|| json!({}));
        if let Some(tags) = tags.as_object_mut() {
            tags.insert(tag.to_owned(), Value::String(value.to_owned()));
        }
    }
    body
}

/// A PATCH that makes the live object's own fields exactly the desired
/// ones: `$replace/` for what the body sets; tags as `tags` says.
pub fn removal_patch(body: &Value, tags: &TagWrite) -> Option<Value> {
    let object = body.as_object()?;
    let mut patch = Map::new();
    for (key, value) in object {
        if !matches!(key.as_str(), "kind" | "name" | "tags" | "description" | "gvc") {
            patch.insert(format!("$replace/{key}"), value.clone());
        }
    }
    match tags {
        TagWrite::Merge => {}
        TagWrite::Drop(keys) => {
            let nulls: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            patch.insert("tags".to_owned(), Value::Object(nulls));
        }
        TagWrite::Replace => {
            patch.insert(
                "$replace/tags".to_owned(),
                object.get("tags").cloned().unwrap_or_else(|| json!({})),
            );
        }
    }
    Some(Value::Object(patch))
}

/// The copies a promotion makes: every image that must land in the
/// target's registry, from the same repository in the source's (by digest
/// when known), once per destination. Only with the `copy` strategy.
pub fn copies(
    images: &[ImageChange],
    src: Option<&Environment>,
    dst: &Environment,
) -> Vec<ImageCopy> {
    let Some(src) = src else { return Vec::new() };
    if dst.images != ImageStrategy::Copy {
        return Vec::new();
    }
    let mut copies: BTreeMap<String, ImageCopy> = BTreeMap::new();
    for image in images.iter().filter(|i| i.copy == Some(true)) {
        let parsed = classify(&image.after, None);
        let version = match (&image.digest, &image.tag) {
            (Some(digest), _) => format!("@{digest}"),
            (None, Some(tag)) => format!(":{tag}"),
            (None, None) => ":latest".to_owned(),
        };
        let tag = image.tag.clone().unwrap_or_else(|| "latest".to_owned());
        let source = format!("{}/{}{version}", src.registry, parsed.repository);
        let destination = format!("{}/{}:{tag}", dst.registry, parsed.repository);
        copies.insert(destination.clone(), ImageCopy { source, destination });
    }
    copies.into_values().collect()
}

/// What must hold in the target before the first write: its own-registry
/// images there (after copying), the pull secret of the `pull-secret`
/// strategy linked and holding the source's registry, every location the
/// GVC is placed in.
pub fn checks(
    images: &[ImageChange],
    bodies: &HashMap<ResourceId, Value>,
    src: Option<&Environment>,
    dst: &Environment,
) -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    if matches!(dst.images, ImageStrategy::Copy | ImageStrategy::None) {
        let mut seen = HashSet::new();
        for image in images {
            if classify(&image.after, Some(dst.own_registry())).source != Source::Own {
                continue;
            }
            let (repository, tag) = landing(image);
            if seen.insert((repository.clone(), tag.clone(), image.digest.clone())) {
                checks.push(Check::Image { repository, tag, digest: image.digest.clone() });
            }
        }
    }
    let gvcs: Vec<&Value> =
        bodies.iter().filter(|(id, _)| id.kind == Kind::Gvc).map(|(_, body)| body).collect();
    if let ImageStrategy::PullSecret { secret } = &dst.images {
        let linked = gvcs.iter().any(|gvc| {
            gvc.pointer("/spec/pullSecretLinks").and_then(Value::as_array).is_some_and(|links| {
                links
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|l| l.rsplit('/').next() == Some(secret.as_str()))
            })
        });
        checks.push(Check::PullSecret {
            secret: secret.clone(),
            linked,
            registry: src.map(|s| s.registry.clone()),
            source: src.map(|s| s.name.clone()),
        });
    }
    let mut locations: Vec<String> = gvcs
        .iter()
        .filter_map(|gvc| gvc.pointer("/spec/staticPlacement/locationLinks"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(|link| link.rsplit('/').next().unwrap_or(link).to_owned())
        .collect();
    locations.sort();
    locations.dedup();
    checks.extend(locations.into_iter().map(|name| Check::Location { name }));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::LiveState;

    fn id(text: &str) -> ResourceId {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn resource(text: &str, action: Action) -> ResourcePlan {
        ResourcePlan {
            id: text.into(),
            action,
            wave: None,
            changes: vec![],
            diff: None,
            live: LiveState { exists: false, version: None, fingerprint: None },
            desired_hash: None,
            adopt_tag: None,
            shared_with: Vec::new(),
        }
    }

    fn graph(edges: &[(&str, &str)]) -> Graph {
        Graph::of_ordering(edges)
    }

    fn planned(resources: &[ResourcePlan], edges: &[(&str, &str)], prune: bool) -> Vec<Write> {
        let bodies: HashMap<ResourceId, Value> = resources
            .iter()
            .map(|r| (id(&r.id), json!({"name": r.id, "data": {"k": "payload"}})))
            .collect();
        let removals = HashMap::new();
        let bodies = Bodies { bodies: &bodies, removals: &removals };
        writes(resources, &bodies, &graph(edges), prune, &mut Secrets::default())
    }

    fn find<'a>(writes: &'a [Write], text: &str) -> &'a Write {
        writes.iter().find(|w| w.id == id(text)).unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn a_write_waits_for_what_it_depends_on_and_only_that() {
        let resources = [
            resource("secret/db", Action::Update),
            resource("identity/api", Action::Unchanged),
            resource("workload/api", Action::Update),
            resource("workload/slow", Action::Create),
            resource("workload/web", Action::Update),
            resource("domain/shop", Action::Create),
        ];
        let edges = [
            ("secret/db", "identity/api"),
            ("identity/api", "workload/api"),
            ("workload/slow", "domain/shop"),
            ("workload/api", "workload/web"),
        ];
        let writes = planned(&resources, &edges, false);
        let api = find(&writes, "workload/api");
        // Through the unchanged identity, and the secret's phase before.
        assert_eq!(api.after_written, [id("secret/db")]);
        assert!(api.after_ready.is_empty());
        assert!(api.gate && api.stamp);
        // A workload another depends on is waited for until ready.
        let web = find(&writes, "workload/web");
        assert_eq!(web.after_ready, [id("workload/api")]);
        // The slow workload holds back only what routes to it.
        let shop = find(&writes, "domain/shop");
        assert_eq!(shop.after_ready, [id("workload/slow")]);
        assert!(!shop.after_written.contains(&id("workload/slow")));
        assert!(find(&writes, "secret/db").after_written.is_empty());
    }

    #[test]
    fn deletes_only_with_prune_and_after_everything() {
        let resources =
            [resource("workload/api", Action::Update), resource("workload/old", Action::Delete)];
        assert_eq!(planned(&resources, &[], false).len(), 1);
        let writes = planned(&resources, &[], true);
        let old = find(&writes, "workload/old");
        assert_eq!((old.method.clone(), old.body.clone()), (Method::Delete, None));
        assert_eq!(old.after_ready, [id("workload/api")]);
    }

    #[test]
    fn an_adopt_without_field_changes_patches_the_managed_tag_alone() {
        let adopt = |text: &str, changes: Vec<diff::Change>| ResourcePlan {
            changes,
            adopt_tag: Some("prod".into()),
            ..resource(text, Action::Adopt)
        };
        let memory = diff::Change {
            path: "spec.containers[main].memory".into(),
            op: diff::Op::Change,
            before: Some(json!("128Mi")),
            after: Some(json!("256Mi")),
            sensitive: false,
            forces_replacement: false,
        };
        let resources = [adopt("workload/web", vec![]), adopt("workload/api", vec![memory])];
        let writes = planned(&resources, &[], false);
        let web = find(&writes, "workload/web");
        assert_eq!(web.method, Method::Patch);
        assert_eq!(web.body, Some(json!({"tags": {crate::plan::MANAGED_TAG: "prod"}})));
        assert!(!web.gate && !web.stamp, "a tag alone rolls nothing out");
        let api = find(&writes, "workload/api");
        assert_eq!((api.method.clone(), api.gate, api.stamp), (Method::Put, true, true));
    }

    #[test]
    fn secret_payloads_stay_out_of_the_steps_and_come_back_by_their_mark() {
        let mut secrets = Secrets::default();
        let resources = [resource("secret/db", Action::Create)];
        let bodies = HashMap::from([(id("secret/db"), json!({"data": {"payload": "s3cr3t"}}))]);
        let removals = HashMap::new();
        let bodies = Bodies { bodies: &bodies, removals: &removals };
        let writes = writes(&resources, &bodies, &graph(&[]), false, &mut secrets);
        let text = serde_json::to_string(&writes).unwrap_or_default();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(secrets.body_of(&writes[0]), Ok(Some(json!({"data": {"payload": "s3cr3t"}}))));
        let mut other = Secrets::default();
        other.insert(id("secret/db"), json!({"payload": "changed"}));
        assert_eq!(other.body_of(&writes[0]), Err(id("secret/db")));
        assert_eq!(Secrets::default().body_of(&writes[0]), Err(id("secret/db")));
        assert_eq!(format!("{secrets:?}"), "Secrets(1 payloads hidden)");
        // Serialized, the body holds nothing derived from the payload; a
        // saved plan's write takes the payload read again for it.
        let digest = crate::diff::hash(&json!({"payload": "s3cr3t"}));
        assert!(!text.contains(&digest) && !text.contains('#'), "{text}");
        let saved: Vec<Write> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(saved[0].body, Some(json!({"data": crate::diff::HIDDEN})));
        assert_eq!(other.body_of(&saved[0]), Ok(Some(json!({"data": {"payload": "changed"}}))));
        assert_eq!(Secrets::default().body_of(&saved[0]), Err(id("secret/db")));
    }

    #[test]
    fn a_saved_plans_secrets_must_change_as_planned_when_read_again() {
        let file = "manifests: {path: m}\ntopology: org-per-env\nenvironments:\n  - {name: prod, org: acme-p, gvc: app, tokenEnv: T}\n";
        let config = crate::config::parse(&crate::diagnostic::SourceFile::new("p.yaml", file))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let env = &config.environments[0];
        let body = |payload: &str| json!({"kind": "secret", "name": "db", "type": "opaque", "data": {"payload": payload}});
        let changed = ResourcePlan {
            changes: vec![crate::diff::Change {
                path: "data".into(),
                op: crate::diff::Op::Change,
                before: Some(json!(crate::diff::HIDDEN)),
                after: Some(json!(crate::diff::HIDDEN)),
                sensitive: true,
                forces_replacement: false,
            }],
            ..resource("secret/db", Action::Update)
        };
        let unchanged = resource("secret/db", Action::Unchanged);
        let at = |payload: &str| HashMap::from([(id("secret/db"), body(payload))]);
        let live = at("old");
        let moved = |plan: &ResourcePlan, now: &str| {
            payloads_moved(std::slice::from_ref(plan), env, &at(now), &live)
        };
        assert!(moved(&changed, "new").is_empty(), "changed, as planned");
        assert!(moved(&changed, "other").is_empty(), "changed, to what no plan can say");
        assert_eq!(moved(&changed, "old"), [id("secret/db")], "no longer changed");
        assert!(moved(&unchanged, "old").is_empty(), "unchanged, as planned");
        assert_eq!(moved(&unchanged, "new"), [id("secret/db")], "changed since");
        let created = resource("secret/db", Action::Create);
        assert!(payloads_moved(&[created], env, &at("new"), &HashMap::new()).is_empty());
    }

    #[test]
    fn steps_round_trip_through_json() {
        let resources =
            [resource("workload/api", Action::Update), resource("secret/db", Action::Replace)];
        let writes = planned(&resources, &[("secret/db", "workload/api")], false);
        let text = serde_json::to_string(&writes).unwrap_or_default();
        let back: Vec<Write> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, writes, "equal as saved: the secret's mark is the run's own");
        assert!(text.contains(r#""data":"(value hidden)""#), "{text}");
        assert!(text.contains(r#""method":"recreate""#), "{text}");
    }

    #[test]
    fn restoring_reverses_and_deletes_what_was_created() {
        let (a, b) = (id("secret/a"), id("workload/b"));
        let before: HashMap<ResourceId, Value> =
            [(a.clone(), json!({"name": "a", "version": 3, "data": {"x": 1}}))].into();
        let steps = restore(&[a.clone(), b.clone()], &before);
        assert_eq!(
            steps.iter().map(|s| (s.id.to_string(), s.action)).collect::<Vec<_>>(),
            [("workload/b".to_owned(), Action::Delete), ("secret/a".to_owned(), Action::Update)]
        );
        assert_eq!(steps[1].body, Some(json!({"name": "a", "data": {"x": 1}})));
        assert_eq!(steps[1].after_written, [b]);
    }

    #[test]
    fn removal_patches_replace_what_the_body_sets() {
        let body = json!({"kind": "workload", "name": "api", "tags": {"a": "b"}, "spec": {"type": "standard"}});
        assert_eq!(
            removal_patch(&body, &TagWrite::Merge),
            Some(json!({"$replace/spec": {"type": "standard"}}))
        );
        assert_eq!(
            removal_patch(&body, &TagWrite::Drop(vec!["old".into()])),
            Some(json!({"$replace/spec": {"type": "standard"}, "tags": {"old": null}}))
        );
        assert_eq!(
            removal_patch(&body, &TagWrite::Replace),
            Some(json!({"$replace/spec": {"type": "standard"}, "$replace/tags": {"a": "b"}}))
        );
    }
}
