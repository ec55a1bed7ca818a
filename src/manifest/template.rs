//! The manifests' own GVC, a template: manifests are written for one GVC
//! (`cpln helm template` output says `gvc: online-boutique` on every
//! GVC-scoped resource and links `//gvc/online-boutique/identity/…`; a
//! `-o yaml-slim` export names the GVC it was read from), and Ferry
//! renders that name as each environment's GVC.
//!
//! The template is the name of the `kind: gvc` document or, when there is
//! none, the single GVC that the `gvc:` fields name (links naming another
//! are then problems of their own, reported with the template's name) or,
//! with no `gvc:` field either, the single GVC that links name. Pure.

use serde::Serialize;

use super::kind::Kind;
use super::link;
use super::refs::references;
use super::yaml::Node;
use super::{ManifestSet, Resource};

/// Where the template's name was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateSource {
    /// The `kind: gvc` document's name.
    Document,
    /// The one GVC that the `gvc:` fields name (no `kind: gvc`).
    Fields,
    /// The one GVC that links name (no `kind: gvc`, no `gvc:` field).
    Links,
}

impl TemplateSource {
    /// For messages: where the name comes from.
    pub fn describe(self) -> &'static str {
        match self {
            TemplateSource::Document => "the name of their `kind: gvc` document",
            TemplateSource::Fields => "the GVC their `gvc:` fields name",
            TemplateSource::Links => "the GVC their links name",
        }
    }
}

/// A place where the manifests name a GVC: a `gvc:` field of a GVC-scoped
/// resource, or a link (`//gvc/NAME/…`, `/org/ORG/gvc/NAME/…`, `//gvc/NAME`)
/// in a field that references another resource.
#[derive(Debug, Clone)]
pub struct GvcMention<'a> {
    pub resource: &'a Resource,
    pub node: &'a Node,
    pub name: &'a str,
    /// A `gvc:` field (else a link).
    pub field: bool,
}

/// The manifests' template GVC, or why there is none.
#[derive(Debug, Clone)]
pub enum Template<'a> {
    /// No `kind: gvc` document, and nothing names a GVC.
    None,
    One {
        name: &'a str,
        source: TemplateSource,
    },
    /// No `kind: gvc` document, and the `gvc:` fields (or, without any,
    /// the links) name several GVCs: each name with where it is first
    /// named.
    Ambiguous(Vec<GvcMention<'a>>),
}

impl<'a> Template<'a> {
    /// The template's name, when there is one.
    pub fn name(&self) -> Option<&'a str> {
        match self {
            Template::One { name, .. } => Some(name),
            Template::None | Template::Ambiguous(_) => None,
        }
    }

    /// Every name that counts as the manifests' GVC: the template, or each
    /// candidate when ambiguous (already a problem of its own).
    pub fn names(&self) -> Vec<&'a str> {
        match self {
            Template::None => Vec::new(),
            Template::One { name, .. } => vec![name],
            Template::Ambiguous(first) => first.iter().map(|m| m.name).collect(),
        }
    }
}

/// The template GVC of `manifests` (see the module's documentation).
pub fn template(manifests: &ManifestSet) -> Template<'_> {
    if let Some(document) = manifests.gvcs().next() {
        return Template::One { name: &document.name, source: TemplateSource::Document };
    }
    let all = mentions(manifests);
    let fields: Vec<&GvcMention<'_>> = all.iter().filter(|m| m.field).collect();
    let (named, source) = if fields.is_empty() {
        (all.iter().collect(), TemplateSource::Links)
    } else {
        (fields, TemplateSource::Fields)
    };
    let mut first: Vec<GvcMention<'_>> = Vec::new();
    for mention in named {
        if !first.iter().any(|m| m.name == mention.name) {
            first.push(mention.clone());
        }
    }
    match first.as_slice() {
        [] => Template::None,
        [only] => Template::One { name: only.name, source },
        _ => Template::Ambiguous(first),
    }
}

/// Every place the manifests name a GVC, in document order.
pub fn mentions(manifests: &ManifestSet) -> Vec<GvcMention<'_>> {
    let mut found = Vec::new();
    for resource in &manifests.resources {
        if resource.kind.is_gvc_scoped()
            && let Some(node) = resource.node.get("gvc")
            && let Some(name) = node.as_str()
        {
            found.push(GvcMention { resource, node, name, field: true });
        }
        for reference in references(resource) {
            let Some(parsed) = reference.node.as_str().and_then(link::parse) else { continue };
            let name = match (parsed.gvc, reference.target.kind) {
                (Some(gvc), _) => gvc,
                (None, Kind::Gvc) => parsed.name,
                (None, _) => continue,
            };
            found.push(GvcMention { resource, node: reference.node, name, field: false });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::manifest::load_documents;

    fn set(text: &str) -> ManifestSet {
        let (resources, problems) = load_documents(&[SourceFile::new("m.yaml", text)]);
        assert!(problems.is_empty(), "{problems:?}");
        ManifestSet { resources }
    }

    /// The template's candidate names in `text`, and where a single one
    /// comes from.
    fn template_of(text: &str) -> (Vec<String>, Option<TemplateSource>) {
        let manifests = set(text);
        let template = template(&manifests);
        let source = match template {
            Template::One { source, .. } => Some(source),
            _ => None,
        };
        (template.names().into_iter().map(str::to_owned).collect(), source)
    }

    fn one(name: &str, source: TemplateSource) -> (Vec<String>, Option<TemplateSource>) {
        (vec![name.to_owned()], Some(source))
    }

    #[test]
    fn the_gvc_document_names_the_template() {
        assert_eq!(
            template_of(
                "kind: workload\nname: api\ngvc: other\n---\nkind: gvc\nname: shop\n---\nkind: identity\nname: id\n"
            ),
            one("shop", TemplateSource::Document),
            "the document wins over what the fields say (they are checked against it)"
        );
    }

    #[test]
    fn without_a_document_the_one_named_gvc_is_the_template() {
        assert_eq!(
            template_of(
                "kind: workload\nname: api\ngvc: online-boutique\nspec:\n  identityLink: //gvc/online-boutique/identity/api\n---\nkind: policy\nname: p\ntargetKind: secret\nbindings:\n  - permissions: [reveal]\n    principalLinks: [/org/acme/gvc/online-boutique/identity/api]\n"
            ),
            one("online-boutique", TemplateSource::Fields)
        );
        assert_eq!(
            template_of("kind: domain\nname: a.example.com\nspec:\n  gvcLink: //gvc/web\n"),
            one("web", TemplateSource::Links)
        );
        assert!(matches!(template(&set("kind: secret\nname: s\n")), Template::None));
    }

    #[test]
    fn the_gvc_fields_say_which_name_a_stray_link_does_not() {
        assert_eq!(
            template_of(
                "kind: workload\nname: api\ngvc: online-boutique\nspec:\n  identityLink: //gvc/legacy/identity/api\n"
            ),
            one("online-boutique", TemplateSource::Fields)
        );
        assert_eq!(
            template_of(
                "kind: policy\nname: p\ntargetKind: identity\ntargetLinks: [//gvc/a/identity/x, //gvc/b/identity/y]\n"
            ),
            (vec!["a".to_owned(), "b".to_owned()], None),
            "links alone, naming two: ambiguous"
        );
    }

    #[test]
    fn several_named_gvcs_without_a_document_are_ambiguous() {
        let text = "kind: workload\nname: api\ngvc: shop-staging\n---\nkind: identity\nname: id\ngvc: shop-staging\n---\nkind: volumeset\nname: v\ngvc: shop-prod\n";
        assert_eq!(
            template_of(text),
            (vec!["shop-staging".to_owned(), "shop-prod".to_owned()], None),
            "each name once, in order"
        );
        assert_eq!(template(&set(text)).name(), None);
    }

    #[test]
    fn a_gvc_field_on_an_org_scoped_kind_is_not_a_mention() {
        // An org-scoped resource lives in no GVC: render drops the field.
        assert!(mentions(&set("kind: secret\nname: s\ngvc: anything\n")).is_empty());
    }
}
