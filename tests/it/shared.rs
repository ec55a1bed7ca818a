//! gvc-per-env: an org-level resource is one object for every
//! environment. A release into any environment but the last that would
//! change one is refused, writing nothing, unless `--change-shared`
//! accepts it for all (and the release records it); plans name the
//! environments a resource serves.

use serde_json::Value;

use crate::promote::{IMAGES, Pipeline, writes};

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_that_changes_a_shared_secret_is_refused_unless_accepted_for_every_environment() {
    let pipeline = Pipeline::gvc_per_env().await;
    pipeline.push_images("acme", &IMAGES).await;
    let deployed = pipeline.ferry(&["deploy", "staging", "--yes"]);
    assert_eq!(
        deployed.code,
        Some(0),
        "creating shared resources is no change to others: {}",
        deployed.stderr
    );
    let promoted = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(promoted.code, Some(0), "{}", promoted.stderr);

    let secrets = pipeline.path().join("manifests-example/secrets.yaml");
    let text = std::fs::read_to_string(&secrets).expect("secrets.yaml");
    let repo = pipeline.repo();
    repo.write(&[(
        "manifests-example/secrets.yaml",
        &text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"),
    )]);
    repo.commit_all("debug logs");

    // The plan names who shares it, and warns.
    let plan = pipeline.ferry(&["plan", "staging"]);
    assert_eq!(plan.code, Some(2), "{}\n{}", plan.stdout, plan.stderr);
    let row = plan.stdout.lines().find(|l| l.contains("secret/app-config")).unwrap_or_default();
    assert!(row.contains("(shared by staging, prod)"), "{}", plan.stdout);
    let warned = plan.stderr.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
    assert!(
        warned.contains("would change secret/app-config, which prod shares"),
        "{}",
        plan.stderr
    );

    // The deploy is refused; nothing is written, not even the lock.
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["deploy", "staging", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    let said =
        refused.stderr.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
    assert!(
        said.contains(
            "this release into staging would change secret/app-config, which prod shares"
        ),
        "{}",
        refused.stderr
    );
    assert!(said.contains("--change-shared"), "{}", refused.stderr);
    let written: Vec<String> = writes(&pipeline.sim, "acme")
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(written.is_empty(), "{written:?}");

    // Accepted for every environment: it goes through and is recorded.
    let accepted = pipeline.ferry(&["deploy", "staging", "--yes", "--change-shared"]);
    assert_eq!(accepted.code, Some(0), "{}\n{}", accepted.stdout, accepted.stderr);
    let history = pipeline.ferry(&["history", "staging", "-o", "json"]);
    let history: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(history["releases"][0]["shared_changed"], serde_json::json!(["secret/app-config"]));
    // Prod, the last environment, now runs it too: nothing left to change.
    let prod = pipeline.ferry(&["plan", "prod", "--from", "staging", "-o", "json"]);
    let prod: Value = serde_json::from_str(&prod.stdout).expect("plan JSON");
    let row = prod["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == "secret/app-config")
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["action"], "unchanged", "{row:#}");
    assert_eq!(row["shared_with"], serde_json::json!(["staging", "prod"]));
}
