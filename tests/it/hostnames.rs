//! Issue 21, item 1: internal hostnames. A shop of twelve workloads written
//! for the GVC `boutique` (tests/fixtures/boutique-hostnames: services
//! that call each other at `http://WORKLOAD.boutique.cpln.local:PORT`, a
//! shared config secret, public images) in a gvc-per-env pipeline on the
//! simulator: staging and prod each call their own GVC's workloads, the
//! plan shows a hostname that still names the template as a change, and
//! the one string naming another GVC is a warning with its file and line.

use std::path::Path;
use std::time::Duration;

use ferry::sim::SimConfig;
use serde_json::{Value, json};

use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::git::TestRepo;
use crate::support::sim::{Api, Sim};

const ORG: &str = "acme";
const TOKEN: &str = "acme-token-h";
const FIXTURE: &str = "tests/fixtures/boutique-hostnames/boutique.yaml";
const ENVIRONMENTS: [(&str, &str); 2] =
    [("staging", "boutique-staging"), ("prod", "boutique-prod")];
/// The payment service's call into another GVC, where the fixture writes
/// it (line and column of the host).
const OTHER_GVC_AT: &str = "manifests/boutique.yaml:269:26";

fn ferry(dir: &Path, args: &[&str]) -> Run {
    ferry_with(dir, args, &[("TOKEN_ACME", TOKEN)])
}

fn ok(run: &Run, what: &str) {
    assert_eq!(run.code, Some(0), "{what}:\n{}\n{}", run.stdout, run.stderr);
}

/// A repository with the shop and a gvc-per-env plan file for staging and
/// prod, in one org.
fn pipeline(sim: &Sim, dir: &Path) {
    let mut plan =
        String::from("manifests:\n  path: manifests\ntopology: gvc-per-env\nenvironments:\n");
    for (name, gvc) in ENVIRONMENTS {
        plan.push_str(&format!(
            "  - name: {name}\n    org: {ORG}\n    gvc: {gvc}\n    endpoint: {}\n    tokenEnv: TOKEN_ACME\n    readiness: {{interval: 100ms, timeout: 8s, consecutiveChecks: 2}}\n",
            sim.api_url(),
        ));
    }
    let fixture = std::fs::read_to_string(repo_root().join(FIXTURE)).expect("the fixture");
    let repo = TestRepo::init(dir);
    repo.write(&[("promotion.yaml", plan.as_str()), ("manifests/boutique.yaml", &fixture)]);
    repo.commit_all("a shop written for GVC boutique");
}

/// Every internal hostname's GVC in the env values of `workloads`, with
/// the workload, env name and value it is in.
fn env_hosts(workloads: &[&Value]) -> Vec<(String, String, String, String)> {
    let mut found = Vec::new();
    for workload in workloads {
        let name = workload["name"].as_str().unwrap_or_default();
        for container in workload["spec"]["containers"].as_array().into_iter().flatten() {
            for env in container["env"].as_array().into_iter().flatten() {
                let value = env["value"].as_str().unwrap_or_default();
                for part in value.split(',') {
                    let Some(host) = part.split("://").last().and_then(|h| h.split(':').next())
                    else {
                        continue;
                    };
                    let Some(rest) = host.strip_suffix(".cpln.local") else { continue };
                    let gvc = rest.rsplit('.').next().unwrap_or_default();
                    found.push((
                        name.to_owned(),
                        env["name"].as_str().unwrap_or_default().to_owned(),
                        value.to_owned(),
                        gvc.to_owned(),
                    ));
                }
            }
        }
    }
    found
}

/// Asserts that every env value naming an internal host names `gvc`, but
/// the payment service's call into `risk-platform`; returns how many.
fn assert_own_gvc(workloads: &[&Value], gvc: &str) -> usize {
    let hosts = env_hosts(workloads);
    for (workload, env, value, named) in &hosts {
        if env == "FRAUD_CHECK_URL" {
            assert_eq!(named, "risk-platform", "{workload} {env}: {value}");
        } else {
            assert_eq!(named, gvc, "{workload} {env}: {value}");
        }
    }
    hosts.len()
}

/// The other GVC's warning, once, at the fixture's line and column.
fn assert_warned_once(run: &Run, what: &str) {
    let warned = run.stderr.matches("ferry::render::other-gvc-hostname").count();
    assert_eq!(warned, 1, "{what}:\n{}", run.stderr);
    assert!(run.stderr.contains(OTHER_GVC_AT), "{what}: file and line:\n{}", run.stderr);
    assert!(run.stderr.contains("`fraud.risk-platform.cpln.local`"), "{what}:\n{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_environment_calls_its_own_gvcs_workloads() {
    let config =
        SimConfig::new().with_org(ORG, TOKEN).with_rollout_delay(Duration::from_millis(50));
    let sim = Sim::start(config).await;
    let api = Api::new(&sim, Some(TOKEN));
    let dir = tempfile::tempdir().expect("temp dir");
    pipeline(&sim, dir.path());

    let validated = ferry(dir.path(), &["validate"]);
    ok(&validated, "validate");
    assert_warned_once(&validated, "validate, every environment");

    // What each environment must have: env values, a probe's command,
    // arguments and the firewall name its own GVC.
    for (env, gvc) in ENVIRONMENTS {
        let run = ferry(dir.path(), &["render", env, "--output", "json"]);
        ok(&run, env);
        assert_warned_once(&run, env);
        let rendered: Vec<Value> = serde_json::from_str(&run.stdout).expect("JSON");
        let workloads: Vec<&Value> = rendered.iter().filter(|r| r["kind"] == "workload").collect();
        assert_eq!(workloads.len(), 12);
        assert_eq!(assert_own_gvc(&workloads, gvc), 19, "{env}: every hostname of the env values");
        let text = run.stdout.clone();
        assert!(!text.contains(".boutique.cpln.local"), "{env}: {text}");
        let by_name = |name: &str| workloads.iter().find(|w| w["name"] == name).copied();
        let checkout = by_name("checkout").expect("checkout");
        assert_eq!(
            checkout["spec"]["containers"][0]["readinessProbe"]["exec"]["command"][4],
            format!("http://cart.{gvc}.cpln.local:7070/healthz")
        );
        let loadgenerator = by_name("loadgenerator").expect("loadgenerator");
        assert_eq!(
            loadgenerator["spec"]["containers"][0]["args"][1],
            format!(
                "while true; do wget -q -O /dev/null http://frontend.{gvc}.cpln.local:8080/; sleep 5; done"
            )
        );
        let cart = by_name("cart").expect("cart");
        assert_eq!(
            cart["spec"]["firewallConfig"]["external"]["outboundAllowHostname"],
            json!([format!("redis-cart.{gvc}.cpln.local")])
        );
        let secret = rendered.iter().find(|r| r["kind"] == "secret").expect("the config secret");
        assert_eq!(secret["data"], json!({"LOG_LEVEL": "info", "CURRENCY": "USD"}));
    }

    ok(&ferry(dir.path(), &["deploy", "staging", "--yes"]), "deploy staging");
    ok(&ferry(dir.path(), &["promote", "staging", "prod", "--yes"]), "promote");
    for (_, gvc) in ENVIRONMENTS {
        let (status, live) = api.get(&format!("/org/{ORG}/gvc/{gvc}/workload")).await;
        assert!(status.is_success(), "{status}: {live}");
        let workloads: Vec<&Value> = live["items"].as_array().into_iter().flatten().collect();
        assert_eq!(workloads.len(), 12, "{gvc}");
        assert_eq!(assert_own_gvc(&workloads, gvc), 19, "{gvc}: live");
    }

    // Prod's frontend as a Ferry that did not render hostnames left it:
    // calling the template GVC, which does not exist. The plan shows the
    // hostnames as changes, like any other field.
    let path = format!("/org/{ORG}/gvc/boutique-prod/workload/frontend");
    let (_, mut frontend) = api.get(&path).await;
    let before = frontend.clone();
    for env in frontend["spec"]["containers"][0]["env"].as_array_mut().into_iter().flatten() {
        if let Some(value) = env["value"].as_str() {
            env["value"] =
                json!(value.replace(".boutique-prod.cpln.local", ".boutique.cpln.local"));
        }
    }
    assert_ne!(frontend, before);
    let (status, answer) = api.put(&path, frontend).await;
    assert!(status.is_success(), "{status}: {answer}");

    let plan = ferry(dir.path(), &["plan", "prod"]);
    assert_eq!(plan.code, Some(2), "changes:\n{}\n{}", plan.stdout, plan.stderr);
    assert_warned_once(&plan, "plan");
    assert!(plan.stdout.contains("~ workload/frontend"), "{}", plan.stdout);
    for (env, value) in [
        ("CART_SERVICE_ADDR", "http://cart.{}.cpln.local:7070"),
        ("AD_SERVICE_ADDR", "ads.{}.cpln.local:9555"),
    ] {
        let change = format!(
            "~ spec.containers[server].env[{env}].value: \"{}\" -> \"{}\"",
            value.replace("{}", "boutique"),
            value.replace("{}", "boutique-prod")
        );
        assert!(plan.stdout.contains(&change), "{change}:\n{}", plan.stdout);
    }
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to update"), "{}", plan.stdout);

    let json = ferry(dir.path(), &["plan", "prod", "--output", "json"]);
    let planned: Value = serde_json::from_str(&json.stdout).expect("JSON");
    let rows: Vec<&Value> = planned["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(rows.len(), 1, "{planned:#}");
    assert_eq!(rows[0]["id"], "workload/frontend");
    let changes = rows[0]["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), 8, "the frontend's eight env values with a hostname: {changes:#?}");
    for change in &changes {
        let (before, after) = (change["before"].as_str(), change["after"].as_str());
        assert_eq!(
            before.map(|b| b.replace(".boutique.cpln.local", ".boutique-prod.cpln.local")),
            after.map(str::to_owned),
            "{change}"
        );
    }

    ok(&ferry(dir.path(), &["promote", "staging", "prod", "--yes"]), "promote again");
    let (_, frontend) = api.get(&path).await;
    assert_eq!(assert_own_gvc(&[&frontend], "boutique-prod"), 9, "the frontend calls prod's");
    sim.shutdown().await;
}
