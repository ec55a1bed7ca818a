//! YAML documents as trees that remember where every value came from.
//!
//! This is the only place that parses YAML (with `serde-saphyr`). Values are
//! read the way `cpln` reads them (YAML 1.2 core schema: `yes` and `on` are
//! strings), and every node keeps its byte span so that later checks can
//! point at the exact key or value they are about.
//!
//! Every resource keeps its tree for the whole run, so the tree is built
//! small (docs/performance.md, "Manifests too large to read"): each value
//! is converted as soon as the parser has read it (no second, whole-file
//! tree), spans take eight bytes, vectors hold exactly their items, and
//! mapping keys are shared between the documents of a file.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use miette::SourceSpan;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::diagnostic::{Location, Problem, SourceFile};

/// A YAML value with its span in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub span: Span,
}

/// Where a value or key is in its file: byte offset and length, four bytes
/// each (a file Ferry reads is at most 4 MiB, `crate::input_file`; larger
/// offsets saturate). Half of miette's [`SourceSpan`], into which it
/// converts, since every value of every manifest keeps one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    offset: u32,
    len: u32,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span { offset: narrow(offset), len: narrow(len) }
    }

    pub fn offset(self) -> usize {
        self.offset as usize
    }

    pub fn len(self) -> usize {
        self.len as usize
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

impl From<(usize, usize)> for Span {
    fn from((offset, len): (usize, usize)) -> Self {
        Span::new(offset, len)
    }
}

impl From<Span> for SourceSpan {
    fn from(span: Span) -> Self {
        (span.offset(), span.len()).into()
    }
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

/// A mapping key with its span. The name is shared by every key of the
/// same name in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: Arc<str>,
    pub span: Span,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?.iter().find(|(k, _)| &*k.name == key).map(|(_, v)| v)
    }

    /// The key itself (for labels on "unknown key" and the like).
    pub fn key(&self, key: &str) -> Option<&Key> {
        self.entries()?.iter().find(|(k, _)| &*k.name == key).map(|(k, _)| k)
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
                entries
                    .iter()
                    .map(|(k, v)| (k.name.to_string(), v.to_json()))
                    .collect::<Map<_, _>>(),
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
                    entries.iter().find(|(k, _)| *k.name == *step).map(|(k, v)| (Some(k), v))
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
            Some(key) if on_key && self.exact => key.span.into(),
            _ => self.node.span.into(),
        }
    }
}

/// Writes a value as block-style YAML, for diffs and rendered manifests.
pub fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}\n"))
}

/// How deeply mappings and lists may nest in one document. Control Plane
/// manifests nest about ten levels (a `kind: list` item's probe headers are
/// among the deepest); the limit keeps a hostile file from exhausting the
/// stack, which the parser's own default (64) does not in a debug build.
pub const MAX_DEPTH: usize = 32;

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH, flow_nesting_limit: MAX_DEPTH },
    }
}

/// Parses every document of a YAML stream. Empty documents are skipped, as
/// `cpln apply` skips them.
pub fn parse_documents(source: &SourceFile) -> Result<Vec<Node>, Problem> {
    let parsed: Vec<Converted> = {
        let _converting = Converting::start(source);
        serde_saphyr::from_multiple_with_options(source.text(), options())
    }
    .map_err(|error| yaml_problem(source, &error))?;
    if let Some(problem) = unsupported(source) {
        return Err(problem);
    }
    Ok(parsed.into_iter().map(|doc| doc.0).filter(|n| !n.is_null()).collect())
}

/// YAML that parses but that no Control Plane manifest holds, and that
/// Ferry would otherwise read as something else: a tag beyond the core
/// schema's (`!!binary`, `!custom`: the value would be taken as plain
/// text), or a key that is a mapping or a list (it would become the text
/// `<complex key>`). Looked for only when the text has a `!` or a `?`.
fn unsupported(source: &SourceFile) -> Option<Problem> {
    use serde_saphyr::granit_parser::{Event, Parser};
    let text = source.text();
    if !text.contains('!') && !text.contains('?') {
        return None;
    }
    // For each open container: whether it is a mapping, and how many
    // nodes it holds so far (a mapping's even ones are keys).
    let mut open: Vec<(bool, usize)> = Vec::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.ok()?;
        let start = span.start.byte_offset().unwrap_or_default();
        let (tag, container) = match &event {
            Event::Scalar(_, _, _, tag) => (tag.as_deref(), None),
            Event::SequenceStart(_, _, tag) => (tag.as_deref(), Some(false)),
            Event::MappingStart(_, _, tag) => (tag.as_deref(), Some(true)),
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
                continue;
            }
            Event::Alias(_) => (None, None),
            _ => continue,
        };
        let location = Location::new(source, (start, 0));
        if let Some(tag) = tag.filter(|tag| tag.core_suffix().is_none()) {
            let at = span.tag_start.and_then(|m| m.byte_offset()).unwrap_or(start);
            let location = Location::new(source, (at, tag.original().len()));
            return Some(
                Problem::new(
                    "ferry::yaml::unsupported-tag",
                    format!("the YAML tag `{}` is not read by Ferry", tag.original()),
                )
                .at(location, "tagged here")
                .help("write the value without a tag: Control Plane manifests hold plain strings, numbers, booleans, mappings and lists"),
            );
        }
        if let Some((true, count)) = open.last_mut() {
            let is_key = *count % 2 == 0;
            *count += 1;
            if is_key && container.is_some() {
                return Some(
                    Problem::new(
                        "ferry::yaml::complex-key",
                        "a mapping key is itself a mapping or a list",
                    )
                    .at(location, "this key")
                    .help("write the key as a plain string"),
                );
            }
        } else if let Some((false, count)) = open.last_mut() {
            *count += 1;
        }
        if let Some(mapping) = container {
            open.push((mapping, 0));
        }
    }
    None
}

/// What could be read of a YAML stream that does not parse: the
/// documents as far as the parser got (containers open at the error closed
/// there, every scalar a string), and the byte offset of the error. Used
/// only to keep secrets out of the snippets of a broken file; anything
/// else reads [`parse_documents`].
pub fn parse_partial(text: &str) -> (Vec<Node>, Option<usize>) {
    use serde_saphyr::granit_parser::{Event, Parser};
    let mut documents = Vec::new();
    // Open containers: (start, items or entries so far, a key awaiting its value).
    let mut open: Vec<Partial> = Vec::new();
    let char_to_byte = |marker: &serde_saphyr::granit_parser::Marker| {
        marker.byte_offset().unwrap_or_else(|| {
            text.char_indices().nth(marker.index()).map_or(text.len(), |(at, _)| at)
        })
    };
    let mut error = None;
    for next in Parser::new_from_str(text) {
        let (event, span) = match next {
            Ok(found) => found,
            Err(scan) => {
                error = Some(char_to_byte(scan.marker()));
                break;
            }
        };
        let start = char_to_byte(&span.start);
        let end = char_to_byte(&span.end).max(start);
        let node = match event {
            Event::Scalar(value, ..) => Some(Node {
                value: NodeValue::String(value.into_owned()),
                span: (start, end - start).into(),
            }),
            Event::SequenceStart(..) => {
                open.push(Partial::sequence(start));
                None
            }
            Event::MappingStart(..) => {
                open.push(Partial::mapping(start));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop().map(|p| p.close(end)),
            Event::Alias(_) => {
                Some(Node { value: NodeValue::Null, span: (start, end - start).into() })
            }
            _ => None,
        };
        if let Some(node) = node {
            match open.last_mut() {
                Some(parent) => parent.add(node),
                None => documents.push(node),
            }
        }
    }
    let end = error.unwrap_or(text.len());
    while let Some(partial) = open.pop() {
        let node = partial.close(end);
        match open.last_mut() {
            Some(parent) => parent.add(node),
            None => documents.push(node),
        }
    }
    (documents, error)
}

/// A container [`parse_partial`] has opened and not yet closed.
struct Partial {
    start: usize,
    mapping: bool,
    items: Vec<Node>,
}

impl Partial {
    fn sequence(start: usize) -> Self {
        Partial { start, mapping: false, items: Vec::new() }
    }

    fn mapping(start: usize) -> Self {
        Partial { start, mapping: true, items: Vec::new() }
    }

    fn add(&mut self, node: Node) {
        self.items.push(node);
    }

    /// The node, ending at `end`; a mapping's keys and values alternate in
    /// `items` (a key with no value yet gets a null one).
    fn close(self, end: usize) -> Node {
        let span = (self.start, end.saturating_sub(self.start)).into();
        if !self.mapping {
            return Node { value: NodeValue::Sequence(self.items), span };
        }
        let mut entries = Vec::new();
        let mut items = self.items.into_iter();
        while let Some(key) = items.next() {
            let value = items.next().unwrap_or(Node {
                value: NodeValue::Null,
                span: (key.span.offset() + key.span.len(), 0).into(),
            });
            let name = match key.value {
                NodeValue::String(name) => name,
                _ => "<complex key>".to_owned(),
            };
            entries.push((Key { name: name.into(), span: key.span }, value));
        }
        Node { value: NodeValue::Mapping(entries), span }
    }
}

/// The parser's error in Ferry's words: what is wrong, where, and what to
/// do, never the parser's own options or internal names.
fn yaml_problem(source: &SourceFile, error: &serde_saphyr::Error) -> Problem {
    let location = error.location().map(|l| {
        let offset = source.offset_of(
            usize::try_from(l.line()).unwrap_or(usize::MAX),
            usize::try_from(l.column()).unwrap_or(usize::MAX),
        );
        Location::new(source, (offset, 0))
    });
    match original(error) {
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().map_or_else(|| "a key".to_owned(), |k| format!("key `{k}`"));
            let problem = Problem::new(
                "ferry::yaml::duplicate-key",
                format!("{key} appears twice in the same mapping"),
            )
            .at_opt(location.clone(), "defined again here")
            .help("keep one of the two (`cpln apply` rejects duplicate keys too)");
            match location.as_ref().and_then(|l| first_definition(source, l)) {
                Some(first) => problem.note(first, "first defined here"),
                None => problem,
            }
        }
        serde_saphyr::Error::ExternalMessage { source: from, .. } if is_flow_too_deep(from) => {
            too_large(&serde_saphyr::budget::BudgetBreach::Depth { depth: MAX_DEPTH + 1 })
                .at_opt(location, "the limit is reached here")
                .help("check for runaway brackets or generated content")
        }
        serde_saphyr::Error::Budget { breach, .. } => too_large(breach)
            .at_opt(location, "the limit is reached here")
            .help(
                "split the resources over several files, or check for runaway indentation or generated content",
            ),
        _ => {
            let message = bare_message(&error.without_snippet().to_string());
            Problem::new("ferry::yaml::syntax", format!("invalid YAML: {message}"))
                .at_opt(location, "here")
                .help("fix the YAML syntax; every document must be a mapping separated by `---`")
        }
    }
}

/// The error itself, out of the wrappers that add a snippet or an alias's
/// locations.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

/// Flow collections (`[[[…]]]`) nested past the limit: the scanner stops
/// them before the depth budget sees them.
fn is_flow_too_deep(source: &serde_saphyr::ExternalMessageSource) -> bool {
    matches!(
        source,
        serde_saphyr::ExternalMessageSource::Parser(scan)
            if *scan.kind() == serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded
    )
}

/// Which of the reader's limits a document went over.
fn too_large(breach: &serde_saphyr::budget::BudgetBreach) -> Problem {
    use serde_saphyr::budget::BudgetBreach;
    let limits = serde_saphyr::Budget::default();
    let message = match breach {
        BudgetBreach::Depth { .. } => format!(
            "the document is nested too deeply (Ferry reads at most {MAX_DEPTH} levels of mappings and lists)"
        ),
        BudgetBreach::Nodes { .. } => format!(
            "the document is too large (Ferry reads at most {} values in one file)",
            limits.max_nodes
        ),
        BudgetBreach::Documents { .. } => format!(
            "the file holds too many documents (Ferry reads at most {} in one file)",
            limits.max_documents
        ),
        BudgetBreach::ScalarBytes { .. } => format!(
            "the file's text values are too large (Ferry reads at most {} MiB of them in one file)",
            limits.max_total_scalar_bytes / (1024 * 1024)
        ),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::MergeKeys { .. } => format!(
            "the file uses too many YAML anchors, aliases or merge keys (Ferry reads at most {} aliases, {} anchors and {} merge keys, with at most {} aliases per anchor)",
            limits.max_aliases,
            limits.max_anchors,
            limits.max_merge_keys,
            limits.alias_anchor_ratio_multiplier
        ),
        _ => format!(
            "the document is too large (Ferry reads at most {} YAML events in one file)",
            limits.max_events
        ),
    };
    Problem::new("ferry::yaml::too-large", message)
}

/// Where a duplicated block-mapping key was first written: the nearest
/// line above, at the same column, with the same key, before the mapping
/// ends (a line indented less). Flow mappings (`{a: 1, a: 2}`) get none.
fn first_definition(source: &SourceFile, again: &Location) -> Option<Location> {
    let text = source.text();
    let offset = again.span.offset();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let column = offset - line_start;
    let line = &text[line_start..];
    let line = line.split('\n').next().unwrap_or_default();
    let key = line.get(column..)?.split(':').next()?.trim_end();
    let mut end = line_start;
    for above in text[..line_start].split_inclusive('\n').rev() {
        end -= above.len();
        let indent = above.len() - above.trim_start_matches([' ', '-']).len();
        let content = above.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent < column {
            return None;
        }
        if indent == column {
            let same_key = above.get(column..).is_some_and(|rest| {
                rest.strip_prefix(key).is_some_and(|after| after.trim_start().starts_with(':'))
            });
            if same_key {
                return Some(Location::new(source, (end + column, key.len())));
            }
            if above.trim_start().starts_with('-') {
                // The list item that opens this mapping: nothing above it.
                return None;
            }
        }
    }
    None
}

/// The parser's message without the position it adds around it, which
/// the diagnostic shows anyway.
fn bare_message(text: &str) -> String {
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let text = match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => text,
    };
    match text.rsplit_once(" at line ") {
        Some((message, position)) if position.contains(", column ") => message.to_owned(),
        _ => text.to_owned(),
    }
}

/// The file [`parse_documents`] is converting on this thread, and the key
/// names read from it so far: what [`Converted`] needs while the parser
/// drives it (serde gives a `Deserialize` no other way in).
struct Context {
    source: SourceFile,
    keys: HashSet<Arc<str>>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Sets the [`Context`] while it lives.
struct Converting;

impl Converting {
    fn start(source: &SourceFile) -> Self {
        let context = Context { source: source.clone(), keys: HashSet::new() };
        CONTEXT.with_borrow_mut(|current| *current = Some(context));
        Converting
    }
}

impl Drop for Converting {
    fn drop(&mut self) {
        CONTEXT.with_borrow_mut(|current| *current = None);
    }
}

/// The span of what the parser read. Its byte offsets are known when
/// reading a string (always, here); else the line and column give the
/// start.
fn span_of<T>(spanned: &Spanned<T>, source: Option<&SourceFile>) -> Span {
    let location = spanned.referenced;
    let span = location.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => Span::new(to_usize(offset), to_usize(len)),
        _ => {
            let offset = source.map_or(0, |source| {
                source.offset_of(to_usize(location.line()), to_usize(location.column()))
            });
            Span::new(offset, 0)
        }
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// A value as [`Node`], converted as soon as the parser has read it, its
/// own values already converted: no tree of the parser's outlives the
/// value it describes.
struct Converted(Node);

impl<'de> Deserialize<'de> for Converted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(deserializer)?;
        let span = CONTEXT.with_borrow(|c| span_of(&spanned, c.as_ref().map(|c| &c.source)));
        Ok(Converted(Node { value: spanned.value.0, span }))
    }
}

/// A mapping key, converted as [`Converted`]; its name is shared with the
/// keys of the same name read before it.
struct ConvertedKey(Key);

impl<'de> Deserialize<'de> for ConvertedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(deserializer)?;
        let key = CONTEXT.with_borrow_mut(|context| {
            let span = span_of(&spanned, context.as_ref().map(|c| &c.source));
            let text = key_name(spanned.value.0);
            let name = match context {
                Some(context) => match context.keys.get(text.as_str()) {
                    Some(shared) => Arc::clone(shared),
                    None => {
                        let name: Arc<str> = text.into();
                        context.keys.insert(Arc::clone(&name));
                        name
                    }
                },
                None => text.into(),
            };
            Key { name, span }
        });
        Ok(ConvertedKey(key))
    }
}

/// Keys are strings in every cpln document; other scalars are written
/// as YAML would print them.
fn key_name(value: NodeValue) -> String {
    match value {
        NodeValue::String(s) => s,
        NodeValue::Null => "null".to_owned(),
        NodeValue::Bool(b) => b.to_string(),
        NodeValue::Number(n) => n.to_string(),
        NodeValue::Sequence(_) | NodeValue::Mapping(_) => "<complex key>".to_owned(),
    }
}

/// What serde-saphyr fills in inside its span wrapper.
struct RawValue(NodeValue);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(RawValue)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        RawValue::deserialize(d).map(|v| v.0)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<NodeValue, E> {
        Number::from_f64(v)
            .map(NodeValue::Number)
            .ok_or_else(|| E::custom("numbers must be finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v.to_owned()))
    }
    fn visit_string<E>(self, mut v: String) -> Result<NodeValue, E> {
        v.shrink_to_fit();
        Ok(NodeValue::String(v))
    }
    // Vectors are shrunk to their items: they live as long as the tree.
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(Converted(item)) = access.next_element()? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(NodeValue::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((ConvertedKey(key), Converted(value))) = access.next_entry()? {
            entries.push((key, value));
        }
        entries.shrink_to_fit();
        Ok(NodeValue::Mapping(entries))
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
    fn tags_beyond_the_core_schema_and_complex_keys_are_refused() {
        for (text, code, at) in [
            (
                "kind: secret\ndata:\n  payload: !!binary aGVsbG8=\n",
                "ferry::yaml::unsupported-tag",
                "t.yaml:3:12",
            ),
            (
                "kind: workload\nspec: !custom\n  type: cron\n",
                "ferry::yaml::unsupported-tag",
                "t.yaml:2:7",
            ),
            ("kind: workload\n? [a, b]\n: c\n", "ferry::yaml::complex-key", "t.yaml:2:3"),
            ("kind: workload\nspec: {? {a: 1} : 2}\n", "ferry::yaml::complex-key", "t.yaml:2:10"),
        ] {
            let problem = parse(text).err().unwrap_or_else(|| panic!("refused: {text:?}"));
            assert_eq!(problem.code, code, "{text:?}");
            assert_eq!(problem.position().as_deref(), Some(at), "{text:?}");
        }
        // Core tags, `!` inside strings and `?` in values still read.
        for text in [
            "kind: gvc\nname: !!str app\ndescription: \"hi!\"\n",
            "kind: workload\nspec:\n  args: [\"a?b\", \"!x\"]\n  n: !!int 3\n",
        ] {
            assert!(parse(text).is_ok(), "{text:?}");
        }
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
    fn duplicate_keys_name_both_places_in_ferry_words() {
        let problem = parse("kind: x\nspec:\n  - a: 1\n    b: 2\n    a: 3\n").err();
        let problem = problem.expect("a duplicate key is an error");
        assert_eq!(problem.code, "ferry::yaml::duplicate-key");
        assert_eq!(problem.message, "key `a` appears twice in the same mapping");
        assert_eq!(problem.position().as_deref(), Some("t.yaml:5:5"));
        let first = problem.notes.first().map(|(l, _)| l.describe());
        assert_eq!(first.as_deref(), Some("t.yaml:3:5"));
        assert!(!problem.message.contains("DuplicateKeyPolicy"));
    }

    #[test]
    fn documents_over_the_limits_are_named_in_ferry_words() {
        let deep: String =
            (0..=MAX_DEPTH).map(|i| format!("{}k{i}:\n", " ".repeat(i * 2))).collect();
        let problem = parse(&deep).expect_err("too deep");
        assert_eq!(problem.code, "ferry::yaml::too-large");
        assert!(problem.message.contains("nested too deeply"), "{}", problem.message);
        assert!(problem.message.contains("32 levels"), "{}", problem.message);
        let flow = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let flow = parse(&flow).expect_err("too deep");
        assert_eq!(flow.code, "ferry::yaml::too-large", "{}", flow.message);
        let many = "- 1\n".repeat(250_001);
        let problem = parse(&many).expect_err("too large");
        assert!(problem.message.contains("at most 250000 values"), "{}", problem.message);
        assert!(!problem.message.contains("Nodes"), "{}", problem.message);
    }

    /// The heap a tree holds, counted from its vectors' and strings'
    /// capacities; a key name shared with an earlier key counts once.
    fn retained(node: &Node, seen: &mut HashSet<*const u8>) -> usize {
        use std::mem::size_of;
        match &node.value {
            NodeValue::String(s) => s.capacity(),
            NodeValue::Sequence(items) => {
                items.capacity() * size_of::<Node>()
                    + items.iter().map(|i| retained(i, seen)).sum::<usize>()
            }
            NodeValue::Mapping(entries) => {
                let names: usize = entries
                    .iter()
                    .filter(|(k, _)| seen.insert(k.name.as_ptr()))
                    .map(|(k, _)| k.name.len() + 2 * size_of::<usize>())
                    .sum();
                entries.capacity() * size_of::<(Key, Node)>()
                    + names
                    + entries.iter().map(|(_, v)| retained(v, seen)).sum::<usize>()
            }
            _ => 0,
        }
    }

    #[test]
    fn a_parsed_tree_stays_within_four_times_its_text() {
        // Every resource keeps its tree for the whole run: the 16 MiB
        // manifest limit is a memory limit only while this holds
        // (docs/performance.md, "Manifests too large to read").
        assert_eq!(std::mem::size_of::<Span>(), 8);
        assert!(std::mem::size_of::<Node>() <= 40, "{}", std::mem::size_of::<Node>());
        assert!(std::mem::size_of::<Key>() <= 24, "{}", std::mem::size_of::<Key>());
        let workload = |n: usize| {
            format!(
                "kind: workload\nname: w-{n:04}\ndescription: Background jobs from the queue\nspec:\n  type: standard\n  identityLink: //gvc/app/identity/worker-id\n  containers:\n    - name: main\n      image: //image/worker:1.4.2\n      cpu: 100m\n      memory: 256Mi\n      env:\n        - name: QUEUE_URL\n          value: amqp://queue.app.cpln.local:5672\n        - name: FEATURE_FLAGS\n          value: cpln://secret/app-config.FEATURE_FLAGS\n  defaultOptions:\n    capacityAI: false\n    autoscaling: {{metric: cpu, target: 80, minScale: 1, maxScale: 2}}\n  firewallConfig:\n    internal:\n      inboundAllowType: none\n---\n"
            )
        };
        let text: String = (0..1000).map(workload).collect();
        let docs = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(docs.len(), 1000);
        // No vector keeps room it does not use (`collect` over the parser's
        // own vectors would keep theirs, several times larger).
        fn exact(node: &Node) -> bool {
            match &node.value {
                NodeValue::Sequence(items) => {
                    items.capacity() == items.len() && items.iter().all(exact)
                }
                NodeValue::Mapping(entries) => {
                    entries.capacity() == entries.len() && entries.iter().all(|(_, v)| exact(v))
                }
                NodeValue::String(s) => s.capacity() == s.len(),
                _ => true,
            }
        }
        assert!(docs.iter().all(exact));
        // Every `name` key of the file is one shared string.
        let names: HashSet<*const u8> =
            docs.iter().filter_map(|d| d.key("name")).map(|k| k.name.as_ptr()).collect();
        assert_eq!(names.len(), 1);
        let mut seen = HashSet::new();
        let bytes: usize =
            docs.iter().map(|d| retained(d, &mut seen) + std::mem::size_of::<Node>()).sum();
        assert!(bytes <= 4 * text.len(), "{bytes} bytes retained for {} of text", text.len());
    }

    #[test]
    fn syntax_messages_drop_the_parsers_position() {
        assert_eq!(
            bare_message("unclosed bracket '[' at line 4, column 17"),
            "unclosed bracket '['"
        );
        assert_eq!(bare_message("error: line 2 column 7: mapping values"), "mapping values");
    }
}
