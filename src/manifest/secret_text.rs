//! What a diagnostic may show of a file that holds secrets.
//!
//! Snippets and messages never show a secret's payload (`data` of a
//! `kind: secret`, wherever it sits: a document of its own, an item of
//! `kind: list` or of a top-level list, or the `patch` of an override).
//! Parsed files are masked exactly, value by value. A file that does not
//! parse (the very file a problem is about) is masked on the structure the
//! parser read up to the error (a mapping whose `kind` was not reached
//! counts as a secret), and from the error's line to the end of its
//! document every value is masked, whatever the style (tabs, flow, JSON,
//! quoted keys). A text scan then masks whatever else looks like secret
//! data. Masks keep every byte offset and line, so that spans still point
//! where they did.

use crate::diagnostic::SourceFile;
use crate::manifest::kept_secret::KEEP_LIVE;

use super::yaml::{self, Node, NodeValue};

/// What the masks put in place of a value.
const HIDDEN: &str = "(value hidden)";

/// The text with secret payloads masked, and the payload values found (for
/// [`SourceFile::redact`]).
pub(crate) fn hide(source: &SourceFile) -> (String, Vec<String>) {
    let text = source.text();
    let mut spans = Vec::new();
    let mut values = Vec::new();
    let mut broken_at = None;
    match yaml::parse_documents(source) {
        Ok(documents) => {
            for document in &documents {
                visit(document, Certainty::Parsed, &mut spans, &mut values);
            }
        }
        // A file that does not parse is masked on what the parser read
        // before the error, and everything from the error's line to the
        // end of its document as if it were payload.
        Err(_) => {
            let (documents, error) = yaml::parse_partial(text);
            for document in &documents {
                visit(document, Certainty::Partial, &mut spans, &mut values);
            }
            broken_at = error;
        }
    }
    let mut bytes = text.as_bytes().to_vec();
    for (offset, len) in spans {
        let start = text.floor_char_boundary(offset.min(text.len()));
        let end = text.ceil_char_boundary((offset + len).min(text.len()));
        mask_range(&mut bytes, start, end);
    }
    if let Some(error) = broken_at {
        mask_unread(&mut bytes, text, error);
    }
    let masked = String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned());
    (scan(&masked), values)
}

/// How much of a file was read as YAML.
#[derive(Clone, Copy, PartialEq)]
enum Certainty {
    /// All of it: a mapping is a secret when its `kind` says so.
    Parsed,
    /// Up to an error: a mapping whose `kind` was not reached may be a
    /// secret, so its `data` is masked too.
    Partial,
}

/// Finds the payloads of every `kind: secret` mapping in a tree.
fn visit(
    node: &Node,
    certainty: Certainty,
    spans: &mut Vec<(usize, usize)>,
    values: &mut Vec<String>,
) {
    match &node.value {
        NodeValue::Mapping(entries) => {
            let is_secret = match node.get("kind") {
                Some(kind) => kind.as_str() == Some("secret"),
                None => certainty == Certainty::Partial,
            };
            for (key, value) in entries {
                match &*key.name {
                    "data" if is_secret => payload(value, spans, values),
                    "patch" if is_secret => {
                        if let Some(data) = value.get("data") {
                            payload(data, spans, values);
                        }
                    }
                    _ => visit(value, certainty, spans, values),
                }
            }
        }
        NodeValue::Sequence(items) => {
            for item in items {
                visit(item, certainty, spans, values);
            }
        }
        _ => {}
    }
}

/// Masks what the parser did not read: from the start of the line of the
/// error at `error` to the end of its document, when that document may
/// hold a secret (it says `secret` or `data` anywhere). Each line keeps its
/// indentation and a leading key (plain or quoted) with its colon; the
/// rest is masked, flow style and tab indentation included.
fn mask_unread(bytes: &mut [u8], text: &str, error: usize) {
    let error = text.floor_char_boundary(error.min(text.len()));
    let line_start = text[..error].rfind('\n').map_or(0, |i| i + 1);
    let document_start = text[..line_start].rfind("\n---").map_or(0, |i| i + 1);
    let document_end = text[line_start..].find("\n---").map_or(text.len(), |i| line_start + i + 1);
    let document = &text[document_start..document_end];
    if !document.contains("secret") && !document.contains("data") {
        return;
    }
    let mut offset = line_start;
    for line in text[line_start..document_end].split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches([' ', '\t', '-']).len();
        let keep = indent + leading_key(&body[indent..]).unwrap_or(0);
        let end = offset + body.len();
        if let Some(rest) = bytes.get_mut(offset + keep..end)
            && !rest.iter().all(u8::is_ascii_whitespace)
        {
            let masked = mask(rest.len(), keep > indent);
            rest.copy_from_slice(masked.as_bytes());
        }
        offset += line.len();
    }
}

/// The length of a leading `key:` (plain, or in single or double quotes).
fn leading_key(text: &str) -> Option<usize> {
    if let Some(quote) = text.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let close = text[1..].find(quote)? + 2;
        let key = &text[1..close - 1];
        let plain = key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        return (plain && text[close..].starts_with(':')).then_some(close + 1);
    }
    plain_key(text)
}

/// Every value under a secret's `data`. `data`'s own keys (`payload`, a
/// dictionary's names) stay; deeper keys are part of the payload.
fn payload(node: &Node, spans: &mut Vec<(usize, usize)>, values: &mut Vec<String>) {
    payload_at(node, 0, spans, values);
}

fn payload_at(
    node: &Node,
    depth: usize,
    spans: &mut Vec<(usize, usize)>,
    values: &mut Vec<String>,
) {
    match &node.value {
        NodeValue::Mapping(entries) => {
            for (key, value) in entries {
                if depth > 0 {
                    spans.push((key.span.offset(), key.span.len()));
                }
                // An opaque secret's `encoding` is masked like the rest, but
                // its two values are words messages use (`is not base64`).
                let word = depth == 0
                    && &*key.name == "encoding"
                    && matches!(value.as_str(), Some("plain" | "base64"));
                if word {
                    spans.push((value.span.offset(), value.span.len()));
                    continue;
                }
                payload_at(value, depth + 1, spans, values);
            }
        }
        NodeValue::Sequence(items) => {
            for item in items {
                payload_at(item, depth + 1, spans, values);
            }
        }
        // The placeholder that keeps a value out of git is no secret:
        // shown, so that a message naming it names what the file holds.
        NodeValue::String(value) if value == KEEP_LIVE => {}
        NodeValue::String(value) => {
            spans.push((node.span.offset(), node.span.len()));
            values.push(value.clone());
        }
        NodeValue::Number(value) => {
            spans.push((node.span.offset(), node.span.len()));
            values.push(value.to_string());
        }
        NodeValue::Bool(_) | NodeValue::Null => spans.push((node.span.offset(), node.span.len())),
    }
}

/// Masks `bytes[start..end]` line by line, line breaks kept.
fn mask_range(bytes: &mut [u8], start: usize, end: usize) {
    let Some(range) = bytes.get_mut(start..end) else { return };
    for line in range.split_mut(|b| *b == b'\n') {
        // Indentation stays, so that the lines below still read as YAML.
        let blank = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if let Some(value) = line.get_mut(blank..).filter(|v| !v.is_empty()) {
            let masked = mask(value.len(), false);
            value.copy_from_slice(masked.as_bytes());
        }
    }
}

/// `len` bytes that say a value is hidden (ASCII only).
fn mask(len: usize, lead: bool) -> String {
    let hidden = if lead { format!(" {HIDDEN}") } else { HIDDEN.to_owned() };
    if len >= hidden.len() {
        format!("{hidden}{}", " ".repeat(len - hidden.len()))
    } else if lead && len > 1 {
        format!(" {}", "*".repeat(len - 1))
    } else {
        "*".repeat(len)
    }
}

/// The text scan: in every document that declares `kind: secret` (at any
/// depth), whatever follows a `data:` key on its line, and every line
/// below it indented deeper (or a list item at its column), is masked.
fn scan(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for document in text.split_inclusive("\n---") {
        if !document.lines().any(declares_secret) {
            shown.push_str(document);
            continue;
        }
        let mut data_column: Option<usize> = None;
        // The indentation of `data`'s own keys, once seen.
        let mut key_column: Option<usize> = None;
        for line in document.split_inclusive('\n') {
            let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            let indent = body.len() - body.trim_start_matches(' ').len();
            let content = body.trim();
            if let Some(column) = data_column {
                let inside = content.is_empty()
                    || indent > column
                    || (indent == column && content.starts_with('-'));
                if inside {
                    if !content.is_empty() && key_column.is_none() {
                        key_column = Some(indent);
                    }
                    // `data`'s own keys (`payload:`, a dictionary's names)
                    // stay readable; values and anything deeper do not.
                    let keep = match plain_key(&body[indent..]) {
                        Some(key) if key_column == Some(indent) => indent + key,
                        _ => indent,
                    };
                    shown.push_str(&body[..keep]);
                    let rest = &body[keep..];
                    if !rest.trim().is_empty() && !is_placeholder(rest) {
                        shown.push_str(&mask(rest.len(), keep > indent));
                    } else {
                        shown.push_str(rest);
                    }
                    shown.push_str(end);
                    continue;
                }
                data_column = None;
                key_column = None;
            }
            match data_key(body) {
                Some(after) => {
                    let column = after - "data:".len();
                    shown.push_str(&body[..after]);
                    let tail = &body[after..];
                    let kept = tail.trim().is_empty() || is_placeholder(tail);
                    shown.push_str(if kept { tail } else { "" });
                    if !kept {
                        shown.push_str(&mask(tail.len(), true));
                    }
                    shown.push_str(end);
                    data_column = Some(column);
                }
                None => shown.push_str(line),
            }
        }
    }
    shown
}

/// Whether a value, as written on its line, is the placeholder that keeps
/// a secret's value out of git (plain or quoted, maybe with a comment).
fn is_placeholder(text: &str) -> bool {
    let value = text.split(" #").next().unwrap_or_default().trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    unquoted == KEEP_LIVE
}

/// The length of `key:` when `text` starts with a plain mapping key.
fn plain_key(text: &str) -> Option<usize> {
    let colon = text.find(':')?;
    let key = &text[..colon];
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let ends = text[colon + 1..].chars().next().is_none_or(|c| c == ' ');
    (plain && ends).then_some(colon + 1)
}

/// Whether a line says `kind: secret` (block or flow style, quoted or not).
fn declares_secret(line: &str) -> bool {
    keys(line, "kind:").any(|after| {
        let value = line[after..].trim_start();
        let value = value.trim_start_matches(['"', '\'']);
        value.strip_prefix("secret").is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(['"', '\'', ',', '}', ' ', '#', '\r'])
        })
    })
}

/// Where the value of the first `data:` key on a line starts.
fn data_key(line: &str) -> Option<usize> {
    keys(line, "data:").next()
}

/// The offsets just after each `key` on a line that is a key (at the
/// start, after indentation or `- `, or after `{` or `,` in flow style),
/// not part of a longer word (`metadata:`).
fn keys<'a>(line: &'a str, key: &'a str) -> impl Iterator<Item = usize> + 'a {
    line.match_indices(key).filter_map(move |(at, _)| {
        let before = line[..at].chars().next_back();
        let is_key = before.is_none_or(|c| matches!(c, ' ' | '-' | '{' | ',' | '\t'));
        is_key.then_some(at + key.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> (String, Vec<String>) {
        let (masked, values) = hide(&SourceFile::new("t.yaml", text));
        assert_eq!(masked.len(), text.len(), "{masked}");
        assert_eq!(masked.lines().count(), text.lines().count(), "{masked}");
        (masked, values)
    }

    #[test]
    fn top_level_secrets_are_masked() {
        let text = "kind: secret\nname: Bad_Name\ndata:\n  payload: hunter2-password\n---\nkind: gvc\nname: app\n";
        let (masked, values) = shown(text);
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(masked.contains("name: Bad_Name") && masked.contains("name: app"), "{masked}");
        assert!(masked.contains("  payload: (value hidden)"), "{masked}");
        assert_eq!(values, ["hunter2-password"]);
        let (inline, _) = shown("kind: secret\nname: x\ndata: {payload: [1, 2\n");
        assert!(!inline.contains("payload"), "{inline}");
    }

    #[test]
    fn secrets_inside_lists_are_masked() {
        let text = "kind: list\nitems:\n  - kind: workload\n    name: api\n  - name: db\n    data:\n      payload: |\n        line-one-secret\n        line-two-secret\n      encoding: plain\n    kind: secret\n  - {kind: secret, name: k, data: {payload: flow-secret}}\n";
        let (masked, values) = shown(text);
        for secret in ["line-one", "line-two", "flow-secret"] {
            assert!(!masked.contains(secret), "{secret} in\n{masked}");
        }
        assert!(masked.contains("name: db") && masked.contains("name: api"), "{masked}");
        assert!(masked.contains("      encoding: ") && !masked.contains("plain"), "{masked}");
        assert!(values.iter().any(|v| v.contains("line-one-secret")), "{values:?}");
        assert!(values.iter().any(|v| v == "flow-secret"), "{values:?}");
    }

    #[test]
    fn broken_lists_are_masked() {
        let text = "- name: db\n  kind: \"secret\"\n  data:\n    payload: hunter2-password\n  - oops: [\n- kind: workload\n  data: kept\n";
        let (masked, values) = shown(text);
        assert_eq!(values, ["hunter2-password"], "what was read before the error is known");
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(masked.contains("metadata") || !text.contains("metadata"));
        let (metadata, _) = shown("kind: gvc\nmetadata: plain\n");
        assert!(metadata.contains("plain"));
    }

    #[test]
    fn broken_files_of_every_shape_keep_their_payloads_hidden() {
        let shapes = [
            // A tab-indented data line: YAML refuses tabs for indentation.
            "kind: secret\nname: db\ntype: opaque\ndata:\n\tpayload: hunter2-tabbed\n",
            // Flow (JSON) style, broken after the payload.
            "{\"kind\": \"secret\", \"name\": \"db\", \"data\": {\"payload\": \"hunter2-flow\"}, oops: [\n",
            // JSON style on one line, broken before the payload.
            "{\"kind\": \"secret\", \"name\": \"db\" \"data\": {\"payload\": \"hunter2-json\"}}\n",
            // A quoted `"data":` key in block style, broken below.
            "kind: secret\nname: db\n\"data\":\n  payload: hunter2-quoted\n  - oops\n",
            // The payload before the `kind`, broken before the `kind`.
            "name: db\ndata:\n  payload: hunter2-early\n bad: [\nkind: secret\n",
        ];
        for text in shapes {
            let (masked, _) = shown(text);
            assert!(!masked.contains("hunter2"), "{text:?} shown as\n{masked}");
        }
        // A broken workload is not masked: its problem stays readable.
        let (masked, _) = shown("kind: workload\nname: api\nspec:\n\ttype: standard\n");
        assert!(masked.contains("type: standard"), "{masked}");
    }

    #[test]
    fn patches_of_secrets_are_masked() {
        let text = "environments:\n  - name: prod\n    overrides:\n      - kind: secret\n        name: db\n        patch:\n          data:\n            payload: prod-secret-value\n";
        let (masked, values) = shown(text);
        assert!(!masked.contains("prod-secret-value"), "{masked}");
        assert_eq!(values, ["prod-secret-value"]);
    }

    #[test]
    fn the_placeholder_that_keeps_a_value_out_of_git_is_shown_as_written() {
        let text = "kind: secret\nname: db\ndata:\n  payload: ferry:keep-live\n  token: 'ferry:keep-live'\n  pin: hunter2-password\n---\nkind: secret\nname: pull\ntype: docker\ndata: ferry:keep-live\n";
        let source = SourceFile::new("t.yaml", text);
        let (masked, values) = shown(text);
        assert_eq!(values, ["hunter2-password"], "the placeholder is no secret");
        assert!(masked.contains("  payload: ferry:keep-live\n"), "{masked}");
        assert!(masked.contains("  token: 'ferry:keep-live'\n"), "{masked}");
        assert!(masked.contains("data: ferry:keep-live\n"), "{masked}");
        assert!(!masked.contains("hunter2"), "{masked}");
        assert_eq!(
            source.redact("write the values in place of `ferry:keep-live`, not `hunter2-password`"),
            "write the values in place of `ferry:keep-live`, not `(value hidden)`"
        );
    }

    #[test]
    fn messages_never_quote_a_payload() {
        let source = SourceFile::new(
            "t.yaml",
            "kind: secret\nname: db\ndata:\n  payload: hunter2-password\n  pin: 'ab'\n",
        );
        assert_eq!(
            source.redact("`hunter2-password` is not base64; pin `ab`; about abc"),
            "`(value hidden)` is not base64; pin `(value hidden)`; about abc"
        );
        let opaque = SourceFile::new(
            "t.yaml",
            "kind: secret\nname: db\ndata:\n  payload: 'not-base64!'\n  encoding: base64\n",
        );
        let (masked, _) = hide(&opaque);
        assert!(!masked.contains("encoding: base64"), "{masked}");
        assert_eq!(
            opaque.redact("data.payload is not base64 (`not-base64!`)"),
            "data.payload is not base64 (`(value hidden)`)"
        );
    }
}
