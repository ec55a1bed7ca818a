//! Tiny OCI images built in test code (there is no Docker engine), pushed
//! over the distribution API or written as an OCI layout for skopeo.

use std::path::Path;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One platform's image: config, one layer and the manifest bytes.
pub struct Image {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// A one-file image; `seed` makes its digests unique.
    pub fn new(seed: &str, arch: &str) -> Self {
        let tar =
            tar_with_file(&format!("{seed}-{arch}.txt"), format!("{seed} on {arch}\n").as_bytes());
        // Compressed, as registries expect: skopeo would compress (and so
        // re-digest) an uncompressed layer on push.
        let layer = gzip_stored(&tar);
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
        }))
        .unwrap();
        // Indented on purpose: registries must keep manifest bytes exactly.
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(&layer), "size": layer.len()}],
        }))
        .unwrap();
        Self { config, layer, manifest }
    }

    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }
}

/// A two-platform (amd64, arm64) OCI index.
pub struct MultiArch {
    pub images: Vec<Image>,
    pub index: Vec<u8>,
}

impl MultiArch {
    pub fn new(seed: &str) -> Self {
        let images: Vec<Image> = ["amd64", "arm64"].iter().map(|a| Image::new(seed, a)).collect();
        let manifests: Vec<_> = images
            .iter()
            .zip(["amd64", "arm64"])
            .map(|(i, arch)| {
                json!({"mediaType": OCI_MANIFEST, "digest": i.digest(), "size": i.manifest.len(),
                                    "platform": {"os": "linux", "architecture": arch}})
            })
            .collect();
        let index = serde_json::to_vec_pretty(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        )
        .unwrap();
        Self { images, index }
    }

    pub fn digest(&self) -> String {
        digest(&self.index)
    }

    /// Writes an OCI image layout (`oci:DIR:TAG` for skopeo).
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            std::fs::write(blobs.join(&digest(bytes)["sha256:".len()..]), bytes).unwrap();
        };
        for image in &self.images {
            put(&image.config);
            put(&image.layer);
            put(&image.manifest);
        }
        put(&self.index);
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
            "mediaType": OCI_INDEX, "digest": self.digest(), "size": self.index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    }
}

/// A ustar archive holding one file.
fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[148..156].copy_from_slice(b"        ");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// A valid gzip stream of `data` in stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> =
        if data.is_empty() { vec![&[]] } else { data.chunks(65_535).collect() };
    for (index, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(index + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let crc = data.iter().fold(!0u32, |crc, byte| {
        (0..8).fold(crc ^ u32::from(*byte), |c, _| {
            if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 }
        })
    });
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A distribution API client for one registry, with cpln's Basic auth.
pub struct Registry {
    pub base: String,
    auth: String,
    pub http: reqwest::Client,
}

impl Registry {
    pub fn new(host: &str, token: &str) -> Self {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("<token>:{token}"));
        Self {
            base: format!("http://{host}"),
            auth: format!("Basic {auth}"),
            http: reqwest::Client::new(),
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        self.http.request(method, url).header("authorization", &self.auth)
    }

    /// Monolithic upload: POST, then PUT with the whole blob.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) {
        let started = self
            .request(reqwest::Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), StatusCode::ACCEPTED);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        // Distribution's Location already carries a query (`_state=…`).
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={}", digest(bytes)),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::CREATED, "{}", done.text().await.unwrap());
    }

    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> reqwest::Response {
        self.request(reqwest::Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes blobs, then the manifest under `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        self.push_blob(repo, &image.config).await;
        self.push_blob(repo, &image.layer).await;
        let response = self.push_manifest(repo, tag, OCI_MANIFEST, &image.manifest).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}
