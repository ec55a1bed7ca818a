//! Promotion rules: nothing to do when already there, no silent tag moves.

use super::{block_on, ferry_copy, inspect, report, seed};
use crate::support::oci_image::{Format, TestImage};
use crate::support::registry_server::{AuthMode, RegistryServer};

/// A repeated copy is one manifest check: no blob is even looked at.
/// Copying the same image to a new tag finds every blob present.
#[test]
fn a_second_copy_moves_no_blob() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Anonymous), RegistryServer::start(AuthMode::Token));
    let image = TestImage::single(Format::Oci, &[1 << 20, 1 << 19, 100], 11);
    seed(&src.target, "app", "v1", &image);
    report(&ferry_copy(&src.target, "app:v1", &dst.target, "app:v1", &[]));
    let first = dst.requests();
    assert!(first.iter().any(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/")));

    let again = report(&ferry_copy(&src.target, "app:v1", &dst.target, "app:v1", &[]));
    assert_eq!(again["up_to_date"], true);
    assert_eq!(again["bytes_copied"], 0);
    assert_eq!(again["blobs"], serde_json::json!({"copied": 0, "mounted": 0, "skipped": 0}));
    let second = dst.requests().split_off(first.len());
    assert!(!second.iter().any(|r| r.path.contains("/blobs/")), "{second:#?}");
    assert!(second.iter().any(|r| r.method == "HEAD" && r.path == "/v2/app/manifests/v1"));

    let other_tag = report(&ferry_copy(&src.target, "app:v1", &dst.target, "app:v2", &[]));
    assert_eq!(other_tag["blobs"]["skipped"], image.blobs.len());
    assert_eq!(other_tag["bytes_copied"], 0);
    let third = dst.requests().split_off(first.len() + second.len());
    assert!(!third.iter().any(|r| r.moves_blob()), "{third:#?}");
    assert_eq!(block_on(inspect(&dst.target, "app").manifest_digest("v2")), Some(image.top.digest));
}

#[test]
fn refuses_to_move_a_tag_without_force() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Basic), RegistryServer::start(AuthMode::Basic));
    let old = TestImage::single(Format::Docker, &[4096], 21);
    let new = TestImage::single(Format::Docker, &[4096], 22);
    seed(&dst.target, "app", "v1", &old);
    seed(&src.target, "app", "v1", &new);

    let run = ferry_copy(&src.target, "app:v1", &dst.target, "app:v1", &[]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("already points at") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_eq!(
        block_on(inspect(&dst.target, "app").manifest_digest("v1")),
        Some(old.top.digest.clone())
    );

    let forced = report(&ferry_copy(&src.target, "app:v1", &dst.target, "app:v1", &["--force"]));
    assert_eq!(forced["moved_tag_from"], old.top.digest);
    assert_eq!(block_on(inspect(&dst.target, "app").manifest_digest("v1")), Some(new.top.digest));
}
