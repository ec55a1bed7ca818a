//! Image references: `HOST[:PORT]/REPOSITORY[:TAG][@sha256:…]`.
//!
//! Names without a registry host (`nginx:1.27`) mean Docker Hub, as they do
//! for Docker. Plain HTTP is used only for loopback hosts; everything else
//! must be HTTPS.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

/// A parsed image reference. At least one of `tag` and `digest` is set
/// (`latest` is assumed when neither is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host as written (`127.0.0.1:5000`, `org.registry.cpln.io`);
    /// credentials are looked up by it.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an image reference: {reason}")]
pub struct InvalidReference {
    pub reference: String,
    pub reason: String,
}

const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    /// Base URL of the registry's API (`http://` only for loopback).
    pub fn base_url(&self) -> String {
        base_url(&self.registry)
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository at another tag or digest.
    pub fn with(&self, tag: Option<String>, digest: Option<Digest>) -> Self {
        Self { tag, digest, ..self.clone() }
    }
}

/// Base URL of a registry host's API (`http://` only for loopback).
pub fn base_url(registry: &str) -> String {
    let host = if registry == DOCKER_HUB { "registry-1.docker.io" } else { registry };
    let scheme = if is_loopback_host(host) { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// True for `localhost`, 127.0.0.0/8 and `::1`, with or without a port.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(host, _)| host)
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for ImageRef {
    type Err = InvalidReference;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| InvalidReference {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                (name, Some(digest.parse::<Digest>().map_err(|e| invalid(&e.to_string()))?))
            }
            None => (text, None),
        };
        // A tag is a `:` after the last `/` (a `:` before it is a port).
        let (name, tag) = match name.rsplit_once(':') {
            Some((before, tag)) if !tag.contains('/') => (before, Some(tag.to_owned())),
            _ => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        if registry.is_empty() {
            return Err(invalid("the registry host is empty"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(invalid(
                "the repository must be lowercase letters, digits and `._-`, separated by `/`",
            ));
        }
        if let Some(tag) = &tag {
            let ok = tag.len() <= 128
                && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(invalid("a tag is up to 128 letters, digits and `._-`"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Ok(Self { registry, repository, tag, digest })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageRef {
        text.parse().unwrap()
    }

    #[test]
    fn parses_hosts_ports_tags_and_digests() {
        let r = parse("127.0.0.1:5000/team/app:v1");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("127.0.0.1:5000", "team/app"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.base_url(), "http://127.0.0.1:5000");

        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("dev.registry.cpln.io/api@{digest}"));
        assert_eq!((r.tag, r.digest.map(|d| d.to_string())), (None, Some(digest)));
        assert_eq!(parse("dev.registry.cpln.io/api").base_url(), "https://dev.registry.cpln.io");

        let r = parse("nginx");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("docker.io", "library/nginx"));
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in ["host.io/App:v1", "host.io/app:", "host.io/app@sha256:12", "host.io//x", "/x"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn recognises_loopback() {
        for host in ["localhost:5000", "127.0.0.1", "127.9.0.1:80", "[::1]:5000"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
