//! The Control Plane API as Ferry speaks it: an HTTP client with bounded
//! concurrency, list paging, per-request timeouts and retries of transient
//! failures only ([`client`]), typed errors ([`error`]), the resource
//! paths ([`paths`], pure), and the seam the logic is written against
//! ([`ControlPlane`]), which the client and an in-memory [`fake`] both
//! implement.

pub mod client;
pub mod control_plane;
pub mod error;
pub mod fake;
pub mod paths;

pub use client::{Client, ClientSettings, Token, WriteOutcome};
pub use control_plane::{ControlPlane, write_resolved};
pub use error::ApiError;
