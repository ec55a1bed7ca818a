//! Reads manifest files from git at a revision (git2; the work tree is
//! never read or changed, bare repositories work) or from a directory.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

use crate::diagnostic::{Problem, Problems, SourceFile};
use crate::input_file::{Admit, TotalBudget};

/// The files of one revision (or of the work tree).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` when read from the work tree.
    pub revision: Option<Revision>,
    /// Every `*.yaml` / `*.yml` file, sorted by path.
    pub files: Vec<SourceFile>,
    /// Files that could not be read (not UTF-8, a symbolic link that
    /// leaves the repository, …): reported with the manifests' own
    /// problems, in the same run.
    pub problems: Problems,
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

    #[error("the manifests folder `{path}` at revision {revision} cannot be read: {reason}")]
    #[diagnostic(code(ferry::repo::link), help("link `manifests.path` inside the repository"))]
    FolderLink { path: String, revision: String, reason: String },

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

/// How many symbolic links one path may go through, as Linux allows
/// (`ELOOP` beyond); past it the links go round in a loop.
const MAX_LINKS: usize = 40;

/// Why a symbolic link in the manifests folder cannot be read.
enum LinkProblem {
    /// The target is an absolute path, or climbs out of the repository.
    Outside,
    /// Nothing exists at the target.
    Dangling,
    /// The links go round (more than [`MAX_LINKS`]), or a folder links to
    /// one that contains it.
    Loop,
    /// Anything else the file system or git answered.
    Other(String),
}

/// The problem for the link shown as `shown`, pointing at `target` (as
/// written in the link).
fn link_problem(shown: &str, target: &str, problem: LinkProblem) -> Problem {
    let (message, help) = match problem {
        LinkProblem::Outside => (
            format!("{shown} is a symbolic link to `{target}`, outside the repository"),
            "Ferry reads only what the repository holds, so that a revision always means the same manifests; copy the file into the repository, or link to a path inside it (a relative link)",
        ),
        LinkProblem::Dangling => (
            format!("{shown} is a symbolic link to `{target}`, which does not exist"),
            "fix or remove the link",
        ),
        LinkProblem::Loop => (
            format!("{shown} is a symbolic link to `{target}`, which leads back to itself"),
            "a link must not point at a folder that contains it, nor go round through other links",
        ),
        LinkProblem::Other(reason) => (
            format!("{shown} is a symbolic link to `{target}` that cannot be followed: {reason}"),
            "fix or remove the link",
        ),
    };
    Problem::new("ferry::repo::link", message).help(help)
}

/// `parent/name`, or `name` at the top.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_owned() } else { format!("{parent}/{name}") }
}

/// The root of the repository `folder` belongs to: the work tree of the git
/// repository holding it, else `folder` itself (a plain folder read with
/// `--worktree`, or a bare repository). Symbolic links and override files
/// must stay inside it.
pub fn root(folder: &Path) -> PathBuf {
    git2::Repository::discover(folder)
        .ok()
        .and_then(|repo| repo.workdir().map(Path::to_path_buf))
        .unwrap_or_else(|| folder.to_path_buf())
}

/// Reads the manifests under `path` at `revision`. `path` is relative to
/// `repository` (which may be a folder inside the repository's work tree,
/// or a bare repository). Symbolic links are followed inside the commit's
/// tree; one that leaves it, dangles or loops is a problem.
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
    let folder = if folder == "." { "" } else { folder };
    let short = resolved.short().to_owned();
    let mut reader = GitReader {
        repo: &repo,
        root: &root,
        short: short.clone(),
        found: std::collections::BTreeMap::new(),
        problems: Problems::default(),
    };
    let (real, object) = match reader.resolve(Vec::new(), folder) {
        Ok(found) => found,
        Err(LinkProblem::Dangling) => {
            return Err(RepoError::MissingPath { path: folder.to_owned(), revision: short });
        }
        Err(problem) => {
            let reason = match problem {
                LinkProblem::Outside => "it is a symbolic link out of the repository".to_owned(),
                LinkProblem::Loop => "its symbolic links go round in a loop".to_owned(),
                LinkProblem::Other(reason) => reason,
                LinkProblem::Dangling => String::new(),
            };
            return Err(RepoError::FolderLink { path: folder.to_owned(), revision: short, reason });
        }
    };
    let tree = object
        .into_tree()
        .map_err(|_| RepoError::NotAFolder { path: folder.to_owned(), revision: short.clone() })?;
    reader.walk(&tree, &real, folder, &mut Vec::new())?;
    let GitReader { found, mut problems, .. } = reader;
    let mut found: Vec<(String, git2::Oid)> = found.into_values().collect();
    found.sort();
    let mut files = Vec::with_capacity(found.len());
    let mut budget = TotalBudget::default();
    for (shown, id) in found {
        let display = format!("{short}:{shown}");
        let blob = repo
            .find_blob(id)
            .map_err(|source| RepoError::Git { what: display.clone(), source })?;
        match budget.admit(&display, blob.size() as u64, &mut problems) {
            Admit::Read => {}
            Admit::Skip => continue,
            Admit::Stop => {
                // A set over the total is refused whole: none of it is parsed.
                files.clear();
                break;
            }
        }
        match SourceFile::decode(display, Some(resolved.commit.clone()), blob.content().to_vec()) {
            Ok(file) => files.push(file),
            Err(problem) => problems.push(problem),
        }
    }
    Ok(Snapshot { revision: Some(resolved), files, problems })
}

const GIT_LINK_MODE: i32 = 0o120_000;

/// Walks a commit's tree, following symbolic links inside it.
struct GitReader<'r> {
    repo: &'r git2::Repository,
    root: &'r git2::Tree<'r>,
    short: String,
    /// Manifest files by their real path in the tree: (path as shown, blob).
    /// A file reached by several paths is read once.
    found: std::collections::BTreeMap<String, (String, git2::Oid)>,
    problems: Problems,
}

impl<'r> GitReader<'r> {
    /// Reads `tree` (at `real` in the commit, shown as `shown`); `walking`
    /// holds the real paths of the folders being read, to catch a link to
    /// one of them.
    fn walk(
        &mut self,
        tree: &git2::Tree<'_>,
        real: &str,
        shown: &str,
        walking: &mut Vec<String>,
    ) -> Result<(), RepoError> {
        walking.push(real.to_owned());
        for entry in tree {
            let Some(name) = entry.name() else { continue };
            let (real, shown) = (join(real, name), join(shown, name));
            let object = |entry: &git2::TreeEntry<'_>| {
                entry.to_object(self.repo).map_err(|source| RepoError::Git {
                    what: format!("{}:{shown}", self.short),
                    source,
                })
            };
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    let object = object(&entry)?;
                    if let Some(tree) = object.as_tree() {
                        self.walk(tree, &real, &shown, walking)?;
                    }
                }
                Some(git2::ObjectType::Blob) if entry.filemode() == GIT_LINK_MODE => {
                    let target = self.link_target(entry.id());
                    let parent = real.rsplit_once('/').map_or("", |(parent, _)| parent);
                    let components = parent.split('/').filter(|c| !c.is_empty()).map(str::to_owned);
                    let resolved = self.resolve(components.collect(), &target);
                    let display = format!("{}:{shown}", self.short);
                    match resolved {
                        Ok((to, object)) => match object.into_tree() {
                            Ok(tree) => {
                                let inside = |folder: &String| {
                                    to.is_empty()
                                        || *folder == to
                                        || folder.starts_with(&format!("{to}/"))
                                };
                                if walking.iter().any(inside) {
                                    self.problems.push(link_problem(
                                        &display,
                                        &target,
                                        LinkProblem::Loop,
                                    ));
                                } else {
                                    self.walk(&tree, &to, &shown, walking)?;
                                }
                            }
                            Err(object) => {
                                if object.kind() == Some(git2::ObjectType::Blob)
                                    && is_manifest(name)
                                {
                                    self.add(to, shown, object.id());
                                }
                            }
                        },
                        Err(problem) => {
                            self.problems.push(link_problem(&display, &target, problem));
                        }
                    }
                }
                Some(git2::ObjectType::Blob) if is_manifest(name) => {
                    self.add(real, shown, entry.id());
                }
                _ => {}
            }
        }
        walking.pop();
        Ok(())
    }

    /// Keeps one path per file: the file's own path when the folder shows
    /// it, else the first link that leads to it.
    fn add(&mut self, real: String, shown: String, id: git2::Oid) {
        let own = real == shown;
        match self.found.get(&real) {
            Some((already, _)) if *already == real || !own => {}
            _ => {
                self.found.insert(real, (shown, id));
            }
        }
    }

    /// What a link blob says (its target path).
    fn link_target(&self, id: git2::Oid) -> String {
        self.repo
            .find_blob(id)
            .map(|blob| String::from_utf8_lossy(blob.content()).into_owned())
            .unwrap_or_default()
    }

    /// Follows `path` from the folder `from` (components from the root) the
    /// way the file system would, links included: the real path reached
    /// and what is there.
    fn resolve(
        &self,
        from: Vec<String>,
        path: &str,
    ) -> Result<(String, git2::Object<'r>), LinkProblem> {
        if path.starts_with('/') {
            return Err(LinkProblem::Outside);
        }
        let mut done = from;
        let mut todo: std::collections::VecDeque<String> =
            path.split('/').map(str::to_owned).collect();
        let mut links = 0;
        let mut object = self.root.as_object().clone();
        while let Some(component) = todo.pop_front() {
            match component.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop().ok_or(LinkProblem::Outside)?;
                    object = self.object_at(&done)?;
                    continue;
                }
                _ => done.push(component),
            }
            let entry = self
                .root
                .get_path(Path::new(&done.join("/")))
                .map_err(|_| LinkProblem::Dangling)?;
            if entry.filemode() == GIT_LINK_MODE {
                links += 1;
                if links > MAX_LINKS {
                    return Err(LinkProblem::Loop);
                }
                let target = self.link_target(entry.id());
                if target.starts_with('/') {
                    return Err(LinkProblem::Outside);
                }
                done.pop();
                for part in target.split('/').rev() {
                    todo.push_front(part.to_owned());
                }
                object = self.object_at(&done)?;
                continue;
            }
            object = entry.to_object(self.repo).map_err(|e| LinkProblem::Other(e.to_string()))?;
        }
        Ok((done.join("/"), object))
    }

    /// The object at a real path (the root for none).
    fn object_at(&self, path: &[String]) -> Result<git2::Object<'r>, LinkProblem> {
        if path.is_empty() {
            return Ok(self.root.as_object().clone());
        }
        let entry =
            self.root.get_path(Path::new(&path.join("/"))).map_err(|_| LinkProblem::Dangling)?;
        entry.to_object(self.repo).map_err(|e| LinkProblem::Other(e.to_string()))
    }
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
/// Symbolic links are followed while they stay inside `root` (the
/// repository); one that leaves it, dangles or loops is a problem.
pub fn read_directory(root: &Path, folder: &Path) -> Result<Snapshot, RepoError> {
    let canonical = |path: &Path| {
        path.canonicalize().map_err(|source| RepoError::Read { path: path.to_path_buf(), source })
    };
    let root = canonical(root)?;
    let real = canonical(folder)?;
    let mut walk = DirectoryWalk {
        root,
        found: std::collections::BTreeMap::new(),
        problems: Problems::default(),
    };
    if !real.starts_with(&walk.root) {
        return Err(RepoError::FolderLink {
            path: folder.display().to_string(),
            revision: "the work tree".to_owned(),
            reason: "it is a symbolic link out of the repository".to_owned(),
        });
    }
    walk.collect(&real, folder, &mut Vec::new())?;
    let DirectoryWalk { found, mut problems, .. } = walk;
    let mut paths: Vec<(PathBuf, PathBuf)> =
        found.into_values().map(|(shown, real, _)| (shown, real)).collect();
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    let mut budget = TotalBudget::default();
    for (shown, real) in paths {
        let bytes = match crate::input_file::read(&real) {
            Ok(bytes) => bytes,
            Err(crate::input_file::InputFileError::Io(source)) => {
                return Err(RepoError::Read { path: shown.clone(), source });
            }
            Err(error) => {
                problems.push(Problem::new(
                    "ferry::input::not-read",
                    format!("cannot read {}: {error}", shown.display()),
                ));
                continue;
            }
        };
        match budget.admit(&shown.display().to_string(), bytes.len() as u64, &mut problems) {
            Admit::Read => {}
            Admit::Skip => continue,
            Admit::Stop => {
                // A set over the total is refused whole: none of it is parsed.
                files.clear();
                break;
            }
        }
        match SourceFile::decode(shown.display().to_string(), None, bytes) {
            Ok(file) => files.push(file),
            Err(problem) => problems.push(problem),
        }
    }
    Ok(Snapshot { revision: None, files, problems })
}

/// Walks a folder of the file system, following symbolic links inside
/// the repository.
struct DirectoryWalk {
    /// The repository's root, canonical.
    root: PathBuf,
    /// Manifest files by their canonical path: (path as shown, canonical
    /// path, read by its own path rather than through a link). A file
    /// reached by several paths is read once.
    found: std::collections::BTreeMap<PathBuf, (PathBuf, PathBuf, bool)>,
    problems: Problems,
}

impl DirectoryWalk {
    fn collect(
        &mut self,
        real: &Path,
        shown: &Path,
        walking: &mut Vec<PathBuf>,
    ) -> Result<(), RepoError> {
        walking.push(real.to_path_buf());
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(real)
            .map_err(|source| RepoError::Read { path: shown.to_path_buf(), source })?
        {
            let entry =
                entry.map_err(|source| RepoError::Read { path: shown.to_path_buf(), source })?;
            let kind = entry
                .file_type()
                .map_err(|source| RepoError::Read { path: entry.path(), source })?;
            entries.push((entry.file_name().to_string_lossy().into_owned(), kind));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in entries {
            let (real, shown) = (real.join(&name), shown.join(&name));
            if kind.is_dir() && !name.starts_with('.') {
                self.collect(&real, &shown, walking)?;
            } else if kind.is_file() && is_manifest(&name) {
                self.add(real, shown, true);
            } else if kind.is_symlink() {
                self.follow(&real, shown, &name, walking)?;
            } else if !kind.is_dir() && is_manifest(&name) {
                self.problems.push(Problem::new(
                    "ferry::input::not-read",
                    format!("cannot read {}: it is not a regular file", shown.display()),
                ));
            }
        }
        walking.pop();
        Ok(())
    }

    fn follow(
        &mut self,
        link: &Path,
        shown: PathBuf,
        name: &str,
        walking: &mut Vec<PathBuf>,
    ) -> Result<(), RepoError> {
        let target =
            std::fs::read_link(link).map_or_else(|_| String::new(), |t| t.display().to_string());
        let display = shown.display().to_string();
        let to = match link.canonicalize() {
            Ok(to) => to,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.problems.push(link_problem(&display, &target, LinkProblem::Dangling));
                return Ok(());
            }
            Err(error) => {
                let problem = if error.raw_os_error() == Some(ELOOP) {
                    LinkProblem::Loop
                } else {
                    LinkProblem::Other(error.to_string())
                };
                self.problems.push(link_problem(&display, &target, problem));
                return Ok(());
            }
        };
        if !to.starts_with(&self.root) {
            self.problems.push(link_problem(&display, &target, LinkProblem::Outside));
        } else if to.is_dir() {
            if walking.iter().any(|folder| folder.starts_with(&to)) {
                self.problems.push(link_problem(&display, &target, LinkProblem::Loop));
            } else if !name.starts_with('.') {
                self.collect(&to, &shown, walking)?;
            }
        } else if is_manifest(name) {
            self.add(to, shown, false);
        }
        Ok(())
    }

    /// Keeps one path per file: the file's own path when the folder shows
    /// it, else the first link that leads to it.
    fn add(&mut self, real: PathBuf, shown: PathBuf, own: bool) {
        match self.found.get(&real) {
            Some((_, _, already_own)) if *already_own || !own => {}
            _ => {
                self.found.insert(real.clone(), (shown, real, own));
            }
        }
    }
}

/// "Too many levels of symbolic links" on Linux.
const ELOOP: i32 = 40;
