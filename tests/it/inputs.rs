//! Bad input never reaches an environment: symbolic links in the manifests
//! folder (read from git and from the work tree), documents over the YAML
//! limits, and tokens that cannot be sent.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use ferry::sim::SimConfig;

use crate::support::command::{Run, ferry, ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};
use crate::support::sim::Sim;

const PLAN: &str = "manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n  - name: staging\n    org: acme-staging\n    gvc: app\n    tokenEnv: CPLN_TOKEN_STAGING\n";

const GVC: &str = "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n";
const API: &str = "kind: workload\nname: api\nspec:\n  type: standard\n  identityLink: //gvc/app/identity/api-id\n  containers:\n    - name: main\n      image: //image/api:1.0.0\n      env:\n        - name: DB\n          value: cpln://secret/database.payload\n";
const IDENTITY: &str = "kind: identity\nname: api-id\n";
const SECRET: &str =
    "kind: secret\nname: database\ntype: opaque\ndata:\n  payload: postgres://db\n";

fn link(target: &str, at: &Path) {
    std::fs::create_dir_all(at.parent().expect("a folder")).expect("folders");
    symlink(target, at).expect("symbolic link");
}

/// Validates the repository in `dir`, from git (HEAD) or from the work
/// tree.
fn validate(dir: &Path, worktree: bool) -> Run {
    let mut args = vec!["validate", "-f", "promotion.yaml"];
    if worktree {
        args.push("--worktree");
    }
    ferry(dir, &args)
}

/// A repository whose manifests folder reaches its identity through a
/// file link and its secret through a folder link, both to `shared/`
/// outside the manifests folder but inside the repository.
fn linked_repo(dir: &Path) -> TestRepo {
    let repo = TestRepo::init(dir);
    repo.write(&[
        ("promotion.yaml", PLAN),
        ("manifests/gvc.yaml", GVC),
        ("manifests/api.yaml", API),
        ("shared/identity.yaml", IDENTITY),
        ("shared/secrets/database.yaml", SECRET),
    ]);
    link("../shared/identity.yaml", &dir.join("manifests/identity.yaml"));
    link("../shared/secrets", &dir.join("manifests/secrets"));
    // The same file twice (a link to a file the folder shows): read once.
    link("gvc.yaml", &dir.join("manifests/gvc-again.yaml"));
    repo.commit_all("manifests with links inside the repository");
    repo
}

#[test]
fn links_inside_the_repository_are_read_and_validated_in_both_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = linked_repo(dir.path());
    for worktree in [false, true] {
        let run = validate(dir.path(), worktree);
        assert_eq!(run.code, Some(0), "worktree {worktree}:\n{}", run.stderr);
        assert!(run.stdout.contains("valid: 4 resources"), "worktree {worktree}: {}", run.stdout);
    }
    // What a link leads to is validated like any manifest, and named by
    // the path the manifests folder shows.
    repo.write(&[("shared/identity.yaml", "kind: identity\nname: Api_Id\n")]);
    repo.commit_all("a broken identity behind the link");
    for worktree in [false, true] {
        let run = validate(dir.path(), worktree);
        assert_eq!(run.code, Some(1), "worktree {worktree}:\n{}", run.stderr);
        assert!(run.stderr.contains("invalid identity name `Api_Id`"), "{}", run.stderr);
        assert!(run.stderr.contains("manifests/identity.yaml:2:7"), "{}", run.stderr);
    }
}

#[test]
fn links_out_of_the_repository_dangling_or_looping_are_reported_in_both_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).expect("repo folder");
    // A manifest next to the repository, which the repository must not read.
    std::fs::write(dir.path().join("outside.yaml"), SECRET).expect("outside file");
    let repo = TestRepo::init(&root);
    repo.write(&[
        ("promotion.yaml", PLAN),
        ("manifests/gvc.yaml", GVC),
        ("manifests/identity.yaml", IDENTITY),
    ]);
    let manifests = root.join("manifests");
    link("../../outside.yaml", &manifests.join("database.yaml"));
    link("/etc/hostname.yaml", &manifests.join("absolute.yaml"));
    link("missing.yaml", &manifests.join("gone.yaml"));
    link(".", &manifests.join("again"));
    link("ping.yaml", &manifests.join("pong.yaml"));
    link("pong.yaml", &manifests.join("ping.yaml"));
    repo.commit_all("links that cannot be read");
    for worktree in [false, true] {
        let mut args = vec!["validate", "-f", "promotion.yaml", "--output", "json"];
        if worktree {
            args.push("--worktree");
        }
        let run = ferry(&root, &args);
        let at = format!("worktree {worktree}:\n{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, Some(1), "{at}");
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
        let problems = report["problems"].as_array().cloned().unwrap_or_default();
        let messages: Vec<&str> = problems.iter().filter_map(|p| p["message"].as_str()).collect();
        assert_eq!(messages.len(), 6, "{at}");
        let expected = [
            ("database.yaml is a symbolic link to `../../outside.yaml`, outside the repository"),
            ("absolute.yaml is a symbolic link to `/etc/hostname.yaml`"),
            ("gone.yaml is a symbolic link to `missing.yaml`, which does not exist"),
            ("again is a symbolic link to `.`, which leads back to itself"),
            ("ping.yaml is a symbolic link to `pong.yaml`"),
            ("pong.yaml is a symbolic link to `ping.yaml`"),
        ];
        for message in expected {
            assert!(messages.iter().any(|m| m.contains(message)), "{message} missing; {at}");
        }
        assert!(problems.iter().all(|p| p["code"] == "ferry::repo::link"), "{at}");
        // Nothing of the file outside the repository was read.
        assert!(!run.stdout.contains("postgres://db"), "{at}");
    }
}

#[test]
fn a_document_over_the_size_limit_is_named_in_ferrys_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut huge = String::from("kind: secret\nname: many\ntype: dictionary\ndata:\n");
    for i in 0..250_001 {
        huge.push_str(&format!("  k{i}: v\n"));
    }
    let files = [("promotion.yaml", PLAN), ("manifests/gvc.yaml", GVC)];
    for (path, text) in files {
        std::fs::create_dir_all(dir.path().join(path).parent().expect("folder")).expect("dirs");
        std::fs::write(dir.path().join(path), text).expect("write");
    }
    std::fs::write(dir.path().join("manifests/huge.yaml"), huge).expect("write");
    let run = validate(dir.path(), true);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("ferry::yaml::too-large"), "{}", run.stderr);
    let limit = "the document is too large (Ferry reads at most 250000 values in one file)";
    assert!(run.stderr.contains(limit), "{}", run.stderr);
    assert!(run.stderr.contains("huge.yaml:"), "{}", run.stderr);
    assert!(!run.stderr.contains("Nodes") && !run.stderr.contains("budget"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_token_is_an_input_error_before_any_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = TestRepo::init(dir.path());
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    commit_example(&repo, &[("promotion.yaml", &plan)]);
    let config = SimConfig::new()
        .with_org("acme-staging", "staging-token-input")
        .with_org("acme-prod", "prod-token-input")
        .with_rollout_delay(Duration::from_millis(50));
    let sim = Sim::start(config).await;
    let endpoint = sim.api_url();
    let cases = [
        ("prod-token\ninput", "holds more than one line"),
        ("prod token", "contains a space"),
        ("\"prod-token-input\u{2019}", "not visible ASCII"),
        ("   ", "is empty"),
    ];
    for (token, why) in cases {
        sim.clear_request_log();
        let vars = [
            ("CPLN_ENDPOINT", endpoint.as_str()),
            ("CPLN_TOKEN_STAGING", "staging-token-input"),
            ("CPLN_TOKEN_PROD", token),
        ];
        let run = ferry_with(dir.path(), &["plan", "prod", "--from", "staging"], &vars);
        assert_eq!(run.code, Some(1), "{token:?}: {}", run.stderr);
        assert!(run.stderr.contains("ferry::api::malformed_token"), "{token:?}: {}", run.stderr);
        assert!(run.stderr.contains("CPLN_TOKEN_PROD"), "{}", run.stderr);
        assert!(run.stderr.contains(why), "{token:?}: {}", run.stderr);
        assert!(!run.stderr.contains("prod-token") && !run.stderr.contains("prod token"));
        // Never sent, so never retried: prod's org saw no request at all.
        let to_prod: Vec<_> = sim
            .request_log()
            .into_iter()
            .filter(|r| r.org.as_deref() == Some("acme-prod"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(to_prod.is_empty(), "{token:?}: {to_prod:?}");
    }
}

/// Makes a FIFO at `path`: opening it for reading waits for a writer.
fn fifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

#[test]
fn an_override_file_or_manifest_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = format!("{PLAN}    overrides:\n      - file: overrides/staging.yaml\n");
    let files = [("promotion.yaml", plan.as_str()), ("manifests/gvc.yaml", GVC)];
    for (path, text) in files {
        std::fs::create_dir_all(dir.path().join(path).parent().expect("folder")).expect("dirs");
        std::fs::write(dir.path().join(path), text).expect("write");
    }
    std::fs::create_dir_all(dir.path().join("overrides")).expect("dirs");
    fifo(&dir.path().join("overrides/staging.yaml"));
    fifo(&dir.path().join("manifests/piped.yaml"));
    // Were either opened, the run would wait for a writer forever; the
    // harness's own timeout is the bound.
    let run = validate(dir.path(), true);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let override_refused =
        "cannot read override file overrides/staging.yaml: it is not a regular file (it is a FIFO)";
    assert!(run.stderr.contains(override_refused), "{}", run.stderr);
    assert!(
        run.stderr.contains("manifests/piped.yaml: it is not a regular file"),
        "{}",
        run.stderr
    );
}

#[test]
fn manifests_over_the_total_size_are_refused_before_they_are_parsed() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Forty files of 1.8 MB each: every one under the per-file limit, 72 MB
    // together.
    let mut big = String::from("kind: secret\nname: NAME\ntype: dictionary\ndata:\n");
    while big.len() < 1_800_000 {
        big.push_str(&format!("  key{}: {}\n", big.len(), "v".repeat(40)));
    }
    let files = [("promotion.yaml", PLAN), ("manifests/gvc.yaml", GVC)];
    for (path, text) in files {
        std::fs::create_dir_all(dir.path().join(path).parent().expect("folder")).expect("dirs");
        std::fs::write(dir.path().join(path), text).expect("write");
    }
    for index in 0..40 {
        let text = big.replace("NAME", &format!("s{index:02}"));
        std::fs::write(dir.path().join(format!("manifests/s{index:02}.yaml")), text)
            .expect("write");
    }
    let started = std::time::Instant::now();
    let run = validate(dir.path(), true);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("ferry::input::total-too-large"), "{}", run.stderr);
    assert!(run.stderr.contains("the manifests hold more than 16 MiB together"), "{}", run.stderr);
    // Parsing all 72 MB took over half a minute; refusing them is at once.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn an_endpoint_where_nothing_listens_is_reported_within_seconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = TestRepo::init(dir.path());
    // Port 1 on loopback: nothing listens there, so connections are
    // refused. (A port found free and let go could be taken meanwhile by a
    // simulator another test starts, which answered 401 once.)
    let endpoint = "http://127.0.0.1:1".to_owned();
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml"))
        .expect("plan")
        .replace("endpoint: https://api.cpln.io", &format!("endpoint: {endpoint}"));
    commit_example(&repo, &[("promotion.yaml", &plan)]);
    let vars = [("CPLN_TOKEN_DEV", "dev-token")];
    let started = std::time::Instant::now();
    let run = ferry_with(dir.path(), &["plan", "dev", "--worktree"], &vars);
    let took = started.elapsed();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("could not reach the API"), "{}", run.stderr);
    // Retried like a busy server, this took over a minute.
    assert!(took < Duration::from_secs(10), "{took:?}");
}
