//! Bad input never reaches an environment: tokens that cannot be sent.

use std::time::Duration;

use ferry::sim::{SimConfig, Simulator};

use crate::support::command::{ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_token_is_an_input_error_before_any_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = TestRepo::init(dir.path());
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    commit_example(&repo, &[("promotion.yaml", &plan)]);
    let config = SimConfig::new()
        .with_org("acme-staging", "staging-token-input")
        .with_org("acme-prod", "prod-token-input")
        .with_rollout_delay(Duration::from_millis(50));
    let sim = Simulator::start(config).await.expect("simulator starts");
    let endpoint = sim.api_url();
    let cases = [
        ("prod-token\ninput", "holds more than one line"),
        ("prod token", "contains a space"),
        ("\"prod-token-input\u{2019}", "not visible ASCII"),
        ("   ", "is empty"),
    ];
    for (token, why) in cases {
        sim.clear_request_log();
        let vars = [
            ("CPLN_ENDPOINT", endpoint.as_str()),
            ("CPLN_TOKEN_STAGING", "staging-token-input"),
            ("CPLN_TOKEN_PROD", token),
        ];
        let run = ferry_with(dir.path(), &["plan", "prod", "--from", "staging"], &vars);
        assert_eq!(run.code, Some(1), "{token:?}: {}", run.stderr);
        assert!(run.stderr.contains("ferry::api::malformed_token"), "{token:?}: {}", run.stderr);
        assert!(run.stderr.contains("CPLN_TOKEN_PROD"), "{}", run.stderr);
        assert!(run.stderr.contains(why), "{token:?}: {}", run.stderr);
        assert!(!run.stderr.contains("prod-token") && !run.stderr.contains("prod token"));
        // Never sent, so never retried: prod's org saw no request at all.
        let to_prod: Vec<_> = sim
            .request_log()
            .into_iter()
            .filter(|r| r.org.as_deref() == Some("acme-prod"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(to_prod.is_empty(), "{token:?}: {to_prod:?}");
    }
}
