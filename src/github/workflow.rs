//! GitHub's workflow commands and the `$GITHUB_OUTPUT` file format, as text.
//!
//! Pure. The escaping is the one GitHub's toolkit applies
//! (`@actions/core`, `command.ts`): in data `%`, `\r` and `\n`; in
//! properties also `:` and `,`. Outputs use `name=value`, or the heredoc
//! form `name<<DELIMITER` for values with a line break (GitHub's "Setting
//! an output parameter" and `file-command.ts`).

use std::fmt::Write as _;

use crate::diagnostic::{Problem, Severity};

/// Escapes a command's data (what follows the second `::`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a command's property value (`file=…`, `title=…`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::NAME k=v,k=v::DATA`.
pub fn command(name: &str, properties: &[(&str, String)], data: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        let _ = write!(line, "{}{key}={}", if i == 0 { ' ' } else { ',' }, escape_property(value));
    }
    let _ = write!(line, "::{}", escape_data(data));
    line
}

/// Where a problem points, as GitHub wants it: a path relative to the
/// repository's root, a line and a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// A problem's position: a file read from git (`SHORTSHA:path`) loses its
/// revision prefix; a path on disk under `workspace` (the checkout,
/// `$GITHUB_WORKSPACE`) is made relative to it.
pub fn position(problem: &Problem, workspace: Option<&str>) -> Option<Position> {
    let location = problem.location.as_ref()?;
    let name = location.source.name();
    let mut file = match location.source.revision() {
        Some(_) => name.split_once(':').map_or(name, |(_, path)| path),
        None => name,
    };
    if let Some(root) = workspace.filter(|r| !r.is_empty()) {
        let root = root.trim_end_matches('/');
        if let Some(inside) = file.strip_prefix(root).and_then(|rest| rest.strip_prefix('/')) {
            file = inside;
        }
    }
    let file = file.strip_prefix("./").unwrap_or(file);
    let (line, column) = location.source.line_column(location.span.offset());
    Some(Position { file: file.to_owned(), line, column })
}

/// `::error file=…,line=…,col=…,title=CODE::MESSAGE` (or `::warning`), the
/// message as problems may show it (no secret payload) with its help.
pub fn annotation(problem: &Problem, workspace: Option<&str>) -> String {
    let name = if problem.severity == Severity::Warning { "warning" } else { "error" };
    let mut properties = Vec::new();
    if let Some(at) = position(problem, workspace) {
        properties.push(("file", at.file));
        properties.push(("line", at.line.to_string()));
        properties.push(("col", at.column.to_string()));
    }
    properties.push(("title", problem.code.to_owned()));
    let mut message = problem.shown_message();
    if let Some(help) = problem.shown_help() {
        let _ = write!(message, "\nhelp: {help}");
    }
    command(name, &properties, &message)
}

/// One line of `$GITHUB_OUTPUT`: `name=value`, or the heredoc form with a
/// delimiter the value does not contain when the value has a line break.
pub fn output(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let delimiter = (0..)
        .map(|n| format!("ferry_EOF_{n}"))
        .find(|d| !value.contains(d.as_str()))
        .unwrap_or_default();
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Location, SourceFile};

    #[test]
    fn data_and_properties_are_escaped_as_the_toolkit_does() {
        assert_eq!(escape_data("100% a\r\nb: c, d"), "100%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            command("error", &[("file", "a,b.yaml".into()), ("line", "3".into())], "x: y\nz"),
            "::error file=a%2Cb.yaml,line=3::x: y%0Az"
        );
        assert_eq!(command("endgroup", &[], ""), "::endgroup::");
    }

    #[test]
    fn a_problem_in_git_points_at_its_path_in_the_repository() {
        let source = SourceFile::at_revision(
            "abc1234:manifests/api.yaml",
            "abc1234def",
            "kind: workload\nname: Bad_Name\n",
        );
        let problem = Problem::new("ferry::validate::name", "bad name")
            .at(Location::new(&source, (21, 8)), "here")
            .help("use lowercase");
        assert_eq!(
            annotation(&problem, None),
            "::error file=manifests/api.yaml,line=2,col=7,title=ferry%3A%3Avalidate%3A%3Aname::bad name%0Ahelp: use lowercase"
        );
        let on_disk = SourceFile::new("/runner/work/app/promotion.yaml", "x: 1\n");
        let warning =
            Problem::new("ferry::w", "careful").at(Location::new(&on_disk, (0, 1)), "").warning();
        assert_eq!(
            annotation(&warning, Some("/runner/work/app/")),
            "::warning file=promotion.yaml,line=1,col=1,title=ferry%3A%3Aw::careful"
        );
        assert_eq!(
            annotation(&Problem::new("ferry::x", "no place"), None),
            "::error title=ferry%3A%3Ax::no place"
        );
    }

    #[test]
    fn outputs_with_a_line_break_use_a_delimiter_the_value_lacks() {
        assert_eq!(output("release", "4"), "release=4\n");
        assert_eq!(output("x", "a\nferry_EOF_0"), "x<<ferry_EOF_1\na\nferry_EOF_0\nferry_EOF_1\n");
    }
}
