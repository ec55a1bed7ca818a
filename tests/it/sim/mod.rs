//! `ferry sim` over HTTP, with Rust clients, skopeo and the real cpln CLI.

mod api;
mod cli;
mod faults;
mod readiness;
mod registry;
