//! `ferry status`: every environment side by side and what promoting each
//! edge would change, on the embedded simulator after the README's
//! quickstart (step 1 of docs/quickstart.md, whose whole run
//! tests/it/quickstart.rs checks, with the same user and host); an environment that cannot be read is shown as such while
//! the others are shown.

use serde_json::{Value, json};

use crate::promote::{Pipeline, token};
use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};
use crate::support::sim::Api;
use crate::support::sim::Sim;
use ferry::sim::SimConfig;

const ORGS: [&str; 3] = ["acme-dev", "acme-staging", "acme-prod"];

/// Times and commits differ from run to run (replaced by text of the
/// same width, so that the columns stay).
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "[TIME------------------]");
    settings.add_filter(r"at [0-9a-f]{8}", "at [COMMIT]");
    settings
}

fn status(dir: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec!["status", "--sim", "-f", "promotion.example.yaml"];
    all.extend_from_slice(args);
    ferry_with(dir, &all, &[("USER", "ci-user"), ("HOSTNAME", "ci-host")])
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_quickstart_status_shows_every_environment_and_what_each_edge_would_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    let repo = TestRepo::init(dir.path());
    commit_example(&repo, &[("promotion.example.yaml", &plan)]);
    let quickstart =
        ["promote", "staging", "prod", "--sim", "-f", "promotion.example.yaml", "--yes"];
    let run = ferry_with(dir.path(), &quickstart, &[("USER", "ci-user"), ("HOSTNAME", "ci-host")]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);

    // Nothing moved yet: every edge is up to date.
    let quiet = status(dir.path(), &[]);
    assert_eq!(quiet.code, Some(0), "{}\n{}", quiet.stdout, quiet.stderr);
    for edge in
        ["git -> dev: no changes", "dev -> staging: no changes", "staging -> prod: no changes"]
    {
        assert!(quiet.stdout.contains(edge), "{edge}:\n{}", quiet.stdout);
    }

    // Then git moves on (web's API_URL), someone re-points prod's worker by
    // hand, and a promotion into staging holds its lock.
    let web = std::fs::read_to_string(repo_root().join("manifests-example/web.yaml")).expect("web");
    repo.write(&[(
        "manifests-example/web.yaml",
        &web.replace("http://api.app.cpln.local:8080", "http://api.app.cpln.local:8081"),
    )]);
    repo.commit_all("web calls the api on 8081");
    let mut config = SimConfig::new().with_state_dir(dir.path().join(".ferry/sim"));
    for org in ORGS {
        config = config.with_org(org, ferry::sim::embedded::token_for(org));
    }
    {
        let sim = Sim::start(config).await;
        let prod = Api::new(&sim, Some(&ferry::sim::embedded::token_for("acme-prod")));
        let (_, queue) = prod.get("/org/acme-prod/gvc/app/workload/queue").await;
        let (_, mut worker) = prod.get("/org/acme-prod/gvc/app/workload/worker").await;
        worker["spec"]["containers"][0]["image"] = queue["spec"]["containers"][0]["image"].clone();
        let (put, _) = prod.put("/org/acme-prod/gvc/app/workload", worker).await;
        assert!(put.is_success(), "{put}");
        let staging = Api::new(&sim, Some(&ferry::sim::embedded::token_for("acme-staging")));
        let lock = json!({"kind": "secret", "name": "ferry-lock-staging", "type": "opaque",
            "data": {"encoding": "plain", "payload": "locked"},
            "tags": {"ferry/lock-of": "staging", "ferry/lock-holder": "bob@ci (pid 7)",
                     "ferry/lock-started": "2026-12-01T10:00:00.000Z",
                     "ferry/lock-expires": "2099-01-01T00:00:00.000Z"}});
        // The hand-made change rolls out, so that only drift is shown.
        let path = "/org/acme-prod/gvc/app/workload/worker/deployment";
        prod.wait_for(path, 30, |list| {
            list["items"].as_array().is_some_and(|items| {
                items.iter().all(|d| {
                    d["status"]["ready"] == true
                        && d["status"]["versions"].to_string().contains("/image/queue@")
                })
            })
        })
        .await;
        let (posted, _) = staging.post("/org/acme-staging/secret", lock).await;
        assert!(posted.is_success(), "{posted}");
        sim.shutdown().await;
    }

    let moved = status(dir.path(), &[]);
    assert_eq!(moved.code, Some(0), "{}\n{}", moved.stdout, moved.stderr);
    redacted().bind(|| insta::assert_snapshot!("status-after-quickstart", moved.stdout));

    let json = status(dir.path(), &["--output", "json"]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let report: Value = serde_json::from_str(&json.stdout).expect("status JSON");
    assert_eq!(report["schema"], "ferry.status/v1");
    let names: Vec<&str> = report["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    for env in report["environments"].as_array().expect("environments") {
        assert_eq!(env["release"]["revision"], 1, "{env:#}");
        assert_eq!(env["release"]["outcome"], "succeeded");
        assert_eq!(env["workloads"].as_array().map(Vec::len), Some(5), "{env:#}");
        for workload in env["workloads"].as_array().expect("workloads") {
            let digest = workload["containers"][0]["digest"].as_str().unwrap_or_default();
            assert!(digest.starts_with("sha256:"), "{workload:#}");
            assert_eq!(workload["locations"].as_array().map(Vec::len), Some(2), "{workload:#}");
        }
    }
    assert_eq!(report["environments"][1]["lock"]["holder"], "bob@ci (pid 7)");
    assert_eq!(report["environments"][1]["lock"]["expired"], false);
    let edges = report["edges"].as_array().expect("edges");
    let edge = |source: Value, target: &str| {
        edges.iter().find(|e| e["source"] == source && e["target"] == target).expect("edge")
    };
    let git = edge(Value::Null, "dev");
    assert_eq!(git["changes"], true);
    assert_eq!(git["resources"][0]["id"], "workload/web");
    assert_eq!(edge(json!("dev"), "staging")["changes"], false, "staging runs what dev ran");
    let prod = edge(json!("staging"), "prod");
    assert_eq!(prod["changes"], true);
    assert_eq!(prod["resources"][0]["id"], "workload/worker");
    assert_eq!(prod["drifted_from_release"][0]["workload"], "worker");
    assert_eq!(prod["drifted_from_release"][0]["release"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_that_cannot_be_read_is_named_with_why_and_the_others_are_shown() {
    let pipeline = Pipeline::org_per_env().await;
    let with = |prod_token: Option<&'static str>| {
        let mut vars =
            vec![("TOKEN_DEV", token("acme-dev")), ("TOKEN_STAGING", token("acme-staging"))];
        vars.extend(prod_token.map(|t| ("TOKEN_PROD", t)));
        vars
    };
    let missing = ferry_with(pipeline.path(), &["status"], &with(None));
    assert_eq!(missing.code, Some(1), "{}\n{}", missing.stdout, missing.stderr);
    assert!(
        missing.stdout.contains(
            "prod could not be read: no token for acme-prod: environment variable TOKEN_PROD is not set"
        ),
        "{}",
        missing.stdout
    );
    assert!(
        missing.stdout.contains("staging -> prod: not planned: prod could not be read"),
        "{}",
        missing.stdout
    );
    // dev and staging are read (empty: nothing deployed), and planned.
    assert!(
        missing.stdout.contains("acme-dev/app") && missing.stdout.contains("acme-staging/app"),
        "{}",
        missing.stdout
    );
    assert!(missing.stdout.contains("dev -> staging: 13 to create"), "{}", missing.stdout);

    let refused =
        ferry_with(pipeline.path(), &["status", "--output", "json"], &with(Some("not-the-token")));
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let report: Value = serde_json::from_str(&refused.stdout).expect("status JSON");
    let prod = &report["environments"][2];
    assert_eq!(prod["name"], "prod");
    assert_eq!(prod["unreadable"]["code"], "ferry::api::status", "{prod:#}");
    assert_eq!(prod["unreadable"]["http_status"], 401, "{prod:#}");
    assert!(report["environments"][0].get("unreadable").is_none(), "{report:#}");
    assert!(report["environments"][1].get("unreadable").is_none(), "{report:#}");
    assert!(report["edges"][1]["not_planned"].is_null(), "dev -> staging: {report:#}");
    assert!(report["edges"][2]["not_planned"]["message"].is_string(), "{report:#}");

    let all = ferry_with(pipeline.path(), &["status", "staging"], &with(None));
    assert_eq!(all.code, Some(0), "only the named environments are read: {}", all.stdout);
    assert!(!all.stdout.contains("prod"), "{}", all.stdout);
}
