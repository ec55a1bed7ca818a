//! Everything that can stop an image copy, with what to do about it.

use std::path::PathBuf;

use miette::Diagnostic;

use super::digest::Digest;
use super::reference::InvalidReference;

/// An image copy (or a lookup) failed. Messages name hosts, repositories
/// and digests, never a password or token.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RegistryError {
    #[error(transparent)]
    #[diagnostic(code(ferry::registry::reference))]
    Reference(#[from] InvalidReference),

    #[error("refusing plain HTTP to `{url}`")]
    #[diagnostic(
        code(ferry::registry::insecure),
        help("only loopback addresses (127.0.0.0/8, ::1, localhost) may be reached without TLS")
    )]
    Insecure { url: String },

    #[error("the credentials variable `{variable}` is not set")]
    #[diagnostic(
        code(ferry::registry::missing_credentials),
        help(
            "set it to `user:password`, or to a bare token, which is sent with the user `<token>` as Control Plane expects"
        )
    )]
    MissingCredentials { variable: String },

    #[error("could not use the Docker config `{}`: {reason}", path.display())]
    #[diagnostic(code(ferry::registry::docker_config))]
    DockerConfig { path: PathBuf, reason: String },

    #[error("the Docker credential helper `{helper}` failed: {reason}")]
    #[diagnostic(code(ferry::registry::credential_helper))]
    CredentialHelper { helper: String, reason: String },

    #[error("could not reach `{url}`")]
    #[diagnostic(code(ferry::registry::transport))]
    Transport {
        url: String,
        #[source]
        cause: reqwest::Error,
    },

    #[error("authentication failed at `{host}`: {reason}")]
    #[diagnostic(
        code(ferry::registry::unauthorized),
        help(
            "check the credentials given for this host (`--src-creds-env`, `--dst-creds-env` or the Docker config); Control Plane expects the user `<token>` and an org token or service-account key"
        )
    )]
    Unauthorized { host: String, reason: String },

    #[error("`{host}` denied access to `{repository}` ({status})")]
    #[diagnostic(
        code(ferry::registry::denied),
        help("the credentials need pull on the source repository and push on the destination")
    )]
    Denied { host: String, repository: String, status: u16 },

    #[error("{what} `{reference}` does not exist")]
    #[diagnostic(code(ferry::registry::not_found))]
    NotFound { what: &'static str, reference: String },

    #[error("`{url}` answered {status}: {detail}")]
    #[diagnostic(code(ferry::registry::unexpected_response))]
    Unexpected {
        url: String,
        status: u16,
        detail: String,
        /// The answer's `Retry-After`, when it had one.
        retry_after: Option<std::time::Duration>,
    },

    #[error("the bytes of {what} do not match its digest: expected {expected}, got {actual}")]
    #[diagnostic(
        code(ferry::registry::digest_mismatch),
        help("the source registry served corrupt or altered content; nothing was tagged")
    )]
    DigestMismatch { what: String, expected: Digest, actual: String },

    #[error("{what} is {actual} bytes, but its descriptor says {expected}")]
    #[diagnostic(
        code(ferry::registry::size_mismatch),
        help("the source registry served corrupt or altered content; nothing was tagged")
    )]
    SizeMismatch { what: String, expected: u64, actual: u64 },

    #[error("`{reference}` is a `{media_type}` manifest, which Ferry cannot copy unchanged")]
    #[diagnostic(
        code(ferry::registry::unsupported_manifest),
        help(
            "Ferry copies OCI images and indexes and Docker schema 2 manifests and manifest lists; Docker schema 1 would have to be converted, which changes the digest"
        )
    )]
    UnsupportedManifest { reference: String, media_type: String },

    #[error("the manifest `{reference}` is invalid: {reason}")]
    #[diagnostic(code(ferry::registry::invalid_manifest))]
    InvalidManifest { reference: String, reason: String },

    #[error("`{destination}` already points at {existing}, not at {wanted}")]
    #[diagnostic(
        code(ferry::registry::tag_exists),
        help("pass `--force` to move the tag (promotions normally never move an existing tag)")
    )]
    TagExists { destination: String, existing: Digest, wanted: Digest },

    #[error("`{reference}` was stored as {reported}, but the source is {expected}")]
    #[diagnostic(code(ferry::registry::destination_digest))]
    DestinationDigest { reference: String, expected: Digest, reported: String },

    #[error("the token server `{realm}` answered with something that is not a token: {reason}")]
    #[diagnostic(code(ferry::registry::token_response))]
    TokenResponse { realm: String, reason: String },

    #[error("could not start the async runtime")]
    #[diagnostic(code(ferry::registry::runtime))]
    Runtime(#[source] std::io::Error),

    #[error("could not write the report")]
    #[diagnostic(code(ferry::registry::output))]
    Output(#[source] std::io::Error),
}

impl RegistryError {
    /// Worth trying again: the network or the server had a bad moment.
    /// Integrity and authorisation failures never are.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            // Only a streamed upload reports a 401 this way: its token
            // expired mid-transfer, and the next attempt fetches a new one.
            RegistryError::Unexpected { status: 401, .. } => true,
            RegistryError::Unexpected { status, .. } => super::client::is_transient_status(*status),
            _ => false,
        }
    }

    /// How long the registry asked to wait before trying again, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RegistryError::Unexpected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
