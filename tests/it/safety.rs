//! Bad input never reaches an environment: an empty manifest folder, a
//! `--prune` that deletes more than the plan file allows, and overrides
//! that would drop what they do not name or bring a mutable tag into an
//! immutable environment are refused before anything is written. Each test
//! asserts the live state and the request log, not only the exit code.

use crate::promote::{Pipeline, writes};

const STAGING: &str = "acme-staging";

/// The names of `kind` resources in staging (GVC `app` for workloads).
async fn live_names(pipeline: &Pipeline, kind: &str) -> Vec<String> {
    let path = match kind {
        "workload" => format!("/org/{STAGING}/gvc/app/workload"),
        _ => format!("/org/{STAGING}/{kind}"),
    };
    let (_, list) = pipeline.api(STAGING).get(&path).await;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Each of `commands` exits 1 and its diagnostics say each of `says`.
fn refused(pipeline: &Pipeline, commands: &[&[&str]], says: &[&str]) {
    for args in commands {
        let run = pipeline.ferry(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        for needle in says {
            assert!(run.stderr.contains(needle), "{args:?}: no {needle} in\n{}", run.stderr);
        }
    }
}

/// Removes manifests from the example and commits.
fn commit_without(pipeline: &Pipeline, files: &[&str]) {
    let repo = pipeline.repo();
    for file in files {
        repo.remove(&format!("manifests-example/{file}"));
    }
    repo.commit_all("remove manifests");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_manifest_folder_is_an_error_and_prune_deletes_nothing() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let workloads = live_names(&pipeline, "workload").await;
    assert_eq!(workloads.len(), 5, "{workloads:?}");
    let repo = pipeline.repo();
    for entry in std::fs::read_dir(pipeline.path().join("manifests-example")).expect("folder") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    repo.write(&[("manifests-example/README.md", "The manifests moved to deploy/.\n")]);
    repo.commit_all("move the manifests away");
    pipeline.sim.clear_request_log();

    refused(
        &pipeline,
        &[&["validate", "staging"], &["plan", "staging"]],
        &["ferry::validate::no-resources"],
    );
    let promote = pipeline.ferry(&["promote", "dev", "staging", "--prune", "--yes"]);
    assert_eq!(promote.code, Some(1), "{}\n{}", promote.stdout, promote.stderr);
    assert!(promote.stderr.contains("no resources in `manifests-example`"), "{}", promote.stderr);
    assert!(promote.stderr.contains("promotion.yaml:2:"), "{}", promote.stderr);
    assert!(writes(&pipeline.sim, STAGING).is_empty(), "{:?}", writes(&pipeline.sim, STAGING));
    assert_eq!(live_names(&pipeline, "workload").await, workloads);
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_no_more_than_the_plan_file_allows() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    // 13 managed resources: by default at most 3 deletes.
    commit_without(&pipeline, &["worker.yaml", "queue.yaml", "volumeset.yaml", "db-migrate.yaml"]);
    // The plan says it beforehand, as a warning (it carries out nothing).
    let plan = pipeline.ferry(&["plan", "staging"]);
    assert_eq!(plan.code, Some(2), "{}", plan.stderr);
    assert!(plan.stderr.contains("! --prune would delete 4 resources"), "{}", plan.stderr);
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["promote", "dev", "staging", "--prune", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("ferry::promote::too-many-deletes"), "{}", refused.stderr);
    assert!(refused.stderr.contains("more than the 3 its plan file allows"), "{}", refused.stderr);
    // Every delete was listed in the plan before the refusal.
    for id in ["workload/worker", "workload/queue", "workload/db-migrate", "volumeset/queue-data"] {
        assert!(refused.stdout.contains(id), "{id} not listed:\n{}", refused.stdout);
    }
    assert!(writes(&pipeline.sim, STAGING).is_empty(), "{:?}", writes(&pipeline.sim, STAGING));
    assert_eq!(
        live_names(&pipeline, "workload").await,
        ["api", "db-migrate", "queue", "web", "worker"]
    );
    assert_eq!(live_names(&pipeline, "volumeset").await, ["queue-data"]);

    // Within the limit: carried out.
    let repo = pipeline.repo();
    repo.write(&[
        ("manifests-example/queue.yaml", &example("queue.yaml")),
        ("manifests-example/volumeset.yaml", &example("volumeset.yaml")),
        ("manifests-example/db-migrate.yaml", &example("db-migrate.yaml")),
    ]);
    repo.commit_all("only the worker goes");
    let pruned = pipeline.ferry(&["promote", "dev", "staging", "--prune", "--yes"]);
    assert_eq!(pruned.code, Some(0), "{}\n{}", pruned.stdout, pruned.stderr);
    assert_eq!(live_names(&pipeline, "workload").await, ["api", "db-migrate", "queue", "web"]);
    let secrets = live_names(&pipeline, "secret").await;
    for secret in ["api-db", "app-config", "registry-pull"] {
        assert!(secrets.iter().any(|s| s == secret), "{secret} was deleted: {secrets:?}");
    }
}

fn example(file: &str) -> String {
    std::fs::read_to_string(
        crate::support::command::repo_root().join("manifests-example").join(file),
    )
    .expect("example manifest")
}

/// The names of a live workload's first container's env vars.
async fn env_names(pipeline: &Pipeline, org: &str, workload: &str) -> Vec<String> {
    let (_, body) = pipeline.api(org).get(&format!("/org/{org}/gvc/app/workload/{workload}")).await;
    body["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_that_would_drop_an_env_var_is_refused_and_nothing_is_written() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    assert_eq!(env_names(&pipeline, STAGING, "api").await, ["DATABASE_URL", "LOG_LEVEL"]);
    // Override files are read from disk, next to the plan file. The second
    // item has no name: merged as a replacement, it would drop DATABASE_URL.
    let overrides = "kind: workload\nname: api\nspec:\n  containers:\n    - name: main\n      env:\n        - name: LOG_LEVEL\n          value: debug\n        - value: verbose\n";
    std::fs::write(pipeline.path().join("overrides/staging.yaml"), overrides).expect("override");
    pipeline.sim.clear_request_log();
    let commands = [&["validate", "staging"][..], &["plan", "staging"], &["render", "staging"]];
    let says =
        ["ferry::validate::override-drops-fields", "overrides/staging.yaml:9:", "`DATABASE_URL`"];
    refused(&pipeline, &commands, &says);
    let promote = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(promote.code, Some(1), "{}\n{}", promote.stdout, promote.stderr);
    assert!(promote.stderr.contains("override-drops-fields"), "{}", promote.stderr);
    assert!(writes(&pipeline.sim, STAGING).is_empty(), "{:?}", writes(&pipeline.sim, STAGING));
    assert_eq!(env_names(&pipeline, STAGING, "api").await, ["DATABASE_URL", "LOG_LEVEL"]);

    // Named, the same change goes through and keeps DATABASE_URL.
    let named = overrides.replace("        - value: verbose\n", "");
    std::fs::write(pipeline.path().join("overrides/staging.yaml"), named).expect("override");
    let promote = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(promote.code, Some(0), "{}\n{}", promote.stdout, promote.stderr);
    assert_eq!(env_names(&pipeline, STAGING, "api").await, ["DATABASE_URL", "LOG_LEVEL"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_through_an_override_into_an_immutable_environment_is_refused() {
    const PROD: &str = "acme-prod";
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let first = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let (_, before) = pipeline.api(PROD).get(&format!("/org/{PROD}/gvc/app/workload/api")).await;
    // prod (the last environment) requires immutable tags; the manifests
    // have none, the override brings one in.
    let path = pipeline.path().join("overrides/prod.yaml");
    let mut overrides = std::fs::read_to_string(&path).expect("prod overrides");
    overrides.push_str("---\nkind: workload\nname: web\nspec:\n  containers:\n    - name: cache\n      image: redis:latest\n");
    std::fs::write(&path, overrides).expect("override");
    pipeline.sim.clear_request_log();
    let says =
        ["ferry::validate::mutable-tag", "with the override of `prod`", "overrides/prod.yaml:"];
    refused(&pipeline, &[&["validate", "prod"], &["plan", "prod"]], &says);
    let promote = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(promote.code, Some(1), "{}\n{}", promote.stdout, promote.stderr);
    assert!(promote.stderr.contains("redis:latest"), "{}", promote.stderr);
    assert!(writes(&pipeline.sim, PROD).is_empty(), "{:?}", writes(&pipeline.sim, PROD));
    let (_, web) = pipeline.api(PROD).get(&format!("/org/{PROD}/gvc/app/workload/web")).await;
    assert_eq!(web["spec"]["containers"].as_array().map(Vec::len), Some(1), "{web}");
    let (_, after) = pipeline.api(PROD).get(&format!("/org/{PROD}/gvc/app/workload/api")).await;
    assert_eq!(after["version"], before["version"]);
}
