//! Latency, injected errors and the request log.

use std::time::{Duration, Instant};

use ferry::sim::{FaultConfig, FaultTarget, Service};
use reqwest::StatusCode;

use crate::support::oci::Registry;
use crate::support::sim::{self, Api, DEV, DEV_TOKEN, assert_error_body};

#[tokio::test]
async fn injected_errors_have_api_bodies_and_retry_after() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    sim.set_faults(FaultConfig {
        error_rate: 1.0,
        error_statuses: vec![429],
        retry_after_secs: 7,
        target: FaultTarget::Api,
        ..FaultConfig::default()
    });
    let (status, body, headers) = api.send(reqwest::Method::GET, "/org/acme-dev/gvc", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "7");
    assert_error_body(&body, 429);
    assert!(!body["message"].as_str().unwrap().contains("quota"), "cpln must retry it");
    // The registry is not targeted.
    let registry = Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    assert_eq!(
        registry.request(reqwest::Method::GET, "/v2/").send().await.unwrap().status(),
        StatusCode::OK
    );

    sim.set_faults(FaultConfig {
        error_rate: 1.0,
        error_statuses: vec![500, 503],
        ..FaultConfig::default()
    });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        seen.insert(api.get("/org/acme-dev/gvc").await.0.as_u16());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [500, 503]);
    let log = sim.request_log();
    assert!(
        log.iter().filter(|r| r.service == Service::Api && r.status >= 500).all(|r| r.injected)
    );

    sim.set_faults(FaultConfig::default());
    assert_eq!(api.get("/org/acme-dev/gvc").await.0, StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added_and_the_log_shows_what_was_written() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    sim.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    api.get("/org/acme-dev/gvc").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.set_latency(Duration::ZERO);

    sim.clear_request_log();
    api.get("/org/acme-dev/secret").await;
    api.post("/org/acme-dev/secret/-query", serde_json::json!({})).await;
    api.get("/org/acme-prod/secret").await;
    let log = sim.request_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].org.as_deref(), Some(DEV));
    assert_eq!((log[2].status, log[2].org.as_deref()), (403, Some("acme-prod")));
    let writes: Vec<_> =
        log.iter().filter(|r| r.is_write() && !r.path.ends_with("/-query")).collect();
    assert!(writes.is_empty(), "nothing was written: {writes:?}");

    api.put(
        "/org/acme-dev/secret",
        serde_json::json!({"name": "s1", "type": "opaque", "data": {"payload": "x"}}),
    )
    .await;
    let last = sim.request_log().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("PUT", "/org/acme-dev/secret", 201)
    );
}
