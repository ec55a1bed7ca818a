//! Control Plane links: the strings by which one resource names another.
//!
//! Forms (reference §4.5): `//secret/db`, `//gvc/app/identity/api`,
//! `/org/ORG/secret/db`, `/org/ORG/gvc/app/workload/web`, the bare
//! `//identity/api`, and the URI schemes `cpln://secret/NAME[.KEY]` and
//! `cpln://volumeset/NAME` used in env values and volumes.

use super::Kind;

/// A parsed link. `kind` is kept as text: links may name kinds Ferry does
/// not manage (`location`, `image`, `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    pub org: Option<&'a str>,
    pub gvc: Option<&'a str>,
    pub kind: &'a str,
    pub name: &'a str,
    /// The key after the dot in `cpln://secret/NAME.KEY`.
    pub key: Option<&'a str>,
}

/// Parses any link form; `None` for text that is not a link.
pub fn parse(text: &str) -> Option<Link<'_>> {
    if let Some(rest) = text.strip_prefix("cpln://") {
        let (kind, rest) = rest.split_once('/')?;
        let (name, key) = match (kind, rest.split_once('.')) {
            ("secret", Some((name, key))) => (name, Some(key)),
            _ => (rest, None),
        };
        return non_empty(name).map(|name| Link { org: None, gvc: None, kind, name, key });
    }
    let (org, path) = if let Some(path) = text.strip_prefix("//") {
        (None, path)
    } else {
        let rest = text.strip_prefix("/org/")?;
        let (org, path) = rest.split_once('/')?;
        (Some(org), path)
    };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["gvc", gvc, kind, name] => {
            Some(Link { org, gvc: Some(gvc), kind, name: non_empty(name)?, key: None })
        }
        [kind, name] => Some(Link { org, gvc: None, kind, name: non_empty(name)?, key: None }),
        _ => None,
    }
}

/// The full link that the relative link `text` (`//…`) names in a body
/// written to `org` and, for a resource that lives in a GVC (or the GVC
/// itself), to `gvc`: `//KIND/NAME` of a GVC-scoped kind (workload,
/// identity, volume set) names that GVC's item, `/org/ORG/gvc/GVC/KIND/NAME`;
/// anything else, `//gvc/G/…` included, is the org's, `/org/ORG/…`. `None`
/// for text that is not relative.
///
/// Why: a relative link "relies on the context" and "when a kind is scoped
/// to a GVC, its relative link must include the GVC name" (docs.controlplane.com
/// core/terms); the context of a body is the org and GVC it is written to,
/// and the CLI resolves a workload named in `inboundAllowWorkload` into its
/// context's GVC (`dist/src/commands/workload.js` `itemLinkResolver:
/// kindResolver('workload')`, `dist/src/commands/resolver.js`
/// `resolveToLink`, `GVC_SCOPED_KINDS`). `cpln apply` sends links as written
/// (`dist/src/commands/generic.js`, `Apply.applyItem`), so Control Plane's
/// own examples that write `//workload/frontend` and `//identity/…` inside
/// a workload only work if the API resolves them into the workload's GVC.
/// That resolution is inferred (docs/simulator.md); with no GVC the link is
/// kept org-level, as before.
pub fn qualify(text: &str, org: &str, gvc: Option<&str>) -> Option<String> {
    let rest = text.strip_prefix("//").filter(|rest| !rest.is_empty())?;
    let in_gvc = rest.split_once('/').is_some_and(|(kind, name)| {
        names_gvc_item(kind) && !name.is_empty() && !name.contains('/')
    });
    Some(match gvc {
        Some(gvc) if in_gvc => format!("/org/{org}/gvc/{gvc}/{rest}"),
        _ => format!("/org/{org}/{rest}"),
    })
}

/// Whether a link to `kind` without a GVC (`//KIND/NAME`) is resolved in a
/// GVC: workloads, identities and volume sets ([`qualify`]).
pub fn names_gvc_item(kind: &str) -> bool {
    Kind::parse(kind).is_some_and(Kind::is_gvc_scoped)
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_link_form() {
        let short = parse("//secret/db");
        assert_eq!(short.map(|l| (l.kind, l.name)), Some(("secret", "db")));
        let scoped = parse("//gvc/app/identity/api-id");
        assert_eq!(
            scoped.map(|l| (l.gvc, l.kind, l.name)),
            Some((Some("app"), "identity", "api-id"))
        );
        let full = parse("/org/acme/gvc/app/workload/web");
        assert_eq!(full.map(|l| (l.org, l.name)), Some((Some("acme"), "web")));
        let uri = parse("cpln://secret/db.url");
        assert_eq!(uri.map(|l| (l.name, l.key)), Some(("db", Some("url"))));
        assert_eq!(parse("cpln://volumeset/data").map(|l| l.kind), Some("volumeset"));
        assert_eq!(parse("plain value"), None);
        assert_eq!(parse("//secret/"), None);
    }

    #[test]
    fn a_relative_link_to_a_gvc_scoped_kind_names_the_gvc_it_is_written_in() {
        let app = |text| qualify(text, "acme", Some("app"));
        assert_eq!(app("//workload/web").as_deref(), Some("/org/acme/gvc/app/workload/web"));
        assert_eq!(app("//identity/id").as_deref(), Some("/org/acme/gvc/app/identity/id"));
        assert_eq!(app("//volumeset/data").as_deref(), Some("/org/acme/gvc/app/volumeset/data"));
        assert_eq!(
            app("//gvc/other/workload/w").as_deref(),
            Some("/org/acme/gvc/other/workload/w")
        );
        assert_eq!(app("//secret/db").as_deref(), Some("/org/acme/secret/db"));
        assert_eq!(
            app("//location/aws-us-west-2").as_deref(),
            Some("/org/acme/location/aws-us-west-2")
        );
        assert_eq!(app("/org/acme/workload/web"), None, "full links are kept");
        assert_eq!(app("//"), None);
        let org = qualify("//workload/web", "acme", None);
        assert_eq!(org.as_deref(), Some("/org/acme/workload/web"), "no GVC: the org's");
        assert!(names_gvc_item("volumeset") && !names_gvc_item("secret"));
    }
}
