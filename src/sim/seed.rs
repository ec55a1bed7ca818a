//! Demo images for the embedded simulator: a tiny single-platform OCI image
//! (one uncompressed tar layer holding one file) pushed over the registry
//! API like any client would, so that `--sim` has something to promote.

use bytes::Bytes;
use serde_json::json;

use super::SimError;
use crate::registry::{Credential, TOKEN_USER, push_image};

/// Pushes `repository:tag`, a small image whose content names it, to the
/// registry at `host` with the org's `token`. Returns its digest.
pub async fn push_demo_image(
    host: &str,
    token: &str,
    repository: &str,
    tag: &str,
) -> Result<String, SimError> {
    let layer = tar_with_one_file("ferry-demo.txt", format!("{repository}:{tag}\n").as_bytes());
    let layer_digest = digest(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap_or_default();
    let credential = Credential::basic(TOKEN_USER, token);
    let manifest = (Bytes::from(manifest), crate::registry::OCI_MANIFEST);
    let blobs = vec![Bytes::from(layer), Bytes::from(config)];
    let pushed = push_image(host, credential, repository, tag, blobs, manifest)
        .await
        .map_err(|error| SimError::Seed(error.to_string()))?;
    Ok(pushed.to_string())
}

fn digest(bytes: &[u8]) -> String {
    crate::registry::Digest::of(bytes).to_string()
}

/// A POSIX tar archive with one regular file.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, text: &str| {
        header[at..at + text.len()].copy_from_slice(text.as_bytes());
    };
    put(&mut header, 0, name);
    put(&mut header, 100, "0000644\0");
    put(&mut header, 108, "0000000\0");
    put(&mut header, 116, "0000000\0");
    put(&mut header, 124, &format!("{:011o}\0", content.len()));
    put(&mut header, 136, "00000000000\0");
    put(&mut header, 148, "        ");
    header[156] = b'0';
    put(&mut header, 257, "ustar\0");
    put(&mut header, 263, "00");
    let checksum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, &format!("{checksum:06o}\0 "));
    let mut archive = header.to_vec();
    archive.extend_from_slice(content);
    archive.resize(archive.len().div_ceil(512) * 512, 0);
    archive.extend_from_slice(&[0u8; 1024]);
    archive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_archives_are_block_aligned_with_a_valid_checksum() {
        let archive = tar_with_one_file("a.txt", b"hello\n");
        assert_eq!(archive.len(), 512 * 4);
        let stored = std::str::from_utf8(&archive[148..154]).unwrap_or_default();
        let mut header = archive[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).ok(), Some(sum));
    }
}
