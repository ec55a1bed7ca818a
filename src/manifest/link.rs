//! Control Plane links: the strings by which one resource names another.
//!
//! Forms (reference §4.5): `//secret/db`, `//gvc/app/identity/api`,
//! `/org/ORG/secret/db`, `/org/ORG/gvc/app/workload/web`, the bare
//! `//identity/api`, and the URI schemes `cpln://secret/NAME[.KEY]` and
//! `cpln://volumeset/NAME` used in env values and volumes.

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
}
