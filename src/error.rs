//! The top-level error and the exit statuses the guide defines.

use std::process::ExitCode;

use miette::Diagnostic;

use crate::diagnostic::Problems;

/// Anything that stops a command. Each module has its own error type; this
/// only gathers them so that the binary renders them in one place.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Problems(#[from] Problems),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Repo(#[from] crate::repo::RepoError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Api(#[from] crate::api::ApiError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Sim(#[from] crate::sim::SimError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] crate::registry::RegistryError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Promote(Box<crate::promote::PromoteError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Execute(Box<crate::execute::ExecuteError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Rollback(Box<crate::plan::rollback::RollbackError>),

    #[error("could not write output: {0}")]
    #[diagnostic(code(ferry::output))]
    Output(#[source] std::io::Error),

    #[error("could not start the async runtime: {0}")]
    #[diagnostic(code(ferry::runtime))]
    Runtime(#[source] std::io::Error),
}

/// How a command ended, as the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, or nothing to change.
    Success,
    /// 1: an error.
    Failure,
    /// 2: `plan` found changes.
    Changes,
    /// 3: blocked by a lock, a missing approval or a freeze.
    Blocked,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Blocked => 3,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

impl From<crate::diagnostic::Problem> for Error {
    fn from(problem: crate::diagnostic::Problem) -> Self {
        Error::Problems(problem.into())
    }
}
