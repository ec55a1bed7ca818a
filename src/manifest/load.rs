//! From YAML files to resources, the way `cpln apply` reads them.

use crate::diagnostic::{Location, Problem, Problems, SourceFile, did_you_mean};

use super::Resource;
use super::kind::Kind;
use super::yaml::{self, Node, NodeValue};

/// Reads every resource of every file. Multi-document files, top-level
/// lists and `kind: list` / `kind: queryresult` documents are flattened as
/// `cpln apply` flattens them. Every problem is collected; the resources
/// that could be read are returned as well.
pub fn load_documents(files: &[SourceFile]) -> (Vec<Resource>, Problems) {
    let mut resources = Vec::new();
    let mut problems = Problems::default();
    for source in files {
        match yaml::parse_documents(source) {
            Ok(documents) => {
                for document in documents {
                    read_document(source, document, &mut resources, &mut problems);
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    (resources, problems)
}

fn read_document(
    source: &SourceFile,
    document: Node,
    resources: &mut Vec<Resource>,
    problems: &mut Problems,
) {
    match document.value {
        NodeValue::Sequence(items) => {
            for item in items {
                read_document(source, item, resources, problems);
            }
        }
        NodeValue::Mapping(_) => {
            let kind = document.get("kind").and_then(Node::as_str);
            if matches!(kind, Some("list" | "queryresult")) {
                match document.get("items") {
                    Some(items) if items.items().is_some() => {
                        read_document(source, items.clone(), resources, problems);
                    }
                    other => problems.push(
                        Problem::new(
                            "ferry::manifest::list-items",
                            "a `kind: list` document needs an `items` list",
                        )
                        .at(Location::new(source, other.unwrap_or(&document).span), "no items here")
                        .help("put the resources under `items:` as a YAML list"),
                    ),
                }
                return;
            }
            match resource(source, document) {
                Ok(resource) => resources.push(resource),
                Err(problem) => problems.push(problem),
            }
        }
        _ => problems.push(
            Problem::new(
                "ferry::manifest::not-a-mapping",
                format!("a manifest document must be a mapping, found {}", document.type_name()),
            )
            .at(Location::new(source, document.span), "this document")
            .help("each document describes one resource: `kind:`, `name:` and its fields"),
        ),
    }
}

fn resource(source: &SourceFile, node: Node) -> Result<Resource, Problem> {
    let whole = Location::new(source, (node.span.offset(), 0));
    let kind_node = node.get("kind").ok_or_else(|| {
        Problem::new("ferry::manifest::missing-kind", "resource has no `kind`")
            .at(whole.clone(), "this document")
            .help(format!("add `kind:` with one of: {}", Kind::names()))
    })?;
    let kind_text = kind_node.as_str().ok_or_else(|| {
        Problem::new(
            "ferry::manifest::invalid-kind",
            format!("`kind` must be a string, found {}", kind_node.type_name()),
        )
        .at(Location::new(source, kind_node.span), "not a kind")
        .help(format!("use one of: {}", Kind::names()))
    })?;
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        let suggestion = did_you_mean(kind_text, Kind::ALL.iter().map(|k| k.as_str()))
            .map_or(String::new(), |s| format!("did you mean `{s}`? "));
        Problem::new("ferry::manifest::unknown-kind", format!("unknown kind `{kind_text}`"))
            .at(Location::new(source, kind_node.span), "not a kind Ferry manages")
            .help(format!("{suggestion}known kinds: {}", Kind::names()))
    })?;
    let name_node = node.get("name").ok_or_else(|| {
        Problem::new("ferry::manifest::missing-name", format!("{kind} has no `name`"))
            .at(Location::new(source, kind_node.span), "this resource")
            .help("add `name:`; names identify resources and cannot change later")
    })?;
    let name = name_node.as_str().ok_or_else(|| {
        Problem::new(
            "ferry::manifest::invalid-name",
            format!("`name` must be a string, found {}", name_node.type_name()),
        )
        .at(Location::new(source, name_node.span), "not a name")
        .help("quote the name if YAML reads it as a number or boolean")
    })?;
    let gvc = match node.get("gvc") {
        None => None,
        Some(gvc) => Some(gvc.as_str().map(str::to_owned).ok_or_else(|| {
            Problem::new(
                "ferry::manifest::invalid-gvc",
                format!("`gvc` must be a string, found {}", gvc.type_name()),
            )
            .at(Location::new(source, gvc.span), "not a GVC name")
            .help("write the GVC's name, or leave `gvc:` out and let the environment decide")
        })?),
    };
    Ok(Resource { kind, name: name.to_owned(), gvc, node, source: source.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<Resource>, Problems) {
        load_documents(&[SourceFile::new("m.yaml", text)])
    }

    #[test]
    fn flattens_lists_and_documents() {
        let text = "kind: list\nitems:\n  - {kind: secret, name: a}\n  - {kind: secret, name: b}\n---\n- kind: gvc\n  name: app\n";
        let (resources, problems) = load(text);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<_> = resources.iter().map(|r| r.id().to_string()).collect();
        assert_eq!(names, ["secret/a", "secret/b", "gvc/app"]);
    }

    #[test]
    fn keeps_unknown_fields_exactly() {
        let (resources, _) = load("kind: workload\nname: api\nfuture: {x: [1, 'two']}\n");
        let body = resources.first().map(Resource::body);
        assert_eq!(
            body.and_then(|b| b.get("future").cloned()),
            Some(serde_json::json!({"x": [1, "two"]}))
        );
    }

    #[test]
    fn reports_every_broken_document() {
        let (resources, problems) =
            load("kind: wrokload\nname: a\n---\nname: b\n---\nkind: secret\n---\n42\n");
        assert!(resources.is_empty());
        let codes: Vec<_> = problems.problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "ferry::manifest::unknown-kind",
                "ferry::manifest::missing-kind",
                "ferry::manifest::missing-name",
                "ferry::manifest::not-a-mapping"
            ]
        );
        assert!(
            problems.problems[0]
                .help
                .as_deref()
                .is_some_and(|h| h.contains("did you mean `workload`"))
        );
    }
}
