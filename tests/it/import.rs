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

/// Payloads of tests/valid/realistic/manifests/secrets.yaml.
const CORPUS_PAYLOADS: &[&str] = &[
    "c2Vzc2lvbi1rZXktZm9yLXRlc3Rz",
    "plain text is fine too",
    "MIIBszCCAVmgAwIBAgIUX2Zha2Ut",
    "b3BlbnNzaC1rZXktdjEA",
    "not-a-real-password",
    "c2hvcDpub3QtcmVhbA==",
    "wJalrXUtnFEMI",
    "not-a-real-function-code",
    "clientSecret",
    "private_key_id",
];

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_cpln_apply_created_from_the_valid_corpus_round_trips() {
    use std::time::Duration;

    use crate::support::cpln::{Cpln, apply_valid_corpus};
    use ferry::sim::{SimConfig, Simulator};

    let config = SimConfig::new()
        .with_org("acme-staging", "staging-token")
        .with_rollout_delay(Duration::from_millis(100));
    let sim = Simulator::start(config).await.expect("simulator starts");
    apply_valid_corpus(&Cpln::new(&sim, "acme-staging", "staging-token")).await;

    // The corpus's own-registry images, pushed as CI would have.
    let host = sim.registry_host("acme-staging").expect("registry");
    for (repository, tag) in [("shop-api", "1.4.2"), ("checkout", "7.0.1")] {
        ferry::sim::seed::push_demo_image(&host, "staging-token", repository, tag)
            .await
            .expect("image pushed");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = sim.api_url();
    let plan = format!(
        "manifests:\n  path: imported\ntopology: org-per-env\nenvironments:\n  - name: staging\n    org: acme-staging\n    gvc: app\n    endpoint: {endpoint}\n    tokenEnv: TOKEN_STAGING\n"
    );
    let repo = TestRepo::init(dir.path());
    repo.write(&[("ferry.yaml", &plan)]);
    let vars = [("TOKEN_STAGING", "staging-token")];
    let dir = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || ferry_with(&dir, &["import", "staging", "-f", "ferry.yaml"], &vars)
    })
    .await
    .expect("import runs");
    assert_ok(&run, "import");
    let written = files(&dir.join("imported"));
    let kinds: std::collections::BTreeSet<&str> =
        written.iter().filter_map(|(path, _)| path.split('/').next()).collect();
    for kind in ["agent", "cloudaccount", "domain", "gvc", "secret", "volumeset", "workload"] {
        assert!(kinds.contains(kind), "{kind} imported: {kinds:?}\n{}", run.stdout);
    }
    assert_no_payloads(&dir.join("imported"), CORPUS_PAYLOADS);
    assert!(dir.join("promotion.yaml").is_file(), "the skeleton beside the plan file");

    repo.commit_all("import staging");
    let run = tokio::task::spawn_blocking(move || {
        ferry_with(&dir, &["plan", "staging", "-f", "ferry.yaml", "--output", "json"], &vars)
    })
    .await
    .expect("plan runs");
    let plan: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    // Nothing differs but what Ferry adds to what it manages: its tag (these
    // resources were not created by Ferry), and, as staging is the first
    // environment (a deploy), its own-registry tags pinned by digest.
    let resources = plan["resources"].as_array().expect("resources");
    assert!(resources.len() >= written.len(), "{plan:#}");
    let ferrys_own = |change: &&serde_json::Value| {
        let pinned = change["path"].as_str().is_some_and(|p| p.ends_with("].image"))
            && change["after"].as_str().zip(change["before"].as_str()).is_some_and(
                |(after, before)| {
                    let repository = before.rsplit_once(':').map_or(before, |(r, _)| r);
                    after.starts_with(&format!("{repository}@sha256:"))
                        || after.starts_with(&format!("{before}@sha256:"))
                },
            );
        pinned || change["path"] == format!("tags.{}", ferry::plan::MANAGED_TAG)
    };
    for resource in resources {
        let changes: Vec<&serde_json::Value> = resource["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| !ferrys_own(c))
            .collect();
        assert!(
            changes.is_empty() && resource["action"] != "create" && resource["action"] != "delete",
            "{}: {changes:#?}",
            resource["id"]
        );
    }
    assert_eq!(plan["summary"]["create"], 0, "{plan:#}");
}
