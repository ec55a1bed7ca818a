//! The shipped example stays valid and orders every apply correctly.

use std::collections::HashMap;

use crate::support::command::{ferry, repo_root};

#[test]
fn the_example_plan_file_validates() {
    let run = ferry(repo_root(), &["validate", "-f", "promotion.example.yaml"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.starts_with("valid: 13 resources at HEAD"), "{}", run.stdout);
}

#[test]
fn prod_waves_put_dependencies_before_the_workloads_that_use_them() {
    let run =
        ferry(repo_root(), &["graph", "prod", "-f", "promotion.example.yaml", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let graph: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON graph");
    assert_eq!(graph["schema"], "ferry.graph/v1");
    let mut wave_of = HashMap::new();
    for (index, wave) in graph["waves"].as_array().expect("waves").iter().enumerate() {
        for id in wave.as_array().expect("wave") {
            wave_of.insert(id.as_str().expect("id").to_owned(), index);
        }
    }
    let dependencies = graph["dependencies"].as_array().expect("dependencies");
    let mut checked = Vec::new();
    for dependency in dependencies {
        let (first, then) =
            (dependency["first"].as_str().unwrap_or(""), dependency["then"].as_str().unwrap_or(""));
        assert!(wave_of[first] < wave_of[then], "{first} must come before {then}");
        let kind = first.split('/').next().unwrap_or("");
        if then.starts_with("workload/") && ["secret", "identity", "volumeset"].contains(&kind) {
            checked.push(format!("{first} -> {then}"));
        }
    }
    for expected in [
        "identity/api-id -> workload/api",
        "secret/api-db -> workload/api",
        "secret/app-config -> workload/worker",
        "volumeset/queue-data -> workload/queue",
    ] {
        assert!(checked.iter().any(|c| c == expected), "missing {expected} in {checked:?}");
    }
    // The policy that lets the api's identity reveal its secrets, before it.
    let reveal = dependencies
        .iter()
        .find(|d| d["first"] == "policy/api-secrets" && d["then"] == "workload/api")
        .expect("policy/api-secrets -> workload/api");
    assert_eq!(reveal["type"], "reveal");
    assert_eq!(
        reveal["why"],
        "grants identity/api-id reveal on secret/api-db and secret/app-config, which workload/api reads"
    );
    // Kind order: every secret before the GVC, the GVC before every workload.
    let last =
        |kind: &str| wave_of.iter().filter(|(id, _)| id.starts_with(kind)).map(|(_, w)| *w).max();
    let first =
        |kind: &str| wave_of.iter().filter(|(id, _)| id.starts_with(kind)).map(|(_, w)| *w).min();
    assert!(last("secret/") < first("gvc/"));
    assert!(last("gvc/") < first("workload/"));
    assert!(last("workload/") < first("domain/"));
}

#[test]
fn graph_formats_are_stable() {
    let text = ferry(repo_root(), &["graph", "prod", "-f", "promotion.example.yaml"]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    insta::assert_snapshot!("example-graph-text", text.stdout);
    let dot =
        ferry(repo_root(), &["graph", "prod", "-f", "promotion.example.yaml", "--format", "dot"]);
    assert!(dot.stdout.starts_with("digraph \"prod\" {"), "{}", dot.stdout);
    assert!(dot.stdout.contains("\"identity/api-id\" -> \"workload/api\""), "{}", dot.stdout);
    assert!(
        dot.stdout.contains("\"policy/api-secrets\" -> \"workload/worker\" [label=\"grants identity/api-id reveal on secret/app-config, which workload/worker reads\"];"),
        "{}",
        dot.stdout
    );
}
