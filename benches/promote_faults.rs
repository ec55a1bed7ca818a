//! Promoting under injected faults: the same promotion with every API and
//! registry request answered 503 or 429 (`Retry-After: 1`) a quarter of
//! the time, beside the fault-free run, in the same simulator and with
//! the same readiness settings. The target: within 3× of the fault-free
//! time (issue 11).
//!
//! The promotion measured is the example's (promotion.example.yaml's
//! manifests and overrides: 13 resources, 4 images to copy), staging to a
//! fresh prod, with the embedded simulator's rollouts (300 ms) and
//! readiness (`interval: 250ms, consecutiveChecks: 2`). A second figure
//! promotes 20 workloads of one image.
//!
//! `cargo bench --bench promote_faults` measures (3 runs each, alternating
//! no faults and faults); under `cargo test` it only checks the example's
//! setup (one fault-free run). `FERRY_BENCH_TRACE=1` prints each run's
//! request log (time, duration, status) and Ferry's stderr: where the time
//! goes.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ferry::sim::{FaultConfig, SimConfig, SimHandle, Simulator, seed};

const STAGING: (&str, &str) = ("faults-staging", "staging-token");

/// What is promoted.
#[derive(Clone, Copy)]
enum Scenario {
    /// The shipped example.
    Example,
    /// A GVC and this many workloads running one image.
    Workloads(usize),
}

impl Scenario {
    fn name(self) -> String {
        match self {
            Scenario::Example => "the example (13 resources, 4 images)".to_owned(),
            Scenario::Workloads(n) => format!("{n} workloads, one image"),
        }
    }

    /// Readiness, as in the embedded simulator for the example.
    fn readiness(self) -> &'static str {
        match self {
            Scenario::Example => "{interval: 250ms, consecutiveChecks: 2}",
            Scenario::Workloads(_) => "{interval: 200ms, consecutiveChecks: 2}",
        }
    }

    /// The overrides file of an environment, for the example.
    fn overrides(self, env: &str) -> String {
        match self {
            Scenario::Example => format!("    overrides:\n      - file: overrides/{env}.yaml\n"),
            Scenario::Workloads(_) => String::new(),
        }
    }
}

#[tokio::main]
async fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    if !measure {
        run(Scenario::Example, 1, false).await;
        return;
    }
    let mut figures = Vec::new();
    for scenario in [Scenario::Example, Scenario::Workloads(20)] {
        figures.push((scenario, run(scenario, 3, true).await));
    }
    for (scenario, (clean, faulty)) in figures {
        println!("{}", scenario.name());
        println!("  median without faults  {clean:.3?}");
        println!("  median with faults     {faulty:.3?}");
        println!("  faults / no faults     {:.2}", faulty.as_secs_f64() / clean.as_secs_f64());
    }
}

/// `runs` promotions without and `runs` with faults (alternating, or one
/// fault-free one when `!measure`); the medians.
async fn run(scenario: Scenario, runs: usize, measure: bool) -> (Duration, Duration) {
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
    let mut plan = String::from("topology: org-per-env\nenvironments:\n");
    let orgs =
        std::iter::once(STAGING).chain(targets.iter().map(|(o, t)| (o.as_str(), t.as_str())));
    let mut vars = Vec::new();
    for (n, (org, token)) in orgs.enumerate() {
        let name = if n == 0 { "staging".to_owned() } else { format!("prod{}", n - 1) };
        let registry = sim.registry_host(org).unwrap_or_default();
        let from = if n == 0 { "" } else { "    from: staging\n" };
        plan.push_str(&format!(
            "  - name: {name}\n    org: {org}\n    gvc: app\n    endpoint: {}\n    tokenEnv: TOKEN_{n}\n    registry: {registry}\n    immutableTags: false\n    readiness: {}\n{from}{}",
            sim.api_url(),
            scenario.readiness(),
            scenario.overrides(if n == 0 { "staging" } else { "prod" }),
        ));
        vars.push((format!("TOKEN_{n}"), token.to_owned()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    prepare_staging(scenario, &sim, dir.path(), &plan, &vars).await;

    let faults = FaultConfig {
        error_rate: 0.25,
        error_statuses: vec![503, 429],
        retry_after_secs: 1,
        ..FaultConfig::default()
    };
    // The faults come from a seeded sequence, restarted for each faulted
    // run: the three runs meet nearly the same faults, so their median is
    // one pattern's time. FERRY_BENCH_SEED=N gives faulted run k the seed
    // N + k instead, for independent samples (same rate, statuses and
    // Retry-After).
    let seed = std::env::var("FERRY_BENCH_SEED").ok().and_then(|s| s.parse::<u64>().ok());
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let promotions = if measure { 2 * runs } else { 1 };
    for run in 0..promotions {
        let faulty = run % 2 == 1;
        let faults = match seed {
            Some(seed) => FaultConfig { seed: seed + run as u64, ..faults.clone() },
            None => faults.clone(),
        };
        sim.set_faults(if faulty { faults } else { FaultConfig::default() });
        sim.clear_request_log();
        let target = format!("prod{run}");
        let started = Instant::now();
        let promoted = support::ferry(dir.path(), &["promote", "staging", &target, "--yes"], &vars);
        let took = started.elapsed();
        assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
        let log = sim.request_log();
        let injected = log.iter().filter(|r| r.injected).count();
        println!(
            "{} {} {target}: {took:.3?} ({} requests, {injected} faults injected)",
            scenario.name(),
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
    sim.shutdown().await;
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    };
    (median(&mut times[0]), median(&mut times[1]))
}

/// The repository, the images in staging's registry and the resources
/// running in staging, without faults.
async fn prepare_staging(
    scenario: Scenario,
    sim: &SimHandle,
    dir: &Path,
    plan: &str,
    vars: &[(&str, &str)],
) {
    let host = sim.registry_host(STAGING.0).unwrap_or_default();
    match scenario {
        Scenario::Example => {
            support::commit_example(dir, &format!("manifests:\n  path: manifests-example\n{plan}"));
            for (repository, tag) in
                [("api", "1.4.2"), ("web", "1.4.2"), ("worker", "1.4.2"), ("queue", "3.13.7")]
            {
                seed::push_demo_image(&host, STAGING.1, repository, tag)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let deployed = support::ferry(dir, &["deploy", "staging", "--yes"], vars);
            assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
        }
        Scenario::Workloads(count) => {
            let plan = format!("manifests:\n  path: manifests\n{plan}");
            support::write_repository(dir, count, "app:1.0", &plan);
            seed::push_demo_image(&host, STAGING.1, "app", "1.0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let staging = support::ferry(dir, &["render", "staging", "--output", "json"], vars);
            support::put_all(sim, STAGING.0, STAGING.1, &staging.stdout).await;
        }
    }
}
