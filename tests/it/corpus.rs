//! Malformed inputs: every case under tests/corpus/ must exit 1 with a
//! diagnostic naming a file and a line, never panic, and print exactly
//! what its snapshot says. A case with a file `warns` holds something the
//! API accepts (a field it drops, a rule only inferred): it must exit 0
//! with a warning naming a file and a line.
//!
//! A case is a folder with `promotion.yaml`, `manifests/` and optionally
//! `args` (the command line; `validate` when absent) and `warns`.

use std::path::PathBuf;

use crate::support::command::{ferry, repo_root};

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/corpus"))
        .expect("the corpus exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// A `FILE.yaml:LINE:COLUMN` position, as miette prints it in a snippet
/// header (or as a message gives it where no snippet may be shown).
fn names_file_and_line(stderr: &str) -> bool {
    [".yaml:", ".yml:"].iter().any(|extension| {
        stderr.match_indices(extension).any(|(at, found)| {
            let rest = &stderr[at + found.len()..];
            let mut parts = rest.splitn(3, ':');
            let line = parts
                .next()
                .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()));
            let column =
                parts.next().is_some_and(|c| c.chars().next().is_some_and(|d| d.is_ascii_digit()));
            line && column
        })
    })
}

#[test]
fn every_malformed_input_is_a_diagnostic() {
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus holds {} cases", cases.len());
    for case in cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let args =
            std::fs::read_to_string(case.join("args")).unwrap_or_else(|_| "validate".to_owned());
        let mut args: Vec<&str> = args.split_whitespace().collect();
        args.extend(["-f", "promotion.yaml", "--worktree"]);
        let run = ferry(&case, &args);
        let warns = case.join("warns").is_file();
        assert_eq!(run.code, Some(if warns { 0 } else { 1 }), "{name}: exit code\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name} panicked:\n{}", run.stderr);
        assert!(names_file_and_line(&run.stderr), "{name}: no file and line in\n{}", run.stderr);
        if warns {
            let valid_with_warnings =
                run.stdout.starts_with("valid:") && run.stdout.contains(" warning");
            assert!(valid_with_warnings, "{name}: stdout:\n{}", run.stdout);
        } else {
            assert!(run.stdout.is_empty(), "{name}: data on stdout:\n{}", run.stdout);
        }
        insta::assert_snapshot!(name, run.stderr);
    }
}

/// Item 3 of issue 10: wrong types and out-of-range values, each a case
/// named `schema-*` (they run in the test above with the others).
#[test]
fn the_schema_corpus_has_at_least_forty_cases() {
    let schema = cases()
        .iter()
        .filter(|c| {
            c.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("schema-"))
        })
        .count();
    assert!(schema >= 40, "{schema} schema-* cases");
}

#[test]
fn a_token_written_in_the_plan_file_is_never_echoed() {
    let run = ferry(
        &repo_root().join("tests/corpus/plan-token-in-file"),
        &["validate", "-f", "promotion.yaml", "--worktree"],
    );
    assert_eq!(run.code, Some(1));
    assert!(!run.stderr.contains("c2VjcmV0LXRva2VuLXZhbHVl"), "{}", run.stderr);
}

#[test]
fn problems_come_as_json_for_ci() {
    let run = ferry(
        &repo_root().join("tests/corpus/many-problems-at-once"),
        &["validate", "-f", "promotion.yaml", "--worktree", "--output", "json"],
    );
    assert_eq!(run.code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["schema"], "ferry.validate/v1");
    assert_eq!(report["valid"], false);
    let problems = report["problems"].as_array().expect("problems");
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(problems.iter().all(|p| p["file"].is_string() && p["line"].is_u64()), "{problems:?}");
}

#[test]
fn a_missing_plan_file_says_how_to_pass_one() {
    let run = ferry(repo_root(), &["validate", "-f", "no-such-promotion.yaml"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot read no-such-promotion.yaml"), "{}", run.stderr);
    assert!(run.stderr.contains("-f promotion.example.yaml"), "{}", run.stderr);
}

#[test]
fn a_secret_in_a_list_is_never_printed_next_to_an_error() {
    let case = repo_root().join("tests/corpus/input-secret-in-list");
    let payloads = ["hunter2-list-payload-3f9a", "rot13-list-secret-c0ffee", "dict-payload-77c1"];
    let human = ferry(&case, &["validate", "-f", "promotion.yaml", "--worktree"]);
    let json =
        ferry(&case, &["validate", "-f", "promotion.yaml", "--worktree", "--output", "json"]);
    for run in [&human, &json] {
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        for payload in payloads {
            assert!(!run.stderr.contains(payload), "{payload} in\n{}", run.stderr);
            assert!(!run.stdout.contains(payload), "{payload} in\n{}", run.stdout);
        }
    }
    // The problem next to the payload is still reported, with its place.
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON on stdout");
    let fields: Vec<_> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["code"] == "ferry::validate::invalid-field")
        .map(|p| (p["line"].clone(), p["message"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert!(
        fields.iter().any(|(line, m)| *line == 11 && m.contains("data.encoding")),
        "{fields:?}"
    );
    assert!(human.stderr.contains("payload: (value hidden)"), "{}", human.stderr);
}

/// A field the API accepts and drops is a warning all the way out: exit 0,
/// `"severity": "warning"` in JSON, and a `::warning` annotation (never
/// `::error`) on GitHub.
#[test]
fn a_dropped_field_is_a_warning_in_json_and_on_github() {
    let case = repo_root().join("tests/corpus/schema-stateful-max-unavailable");
    let args = ["validate", "-f", "promotion.yaml", "--worktree"];
    let json = ferry(&case, &[&args[..], &["--output", "json"]].concat());
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], true);
    let problem = &report["problems"][0];
    assert_eq!(problem["severity"], "warning", "{report}");
    assert_eq!((problem["line"].as_u64(), problem["column"].as_u64()), (Some(12), Some(29)));
    assert!(problem["message"].as_str().is_some_and(|m| m.contains("maxUnavailableReplicas")));

    let workspace = case.to_str().expect("a UTF-8 path");
    let github = crate::support::command::ferry_with(
        &case,
        &args,
        &[("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", workspace)],
    );
    assert_eq!(github.code, Some(0), "{}", github.stderr);
    assert!(
        github.stdout.contains("::warning file=manifests/api.yaml,line=12,col=29,"),
        "{}",
        github.stdout
    );
    assert!(!github.stdout.contains("::error"), "{}", github.stdout);
}
