//! The table of every request Ferry sends (docs/control-plane-api.md),
//! read once, and the check that a simulator saw no request from Ferry
//! that the table lacks. A row's first cell is `` `METHOD /path` ``; in a
//! path, an upper-case segment is a placeholder for one segment (`KIND`:
//! any kind Ferry writes, `ORG_KIND` and `GVC_KIND`: those of that scope),
//! and one ending in `+` for one or more (`REPO+`, a repository).

use std::sync::OnceLock;

use ferry::manifest::Kind;
use ferry::sim::RequestRecord;

/// One row: a method and a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub method: String,
    pub pattern: Vec<String>,
}

/// The rows of docs/control-plane-api.md.
pub fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let file = super::command::repo_root().join("docs/control-plane-api.md");
        let text = std::fs::read_to_string(&file).expect("docs/control-plane-api.md is readable");
        let rows = parse(&text);
        assert!(rows.len() > 20, "docs/control-plane-api.md lists the requests: {rows:?}");
        rows
    })
}

/// The rows of a Markdown text: table lines whose first cell is a
/// backticked `METHOD /path`.
pub fn parse(text: &str) -> Vec<Row> {
    text.lines()
        .filter_map(|line| {
            let first = line.trim().strip_prefix('|')?.split('|').next()?.trim();
            let request = first.strip_prefix('`')?.strip_suffix('`')?;
            let (method, path) = request.split_once(' ')?;
            let upper = method.chars().all(|c| c.is_ascii_uppercase());
            (upper && path.starts_with('/'))
                .then(|| Row { method: method.to_owned(), pattern: segments(path) })
        })
        .collect()
}

fn segments(path: &str) -> Vec<String> {
    path.strip_prefix('/').unwrap_or(path).split('/').map(str::to_owned).collect()
}

/// Whether `row` has the request `method path`.
pub fn matches(row: &Row, method: &str, path: &str) -> bool {
    row.method == method && fits(&row.pattern, &segments(path))
}

fn fits(pattern: &[String], path: &[String]) -> bool {
    let Some((first, rest)) = pattern.split_first() else { return path.is_empty() };
    let Some((segment, after)) = path.split_first() else { return false };
    if first.strip_suffix('+').is_some_and(is_placeholder) {
        // One or more segments: any number that lets the rest fit.
        return (1..=path.len())
            .any(|n| path[..n].iter().all(|s| !s.is_empty()) && fits(rest, &path[n..]));
    }
    let here =
        if is_placeholder(first) { placeholder_allows(first, segment) } else { first == segment };
    here && fits(rest, after)
}

fn is_placeholder(segment: &str) -> bool {
    !segment.is_empty() && segment.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

fn placeholder_allows(placeholder: &str, segment: &str) -> bool {
    let kind = || Kind::ALL.into_iter().find(|k| k.as_str() == segment);
    match placeholder {
        "KIND" => kind().is_some(),
        "ORG_KIND" => kind().is_some_and(|k| !k.is_gvc_scoped()),
        "GVC_KIND" => kind().is_some_and(Kind::is_gvc_scoped),
        _ => !segment.is_empty(),
    }
}

/// Ferry's requests in `log` that no row has, as `METHOD /path`.
pub fn unlisted(log: &[RequestRecord]) -> Vec<String> {
    missing(log.iter().filter(|r| r.is_ferrys()).map(|r| (r.method.as_str(), r.path.as_str())))
}

/// The `(method, path)` requests no row has, as `METHOD /path`, once each.
pub fn missing<'a>(requests: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut found: Vec<String> = requests
        .into_iter()
        .map(|(method, path)| (method, path.split('?').next().unwrap_or(path)))
        .filter(|(method, path)| !rows().iter().any(|row| matches(row, method, path)))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Panics naming every request of Ferry's in `log` that the table lacks
/// (`what` says whose log it is).
pub fn check(log: &[RequestRecord], what: &str) {
    fail_on(&unlisted(log), what);
}

/// Panics naming `missing` requests, if there are any.
pub fn fail_on(missing: &[String], what: &str) {
    assert!(
        missing.is_empty(),
        "{what}: Ferry sent requests docs/control-plane-api.md does not list (add a row with its source, or stop sending them):\n  {}",
        missing.join("\n  ")
    );
}

/// Every request record appended to `file` (see `ferry::sim::REQUEST_LOG_VAR`).
pub fn read_log(file: &std::path::Path) -> Vec<RequestRecord> {
    let Ok(text) = std::fs::read_to_string(file) else { return Vec::new() };
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a request record per line"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(method: &str, path: &str, agent: &str) -> RequestRecord {
        serde_json::from_value(serde_json::json!({
            "service": "api", "method": method, "path": path, "status": 200, "atMs": 0,
            "durationMs": 0, "org": null, "injected": false, "userAgent": agent,
        }))
        .expect("a record")
    }

    #[test]
    fn placeholders_stand_for_segments_and_kinds() {
        let table = "| `GET /org/ORG/gvc/GVC/GVC_KIND/NAME` | x |\n| `POST /org/ORG/KIND/-query` | y |\n| `HEAD /v2/REPO+/manifests/REF` | z |\n| not a row |";
        let rows = parse(table);
        assert_eq!(rows.len(), 3);
        assert!(matches(&rows[0], "GET", "/org/acme/gvc/app/workload/api"));
        assert!(!matches(&rows[0], "GET", "/org/acme/gvc/app/secret/api"), "secret is org-scoped");
        assert!(!matches(&rows[0], "PUT", "/org/acme/gvc/app/workload/api"));
        assert!(matches(&rows[1], "POST", "/org/acme/workload/-query"));
        assert!(!matches(&rows[1], "POST", "/org/acme/gvc/app/workload/-query"));
        assert!(matches(&rows[2], "HEAD", "/v2/library/nginx/manifests/1.27"));
        assert!(!matches(&rows[2], "HEAD", "/v2/manifests/1.27"), "a repository is required");
    }

    #[test]
    fn a_request_of_ferrys_the_table_lacks_fails_the_check() {
        let log = [
            record("GET", "/org/acme/secret/db/-reveal", "ferry/0.1.0"),
            record("GET", "/org/acme/gvc/app/workload/api/-made-up", "ferry/0.1.0"),
            record("GET", "/org/acme/gvc/app/workload/api/-made-up", "cpln-cli 3.10.1"),
        ];
        assert_eq!(unlisted(&log), ["GET /org/acme/gvc/app/workload/api/-made-up"]);
        let failed = std::panic::catch_unwind(|| check(&log, "a test"));
        assert!(failed.is_err(), "the check fails on the unlisted request");
        check(&log[..1], "a listed request passes");
    }
}
