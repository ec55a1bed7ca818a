//! Helpers shared by the integration tests.

pub mod cpln;
pub mod oci;
pub mod sim;
