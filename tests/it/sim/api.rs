//! The REST API: auth, error bodies, writes and versions, PATCH
//! directives, lists, queries, secrets, GVC deletion, persistence.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::sim::{self, Api, DEV, DEV_TOKEN, PROD, PROD_TOKEN, Sim, assert_error_body};

const GVC: &str = "/org/acme-dev/gvc";

async fn with_gvc(api: &Api) {
    let (status, _) = api
        .put(
            GVC,
            json!({"kind": "gvc", "name": "app",
        "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-west-2"]}}}),
        )
        .await;
    assert!(status.is_success());
}

#[tokio::test]
async fn tokens_are_scoped_to_their_org() {
    let sim = sim::start().await;
    let dev = Api::new(&sim, Some(DEV_TOKEN));
    let (status, _) = dev.get("/org/acme-dev/secret").await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = dev.get("/org/acme-prod/secret").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_body(&body, 403);
    let (status, body) =
        dev.put("/org/acme-prod/secret", json!({"name": "x1", "type": "opaque"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_body(&body, 403);

    let (status, body) = Api::new(&sim, None).get("/org/acme-dev/secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, 401);
    let (status, body) = Api::new(&sim, Some("bogus")).get("/org/acme-dev/gvc").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, 401);

    let (status, org) = Api::new(&sim, Some(PROD_TOKEN)).get("/org/acme-prod").await;
    assert_eq!((status, org["name"].as_str()), (StatusCode::OK, Some(PROD)));
    // The refused write left nothing behind in prod.
    let (_, secrets) = Api::new(&sim, Some(PROD_TOKEN)).get("/org/acme-prod/secret").await;
    assert_eq!(secrets["items"], json!([]));
}

#[tokio::test]
async fn put_upserts_post_creates_and_versions_move_only_on_change() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    with_gvc(&api).await;
    let workload = json!({"kind": "workload", "name": "api", "gvc": "app", "spec": {"type": "standard",
        "containers": [{"name": "main", "image": "//image/api:1", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}});
    let path = "/org/acme-dev/gvc/app/workload";
    let (status, created, headers) = api.send(Method::PUT, path, Some(workload.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["location"], "/org/acme-dev/gvc/app/workload/api");
    assert_eq!(created["version"], 1);
    assert_eq!(created["description"], "api");
    assert_eq!(created["spec"]["containers"][0]["image"], "/org/acme-dev/image/api:1");
    assert_eq!(created["spec"]["containers"][0]["env"][0]["name"], "A");
    let rels: Vec<&str> =
        created["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, ["self", "org", "gvc", "deployment"]);

    let (status, same) = api.put(path, workload.clone()).await;
    assert_eq!((status, same["version"].clone()), (StatusCode::OK, json!(1)));
    // What a GET returns, written back, changes nothing either.
    let (_, live) = api.get("/org/acme-dev/gvc/app/workload/api").await;
    let (_, again) = api.put(path, live.clone()).await;
    assert_eq!(again["version"], 1);
    assert_eq!(again["lastModified"], live["lastModified"]);

    let (status, body) = api.post(path, workload).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_body(&body, 409);

    let (status, changed) = api.put(path, json!({"name": "api", "tags": {"team": "pay"}})).await;
    assert_eq!((status, changed["version"].clone()), (StatusCode::OK, json!(2)));
    assert_eq!(
        changed["spec"]["containers"][0]["name"], "main",
        "PUT merges into the existing item"
    );
}

#[tokio::test]
async fn patch_directives_apply_over_http() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    with_gvc(&api).await;
    api.put(
        "/org/acme-dev/gvc/app/workload",
        json!({"name": "api", "tags": {"a": "1", "b": "2"},
        "spec": {"type": "standard", "containers": [
            {"name": "main", "image": "//image/api:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "nginx:1.27"}]}}),
    )
    .await;
    let item = "/org/acme-dev/gvc/app/workload/api";
    let (status, body) = api.patch(item, json!({"tags": {"a": null, "c": "3"},
        "spec": {"$patch/containers": [{"name": "main", "image": "//image/api:2", "$patch/env": [{"name": "B", "value": "2"}]}]}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["tags"], json!({"b": "2", "c": "3"}));
    assert_eq!(body["spec"]["containers"][0]["image"], "/org/acme-dev/image/api:2");
    assert_eq!(
        body["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(body["spec"]["containers"][1]["name"], "side");
    assert_eq!(body["version"], 2);

    let (_, body) = api
        .patch(
            item,
            json!({"$replace/tags": {"only": "this"},
        "spec": {"$drop/containers": ["side"], "$drop": ["firewallConfig"]}}),
        )
        .await;
    assert_eq!(body["tags"], json!({"only": "this"}));
    assert_eq!(body["spec"]["containers"].as_array().unwrap().len(), 1);
    assert_eq!(body["version"], 3);

    let (_, body) = api
        .patch(
            item,
            json!({"spec": {"$append/containers": [{"name": "extra", "image": "busybox"}]}}),
        )
        .await;
    assert_eq!(body["spec"]["containers"][1]["name"], "extra");

    let (status, body) = api.patch(item, json!({"$frobnicate": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_body(&body, 400);
    let (status, body) =
        api.patch("/org/acme-dev/gvc/app/workload/nope", json!({"tags": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, 404);
    let (status, body) = api.patch(item, json!({"spec": {"type": "cron"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "type is immutable: {body}");
}

#[tokio::test]
async fn lists_page_and_queries_filter() {
    let sim = Sim::start(sim::config().with_page_size(2)).await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    for (name, team) in [("s-one", "a"), ("s-two", "b"), ("s-three", "a")] {
        api.put(
            "/org/acme-dev/secret",
            json!({"name": name, "type": "opaque", "tags": {"team": team},
            "data": {"payload": "x", "encoding": "plain"}}),
        )
        .await;
    }
    let (_, page) = api.get("/org/acme-dev/secret").await;
    assert_eq!((page["kind"].as_str(), page["itemKind"].as_str()), (Some("list"), Some("secret")));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next =
        page["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"]
            .as_str()
            .unwrap()
            .to_owned();
    let (_, rest) = api.get(&next).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["links"].as_array().unwrap().iter().all(|l| l["rel"] != "next"));

    let (status, result) = api.post("/org/acme-dev/secret/-query",
        json!({"kind": "secret", "spec": {"match": "all", "terms": [{"tag": "team", "value": "a"}]}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["kind"], "queryresult");
    let names: Vec<&str> =
        result["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["s-one", "s-three"]);
    let (_, result) = api.post("/org/acme-dev/secret/-query",
        json!({"spec": {"match": "any", "terms": [{"property": "name", "value": "s-two"}, {"tag": "team", "value": "zzz"}]}})).await;
    assert_eq!(result["items"].as_array().unwrap().len(), 1);
    let (_, result) = api
        .post(
            "/org/acme-dev/secret/-query",
            json!({"spec": {"match": "none", "terms": [{"property": "name", "value": "s-two"}]}}),
        )
        .await;
    assert_eq!(result["items"].as_array().unwrap().len(), 2);

    // Secrets hide their data except through -reveal.
    let (_, one) = api.get("/org/acme-dev/secret/s-one").await;
    assert!(one.get("data").is_none());
    let (_, revealed) = api.get("/org/acme-dev/secret/s-one/-reveal").await;
    assert_eq!(revealed["data"]["payload"], "x");
}

#[tokio::test]
async fn gvc_deletion_cascades_and_waits_for_volumesets() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    with_gvc(&api).await;
    api.put("/org/acme-dev/gvc/app/identity", json!({"name": "api-id"})).await;
    api.put(
        "/org/acme-dev/gvc/app/workload",
        json!({"name": "api", "spec": {"type": "standard",
        "containers": [{"name": "main", "image": "nginx"}]}}),
    )
    .await;
    api.put(
        "/org/acme-dev/gvc/app/volumeset",
        json!({"name": "data", "spec": {"initialCapacity": 10, "performanceClass": "general-purpose-ssd"}}),
    )
    .await;
    let (_, across) = api.get("/org/acme-dev/workload").await;
    assert_eq!(across["items"][0]["name"], "api");

    let (status, body, _) = api.send(Method::DELETE, "/org/acme-dev/gvc/app", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_body(&body, 409);
    assert_eq!(api.delete("/org/acme-dev/gvc/app/volumeset/data").await, StatusCode::NO_CONTENT);
    assert_eq!(api.delete("/org/acme-dev/gvc/app").await, StatusCode::NO_CONTENT);
    let (status, body) = api.get("/org/acme-dev/gvc/app/workload/api").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, 404);
    assert_eq!(api.get("/org/acme-dev/identity").await.1["items"], json!([]));
    let (status, body, _) = api.send(Method::DELETE, "/org/acme-dev/gvc/app", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, 404);
    // GVC-scoped writes need their GVC.
    let (status, _) = api.put("/org/acme-dev/gvc/app/identity", json!({"name": "late"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn images_cannot_be_created_through_the_api() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let (status, body) = api.post("/org/acme-dev/image", json!({"name": "api:1"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "You can create an image only by pushing");
    let (status, _) = api.get("/org/acme-dev/image/api:1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(sim::config().with_state_dir(dir.path())).await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    with_gvc(&api).await;
    api.patch("/org/acme-dev/gvc/app", json!({"tags": {"kept": "yes"}})).await;
    let registry = crate::support::oci::Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    registry.push_image("api", "1.0", &crate::support::oci::Image::new("restart", "amd64")).await;
    let (_, before) = api.get("/org/acme-dev/gvc/app").await;
    sim.shutdown().await;
    assert!(!dir.path().join("state.json.tmp").exists());

    let sim = Sim::start(sim::config().with_state_dir(dir.path())).await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    let (status, after) = api.get("/org/acme-dev/gvc/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before);
    let (status, image) = api.get("/org/acme-dev/image/api:1.0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(image["repository"], "api");
}

#[tokio::test]
async fn workloads_are_queried_at_the_org_narrowed_by_their_gvc_as_cpln_does() {
    let sim = sim::start().await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    for gvc in ["app", "web"] {
        let gvc_body = json!({"kind": "gvc", "name": gvc,
            "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-west-2"]}}});
        assert!(api.put(GVC, gvc_body).await.0.is_success());
        let workload = json!({"kind": "workload", "name": format!("{gvc}-api"), "tags": {"team": "a"},
            "spec": {"type": "standard", "containers": [{"name": "main", "image": "nginx:1.27"}]}});
        let (status, body) = api.put(&format!("{GVC}/{gvc}/workload"), workload).await;
        assert!(status.is_success(), "{body}");
    }
    let names = |result: &serde_json::Value| -> Vec<String> {
        let items = result["items"].as_array().cloned().unwrap_or_default();
        items.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect()
    };

    let tagged = json!({"kind": "workload", "spec": {"match": "all", "terms": [{"op": "=", "tag": "team", "value": "a"}]}});
    let (status, every) = api.post("/org/acme-dev/workload/-query", tagged).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&every), ["app-api", "web-api"]);
    let in_web = json!({"kind": "workload", "spec": {"match": "all", "terms": [
        {"op": "=", "tag": "team", "value": "a"}, {"op": "=", "rel": "gvc", "value": "web"}]}});
    let (_, web) = api.post("/org/acme-dev/workload/-query", in_web.clone()).await;
    assert_eq!(names(&web), ["web-api"]);
    // No source has a GVC-level query path.
    let (status, _) = api.post("/org/acme-dev/gvc/web/workload/-query", in_web).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn query_results_come_in_pages_that_ferrys_client_follows() {
    let sim = Sim::start(sim::config().with_page_size(2)).await;
    let api = Api::new(&sim, Some(DEV_TOKEN));
    for name in ["q-one", "q-two", "q-three", "q-other"] {
        let team = if name == "q-other" { "b" } else { "a" };
        let secret = json!({"kind": "secret", "name": name, "type": "opaque", "tags": {"team": team},
            "data": {"payload": "x", "encoding": "plain"}});
        assert!(api.put("/org/acme-dev/secret", secret).await.0.is_success());
    }
    let query = json!({"kind": "secret", "spec": {"match": "all", "terms": [{"op": "=", "tag": "team", "value": "a"}]}});

    let (_, first) = api.post("/org/acme-dev/secret/-query", query.clone()).await;
    assert_eq!(
        (first["kind"].as_str(), first["items"].as_array().map(Vec::len)),
        (Some("queryresult"), Some(2))
    );
    let next = first["links"].as_array().and_then(|l| l.iter().find(|l| l["rel"] == "next"));
    let href = next.and_then(|n| n["href"].as_str()).expect("a next link").to_owned();
    assert!(href.starts_with("/org/acme-dev/secret/-query?"), "{href}");
    let (status, rest) = api.get(&href).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (rest["kind"].as_str(), rest["items"].as_array().map(Vec::len)),
        (Some("list"), Some(1))
    );

    let settings =
        ferry::api::ClientSettings::new(sim.api_url(), ferry::api::Token::new(DEV_TOKEN));
    let client = ferry::api::Client::new(settings).expect("a client");
    let found = client.query("/org/acme-dev/secret/-query", &query).await.expect("every page");
    let mut names: Vec<&str> = found.iter().filter_map(|i| i["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["q-one", "q-three", "q-two"]);
}
