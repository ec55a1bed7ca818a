//! Typed reading of plan-file YAML that records a problem, with its
//! position, for every key or value that is not what it should be.

use std::time::Duration;

use crate::diagnostic::{Location, Problem, Problems, SourceFile, did_you_mean};
use crate::manifest::yaml::{Node, NodeValue};

use super::duration::parse_duration;

pub(super) struct Reader<'s> {
    pub source: &'s SourceFile,
    pub problems: Problems,
}

impl<'s> Reader<'s> {
    pub fn new(source: &'s SourceFile) -> Self {
        Self { source, problems: Problems::default() }
    }

    pub fn location(&self, node: &Node) -> Location {
        Location::new(self.source, node.span)
    }

    pub fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// `node` as a mapping whose keys are all in `allowed`; every other key
    /// is reported (with a suggestion when it looks like a typo).
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<&'n Node> {
        let Some(entries) = node.entries() else {
            self.wrong_type(node, what, "a mapping");
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&&*key.name) {
                let hint = did_you_mean(&key.name, allowed.iter().copied())
                    .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                self.problem(
                    Problem::new(
                        "ferry::config::unknown-key",
                        format!("unknown key `{}` in {what}", key.name),
                    )
                    .at(Location::new(self.source, key.span), "not a known key")
                    .help(format!("{hint}allowed keys: {}", allowed.join(", "))),
                );
            }
        }
        Some(node)
    }

    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        self.problem(
            Problem::new(
                "ferry::config::wrong-type",
                format!("{what} must be {expected}, found {}", node.type_name()),
            )
            .at(self.location(node), format!("expected {expected}"))
            .help("see promotion.example.yaml for the shape of every key"),
        );
    }

    pub fn invalid(
        &mut self,
        node: &Node,
        message: impl Into<String>,
        label: &str,
        help: impl Into<String>,
    ) {
        self.problem(
            Problem::new("ferry::config::invalid-value", message)
                .at(self.location(node), label)
                .help(help),
        );
    }

    /// The value of a key that must be present.
    pub fn required<'n>(&mut self, map: &'n Node, key: &str, what: &str) -> Option<&'n Node> {
        let value = map.get(key);
        if value.is_none() {
            let span = (map.span.offset(), 0);
            self.problem(
                Problem::new("ferry::config::missing-key", format!("{what} has no `{key}`"))
                    .at(Location::new(self.source, span), format!("`{key}` is missing here"))
                    .help(format!("add `{key}:` to {what}")),
            );
        }
        value
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            NodeValue::String(s) if !s.trim().is_empty() => Some(s.clone()),
            NodeValue::String(_) => {
                self.invalid(
                    node,
                    format!("{what} is empty"),
                    "empty",
                    format!("give {what} a value"),
                );
                None
            }
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    /// An optional string key; absent gives `None` without a problem.
    pub fn optional_string(&mut self, map: &Node, key: &str, what: &str) -> Option<String> {
        map.get(key).and_then(|node| self.string(node, what))
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    /// A whole number of at least `min`.
    pub fn count(&mut self, node: &Node, what: &str, min: u32) -> Option<u32> {
        let value = match &node.value {
            NodeValue::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => {
                self.wrong_type(node, what, "a whole number");
                return None;
            }
        };
        match value {
            Some(n) if n >= min => Some(n),
            _ => {
                self.invalid(
                    node,
                    format!("{what} must be a whole number of at least {min}"),
                    "out of range",
                    format!("use a value from {min} up"),
                );
                None
            }
        }
    }

    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let parsed = match &node.value {
            NodeValue::String(s) => parse_duration(s),
            NodeValue::Number(n) => n.as_u64().map(Duration::from_secs),
            _ => None,
        };
        match parsed {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                self.invalid(
                    node,
                    format!("{what} is not a duration"),
                    "not a duration",
                    "write a positive duration such as `500ms`, `5s`, `5m` or `1h30m`",
                );
                None
            }
        }
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match node.items() {
            Some(items) => items,
            None => {
                self.wrong_type(node, what, "a list");
                &[]
            }
        }
    }
}
