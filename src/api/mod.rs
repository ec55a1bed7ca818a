//! The Control Plane API as Ferry speaks it: an HTTP client with bounded
//! concurrency, list paging, per-request timeouts and retries of transient
//! failures only ([`client`]), typed errors ([`error`]) and the resource
//! paths ([`paths`], pure).

pub mod client;
pub mod error;
pub mod paths;

pub use client::{Client, ClientSettings, Token, WriteOutcome};
pub use error::ApiError;
