//! Helpers shared by the integration tests.

pub mod ferry;
pub mod oci_image;
pub mod registry_server;
