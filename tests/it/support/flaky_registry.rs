//! A read-only registry in memory that fails on purpose: every blob's
//! first GET answers 503, its second is cut off halfway. Serves one image
//! as `app:v1`, for testing that copies retry transient failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::oci_image::TestImage;

#[derive(Default)]
struct Contents {
    manifests: HashMap<String, (String, Bytes)>,
    blobs: HashMap<String, Bytes>,
    blob_gets: Mutex<HashMap<String, usize>>,
    requests: AtomicUsize,
}

/// The running server; it stops with the test process.
pub struct FlakyRegistry {
    pub host: String,
    contents: Arc<Contents>,
}

impl FlakyRegistry {
    /// Serves `image` (small blobs only: they are held in memory).
    pub fn serve(image: &TestImage, blobs: Vec<(String, Vec<u8>)>) -> Self {
        let mut contents = Contents::default();
        for manifest in image.children.iter().chain([&image.top]) {
            let entry = (manifest.media_type.clone(), Bytes::from(manifest.bytes.clone()));
            contents.manifests.insert(manifest.digest.clone(), entry);
        }
        let top = &image.top;
        contents.manifests.insert("v1".into(), (top.media_type.clone(), top.bytes.clone().into()));
        contents.blobs = blobs.into_iter().map(|(d, b)| (d, Bytes::from(b))).collect();
        let contents = Arc::new(contents);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .route("/v2/", axum::routing::any(|| async { StatusCode::OK }))
            .route("/v2/app/{kind}/{reference}", axum::routing::any(answer))
            .with_state(contents.clone());
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { host, contents }
    }

    /// Requests answered so far (for manifests and blobs).
    pub fn requests(&self) -> usize {
        self.contents.requests.load(Ordering::SeqCst)
    }
}

async fn answer(
    State(contents): State<Arc<Contents>>,
    method: Method,
    Path((kind, reference)): Path<(String, String)>,
) -> Response {
    contents.requests.fetch_add(1, Ordering::SeqCst);
    if kind == "manifests" {
        let Some((media_type, bytes)) = contents.manifests.get(&reference) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let digest = super::oci_image::sha256(bytes);
        let body = if method == Method::HEAD { Body::empty() } else { Body::from(bytes.clone()) };
        let headers = [
            (header::CONTENT_TYPE, media_type.clone()),
            ("docker-content-digest".parse().unwrap(), digest),
        ];
        return (headers, body).into_response();
    }
    let Some(bytes) = contents.blobs.get(&reference).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let attempt = {
        let mut gets = contents.blob_gets.lock().unwrap();
        let count = gets.entry(reference).or_default();
        *count += 1;
        *count
    };
    let length = [(header::CONTENT_LENGTH, bytes.len().to_string())];
    match attempt {
        1 => (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "0")]).into_response(),
        2 => {
            // Half the body, then a broken connection.
            let half = bytes.slice(..bytes.len() / 2);
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("cut off"))];
            (length, Body::from_stream(futures::stream::iter(chunks))).into_response()
        }
        _ => (length, Body::from(bytes)).into_response(),
    }
}
