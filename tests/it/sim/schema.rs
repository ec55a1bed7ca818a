//! The simulator shares Ferry's field rules (`validate::schema`): a body
//! the real API would refuse gets a 400 in the API's error shape and
//! nothing is stored, and the valid corpus (tests/valid/) is accepted,
//! applied by the real `cpln` CLI.

use std::time::Duration;

use ferry::sim::SimConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::cpln::Cpln;
use crate::support::sim::{self, Api, DEV_TOKEN, Sim, assert_error_body};

/// The fields a 400's `details.errors` names.
fn fields(body: &Value) -> Vec<&str> {
    body["details"]["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_malformed_body_is_a_400_and_nothing_is_stored() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let gvc = json!({"kind": "gvc", "name": "app",
        "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-west-2"]}}});
    assert!(api.put("/org/acme-dev/gvc", gvc).await.0.is_success());

    let workload = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
        "containers": "main",
        "defaultOptions": {"autoscaling": {"minScale": 5, "maxScale": 2}}}});
    let collection = "/org/acme-dev/gvc/app/workload";
    for (method, path) in [
        (Method::PUT, collection),
        (Method::POST, collection),
        (Method::PUT, "/org/acme-dev/gvc/app/workload/api"),
    ] {
        let (status, body, _) = api.send(method.clone(), path, Some(workload.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_error_body(&body, 400);
        assert_eq!(body["code"], "invalid");
        assert_eq!(
            fields(&body),
            ["spec.containers", "spec.defaultOptions.autoscaling.minScale"],
            "{body}"
        );
    }
    assert_eq!(api.get("/org/acme-dev/gvc/app/workload/api").await.0, StatusCode::NOT_FOUND);

    // Secret data of the wrong shape: refused, and the payload is not echoed.
    let secret = json!({"kind": "secret", "name": "db", "type": "dictionary",
        "data": {"password": {"value": "hunter2-never-echoed"}}});
    let (status, body) = api.put("/org/acme-dev/secret", secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fields(&body), ["data.password"]);
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert_eq!(api.get("/org/acme-dev/secret/db").await.0, StatusCode::NOT_FOUND);

    // A PATCH is judged on the item it would leave: an existing valid
    // policy cannot be patched to target a kind that does not exist.
    let policy = json!({"kind": "policy", "name": "ops", "targetKind": "secret", "target": "all"});
    assert!(api.put("/org/acme-dev/policy", policy).await.0.is_success());
    let (status, body) =
        api.patch("/org/acme-dev/policy/ops", json!({"targetKind": "spaceship"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fields(&body), ["targetKind"]);
    let (_, live) = api.get("/org/acme-dev/policy/ops").await;
    assert_eq!((live["targetKind"].as_str(), live["version"].as_u64()), (Some("secret"), Some(1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_valid_corpus_is_accepted_by_cpln_apply() {
    // The corpus is written for org `acme-staging` (its full-form links
    // name it), so the simulator serves that org.
    let config = SimConfig::new()
        .with_org("acme-staging", "staging-token")
        .with_rollout_delay(Duration::from_millis(200));
    let sim = Sim::start(config).await;
    let cpln = Cpln::new(&sim, "acme-staging", "staging-token");
    let api = Api::new(&sim, Some("staging-token"));
    for (folder, stdout) in crate::support::cpln::apply_valid_corpus(&cpln).await {
        let written = stdout
            .lines()
            .filter(|l| l.starts_with("Created ") || l.starts_with("Updated "))
            .count();
        let run = crate::support::command::ferry(
            &folder,
            &["validate", "staging", "-f", "promotion.yaml", "--worktree"],
        );
        let resources: usize = run
            .stdout
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a resource count in {}", run.stdout));
        assert_eq!(written, resources, "{}:\n{stdout}", folder.display());
    }
    let (_, secrets) = api.get("/org/acme-staging/secret").await;
    assert_eq!(secrets["items"].as_array().map(Vec::len), Some(13), "{secrets}");
    let (_, gvc) = api.get("/org/acme-staging/gvc/app").await;
    assert_eq!(
        gvc["spec"]["staticPlacement"]["locationLinks"].as_array().map(Vec::len),
        Some(3),
        "{gvc}"
    );
}
