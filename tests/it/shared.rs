//! gvc-per-env: an org-level resource is one object for every
//! environment. A release into any environment but the last that would
//! change one is refused, writing nothing, unless `--change-shared`
//! accepts it for all (and the release records it); plans name the
//! environments a resource serves.

use serde_json::Value;

use crate::promote::{IMAGES, Pipeline, written};
use crate::support::command::flat;

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
    let warned = flat(&plan.stderr);
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
    let written = written(&pipeline.sim, "acme");
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

#[tokio::test(flavor = "multi_thread")]
async fn per_environment_copies_each_have_their_own_secrets_and_every_reference_follows() {
    let pipeline = Pipeline::gvc_per_env().await;
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    let repo = pipeline.repo();
    repo.write(&[("promotion.yaml", &format!("sharedResources: perEnvironment\n{plan}"))]);
    repo.commit_all("a copy of the org-level secrets and policies per environment");
    pipeline.push_images("acme", &IMAGES).await;
    let deployed = pipeline.ferry(&["deploy", "staging", "--yes"]);
    assert_eq!(deployed.code, Some(0), "{}\n{}", deployed.stdout, deployed.stderr);
    let promoted = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(promoted.code, Some(0), "{}\n{}", promoted.stdout, promoted.stderr);

    let api = pipeline.api("acme");
    for env in ["staging", "prod"] {
        for secret in ["app-config", "api-db", "registry-pull"] {
            let (status, body) = api.get(&format!("/org/acme/secret/{secret}-{env}")).await;
            assert_eq!(status, reqwest::StatusCode::OK, "{secret}-{env}: {body}");
            assert_eq!(body["tags"]["ferry/environment"], env, "its own, not shared: {body:#}");
        }
        // The workloads read their own environment's copy.
        let (_, workload) = api.get(&format!("/org/acme/gvc/app-{env}/workload/api")).await;
        let values: Vec<&str> = workload["spec"]["containers"][0]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["value"].as_str())
            .filter(|v| v.starts_with("cpln://secret/"))
            .collect();
        assert_eq!(
            values,
            [
                format!("cpln://secret/api-db-{env}.payload"),
                format!("cpln://secret/app-config-{env}.LOG_LEVEL")
            ],
            "{workload:#}"
        );
        // The policy's copy grants its environment's identity its own
        // environment's secrets; the GVC pulls with its own copy.
        let (_, policy) = api.get(&format!("/org/acme/policy/api-secrets-{env}")).await;
        assert_eq!(
            policy["targetLinks"],
            serde_json::json!([
                format!("/org/acme/secret/api-db-{env}"),
                format!("/org/acme/secret/app-config-{env}")
            ]),
            "{policy:#}"
        );
        let principals = policy["bindings"][0]["principalLinks"].clone();
        assert_eq!(
            principals,
            serde_json::json!([format!("/org/acme/gvc/app-{env}/identity/api-id")])
        );
        let (_, gvc) = api.get(&format!("/org/acme/gvc/app-{env}")).await;
        assert_eq!(
            gvc["spec"]["pullSecretLinks"],
            serde_json::json!([format!("/org/acme/secret/registry-pull-{env}")]),
            "{gvc:#}"
        );
    }
    let (status, _) = api.get("/org/acme/secret/app-config").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "no shared original");

    // A change of a copied secret is staging's alone: no refusal, and prod's
    // copy is not written.
    let secrets = pipeline.path().join("manifests-example/secrets.yaml");
    let text = std::fs::read_to_string(&secrets).expect("secrets.yaml");
    repo.write(&[(
        "manifests-example/secrets.yaml",
        &text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"),
    )]);
    repo.commit_all("debug logs");
    pipeline.sim.clear_request_log();
    let changed = pipeline.ferry(&["deploy", "staging", "--yes"]);
    assert_eq!(changed.code, Some(0), "{}\n{}", changed.stdout, changed.stderr);
    let written: Vec<String> = written(&pipeline.sim, "acme")
        .into_iter()
        .filter(|w| w.contains("app-config") || w.contains("app-prod"))
        .collect();
    assert!(
        written.iter().all(|w| !w.contains("prod")),
        "prod's copy and GVC untouched: {written:?}"
    );
    let (_, prod_config) = api.get("/org/acme/secret/app-config-prod/-reveal").await;
    assert_eq!(prod_config["data"]["LOG_LEVEL"], "info");
    let (_, staging_config) = api.get("/org/acme/secret/app-config-staging/-reveal").await;
    assert_eq!(staging_config["data"]["LOG_LEVEL"], "debug");
}
