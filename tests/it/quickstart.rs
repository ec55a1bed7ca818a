//! docs/quickstart.md, run exactly as written: every ```sh block of the
//! doc, in order, with bash, in a fresh repository holding the example
//! (so that the doc and this test cannot drift apart), and after each step
//! the images every environment runs, read from the simulator's state:
//! one release into prod, a tag edited in git, the demo image pushed,
//! deploy, two promotions, status, a rollback of prod and its history.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::promote::digest_of;
use crate::support::command::{Run, as_a_user, repo_root, run};
use crate::support::git::{TestRepo, commit_example};
use crate::support::sim::Api;
use crate::support::sim::Sim;
use ferry::sim::SimConfig;

const ENVIRONMENTS: [(&str, &str); 3] =
    [("dev", "acme-dev"), ("staging", "acme-staging"), ("prod", "acme-prod")];

/// The command each block of the doc must hold, in order: a doc
/// reordered or cut is a failure here, not a silently skipped check.
const STEPS: [&str; 9] = [
    "ferry promote staging prod --sim -f promotion.example.yaml",
    "git commit -am",
    "ferry sim image push dev worker:1.4.3 --sim -f promotion.example.yaml",
    "ferry deploy dev --sim -f promotion.example.yaml",
    "ferry promote dev staging --sim -f promotion.example.yaml",
    "ferry promote staging prod --sim -f promotion.example.yaml",
    "ferry status --sim -f promotion.example.yaml",
    "ferry rollback prod --sim -f promotion.example.yaml",
    "ferry history prod --sim -f promotion.example.yaml",
];

/// The ```sh blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// One block run by bash in `dir`, stopping at the first failing command,
/// with the `ferry` under test first on the PATH.
fn run_block(dir: &Path, block: &str) -> Run {
    let ferry = Path::new(env!("CARGO_BIN_EXE_ferry"));
    let bin = ferry.parent().expect("the binary's folder");
    let path = std::env::join_paths(
        std::iter::once(bin.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let mut bash = as_a_user(Path::new("bash"), dir);
    run(bash
        .args(["-euo", "pipefail", "-c", block])
        .env("PATH", path)
        .env("USER", "ci-user")
        .env("HOSTNAME", "ci-host")
        .env("GIT_AUTHOR_NAME", "Newcomer")
        .env("GIT_AUTHOR_EMAIL", "newcomer@ferry.invalid")
        .env("GIT_COMMITTER_NAME", "Newcomer")
        .env("GIT_COMMITTER_EMAIL", "newcomer@ferry.invalid"))
}

/// The image each workload of each environment runs, read from the
/// embedded simulator's state (between two commands, nothing else runs).
pub(crate) async fn running(dir: &Path) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut config = SimConfig::new().with_state_dir(dir.join(".ferry/sim"));
    for (_, org) in ENVIRONMENTS {
        config = config.with_org(org, ferry::sim::embedded::token_for(org));
    }
    let sim = Sim::start(config).await;
    let mut all = BTreeMap::new();
    for (env, org) in ENVIRONMENTS {
        let api = Api::new(&sim, Some(&ferry::sim::embedded::token_for(org)));
        let images = crate::promote::images_of(&api, org, "app").await;
        all.insert(env, images.into_iter().collect());
    }
    sim.shutdown().await;
    all
}

/// The digest `env`'s worker runs, and that it is pinned in `env`'s own
/// registry.
fn worker(state: &BTreeMap<&str, BTreeMap<String, String>>, env: &str) -> String {
    let org = ENVIRONMENTS.iter().find(|(name, _)| *name == env).map_or("", |(_, org)| org);
    let image = state[env].get("worker").cloned().unwrap_or_default();
    assert!(image.starts_with(&format!("/org/{org}/image/worker@sha256:")), "{env}: {image}");
    digest_of(&image).to_owned()
}

/// Every workload but the worker runs what it ran before.
fn others_unchanged(
    before: &BTreeMap<&str, BTreeMap<String, String>>,
    after: &BTreeMap<&str, BTreeMap<String, String>>,
) {
    for (env, images) in before {
        for (workload, image) in images.iter().filter(|(w, _)| *w != "worker") {
            assert_eq!(after[env].get(workload), Some(image), "{env}'s {workload}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_runs_as_written_and_every_step_does_what_it_says() {
    let doc = std::fs::read_to_string(repo_root().join("docs/quickstart.md")).expect("the doc");
    let blocks = sh_blocks(&doc);
    assert_eq!(blocks.len(), STEPS.len(), "{blocks:#?}");
    for (block, step) in blocks.iter().zip(STEPS) {
        assert!(block.contains(step), "the doc's step `{step}` is now:\n{block}");
    }
    // A fresh clone: the example and its plan file, committed.
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    let repo = TestRepo::init(dir.path());
    commit_example(&repo, &[("promotion.example.yaml", &plan)]);
    let step = |index: usize| {
        let run = run_block(dir.path(), &blocks[index]);
        assert_eq!(run.code, Some(0), "{}\n{}\n{}", blocks[index], run.stdout, run.stderr);
        run
    };

    // 1. The simulator is prepared (dev deployed, staging promoted), and
    // prod gets its first release: the same worker everywhere.
    let first = step(0);
    assert!(first.stderr.contains("Preparing the simulator"), "{}", first.stderr);
    assert!(first.stdout.contains("Released prod revision 1 from staging"), "{}", first.stdout);
    let at_start = running(dir.path()).await;
    let old = worker(&at_start, "dev");
    for env in ["staging", "prod"] {
        assert_eq!(worker(&at_start, env), old, "{env}");
    }

    // 2. The tag edited and committed: nothing runs differently yet.
    step(1);
    let text = std::fs::read_to_string(dir.path().join("manifests-example/worker.yaml"))
        .expect("worker.yaml");
    assert!(text.contains("//image/worker:1.4.3"), "{text}");
    assert_eq!(running(dir.path()).await, at_start);

    // 3. The demo image pushed into dev's registry, under a new digest.
    let pushed = step(2);
    let new = pushed.stdout.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(new.starts_with("sha256:") && new != old, "{}", pushed.stdout);
    assert_eq!(running(dir.path()).await, at_start, "a push releases nothing");

    // 4-6. Deployed into dev, then promoted one environment at a time.
    let mut before = at_start;
    for (index, env, revision) in [(3, "dev", 2), (4, "staging", 2), (5, "prod", 2)] {
        let run = step(index);
        let released = format!("Released {env} revision {revision}");
        assert!(run.stdout.contains(&released), "{released}: {}", run.stdout);
        let after = running(dir.path()).await;
        let order = ["dev", "staging", "prod"];
        let reached = order.iter().position(|e| *e == env).unwrap_or(0);
        for (position, each) in order.iter().enumerate() {
            let expected = if position <= reached { &new } else { &old };
            assert_eq!(&worker(&after, each), expected, "{each} after step {}", index + 1);
        }
        others_unchanged(&before, &after);
        before = after;
    }

    // 7. Status: the new worker in every environment, nothing to promote.
    let status = step(6);
    let short = format!("worker@{}", &new["sha256:".len().."sha256:".len() + 12]);
    assert_eq!(status.stdout.matches(&short).count(), 3, "{short}:\n{}", status.stdout);
    for edge in
        ["git -> dev: no changes", "dev -> staging: no changes", "staging -> prod: no changes"]
    {
        assert!(status.stdout.contains(edge), "{edge}:\n{}", status.stdout);
    }

    // 8. The rollback: prod runs the old worker again, by digest, and
    // nothing else of any environment changed.
    let rollback = step(7);
    let said = "Rolled prod back to the images of release 1, recorded as revision 3";
    assert!(rollback.stdout.contains(said), "{}", rollback.stdout);
    let after = running(dir.path()).await;
    assert_eq!(worker(&after, "prod"), old);
    assert_eq!(worker(&after, "staging"), new);
    assert_eq!(worker(&after, "dev"), new);
    others_unchanged(&before, &after);

    // 9. prod's history: the rollback, the promotion it undid, the first.
    let history = step(8);
    assert!(history.stdout.contains("rollback to 1"), "{}", history.stdout);
    let json = run_block(dir.path(), &format!("{} --output json", STEPS[8]));
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let releases: Value = serde_json::from_str(&json.stdout).expect("history JSON");
    let listed: Vec<(i64, &str, &str)> = releases["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap_or_default();
            (r["revision"].as_i64().unwrap_or(0), text("kind"), text("outcome"))
        })
        .collect();
    assert_eq!(
        listed,
        [(3, "rollback", "succeeded"), (2, "promote", "succeeded"), (1, "promote", "succeeded")]
    );
    let worker_digest = |release: &Value| {
        release["images"].as_array().and_then(|images| {
            images.iter().find(|i| i["workload"] == "worker").map(|i| i["digest"].clone())
        })
    };
    assert_eq!(releases["releases"][0]["message"], "rollback to 1");
    assert_eq!(worker_digest(&releases["releases"][0]), Some(Value::from(old.clone())));
    assert_eq!(worker_digest(&releases["releases"][1]), Some(Value::from(new.clone())));
    assert_eq!(worker_digest(&releases["releases"][2]), Some(Value::from(old)));
}
