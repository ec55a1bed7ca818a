//! The manifest model: cpln resources as written in git.
//!
//! Pure: takes file contents, gives resources. Reading them from git or a
//! directory is [`crate::repo`]'s job. A resource keeps its whole document
//! (every field, modelled or not) together with where it came from.

pub mod image;
pub mod kept_secret;
pub mod kind;
pub mod link;
mod load;
pub mod refs;
pub(crate) mod secret_text;
pub mod template;
pub mod yaml;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::diagnostic::{Location, SourceFile};
pub use kind::{Kind, Phase};
pub use load::load_documents;
use yaml::Node;

/// Kind and name: what identifies a resource within one environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self { kind, name: name.into() }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: ResourceIdError| {
            serde::de::Error::custom(format!("`{text}` is not kind/name: {e:?}"))
        })
    }
}

/// Why a `kind/name` string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceIdError {
    MissingSlash,
    UnknownKind(String),
}

impl FromStr for ResourceId {
    type Err = ResourceIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, name) = text.split_once('/').ok_or(ResourceIdError::MissingSlash)?;
        let kind =
            Kind::parse(kind).ok_or_else(|| ResourceIdError::UnknownKind(kind.to_owned()))?;
        if name.is_empty() {
            return Err(ResourceIdError::MissingSlash);
        }
        Ok(ResourceId::new(kind, name))
    }
}

/// One resource document from the manifests.
#[derive(Clone, Debug)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    /// The inline `gvc:` field, if the document has one.
    pub gvc: Option<String>,
    /// The whole document, with spans.
    pub node: Node,
    pub source: SourceFile,
}

impl Resource {
    pub fn id(&self) -> ResourceId {
        ResourceId::new(self.kind, self.name.clone())
    }

    /// The git commit the resource was read at (`None` from the work tree).
    pub fn revision(&self) -> Option<&str> {
        self.source.revision()
    }

    /// Where a node of this resource's document is.
    pub fn location_of(&self, node: &Node) -> Location {
        node.location(&self.source)
    }

    /// Where a JSON pointer into the document points (see
    /// [`Node::resolve`]): the key itself when `on_key`, else the value; the
    /// nearest existing ancestor when the pointer names something missing.
    pub fn location_at(&self, pointer: &str, on_key: bool) -> Location {
        Location::new(&self.source, self.node.resolve(pointer).span(on_key))
    }

    /// Where the resource is defined (its `name` value).
    pub fn location(&self) -> Location {
        self.location_of(self.node.get("name").unwrap_or(&self.node))
    }

    /// The document as JSON, exactly as written.
    pub fn body(&self) -> serde_json::Value {
        self.node.to_json()
    }
}

/// The manifests of one revision.
#[derive(Clone, Debug, Default)]
pub struct ManifestSet {
    pub resources: Vec<Resource>,
}

impl ManifestSet {
    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|r| r.kind == id.kind && r.name == id.name)
    }

    /// The `kind: gvc` documents.
    pub fn gvcs(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(|r| r.kind == Kind::Gvc)
    }
}
