//! Gathers what a command works on: the plan file, its override files and
//! the manifests at a revision. This is where the pure core meets the file
//! system and git.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::cli::SourceArgs;
use crate::config::{self, Environment, OverrideSource, Patch, PromotionConfig};
use crate::diagnostic::{Problem, Problems, SourceFile};
use crate::manifest::{ManifestSet, load_documents};
use crate::repo::{self, Revision};

/// The plan file, read and checked.
pub struct Plan {
    pub config: PromotionConfig,
    /// The folder relative paths in the plan file start from.
    pub base: PathBuf,
}

/// Reads and checks the plan file at `path`.
pub fn plan_file(path: &Path) -> Result<Plan, Error> {
    let source = read_source(path)?;
    let config = config::parse(&source)?;
    let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Plan { config, base })
}

fn read_source(path: &Path) -> Result<SourceFile, Problem> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Problem::new("ferry::config::read", format!("cannot read {}: {error}", path.display())).help(
            "pass the plan file with -f (for example `-f promotion.example.yaml`) or create promotion.yaml",
        )
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// Manifests and the revision they were read at.
pub struct Manifests {
    pub set: ManifestSet,
    pub revision: Option<Revision>,
}

impl Plan {
    /// The manifests at the requested revision (or the work tree). Problems
    /// in individual documents are returned with the resources that could
    /// be read, so that they are reported together with later checks.
    pub fn manifests(&self, source: &SourceArgs) -> Result<(Manifests, Problems), Error> {
        let spec = &self.config.manifests;
        let repository = self.base.join(&spec.repository);
        let snapshot = if source.worktree {
            let folder = repo_workdir(&repository).join(&spec.path);
            repo::read_directory(&folder)?
        } else {
            let revision = source.revision.as_deref().unwrap_or(&spec.revision);
            repo::read_git(&repository, revision, &spec.path)?
        };
        let (resources, problems) = load_documents(&snapshot.files);
        Ok((Manifests { set: ManifestSet { resources }, revision: snapshot.revision }, problems))
    }

    /// Every patch an environment applies, with files read from disk
    /// (relative to the plan file).
    pub fn overrides(&self, env: &Environment) -> Result<Vec<Patch>, Problems> {
        let mut patches = Vec::new();
        let mut problems = Problems::default();
        for item in &env.overrides {
            match item {
                OverrideSource::Inline(patch) => patches.push(patch.clone()),
                OverrideSource::File { path, location } => {
                    let full = self.base.join(path);
                    match std::fs::read_to_string(&full) {
                        Ok(text) => match config::parse_patch_file(&SourceFile::new(
                            full.display().to_string(),
                            text,
                        )) {
                            Ok(found) => patches.extend(found),
                            Err(found) => problems.extend(found),
                        },
                        Err(error) => problems.push(
                            Problem::new(
                                "ferry::config::override-file",
                                format!("cannot read override file {}: {error}", full.display()),
                            )
                            .at(location.clone(), "named here")
                            .help("override files are read relative to the plan file"),
                        ),
                    }
                }
            }
        }
        problems.into_result(patches)
    }
}

/// The work tree of the repository at `path`, or `path` itself when it is
/// not in a git repository.
fn repo_workdir(path: &Path) -> PathBuf {
    git2::Repository::discover(path)
        .ok()
        .and_then(|repo| repo.workdir().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}
