//! The copy itself, and the promotion rules around it.
//!
//! Order matters: blobs first, then child manifests by digest, then the
//! top manifest by tag, so that the tag only ever names a complete,
//! verified image. An existing tag at the same digest means there is
//! nothing to do; at another digest it is only moved with `force`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::RegistryError;
use super::auth::Scopes;
use super::blob::{self, Endpoint, Mount};
use super::client::{Registry, http_client};
use super::credentials::Credentials;
use super::digest::Digest;
use super::manifest::{self, Contents, Descriptor, Manifest};
use super::progress::{BlobOutcome, Reporter};
use super::reference::ImageRef;

/// Parallel blob transfers unless told otherwise.
pub const DEFAULT_JOBS: u16 = 8;
/// Each blob is tried this many times when failures are transient: as
/// often as any request of the retry policy, since a streamed upload that
/// fails is started again from its HEAD, and each attempt is several
/// requests. With 3, under 25% injected 503/429 about one promotion of the
/// example in six lost a blob (docs/performance.md).
const BLOB_ATTEMPTS: u32 = crate::retry::DEFAULT_ATTEMPTS;

/// What to copy where.
#[derive(Clone, Debug)]
pub struct CopyRequest {
    /// `REPO:TAG` or `REPO@sha256:…` (a pinned digest is verified).
    pub source: ImageRef,
    /// Its tag is written last; `REPO@sha256:…` copies without a tag.
    pub destination: ImageRef,
    /// Move an existing destination tag that names another digest.
    pub force: bool,
    /// Parallel blob transfers (at least 1).
    pub jobs: usize,
    /// The copy was planned against the destination's tags (a promotion
    /// copies only the images whose tag its plan saw absent or elsewhere):
    /// the destination tag is checked again *while* the blobs are copied
    /// rather than before them, and still before it is written, so a copy
    /// that is needed, as nearly all planned ones are, saves that round.
    pub planned: bool,
}

impl CopyRequest {
    pub fn new(source: ImageRef, destination: ImageRef) -> Self {
        Self { source, destination, force: false, jobs: usize::from(DEFAULT_JOBS), planned: false }
    }
}

/// Blob counts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlobCounts {
    pub copied: usize,
    pub mounted: usize,
    pub skipped: usize,
}

/// What a copy did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CopyReport {
    pub source: String,
    pub destination: String,
    /// The digest of the top manifest, identical at both ends.
    pub digest: Digest,
    pub media_type: String,
    /// The destination already had the tag at this digest: nothing moved.
    pub up_to_date: bool,
    /// The destination tag named another digest and was moved (`force`).
    pub moved_tag_from: Option<Digest>,
    /// Manifests written (children of an index included).
    pub manifests_pushed: usize,
    pub blobs: BlobCounts,
    /// Blob bytes streamed through Ferry (mounted and skipped not counted).
    pub bytes_copied: u64,
    #[serde(serialize_with = "as_millis", rename = "duration_ms")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// The two ends of a copy, with the scopes each needs.
struct Ends {
    src: Arc<Registry>,
    dst: Arc<Registry>,
    src_scopes: Scopes,
    dst_scopes: Scopes,
    same_host: bool,
}

impl Ends {
    fn connect(request: &CopyRequest, credentials: &Credentials) -> Result<Self, RegistryError> {
        let (source, destination) = (&request.source, &request.destination);
        let http = http_client()?;
        let src = Registry::new(http.clone(), source, credentials.for_host(&source.registry)?);
        let same_host = source.registry == destination.registry;
        if same_host {
            // One token for everything: push on the destination and pull on
            // the source, which a mount needs in the same token.
            let scopes = Scopes::push(&destination.repository).with(&source.repository, "pull");
            return Ok(Self {
                dst: src.clone(),
                src,
                src_scopes: scopes.clone(),
                dst_scopes: scopes,
                same_host,
            });
        }
        let dst = Registry::new(http, destination, credentials.for_host(&destination.registry)?);
        Ok(Self {
            src,
            dst,
            src_scopes: Scopes::pull(&source.repository),
            dst_scopes: Scopes::push(&destination.repository),
            same_host,
        })
    }
}

/// Copies an image (single-platform or index, with everything it refers
/// to) from `request.source` to `request.destination`.
pub async fn copy_image(
    request: &CopyRequest,
    credentials: &Credentials,
    reporter: &dyn Reporter,
) -> Result<CopyReport, RegistryError> {
    stage(request, credentials, reporter).await?.tag(reporter).await
}

/// A copy with everything written but its tag: the source's manifests
/// read and verified, every blob at the destination, child manifests
/// pushed by digest. Nothing a tag names has changed yet; [`Staged::tag`]
/// finishes the copy, so a caller can hold the tag back until its own
/// checks pass (a promotion's re-read under the lock).
pub struct Staged {
    ends: Ends,
    request: CopyRequest,
    top: Manifest,
    target: String,
    report: CopyReport,
    started: Instant,
}

/// Everything of a copy but its tag ([`Staged`]).
pub async fn stage(
    request: &CopyRequest,
    credentials: &Credentials,
    reporter: &dyn Reporter,
) -> Result<Staged, RegistryError> {
    let started = Instant::now();
    let (source, destination) = (&request.source, &request.destination);
    let ends = Ends::connect(request, credentials)?;
    let top = manifest::fetch(
        &ends.src,
        &ends.src_scopes,
        &source.repository,
        &source.manifest_reference(),
        None,
    )
    .await?;
    for pinned in [&source.digest, &destination.digest].into_iter().flatten() {
        if *pinned != top.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("the manifest {source}"),
                expected: pinned.clone(),
                actual: top.digest.to_string(),
            });
        }
    }
    let target = destination.tag.clone().unwrap_or_else(|| top.digest.to_string());
    let report = CopyReport {
        source: source.to_string(),
        destination: destination.to_string(),
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        up_to_date: false,
        moved_tag_from: None,
        manifests_pushed: 0,
        blobs: BlobCounts::default(),
        bytes_copied: 0,
        duration: Duration::ZERO,
    };
    let mut staged = Staged { ends, request: request.clone(), top, target, report, started };
    let existing = manifest::head(
        &staged.ends.dst,
        &staged.ends.dst_scopes,
        &destination.repository,
        &staged.target,
    );
    let written = if request.planned {
        let (existing, written) = futures::try_join!(existing, staged.write_contents(reporter))?;
        staged.existing(existing)?;
        Some(written)
    } else {
        staged.existing(existing.await?)?;
        match staged.report.up_to_date {
            true => None,
            false => Some(staged.write_contents(reporter).await?),
        }
    };
    if let Some(written) = written {
        staged.report.blobs = written.blobs;
        staged.report.bytes_copied = written.bytes;
        staged.report.manifests_pushed = written.manifests;
    }
    Ok(staged)
}

impl Staged {
    /// Decides on what the destination tag names now: the same digest is
    /// nothing to do; another is moved only with `force`.
    fn existing(&mut self, existing: Option<Digest>) -> Result<(), RegistryError> {
        match existing {
            Some(digest) if digest == self.top.digest => self.report.up_to_date = true,
            Some(digest) if !self.request.force => {
                return Err(RegistryError::TagExists {
                    destination: self.request.destination.to_string(),
                    existing: digest,
                    wanted: self.top.digest.clone(),
                });
            }
            moved => self.report.moved_tag_from = moved,
        }
        Ok(())
    }

    /// The blobs, then child manifests by digest.
    async fn write_contents(&self, reporter: &dyn Reporter) -> Result<Written, RegistryError> {
        let (ends, request) = (&self.ends, &self.request);
        let repository = &request.destination.repository;
        let children = fetch_children(ends, &request.source.repository, &self.top, request.jobs);
        let children = children.await?;
        let blobs = unique_blobs(std::iter::once(&self.top).chain(&children))?;
        let transfers = futures::stream::iter(blobs.values())
            .map(|blob| copy_blob(ends, request, blob, reporter))
            .buffer_unordered(request.jobs.max(1))
            .try_collect::<Vec<_>>()
            .await?;
        let mut written = Written { manifests: children.len(), ..Written::default() };
        for (outcome, bytes) in transfers {
            written.bytes += bytes;
            match outcome {
                BlobOutcome::Copied => written.blobs.copied += 1,
                BlobOutcome::Mounted => written.blobs.mounted += 1,
                BlobOutcome::Skipped => written.blobs.skipped += 1,
            }
        }
        // Children were found parents first; push them deepest first.
        for child in children.iter().rev() {
            let reference = child.digest.to_string();
            manifest::push(&ends.dst, &ends.dst_scopes, repository, &reference, child).await?;
            reporter.manifest_pushed(&reference, &child.digest);
        }
        Ok(written)
    }

    /// Writes the tag (unless it already names the image) and checks the
    /// digest the destination stored: the copy's report.
    pub async fn tag(mut self, reporter: &dyn Reporter) -> Result<CopyReport, RegistryError> {
        if self.report.up_to_date {
            self.report.duration = self.started.elapsed();
            return Ok(self.report);
        }
        let (ends, destination, target) = (&self.ends, &self.request.destination, &self.target);
        let (dst, scopes, repository) = (&ends.dst, &ends.dst_scopes, &destination.repository);
        let reported = match manifest::push(dst, scopes, repository, target, &self.top).await? {
            Some(digest) => Some(digest),
            // The registry did not say what it stored: ask.
            None => manifest::head(dst, scopes, repository, target).await?,
        };
        if reported.as_ref() != Some(&self.top.digest) {
            return Err(RegistryError::DestinationDigest {
                reference: destination.to_string(),
                expected: self.top.digest,
                reported: reported.map_or_else(|| "nothing".into(), |d| d.to_string()),
            });
        }
        reporter.manifest_pushed(target, &self.top.digest);
        self.report.manifests_pushed += 1;
        self.report.duration = self.started.elapsed();
        Ok(self.report)
    }
}

/// What [`Staged::write_contents`] wrote.
#[derive(Default)]
struct Written {
    manifests: usize,
    blobs: BlobCounts,
    bytes: u64,
}
/// Every manifest below `top` (children of indexes, recursively), each
/// fetched by digest and verified against its descriptor.
async fn fetch_children(
    ends: &Ends,
    repository: &str,
    top: &Manifest,
    jobs: usize,
) -> Result<Vec<Manifest>, RegistryError> {
    let mut found: Vec<Manifest> = Vec::new();
    let mut pending = child_descriptors(top);
    while !pending.is_empty() {
        let fetched: Vec<Manifest> = futures::stream::iter(pending.iter())
            .map(|d| {
                manifest::fetch(&ends.src, &ends.src_scopes, repository, d.digest.as_str(), Some(d))
            })
            .buffered(jobs.max(1))
            .try_collect()
            .await?;
        pending = fetched
            .iter()
            .flat_map(child_descriptors)
            .filter(|d| !found.iter().any(|m| m.digest == d.digest))
            .collect();
        found.extend(fetched);
    }
    Ok(found)
}

fn child_descriptors(manifest: &Manifest) -> Vec<Descriptor> {
    match &manifest.contents {
        Contents::Index { manifests } => manifests.clone(),
        Contents::Image { .. } => Vec::new(),
    }
}

/// The blobs of every image manifest, once each.
fn unique_blobs<'a>(
    manifests: impl Iterator<Item = &'a Manifest>,
) -> Result<BTreeMap<Digest, Descriptor>, RegistryError> {
    let mut blobs = BTreeMap::new();
    for manifest in manifests {
        for blob in manifest.blobs() {
            let known = blobs.entry(blob.digest.clone()).or_insert_with(|| blob.clone());
            if known.size != blob.size {
                return Err(RegistryError::InvalidManifest {
                    reference: manifest.digest.to_string(),
                    reason: format!("{} is listed with two sizes", blob.digest),
                });
            }
        }
    }
    Ok(blobs)
}

/// One blob: skip, mount or stream, retrying transient failures.
async fn copy_blob(
    ends: &Ends,
    request: &CopyRequest,
    blob: &Descriptor,
    reporter: &dyn Reporter,
) -> Result<(BlobOutcome, u64), RegistryError> {
    reporter.blob_started(&blob.digest, blob.size);
    let policy = crate::retry::RetryPolicy { attempts: BLOB_ATTEMPTS, ..Default::default() };
    let mut backoff = crate::retry::Backoff::new(policy);
    loop {
        match copy_blob_once(ends, request, blob, reporter).await {
            Ok(outcome) => {
                reporter.blob_finished(&blob.digest, outcome);
                let bytes = if outcome == BlobOutcome::Copied { blob.size } else { 0 };
                return Ok((outcome, bytes));
            }
            Err(error) if error.is_transient() => {
                // A streamed upload refused with a 429 waits as long as the
                // registry asked, as every request does (retry::Backoff).
                let Some(delay) = backoff.next(error.retry_after()) else { return Err(error) };
                reporter.blob_retrying(&blob.digest, backoff.retries(), &error);
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn copy_blob_once(
    ends: &Ends,
    request: &CopyRequest,
    blob: &Descriptor,
    reporter: &dyn Reporter,
) -> Result<BlobOutcome, RegistryError> {
    let src = Endpoint {
        registry: &ends.src,
        repository: &request.source.repository,
        scopes: &ends.src_scopes,
    };
    let dst = Endpoint {
        registry: &ends.dst,
        repository: &request.destination.repository,
        scopes: &ends.dst_scopes,
    };
    let mounts = ends.same_host && src.repository != dst.repository;
    if request.planned && !mounts {
        // The plan saw the tag absent, so its blobs most likely are too:
        // the GET and the upload session go out with the HEAD (two rounds
        // to the blob's PUT rather than three), and are given up when the
        // HEAD finds the blob after all.
        let (exists, opened) =
            futures::join!(blob::exists(&dst, &blob.digest), blob::open(&src, &dst, blob, None));
        if exists? {
            if let Ok(opened) = opened {
                opened.cancel(&dst).await;
            }
            return Ok(BlobOutcome::Skipped);
        }
        blob::send(&src, &dst, blob, opened?, reporter).await?;
        return Ok(BlobOutcome::Copied);
    }
    if blob::exists(&dst, &blob.digest).await? {
        return Ok(BlobOutcome::Skipped);
    }
    let mut session = None;
    if mounts {
        match blob::mount(&dst, &blob.digest, src.repository).await? {
            Mount::Mounted => return Ok(BlobOutcome::Mounted),
            Mount::Upload(location) => session = Some(location),
        }
    }
    blob::stream(&src, &dst, blob, session, reporter).await?;
    Ok(BlobOutcome::Copied)
}

/// Where an image points, by a cheap HEAD; `NotFound` when it is absent.
pub async fn resolve_digest(
    image: &ImageRef,
    credentials: &Credentials,
) -> Result<Digest, RegistryError> {
    lookup(image, credentials)
        .await?
        .ok_or_else(|| RegistryError::NotFound { what: "image", reference: image.to_string() })
}

/// Whether an image (tag or digest) exists.
pub async fn image_exists(
    image: &ImageRef,
    credentials: &Credentials,
) -> Result<bool, RegistryError> {
    Ok(lookup(image, credentials).await?.is_some())
}

async fn lookup(
    image: &ImageRef,
    credentials: &Credentials,
) -> Result<Option<Digest>, RegistryError> {
    let registry = Registry::new(http_client()?, image, credentials.for_host(&image.registry)?);
    let scopes = Scopes::pull(&image.repository);
    let digest =
        manifest::head(&registry, &scopes, &image.repository, &image.manifest_reference()).await?;
    match (&image.digest, digest) {
        // A pinned digest that resolves elsewhere does not exist as asked.
        (Some(pinned), Some(found)) if *pinned != found => Ok(None),
        (_, found) => Ok(found),
    }
}
