//! Reads manifest files from git at a revision (git2; the work tree is
//! never read or changed, bare repositories work) or from a directory.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

use crate::diagnostic::SourceFile;

/// The files of one revision (or of the work tree).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` when read from the work tree.
    pub revision: Option<Revision>,
    /// Every `*.yaml` / `*.yml` file, sorted by path.
    pub files: Vec<SourceFile>,
}

/// A resolved revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    /// What was asked for: a branch, tag or SHA.
    pub requested: String,
    /// The commit it resolved to (full SHA).
    pub commit: String,
}

impl Revision {
    /// The first 8 characters of the commit.
    pub fn short(&self) -> &str {
        self.commit.get(..8).unwrap_or(&self.commit)
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RepoError {
    #[error("cannot open git repository at {path}")]
    #[diagnostic(
        code(ferry::repo::open),
        help(
            "set `manifests.repository` in the plan file to a git repository, or use --worktree to read a plain directory"
        )
    )]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },

    #[error("revision `{revision}` not found in {repository}")]
    #[diagnostic(
        code(ferry::repo::revision),
        help("use a branch, tag or commit SHA that exists in the repository")
    )]
    Revision {
        revision: String,
        repository: PathBuf,
        #[source]
        source: git2::Error,
    },

    #[error("`{path}` does not exist at revision {revision}")]
    #[diagnostic(
        code(ferry::repo::path),
        help("check `manifests.path` in the plan file; it is relative to `manifests.repository`")
    )]
    MissingPath { path: String, revision: String },

    #[error("`{path}` at revision {revision} is not a folder")]
    #[diagnostic(
        code(ferry::repo::path),
        help("`manifests.path` names the folder that holds the manifests")
    )]
    NotAFolder { path: String, revision: String },

    #[error("`{file}` is not UTF-8 text")]
    #[diagnostic(code(ferry::repo::encoding), help("manifests must be UTF-8 YAML"))]
    NotText { file: String },

    #[error("cannot read {path}")]
    #[diagnostic(code(ferry::repo::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("git failed while reading {what}")]
    #[diagnostic(code(ferry::repo::git))]
    Git {
        what: String,
        #[source]
        source: git2::Error,
    },
}

fn is_manifest(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Reads the manifests under `path` at `revision`. `path` is relative to
/// `repository` (which may be a folder inside the repository's work tree,
/// or a bare repository).
pub fn read_git(repository: &Path, revision: &str, path: &str) -> Result<Snapshot, RepoError> {
    let repo = git2::Repository::discover(repository)
        .map_err(|source| RepoError::Open { path: repository.to_path_buf(), source })?;
    let commit = repo
        .revparse_single(revision)
        .and_then(|object| object.peel_to_commit())
        .map_err(|source| RepoError::Revision {
            revision: revision.to_owned(),
            repository: repository.to_path_buf(),
            source,
        })?;
    let resolved = Revision { requested: revision.to_owned(), commit: commit.id().to_string() };
    let root = commit
        .tree()
        .map_err(|source| RepoError::Git { what: "the commit's tree".to_owned(), source })?;
    let within = folder_within_workdir(&repo, repository);
    let joined = within.join(path.trim_matches('/'));
    let joined = joined.to_string_lossy();
    let folder = joined.trim_start_matches("./").trim_matches('/');
    let tree = if folder.is_empty() || folder == "." {
        root
    } else {
        let entry = root.get_path(Path::new(folder)).map_err(|_| RepoError::MissingPath {
            path: folder.to_owned(),
            revision: resolved.short().to_owned(),
        })?;
        let object = entry
            .to_object(&repo)
            .map_err(|source| RepoError::Git { what: folder.to_owned(), source })?;
        object.into_tree().map_err(|_| RepoError::NotAFolder {
            path: folder.to_owned(),
            revision: resolved.short().to_owned(),
        })?
    };
    let mut found: Vec<(String, git2::Oid)> = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Some(name) = entry.name().filter(|n| is_manifest(n))
        {
            found.push((format!("{parent}{name}"), entry.id()));
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|source| RepoError::Git { what: folder.to_owned(), source })?;
    found.sort();
    let prefix =
        if folder.is_empty() || folder == "." { String::new() } else { format!("{folder}/") };
    let mut files = Vec::with_capacity(found.len());
    for (relative, id) in found {
        let display = format!("{}:{prefix}{relative}", resolved.short());
        let blob = repo
            .find_blob(id)
            .map_err(|source| RepoError::Git { what: display.clone(), source })?;
        let text = std::str::from_utf8(blob.content())
            .map_err(|_| RepoError::NotText { file: display.clone() })?;
        files.push(SourceFile::at_revision(display, resolved.commit.clone(), text));
    }
    Ok(Snapshot { revision: Some(resolved), files })
}

/// Where `folder` is inside the repository's work tree (empty for the root
/// and for bare repositories).
fn folder_within_workdir(repo: &git2::Repository, folder: &Path) -> PathBuf {
    let inside = || {
        let workdir = repo.workdir()?.canonicalize().ok()?;
        let folder = folder.canonicalize().ok()?;
        folder.strip_prefix(&workdir).ok().map(Path::to_path_buf)
    };
    inside().unwrap_or_default()
}

/// Reads the manifests in a directory of the file system, for previews of
/// uncommitted edits. Hidden folders (such as `.git`) are skipped.
pub fn read_directory(folder: &Path) -> Result<Snapshot, RepoError> {
    let mut paths = Vec::new();
    collect(folder, &mut paths)?;
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(&path)
            .map_err(|source| RepoError::Read { path: path.clone(), source })?;
        let display = path.display().to_string();
        let text =
            String::from_utf8(bytes).map_err(|_| RepoError::NotText { file: display.clone() })?;
        files.push(SourceFile::new(display, text));
    }
    Ok(Snapshot { revision: None, files })
}

fn collect(folder: &Path, paths: &mut Vec<PathBuf>) -> Result<(), RepoError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|source| RepoError::Read { path: folder.to_path_buf(), source })?;
    for entry in entries {
        let entry =
            entry.map_err(|source| RepoError::Read { path: folder.to_path_buf(), source })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind =
            entry.file_type().map_err(|source| RepoError::Read { path: path.clone(), source })?;
        if kind.is_dir() && !name.starts_with('.') {
            collect(&path, paths)?;
        } else if kind.is_file() && is_manifest(&name) {
            paths.push(path);
        }
    }
    Ok(())
}
