//! Reads manifest files from git at a revision, or from a directory.

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RepoError {}
