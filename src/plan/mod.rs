//! A plan: what promoting into one environment will change, as data.
//!
//! Pure. [`build`] takes the rendered (desired) resources, the live state
//! read from the environment, and the graph, and gives a [`Plan`]: per
//! resource an action, field changes and a unified YAML diff (secrets
//! hidden), in wave order; image changes; and, so that a later apply can
//! refuse if anything moved, each resource's live `version` and a
//! fingerprint of its live state, and a hash of the whole plan. The plan
//! also carries its [`Steps`]: what [`crate::execute`] does to carry it out
//! (copies, checks, writes with their dependencies and readiness gates,
//! the release to record), so that a saved plan is carried out as it was
//! approved. [`promotion`] is the planner of a promotion (and of a deploy
//! from git, a promotion without a source); [`adopt`], that of `ferry
//! import --adopt`.

pub mod adopt;
pub mod deploy;
pub mod promotion;
mod report;
pub mod rollback;
pub mod steps;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::applied::{Applied, Fields};
use crate::config::{Environment, MaxDeletes};
use crate::diagnostic::Problem;
use crate::diff::{self, Action, Change, HIDDEN};
use crate::graph::Graph;
use crate::manifest::{Kind, ResourceId};
use crate::repo::Revision;

pub use report::{Style, images_plain, origins, resource_plain, summary_line, text};
pub use steps::{Check, ImageCopy, Method, ReleaseInfo, Secrets, Steps, TagWrite, Write};

/// Version of the plan's JSON form (`--output json`, `--out`). v2 added the
/// steps; v3 the [`Origin`] and `created` under the hash; `ferry apply`
/// refuses any other version.
pub const SCHEMA: &str = "ferry.plan/v3";

/// The tag Ferry sets on every resource it manages, with the environment's
/// name: resources carrying it that left git are planned as deletes.
pub const MANAGED_TAG: &str = "ferry/environment";

/// What a plan is about.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub environment: String,
    pub org: String,
    pub gvc: String,
    /// The environment whose live images are promoted (`--from`, or the
    /// environment's source).
    pub source: Option<String>,
    /// The manifests' git revision (`None` from the work tree).
    pub revision: Option<Revision>,
    /// Why the manifests were read at `revision`.
    pub manifests_from: ManifestsFrom,
    /// Where the container images come from.
    pub images_from: ImagesFrom,
}

/// Why a plan's manifests were read where they were.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ManifestsFrom {
    /// The commit the source environment's last successful release
    /// recorded: what runs there.
    Release { environment: String, release: u64 },
    /// `--ref`.
    Ref,
    /// The plan file's `manifests.revision`: there is no source
    /// environment, or it has no successful release with a commit yet.
    PlanFile,
    /// `--worktree`: the files on disk.
    Worktree,
    /// None were read: a rollback changes images only.
    Unread,
    /// None were read: `ferry import --adopt` writes the managed tag on
    /// what runs, as import wrote it ([`adopt`]).
    Imported,
}

/// Where a plan's container images come from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ImagesFrom {
    /// What the source environment's live workloads run, by digest.
    Source,
    /// As the manifests write them.
    Manifests,
    /// As an earlier release of the environment ran them, by digest (a
    /// rollback).
    Release,
    /// As the environment's workloads run them, unchanged ([`adopt`]).
    Running,
}

/// One resource as the plan sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResourcePlan {
    /// `kind/name`.
    pub id: String,
    pub action: Action,
    /// 1-based apply wave; `None` for deletes.
    pub wave: Option<usize>,
    pub changes: Vec<Change>,
    /// Unified YAML diff, live to desired, secrets hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub live: LiveState,
    /// Hash of the desired state, a secret's payload left out (it is
    /// compared in memory only: [`diff::hidden_data`]); `None` for deletes.
    pub desired_hash: Option<String>,
    /// An adopt's value of the managed tag ([`MANAGED_TAG`]), written
    /// whether or not a field changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_tag: Option<String>,
    /// Every environment this resource serves, when it is one object for
    /// several (an org-level resource of a gvc-per-env pipeline): a change
    /// reaches them all at once ([`shared_refusal`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// The live state a plan was made against.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveState {
    /// `false` when the resource does not exist.
    pub exists: bool,
    pub version: Option<u64>,
    /// Hash of the normalized live state and the item's `id`, a secret's
    /// payload left out: the live `version` (bumped on every write) and
    /// `id` (new when the secret is deleted and made again) say that it
    /// did not move, so nothing derived from a payload is saved.
    pub fingerprint: Option<String>,
}

/// A container whose image changes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageChange {
    pub workload: String,
    pub container: String,
    pub before: Option<String>,
    pub after: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// Whether the image must be copied into the environment's registry;
    /// `None` when it could not be checked.
    pub copy: Option<bool>,
    /// The registry host of an image from an external registry (never
    /// copied; `digest` is then the one the source ran, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub images_to_copy: usize,
    /// Resources that exist but Ferry did not create (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopt: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.replace + self.delete + self.adopt + self.images_to_copy
            > 0
    }
}

/// The whole plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub schema: String,
    #[serde(flatten)]
    pub target: Target,
    pub resources: Vec<ResourcePlan>,
    pub images: Vec<ImageChange>,
    pub summary: Summary,
    /// What carrying the plan out does.
    pub steps: Steps,
    /// What a rollback plan goes back to, and what it leaves as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Where the plan was made: the plan file's topology and the endpoints
    /// (and the source's org and GVC) it named; `ferry apply` refuses a
    /// plan whose origin differs from the plan file's now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// A deploy's `--image NAME=REF` as given (own-registry images only),
    /// so that `ferry apply` makes the plan again with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_overrides: Vec<String>,
    /// Made with `--change-shared`: the changes of resources other
    /// environments share are accepted for all of them (and recorded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub change_shared: bool,
    /// sha256 of the plan's canonical JSON with this field empty
    /// (`created` included: a saved plan's age is part of what was
    /// approved).
    pub hash: String,
    /// When a saved plan was made (RFC 3339; written by `ferry plan
    /// --out`), for `approval.maxPlanAge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The payloads of the secrets the steps write, never serialized.
    #[serde(skip)]
    pub secrets: Secrets,
}

/// Where a plan was made: what of the plan file, beside the target's org
/// and GVC, decides which API and which environments it talks to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    pub topology: crate::config::Topology,
    /// The target's API endpoint, as resolved (plan file, else
    /// `$CPLN_ENDPOINT`, else the default).
    pub endpoint: String,
    /// The source environment's place, when the plan has a source.
    pub source: Option<Place>,
}

/// An environment's org, GVC and API endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Place {
    pub org: String,
    pub gvc: String,
    pub endpoint: String,
}

/// What a rollback goes back to ([`rollback`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rollback {
    /// The release whose images come back.
    pub to: u64,
    /// The release running now (the newest that succeeded), if any.
    pub current: Option<u64>,
    /// What the rollback does not bring back, one sentence each.
    pub not_restored: Vec<String>,
}

impl Plan {
    /// Records where the plan was made, and hashes it again.
    pub fn bind(&mut self, origin: Origin) {
        self.origin = Some(origin);
        self.hash = self.compute_hash();
    }

    /// Stamps a saved plan with when it was made, and hashes it again.
    pub fn stamp(&mut self, created: String) {
        self.created = Some(created);
        self.hash = self.compute_hash();
    }

    /// The hash this plan should carry.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        serde_json::to_value(&unhashed).map(|v| diff::hash(&v)).unwrap_or_default()
    }
}

/// A resource's state, normalized for comparison: server fields stripped,
/// platform tags dropped, secret `data` replaced by its in-memory mark.
#[derive(Clone, Debug)]
pub struct State {
    pub id: ResourceId,
    pub body: Value,
    /// The live `version` (live states only).
    pub version: Option<u64>,
    /// The live item's `id` (live states only).
    pub item: Option<String>,
}

impl State {
    /// A live body of `env` in the form plans compare, with its version.
    pub fn live(env: &Environment, id: &ResourceId, body: &Value) -> Self {
        State {
            id: id.clone(),
            body: comparable(id.kind, &id.name, &env.org, &env.gvc, body),
            version: body.get("version").and_then(Value::as_u64),
            item: body.get("id").and_then(Value::as_str).map(str::to_owned),
        }
    }
}

/// Everything a plan is made from.
pub struct Input<'a> {
    pub target: Target,
    pub graph: &'a Graph,
    pub desired: Vec<State>,
    /// Live states of the desired resources that exist.
    pub live: HashMap<ResourceId, State>,
    /// Live resources tagged as managed for this environment; those not
    /// desired any more are deletes.
    pub managed: Vec<State>,
    pub images: Vec<ImageChange>,
    /// What Ferry last wrote to the live resources (the three-way rule of
    /// [`diff::compare`]; empty: nothing recorded).
    pub applied: Applied,
    /// What the steps are made from.
    pub steps: StepInput,
}

/// What a plan's [`Steps`] are made from, beside the resources' actions.
#[derive(Debug, Default)]
pub struct StepInput {
    /// The desired bodies as they are written (secrets with their payload).
    pub bodies: HashMap<ResourceId, Value>,
    /// Delete managed resources that left git.
    pub prune: bool,
    pub copies: Vec<ImageCopy>,
    pub checks: Vec<Check>,
    pub release: ReleaseInfo,
    /// Writes the planner made itself (a rollback's PATCHes); `None`:
    /// from the bodies, by dependency.
    pub writes: Option<Vec<Write>>,
    /// The fields the record of Ferry's last write holds once the steps
    /// succeed ([`Steps::applied`]); empty: the record is left as it is.
    pub applied: std::collections::BTreeMap<ResourceId, Fields>,
}

/// A body in the form plans compare: normalized as the API stores it,
/// platform tags dropped, a secret's `data` replaced by its in-memory mark
/// ([`diff::hidden_data`]; never serialized: [`diff::unmarked`]).
pub fn comparable(kind: Kind, name: &str, org: &str, gvc: &str, body: &Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        let scope = crate::normalize::Scope { org, gvc: kind.is_gvc_scoped().then_some(gvc) };
        crate::normalize::normalize(kind.as_str(), name, scope, map);
        if kind == Kind::Secret
            && let Some(data) = map.get_mut("data")
        {
            *data = diff::hidden_data(data);
        }
    }
    diff::without_platform_tags(&mut body);
    body
}

/// Containers whose image differs between desired and live workloads
/// (`copy` left for the caller to check against the registry).
pub fn image_changes<'a>(
    desired: impl IntoIterator<Item = (&'a ResourceId, &'a Value)>,
    live: &HashMap<ResourceId, Value>,
) -> Vec<ImageChange> {
    let mut changes = Vec::new();
    for (id, body) in desired.into_iter().filter(|(id, _)| id.kind == Kind::Workload) {
        for (container, after) in container_images(body) {
            let before = live
                .get(id)
                .and_then(|l| container_images(l).into_iter().find(|(c, _)| *c == container))
                .map(|(_, image)| image.to_owned());
            if before.as_deref() == Some(after) {
                continue;
            }
            let parsed = crate::manifest::image::classify(after, None);
            changes.push(ImageChange {
                workload: id.name.clone(),
                container: container.to_owned(),
                before,
                after: after.to_owned(),
                tag: parsed.tag.map(str::to_owned),
                digest: parsed.digest.map(str::to_owned),
                copy: None,
                external: None,
            });
        }
    }
    changes
}

/// `(container, image)` of a workload body.
pub fn container_images(body: &Value) -> Vec<(&str, &str)> {
    body.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("image")?.as_str()?)))
        .collect()
}

/// Makes the plan.
pub fn build(input: Input<'_>) -> Plan {
    let wave_of = |id: &ResourceId| {
        let found = if id.kind == Kind::Gvc {
            input.graph.waves.iter().position(|w| w.iter().any(|i| i.kind == Kind::Gvc))
        } else {
            input.graph.wave_of(id)
        };
        found.map(|w| w + 1)
    };
    let mut removals: HashMap<ResourceId, Value> = HashMap::new();
    let mut resources: Vec<ResourcePlan> = input
        .desired
        .iter()
        .map(|desired| {
            let live = input.live.get(&desired.id);
            let last = input.applied.get(&desired.id);
            let (plan, removal) = resource_plan(desired, live, last, wave_of(&desired.id));
            if let Some(removal) = removal {
                removals.insert(desired.id.clone(), removal);
            }
            plan
        })
        .collect();
    let mut deletes: Vec<ResourcePlan> = input
        .managed
        .iter()
        .filter(|live| !input.desired.iter().any(|d| d.id == live.id))
        .map(|live| ResourcePlan {
            id: live.id.to_string(),
            action: Action::Delete,
            wave: None,
            changes: Vec::new(),
            diff: None,
            live: live_state(Some(live)),
            desired_hash: None,
            adopt_tag: None,
            shared_with: Vec::new(),
        })
        .collect();
    resources.sort_by(|a, b| (a.wave, &a.id).cmp(&(b.wave, &b.id)));
    deletes.sort_by(|a, b| a.id.cmp(&b.id));
    resources.extend(deletes);
    let count = |action| resources.iter().filter(|r| r.action == action).count();
    let summary = Summary {
        create: count(Action::Create),
        update: count(Action::Update),
        replace: count(Action::Replace),
        delete: count(Action::Delete),
        unchanged: count(Action::Unchanged),
        adopt: count(Action::Adopt),
        images_to_copy: {
            let mut distinct: Vec<&str> = input
                .images
                .iter()
                .filter(|i| i.copy == Some(true))
                .map(|i| i.after.as_str())
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.len()
        },
    };
    let mut secrets = Secrets::default();
    let step_input = input.steps;
    let writes = match step_input.writes {
        Some(writes) => writes,
        None => steps::writes(
            &resources,
            &steps::Bodies { bodies: &step_input.bodies, removals: &removals },
            input.graph,
            step_input.prune,
            &mut secrets,
        ),
    };
    let mut plan = Plan {
        schema: SCHEMA.to_owned(),
        target: input.target,
        resources,
        images: input.images,
        summary,
        steps: Steps {
            copies: step_input.copies,
            checks: step_input.checks,
            writes,
            release: step_input.release,
            applied: step_input.applied,
        },
        rollback: None,
        hash: String::new(),
        origin: None,
        image_overrides: Vec::new(),
        change_shared: false,
        created: None,
        secrets,
    };
    plan.hash = plan.compute_hash();
    plan
}

/// Why `--prune` must not carry out `plan` in `env`: more deletes than
/// `prune.maxDeletes` allows (by default a quarter of the resources Ferry
/// manages there, rounded down, at least 1). The resources it manages are
/// those of the plan that exist in the environment, deletes included
/// (adopted ones are not managed yet).
pub fn prune_refusal(plan: &Plan, env: &Environment) -> Option<Problem> {
    let deletes: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.action == Action::Delete)
        .map(|r| r.id.as_str())
        .collect();
    let managed =
        plan.resources.iter().filter(|r| r.live.exists && r.action != Action::Adopt).count();
    let (limit, why) = match &env.max_deletes {
        Some(max) => (max.count as usize, (max.location.clone(), "`prune.maxDeletes`".to_owned())),
        None => (
            MaxDeletes::default_for(managed),
            (
                env.location.clone(),
                format!("no `prune.maxDeletes`: a quarter of {managed} managed, at least 1"),
            ),
        ),
    };
    if deletes.len() <= limit {
        return None;
    }
    Some(
        Problem::new(
            "ferry::promote::too-many-deletes",
            format!(
                "--prune would delete {} resource{} from {}, more than the {limit} its plan file allows: {}",
                deletes.len(),
                if deletes.len() == 1 { "" } else { "s" },
                env.name,
                deletes.join(", ")
            ),
        )
        .at(why.0, why.1)
        .help(format!(
            "nothing is written or deleted then; if these deletes are meant, raise `prune.maxDeletes` of {} in the plan file, or promote without --prune (deletes are then left for later)",
            env.name
        )),
    )
}

/// The plan of one desired resource, and the PATCH removing what git
/// removed from it (if anything was).
fn resource_plan(
    desired: &State,
    live: Option<&State>,
    last: Option<&Fields>,
    wave: Option<usize>,
) -> (ResourcePlan, Option<Value>) {
    let adopt_tag = live.and_then(|l| adoption(&desired.body, &l.body));
    // An adopt's changes are its fields': the managed tag is its own.
    let compared = live.map(|l| match &adopt_tag {
        Some(value) => with_managed_tag(&l.body, value),
        None => l.body.clone(),
    });
    let diff::Compared { mut action, changes, removals } =
        diff::compare(desired.id.kind, Some(&desired.body), compared.as_ref(), last);
    if adopt_tag.is_some() && action != Action::Replace {
        action = Action::Adopt;
    }
    // The live side as compared: without the fields that are the server's.
    let shown = |l: &State| unified(&diff::owned(&desired.body, &l.body, last), &desired.body);
    let diff = match action {
        Action::Update | Action::Replace => live.map(shown),
        Action::Adopt if !changes.is_empty() => live.map(shown),
        _ => None,
    };
    let plan = ResourcePlan {
        id: desired.id.to_string(),
        action,
        wave,
        changes,
        diff,
        live: live_state(live),
        desired_hash: Some(diff::hash(&diff::unmarked(&desired.body))),
        adopt_tag: adopt_tag.filter(|_| action == Action::Adopt),
        shared_with: Vec::new(),
    };
    (plan, removals)
}

/// The managed tag's value when `desired` carries it and `live` carries
/// none: the resource exists, but Ferry did not create it (or adopt it).
/// A live tag of another value is Ferry's (another owner), not an adopt.
pub fn adoption(desired: &Value, live: &Value) -> Option<String> {
    let value = desired.pointer(&tag_pointer())?.as_str()?;
    live.pointer(&tag_pointer()).is_none().then(|| value.to_owned())
}

/// The shared resources ([`ResourcePlan::shared_with`]) `plan` changes:
/// updated or replaced, or deleted by its writes (`--prune`). Creating one
/// changes nothing another environment uses yet.
pub fn shared_changes(plan: &Plan) -> Vec<&ResourcePlan> {
    let deletes: Vec<&str> = plan
        .steps
        .writes
        .iter()
        .filter(|w| w.method == Method::Delete)
        .map(|w| w.id.name.as_str())
        .collect();
    plan.resources
        .iter()
        .filter(|r| !r.shared_with.is_empty())
        .filter(|r| match r.action {
            Action::Update | Action::Replace => true,
            Action::Delete => deletes.iter().any(|name| r.id.ends_with(&format!("/{name}"))),
            _ => false,
        })
        .collect()
}

/// A release into `dst` that would change what other environments share
/// (`shared_changes`), unless `dst` is the last environment (where a
/// change arrives last anyway) or the plan was made with
/// `--change-shared`: refused before anything is written.
pub fn shared_refusal(
    plan: &Plan,
    dst: &crate::config::Environment,
    last: &str,
) -> Option<crate::diagnostic::Problem> {
    if plan.change_shared || dst.name == last {
        return None;
    }
    let changed = shared_changes(plan);
    let first = changed.first()?;
    let ids: Vec<&str> = changed.iter().map(|r| r.id.as_str()).collect();
    let others: Vec<&str> =
        first.shared_with.iter().map(String::as_str).filter(|e| *e != dst.name).collect();
    Some(
        crate::diagnostic::Problem::new(
            "ferry::plan::shared-change",
            format!(
                "this release into {} would change {}, which {} share{} (one object in the org for every environment of a gvc-per-env pipeline); nothing was written",
                dst.name,
                ids.join(", "),
                others.join(", "),
                if others.len() == 1 { "s" } else { "" },
            ),
        )
        .help(format!(
            "to change it for every environment now, pass --change-shared (the release records it); to give each environment its own copy of secrets and policies, set `sharedResources: perEnvironment` in the plan file; else leave the change for the release into {last} (docs/promotion-file.md, \"Shared resources\")"
        )),
    )
}

/// The resources `rendered` defines that live as another app's: their
/// live managed tag names another app (or none, for a plan file without
/// one, while this one names its app, and the other way round). Two apps
/// never manage one resource: each is an error at its definition, naming
/// both apps (docs/apps.md).
pub fn other_apps(
    env: &crate::config::Environment,
    rendered: &[crate::render::Rendered],
    live: &HashMap<ResourceId, Value>,
) -> crate::diagnostic::Problems {
    let name = |app: Option<&str>| match app {
        Some(app) => format!("app `{app}`"),
        None => "a plan file without `app`".to_owned(),
    };
    let mut problems = crate::diagnostic::Problems::default();
    for resource in rendered {
        let Some(owner) = live.get(&resource.id).and_then(|body| other_app_owner(env, body)) else {
            continue;
        };
        let (theirs, ours) = (crate::config::app_of(owner), env.app.as_deref());
        problems.push(
            crate::diagnostic::Problem::new(
                "ferry::plan::other-app",
                format!(
                    "{} in {} is managed by {} (its tag `{MANAGED_TAG}: {owner}`), and this plan file is {}",
                    resource.id,
                    env.name,
                    name(theirs),
                    name(ours)
                ),
            )
            .at(resource.location.clone(), "defined by two apps")
            .help("two apps never manage one resource: keep it in one app's manifests (the other may link to it), or name the copies apart"),
        );
    }
    problems
}

/// The managed tag's value on `live` when it names another app than
/// `env`'s (or one while `env` has none, or none while `env` has one);
/// `None` for its own app's, and for an unmanaged resource.
pub fn other_app_owner<'a>(env: &crate::config::Environment, live: &'a Value) -> Option<&'a str> {
    let owner = live.pointer(&tag_pointer())?.as_str()?;
    (crate::config::app_of(owner) != env.app.as_deref()).then_some(owner)
}

/// Whether a live body lacks the managed tag (Ferry did not create it).
pub fn unmanaged(live: &Value) -> bool {
    live.pointer(&tag_pointer()).is_none()
}

fn tag_pointer() -> String {
    format!("/tags/{}", MANAGED_TAG.replace('~', "~0").replace('/', "~1"))
}

/// `body` with the managed tag set to `value`.
fn with_managed_tag(body: &Value, value: &str) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        let tags = map.entry("tags").or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(tags) = tags {
            tags.insert(MANAGED_TAG.to_owned(), Value::String(value.to_owned()));
        }
    }
    body
}

/// The repository and tag an image change lands as (`latest` without a tag).
pub fn landing(change: &ImageChange) -> (String, String) {
    let repository = crate::manifest::image::classify(&change.after, None).repository.to_owned();
    (repository, change.tag.clone().unwrap_or_else(|| "latest".to_owned()))
}

/// What a plan records of a live resource: whether it exists, its version
/// and the fingerprint of its comparable state and `id` (a secret's
/// payload left out).
pub fn live_state(live: Option<&State>) -> LiveState {
    LiveState {
        exists: live.is_some(),
        version: live.and_then(|l| l.version),
        fingerprint: live.map(|l| {
            diff::hash(&serde_json::json!({"body": diff::unmarked(&l.body), "id": l.item}))
        }),
    }
}

/// A unified diff of the YAML of two bodies, secret markers shown as
/// "(value hidden)" only.
fn unified(before: &Value, after: &Value) -> String {
    let (before, after) = (
        crate::manifest::yaml::to_yaml(&shown(before)),
        crate::manifest::yaml::to_yaml(&shown(after)),
    );
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("live", "desired")
        .to_string()
}

/// The body as diffs show it: keys sorted (so that only real changes
/// differ) and marks of hidden values reduced to "(value hidden)".
fn shown(value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with(HIDDEN) => Value::String(HIDDEN.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(shown).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), shown(&map[k]))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_change_is_refused_but_into_the_last_environment_or_when_accepted() {
        let plan = |action: &str, shared: &[&str], accepted: bool| {
            serde_json::from_value::<Plan>(json!({
                "schema": SCHEMA, "environment": "staging", "org": "o", "gvc": "g",
                "source": null, "revision": null, "manifests_from": {"kind": "worktree"},
                "images_from": "manifests", "images": [],
                "resources": [{"id": "secret/conf", "action": action, "wave": 1, "changes": [],
                    "live": {"exists": true, "version": 1, "fingerprint": null},
                    "desired_hash": null, "shared_with": shared}],
                "summary": {"create": 0, "update": 0, "replace": 0, "delete": 0, "unchanged": 0, "images_to_copy": 0},
                "steps": {"copies": [], "checks": [], "writes": [], "release": {"source": null, "commit": null, "images": []}},
                "change_shared": accepted, "hash": ""
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut staging = crate::api::fake::environment();
        staging.name = "staging".into();
        let both = ["staging", "prod"];
        let refused = shared_refusal(&plan("update", &both, false), &staging, "prod");
        let said = refused.map(|p| p.to_string()).unwrap_or_default();
        assert!(said.contains("would change secret/conf, which prod shares"), "{said}");
        assert!(shared_refusal(&plan("update", &both, true), &staging, "prod").is_none());
        assert!(shared_refusal(&plan("update", &both, false), &staging, "staging").is_none());
        assert!(shared_refusal(&plan("create", &both, false), &staging, "prod").is_none());
        assert!(shared_refusal(&plan("update", &[], false), &staging, "prod").is_none());
        // A delete refuses only when the plan carries it out (--prune).
        assert!(shared_refusal(&plan("delete", &both, false), &staging, "prod").is_none());
    }

    #[test]
    fn a_resource_another_app_manages_is_named_with_both_apps() {
        use crate::diagnostic::{Location, SourceFile};
        let mut env = crate::api::fake::environment();
        env.app = Some("billing".into());
        let file = SourceFile::new("billing/config.yaml", "kind: secret\nname: app-config\n");
        let id: ResourceId = "secret/app-config".parse().unwrap_or_else(|_| panic!());
        let rendered = [crate::render::Rendered::new(
            id.clone(),
            json!({"kind": "secret"}),
            Location::new(&file, 0..4),
        )];
        let live =
            |owner: &str| HashMap::from([(id.clone(), json!({"tags": {MANAGED_TAG: owner}}))]);
        let problems = other_apps(&env, &rendered, &live("shop/prod"));
        assert_eq!(problems.len(), 1);
        let said = problems.problems[0].to_string();
        assert!(said.contains("managed by app `shop`"), "{said}");
        assert!(said.contains("this plan file is app `billing`"), "{said}");
        // Its own (any of its environments, or shared), and unmanaged: fine.
        for own in ["billing/prod", "billing/shared"] {
            assert!(other_apps(&env, &rendered, &live(own)).is_empty(), "{own}");
        }
        assert!(other_apps(&env, &rendered, &HashMap::new()).is_empty());
        // A plan file without `app` and one with it never share a resource.
        let said = other_apps(&env, &rendered, &live("prod")).problems[0].to_string();
        assert!(said.contains("managed by a plan file without `app`"), "{said}");
        env.app = None;
        assert!(other_apps(&env, &rendered, &live("prod")).is_empty());
        assert_eq!(other_apps(&env, &rendered, &live("shop/prod")).len(), 1);
    }
    use serde_json::json;

    fn state(id: &str, body: Value) -> State {
        State {
            id: id.parse().unwrap_or_else(|_| panic!("{id}")),
            body,
            version: Some(3),
            item: None,
        }
    }

    fn plan(desired: Vec<State>, live: Vec<State>, managed: Vec<State>) -> Plan {
        let graph = Graph {
            waves: vec![desired.iter().map(|d| d.id.clone()).collect()],
            dependencies: vec![],
        };
        build(Input {
            target: Target {
                environment: "prod".into(),
                org: "o".into(),
                gvc: "g".into(),
                source: None,
                revision: None,
                manifests_from: ManifestsFrom::Worktree,
                images_from: ImagesFrom::Manifests,
            },
            graph: &graph,
            live: live.into_iter().map(|s| (s.id.clone(), s)).collect(),
            desired,
            managed,
            images: vec![],
            applied: Applied::default(),
            steps: StepInput::default(),
        })
    }

    #[test]
    fn actions_and_summary() {
        let p = plan(
            vec![
                state("secret/a", json!({"x": 1})),
                state("secret/b", json!({"x": 2})),
                state("secret/c", json!({"x": 3})),
            ],
            vec![state("secret/b", json!({"x": 2})), state("secret/c", json!({"x": 4}))],
            vec![state("secret/c", json!({})), state("secret/old", json!({}))],
        );
        let actions: Vec<(&str, Action)> =
            p.resources.iter().map(|r| (r.id.as_str(), r.action)).collect();
        assert_eq!(
            actions,
            [
                ("secret/a", Action::Create),
                ("secret/b", Action::Unchanged),
                ("secret/c", Action::Update),
                ("secret/old", Action::Delete)
            ]
        );
        assert_eq!(
            (p.summary.create, p.summary.update, p.summary.delete, p.summary.unchanged),
            (1, 1, 1, 1)
        );
        assert!(
            p.resources[2]
                .diff
                .as_deref()
                .is_some_and(|d| d.contains("-x: 4") && d.contains("+x: 3"))
        );
        assert_eq!(
            p.resources[1].live,
            LiveState {
                exists: true,
                version: Some(3),
                fingerprint: Some(diff::hash(&json!({"body": {"x": 2}, "id": null})))
            }
        );
        assert_eq!(
            p.resources[0].live,
            LiveState { exists: false, version: None, fingerprint: None }
        );
    }

    #[test]
    fn prune_is_limited_by_the_plan_file_or_a_quarter_of_the_managed() {
        let file = "manifests: {path: m}\ntopology: org-per-env\nenvironments:\n  - {name: staging, org: acme-s, gvc: app, tokenEnv: T}\n  - {name: prod, org: acme-p, gvc: app, tokenEnv: T, prune: {maxDeletes: 0}}\n";
        let config = crate::config::parse(&crate::diagnostic::SourceFile::new("p.yaml", file))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let (staging, prod) = (&config.environments[0], &config.environments[1]);
        let managed = |n: usize| (0..n).map(|i| state(&format!("secret/m{i}"), json!({})));
        // 8 managed, 2 kept: 6 deletes; a quarter of 8 is 2.
        let desired = vec![state("secret/m0", json!({})), state("secret/m1", json!({}))];
        let six = plan(desired.clone(), managed(2).collect(), managed(8).collect());
        let refused = prune_refusal(&six, staging).map(|p| p.message.clone());
        assert!(
            refused
                .as_deref()
                .is_some_and(|m| m.contains("delete 6 resources from staging, more than the 2")),
            "{refused:?}"
        );
        let two = plan(desired, managed(2).collect(), managed(4).collect());
        assert!(prune_refusal(&two, staging).is_some(), "a quarter of 4 is 1");
        let one =
            plan(vec![state("secret/m0", json!({}))], managed(1).collect(), managed(2).collect());
        assert!(prune_refusal(&one, staging).is_none(), "at least 1");
        assert!(prune_refusal(&one, prod).is_some(), "maxDeletes: 0 allows none");
        let none = plan(vec![state("secret/m0", json!({}))], vec![], vec![]);
        assert!(prune_refusal(&none, prod).is_none());
        assert_eq!([0, 3, 4, 7, 8, 13].map(MaxDeletes::default_for), [1, 1, 1, 1, 2, 3]);
    }

    #[test]
    fn resources_ferry_did_not_create_are_adopted_with_their_field_changes_only() {
        let tagged = |x: i64| json!({"x": x, "tags": {MANAGED_TAG: "prod", "team": "shop"}});
        let p = plan(
            vec![
                state("secret/same", tagged(1)),
                state("secret/differs", tagged(2)),
                state("secret/ours", tagged(3)),
                state("secret/bare", json!({"x": 4, "tags": {MANAGED_TAG: "prod"}})),
                state(
                    "workload/api",
                    json!({"spec": {"type": "standard"}, "tags": {MANAGED_TAG: "prod"}}),
                ),
            ],
            vec![
                state("secret/same", json!({"x": 1, "tags": {"team": "shop"}})),
                state("secret/differs", json!({"x": 1, "tags": {"team": "shop"}})),
                state("secret/ours", tagged(2)),
                state("secret/bare", json!({"x": 4})),
                state("workload/api", json!({"spec": {"type": "stateful"}})),
            ],
            vec![state("secret/ours", tagged(2))],
        );
        let row =
            |id: &str| p.resources.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("{id}"));
        let same = row("secret/same");
        assert_eq!((same.action, same.changes.len()), (Action::Adopt, 0));
        assert_eq!(same.adopt_tag.as_deref(), Some("prod"));
        assert_eq!(same.diff, None, "no field changes, no diff");
        let differs = row("secret/differs");
        assert_eq!(differs.action, Action::Adopt);
        let paths: Vec<&str> = differs.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["x"], "the managed tag is the adopt's own, not a field change");
        assert!(differs.diff.as_deref().is_some_and(|d| d.contains("+x: 2")));
        assert_eq!(row("secret/bare").action, Action::Adopt, "no tags at all live");
        let ours = row("secret/ours");
        assert_eq!((ours.action, ours.adopt_tag.as_deref()), (Action::Update, None));
        assert_eq!(
            row("workload/api").action,
            Action::Replace,
            "an immutable field still forces it"
        );
        assert_eq!((p.summary.adopt, p.summary.update, p.summary.replace), (3, 1, 1));
        assert!(p.summary.has_changes());
        let json = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(json["resources"][0]["action"], "adopt", "{json:#}");
        assert_eq!(json["summary"]["adopt"], 3);
        let none = plan(vec![state("secret/a", json!({"x": 1}))], vec![], vec![]);
        let json = serde_json::to_value(&none).unwrap_or_default();
        assert!(json["summary"].get("adopt").is_none(), "absent when none: {json}");
    }

    #[test]
    fn adopted_resources_are_not_managed_yet_so_they_never_raise_the_prune_limit() {
        let file = "manifests: {path: m}\ntopology: org-per-env\nenvironments:\n  - {name: prod, org: acme-p, gvc: app, tokenEnv: T}\n";
        let config = crate::config::parse(&crate::diagnostic::SourceFile::new("p.yaml", file))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let tagged = json!({"tags": {MANAGED_TAG: "prod"}});
        let adopted: Vec<State> =
            (0..8).map(|i| state(&format!("secret/a{i}"), tagged.clone())).collect();
        let live: Vec<State> = (0..8).map(|i| state(&format!("secret/a{i}"), json!({}))).collect();
        let managed = vec![state("secret/old1", tagged.clone()), state("secret/old2", tagged)];
        // 2 deletes; 2 managed (the adopted 8 are not): a quarter of 2 allows 1.
        let p = plan(adopted, live, managed);
        assert_eq!(p.summary.adopt, 8);
        assert!(prune_refusal(&p, &config.environments[0]).is_some());
    }

    #[test]
    fn the_hash_covers_the_whole_plan() {
        let a = plan(vec![state("secret/a", json!({"x": 1}))], vec![], vec![]);
        let b = plan(vec![state("secret/a", json!({"x": 2}))], vec![], vec![]);
        assert_eq!(a.hash, a.compute_hash());
        assert_ne!(a.hash, b.hash);
        let round_trip: Plan = serde_json::from_value(serde_json::to_value(&a).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(round_trip, a);
    }

    #[test]
    fn a_live_secret_is_bound_by_version_and_id_never_by_its_payload() {
        let live = |payload: &str, version: u64, item: &str| State {
            version: Some(version),
            item: Some(item.to_owned()),
            ..state("secret/s", json!({"data": diff::hidden_data(&json!({"payload": payload}))}))
        };
        let planned = live_state(Some(&live("old", 3, "id-1")));
        let text = serde_json::to_string(&planned).unwrap_or_default();
        assert!(!text.contains(&diff::hash(&json!({"payload": "old"}))), "{text}");
        assert_eq!(live_state(Some(&live("old", 3, "id-1"))), planned);
        assert_ne!(live_state(Some(&live("new", 4, "id-1"))), planned, "written: a new version");
        assert_ne!(live_state(Some(&live("new", 3, "id-2"))), planned, "made again: a new id");
    }

    #[test]
    fn diffs_never_show_secret_hashes() {
        let hidden =
            |p: &str| json!({"data": diff::hidden_data(&json!({"payload": p})), "type": "opaque"});
        let p = plan(
            vec![state("secret/s", hidden("new"))],
            vec![state("secret/s", hidden("old"))],
            vec![],
        );
        let text = serde_json::to_string(&p).unwrap_or_default();
        assert!(!text.contains("sha256:"), "{text}");
        assert_eq!(p.resources[0].action, Action::Update);
    }
}
