//! Promoting 100 workloads with 50 ms added to every API request: Ferry's
//! `promote` compared, in the same run, with the real `cpln apply --ready`
//! of the same rendered manifests into a third org. Both wait for
//! readiness the same way (a check every 5 s, three in a row).
//!
//! `cargo bench --bench promote_latency` measures; under `cargo test` it
//! only checks the setup (5 workloads, no latency, Ferry only).

#[path = "support/cpln.rs"]
mod cpln;
mod support;

use std::time::{Duration, Instant};

use ferry::sim::seed;

const ORGS: [(&str, &str); 3] = [
    ("bench-staging", "staging-token"),
    ("bench-prod", "prod-token"),
    ("bench-cpln", "cpln-token"),
];

#[tokio::main]
async fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (workloads, latency) =
        if measure { (100, Duration::from_millis(50)) } else { (5, Duration::ZERO) };
    let (sim, dir) = cpln::start(&ORGS, Duration::from_millis(500)).await;
    let mut plan =
        String::from("manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n");
    for (name, (org, _)) in ["staging", "prod", "cpln"].iter().zip(ORGS) {
        let registry = sim.registry_host(org).unwrap_or_default();
        plan.push_str(&format!(
            "  - name: {name}\n    org: {org}\n    gvc: app\n    endpoint: {}\n    tokenEnv: TOKEN_{}\n    registry: {registry}\n    immutableTags: false\n    from: staging\n",
            sim.api_url(),
            name.to_uppercase()
        ));
    }
    let plan = plan.replacen("    from: staging\n", "", 1);
    // The measurement keeps the default readiness (5 s, three checks), as
    // `cpln apply --ready` polls; the smoke check needs no such patience.
    let plan = if measure {
        plan
    } else {
        plan.replace(
            "    immutableTags: false\n",
            "    immutableTags: false\n    readiness: {interval: 200ms, consecutiveChecks: 2}\n",
        )
    };
    support::write_repository(dir.path(), workloads, "app:1.0", &plan);
    let vars = [("TOKEN_STAGING", ORGS[0].1), ("TOKEN_PROD", ORGS[1].1), ("TOKEN_CPLN", ORGS[2].1)];
    for (org, token) in [ORGS[0], ORGS[2]] {
        let host = sim.registry_host(org).unwrap_or_default();
        seed::push_demo_image(&host, token, "app", "1.0").await.unwrap_or_else(|e| panic!("{e}"));
    }
    let staging = support::ferry(dir.path(), &["render", "staging", "--output", "json"], &vars);
    support::put_all(&sim, ORGS[0].0, ORGS[0].1, &staging.stdout).await;
    let for_cpln = support::ferry(dir.path(), &["render", "cpln", "--from", "staging"], &vars);
    assert!(for_cpln.status.success(), "{}", String::from_utf8_lossy(&for_cpln.stderr));
    let rendered = dir.path().join("rendered-cpln.yaml");
    std::fs::write(&rendered, &for_cpln.stdout).unwrap_or_else(|e| panic!("{e}"));

    sim.set_latency(latency);
    sim.clear_request_log();
    let started = Instant::now();
    let promoted = support::ferry(dir.path(), &["promote", "staging", "prod", "--yes"], &vars);
    let ferry_time = started.elapsed();
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
    let ferry_requests = sim.request_log().len();
    println!("workloads              {workloads}");
    println!("latency per request    {latency:?}");
    println!(
        "ferry promote          {ferry_time:.3?} ({ferry_requests} API and registry requests)"
    );
    if !measure {
        return;
    }
    sim.clear_request_log();
    let started = Instant::now();
    let applied = cpln::apply_ready(&sim.api_url(), ORGS[2], &rendered, dir.path());
    let cpln_time = started.elapsed();
    assert!(applied, "cpln apply --ready failed");
    println!("cpln apply --ready     {cpln_time:.3?} ({} API requests)", sim.request_log().len());
    println!("ferry / cpln           {:.2}", ferry_time.as_secs_f64() / cpln_time.as_secs_f64());
}
