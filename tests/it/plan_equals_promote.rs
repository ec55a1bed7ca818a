//! `ferry plan DST --from SRC` is exactly `ferry promote SRC DST`'s plan:
//! over random sequences of commits to the manifests, deployments of the
//! first environment, promotions and `--ref` choices, the plan hash the
//! plan prints equals the one the promotion records (or shows, when there
//! is nothing to do), and planning DST again right after a successful
//! promotion finds nothing to change.
//!
//! Seeded: a failure prints the seed; `FERRY_PLAN_SEED=N` replays it.

use serde_json::Value;

use crate::promote::{IMAGES, Pipeline, token};
use crate::support::command::Run;
use crate::support::git::TestRepo;
use crate::support::oci::{Image, Registry};

const CASES: usize = 6;

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Step {
    /// Commit an edit of web.yaml (its memory or its description).
    Commit { memory: bool, value: u32 },
    /// Deploy dev, the first environment, from git: a saved plan, applied.
    DeployDev,
    /// `promote SRC DST`, with `--ref` one of the commits made so far
    /// (an index into them) or none.
    Promote { src: &'static str, dst: &'static str, reference: Option<usize> },
}

fn random_step(rng: &mut fastrand::Rng) -> Step {
    match rng.u8(0..10) {
        0..=2 => Step::Commit { memory: rng.bool(), value: rng.u32(1..40) },
        3 => Step::DeployDev,
        4..=5 => Step::Promote {
            src: "dev",
            dst: "staging",
            reference: rng.bool().then(|| rng.usize(0..64)),
        },
        _ => Step::Promote {
            src: "staging",
            dst: "prod",
            reference: rng.bool().then(|| rng.usize(0..64)),
        },
    }
}

/// A random sequence of 3 to 7 steps that promotes into prod at least
/// once; staging is promoted from only once it runs something.
fn sequence(rng: &mut fastrand::Rng) -> Vec<Step> {
    let mut staged = false;
    let mut steps: Vec<Step> = Vec::new();
    for _ in 0..rng.usize(2..6) {
        let step = match random_step(rng) {
            Step::Promote { src: "staging", .. } if !staged => {
                Step::Promote { src: "dev", dst: "staging", reference: None }
            }
            step => step,
        };
        staged |= matches!(step, Step::Promote { dst: "staging", .. });
        steps.push(step);
    }
    if !staged {
        steps.push(Step::Promote { src: "dev", dst: "staging", reference: None });
    }
    steps.push(Step::Promote { src: "staging", dst: "prod", reference: None });
    steps
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_from_src_is_the_plan_promote_records_over_random_histories() {
    let base = std::env::var("FERRY_PLAN_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let cases = if std::env::var("FERRY_PLAN_SEED").is_ok() { 1 } else { CASES };
    for case in 0..cases as u64 {
        let seed = base.wrapping_add(case);
        let steps = sequence(&mut fastrand::Rng::with_seed(seed));
        eprintln!("case {case}: seed {seed} (replay with FERRY_PLAN_SEED={seed}): {steps:?}");
        run_case(seed, &steps).await;
    }
}

async fn run_case(seed: u64, steps: &[Step]) {
    let (pipeline, _) = with_images_in_dev().await;
    let repo = TestRepo::open(pipeline.path());
    let mut commits = vec![repo.head()];
    let context = |step: &Step, what: &str, run: &Run| {
        format!(
            "seed {seed} (FERRY_PLAN_SEED={seed}), {step:?}: {what}\n{}\n{}",
            run.stdout, run.stderr
        )
    };
    deploy_dev(&pipeline, &Step::DeployDev, &context);
    for step in steps {
        match step {
            Step::Commit { memory, value } => {
                let file = pipeline.path().join("manifests-example/web.yaml");
                let text = std::fs::read_to_string(&file).expect("web.yaml");
                let (key, new) = if *memory {
                    ("memory", format!("{}Mi", 64 + value * 8))
                } else {
                    ("description", format!("Storefront, edit {value}"))
                };
                let edited = set_field(&text, key, &new);
                repo.write(&[("manifests-example/web.yaml", &edited)]);
                commits.push(repo.commit_all(&format!("web: {new}")));
            }
            Step::DeployDev => deploy_dev(&pipeline, step, &context),
            Step::Promote { src, dst, reference } => {
                let reference = reference.map(|i| commits[i % commits.len()].to_string());
                let mut revision: Vec<&str> = Vec::new();
                if let Some(reference) = &reference {
                    revision.extend(["--ref", reference.as_str()]);
                }
                let plan_args =
                    [&["plan", dst, "--from", src, "--output", "json"][..], &revision].concat();
                let plan = pipeline.ferry(&plan_args);
                let planned = json(&plan, &context(step, "plan --from", &plan));
                let promote_args =
                    [&["promote", src, dst, "--yes", "--output", "json"][..], &revision].concat();
                let promote = pipeline.ferry(&promote_args);
                assert_eq!(promote.code, Some(0), "{}", context(step, "promote", &promote));
                let promoted = json(&promote, &context(step, "promote", &promote));
                let recorded = match promoted["outcome"].as_str() {
                    Some("released") => {
                        assert_eq!(plan.code, Some(2), "{}", context(step, "plan", &plan));
                        &promoted["release"]["plan_hash"]
                    }
                    Some("up-to-date") => {
                        assert_eq!(plan.code, Some(0), "{}", context(step, "plan", &plan));
                        &promoted["plan"]["hash"]
                    }
                    _ => panic!("{}", context(step, "promote outcome", &promote)),
                };
                assert_eq!(
                    &planned["hash"],
                    recorded,
                    "{}\nplan: {planned:#}\npromote: {promoted:#}",
                    context(step, "the plan hash differs from the promotion's", &promote)
                );
                let again = pipeline.ferry(&[&["plan", dst][..], &revision].concat());
                assert_eq!(again.code, Some(0), "{}", context(step, "plan right after", &again));
            }
        }
    }
}

/// The dev, staging, prod pipeline with the example's images in dev's
/// registry (returned).
async fn with_images_in_dev() -> (Pipeline, Registry) {
    let pipeline = Pipeline::org_per_env().await;
    let registry = Registry::new(
        &pipeline.sim.registry_host("acme-dev").expect("registry"),
        token("acme-dev"),
    );
    for (name, tag) in IMAGES {
        registry.push_image(name, tag, &Image::new(&format!("{name}-{tag}"), "amd64")).await;
    }
    (pipeline, registry)
}

/// The first environment deployed from git through a saved plan, after
/// which it plans no changes.
fn deploy_dev(pipeline: &Pipeline, step: &Step, context: &dyn Fn(&Step, &str, &Run) -> String) {
    let saved = pipeline.ferry(&["plan", "dev", "--out", "dev.json"]);
    if saved.code == Some(2) {
        let applied = pipeline.ferry(&["apply", "dev.json", "--yes"]);
        assert_eq!(applied.code, Some(0), "{}", context(step, "apply dev.json", &applied));
    } else {
        assert_eq!(saved.code, Some(0), "{}", context(step, "plan dev", &saved));
    }
    let again = pipeline.ferry(&["plan", "dev"]);
    assert_eq!(again.code, Some(0), "{}", context(step, "plan dev right after", &again));
}

fn json(run: &Run, context: &str) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {context}"))
}

/// `text` with the value of every `key:` line set to `value`.
fn set_field(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}: ");
    text.lines()
        .map(|line| match line.trim_start().strip_prefix(&prefix) {
            Some(_) => {
                format!("{}{prefix}{value}\n", &line[..line.len() - line.trim_start().len()])
            }
            None => format!("{line}\n"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_digest_is_no_change_while_the_tag_in_git_still_points_at_it() {
    let (pipeline, registry) = with_images_in_dev().await;
    let context = |step: &Step, what: &str, run: &Run| {
        format!("{step:?}: {what}\n{}\n{}", run.stdout, run.stderr)
    };
    deploy_dev(&pipeline, &Step::DeployDev, &context);
    for (src, dst) in [("dev", "staging"), ("staging", "dev")] {
        let run = pipeline.ferry(&["promote", src, dst, "--yes"]);
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    }
    // dev, the first environment, now runs staging's digests, pinned, while
    // git writes tags that point at them: nothing to change.
    let (_, api) = pipeline.api("acme-dev").get("/org/acme-dev/gvc/app/workload/api").await;
    let running = api["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned();
    assert!(running.starts_with("/org/acme-dev/image/api@sha256:"), "{running}");
    let plan = pipeline.ferry(&["plan", "dev"]);
    assert_eq!(plan.code, Some(0), "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("Images: as the manifests write them"), "{}", plan.stdout);

    // Once the tag moves, the workload follows git's tag, pinned by the
    // digest it points at now (a deploy pins every image of the registry).
    let rebuilt = Image::new("api-1.4.2-rebuilt", "amd64");
    registry.push_image("api", "1.4.2", &rebuilt).await;
    let plan = pipeline.ferry(&["plan", "dev", "--output", "json"]);
    assert_eq!(plan.code, Some(2), "{}\n{}", plan.stdout, plan.stderr);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("JSON plan");
    let images = plan["images"].as_array().expect("images");
    let mut moved: Vec<(&str, &str)> = images
        .iter()
        .map(|i| (i["workload"].as_str().unwrap_or(""), i["after"].as_str().unwrap_or("")))
        .collect();
    moved.sort_unstable();
    let pinned = format!("/org/acme-dev/image/api@{}", rebuilt.digest());
    assert_eq!(moved, [("api", pinned.as_str()), ("db-migrate", pinned.as_str())], "{plan:#}");
}
