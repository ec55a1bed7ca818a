//! Helpers shared by the integration tests.

pub mod command;
pub mod cpln;
pub mod git;
pub mod oci;
pub mod sim;
