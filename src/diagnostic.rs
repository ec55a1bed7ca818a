//! Problems found in user input, reported together.
//!
//! Every check in Ferry (plan file, manifests, validation, graph) produces
//! [`Problem`]s instead of stopping at the first one, so that a single run
//! shows everything that needs fixing. A problem points at the file, line
//! and column it is about, with a label and a help line.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, SourceCode, SourceSpan};

/// A named text (a manifest file at a revision, or the plan file) that
/// problems can point into.
#[derive(Clone)]
pub struct SourceFile {
    inner: Arc<SourceInner>,
}

struct SourceInner {
    name: String,
    /// The git commit the text was read at; `None` for files on disk.
    revision: Option<String>,
    text: Arc<str>,
    /// The text as snippets show it (secret payloads masked) and the
    /// payload values messages must not quote. Computed on first use (only
    /// when a problem is rendered).
    shown: std::sync::OnceLock<Shown>,
}

/// What problems may show of a text.
struct Shown {
    text: Arc<str>,
    /// Secret payload values, longest first.
    secrets: Vec<String>,
}

impl SourceFile {
    /// `name` is what users see: a path, or `REV:path` for a file read
    /// from git.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Self {
            inner: Arc::new(SourceInner {
                name: name.into(),
                revision: None,
                text: text.into(),
                shown: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A text read from git at `commit`.
    pub fn at_revision(
        name: impl Into<String>,
        commit: impl Into<String>,
        text: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            inner: Arc::new(SourceInner {
                name: name.into(),
                revision: Some(commit.into()),
                text: text.into(),
                shown: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A file's bytes as text. Invalid UTF-8 is a problem located at the
    /// first bad byte (line and column, shown as `\u{FFFD}` in the snippet):
    /// `cpln` reads manifests as UTF-8, and so does Ferry.
    pub fn decode(
        name: impl Into<String>,
        revision: Option<String>,
        bytes: Vec<u8>,
    ) -> Result<Self, Problem> {
        let name = name.into();
        let make = |text: String| Self {
            inner: Arc::new(SourceInner {
                name: name.clone(),
                revision: revision.clone(),
                text: text.into(),
                shown: std::sync::OnceLock::new(),
            }),
        };
        match String::from_utf8(bytes) {
            Ok(text) => Ok(make(text)),
            Err(error) => {
                let at = error.utf8_error().valid_up_to();
                let source = make(String::from_utf8_lossy(error.as_bytes()).into_owned());
                let (line, column) = source.line_column(at);
                Err(Problem::new(
                    "ferry::input::encoding",
                    format!(
                        "{name} is not UTF-8 text: invalid bytes at line {line}, column {column}"
                    ),
                )
                .at(Location::new(&source, (at, '\u{FFFD}'.len_utf8())), "not UTF-8")
                .help("save the file as UTF-8 (`cpln apply` reads YAML as UTF-8 too)"))
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The commit this text was read at, if it came from git.
    pub fn revision(&self) -> Option<&str> {
        self.inner.revision.as_deref()
    }

    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// Byte offset of a 1-based line and (character) column, clamped to the
    /// text; parsers report positions this way.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let text = self.text();
        let mut offset = 0;
        for (index, part) in text.split_inclusive('\n').enumerate() {
            if index + 1 == line {
                let within = part
                    .char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(part.trim_end_matches('\n').len(), |(i, _)| i);
                return offset + within;
            }
            offset += part.len();
        }
        text.len()
    }

    fn shown(&self) -> &Shown {
        self.inner.shown.get_or_init(|| {
            let (text, mut secrets) = crate::manifest::secret_text::hide(self);
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            secrets.dedup();
            Shown { text: text.into(), secrets }
        })
    }

    /// `text` (a message, label or help about this file) with every secret
    /// payload value of this file replaced: a check may quote a value,
    /// never a secret one. Values shorter than six characters are only
    /// replaced where quoted, so that they do not take words with them.
    pub fn redact(&self, text: &str) -> String {
        const HIDDEN: &str = "(value hidden)";
        let mut text = text.to_owned();
        for secret in &self.shown().secrets {
            if secret.len() >= 6 {
                text = text.replace(secret.as_str(), HIDDEN);
            } else if !secret.is_empty() {
                for quote in ['`', '"', '\''] {
                    text = text.replace(
                        &format!("{quote}{secret}{quote}"),
                        &format!("{quote}{HIDDEN}{quote}"),
                    );
                }
            }
        }
        text
    }

    /// 1-based line and column of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let text = self.text();
        let offset = offset.min(text.len());
        let before = &text[..text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile").field("name", &self.name()).finish_non_exhaustive()
    }
}

/// A place in a source file.
#[derive(Clone, Debug)]
pub struct Location {
    pub source: SourceFile,
    pub span: SourceSpan,
}

impl Location {
    pub fn new(source: &SourceFile, span: impl Into<SourceSpan>) -> Self {
        Self { source: source.clone(), span: span.into() }
    }

    /// `file:line:column`, for messages that cannot show a snippet.
    pub fn describe(&self) -> String {
        let (line, column) = self.source.line_column(self.span.offset());
        format!("{}:{line}:{column}", self.source.name())
    }
}

/// One problem with the input. Boxed: it travels in `Result`s everywhere.
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemData>);

/// How serious a problem is: errors stop a run (exit 1), warnings are
/// shown and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// What a [`Problem`] says and where.
#[derive(Debug, Clone)]
pub struct ProblemData {
    /// Stable machine-readable identifier, such as `ferry::manifest::unknown-kind`.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    pub label: String,
    pub help: Option<String>,
    /// Other places that explain this one (for example the first
    /// definition of a duplicate).
    pub notes: Vec<(Location, String)>,
}

impl Problem {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(ProblemData {
            code,
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: String::new(),
            help: None,
            notes: Vec::new(),
        }))
    }

    pub fn at(mut self, location: Location, label: impl Into<String>) -> Self {
        self.location = Some(location);
        self.label = label.into();
        self
    }

    pub fn at_opt(self, location: Option<Location>, label: impl Into<String>) -> Self {
        match location {
            Some(location) => self.at(location, label),
            None => self,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The same problem as a warning: shown, but it does not fail the run.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn note(mut self, location: Location, label: impl Into<String>) -> Self {
        self.notes.push((location, label.into()));
        self
    }

    /// `text` with the secret payloads of every file the problem points
    /// into replaced ([`SourceFile::redact`]).
    fn redacted(&self, text: &str) -> String {
        let sources = self.location.iter().chain(self.notes.iter().map(|(l, _)| l));
        sources.fold(text.to_owned(), |text, l| l.source.redact(&text))
    }

    /// The message as it may be shown: no secret payload in it.
    pub fn shown_message(&self) -> String {
        self.redacted(&self.message)
    }

    /// The help line as it may be shown.
    pub fn shown_help(&self) -> Option<String> {
        self.help.as_deref().map(|help| self.redacted(help))
    }

    /// `file:line:column` of the problem, if it has one.
    pub fn position(&self) -> Option<String> {
        self.location.as_ref().map(Location::describe)
    }
}

impl std::ops::Deref for Problem {
    type Target = ProblemData;
    fn deref(&self) -> &ProblemData {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemData {
        &mut self.0
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown_message())
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        match self.severity {
            Severity::Error => None,
            Severity::Warning => Some(miette::Severity::Warning),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.shown_help().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.location.as_ref().map(|l| &l.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let location = self.location.as_ref()?;
        let primary =
            LabeledSpan::new_primary_with_span(Some(self.redacted(&self.label)), location.span);
        // Notes in the same file are shown as extra labels on the snippet.
        let notes = self
            .notes
            .iter()
            .filter(|(l, _)| l.source.name() == location.source.name())
            .map(|(l, label)| LabeledSpan::new_with_span(Some(self.redacted(label)), l.span));
        Some(Box::new(std::iter::once(primary).chain(notes)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        None
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents =
            self.shown().text.read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(
            miette::MietteSpanContents::new_named(
                self.name().to_owned(),
                contents.data(),
                *contents.span(),
                contents.line(),
                contents.column(),
                contents.line_count(),
            )
            .with_language("yaml"),
        ))
    }
}

/// Every problem found in one run.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    pub problems: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Problem>) {
        self.problems.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether any problem is an error (warnings alone do not fail a run).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// Takes the warnings out, leaving the errors.
    pub fn take_warnings(&mut self) -> Vec<Problem> {
        let (errors, warnings) =
            std::mem::take(&mut self.problems).into_iter().partition(Problem::is_error);
        self.problems = errors;
        warnings
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// `Ok(value)` when nothing was found, else every problem (warnings
    /// included: take them out first with [`Problems::take_warnings`] when
    /// they must not fail the run).
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Self { problems: vec![problem] }
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.problems.into_iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(f, "found {} problems", many.len()),
        }
    }
}

impl std::error::Error for Problems {}

impl Diagnostic for Problems {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.problems.as_slice() {
            [one] => one.code(),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.problems.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.problems.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.problems.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.problems.as_slice() {
            [_] => None,
            many => Some(Box::new(many.iter().map(|p| p as &dyn Diagnostic))),
        }
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough
/// to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two words, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_round_trip() {
        let source = SourceFile::new("a.yaml", "kind: x\nname: é-b\n");
        let offset = source.offset_of(2, 8);
        assert_eq!(&source.text()[offset..offset + 1], "-");
        assert_eq!(source.line_column(offset), (2, 8));
        assert_eq!(source.offset_of(99, 1), source.text().len());
    }

    #[test]
    fn invalid_utf8_names_the_line_and_column() {
        let bytes = b"kind: secret\nname: caf\xe9\n".to_vec();
        let problem = SourceFile::decode("m.yaml", None, bytes).expect_err("not UTF-8");
        assert_eq!(problem.position().as_deref(), Some("m.yaml:2:10"));
        assert!(problem.message.contains("line 2, column 10"), "{}", problem.message);
        let text = SourceFile::decode("m.yaml", Some("abc".into()), b"a: 1\n".to_vec());
        assert_eq!(
            text.ok().map(|s| (s.text().to_owned(), s.revision().map(str::to_owned))),
            Some(("a: 1\n".to_owned(), Some("abc".to_owned())))
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("enviroments", ["environments", "ordering"]), Some("environments"));
        assert_eq!(did_you_mean("zzz", ["environments"]), None);
    }
}
