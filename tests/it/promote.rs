//! `ferry promote` end to end on the simulator: images copied between the
//! orgs' registries (the simulator's own, and real Debian registries that
//! stand in for them), prod running staging's images by digest, no-op
//! second runs, automatic rollback, the lock, a killed promotion, a
//! gvc-per-env pipeline, and live state equal to the real cpln apply's.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry::sim::{FaultConfig, FaultTarget, SimConfig};
use serde_json::Value;

use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::cpln::Cpln;
use crate::support::git::{TestRepo, commit_example};
use crate::support::oci::{Image, Registry};
use crate::support::registry_server::AuthMode::{Basic, Token};
use crate::support::registry_server::RegistryServer;
use crate::support::sim::Api;
use crate::support::sim::Sim;

pub(crate) const IMAGES: [(&str, &str); 4] =
    [("api", "1.4.2"), ("worker", "1.4.2"), ("web", "1.4.2"), ("queue", "3.13.7")];
const ORGS: [(&str, &str); 4] = [
    ("acme-dev", "dev-token-p"),
    ("acme-staging", "staging-token-p"),
    ("acme-prod", "prod-token-p"),
    ("acme", "one-token"),
];

pub(crate) fn token(org: &str) -> &'static str {
    ORGS.iter().find(|(o, _)| *o == org).map_or("", |(_, t)| t)
}

/// A repository with the example and a plan file pointed at a simulator.
pub(crate) struct Pipeline {
    dir: tempfile::TempDir,
    pub(crate) sim: Sim,
    /// Debian registries that stand in for the orgs' own (kept running).
    registries: Vec<RegistryServer>,
}

impl Pipeline {
    pub(crate) async fn org_per_env() -> Self {
        let mut config = SimConfig::new();
        for (org, token) in &ORGS[..3] {
            config = config.with_org(*org, *token);
        }
        Self::org_per_env_with(config, Vec::new()).await
    }

    /// dev, staging and prod whose registries are real Debian registries
    /// (Basic, token and Basic auth), each accepting its org's token.
    async fn org_per_env_on_debian_registries() -> Self {
        let mut config = SimConfig::new();
        let mut registries = Vec::new();
        for ((org, token), mode) in ORGS[..3].iter().zip([Basic, Token, Basic]) {
            let registry = RegistryServer::start_with_password(mode, token);
            config = config.with_org_on_registry(*org, *token, &registry.target.host);
            registries.push(registry);
        }
        Self::org_per_env_with(config, registries).await
    }

    pub(crate) async fn org_per_env_with(
        config: SimConfig,
        registries: Vec<RegistryServer>,
    ) -> Self {
        let config = config.with_rollout_delay(Duration::from_millis(100));
        let sim = Sim::start(config).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let pipeline = Pipeline { dir, sim, registries };
        let mut plan = String::from(
            "manifests:\n  path: manifests-example\ntopology: org-per-env\nenvironments:\n",
        );
        for (name, (org, _)) in ["dev", "staging", "prod"].iter().zip(&ORGS[..3]) {
            plan.push_str(&pipeline.environment(name, org, "app"));
            if *name != "dev" {
                plan.push_str(&format!("    overrides:\n      - file: overrides/{name}.yaml\n"));
            }
        }
        pipeline.commit(&plan);
        pipeline
    }

    pub(crate) async fn gvc_per_env() -> Self {
        let config = SimConfig::new()
            .with_rollout_delay(Duration::from_millis(100))
            .with_org("acme", token("acme"));
        let sim = Sim::start(config).await;
        let pipeline =
            Pipeline { dir: tempfile::tempdir().expect("temp dir"), sim, registries: Vec::new() };
        let mut plan = String::from(
            "manifests:\n  path: manifests-example\ntopology: gvc-per-env\nenvironments:\n",
        );
        for (name, gvc) in [("staging", "app-staging"), ("prod", "app-prod")] {
            plan.push_str(
                &pipeline
                    .environment(name, "acme", gvc)
                    .replace(&format!("TOKEN_{}", name.to_uppercase()), "TOKEN_ACME"),
            );
        }
        pipeline.commit(&plan);
        pipeline
    }

    fn environment(&self, name: &str, org: &str, gvc: &str) -> String {
        format!(
            "  - name: {name}\n    org: {org}\n    gvc: {gvc}\n    endpoint: {}\n    tokenEnv: TOKEN_{}\n    registry: {}\n    readiness: {{interval: 100ms, timeout: 8s, consecutiveChecks: 2}}\n",
            self.sim.api_url(),
            name.to_uppercase(),
            self.sim.registry_host(org).expect("registry"),
        )
    }

    pub(crate) fn repo(&self) -> TestRepo {
        TestRepo::open(self.path())
    }

    fn commit(&self, plan: &str) {
        commit_example(&TestRepo::init(self.dir.path()), &[("promotion.yaml", plan)]);
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn vars(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("TOKEN_DEV", token("acme-dev")),
            ("TOKEN_STAGING", token("acme-staging")),
            ("TOKEN_PROD", token("acme-prod")),
            ("TOKEN_ACME", token("acme")),
        ]
    }

    pub(crate) fn ferry(&self, args: &[&str]) -> Run {
        ferry_with(self.path(), args, &self.vars())
    }

    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(self.path())
            .envs(self.vars())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferry starts")
    }

    /// Demo images in `org`'s registry, the example applied there with the
    /// real cpln CLI (`ferry render ENV`), as a first deployment would be.
    pub(crate) async fn deploy_with_cpln(&self, env: &str, org: &str, gvc: &str) {
        self.push_images(org, &IMAGES).await;
        self.apply_with_cpln(env, org, gvc, |rendered| rendered).await;
    }

    /// Demo images (`repository`, `tag`) pushed to `org`'s registry.
    pub(crate) async fn push_images(&self, org: &str, images: &[(&str, &str)]) {
        let registry = Registry::new(&self.sim.registry_host(org).expect("registry"), token(org));
        for (repo, tag) in images {
            registry.push_image(repo, tag, &Image::new(&format!("{repo}-{tag}"), "amd64")).await;
        }
    }

    /// `ferry render ENV`, changed by `edit`, applied to `org` with the
    /// real cpln CLI.
    pub(crate) async fn apply_with_cpln(
        &self,
        env: &str,
        org: &str,
        gvc: &str,
        edit: impl FnOnce(String) -> String,
    ) {
        let rendered = self.ferry(&["render", env]);
        assert_eq!(rendered.code, Some(0), "{}", rendered.stderr);
        let file = self.path().join(format!("rendered-{env}.yaml"));
        std::fs::write(&file, edit(rendered.stdout)).expect("rendered manifests");
        Cpln::new(&self.sim, org, token(org))
            .ok(
                &["apply", "-f", file.to_str().expect("path"), "--gvc", gvc],
                Duration::from_secs(90),
            )
            .await;
        std::fs::remove_file(file).expect("remove");
    }

    /// The example deployed to dev with cpln, then promoted to staging.
    pub(crate) async fn stage(&self) {
        self.deploy_with_cpln("dev", "acme-dev", "app").await;
        let staging = self.ferry(&["promote", "dev", "staging", "--yes"]);
        assert_eq!(staging.code, Some(0), "{}\n{}", staging.stdout, staging.stderr);
    }

    pub(crate) fn api(&self, org: &str) -> Api {
        Api::new(&self.sim, Some(token(org)))
    }
}

pub(crate) async fn images_of(api: &Api, org: &str, gvc: &str) -> Vec<(String, String)> {
    let (_, list) = api.get(&format!("/org/{org}/gvc/{gvc}/workload")).await;
    let mut images: Vec<(String, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap_or("").to_owned(),
                w["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    images.sort();
    images
}

/// The digest part of an image reference.
pub(crate) fn digest_of(image: &str) -> &str {
    image.split_once('@').map_or("", |(_, d)| d)
}

pub(crate) fn writes(sim: &Sim, org: &str) -> Vec<ferry::sim::RequestRecord> {
    sim.request_log()
        .into_iter()
        .filter(|r| r.org.as_deref() == Some(org))
        .filter(|r| {
            matches!(r.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE")
                && !r.path.ends_with("/-query")
        })
        .collect()
}

/// `METHOD path` of every write into `org`, in order.
pub(crate) fn written(sim: &Sim, org: &str) -> Vec<String> {
    writes(sim, org).into_iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

pub(crate) async fn promoted_to_prod() -> Pipeline {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let prod = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(prod.code, Some(0), "{}\n{}", prod.stdout, prod.stderr);
    pipeline
}

#[tokio::test(flavor = "multi_thread")]
async fn prod_runs_stagings_images_by_digest_and_a_second_promote_changes_nothing() {
    let pipeline = promoted_to_prod().await;
    let staging = images_of(&pipeline.api("acme-staging"), "acme-staging", "app").await;
    let prod = images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    assert_eq!(staging.len(), 5);
    for ((name, staged), (prod_name, promoted)) in staging.iter().zip(&prod) {
        assert_eq!(name, prod_name);
        assert!(promoted.starts_with("/org/acme-prod/image/"), "{promoted}");
        assert_eq!(digest_of(staged), digest_of(promoted), "{name}: {staged} vs {promoted}");
        assert!(!digest_of(promoted).is_empty());
    }
    // The tag came along with the bytes.
    let (_, image) = pipeline.api("acme-prod").get("/org/acme-prod/image/api:1.4.2").await;
    assert_eq!(image["digest"].as_str(), Some(digest_of(&prod[0].1)));

    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][0]["revision"], 1);
    assert_eq!(releases["releases"][0]["outcome"], "succeeded");
    assert_eq!(releases["releases"][0]["source"], "staging");

    once_more_changes_nothing(&pipeline, &["promote", "staging", "prod", "--yes"], "acme-prod");
}

/// Runs `args` again: it succeeds with "No changes." and writes nothing
/// to `org`.
pub(crate) fn once_more_changes_nothing(pipeline: &Pipeline, args: &[&str], org: &str) {
    pipeline.sim.clear_request_log();
    let again = pipeline.ferry(args);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let written = writes(&pipeline.sim, org);
    assert!(written.is_empty(), "{args:?} again wrote: {written:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn images_travel_between_the_real_registries_behind_the_orgs() {
    let pipeline = Pipeline::org_per_env_on_debian_registries().await;
    pipeline.stage().await;
    let prod_registry = &pipeline.registries[2];
    let before = prod_registry.requests().len();
    let prod = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(prod.code, Some(0), "{}\n{}", prod.stdout, prod.stderr);
    assert!(prod.stderr.contains("workload/api ready"), "{}", prod.stderr);

    let staged = images_of(&pipeline.api("acme-staging"), "acme-staging", "app").await;
    let promoted = images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    assert_eq!(staged.len(), 5);
    // Prod's own registry, a Debian docker-registry, now serves every image
    // prod runs, at staging's digest, under its tag.
    let registry = Registry::new(&prod_registry.target.host, token("acme-prod"));
    for ((name, staged), (_, image)) in staged.iter().zip(&promoted) {
        assert_eq!(digest_of(staged), digest_of(image), "{name}: {staged} vs {image}");
        let repository = image.trim_start_matches("/org/acme-prod/image/");
        let (repository, digest) = repository.split_once('@').expect("pinned by digest");
        for reference in [digest, "1.4.2", "3.13.7"] {
            let response = registry
                .request(reqwest::Method::HEAD, &format!("/v2/{repository}/manifests/{reference}"))
                .header("accept", crate::support::oci::OCI_MANIFEST)
                .send()
                .await
                .expect("prod registry answers");
            if response.status() == reqwest::StatusCode::OK {
                assert_eq!(response.headers()["docker-content-digest"], digest, "{repository}");
            } else {
                assert!(reference != digest, "{repository}@{digest} is missing");
            }
        }
    }
    let writes: Vec<_> = prod_registry.requests()[before..]
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path.clone())
        .collect();
    for (repo, tag) in IMAGES {
        assert!(writes.contains(&format!("/v2/{repo}/manifests/{tag}")), "{repo}: {writes:?}");
    }

    let settled = prod_registry.requests().len();
    let again = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let moved: Vec<_> = prod_registry.requests()[settled..]
        .iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .cloned()
        .collect();
    assert!(moved.is_empty(), "a no-op promote wrote to prod's registry: {moved:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_never_becomes_ready_is_rolled_back_and_recorded_as_failed() {
    let pipeline = promoted_to_prod().await;
    let api = pipeline.api("acme-prod");
    let (_, before) = api.get("/org/acme-prod/gvc/app/workload/api").await;
    // Prod's api now gets more memory and a tag that makes it fail readiness.
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    let broken = plan.replace(
        "      - file: overrides/prod.yaml\n",
        "      - file: overrides/prod.yaml\n      - kind: workload\n        name: api\n        patch:\n          tags: {ferry-sim/readiness: fail}\n          spec: {containers: [{name: main, memory: 768Mi}]}\n",
    );
    // The readiness timeout itself is unit-tested on the fake
    // (`readiness::tests::waiting`); here the wire path needs only a few
    // checks 100 ms apart, so the test waits out 500 ms, not seconds.
    let broken = broken.replace("timeout: 8s", "timeout: 500ms");
    std::fs::write(&plan_file, broken).expect("plan file");

    let run = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("workload/api was not ready after 500ms"), "{}", run.stderr);
    // miette wraps at 100 columns: only what fits on one line is matched.
    assert!(run.stderr.contains("prod is as it was"), "{}", run.stderr);
    assert!(run.stderr.contains("restored: workload/api"), "{}", run.stderr);

    let (_, after) = api.get("/org/acme-prod/gvc/app/workload/api").await;
    assert_eq!(after["spec"]["containers"][0]["memory"], before["spec"]["containers"][0]["memory"]);
    assert_eq!(after["spec"]["containers"][0]["image"], before["spec"]["containers"][0]["image"]);
    assert!(after["tags"].get("ferry-sim/readiness").is_none(), "{:#}", after["tags"]);
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][0]["revision"], 2);
    assert_eq!(releases["releases"][0]["outcome"], "failed");
    assert_eq!(releases["releases"][0]["rolled_back"], true);
    assert_eq!(releases["releases"][1]["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_workload_one_location_never_reports_ready_in_is_promoted_as_cpln_judges_it() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // Prod's cron job between runs: aws-us-east-2 never reports ready
    // (the simulator's per-location readiness tag). `cpln apply --ready`
    // counts a cron workload ready once deployed; waiting for every
    // location, as Ferry once did, would time out here.
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    let idle = plan.replace(
        "      - file: overrides/prod.yaml\n",
        "      - file: overrides/prod.yaml\n      - kind: workload\n        name: db-migrate\n        patch:\n          tags: {ferry-sim/readiness: 'fail-in:aws-us-east-2'}\n",
    );
    std::fs::write(&plan_file, idle).expect("plan file");

    let run = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "workload/db-migrate ready: 1/2 locations ready (a cron workload needs one) (aws-eu-central-1)"
        ),
        "{}",
        run.stderr
    );
    let api = pipeline.api("acme-prod");
    let (_, deployments) = api.get("/org/acme-prod/gvc/app/workload/db-migrate/deployment").await;
    let ready: Vec<(&str, bool)> = deployments["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| (d["name"].as_str().unwrap_or(""), d["status"]["ready"] == true))
        .collect();
    assert_eq!(ready, [("aws-eu-central-1", true), ("aws-us-east-2", false)]);
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][0]["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_promotes_never_interleave_and_the_second_names_the_holder() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // Rollouts that never end hold the first promotion (and its lock) in
    // its readiness wait until they are made instant below.
    pipeline.sim.set_rollout_delay(Duration::from_secs(3600));
    pipeline.sim.clear_request_log();
    let first = pipeline.spawn(&["promote", "staging", "prod", "--yes"]);
    let api = pipeline.api("acme-prod");
    let some_workload = |list: &Value| list["items"].as_array().is_some_and(|i| !i.is_empty());
    until(&api, "/org/acme-prod/gvc/app/workload", some_workload).await;
    let second = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    pipeline.sim.set_rollout_delay(Duration::ZERO);
    let first = first.wait_with_output().expect("first");
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(second.code, Some(3), "{}", second.stderr);
    assert!(
        second.stderr.contains("prod is locked by") && second.stderr.contains("pid"),
        "{}",
        second.stderr
    );

    let log = writes(&pipeline.sim, "acme-prod");
    // Secrets are created (POST) for the lock and, under it, the release
    // record (create-only); both are `/org/acme-prod/secret` in the log.
    let created = |status: u16| {
        log.iter()
            .filter(move |r| r.method == "POST" && r.path == "/org/acme-prod/secret")
            .filter(move |r| r.status == status)
            .collect::<Vec<_>>()
    };
    let taken = created(201);
    assert_eq!(taken.len(), 2, "one lock was taken, one release recorded: {log:?}");
    assert_eq!(created(409).len(), 1, "the second asked once: {log:?}");
    let released = log
        .iter()
        .find(|r| r.method == "DELETE" && r.path.contains("ferry-lock-prod"))
        .expect("the lock was released");
    let (start, end) = (taken[0].at_ms, released.at_ms);
    for write in log.iter().filter(|r| (200..300).contains(&r.status)) {
        assert!(write.at_ms >= start && write.at_ms <= end, "a write outside the lock: {write:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_promote_leaves_its_lock_and_the_next_one_breaks_it_once_expired() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    pipeline.sim.set_rollout_delay(Duration::from_secs(3600));
    let mut doomed = pipeline.spawn(&["promote", "staging", "prod", "--yes"]);
    let api = pipeline.api("acme-prod");
    until(&api, "/org/acme-prod/gvc/app/workload/web", |_| true).await;
    doomed.kill().expect("kill");
    let _ = doomed.wait();
    let lock_path = "/org/acme-prod/secret/ferry-lock-prod";
    let (status, left) = api.get(lock_path).await;
    assert_eq!(status, reqwest::StatusCode::OK, "the killed promotion left its lock");
    let holder = left["tags"]["ferry/lock-holder"].as_str().unwrap_or_default().to_owned();
    assert!(holder.contains("pid"), "{left:#}");

    // While it has not expired, the next promotion is refused (exit 3).
    pipeline.sim.set_rollout_delay(Duration::ZERO);
    let refused = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    // Its TTL (2 minutes) passes: the lock's expiry is what the lock reads.
    let past = serde_json::json!({"tags": {"ferry/lock-expires": "2026-01-01T00:00:00.000Z"}});
    assert!(api.patch(lock_path, past).await.0.is_success());
    pipeline.sim.clear_request_log();
    // The next run takes the lock over and finishes the killed release
    // first: it had not made all its writes, so what it made is put back,
    // the release recorded as failed, and the run stops there (exit 1;
    // tests/it/interrupted.rs has the rest).
    let next = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(next.code, Some(1), "{}\n{}", next.stdout, next.stderr);
    assert!(
        next.stderr.contains(&format!("breaking the expired lock of prod: {holder}")),
        "{}",
        next.stderr
    );
    let lock_writes: Vec<String> = writes(&pipeline.sim, "acme-prod")
        .iter()
        .filter(|r| r.path.contains("ferry-lock-prod") || r.path == "/org/acme-prod/secret")
        .take(2)
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert_eq!(
        lock_writes,
        ["POST /org/acme-prod/secret 409", "PATCH /org/acme-prod/secret/ferry-lock-prod 200"],
        "the expired lock was taken over in one version-conditioned PATCH, never deleted"
    );
    let (_, taken) = api.get(lock_path).await;
    assert!(taken.is_null() || taken["tags"]["ferry/lock-holder"] != holder.as_str());
    // Then a promotion goes through as if the killed one had never run.
    let again = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    let plan = pipeline.ferry(&["plan", "prod", "--from", "staging"]);
    assert_eq!(plan.code, Some(0), "converged: {}", plan.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_manifests_promote_across_a_gvc_per_env_pipeline() {
    let pipeline = Pipeline::gvc_per_env().await;
    pipeline.deploy_with_cpln("staging", "acme", "app-staging").await;
    let api = pipeline.api("acme");
    let deployed = staging_state(&api).await;
    let run = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let staging = images_of(&api, "acme", "app-staging").await;
    let prod = images_of(&api, "acme", "app-prod").await;
    assert_eq!(prod.len(), 5);
    for ((_, staged), (_, promoted)) in staging.iter().zip(&prod) {
        assert!(
            promoted.starts_with("/org/acme/image/") && promoted.contains("@sha256:"),
            "{promoted}"
        );
        assert_eq!(staged.split(['@', ':']).next(), promoted.split(['@', ':']).next());
    }
    assert_eq!(pipeline.ferry(&["plan", "prod", "--from", "staging"]).code, Some(0));
    assert_eq!(staging_state(&api).await, deployed, "staging is untouched");
}

/// Every workload of app-staging with its version.
async fn staging_state(api: &Api) -> Vec<(Value, Value)> {
    let (_, list) = api.get("/org/acme/gvc/app-staging/workload").await;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items.into_iter().map(|w| (w["name"].clone(), w["version"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn live_state_after_promote_equals_the_real_cpln_apply_of_the_same_manifests() {
    let pipeline = promoted_to_prod().await;
    let rendered = pipeline.ferry(&["render", "prod", "--from", "staging"]);
    assert_eq!(rendered.code, Some(0), "{}", rendered.stderr);
    let file = pipeline.path().join("prod-rendered.yaml");
    std::fs::write(&file, &rendered.stdout).expect("rendered");
    let other = Sim::start(SimConfig::new().with_org("acme-prod", token("acme-prod"))).await;
    Cpln::new(&other, "acme-prod", token("acme-prod"))
        .ok(&["apply", "-f", file.to_str().expect("path"), "--gvc", "app"], Duration::from_secs(90))
        .await;
    let (promoted, applied) =
        (pipeline.api("acme-prod"), Api::new(&other, Some(token("acme-prod"))));
    let bodies: Vec<Value> = ferry::manifest::yaml::parse_documents(
        &ferry::diagnostic::SourceFile::new("r", rendered.stdout),
    )
    .expect("YAML")
    .iter()
    .map(ferry::manifest::yaml::Node::to_json)
    .collect();
    assert_eq!(bodies.len(), 13);
    for body in bodies {
        let kind = ferry::manifest::Kind::parse(body["kind"].as_str().unwrap_or("")).expect("kind");
        let name = body["name"].as_str().unwrap_or("");
        let mut path = ferry::api::paths::item("acme-prod", "app", kind, name);
        if kind == ferry::manifest::Kind::Secret {
            path.push_str("/-reveal");
        }
        let (a, b) =
            (comparable(promoted.get(&path).await.1), comparable(applied.get(&path).await.1));
        assert_eq!(a, b, "{kind}/{name} differs");
    }
}

/// A live body without what differs between any two writes of the same
/// content: ids, versions, times, status, and the release Ferry tags
/// workloads with.
fn comparable(mut body: Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        for field in ["id", "version", "created", "lastModified", "status", "health"] {
            object.remove(field);
        }
        if let Some(Value::Object(tags)) = object.get_mut("tags") {
            tags.remove("ferry/release");
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_main_job_runs_on_the_embedded_simulator_and_then_has_nothing_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    commit_example(&TestRepo::init(dir.path()), &[("promotion.example.yaml", &plan)]);

    // Exactly the README's command: without a terminal the simulator, a
    // sandbox, needs no approval.
    let readme = ["promote", "staging", "prod", "--sim", "-f", "promotion.example.yaml"];
    let run = ferry_with(dir.path(), &readme, &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Plan for prod: org acme-prod, GVC app"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "Plan: 13 to create, 0 to update, 0 to replace, 0 to delete, 4 images to copy."
        ),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("Copying ") && run.stderr.contains("/api:1.4.2"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("workload/api ready: 2/2 locations ready (aws-eu-central-1, aws-us-east-2)"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("Released prod revision 1 from staging"), "{}", run.stdout);

    assert!(
        run.stderr.contains("going ahead, as this is the embedded simulator"),
        "{}",
        run.stderr
    );
    let again = ferry_with(dir.path(), &readme, &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("No changes. prod matches the manifests."), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_or_refused_naming_what_moved() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // A real environment, no terminal, no --yes: blocked, nothing written.
    pipeline.sim.clear_request_log();
    let unapproved = pipeline.ferry(&["promote", "staging", "prod"]);
    assert_eq!(unapproved.code, Some(3), "{}", unapproved.stderr);
    assert!(unapproved.stderr.contains("needs an approval"), "{}", unapproved.stderr);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");

    let saved = pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", "prod.json"]);
    assert_eq!(saved.code, Some(2), "{}", saved.stderr);
    // Someone changes prod by hand after the plan was saved: refused.
    let api = pipeline.api("acme-prod");
    let (status, _) = api
        .put("/org/acme-prod/secret", serde_json::json!({"kind": "secret", "name": "api-db", "type": "opaque", "data": {"payload": "by hand"}}))
        .await;
    assert!(status.is_success(), "{status}");
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["apply", "prod.json"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("secret/api-db changed in prod since the plan was made"),
        "{}",
        refused.stderr
    );
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");

    // A fresh plan, unchanged since, is carried out.
    assert_eq!(
        pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", "prod.json"]).code,
        Some(2)
    );
    let applied = pipeline.ferry(&["apply", "prod.json"]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stdout.contains("Released prod revision 1 from staging"), "{}", applied.stdout);
    assert_eq!(pipeline.ferry(&["plan", "prod", "--from", "staging"]).code, Some(0));
}

/// Waits until GET `path` answers 200 with a body that `done` accepts.
pub(crate) async fn until(
    api: &crate::support::sim::Api,
    path: &str,
    done: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.get(path).await;
        if status == reqwest::StatusCode::OK && done(&body) {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never became what was awaited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate(child: &Child) {
    let signal =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(signal.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_before_any_write_releases_the_lock_and_changes_nothing() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // Slow registries: the promotion is still copying images when stopped.
    pipeline.sim.set_faults(FaultConfig {
        latency_ms: 400,
        target: FaultTarget::Registry,
        ..FaultConfig::default()
    });
    pipeline.sim.clear_request_log();
    let running = pipeline.spawn(&["promote", "staging", "prod", "--yes"]);
    let api = pipeline.api("acme-prod");
    until(&api, "/org/acme-prod/secret/ferry-lock-prod", |_| true).await;
    terminate(&running);
    let output = running.wait_with_output().expect("promote ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted before anything was written; the lock of prod was released"),
        "{stderr}"
    );
    assert_eq!(
        api.get("/org/acme-prod/secret/ferry-lock-prod").await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    let api_writes: Vec<String> = writes(&pipeline.sim, "acme-prod")
        .into_iter()
        .filter(|r| r.service == ferry::sim::Service::Api)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        api_writes,
        ["POST /org/acme-prod/secret", "DELETE /org/acme-prod/secret/ferry-lock-prod"],
        "only the lock was taken and released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_readiness_restores_records_and_releases_the_lock() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    pipeline.sim.set_rollout_delay(Duration::from_secs(30));
    let running = pipeline.spawn(&["promote", "staging", "prod", "--yes"]);
    let api = pipeline.api("acme-prod");
    let some_workload = |list: &Value| list["items"].as_array().is_some_and(|i| !i.is_empty());
    until(&api, "/org/acme-prod/gvc/app/workload", some_workload).await;
    terminate(&running);
    let output = running.wait_with_output().expect("promote ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Interrupted: letting the writes in flight finish"), "{stderr}");
    assert!(
        stderr.contains("promotion into prod failed while stopping at a signal; prod is as it was"),
        "{stderr}"
    );
    assert_eq!(
        api.get("/org/acme-prod/secret/ferry-lock-prod").await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    // prod was empty before: what the promotion created is gone again.
    let (status, list) = api.get("/org/acme-prod/gvc/app/workload").await;
    assert!(
        status == reqwest::StatusCode::NOT_FOUND || !some_workload(&list),
        "{status}: {list:#}"
    );
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][0]["outcome"], "failed");
    assert_eq!(releases["releases"][0]["rolled_back"], true);
    let message = releases["releases"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("interrupted by a signal; restored"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_release_names_the_step_what_it_left_changed_and_what_to_run_next() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // One location never takes a new version: readiness times out (8 s),
    // and --no-rollback leaves what was written.
    pipeline.sim.set_location_delay("aws-us-east-2", Duration::from_secs(3600));
    let failed = pipeline.ferry(&[
        "promote",
        "staging",
        "prod",
        "--yes",
        "--no-rollback",
        "--output",
        "json",
    ]);
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    // Matched whatever miette's wrapping, which depends on the name of the
    // workload that timed out first.
    let stderr = &crate::support::command::flat(&failed.stderr);
    for shown in [
        "promotion into prod failed while waiting for workload/",
        "prod is left changed",
        "not restored: all ",
        "(--no-rollback)",
        "release 1 is recorded as failed",
        "ferry status prod",
        "ferry rollback prod",
    ] {
        assert!(stderr.contains(shown), "{shown:?} in {stderr}");
    }
    let report: Value = serde_json::from_str(&failed.stdout).expect("JSON on stdout");
    assert_eq!(report["outcome"], "failed", "{report:#}");
    let failure = &report["failure"];
    assert!(failure["step"].as_str().is_some_and(|s| s.starts_with("waiting for workload/")));
    let written = failure["written"].as_array().cloned().unwrap_or_default();
    assert!(!written.is_empty(), "{failure:#}");
    assert_eq!(failure["not_restored"], failure["written"], "{failure:#}");
    assert_eq!(failure["release"], 1);
    let next: Vec<&str> =
        failure["next"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(next.iter().any(|n| n.starts_with("ferry rollback prod")), "{next:?}");
    // What it says was left changed is there.
    let api = pipeline.api("acme-prod");
    for id in written.iter().filter_map(Value::as_str) {
        if let Some(name) = id.strip_prefix("workload/") {
            let path = format!("/org/acme-prod/gvc/app/workload/{name}");
            assert_eq!(api.get(&path).await.0, reqwest::StatusCode::OK, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_pull_secret_prod_pulls_from_stagings_registry() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let staging_registry = pipeline.sim.registry_host("acme-staging").expect("registry");
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    let with_strategy = |credentials_host: &str| {
        let docker = format!(
            r#"{{"auths":{{"{credentials_host}":{{"username":"<token>","password":"{}"}}}}}}"#,
            token("acme-staging")
        );
        plan.replace(
            "      - file: overrides/prod.yaml\n",
            &format!(
                "      - file: overrides/prod.yaml\n      - kind: secret\n        name: registry-pull\n        patch: {{data: '{docker}'}}\n    images: {{strategy: pull-secret, pullSecret: registry-pull}}\n"
            ),
        )
    };
    std::fs::write(&plan_file, with_strategy("ghcr.io")).expect("plan file");
    let refused = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("has no credentials for {staging_registry}")),
        "{}",
        refused.stderr
    );

    std::fs::write(&plan_file, with_strategy(&staging_registry)).expect("plan file");
    let run = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("Copying"), "nothing is copied: {}", run.stderr);
    let prod = images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    for (name, image) in prod {
        assert!(
            image.starts_with(&format!("{staging_registry}/")) && image.contains("@sha256:"),
            "{name}: {image}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_promotes_a_gvc_placed_on_three_clouds_ready_in_every_location() {
    const LOCATIONS: [&str; 3] = ["aws-eu-central-1", "azure-eastus2", "gcp-us-west1"];
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = "manifests:\n  path: app\ntopology: org-per-env\nenvironments:\n  - {name: dev, org: acme-dev, gvc: app, tokenEnv: TOKEN_DEV}\n  - {name: prod, org: acme-prod, gvc: app, tokenEnv: TOKEN_PROD}\n";
    let gvc = "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks:\n      - //location/gcp-us-west1\n      - //location/azure-eastus2\n      - //location/aws-eu-central-1\n";
    let workload = "kind: workload\nname: hello\nspec:\n  type: standard\n  containers:\n    - name: main\n      image: //image/hello:1.0\n      ports: [{number: 8080, protocol: http}]\n";
    let repo = TestRepo::init(dir.path());
    repo.write(&[("promotion.yaml", plan), ("app/gvc.yaml", gvc), ("app/hello.yaml", workload)]);
    repo.commit_all("a small app on three clouds");

    let run = ferry_with(dir.path(), &["promote", "dev", "prod", "--sim", "--yes"], &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let ready = format!("workload/hello ready: 3/3 locations ready ({})", LOCATIONS.join(", "));
    assert!(run.stderr.contains(&ready), "{}", run.stderr);

    // The live state the promotion left in prod, read back from the
    // embedded simulator's state directory.
    let token = ferry::sim::embedded::token_for("acme-prod");
    let config = SimConfig::new()
        .with_org("acme-prod", token.as_str())
        .with_state_dir(dir.path().join(".ferry/sim"));
    let sim = Sim::start(config).await;
    let api = Api::new(&sim, Some(&token));
    let (_, workload) = api.get("/org/acme-prod/gvc/app/workload/hello").await;
    let (_, deployments) = api.get("/org/acme-prod/gvc/app/workload/hello/deployment").await;
    let items = deployments["items"].as_array().expect("deployments");
    let names: Vec<&str> = items.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, LOCATIONS);
    for deployment in items {
        assert_eq!(deployment["status"]["ready"], true, "{deployment:#}");
        assert_eq!(deployment["status"]["lastProcessedVersion"], workload["version"]);
    }
    for location in LOCATIONS {
        let (status, _) = api.get(&format!("/org/acme-prod/location/{location}")).await;
        assert!(status.is_success(), "{location}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_deletes_only_what_it_was_made_to_delete() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let repo = pipeline.repo();
    repo.remove("manifests-example/worker.yaml");
    repo.commit_all("retire the worker");
    let worker = "/org/acme-staging/gvc/app/workload/worker";

    // Saved without --prune, the plan lists the delete but carries none out:
    // applying it with --prune is refused rather than deleting nothing.
    let keep = pipeline.ferry(&["plan", "staging", "--out", "keep.json"]);
    assert_eq!(keep.code, Some(2), "{}", keep.stderr);
    let refused = pipeline.ferry(&["apply", "keep.json", "--prune"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("was made without it"), "{}", refused.stderr);

    // Saved with --prune, its steps hold the delete, and applying does it.
    let prune = pipeline.ferry(&["plan", "staging", "--prune", "--out", "prune.json"]);
    assert_eq!(prune.code, Some(2), "{}", prune.stderr);
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(pipeline.path().join("prune.json")).expect("saved plan"),
    )
    .expect("plan JSON");
    let deletes: Vec<&Value> = saved["steps"]["writes"]
        .as_array()
        .expect("writes")
        .iter()
        .filter(|w| w["method"] == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["id"], "workload/worker");
    let api = pipeline.api("acme-staging");
    assert_eq!(api.get(worker).await.0, reqwest::StatusCode::OK);
    let applied = pipeline.ferry(&["apply", "prune.json"]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get(worker).await.0 != reqwest::StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline, "the worker was never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
