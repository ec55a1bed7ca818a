//! GitHub Actions output (`GITHUB_ACTIONS=true`) on the embedded
//! simulator: the job summary of a plan and of its apply (snapshots), the
//! step outputs, log groups, annotations at a broken manifest's lines (at
//! most ten of each kind), and no token (not even in an `::add-mask::`
//! command) or secret payload anywhere.

use std::path::Path;

use crate::promote::token;
use crate::support::command::{Run, ferry_with, repo_root, run};
use crate::support::git::{TestRepo, commit_example};
use crate::support::oci::{Image, Registry};
use serde_json::json;

/// Tokens in the variables the plan files name (the pipeline's
/// `TOKEN_*`, the example's `CPLN_TOKEN_*`) and the default one: none may
/// be printed in any form.
pub(crate) const TOKENS: [(&str, &str); 6] = [
    ("TOKEN_DEV", "dev-token-p"),
    ("TOKEN_STAGING", "staging-token-p"),
    ("TOKEN_PROD", "prod-token-p"),
    ("CPLN_TOKEN_DEV", "gh-dev-token-5f1c"),
    ("CPLN_TOKEN_PROD", "gh-prod-token-77d0"),
    ("CPLN_TOKEN", "gh-default-token-31b4"),
];

/// Secret payloads of manifests-example/secrets.yaml.
const PAYLOADS: [&str; 2] = ["postgres://shop:CHANGE_ME@db.internal", "\"password\":\"CHANGE_ME\""];

/// One run of Ferry as a GitHub Actions step, with its own summary and
/// output files.
pub(crate) struct Step {
    pub(crate) run: Run,
    pub(crate) summary: String,
    pub(crate) outputs: String,
}

impl Step {
    /// `name=value` lines of `$GITHUB_OUTPUT`.
    fn output(&self, name: &str) -> Option<&str> {
        self.outputs.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    }

    fn output_names(&self) -> Vec<&str> {
        self.outputs.lines().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect()
    }

    /// Nothing sensitive anywhere: no token in any form, not even in an
    /// `::add-mask::` command (stdout may be kept as a file, an artifact
    /// or a PR comment), and no secret payload of the example.
    fn assert_nothing_sensitive(&self, tokens: &[(&str, &str)]) {
        let mut secrets: Vec<&str> = tokens.iter().map(|&(_, token)| token).collect();
        secrets.extend(PAYLOADS);
        self.assert_none_of(&secrets);
    }

    /// None of `secrets`, nor a mask command, in stdout, stderr, the
    /// summary or the outputs.
    pub(crate) fn assert_none_of(&self, secrets: &[&str]) {
        for (place, text) in [
            ("stdout", &self.run.stdout),
            ("stderr", &self.run.stderr),
            ("summary", &self.summary),
            ("outputs", &self.outputs),
        ] {
            assert!(!text.contains("::add-mask::"), "a mask command in {place}: {text}");
            for secret in secrets {
                assert!(!text.contains(secret), "`{secret}` in {place}: {text}");
            }
        }
    }
}

pub(crate) fn step(dir: &Path, args: &[&str], tokens: &[(&'static str, &'static str)]) -> Step {
    let files = tempfile::tempdir().expect("temp dir");
    let summary = files.path().join("summary.md");
    let outputs = files.path().join("output");
    let workspace = dir.display().to_string();
    let mut vars = vec![
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().expect("path")),
        ("GITHUB_OUTPUT", outputs.to_str().expect("path")),
        ("GITHUB_WORKSPACE", workspace.as_str()),
        ("USER", "ci-user"),
        ("HOSTNAME", "ci-host"),
    ];
    vars.extend_from_slice(tokens);
    let run = ferry_with(dir, args, &vars);
    Step {
        run,
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        outputs: std::fs::read_to_string(&outputs).unwrap_or_default(),
    }
}

/// Digests, hashes and commits differ from run to run.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"`[0-9a-f]{64}`", "`[HASH]`");
    settings.add_filter(r"git [0-9a-f]{7,8}\b", "git [COMMIT]");
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_and_its_apply_write_the_summary_outputs_and_groups_and_nothing_sensitive() {
    let pipeline = crate::promote::Pipeline::org_per_env().await;
    pipeline.stage().await;
    let dir = pipeline.path();

    let plan = step(dir, &["plan", "prod", "--from", "staging", "--out", "plan.json"], &TOKENS);
    assert_eq!(plan.run.code, Some(2), "{}\n{}", plan.run.stdout, plan.run.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).expect("saved plan"))
            .expect("plan JSON");
    let hash = saved["hash"].as_str().expect("hash");
    assert_eq!(plan.output_names(), ["changes_present", "plan_hash"]);
    assert_eq!(plan.output("changes_present"), Some("true"));
    assert_eq!(plan.output("plan_hash"), Some(hash));
    assert!(plan.summary.contains(&format!("| Plan hash | `{hash}` |")), "{}", plan.summary);
    assert!(plan.run.stdout.contains("::group::Plan for prod\n"), "{}", plan.run.stdout);
    assert!(plan.run.stdout.contains("::endgroup::"), "{}", plan.run.stdout);
    plan.assert_nothing_sensitive(&TOKENS);
    redacted().bind(|| insta::assert_snapshot!("plan_summary", plan.summary));

    let apply = step(dir, &["apply", "plan.json", "--yes"], &TOKENS);
    assert_eq!(apply.run.code, Some(0), "{}\n{}", apply.run.stdout, apply.run.stderr);
    assert_eq!(apply.output_names(), ferry::github::OUTPUTS);
    assert_eq!(apply.output("changes_present"), Some("true"));
    assert_eq!(apply.output("plan_hash"), Some(hash));
    assert_eq!(apply.output("release"), Some("1"));
    assert_eq!(apply.output("rolled_back"), Some("false"));
    // The carrying out is one group, on stderr with its progress lines.
    let stderr = &apply.run.stderr;
    let (open, close) = (
        stderr.find("::group::Carrying out the plan for prod").expect("group opened"),
        stderr.find("::endgroup::").expect("group closed"),
    );
    assert!(
        open < stderr.find("ready: 2/2 locations ready").expect("readiness") && close > open,
        "{stderr}"
    );
    apply.assert_nothing_sensitive(&TOKENS);
    redacted().bind(|| insta::assert_snapshot!("apply_summary", apply.summary));

    // Again: nothing to do, no release.
    let again = step(dir, &["promote", "staging", "prod", "--yes"], &TOKENS);
    assert_eq!(again.run.code, Some(0), "{}\n{}", again.run.stdout, again.run.stderr);
    assert_eq!(again.output("changes_present"), Some("false"));
    assert_eq!(again.output("release"), Some(""));
    assert!(
        again.summary.contains("prod already runs this release: nothing to do"),
        "{}",
        again.summary
    );

    // Staging runs a new api image: prod's plan updates one field, shown
    // as a diff in the api's section; then a saved rollback plan.
    let host = pipeline.sim.registry_host("acme-staging").expect("staging registry");
    Registry::new(&host, token("acme-staging"))
        .push_image("api", "1.4.3", &Image::new("api-1.4.3", "amd64"))
        .await;
    let image =
        json!({"spec": {"$patch/containers": [{"name": "main", "image": "//image/api:1.4.3"}]}});
    let (status, body) =
        pipeline.api("acme-staging").patch("/org/acme-staging/gvc/app/workload/api", image).await;
    assert!(status.is_success(), "{status}: {body}");
    let update = step(dir, &["promote", "staging", "prod", "--yes"], &TOKENS);
    assert_eq!(update.run.code, Some(0), "{}\n{}", update.run.stdout, update.run.stderr);
    assert_eq!(update.output("release"), Some("2"));
    redacted().bind(|| insta::assert_snapshot!("update_summary", update.summary));

    let rollback = step(dir, &["rollback", "prod", "--out", "rollback.json"], &TOKENS);
    assert_eq!(rollback.run.code, Some(2), "{}\n{}", rollback.run.stdout, rollback.run.stderr);
    assert_eq!(rollback.output("changes_present"), Some("true"));
    assert!(
        rollback.summary.starts_with("## Ferry plan: roll prod back to release 1\n"),
        "{}",
        rollback.summary
    );
    rollback.assert_nothing_sensitive(&TOKENS);
}

#[test]
fn problems_are_annotated_at_their_manifest_lines_ten_of_each_kind_at_most() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    // Twelve workloads with invalid names (errors) at known lines.
    let broken: String = (0..12)
        .map(|i| {
            format!(
                "kind: workload\nname: Bad_Name_{i}\nspec:\n  containers:\n    - name: main\n      image: //image/api:1.4.2\n---\n"
            )
        })
        .collect();
    commit_example(
        &TestRepo::init(dir.path()),
        &[("promotion.example.yaml", &plan), ("manifests-example/broken.yaml", &broken)],
    );
    // The example's plan file reads CPLN_TOKEN_*.
    let tokens = &TOKENS[3..];
    let validate = step(dir.path(), &["validate", "-f", "promotion.example.yaml"], tokens);
    assert_eq!(validate.run.code, Some(1), "{}\n{}", validate.run.stdout, validate.run.stderr);
    let errors: Vec<&str> = validate
        .run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error file=manifests-example/broken.yaml,"))
        .collect();
    assert_eq!(errors.len(), 10, "{}", validate.run.stdout);
    assert!(
        errors[0].starts_with("::error file=manifests-example/broken.yaml,line=2,col=7,title="),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains(",line=9,col=7,"), "{}", errors[1]);
    assert!(
        validate
            .run
            .stdout
            .lines()
            .any(|l| l.starts_with("::notice title=ferry::")
                && l.contains("more than GitHub annotates")),
        "{}",
        validate.run.stdout
    );
    assert!(validate.summary.contains("**invalid:"), "{}", validate.summary);
    assert!(
        validate.summary.contains("`manifests-example/broken.yaml:2:7`"),
        "{}",
        validate.summary
    );
    assert!(validate.outputs.is_empty(), "{}", validate.outputs);
    validate.assert_nothing_sensitive(tokens);
}

/// actionlint from `.tools/venv` (scripts/setup.sh installs it).
fn actionlint(dir: &Path, files: &[&str]) -> Run {
    let binary = repo_root().join(".tools/venv/bin/actionlint");
    assert!(binary.exists(), "{} is missing: run scripts/setup.sh", binary.display());
    run(std::process::Command::new(binary).arg("-no-color").args(files).current_dir(dir))
}

/// The names in the table under `heading` of docs/github-actions.md: the
/// first cell of each row, in backticks.
fn documented(heading: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(repo_root().join("docs/github-actions.md")).expect("docs");
    let section = docs.split_once(heading).map_or("", |(_, rest)| rest);
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_reference_workflows_and_the_action_pass_actionlint_and_match_what_ferry_writes() {
    let workflows =
        actionlint(repo_root(), &["docs/workflows/promote.yml", "docs/workflows/rollback.yml"]);
    assert_eq!(workflows.code, Some(0), "{}\n{}", workflows.stdout, workflows.stderr);

    let action: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo_root().join("action.yml")).expect("action.yml"),
    )
    .expect("action.yml is YAML");
    let names = |key: &str| -> Vec<String> {
        action[key].as_object().expect(key).keys().cloned().collect()
    };
    assert_eq!(
        names("outputs"),
        ferry::github::OUTPUTS,
        "action.yml's outputs are what Ferry writes"
    );
    assert_eq!(documented("### Outputs"), ferry::github::OUTPUTS, "docs name the outputs");
    assert_eq!(documented("### Inputs"), names("inputs"), "docs name the inputs");
    for output in ferry::github::OUTPUTS {
        assert_eq!(
            action["outputs"][output]["value"],
            format!("${{{{ steps.ferry.outputs.{output} }}}}"),
            "{output} comes from the step that runs Ferry"
        );
    }

    // A workflow that uses the action by path, with every input and output;
    // actionlint checks both against action.yml (and fails on others).
    let dir = tempfile::tempdir().expect("temp dir");
    TestRepo::init(dir.path());
    std::fs::copy(repo_root().join("action.yml"), dir.path().join("action.yml")).expect("copy");
    let with: String = names("inputs").iter().map(|i| format!("          {i}: x\n")).collect();
    let used: String = ferry::github::OUTPUTS
        .iter()
        .map(|o| format!(" ${{{{ steps.ferry.outputs.{o} }}}}"))
        .collect();
    let workflow = |extra_input: &str, extra_output: &str| {
        format!(
            "name: uses the action\non: [push]\njobs:\n  ferry:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - id: ferry\n        uses: ./\n        with:\n{with}{extra_input}      - run: echo \"{used}{extra_output}\"\n"
        )
    };
    let folder = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("ferry.yml"), workflow("", "")).expect("workflow");
    let uses = actionlint(dir.path(), &[".github/workflows/ferry.yml"]);
    assert_eq!(uses.code, Some(0), "{}\n{}", uses.stdout, uses.stderr);
    std::fs::write(
        folder.join("ferry.yml"),
        workflow("          version: 1\n", " ${{ steps.ferry.outputs.hash }}"),
    )
    .expect("workflow");
    let wrong = actionlint(dir.path(), &[".github/workflows/ferry.yml"]);
    assert_eq!(wrong.code, Some(1), "{}\n{}", wrong.stdout, wrong.stderr);
    for complaint in ["input \"version\" is not defined", "property \"hash\" is not defined"] {
        assert!(wrong.stdout.contains(complaint), "{complaint}: {}", wrong.stdout);
    }
}
