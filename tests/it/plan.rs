//! `ferry plan` against the simulator: an environment applied with the
//! real cpln CLI plans as "no changes"; one changed field shows as exactly
//! that field; secrets are never printed; transient errors change nothing.

use std::path::Path;
use std::time::Duration;

use ferry::sim::{FaultConfig, SimConfig};
use serde_json::Value;

use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::cpln::Cpln;
use crate::support::git::{TestRepo, commit_example};
use crate::support::oci::{Image, Registry};
use crate::support::sim::Sim;

const PROD: &str = "acme-prod";
const PROD_TOKEN: &str = "prod-token-plan";
const STAGING: &str = "acme-staging";
const STAGING_TOKEN: &str = "staging-token-plan";

/// A git repository holding the example: manifests, overrides and the
/// example plan file as promotion.yaml.
fn example_repo(dir: &Path) -> TestRepo {
    let repo = TestRepo::init(dir);
    let plan = read(&repo_root().join("promotion.example.yaml"));
    commit_example(&repo, &[("promotion.yaml", &plan)]);
    repo
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("readable file")
}

async fn simulator() -> Sim {
    let config = SimConfig::new()
        .with_org(STAGING, STAGING_TOKEN)
        .with_org(PROD, PROD_TOKEN)
        .with_rollout_delay(Duration::from_millis(50));
    Sim::start(config).await
}

fn plan(dir: &Path, sim: &Sim, extra: &[&str]) -> Run {
    let mut args = vec!["plan", "prod"];
    args.extend(extra);
    let endpoint = sim.api_url();
    let vars = [
        ("CPLN_ENDPOINT", endpoint.as_str()),
        ("CPLN_TOKEN_PROD", PROD_TOKEN),
        ("CPLN_TOKEN_STAGING", STAGING_TOKEN),
    ];
    ferry_with(dir, &args, &vars)
}

fn plan_json(dir: &Path, sim: &Sim) -> (Option<i32>, Value) {
    let run = plan(dir, sim, &["--output", "json"]);
    let json = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, json)
}

/// The example in a git repository, rendered for prod and applied there
/// with the real cpln CLI.
async fn applied_example() -> (tempfile::TempDir, TestRepo, Sim) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = example_repo(dir.path());
    let sim = simulator().await;
    apply_rendered(dir.path(), &sim).await;
    (dir, repo, sim)
}

/// Replaces `from` with `to` in one file of the repository and commits.
fn commit_edit(repo: &TestRepo, dir: &Path, file: &str, (from, to): (&str, &str), message: &str) {
    let text = read(&dir.join(file));
    assert!(text.contains(from), "{file} holds {from}");
    repo.write(&[(file, &text.replace(from, to))]);
    repo.commit_all(message);
}

/// `ferry render prod`, applied with the real cpln CLI.
async fn apply_rendered(dir: &Path, sim: &Sim) {
    apply_rendered_to(dir, sim, "prod", PROD, PROD_TOKEN).await;
}

async fn apply_rendered_to(dir: &Path, sim: &Sim, env: &str, org: &str, token: &str) {
    let rendered = ferry_with(dir, &["render", env], &[]);
    assert_eq!(rendered.code, Some(0), "{}", rendered.stderr);
    let file = dir.join(format!("rendered-{env}.yaml"));
    std::fs::write(&file, &rendered.stdout).expect("write rendered manifests");
    let cpln = Cpln::new(sim, org, token);
    cpln.ok(
        &["apply", "-f", file.to_str().expect("path"), "--gvc", "app"],
        Duration::from_secs(90),
    )
    .await;
    std::fs::remove_file(file).expect("remove rendered manifests");
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("").to_owned(),
                r["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_applied_environment_plans_no_changes_for_every_kind() {
    let dir = tempfile::tempdir().expect("temp dir");
    example_repo(dir.path());
    let sim = simulator().await;

    let (code, before) = plan_json(dir.path(), &sim);
    assert_eq!(code, Some(2), "an empty org needs everything created");
    assert_eq!(before["summary"]["create"], 13);

    apply_rendered(dir.path(), &sim).await;
    let (code, after) = plan_json(dir.path(), &sim);
    assert_eq!(code, Some(0), "{after:#}");
    let found = actions(&after);
    assert_eq!(found.len(), 13);
    assert!(found.iter().all(|(_, action)| action == "unchanged"), "{found:?}");
    let kinds: std::collections::BTreeSet<&str> =
        found.iter().filter_map(|(id, _)| id.split('/').next()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["domain", "gvc", "identity", "policy", "secret", "volumeset", "workload"]
    );
    let human = plan(dir.path(), &sim, &[]);
    assert_eq!(human.code, Some(0));
    assert!(human.stdout.contains("No changes. prod matches the manifests."), "{}", human.stdout);
    assert!(
        human.stdout.contains(
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 images to copy."
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_field_change_in_git_shows_exactly_that_field() {
    let (dir, repo, sim) = applied_example().await;

    commit_edit(
        &repo,
        dir.path(),
        "manifests-example/worker.yaml",
        ("memory: 256Mi", "memory: 384Mi"),
        "more memory for the worker",
    );

    let (code, plan) = plan_json(dir.path(), &sim);
    assert_eq!(code, Some(2));
    let changed: Vec<&Value> = plan["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1, "{plan:#}");
    assert_eq!(changed[0]["id"], "workload/worker");
    assert_eq!(
        changed[0]["changes"],
        serde_json::json!([{"path": "spec.containers[main].memory", "op": "change", "before": "256Mi", "after": "384Mi"}])
    );
    assert_eq!(plan["summary"]["update"], 1);
    let human = plan_text(dir.path(), &sim);
    assert!(human.contains("~ spec.containers[main].memory: \"256Mi\" -> \"384Mi\""), "{human}");
    assert!(
        human.contains("-    memory: 256Mi") && human.contains("+    memory: 384Mi"),
        "{human}"
    );
}

fn plan_text(dir: &Path, sim: &Sim) -> String {
    plan(dir, sim, &[]).stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_payloads_are_compared_in_memory_and_never_printed() {
    let (dir, repo, sim) = applied_example().await;

    let old_payloads =
        ["postgres://shop:CHANGE_ME@db.internal:5432/shop", "checkout-v2,wishlist", "shop-bot"];
    let new_payload = "postgres://shop:n3w-s3cr3t-value@db.internal:5432/shop";
    commit_edit(
        &repo,
        dir.path(),
        "manifests-example/secrets.yaml",
        (old_payloads[0], new_payload),
        "rotate the database password",
    );

    let human = plan(dir.path(), &sim, &["-vvv"]);
    let (code, json) = plan_json(dir.path(), &sim);
    assert_eq!((human.code, code), (Some(2), Some(2)));
    assert!(human.stdout.contains("~ secret/api-db"), "{}", human.stdout);
    assert!(human.stdout.contains("~ data: (value hidden), changed"), "{}", human.stdout);
    let changed: Vec<&Value> = json["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["changes"][0]["after"], "(value hidden)");
    let everything = format!("{}{}{}", human.stdout, human.stderr, json);
    for payload in old_payloads.iter().chain([&new_payload]) {
        assert!(!everything.contains(payload), "a secret payload was printed: {payload}");
    }
    assert!(!everything.contains("CHANGE_ME") && !everything.contains("n3w-s3cr3t"));
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_percent_503s_give_the_same_plan() {
    let (dir, repo, sim) = applied_example().await;
    commit_edit(
        &repo,
        dir.path(),
        "manifests-example/web.yaml",
        ("memory: 128Mi", "memory: 192Mi"),
        "a change to plan",
    );

    let (code, clean) = plan_json(dir.path(), &sim);
    assert_eq!(code, Some(2));
    sim.clear_request_log();
    sim.set_faults(FaultConfig {
        error_rate: 0.2,
        error_statuses: vec![503],
        ..FaultConfig::default()
    });
    let (code, faulty) = plan_json(dir.path(), &sim);
    sim.set_faults(FaultConfig::default());
    assert_eq!(code, Some(2));
    assert_eq!(faulty, clean);
    let injected = sim.request_log().iter().filter(|r| r.injected).count();
    assert!(injected > 0, "no 503 was injected");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_records_versions_fingerprints_revision_and_hash() {
    let (dir, repo, sim) = applied_example().await;
    let head = repo.repo.head().ok().and_then(|h| h.target()).map(|o| o.to_string()).expect("head");

    let run = plan(dir.path(), &sim, &["--out", "prod-plan.json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("Saved the plan to prod-plan.json"), "{}", run.stderr);
    let saved: ferry::plan::Plan =
        serde_json::from_str(&read(&dir.path().join("prod-plan.json"))).expect("a saved plan");
    assert_eq!(saved.schema, "ferry.plan/v3");
    assert!(saved.created.is_some() && saved.origin.is_some(), "stamped and bound");
    assert_eq!(saved.target.revision.as_ref().map(|r| r.commit.as_str()), Some(head.as_str()));
    assert_eq!(saved.hash, saved.compute_hash());
    for resource in &saved.resources {
        assert!(resource.live.exists && resource.live.version.is_some(), "{}", resource.id);
        assert!(
            resource.live.fingerprint.as_ref().is_some_and(|f| f.len() == 64),
            "{}",
            resource.id
        );
    }
    let text = read(&dir.path().join("prod-plan.json"));
    assert!(!text.contains("CHANGE_ME"), "the saved plan holds no secret payload");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_a_source_environment_promotes_its_running_images_by_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    example_repo(dir.path());
    let sim = simulator().await;
    let registry =
        Registry::new(&sim.registry_host(STAGING).expect("staging registry"), STAGING_TOKEN);
    for (repo, tag) in
        [("api", "1.4.2"), ("worker", "1.4.2"), ("web", "1.4.2"), ("queue", "3.13.7")]
    {
        registry.push_image(repo, tag, &Image::new(&format!("{repo}-{tag}"), "amd64")).await;
    }
    apply_rendered_to(dir.path(), &sim, "staging", STAGING, STAGING_TOKEN).await;
    apply_rendered(dir.path(), &sim).await;

    let run = plan(dir.path(), &sim, &["--from", "staging", "--output", "json"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let plan: Value = serde_json::from_str(&run.stdout).expect("JSON plan");
    assert_eq!(plan["source"], "staging");
    let images = plan["images"].as_array().expect("images");
    let api = images.iter().find(|i| i["workload"] == "api").expect("api changes image");
    let digest = Image::new("api-1.4.2", "amd64").digest();
    assert_eq!(api["after"], format!("/org/acme-prod/image/api@{digest}"));
    assert_eq!(api["before"], "/org/acme-prod/image/api:1.4.2");
    assert_eq!(
        (api["tag"].as_str(), api["digest"].as_str()),
        (Some("1.4.2"), Some(digest.as_str()))
    );
    assert_eq!(api["copy"], true, "prod's registry does not hold the image yet");
    assert_eq!(images.len(), 5, "every container of every workload is pinned");
    assert_eq!(plan["summary"]["images_to_copy"], 4, "api, worker, web and queue");
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_resources_that_left_git_are_planned_as_deletes() {
    let (dir, repo, sim) = applied_example().await;
    repo.remove("manifests-example/worker.yaml");
    commit_edit(
        &repo,
        dir.path(),
        "promotion.yaml",
        ("        name: worker\n", "        name: api\n"),
        "retire the worker",
    );

    let (code, plan) = plan_json(dir.path(), &sim);
    assert_eq!(code, Some(2), "{plan:#}");
    let found = actions(&plan);
    assert!(found.contains(&("workload/worker".to_owned(), "delete".to_owned())), "{found:?}");
    assert_eq!(plan["summary"]["delete"], 1);
    let human = plan_text(dir.path(), &sim);
    assert!(
        human.contains("- workload/worker") && human.contains("managed by Ferry, no longer in git"),
        "{human}"
    );
}
