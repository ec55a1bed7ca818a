//! YAML documents as trees that remember where every value came from.
//!
//! This is the only place that parses YAML (with `serde-saphyr`). Values are
//! read the way `cpln` reads them (YAML 1.2 core schema: `yes` and `on` are
//! strings), and every node keeps its byte span so that later checks can
//! point at the exact key or value they are about.

use std::fmt;

use miette::SourceSpan;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::diagnostic::{Location, Problem, SourceFile};

/// A YAML value with its span in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub span: SourceSpan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Key, Node)>),
}

/// A mapping key with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: SourceSpan,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The key itself (for labels on "unknown key" and the like).
    pub fn key(&self, key: &str) -> Option<&Key> {
        self.entries()?.iter().find(|(k, _)| k.name == key).map(|(k, _)| k)
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Sequence(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// What kind of value this is, for "expected a string, found …".
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Sequence(_) => "a list",
            NodeValue::Mapping(_) => "a mapping",
        }
    }

    /// The same data as JSON, exactly: every key kept, in order.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Sequence(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Mapping(entries) => Value::Object(
                entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect::<Map<_, _>>(),
            ),
        }
    }

    pub fn location(&self, source: &SourceFile) -> Location {
        Location::new(source, self.span)
    }

    /// What a JSON pointer (RFC 6901, such as `/spec/containers/0/ports/1`)
    /// names in this tree: the node and, when its last step is a mapping
    /// key, that key. A pointer into something that does not exist stops at
    /// the nearest existing ancestor (`exact` is then false), so a problem
    /// about a missing field points at the mapping that should hold it.
    pub fn resolve(&self, pointer: &str) -> Resolved<'_> {
        let mut found = Resolved { node: self, key: None, exact: true };
        let steps = pointer.strip_prefix('/').map(|p| p.split('/'));
        for step in steps.into_iter().flatten() {
            let step = step.replace("~1", "/").replace("~0", "~");
            let next = match &found.node.value {
                NodeValue::Mapping(entries) => {
                    entries.iter().find(|(k, _)| k.name == step).map(|(k, v)| (Some(k), v))
                }
                NodeValue::Sequence(items) => {
                    step.parse::<usize>().ok().and_then(|i| items.get(i)).map(|v| (None, v))
                }
                _ => None,
            };
            match next {
                Some((key, node)) => found = Resolved { node, key, exact: true },
                None => {
                    found.exact = false;
                    break;
                }
            }
        }
        found
    }
}

/// A JSON pointer resolved in a [`Node`] tree ([`Node::resolve`]).
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub node: &'a Node,
    /// The mapping key of the last step, if it was one.
    pub key: Option<&'a Key>,
    /// False when the pointer went further than the tree: `node` is then the
    /// nearest existing ancestor.
    pub exact: bool,
}

impl Resolved<'_> {
    /// The span to label: the key for a problem about the key itself (an
    /// unknown field), else the value.
    pub fn span(&self, on_key: bool) -> SourceSpan {
        match self.key {
            Some(key) if on_key && self.exact => key.span,
            _ => self.node.span,
        }
    }
}

/// Writes a value as block-style YAML, for diffs and rendered manifests.
pub fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}\n"))
}

/// Parses every document of a YAML stream. Empty documents are skipped, as
/// `cpln apply` skips them.
pub fn parse_documents(source: &SourceFile) -> Result<Vec<Node>, Problem> {
    let options = serde_saphyr::options! { strict_booleans: true };
    let parsed: Vec<Spanned<RawNode>> =
        serde_saphyr::from_multiple_with_options(source.text(), options)
            .map_err(|error| yaml_problem(source, &error))?;
    Ok(parsed.into_iter().map(|doc| convert(doc, source)).filter(|n| !n.is_null()).collect())
}

fn yaml_problem(source: &SourceFile, error: &serde_saphyr::Error) -> Problem {
    let message = bare_message(&error.without_snippet().to_string());
    let location = error.location().map(|l| {
        let offset = source.offset_of(
            usize::try_from(l.line()).unwrap_or(usize::MAX),
            usize::try_from(l.column()).unwrap_or(usize::MAX),
        );
        Location::new(source, (offset, 0))
    });
    Problem::new("ferry::yaml::syntax", format!("invalid YAML: {message}"))
        .at_opt(location, "here")
        .help("fix the YAML syntax; every document must be a mapping separated by `---`")
}

/// The parser's message without the position it prefixes, which the
/// diagnostic shows anyway.
fn bare_message(text: &str) -> String {
    let text = text.strip_prefix("error: ").unwrap_or(text);
    match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_owned()
        }
        _ => text.to_owned(),
    }
}

fn span_of<T>(spanned: &Spanned<T>, source: &SourceFile) -> SourceSpan {
    let location = spanned.referenced;
    let span = location.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => (to_usize(offset), to_usize(len)).into(),
        _ => {
            let offset = source.offset_of(to_usize(location.line()), to_usize(location.column()));
            (offset, 0).into()
        }
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn convert(raw: Spanned<RawNode>, source: &SourceFile) -> Node {
    let span = span_of(&raw, source);
    let value = match raw.value {
        RawNode::Null => NodeValue::Null,
        RawNode::Bool(b) => NodeValue::Bool(b),
        RawNode::Number(n) => NodeValue::Number(n),
        RawNode::String(s) => NodeValue::String(s),
        RawNode::Sequence(items) => {
            NodeValue::Sequence(items.into_iter().map(|i| convert(i, source)).collect())
        }
        RawNode::Mapping(entries) => NodeValue::Mapping(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = Key { span: span_of(&k, source), name: k.value.into_key() };
                    (key, convert(v, source))
                })
                .collect(),
        ),
    };
    Node { value, span }
}

/// The shape serde-saphyr fills in; converted to [`Node`] right away.
enum RawNode {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Sequence(Vec<Spanned<RawNode>>),
    Mapping(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl RawNode {
    /// Keys are strings in every cpln document; other scalars are written
    /// as YAML would print them.
    fn into_key(self) -> String {
        match self {
            RawNode::String(s) => s,
            RawNode::Null => "null".to_owned(),
            RawNode::Bool(b) => b.to_string(),
            RawNode::Number(n) => n.to_string(),
            RawNode::Sequence(_) | RawNode::Mapping(_) => "<complex key>".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawNode, E> {
        Number::from_f64(v).map(RawNode::Number).ok_or_else(|| E::custom("numbers must be finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = access.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Mapping(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Node>, Problem> {
        parse_documents(&SourceFile::new("t.yaml", text))
    }

    #[test]
    fn keeps_spans_and_yaml_1_2_scalars() {
        let docs = parse("kind: workload\nname: api\non: yes\nn: 12345678901234567890\n---\n---\n")
            .unwrap_or_default();
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        let name = doc.get("name").map(|n| n.span);
        assert_eq!(name, Some((21, 3).into()));
        assert_eq!(doc.get("on").and_then(Node::as_str), Some("yes"));
        assert_eq!(doc.to_json()["n"], serde_json::json!(12_345_678_901_234_567_890_u64));
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let problem = parse("kind: a\n  name: : b\n").err();
        let position = problem.as_ref().and_then(Problem::position);
        assert_eq!(position.as_deref(), Some("t.yaml:2:7"));
    }

    #[test]
    fn writes_yaml_that_reads_back() {
        let value = serde_json::json!({"kind": "workload", "spec": {"on": "yes", "list": [1, "two"], "n": null}});
        let text = to_yaml(&value);
        let back = parse(&text).unwrap_or_default();
        assert_eq!(back.first().map(Node::to_json), Some(value), "{text}");
    }

    #[test]
    fn json_pointers_resolve_to_spans_or_the_nearest_ancestor() {
        let text =
            "spec:\n  containers:\n    - name: main\n      ports: [{number: 70000}]\n  a/b: 1\n";
        let docs = parse(text).unwrap_or_default();
        let doc = &docs[0];
        let port = doc.resolve("/spec/containers/0/ports/0/number");
        assert!(port.exact);
        assert_eq!(&text[port.span(false).offset()..][..5], "70000");
        let key = doc.resolve("/spec/containers/0/name");
        assert_eq!(&text[key.span(true).offset()..][..4], "name");
        let missing = doc.resolve("/spec/containers/0/env/3/value");
        assert!(!missing.exact);
        assert_eq!(&text[missing.span(false).offset()..][..4], "name");
        assert!(doc.resolve("/spec/a~1b").exact);
        assert!(doc.resolve("").exact);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(parse("a: 1\na: 2\n").is_err());
    }
}
