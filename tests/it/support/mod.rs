//! Helpers shared by the integration tests.

pub mod command;
pub mod git;
