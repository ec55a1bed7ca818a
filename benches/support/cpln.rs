//! The real `cpln` CLI from `.tools/` (installed by scripts/setup.sh), the
//! peer of the promotion benchmarks. Included with `#[path]` by the
//! benchmarks that run it.

use std::path::Path;
use std::process::Command;

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
