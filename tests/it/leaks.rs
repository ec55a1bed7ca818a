//! No secret leaves, whatever shape it comes in: payloads in manifests
//! that do not parse (tab-indented, flow or JSON style, a quoted `data`
//! key), in overrides of secrets (broken or not), and tokens, checked in
//! every output Ferry makes under GitHub Actions: stdout, stderr (human
//! and JSON), the job summary, the step outputs, saved plans and the
//! release records.

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
