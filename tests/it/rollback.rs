//! `ferry rollback` end to end on the simulator: three promotions into
//! prod, then back to earlier releases by digest (PATCH only, every
//! location waited for, a release recorded), refusals before any write (an
//! image prod's registry lost, a changed container set), a copy back from
//! staging's registry when the plan file allows it, and a rollback that
//! never becomes ready restored and recorded as failed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::promote::{Pipeline, digest_of, promoted_to_prod, token, writes};
use crate::support::oci::{Image, Registry};

const API: &str = "/org/acme-prod/gvc/app/workload/api";

/// Prod after three promotions of a new api image each (1.4.2, 1.4.3,
/// 1.4.4); the digests prod ran after each, oldest first.
async fn three_releases() -> (Pipeline, [String; 3]) {
    let pipeline = promoted_to_prod().await;
    let first = api_digest(&pipeline).await;
    let second = release_api(&pipeline, "1.4.3").await;
    let third = release_api(&pipeline, "1.4.4").await;
    assert!(first != second && second != third, "{first} {second} {third}");
    (pipeline, [first, second, third])
}

/// A new api image pushed to dev's registry and run in dev.
pub(crate) async fn new_api_in_dev(pipeline: &Pipeline, tag: &str) {
    let host = pipeline.sim.registry_host("acme-dev").expect("dev registry");
    Registry::new(&host, token("acme-dev"))
        .push_image("api", tag, &Image::new(&format!("api-{tag}"), "amd64"))
        .await;
    let image = json!({"spec": {"$patch/containers": [{"name": "main", "image": format!("//image/api:{tag}")}]}});
    let (status, body) =
        pipeline.api("acme-dev").patch("/org/acme-dev/gvc/app/workload/api", image).await;
    assert!(status.is_success(), "{status}: {body}");
}

/// A new api image run in dev, promoted to staging and then prod; the
/// digest prod runs.
async fn release_api(pipeline: &Pipeline, tag: &str) -> String {
    new_api_in_dev(pipeline, tag).await;
    for (src, dst) in [("dev", "staging"), ("staging", "prod")] {
        let run = pipeline.ferry(&["promote", src, dst, "--yes"]);
        assert_eq!(run.code, Some(0), "{src} -> {dst}: {}\n{}", run.stdout, run.stderr);
    }
    api_digest(pipeline).await
}

async fn api_digest(pipeline: &Pipeline) -> String {
    let (_, api) = pipeline.api("acme-prod").get(API).await;
    let image = api["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
    assert!(image.starts_with("/org/acme-prod/image/api@sha256:"), "{image}");
    digest_of(image).to_owned()
}

/// The newest release of prod, as `ferry history prod --output json`
/// shows it.
fn newest_release(pipeline: &Pipeline) -> Value {
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    assert_eq!(history.code, Some(0), "{}", history.stderr);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    releases["releases"][0].clone()
}

/// Every location of prod's api runs its current version, ready.
async fn ready_everywhere(pipeline: &Pipeline) {
    let api = pipeline.api("acme-prod");
    let (_, workload) = api.get(API).await;
    let (_, deployments) = api.get(&format!("{API}/deployment")).await;
    let items = deployments["items"].as_array().expect("deployments");
    assert_eq!(items.len(), 2, "{deployments:#}");
    for deployment in items {
        assert_eq!(deployment["status"]["ready"], true, "{deployment:#}");
        assert_eq!(deployment["status"]["lastProcessedVersion"], workload["version"]);
    }
}

/// A diagnostic as one line: words joined by single spaces, however the
/// terminal width wrapped them.
fn flowed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn edit_plan_file(pipeline: &Pipeline, from: &str, to: &str) {
    let path = pipeline.path().join("promotion.yaml");
    let text = std::fs::read_to_string(&path).expect("plan file");
    assert!(text.contains(from), "{text}");
    std::fs::write(&path, text.replace(from, to)).expect("plan file");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_brings_back_the_previous_release_by_digest_and_to_any_earlier_one() {
    let (pipeline, [first, second, _]) = three_releases().await;
    let images_before =
        crate::promote::images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    pipeline.sim.clear_request_log();

    let run = pipeline.ferry(&["rollback", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for shown in [
        "Rollback: prod (now release 3) back to the images of release 2",
        "Not restored by a rollback:",
        "Rolled prod back to the images of release 2, recorded as revision 4",
    ] {
        assert!(run.stdout.contains(shown), "{shown}: {}", run.stdout);
    }
    assert_eq!(api_digest(&pipeline).await, second);
    ready_everywhere(&pipeline).await;
    // Only the api was written, with one PATCH; nothing else changed.
    let workload_writes: Vec<String> = writes(&pipeline.sim, "acme-prod")
        .into_iter()
        .filter(|r| r.path.contains("/workload"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(workload_writes, [format!("PATCH {API}")]);
    let images_after =
        crate::promote::images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    for ((name, before), (_, after)) in images_before.iter().zip(&images_after) {
        if name != "api" {
            assert_eq!(before, after, "{name} was left as it was");
        }
    }
    let release = newest_release(&pipeline);
    assert_eq!(release["revision"], 4, "{release:#}");
    assert_eq!(release["kind"], "rollback");
    assert_eq!(release["outcome"], "succeeded");
    assert_eq!(release["message"], "rollback to 2");
    let api = release["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["workload"] == "api")
        .cloned();
    assert_eq!(api.map(|i| i["digest"].clone()), Some(json!(second)));

    let again = pipeline.ferry(&["rollback", "prod", "--to", "1", "--yes", "--output", "json"]);
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    let outcome: Value = serde_json::from_str(&again.stdout).expect("rollback JSON");
    assert_eq!(outcome["schema"], "ferry.rollback/v1");
    assert_eq!(outcome["release"]["revision"], 5);
    assert_eq!(outcome["release"]["message"], "rollback to 1");
    assert_eq!(api_digest(&pipeline).await, first);
    ready_everywhere(&pipeline).await;

    // Back to what runs: nothing to do, exit 0, nothing written.
    pipeline.sim.clear_request_log();
    let same = pipeline.ferry(&["rollback", "prod", "--to", "5", "--yes"]);
    assert_eq!(same.code, Some(0), "{}\n{}", same.stdout, same.stderr);
    assert!(
        same.stdout.contains("No changes. prod already runs the images of release 5."),
        "{}",
        same.stdout
    );
    assert!(writes(&pipeline.sim, "acme-prod").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_prod_lost_is_refused_before_any_write_and_copied_back_when_allowed() {
    let (pipeline, [first, _, _]) = three_releases().await;
    let api = pipeline.api("acme-prod");
    assert!(api.delete("/org/acme-prod/image/api:1.4.2").await.is_success());
    pipeline.sim.clear_request_log();

    let refused = pipeline.ferry(&["rollback", "prod", "--to", "1", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    let said = flowed(&refused.stderr);
    assert!(said.contains("cannot roll prod back to release 1"), "{said}");
    let missing = format!(
        "image api@{first} is no longer in acme-prod's registry (set `rollback.copyMissingImages: true`"
    );
    assert!(said.contains(&missing), "{said}");
    let written = writes(&pipeline.sim, "acme-prod");
    assert!(written.is_empty(), "a refused rollback wrote: {written:?}");

    edit_plan_file(
        &pipeline,
        "      - file: overrides/prod.yaml\n",
        "      - file: overrides/prod.yaml\n    rollback: {copyMissingImages: true}\n",
    );
    let run = pipeline.ferry(&["rollback", "prod", "--to", "1", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Copying "), "{}", run.stderr);
    assert!(run.stdout.contains("1 image copied back"), "{}", run.stdout);
    assert_eq!(api_digest(&pipeline).await, first);
    let (_, image) = api.get("/org/acme-prod/image/api:1.4.2").await;
    assert_eq!(image["digest"], json!(first), "the tag is back, at the release's digest");
    ready_everywhere(&pipeline).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_that_never_becomes_ready_is_restored_and_one_over_changed_containers_refused() {
    let (pipeline, [_, _, third]) = three_releases().await;
    // The timeout is unit-tested on the fake; the wire path needs 500 ms.
    edit_plan_file(&pipeline, "timeout: 8s", "timeout: 500ms");
    // One location never takes a new version until the restore has begun.
    pipeline.sim.set_location_delay("aws-us-east-2", Duration::from_secs(3600));
    pipeline.sim.clear_request_log();
    let running = pipeline.spawn(&["rollback", "prod", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restoring = pipeline.sim.request_log().iter().any(|r| {
            r.method == "PUT" && r.path == "/org/acme-prod/gvc/app/workload" && r.status < 300
        });
        if restoring {
            break;
        }
        assert!(Instant::now() < deadline, "the rollback never restored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pipeline.sim.set_location_delay("aws-us-east-2", Duration::from_millis(100));
    let output = running.wait_with_output().expect("rollback ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "rollback of prod failed while waiting for workload/api to be ready; prod is as it was"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("restored: workload/api"), "{stderr}");
    assert_eq!(api_digest(&pipeline).await, third, "release 3's image is back");
    ready_everywhere(&pipeline).await;
    let release = newest_release(&pipeline);
    assert_eq!(release["revision"], 4, "{release:#}");
    assert_eq!(release["kind"], "rollback");
    assert_eq!(release["outcome"], "failed");
    assert_eq!(release["rolled_back"], true);
    let message = release["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("rollback to 2: "), "{message}");

    // A container added since: refused by name, nothing written.
    let sidecar = json!({"spec": {"$patch/containers": [{"name": "proxy", "image": "nginx:1.27", "cpu": "50m", "memory": "64Mi"}]}});
    let (status, body) = pipeline.api("acme-prod").patch(API, sidecar).await;
    assert!(status.is_success(), "{status}: {body}");
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["rollback", "prod", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    let said = flowed(&refused.stderr);
    let changed = "the containers of workload/api changed since (then: main; now: main, proxy)";
    assert!(said.contains(changed), "{said}");
    assert!(writes(&pipeline.sim, "acme-prod").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_rollback_is_applied_later_as_a_rollback_and_refused_once_prod_moved() {
    let (pipeline, [first, second, third]) = three_releases().await;
    pipeline.sim.clear_request_log();
    let saved = pipeline.ferry(&["rollback", "prod", "--out", "rollback.json"]);
    assert_eq!(saved.code, Some(2), "a plan that changes something: {}", saved.stderr);
    assert!(saved.stdout.contains("back to the images of release 2"), "{}", saved.stdout);
    assert!(saved.stderr.contains("ferry apply rollback.json"), "{}", saved.stderr);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "saving writes nothing");
    assert_eq!(api_digest(&pipeline).await, third);

    let applied = pipeline.ferry(&["apply", "rollback.json", "--yes"]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stderr.contains("Locked prod for this rollback"), "{}", applied.stderr);
    assert_eq!(api_digest(&pipeline).await, second);
    ready_everywhere(&pipeline).await;
    let release = newest_release(&pipeline);
    assert_eq!(release["revision"], 4, "{release:#}");
    assert_eq!(release["kind"], "rollback", "a saved rollback is still a rollback");
    assert_eq!(release["message"], "rollback to 2");

    // Saved, then prod's api changed by hand: refused, naming it, before
    // anything (not even the lock) is written.
    let again = pipeline.ferry(&["rollback", "prod", "--to", "1", "--out", "again.json"]);
    assert_eq!(again.code, Some(2), "{}", again.stderr);
    let env = json!({"spec": {"$patch/containers": [{"name": "main", "env": [{"name": "BY_HAND", "value": "1"}]}]}});
    let (status, body) = pipeline.api("acme-prod").patch(API, env).await;
    assert!(status.is_success(), "{status}: {body}");
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["apply", "again.json", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    let said = flowed(&refused.stderr);
    assert!(said.contains("workload/api changed in prod since the plan was made"), "{said}");
    assert!(writes(&pipeline.sim, "acme-prod").is_empty());
    assert_eq!(api_digest(&pipeline).await, second);
    assert!(first != second);
}
