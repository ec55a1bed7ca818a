//! Approval, freeze windows and halt tags on the simulator (issue 12):
//! `--yes` alone into an environment with `requireApproval` is refused
//! with nothing written, the reviewed saved plan goes through (if it is
//! not too old) and the release records how it was approved; a freeze
//! window or a `ferry/halt` tag blocks promote and apply (exit 3), and
//! rollback goes through them only with `--during-freeze`.

use serde_json::{Value, json};

use crate::promote::{Pipeline, promoted_to_prod, writes};
use crate::support::command::{Run, ferry_with};
use crate::tamper::rehashed;

/// The plan file rewritten by `edit`, committed.
fn edit_plan(pipeline: &Pipeline, edit: impl Fn(&str) -> String) {
    let path = pipeline.path().join("promotion.yaml");
    let text = std::fs::read_to_string(&path).expect("plan file");
    let repo = pipeline.repo();
    repo.write(&[("promotion.yaml", &edit(&text))]);
    repo.commit_all("the plan file changes");
}

/// `prod`'s entry in the plan file with `lines` (indented) added.
fn prod_with(text: &str, lines: &str) -> String {
    text.replace("  - name: prod\n", &format!("  - name: prod\n{lines}"))
}

/// A diagnostic as one line, however the terminal width wrapped it (and
/// without miette's `|` gutter).
pub(crate) fn flowed(text: &str) -> String {
    text.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ")
}

pub(crate) fn expect(run: &Run, code: i32, says: &[&str]) {
    assert_eq!(run.code, Some(code), "{}\n{}", run.stdout, run.stderr);
    let stderr = flowed(&run.stderr);
    for words in says {
        assert!(stderr.contains(words), "`{words}` not in\n{}", run.stderr);
    }
}

/// A new api image run in dev and promoted to staging, so that prod has
/// something to promote.
pub(crate) async fn new_api_in_staging(pipeline: &Pipeline, tag: &str) {
    crate::rollback::new_api_in_dev(pipeline, tag).await;
    let staged = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(staged.code, Some(0), "{}\n{}", staged.stdout, staged.stderr);
}

fn history(pipeline: &Pipeline) -> Value {
    let run = pipeline.ferry(&["history", "prod", "--output", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("history JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn require_approval_refuses_yes_alone_and_applies_the_reviewed_plan_if_fresh() {
    let pipeline = Pipeline::org_per_env().await;
    edit_plan(&pipeline, |text| prod_with(text, "    requireApproval: true\n"));
    pipeline.stage().await;

    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    expect(
        &refused,
        3,
        &[
            "prod requires approval (`requireApproval: true`): --yes alone does not approve",
            "nothing was written",
            "`ferry plan prod --from staging --out plan.json`), have it reviewed, then `ferry apply plan.json`",
        ],
    );
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");

    let saved = pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", "prod.json"]);
    assert_eq!(saved.code, Some(2), "{}", saved.stderr);
    let file = pipeline.path().join("prod.json");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("saved")).expect("JSON");
    let created = plan["created"].as_str().expect("the plan records when it was made");
    assert!(ferry::timestamp::parse_rfc3339(created).is_some(), "{created}");

    // The same plan, made months ago: too old to be the reviewed one.
    let mut old = plan.clone();
    // (Its hash recomputed: `created` is under it.)
    old["created"] = json!("2026-01-01T00:00:00.000Z");
    std::fs::write(&file, rehashed(old.clone()).to_string()).expect("write");
    pipeline.sim.clear_request_log();
    expect(
        &pipeline.ferry(&["apply", "prod.json"]),
        3,
        &["the saved plan was made at 2026-01-01T00:00:00.000Z", "older than 24h 00m"],
    );
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");
    // A plan that does not say when it was made is refused too.
    old.as_object_mut().expect("object").remove("created");
    std::fs::write(&file, rehashed(old.clone()).to_string()).expect("write");
    expect(&pipeline.ferry(&["apply", "prod.json"]), 3, &["records no creation time"]);
    // `approval.maxPlanAge` sets the limit.
    edit_plan(&pipeline, |text| format!("approval:\n  maxPlanAge: 1h\n{text}"));
    old["created"] = json!(ferry::timestamp::rfc3339(ferry::timestamp::now_ms() - 2 * 3_600_000));
    std::fs::write(&file, rehashed(old.clone()).to_string()).expect("write");
    expect(&pipeline.ferry(&["apply", "prod.json"]), 3, &["older than 1h 00m"]);

    // The plan as saved, reviewed in CI and applied there.
    std::fs::write(&file, plan.to_string()).expect("write");
    let mut vars = pipeline.vars();
    vars.extend([
        ("GITHUB_ACTOR", "ci-bot"),
        ("GITHUB_TRIGGERING_ACTOR", "carol"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/app"),
        ("GITHUB_RUN_ID", "42"),
    ]);
    let applied = ferry_with(pipeline.path(), &["apply", "prod.json"], &vars);
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    let release = &history(&pipeline)["releases"][0];
    assert_eq!(release["kind"], "apply", "{release:#}");
    assert_eq!(release["plan_hash"], plan["hash"], "{release:#}");
    assert_eq!(
        release["approval"],
        json!({"method": "saved-plan", "by": "carol", "ci_run": "https://github.com/acme/app/actions/runs/42"}),
        "{release:#}"
    );
    let shown = pipeline.ferry(&["history", "prod", "1"]);
    let hash = plan["hash"].as_str().expect("hash");
    assert!(
        shown.stdout.contains(&format!("approved   saved plan {}, by carol", &hash[..12])),
        "{}",
        shown.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn freeze_windows_and_halt_tags_block_releases_and_rollback_goes_through_with_a_flag() {
    let pipeline = promoted_to_prod().await;
    new_api_in_staging(&pipeline, "1.4.3").await;
    let prod = pipeline.api("acme-prod");

    // Halted by a tag on prod's GVC: promote and rollback refused.
    let halt = json!({"tags": {"ferry/halt": "incident 42"}});
    let (status, body) = prod.patch("/org/acme-prod/gvc/app", halt).await;
    assert!(status.is_success(), "{status}: {body}");
    pipeline.sim.clear_request_log();
    let halted = "releases into prod are halted by the `ferry/halt` tag on GVC app: incident 42";
    expect(&pipeline.ferry(&["promote", "staging", "prod", "--yes"]), 3, &[halted]);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");
    let (status, body) =
        prod.patch("/org/acme-prod/gvc/app", json!({"tags": {"ferry/halt": null}})).await;
    assert!(status.is_success(), "{status}: {body}");

    // A freeze window around now: promote and apply refused, located.
    let frozen = "    freeze:\n      - {start: 2020-01-01T00:00:00Z, end: 2100-01-01T00:00:00+01:00, reason: end-of-year freeze}\n";
    edit_plan(&pipeline, |text| prod_with(text, frozen));
    let saved = pipeline.ferry(&["plan", "prod", "--from", "staging", "--out", "prod.json"]);
    assert_eq!(saved.code, Some(2), "{}", saved.stderr);
    pipeline.sim.clear_request_log();
    let says = [
        "prod is frozen from 2020-01-01T00:00:00Z until 2100-01-01T00:00:00+01:00: end-of-year freeze",
        "promotion.yaml:",
    ];
    expect(&pipeline.ferry(&["promote", "staging", "prod", "--yes"]), 3, &says);
    expect(&pipeline.ferry(&["apply", "prod.json"]), 3, &says);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");

    // Thawed: released; frozen again: a rollback needs --during-freeze.
    edit_plan(&pipeline, |text| text.replace(frozen, ""));
    let released = pipeline.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(released.code, Some(0), "{}\n{}", released.stdout, released.stderr);
    edit_plan(&pipeline, |text| prod_with(text, frozen));
    pipeline.sim.clear_request_log();
    expect(&pipeline.ferry(&["rollback", "prod", "--yes"]), 3, &says);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");
    // A saved rollback: refused in the freeze, carried out with the flag.
    let saved = pipeline.ferry(&["rollback", "prod", "--out", "rollback.json"]);
    assert_eq!(saved.code, Some(2), "{}", saved.stderr);
    expect(&pipeline.ferry(&["apply", "rollback.json"]), 3, &says);
    assert!(writes(&pipeline.sim, "acme-prod").is_empty(), "nothing was written");
    let rolled = pipeline.ferry(&["apply", "rollback.json", "--during-freeze"]);
    expect(&rolled, 0, &["Going through, as --during-freeze asks: prod is frozen"]);
    let newest = &history(&pipeline)["releases"][0];
    assert_eq!((newest["kind"].as_str(), newest["revision"].as_u64()), (Some("rollback"), Some(3)));
    assert_eq!(newest["approval"]["method"], "saved-plan", "{newest:#}");
    // And one decided on the spot.
    let rolled = pipeline.ferry(&["rollback", "prod", "--to", "2", "--yes", "--during-freeze"]);
    expect(&rolled, 0, &["Going through, as --during-freeze asks: prod is frozen"]);
    let newest = &history(&pipeline)["releases"][0];
    assert_eq!((newest["kind"].as_str(), newest["revision"].as_u64()), (Some("rollback"), Some(4)));
    assert_eq!(newest["approval"]["method"], "flag", "{newest:#}");
}
