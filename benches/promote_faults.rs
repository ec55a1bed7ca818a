//! Promoting under injected faults: the same promotion with every API and
//! registry request answered 503 or 429 (`Retry-After: 1`) a quarter of
//! the time, beside the fault-free run, in the same simulator and with
//! the same readiness settings. The target: within 3× of the fault-free
//! time (issue 11).
//!
//! `cargo bench --bench promote_faults` measures (3 runs each, 20
//! workloads); under `cargo test` it only checks the setup (4 workloads,
//! one fault-free run). `FERRY_BENCH_TRACE=1` prints each run's request
//! log (time, duration, status) and Ferry's stderr: where the time goes.

mod support;

use std::time::{Duration, Instant};

use ferry::sim::{FaultConfig, SimConfig, Simulator, seed};

const STAGING: (&str, &str) = ("faults-staging", "staging-token");

#[tokio::main]
async fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (workloads, runs) = if measure { (20, 3) } else { (4, 1) };
    let targets: Vec<(String, String)> =
        (0..2 * runs).map(|n| (format!("faults-prod-{n}"), format!("prod-token-{n}"))).collect();
    let mut config = SimConfig::new()
        .with_rollout_delay(Duration::from_millis(300))
        .with_org(STAGING.0, STAGING.1);
    for (org, token) in &targets {
        config = config.with_org(org, token);
    }
    let sim = Simulator::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut plan =
        String::from("manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n");
    let orgs =
        std::iter::once(STAGING).chain(targets.iter().map(|(o, t)| (o.as_str(), t.as_str())));
    let mut vars = Vec::new();
    for (n, (org, token)) in orgs.enumerate() {
        let name = if n == 0 { "staging".to_owned() } else { format!("prod{}", n - 1) };
        let registry = sim.registry_host(org).unwrap_or_default();
        let from = if n == 0 { "" } else { "    from: staging\n" };
        plan.push_str(&format!(
            "  - name: {name}\n    org: {org}\n    gvc: app\n    endpoint: {}\n    tokenEnv: TOKEN_{n}\n    registry: {registry}\n    immutableTags: false\n    readiness: {{interval: 200ms, consecutiveChecks: 2}}\n{from}",
            sim.api_url(),
        ));
        vars.push((format!("TOKEN_{n}"), token.to_owned()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    support::write_repository(dir.path(), workloads, "app:1.0", &plan);
    let host = sim.registry_host(STAGING.0).unwrap_or_default();
    seed::push_demo_image(&host, STAGING.1, "app", "1.0").await.unwrap_or_else(|e| panic!("{e}"));
    let staging = support::ferry(dir.path(), &["render", "staging", "--output", "json"], &vars);
    support::put_all(&sim, STAGING.0, STAGING.1, &staging.stdout).await;

    let faults = FaultConfig {
        error_rate: 0.25,
        error_statuses: vec![503, 429],
        retry_after_secs: 1,
        ..FaultConfig::default()
    };
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let promotions = if measure { 2 * runs } else { 1 };
    for run in 0..promotions {
        let faulty = run % 2 == 1;
        sim.set_faults(if faulty { faults.clone() } else { FaultConfig::default() });
        sim.clear_request_log();
        let target = format!("prod{run}");
        let started = Instant::now();
        let promoted = support::ferry(dir.path(), &["promote", "staging", &target, "--yes"], &vars);
        let took = started.elapsed();
        assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
        let log = sim.request_log();
        let injected = log.iter().filter(|r| r.injected).count();
        println!(
            "{} {target}: {took:.3?} ({} requests, {injected} faults injected)",
            if faulty { "25% 503/429" } else { "no faults  " },
            log.len()
        );
        if std::env::var_os("FERRY_BENCH_TRACE").is_some() {
            let start = log.first().map_or(0, |r| r.at_ms);
            for r in &log {
                eprintln!(
                    "{:>6} {:>5} {:?} {} {} {}",
                    r.at_ms - start,
                    r.duration_ms,
                    r.service,
                    r.status,
                    r.method,
                    r.path
                );
            }
            eprintln!("{}", String::from_utf8_lossy(&promoted.stderr));
        }
        times[usize::from(faulty)].push(took);
    }
    if !measure {
        return;
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (clean, faulty) = (median(&mut times[0]), median(&mut times[1]));
    println!("workloads              {workloads}");
    println!("median without faults  {clean:.3?}");
    println!("median with faults     {faulty:.3?}");
    println!("faults / no faults     {:.2}", faulty.as_secs_f64() / clean.as_secs_f64());
}
