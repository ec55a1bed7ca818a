//! Manifests: the four media types Ferry copies, fetching them with their
//! exact bytes, verifying those bytes, and reading the descriptors in them.
//!
//! The bytes are never re-serialised: a registry names a manifest by the
//! sha256 of its bytes, so the copy must push exactly what it fetched.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::RegistryError;
use super::auth::Scopes;
use super::client::{Registry, expect};
use super::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every type Ferry accepts. Naming all four matters: distribution 2.8
/// answers 404 for an OCI index not named in `Accept`, and silently
/// downgrades a manifest list to one platform's manifest.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Registries must accept manifests up to 4 MiB; anything far larger is
/// not a manifest worth trusting.
const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// A pointer to content: what it is, its digest and size.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Foreign (non-distributable) layers live elsewhere and are not copied.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// What a manifest refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// An image: a config blob and layer blobs.
    Image { blobs: Vec<Descriptor> },
    /// An index or manifest list: child manifests.
    Index { manifests: Vec<Descriptor> },
}

/// A manifest as fetched: exact bytes, their digest, and its media type.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Bytes,
    pub digest: Digest,
    pub media_type: String,
    pub contents: Contents,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// Checks and reads fetched bytes. `content_type` is the response's,
    /// used when the manifest has no `mediaType` field (optional in OCI).
    pub fn parse(reference: &str, bytes: Bytes, content_type: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidManifest {
            reference: reference.to_owned(),
            reason,
        };
        let shape: Shape =
            serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        let content_type = content_type.split(';').next().unwrap_or_default().trim();
        let media_type =
            shape.media_type.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| {
                match (&shape.manifests, content_type) {
                    (_, OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST) => {
                        content_type.into()
                    }
                    (Some(_), _) => OCI_INDEX.into(),
                    (None, _) => OCI_MANIFEST.into(),
                }
            });
        if shape.schema_version != Some(2)
            || !matches!(
                media_type.as_str(),
                OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST
            )
        {
            return Err(RegistryError::UnsupportedManifest {
                reference: reference.to_owned(),
                media_type: if shape.schema_version == Some(1) {
                    "application/vnd.docker.distribution.manifest.v1+prettyjws".into()
                } else {
                    media_type
                },
            });
        }
        let contents = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => Contents::Index {
                manifests: shape.manifests.ok_or_else(|| invalid("no `manifests`".into()))?,
            },
            _ => {
                let config = shape.config.ok_or_else(|| invalid("no `config`".into()))?;
                Contents::Image { blobs: std::iter::once(config).chain(shape.layers).collect() }
            }
        };
        Ok(Self { digest: Digest::of(&bytes), bytes, media_type, contents })
    }

    /// The blobs to copy (foreign layers excluded).
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        let blobs = match &self.contents {
            Contents::Image { blobs } => blobs.as_slice(),
            Contents::Index { .. } => &[],
        };
        blobs.iter().filter(|d| d.urls.is_empty())
    }
}

/// GETs a manifest and checks its bytes against `expected` (when fetched
/// by digest) and against the registry's `Docker-Content-Digest`.
pub async fn fetch(
    registry: &Registry,
    scopes: &Scopes,
    repository: &str,
    reference: &str,
    expected: Option<&Descriptor>,
) -> Result<Manifest, RegistryError> {
    let url = registry.url(repository, &format!("manifests/{reference}"));
    let name = format!("{}/{repository}:{reference}", registry.host);
    let response =
        registry.send(scopes, Method::GET, &url, |r| r.header(ACCEPT, ACCEPT_ALL)).await?;
    if response.status() == 404 {
        return Err(RegistryError::NotFound { what: "manifest", reference: name });
    }
    let response = expect(response, &[200], &registry.host, repository).await?;
    let header_digest = content_digest(&response);
    let content_type = header_str(&response, CONTENT_TYPE.as_str()).unwrap_or_default();
    if response.content_length().is_some_and(|len| len > MAX_MANIFEST_BYTES as u64) {
        return Err(too_large(&name));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|cause| RegistryError::Transport { url: url.clone(), cause })?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(too_large(&name));
    }
    let manifest = Manifest::parse(&name, bytes, &content_type)?;
    let mismatch = |expected: &Digest| RegistryError::DigestMismatch {
        what: format!("the manifest {name}"),
        expected: expected.clone(),
        actual: manifest.digest.to_string(),
    };
    if let Some(descriptor) = expected {
        if descriptor.digest != manifest.digest {
            return Err(mismatch(&descriptor.digest));
        }
        if descriptor.size != manifest.bytes.len() as u64 {
            return Err(RegistryError::SizeMismatch {
                what: format!("the manifest {name}"),
                expected: descriptor.size,
                actual: manifest.bytes.len() as u64,
            });
        }
    }
    if let Some(header) = header_digest.filter(|d| *d != manifest.digest) {
        return Err(mismatch(&header));
    }
    Ok(manifest)
}

/// HEADs a manifest: its digest, or `None` when it is absent (404, or 403
/// as some registries answer for repositories that do not exist yet).
pub async fn head(
    registry: &Registry,
    scopes: &Scopes,
    repository: &str,
    reference: &str,
) -> Result<Option<Digest>, RegistryError> {
    Ok(describe(registry, scopes, repository, reference).await?.map(|(digest, _)| digest))
}

/// Like [`head`], with the manifest's media type.
pub async fn describe(
    registry: &Registry,
    scopes: &Scopes,
    repository: &str,
    reference: &str,
) -> Result<Option<(Digest, String)>, RegistryError> {
    let url = registry.url(repository, &format!("manifests/{reference}"));
    let response =
        registry.send(scopes, Method::HEAD, &url, |r| r.header(ACCEPT, ACCEPT_ALL)).await?;
    if matches!(response.status().as_u16(), 404 | 403) {
        return Ok(None);
    }
    let response = expect(response, &[200], &registry.host, repository).await?;
    let media_type = header_str(&response, CONTENT_TYPE.as_str()).unwrap_or_default();
    match content_digest(&response) {
        Some(digest) => Ok(Some((digest, media_type))),
        // No digest header: fetch the bytes and hash them.
        None => {
            let manifest = fetch(registry, scopes, repository, reference, None).await?;
            Ok(Some((manifest.digest, manifest.media_type)))
        }
    }
}

/// PUTs the exact bytes of a manifest under `reference` (a tag or its
/// digest) and checks the digest the registry reports, if it reports one.
pub async fn push(
    registry: &Registry,
    scopes: &Scopes,
    repository: &str,
    reference: &str,
    manifest: &Manifest,
) -> Result<Option<Digest>, RegistryError> {
    let url = registry.url(repository, &format!("manifests/{reference}"));
    let response = registry
        .send(scopes, Method::PUT, &url, |r| {
            r.header(CONTENT_TYPE, &manifest.media_type).body(manifest.bytes.clone())
        })
        .await?;
    let response = expect(response, &[200, 201], &registry.host, repository).await?;
    match header_str(&response, "docker-content-digest") {
        Some(reported) if reported != manifest.digest.as_str() => {
            Err(RegistryError::DestinationDigest {
                reference: format!("{}/{repository}:{reference}", registry.host),
                expected: manifest.digest.clone(),
                reported,
            })
        }
        _ => Ok(content_digest(&response)),
    }
}

fn too_large(name: &str) -> RegistryError {
    RegistryError::InvalidManifest {
        reference: name.to_owned(),
        reason: format!("larger than {} MiB", MAX_MANIFEST_BYTES >> 20),
    }
}

pub fn header_str(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name)?.to_str().ok().map(str::to_owned)
}

pub fn content_digest(response: &reqwest::Response) -> Option<Digest> {
    header_str(response, "docker-content-digest")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const LAYER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn reads_images_and_indexes() {
        let image = format!(
            r#"{{
  "schemaVersion": 2,
  "mediaType": "{DOCKER_MANIFEST}",
  "config": {{"mediaType": "c", "digest": "{CONFIG}", "size": 3}},
  "layers": [{{"mediaType": "l", "digest": "{LAYER}", "size": 5}},
             {{"mediaType": "f", "digest": "{LAYER}", "size": 5, "urls": ["https://x"]}}]
}}"#
        );
        let manifest = Manifest::parse("x", Bytes::from(image.clone()), "text/plain").unwrap();
        assert_eq!(manifest.media_type, DOCKER_MANIFEST);
        assert_eq!(manifest.digest, Digest::of(image.as_bytes()));
        let blobs: Vec<_> = manifest.blobs().map(|d| d.digest.as_str()).collect();
        assert_eq!(blobs, [CONFIG, LAYER]);

        let index =
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{LAYER}","size":5}}]}}"#);
        let manifest = Manifest::parse("x", Bytes::from(index), OCI_INDEX).unwrap();
        assert_eq!(manifest.media_type, OCI_INDEX);
        assert!(
            matches!(manifest.contents, Contents::Index { ref manifests } if manifests.len() == 1)
        );
    }

    #[test]
    fn refuses_schema1_and_garbage() {
        let schema1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            Manifest::parse("x", Bytes::from(schema1), "application/json"),
            Err(RegistryError::UnsupportedManifest { .. })
        ));
        assert!(matches!(
            Manifest::parse("x", Bytes::from("{"), OCI_MANIFEST),
            Err(RegistryError::InvalidManifest { .. })
        ));
    }
}
