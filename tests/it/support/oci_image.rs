//! Test images built in Rust (there is no Docker engine here) and pushed
//! straight over the Distribution API: random, incompressible layers
//! (generated from a seed as they stream, so a 300 MiB layer never sits in
//! memory), a config, manifests written as indented JSON (so a client that
//! re-serialises them breaks their digests), and two-platform indexes.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::registry_server::Target;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
const CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

#[derive(Clone, Debug)]
enum Content {
    Bytes(Bytes),
    /// `size` bytes from a PRNG seeded with `seed`, made on demand.
    Random {
        seed: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    content: Content,
}

impl Blob {
    fn bytes(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            digest: sha256(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
            content: Content::Bytes(bytes.into()),
        }
    }

    fn random(media_type: &str, size: u64, seed: u64) -> Self {
        let mut hasher = Sha256::new();
        let mut chunks = random_chunks(seed, size);
        while let Some(chunk) = futures::executor::block_on(chunks.next()) {
            hasher.update(&chunk);
        }
        Self {
            digest: format!("sha256:{}", hex::encode(hasher.finalize())),
            size,
            media_type: media_type.to_owned(),
            content: Content::Random { seed },
        }
    }

    fn body(&self) -> reqwest::Body {
        match &self.content {
            Content::Bytes(bytes) => reqwest::Body::from(bytes.clone()),
            Content::Random { seed } => reqwest::Body::wrap_stream(
                random_chunks(*seed, self.size).map(Ok::<_, std::io::Error>),
            ),
        }
    }

    /// The bytes of a blob (all of them: for small blobs only).
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.content {
            Content::Bytes(bytes) => bytes.to_vec(),
            Content::Random { seed } => {
                let chunks = random_chunks(*seed, self.size).collect::<Vec<_>>();
                futures::executor::block_on(chunks).concat()
            }
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

fn random_chunks(seed: u64, size: u64) -> futures::stream::BoxStream<'static, Bytes> {
    let rng = fastrand::Rng::with_seed(seed);
    futures::stream::unfold((rng, size), |(mut rng, left)| async move {
        if left == 0 {
            return None;
        }
        let mut chunk = vec![0; usize::try_from(left).unwrap_or(CHUNK).min(CHUNK)];
        rng.fill(&mut chunk);
        let len = chunk.len() as u64;
        Some((Bytes::from(chunk), (rng, left - len)))
    })
    .boxed()
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// Indented on purpose: re-serialising would change the digest.
    fn new(media_type: &str, value: &serde_json::Value) -> Self {
        let bytes = serde_json::to_vec_pretty(value).unwrap();
        Self { digest: sha256(&bytes), media_type: media_type.to_owned(), bytes }
    }
}

/// An image (or index) and everything it refers to.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub blobs: Vec<Blob>,
    /// Platform manifests of an index (empty for a single image).
    pub children: Vec<Manifest>,
    pub top: Manifest,
}

impl TestImage {
    /// One platform with layers of the given sizes.
    pub fn single(format: Format, layer_sizes: &[u64], seed: u64) -> Self {
        let (manifest, blobs) = platform(format, "amd64", layer_sizes, seed);
        Self { blobs, children: Vec::new(), top: manifest }
    }

    /// An OCI index or Docker manifest list of linux/amd64 and linux/arm64.
    pub fn multi(format: Format, layer_sizes: &[u64], seed: u64) -> Self {
        let mut blobs = Vec::new();
        let mut children = Vec::new();
        let mut entries = Vec::new();
        for (n, arch) in ["amd64", "arm64"].into_iter().enumerate() {
            let (manifest, platform_blobs) =
                platform(format, arch, layer_sizes, seed + 1000 * n as u64);
            entries.push(json!({
                "mediaType": manifest.media_type, "digest": manifest.digest,
                "size": manifest.bytes.len(), "platform": {"os": "linux", "architecture": arch},
            }));
            blobs.extend(platform_blobs);
            children.push(manifest);
        }
        let media_type = if format == Format::Oci { OCI_INDEX } else { DOCKER_LIST };
        let top = Manifest::new(
            media_type,
            &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}),
        );
        Self { blobs, children, top }
    }

    /// The layers (config blobs excluded).
    pub fn layers(&self) -> impl Iterator<Item = &Blob> {
        self.blobs.iter().filter(|b| !b.media_type.contains("config"))
    }
}

fn platform(format: Format, arch: &str, layer_sizes: &[u64], seed: u64) -> (Manifest, Vec<Blob>) {
    let (manifest_type, config_type, layer_type) = match format {
        Format::Oci => (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        Format::Docker => (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
    };
    let layers: Vec<Blob> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| Blob::random(layer_type, *size, seed * 100 + i as u64))
        .collect();
    let config = Blob::bytes(
        config_type,
        serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.digest).collect::<Vec<_>>()},
            "seed": seed,
        }))
        .unwrap(),
    );
    let manifest = Manifest::new(
        manifest_type,
        &json!({
            "schemaVersion": 2, "mediaType": manifest_type, "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        }),
    );
    let blobs = std::iter::once(config).chain(layers).collect();
    (manifest, blobs)
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A minimal, independent registry client for arranging and checking test
/// state (it is not Ferry's code, so it can judge Ferry's results).
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    repository: String,
    authorization: Option<String>,
}

impl RegistryClient {
    /// Logs in for pull and push on `repository` (Basic or a Bearer token,
    /// whichever the registry asks for).
    pub async fn connect(target: &Target, repository: &str) -> Self {
        let http = reqwest::Client::new();
        let base = format!("http://{}", target.host);
        let probe = http.get(format!("{base}/v2/")).send().await.unwrap();
        let basic = target.credentials.as_ref().map(|(user, password)| {
            use base64::Engine as _;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {pair}")
        });
        let challenge = probe
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let authorization = if challenge.starts_with("Bearer") {
            let realm = param(&challenge, "realm");
            let service = param(&challenge, "service");
            let scope = format!("repository:{repository}:pull,push");
            let url =
                reqwest::Url::parse_with_params(&realm, [("service", service), ("scope", scope)])
                    .unwrap();
            let mut request = http.get(url);
            if let Some(basic) = &basic {
                request = request.header(AUTHORIZATION, basic);
            }
            let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            Some(format!("Bearer {}", answer["token"].as_str().unwrap()))
        } else {
            basic
        };
        Self { http, base, repository: repository.to_owned(), authorization }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// Pushes blobs, then child manifests by digest, then the top one by tag.
    pub async fn push(&self, image: &TestImage, tag: &str) {
        for blob in &image.blobs {
            self.push_blob(blob).await;
        }
        for child in &image.children {
            self.push_manifest(&child.digest, child).await;
        }
        self.push_manifest(tag, &image.top).await;
    }

    async fn push_blob(&self, blob: &Blob) {
        if self.blob_exists(&blob.digest).await {
            return;
        }
        let response =
            self.request(reqwest::Method::POST, &self.url("blobs/uploads/")).send().await.unwrap();
        assert_eq!(response.status(), 202, "POST upload");
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .request(reqwest::Method::PUT, &format!("{location}{separator}digest={}", blob.digest))
            .header(CONTENT_LENGTH, blob.size)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(blob.body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "PUT blob {}", blob.digest);
    }

    pub async fn push_manifest(&self, reference: &str, manifest: &Manifest) {
        let response = self
            .request(reqwest::Method::PUT, &self.url(&format!("manifests/{reference}")))
            .header(CONTENT_TYPE, &manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "PUT manifest {reference}");
    }

    /// The digest a tag or digest resolves to, or `None` on 404.
    pub async fn manifest_digest(&self, reference: &str) -> Option<String> {
        let response = self.get_manifest(reqwest::Method::HEAD, reference).await;
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200, "HEAD manifest {reference}");
        Some(response.headers()["docker-content-digest"].to_str().unwrap().to_owned())
    }

    /// The exact bytes stored for a manifest.
    pub async fn manifest_bytes(&self, reference: &str) -> Vec<u8> {
        let response = self.get_manifest(reqwest::Method::GET, reference).await;
        assert_eq!(response.status(), 200, "GET manifest {reference}");
        response.bytes().await.unwrap().to_vec()
    }

    /// GET or HEAD a manifest, accepting every manifest type.
    async fn get_manifest(&self, method: reqwest::Method, reference: &str) -> reqwest::Response {
        let url = self.url(&format!("manifests/{reference}"));
        self.request(method, &url).header(ACCEPT, ACCEPT_ALL).send().await.unwrap()
    }

    pub async fn blob_exists(&self, digest: &str) -> bool {
        let response = self
            .request(reqwest::Method::HEAD, &self.url(&format!("blobs/{digest}")))
            .send()
            .await
            .unwrap();
        response.status() == 200
    }
}

fn param(challenge: &str, name: &str) -> String {
    let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = challenge[start..].find('"').unwrap();
    challenge[start..start + end].to_owned()
}
