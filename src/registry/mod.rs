//! Registry-to-registry image copy over the OCI Distribution API, without
//! a Docker daemon: streamed, digest-verified, and the same code that
//! `promote` uses.
//!
//! The library entry points are [`copy_image`], [`resolve_digest`] and
//! [`image_exists`]; `ferry image copy` ([`run`]) is a thin CLI over them.
//! See `docs/image-copy.md` for the rules and the JSON report.

mod auth;
mod blob;
mod client;
mod command;
mod copy;
mod credentials;
mod digest;
mod error;
mod listing;
mod manifest;
mod progress;
mod push;
mod reference;
mod terminal;

pub use command::{COPY_SCHEMA, CopyArgs, ImageCommand, json, run, summary};
pub use copy::{
    BlobCounts, CopyReport, CopyRequest, DEFAULT_JOBS, Staged, copy_image, image_exists,
    resolve_digest, stage,
};
pub use credentials::{Credential, Credentials, Secret, TOKEN_USER};
pub use digest::{Digest, InvalidDigest};
pub use error::RegistryError;
pub use listing::{ListedTag, list_tags};
pub use manifest::{ACCEPT_ALL, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
pub use progress::{BlobOutcome, Reporter, Silent};
pub use push::push_image;
pub use reference::{ImageRef, InvalidReference, is_loopback_host};
pub use terminal::Bars;
