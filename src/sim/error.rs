//! The simulator's own failures ([`SimError`]) and the API error bodies it
//! answers with ([`ApiError`], the `{status, message, code, details, id}`
//! shape of the real API).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why the simulator could not start or keep running.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SimError {
    #[error("could not read or write {path}: {source}")]
    #[diagnostic(code(ferry::sim::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid simulator config {path}: {message}")]
    #[diagnostic(code(ferry::sim::config))]
    Config { path: PathBuf, message: String },

    #[error("the simulator state in {path} is unreadable: {message}")]
    #[diagnostic(
        code(ferry::sim::state),
        help(
            "move the directory away to start from scratch (the embedded simulator's: `ferry sim reset`)"
        )
    )]
    State { path: PathBuf, message: String },

    #[error("{0}")]
    #[diagnostic(code(ferry::sim::org))]
    InvalidOrg(String),

    #[error("{0}")]
    #[diagnostic(code(ferry::sim::location))]
    InvalidLocation(String),

    #[error("the simulator only listens on loopback, not on {0}")]
    #[diagnostic(code(ferry::sim::loopback))]
    NotLoopback(SocketAddr),

    #[error("could not listen on {addr}: {source}")]
    #[diagnostic(code(ferry::sim::bind))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start the async runtime: {0}")]
    #[diagnostic(code(ferry::sim::runtime))]
    Runtime(#[source] std::io::Error),

    #[error("could not prepare the embedded simulator: {0}")]
    #[diagnostic(
        code(ferry::sim::seed),
        help(
            "`ferry sim reset` removes its state, and the next `--sim` command starts from scratch"
        )
    )]
    Seed(String),

    #[error("there is no simulator state to remove: {} does not exist", path.display())]
    #[diagnostic(
        code(ferry::sim::nothing_to_reset),
        help("the first `--sim` command creates it next to the plan file (docs/simulator.md)")
    )]
    NothingToReset { path: PathBuf },

    #[error(
        "{} does not hold the embedded simulator's state (no state.json, no ferry-bootstrapped): left as it is",
        path.display()
    )]
    #[diagnostic(code(ferry::sim::not_state), help("remove it yourself if nothing needs it"))]
    NotState { path: PathBuf },
}

/// An error answer of the simulated REST API.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Box<str>,
    pub details: Box<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status,
            code,
            message: message.into(),
            details: Box::new(json!({})),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{kind} '{name}' not found"))
            .with_details(json!({"kind": kind, "name": name}))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Box::new(details);
        self
    }

    pub fn body(&self) -> Value {
        json!({
            "status": self.status.as_u16(),
            "message": self.message,
            "code": self.code,
            "details": self.details,
            "id": super::clock::new_id(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::patch::PatchError> for ApiError {
    fn from(error: crate::patch::PatchError) -> Self {
        ApiError::bad_request(error.0)
    }
}
