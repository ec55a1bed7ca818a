//! Planning 500 workloads with 50 ms added to every API request, against
//! the lower bound ceil(requests / concurrency) × 50 ms, and compared in
//! the same run with a sequential client fetching the same paths one after
//! another (as `cpln` does).
//!
//! `cargo bench --bench plan_latency` runs the measurement; under
//! `cargo test` it only checks that the setup works, with 20 workloads and
//! no latency. Figures go in docs/performance.md.

mod support;

use std::time::{Duration, Instant};

use ferry::sim::{SimConfig, SimHandle, Simulator};

const ORG: &str = "bench-prod";
const TOKEN: &str = "bench-token";
/// Ferry's API client concurrency (`ClientSettings::new`).
const CONCURRENCY: usize = 16;

#[tokio::main]
async fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (workloads, latency) =
        if measure { (500, Duration::from_millis(50)) } else { (20, Duration::ZERO) };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let plan = format!(
        "manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n  - name: prod\n    org: {ORG}\n    gvc: app\n    tokenEnv: BENCH_TOKEN\n    immutableTags: false\n"
    );
    support::write_repository(dir.path(), workloads, "worker:1.0", &plan);
    let sim = Simulator::start(SimConfig::new().with_org(ORG, TOKEN))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let endpoint = sim.api_url();
    let vars = [("CPLN_ENDPOINT", endpoint.as_str()), ("BENCH_TOKEN", TOKEN)];
    // prod has no source: its plan is a deploy's, which pins the image by
    // the digest its registry holds; live runs exactly that.
    let host = sim.registry_host(ORG).unwrap_or_else(|| panic!("{ORG}'s registry"));
    let digest = ferry::sim::seed::push_demo_image(&host, TOKEN, "worker", "1.0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rendered = support::ferry(dir.path(), &["render", "prod", "--output", "json"], &vars);
    let rendered = String::from_utf8_lossy(&rendered.stdout)
        .replace("image/worker:1.0\"", &format!("image/worker@{digest}\""));
    support::put_all(&sim, ORG, TOKEN, rendered.as_bytes()).await;

    sim.set_latency(latency);
    let mut runs = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..if measure { 3 } else { 1 } {
        sim.clear_request_log();
        let started = Instant::now();
        let status =
            support::ferry(dir.path(), &["plan", "prod", "--output", "json"], &vars).status;
        runs.push(started.elapsed());
        assert_eq!(status.code(), Some(0), "the applied environment plans no changes");
        paths = sim.request_log().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    }
    runs.sort();
    let median = runs[runs.len() / 2];
    let requests = paths.len();
    let bound = latency * u32::try_from(requests.div_ceil(CONCURRENCY)).unwrap_or(u32::MAX);

    let started = Instant::now();
    sequential(&sim, &paths).await;
    let sequential = started.elapsed();

    println!("workloads            {workloads}");
    println!("latency per request  {latency:?}");
    println!("requests             {requests} (concurrency {CONCURRENCY})");
    println!("ferry plan (median of {})  {median:.3?}  (runs: {runs:.3?})", runs.len());
    println!("lower bound          {bound:.3?}");
    if !bound.is_zero() {
        println!("ratio to bound       {:.2}", median.as_secs_f64() / bound.as_secs_f64());
        println!("sequential client    {sequential:.3?}");
        println!("sequential / ferry   {:.1}x", sequential.as_secs_f64() / median.as_secs_f64());
    }
}

/// The same requests, one after another.
async fn sequential(sim: &SimHandle, paths: &[(String, String)]) {
    let client = reqwest::Client::new();
    for (method, path) in paths {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let request =
            client.request(method.clone(), format!("{}{path}", sim.api_url())).bearer_auth(TOKEN);
        let request = if method == reqwest::Method::POST {
            request.json(&serde_json::json!({"spec": {"match": "all", "terms": []}}))
        } else {
            request
        };
        let _ = request.send().await.and_then(reqwest::Response::error_for_status);
    }
}
