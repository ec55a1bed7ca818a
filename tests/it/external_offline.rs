//! External registries that never answer or refuse: a plan waits for them
//! no longer than a short bound, and says so in one warning line; so
//! does `status`, which plans every edge.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::promote::Pipeline;

/// Twelve external images on this machine whose registries do not answer:
/// six ports that accept connections and never answer (kept open by the
/// listeners returned), six that refuse them.
fn silent_registries() -> (Vec<TcpListener>, Vec<String>) {
    let mut listeners = Vec::new();
    let mut images = Vec::new();
    for i in 0..6 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        images.push(format!("127.0.0.1:{port}/silent/app-{i}:1.0"));
        listeners.push(listener);
    }
    for i in 0..6 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        images.push(format!("127.0.0.1:{port}/refusing/app-{i}:1.0"));
    }
    (listeners, images)
}

/// The warning lines about unknown external digests.
fn unknown_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("are recorded as unknown")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn twelve_silent_external_registries_cost_a_plan_at_most_the_bound_and_one_warning() {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let plan = ["plan", "prod", "--from", "staging"];
    let started = Instant::now();
    let without = pipeline.ferry(&plan);
    let baseline = started.elapsed();
    assert_eq!(without.code, Some(2), "{}\n{}", without.stdout, without.stderr);
    assert!(unknown_lines(&without.stderr).is_empty(), "{}", without.stderr);

    // dev's and staging's web and worker workloads run six more
    // containers each (a workload has at most eight), each with an
    // external image whose registry does not answer.
    let (_listeners, images) = silent_registries();
    for (workload, half) in ["web", "worker"].iter().zip(images.chunks(6)) {
        let containers: Vec<Value> = half
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("side-{i}"), "image": image}))
            .collect();
        for org in ["acme-dev", "acme-staging"] {
            let path = format!("/org/{org}/gvc/app/workload/{workload}");
            let patch = json!({"spec": {"$append/containers": containers}});
            let (status, body) = pipeline.api(org).patch(&path, patch).await;
            assert!(status.is_success(), "{status}: {body}");
        }
    }

    let started = Instant::now();
    let with = pipeline.ferry(&plan);
    let took = started.elapsed();
    assert_eq!(with.code, Some(2), "{}\n{}", with.stdout, with.stderr);
    assert!(
        took <= baseline + Duration::from_secs(3),
        "{took:?} with twelve silent registries, {baseline:?} without"
    );
    let unknown = unknown_lines(&with.stderr);
    assert_eq!(unknown.len(), 1, "{}", with.stderr);
    assert!(unknown[0].contains("the digests of 12 external images"), "{}", unknown[0]);
    for image in &images {
        assert!(unknown[0].contains(&format!("{image} (")), "{image}: {}", unknown[0]);
    }

    // `status` plans both edges, dev → staging and staging → prod, each
    // with the same twelve images: still one line.
    let status = pipeline.ferry(&["status"]);
    assert!(matches!(status.code, Some(0 | 2)), "{}\n{}", status.stdout, status.stderr);
    assert_eq!(unknown_lines(&status.stderr).len(), 1, "{}", status.stderr);
}
