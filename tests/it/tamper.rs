//! A saved plan bound to its origin (issue 20): `ferry apply` refuses,
//! with nothing written (the simulator's request log), a plan made under
//! another plan file, a plan edited with its hash recomputed the way a
//! tamperer would (sha256 of the canonical JSON with `hash` empty), a plan
//! from the future or with an edited `created`, and a plan whose hash is
//! not the one `--expect-hash` gives; the reference workflows pass the
//! approved hash.

use serde_json::{Value, json};

use ferry::sim::SimConfig;

use crate::approval::{expect, new_api_in_staging};
use crate::promote::{Pipeline, promoted_to_prod, token, writes};

/// An org that another plan file names as prod.
const SHADOW: &str = "acme-shadow";
use crate::support::command::{Run, repo_root};

/// The simulator's request log shows no write to any org.
fn nothing_written(pipeline: &Pipeline) {
    for org in ["acme-dev", "acme-staging", "acme-prod", SHADOW] {
        let written = writes(&pipeline.sim, org);
        assert!(written.is_empty(), "{org} was written: {written:?}");
    }
}

/// `ferry plan prod --from staging --out FILE`, read back.
fn saved_plan(pipeline: &Pipeline, file: &str) -> Value {
    let saved = pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", file]);
    assert_eq!(saved.code, Some(2), "{}\n{}", saved.stdout, saved.stderr);
    let text = std::fs::read_to_string(pipeline.path().join(file)).expect("saved plan");
    serde_json::from_str(&text).expect("plan JSON")
}

/// `plan` with its hash recomputed as anyone can: sha256 of the canonical
/// JSON (keys sorted) with `hash` set to "".
pub(crate) fn rehashed(mut plan: Value) -> Value {
    plan["hash"] = json!("");
    let hash = ferry::diff::hash(&plan);
    plan["hash"] = json!(hash);
    plan
}

/// Writes `plan` to `file` and applies it; the run, with the log cleared
/// before it.
fn apply(pipeline: &Pipeline, file: &str, plan: &Value, args: &[&str]) -> Run {
    std::fs::write(pipeline.path().join(file), plan.to_string()).expect("write plan");
    pipeline.sim.clear_request_log();
    let mut all = vec!["apply", file];
    all.extend_from_slice(args);
    pipeline.ferry(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_made_under_another_plan_file_is_refused_with_nothing_written() {
    let mut config = SimConfig::new();
    for org in ["acme-dev", "acme-staging", "acme-prod"] {
        config = config.with_org(org, token(org));
    }
    // The same token opens another org: the plan file decides which.
    let config = config.with_org(SHADOW, token("acme-prod"));
    let pipeline = Pipeline::org_per_env_with(config, Vec::new()).await;
    pipeline.stage().await;
    // Another plan file, in which prod is another org: what the plan made
    // with it says is true of that org, not of the real prod.
    let text = std::fs::read_to_string(pipeline.path().join("promotion.yaml")).expect("plan file");
    let (head, prod) = text.split_once("  - name: prod\n").expect("prod's entry");
    let (shadow_host, prod_host) = (
        pipeline.sim.registry_host(SHADOW).expect("registry"),
        pipeline.sim.registry_host("acme-prod").expect("registry"),
    );
    let elsewhere = prod.replace(&prod_host, &shadow_host).replace("acme-prod", SHADOW);
    std::fs::write(
        pipeline.path().join("other.yaml"),
        format!("{head}  - name: prod\n{elsewhere}"),
    )
    .expect("other plan file");
    let made = pipeline.ferry(&[
        "-f",
        "other.yaml",
        "plan",
        "prod",
        "--from",
        "staging",
        "--out",
        "other.json",
    ]);
    assert_eq!(made.code, Some(2), "{}\n{}", made.stdout, made.stderr);
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(pipeline.path().join("other.json")).expect("saved"),
    )
    .expect("JSON");
    assert_eq!(plan["org"], SHADOW);

    let refused = apply(&pipeline, "other.json", &plan, &[]);
    expect(
        &refused,
        1,
        &[
            "the saved plan for prod was made for org acme-shadow, GVC app; the plan file says org",
            "nothing was written",
        ],
    );
    nothing_written(&pipeline);

    // The same with the target's org and GVC rewritten (hash recomputed):
    // the source it was made from is still the other file's, and the
    // endpoint, topology and source are bound too.
    let mut forged = plan.clone();
    forged["org"] = json!("acme-prod");
    forged["origin"]["topology"] = json!("gvc-per-env");
    let refused = apply(&pipeline, "other.json", &rehashed(forged.clone()), &[]);
    expect(&refused, 1, &["was made under topology gvc-per-env; the plan file says org-per-env"]);
    forged["origin"]["topology"] = json!("org-per-env");
    forged["origin"]["endpoint"] = json!("https://api.elsewhere.example");
    let refused = apply(&pipeline, "other.json", &rehashed(forged.clone()), &[]);
    expect(&refused, 1, &["against the API https://api.elsewhere.example; the plan file gives"]);
    forged["origin"]["endpoint"] = plan["origin"]["endpoint"].clone();
    forged["origin"]["source"]["org"] = json!("acme-evil");
    let refused = apply(&pipeline, "other.json", &rehashed(forged), &[]);
    expect(&refused, 1, &["from a source at org acme-evil, GVC app"]);
    nothing_written(&pipeline);
}

#[tokio::test(flavor = "multi_thread")]
async fn created_is_under_the_hash_and_a_plan_from_the_future_is_refused() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    let plan = saved_plan(&pipeline, "prod.json");

    // `created` edited, the old hash kept: the hash no longer matches.
    let mut edited = plan.clone();
    edited["created"] = json!("2099-01-01T00:00:00.000Z");
    let refused = apply(&pipeline, "prod.json", &edited, &[]);
    expect(&refused, 1, &["its hash does not match its content"]);
    nothing_written(&pipeline);

    // With the hash recomputed: from the future, refused.
    let refused = apply(&pipeline, "prod.json", &rehashed(edited), &[]);
    expect(
        &refused,
        1,
        &[
            "the saved plan was made at 2099-01-01T00:00:00.000Z, in the future",
            "nothing was written",
        ],
    );
    nothing_written(&pipeline);
    // A clock a minute ahead is allowed for.
    let mut ahead = plan.clone();
    ahead["created"] = json!(ferry::timestamp::rfc3339(ferry::timestamp::now_ms() + 60_000));
    let applied = apply(&pipeline, "prod.json", &rehashed(ahead), &[]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_hash_refuses_any_other_plan_and_applies_the_approved_one() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    let plan = saved_plan(&pipeline, "prod.json");
    let hash = plan["hash"].as_str().expect("hash").to_owned();

    // Another intact plan (made again: another `created`) in its place.
    let swapped = saved_plan(&pipeline, "other.json");
    assert_ne!(swapped["hash"], plan["hash"], "`created` is under the hash");
    let refused = apply(&pipeline, "prod.json", &swapped, &["--expect-hash", &hash]);
    expect(
        &refused,
        1,
        &[
            &format!(
                "the saved plan's hash is {}, not the {hash}",
                swapped["hash"].as_str().unwrap_or("")
            ),
            "nothing was written",
        ],
    );
    nothing_written(&pipeline);

    let applied = apply(&pipeline, "prod.json", &plan, &["--expect-hash", &hash]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let history = pipeline.ferry(&["history", "prod", "--output", "json"]);
    let history: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(history["releases"][0]["plan_hash"], json!(hash));
}

#[test]
fn the_reference_workflows_apply_only_the_hash_their_plan_job_gave() {
    for file in ["docs/workflows/promote.yml", "docs/workflows/rollback.yml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect("workflow");
        let workflow: Value = serde_saphyr::from_str(&text).expect("workflow YAML");
        let jobs = workflow["jobs"].as_object().expect("jobs");
        let mut applies = 0;
        for (name, job) in jobs {
            let steps = job["steps"].as_array().into_iter().flatten();
            for step in steps
                .filter(|s| s["with"]["command"].as_str().is_some_and(|c| c.starts_with("apply ")))
            {
                applies += 1;
                let needs = job["needs"].as_str().expect("an apply job needs its plan job");
                let args = step["with"]["args"].as_str().unwrap_or_default();
                assert!(
                    args.starts_with(&format!(
                        "--expect-hash ${{{{ needs.{needs}.outputs.plan_hash }}}}"
                    )),
                    "{file}: job {name} applies without the approved hash: {args}"
                );
                assert_eq!(
                    jobs[needs]["outputs"]["plan_hash"],
                    json!("${{ steps.plan.outputs.plan_hash }}"),
                    "{file}: {needs} gives its plan's hash"
                );
            }
        }
        assert!(applies > 0, "{file} applies a plan");
    }
}

/// The write of `id` in a plan's steps.
fn write_of<'a>(plan: &'a mut Value, id: &str) -> &'a mut Value {
    let writes = plan["steps"]["writes"].as_array_mut().expect("writes");
    writes.iter_mut().find(|w| w["id"] == id).unwrap_or_else(|| panic!("no write of {id}"))
}

/// A write of `body` as `id` added to a plan's steps, shaped as the
/// plan's own first write.
fn with_write(mut plan: Value, id: &str, body: Value) -> Value {
    let writes = plan["steps"]["writes"].as_array_mut().expect("writes");
    let mut added = writes.first().cloned().expect("a write");
    added["id"] = json!(id);
    added["body"] = body;
    writes.push(added);
    plan
}

#[tokio::test(flavor = "multi_thread")]
async fn no_edit_of_a_saved_plan_goes_through_even_with_its_hash_recomputed() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    let plan = saved_plan(&pipeline, "prod.json");
    let refused = |edited: Value, args: &[&str], says: &str| {
        let run = apply(&pipeline, "prod.json", &rehashed(edited), args);
        expect(&run, 1, &[says, "nothing was written"]);
        nothing_written(&pipeline);
        run
    };
    let not_reproduced = "the saved plan for prod is not what its inputs give now";

    // An external image, in the write and in what the release records.
    let mut edited = plan.clone();
    let api = write_of(&mut edited, "workload/api");
    api["body"]["spec"]["containers"][0]["image"] = json!("docker.io/evil/miner:6.6.6");
    for image in edited["steps"]["release"]["images"].as_array_mut().expect("images") {
        if image["workload"] == "api" {
            image["image"] = json!("docker.io/evil/miner:6.6.6");
        }
    }
    let run = refused(edited, &[], not_reproduced);
    expect(&run, 1, &["`steps.release.images"]);

    // An extra environment variable.
    let mut edited = plan.clone();
    let api = write_of(&mut edited, "workload/api");
    let container = &mut api["body"]["spec"]["containers"][0];
    let env = container.as_object_mut().expect("container").entry("env").or_insert(json!([]));
    env.as_array_mut().expect("env").push(json!({"name": "MINE", "value": "xmr"}));
    let run = refused(edited, &[], not_reproduced);
    expect(&run, 1, &["`steps.writes["]);

    // An extra identity.
    let identity =
        json!({"kind": "identity", "name": "backdoor", "tags": {"ferry/environment": "prod"}});
    let run = refused(with_write(plan.clone(), "identity/backdoor", identity), &[], not_reproduced);
    expect(&run, 1, &["is only in the saved plan"]);

    // A plaintext secret payload, not from git: refused, and never shown.
    let secret = json!({"kind": "secret", "name": "api-db", "type": "opaque",
        "data": {"payload": "plaintext-from-the-tamperer", "encoding": "plain"}});
    let run = refused(with_write(plan.clone(), "secret/api-db", secret), &[], not_reproduced);
    assert!(!run.stderr.contains("plaintext-from-the-tamperer"), "{}", run.stderr);
    assert!(!run.stdout.contains("plaintext-from-the-tamperer"), "{}", run.stdout);

    // A `rollback` key added, to pass a freeze window with --during-freeze.
    let frozen = "    freeze:\n      - {start: 2020-01-01T00:00:00Z, end: 2100-01-01T00:00:00Z, reason: freeze}\n";
    let path = pipeline.path().join("promotion.yaml");
    let unfrozen = std::fs::read_to_string(&path).expect("plan file");
    std::fs::write(
        &path,
        unfrozen.replace("  - name: prod\n", &format!("  - name: prod\n{frozen}")),
    )
    .expect("frozen");
    let mut edited = plan.clone();
    edited["rollback"] = json!({"to": 1, "current": 1, "not_restored": []});
    refused(edited, &["--during-freeze"], not_reproduced);
    std::fs::write(&path, unfrozen).expect("thawed");

    // The plan as saved goes through, and prod runs what staging runs.
    let applied = apply(&pipeline, "prod.json", &plan, &[]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let prod = crate::promote::images_of(&pipeline.api("acme-prod"), "acme-prod", "app").await;
    assert!(prod.iter().all(|(_, image)| !image.contains("evil")), "{prod:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_pointed_at_another_commit_is_refused() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    let plan = saved_plan(&pipeline, "prod.json");
    // A commit nobody released (on a branch, say), with one more resource.
    let repo = pipeline.repo();
    repo.write(&[("manifests-example/extra.yaml", "kind: identity\nname: extra\n")]);
    let unreleased = repo.commit_all("an identity nobody reviewed").to_string();
    let mut edited = plan.clone();
    edited["revision"] = json!({"requested": unreleased, "commit": unreleased});
    let run = apply(&pipeline, "prod.json", &rehashed(edited), &[]);
    expect(
        &run,
        1,
        &["the saved plan for prod is not what its inputs give now", "`revision.commit` differs"],
    );
    nothing_written(&pipeline);
    // As `--ref` of that commit, it is made again with the identity.
    let mut edited = plan.clone();
    edited["revision"] = json!({"requested": unreleased, "commit": unreleased});
    edited["manifests_from"] = json!({"kind": "ref"});
    let run = apply(&pipeline, "prod.json", &rehashed(edited), &[]);
    expect(&run, 1, &["the saved plan for prod is not what its inputs give now"]);
    nothing_written(&pipeline);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_deploy_is_made_again_with_its_image_and_carried_out() {
    let pipeline = Pipeline::org_per_env().await;
    let registry = crate::deploy::push_example_images(&pipeline, "acme-dev").await;
    let fresh = crate::support::oci::Image::new("api-abc123", "amd64");
    registry.push_image("api", "abc123", &fresh).await;
    let made =
        pipeline.ferry(&["plan", "dev", "--image", "api=//image/api:abc123", "--out", "dev.json"]);
    assert_eq!(made.code, Some(2), "{}\n{}", made.stdout, made.stderr);
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(pipeline.path().join("dev.json")).expect("saved"),
    )
    .expect("JSON");
    assert_eq!(plan["image_overrides"], json!(["api=//image/api:abc123"]));

    // Another image of dev's registry put in its place: made again with it,
    // the plan differs from the saved one's steps.
    let mut edited = plan.clone();
    edited["image_overrides"] = json!(["api=//image/api:1.4.2"]);
    let run = apply(&pipeline, "dev.json", &rehashed(edited), &[]);
    expect(&run, 1, &["the saved plan for dev is not what its inputs give now"]);
    nothing_written(&pipeline);

    let applied = apply(&pipeline, "dev.json", &plan, &[]);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let dev = crate::promote::images_of(&pipeline.api("acme-dev"), "acme-dev", "app").await;
    let pinned = format!("/org/acme-dev/image/api@{}", fresh.digest());
    assert!(dev.iter().any(|(w, image)| w == "api" && *image == pinned), "{dev:?}");
}
