//! Planning 500 workloads with 50 ms added to every API request, against
//! the lower bound ceil(requests / concurrency) × 50 ms, and compared in
//! the same run with a sequential client fetching the same paths one after
//! another (as `cpln` does).
//!
//! `cargo bench --bench plan_latency` runs the measurement; under
//! `cargo test` it only checks that the setup works, with 20 workloads and
//! no latency. Figures go in docs/performance.md.

use std::path::Path;
use std::process::Command;
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
    write_repository(dir.path(), workloads);
    let sim = Simulator::start(SimConfig::new().with_org(ORG, TOKEN))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    apply(dir.path(), &sim).await;

    sim.set_latency(latency);
    let mut runs = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..if measure { 3 } else { 1 } {
        sim.clear_request_log();
        let started = Instant::now();
        let status = ferry(dir.path(), &sim, &["plan", "prod", "--output", "json"]).status;
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

/// A git repository with a GVC and `count` workloads, and a plan file.
fn write_repository(root: &Path, count: usize) {
    let manifests = root.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::from(
        "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n",
    );
    for n in 0..count {
        text.push_str(&format!(
            "---\nkind: workload\nname: worker-{n}\nspec:\n  type: standard\n  containers:\n    - name: main\n      image: //image/worker:1.0.{n}\n      cpu: 100m\n      memory: 128Mi\n"
        ));
    }
    std::fs::write(manifests.join("app.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        root.join("promotion.yaml"),
        format!("manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n  - name: prod\n    org: {ORG}\n    gvc: app\n    tokenEnv: BENCH_TOKEN\n    immutableTags: false\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let repo = git2::Repository::init(root).unwrap_or_else(|e| panic!("{e}"));
    let mut index = repo.index().unwrap_or_else(|e| panic!("{e}"));
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap_or_else(|e| panic!("{e}"));
    let tree = index.write_tree().and_then(|t| repo.find_tree(t)).unwrap_or_else(|e| panic!("{e}"));
    let signature =
        git2::Signature::now("bench", "bench@ferry.invalid").unwrap_or_else(|e| panic!("{e}"));
    repo.commit(Some("HEAD"), &signature, &signature, "bench", &tree, &[])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn ferry(dir: &Path, sim: &SimHandle, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("CPLN_ENDPOINT", sim.api_url())
        .env("BENCH_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("ferry: {e}"))
}

/// Puts the rendered manifests into the simulator, before any latency.
async fn apply(dir: &Path, sim: &SimHandle) {
    let output = ferry(dir, sim, &["render", "prod", "--output", "json"]);
    let bodies: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest::Client::new();
    for body in bodies {
        let path = match body["kind"].as_str() {
            Some("gvc") => format!("/org/{ORG}/gvc"),
            _ => format!("/org/{ORG}/gvc/app/workload"),
        };
        let response = client
            .put(format!("{}{path}", sim.api_url()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(response.status().is_success(), "{}", response.status());
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
