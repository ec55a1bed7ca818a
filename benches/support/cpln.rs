//! The real `cpln` CLI from `.tools/` (installed by scripts/setup.sh), the
//! peer of the promotion benchmarks, and the setup those share. Included
//! with `#[path]` by the benchmarks that run it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferry::sim::{SimConfig, SimHandle, Simulator};

/// A simulator with `orgs` whose rollouts take `rollout`, and a scratch
/// directory.
pub async fn start(orgs: &[(&str, &str)], rollout: Duration) -> (SimHandle, tempfile::TempDir) {
    let mut config = SimConfig::new().with_rollout_delay(rollout);
    for (org, token) in orgs {
        config = config.with_org(*org, *token);
    }
    let sim = Simulator::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    (sim, dir)
}

/// `cpln apply -f FILE --gvc app --ready` into `org` at `endpoint`; whether
/// it succeeded. `scratch` holds its home directory.
pub fn apply_ready(
    endpoint: &str,
    (org, token): (&str, &str),
    file: &Path,
    scratch: &Path,
) -> bool {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/node_modules/.bin/cpln");
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{e}"));
    Command::new("timeout")
        .arg("600")
        .arg(binary)
        .args(["apply", "-f"])
        .arg(file)
        .args(["--gvc", "app", "--ready"])
        .env("HOME", &home)
        .env("CPLN_ENDPOINT", endpoint)
        .env("CPLN_TOKEN", token)
        .env("CPLN_ORG", org)
        .output()
        .is_ok_and(|o| o.status.success())
}
