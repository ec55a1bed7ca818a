//! Copies between the simulator's per-org registries (Basic auth with user
//! `<token>` and the org's token), the way a dev → prod promotion runs.

use ferry::sim::Service;

use super::{block_on, ferry_with_env, inspect, report, seed};
use crate::support::oci_image::{Format, TestImage};
use crate::support::registry_server::{TOKEN_USER, Target};
use crate::support::sim::{self, DEV, DEV_TOKEN, PROD, PROD_TOKEN, Sim};

fn org_target(sim: &Sim, org: &str, token: &str) -> Target {
    Target {
        host: sim.registry_host(org).unwrap(),
        credentials: Some((TOKEN_USER.to_owned(), token.to_owned())),
    }
}

#[test]
fn promotes_images_between_org_registries_with_bare_tokens() {
    // The simulator serves from this runtime's threads for the whole test.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sim = runtime.block_on(sim::start());
    let (dev, prod) = (org_target(&sim, DEV, DEV_TOKEN), org_target(&sim, PROD, PROD_TOKEN));
    let index = TestImage::multi(Format::Oci, &[700 * 1024, 2000], 61);
    let list = TestImage::multi(Format::Docker, &[300 * 1024], 62);
    seed(&dev, "api", "1.4.2", &index);
    seed(&dev, "worker", "1.4.2", &list);

    // Bare tokens in the variables: Ferry sends them as `<token>:TOKEN`.
    let copy = |repository: &str| {
        let (src, dst) =
            (dev.image(&format!("{repository}:1.4.2")), prod.image(&format!("{repository}:1.4.2")));
        let args = ["image", "copy", &src, &dst, "--src-creds-env", "DEV_KEY"];
        let args = [&args[..], &["--dst-creds-env", "PROD_KEY", "-o", "json"]].concat();
        report(&ferry_with_env(&args, &[("DEV_KEY", DEV_TOKEN), ("PROD_KEY", PROD_TOKEN)]))
    };
    for (repository, image) in [("api", &index), ("worker", &list)] {
        let report = copy(repository);
        assert_eq!(report["digest"], image.top.digest);
        assert_eq!(report["blobs"]["copied"], image.blobs.len());
        let prod_client = inspect(&prod, repository);
        assert_eq!(block_on(prod_client.manifest_bytes("1.4.2")), image.top.bytes);
        for child in &image.children {
            assert_eq!(block_on(prod_client.manifest_bytes(&child.digest)), child.bytes);
        }
    }

    // Promoting again touches no blob at all.
    sim.clear_request_log();
    let again = copy("api");
    assert_eq!(again["up_to_date"], true);
    let log = sim.request_log();
    let blob_requests: Vec<_> = log
        .iter()
        .filter(|r| r.service == Service::Registry && r.path.contains("/blobs/"))
        .collect();
    assert!(blob_requests.is_empty(), "{blob_requests:#?}");
    let manifest_checks = log.iter().filter(|r| r.path == "/v2/api/manifests/1.4.2").count();
    assert!(manifest_checks >= 2, "{log:#?}"); // the source GET and the destination HEAD
    runtime.block_on(sim.shutdown());
}
