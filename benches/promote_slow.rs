//! One slow workload does not hold back the others: 20 workloads use an
//! identity, written in the same wave as a workload `slow` whose rollout
//! takes 20 s and that nothing depends on. A wave barrier waits for
//! `slow` before the 20; Ferry schedules by dependency, so its total is
//! about max(slow, rest), not slow + rest. Measured in the same run, with
//! 50 ms added to every request and the default readiness (5 s, three
//! checks):
//!
//! - Ferry `promote` with `slow` taking 20 s, and again with `slow` as
//!   fast as the rest (the rest alone);
//! - the wave-barrier peer: the real `cpln apply --ready`, once per wave
//!   (GVC, identity and `slow`; then the 20), into a third org.
//!
//! `cargo bench --bench promote_slow` measures; under `cargo test` it only
//! checks the setup (3 workloads, no latency, Ferry only).

#[path = "support/cpln.rs"]
mod cpln;
mod support;

use std::time::{Duration, Instant};

use ferry::sim::seed;

const ORGS: [(&str, &str); 4] = [
    ("slow-staging", "staging-token"),
    ("slow-prod", "prod-token"),
    ("slow-rest", "rest-token"),
    ("slow-cpln", "cpln-token"),
];
const NAMES: [&str; 4] = ["staging", "prod", "rest", "cpln"];
const SLOW: Duration = Duration::from_secs(20);
const ROLLOUT: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (workloads, latency) =
        if measure { (20, Duration::from_millis(50)) } else { (3, Duration::ZERO) };
    let (sim, dir) = cpln::start(&ORGS, ROLLOUT).await;
    let mut plan =
        String::from("manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n");
    for (name, (org, _)) in NAMES.iter().zip(ORGS) {
        let registry = sim.registry_host(org).unwrap_or_default();
        let from = if *name == "staging" { "" } else { "    from: staging\n" };
        let readiness =
            if measure { "" } else { "    readiness: {interval: 200ms, consecutiveChecks: 2}\n" };
        plan.push_str(&format!(
            "  - name: {name}\n    org: {org}\n    gvc: app\n    endpoint: {}\n    tokenEnv: TOKEN_{}\n    registry: {registry}\n    immutableTags: false\n{readiness}{from}",
            sim.api_url(),
            name.to_uppercase()
        ));
    }
    let mut manifests =
        format!("{}---\nkind: identity\nname: shared\n---\n{}", support::GVC, workload("slow", ""));
    for n in 0..workloads {
        manifests.push_str("---\n");
        manifests
            .push_str(&workload(&format!("worker-{n}"), "  identityLink: //identity/shared\n"));
    }
    support::commit_repository(dir.path(), &manifests, &plan);
    let tokens: Vec<(String, &str)> = NAMES
        .iter()
        .zip(ORGS)
        .map(|(n, (_, t))| (format!("TOKEN_{}", n.to_uppercase()), t))
        .collect();
    let vars: Vec<(&str, &str)> = tokens.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    for (org, token) in [ORGS[0], ORGS[3]] {
        let host = sim.registry_host(org).unwrap_or_default();
        seed::push_demo_image(&host, token, "app", "1.0").await.unwrap_or_else(|e| panic!("{e}"));
    }
    let staging = support::ferry(dir.path(), &["render", "staging", "--output", "json"], &vars);
    support::put_all(&sim, ORGS[0].0, ORGS[0].1, &staging.stdout).await;

    sim.set_latency(latency);
    sim.set_workload_delay("slow", if measure { SLOW } else { Duration::from_secs(1) });
    let slow = promote(&sim, dir.path(), "prod", &vars);
    println!("workloads              {workloads} + slow ({SLOW:?} when measured)");
    println!("latency per request    {latency:?}");
    println!("ferry, slow + rest     {slow:.3?}");
    if !measure {
        return;
    }
    sim.set_workload_delay("slow", ROLLOUT);
    let rest = promote(&sim, dir.path(), "rest", &vars);
    println!("ferry, rest alone      {rest:.3?}");

    // The peer: one `cpln apply --ready` per wave, the second after the first.
    sim.set_workload_delay("slow", SLOW);
    let rendered = support::ferry(dir.path(), &["render", "cpln", "--from", "staging"], &vars);
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let text = String::from_utf8_lossy(&rendered.stdout);
    let (mut first, mut second) = (String::new(), String::new());
    for document in text.split("\n---\n").map(|d| d.trim_start_matches("---\n")) {
        let wave = if document.contains("name: worker-") { &mut second } else { &mut first };
        wave.push_str("---\n");
        wave.push_str(document.trim_end());
        wave.push('\n');
    }
    let started = Instant::now();
    let mut waves = Vec::new();
    for (n, wave) in [first, second].iter().enumerate() {
        let file = dir.path().join(format!("wave-{n}.yaml"));
        std::fs::write(&file, wave).unwrap_or_else(|e| panic!("{e}"));
        let wave_started = Instant::now();
        assert!(
            cpln::apply_ready(&sim.api_url(), ORGS[3], &file, dir.path()),
            "cpln apply --ready of wave {n} failed"
        );
        waves.push(wave_started.elapsed());
    }
    let peer = started.elapsed();
    println!("cpln --ready per wave  {peer:.3?} (waves {:.3?}, {:.3?})", waves[0], waves[1]);
    println!("ferry / cpln           {:.2}", slow.as_secs_f64() / peer.as_secs_f64());
}

/// A standard workload running `app:1.0`, with `extra` spec lines.
fn workload(name: &str, extra: &str) -> String {
    format!(
        "kind: workload\nname: {name}\nspec:\n  type: standard\n{extra}  containers:\n    - name: main\n      image: //image/app:1.0\n      cpu: 100m\n      memory: 128Mi\n"
    )
}

/// `ferry promote staging TARGET --yes`: how long it took (it must succeed).
fn promote(
    sim: &ferry::sim::SimHandle,
    dir: &std::path::Path,
    target: &str,
    vars: &[(&str, &str)],
) -> Duration {
    sim.clear_request_log();
    let started = Instant::now();
    let promoted = support::ferry(dir, &["promote", "staging", target, "--yes"], vars);
    let took = started.elapsed();
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
    took
}
