//! The executor on the in-memory fake under paused time: plans made by the
//! planner from data, carried out against [`Fake`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::api::fake::{Fake, Fault, Rollout, Verb, environment};
use crate::diagnostic::{Location, SourceFile};
use crate::graph::Graph;
use crate::plan::{ImagesFrom, ManifestsFrom, State, Target as PlanTarget};
use crate::render::Rendered;

/// Everything reported, with when (on tokio's clock).
struct Seen {
    started: Instant,
    lines: Mutex<Vec<(Duration, String)>>,
}

impl Seen {
    fn new() -> Self {
        Seen { started: Instant::now(), lines: Mutex::new(Vec::new()) }
    }

    fn push(&self, line: String) {
        let at = self.started.elapsed();
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((at, line));
    }

    /// When `line` was first reported.
    fn at(&self, line: &str) -> Duration {
        let lines = self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lines
            .iter()
            .find(|(_, l)| l == line)
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("never reported {line:?}: {lines:?}"))
    }
}

impl crate::registry::Reporter for Seen {}

impl Reporter for Seen {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Written { id, .. } => self.push(format!("written {id}")),
            Event::Ready { workload, .. } => self.push(format!("ready {workload}")),
            Event::Waiting { .. } => {}
        }
    }

    fn note(&self, line: &str) {
        self.push(line.to_owned());
    }
}

fn id(text: &str) -> ResourceId {
    text.parse().unwrap_or_else(|_| panic!("{text}"))
}

fn workload(name: &str) -> (ResourceId, Value) {
    let body = json!({"kind": "workload", "name": name, "spec": {"type": "standard",
        "containers": [{"name": "main", "image": "nginx:1.27"}]}});
    (id(&format!("workload/{name}")), body)
}

fn domain(name: &str) -> (ResourceId, Value) {
    (id(&format!("domain/{name}")), json!({"kind": "domain", "name": name, "spec": {}}))
}

fn secret(name: &str, payload: &str) -> (ResourceId, Value) {
    let body = json!({"kind": "secret", "name": name, "type": "opaque",
        "data": {"encoding": "plain", "payload": payload}});
    (id(&format!("secret/{name}")), body)
}

/// The planner's plan for `desired` against what the fake holds now.
async fn planned(
    fake: &Fake,
    env: &Environment,
    desired: &[(ResourceId, Value)],
    edges: &[(&str, &str)],
) -> Plan {
    let file = SourceFile::new("m.yaml", String::new());
    let rendered: Vec<Rendered> = desired
        .iter()
        .map(|(id, body)| Rendered::new(id.clone(), body.clone(), Location::new(&file, 0..0)))
        .collect();
    let mut live: HashMap<ResourceId, State> = HashMap::new();
    for (id, _) in desired {
        if let Some(body) = observe::fetch(fake, env, id).await.unwrap_or_else(|e| panic!("{e}")) {
            live.insert(id.clone(), observe::state(env, id, &body));
        }
    }
    let graph = Graph::of_ordering(edges);
    plan::promotion::plan(plan::promotion::Inputs {
        target: PlanTarget {
            environment: env.name.clone(),
            org: env.org.clone(),
            gvc: env.gvc.clone(),
            source: None,
            revision: None,
            manifests_from: ManifestsFrom::Worktree,
            images_from: ImagesFrom::Manifests,
        },
        graph: &graph,
        src: None,
        dst: env,
        rendered: &rendered,
        live,
        managed: vec![],
        applied: observe::applied(fake, env).await.unwrap_or_default(),
        images: vec![],
        external: &HashMap::new(),
        prune: false,
        adopted_digests: &HashMap::new(),
        unpinned: &HashMap::new(),
    })
}

async fn run(fake: &Fake, env: &Environment, plan: &Plan, seen: &Seen) -> Result<Release, Error> {
    run_with_ttl(fake, env, plan, seen, Duration::from_secs(60)).await
}

async fn run_with_ttl(
    fake: &Fake,
    env: &Environment,
    plan: &Plan,
    seen: &Seen,
    lock_ttl: Duration,
) -> Result<Release, Error> {
    let credentials = crate::registry::Credentials::anonymous();
    let target = Target { client: fake, env, credentials: &credentials };
    let options = Options {
        no_rollback: false,
        lock_timeout: Duration::from_secs(10),
        lock_ttl,
        actor: Actor::default(),
        check_before_lock: false,
        record_as: None,
        approval: None,
    };
    execute(plan, &target, &options, seen).await
}

fn item(env: &Environment, id: &ResourceId) -> String {
    paths::item(&env.org, &env.gvc, id.kind, &id.name)
}

/// Writes other than the lock's and the release record's.
fn resource_writes(fake: &Fake) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| c.verb.is_write() && c.verb != Verb::Query)
        .filter(|c| !c.path.contains("ferry-lock-") && !c.path.contains("ferry-release-"))
        .filter(|c| !(c.verb == Verb::Post && c.path.ends_with("/secret")))
        .map(|c| format!("{:?} {}", c.verb, c.path))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_workload_holds_back_only_what_depends_on_it() {
    let (fake, env) = (Fake::new(), environment());
    fake.set_rollout("slow", Rollout::After(Duration::from_secs(120)));
    let desired = [workload("slow"), workload("fast"), domain("slow-route"), domain("fast-route")];
    let edges = [("workload/slow", "domain/slow-route"), ("workload/fast", "domain/fast-route")];
    let plan = planned(&fake, &env, &desired, &edges).await;
    let seen = Seen::new();
    let release = run(&fake, &env, &plan, &seen).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(release.outcome, Outcome::Succeeded);
    // The fast workload's route is written once the fast one is ready
    // (three checks, 5 s apart), long before the slow one is.
    let fast_route = seen.at("written domain/fast-route");
    assert!(fast_route < Duration::from_secs(30), "{fast_route:?}");
    assert!(seen.at("ready slow") >= Duration::from_secs(120));
    assert!(seen.at("written domain/slow-route") >= seen.at("ready slow"));
    // Every workload was stamped with the release.
    let slow = fake.body(&item(&env, &id("workload/slow"))).unwrap_or_default();
    assert_eq!(slow["tags"][release::RELEASE_TAG], json!("1"));
}

#[tokio::test(start_paused = true)]
async fn a_workload_that_never_becomes_ready_is_restored_and_recorded_as_failed() {
    let (fake, env) = (Fake::new(), environment());
    let (db, before) = secret("db", "old");
    assert!(fake.put("/org/acme/secret", &before).await.is_ok());
    let stored = fake.body(&item(&env, &db));
    fake.set_rollout("api", Rollout::Never);
    let desired = [secret("db", "new"), workload("api")];
    let plan = planned(&fake, &env, &desired, &[("secret/db", "workload/api")]).await;
    let seen = Seen::new();
    let failed = run(&fake, &env, &plan, &seen).await;
    let Err(Error::Execute(error)) = failed else { panic!("{failed:?}") };
    let ExecuteError::Failed { left, cause, .. } = *error else { panic!("{error:?}") };
    assert!(matches!(cause, StepError::Readiness(_)), "{cause:?}");
    assert!(
        matches!(&left.restored, Restored::Restored(ids) if *ids == [id("secret/db"), id("workload/api")]),
        "{left:?}"
    );
    let Recorded::Revision(revision) = left.recorded else { panic!("{left:?}") };
    // The secret is as it was (payload included), the workload gone.
    let now = fake.body(&item(&env, &db)).unwrap_or_default();
    assert_eq!(now["data"], stored.unwrap_or_default()["data"]);
    assert_eq!(fake.body(&item(&env, &id("workload/api"))), None);
    let record = fake.body(&format!("/org/acme/secret/ferry-release-prod-{revision}"));
    let tags = record.map(|r| r["tags"].clone()).unwrap_or_default();
    assert_eq!(tags[release::OUTCOME_TAG], json!("failed"), "{tags}");
}

#[tokio::test(start_paused = true)]
async fn live_state_that_moved_since_the_plan_is_refused_naming_it() {
    let (fake, env) = (Fake::new(), environment());
    let (_, before) = secret("db", "old");
    assert!(fake.put("/org/acme/secret", &before).await.is_ok());
    let plan = planned(&fake, &env, &[secret("db", "new"), workload("api")], &[]).await;
    // Someone changes the secret by hand after the plan was made.
    let (_, by_hand) = secret("db", "by hand");
    assert!(fake.put("/org/acme/secret", &by_hand).await.is_ok());
    let writes_before = resource_writes(&fake);
    let refused = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = refused else { panic!("{refused:?}") };
    assert!(
        matches!(&*error, ExecuteError::Moved { resource, .. } if resource == "secret/db"),
        "{error:?}"
    );
    assert_eq!(resource_writes(&fake), writes_before, "nothing was written");
    assert_eq!(fake.body("/org/acme/secret/ferry-lock-prod"), None, "the lock was released");
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_stops_what_depends_on_it_and_restores_the_rest() {
    let (fake, env) = (Fake::new(), environment());
    let desired = [secret("db", "x"), workload("api"), workload("web")];
    let plan = planned(&fake, &env, &desired, &[("workload/api", "workload/web")]).await;
    fake.inject(Fault::new(Verb::Put, "/org/acme/gvc/app/workload", 403).times(10));
    let failed = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = failed else { panic!("{failed:?}") };
    let ExecuteError::Failed { left, cause, .. } = *error else { panic!("{error:?}") };
    assert!(matches!(cause, StepError::Write { .. }), "{cause:?}");
    assert!(
        matches!(&left.restored, Restored::Restored(ids) if *ids == [id("secret/db")]),
        "{left:?}"
    );
    assert_eq!(fake.body(&item(&env, &id("secret/db"))), None, "created, then deleted again");
    assert_eq!(fake.count(Verb::Put, "/workload"), 1, "web never started: {:?}", fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_payload_that_is_not_the_planned_one_is_refused_before_the_lock() {
    let (fake, env) = (Fake::new(), environment());
    let mut plan = planned(&fake, &env, &[secret("db", "x")], &[]).await;
    plan.secrets = plan::Secrets::default();
    plan.secrets.insert(id("secret/db"), json!({"encoding": "plain", "payload": "other"}));
    let refused = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = refused else { panic!("{refused:?}") };
    assert!(matches!(&*error, ExecuteError::Payload { resource } if *resource == id("secret/db")));
    assert!(fake.calls().iter().all(|c| !c.verb.is_write()), "{:?}", fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_release_too_large_to_record_is_refused_before_any_write() {
    let (fake, env) = (Fake::new(), environment());
    let mut plan = planned(&fake, &env, &[workload("api")], &[]).await;
    // Thousands of images, each with its own digest: their record alone
    // would be over its budget, compressed.
    plan.steps.release.images = (0..5_000)
        .map(|i| {
            let digest = format!("sha256:{}", crate::diff::hash(&json!(i)));
            release::ReleaseImage {
                workload: format!("w{i}"),
                container: "main".into(),
                image: format!("/org/acme/image/w{i}@{digest}"),
                digest: Some(digest),
            }
        })
        .collect();
    let refused = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = refused else { panic!("{refused:?}") };
    assert!(
        matches!(&*error, ExecuteError::RecordOverBudget(over) if over.images == 5_000),
        "{error:?}"
    );
    assert!(fake.calls().iter().all(|c| !c.verb.is_write()), "{:?}", fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_waits_and_starts_nothing_new() {
    let (fake, env) = (Fake::new(), environment());
    fake.set_rollout("api", Rollout::After(Duration::from_secs(60)));
    let desired = [workload("api"), domain("route")];
    let plan = planned(&fake, &env, &desired, &[("workload/api", "domain/route")]).await;
    let ready: Vec<schedule::Ready<'_>> = plan
        .steps
        .writes
        .iter()
        .map(|write| schedule::Ready { write, body: write.body.clone() })
        .collect();
    let (stop, seen) = (CancellationToken::new(), Seen::new());
    let stopping = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.cancel();
    };
    let (outcome, ()) =
        tokio::join!(schedule::run(&fake, &env, &ready, &seen, &stop, None), stopping);
    assert!(matches!(outcome.result, Err(StepError::Interrupted)), "{:?}", outcome.result);
    assert_eq!(outcome.written, [id("workload/api")]);
    assert_eq!(fake.body(&item(&env, &id("domain/route"))), None, "the route never started");
    assert!(seen.started.elapsed() < Duration::from_secs(15), "the wait was cut short");
}

#[tokio::test(start_paused = true)]
async fn under_the_lock_live_state_and_the_releases_are_read_in_one_round() {
    let (fake, env) = (Fake::new(), environment());
    let plan = planned(&fake, &env, &[secret("db", "x"), workload("api")], &[]).await;
    // Every call takes a second: rounds show as distinct times.
    fake.set_latency(Duration::from_secs(1));
    let release = run(&fake, &env, &plan, &Seen::new()).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(release.outcome, Outcome::Succeeded);
    let calls = fake.calls();
    let locked = calls
        .iter()
        .position(|c| c.verb == Verb::Post && c.path == "/org/acme/secret")
        .unwrap_or_else(|| panic!("no lock: {calls:?}"));
    let under = &calls[locked + 1..];
    let at = |verb: Verb, path: &str| {
        under
            .iter()
            .find(|c| c.verb == verb && c.path.ends_with(path))
            .map(|c| c.at)
            .unwrap_or_else(|| panic!("no {verb:?} {path}: {under:?}"))
    };
    let releases = at(Verb::Query, "/secret/-query");
    assert_eq!(at(Verb::Get, "/secret/db/-reveal"), releases, "{under:?}");
    assert_eq!(at(Verb::Get, "/workload/api"), releases, "{under:?}");
    assert_eq!(releases, calls[locked].at + Duration::from_secs(1), "the round after the lock");
}

/// A workload whose one container has env vars `names`.
fn workload_with_env(names: &[&str]) -> (ResourceId, Value) {
    let env: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": "1"})).collect();
    let (id, mut body) = workload("api");
    body["spec"]["containers"][0]["env"] = Value::Array(env);
    (id, body)
}

/// The record of what Ferry last wrote, as the fake holds it.
fn record(fake: &Fake, env: &Environment) -> Option<Applied> {
    let path = format!("/org/acme/secret/{}", applied::secret_name(&env.name));
    fake.body(&path).and_then(|secret| Applied::from_secret(&secret).ok())
}

#[tokio::test(start_paused = true)]
async fn what_was_written_is_recorded_and_a_field_git_removes_is_removed_alone() {
    let (fake, env) = (Fake::new(), environment());
    let seen = Seen::new();
    let first = planned(&fake, &env, &[workload_with_env(&["A", "B"])], &[]).await;
    assert!(run(&fake, &env, &first, &seen).await.is_ok());
    let recorded = record(&fake, &env).unwrap_or_else(|| panic!("no record"));
    assert_eq!(recorded.resources.keys().collect::<Vec<_>>(), [&id("workload/api")]);
    // The server fills a field Ferry does not know, at the top and inside
    // the container: nothing to plan.
    let path = item(&env, &id("workload/api"));
    let mut live = fake.body(&path).unwrap_or_default();
    live["spec"]["serverField"] = json!(true);
    live["spec"]["containers"][0]["serverField"] = json!("auto");
    fake.seed(&path, live);
    let same = planned(&fake, &env, &[workload_with_env(&["A", "B"])], &[]).await;
    assert!(!same.summary.has_changes(), "{:?}", same.resources);
    // git removes B: exactly that, written as a PUT then a PATCH of it alone.
    let fewer = planned(&fake, &env, &[workload_with_env(&["A"])], &[]).await;
    let changes: Vec<&str> = fewer.resources[0].changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(changes, ["spec.containers[main].env[B]"]);
    let writes_before = fake.calls().len();
    assert!(run(&fake, &env, &fewer, &seen).await.is_ok());
    let api: Vec<String> = fake.calls()[writes_before..]
        .iter()
        .filter(|c| c.verb.is_write() && c.path.contains("workload"))
        .map(|c| format!("{:?} {}", c.verb, c.path))
        .collect();
    assert_eq!(api, ["Put /org/acme/gvc/app/workload", format!("Patch {path}").as_str()]);
    let live = fake.body(&path).unwrap_or_default();
    assert_eq!(live["spec"]["containers"][0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(live["spec"]["serverField"], json!(true), "the server's fields stay");
    // The PUT replaced the list of containers (as the fake and the
    // simulator do), and this server does not fill its field again: not a
    // change either way, so nothing is written on the next run.
    let settled = planned(&fake, &env, &[workload_with_env(&["A"])], &[]).await;
    assert!(!settled.summary.has_changes(), "{:?}", settled.resources);
    let now = record(&fake, &env).unwrap_or_default();
    let env_fields = now
        .get(&id("workload/api"))
        .and_then(|f| f.child("spec"))
        .and_then(|f| f.child("containers"))
        .and_then(|f| f.child("main"))
        .and_then(|f| f.child("env"));
    assert!(env_fields.is_some_and(|e| e.child("A").is_some() && e.child("B").is_none()));
    // A plan that writes but changes no field set leaves the record alone.
    // (Counted by the record's version: release records are PUT there too.)
    let applied_path = format!("/org/acme/secret/{}", applied::secret_name(&env.name));
    let record_writes = |fake: &Fake| {
        fake.body(&applied_path).and_then(|b| b["version"].as_u64()).unwrap_or_default()
    };
    let written = record_writes(&fake);
    fake.seed(&path, {
        let mut drifted = fake.body(&path).unwrap_or_default();
        drifted["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        drifted
    });
    let back = planned(&fake, &env, &[workload_with_env(&["A"])], &[]).await;
    assert!(back.summary.has_changes());
    assert!(run(&fake, &env, &back, &seen).await.is_ok());
    assert_eq!(record_writes(&fake), written, "the record did not change");
}

#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_be_read_is_not_overwritten() {
    let (fake, env) = (Fake::new(), environment());
    let path = format!("/org/acme/secret/{}/-reveal", applied::secret_name(&env.name));
    fake.inject(Fault::new(Verb::Get, &path, 403).times(100));
    let plan = planned(&fake, &env, &[workload("api")], &[]).await;
    assert!(run(&fake, &env, &plan, &Seen::new()).await.is_ok());
    let applied_path = format!("/org/acme/secret/{}", applied::secret_name(&env.name));
    assert!(fake.body(&applied_path).is_none(), "{:?}", fake.calls());
}

const LOCK: &str = "/org/acme/secret/ferry-lock-prod";

/// Every call of every kind answers 503 from now on.
fn api_goes_away(fake: &Fake) {
    for verb in
        [Verb::Get, Verb::List, Verb::Query, Verb::Put, Verb::Post, Verb::Patch, Verb::Delete]
    {
        fake.inject(Fault::new(verb, "", 503).times(u32::MAX));
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_lock_stops_the_writes_and_nothing_is_written_after_the_loss() {
    let (fake, env) = (Fake::new(), environment());
    // a becomes ready after 150 s; b waits for it, c for b.
    fake.set_rollout("a", Rollout::After(Duration::from_secs(150)));
    let desired = [workload("a"), workload("b"), workload("c")];
    let plan = planned(
        &fake,
        &env,
        &desired,
        &[("workload/a", "workload/b"), ("workload/b", "workload/c")],
    )
    .await;
    let seen = Seen::new();
    let ttl = Duration::from_secs(60);
    // From 5 s on, the API answers nothing about the lock, longer than
    // its TTL; at 70 s it is back and bob takes the expired lock over.
    let other = fake.clone();
    let bob = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        other.inject(Fault::new(Verb::Patch, LOCK, 503).times(u32::MAX));
        other.inject(Fault::new(Verb::Get, LOCK, 503).times(u32::MAX));
        tokio::time::sleep(Duration::from_secs(65)).await;
        other.clear_faults();
        let bob = Actor { user: Some("bob".into()), ..Actor::default() };
        // Bob's lock lives an hour: not renewed while this test looks.
        let hour = Duration::from_secs(3600);
        crate::lock::Lock::acquire(&other, &environment(), &bob, hour, Duration::ZERO).await
    });
    let failed = run_with_ttl(&fake, &env, &plan, &seen, ttl).await;
    let ended = seen.started.elapsed();
    let bob = bob.await.ok().and_then(Result::ok).unwrap_or_else(|| panic!("bob has no lock"));
    let Err(Error::Execute(error)) = failed else { panic!("{failed:?}") };
    let message = error.to_string();
    assert!(message.contains("failed while keeping the lock"), "{message}");
    let ExecuteError::Failed { left, cause, .. } = *error else { panic!("{error:?}") };
    assert!(cause.to_string().starts_with("the lock of prod was lost: "), "{cause}");
    assert!(
        matches!(&left.restored, Restored::Left { resources, why: Unrestored::LockLost } if *resources == [id("workload/a")]),
        "{left:?}"
    );
    assert!(matches!(left.recorded, Recorded::Not(_)), "{left:?}");
    assert_eq!(left.lock, LockLeft::Lost);
    // Noticed while waiting for a, within a second of the loss, not when
    // a became ready.
    assert!(ended < Duration::from_secs(52), "{ended:?}");
    // The lock was lost 50 s in (a sixth of its TTL before its expiry):
    // every write after that is bob's taking it over.
    let after: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.verb.is_write() && c.at >= Duration::from_secs(50))
        .map(|c| format!("{:?} {} {}", c.verb, c.path, c.status))
        .collect();
    assert_eq!(after, ["Post /org/acme/secret 409", format!("Patch {LOCK} 200").as_str()]);
    assert_eq!(resource_writes(&fake), ["Put /org/acme/gvc/app/workload"], "only a");
    assert!(fake.body(&item(&env, &id("workload/a"))).is_some(), "not restored under no lock");
    assert_eq!(fake.body(&item(&env, &id("workload/b"))), None);
    assert_eq!(fake.count(Verb::Post, "ferry-release-"), 0, "no release recorded");
    let holder = fake.body(LOCK).map(|l| l["tags"]["ferry/lock-holder"].clone());
    assert!(holder.is_some_and(|h| h.as_str().is_some_and(|h| h.starts_with("bob@"))));
    drop(bob);
}

#[tokio::test(start_paused = true)]
async fn when_the_api_goes_away_mid_release_the_failure_says_what_is_left() {
    let (fake, env) = (Fake::new(), environment());
    fake.set_rollout("api", Rollout::After(Duration::from_secs(60)));
    let desired = [secret("db", "new"), workload("api"), workload("web")];
    let edges = [("secret/db", "workload/api"), ("workload/api", "workload/web")];
    let plan = planned(&fake, &env, &desired, &edges).await;
    let other = fake.clone();
    let outage = async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        api_goes_away(&other);
    };
    let seen = Seen::new();
    let (failed, ()) = tokio::join!(run(&fake, &env, &plan, &seen), outage);
    let Err(Error::Execute(error)) = failed else { panic!("{failed:?}") };
    let message = error.to_string();
    assert!(
        message.ends_with(
            "prod failed while waiting for workload/api to be ready; prod is left half-changed: 2 resources written, 0 restored, 2 not restored"
        ),
        "{message}"
    );
    let ExecuteError::Failed { left, .. } = *error else { panic!("{error:?}") };
    assert_eq!(left.written, [id("secret/db"), id("workload/api")]);
    assert!(matches!(left.recorded, Recorded::Not(_)), "{left:?}");
    assert!(matches!(left.lock, LockLeft::Left(_)), "{left:?}");
    let shown = left.to_string();
    for line in [
        "written: secret/db, workload/api\n",
        "restored: none\n",
        "not restored: all 2 (restoring failed: ",
        "no release was recorded: writing its record failed: ",
        "the lock could not be released (",
        "\n  ferry status prod  # what runs there now",
        "\n  ferry rollback prod",
        "\n  ferry unlock prod  # once the lock has expired",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    let json = left.to_json();
    assert_eq!(json["step"], "waiting for workload/api to be ready");
    assert_eq!(json["not_restored"], json!(["secret/db", "workload/api"]));
    assert_eq!(json["restored"], json!([]));
    assert_eq!(json["release"], Value::Null);
    assert_eq!(json["lock"], "left");
    // The workload stays written: nothing reached the API after it went.
    assert!(fake.body(&item(&env, &id("workload/api"))).is_some());
}

#[tokio::test(start_paused = true)]
async fn an_api_failure_under_the_lock_before_any_write_says_nothing_was_changed() {
    let (fake, env) = (Fake::new(), environment());
    let plan = planned(&fake, &env, &[workload("api")], &[]).await;
    fake.inject(Fault::new(Verb::Get, "/workload/api", 403));
    let failed = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = failed else { panic!("{failed:?}") };
    assert!(matches!(&*error, ExecuteError::BeforeWrites { .. }), "{error:?}");
    assert!(
        error.to_string().ends_with("prod failed before its first write; nothing was changed"),
        "{error}"
    );
    assert!(resource_writes(&fake).is_empty(), "{:?}", resource_writes(&fake));
    assert_eq!(fake.body(LOCK), None, "the lock was released");
}

/// Starts `plan` in a task, waits until `landed` holds of the fake, then
/// kills the run (the task aborted: no restore, no record, the lock left
/// to expire), as SIGKILL would.
async fn killed_when(fake: &Fake, env: &Environment, plan: &Plan, landed: impl Fn(&Fake) -> bool) {
    let seen = Seen::new();
    let running = run_with_ttl(fake, env, plan, &seen, Duration::from_secs(60));
    tokio::pin!(running);
    for _ in 0..600 {
        if landed(fake) {
            break;
        }
        tokio::select! {
            result = &mut running => panic!("the run ended: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    assert!(landed(fake), "never got there: {:?}", fake.calls());
    // Dropped mid-run: what SIGKILL leaves.
}

/// The record of release `revision` of prod, as stored.
fn stored_release(fake: &Fake, revision: u64) -> Option<Release> {
    fake.body(&format!("/org/acme/secret/{}", release::secret_name("prod", revision)))
        .and_then(|secret| release::from_secret(&secret))
}

fn settling() -> Settle {
    Settle {
        lock_timeout: Duration::from_secs(300),
        lock_ttl: Duration::from_secs(60),
        actor: Actor { user: Some("carol".into()), ..Actor::default() },
    }
}

/// A workload that exists, and a plan that changes its image and adds a
/// domain; `api` rolls out as `rollout` says.
async fn api_updated(fake: &Fake, env: &Environment, rollout: Rollout) -> (Value, Plan) {
    let (_, api) = workload("api");
    assert!(fake.put("/org/acme/gvc/app/workload", &api).await.is_ok());
    let before = fake.body(&item(env, &id("workload/api"))).unwrap_or_default();
    fake.set_rollout("api", rollout);
    let (api_id, mut newer) = workload("api");
    newer["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let desired = [(api_id, newer), domain("api-route")];
    let plan = planned(fake, env, &desired, &[("workload/api", "domain/api-route")]).await;
    (before, plan)
}

/// The api workload carries release `revision`'s stamp.
fn stamped(fake: &Fake, revision: &str) -> bool {
    let api = fake.body("/org/acme/gvc/app/workload/api").unwrap_or_default();
    api["tags"][release::RELEASE_TAG] == json!(revision)
}

#[tokio::test(start_paused = true)]
async fn a_release_killed_while_not_ready_is_restored_and_recorded_as_failed_by_the_next_run() {
    let (fake, env) = (Fake::new(), environment());
    let (before, plan) = api_updated(&fake, &env, Rollout::Never).await;
    killed_when(&fake, &env, &plan, |fake| stamped(fake, "1")).await;
    // Killed while waiting for api: the record says so, nothing else does.
    let left = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record in progress"));
    assert_eq!(left.outcome, Outcome::InProgress);
    let pending = left.pending.clone().unwrap_or_else(|| panic!("no pending writes"));
    assert_eq!(pending.writes.len(), 2, "{pending:?}");
    assert!(fake.body(LOCK).is_some(), "the lock stays until it expires");

    // The next run, once the lock has expired; api's earlier version
    // rolls out again when it is put back.
    tokio::time::sleep(Duration::from_secs(61)).await;
    fake.set_rollout("api", Rollout::After(Duration::from_secs(1)));
    let found = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.unfinished.len(), 1);
    assert_eq!(found.running(fake.now_ms()).map(|r| r.revision), None, "no live lock");
    let seen = Seen::new();
    let settled = settle(&fake, &env, &found, &settling(), &seen).await;
    let Err(Error::Execute(error)) = settled else { panic!("{settled:?}") };
    let message = error.to_string();
    assert!(
        message.starts_with("release 1 of prod, a deploy left in progress when its run stopped, did not finish; prod is as it was"),
        "{message}"
    );
    let ExecuteError::Finished { revision, left, cause, .. } = *error else { panic!("{error:?}") };
    assert_eq!(revision, 1);
    // Every write had landed (domain included? it waits for api ready,
    // so it never came): the release stopped part of the way.
    assert!(matches!(cause, StepError::Stopped { made: 1, planned: 2 }), "{cause:?}");
    assert!(
        matches!(&left.restored, Restored::Restored(ids) if *ids == [id("workload/api")]),
        "{left:?}"
    );
    assert!(matches!(left.recorded, Recorded::Revision(1)), "{left:?}");
    assert_eq!(left.lock, LockLeft::Released);
    let now = fake.body(&item(&env, &id("workload/api"))).unwrap_or_default();
    assert_eq!(now["spec"], before["spec"], "api is back as it was");
    assert_eq!(fake.body(&item(&env, &id("domain/api-route"))), None);
    let recorded = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    assert_eq!((recorded.outcome, recorded.rolled_back), (Outcome::Failed, true));
    assert_eq!(recorded.pending, None, "a finished record keeps no pending writes");
    let said = recorded.message.unwrap_or_default();
    assert!(said.contains("its run stopped before finishing it"), "{said}");
    assert_eq!(fake.body(LOCK), None, "the lock was released");
}

#[tokio::test(start_paused = true)]
async fn a_release_killed_after_its_writes_is_waited_for_and_recorded_by_the_next_run() {
    let (fake, env) = (Fake::new(), environment());
    // Ready 150 s after its write: after the kill, and after the lock
    // expired, but within the readiness timeout of the next run.
    let (_, api) = workload("api");
    assert!(fake.put("/org/acme/gvc/app/workload", &api).await.is_ok());
    fake.set_rollout("api", Rollout::After(Duration::from_secs(150)));
    // A plan of api alone (no route waiting for it): every write lands.
    let mut newer = api.clone();
    newer["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let plan = planned(&fake, &env, &[(id("workload/api"), newer)], &[]).await;
    killed_when(&fake, &env, &plan, |fake| stamped(fake, "1")).await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    let found = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let seen = Seen::new();
    let settled = settle(&fake, &env, &found, &settling(), &seen).await;
    let settled = settled.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(settled.finished.iter().map(|r| r.revision).collect::<Vec<_>>(), [1]);
    assert!(seen.at("ready api") >= Duration::from_secs(80), "waited for its readiness");
    let recorded = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    assert_eq!(recorded.outcome, Outcome::Succeeded);
    assert_eq!(recorded.pending, None);
    assert!(stamped(&fake, "1"), "what it wrote stays");
    assert_eq!(fake.body(LOCK), None, "the lock was released");
    // Nothing is left for the run after.
    let again = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(again.unfinished.is_empty() && again.lock.is_none(), "{again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_release_whose_run_holds_the_lock_is_waited_for_and_an_executor_refuses_to_write_past_it()
{
    let (fake, env) = (Fake::new(), environment());
    let (_, plan) = api_updated(&fake, &env, Rollout::Never).await;
    killed_when(&fake, &env, &plan, |fake| stamped(fake, "1")).await;
    // Within the lock's TTL its run counts as running.
    let look_now = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(look_now.running(fake.now_ms()).map(|r| r.revision), Some(1));
    // The next run waits for the lock; given no time, it is blocked.
    let quick = Settle { lock_timeout: Duration::ZERO, ..settling() };
    let settled = settle(&fake, &env, &look_now, &quick, &Seen::new()).await;
    let Err(Error::Execute(error)) = settled else { panic!("{settled:?}") };
    assert!(matches!(&*error, ExecuteError::Lock(LockError::Held { .. })), "{error:?}");
    assert_eq!(stored_release(&fake, 1).map(|r| r.outcome), Some(Outcome::InProgress));

    // An executor that gets the lock while the record is still in
    // progress (its plan made against what the stopped run left) writes
    // nothing.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let (_, api) = workload("api");
    let plan = planned(&fake, &env, &[(id("workload/api"), api)], &[]).await;
    let writes_before = resource_writes(&fake);
    let refused = run(&fake, &env, &plan, &Seen::new()).await;
    let Err(Error::Execute(error)) = refused else { panic!("{refused:?}") };
    assert!(matches!(&*error, ExecuteError::Unfinished { revision: 1, .. }), "{error:?}");
    assert_eq!(resource_writes(&fake), writes_before, "nothing was written");
}

#[tokio::test(start_paused = true)]
async fn an_expired_lock_is_cleared_by_the_next_run_whatever_it_does() {
    let (fake, env) = (Fake::new(), environment());
    let dead = Actor { user: Some("dave".into()), ..Actor::default() };
    let lock =
        crate::lock::Lock::acquire(&fake, &env, &dead, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    drop(lock);
    let look_now = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let settled = settle(&fake, &env, &look_now, &settling(), &Seen::new()).await;
    assert!(settled.is_ok_and(|s| s.cleared.is_none()), "a live lock is not touched");
    assert!(fake.body(LOCK).is_some());
    tokio::time::sleep(Duration::from_secs(61)).await;
    let look_later = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let seen = Seen::new();
    let settled = settle(&fake, &env, &look_later, &settling(), &seen).await;
    let cleared = settled.unwrap_or_else(|e| panic!("{e:?}")).cleared;
    assert!(cleared.is_some_and(|c| c.holder.starts_with("dave@")));
    assert_eq!(fake.body(LOCK), None, "the expired lock is gone");
}

#[tokio::test(start_paused = true)]
async fn a_secret_a_stopped_release_changed_is_named_as_not_restored() {
    let (fake, env) = (Fake::new(), environment());
    let (_, old) = secret("db", "s3cr3t-old-payload");
    assert!(fake.put("/org/acme/secret", &old).await.is_ok());
    fake.set_rollout("api", Rollout::Never);
    let desired = [secret("db", "s3cr3t-new-payload"), workload("api")];
    let plan = planned(&fake, &env, &desired, &[("secret/db", "workload/api")]).await;
    killed_when(&fake, &env, &plan, |fake| stamped(fake, "1")).await;
    let recorded = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    let payloads = serde_json::to_string(&recorded).unwrap_or_default();
    assert!(!payloads.contains("s3cr3t"), "{payloads}");
    tokio::time::sleep(Duration::from_secs(61)).await;
    let look_later = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let settled = settle(&fake, &env, &look_later, &settling(), &Seen::new()).await;
    let Err(Error::Execute(error)) = settled else { panic!("{settled:?}") };
    let ExecuteError::Finished { left, .. } = *error else { panic!("{error:?}") };
    let (unrestored, why) = left.restored.unrestored();
    assert_eq!(unrestored, [id("secret/db")]);
    assert!(why.contains("is not kept"), "{why}");
    assert_eq!(left.restored.restored(), [id("workload/api")]);
    assert_eq!(fake.body(&item(&env, &id("workload/api"))), None, "created, deleted again");
    let recorded = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    assert_eq!((recorded.outcome, recorded.rolled_back), (Outcome::Failed, false));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_release_started_with_no_rollback_is_left_as_written() {
    let (fake, env) = (Fake::new(), environment());
    let (_, plan) = api_updated(&fake, &env, Rollout::Never).await;
    killed_when(&fake, &env, &plan, |fake| stamped(fake, "1")).await;
    // As a run started with --no-rollback records it.
    let mut left = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    if let Some(pending) = &mut left.pending {
        pending.no_rollback = true;
    }
    fake.seed(
        &format!("/org/acme/secret/{}", release::secret_name("prod", 1)),
        release::to_secret(&left),
    );
    tokio::time::sleep(Duration::from_secs(61)).await;
    let found = look(&fake, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let settled = settle(&fake, &env, &found, &settling(), &Seen::new()).await;
    let Err(Error::Execute(error)) = settled else { panic!("{settled:?}") };
    let ExecuteError::Finished { left, .. } = *error else { panic!("{error:?}") };
    assert!(
        matches!(&left.restored, Restored::Left { resources, why: Unrestored::NoRollback } if *resources == [id("workload/api")]),
        "{left:?}"
    );
    assert!(stamped(&fake, "1"), "what it wrote stays");
    let recorded = stored_release(&fake, 1).unwrap_or_else(|| panic!("no record"));
    assert_eq!((recorded.outcome, recorded.rolled_back), (Outcome::Failed, false));
}
