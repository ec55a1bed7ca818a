//! The real `cpln` CLI against the simulator: apply --ready, yaml-slim
//! round trips, update, image get, delete.

use std::time::Duration;

use serde_json::Value;

use crate::support::cpln::{Cpln, describe};
use crate::support::oci::{Image, Registry};
use crate::support::sim::{self, Api, DEV, DEV_TOKEN, Sim};

/// The shipped example: GVC `app`, identity, three secrets, workloads
/// `api`, `worker`, `web` (serverless), `db-migrate` (cron), `queue`
/// (stateful, with a volume set), a policy and a domain.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests-example");
/// The images the example runs, as repository and tag.
const IMAGES: [(&str, &str); 4] =
    [("api", "1.4.2"), ("worker", "1.4.2"), ("web", "1.4.2"), ("queue", "3.13.7")];
const LIMIT: Duration = Duration::from_secs(90);

async fn push(sim: &Sim, images: &[(&str, &str)]) {
    let registry = Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    for (repo, tag) in images {
        registry.push_image(repo, tag, &Image::new(&format!("{repo}-{tag}"), "amd64")).await;
    }
}

async fn version(api: &Api, workload: &str) -> Value {
    api.get(&format!("/org/acme-dev/gvc/app/workload/{workload}")).await.1["version"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_ready_round_trip_update_image_get_and_delete() {
    let sim = sim::start().await;
    push(&sim, &IMAGES).await;
    let cpln = Cpln::new(&sim, DEV, DEV_TOKEN);
    let api = Api::new(&sim, Some(DEV_TOKEN));

    let out = cpln.ok(&["apply", "-f", FIXTURE, "--gvc", "app", "--ready"], LIMIT).await;
    assert!(out.contains("Created /org/acme-dev/gvc/app/workload/api"), "{out}");
    for kind in ["secret", "policy", "domain"] {
        assert!(
            !api.get(&format!("/org/acme-dev/{kind}")).await.1["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    // get -o yaml-slim, applied back, changes no version.
    let before = version(&api, "api").await;
    let slim = cpln.ok(&["workload", "get", "api", "--gvc", "app", "-o", "yaml-slim"], LIMIT).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.yaml");
    std::fs::write(&file, &slim).unwrap();
    let out = cpln.ok(&["apply", "-f", file.to_str().unwrap(), "--gvc", "app"], LIMIT).await;
    assert!(out.contains("Updated workload 'api'"), "{out}");
    assert_eq!(
        version(&api, "api").await,
        before,
        "re-applying yaml-slim must not bump the version"
    );
    let out = cpln.ok(&["apply", "-f", FIXTURE, "--gvc", "app"], LIMIT).await;
    assert!(!out.contains("Created"), "{out}");
    assert_eq!(
        version(&api, "api").await,
        before,
        "re-applying the manifests must not bump the version"
    );

    // update --set changes the image and the new version rolls out.
    push(&sim, &[("api", "1.4.3")]).await;
    cpln.ok(
        &[
            "workload",
            "update",
            "api",
            "--gvc",
            "app",
            "--set",
            "spec.containers.main.image=//image/api:1.4.3",
        ],
        LIMIT,
    )
    .await;
    let (_, live) = api.get("/org/acme-dev/gvc/app/workload/api").await;
    let next = before.as_u64().unwrap() + 1;
    assert_eq!(live["version"], next);
    assert_eq!(live["spec"]["containers"][0]["image"], "/org/acme-dev/image/api:1.4.3");
    api.wait_for("/org/acme-dev/gvc/app/workload/api/deployment", 10, |list| {
        list["items"].as_array().is_some_and(|items| {
            !items.is_empty()
                && items.iter().all(|d| {
                    let status = &d["status"];
                    status["ready"] == true
                        && status["lastProcessedVersion"] == next
                        && status["versions"][0]["containers"]["main"]["image"]
                            == "/org/acme-dev/image/api:1.4.3"
                })
        })
    })
    .await;

    // image get lists what was pushed.
    let out = cpln.ok(&["image", "get", "-o", "json"], LIMIT).await;
    let listed: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["api:1.4.2", "api:1.4.3", "queue:3.13.7", "web:1.4.2", "worker:1.4.2"]);

    // delete -f removes everything.
    cpln.ok(&["delete", "-f", FIXTURE, "--gvc", "app"], LIMIT).await;
    for path in ["gvc", "secret", "policy", "domain", "workload", "identity", "volumeset"] {
        let (_, list) = api.get(&format!("/org/acme-dev/{path}")).await;
        assert_eq!(list["items"], serde_json::json!([]), "{path} left behind");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_ready_fails_when_an_image_is_missing_from_the_registry() {
    let sim = sim::start().await;
    push(&sim, &IMAGES[1..]).await;
    // 50 times faster timers: the CLI's 5-minute readiness wait takes ~6 s.
    let cpln = Cpln::new(&sim, DEV, DEV_TOKEN).fast_clock(50);
    let output = cpln.run(&["apply", "-f", FIXTURE, "--gvc", "app", "--ready"], LIMIT).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("could not start successfully"),
        "{}",
        describe(&output)
    );

    let (_, list) =
        Api::new(&sim, Some(DEV_TOKEN)).get("/org/acme-dev/gvc/app/workload/api/deployment").await;
    for deployment in list["items"].as_array().unwrap() {
        assert_eq!(deployment["status"]["ready"], false);
        let message = deployment["status"]["message"].as_str().unwrap();
        assert!(message.contains("api:1.4.2 not found"), "{message}");
    }
}
