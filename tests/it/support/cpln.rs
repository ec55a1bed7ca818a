//! The real `cpln` CLI (npm `@controlplane/cli`), installed into `.tools/`
//! by `scripts/setup.sh`, run against a simulator with a scratch HOME.
//!
//! If it is not installed and cannot be, tests that need it fail: they
//! never skip silently.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use ferry::sim::SimHandle;

static INSTALL: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes the CLI's sleeps `FERRY_TEST_CLOCK_FACTOR` times shorter: its
/// `--ready` wait polls every 5 s for up to 5 minutes, too slow to watch
/// fail in a test. Nothing else in the CLI changes.
const FAST_CLOCK: &str = r#"
const factor = Number(process.env.FERRY_TEST_CLOCK_FACTOR || '1');
const original = global.setTimeout;
global.setTimeout = (fn, ms, ...args) => original(fn, Math.ceil((ms || 0) / factor), ...args);
"#;

/// The `cpln` executable, installing it on first use.
pub fn binary() -> PathBuf {
    let mut installed = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = &*installed {
        return path.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(".tools/node_modules/.bin/cpln");
    if !path.exists() {
        let status = std::process::Command::new(root.join("scripts/setup.sh")).status();
        assert!(
            status.is_ok_and(|s| s.success()) && path.exists(),
            "the cpln CLI is not installed and scripts/setup.sh could not install it (npm registry unreachable?)"
        );
    }
    *installed = Some(path.clone());
    path
}

/// A `cpln` bound to one simulator, org and token.
pub struct Cpln {
    endpoint: String,
    org: String,
    token: String,
    home: tempfile::TempDir,
    clock_factor: u32,
}

impl Cpln {
    pub fn new(sim: &SimHandle, org: &str, token: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("fast-clock.js"), FAST_CLOCK).unwrap();
        Self {
            endpoint: sim.api_url(),
            org: org.into(),
            token: token.into(),
            home,
            clock_factor: 1,
        }
    }

    /// Runs the CLI's timers `factor` times faster (see [`FAST_CLOCK`]).
    pub fn fast_clock(mut self, factor: u32) -> Self {
        self.clock_factor = factor;
        self
    }

    /// Runs `cpln ARGS`, killed after `limit` (it retries forever against
    /// a dead endpoint).
    pub async fn run(&self, args: &[&str], limit: Duration) -> Output {
        let mut command = tokio::process::Command::new(binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("CPLN_ENDPOINT", &self.endpoint)
            .env("CPLN_TOKEN", &self.token)
            .env("CPLN_ORG", &self.org)
            .env("NO_COLOR", "1")
            .env("FERRY_TEST_CLOCK_FACTOR", self.clock_factor.to_string())
            .env(
                "NODE_OPTIONS",
                format!("--require {}", self.home.path().join("fast-clock.js").display()),
            )
            .kill_on_drop(true);
        let output = tokio::time::timeout(limit, command.output()).await;
        let output =
            output.unwrap_or_else(|_| panic!("cpln {args:?} did not finish within {limit:?}"));
        output.expect("cpln runs")
    }

    /// Runs and asserts success, returning stdout.
    pub async fn ok(&self, args: &[&str], limit: Duration) -> String {
        let output = self.run(args, limit).await;
        assert!(output.status.success(), "cpln {args:?} failed: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Applies every folder of the valid corpus (tests/valid/*/manifests) with
/// `cpln apply --gvc app`, asserting success; each folder with what the
/// CLI printed.
pub async fn apply_valid_corpus(cpln: &Cpln) -> Vec<(PathBuf, String)> {
    let mut printed = Vec::new();
    for folder in crate::valid::folders() {
        let manifests = folder.join("manifests");
        let output = cpln
            .run(
                &["apply", "-f", manifests.to_str().unwrap(), "--gvc", "app"],
                Duration::from_secs(120),
            )
            .await;
        assert!(output.status.success(), "{}: {}", folder.display(), describe(&output));
        printed.push((folder, String::from_utf8_lossy(&output.stdout).into_owned()));
    }
    printed
}
