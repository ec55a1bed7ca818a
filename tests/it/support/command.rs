//! Runs the `ferry` binary the way a user does.

use std::path::Path;
use std::process::Command;

/// What a run of `ferry` produced.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferry ARGS` in `dir`, with no colour and no inherited Ferry or
/// Control Plane settings.
pub fn ferry(dir: &Path, args: &[&str]) -> Run {
    ferry_with(dir, args, &[])
}

/// The same, with environment variables set (endpoints, tokens).
pub fn ferry_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FERRY_FILE")
        .env_remove("FERRY_LOG")
        .env_remove("CPLN_TOKEN")
        .env_remove("CPLN_ORG")
        .env_remove("CPLN_ENDPOINT")
        .envs(vars.iter().copied())
        .output()
        .expect("the ferry binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The repository root (where promotion.example.yaml lives).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
