//! No secret leaves, whatever shape it comes in: payloads in manifests
//! that do not parse (tab-indented, flow or JSON style, a quoted `data`
//! key), in overrides of secrets (broken or not), and tokens, checked in
//! every output Ferry makes under GitHub Actions: stdout, stderr (human
//! and JSON), the job summary, the step outputs, saved plans and the
//! release records; nor any digest of a payload that a guess could be
//! checked against, while a saved plan still writes only the payloads it
//! was made with (docs/plan-output.md, "Secrets").

use std::path::Path;

use crate::github::{Step, TOKENS, step};
use crate::support::git::{TestRepo, commit_example};

/// Manifests that do not parse, each holding a payload no output may show.
const BROKEN: [(&str, &str, &str); 4] = [
    (
        "tab-indented",
        "kind: secret\nname: leaked\ntype: opaque\ndata:\n\tpayload: hunter2-tabbed-9f3\n",
        "hunter2-tabbed-9f3",
    ),
    (
        "flow",
        "{kind: secret, name: leaked, type: opaque, data: {payload: hunter2-flow-4c1}, oops: [\n",
        "hunter2-flow-4c1",
    ),
    (
        "json",
        "{\"kind\": \"secret\", \"name\": \"leaked\" \"data\": {\"payload\": \"hunter2-json-77a\"}}\n",
        "hunter2-json-77a",
    ),
    (
        "quoted-data-key",
        "kind: secret\nname: leaked\ntype: opaque\n\"data\":\n  payload: hunter2-quoted-e02\n  - oops\n",
        "hunter2-quoted-e02",
    ),
];

/// Every token, and `secrets`, absent from a step's outputs.
fn assert_clean(step: &Step, secrets: &[&str]) {
    let mut all: Vec<&str> = TOKENS.iter().map(|&(_, token)| token).collect();
    all.extend_from_slice(secrets);
    step.assert_none_of(&all);
}

/// A repository holding the example and `extra` files, in `dir`.
fn example(dir: &Path, extra: &[(&str, &str)]) {
    let plan = std::fs::read_to_string(
        crate::support::command::repo_root().join("promotion.example.yaml"),
    )
    .expect("plan file");
    let repo = TestRepo::init(dir);
    let mut files = vec![("promotion.example.yaml", plan.as_str()), (".gitignore", ".ferry/\n")];
    files.extend_from_slice(extra);
    commit_example(&repo, &files);
}

#[test]
fn payloads_of_manifests_that_do_not_parse_are_nowhere() {
    for (shape, text, payload) in BROKEN {
        let dir = tempfile::tempdir().expect("temp dir");
        example(dir.path(), &[("manifests-example/broken.yaml", text)]);
        for args in [
            &["validate", "-f", "promotion.example.yaml"][..],
            &["validate", "-f", "promotion.example.yaml", "--output", "json"],
            &["plan", "staging", "--sim", "-f", "promotion.example.yaml"],
            &["plan", "staging", "--sim", "-f", "promotion.example.yaml", "--output", "json"],
        ] {
            let run = step(dir.path(), args, &TOKENS);
            assert_eq!(run.run.code, Some(1), "{shape}: {args:?}\n{}", run.run.stderr);
            let said = format!("{}{}", run.run.stdout, run.run.stderr);
            assert!(said.contains("broken.yaml"), "{shape}: the problem names the file\n{said}");
            assert_clean(&run, &[payload]);
        }
    }
}

#[test]
fn values_of_secret_overrides_are_nowhere_broken_or_carried_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    example(dir.path(), &[]);
    let prod = dir.path().join("overrides/prod.yaml");
    let overrides = std::fs::read_to_string(&prod).expect("prod overrides");
    let encoding = "rot13-hunter2-enc-5d0";
    let payload = "hunter2-override-payload-a17";
    let broken = format!(
        "{overrides}---\nkind: secret\nname: api-db\ndata:\n  encoding: {encoding}\n  payload: {payload}\n"
    );
    std::fs::write(&prod, broken).expect("a broken secret override");
    for args in [
        &["validate", "prod", "-f", "promotion.example.yaml"][..],
        &["validate", "prod", "-f", "promotion.example.yaml", "--output", "json"],
    ] {
        let run = step(dir.path(), args, &TOKENS);
        assert_eq!(run.run.code, Some(1), "{args:?}\n{}", run.run.stderr);
        assert!(
            run.run.stderr.contains("data.encoding") || run.run.stdout.contains("data.encoding")
        );
        assert_clean(&run, &[encoding, payload]);
    }

    // The same payload, valid: planned, saved, carried out and recorded,
    // and never shown.
    let valid = format!(
        "{overrides}---\nkind: secret\nname: api-db\ndata:\n  encoding: plain\n  payload: {payload}\n"
    );
    std::fs::write(&prod, valid).expect("a secret override");
    let saved = dir.path().join("plan.json");
    let steps = [
        &["promote", "staging", "prod", "--sim", "-f", "promotion.example.yaml", "--yes"][..],
        &["plan", "prod", "--sim", "-f", "promotion.example.yaml", "--out", "plan.json"],
        &["history", "prod", "--sim", "-f", "promotion.example.yaml", "--output", "json"],
        &["history", "prod", "1", "--sim", "-f", "promotion.example.yaml"],
        &["status", "--sim", "-f", "promotion.example.yaml", "--output", "json"],
    ];
    for args in steps {
        let run = step(dir.path(), args, &TOKENS);
        assert!(matches!(run.run.code, Some(0 | 2)), "{args:?}\n{}", run.run.stderr);
        assert_clean(&run, &[payload]);
    }
    if let Ok(text) = std::fs::read_to_string(&saved) {
        assert!(!text.contains(payload), "the saved plan holds the payload");
    }
    // Prod's secret holds the payload (the override was carried out), and
    // no release record or lock the simulator keeps holds it.
    let state = std::fs::read_to_string(dir.path().join(".ferry/sim/state.json")).expect("state");
    assert!(state.contains(payload), "the override's payload reached prod's secret");
    let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
    let mut records = 0;
    for item in items(&state) {
        let name = item.get("name").and_then(serde_json::Value::as_str).unwrap_or_default();
        if name.starts_with("ferry-release") || name.starts_with("ferry-lock") {
            records += 1;
            assert!(!item.to_string().contains(payload), "{name} holds the payload");
        }
    }
    assert!(records > 0, "the promotion recorded a release");
}

/// Every JSON object in `value` that has a `name` and a `kind`.
fn items(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut found = Vec::new();
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key("name") && map.contains_key("kind") {
                found.push(value);
            }
            map.values().for_each(|v| found.extend(items(v)));
        }
        serde_json::Value::Array(list) => list.iter().for_each(|v| found.extend(items(v))),
        _ => {}
    }
    found
}

/// A weak payload, the kind a dictionary finds from an unsalted hash.
const WEAK: &str = "hunter2";

/// `prod.yaml`'s overrides with one more document: api-db's payload.
fn with_db_payload(overrides: &str, payload: &str) -> String {
    format!(
        "{overrides}---\nkind: secret\nname: api-db\ndata:\n  encoding: plain\n  payload: {payload}\n"
    )
}

/// Every digest of a secret payload of the example (and of [`WEAK`]) an
/// offline guess could be checked against: sha256 of each payload as
/// written, and of each secret's `data` in canonical JSON, as plans once
/// held it (`(value hidden) sha256:…`).
fn payload_digests() -> Vec<String> {
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};
    let db = |payload: &str| json!({"encoding": "plain", "payload": payload});
    let db_payload = "postgres://shop:CHANGE_ME@db.internal:5432/shop";
    let config = json!({"LOG_LEVEL": "info", "FEATURE_FLAGS": "checkout-v2,wishlist"});
    let docker = r#"{"auths":{"ghcr.io":{"username":"shop-bot","password":"CHANGE_ME"}}}"#;
    let mut found = Vec::new();
    for text in [db_payload, WEAK, docker, "CHANGE_ME", "checkout-v2,wishlist", "info"] {
        found.push(hex::encode(Sha256::digest(text.as_bytes())));
        found.push(ferry::diff::hash(&Value::String(text.to_owned())));
    }
    for data in [db(db_payload), db(WEAK), config] {
        found.push(ferry::diff::hash(&data));
        found.push(hex::encode(Sha256::digest(data.to_string().as_bytes())));
    }
    found
}

/// Every item of the simulator's state in `dir` that Ferry keeps for
/// itself (release records, the last-written record, locks), as JSON.
fn records(dir: &Path) -> Vec<String> {
    let state = std::fs::read_to_string(dir.join(".ferry/sim/state.json")).expect("state");
    let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
    items(&state)
        .into_iter()
        .filter(|item| {
            item.get("name").and_then(serde_json::Value::as_str).is_some_and(|name| {
                ["ferry-release", "ferry-applied", "ferry-lock"].iter().any(|p| name.starts_with(p))
            })
        })
        .map(ToString::to_string)
        .collect()
}

#[test]
fn no_digest_of_a_secret_payload_is_in_any_output_plan_or_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    example(dir.path(), &[]);
    let file = ["--sim", "-f", "promotion.example.yaml"];
    let with = |args: &[&'static str]| [args, &file[..]].concat();
    let first =
        step(dir.path(), &with(&["promote", "staging", "prod", "--yes", "-o", "json"]), &TOKENS);
    assert_eq!(first.run.code, Some(0), "{}", first.run.stderr);
    // A weak payload for prod's api-db: planned as a change, saved,
    // carried out and recorded.
    let prod = dir.path().join("overrides/prod.yaml");
    let overrides = std::fs::read_to_string(&prod).expect("prod overrides");
    std::fs::write(&prod, with_db_payload(&overrides, WEAK)).expect("an override");
    let mut steps = vec![first];
    for (args, code) in [
        (with(&["plan", "prod", "-o", "json"]), 2),
        (with(&["plan", "prod", "--out", "plan.json"]), 2),
        (with(&["apply", "plan.json", "-o", "json"]), 0),
        (with(&["history", "prod", "-o", "json"]), 0),
        (with(&["status", "-o", "json"]), 0),
    ] {
        let run = step(dir.path(), &args, &TOKENS);
        assert_eq!(run.run.code, Some(code), "{args:?}\n{}", run.run.stderr);
        steps.push(run);
    }
    let planned: serde_json::Value = serde_json::from_str(&steps[1].run.stdout).expect("plan JSON");
    let db =
        planned["resources"].as_array().and_then(|r| r.iter().find(|r| r["id"] == "secret/api-db"));
    assert_eq!(db.map(|r| r["action"].clone()), Some("update".into()), "{planned:#}");
    let state = std::fs::read_to_string(dir.path().join(".ferry/sim/state.json")).expect("state");
    assert!(state.contains(WEAK), "the weak payload reached prod's secret");

    let saved = std::fs::read_to_string(dir.path().join("plan.json")).expect("the saved plan");
    let records = records(dir.path());
    assert!(records.iter().any(|r| r.contains("ferry-release")), "releases were recorded");
    let mut places: Vec<(String, &str)> = vec![("plan.json".into(), &saved)];
    for (i, run) in steps.iter().enumerate() {
        for (what, text) in [
            ("stdout", &run.run.stdout),
            ("stderr", &run.run.stderr),
            ("summary", &run.summary),
            ("outputs", &run.outputs),
        ] {
            places.push((format!("step {i} {what}"), text));
        }
    }
    places.extend(records.iter().map(|r| ("a record".to_owned(), r.as_str())));
    let digests = payload_digests();
    for (place, text) in &places {
        for digest in &digests {
            assert!(!text.contains(digest.as_str()), "a digest of a payload in {place}: {text}");
        }
        for mark in ["(value hidden) sha256", "(value hidden) #"] {
            assert!(!text.contains(mark), "a secret's mark in {place}: {text}");
        }
        assert_clean_text(place, text);
    }
}

/// No token and no payload in `text`.
fn assert_clean_text(place: &str, text: &str) {
    for secret in TOKENS.iter().map(|&(_, token)| token).chain([WEAK, "CHANGE_ME"]) {
        assert!(!text.contains(secret), "`{secret}` in {place}: {text}");
    }
}

#[test]
fn a_saved_plan_writes_the_payloads_of_its_commit_and_refuses_a_secret_changed_since() {
    let dir = tempfile::tempdir().expect("temp dir");
    example(dir.path(), &[]);
    let repo = TestRepo::open(dir.path());
    let ferry = |args: &[&str]| {
        let args = [args, &["--sim", "-f", "promotion.example.yaml"][..]].concat();
        crate::support::command::ferry_with(dir.path(), &args, &TOKENS)
    };
    let state =
        || std::fs::read_to_string(dir.path().join(".ferry/sim/state.json")).unwrap_or_default();
    assert_eq!(ferry(&["promote", "staging", "prod", "--yes"]).code, Some(0));

    // An override changes api-db after a plan that left it unchanged:
    // apply refuses, writing nothing; a plan made again shows it.
    let prod = dir.path().join("overrides/prod.yaml");
    let overrides = std::fs::read_to_string(&prod).expect("prod overrides");
    let scaled = overrides.replace("maxScale: 20", "maxScale: 25");
    assert_ne!(scaled, overrides, "the example's web scales to 20 in prod");
    std::fs::write(&prod, &scaled).expect("an override");
    assert_eq!(ferry(&["plan", "prod", "--out", "plan.json"]).code, Some(2));
    let changed_since = "hunter2-changed-since-8c1";
    std::fs::write(&prod, with_db_payload(&scaled, changed_since)).expect("an override");
    let refused = ferry(&["apply", "plan.json"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the payload of secret/api-db changed in prod since the plan was made"),
        "{}",
        refused.stderr
    );
    assert!(!state().contains(changed_since), "the payload was not written");
    let again = ferry(&["plan", "prod"]);
    assert_eq!(again.code, Some(2), "{}", again.stderr);
    assert!(again.stdout.contains("maxScale: 20 -> 25"), "nothing was written: {}", again.stdout);
    assert!(again.stdout.contains("~ secret/api-db"), "{}", again.stdout);
    std::fs::write(&prod, &overrides).expect("the overrides as they were");

    // Git changes after the plan: apply writes the payload of the plan's
    // commit, the one reviewed, not git's newer one. A plan made at a
    // commit by its SHA is applied so; one made at `HEAD` is refused once
    // HEAD names another commit (apply resolves the ref again), with
    // nothing written.
    let secrets = std::fs::read_to_string(dir.path().join("manifests-example/secrets.yaml"))
        .expect("secrets");
    let (old, reviewed, newer) = ("CHANGE_ME@db", "reviewed-4e7@db", "newer-b90@db");
    assert!(secrets.contains(old));
    repo.write(&[("manifests-example/secrets.yaml", &secrets.replacen(old, reviewed, 1))]);
    let commit = repo.commit_all("rotate the database password").to_string();
    let planned = ferry(&["plan", "prod", "--ref", &commit, "--out", "plan.json"]);
    assert_eq!(planned.code, Some(2), "{}", planned.stderr);
    assert!(planned.stdout.contains("~ secret/api-db"), "{}", planned.stdout);
    let at_head = ferry(&["plan", "prod", "--ref", "HEAD", "--out", "head.json"]);
    assert_eq!(at_head.code, Some(2), "{}", at_head.stderr);
    repo.write(&[("manifests-example/secrets.yaml", &secrets.replacen(old, newer, 1))]);
    repo.commit_all("rotate it again");
    let moved = ferry(&["apply", "head.json"]);
    assert_eq!(moved.code, Some(1), "{}", moved.stderr);
    assert!(moved.stderr.contains("revision.commit"), "{}", moved.stderr);
    assert!(!state().contains(reviewed), "nothing was written");
    let applied = ferry(&["apply", "plan.json"]);
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    let now = state();
    assert!(now.contains(reviewed) && !now.contains(newer), "prod holds the reviewed payload");
}
