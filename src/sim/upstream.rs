//! Orgs whose registry is an external OCI registry (in tests, Debian's
//! `docker-registry`) rather than one the simulator serves, as Control
//! Plane's registry is a service apart from its API.
//!
//! Before an API request is answered, the index of every such org (its
//! repositories, tags and digests) is read again from the registry over
//! HTTP, so that image resources and readiness see exactly what was pushed
//! there. Requests that arrive while a read is under way share the next
//! one, never an older one.
//!
//! Registries outside Control Plane that the simulator's config maps an
//! external host to (`externalRegistries`) are read the same way, into
//! [`State::external_registries`], so that readiness can check that an
//! external image exists.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::join_all;
use tokio::sync::Mutex;

use super::clock::{new_id, now_ms};
use super::config::{ExternalRegistry, OrgConfig};
use super::server::Shared;
use super::state::{RegistryIndex, State, TagEntry};
use crate::registry::{Credential, ListedTag, TOKEN_USER, list_tags};

/// The external registries: by org, and by the external host they stand
/// in for.
#[derive(Default)]
pub(crate) struct Upstreams {
    orgs: BTreeMap<String, Upstream>,
    external: BTreeMap<String, Upstream>,
}

struct Upstream {
    host: String,
    credential: Credential,
    /// When the last read that completed had started.
    last_read: Mutex<Option<Instant>>,
}

impl Upstreams {
    pub fn new(orgs: &[OrgConfig], external: &BTreeMap<String, ExternalRegistry>) -> Self {
        let orgs = orgs
            .iter()
            .filter_map(|org| {
                let host = org.registry_upstream.clone()?;
                let token = org.tokens.iter().find(|t| !t.is_empty())?;
                let upstream = Upstream {
                    host,
                    credential: Credential::basic(TOKEN_USER, token.as_str()),
                    last_read: Mutex::new(None),
                };
                Some((org.name.clone(), upstream))
            })
            .collect();
        let external = external
            .iter()
            .map(|(host, registry)| {
                let credential = match (&registry.username, &registry.password) {
                    (Some(user), Some(password)) => Credential::basic(user, password),
                    _ => Credential::Anonymous,
                };
                let upstream = Upstream {
                    host: registry.addr.clone(),
                    credential,
                    last_read: Mutex::new(None),
                };
                (host.clone(), upstream)
            })
            .collect();
        Self { orgs, external }
    }

    /// Org → the `HOST:PORT` of its external registry.
    pub fn hosts(&self) -> impl Iterator<Item = (&String, &String)> {
        self.orgs.iter().map(|(org, upstream)| (org, &upstream.host))
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty() && self.external.is_empty()
    }

    /// Reads every external registry again, unless a read that started
    /// after `arrived` already completed. A registry that cannot be read
    /// keeps its last known index (and the failure is logged).
    pub async fn refresh(&self, shared: &Shared, arrived: Instant) {
        let orgs = self.orgs.iter().map(|(org, upstream)| {
            upstream.read(shared, arrived, format!("the registry of org '{org}'"), |state| {
                state.registries.entry(org.clone()).or_default()
            })
        });
        let external = self.external.iter().map(|(host, upstream)| {
            upstream.read(
                shared,
                arrived,
                format!("the registry standing in for {host}"),
                |state| state.external_registries.entry(host.clone()).or_default(),
            )
        });
        join_all(orgs).await;
        join_all(external).await;
    }
}

impl Upstream {
    async fn read(
        &self,
        shared: &Shared,
        arrived: Instant,
        what: String,
        index: impl for<'s> FnOnce(&'s mut State) -> &'s mut RegistryIndex,
    ) {
        let mut last_read = self.last_read.lock().await;
        if last_read.is_some_and(|started| started >= arrived) {
            return;
        }
        let started = Instant::now();
        match list_tags(&self.host, self.credential.clone()).await {
            Ok(tags) => {
                let mut state = shared.lock();
                let index = index(&mut state);
                *index = merged(index, tags);
            }
            Err(error) => tracing::warn!("could not read {what}: {error}"),
        }
        *last_read = Some(started);
    }
}

/// The index the registry now lists, keeping the identity (id, created,
/// version) of tags whose digest did not move.
fn merged(old: &RegistryIndex, tags: Vec<ListedTag>) -> RegistryIndex {
    let now = now_ms();
    let mut index = RegistryIndex::default();
    for listed in tags {
        let previous = old.repos.get(&listed.repository).and_then(|r| r.tags.get(&listed.tag));
        let entry = match previous {
            Some(entry) if entry.digest == listed.digest => entry.clone(),
            Some(entry) => TagEntry {
                digest: listed.digest.clone(),
                version: entry.version + 1,
                modified_ms: now,
                ..entry.clone()
            },
            None => TagEntry {
                digest: listed.digest.clone(),
                id: new_id(),
                version: 1,
                created_ms: now,
                modified_ms: now,
            },
        };
        let repo = index.repos.entry(listed.repository).or_default();
        repo.manifests.insert(listed.digest, listed.media_type);
        repo.tags.insert(listed.tag, entry);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(repository: &str, tag: &str, digest: &str) -> ListedTag {
        ListedTag {
            repository: repository.into(),
            tag: tag.into(),
            digest: digest.into(),
            media_type: crate::registry::OCI_MANIFEST.into(),
        }
    }

    #[test]
    fn a_tag_keeps_its_identity_until_its_digest_moves() {
        let first = merged(&RegistryIndex::default(), vec![listed("api", "1", "sha256:a")]);
        let entry = |index: &RegistryIndex| index.repos["api"].tags["1"].clone();
        let same = merged(&first, vec![listed("api", "1", "sha256:a")]);
        assert_eq!(entry(&same), entry(&first));
        let moved = merged(&same, vec![listed("api", "1", "sha256:b")]);
        assert_eq!(entry(&moved).id, entry(&first).id);
        assert_eq!(entry(&moved).version, 2);
        assert!(moved.repos["api"].manifests.contains_key("sha256:b"));
        assert!(merged(&moved, vec![]).repos.is_empty(), "a deleted tag disappears");
    }
}
