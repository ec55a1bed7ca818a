//! `ferry import`: what runs in an environment, written as manifests that
//! plan as "no changes" against it, with no secret value in any file; for
//! the quickstart's prod and for an environment the real `cpln apply`
//! created from the valid corpus.

use std::path::Path;

use crate::support::command::{Run, ferry, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};
use crate::support::sim::Sim;

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let text = std::fs::read_to_string(&path).expect("text file");
                found.push((path.strip_prefix(dir).expect("inside").display().to_string(), text));
            }
        }
    }
    found.sort();
    found
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(run.code, Some(0), "{what}:\n{}\n{}", run.stdout, run.stderr);
}

/// Asserts that no file under `dir` holds any of `payloads`.
fn assert_no_payloads(dir: &Path, payloads: &[&str]) {
    for (path, text) in files(dir) {
        for payload in payloads {
            assert!(!text.contains(payload), "{path} holds a secret value:\n{text}");
        }
    }
}

#[test]
fn the_quickstarts_prod_imported_plans_as_no_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    let repo = TestRepo::init(dir.path());
    commit_example(&repo, &[("promotion.example.yaml", &plan), (".gitignore", ".ferry/\n")]);
    let quickstart =
        ["promote", "staging", "prod", "--sim", "-f", "promotion.example.yaml", "--yes"];
    assert_ok(&ferry(dir.path(), &quickstart), "the quickstart");

    let import = ["import", "prod", "--sim", "-f", "promotion.example.yaml", "--out", "imported"];
    let run = ferry(dir.path(), &import);
    assert_ok(&run, "import");
    let written: Vec<String> =
        files(&dir.path().join("imported")).into_iter().map(|(p, _)| p).collect();
    for expected in ["gvc/app.yaml", "workload/api.yaml", "secret/api-db.yaml", "domain/"] {
        assert!(written.iter().any(|p| p.starts_with(expected)), "{expected} in {written:?}");
    }
    assert!(
        !written.iter().any(|p| ["ferry-release", "ferry-lock", "ferry-applied"]
            .iter()
            .any(|own| p.contains(own))),
        "Ferry's own records are not imported: {written:?}"
    );
    assert!(
        run.stdout.contains("ferry-release-prod-1: a release record Ferry writes"),
        "{}",
        run.stdout
    );
    // The example's payloads (manifests-example/secrets.yaml) are nowhere.
    assert_no_payloads(
        &dir.path().join("imported"),
        &["postgres://shop:CHANGE_ME", "checkout-v2,wishlist", "shop-bot", "CHANGE_ME"],
    );
    let skeleton = std::fs::read_to_string(dir.path().join("promotion.yaml")).expect("skeleton");
    assert!(
        skeleton.contains("path: imported") && skeleton.contains("org: acme-prod"),
        "{skeleton}"
    );

    // A second import does not write over the first.
    let again = ferry(dir.path(), &import);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(again.stderr.contains("already holds files"), "{}", again.stderr);

    // --force writes over what an import wrote, never over a plan file a
    // person keeps beside it, nor over a manifest a person wrote.
    let kept = dir.path().join("promotion.yaml");
    std::fs::write(&kept, &plan).expect("a three-environment plan file");
    let api = dir.path().join("imported/workload/api.yaml");
    let imported_api = std::fs::read_to_string(&api).expect("imported api");
    std::fs::write(&api, format!("{imported_api}# edited\n")).expect("edit, header kept");
    let forced = [&import[..], &["--force"]].concat();
    assert_ok(&ferry(dir.path(), &forced), "import --force");
    assert_eq!(std::fs::read_to_string(&kept).expect("plan file"), plan, "plan file untouched");
    assert_eq!(
        std::fs::read_to_string(&api).expect("api"),
        imported_api,
        "imported file rewritten"
    );
    let gvc = dir.path().join("imported/gvc/app.yaml");
    std::fs::write(&gvc, "kind: gvc\nname: app\n").expect("a person's own file");
    std::fs::write(&api, format!("{imported_api}# edited\n")).expect("edit, header kept");
    let refused = ferry(dir.path(), &forced);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("gvc/app.yaml was not written by `ferry import`"),
        "{}",
        refused.stderr
    );
    assert!(
        std::fs::read_to_string(&api).expect("api").ends_with("# edited\n"),
        "nothing is written when one file is refused"
    );
    assert_eq!(std::fs::read_to_string(&gvc).expect("gvc"), "kind: gvc\nname: app\n");
    std::fs::write(&api, &imported_api).expect("restored");
    std::fs::remove_file(&gvc).expect("removed");
    assert_ok(&ferry(dir.path(), &forced), "import --force again");

    // Everything runs under Ferry already: --adopt writes nothing.
    let adopt = ["import", "prod", "--sim", "-f", "promotion.example.yaml", "--out", "again"];
    let run = ferry(dir.path(), &[&adopt[..], &["--adopt", "--yes"]].concat());
    assert_ok(&run, "import --adopt");
    assert!(run.stdout.contains("Nothing to adopt"), "{}", run.stdout);
    std::fs::remove_dir_all(dir.path().join("again")).expect("removed");

    // --kinds: those kinds only.
    let only = ["import", "prod", "--sim", "-f", "promotion.example.yaml", "--out", "some"];
    let run = ferry(dir.path(), &[&only[..], &["--kinds", "workload,secret"]].concat());
    assert_ok(&run, "import --kinds");
    let written = files(&dir.path().join("some"));
    assert!(written.iter().any(|(p, _)| p.starts_with("workload/")), "{written:?}");
    assert!(written.iter().any(|(p, _)| p.starts_with("secret/")), "{written:?}");
    for (path, _) in &written {
        assert!(path.starts_with("workload/") || path.starts_with("secret/"), "{path}");
    }
    std::fs::remove_dir_all(dir.path().join("some")).expect("removed");

    // Committed, the imported manifests plan as no changes, with the
    // example's plan file (prod promoted from staging) and with the
    // skeleton (prod alone, images as the files write them).
    repo.commit_all("import prod");
    let mut example = plan.replace("path: manifests-example", "path: imported");
    example.push('\n');
    repo.write(&[("promotion.example.yaml", &example)]);
    // (From staging, the manifests are those of staging's last release
    // unless --ref says otherwise.)
    for plan_file in ["promotion.example.yaml", "promotion.yaml"] {
        let args = ["plan", "prod", "--sim", "-f", plan_file, "--ref", "HEAD"];
        let run = ferry_with(dir.path(), &args, &[]);
        assert_ok(&run, plan_file);
        assert!(run.stdout.contains("No changes"), "{plan_file}:\n{}", run.stdout);
    }
}

/// Payloads of tests/valid/realistic/manifests/secrets.yaml.
const CORPUS_PAYLOADS: &[&str] = &[
    "c2Vzc2lvbi1rZXktZm9yLXRlc3Rz",
    "plain text is fine too",
    "MIIBszCCAVmgAwIBAgIUX2Zha2Ut",
    "b3BlbnNzaC1rZXktdjEA",
    "not-a-real-password",
    "c2hvcDpub3QtcmVhbA==",
    "wJalrXUtnFEMI",
    "not-a-real-function-code",
    "clientSecret",
    "private_key_id",
];

/// A live body as the adoption must leave it: everything but its tags and
/// what the API changes on any write (version, lastModified) or by itself
/// (status).
fn spec_of(mut body: serde_json::Value) -> serde_json::Value {
    if let Some(object) = body.as_object_mut() {
        for field in ["tags", "version", "lastModified", "status"] {
            object.remove(field);
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_cpln_apply_created_from_the_valid_corpus_round_trips() {
    use std::time::Duration;

    use crate::promote::writes;
    use crate::support::cpln::{Cpln, apply_valid_corpus};
    use crate::support::sim::Api;
    use ferry::manifest::Kind;
    use ferry::sim::SimConfig;

    const ORG: &str = "acme-staging";
    let config = SimConfig::new()
        .with_org(ORG, "staging-token")
        .with_rollout_delay(Duration::from_millis(100));
    let sim = Sim::start(config).await;
    apply_valid_corpus(&Cpln::new(&sim, ORG, "staging-token")).await;

    // The corpus's own-registry images, pushed as CI would have.
    let host = sim.registry_host(ORG).expect("registry");
    for (repository, tag) in [("shop-api", "1.4.2"), ("checkout", "7.0.1")] {
        ferry::sim::seed::push_demo_image(&host, "staging-token", repository, tag)
            .await
            .expect("image pushed");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = sim.api_url();
    let plan = format!(
        "manifests:\n  path: imported\ntopology: org-per-env\nenvironments:\n  - name: staging\n    org: {ORG}\n    gvc: app\n    endpoint: {endpoint}\n    tokenEnv: TOKEN_STAGING\n"
    );
    let repo = TestRepo::init(dir.path());
    repo.write(&[("ferry.yaml", &plan)]);
    let vars = [("TOKEN_STAGING", "staging-token")];
    let dir = dir.path().to_path_buf();
    let ferry_async = |args: Vec<&'static str>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || ferry_with(&dir, &args, &vars))
    };

    // Without --adopt, import only reads.
    sim.clear_request_log();
    let run = ferry_async(vec!["import", "staging", "-f", "ferry.yaml", "--out", "read-only"])
        .await
        .expect("import runs");
    assert_ok(&run, "import");
    assert!(writes(&sim, ORG).is_empty(), "{:#?}", writes(&sim, ORG));
    let written = files(&dir.join("read-only"));
    let kinds: std::collections::BTreeSet<&str> =
        written.iter().filter_map(|(path, _)| path.split('/').next()).collect();
    for kind in ["agent", "cloudaccount", "domain", "gvc", "secret", "volumeset", "workload"] {
        assert!(kinds.contains(kind), "{kind} imported: {kinds:?}\n{}", run.stdout);
    }
    assert_no_payloads(&dir.join("read-only"), CORPUS_PAYLOADS);
    assert!(dir.join("promotion.yaml").is_file(), "the skeleton beside the plan file");

    // What runs, resource by resource, before the adoption.
    let api = Api::new(&sim, Some("staging-token"));
    let paths: Vec<String> = written
        .iter()
        .map(|(path, _)| {
            let (kind, file) = path.split_once('/').expect("KIND/NAME.yaml");
            let kind = Kind::parse(kind).expect("a kind");
            let name = file.strip_suffix(".yaml").expect("yaml");
            ferry::api::paths::item(ORG, "app", kind, name)
        })
        .collect();
    let live = || async {
        let mut bodies = Vec::new();
        for path in &paths {
            let (status, body) = api.get(path).await;
            assert!(status.is_success(), "{path}: {status}");
            bodies.push(body);
        }
        bodies
    };
    let before = live().await;

    // --adopt asks first: from a script, without --yes, it is refused
    // (exit 3) and nothing is written; so is it under a halt tag, as any
    // release is.
    let adopting = |extra: &[&'static str]| {
        ferry_async([&["import", "staging", "-f", "ferry.yaml", "--adopt"][..], extra].concat())
    };
    let refused = |run: Run, why: &str| {
        assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(writes(&sim, ORG).is_empty(), "{:#?}", writes(&sim, ORG));
    };
    sim.clear_request_log();
    refused(adopting(&["--out", "unasked"]).await.expect("runs"), "needs an approval");
    let gvc = format!("/org/{ORG}/gvc/app");
    api.patch(&gvc, serde_json::json!({"tags": {"ferry/halt": "incident 42"}})).await;
    sim.clear_request_log();
    let halted = adopting(&["--yes", "--out", "halted"]).await.expect("runs");
    refused(halted, "halted by the `ferry/halt` tag");
    api.patch(&gvc, serde_json::json!({"tags": {"ferry/halt": null}})).await;

    // --adopt: the same files, then the managed tag and the pre-Ferry
    // release; nothing else is written.
    sim.clear_request_log();
    let run = adopting(&["--yes", "--output", "json"]).await.expect("import runs");
    assert_ok(&run, "import --adopt");
    let imported: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let adopt = &imported["adopt"];
    assert_eq!(adopt["outcome"], "adopted", "{adopt:#}");
    assert_eq!(adopt["release"]["kind"], "pre-ferry", "{adopt:#}");
    assert_eq!(adopt["release"]["revision"], 1, "{adopt:#}");
    let log = writes(&sim, ORG);
    let (records, others): (Vec<_>, Vec<_>) = log.iter().partition(|r| {
        r.path.contains("/secret/ferry-lock-") || r.path.contains("/secret/ferry-release-")
    });
    let created: Vec<&str> =
        others.iter().filter(|r| r.method == "POST").map(|r| r.path.as_str()).collect();
    // Create-only writes: the lock and the release record.
    assert_eq!(created, ["/org/acme-staging/secret"; 2], "{log:#?}");
    let mut patched: Vec<String> = others
        .iter()
        .filter(|r| r.method != "POST")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    patched.sort();
    let mut expected: Vec<String> = paths.iter().map(|p| format!("PATCH {p}")).collect();
    // The release record, recorded in progress, then rewritten with its
    // outcome (docs/history.md).
    expected.push("PUT /org/acme-staging/secret".to_owned());
    expected.sort();
    assert_eq!(patched, expected, "one tag PATCH per imported resource, nothing else");
    assert!(
        records.iter().all(|r| r.method != "PUT"),
        "the lock and the release are never written over: {records:#?}"
    );
    let after = live().await;
    for ((path, was), is) in paths.iter().zip(before).zip(after) {
        assert_eq!(is["tags"][ferry::plan::MANAGED_TAG], "staging", "{path}: {is:#}");
        assert_eq!(spec_of(was), spec_of(is), "{path}: no field but the tags changed");
    }
    assert_no_payloads(&dir.join("imported"), CORPUS_PAYLOADS);

    // Committed, the imported files plan as no changes: exit 0, nothing to
    // adopt (the tags are there), no pin (the tags resolve to the digests
    // the pre-Ferry release recorded).
    repo.commit_all("import staging");
    let run = ferry_async(vec!["plan", "staging", "-f", "ferry.yaml", "--output", "json"])
        .await
        .expect("plan runs");
    let plan: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    assert_eq!(run.code, Some(0), "{plan:#}\n{}", run.stderr);
    let summary = &plan["summary"];
    for count in ["create", "update", "replace", "delete", "images_to_copy"] {
        assert_eq!(summary[count], 0, "{count}: {plan:#}");
    }
    assert!(summary.get("adopt").is_none(), "{plan:#}");
    assert_eq!(summary["unchanged"], paths.len(), "{plan:#}");
    assert_eq!(plan["images"], serde_json::json!([]), "{plan:#}");

    // History: the pre-Ferry release, every own image by digest.
    let run = ferry_async(vec!["history", "staging", "-f", "ferry.yaml", "--output", "json"])
        .await
        .expect("history runs");
    let history: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let release = &history["releases"][0];
    assert_eq!(release["kind"], "pre-ferry", "{history:#}");
    let images = release["images"].as_array().expect("images");
    assert!(!images.is_empty(), "{history:#}");
    for image in images {
        let reference = image["image"].as_str().unwrap_or_default();
        if reference.contains("/image/shop-api") || reference.contains("/image/checkout") {
            assert!(
                image["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")),
                "{image:#}"
            );
        }
    }
}

/// gvc-per-env: two GVCs in one org. Importing prod writes app-prod's
/// resources and the org's, under the manifests' template GVC name, and
/// none of app-staging's; the policy both share links once, into the
/// template; planned from the files, prod has no changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_gvc_per_env_environment_imports_only_its_own_gvc_under_the_template_name() {
    use crate::promote::Pipeline;

    let pipeline = Pipeline::gvc_per_env().await;
    pipeline.deploy_with_cpln("staging", "acme", "app-staging").await;
    assert_ok(&pipeline.ferry(&["promote", "staging", "prod", "--yes"]), "promote");
    let run = pipeline.ferry(&["import", "prod", "--out", "imported"]);
    assert_ok(&run, "import");
    assert!(run.stdout.contains("gvc/app-staging: another GVC than app-prod's"), "{}", run.stdout);
    let written = files(&pipeline.path().join("imported"));
    let paths: Vec<&str> = written.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "domain/shop.example.com.yaml",
            "gvc/app.yaml",
            "identity/api-id.yaml",
            "policy/api-secrets.yaml",
            "secret/api-db.yaml",
            "secret/app-config.yaml",
            "secret/registry-pull.yaml",
            "volumeset/queue-data.yaml",
            "workload/api.yaml",
            "workload/db-migrate.yaml",
            "workload/queue.yaml",
            "workload/web.yaml",
            "workload/worker.yaml"
        ]
    );
    for (path, text) in &written {
        assert!(!text.contains("app-staging") && !text.contains("app-prod"), "{path}:\n{text}");
        let gvc_scoped =
            ["identity/", "volumeset/", "workload/"].iter().any(|k| path.starts_with(k));
        assert_eq!(text.contains("\ngvc: app\n"), gvc_scoped, "{path}:\n{text}");
    }
    let policy = &written[3].1;
    assert_eq!(policy.matches("//gvc/app/identity/api-id").count(), 1, "{policy}");

    let repo = pipeline.repo();
    let plan = std::fs::read_to_string(pipeline.path().join("promotion.yaml")).expect("plan");
    repo.write(&[("promotion.yaml", &plan.replace("path: manifests-example", "path: imported"))]);
    repo.commit_all("import prod");
    let run = pipeline.ferry(&["plan", "prod", "--ref", "HEAD"]);
    assert_ok(&run, "plan");
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
}
