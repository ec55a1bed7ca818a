//! Deployments: rollout after the sim's delay, and every reason a
//! workload never becomes ready.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::oci::{Image, Registry};
use crate::support::sim::{self, Api, DEV, DEV_TOKEN, PROD, PROD_TOKEN, Sim};

/// A GVC `app` in `org` over two locations, plus `extra` spec fields.
async fn gvc(api: &Api, org: &str, extra: Value) {
    let mut spec = json!({"staticPlacement": {"locationLinks": ["//location/aws-us-west-2", "//location/aws-us-east-2"]}});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, _) =
        api.put(&format!("/org/{org}/gvc"), json!({"name": "app", "spec": spec})).await;
    assert!(status.is_success());
}

async fn workload(api: &Api, org: &str, body: Value) -> Value {
    let (status, item) = api.put(&format!("/org/{org}/gvc/app/workload"), body).await;
    assert!(status.is_success(), "{item}");
    item
}

fn statuses(list: &Value) -> Vec<&Value> {
    list["items"].as_array().unwrap().iter().map(|d| &d["status"]).collect()
}

fn all_ready_at(version: u64) -> impl Fn(&Value) -> bool {
    move |list| {
        let items = statuses(list);
        !items.is_empty()
            && items.iter().all(|s| {
                s["ready"] == true
                    && s["lastProcessedVersion"] == version
                    && s["versions"][0]["ready"] == true
            })
    }
}

#[tokio::test]
async fn a_new_version_rolls_out_after_the_delay() {
    let sim = sim::start().await;
    sim.set_rollout_delay(Duration::from_millis(700));
    let api = Api::new(&sim, Some(DEV_TOKEN));
    Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN)
        .push_image("api", "1", &Image::new("roll", "amd64"))
        .await;
    gvc(&api, DEV, json!({})).await;
    workload(&api, DEV, json!({"name": "api", "spec": {"type": "standard", "containers": [{"name": "main", "image": "//image/api:1"}]}})).await;
    let path = "/org/acme-dev/gvc/app/workload/api/deployment";
    let (_, early) = api.get(path).await;
    let names: Vec<&str> =
        early["items"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["aws-us-east-2", "aws-us-west-2"]);
    assert!(
        statuses(&early)
            .iter()
            .all(|s| s["ready"] == false && s["internal"]["syncFailed"] == false)
    );
    let done = api.wait_for(path, 10, all_ready_at(1)).await;
    let status = statuses(&done)[0];
    assert_eq!(status["expectedDeploymentVersion"], 1);
    assert_eq!(status["versions"][0]["workload"], 1);
    assert_eq!(status["versions"][0]["containers"]["main"]["image"], "/org/acme-dev/image/api:1");

    // A second version: the old one keeps serving until the new one lands.
    api.patch("/org/acme-dev/gvc/app/workload/api", json!({"spec": {"$patch/containers": [{"name": "main", "image": "//image/api:1", "cpu": "100m"}]}})).await;
    let (_, rolling) = api.get(path).await;
    assert!(
        statuses(&rolling).iter().all(|s| s["lastProcessedVersion"] == 1 && s["ready"] == true)
    );
    api.wait_for(path, 10, all_ready_at(2)).await;
    let (status, one) = api.get(&format!("{path}/aws-us-west-2")).await;
    assert_eq!((status, one["name"].as_str()), (StatusCode::OK, Some("aws-us-west-2")));
}

#[tokio::test]
async fn missing_images_and_forced_failures_never_become_ready() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    gvc(&api, DEV, json!({})).await;
    Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN)
        .push_image("api", "1", &Image::new("fail", "amd64"))
        .await;
    workload(&api, DEV, json!({"name": "ghost", "spec": {"type": "standard", "containers": [{"name": "main", "image": "//image/api:9.9"}]}})).await;
    workload(
        &api,
        DEV,
        json!({"name": "broken", "tags": {"ferry-sim/readiness": "fail"},
        "spec": {"type": "standard", "containers": [{"name": "main", "image": "//image/api:1"}]}}),
    )
    .await;
    workload(&api, DEV, json!({"name": "external", "spec": {"type": "serverless", "containers": [{"name": "main", "image": "nginx:1.27"}]}})).await;
    api.wait_for("/org/acme-dev/gvc/app/workload/external/deployment", 10, all_ready_at(1)).await;

    for (name, why) in [
        ("ghost", "api:9.9 not found in the registry of org 'acme-dev'"),
        ("broken", "ferry-sim/readiness=fail"),
    ] {
        let path = format!("/org/acme-dev/gvc/app/workload/{name}/deployment");
        let list = api
            .wait_for(&path, 10, |l| statuses(l).iter().all(|s| s["lastProcessedVersion"] == 1))
            .await;
        for status in statuses(&list) {
            assert_eq!(status["ready"], false);
            assert!(status["message"].as_str().unwrap().contains(why), "{status}");
        }
    }
}

#[tokio::test]
async fn another_orgs_image_needs_a_pull_secret() {
    let sim = sim::start().await;
    let prod = Api::new(&sim, Some(PROD_TOKEN));
    let dev_host = sim.registry_host(DEV).unwrap();
    Registry::new(&dev_host, DEV_TOKEN).push_image("api", "1", &Image::new("cross", "amd64")).await;
    gvc(&prod, PROD, json!({})).await;
    workload(&prod, PROD, json!({"name": "api", "spec": {"type": "standard", "containers": [{"name": "main", "image": "acme-dev.registry.cpln.io/api:1"}]}})).await;
    let path = "/org/acme-prod/gvc/app/workload/api/deployment";
    let list = prod
        .wait_for(path, 10, |l| statuses(l).iter().all(|s| s["lastProcessedVersion"] == 1))
        .await;
    assert!(
        statuses(&list).iter().all(|s| s["ready"] == false
            && s["message"].as_str().unwrap().contains("no docker pull secret")),
        "{list}"
    );

    // A docker secret with a *prod* token for the dev registry does not help.
    let auths = |token: &str| {
        json!({"auths": {"acme-dev.registry.cpln.io": {"username": "<token>", "password": token}}})
            .to_string()
    };
    prod.put(
        "/org/acme-prod/secret",
        json!({"name": "dev-pull", "type": "docker", "data": auths(PROD_TOKEN)}),
    )
    .await;
    prod.patch(
        "/org/acme-prod/gvc/app",
        json!({"spec": {"pullSecretLinks": ["//secret/dev-pull"]}}),
    )
    .await;
    // Deployments are judged when they are read: the wrong token counts at once.
    let (_, list) = prod.get(path).await;
    assert!(
        statuses(&list)
            .iter()
            .all(|s| s["ready"] == false
                && s["message"].as_str().unwrap().contains("holds a token for")),
        "{list}"
    );

    prod.patch("/org/acme-prod/secret/dev-pull", json!({"data": auths(DEV_TOKEN)})).await;
    prod.wait_for(path, 10, all_ready_at(1)).await;
}

#[tokio::test]
async fn suspended_locations_and_cron_follow_cpln_rules() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    gvc(&api, DEV, json!({})).await;
    workload(&api, DEV, json!({"name": "half", "spec": {"type": "standard",
        "containers": [{"name": "main", "image": "nginx"}],
        "localOptions": [{"location": "aws-us-east-2", "autoscaling": {"minScale": 0, "maxScale": 0}}]}})).await;
    let list = api
        .wait_for("/org/acme-dev/gvc/app/workload/half/deployment", 10, |l| {
            statuses(l).iter().all(|s| s["lastProcessedVersion"] == 1)
        })
        .await;
    let by_name = |n: &str| {
        list["items"].as_array().unwrap().iter().find(|d| d["name"] == n).unwrap()["status"].clone()
    };
    assert_eq!(by_name("aws-us-east-2")["ready"], false);
    assert!(by_name("aws-us-east-2")["message"].as_str().unwrap().contains("suspended"));
    assert_eq!(by_name("aws-us-west-2")["ready"], true);
    let (_, item) = api.get("/org/acme-dev/gvc/app/workload/half").await;
    assert_eq!(item["status"]["suspendedStatus"], "partiallySuspended");

    workload(&api, DEV, json!({"name": "nightly", "spec": {"type": "cron", "containers": [{"name": "main", "image": "busybox"}],
        "job": {"schedule": "0 3 * * *"}}})).await;
    let list = api
        .wait_for("/org/acme-dev/gvc/app/workload/nightly/deployment", 10, all_ready_at(1))
        .await;
    assert!(statuses(&list).iter().all(|s| s["jobExecutions"] == json!([])));
}

#[tokio::test]
async fn an_org_on_an_external_registry_sees_what_was_pushed_there() {
    use crate::support::registry_server::{AuthMode, RegistryServer};
    let external = RegistryServer::start_with_password(AuthMode::Token, DEV_TOKEN);
    let config = ferry::sim::SimConfig::new()
        .with_rollout_delay(Duration::from_millis(50))
        .with_org_on_registry(DEV, DEV_TOKEN, &external.target.host);
    let sim = Sim::start(config).await;
    assert_eq!(sim.registry_host(DEV).as_deref(), Some(external.target.host.as_str()));
    assert_eq!(sim.registry_addr(DEV), None, "the simulator serves no registry of its own");
    let api = Api::new(&sim, Some(DEV_TOKEN));
    gvc(&api, DEV, json!({})).await;
    let path = "/org/acme-dev/gvc/app/workload/api/deployment";
    workload(&api, DEV, json!({"name": "api", "spec": {"type": "standard", "containers": [{"name": "main", "image": "//image/api:1"}]}})).await;
    let missing = api
        .wait_for(path, 10, |list| {
            statuses(list).iter().all(|s| s["lastProcessedVersion"] == 1 && s["ready"] == false)
        })
        .await;
    assert!(
        statuses(&missing)[0]["message"].as_str().unwrap().contains("not found in the registry"),
        "{missing:#}"
    );

    // Pushed to the external registry (through its token server): it
    // becomes an image resource, and the workload becomes ready.
    use crate::support::oci_image::{Format, RegistryClient, TestImage};
    let image = TestImage::single(Format::Oci, &[2048], 41);
    RegistryClient::connect(&external.target, "api").await.push(&image, "1").await;
    let (status, resource) = api.get("/org/acme-dev/image/api:1").await;
    assert_eq!(status, StatusCode::OK, "{resource}");
    assert_eq!(resource["digest"].as_str(), Some(image.top.digest.as_str()));
    api.wait_for(path, 10, all_ready_at(1)).await;
}
