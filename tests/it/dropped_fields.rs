//! A field the API accepts and drops is a warning, not a refusal (issue
//! 19): `rolloutOptions.maxUnavailableReplicas` on a stateful workload
//! validates with a warning naming it, the real `cpln apply` of a body
//! with it succeeds, `ferry promote` goes ahead, and the simulator stores
//! the workload without it, as the API does (reference §3.3). Every
//! corpus case that only warns is accepted by the simulator too.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::promote::{Pipeline, once_more_changes_nothing};
use crate::support::command::repo_root;
use crate::support::cpln::{Cpln, describe};
use crate::support::sim::{self, Api, DEV_TOKEN};

/// The workload's `rolloutOptions` as stored in `org`.
async fn live_rollout(pipeline: &Pipeline, org: &str) -> Value {
    let (status, live) = pipeline.api(org).get(&format!("/org/{org}/gvc/app/workload/queue")).await;
    assert_eq!(status, StatusCode::OK, "{live}");
    live["spec"]["rolloutOptions"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stateful_workload_with_max_unavailable_replicas_promotes_without_it() {
    let pipeline = Pipeline::org_per_env().await;
    let repo = pipeline.repo();
    let queue = std::fs::read_to_string(pipeline.path().join("manifests-example/queue.yaml"))
        .expect("the example's stateful workload");
    let rollout =
        "  rolloutOptions:\n    maxUnavailableReplicas: \"1\"\n    maxSurgeReplicas: \"1\"\n";
    let with_field = queue.replace("  firewallConfig:", &format!("{rollout}  firewallConfig:"));
    assert_ne!(with_field, queue, "the example changed shape");
    repo.write(&[("manifests-example/queue.yaml", &with_field)]);
    repo.commit_all("queue: maxUnavailableReplicas, as Control Plane's examples write it");

    let validate = pipeline.ferry(&["validate"]);
    assert_eq!(validate.code, Some(0), "{}", validate.stderr);
    assert!(validate.stdout.contains("warning"), "{}", validate.stdout);
    assert!(validate.stderr.contains("ferry::validate::questionable-field"), "{}", validate.stderr);
    assert!(
        validate.stderr.contains("spec.rolloutOptions.maxUnavailableReplicas"),
        "{}",
        validate.stderr
    );
    let rendered = pipeline.ferry(&["render", "dev"]);
    assert!(rendered.stdout.contains("maxUnavailableReplicas"), "{}", rendered.stdout);

    // dev: the real `cpln apply` of the rendered manifests, field and all;
    // then `ferry promote dev staging`, which shows the warning and goes on.
    pipeline.deploy_with_cpln("dev", "acme-dev", "app").await;
    let promote = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(promote.code, Some(0), "{}\n{}", promote.stdout, promote.stderr);
    assert!(promote.stderr.contains("maxUnavailableReplicas"), "{}", promote.stderr);
    for org in ["acme-dev", "acme-staging"] {
        let stored = live_rollout(&pipeline, org).await;
        assert!(stored.get("maxUnavailableReplicas").is_none(), "{org}: {stored}");
        assert_eq!(stored["maxSurgeReplicas"], "1", "{org}: {stored}");
    }
    // The field the API dropped is no change: `plan` warns and finds none.
    let plan = pipeline.ferry(&["plan", "staging"]);
    assert_eq!(plan.code, Some(0), "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.contains("maxUnavailableReplicas"), "{}", plan.stderr);
    once_more_changes_nothing(&pipeline, &["promote", "dev", "staging", "--yes"], "acme-staging");
}

#[tokio::test]
async fn the_simulator_stores_a_stateful_workload_without_max_unavailable_replicas() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let gvc = json!({"kind": "gvc", "name": "app",
        "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-west-2"]}}});
    assert!(api.put("/org/acme-dev/gvc", gvc).await.0.is_success());
    let workload = json!({"kind": "workload", "name": "db", "spec": {"type": "stateful",
        "containers": [{"name": "main", "image": "postgres:16.4", "ports": [{"number": 5432, "protocol": "tcp"}]}],
        "rolloutOptions": {"maxUnavailableReplicas": "1", "scalingPolicy": "Parallel"}}});
    let (status, body) = api.put("/org/acme-dev/gvc/app/workload", workload).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, live) = api.get("/org/acme-dev/gvc/app/workload/db").await;
    let rollout = &live["spec"]["rolloutOptions"];
    assert!(rollout.get("maxUnavailableReplicas").is_none(), "{live}");
    assert_eq!(rollout["scalingPolicy"], "Parallel", "{live}");
}

/// What the corpus only warns about, the simulator accepts: each case
/// with a `warns` file, applied by the real `cpln apply` into a GVC of
/// its own, is written whole (an inferred rule never makes it answer 400).
#[tokio::test(flavor = "multi_thread")]
async fn every_warning_case_of_the_corpus_is_applied_by_cpln() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let cpln = Cpln::new(&sim, "acme-dev", DEV_TOKEN);
    let cases: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/corpus"))
        .expect("the corpus exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("warns").is_file())
        .collect();
    assert!(cases.len() >= 10, "{} warning cases", cases.len());
    for (index, case) in cases.iter().enumerate() {
        let gvc = format!("case-{index}");
        let body = json!({"kind": "gvc", "name": gvc,
            "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-west-2"]}}});
        assert!(api.put("/org/acme-dev/gvc", body).await.0.is_success());
        let manifests = case.join("manifests");
        let output = cpln
            .run(
                &["apply", "-f", manifests.to_str().expect("a UTF-8 path"), "--gvc", &gvc],
                Duration::from_secs(60),
            )
            .await;
        assert!(output.status.success(), "{}: {}", case.display(), describe(&output));
    }
    let stateful = cases
        .iter()
        .position(|c| c.ends_with("schema-stateful-max-unavailable"))
        .expect("the stateful case");
    let (status, live) = api.get(&format!("/org/acme-dev/gvc/case-{stateful}/workload/api")).await;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert_eq!(live["spec"]["type"], "stateful", "{live}");
    assert!(live["spec"]["rolloutOptions"].get("maxUnavailableReplicas").is_none(), "{live}");
}
