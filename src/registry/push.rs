//! Pushing a small image held in memory (blobs, then the manifest under a
//! tag), for images Ferry makes itself, such as the simulator's demo images.

use bytes::Bytes;

use super::RegistryError;
use super::auth::Scopes;
use super::blob::{self, Endpoint};
use super::client::{Registry, http_client};
use super::credentials::Credential;
use super::digest::Digest;
use super::manifest::{self, Manifest};

/// Pushes `blobs`, then `manifest` (of `media_type`) as `repository:tag` at
/// `host`. Returns the manifest's digest, checked against the registry's.
pub async fn push_image(
    host: &str,
    credential: Credential,
    repository: &str,
    tag: &str,
    blobs: Vec<Bytes>,
    manifest: (Bytes, &str),
) -> Result<Digest, RegistryError> {
    let registry = Registry::for_host(http_client()?, host, credential);
    let scopes = Scopes::push(repository);
    let dst = Endpoint { registry: &registry, repository, scopes: &scopes };
    for bytes in blobs {
        blob::upload(&dst, bytes).await?;
    }
    let (bytes, media_type) = manifest;
    let manifest = Manifest::parse(&format!("{host}/{repository}:{tag}"), bytes, media_type)?;
    manifest::push(&registry, &scopes, repository, tag, &manifest).await?;
    Ok(manifest.digest)
}
