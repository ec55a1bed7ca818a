//! Runs the `ferry` binary as a user would, with chosen environment
//! variables (credentials) and no Docker config from the machine.

use std::process::Command;

/// What a run of `ferry` produced.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferry ARGS` with `env` set, no colour, and `DOCKER_CONFIG`
/// pointing at an empty directory.
pub fn ferry_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let docker_config = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", docker_config.path())
        .env_remove("FERRY_LOG")
        .output()
        .expect("the ferry binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
