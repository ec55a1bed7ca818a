//! Unique ids for simulated resources, and the time functions the
//! simulator uses (from [`crate::timestamp`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub(crate) use crate::timestamp::{now_ms, rfc3339};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A fresh UUID-shaped id (random enough for a simulator: hashed from the
/// time, the process and a counter).
pub(crate) fn new_id() -> String {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    uuid_from(&Sha256::digest(format!("{nanos}:{}:{seq}", std::process::id()).as_bytes()))
}

/// A UUID-shaped id that is always the same for the same seed.
pub(crate) fn stable_id(seed: &str) -> String {
    uuid_from(&Sha256::digest(seed.as_bytes()))
}

fn uuid_from(hash: &[u8]) -> String {
    let hex = hex::encode(&hash[..16]);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
