//! Everything the simulator remembers, and how it is kept on disk.
//!
//! Resources and registry indexes live in one `state.json`, rewritten on
//! every change with a crash-safe write (temp file, fsync, rename, fsync
//! of the directory). Blob and manifest bytes live beside it as
//! content-addressed files, `blobs/ORG/sha256/HEX`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SimError;

/// The whole remembered state.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct State {
    /// API resources, by [`ItemKey::id`].
    pub items: BTreeMap<String, Item>,
    /// One registry index per org.
    pub registries: BTreeMap<String, RegistryIndex>,
    /// Registries outside Control Plane the config maps an external host
    /// to, by that host; read again before every request, never saved.
    #[serde(skip)]
    pub external_registries: BTreeMap<String, RegistryIndex>,
    /// Fields the config makes the API fill on stored items; never saved.
    #[serde(skip)]
    pub server_fields: super::config::ServerFields,
}

impl State {
    /// A repository of an org's registry, if anything was pushed to it.
    pub fn repo(&self, org: &str, name: &str) -> Option<&Repo> {
        self.registries.get(org)?.repos.get(name)
    }

    /// A repository of an org's registry, created empty when missing.
    pub fn repo_mut(&mut self, org: &str, name: &str) -> &mut Repo {
        self.registries.entry(org.to_owned()).or_default().repos.entry(name.to_owned()).or_default()
    }
}

/// Where an item lives: org, GVC (for GVC-scoped kinds), kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemKey {
    pub org: String,
    pub gvc: Option<String>,
    pub kind: String,
    pub name: String,
}

impl ItemKey {
    pub fn new(org: &str, gvc: Option<&str>, kind: &str, name: &str) -> Self {
        Self { org: org.into(), gvc: gvc.map(Into::into), kind: kind.into(), name: name.into() }
    }

    /// The map key; `|` cannot occur in names.
    pub fn id(&self) -> String {
        format!("{}|{}|{}|{}", self.org, self.gvc.as_deref().unwrap_or(""), self.kind, self.name)
    }

    /// The item's API path (`links[rel=self]`).
    pub fn path(&self) -> String {
        match &self.gvc {
            Some(gvc) => format!("/org/{}/gvc/{gvc}/{}/{}", self.org, self.kind, self.name),
            None => format!("/org/{}/{}/{}", self.org, self.kind, self.name),
        }
    }
}

/// One API resource with its server-managed fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    pub org: String,
    pub gvc: Option<String>,
    pub kind: String,
    pub name: String,
    pub id: String,
    pub version: u64,
    pub created_ms: u64,
    pub modified_ms: u64,
    /// The normalized user-visible fields (description, tags, spec, …).
    pub body: Map<String, Value>,
    /// Workloads only: the versions written, newest last, to roll out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<Rollout>,
}

impl Item {
    pub fn key(&self) -> ItemKey {
        ItemKey::new(&self.org, self.gvc.as_deref(), &self.kind, &self.name)
    }

    pub fn spec(&self) -> Option<&Map<String, Value>> {
        self.body.get("spec").and_then(Value::as_object)
    }
}

/// A workload version as written, and when: it reaches a location once
/// that location's rollout delay has passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rollout {
    pub version: u64,
    pub at_ms: u64,
    pub body: Map<String, Value>,
}

/// What one org's registry holds, apart from the bytes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct RegistryIndex {
    pub repos: BTreeMap<String, Repo>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Repo {
    pub tags: BTreeMap<String, TagEntry>,
    /// Manifest digest → media type.
    pub manifests: BTreeMap<String, String>,
    /// Blob digests linked into this repository (uploaded or mounted).
    pub blobs: BTreeSet<String>,
}

/// A tag, which is also an `image` resource `REPO:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagEntry {
    pub digest: String,
    pub id: String,
    pub version: u64,
    pub created_ms: u64,
    pub modified_ms: u64,
}

/// The state directory: `state.json`, `blobs/`, `uploads/`.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    root: PathBuf,
}

impl Disk {
    pub fn open(root: &Path) -> Result<Self, SimError> {
        for dir in [root.to_path_buf(), root.join("blobs"), root.join("uploads")] {
            std::fs::create_dir_all(&dir).map_err(|source| SimError::Io { path: dir, source })?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    pub fn load(&self) -> Result<State, SimError> {
        let path = self.state_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SimError::State { path, message: e.to_string() }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(SimError::Io { path, source }),
        }
    }

    /// Writes `state.json` so that a crash leaves the old or the new file,
    /// never a torn one.
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        write_atomic(&self.state_path(), &bytes)
    }

    /// Where a blob or manifest with this digest is kept; `None` for a
    /// digest that is not `sha256:` and 64 lowercase hex digits.
    pub fn blob_path(&self, org: &str, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| self.root.join("blobs").join(org).join("sha256").join(hex))
    }

    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }
}

/// Temp file in the same directory, fsync, rename over, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", super::clock::new_id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Makes a rename durable. Directories cannot be opened for sync on every
/// platform; failing to is not worth failing the write for.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_state() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        assert!(disk.load().unwrap().items.is_empty());
        let mut state = State::default();
        state.registries.insert("acme".into(), RegistryIndex::default());
        disk.save(&state).unwrap();
        assert!(disk.load().unwrap().registries.contains_key("acme"));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
            e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        });
        assert_eq!(leftovers.count(), 0);
    }

    #[test]
    fn blob_paths_only_for_sha256_digests() {
        let disk = Disk { root: PathBuf::from("/s") };
        assert!(disk.blob_path("o", &format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(disk.blob_path("o", "sha256:../../etc").is_none());
        assert!(disk.blob_path("o", "md5:abc").is_none());
    }
}
