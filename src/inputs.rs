//! Gathers what a command works on: the plan file, its override files and
//! the manifests at a revision. This is where the pure core meets the file
//! system and git.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::cli::SourceArgs;
use crate::config::{self, Environment, OverrideSource, Patch, PromotionConfig};
use crate::diagnostic::{Location, Problem, Problems, SourceFile};
use crate::manifest::{ManifestSet, load_documents};
use crate::repo::{self, Revision};

/// The plan file, read and checked, and where its relative paths start.
pub struct Workspace {
    pub config: PromotionConfig,
    /// The folder relative paths in the plan file start from.
    pub base: PathBuf,
}

/// Reads and checks the plan file at `path`.
pub fn workspace(path: &Path) -> Result<Workspace, Error> {
    let source = read_source(path)?;
    let config = config::parse(&source)?;
    Ok(Workspace { config, base: base_of(path) })
}

fn base_of(plan_file: &Path) -> PathBuf {
    plan_file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The problems of the manifests alone, for a run whose plan file is
/// broken: they are reported together with the plan file's problems.
pub fn manifest_problems(plan_file: &Path, source: &SourceArgs) -> Problems {
    let Some(spec) = read_source(plan_file).ok().and_then(|s| config::manifest_source_lenient(&s))
    else {
        return Problems::default();
    };
    let repository = base_of(plan_file).join(&spec.repository);
    let snapshot = if source.worktree {
        repo::read_directory(&repo::root(&repository), &repository.join(&spec.path))
    } else {
        repo::read_git(
            &repository,
            source.revision.as_deref().unwrap_or(&spec.revision),
            &spec.path,
        )
    };
    snapshot
        .map(|s| {
            let mut problems = s.problems;
            problems.extend(load_documents(&s.files).1);
            problems
        })
        .unwrap_or_default()
}

fn read_source(path: &Path) -> Result<SourceFile, Problem> {
    let bytes = crate::input_file::read(path).map_err(|error| {
        Problem::new("ferry::config::read", format!("cannot read {}: {error}", path.display())).help(
            "pass the plan file with -f (for example `-f promotion.example.yaml`) or create promotion.yaml",
        )
    })?;
    SourceFile::decode(path.display().to_string(), None, bytes)
}

/// One environment's inputs, checked.
pub struct Prepared {
    pub env: Environment,
    pub manifests: Manifests,
    pub patches: Vec<Patch>,
    pub graph: crate::graph::Graph,
}

/// Manifests and the revision they were read at.
pub struct Manifests {
    pub set: ManifestSet,
    pub revision: Option<Revision>,
}

impl Workspace {
    /// The manifests at the requested revision (or the work tree). Problems
    /// in individual documents are returned with the resources that could
    /// be read, so that they are reported together with later checks.
    pub fn manifests(&self, source: &SourceArgs) -> Result<(Manifests, Problems), Error> {
        let spec = &self.config.manifests;
        let repository = self.base.join(&spec.repository);
        let snapshot = if source.worktree {
            repo::read_directory(&repo::root(&repository), &repository.join(&spec.path))?
        } else {
            let revision = source.revision.as_deref().unwrap_or(&spec.revision);
            repo::read_git(&repository, revision, &spec.path)?
        };
        let (resources, found) = load_documents(&snapshot.files);
        let mut problems = snapshot.problems;
        problems.extend(found);
        if resources.is_empty() && !problems.has_errors() {
            let at = snapshot.revision.as_ref().map_or_else(
                || "the work tree".to_owned(),
                |r| format!("{} ({})", r.requested, r.short()),
            );
            problems.push(crate::validate::no_resources(spec, &at));
        }
        Ok((Manifests { set: ManifestSet { resources }, revision: snapshot.revision }, problems))
    }

    /// Everything needed to plan for `env`: its manifests (valid), their
    /// overrides and graph. Any problem stops here, before the network.
    pub fn prepare(&self, env: &str, source: &SourceArgs) -> Result<Prepared, Error> {
        let env = self.config.environment(env)?.clone();
        let (manifests, mut problems) = self.manifests(source)?;
        problems.extend(crate::validate::check(&manifests.set, &self.config, &env));
        let patches = match self.overrides(&env) {
            Ok(patches) => patches,
            Err(found) => {
                problems.extend(found);
                Vec::new()
            }
        };
        let graph = crate::graph::build(&manifests.set, &self.config.ordering);
        if let Err(cycle) = &graph {
            problems.push(cycle.clone());
        }
        if !problems.has_errors() {
            crate::output::warnings(&problems.take_warnings());
        }
        match graph {
            Ok(graph) if problems.is_empty() => Ok(Prepared { env, manifests, patches, graph }),
            _ => Err(problems.into()),
        }
    }

    /// Every patch an environment applies, with files read from disk
    /// (relative to the plan file).
    pub fn overrides(&self, env: &Environment) -> Result<Vec<Patch>, Problems> {
        let mut patches = Vec::new();
        let mut problems = Problems::default();
        for item in &env.overrides {
            match item {
                OverrideSource::Inline(patch) => patches.push(patch.clone()),
                OverrideSource::File { path, location } => match self.read_override(path, location)
                {
                    Ok(source) => match config::parse_patch_file(&source) {
                        Ok(found) => patches.extend(found),
                        Err(found) => problems.extend(found),
                    },
                    Err(problem) => problems.push(problem),
                },
            }
        }
        problems.into_result(patches)
    }

    /// An override file's text. Its path must stay inside the repository
    /// that holds the plan file (its work tree; the plan file's folder
    /// when that is not in git), written or through symbolic links: what
    /// is applied to an environment is what the repository says.
    fn read_override(&self, path: &str, location: &Location) -> Result<SourceFile, Problem> {
        let full = self.base.join(path);
        let shown = full.display().to_string();
        let escapes = || {
            Problem::new(
                "ferry::config::override-outside",
                format!("override file {path} is outside the repository"),
            )
            .at(location.clone(), "outside the repository")
            .help(
                "keep override files in the repository, next to the plan file (paths are relative to it; `..` may not leave the repository, and neither may a symbolic link)",
            )
        };
        // `-f promotion.yaml` has an empty folder: the current one.
        let base = if self.base.as_os_str().is_empty() { Path::new(".") } else { &self.base };
        let root = repo::root(base).canonicalize();
        let inside = |candidate: &Path| match &root {
            Ok(root) => candidate.starts_with(root),
            Err(_) => true,
        };
        let written = base.canonicalize().map(|base| lexical(&base.join(path)));
        if written.as_ref().is_ok_and(|written| !inside(written)) {
            return Err(escapes());
        }
        match full.canonicalize() {
            Ok(real) if !inside(&real) => return Err(escapes()),
            _ => {}
        }
        let bytes = crate::input_file::read(&full).map_err(|error| {
            Problem::new(
                "ferry::config::override-file",
                format!("cannot read override file {shown}: {error}"),
            )
            .at(location.clone(), "named here")
            .help("override files are read relative to the plan file")
        })?;
        SourceFile::decode(shown, None, bytes)
    }
}

/// `path` with `.` and `..` taken away lexically (symbolic links are not
/// followed; `..` at the root stays at the root).
fn lexical(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}
