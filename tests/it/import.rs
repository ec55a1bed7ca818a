//! `ferry import`: what runs in an environment, written as manifests that
//! plan as "no changes" against it, with no secret value in any file; for
//! the quickstart's prod and for an environment the real `cpln apply`
//! created from the valid corpus.

use std::path::Path;

use crate::support::command::{Run, ferry, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let text = std::fs::read_to_string(&path).expect("text file");
                found.push((path.strip_prefix(dir).expect("inside").display().to_string(), text));
            }
        }
    }
    found.sort();
    found
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(run.code, Some(0), "{what}:\n{}\n{}", run.stdout, run.stderr);
}

/// Asserts that no file under `dir` holds any of `payloads`.
fn assert_no_payloads(dir: &Path, payloads: &[&str]) {
    for (path, text) in files(dir) {
        for payload in payloads {
            assert!(!text.contains(payload), "{path} holds a secret value:\n{text}");
        }
    }
}

#[test]
fn the_quickstarts_prod_imported_plans_as_no_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    let repo = TestRepo::init(dir.path());
    commit_example(&repo, &[("promotion.example.yaml", &plan), (".gitignore", ".ferry/\n")]);
    let quickstart =
        ["promote", "staging", "prod", "--sim", "-f", "promotion.example.yaml", "--yes"];
    assert_ok(&ferry(dir.path(), &quickstart), "the quickstart");

    let import = ["import", "prod", "--sim", "-f", "promotion.example.yaml", "--out", "imported"];
    let run = ferry(dir.path(), &import);
    assert_ok(&run, "import");
    let written: Vec<String> =
        files(&dir.path().join("imported")).into_iter().map(|(p, _)| p).collect();
    for expected in ["gvc/app.yaml", "workload/api.yaml", "secret/api-db.yaml", "domain/"] {
        assert!(written.iter().any(|p| p.starts_with(expected)), "{expected} in {written:?}");
    }
    assert!(
        !written.iter().any(|p| p.contains("ferry-release") || p.contains("ferry-lock")),
        "Ferry's own records are not imported: {written:?}"
    );
    assert!(
        run.stdout.contains("ferry-release-prod-1: a release record Ferry writes"),
        "{}",
        run.stdout
    );
    // The example's payloads (manifests-example/secrets.yaml) are nowhere.
    assert_no_payloads(
        &dir.path().join("imported"),
        &["postgres://shop:CHANGE_ME", "checkout-v2,wishlist", "shop-bot", "CHANGE_ME"],
    );
    let skeleton = std::fs::read_to_string(dir.path().join("promotion.yaml")).expect("skeleton");
    assert!(
        skeleton.contains("path: imported") && skeleton.contains("org: acme-prod"),
        "{skeleton}"
    );

    // A second import does not write over the first.
    let again = ferry(dir.path(), &import);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(again.stderr.contains("already holds files"), "{}", again.stderr);

    // Committed, the imported manifests plan as no changes, with the
    // example's plan file (prod promoted from staging) and with the
    // skeleton (prod alone, images as the files write them).
    repo.commit_all("import prod");
    let mut example = plan.replace("path: manifests-example", "path: imported");
    example.push('\n');
    repo.write(&[("promotion.example.yaml", &example)]);
    // (From staging, the manifests are those of staging's last release
    // unless --ref says otherwise.)
    for plan_file in ["promotion.example.yaml", "promotion.yaml"] {
        let args = ["plan", "prod", "--sim", "-f", plan_file, "--ref", "HEAD"];
        let run = ferry_with(dir.path(), &args, &[]);
        assert_ok(&run, plan_file);
        assert!(run.stdout.contains("No changes"), "{plan_file}:\n{}", run.stdout);
    }
}
