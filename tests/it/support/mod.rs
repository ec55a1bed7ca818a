//! Helpers shared by the integration tests.

pub mod api_table;
pub mod command;
pub mod cpln;
pub mod flaky_registry;
pub mod git;
pub mod oci;
pub mod oci_image;
pub mod registry_server;
pub mod sim;
