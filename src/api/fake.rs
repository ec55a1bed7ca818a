//! An in-memory Control Plane for unit tests of the logic that talks to
//! it (lock, readiness, records, the executor): bodies stored by path,
//! PUT/POST/PATCH/DELETE with the API's semantics (PUT merges, POST
//! answers 409 when the item exists, PATCH speaks the directive language
//! of [`crate::patch`], `version` counts writes and a PATCH that carries
//! a stale `version` answers 409, as the API is assumed to), list and
//! `-query` by tag, property or `rel: gvc` (queries are org-level, GVC-scoped
//! kinds too, as the API's are), and `-reveal` reads. Workloads get simulated
//! deployments, one per location, that become ready a chosen time after
//! each write, measured on tokio's clock: under `tokio::time::pause()` a
//! test waits out minutes in no real time. Faults are injected per call,
//! before the call takes effect or after (an ambiguous write: done, but
//! the answer says it failed). Every call is logged.
//!
//! The wire (paths, encodings, retries over HTTP) is tested against the
//! simulator (`ferry sim`) instead; this fake is for logic only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::client::WriteOutcome;
use super::control_plane::ControlPlane;
use super::error::ApiError;

/// The kind of a call, for faults and the call log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Query,
    Put,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn method(self) -> &'static str {
        match self {
            Verb::Get | Verb::List => "GET",
            Verb::Query | Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// Whether the call changes anything.
    pub fn is_write(self) -> bool {
        matches!(self, Verb::Put | Verb::Post | Verb::Patch | Verb::Delete)
    }
}

/// One logged call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub verb: Verb,
    pub path: String,
    /// The status answered (200 for success, whatever a fault or the
    /// fake's rules answered otherwise).
    pub status: u16,
    /// When it was answered, since the fake was made (tokio's clock), so
    /// that tests under paused time can tell which calls went out together.
    pub at: Duration,
}

/// A failure to inject: calls of `verb` whose path contains `path` answer
/// `status`, `times` times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    verb: Verb,
    path: String,
    status: u16,
    times: u32,
    after: bool,
}

impl Fault {
    /// Fails the next matching call once, before it takes effect.
    pub fn new(verb: Verb, path: &str, status: u16) -> Self {
        Self { verb, path: path.to_owned(), status, times: 1, after: false }
    }

    /// Fails this many matching calls.
    pub fn times(self, times: u32) -> Self {
        Self { times, ..self }
    }

    /// The call takes effect and then fails: a write whose answer was
    /// lost (a 500 after commit, a timeout).
    pub fn after_effect(self) -> Self {
        Self { after: true, ..self }
    }
}

/// When a workload's deployments become ready after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// This long after each write.
    After(Duration),
    /// Never (the new version fails in every location).
    Never,
}

/// The in-memory Control Plane. Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct Fake {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    items: BTreeMap<String, Value>,
    /// Workload item path → version last written and when.
    written: HashMap<String, (u64, Instant)>,
    rollouts: HashMap<String, Rollout>,
    default_rollout: Rollout,
    locations: Vec<String>,
    /// Deleted items that stay readable until then.
    going: HashMap<String, Instant>,
    linger: Duration,
    latency: Duration,
    /// PATCH ignores the `version` it carries (the API's answer to a stale
    /// version is assumed; this is the other case).
    patch_version_ignored: bool,
    faults: Vec<Fault>,
    calls: Vec<Call>,
    epoch_ms: u64,
    started: Instant,
}

impl Default for Fake {
    fn default() -> Self {
        Self::new()
    }
}

impl Fake {
    /// Empty, one location (`aws-us-west-2`), workloads ready as soon as
    /// written, no latency, deletes immediate.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                items: BTreeMap::new(),
                written: HashMap::new(),
                rollouts: HashMap::new(),
                default_rollout: Rollout::After(Duration::ZERO),
                locations: vec!["aws-us-west-2".to_owned()],
                going: HashMap::new(),
                linger: Duration::ZERO,
                latency: Duration::ZERO,
                patch_version_ignored: false,
                faults: Vec::new(),
                calls: Vec::new(),
                epoch_ms: crate::timestamp::now_ms(),
                started: Instant::now(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the state has failed anyway.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The locations every workload deploys to.
    pub fn set_locations(&self, locations: &[&str]) {
        self.lock().locations = locations.iter().map(|l| (*l).to_owned()).collect();
    }

    /// How long every workload takes to become ready after a write.
    pub fn set_default_rollout(&self, rollout: Rollout) {
        self.lock().default_rollout = rollout;
    }

    /// How long workload `name` takes to become ready after a write.
    pub fn set_rollout(&self, name: &str, rollout: Rollout) {
        self.lock().rollouts.insert(name.to_owned(), rollout);
    }

    /// Deleted items stay readable for this long (deletes that are
    /// asynchronous, as a GVC's or a workload's are).
    pub fn set_delete_linger(&self, linger: Duration) {
        self.lock().linger = linger;
    }

    /// Every call takes this long (on tokio's clock).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Makes PATCH ignore the `version` it carries, as an API without
    /// optimistic locking would.
    pub fn ignore_patch_version(&self) {
        self.lock().patch_version_ignored = true;
    }

    /// Adds a fault; faults are matched in the order added.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every fault not yet spent (the API is back).
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Stores `body` at `path` as it is (no version bump, no log entry).
    pub fn seed(&self, path: &str, body: Value) {
        self.lock().items.insert(path.to_owned(), body);
    }

    /// The body at `path`, if any.
    pub fn body(&self, path: &str) -> Option<Value> {
        self.lock().items.get(path).cloned()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls of `verb` touched a path containing `path`.
    pub fn count(&self, verb: Verb, path: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.verb == verb && c.path.contains(path)).count()
    }

    /// Runs one call: latency, faults before, the call, faults after, log.
    async fn call<T>(
        &self,
        verb: Verb,
        path: &str,
        run: impl FnOnce(&mut State) -> Result<T, u16>,
    ) -> Result<T, ApiError> {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = self.lock();
        state.purge_gone();
        let fault = state.take_fault(verb, path);
        let result = match fault {
            Some(Fault { after: false, status, .. }) => Err(status),
            Some(Fault { status, .. }) => run(&mut state).and(Err(status)),
            None => run(&mut state),
        };
        let status = result.as_ref().map_or_else(|s| *s, |_| 200);
        let at = state.started.elapsed();
        state.calls.push(Call { verb, path: path.to_owned(), status, at });
        result.map_err(|status| ApiError::Status {
            method: verb.method().to_owned(),
            path: path.to_owned(),
            status,
            message: format!("the fake answered {status}"),
            code: None,
        })
    }
}

impl State {
    fn take_fault(&mut self, verb: Verb, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|f| f.verb == verb && path.contains(&f.path))?;
        let fault = self.faults[index].clone();
        if fault.times <= 1 {
            self.faults.remove(index);
        } else {
            self.faults[index].times -= 1;
        }
        Some(fault)
    }

    fn purge_gone(&mut self) {
        let now = Instant::now();
        let gone: Vec<String> =
            self.going.iter().filter(|(_, at)| **at <= now).map(|(p, _)| p.clone()).collect();
        for path in gone {
            self.going.remove(&path);
            self.items.remove(&path);
        }
    }

    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.epoch_ms.saturating_add(elapsed)
    }

    /// Stores a write of `path` (a new or merged body) and bumps `version`.
    fn store(&mut self, path: &str, mut body: Map<String, Value>) -> Value {
        let version = body.get("version").and_then(Value::as_u64).unwrap_or(0) + 1;
        body.insert("version".to_owned(), json!(version));
        body.insert("lastModified".to_owned(), json!(crate::timestamp::rfc3339(self.now_ms())));
        if path.contains("/workload/") {
            self.written.insert(path.to_owned(), (version, Instant::now()));
        }
        let body = Value::Object(body);
        self.items.insert(path.to_owned(), body.clone());
        body
    }

    fn live(&self, path: &str) -> Option<&Value> {
        self.items.get(path)
    }

    /// `…/workload/NAME/deployment`: one deployment per location.
    fn deployments(&self, workload_path: &str) -> Option<Vec<Value>> {
        let workload = self.live(workload_path)?;
        let name = workload.get("name").and_then(Value::as_str).unwrap_or_default();
        let (version, since) = self.written.get(workload_path).copied().unwrap_or((
            workload.get("version").and_then(Value::as_u64).unwrap_or(0),
            self.started,
        ));
        let rollout = self.rollouts.get(name).copied().unwrap_or(self.default_rollout);
        let ready = match rollout {
            Rollout::After(delay) => Instant::now() >= since + delay,
            Rollout::Never => false,
        };
        let containers: Map<String, Value> = crate::plan::container_images(workload)
            .into_iter()
            .map(|(container, image)| {
                let message = if ready { "" } else { "starting" };
                (container.to_owned(), json!({"image": image, "ready": ready, "message": message}))
            })
            .collect();
        let processed = if ready { version } else { version.saturating_sub(1) };
        Some(
            self.locations
                .iter()
                .map(|location| {
                    json!({"name": location, "kind": "deployment", "status": {
                        "lastProcessedVersion": processed,
                        "expectedDeploymentVersion": version,
                        "ready": ready,
                        "message": if ready { "" } else { "deploying" },
                        "internal": {"syncFailed": false},
                        "versions": [{"workload": version, "ready": ready, "containers": containers}],
                    }})
                })
                .collect(),
        )
    }

    /// The items directly under a collection path.
    fn children(&self, collection: &str) -> Vec<Value> {
        self.under(collection).into_iter().map(|(_, body)| body).collect()
    }

    /// The items directly under a collection path, with their GVC.
    fn under(&self, collection: &str) -> Vec<(Option<String>, Value)> {
        let prefix = format!("{collection}/");
        self.items
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter(|(path, _)| !path[prefix.len()..].contains('/'))
            .map(|(path, body)| (gvc_of(path), body.clone()))
            .collect()
    }

    /// What `/org/ORG/KIND/-query` searches: the org's items of KIND, in
    /// every GVC for a GVC-scoped kind.
    fn queried(&self, query_path: &str) -> Vec<(Option<String>, Value)> {
        let collection = query_path.strip_suffix("/-query").unwrap_or(query_path);
        let Some((org, kind)) = collection.rsplit_once('/') else { return Vec::new() };
        let in_gvcs = ["workload", "identity", "volumeset"].contains(&kind);
        if !in_gvcs {
            return self.under(collection);
        }
        let prefix = format!("{org}/gvc/");
        let mut gvcs: Vec<String> = self
            .items
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter_map(|(path, _)| path[prefix.len()..].split('/').next().map(str::to_owned))
            .collect();
        gvcs.dedup();
        gvcs.iter().flat_map(|gvc| self.under(&format!("{prefix}{gvc}/{kind}"))).collect()
    }
}

/// The GVC in an item path `/org/O/gvc/G/KIND/NAME`.
fn gvc_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["org", _, "gvc", gvc, _, _] => Some((*gvc).to_owned()),
        _ => None,
    }
}

/// The item path a body written to `collection` lands at.
fn item_path(collection: &str, body: &Value) -> Result<(String, Map<String, Value>), u16> {
    let object = body.as_object().ok_or(400_u16)?;
    let name = object.get("name").and_then(Value::as_str).ok_or(400_u16)?;
    Ok((format!("{collection}/{name}"), object.clone()))
}

fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), u16> {
    crate::patch::apply(target, patch).map_err(|_| 400)
}

/// Whether `item` (in `gvc`) matches a `-query` body: `spec.terms` on
/// tags, properties or `rel: gvc`, with `=`, `!=` or `exists`, `match` all
/// (default) or any.
fn matches(gvc: Option<&str>, item: &Value, query: &Value) -> bool {
    let terms = query.pointer("/spec/terms").and_then(Value::as_array).cloned().unwrap_or_default();
    let gvc = gvc.map(|g| Value::String(g.to_owned()));
    let holds = |term: &Value| {
        let value = term.get("value");
        let found = if let Some(tag) = term.get("tag").and_then(Value::as_str) {
            item.get("tags").and_then(|t| t.get(tag))
        } else if let Some(property) = term.get("property").and_then(Value::as_str) {
            item.get(property)
        } else if term.get("rel").and_then(Value::as_str) == Some("gvc") {
            gvc.as_ref()
        } else {
            None
        };
        match term.get("op").and_then(Value::as_str).unwrap_or("=") {
            "=" => found.is_some() && found == value,
            "!=" => found != value,
            "exists" => found.is_some(),
            _ => false,
        }
    };
    if query.pointer("/spec/match").and_then(Value::as_str) == Some("any") {
        terms.iter().any(holds)
    } else {
        terms.iter().all(holds)
    }
}

impl ControlPlane for Fake {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let item = path.strip_suffix("/-reveal").unwrap_or(path);
        self.call(Verb::Get, path, |state| state.live(item).cloned().ok_or(404)).await
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        self.call(Verb::List, path, |state| match path.strip_suffix("/deployment") {
            Some(workload) if workload.contains("/workload/") => {
                state.deployments(workload).ok_or(404)
            }
            _ => Ok(state.children(path)),
        })
        .await
    }

    async fn query(&self, path: &str, query: &Value) -> Result<Vec<Value>, ApiError> {
        self.call(Verb::Query, path, |state| {
            Ok(state
                .queried(path)
                .into_iter()
                .filter(|(gvc, item)| matches(gvc.as_deref(), item, query))
                .map(|(_, item)| item)
                .collect())
        })
        .await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        self.call(Verb::Put, path, |state| {
            let (item, object) = item_path(path, body)?;
            let (created, merged) = match state.live(&item).and_then(Value::as_object) {
                Some(live) => {
                    let mut live = live.clone();
                    merge(&mut live, &object)?;
                    (false, live)
                }
                None => (true, object),
            };
            let body = state.store(&item, merged);
            Ok(WriteOutcome { created, location: Some(item), body: Some(body) })
        })
        .await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<WriteOutcome, ApiError> {
        self.call(Verb::Post, path, |state| {
            let (item, object) = item_path(path, body)?;
            if state.live(&item).is_some() {
                return Err(409);
            }
            let body = state.store(&item, object);
            Ok(WriteOutcome { created: true, location: Some(item), body: Some(body) })
        })
        .await
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        self.call(Verb::Patch, path, |state| {
            let mut live = state.live(path).and_then(Value::as_object).cloned().ok_or(404_u16)?;
            let mut patch = body.as_object().ok_or(400_u16)?.clone();
            let expected = patch.remove("version");
            patch.remove("id");
            let current = live.get("version").and_then(Value::as_u64).unwrap_or(0);
            if let Some(expected) = expected
                && expected.as_u64() != Some(current)
                && !state.patch_version_ignored
            {
                return Err(409);
            }
            merge(&mut live, &patch)?;
            Ok(Some(state.store(path, live)))
        })
        .await
    }

    async fn delete(&self, path: &str) -> Result<bool, ApiError> {
        self.call(Verb::Delete, path, |state| {
            if state.live(path).is_none() {
                return Ok(false);
            }
            if state.linger.is_zero() {
                state.items.remove(path);
            } else {
                let at = Instant::now() + state.linger;
                state.going.entry(path.to_owned()).or_insert(at);
            }
            Ok(true)
        })
        .await
    }

    fn now_ms(&self) -> u64 {
        self.lock().now_ms()
    }
}

/// An environment `prod` in org `acme`, GVC `app`, with the plan file's
/// defaults, for unit tests on the fake.
#[cfg(test)]
pub(crate) fn environment() -> crate::config::Environment {
    let text = "manifests: {path: m}\ntopology: org-per-env\nenvironments:\n  - {name: prod, org: acme, gvc: app, tokenEnv: T}\n";
    let source = crate::diagnostic::SourceFile::new("promotion.yaml", text);
    let config = crate::config::parse(&source).unwrap_or_else(|p| panic!("{p:?}"));
    config.environments.into_iter().next().unwrap_or_else(|| panic!("no environment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &str = "/org/o/secret";

    #[tokio::test]
    async fn writes_follow_the_api() {
        let fake = Fake::new();
        let body = json!({"kind": "secret", "name": "a", "tags": {"x": "1"}});
        let created = fake.put(SECRETS, &body).await.map(|o| o.created);
        assert_eq!(created.ok(), Some(true));
        let merged = json!({"kind": "secret", "name": "a", "tags": {"y": "2"}});
        assert_eq!(fake.put(SECRETS, &merged).await.map(|o| o.created).ok(), Some(false));
        let live = fake.get("/org/o/secret/a/-reveal").await.ok();
        assert_eq!(live.as_ref().map(|b| &b["tags"]), Some(&json!({"x": "1", "y": "2"})));
        assert_eq!(live.map(|b| b["version"].clone()), Some(json!(2)));
        let again = fake.post(SECRETS, &body).await;
        assert_eq!(again.err().and_then(|e| e.status()), Some(409));
        let patched = fake.patch("/org/o/secret/a", &json!({"$drop": ["tags"]})).await;
        assert_eq!(patched.ok().flatten().map(|b| b.get("tags").is_none()), Some(true));
        // A PATCH that carries a stale `version` is refused (optimistic
        // locking); the current one is taken.
        let stale = fake.patch("/org/o/secret/a", &json!({"version": 2, "tags": {"z": "3"}})).await;
        assert_eq!(stale.err().and_then(|e| e.status()), Some(409));
        let current =
            fake.patch("/org/o/secret/a", &json!({"version": 3, "tags": {"z": "3"}})).await;
        assert_eq!(current.ok().flatten().map(|b| b["version"].clone()), Some(json!(4)));
        assert_eq!(fake.delete("/org/o/secret/a").await.ok(), Some(true));
        assert_eq!(fake.delete("/org/o/secret/a").await.ok(), Some(false));
        assert_eq!(fake.get_opt("/org/o/secret/a").await.ok(), Some(None));
    }

    #[tokio::test]
    async fn lists_and_queries_see_direct_children() {
        let fake = Fake::new();
        fake.seed("/org/o/secret/a", json!({"name": "a", "tags": {"t": "x"}}));
        fake.seed("/org/o/secret/b", json!({"name": "b", "tags": {"t": "y"}}));
        fake.seed("/org/o/secret/b/nested", json!({"name": "nested"}));
        fake.seed("/org/o/secretary/c", json!({"name": "c"}));
        let names = |items: Vec<Value>| -> Vec<String> {
            items.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect()
        };
        assert_eq!(fake.list(SECRETS).await.ok().map(names), Some(vec!["a".into(), "b".into()]));
        let query = json!({"spec": {"terms": [{"op": "=", "tag": "t", "value": "y"}]}});
        let found = fake.query("/org/o/secret/-query", &query).await.ok().map(names);
        assert_eq!(found, Some(vec!["b".to_owned()]));
    }

    #[tokio::test]
    async fn gvc_scoped_kinds_are_queried_at_the_org_with_a_gvc_term() {
        let fake = Fake::new();
        fake.seed("/org/o/gvc/app/workload/a", json!({"name": "a", "tags": {"t": "x"}}));
        fake.seed("/org/o/gvc/web/workload/b", json!({"name": "b", "tags": {"t": "x"}}));
        fake.seed("/org/o/gvc/web/identity/c", json!({"name": "c", "tags": {"t": "x"}}));
        let names = |items: Vec<Value>| -> Vec<String> {
            items.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect()
        };
        let tagged = json!({"spec": {"terms": [{"op": "=", "tag": "t", "value": "x"}]}});
        let all = fake.query("/org/o/workload/-query", &tagged).await.ok().map(names);
        assert_eq!(all, Some(vec!["a".to_owned(), "b".to_owned()]));
        let in_web = json!({"spec": {"terms": [{"op": "=", "tag": "t", "value": "x"}, {"op": "=", "rel": "gvc", "value": "web"}]}});
        let found = fake.query("/org/o/workload/-query", &in_web).await.ok().map(names);
        assert_eq!(found, Some(vec!["b".to_owned()]));
    }

    #[tokio::test]
    async fn faults_fail_before_or_after_the_effect() {
        let fake = Fake::new();
        fake.inject(Fault::new(Verb::Post, "/secret", 500));
        fake.inject(Fault::new(Verb::Post, "/secret", 504).after_effect());
        let body = json!({"name": "a"});
        assert_eq!(fake.post(SECRETS, &body).await.err().and_then(|e| e.status()), Some(500));
        assert!(fake.body("/org/o/secret/a").is_none(), "a fault before has no effect");
        assert_eq!(fake.post(SECRETS, &body).await.err().and_then(|e| e.status()), Some(504));
        assert!(fake.body("/org/o/secret/a").is_some(), "a fault after has its effect");
        let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses, [500, 504]);
    }

    #[tokio::test(start_paused = true)]
    async fn workloads_become_ready_after_their_rollout() {
        let fake = Fake::new();
        fake.set_locations(&["a", "b"]);
        fake.set_default_rollout(Rollout::After(Duration::from_secs(30)));
        let workload = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
            "containers": [{"name": "main", "image": "/org/o/image/api:2"}]}});
        assert!(fake.put("/org/o/gvc/g/workload", &workload).await.is_ok());
        let assess = || async {
            let body = fake.get("/org/o/gvc/g/workload/api").await.unwrap_or_default();
            let deployments =
                fake.list("/org/o/gvc/g/workload/api/deployment").await.unwrap_or_default();
            crate::readiness::assess(&body, &deployments)
        };
        let report = assess().await;
        assert_eq!(report.locations.len(), 2);
        assert!(!report.is_ready());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(assess().await.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn deletes_can_linger_and_the_clock_follows_tokio() {
        let fake = Fake::new();
        fake.set_delete_linger(Duration::from_secs(5));
        fake.seed("/org/o/secret/a", json!({"name": "a"}));
        let before = fake.now_ms();
        assert_eq!(fake.delete("/org/o/secret/a").await.ok(), Some(true));
        assert!(fake.get_opt("/org/o/secret/a").await.ok().flatten().is_some());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(fake.get_opt("/org/o/secret/a").await.ok().flatten().is_none());
        assert!(fake.now_ms() >= before + 5000);
    }
}
