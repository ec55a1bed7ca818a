//! Helpers shared by the integration tests.

pub mod ferry;
pub mod flaky_registry;
pub mod oci_image;
pub mod registry_server;
