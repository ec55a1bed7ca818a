//! What a simulator serves: orgs and their tokens, timing, faults.
//!
//! The file form is YAML or JSON (YAML is read through
//! [`crate::manifest::yaml`], which also accepts JSON):
//!
//! ```yaml
//! orgs:
//!   - name: acme-dev
//!     tokens: [dev-token]
//!   - name: acme-prod
//!     tokens: [prod-token]
//!     registryAddr: 127.0.0.1:5102   # optional; ephemeral port otherwise
//!   - name: acme-qa
//!     tokens: [qa-token]
//!     registryUpstream: 127.0.0.1:5000  # optional: an external OCI registry
//!                                       # (user `<token>`, the org's first token)
//!     queryDenied: [volumeset]          # optional: kinds whose list and -query
//!                                       # answer 403 to the org's tokens
//! externalRegistries:                # optional: registries outside Control
//!   ghcr.io:                          # Plane that the simulator can read,
//!     addr: 127.0.0.1:5200            # by the host image references name
//!     username: <token>               # optional: the registry is private,
//!     password: s3cret                # pulls need a matching pull secret
//! apiAddr: 127.0.0.1:5100             # optional; `--addr` wins
//! rolloutDelayMs: 500
//! locationDelayMs: {aws-us-west-2: 2000}
//! pageSize: 100
//! locations:                          # custom locations beside the built-in catalogue
//!   - {name: edge-lab}                # provider byok, region = name, enabled
//!   - {name: oci-us-ashburn-1, provider: oci, region: us-ashburn-1,
//!      geo: {city: Ashburn, country: USA, continent: North America}}
//! faults: {latencyMs: 0, errorRate: 0.0, errorStatuses: [500, 503, 429], retryAfterSecs: 1}
//! serverFields:                       # fields the API fills that Ferry does not
//!   workload:                         # know, per kind, on every stored item
//!     spec.someNewServerField: value  # (where absent); `F[]` is every item of
//!     spec.containers[].probeMode: auto  # the list F
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SimError;
use super::faults::FaultConfig;
use super::locations::CustomLocation;
use crate::diagnostic::SourceFile;

/// How a simulator is set up. Build one with [`SimConfig::new`] and the
/// `with_*` methods, or read it from a file with [`SimConfig::load`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimConfig {
    /// The orgs, each with its API tokens and its own registry.
    #[serde(default)]
    pub orgs: Vec<OrgConfig>,
    /// Where the API listens; an ephemeral loopback port when absent.
    #[serde(default)]
    pub api_addr: Option<SocketAddr>,
    /// How long a new workload version takes to roll out in a location.
    #[serde(default = "default_rollout_delay_ms")]
    pub rollout_delay_ms: u64,
    /// Per-location overrides of `rollout_delay_ms`, by location name.
    #[serde(default)]
    pub location_delay_ms: BTreeMap<String, u64>,
    /// Per-workload overrides (by workload name) of both, in every location.
    #[serde(default)]
    pub workload_delay_ms: BTreeMap<String, u64>,
    /// Items per list page before a `rel: next` link.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Latency and errors added to every request.
    #[serde(default)]
    pub faults: FaultConfig,
    /// Locations every org has besides the built-in catalogue.
    #[serde(default)]
    pub locations: Vec<CustomLocation>,
    /// Registries outside Control Plane that the simulator reads, by the
    /// host image references name. Images of other external hosts count
    /// as pullable (the simulator cannot look).
    #[serde(default)]
    pub external_registries: BTreeMap<String, ExternalRegistry>,
    /// Fields the API fills on every stored item of a kind, where absent:
    /// those the real API adds and Ferry's model of it
    /// ([`crate::normalize`]) lacks, so that tests show Ferry survives them.
    #[serde(default)]
    pub server_fields: ServerFields,
    /// Where state is kept; a temporary directory (removed on shutdown)
    /// when absent.
    #[serde(skip)]
    pub state_dir: Option<PathBuf>,
}

/// One org: its name, the tokens that may act on it, and optionally a
/// fixed registry address or an external registry that stands in for the
/// simulator's own.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgConfig {
    pub name: String,
    pub tokens: Vec<String>,
    #[serde(default)]
    pub registry_addr: Option<SocketAddr>,
    /// `HOST:PORT` of an OCI registry that is this org's registry instead
    /// of one the simulator serves (see `sim::upstream`).
    #[serde(default)]
    pub registry_upstream: Option<String>,
    /// Kinds whose lists and `-query` answer 403 to this org's tokens, as
    /// to a least-privilege token without `view` on them.
    #[serde(default)]
    pub query_denied: Vec<String>,
}

impl fmt::Debug for OrgConfig {
    /// Tokens are secrets: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrgConfig")
            .field("name", &self.name)
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("registry_addr", &self.registry_addr)
            .field("registry_upstream", &self.registry_upstream)
            .field("query_denied", &self.query_denied)
            .finish()
    }
}

/// A registry outside Control Plane standing in for an external host: a
/// workload's image of that host is ready only when the image is there
/// and, for a private registry (credentials given), when a docker pull
/// secret on the GVC holds these credentials for the host.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalRegistry {
    /// `HOST:PORT` of the registry on loopback.
    pub addr: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl fmt::Debug for ExternalRegistry {
    /// The password is a secret: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalRegistry")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

/// Fields the API fills, by kind, then by path: dot-separated keys, where
/// `F[]` walks into every item of the list `F`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerFields(pub BTreeMap<String, BTreeMap<String, serde_json::Value>>);

impl ServerFields {
    /// Fills the fields of `kind` that `doc` lacks.
    pub(crate) fn fill(&self, kind: &str, doc: &mut serde_json::Map<String, serde_json::Value>) {
        for (path, value) in self.0.get(kind).into_iter().flatten() {
            let segments: Vec<&str> = path.split('.').collect();
            fill_at(doc, &segments, value);
        }
    }
}

fn fill_at(
    target: &mut serde_json::Map<String, serde_json::Value>,
    path: &[&str],
    value: &serde_json::Value,
) {
    use serde_json::Value;
    let Some((first, rest)) = path.split_first() else { return };
    if let Some(list) = first.strip_suffix("[]") {
        if let Some(Value::Array(items)) = target.get_mut(list) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                fill_at(item, rest, value);
            }
        }
        return;
    }
    if rest.is_empty() {
        target.entry(*first).or_insert_with(|| value.clone());
        return;
    }
    let inner = target.entry(*first).or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(inner) = inner {
        fill_at(inner, rest, value);
    }
}

fn default_rollout_delay_ms() -> u64 {
    300
}

fn default_page_size() -> usize {
    100
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            orgs: Vec::new(),
            api_addr: None,
            rollout_delay_ms: default_rollout_delay_ms(),
            location_delay_ms: BTreeMap::new(),
            workload_delay_ms: BTreeMap::new(),
            page_size: default_page_size(),
            faults: FaultConfig::default(),
            locations: Vec::new(),
            external_registries: BTreeMap::new(),
            server_fields: ServerFields::default(),
            state_dir: None,
        }
    }
}

impl SimConfig {
    /// No orgs yet, default timing, no faults, state in a temp directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an org that `token` may act on.
    pub fn with_org(mut self, name: impl Into<String>, token: impl Into<String>) -> Self {
        let name = name.into();
        let token = token.into();
        match self.orgs.iter_mut().find(|o| o.name == name) {
            Some(org) => org.tokens.push(token),
            None => self.orgs.push(OrgConfig {
                name,
                tokens: vec![token],
                registry_addr: None,
                registry_upstream: None,
                query_denied: Vec::new(),
            }),
        }
        self
    }

    /// Adds an org whose registry is the external one at `host` (the
    /// simulator reads it with user `<token>` and `token`).
    pub fn with_org_on_registry(
        self,
        name: impl Into<String>,
        token: impl Into<String>,
        host: impl Into<String>,
    ) -> Self {
        let name = name.into();
        let mut config = self.with_org(name.clone(), token);
        if let Some(org) = config.orgs.iter_mut().find(|o| o.name == name) {
            org.registry_upstream = Some(host.into());
        }
        config
    }

    /// Makes `org`'s tokens refused (403) the lists and `-query` of `kind`.
    pub fn with_query_denied(mut self, org: &str, kind: impl Into<String>) -> Self {
        if let Some(found) = self.orgs.iter_mut().find(|o| o.name == org) {
            found.query_denied.push(kind.into());
        }
        self
    }

    /// Makes image references to `host` (`ghcr.io`) read the registry at
    /// `addr`; with `credentials` (user, password) it is private.
    pub fn with_external_registry(
        mut self,
        host: impl Into<String>,
        addr: impl Into<String>,
        credentials: Option<(String, String)>,
    ) -> Self {
        let (username, password) = credentials.unzip();
        let registry = ExternalRegistry { addr: addr.into(), username, password };
        self.external_registries.insert(host.into(), registry);
        self
    }

    /// Makes the API fill `path` (`spec.x`, `spec.containers[].y`) with
    /// `value` on every stored item of `kind` that lacks it.
    pub fn with_server_field(
        mut self,
        kind: impl Into<String>,
        path: impl Into<String>,
        value: serde_json::Value,
    ) -> Self {
        self.server_fields.0.entry(kind.into()).or_default().insert(path.into(), value);
        self
    }

    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    pub fn with_rollout_delay(mut self, delay: Duration) -> Self {
        self.rollout_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Adds a custom location (beside the built-in catalogue) to every org.
    pub fn with_location(mut self, location: CustomLocation) -> Self {
        self.locations.push(location);
        self
    }

    /// Reads a YAML or JSON config file.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SimError::Io { path: path.to_path_buf(), source })?;
        let source = SourceFile::new(path.display().to_string(), text);
        let invalid = |message: String| SimError::Config { path: path.to_path_buf(), message };
        let documents = crate::manifest::yaml::parse_documents(&source)
            .map_err(|problem| invalid(problem.to_string()))?;
        let value = documents.first().map_or(serde_json::Value::Null, |d| d.to_json());
        let config: Self = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Refuses what the simulator must not do: listen beyond loopback,
    /// serve an org twice, or an org without a token.
    pub fn check(&self) -> Result<(), SimError> {
        let addrs =
            self.api_addr.iter().chain(self.orgs.iter().filter_map(|o| o.registry_addr.as_ref()));
        if let Some(addr) = addrs.into_iter().find(|a| !a.ip().is_loopback()) {
            return Err(SimError::NotLoopback(*addr));
        }
        if let Some((host, _)) = self
            .external_registries
            .iter()
            .find(|(_, r)| !crate::registry::is_loopback_host(&r.addr))
        {
            return Err(SimError::Config {
                path: PathBuf::from("externalRegistries"),
                message: format!("the registry standing in for {host} must be on loopback"),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for org in &self.orgs {
            if !seen.insert(org.name.as_str()) {
                return Err(SimError::InvalidOrg(format!("org '{}' is listed twice", org.name)));
            }
            if org.registry_addr.is_some() && org.registry_upstream.is_some() {
                return Err(SimError::InvalidOrg(format!(
                    "org '{}' has both registryAddr and registryUpstream",
                    org.name
                )));
            }
            if org.tokens.iter().all(String::is_empty) {
                return Err(SimError::InvalidOrg(format!("org '{}' has no token", org.name)));
            }
        }
        super::locations::check_custom(&self.locations)
    }

    pub(crate) fn delay_for(&self, workload: &str, location: &str) -> u64 {
        let location = self.location_delay_ms.get(location).copied();
        self.workload_delay_ms.get(workload).copied().or(location).unwrap_or(self.rollout_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_fields_fill_what_is_absent_at_every_level_and_only_their_kind() {
        let config = SimConfig::new()
            .with_server_field("workload", "spec.someNewServerField", json!("value"))
            .with_server_field("workload", "spec.containers[].probeMode", json!("auto"));
        let mut doc =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "probeMode": "off"}]}});
        let mut other = json!({"spec": {}});
        if let (Some(doc), Some(other)) = (doc.as_object_mut(), other.as_object_mut()) {
            config.server_fields.fill("workload", doc);
            config.server_fields.fill("identity", other);
        }
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "a", "probeMode": "auto"}, {"name": "b", "probeMode": "off"}],
                "someNewServerField": "value"}})
        );
        assert_eq!(other, json!({"spec": {}}));
        let text = "serverFields:\n  workload:\n    spec.x: 1\n";
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sim.yaml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let loaded = SimConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.server_fields.0["workload"]["spec.x"], json!(1));
    }
}
