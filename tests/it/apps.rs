//! Two apps in the same orgs and the same GVC, each with its own plan file
//! (`app:`) and manifests: each plans, prunes, records, rolls back and
//! shows only its own; their promotions into one environment run at the
//! same time; a resource both define is an error naming both.

use serde_json::Value;

use crate::promote::{Pipeline, written};
use crate::support::command::{Run, flat};

const INVOICE: &str = "kind: workload
name: invoice
gvc: app
spec:
  type: standard
  containers:
    - name: main
      image: nginx:1.27
      cpu: 50m
      memory: 64Mi
      ports: [{number: 80, protocol: http}]
  defaultOptions: {autoscaling: {minScale: 1, maxScale: 1}, capacityAI: false}
";

const BILLING_CONFIG: &str = "kind: secret
name: billing-config
type: dictionary
data: {CURRENCY: EUR}
";

/// The example as app `shop` (staged: dev deployed, promoted to staging),
/// and app `billing` beside it: `billing.yaml` with the same environments,
/// its manifests in `billing/`.
async fn two_apps() -> Pipeline {
    let pipeline = Pipeline::org_per_env().await;
    let plan = std::fs::read_to_string(pipeline.path().join("promotion.yaml")).expect("plan");
    let billing = plan
        .replace("path: manifests-example", "path: billing")
        .lines()
        .filter(|l| !l.contains("overrides:") && !l.contains("- file: overrides/"))
        .collect::<Vec<_>>()
        .join("\n");
    let repo = pipeline.repo();
    repo.write(&[
        ("promotion.yaml", &format!("app: shop\n{plan}")),
        ("billing.yaml", &format!("app: billing\n{billing}\n")),
        ("billing/invoice.yaml", INVOICE),
        ("billing/config.yaml", BILLING_CONFIG),
    ]);
    repo.commit_all("two apps");
    pipeline.stage().await;
    let billing = pipeline.ferry(&["deploy", "dev", "-f", "billing.yaml", "--yes"]);
    ok(&billing);
    pipeline
}

/// The writes into `org` but Ferry's own records (`ferry-…` secrets, and
/// PUTs to the secrets collection: the release record and the record of
/// what was written).
fn resources_written(pipeline: &Pipeline, org: &str) -> Vec<String> {
    let own = [format!("PUT /org/{org}/secret"), format!("POST /org/{org}/secret")];
    written(&pipeline.sim, org)
        .into_iter()
        .filter(|w| !w.contains("/secret/ferry-") && !own.contains(w))
        .collect()
}

fn ok(run: &Run) {
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The resource ids a plan (JSON) lists.
fn planned_ids(plan: &Value) -> Vec<String> {
    plan["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_apps_in_one_org_and_gvc_each_see_prune_record_and_roll_back_only_their_own() {
    let pipeline = two_apps().await;

    // Each app's plan lists its own resources only.
    let billing_plan = pipeline.ferry(&["plan", "dev", "-f", "billing.yaml", "-o", "json"]);
    assert_eq!(billing_plan.code, Some(0), "no changes: {}", billing_plan.stderr);
    let ids = planned_ids(&json(&billing_plan));
    assert_eq!(ids, ["secret/billing-config", "workload/invoice"], "{ids:?}");
    let shop_plan = pipeline.ferry(&["plan", "staging", "-o", "json"]);
    let ids = planned_ids(&json(&shop_plan));
    assert!(
        !ids.is_empty() && !ids.iter().any(|id| id.contains("invoice") || id.contains("billing"))
    );

    // The two apps' promotions into staging run at the same time: one
    // lock per app and environment (the default --lock-timeout is 0s, so
    // a shared lock would refuse one of them).
    let shop = pipeline.spawn(&["promote", "dev", "staging", "--yes", "--output", "json"]);
    let billing =
        pipeline.spawn(&["promote", "dev", "staging", "-f", "billing.yaml", "--yes", "-o", "json"]);
    for run in [shop, billing] {
        let output = run.wait_with_output().expect("promote ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
    }

    // The locks are apart, whatever the timing above: with shop's lock
    // held by someone else, shop is blocked and billing goes ahead.
    let held = serde_json::json!({"kind": "secret", "name": "ferry-lock-shop--dev", "type": "opaque",
        "tags": {"ferry/lock-of": "shop/dev", "ferry/lock-holder": "someone@elsewhere (pid 1, lock 1)",
            "ferry/lock-started": "2026-01-01T00:00:00.000Z", "ferry/lock-expires": "2099-01-01T00:00:00.000Z"},
        "data": {"encoding": "plain", "payload": "locked"}});
    let (status, body) = pipeline.api("acme-dev").post("/org/acme-dev/secret", held).await;
    assert!(status.is_success(), "{status}: {body}");
    let repo = pipeline.repo();
    let secrets = std::fs::read_to_string(pipeline.path().join("manifests-example/secrets.yaml"))
        .expect("secrets.yaml");
    repo.write(&[
        ("manifests-example/secrets.yaml", &secrets.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")),
        ("billing/invoice.yaml", &INVOICE.replace("memory: 64Mi", "memory: 96Mi")),
    ]);
    repo.commit_all("a change for each app");
    let blocked = pipeline.ferry(&["deploy", "dev", "--yes"]);
    assert_eq!(blocked.code, Some(3), "{}\n{}", blocked.stdout, blocked.stderr);
    assert!(
        flat(&blocked.stderr).contains("dev is locked by someone@elsewhere"),
        "{}",
        blocked.stderr
    );
    ok(&pipeline.ferry(&["deploy", "dev", "-f", "billing.yaml", "--yes"]));
    let released =
        pipeline.api("acme-dev").delete("/org/acme-dev/secret/ferry-lock-shop--dev").await;
    assert!(released.is_success(), "{released}");

    // billing's next release (a new image), then its rollback: back to
    // its own release 2, writing only its own workload.
    repo.write(&[("billing/invoice.yaml", &INVOICE.replace("nginx:1.27", "nginx:1.28"))]);
    repo.commit_all("invoice on nginx 1.28");
    ok(&pipeline.ferry(&["deploy", "dev", "-f", "billing.yaml", "--yes"]));
    pipeline.sim.clear_request_log();
    let rollback = pipeline.ferry(&["rollback", "dev", "-f", "billing.yaml", "--yes"]);
    ok(&rollback);
    let touched = resources_written(&pipeline, "acme-dev");
    assert_eq!(touched, ["PATCH /org/acme-dev/gvc/app/workload/invoice"], "only billing's");
    let (_, invoice) = pipeline.api("acme-dev").get("/org/acme-dev/gvc/app/workload/invoice").await;
    assert_eq!(invoice["spec"]["containers"][0]["image"], "nginx:1.27");

    // --prune of billing, its workload gone from git, deletes that alone.
    std::fs::remove_file(pipeline.path().join("billing/invoice.yaml")).expect("remove");
    repo.commit_all("invoice leaves billing");
    pipeline.sim.clear_request_log();
    let pruned = pipeline.ferry(&["deploy", "dev", "-f", "billing.yaml", "--prune", "--yes"]);
    ok(&pruned);
    let touched = resources_written(&pipeline, "acme-dev");
    assert_eq!(touched, ["DELETE /org/acme-dev/gvc/app/workload/invoice"], "shop untouched");
    let (status, _) = pipeline.api("acme-dev").get("/org/acme-dev/gvc/app/workload/api").await;
    assert_eq!(status, reqwest::StatusCode::OK, "shop's api stays");

    // Each app's history is its own: billing's five releases into dev
    // (deploy, memory, image, rollback, prune); shop's are elsewhere.
    let run = pipeline.ferry(&["history", "dev", "-f", "billing.yaml", "-o", "json"]);
    ok(&run);
    let releases = json(&run)["releases"].as_array().cloned().unwrap_or_default();
    let revisions: Vec<u64> =
        releases.iter().map(|r| r["revision"].as_u64().unwrap_or_default()).collect();
    assert_eq!(revisions, [5, 4, 3, 2, 1]);
    assert_eq!(releases[1]["kind"], "rollback");
    // In staging: shop's first promotion (its second had nothing to do)
    // and billing's, each numbered 1 in its own history.
    for file in ["promotion.yaml", "billing.yaml"] {
        let staging = json(&pipeline.ferry(&["history", "staging", "-f", file, "-o", "json"]));
        let kinds: Vec<&str> = staging["releases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["promote"], "{file}: {staging:#}");
    }
    let (_, secrets) = pipeline.api("acme-dev").get("/org/acme-dev/secret").await;
    let records: Vec<&str> = secrets["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| n.starts_with("ferry-release-"))
        .collect();
    assert_eq!(records.len(), 5, "{records:?}");
    assert!(records.iter().all(|n| n.starts_with("ferry-release-billing--dev-")), "{records:?}");

    // Status shows each app's own release and workloads.
    let status = pipeline.ferry(&["status", "dev", "-f", "billing.yaml", "-o", "json"]);
    let status = json(&status);
    let dev = &status["environments"][0];
    let names: Vec<&str> = dev["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert!(!names.contains(&"api") && !names.contains(&"web"), "{names:?}");
    let shop_status = json(&pipeline.ferry(&["status", "dev", "-o", "json"]));
    let shop_dev = &shop_status["environments"][0];
    let names: Vec<&str> = shop_dev["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert!(names.contains(&"api") && !names.contains(&"invoice"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_two_apps_define_is_an_error_naming_both() {
    let pipeline = two_apps().await;
    // billing also defines shop's secret `app-config`.
    let repo = pipeline.repo();
    repo.write(&[(
        "billing/stolen.yaml",
        "kind: secret\nname: app-config\ntype: dictionary\ndata: {MODE: invoicing-only}\n",
    )]);
    repo.commit_all("billing defines shop's secret");
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["deploy", "dev", "-f", "billing.yaml", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    let said = flat(&refused.stderr);
    assert!(
        said.contains("secret/app-config in dev is managed by app `shop` (its tag `ferry/environment: shop/dev`), and this plan file is app `billing`"),
        "{}",
        refused.stderr
    );
    assert!(said.contains("billing/stolen.yaml"), "{}", refused.stderr);
    let written = written(&pipeline.sim, "acme-dev");
    assert!(written.is_empty(), "nothing written: {written:?}");
}
