//! Locations: the built-in catalogue and the config's custom ones over
//! HTTP and through `cpln location get`, and a GVC on a location the org
//! does not have.

use std::time::Duration;

use ferry::sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::cpln::Cpln;
use crate::support::oci::{Image, Registry};
use crate::support::sim::{self, Api, DEV, DEV_TOKEN, Sim, assert_error_body};

/// A simulator read from a config file with one custom location.
async fn with_custom_location() -> (Sim, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sim.yaml");
    let config = format!(
        "orgs:\n  - {{name: {DEV}, tokens: [{DEV_TOKEN}]}}\nlocations:\n  - name: edge-lab\n    geo: {{city: Lyon, country: France, continent: Europe, lat: 45.76, lon: 4.84}}\n"
    );
    std::fs::write(&file, config).expect("config");
    let sim = Sim::start(SimConfig::load(&file).expect("config loads")).await;
    (sim, dir)
}

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().expect("items").iter().filter_map(|l| l["name"].as_str()).collect()
}

#[tokio::test]
async fn the_api_serves_the_catalogue_and_the_configs_custom_locations() {
    let (sim, _dir) = with_custom_location().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let (status, list) = api.get("/org/acme-dev/location").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&list["kind"], &list["itemKind"]), (&json!("list"), &json!("location")));
    let listed = names(&list);
    for name in ["aws-eu-central-1", "aws-us-east-2", "gcp-us-west1", "azure-eastus2", "edge-lab"] {
        assert!(listed.contains(&name), "{name} in {listed:?}");
    }
    assert!(listed.len() > 60, "{listed:?}");

    let (status, gcp) = api.get("/org/acme-dev/location/gcp-us-west1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        [&gcp["kind"], &gcp["origin"], &gcp["provider"], &gcp["region"], &gcp["spec"]["enabled"]],
        [&json!("location"), &json!("builtin"), &json!("gcp"), &json!("us-west1"), &json!(true)]
    );
    assert_eq!(gcp["status"]["geo"]["state"], "Oregon");
    assert_eq!(gcp["links"][0]["href"], "/org/acme-dev/location/gcp-us-west1");

    let (_, custom) = api.get("/org/acme-dev/location/edge-lab").await;
    assert_eq!(
        [&custom["origin"], &custom["provider"], &custom["region"]],
        [&json!("custom"), &json!("byok"), &json!("edge-lab")]
    );
    assert_eq!(custom["tags"]["cpln/city"], "Lyon");
    assert_eq!(custom["status"]["geo"]["lat"], 45.76);

    let (status, body) = api.get("/org/acme-dev/location/aws-mars-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn cpln_location_get_lists_the_catalogue_and_the_custom_location() {
    let (sim, _dir) = with_custom_location().await;
    let cpln = Cpln::new(&sim, DEV, DEV_TOKEN);
    let limit = Duration::from_secs(60);
    let out = cpln.ok(&["location", "get", "--max", "0", "-o", "json"], limit).await;
    let list: Value = serde_json::from_str(&out).expect("JSON");
    let listed = names(&list);
    for name in ["aws-eu-central-1", "gcp-us-west1", "azure-eastus2", "edge-lab"] {
        assert!(listed.contains(&name), "{name} in {out}");
    }
    let table = cpln.ok(&["location", "get", "azure-eastus2", "edge-lab"], limit).await;
    let row = |name: &str| {
        table.lines().find(|l| l.starts_with(&format!("|{name} "))).unwrap_or_default().to_owned()
    };
    for word in ["azure", "eastus2", "builtin", "true"] {
        assert!(row("azure-eastus2").contains(word), "{word}: {table}");
    }
    for word in ["byok", "custom"] {
        assert!(row("edge-lab").contains(word), "{word}: {table}");
    }
}

#[tokio::test]
async fn a_gvc_on_a_location_the_org_lacks_is_refused_and_not_stored() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let gvc = |links: Value| json!({"kind": "gvc", "name": "app", "spec": {"staticPlacement": {"locationLinks": links}}});

    let (status, body) = api
        .put(
            "/org/acme-dev/gvc",
            gvc(json!(["//location/gcp-us-west1", "//location/gcp-us-west9"])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, 400);
    assert_eq!(
        body["message"],
        "spec.staticPlacement.locationLinks[1]: location 'gcp-us-west9' does not exist"
    );
    assert_eq!(
        body["details"]["locations"],
        json!([{"field": "spec.staticPlacement.locationLinks[1]", "location": "gcp-us-west9"}])
    );
    assert_eq!(api.get("/org/acme-dev/gvc/app").await.0, StatusCode::NOT_FOUND);

    // Known locations are accepted; adding an unknown one by PATCH is not.
    let (status, _) = api.put("/org/acme-dev/gvc", gvc(json!(["//location/azure-eastus2"]))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .patch(
            "/org/acme-dev/gvc/app",
            json!({"spec": {"staticPlacement": {"$append/locationLinks": ["/org/acme-dev/location/nowhere-1"]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error_body(&body, 400);
    let (_, live) = api.get("/org/acme-dev/gvc/app").await;
    assert_eq!(
        live["spec"]["staticPlacement"]["locationLinks"],
        json!(["/org/acme-dev/location/azure-eastus2"])
    );
    assert_eq!(live["version"], 1);
}

#[tokio::test]
async fn a_workload_becomes_ready_in_every_catalogue_location() {
    let (sim, _dir) = with_custom_location().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let (_, list) = api.get("/org/acme-dev/location").await;
    let links: Vec<String> = names(&list).iter().map(|n| format!("//location/{n}")).collect();
    let gvc = json!({"kind": "gvc", "name": "world", "spec": {"staticPlacement": {"locationLinks": links}}});
    assert_eq!(api.put("/org/acme-dev/gvc", gvc).await.0, StatusCode::CREATED);
    let workload = json!({"kind": "workload", "name": "hello", "spec": {"type": "standard",
        "containers": [{"name": "main", "image": "//image/hello:1.0"}]}});
    let registry = Registry::new(&sim.registry_host(DEV).expect("registry"), DEV_TOKEN);
    registry.push_image("hello", "1.0", &Image::new("hello-1.0", "amd64")).await;
    assert_eq!(api.put("/org/acme-dev/gvc/world/workload", workload).await.0, StatusCode::CREATED);

    let deployments = api
        .wait_for("/org/acme-dev/gvc/world/workload/hello/deployment", 20, |d| {
            d["items"].as_array().is_some_and(|items| {
                items.iter().all(|i| {
                    i["status"]["ready"] == true && i["status"]["lastProcessedVersion"] == 1
                })
            })
        })
        .await;
    let mut deployed: Vec<&str> = names(&deployments);
    let mut expected = names(&list);
    deployed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(deployed, expected);
}
