//! `ferry deploy ENV` end to end on the simulator: git into the first
//! environment with an image CI just pushed (`--image`), pinned by digest
//! and recorded, so that the next `promote` ships exactly it; refused for
//! an environment that has a source (unless `--force`) and for an image
//! the registry lacks, before anything is written.

use serde_json::Value;

use crate::promote::{
    IMAGES, Pipeline, digest_of, images_of, once_more_changes_nothing, token, writes,
};
use crate::support::oci::{Image, Registry};

/// The example's images pushed into `org`'s registry, as CI would.
pub(crate) async fn push_example_images(pipeline: &Pipeline, org: &str) -> Registry {
    let registry = Registry::new(&pipeline.sim.registry_host(org).expect("registry"), token(org));
    for (repo, tag) in IMAGES {
        registry.push_image(repo, tag, &Image::new(&format!("{org}-{repo}-{tag}"), "amd64")).await;
    }
    registry
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_with_a_fresh_image_records_it_and_the_next_promote_ships_exactly_it() {
    let pipeline = Pipeline::org_per_env().await;
    let registry = push_example_images(&pipeline, "acme-dev").await;
    // CI built api at commit abc123 and pushed it, without a tag in git.
    let fresh = Image::new("api-abc123", "amd64");
    registry.push_image("api", "abc123", &fresh).await;
    let override_ = "api=//image/api:abc123";

    let planned = pipeline.ferry(&["plan", "dev", "--image", override_, "--output", "json"]);
    assert_eq!(planned.code, Some(2), "{}", planned.stderr);
    let plan = json(&planned.stdout);

    let deployed = pipeline.ferry(&["deploy", "dev", "--image", override_, "--yes"]);
    assert_eq!(deployed.code, Some(0), "{}\n{}", deployed.stdout, deployed.stderr);

    // Both workloads running repository api run the fresh image, pinned;
    // the others git's tags, pinned by what dev's registry holds.
    let dev = images_of(&pipeline.api("acme-dev"), "acme-dev", "app").await;
    let pinned = format!("/org/acme-dev/image/api@{}", fresh.digest());
    for (workload, image) in &dev {
        match workload.as_str() {
            "api" | "db-migrate" => assert_eq!(image, &pinned, "{workload}"),
            _ => assert!(!digest_of(image).is_empty(), "{workload}: {image} is not pinned"),
        }
    }

    // The release (read from its secret in dev's org) records the images
    // by digest and the plan `ferry plan dev --image` showed.
    let history = json(&pipeline.ferry(&["history", "dev", "--output", "json"]).stdout);
    let release = &history["releases"][0];
    assert_eq!(release["source"], Value::Null);
    assert_eq!(release["plan_hash"], plan["hash"], "plan dev previews exactly the deploy");
    let recorded: Vec<(&str, &str)> = release["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| (i["workload"].as_str().unwrap_or(""), i["digest"].as_str().unwrap_or("")))
        .collect();
    assert!(recorded.contains(&("api", fresh.digest().as_str())), "{recorded:?}");
    assert!(recorded.contains(&("db-migrate", fresh.digest().as_str())), "{recorded:?}");
    assert_eq!(release["kind"], "deploy");

    // The next promotion out of dev ships exactly what the deploy ran.
    let staged = pipeline.ferry(&["promote", "dev", "staging", "--yes"]);
    assert_eq!(staged.code, Some(0), "{}\n{}", staged.stdout, staged.stderr);
    let staging = images_of(&pipeline.api("acme-staging"), "acme-staging", "app").await;
    for ((workload, ran), (_, promoted)) in dev.iter().zip(&staging) {
        assert_eq!(digest_of(ran), digest_of(promoted), "{workload}: {ran} vs {promoted}");
    }
    let (_, tag) = pipeline.api("acme-staging").get("/org/acme-staging/image/api:abc123").await;
    assert_eq!(tag["digest"].as_str(), Some(fresh.digest().as_str()), "the tag came along");
    let history = json(&pipeline.ferry(&["history", "staging", "--output", "json"]).stdout);
    assert_eq!(history["releases"][0]["commit"], release["commit"], "the deploy's manifests");

    // Deploying the same again changes nothing.
    once_more_changes_nothing(
        &pipeline,
        &["deploy", "dev", "--image", override_, "--yes"],
        "acme-dev",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_with_a_source_is_promoted_into_not_deployed_unless_forced() {
    let pipeline = Pipeline::org_per_env().await;
    push_example_images(&pipeline, "acme-staging").await;
    pipeline.sim.clear_request_log();
    let refused = pipeline.ferry(&["deploy", "staging", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("staging is promoted into from dev"), "{}", refused.stderr);
    assert!(refused.stderr.contains("ferry promote dev staging"), "{}", refused.stderr);
    assert!(pipeline.sim.request_log().iter().all(|r| r.org.as_deref() != Some("acme-staging")));

    let forced = pipeline.ferry(&["deploy", "staging", "--force", "--yes"]);
    assert_eq!(forced.code, Some(0), "{}\n{}", forced.stdout, forced.stderr);
    let staging = images_of(&pipeline.api("acme-staging"), "acme-staging", "app").await;
    assert_eq!(staging.len(), 5);
    assert!(
        staging.iter().all(|(_, image)| image.starts_with("/org/acme-staging/image/")
            && !digest_of(image).is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_the_registry_lacks_is_refused_before_anything_is_written() {
    let pipeline = Pipeline::org_per_env().await;
    push_example_images(&pipeline, "acme-dev").await;
    pipeline.sim.clear_request_log();
    let refused =
        pipeline.ferry(&["deploy", "dev", "--image", "api=//image/api:never-pushed", "--yes"]);
    assert_eq!(refused.code, Some(1), "{}\n{}", refused.stdout, refused.stderr);
    // Both containers that run repository api are named, each once.
    assert_eq!(
        refused.stderr.matches("ferry::deploy::image-missing").count(),
        2,
        "{}",
        refused.stderr
    );
    for named in ["workload/api container main", "workload/db-migrate container main"] {
        assert!(refused.stderr.contains(named), "{}", refused.stderr);
    }
    assert!(
        writes(&pipeline.sim, "acme-dev").is_empty(),
        "{:?}",
        writes(&pipeline.sim, "acme-dev")
    );
    let (_, workloads) = pipeline.api("acme-dev").get("/org/acme-dev/gvc/app/workload").await;
    assert_eq!(workloads["items"].as_array().map(Vec::len).unwrap_or(0), 0);

    let unmatched = pipeline.ferry(&["deploy", "dev", "--image", "nope=//image/nope:1", "--yes"]);
    assert_eq!(unmatched.code, Some(1), "{}", unmatched.stderr);
    assert!(
        unmatched.stderr.contains("no container of dev's registry is named nope"),
        "{}",
        unmatched.stderr
    );
}
