//! The first promotion into an environment that already runs: prod
//! pre-filled by the real `cpln apply` from the promotion's own manifests
//! (without Ferry's managed tag; the api on an older image, the identity
//! with another description, and one secret git does not have). The plan
//! shows `adopt` rows; the promotion writes the tag alone where nothing
//! differs and the whole resource where something does; `--prune` deletes
//! nothing Ferry did not create; and a rollback goes back to what ran
//! before Ferry, by digest.

use serde_json::Value;

use crate::promote::{IMAGES, Pipeline, digest_of, images_of, writes};

const PROD: &str = "acme-prod";
const IDENTITY: &str = "The api's identity; reads its secrets through the api-secrets policy";

/// A secret that runs in prod and was never in git.
const EXTRA: &str = "---\nkind: secret\nname: legacy-token\ndescription: Set by hand years ago\ntype: opaque\ndata:\n  payload: not-in-git\n  encoding: plain\n";

/// Resources applied identical to git: only the managed tag is written.
const IDENTICAL: [&str; 7] = [
    "domain/shop.example.com",
    "gvc/app",
    "policy/api-secrets",
    "secret/api-db",
    "secret/app-config",
    "secret/registry-pull",
    "volumeset/queue-data",
];

/// dev and staging as the quickstart leaves them; prod running the
/// example as `cpln apply` wrote it, before Ferry.
async fn running_before_ferry() -> Pipeline {
    let pipeline = Pipeline::org_per_env().await;
    pipeline.stage().await;
    let mut images = IMAGES.to_vec();
    images.push(("api", "1.4.1"));
    pipeline.push_images(PROD, &images).await;
    pipeline
        .apply_with_cpln("prod", PROD, "app", |rendered| {
            let edited = rendered
                .replace("tags:\n  ferry/environment: prod\n", "")
                .replace("  ferry/environment: prod\n", "")
                .replace("/image/api:1.4.2", "/image/api:1.4.1")
                .replace(IDENTITY, "The api's identity");
            assert!(!edited.contains("ferry/"), "{edited}");
            edited + EXTRA
        })
        .await;
    pipeline
}

/// Times, commits and the simulator's ports differ from run to run.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"git [0-9a-f]{8}", "git [COMMIT]");
    settings
}

/// The API path of `kind/name` in prod.
fn item_path(id: &str) -> String {
    let (kind, name) = id.split_once('/').expect("kind/name");
    match kind {
        "gvc" | "domain" | "policy" | "secret" => format!("/org/{PROD}/{kind}/{name}"),
        _ => format!("/org/{PROD}/gvc/app/{kind}/{name}"),
    }
}

fn action_of<'a>(plan: &'a Value, id: &str) -> &'a str {
    plan["resources"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id))
        .and_then(|r| r["action"].as_str())
        .unwrap_or_else(|| panic!("{id} in {plan:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_promotion_adopts_what_runs_writes_only_what_differs_and_can_be_rolled_back() {
    let pipeline = running_before_ferry().await;
    let prod = pipeline.api(PROD);
    let (_, before) = prod.get("/org/acme-prod/gvc/app/workload/api").await;
    let pre_ferry = before["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned();
    assert_eq!(pre_ferry, "/org/acme-prod/image/api:1.4.1");
    let (_, old_api) = prod.get("/org/acme-prod/image/api:1.4.1").await;
    let old_digest = old_api["digest"].as_str().expect("digest").to_owned();

    // The plan: every resource of git exists, none of them Ferry's.
    let human = pipeline.ferry(&["plan", "prod"]);
    assert_eq!(human.code, Some(2), "{}", human.stderr);
    redacted().bind(|| insta::assert_snapshot!("adopt-plan", human.stdout));
    let json = pipeline.ferry(&["plan", "prod", "--output", "json"]);
    let plan: Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(plan["summary"]["adopt"], 13, "{plan:#}");
    for id in IDENTICAL {
        assert_eq!(action_of(&plan, id), "adopt");
    }
    let identity = plan["resources"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == "identity/api-id"))
        .expect("identity row");
    assert_eq!(identity["action"], "adopt");
    assert_eq!(identity["adopt_tag"], "prod");
    assert_eq!(identity["changes"][0]["path"], "description", "{identity:#}");
    assert!(!json.stdout.contains("legacy-token"), "not in git, not Ferry's: not in the plan");

    // The promotion: a PATCH of the tag alone where nothing differs, a
    // PUT where something does, nothing for the secret git lacks.
    pipeline.sim.clear_request_log();
    let run = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("Recorded what prod ran before Ferry as release 1"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("Released prod revision 2 from staging"), "{}", run.stdout);
    let (created, written): (Vec<String>, Vec<String>) = writes(&pipeline.sim, PROD)
        .into_iter()
        .filter(|r| !r.path.contains("ferry-lock-") && !r.path.contains("ferry-release-"))
        .map(|r| format!("{} {}", r.method, r.path))
        .partition(|w| w.starts_with("POST "));
    // Create-only writes: the lock, the pre-Ferry release and Ferry's.
    assert_eq!(created, ["POST /org/acme-prod/secret"; 3]);
    let mut expected: Vec<String> =
        IDENTICAL.iter().map(|id| format!("PATCH {}", item_path(id))).collect();
    expected.extend(["PUT /org/acme-prod/gvc/app/identity".to_owned()]);
    expected.extend((0..5).map(|_| "PUT /org/acme-prod/gvc/app/workload".to_owned()));
    // The record of the fields Ferry wrote (docs/last-applied.md), and
    // the release's record, rewritten with its outcome (docs/history.md).
    expected.extend(["PUT /org/acme-prod/secret"; 2].map(str::to_owned));
    let mut found = written.clone();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "{written:#?}");
    for id in IDENTICAL.iter().copied().chain(["identity/api-id", "workload/api"]) {
        let (_, live) = prod.get(&item_path(id)).await;
        assert_eq!(live["tags"]["ferry/environment"], "prod", "{id}: {live:#}");
    }
    let (_, identity) = prod.get("/org/acme-prod/gvc/app/identity/api-id").await;
    assert_eq!(identity["description"], IDENTITY);
    let (status, extra) = prod.get("/org/acme-prod/secret/legacy-token").await;
    assert!(status.is_success(), "{status}");
    assert!(extra["tags"].get("ferry/environment").is_none(), "{extra:#}");

    // --prune: the secret Ferry did not create stays.
    pipeline.sim.clear_request_log();
    let pruned = pipeline.ferry(&["promote", "staging", "prod", "--prune", "--yes"]);
    assert_eq!(pruned.code, Some(0), "{}\n{}", pruned.stdout, pruned.stderr);
    assert!(pruned.stdout.contains("No changes."), "{}", pruned.stdout);
    let deletes: Vec<_> =
        writes(&pipeline.sim, PROD).into_iter().filter(|r| r.method == "DELETE").collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    let (status, _) = prod.get("/org/acme-prod/secret/legacy-token").await;
    assert!(status.is_success(), "{status}");

    // History: the pre-Ferry release, then Ferry's.
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][1]["revision"], 1, "{releases:#}");
    assert_eq!(releases["releases"][1]["kind"], "pre-ferry", "{releases:#}");

    // Rollback: back to what ran before Ferry, by digest.
    let now = images_of(&prod, PROD, "app").await;
    assert!(now.iter().all(|(_, image)| image.contains("@sha256:")), "{now:?}");
    let back = pipeline.ferry(&["rollback", "prod", "--yes"]);
    assert_eq!(back.code, Some(0), "{}\n{}", back.stdout, back.stderr);
    assert!(back.stdout.contains("back to the images of release 1"), "{}", back.stdout);
    let (_, api) = prod.get("/org/acme-prod/gvc/app/workload/api").await;
    let image = api["spec"]["containers"][0]["image"].as_str().unwrap_or("");
    assert_eq!(image, format!("/org/acme-prod/image/api@{old_digest}"));
    let after = images_of(&prod, PROD, "app").await;
    for ((name, was), (_, is)) in now.iter().zip(&after) {
        if name == "api" || name == "db-migrate" {
            assert_eq!(digest_of(is), old_digest, "{name}");
        } else {
            assert_eq!(was, is, "{name} ran the same image before Ferry");
        }
    }
}

/// A saved plan with adopt rows (`plan --out`), carried out by `ferry
/// apply`: the same tag-only PATCHes and updates as a promotion, the
/// pre-Ferry release first, then the saved plan's; planned again, nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_with_adopt_rows_is_carried_out_by_apply() {
    let pipeline = running_before_ferry().await;
    let saved = pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", "plan.json"]);
    assert_eq!(saved.code, Some(2), "{}\n{}", saved.stdout, saved.stderr);
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(pipeline.path().join("plan.json")).expect("saved plan"),
    )
    .expect("plan JSON");
    assert_eq!(plan["summary"]["adopt"], 13, "{plan:#}");
    assert!(!plan["steps"]["release"]["adopted"].as_array().expect("adopted").is_empty());

    pipeline.sim.clear_request_log();
    let run = pipeline.ferry(&["apply", "plan.json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("Recorded what prod ran before Ferry as release 1"),
        "{}",
        run.stderr
    );
    let patched: Vec<String> = writes(&pipeline.sim, PROD)
        .into_iter()
        .filter(|r| r.method == "PATCH" && !r.path.contains("ferry-lock-"))
        .map(|r| r.path)
        .collect();
    for id in IDENTICAL {
        assert!(patched.contains(&item_path(id)), "{id}: {patched:#?}");
    }
    let prod = pipeline.api(PROD);
    for id in IDENTICAL.iter().copied().chain(["identity/api-id", "workload/api"]) {
        let (_, live) = prod.get(&item_path(id)).await;
        assert_eq!(live["tags"]["ferry/environment"], "prod", "{id}: {live:#}");
    }
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(releases["releases"][0]["kind"], "apply", "{releases:#}");
    assert_eq!(releases["releases"][1]["kind"], "pre-ferry", "{releases:#}");
    let again = pipeline.ferry(&["plan", "prod", "--from", "staging"]);
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
}
