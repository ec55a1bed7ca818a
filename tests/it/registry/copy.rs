//! Images arrive whole and with the digests they had.

use super::{block_on, credentials, ferry_copy, inspect, report, seed};
use crate::support::oci_image::{Format, TestImage};
use crate::support::registry_server::{AuthMode, RegistryServer};
use ferry::registry::{CopyRequest, Silent, copy_image, image_exists, resolve_digest};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Copies `image` between two registries with the CLI and checks that the
/// destination serves the same bytes under the same digests.
fn copy_and_compare(src_mode: AuthMode, dst_mode: AuthMode, image: &TestImage) {
    let (src, dst) = (RegistryServer::start(src_mode), RegistryServer::start(dst_mode));
    seed(&src.target, "team/app", "v1", image);
    let run = ferry_copy(&src.target, "team/app:v1", &dst.target, "prod/app:v1", &[]);
    let report = report(&run);
    assert_eq!(report["digest"], image.top.digest);
    assert_eq!(report["media_type"], image.top.media_type);
    assert_eq!(report["up_to_date"], false);
    assert_eq!(report["blobs"]["copied"], image.blobs.len());
    assert_eq!(report["manifests_pushed"], image.children.len() + 1);
    let copied: u64 = image.blobs.iter().map(|b| b.size).sum();
    assert_eq!(report["bytes_copied"], copied);

    let dst_client = inspect(&dst.target, "prod/app");
    assert_eq!(block_on(dst_client.manifest_digest("v1")), Some(image.top.digest.clone()));
    assert_eq!(block_on(dst_client.manifest_bytes("v1")), image.top.bytes);
    for child in &image.children {
        assert_eq!(block_on(dst_client.manifest_bytes(&child.digest)), child.bytes);
    }
    for blob in &image.blobs {
        assert!(block_on(dst_client.blob_exists(&blob.digest)), "{} missing", blob.digest);
    }
}

#[test]
fn docker_v2_image_keeps_its_digest_from_basic_to_token_auth() {
    let image = TestImage::single(Format::Docker, &[MIB, 64 * KIB, 10], 1);
    copy_and_compare(AuthMode::Basic, AuthMode::Token, &image);
}

#[test]
fn oci_image_keeps_its_digest_from_token_to_basic_auth() {
    let image = TestImage::single(Format::Oci, &[2 * MIB, 1], 2);
    copy_and_compare(AuthMode::Token, AuthMode::Basic, &image);
}

#[test]
fn oci_index_keeps_its_digest_and_every_platform() {
    let image = TestImage::multi(Format::Oci, &[512 * KIB, 3 * KIB], 3);
    copy_and_compare(AuthMode::Anonymous, AuthMode::Token, &image);
}

#[test]
fn docker_manifest_list_keeps_its_digest_and_every_platform() {
    let image = TestImage::multi(Format::Docker, &[512 * KIB, 3 * KIB], 4);
    copy_and_compare(AuthMode::Basic, AuthMode::Basic, &image);
}

#[test]
fn copies_by_digest_to_a_tag() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Anonymous), RegistryServer::start(AuthMode::Basic));
    let image = TestImage::multi(Format::Docker, &[100 * KIB], 5);
    seed(&src.target, "app", "v1", &image);
    let pinned = format!("app@{}", image.top.digest);
    let report = report(&ferry_copy(&src.target, &pinned, &dst.target, "app:release", &[]));
    assert_eq!(report["digest"], image.top.digest);
    assert_eq!(
        block_on(inspect(&dst.target, "app").manifest_digest("release")),
        Some(image.top.digest.clone())
    );

    // A pin that does not match what the registry serves is refused.
    let wrong = format!("app@sha256:{}", "0".repeat(64));
    let run = ferry_copy(&src.target, &wrong, &dst.target, "app:other", &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(block_on(inspect(&dst.target, "app").manifest_digest("other")), None);

    // The cheap lookups promote uses.
    let creds = credentials(&[&dst.target]);
    let release = dst.target.image("app:release").parse().unwrap();
    let digest = block_on(resolve_digest(&release, &creds)).unwrap();
    assert_eq!(digest.as_str(), image.top.digest);
    assert!(block_on(image_exists(&release, &creds)).unwrap());
    let other = dst.target.image("app:other").parse().unwrap();
    assert!(!block_on(image_exists(&other, &creds)).unwrap());
    assert!(block_on(resolve_digest(&other, &creds)).is_err());
}

/// Within one token registry, blobs are mounted, which needs a token that
/// also carries pull on the source repository.
#[test]
fn mounts_blobs_within_one_registry() {
    let server = RegistryServer::start(AuthMode::Token);
    let image = TestImage::single(Format::Oci, &[300 * KIB, 200 * KIB], 6);
    seed(&server.target, "dev/api", "v1", &image);
    let before = server.requests().len();
    let tokens_before = server.token_requests().len();
    let request = CopyRequest::new(
        server.target.image("dev/api:v1").parse().unwrap(),
        server.target.image("prod/api:v1").parse().unwrap(),
    );
    let report = block_on(copy_image(&request, &credentials(&[&server.target]), &Silent)).unwrap();
    assert_eq!((report.blobs.mounted, report.blobs.copied, report.bytes_copied), (3, 0, 0));
    let requests = server.requests().split_off(before);
    let mounts = requests.iter().filter(|r| r.path.contains("mount=") && r.status == 201).count();
    assert_eq!(mounts, 3, "{requests:#?}");
    assert!(!requests.iter().any(|r| r.method == "GET" && r.path.contains("/blobs/")));
    // One token, cached for the whole copy, with push on the destination
    // and pull on the source.
    let tokens = server.token_requests().split_off(tokens_before);
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    assert!(tokens[0].contains("scope=repository%3Adev%2Fapi%3Apull&"), "{tokens:#?}");
    assert!(tokens[0].contains("scope=repository%3Aprod%2Fapi%3Apull%2Cpush"), "{tokens:#?}");
    assert_eq!(
        block_on(inspect(&server.target, "prod/api").manifest_digest("v1")),
        Some(image.top.digest)
    );
}

/// A promotion's copy (`planned`: its plan saw the tag absent) checks the
/// tag while the blobs go and fetches each blob while asking whether the
/// destination has it; it still refuses to move a tag that names another
/// image, and gives up the upload sessions of blobs that were there.
#[test]
fn a_planned_copy_checks_the_tag_and_the_blobs_alongside_and_still_refuses_a_moved_tag() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Anonymous), RegistryServer::start(AuthMode::Basic));
    let (one, two) = (
        TestImage::single(Format::Oci, &[200 * KIB, 3 * KIB], 8),
        TestImage::single(Format::Oci, &[100 * KIB], 9),
    );
    seed(&src.target, "app", "one", &one);
    seed(&src.target, "app", "two", &two);
    let creds = credentials(&[&dst.target]);
    let planned = |source: &str, destination: &str| {
        let mut request = CopyRequest::new(
            src.target.image(source).parse().unwrap(),
            dst.target.image(destination).parse().unwrap(),
        );
        request.planned = true;
        block_on(copy_image(&request, &creds, &Silent))
    };
    let copied = planned("app:one", "app:v1").unwrap();
    assert_eq!((copied.up_to_date, copied.blobs.copied), (false, one.blobs.len()));
    let dst_client = inspect(&dst.target, "app");
    assert_eq!(block_on(dst_client.manifest_digest("v1")), Some(one.top.digest.clone()));

    // Again: nothing to do, and the sessions opened on speculation go.
    let before = dst.requests().len();
    let again = planned("app:one", "app:v1").unwrap();
    assert_eq!((again.up_to_date, again.blobs.skipped), (true, one.blobs.len()));
    let requests = dst.requests().split_off(before);
    let cancelled = requests.iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(cancelled, one.blobs.len(), "{requests:#?}");
    assert!(!requests.iter().any(|r| r.method == "PUT"), "{requests:#?}");

    // Another image onto that tag: refused, the tag left as it was.
    let refused = planned("app:two", "app:v1").map(|r| r.digest.to_string());
    assert!(
        matches!(refused, Err(ferry::registry::RegistryError::TagExists { .. })),
        "{refused:?}"
    );
    assert_eq!(block_on(dst_client.manifest_digest("v1")), Some(one.top.digest.clone()));
}

/// A 300 MiB layer streams through with flat memory: generated from a
/// seed on push, never held whole by the test or by Ferry.
#[test]
fn streams_a_300_mib_layer() {
    let (src, dst) =
        (RegistryServer::start(AuthMode::Anonymous), RegistryServer::start(AuthMode::Basic));
    let image = TestImage::single(Format::Oci, &[300 * MIB], 7);
    seed(&src.target, "big", "v1", &image);
    let time = std::path::Path::new("/usr/bin/time");
    let run = if time.exists() {
        // Run ferry under /usr/bin/time to read its peak memory.
        let creds = dst.target.creds_value().unwrap();
        let output = std::process::Command::new(time)
            .args(["-f", "maxrss-kib=%M", env!("CARGO_BIN_EXE_ferry"), "image", "copy"])
            .args([src.target.image("big:v1"), dst.target.image("big:v1")])
            .args(["--dst-creds-env", "DST_CREDS", "--output", "json"])
            .env("DST_CREDS", creds)
            .env("DOCKER_CONFIG", "/nonexistent")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let rss: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("maxrss-kib="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        eprintln!("ferry peak memory copying 300 MiB: {rss} KiB");
        assert!(rss < 64 * 1024, "peak memory {rss} KiB while copying 300 MiB");
        crate::support::command::Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        }
    } else {
        ferry_copy(&src.target, "big:v1", &dst.target, "big:v1", &[])
    };
    let report = report(&run);
    assert_eq!(report["bytes_copied"], image.blobs.iter().map(|b| b.size).sum::<u64>());
    assert_eq!(block_on(inspect(&dst.target, "big").manifest_digest("v1")), Some(image.top.digest));
}

/// Without `--*-creds-env`, credentials come from Docker's config: a
/// credential helper for one host, a base64 `auth` for the other.
#[test]
fn credentials_come_from_a_docker_credential_helper_and_docker_auths() {
    use base64::Engine as _;
    let (src, dst) =
        (RegistryServer::start(AuthMode::Token), RegistryServer::start(AuthMode::Basic));
    let image = TestImage::single(Format::Oci, &[4 * KIB], 77);
    seed(&src.target, "team/app", "v1", &image);
    let config = tempfile::tempdir().unwrap();
    let (src_user, src_password) = src.target.credentials.clone().unwrap();
    let helper = config.path().join("docker-credential-ferrytest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > \"$(dirname \"$0\")/asked\"\nprintf '{{\"ServerURL\":\"x\",\"Username\":\"{src_user}\",\"Secret\":\"{src_password}\"}}'\n"
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&helper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&helper, permissions).unwrap();
    let (dst_user, dst_password) = dst.target.credentials.clone().unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{dst_user}:{dst_password}"));
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "ferrytest"}}, "auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            src.target.host, dst.target.host
        ),
    )
    .unwrap();
    let path = format!("{}:{}", config.path().display(), std::env::var("PATH").unwrap_or_default());
    let (src_image, dst_image) = (src.target.image("team/app:v1"), dst.target.image("app:v1"));
    let run = crate::support::command::ferry_with(
        config.path(),
        &["image", "copy", &src_image, &dst_image, "--output", "json"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap()), ("PATH", &path)],
    );
    assert_eq!(report(&run)["digest"], image.top.digest);
    let asked = std::fs::read_to_string(config.path().join("asked")).unwrap();
    assert_eq!(asked, src.target.host, "the helper is asked for the source host");
    assert!(!run.stderr.contains(&src_password) && !run.stdout.contains(&dst_password));
    let dst_client = inspect(&dst.target, "app");
    assert_eq!(block_on(dst_client.manifest_digest("v1")), Some(image.top.digest.clone()));
}
