//! Manifests are read from git at a revision, never from the work tree
//! (unless --worktree), in normal and bare repositories.

use std::path::Path;

use crate::support::command::ferry;
use crate::support::git::TestRepo;

const PLAN: &str = "manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n  - name: dev\n    org: acme-dev\n    gvc: app\n    tokenEnv: CPLN_TOKEN_DEV\n";

fn secret(name: &str) -> String {
    format!("kind: secret\nname: {name}\ntype: opaque\ndata:\n  payload: x\n")
}

/// The resource names `ferry graph` sees, in wave order.
fn resources(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["graph", "--format", "json"];
    args.extend(extra);
    let run = ferry(dir, &args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let graph: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON graph");
    let mut names: Vec<String> = graph["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w.as_array().into_iter().flatten())
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// One repository with a tag (v1: secret a), a branch (feature: a, b), main
/// (a, c) and uncommitted work (a, d).
fn history(dir: &Path) -> (TestRepo, git2::Oid, git2::Oid) {
    let repo = TestRepo::init(dir);
    repo.write(&[("promotion.yaml", PLAN), ("manifests/a.yaml", &secret("aaa"))]);
    let v1 = repo.commit_all("v1");
    repo.tag("v1", v1);
    repo.write(&[("manifests/b.yaml", &secret("bbb"))]);
    let feature = repo.commit_all("feature");
    repo.branch("feature", feature);
    repo.remove("manifests/b.yaml");
    repo.write(&[("manifests/c.yaml", &secret("ccc"))]);
    repo.commit_all("main");
    repo.remove("manifests/c.yaml");
    repo.write(&[("manifests/d.yaml", &secret("ddd"))]);
    (repo, v1, feature)
}

#[test]
fn tags_branches_and_shas_give_that_revision_even_when_the_work_tree_differs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (repo, v1, feature) = history(dir.path());
    assert_eq!(resources(dir.path(), &["--ref", "v1"]), ["secret/aaa"]);
    assert_eq!(resources(dir.path(), &["--ref", "feature"]), ["secret/aaa", "secret/bbb"]);
    assert_eq!(
        resources(dir.path(), &["--ref", &feature.to_string()]),
        ["secret/aaa", "secret/bbb"]
    );
    assert_eq!(resources(dir.path(), &["--ref", &v1.to_string()[..10]]), ["secret/aaa"]);
    assert_eq!(resources(dir.path(), &[]), ["secret/aaa", "secret/ccc"], "default revision HEAD");
    assert_eq!(resources(dir.path(), &["--worktree"]), ["secret/aaa", "secret/ddd"]);
    // Reading never touched the work tree or the index.
    let statuses = repo.repo.statuses(None).expect("status");
    let changed: Vec<String> =
        statuses.iter().filter_map(|s| s.path().map(str::to_owned)).collect();
    assert_eq!(changed, ["manifests/c.yaml", "manifests/d.yaml"]);
    assert!(dir.path().join("manifests/d.yaml").exists());
}

#[test]
fn every_resource_remembers_file_revision_and_span() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_repo, v1, _) = history(dir.path());
    let snapshot = ferry::repo::read_git(dir.path(), "v1", "manifests").expect("read v1");
    let (resources, problems) = ferry::manifest::load_documents(&snapshot.files);
    assert!(problems.is_empty());
    let [secret] = resources.as_slice() else { panic!("one resource at v1") };
    assert_eq!(secret.revision(), Some(v1.to_string().as_str()));
    assert_eq!(secret.source.name(), format!("{}:manifests/a.yaml", &v1.to_string()[..8]));
    assert_eq!(
        secret.location().describe(),
        format!("{}:manifests/a.yaml:2:7", &v1.to_string()[..8])
    );
}

#[test]
fn bare_repositories_work() {
    let work = tempfile::tempdir().expect("temp dir");
    history(work.path());
    let bare_dir = tempfile::tempdir().expect("temp dir");
    let bare = bare_dir.path().join("manifests.git");
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(&work.path().display().to_string(), &bare)
        .expect("bare clone");
    let plans = tempfile::tempdir().expect("temp dir");
    let plan =
        PLAN.replace("manifests:\n", &format!("manifests:\n  repository: {}\n", bare.display()));
    std::fs::write(plans.path().join("promotion.yaml"), plan).expect("plan file");
    assert_eq!(resources(plans.path(), &["--ref", "v1"]), ["secret/aaa"]);
    assert_eq!(resources(plans.path(), &["--ref", "origin/feature"]), ["secret/aaa", "secret/bbb"]);
}

#[test]
fn an_unknown_revision_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    history(dir.path());
    let run = ferry(dir.path(), &["validate", "--ref", "v9"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("revision `v9` not found"), "{}", run.stderr);
}
