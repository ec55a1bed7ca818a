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
        repo::read_directory(&repository.join(&spec.path))
    } else {
        repo::read_git(
            &repository,
            source.revision.as_deref().unwrap_or(&spec.revision),
            &spec.path,
        )
    };
    snapshot.map(|s| load_documents(&s.files).1).unwrap_or_default()
}

fn read_source(path: &Path) -> Result<SourceFile, Problem> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Problem::new("ferry::config::read", format!("cannot read {}: {error}", path.display())).help(
            "pass the plan file with -f (for example `-f promotion.example.yaml`) or create promotion.yaml",
        )
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
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
            repo::read_directory(&repository.join(&spec.path))?
        } else {
            let revision = source.revision.as_deref().unwrap_or(&spec.revision);
            repo::read_git(&repository, revision, &spec.path)?
        };
        let (resources, mut problems) = load_documents(&snapshot.files);
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
