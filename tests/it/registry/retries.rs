//! Transient failures are retried: a 503 and a body cut off halfway.

use super::{block_on, ferry_copy, inspect, report};
use crate::support::flaky_registry::FlakyRegistry;
use crate::support::oci_image::{Format, TestImage};
use crate::support::registry_server::{AuthMode, RegistryServer, Target};

#[test]
fn retries_unavailable_and_interrupted_blob_downloads() {
    let image = TestImage::single(Format::Docker, &[600 * 1024, 5000], 51);
    let blobs = image.blobs.iter().map(|b| (b.digest.clone(), b.to_vec())).collect();
    let flaky = FlakyRegistry::serve(&image, blobs);
    let dst = RegistryServer::start(AuthMode::Basic);
    let src = Target { host: flaky.host.clone(), credentials: None };

    let report = report(&ferry_copy(&src, "app:v1", &dst.target, "app:v1", &[]));
    assert_eq!(report["blobs"]["copied"], image.blobs.len());
    assert_eq!(block_on(inspect(&dst.target, "app").manifest_digest("v1")), Some(image.top.digest));
    // Each blob: a 503, a broken download, a good one; plus the manifest.
    assert_eq!(flaky.requests(), 3 * image.blobs.len() + 1);
}
