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
    let mut command = as_a_user(Path::new(env!("CARGO_BIN_EXE_ferry")), dir);
    run(command.args(args).envs(vars.iter().copied()))
}

/// `program` to run in `dir` with no colour and no inherited Ferry or
/// Control Plane settings.
pub fn as_a_user(program: &Path, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FERRY_FILE")
        .env_remove("FERRY_LOG")
        .env_remove("CPLN_TOKEN")
        .env_remove("CPLN_ORG")
        .env_remove("CPLN_ENDPOINT");
    command
}

/// Runs `command` to its end; what it printed. A simulator it starts
/// (`ferry --sim`) logs its requests to a file of this run's, and every
/// request Ferry sent it must be in docs/control-plane-api.md.
pub fn run(command: &mut Command) -> Run {
    let log = tempfile::tempdir().expect("a folder for the request log");
    let file = log.path().join("requests.jsonl");
    let output =
        command.env(ferry::sim::REQUEST_LOG_VAR, &file).output().expect("the command runs");
    super::api_table::check(&super::api_table::read_log(&file), "a `ferry --sim` run");
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

/// Output as one line: miette's wrapping (and its `|` margin) undone, so
/// that a message can be matched whatever its line breaks.
pub fn flat(text: &str) -> String {
    text.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ")
}
