//! A release whose run is killed (SIGKILL: a CI job cancelled on timeout,
//! a runner gone) is finished by the next run into the environment: it
//! says so, waits for what the release wrote, and records it as
//! succeeded, or restores it and records the failure (exit 1). Expired
//! locks are cleared whatever the next run does.

use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::approval::new_api_in_staging;
use crate::promote::{Pipeline, promoted_to_prod, until};
use crate::support::command::flat;

const API: &str = "/org/acme-prod/gvc/app/workload/api";
const LOCK: &str = "/org/acme-prod/secret/ferry-lock-prod";
const RELEASE_2: &str = "/org/acme-prod/secret/ferry-release-prod-2";

/// `ferry promote staging prod` started with a lock that expires 3 s after
/// the process dies, killed (SIGKILL) once prod's api carries release 2,
/// that is, while the release waits for it to be ready.
async fn killed_while_waiting(pipeline: &Pipeline) {
    let args = ["promote", "staging", "prod", "--yes", "--lock-ttl", "3s"];
    let mut running: Child = pipeline.spawn(&args);
    let api = pipeline.api("acme-prod");
    until(&api, API, |body| body["tags"]["ferry/release"] == "2").await;
    running.kill().expect("SIGKILL");
    let output = running.wait_with_output().expect("killed");
    assert_eq!(output.status.code(), None, "killed by a signal, not finished");
    // Its record says it is in progress; its lock is still there.
    let (_, record) = api.get(RELEASE_2).await;
    assert_eq!(record["tags"]["ferry/outcome"], "in-progress", "{record:#}");
    assert_eq!(api.get(LOCK).await.0, reqwest::StatusCode::OK);
}

fn history(pipeline: &Pipeline) -> Value {
    let run = pipeline.ferry(&["history", "prod", "--output", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("history JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_killed_while_it_cannot_become_ready_is_restored_and_recorded_by_the_next_run() {
    let pipeline = promoted_to_prod().await;
    let api = pipeline.api("acme-prod");
    let (_, before) = api.get(API).await;
    // Prod's api gets more memory and a tag that makes it fail readiness.
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    let broken = plan.replace(
        "      - file: overrides/prod.yaml\n",
        "      - file: overrides/prod.yaml\n      - kind: workload\n        name: api\n        patch:\n          tags: {ferry-sim/readiness: fail}\n          spec: {containers: [{name: main, memory: 768Mi}]}\n",
    );
    std::fs::write(&plan_file, &broken).expect("plan file");
    killed_while_waiting(&pipeline).await;

    // While the killed run's lock lives, status says the release is in
    // progress; the next promote waits for the lock to expire.
    let status = pipeline.ferry(&["status", "prod", "--output", "json"]);
    let status: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(status["environments"][0]["unfinished"]["revision"], 2, "{status:#}");
    // A plan only reads, and says so.
    let plan = pipeline.ferry(&["plan", "prod", "--from", "staging"]);
    assert!(
        flat(&plan.stderr).contains(
            "prod has release 2 in progress: this plan is made against what it has written so far"
        ),
        "{}",
        plan.stderr
    );
    let (_, record) = pipeline.api("acme-prod").get(RELEASE_2).await;
    assert_eq!(record["tags"]["ferry/outcome"], "in-progress", "plan changed nothing");
    // (A short readiness timeout for the next run: it is the one that
    // waits now.)
    std::fs::write(&plan_file, broken.replace("timeout: 8s", "timeout: 1s")).expect("plan");
    let next = pipeline.ferry(&["promote", "staging", "prod", "--yes", "--lock-timeout", "60s"]);
    assert_eq!(next.code, Some(1), "{}\n{}", next.stdout, next.stderr);
    let said = flat(&next.stderr);
    assert!(said.contains("Release 2 of prod (promote, started"), "{}", next.stderr);
    assert!(said.contains("was left in progress: its run stopped"), "{}", next.stderr);
    assert!(
        said.contains("release 2 of prod, a promote left in progress when its run stopped, did not finish; prod is as it was: 1 resource written and restored"),
        "{}",
        next.stderr
    );
    assert!(said.contains("workload/api was not ready after 1s"), "{}", next.stderr);
    assert!(said.contains("release 2 is recorded as failed"), "{}", next.stderr);

    // api is as it was before release 2, which is recorded as failed.
    let (_, after) = api.get(API).await;
    assert_eq!(after["spec"]["containers"][0]["memory"], before["spec"]["containers"][0]["memory"]);
    assert_eq!(after["spec"]["containers"][0]["image"], before["spec"]["containers"][0]["image"]);
    assert!(after["tags"].get("ferry-sim/readiness").is_none(), "{:#}", after["tags"]);
    let releases = history(&pipeline);
    assert_eq!(releases["releases"][0]["revision"], 2, "{releases:#}");
    assert_eq!(releases["releases"][0]["outcome"], "failed");
    assert_eq!(releases["releases"][0]["rolled_back"], true);
    assert_eq!(releases["releases"][1]["outcome"], "succeeded");
    assert_eq!(api.get(LOCK).await.0, reqwest::StatusCode::NOT_FOUND, "the lock was released");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_killed_while_it_would_become_ready_is_recorded_as_succeeded_by_the_next_run() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    // api takes an hour to roll out while the promotion runs: killed while
    // it waits.
    pipeline.sim.set_workload_delay("api", Duration::from_secs(3600));
    killed_while_waiting(&pipeline).await;
    let (_, written) = pipeline.api("acme-prod").get(API).await;
    pipeline.sim.set_workload_delay("api", Duration::ZERO);

    let next = pipeline.ferry(&["promote", "staging", "prod", "--yes", "--lock-timeout", "60s"]);
    assert_eq!(next.code, Some(0), "{}\n{}", next.stdout, next.stderr);
    let said = flat(&next.stderr);
    assert!(
        said.contains("Release 2 of prod had every write landed and its workloads ready: recorded as succeeded"),
        "{}",
        next.stderr
    );
    assert!(next.stderr.contains("already runs this release; nothing to do"), "{}", next.stderr);
    let releases = history(&pipeline);
    assert_eq!(releases["releases"][0]["revision"], 2, "no release 3: {releases:#}");
    assert_eq!(releases["releases"][0]["outcome"], "succeeded");
    let (_, now) = pipeline.api("acme-prod").get(API).await;
    assert_eq!(now["spec"], written["spec"], "what it wrote stays");
    assert_eq!(
        pipeline.api("acme-prod").get(LOCK).await.0,
        reqwest::StatusCode::NOT_FOUND,
        "the lock was released"
    );
    let plan = pipeline.ferry(&["plan", "prod", "--from", "staging"]);
    assert_eq!(plan.code, Some(0), "converged: {}", plan.stdout);
}
