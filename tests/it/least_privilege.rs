//! A least-privilege token: a managed-resource query the token is refused
//! (403) for a kind the manifests do not use is skipped with one warning;
//! for a kind they use, the plan fails naming the permission it lacks.

use std::path::Path;
use std::time::Duration;

use ferry::sim::SimConfig;

use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};
use crate::support::sim::Sim;

const PROD: &str = "acme-prod";
const PROD_TOKEN: &str = "prod-token-least";
const STAGING_TOKEN: &str = "staging-token-least";

async fn simulator(denied: &[&str]) -> Sim {
    let mut config = SimConfig::new()
        .with_org("acme-staging", STAGING_TOKEN)
        .with_org(PROD, PROD_TOKEN)
        .with_rollout_delay(Duration::from_millis(50));
    for kind in denied {
        config = config.with_query_denied(PROD, *kind);
    }
    Sim::start(config).await
}

/// `ferry plan prod` of the example (which has no group or service
/// account, and has workloads).
fn plan(dir: &Path, sim: &Sim) -> Run {
    let repo = TestRepo::init(dir);
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml"))
        .expect("the example plan file");
    commit_example(&repo, &[("promotion.yaml", &plan)]);
    let endpoint = sim.api_url();
    let vars = [
        ("CPLN_ENDPOINT", endpoint.as_str()),
        ("CPLN_TOKEN_PROD", PROD_TOKEN),
        ("CPLN_TOKEN_STAGING", STAGING_TOKEN),
    ];
    ferry_with(dir, &["plan", "prod"], &vars)
}

fn refused(sim: &Sim) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.status == 403)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kinds_the_manifests_do_not_use_are_skipped_with_one_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = simulator(&["group", "serviceaccount"]).await;

    let run = plan(dir.path(), &sim);

    assert_eq!(run.code, Some(2), "the plan goes through: {}", run.stderr);
    let notes: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("cannot query which")).collect();
    assert_eq!(notes.len(), 1, "one warning for both kinds: {}", run.stderr);
    assert!(notes[0].contains("group, serviceaccount"), "{}", notes[0]);
    let mut seen = refused(&sim);
    seen.sort();
    assert_eq!(
        seen,
        ["POST /org/acme-prod/group/-query", "POST /org/acme-prod/serviceaccount/-query"]
    );
    let queried: Vec<String> = sim
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/-query"))
        .map(|r| r.path.clone())
        .collect();
    assert!(queried.contains(&"/org/acme-prod/workload/-query".to_owned()), "{queried:?}");
    let in_gvc = |p: &String| p.starts_with("/org/acme-prod/gvc/app/");
    assert!(!queried.iter().any(in_gvc), "org-level queries only: {queried:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_the_manifests_use_fails_naming_the_permission() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = simulator(&["workload"]).await;

    let run = plan(dir.path(), &sim);

    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read which workload resources Ferry manages"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("lacks the `view` permission on workload"), "{}", run.stderr);
    assert_eq!(refused(&sim), ["POST /org/acme-prod/workload/-query"]);
}
