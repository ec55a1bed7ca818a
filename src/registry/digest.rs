//! Content digests (`sha256:<64 hex>`), the identity of every blob and
//! manifest, and the hasher that checks bytes against one.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:` digest. Other algorithms are refused: every
/// registry Ferry talks to uses sha256, and an unknown algorithm could not
/// be verified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hash(Sha256::digest(bytes).as_slice())
    }

    fn from_hash(hash: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(hash)))
    }

    /// The hex part, as used in registry storage paths.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a sha256 digest (expected `sha256:` and 64 lowercase hex digits)")]
pub struct InvalidDigest(pub String);

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid { Ok(Self(text.to_owned())) } else { Err(InvalidDigest(text.to_owned())) }
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashes a stream of chunks and counts its bytes.
#[derive(Default)]
pub struct Hasher {
    sha256: Sha256,
    len: u64,
}

impl Hasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.len
    }

    pub fn finish(self) -> Digest {
        Digest::from_hash(self.sha256.finalize().as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_parses() {
        let digest = Digest::of(b"");
        assert_eq!(
            digest.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(digest.as_str().parse::<Digest>(), Ok(digest.clone()));
        let mut hasher = Hasher::default();
        hasher.update(b"");
        assert_eq!(hasher.finish(), digest);
    }

    #[test]
    fn refuses_other_forms() {
        for bad in
            ["sha256:abc", "sha512:00", "SHA256:e3b0", "", &format!("sha256:{}", "A".repeat(64))]
        {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
