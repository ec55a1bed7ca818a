//! Corruption and bad credentials stop the copy, clearly and safely.

use std::io::{Seek, SeekFrom, Write};

use super::{block_on, ferry_copy, inspect, seed};
use crate::support::oci_image::{Format, TestImage};
use crate::support::registry_server::{AuthMode, RegistryServer, TOKEN_USER, Target};

/// A layer altered on the source's disk is detected while streaming; the
/// destination never gets the blob or the tag.
#[test]
fn a_corrupt_source_blob_fails_the_copy_before_the_tag() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Anonymous), RegistryServer::start(AuthMode::Token));
    let image = TestImage::single(Format::Oci, &[2 << 20, 1000], 31);
    seed(&src.target, "app", "v1", &image);
    let layer = image.layers().next().unwrap();
    let mut file =
        std::fs::OpenOptions::new().write(true).open(src.blob_file(&layer.digest)).unwrap();
    file.seek(SeekFrom::Start(1 << 20)).unwrap();
    file.write_all(b"corrupted").unwrap();
    drop(file);

    let run = ferry_copy(&src.target, "app:v1", &dst.target, "app:v1", &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("ferry::registry::digest_mismatch"), "{}", run.stderr);
    assert!(run.stderr.contains(&layer.digest), "{}", run.stderr);
    let dst_client = inspect(&dst.target, "app");
    assert_eq!(block_on(dst_client.manifest_digest("v1")), None);
    assert!(!block_on(dst_client.blob_exists(&layer.digest)));
    let manifest_puts = dst
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/manifests/") && r.method == "PUT")
        .count();
    assert_eq!(manifest_puts, 0);
}

fn with_password(target: &Target, password: &str) -> Target {
    Target { credentials: Some((TOKEN_USER.to_owned(), password.to_owned())), ..target.clone() }
}

#[test]
fn bad_credentials_are_reported_without_the_password() {
    let src = RegistryServer::start(AuthMode::Anonymous);
    seed(&src.target, "app", "v1", &TestImage::single(Format::Oci, &[10], 41));
    for mode in [AuthMode::Basic, AuthMode::Token] {
        let dst = RegistryServer::start(mode);
        let password = "wrong-hunter2-password";
        let run =
            ferry_copy(&src.target, "app:v1", &with_password(&dst.target, password), "app:v1", &[]);
        assert_eq!(run.code, Some(1), "{mode:?}: {}", run.stderr);
        assert!(run.stderr.contains("ferry::registry::unauthorized"), "{mode:?}: {}", run.stderr);
        assert!(run.stderr.contains("rejected the"), "{mode:?}: {}", run.stderr);
        assert!(!run.stderr.contains(password) && !run.stdout.contains(password));
        // A refusal is final: not tried again as if the registry were busy
        // (once each tried the whole retry policy, over a minute).
        let refused = dst.requests().iter().filter(|r| r.status == 401).count();
        assert!(refused <= 2, "{mode:?}: {refused} requests refused");
        let asked = dst.token_requests().len();
        assert!(asked <= 2, "{mode:?}: the token server was asked {asked} times");

        let anonymous = Target { credentials: None, ..dst.target.clone() };
        let run = ferry_copy(&src.target, "app:v1", &anonymous, "app:v1", &[]);
        assert_eq!(run.code, Some(1), "{mode:?}: {}", run.stderr);
        assert!(run.stderr.contains("requires credentials"), "{mode:?}: {}", run.stderr);
    }
}
