//! The embedded simulator's first use, as a newcomer meets it on a fresh
//! clone: it says what it set up in each environment and why (exactly the
//! lines docs/quickstart.md and docs/simulator.md show), sets up only what
//! the command needs, keeps `.ferry/` out of `git status`, and `ferry sim
//! reset` starts over.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::command::{Run, as_a_user, ferry_with, repo_root, run};
use crate::support::git::{TestRepo, commit_example};

/// A fresh clone, as the quickstart test makes it: the example and its
/// plan file, committed. Returns HEAD's short commit.
fn fresh_clone(dir: &Path) -> String {
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    let repo = TestRepo::init(dir);
    commit_example(&repo, &[("promotion.example.yaml", &plan)]);
    repo.head().to_string()[..8].to_owned()
}

/// `ferry ARGS --sim -f promotion.example.yaml`, as the quickstart runs it.
fn sim(dir: &Path, args: &[&str]) -> Run {
    let all = [args, &["--sim", "-f", "promotion.example.yaml"][..]].concat();
    ferry_with(dir, &all, &[("USER", "ci-user"), ("HOSTNAME", "ci-host")])
}

/// `git status --porcelain`, untracked files listed one by one.
fn git_status(dir: &Path) -> String {
    let status = run(as_a_user(Path::new("git"), dir).args([
        "status",
        "--porcelain",
        "--untracked-files=all",
    ]));
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    status.stdout
}

/// The ```text blocks of a doc that start with the first-use heading: what
/// a first `--sim` run prints on stderr.
fn first_use_blocks(doc: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo_root().join(doc)).expect("the doc");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line) {
            (None, "```text") => current = Some(Vec::new()),
            (Some(block), "```") => {
                if block.first().is_some_and(|l| l.starts_with("Preparing the simulator")) {
                    blocks.push(std::mem::take(block));
                }
                current = None;
            }
            (Some(block), line) => block.push(line.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

/// Every line of `block` (the doc's commit replaced by this clone's) is a
/// line of `stderr`.
fn says(stderr: &str, block: &[String], commit: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    for line in block {
        let line = line.replace("ccff5748", commit);
        assert!(lines.contains(&line.as_str()), "the doc's line\n{line}\nis not in\n{stderr}");
    }
}

/// How many workloads each environment runs (the quickstart test's
/// reading of the embedded simulator's state).
async fn workloads(dir: &Path) -> BTreeMap<&'static str, usize> {
    crate::quickstart::running(dir).await.into_iter().map(|(env, w)| (env, w.len())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_run_says_what_it_set_up_and_deploy_dev_then_does_what_the_quickstart_says() {
    let quickstart = std::fs::read_to_string(repo_root().join("docs/quickstart.md")).expect("doc");
    // The doc's words, whatever their line breaks.
    let quickstart = quickstart.split_whitespace().collect::<Vec<_>>().join(" ");
    let dir = tempfile::tempdir().expect("temp dir");
    let commit = fresh_clone(dir.path());

    // The quickstart's first command: dev and staging set up so that prod
    // has a release to promote from, each line exactly as the doc shows it.
    let first = sim(dir.path(), &["promote", "staging", "prod"]);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let [promote_first] = &first_use_blocks("docs/quickstart.md")[..] else {
        panic!("docs/quickstart.md shows one first run")
    };
    says(&first.stderr, promote_first, &commit);
    assert_eq!(promote_first.len(), 4, "a heading and one line per environment");
    assert!(first.stdout.contains("Released prod revision 1 from staging"), "{}", first.stdout);

    // Nothing of `.ferry/` in git's eyes: it carries its own .gitignore.
    assert_eq!(git_status(dir.path()), "", "git status after the first run");
    let ignore = std::fs::read_to_string(dir.path().join(".ferry/.gitignore")).expect("ignore");
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");

    // `ferry deploy dev --sim` right after it: as the quickstart says,
    // nothing to do, since dev runs HEAD already; no second set-up.
    let deploy = sim(dir.path(), &["deploy", "dev"]);
    assert_eq!(deploy.code, Some(0), "{}\n{}", deploy.stdout, deploy.stderr);
    for (said, text) in [
        ("No changes. dev matches the manifests.", &deploy.stdout),
        ("dev already runs this release; nothing to do", &deploy.stderr),
    ] {
        assert!(text.contains(said), "{said}:\n{text}");
        assert!(quickstart.contains(&format!("`{said}")), "the quickstart says `{said}`");
    }
    assert!(!deploy.stderr.contains("Preparing the simulator"), "{}", deploy.stderr);
    let before_reset = workloads(dir.path()).await;
    assert_eq!(before_reset, BTreeMap::from([("dev", 5), ("prod", 5), ("staging", 5)]));

    // `ferry sim reset` removes the state, says what it held, keeps the
    // .gitignore; a second reset has nothing to remove.
    let reset = ferry_with(dir.path(), &["sim", "reset", "-f", "promotion.example.yaml"], &[]);
    assert_eq!(reset.code, Some(0), "{}", reset.stderr);
    assert!(
        reset.stdout.starts_with(
            "Removed the embedded simulator's state in .ferry/sim: orgs acme-dev, acme-prod, acme-staging with "
        ) && reset.stdout.ends_with(" image tags. The next --sim command prepares it again.\n"),
        "{}",
        reset.stdout
    );
    assert!(!dir.path().join(".ferry/sim").exists(), "the state is gone");
    assert!(dir.path().join(".ferry/.gitignore").is_file(), "the .gitignore stays");
    assert_eq!(git_status(dir.path()), "");
    let again =
        ferry_with(dir.path(), &["sim", "reset", "--sim", "-f", "promotion.example.yaml"], &[]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(
        again.stderr.contains("there is no simulator state to remove: .ferry/sim does not exist"),
        "{}",
        again.stderr
    );
    assert!(!dir.path().join(".ferry/sim").exists(), "reset --sim starts no simulator");

    // The next run starts over: a first `ferry deploy dev --sim` gets the
    // images only, and deploys into an empty dev, as the docs say.
    let fresh = sim(dir.path(), &["deploy", "dev"]);
    assert_eq!(fresh.code, Some(0), "{}\n{}", fresh.stdout, fresh.stderr);
    let blocks = first_use_blocks("docs/simulator.md");
    let [_, deploy_first] = &blocks[..] else { panic!("docs/simulator.md shows two first runs") };
    says(&fresh.stderr, deploy_first, &commit);
    assert!(
        fresh.stdout.contains(
            "Plan: 13 to create, 0 to update, 0 to replace, 0 to delete, 0 images to copy."
        ),
        "{}",
        fresh.stdout
    );
    let released = format!("Released dev revision 1 at git {commit}: 13 resources changed");
    assert!(fresh.stdout.contains(&released), "{released}:\n{}", fresh.stdout);
    assert!(quickstart.contains("created the example's 13 resources in dev as its release 1"));
    let after = workloads(dir.path()).await;
    assert_eq!(after, BTreeMap::from([("dev", 5), ("prod", 0), ("staging", 0)]));
    assert_eq!(git_status(dir.path()), "");
}

#[test]
fn sim_reset_leaves_a_folder_that_is_not_the_simulators_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    fresh_clone(dir.path());
    let mine = dir.path().join(".ferry/sim/notes.txt");
    std::fs::create_dir_all(mine.parent().expect("a folder")).expect("folders");
    std::fs::write(&mine, "mine").expect("a file of the user's");
    let reset = ferry_with(dir.path(), &["sim", "reset", "-f", "promotion.example.yaml"], &[]);
    assert_eq!(reset.code, Some(1), "{}", reset.stderr);
    // (miette wraps the line: its two ends.)
    for said in [".ferry/sim does not hold the embedded simulator's state", "left as it is"] {
        assert!(reset.stderr.contains(said), "{said}:\n{}", reset.stderr);
    }
    assert!(mine.is_file(), "nothing removed");
}
