//! `ferry status [ENV…]`: what runs where, side by side, and what each
//! promotion would change.
//!
//! Each environment is read on its own (concurrently with the others): its
//! newest release record ([`crate::history`]), every workload of its GVC
//! with its images (digests from the reference, else from the org's image
//! resources) and its readiness per location ([`crate::readiness::assess`]),
//! and its promotion lock ([`crate::lock::held`]). One that cannot be read
//! (no token, 401, endpoint unreachable) is reported as such, with why,
//! and the others are still shown.
//!
//! Each edge into a shown environment (its source → it; git → the first
//! environment) is planned exactly as `ferry plan DST --from SRC` plans it
//! ([`crate::promotion_plan`]), also concurrently, and summarized: the
//! images that differ, the resources that would change (with the fields),
//! and DST's containers that no longer run what its last successful
//! release set (changed by hand since).
//!
//! The types here are `ferry status --output json` (schema
//! [`SCHEMA`]); [`text`] is the human table. Both are pure.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use futures::future::join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use miette::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::api::{ApiError, Client, ControlPlane, paths};
use crate::cli::SourceArgs;
use crate::config::Environment;
use crate::diff::Action;
use crate::inputs::Workspace;
use crate::manifest::Kind;
use crate::manifest::image::{self, Source};
use crate::plan::{self, Plan};
use crate::promotion_plan::Promotion;
use crate::readiness::{self, LocationReport, LocationState};
use crate::release::{Outcome, Release};
use crate::{Error, connect, history, lock, observe};

/// Version of `ferry status --output json`.
pub const SCHEMA: &str = "ferry.status/v1";

/// Requests queued at once per environment; the client bounds what is in
/// flight.
const QUEUE: usize = 64;

/// How much of a location's message the table shows (all of it in JSON).
const CELL_MESSAGE: usize = 40;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: &'static str,
    pub environments: Vec<EnvironmentStatus>,
    pub edges: Vec<Edge>,
}

impl Status {
    /// Every environment was read and every edge planned.
    pub fn complete(&self) -> bool {
        self.environments.iter().all(|e| e.unreadable.is_none())
            && self.edges.iter().all(|e| e.not_planned.is_none())
    }
}

/// Why something could not be read or planned: the error's code and its
/// message with its causes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub code: Option<String>,
    /// The HTTP status, when the API answered.
    pub http_status: Option<u16>,
    pub message: String,
}

impl Unreadable {
    pub fn from_error(error: &Error) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        let http_status = match error {
            Error::Api(error) => error.status(),
            _ => None,
        };
        if let Some(status) = http_status {
            message.push_str(&format!(" (HTTP {status})"));
        }
        Unreadable { code: error.code().map(|c| c.to_string()), http_status, message }
    }
}

/// One environment as read.
#[derive(Debug, Serialize)]
pub struct EnvironmentStatus {
    pub name: String,
    pub org: String,
    pub gvc: String,
    /// Set when the environment could not be read (the rest is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<Unreadable>,
    /// The newest release record (whatever its outcome).
    pub release: Option<ReleaseView>,
    /// The revision of the newest successful release.
    pub last_succeeded: Option<u64>,
    pub lock: Option<LockView>,
    /// A release recorded in progress, and whether its run still holds
    /// the lock; one whose run stopped is finished by the next run into
    /// the environment (or `ferry recover`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<UnfinishedView>,
    pub workloads: Vec<WorkloadStatus>,
    /// Containers that do not run what the last successful release set.
    pub drift: Vec<ReleaseDrift>,
}

/// A release in progress, as status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnfinishedView {
    pub revision: u64,
    /// Its run holds the lock: it is going on now.
    pub running: bool,
}

impl EnvironmentStatus {
    fn new(env: &Environment) -> Self {
        EnvironmentStatus {
            name: env.name.clone(),
            org: env.org.clone(),
            gvc: env.gvc.clone(),
            unreadable: None,
            release: None,
            last_succeeded: None,
            lock: None,
            unfinished: None,
            workloads: Vec::new(),
            drift: Vec::new(),
        }
    }
}

/// A release record, as status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseView {
    pub revision: u64,
    /// deploy, promote, apply or rollback (absent from older records).
    pub kind: Option<crate::release::ReleaseKind>,
    pub outcome: Outcome,
    pub rolled_back: bool,
    pub source: Option<String>,
    pub commit: Option<String>,
    pub started: String,
    pub finished: String,
    /// Who ran it (user, CI run).
    pub by: String,
}

impl ReleaseView {
    pub fn of(release: &Release) -> Self {
        ReleaseView {
            revision: release.revision,
            kind: release.kind,
            outcome: release.outcome,
            rolled_back: release.rolled_back,
            source: release.source.clone(),
            commit: release.commit.clone(),
            started: release.started.clone(),
            finished: release.finished.clone(),
            by: release.actor.describe(),
        }
    }
}

/// A held promotion lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub holder: String,
    pub started: String,
    pub expires: String,
    pub run: Option<String>,
    /// Past its expiry: its holder died; `ferry unlock` breaks it.
    pub expired: bool,
}

/// One workload: its containers' images and its readiness per location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadStatus {
    pub name: String,
    pub containers: Vec<ContainerImage>,
    pub ready: bool,
    pub locations: Vec<LocationReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerImage {
    pub container: String,
    pub image: String,
    /// From the reference, else the org's image resource; `None` when
    /// neither says (an external tag, a missing image).
    pub digest: Option<String>,
}

/// A container that does not run what the last successful release set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseDrift {
    pub workload: String,
    pub container: String,
    pub release: u64,
    /// What the release set.
    pub released: String,
    /// What runs (`None`: the workload or container is gone).
    pub live: Option<String>,
}

/// One promotion edge: what `ferry promote SRC DST` (or, for the first
/// environment, releasing git into it) would change now.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// `None`: the manifests as written in git (the first environment).
    pub source: Option<String>,
    pub target: String,
    /// Set when the edge could not be planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_planned: Option<Unreadable>,
    pub changes: bool,
    /// The manifests' commit the plan was made at.
    pub commit: Option<String>,
    pub summary: plan::Summary,
    /// Containers whose image promoting would change.
    pub images: Vec<ImageDifference>,
    /// Resources promoting would write (or delete), with the fields.
    pub resources: Vec<ResourceChange>,
    /// The target's containers changed since its last successful release.
    pub drifted_from_release: Vec<ReleaseDrift>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageDifference {
    pub workload: String,
    pub container: String,
    pub before: Option<String>,
    pub after: String,
    pub copy: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub id: String,
    pub action: Action,
    /// The changed fields (`spec.containers[main].image`).
    pub fields: Vec<String>,
}

impl Edge {
    fn unplanned(source: Option<&str>, target: &str, why: Unreadable) -> Self {
        Edge {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            not_planned: Some(why),
            changes: false,
            commit: None,
            summary: plan::Summary::default(),
            images: Vec::new(),
            resources: Vec::new(),
            drifted_from_release: Vec::new(),
        }
    }

    /// The summary of `plan` (pure).
    pub fn of_plan(plan: &Plan) -> Self {
        Edge {
            source: plan.target.source.clone(),
            target: plan.target.environment.clone(),
            not_planned: None,
            changes: plan.summary.has_changes(),
            commit: plan.target.revision.as_ref().map(|r| r.commit.clone()),
            summary: plan.summary.clone(),
            images: plan
                .images
                .iter()
                .map(|i| ImageDifference {
                    workload: i.workload.clone(),
                    container: i.container.clone(),
                    before: i.before.clone(),
                    after: i.after.clone(),
                    copy: i.copy,
                })
                .collect(),
            resources: plan
                .resources
                .iter()
                .filter(|r| r.action != Action::Unchanged)
                .map(|r| ResourceChange {
                    id: r.id.clone(),
                    action: r.action,
                    fields: r.changes.iter().map(|c| c.path.clone()).collect(),
                })
                .collect(),
            drifted_from_release: Vec::new(),
        }
    }

    fn label(&self) -> String {
        format!("{} -> {}", self.source.as_deref().unwrap_or("git"), self.target)
    }
}

/// The containers of `workloads` that do not run what `release` set
/// (pure).
pub fn release_drift(release: &Release, workloads: &[WorkloadStatus]) -> Vec<ReleaseDrift> {
    release
        .images
        .iter()
        .filter_map(|set| {
            let live = workloads
                .iter()
                .find(|w| w.name == set.workload)
                .and_then(|w| w.containers.iter().find(|c| c.container == set.container))
                .map(|c| c.image.clone());
            (live.as_deref() != Some(set.image.as_str())).then(|| ReleaseDrift {
                workload: set.workload.clone(),
                container: set.container.clone(),
                release: release.revision,
                released: set.image.clone(),
                live,
            })
        })
        .collect()
}

/// Reads `shown` and plans the edge into each, all concurrently.
pub async fn read(workspace: &Workspace, shown: &[&Environment]) -> Status {
    let config = &workspace.config;
    let environments = join_all(shown.iter().map(|env| read_environment(env)));
    let edges = join_all(shown.iter().map(|dst| plan_edge(workspace, config.source_of(dst), dst)));
    let (environments, mut edges) = futures::join!(environments, edges);
    let unreadable: HashMap<&str, &EnvironmentStatus> = environments
        .iter()
        .filter(|e| e.unreadable.is_some())
        .map(|e| (e.name.as_str(), e))
        .collect();
    for edge in &mut edges {
        let ends = edge.source.iter().chain([&edge.target]);
        if let Some(env) = ends.filter_map(|name| unreadable.get(name.as_str())).next() {
            // Said once, at the environment; here only which end failed.
            edge.not_planned = Some(Unreadable {
                code: None,
                http_status: None,
                message: format!("{} could not be read", env.name),
            });
        }
        if let Some(dst) = environments.iter().find(|e| e.name == edge.target) {
            edge.drifted_from_release.clone_from(&dst.drift);
        }
    }
    Status { schema: SCHEMA, environments, edges }
}

async fn plan_edge(workspace: &Workspace, src: Option<&Environment>, dst: &Environment) -> Edge {
    let made = async {
        let promotion =
            Promotion::prepare(workspace, src, &dst.name, &SourceArgs::default()).await?;
        promotion.make(workspace).await
    };
    match made.await {
        Ok(made) => Edge::of_plan(&made.plan),
        Err(error) => {
            Edge::unplanned(src.map(|s| s.name.as_str()), &dst.name, Unreadable::from_error(&error))
        }
    }
}

async fn read_environment(env: &Environment) -> EnvironmentStatus {
    let mut status = EnvironmentStatus::new(env);
    if let Err(error) = fill(env, &mut status).await {
        status.unreadable = Some(Unreadable::from_error(&error));
    }
    status
}

async fn fill(env: &Environment, status: &mut EnvironmentStatus) -> Result<(), Error> {
    let client = connect::client(env)?;
    let (releases, workloads, held) = futures::try_join!(
        history::releases(&client, env),
        workloads(&client, env),
        lock::held(&client, env),
    )?;
    let newest = releases.iter().rev().find_map(|(_, r)| r.as_ref());
    let succeeded = releases
        .iter()
        .rev()
        .filter_map(|(_, r)| r.as_ref())
        .find(|r| r.outcome == Outcome::Succeeded);
    status.release = newest.map(ReleaseView::of);
    status.last_succeeded = succeeded.map(|r| r.revision);
    status.drift = succeeded.map(|r| release_drift(r, &workloads)).unwrap_or_default();
    let now = client.now_ms();
    status.unfinished = releases
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .find(|r| r.outcome == Outcome::InProgress)
        .map(|r| UnfinishedView {
            revision: r.revision,
            running: held.as_ref().is_some_and(|lock| {
                !lock.is_expired(now) && r.pending.as_ref().is_some_and(|p| p.holder == lock.holder)
            }),
        });
    status.lock = held.map(|info| LockView {
        expired: info.is_expired(client.now_ms()),
        holder: info.holder,
        started: info.started,
        expires: info.expires,
        run: info.run,
    });
    status.workloads = workloads;
    Ok(())
}

/// Every workload of `env`'s GVC, with its images and readiness.
async fn workloads(client: &Client, env: &Environment) -> Result<Vec<WorkloadStatus>, ApiError> {
    let bodies = match client.list(&paths::collection(&env.org, &env.gvc, Kind::Workload)).await {
        Ok(bodies) => bodies,
        // No GVC yet: nothing runs.
        Err(error) if error.status() == Some(404) => Vec::new(),
        Err(error) => return Err(error),
    };
    // Another app's workloads in the same GVC are its own (docs/apps.md).
    let bodies: Vec<Value> =
        bodies.into_iter().filter(|body| plan::other_app_owner(env, body).is_none()).collect();
    let assessed: Vec<readiness::WorkloadReport> = stream::iter(&bodies)
        .map(|body| async move {
            let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
            let deployments = client.list(&paths::deployments(&env.org, &env.gvc, name)).await?;
            Ok::<_, ApiError>(readiness::assess(body, &deployments))
        })
        .buffered(QUEUE)
        .try_collect()
        .await?;
    let own = env.own_registry();
    let tags = bodies.iter().flat_map(|b| plan::container_images(b)).filter_map(|(_, text)| {
        let parsed = image::classify(text, Some(own));
        match (parsed.source, parsed.tag, parsed.digest) {
            (Source::Own, Some(tag), None) => Some((parsed.repository.to_owned(), tag.to_owned())),
            _ => None,
        }
    });
    let digests = observe::registry_digests(client, &env.org, tags).await?;
    let mut found: Vec<WorkloadStatus> = bodies
        .iter()
        .zip(assessed)
        .map(|(body, report)| workload_status(body, report, own, &digests))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// One workload's row (pure): its containers with digests, its readiness.
fn workload_status(
    body: &Value,
    report: readiness::WorkloadReport,
    own: image::OwnRegistry<'_>,
    digests: &HashMap<(String, String), Option<String>>,
) -> WorkloadStatus {
    let containers = plan::container_images(body)
        .into_iter()
        .map(|(container, text)| {
            let parsed = image::classify(text, Some(own));
            let digest = parsed.digest.map(str::to_owned).or_else(|| {
                let key = (parsed.repository.to_owned(), parsed.tag?.to_owned());
                digests.get(&key).cloned().flatten()
            });
            ContainerImage { container: container.to_owned(), image: text.to_owned(), digest }
        })
        .collect();
    WorkloadStatus {
        name: body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        containers,
        ready: report.is_ready(),
        locations: report.locations,
    }
}

/// An image reference, short: the org's own registry prefix dropped and
/// the digest cut to 12 characters.
fn short_image(image: &str, digest: Option<&str>) -> String {
    let text = image.rsplit_once("/image/").map_or(image, |(_, rest)| rest);
    let name = text.split_once('@').map_or(text, |(name, _)| name);
    match digest.and_then(|d| d.strip_prefix("sha256:")) {
        Some(hex) => format!("{name}@{}", &hex[..12.min(hex.len())]),
        None => name.to_owned(),
    }
}

fn short_commit(commit: &str) -> &str {
    &commit[..8.min(commit.len())]
}

fn location_cell(report: &LocationReport) -> String {
    match report.state {
        LocationState::Ready => "ready".to_owned(),
        LocationState::Suspended => "suspended".to_owned(),
        LocationState::Waiting if report.message.is_empty() => "waiting".to_owned(),
        LocationState::Waiting => {
            let message: String = report.message.chars().take(CELL_MESSAGE).collect();
            let cut = if message.len() < report.message.len() { "…" } else { "" };
            format!("waiting: {message}{cut}")
        }
    }
}

/// The human report (pure): environments side by side, then each edge.
pub fn text(status: &Status) -> String {
    let envs = &status.environments;
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&EnvironmentStatus) -> String| {
        let cells = envs
            .iter()
            .map(|e| if e.unreadable.is_some() { String::new() } else { cell(e) })
            .collect();
        rows.push((label.to_owned(), cells));
    };
    row("", &|_| String::new());
    row("org/gvc", &|e| format!("{}/{}", e.org, e.gvc));
    row("release", &|e| {
        e.release.as_ref().map_or("none".to_owned(), |r| {
            let outcome = match &e.unfinished {
                Some(u) if u.revision == r.revision && !u.running => {
                    "left in progress (its run stopped)"
                }
                _ if r.rolled_back => "failed, restored",
                _ => r.outcome.as_str(),
            };
            format!("{} {outcome}", r.revision)
        })
    });
    row("  from", &|e| {
        e.release.as_ref().map_or(String::new(), |r| {
            let commit =
                r.commit.as_deref().map_or(String::new(), |c| format!(" at {}", short_commit(c)));
            format!("{}{commit}", r.source.as_deref().unwrap_or("git"))
        })
    });
    row("  when", &|e| e.release.as_ref().map_or(String::new(), |r| r.finished.clone()));
    row("  by", &|e| e.release.as_ref().map_or(String::new(), |r| r.by.clone()));
    row("lock", &|e| {
        e.lock.as_ref().map_or("-".to_owned(), |l| {
            let expired = if l.expired { " (expired)" } else { "" };
            format!("held by {}{expired}", l.holder)
        })
    });
    let workloads: BTreeSet<&str> =
        envs.iter().flat_map(|e| e.workloads.iter().map(|w| w.name.as_str())).collect();
    for name in workloads {
        let of = |e: &EnvironmentStatus| e.workloads.iter().find(|w| w.name == name).cloned();
        let containers: BTreeSet<String> = envs
            .iter()
            .filter_map(of)
            .flat_map(|w| w.containers.into_iter().map(|c| c.container))
            .collect();
        let locations: BTreeSet<String> = envs
            .iter()
            .filter_map(of)
            .flat_map(|w| w.locations.into_iter().map(|l| l.location))
            .collect();
        row(&format!("workload/{name}"), &|e| {
            if of(e).is_some() { String::new() } else { "-".to_owned() }
        });
        for container in &containers {
            row(&format!("  {container}"), &|e| {
                of(e)
                    .and_then(|w| w.containers.into_iter().find(|c| &c.container == container))
                    .map_or("-".to_owned(), |c| short_image(&c.image, c.digest.as_deref()))
            });
        }
        for location in &locations {
            row(&format!("  {location}"), &|e| {
                of(e)
                    .and_then(|w| w.locations.into_iter().find(|l| &l.location == location))
                    .map_or("-".to_owned(), |l| location_cell(&l))
            });
        }
    }
    if let Some((_, header)) = rows.first_mut() {
        *header = envs.iter().map(|e| e.name.clone()).collect();
    }
    for (index, env) in envs.iter().enumerate() {
        if env.unreadable.is_some()
            && let Some((_, cells)) = rows.get_mut(1)
        {
            cells[index] = "could not be read".to_owned();
        }
    }
    let mut out = table(&rows);
    for env in envs {
        if let Some(why) = &env.unreadable {
            let _ = writeln!(out, "\n{} could not be read: {}", env.name, why.message);
        }
        if let Some(unfinished) = env.unfinished.as_ref().filter(|u| !u.running) {
            let name = &env.name;
            let _ = writeln!(
                out,
                "\nRelease {} of {name} was left in progress: its run stopped before finishing it. The next promote, deploy, apply or rollback into {name} finishes it first, or `ferry recover {name}` now",
                unfinished.revision
            );
        }
    }
    if !status.edges.is_empty() {
        out.push_str("\nPromotions\n");
    }
    for edge in &status.edges {
        edge_text(edge, &mut out);
    }
    out
}

fn table(rows: &[(String, Vec<String>)]) -> String {
    let label_width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    let columns = rows.first().map_or(0, |(_, cells)| cells.len());
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|(_, cells)| cells[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (label, cells) in rows {
        let mut line = format!("{label:<label_width$}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, "   {cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn edge_text(edge: &Edge, out: &mut String) {
    let label = edge.label();
    if let Some(why) = &edge.not_planned {
        let _ = writeln!(out, "  {label}: not planned: {}", why.message);
        return;
    }
    let at = edge
        .commit
        .as_deref()
        .map_or(String::new(), |c| format!(" (manifests at {})", short_commit(c)));
    if !edge.changes {
        let _ = writeln!(out, "  {label}: no changes{at}");
    } else {
        let s = &edge.summary;
        let _ = writeln!(
            out,
            "  {label}: {} to create, {} to update, {} to replace, {} to delete, {} {}{at}",
            s.create,
            s.update,
            s.replace,
            s.delete,
            crate::output::count(edge.images.len(), "image"),
            if edge.images.len() == 1 { "differs" } else { "differ" },
        );
    }
    for image in &edge.images {
        let before =
            image.before.as_deref().map_or("(none)".to_owned(), |b| short_image(b, digest_of(b)));
        let _ = writeln!(
            out,
            "    image {}/{}: {before} -> {}",
            image.workload,
            image.container,
            short_image(&image.after, digest_of(&image.after))
        );
    }
    for resource in &edge.resources {
        let fields = if resource.fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", resource.fields.join(", "))
        };
        let _ = writeln!(out, "    {} {}{fields}", resource.action.symbol(), resource.id);
    }
    for drift in &edge.drifted_from_release {
        let _ = writeln!(
            out,
            "    drifted from release {}: {}/{} runs {}, the release set {}",
            drift.release,
            drift.workload,
            drift.container,
            drift.live.as_deref().map_or("nothing".to_owned(), |l| short_image(l, digest_of(l))),
            short_image(&drift.released, digest_of(&drift.released)),
        );
    }
}

fn digest_of(image: &str) -> Option<&str> {
    image::classify(image, None).digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Actor, ReleaseImage};

    const API: &str = "/org/acme-prod/image/api:1.4.2@sha256:5627ce2e899e0123456789abcdef";

    fn workload(name: &str, image: &str, locations: &[(&str, LocationState)]) -> WorkloadStatus {
        WorkloadStatus {
            name: name.into(),
            containers: vec![ContainerImage {
                container: "main".into(),
                image: image.into(),
                digest: digest_of(image).map(str::to_owned),
            }],
            ready: locations.iter().all(|(_, s)| *s != LocationState::Waiting),
            locations: locations
                .iter()
                .map(|(location, state)| LocationReport {
                    location: (*location).into(),
                    state: *state,
                    message: if *state == LocationState::Waiting {
                        "image not found".into()
                    } else {
                        String::new()
                    },
                    container: None,
                })
                .collect(),
        }
    }

    fn release(revision: u64, image: &str) -> Release {
        Release {
            schema: crate::release::SCHEMA.into(),
            environment: "prod".into(),
            revision,
            kind: Some(crate::release::ReleaseKind::Promote),
            source: Some("staging".into()),
            commit: Some("4128bda3c0ffee".into()),
            images: vec![ReleaseImage {
                workload: "api".into(),
                container: "main".into(),
                image: image.into(),
                digest: digest_of(image).map(str::to_owned),
            }],
            plan_hash: String::new(),
            actor: Actor { user: Some("alice".into()), ci_run: None, host: None },
            started: "2026-12-01T10:00:00.000Z".into(),
            finished: "2026-12-01T10:01:00.000Z".into(),
            outcome: Outcome::Succeeded,
            rolled_back: false,
            message: None,
            approval: None,
            pending: None,
            app: None,
            shared_changed: Vec::new(),
        }
    }

    #[test]
    fn a_container_that_no_longer_runs_what_the_release_set_has_drifted() {
        let running = [workload("api", API, &[])];
        assert!(release_drift(&release(2, API), &running).is_empty());
        let by_hand = [workload("api", "/org/acme-prod/image/api:hotfix", &[])];
        assert_eq!(
            release_drift(&release(2, API), &by_hand),
            [ReleaseDrift {
                workload: "api".into(),
                container: "main".into(),
                release: 2,
                released: API.into(),
                live: Some("/org/acme-prod/image/api:hotfix".into()),
            }]
        );
        let gone = release_drift(&release(2, API), &[]);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].live, None);
    }

    #[test]
    fn images_are_shown_short() {
        assert_eq!(short_image(API, digest_of(API)), "api:1.4.2@5627ce2e899e");
        assert_eq!(short_image("/org/p/image/api:1.4.2", None), "api:1.4.2");
        assert_eq!(short_image("docker.io/library/redis:7", None), "docker.io/library/redis:7");
    }

    fn environment(name: &str) -> EnvironmentStatus {
        EnvironmentStatus {
            name: name.into(),
            org: format!("acme-{name}"),
            gvc: "app".into(),
            ..EnvironmentStatus::new(&crate::api::fake::environment())
        }
    }

    fn planned(source: Option<&str>, target: &str) -> Edge {
        let why = Unreadable { code: None, http_status: None, message: String::new() };
        Edge { not_planned: None, ..Edge::unplanned(source, target, why) }
    }

    #[test]
    fn environments_stand_side_by_side_and_an_unreadable_one_says_why() {
        let mut staging = environment("staging");
        staging.release = Some(ReleaseView::of(&release(3, API)));
        staging.last_succeeded = Some(3);
        staging.lock = Some(LockView {
            holder: "bob@ci (pid 7)".into(),
            started: "2026-12-01T10:00:00.000Z".into(),
            expires: "2026-12-01T10:02:00.000Z".into(),
            run: None,
            expired: false,
        });
        staging.workloads = vec![workload(
            "api",
            API,
            &[
                ("aws-eu-central-1", LocationState::Ready),
                ("aws-us-east-2", LocationState::Waiting),
            ],
        )];
        let dev = EnvironmentStatus {
            workloads: vec![workload(
                "api",
                "/org/acme-dev/image/api:1.4.3",
                &[("aws-eu-central-1", LocationState::Ready)],
            )],
            ..environment("dev")
        };
        let prod = EnvironmentStatus {
            unreadable: Some(Unreadable {
                code: Some("ferry::api::no_token".into()),
                http_status: None,
                message: "no token for acme-prod: environment variable TOKEN_PROD is not set"
                    .into(),
            }),
            ..environment("prod")
        };
        let mut changed = planned(Some("dev"), "staging");
        changed.changes = true;
        changed.commit = Some("4128bda3c0ffee".into());
        changed.summary.update = 1;
        changed.images = vec![ImageDifference {
            workload: "api".into(),
            container: "main".into(),
            before: Some(API.into()),
            after: "/org/acme-staging/image/api:1.4.3@sha256:99aa0123456789".into(),
            copy: Some(true),
        }];
        changed.resources = vec![ResourceChange {
            id: "workload/api".into(),
            action: Action::Update,
            fields: vec!["spec.containers[main].image".into()],
        }];
        changed.drifted_from_release = release_drift(
            &release(3, API),
            &[workload("api", "/org/acme-staging/image/api:hotfix", &[])],
        );
        let status = Status {
            schema: SCHEMA,
            environments: vec![dev, staging, prod],
            edges: vec![
                planned(None, "dev"),
                changed,
                Edge::unplanned(
                    Some("staging"),
                    "prod",
                    Unreadable {
                        code: None,
                        http_status: None,
                        message: "prod could not be read".into(),
                    },
                ),
            ],
        };
        assert!(!status.complete());
        insta::assert_snapshot!(text(&status));
    }
}
