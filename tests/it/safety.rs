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

    for args in [&["validate", "staging"][..], &["plan", "staging"]] {
        let run = pipeline.ferry(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("ferry::validate::no-resources"), "{}", run.stderr);
    }
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
