//! What a copy tells its caller while it runs. The library never prints:
//! the CLI draws progress bars from these events, `promote` may log them.

use super::RegistryError;
use super::digest::Digest;

/// How one blob reached the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    /// Streamed from the source through Ferry.
    Copied,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Already present at the destination.
    Skipped,
}

/// Receives progress events; every method has an empty default. Called
/// from the copy's tasks, so implementations must be `Sync`.
pub trait Reporter: Sync {
    /// A blob is about to be checked, mounted or copied.
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    /// `done` bytes of a copied blob have been read from the source
    /// (reported about ten times a second).
    fn blob_progress(&self, _digest: &Digest, _done: u64) {}
    fn blob_finished(&self, _digest: &Digest, _outcome: BlobOutcome) {}
    /// A transfer failed in a way worth retrying; it starts again.
    fn blob_retrying(&self, _digest: &Digest, _attempt: u32, _error: &RegistryError) {}
    /// A manifest was written at the destination (`reference` is a tag or
    /// a digest).
    fn manifest_pushed(&self, _reference: &str, _digest: &Digest) {}
}

/// Ignores every event.
pub struct Silent;

impl Reporter for Silent {}
