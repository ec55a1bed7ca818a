//! Where output goes: data on stdout, logs and progress on stderr.
//!
//! Colour and progress bars only on a terminal, never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::cli::GlobalArgs;

/// Sets up logging (tracing to stderr) and the miette error renderer.
pub fn install(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(level.parse().unwrap_or_default())
        .with_env_var("FERRY_LOG")
        .from_env_lossy();
    // A second install (tests that call `main` twice) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_color())
        .with_target(false)
        .try_init();
    let _ = miette::set_hook(Box::new(|_| {
        let color = stderr_color();
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .color(color)
                .unicode(color)
                .width(100)
                .build(),
        )
    }));
}

/// Colour on stderr: only on a terminal and when `NO_COLOR` is unset.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Colour on stdout, by the same rule.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints an error with its diagnostics on stderr.
pub fn report(error: crate::Error) {
    if let Some(github) = crate::github::active() {
        github.annotate_error(&error);
    }
    let report = miette::Report::new(error);
    let _ = writeln!(std::io::stderr().lock(), "{report:?}");
}

/// Prints warnings (problems that do not fail the run) on stderr, each
/// with its snippet.
pub fn warnings(warnings: &[crate::diagnostic::Problem]) {
    if let Some(github) = crate::github::active() {
        github.annotate(warnings);
    }
    let mut stderr = std::io::stderr().lock();
    for warning in warnings {
        let _ = writeln!(stderr, "{:?}", miette::Report::new(warning.clone()));
    }
}

/// Writes data to stdout. A closed pipe (`ferry graph | head`) is not an
/// error worth reporting.
pub fn print(text: &str) -> Result<(), crate::Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::Error::Output(error))
        }
        _ => Ok(()),
    }
}

/// Writes a status line to stderr (progress and summaries, not data).
pub fn status(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `1 resource`, `2 resources`: a count with its noun (English `-s` plural).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_take_the_plural_except_for_one() {
        assert_eq!(super::count(0, "wave"), "0 waves");
        assert_eq!(super::count(1, "wave"), "1 wave");
        assert_eq!(super::count(13, "resource"), "13 resources");
    }
}
