//! Blobs at the destination: existence checks, cross-repository mounts,
//! and the streamed copy from the source.
//!
//! A copied blob flows from the source's GET straight into the
//! destination's upload while it is hashed; nothing is buffered beyond one
//! network chunk. The last chunk is held back until the hash is checked, so
//! a corrupt blob is never completed at the destination.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::RegistryError;
use super::auth::Scopes;
use super::client::{Registry, expect};
use super::digest::{Digest, Hasher};
use super::manifest::{Descriptor, content_digest};
use super::progress::Reporter;

/// Where a blob is read from or written to.
pub struct Endpoint<'a> {
    pub registry: &'a Registry,
    pub repository: &'a str,
    pub scopes: &'a Scopes,
}

impl Endpoint<'_> {
    fn blob_url(&self, digest: &Digest) -> String {
        self.registry.url(self.repository, &format!("blobs/{digest}"))
    }

    async fn expect(
        &self,
        response: reqwest::Response,
        ok: &[u16],
    ) -> Result<reqwest::Response, RegistryError> {
        expect(response, ok, &self.registry.host, self.repository).await
    }
}

/// True when the destination already has the blob.
pub async fn exists(dst: &Endpoint<'_>, digest: &Digest) -> Result<bool, RegistryError> {
    let url = dst.blob_url(digest);
    let response = dst.registry.send(dst.scopes, Method::HEAD, &url, |r| r).await?;
    match response.status().as_u16() {
        404 => Ok(false),
        _ => dst.expect(response, &[200]).await.map(|_| true),
    }
}

/// What a mount request achieved.
pub enum Mount {
    Mounted,
    /// The registry would not mount and opened an upload session instead.
    Upload(String),
}

/// Asks the destination to mount `digest` from `from` on the same host.
pub async fn mount(
    dst: &Endpoint<'_>,
    digest: &Digest,
    from: &str,
) -> Result<Mount, RegistryError> {
    let url =
        dst.registry.url(dst.repository, &format!("blobs/uploads/?mount={digest}&from={from}"));
    let response =
        dst.registry.send(dst.scopes, Method::POST, &url, |r| r.header(CONTENT_LENGTH, 0)).await?;
    let response = dst.expect(response, &[201, 202]).await?;
    if response.status() == 201 {
        return Ok(Mount::Mounted);
    }
    location(dst.registry, &response).map(Mount::Upload)
}

/// Opens an upload session at the destination.
pub async fn start_upload(dst: &Endpoint<'_>) -> Result<String, RegistryError> {
    let url = dst.registry.url(dst.repository, "blobs/uploads/");
    let response =
        dst.registry.send(dst.scopes, Method::POST, &url, |r| r.header(CONTENT_LENGTH, 0)).await?;
    let response = dst.expect(response, &[202]).await?;
    location(dst.registry, &response)
}

/// Uploads a blob held in memory (POST, then one PUT with the digest) and
/// checks the digest the destination reports.
pub async fn upload(dst: &Endpoint<'_>, bytes: Bytes) -> Result<Digest, RegistryError> {
    let digest = Digest::of(&bytes);
    if exists(dst, &digest).await? {
        return Ok(digest);
    }
    let session = start_upload(dst).await?;
    let url = completion_url(&session, &digest);
    let response = dst
        .registry
        .send(dst.scopes, Method::PUT, &url, |r| {
            r.header(CONTENT_TYPE, "application/octet-stream").body(bytes.clone())
        })
        .await?;
    let response = dst.expect(response, &[201, 204]).await?;
    reported_as(dst, &response, &digest)?;
    Ok(digest)
}

/// The session's `Location` with `digest=` added, which completes it.
fn completion_url(session: &str, digest: &Digest) -> String {
    let separator = if session.contains('?') { '&' } else { '?' };
    format!("{session}{separator}digest={digest}")
}

/// Fails when the destination says it stored a blob under another digest.
fn reported_as(
    dst: &Endpoint<'_>,
    response: &reqwest::Response,
    digest: &Digest,
) -> Result<(), RegistryError> {
    match content_digest(response) {
        Some(reported) if reported != *digest => Err(RegistryError::DestinationDigest {
            reference: format!("{}/{}@{digest}", dst.registry.host, dst.repository),
            expected: digest.clone(),
            reported: reported.to_string(),
        }),
        _ => Ok(()),
    }
}

fn location(registry: &Registry, response: &reqwest::Response) -> Result<String, RegistryError> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| registry.absolute(l))
        .ok_or_else(|| RegistryError::Unexpected {
            url: response.url().to_string(),
            status: response.status().as_u16(),
            detail: "no upload location".into(),
            retry_after: None,
        })
}

/// A blob ready to stream: the source's answer (its body not yet read)
/// and the destination's upload session.
pub struct Opened {
    response: reqwest::Response,
    session: String,
}

impl Opened {
    /// Gives the upload session up (the blob turned out to be there
    /// already): one `DELETE`, not retried, whose failure only leaves a
    /// session the registry expires by itself.
    pub async fn cancel(self, dst: &Endpoint<'_>) {
        drop(self.response);
        let request = dst.registry.request(Method::DELETE, &self.session);
        if let Err(error) = dst.registry.send_once(dst.scopes, request).await {
            tracing::debug!("cancelling the upload session {}: {error}", self.session);
        }
    }
}

/// GETs a blob from `src` and opens the upload session at `dst` (unless
/// `session` is one already): one round for both, as they do not depend
/// on each other.
pub async fn open(
    src: &Endpoint<'_>,
    dst: &Endpoint<'_>,
    blob: &Descriptor,
    session: Option<String>,
) -> Result<Opened, RegistryError> {
    let url = src.blob_url(&blob.digest);
    let download = async {
        let response = src.registry.send(src.scopes, Method::GET, &url, |r| r).await?;
        if response.status() == 404 {
            return Err(RegistryError::NotFound {
                what: "blob",
                reference: format!("{}/{}@{}", src.registry.host, src.repository, blob.digest),
            });
        }
        src.expect(response, &[200]).await
    };
    let session = async {
        match session {
            Some(session) => Ok(session),
            None => start_upload(dst).await,
        }
    };
    let (response, session) = futures::try_join!(download, session)?;
    Ok(Opened { response, session })
}

/// Streams a blob from `src` into the upload session `session` (or a new
/// one) at `dst`, verifying its size and digest on the way.
pub async fn stream(
    src: &Endpoint<'_>,
    dst: &Endpoint<'_>,
    blob: &Descriptor,
    session: Option<String>,
    reporter: &dyn Reporter,
) -> Result<(), RegistryError> {
    let opened = open(src, dst, blob, session).await?;
    send(src, dst, blob, opened, reporter).await
}

/// Streams an [`Opened`] blob into its session, verifying its size and
/// digest on the way.
pub async fn send(
    src: &Endpoint<'_>,
    dst: &Endpoint<'_>,
    blob: &Descriptor,
    opened: Opened,
    reporter: &dyn Reporter,
) -> Result<(), RegistryError> {
    let Opened { response, session } = opened;
    let put_url = completion_url(&session, &blob.digest);

    let done = Arc::new(AtomicU64::new(0));
    let verdict = Arc::new(Mutex::new(None));
    let body = verified(
        response.bytes_stream(),
        blob.clone(),
        format!("the blob {}/{}@{}", src.registry.host, src.repository, blob.digest),
        done.clone(),
        verdict.clone(),
    );
    let request = dst
        .registry
        .request(Method::PUT, &put_url)
        .header(CONTENT_LENGTH, blob.size)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    let put = dst.registry.send_once(dst.scopes, request);
    tokio::pin!(put);
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let result = loop {
        tokio::select! {
            result = &mut put => break result,
            _ = ticks.tick() => reporter.blob_progress(&blob.digest, done.load(Ordering::Relaxed)),
        }
    };
    // A failed check explains a failed upload better than the upload does.
    if let Some(error) = verdict.lock().ok().and_then(|mut v| v.take()) {
        return Err(error);
    }
    let response = dst.expect(result?, &[201, 204]).await?;
    reporter.blob_progress(&blob.digest, blob.size);
    reported_as(dst, &response, &blob.digest)
}

struct Verify<S> {
    inner: S,
    hasher: Hasher,
    held: Option<Bytes>,
    blob: Descriptor,
    what: String,
    done: Arc<AtomicU64>,
    verdict: Arc<Mutex<Option<RegistryError>>>,
    finished: bool,
}

impl<S> Verify<S> {
    fn fail(&mut self, error: RegistryError) -> std::io::Error {
        self.finished = true;
        let message = error.to_string();
        if let Ok(mut verdict) = self.verdict.lock() {
            *verdict = Some(error);
        }
        std::io::Error::other(message)
    }
}

/// Passes chunks through while hashing them, holding the last one back
/// until size and digest are known to match. On a mismatch the stream ends
/// with an error instead, which aborts the upload, and the error is left in
/// `verdict`.
fn verified<S>(
    inner: S,
    blob: Descriptor,
    what: String,
    done: Arc<AtomicU64>,
    verdict: Arc<Mutex<Option<RegistryError>>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + Unpin + 'static,
{
    let state = Verify {
        inner,
        hasher: Hasher::default(),
        held: None,
        blob,
        what,
        done,
        verdict,
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        while !state.finished {
            match state.inner.next().await {
                Some(Ok(chunk)) => {
                    state.hasher.update(&chunk);
                    state.done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if state.hasher.bytes_seen() > state.blob.size {
                        let error = RegistryError::SizeMismatch {
                            what: state.what.clone(),
                            expected: state.blob.size,
                            actual: state.hasher.bytes_seen(),
                        };
                        let error = state.fail(error);
                        return Some((Err(error), state));
                    }
                    if let Some(previous) = state.held.replace(chunk) {
                        return Some((Ok(previous), state));
                    }
                }
                Some(Err(cause)) => {
                    let url = cause.url().map(ToString::to_string).unwrap_or_default();
                    let error = state.fail(RegistryError::Transport { url, cause });
                    return Some((Err(error), state));
                }
                None => {
                    state.finished = true;
                    let hasher = std::mem::take(&mut state.hasher);
                    let len = hasher.bytes_seen();
                    let actual = hasher.finish();
                    if len != state.blob.size {
                        let error = RegistryError::SizeMismatch {
                            what: state.what.clone(),
                            expected: state.blob.size,
                            actual: len,
                        };
                        let error = state.fail(error);
                        return Some((Err(error), state));
                    }
                    if actual != state.blob.digest {
                        let error = RegistryError::DigestMismatch {
                            what: state.what.clone(),
                            expected: state.blob.digest.clone(),
                            actual: actual.to_string(),
                        };
                        let error = state.fail(error);
                        return Some((Err(error), state));
                    }
                    return state.held.take().map(|last| (Ok(last), state));
                }
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &'static [&'static [u8]], blob: Descriptor) -> (Vec<u8>, Option<String>) {
        let inner = futures::stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))));
        let verdict = Arc::new(Mutex::new(None));
        let stream = verified(inner, blob, "b".into(), Arc::default(), verdict.clone());
        let items = futures::executor::block_on(stream.collect::<Vec<_>>());
        let mut out = Vec::new();
        for item in items {
            match item {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(_) => break,
            }
        }
        let verdict = verdict.lock().unwrap().take().map(|e| e.to_string());
        (out, verdict)
    }

    fn descriptor(bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            urls: vec![],
        }
    }

    #[test]
    fn passes_verified_bytes_through() {
        let (out, verdict) = run(&[b"hello ", b"wor", b"ld"], descriptor(b"hello world"));
        assert_eq!((out.as_slice(), verdict), (&b"hello world"[..], None));
    }

    #[test]
    fn withholds_the_last_chunk_of_a_corrupt_blob() {
        let (out, verdict) = run(&[b"hello ", b"wor", b"lD"], descriptor(b"hello world"));
        assert_eq!(out, b"hello wor");
        assert!(verdict.unwrap().contains("do not match its digest"));
        // Too long: the error comes before the chunk held back.
        let (out, verdict) = run(&[b"hello ", b"world!"], descriptor(b"hello world"));
        assert_eq!(out, b"");
        assert!(verdict.unwrap().contains("12 bytes"));
    }
}
