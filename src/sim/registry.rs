//! One org's OCI Distribution registry: manifests (kept byte for byte),
//! blobs (streamed to disk), chunked and monolithic uploads, cross-repo
//! mounts, tags and catalog, behind Basic `<token>` auth.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::auth::Access;
use super::clock::{new_id, now_ms};
use super::server::Shared;
use super::state::{Repo, TagEntry};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Registries must accept manifests of at least 4 MiB.
const MANIFEST_LIMIT: usize = 8 << 20;

/// Open upload sessions, by id (not persisted: a restart drops them).
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    sessions: Mutex<HashMap<String, Upload>>,
}

#[derive(Debug, Clone)]
struct Upload {
    org: String,
    repo: String,
    size: u64,
    hasher: Sha256,
}

impl Uploads {
    fn take(&self, id: &str, org: &str, repo: &str) -> Option<Upload> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let found = sessions.get(id).is_some_and(|u| u.org == org && u.repo == repo);
        if found { sessions.remove(id) } else { None }
    }

    fn peek(&self, id: &str) -> Option<Upload> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    fn put(&self, id: &str, upload: Upload) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), upload);
    }
}

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    org: String,
}

pub(crate) fn router(shared: Arc<Shared>, org: String) -> Router {
    Router::new().fallback(handle).with_state(Ctx { shared, org })
}

/// An OCI error body `{"errors": [{code, message, detail}]}`.
pub(crate) fn oci_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": {}}]});
    (status, axum::Json(body)).into_response()
}

/// The registry's routes, parsed from `/v2/…` (names may hold slashes).
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_owned()));
    }
    if let Some(name) =
        rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart(name.to_owned()));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(Route::Upload(name.to_owned(), id.to_owned()));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Route::Blob(name.to_owned(), digest.to_owned()));
    }
    let (name, reference) = rest.rsplit_once("/manifests/")?;
    Some(Route::Manifest(name.to_owned(), reference.to_owned()))
}

/// `[a-z0-9]+` components separated by `.`, `_`, `__`, `-` and `/`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && c.bytes().last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut response = match ctx.shared.tokens.check_registry(&headers, &ctx.org) {
        Access::Granted => serve(&ctx, &method, uri.path(), &params, &headers, body).await,
        Access::Unauthenticated => {
            let mut response =
                oci_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required");
            let realm = format!("Basic realm=\"{}.registry.cpln.io\"", ctx.org);
            if let Ok(value) = HeaderValue::from_str(&realm) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Access::Denied => oci_error(
            StatusCode::FORBIDDEN,
            "DENIED",
            "the token has no access to this org's registry",
        ),
    };
    response
        .headers_mut()
        .insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    response
}

async fn serve(
    ctx: &Ctx,
    method: &Method,
    path: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(route) = route(path) else {
        return oci_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route");
    };
    let name = match &route {
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Blob(n, _)
        | Route::UploadStart(n)
        | Route::Upload(n, _) => Some(n.as_str()),
        Route::Base | Route::Catalog => None,
    };
    if name.is_some_and(|n| !valid_name(n)) {
        return oci_error(StatusCode::BAD_REQUEST, "NAME_INVALID", "invalid repository name");
    }
    let m = method.clone();
    match route {
        Route::Base if m == Method::GET || m == Method::HEAD => {
            (StatusCode::OK, axum::Json(json!({}))).into_response()
        }
        Route::Catalog if m == Method::GET => ctx.catalog(),
        Route::Tags(name) if m == Method::GET => ctx.tags(&name),
        Route::Manifest(name, reference) => match m {
            Method::GET | Method::HEAD => ctx.get_manifest(&name, &reference, m == Method::HEAD),
            Method::PUT => ctx.put_manifest(&name, &reference, headers, body).await,
            Method::DELETE => ctx.delete_manifest(&name, &reference),
            _ => unsupported(),
        },
        Route::Blob(name, digest) => match m {
            Method::GET | Method::HEAD => {
                ctx.get_blob(&name, &digest, headers, m == Method::HEAD).await
            }
            Method::DELETE => ctx.delete_blob(&name, &digest),
            _ => unsupported(),
        },
        Route::UploadStart(name) if m == Method::POST => {
            ctx.start_upload(&name, params, body).await
        }
        Route::Upload(name, id) => match m {
            Method::PATCH => ctx.patch_upload(&name, &id, headers, body).await,
            Method::PUT => ctx.finish_upload(&name, &id, params, body).await,
            Method::GET => ctx.upload_status(&name, &id),
            Method::DELETE => ctx.cancel_upload(&name, &id).await,
            _ => unsupported(),
        },
        _ => unsupported(),
    }
}

fn unsupported() -> Response {
    oci_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "the operation is unsupported")
}

fn with_headers(mut response: Response, pairs: &[(&'static str, String)]) -> Response {
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Ctx {
    fn catalog(&self) -> Response {
        let state = self.shared.lock();
        let repos: Vec<&String> =
            state.registries.get(&self.org).map(|i| i.repos.keys().collect()).unwrap_or_default();
        (StatusCode::OK, axum::Json(json!({"repositories": repos}))).into_response()
    }

    fn tags(&self, name: &str) -> Response {
        let state = self.shared.lock();
        match state.repo(&self.org, name) {
            Some(repo) => {
                let tags: Vec<&String> = repo.tags.keys().collect();
                (StatusCode::OK, axum::Json(json!({"name": name, "tags": tags}))).into_response()
            }
            None => oci_error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            ),
        }
    }

    /// The digest and media type a tag or digest names in a repository.
    fn lookup(&self, name: &str, reference: &str) -> Option<(String, String)> {
        let state = self.shared.lock();
        let repo = state.registries.get(&self.org)?.repos.get(name)?;
        let digest = if reference.starts_with("sha256:") {
            reference.to_owned()
        } else {
            repo.tags.get(reference)?.digest.clone()
        };
        let media_type = repo.manifests.get(&digest)?.clone();
        Some((digest, media_type))
    }

    fn get_manifest(&self, name: &str, reference: &str, head: bool) -> Response {
        let unknown = || oci_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown");
        let Some((digest, media_type)) = self.lookup(name, reference) else { return unknown() };
        let Some(bytes) =
            self.shared.disk.blob_path(&self.org, &digest).and_then(|p| std::fs::read(p).ok())
        else {
            return unknown();
        };
        let headers = [
            ("content-type", media_type),
            ("docker-content-digest", digest),
            ("content-length", bytes.len().to_string()),
        ];
        let body = if head { Body::empty() } else { Body::from(bytes) };
        with_headers((StatusCode::OK, body).into_response(), &headers)
    }

    async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let invalid =
            |message: &str| oci_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message);
        let Ok(bytes) = axum::body::to_bytes(body, MANIFEST_LIMIT).await else {
            return oci_error(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", "manifest too large");
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
            return invalid("manifest is not JSON");
        };
        let declared = manifest.get("mediaType").and_then(Value::as_str);
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let media_type = match (content_type.as_deref(), declared) {
            (Some(given), Some(declared)) if given != declared => {
                return invalid("Content-Type does not match the manifest's mediaType");
            }
            (Some(given), _)
                if [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&given) =>
            {
                given.to_owned()
            }
            (_, Some(declared)) => declared.to_owned(),
            (Some(given), None) if given.starts_with("application/") => given.to_owned(),
            _ => return invalid("unknown manifest media type"),
        };
        let digest = digest_of(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the manifest digest does not match its reference",
            );
        }
        let Some(path) = self.shared.disk.blob_path(&self.org, &digest) else {
            return invalid("bad digest");
        };
        let mut state = self.shared.lock();
        let repo = state.repo_mut(&self.org, name);
        if let Some(missing) = missing_references(repo, &manifest, &media_type) {
            drop(state);
            let body = json!({"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry",
                                          "detail": {"digest": missing}}]});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        if let Err(error) = super::state::write_atomic(&path, &bytes) {
            tracing::error!("could not store a manifest: {error}");
            return oci_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "could not store the manifest",
            );
        }
        repo.manifests.insert(digest.clone(), media_type);
        if !reference.starts_with("sha256:") {
            let now = now_ms();
            match repo.tags.get_mut(reference) {
                Some(tag) if tag.digest == digest => {}
                Some(tag) => {
                    tag.digest = digest.clone();
                    tag.version += 1;
                    tag.modified_ms = now;
                }
                None => {
                    let tag = TagEntry {
                        digest: digest.clone(),
                        id: new_id(),
                        version: 1,
                        created_ms: now,
                        modified_ms: now,
                    };
                    repo.tags.insert(reference.to_owned(), tag);
                }
            }
        }
        if let Err(error) = self.shared.save(&state) {
            return oci_error(error.status, "UNKNOWN", &error.message);
        }
        drop(state);
        let location = format!("/v2/{name}/manifests/{digest}");
        with_headers(
            StatusCode::CREATED.into_response(),
            &[("location", location), ("docker-content-digest", digest)],
        )
    }

    fn delete_manifest(&self, name: &str, reference: &str) -> Response {
        let mut state = self.shared.lock();
        let Some(repo) = state.registries.get_mut(&self.org).and_then(|i| i.repos.get_mut(name))
        else {
            return oci_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown");
        };
        let found = if reference.starts_with("sha256:") {
            repo.tags.retain(|_, t| t.digest != reference);
            repo.manifests.remove(reference).is_some()
        } else {
            repo.tags.remove(reference).is_some()
        };
        if !found {
            return oci_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown");
        }
        match self.shared.save(&state) {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(error) => oci_error(error.status, "UNKNOWN", &error.message),
        }
    }

    /// A blob is visible in a repository once uploaded or mounted there;
    /// manifests can be fetched as blobs too.
    fn linked(&self, name: &str, digest: &str) -> bool {
        let state = self.shared.lock();
        state
            .repo(&self.org, name)
            .is_some_and(|r| r.blobs.contains(digest) || r.manifests.contains_key(digest))
    }

    async fn get_blob(
        &self,
        name: &str,
        digest: &str,
        headers: &HeaderMap,
        head: bool,
    ) -> Response {
        let unknown =
            || oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry");
        let Some(path) = self.shared.disk.blob_path(&self.org, digest) else {
            return oci_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
        };
        if !self.linked(name, digest) {
            return unknown();
        }
        let Ok(mut file) = tokio::fs::File::open(&path).await else { return unknown() };
        let size = match file.metadata().await {
            Ok(meta) => meta.len(),
            Err(_) => return unknown(),
        };
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| parse_range(r, size));
        let (status, start, length) = match range {
            Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
            None => (StatusCode::OK, 0, size),
        };
        let mut pairs = vec![
            ("content-type", "application/octet-stream".to_owned()),
            ("docker-content-digest", digest.to_owned()),
            ("content-length", length.to_string()),
            ("accept-ranges", "bytes".to_owned()),
        ];
        if status == StatusCode::PARTIAL_CONTENT {
            pairs.push(("content-range", format!("bytes {start}-{}/{size}", start + length - 1)));
        }
        if head {
            return with_headers((status, Body::empty()).into_response(), &pairs);
        }
        if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
            return unknown();
        }
        let stream = tokio_util::io::ReaderStream::new(file.take(length));
        with_headers((status, Body::from_stream(stream)).into_response(), &pairs)
    }

    fn delete_blob(&self, name: &str, digest: &str) -> Response {
        let mut state = self.shared.lock();
        let removed = state
            .registries
            .get_mut(&self.org)
            .and_then(|i| i.repos.get_mut(name))
            .is_some_and(|r| r.blobs.remove(digest));
        if !removed {
            return oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry");
        }
        match self.shared.save(&state) {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(error) => oci_error(error.status, "UNKNOWN", &error.message),
        }
    }

    /// Links a stored blob into a repository.
    fn link(&self, name: &str, digest: &str) -> Result<(), Box<Response>> {
        let mut state = self.shared.lock();
        let repo = state.repo_mut(&self.org, name);
        repo.blobs.insert(digest.to_owned());
        self.shared.save(&state).map_err(|e| Box::new(oci_error(e.status, "UNKNOWN", &e.message)))
    }

    fn blob_created(name: &str, digest: &str) -> Response {
        with_headers(
            StatusCode::CREATED.into_response(),
            &[
                ("location", format!("/v2/{name}/blobs/{digest}")),
                ("docker-content-digest", digest.to_owned()),
            ],
        )
    }

    fn upload_accepted(name: &str, id: &str, size: u64) -> Response {
        with_headers(
            StatusCode::ACCEPTED.into_response(),
            &[
                ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                ("docker-upload-uuid", id.to_owned()),
                ("range", format!("0-{}", size.saturating_sub(1))),
                ("content-length", "0".to_owned()),
            ],
        )
    }

    async fn start_upload(
        &self,
        name: &str,
        params: &HashMap<String, String>,
        body: Body,
    ) -> Response {
        if let (Some(digest), Some(from)) = (params.get("mount"), params.get("from")) {
            let stored = self.shared.disk.blob_path(&self.org, digest).is_some_and(|p| p.exists());
            if stored && valid_name(from) && self.linked(from, digest) {
                return match self.link(name, digest) {
                    Ok(()) => Self::blob_created(name, digest),
                    Err(response) => *response,
                };
            }
        }
        let id = new_id();
        let upload =
            Upload { org: self.org.clone(), repo: name.to_owned(), size: 0, hasher: Sha256::new() };
        if let Some(digest) = params.get("digest") {
            // Monolithic single POST: the body is the whole blob.
            return self.finish(name, &id, upload, digest, body).await;
        }
        if let Err(error) = tokio::fs::File::create(self.shared.disk.upload_path(&id)).await {
            tracing::error!("could not open an upload: {error}");
            return oci_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "could not open an upload",
            );
        }
        self.shared.uploads.put(&id, upload);
        Self::upload_accepted(name, &id, 0)
    }

    async fn patch_upload(
        &self,
        name: &str,
        id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let Some(mut upload) = self.shared.uploads.take(id, &self.org, name) else {
            return upload_unknown();
        };
        let range = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
        if let Some(range) = range {
            let start = range
                .trim_start_matches("bytes ")
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(upload.size) {
                let size = upload.size;
                self.shared.uploads.put(id, upload);
                return with_headers(
                    oci_error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        "chunk out of order",
                    ),
                    &[
                        ("range", format!("0-{}", size.saturating_sub(1))),
                        ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ],
                );
            }
        }
        if let Err(error) = append(&self.shared.disk.upload_path(id), &mut upload, body).await {
            tracing::warn!("upload chunk failed: {error}");
            let _ = tokio::fs::remove_file(self.shared.disk.upload_path(id)).await;
            return oci_error(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", "the upload failed");
        }
        let size = upload.size;
        self.shared.uploads.put(id, upload);
        Self::upload_accepted(name, id, size)
    }

    async fn finish_upload(
        &self,
        name: &str,
        id: &str,
        params: &HashMap<String, String>,
        body: Body,
    ) -> Response {
        let Some(upload) = self.shared.uploads.take(id, &self.org, name) else {
            return upload_unknown();
        };
        let Some(digest) = params.get("digest") else {
            self.shared.uploads.put(id, upload);
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the digest parameter is required",
            );
        };
        self.finish(name, id, upload, digest, body).await
    }

    /// Appends the last bytes, checks the digest and stores the blob.
    async fn finish(
        &self,
        name: &str,
        id: &str,
        mut upload: Upload,
        digest: &str,
        body: Body,
    ) -> Response {
        let temp = self.shared.disk.upload_path(id);
        let discard = |temp: std::path::PathBuf| async move {
            let _ = tokio::fs::remove_file(temp).await;
        };
        let Some(target) = self.shared.disk.blob_path(&self.org, digest) else {
            discard(temp).await;
            return oci_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
        };
        if let Err(error) = append(&temp, &mut upload, body).await {
            tracing::warn!("upload failed: {error}");
            discard(temp).await;
            return oci_error(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", "the upload failed");
        }
        let actual = format!("sha256:{}", hex::encode(upload.hasher.finalize()));
        if actual != *digest {
            discard(temp).await;
            return oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            );
        }
        if let Err(error) = commit(&temp, &target).await {
            tracing::error!("could not store a blob: {error}");
            discard(temp).await;
            return oci_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "could not store the blob",
            );
        }
        match self.link(name, digest) {
            Ok(()) => Self::blob_created(name, digest),
            Err(response) => *response,
        }
    }

    fn upload_status(&self, name: &str, id: &str) -> Response {
        match self.shared.uploads.peek(id).filter(|u| u.org == self.org && u.repo == name) {
            Some(upload) => {
                let mut response = Self::upload_accepted(name, id, upload.size);
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            None => upload_unknown(),
        }
    }

    async fn cancel_upload(&self, name: &str, id: &str) -> Response {
        if self.shared.uploads.take(id, &self.org, name).is_none() {
            return upload_unknown();
        }
        let _ = tokio::fs::remove_file(self.shared.disk.upload_path(id)).await;
        StatusCode::NO_CONTENT.into_response()
    }
}

fn upload_unknown() -> Response {
    oci_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
}

/// Streams a request body onto the end of an upload file, hashing as it goes.
async fn append(path: &Path, upload: &mut Upload, body: Body) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        upload.hasher.update(&chunk);
        upload.size += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await
}

/// Moves a finished upload into the blob store, durably.
async fn commit(temp: &Path, target: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(temp).await?.sync_all().await?;
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    tokio::fs::rename(temp, target).await?;
    if let Some(dir) = target.parent() {
        super::state::sync_dir(dir)?;
    }
    Ok(())
}

/// `bytes=START-END` or `bytes=START-` within `size`; `None` when absent
/// or unsatisfiable (the whole blob is sent then).
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let (start, end) = header.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => size.checked_sub(1)?,
        end => end.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

/// The first child manifest or blob that `manifest` names but the
/// repository lacks.
fn missing_references(repo: &Repo, manifest: &Value, media_type: &str) -> Option<String> {
    let digests = |field: &str| -> Vec<String> {
        manifest
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d.get("urls").is_none())
            .filter_map(|d| d.get("digest").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    if media_type == OCI_INDEX || media_type == DOCKER_LIST || manifest.get("manifests").is_some() {
        return digests("manifests").into_iter().find(|d| !repo.manifests.contains_key(d));
    }
    let config = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    config.into_iter().chain(digests("layers")).find(|d| !repo.blobs.contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes_with_slashes_in_names() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(
            route("/v2/a/b/manifests/1.0"),
            Some(Route::Manifest("a/b".into(), "1.0".into()))
        );
        assert_eq!(route("/v2/a/blobs/uploads/"), Some(Route::UploadStart("a".into())));
        assert_eq!(route("/v2/a/blobs/uploads/xyz"), Some(Route::Upload("a".into(), "xyz".into())));
        assert_eq!(
            route("/v2/a/blobs/sha256:00"),
            Some(Route::Blob("a".into(), "sha256:00".into()))
        );
        assert_eq!(route("/v2/a/tags/list"), Some(Route::Tags("a".into())));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(route("/v3/"), None);
    }

    #[test]
    fn validates_names_and_ranges() {
        assert!(valid_name("team/api-server_x.y"));
        assert!(!valid_name("Team/api") && !valid_name("a//b") && !valid_name("-a"));
        assert_eq!(parse_range("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(parse_range("bytes=2-", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=8-20", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=9-2", 10), None);
    }
}
