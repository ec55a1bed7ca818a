//! `ferry sim` over HTTP, with Rust clients, skopeo and the real cpln CLI.

mod api;
mod cli;
mod faults;
mod locations;
mod readiness;
mod registry;
mod schema;
