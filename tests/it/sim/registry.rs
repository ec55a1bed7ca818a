//! The per-org OCI registries: auth, manifests kept byte for byte, blob
//! uploads of every style, mounts, reference checks, and skopeo.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::oci::{self, Image, MultiArch, OCI_INDEX, OCI_MANIFEST, Registry};
use crate::support::sim::{self, Api, DEV, DEV_TOKEN, PROD_TOKEN};

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["errors"][0]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn basic_auth_with_the_token_user_and_the_orgs_token() {
    let sim = sim::start().await;
    let host = sim.registry_host(DEV).unwrap();
    let anonymous = reqwest::get(format!("http://{host}/v2/")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"acme-dev.registry.cpln.io\""
    );
    assert_eq!(error_code(anonymous).await, "UNAUTHORIZED");
    let wrong_user = reqwest::Client::new()
        .get(format!("http://{host}/v2/"))
        .basic_auth("admin", Some(DEV_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_user.status(), StatusCode::UNAUTHORIZED);
    let prod = Registry::new(&host, PROD_TOKEN).request(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(prod.status(), StatusCode::FORBIDDEN);
    let dev = Registry::new(&host, DEV_TOKEN).request(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(dev.status(), StatusCode::OK);
}

#[tokio::test]
async fn pushed_images_come_back_exactly_and_become_image_resources() {
    let sim = sim::start().await;
    let registry = Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    let image = Image::new("exact", "amd64");
    registry.push_image("team/api", "1.4.2", &image).await;

    for reference in ["1.4.2".to_owned(), image.digest()] {
        let got = registry
            .request(Method::GET, &format!("/v2/team/api/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.headers()["docker-content-digest"].to_str().unwrap(), image.digest());
        assert_eq!(got.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(got.bytes().await.unwrap().as_ref(), image.manifest.as_slice());
    }
    let head = registry.request(Method::HEAD, "/v2/team/api/manifests/1.4.2").send().await.unwrap();
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        image.manifest.len().to_string()
    );
    let missing = registry.request(Method::GET, "/v2/team/api/manifests/9").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "MANIFEST_UNKNOWN");

    let tags: Value = registry
        .request(Method::GET, "/v2/team/api/tags/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.4.2"]));
    let catalog: Value =
        registry.request(Method::GET, "/v2/_catalog").send().await.unwrap().json().await.unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["team/api"]));

    let ranged = registry
        .request(Method::GET, &format!("/v2/team/api/blobs/{}", oci::digest(&image.layer)))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &image.layer[..10]);

    let api = Api::new(&sim, Some(DEV_TOKEN));
    let (status, resource) = api.get("/org/acme-dev/image/team/api:1.4.2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resource["name"], "team/api:1.4.2");
    assert_eq!(
        (resource["repository"].as_str(), resource["tag"].as_str()),
        (Some("team/api"), Some("1.4.2"))
    );
    assert_eq!(resource["digest"].as_str().unwrap(), image.digest());
    assert_eq!(
        resource["manifest"]["layers"][0]["digest"].as_str().unwrap(),
        oci::digest(&image.layer)
    );
    let (_, list) = api.get("/org/acme-dev/image").await;
    assert_eq!(list["itemKind"], "image");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn chunked_uploads_check_order_and_digest() {
    let sim = sim::start().await;
    let registry = Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let start = registry.request(Method::POST, "/v2/big/blobs/uploads/").send().await.unwrap();
    let mut location = start.headers()["location"].to_str().unwrap().to_owned();
    for (index, chunk) in blob.chunks(1 << 20).enumerate() {
        let begin = index * (1 << 20);
        let response = registry
            .request(Method::PATCH, &location)
            .header("content-range", format!("{begin}-{}", begin + chunk.len() - 1))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(
            response.headers()["range"].to_str().unwrap(),
            format!("0-{}", begin + chunk.len() - 1)
        );
        location = response.headers()["location"].to_str().unwrap().to_owned();
    }
    let out_of_order = registry
        .request(Method::PATCH, &location)
        .header("content-range", "0-9")
        .body(vec![0; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(out_of_order.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let done = registry
        .request(Method::PUT, &format!("{location}?digest={}", oci::digest(&blob)))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    let fetched = registry
        .request(Method::GET, &format!("/v2/big/blobs/{}", oci::digest(&blob)))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.bytes().await.unwrap().len(), blob.len());

    // A wrong digest is refused and stores nothing.
    let start = registry.request(Method::POST, "/v2/big/blobs/uploads/").send().await.unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let claimed = oci::digest(b"something else");
    let bad = registry
        .request(Method::PUT, &format!("{location}?digest={claimed}"))
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad).await, "DIGEST_INVALID");
    let head =
        registry.request(Method::HEAD, &format!("/v2/big/blobs/{claimed}")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mounts_and_reference_checks() {
    let sim = sim::start().await;
    let registry = Registry::new(&sim.registry_host(DEV).unwrap(), DEV_TOKEN);
    let image = Image::new("mount", "amd64");
    registry.push_image("src", "1", &image).await;
    let layer = oci::digest(&image.layer);
    let mounted = registry
        .request(Method::POST, &format!("/v2/dst/blobs/uploads/?mount={layer}&from=src"))
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(mounted.headers()["docker-content-digest"].to_str().unwrap(), layer);
    let config = oci::digest(&image.config);
    let refused = registry
        .request(Method::POST, &format!("/v2/dst/blobs/uploads/?mount={config}&from=nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::ACCEPTED,
        "an unmountable blob opens an upload session"
    );
    assert!(refused.headers().contains_key("location"));

    // dst has the layer but not the config: the manifest is refused.
    let early = registry.push_manifest("dst", "1", OCI_MANIFEST, &image.manifest).await;
    assert_eq!(early.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(early).await, "MANIFEST_BLOB_UNKNOWN");
    // An index before its children is refused too.
    let multi = MultiArch::new("order");
    let index = registry.push_manifest("multi", "1", OCI_INDEX, &multi.index).await;
    assert_eq!(error_code(index).await, "MANIFEST_BLOB_UNKNOWN");
    // A manifest pushed by a digest that is not its own.
    let wrong =
        registry.push_manifest("src", &oci::digest(b"x"), OCI_MANIFEST, &image.manifest).await;
    assert_eq!(error_code(wrong).await, "DIGEST_INVALID");
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed (scripts/setup.sh)");
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn skopeo_copies_a_multi_arch_index_in_and_out_keeping_its_digest() {
    let sim = sim::start().await;
    let host = sim.registry_host(DEV).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let multi = MultiArch::new("skopeo");
    multi.write_layout(&dir.path().join("in"), "1.0");
    let creds = format!("<token>:{DEV_TOKEN}");
    let source = format!("oci:{}:1.0", dir.path().join("in").display());
    let target = format!("docker://{host}/multi:1.0");
    let out = format!("oci:{}:1.0", dir.path().join("out").display());
    let task = tokio::task::spawn_blocking(move || {
        skopeo(&[
            "--insecure-policy",
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &source,
            &target,
        ]);
        skopeo(&[
            "--insecure-policy",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &target,
            &out,
        ]);
    });
    task.await.unwrap();

    let registry = Registry::new(&host, DEV_TOKEN);
    let head = registry.request(Method::HEAD, "/v2/multi/manifests/1.0").send().await.unwrap();
    assert_eq!(head.headers()["docker-content-digest"].to_str().unwrap(), multi.digest());
    for image in &multi.images {
        let child = registry
            .request(Method::HEAD, &format!("/v2/multi/manifests/{}", image.digest()))
            .send()
            .await
            .unwrap();
        assert_eq!(child.status(), StatusCode::OK);
    }
    let pulled: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/index.json")).unwrap()).unwrap();
    assert_eq!(pulled["manifests"][0]["digest"].as_str().unwrap(), multi.digest());
    let (_, image) = Api::new(&sim, Some(DEV_TOKEN)).get("/org/acme-dev/image/multi:1.0").await;
    assert_eq!(image["digest"].as_str().unwrap(), multi.digest());
}
