//! `ferry history` and the record rules on the simulator: releases listed
//! newest first with their kinds, digests and who ran them; `--limit`; one
//! release in full; an unreadable record skipped with a warning; the
//! history limit trimmed only after the newest is written; and
//! `ferry sim image push` giving a second version to release.

use serde_json::{Value, json};

use crate::promote::{Pipeline, promoted_to_prod, token};
use crate::support::command::{Run, ferry, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};
use crate::support::oci::Registry;

const RUN_URL: &str = "https://github.com/acme/shop/actions/runs/4242";

fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// `ferry sim image push ENV NAME:TAG` against the pipeline's simulator;
/// the digest it reports.
fn push(pipeline: &Pipeline, env: &str, image: &str) -> String {
    let pushed = json_of(&pipeline.ferry(&["sim", "image", "push", env, image, "-o", "json"]));
    pushed["digest"].as_str().expect("digest").to_owned()
}

/// The digest `org`'s registry serves for `repo:tag`.
async fn served_digest(pipeline: &Pipeline, org: &str, repo: &str, tag: &str) -> Option<String> {
    let registry = Registry::new(&pipeline.sim.registry_host(org).expect("registry"), token(org));
    let response = registry
        .request(reqwest::Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("registry answers");
    if !response.status().is_success() {
        return None;
    }
    let header = response.headers().get("docker-content-digest")?.to_str().ok()?.to_owned();
    let body = response.bytes().await.ok()?;
    assert_eq!(crate::support::oci::digest(&body), header, "the manifest is what its digest says");
    Some(header)
}

fn api_digest(release: &Value) -> &str {
    release["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["workload"] == "api"))
        .and_then(|i| i["digest"].as_str())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_version_travels_and_history_lists_releases_newest_first() {
    let pipeline = promoted_to_prod().await;
    let first = json_of(&pipeline.ferry(&["history", "prod", "-o", "json"]));
    let first_api = api_digest(&first["releases"][0]).to_owned();

    // A second version: a demo image pushed into dev's registry, its tag
    // committed, dev deployed from git with a saved plan, then promoted.
    let pushed = push(&pipeline, "dev", "api:1.5.0");
    assert_eq!(served_digest(&pipeline, "acme-dev", "api", "1.5.0").await, Some(pushed.clone()));
    assert_ne!(pushed, first_api);
    let repo = TestRepo::open(pipeline.path());
    let api = std::fs::read_to_string(pipeline.path().join("manifests-example/api.yaml"))
        .expect("api.yaml");
    repo.write(&[(
        "manifests-example/api.yaml",
        &api.replace("//image/api:1.4.2", "//image/api:1.5.0"),
    )]);
    repo.commit_all("api 1.5.0");
    let saved = pipeline.ferry(&["plan", "dev", "--out", "dev.json"]);
    assert_eq!(saved.code, Some(2), "{}\n{}", saved.stdout, saved.stderr);
    let applied = pipeline.ferry(&["apply", "dev.json", "--yes"]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let staging = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(staging.code, Some(0), "{}\n{}", staging.stdout, staging.stderr);
    let mut ci = pipeline.vars();
    ci.extend([
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_ACTOR", "release-bot"),
    ]);
    let prod = ferry_with(pipeline.path(), &["promote", "staging", "prod", "--yes"], &ci);
    assert_eq!(prod.code, Some(0), "{}\n{}", prod.stdout, prod.stderr);

    let history = json_of(&pipeline.ferry(&["history", "prod", "-o", "json"]));
    assert_eq!(history["schema"], "ferry.history/v2");
    assert_eq!(history["total"], 2);
    let releases = history["releases"].as_array().expect("releases");
    let revisions: Vec<&Value> = releases.iter().map(|r| &r["revision"]).collect();
    assert_eq!(revisions, [&json!(2), &json!(1)], "newest first");
    let newest = &releases[0];
    assert_eq!(
        (&newest["kind"], &newest["outcome"], &newest["source"]),
        (&json!("promote"), &json!("succeeded"), &json!("staging"))
    );
    assert_eq!(api_digest(newest), pushed, "prod's release records the pushed digest");
    assert_eq!(api_digest(&releases[1]), first_api);
    assert_eq!(newest["actor"]["ci_run"], RUN_URL);
    assert!(
        newest["who"]
            .as_str()
            .is_some_and(|w| w.starts_with("release-bot") && w.ends_with(&format!("({RUN_URL})"))),
        "{newest}"
    );
    assert!(
        releases[1]["who"].as_str().is_some_and(|w| w != "unknown" && !w.contains(RUN_URL)),
        "{}",
        releases[1]
    );
    assert!(newest["duration_ms"].as_u64().is_some());
    assert_eq!(newest["plan_hash"].as_str().map(str::len), Some(64));
    for image in newest["images"].as_array().expect("images") {
        assert!(image["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{image}");
        assert_eq!(image["origin"], "own", "{image}");
    }
    let dev = json_of(&pipeline.ferry(&["history", "dev", "-o", "json"]));
    assert_eq!(
        (&dev["releases"][0]["kind"], &dev["releases"][0]["source"]),
        (&json!("apply"), &Value::Null)
    );

    let listed = pipeline.ferry(&["history", "prod"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let (two, one) = (
        listed.stdout.find("\n#2  promote from staging  succeeded"),
        listed.stdout.find("\n#1  promote from staging  succeeded"),
    );
    assert!(two.is_some() && one.is_some() && two < one, "{}", listed.stdout);
    assert!(
        listed.stdout.lines().any(|line| line.trim_start().starts_with("api/main ")
            && line.contains(" own ")
            && line.contains(&pushed[..19])),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("by release-bot@"), "{}", listed.stdout);

    let limited = pipeline.ferry(&["history", "prod", "--limit", "1"]);
    assert!(
        limited.stdout.contains("#2 ") && !limited.stdout.contains("#1 "),
        "{}",
        limited.stdout
    );
    assert!(limited.stdout.contains("1 older not shown (--limit 1)"), "{}", limited.stdout);
    let limited = json_of(&pipeline.ferry(&["history", "prod", "--limit", "1", "-o", "json"]));
    assert_eq!(limited["releases"].as_array().map(Vec::len), Some(1));

    let full = pipeline.ferry(&["history", "prod", "1"]);
    assert_eq!(full.code, Some(0), "{}", full.stderr);
    assert!(
        full.stdout.starts_with("Release 1 of prod (org acme-prod, GVC app)"),
        "{}",
        full.stdout
    );
    assert!(full.stdout.contains(&first_api), "full digests: {}", full.stdout);
    assert!(
        full.stdout.contains(first["releases"][0]["plan_hash"].as_str().unwrap_or("?")),
        "{}",
        full.stdout
    );
    let one = json_of(&pipeline.ferry(&["history", "prod", "2", "-o", "json"]));
    assert_eq!(one["release"]["revision"], 2);
    let missing = pipeline.ferry(&["history", "prod", "9"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("prod has no release 9"), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_release_record_is_skipped_with_a_warning() {
    let pipeline = promoted_to_prod().await;
    let api = pipeline.api("acme-prod");
    let (status, _) = api
        .post(
            "/org/acme-prod/secret",
            json!({"kind": "secret", "name": "ferry-release-prod-2", "type": "opaque",
                   "tags": {"ferry/release-of": "prod", "ferry/revision": "2", "ferry/outcome": "succeeded"},
                   "data": {"encoding": "plain", "payload": "{\"schema\": \"ferry.release/v1\", \"revis"}}),
        )
        .await;
    assert!(status.is_success(), "{status}");

    let listed = pipeline.ferry(&["history", "prod"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed
            .stderr
            .contains("release record ferry-release-prod-2 of prod cannot be read; skipped"),
        "{}",
        listed.stderr
    );
    assert!(
        listed.stdout.contains("\n#1  promote from staging  succeeded")
            && !listed.stdout.contains("#2"),
        "{}",
        listed.stdout
    );
    let history = json_of(&pipeline.ferry(&["history", "prod", "-o", "json"]));
    assert_eq!(history["releases"].as_array().map(Vec::len), Some(1));
    assert_eq!(history["unreadable"][0]["revision"], 2);
    let shown = pipeline.ferry(&["history", "prod", "2"]);
    assert_eq!(shown.code, Some(1));
    assert!(shown.stderr.contains("release 2 of prod cannot be read"), "{}", shown.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_release_goes_only_after_the_newest_is_written() {
    let pipeline = Pipeline::org_per_env().await;
    let plan_file = pipeline.path().join("promotion.yaml");
    let plan = std::fs::read_to_string(&plan_file).expect("plan file");
    std::fs::write(
        &plan_file,
        plan.replace("  - name: prod\n", "  - name: prod\n    historyLimit: 2\n"),
    )
    .expect("plan file");
    pipeline.repo().commit_all("prod keeps two releases");
    // Two earlier releases of prod, as an earlier version of Ferry wrote them.
    let api = pipeline.api("acme-prod");
    for revision in [1, 2] {
        let record = json!({"schema": "ferry.release/v1", "environment": "prod", "revision": revision,
            "source": "staging", "commit": null, "images": [], "plan_hash": "old",
            "actor": {"user": "alice", "ci_run": null}, "started": "2026-11-01T10:00:00.000Z",
            "finished": "2026-11-01T10:01:00.000Z", "outcome": "succeeded", "rolled_back": false, "message": null});
        let (status, _) = api
            .post("/org/acme-prod/secret", json!({"kind": "secret", "name": format!("ferry-release-prod-{revision}"), "type": "opaque",
                "tags": {"ferry/release-of": "prod", "ferry/revision": revision.to_string(), "ferry/outcome": "succeeded"},
                "data": {"encoding": "plain", "payload": record.to_string()}}))
            .await;
        assert!(status.is_success(), "{status}");
    }
    pipeline.stage().await;
    pipeline.sim.clear_request_log();
    let prod = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(prod.code, Some(0), "{}\n{}", prod.stdout, prod.stderr);
    assert!(prod.stdout.contains("Released prod revision 3 from staging"), "{}", prod.stdout);

    let history = json_of(&pipeline.ferry(&["history", "prod", "-o", "json"]));
    let revisions: Vec<&Value> =
        history["releases"].as_array().expect("releases").iter().map(|r| &r["revision"]).collect();
    assert_eq!(revisions, [&json!(3), &json!(2)]);
    assert_eq!(history["releases"][1]["kind"], Value::Null, "an old record is still read");
    // The new one is compressed, as `cpln helm` stores its records.
    let (_, stored) = api.get("/org/acme-prod/secret/ferry-release-prod-3/-reveal").await;
    assert_eq!(stored["data"]["encoding"], "base64", "{stored:#}");
    let payload = stored["data"]["payload"].as_str().expect("payload");
    assert!(payload.starts_with("H4sI"), "gzip, base64-encoded: {payload}");
    let log = pipeline.sim.request_log();
    let position = |method: &str, name: &str| {
        log.iter().position(|r| r.method == method && r.path.ends_with(name) && r.status < 300)
    };
    let created = log
        .iter()
        .position(|r| r.method == "POST" && r.path == "/org/acme-prod/secret" && r.status < 300);
    let deleted = position("DELETE", "/secret/ferry-release-prod-1");
    assert!(created.is_some() && deleted.is_some(), "{log:?}");
    assert!(created < deleted, "the oldest was deleted before the newest was written");
    assert!(position("DELETE", "/secret/ferry-release-prod-2").is_none());
}

#[test]
fn sim_image_push_pushes_into_the_embedded_simulator_and_nowhere_real() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    commit_example(&TestRepo::init(dir.path()), &[("promotion.yaml", &plan)]);

    let real = ferry(dir.path(), &["sim", "image", "push", "prod", "api:1.5.0"]);
    assert_eq!(real.code, Some(1), "{}\n{}", real.stdout, real.stderr);
    assert!(real.stderr.contains("is not a simulator's"), "{}", real.stderr);

    let args = ["sim", "image", "push", "dev", "api:1.5.0", "--sim", "-o", "json"];
    let pushed = json_of(&ferry(dir.path(), &args));
    assert_eq!(pushed["image"], "//image/api:1.5.0");
    let digest = pushed["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    // The same image again: the same bytes, so the same digest.
    assert_eq!(json_of(&ferry(dir.path(), &args))["digest"], json!(digest));
    let other = json_of(&ferry(
        dir.path(),
        &["sim", "image", "push", "dev", "api:1.6.0", "--sim", "-o", "json"],
    ));
    assert_ne!(other["digest"], json!(digest), "each tag has its own content");
}
