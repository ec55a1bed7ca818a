//! Fields the real API adds that Ferry's model of it lacks: the simulator
//! fills unknown fields on every stored workload (at the top of `spec`
//! and inside every container), GVC and secret. A promotion then plans
//! and writes nothing more on the next run, since neither git nor Ferry's
//! last write set those fields; a field git removes is still planned as
//! exactly that removal and removed, and the server's fields stay
//! (docs/last-applied.md).

use ferry::sim::SimConfig;
use serde_json::{Value, json};

use crate::promote::{Pipeline, once_more_changes_nothing, token, writes};

const STAGING: &str = "acme-staging";
const WORKER: &str = "/org/acme-staging/gvc/app/workload/worker";
const RECORD: &str = "/org/acme-staging/secret/ferry-applied-staging";

/// dev, staging and prod on a simulator whose API fills fields Ferry
/// does not know.
async fn pipeline_with_server_fields() -> Pipeline {
    let mut config = SimConfig::new();
    for org in ["acme-dev", STAGING, "acme-prod"] {
        config = config.with_org(org, token(org));
    }
    let config = config
        .with_server_field("workload", "spec.someNewServerField", json!("value"))
        .with_server_field(
            "workload",
            "spec.containers[].someNewContainerField",
            json!({"on": true}),
        )
        .with_server_field("gvc", "spec.someNewGvcField", json!(3))
        .with_server_field("secret", "someNewSecretField", json!("filled"));
    Pipeline::org_per_env_with(config, Vec::new()).await
}

/// The worker workload of staging, as stored.
async fn staging_worker(pipeline: &Pipeline) -> Value {
    let (status, worker) = pipeline.api(STAGING).get(WORKER).await;
    assert!(status.is_success(), "{status}: {worker}");
    worker
}

fn env_names(workload: &Value) -> Vec<&str> {
    workload["spec"]["containers"][0]["env"]
        .as_array()
        .map(|env| env.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_only_the_server_sets_are_never_changes_but_a_removal_from_git_still_is() {
    let pipeline = pipeline_with_server_fields().await;
    // dev deployed by `cpln apply`, then promoted into staging (created).
    pipeline.stage().await;
    let worker = staging_worker(&pipeline).await;
    assert_eq!(worker["spec"]["someNewServerField"], "value", "filled: {worker}");
    assert_eq!(worker["spec"]["containers"][0]["someNewContainerField"], json!({"on": true}));

    let plan = pipeline.ferry(&["plan", "staging", "--from", "dev"]);
    assert_eq!(plan.code, Some(0), "{}\n{}", plan.stdout, plan.stderr);
    once_more_changes_nothing(&pipeline, &["promote", "dev", "staging", "--yes"], STAGING);
    // What Ferry wrote is recorded by field name, no secret value in it.
    let (status, record) = pipeline.api(STAGING).get(&format!("{RECORD}/-reveal")).await;
    assert!(status.is_success(), "{status}: {record}");
    let payload = record["data"]["payload"].as_str().unwrap_or_default();
    assert!(payload.contains(r#""FEATURE_FLAGS":{"name":1,"value":1}"#), "{payload}");
    // A secret's payload is one field: not its keys, nor its values.
    assert!(payload.contains(r#""secret/app-config":{"data":1,"#), "{payload}");
    for value in ["CHANGE_ME", "checkout-v2", "wishlist", "someNew"] {
        assert!(!payload.contains(value), "{value} in {payload}");
    }

    // An env var leaves git: exactly that removal is planned.
    let repo = pipeline.repo();
    let path = pipeline.path().join("manifests-example/worker.yaml");
    let text = std::fs::read_to_string(&path).expect("worker.yaml");
    let removed = text.replace(
        "        - name: FEATURE_FLAGS\n          value: cpln://secret/app-config.FEATURE_FLAGS\n",
        "",
    );
    assert_ne!(removed, text);
    repo.write(&[("manifests-example/worker.yaml", &removed)]);
    repo.commit_all("worker: no FEATURE_FLAGS");
    let planned = pipeline.ferry(&["plan", "staging", "--from", "dev", "--out", "plan.json"]);
    assert_eq!(planned.code, Some(2), "{}\n{}", planned.stdout, planned.stderr);
    let saved = std::fs::read_to_string(pipeline.path().join("plan.json")).expect("saved plan");
    let plan: Value = serde_json::from_str(&saved).expect("plan JSON");
    let changed: Vec<(&str, &str)> = plan["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .map(|r| (r["id"].as_str().unwrap_or(""), r["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(changed, [("workload/worker", "update")], "{saved}");
    let worker_plan = plan["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "workload/worker"))
        .expect("worker planned");
    assert_eq!(
        worker_plan["changes"],
        json!([{"path": "spec.containers[main].env[FEATURE_FLAGS]", "op": "remove",
                "before": {"name": "FEATURE_FLAGS", "value": "cpln://secret/app-config.FEATURE_FLAGS"}}]),
    );
    let diff = worker_plan["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("FEATURE_FLAGS"), "{diff}");
    assert!(!diff.contains("someNew"), "the server's fields are no part of the diff: {diff}");
    // Written as a PUT, then a PATCH that drops that env var and nothing else.
    let write = &plan["steps"]["writes"][0];
    assert_eq!(write["method"], "put-removing", "{write:#}");
    assert_eq!(
        write["removals"],
        json!({"spec": {"$patch/containers": [{"name": "main", "$drop/env": ["FEATURE_FLAGS"]}]}})
    );

    // The saved plan, carried out, removes it and leaves the server's
    // fields; then nothing is left to do.
    pipeline.sim.clear_request_log();
    let applied = pipeline.ferry(&["apply", "plan.json", "--yes"]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let worker = staging_worker(&pipeline).await;
    assert_eq!(env_names(&worker), ["QUEUE_URL"], "{worker}");
    assert_eq!(worker["spec"]["someNewServerField"], "value");
    assert_eq!(worker["spec"]["containers"][0]["someNewContainerField"], json!({"on": true}));
    // Beside the lock and the release record (created in progress): the
    // worker alone (its PUT, then the PATCH of its removal), then the
    // record of what was written and the release's, with its outcome.
    let written: Vec<(String, String)> = writes(&pipeline.sim, STAGING)
        .into_iter()
        .filter(|r| !r.path.contains("/secret/ferry-lock") && r.method != "POST")
        .map(|r| (r.method, r.path))
        .collect();
    let expected = [
        ("PUT", "/org/acme-staging/gvc/app/workload"),
        ("PATCH", WORKER),
        ("PUT", "/org/acme-staging/secret"),
        ("PUT", "/org/acme-staging/secret"),
    ]
    .map(|(m, p)| (m.to_owned(), p.to_owned()));
    assert_eq!(written, expected);
    let plan = pipeline.ferry(&["plan", "staging", "--from", "dev"]);
    assert_eq!(plan.code, Some(0), "{}\n{}", plan.stdout, plan.stderr);
    once_more_changes_nothing(&pipeline, &["promote", "dev", "staging", "--yes"], STAGING);

    // The whole `env` leaves git: a promotion removes the key, and only it.
    let text = std::fs::read_to_string(&path).expect("worker.yaml");
    let removed = text.replace(
        "      env:\n        - name: QUEUE_URL\n          value: amqp://queue.app.cpln.local:5672\n",
        "",
    );
    assert_ne!(removed, text);
    repo.write(&[("manifests-example/worker.yaml", &removed)]);
    repo.commit_all("worker: no env");
    let promoted = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(promoted.code, Some(0), "{}\n{}", promoted.stdout, promoted.stderr);
    assert!(promoted.stdout.contains("- spec.containers[main].env"), "{}", promoted.stdout);
    let worker = staging_worker(&pipeline).await;
    assert_eq!(worker["spec"]["containers"][0].get("env"), None, "{worker}");
    assert_eq!(worker["spec"]["someNewServerField"], "value");
    assert_eq!(worker["spec"]["containers"][0]["someNewContainerField"], json!({"on": true}));
    once_more_changes_nothing(&pipeline, &["promote", "dev", "staging", "--yes"], STAGING);
}
