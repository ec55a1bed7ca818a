//! `ferry import ENV [--out DIR] [--kinds …]`: the manifests of what runs in
//! an environment's org and GVC, one file per resource (`DIR/KIND/NAME.yaml`),
//! and a plan file skeleton when there is none (docs/adoption.md). Reading
//! goes through [`ControlPlane`], a bounded number of requests at a time;
//! the conversion is [`crate::import`]'s (pure); this module writes files.
//! With `--adopt`, what was imported is then put under Ferry's management:
//! a plan of [`crate::plan::adopt`] (the managed tag written where it is
//! missing, nothing else; a `pre-ferry` release), through the gates and
//! the executor any release goes through.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::Session;
use super::promote::Console;
use crate::api::{ApiError, ControlPlane, paths};
use crate::cli::{ImportArgs, OutputFormat};
use crate::config::{Environment, Topology};
use crate::diagnostic::{Problem, Problems, SourceFile};
use crate::import::{self, Imported, Scope, SecretValues, Skeleton};
use crate::manifest::{Kind, ResourceId, kept_secret};
use crate::promote::{Frontend, Options, Promoted};
use crate::{Error, ExitStatus, connect, inputs, output, plan, repo};

/// Version of `import --output json`.
pub const SCHEMA: &str = "ferry.import/v1";

/// Requests under way at once while reading an environment.
const CONCURRENCY: usize = 8;

/// Where the imported environment comes from and where its files go.
struct Target {
    env: Environment,
    /// The plan file's manifests folder (default output), if there is a plan file.
    manifests: Option<PathBuf>,
    /// The topology the skeleton names.
    topology: &'static str,
    /// Where the plan file skeleton is written, and the plan file's folder.
    skeleton: PathBuf,
    /// The environment as the plan file writes it (not pointed at `--sim`).
    written: Environment,
    /// gvc-per-env: every environment's GVC (the org-scoped resources are
    /// shared); empty otherwise.
    shared: Vec<String>,
}

pub(crate) fn run(
    session: &Session<'_>,
    env: &str,
    args: &ImportArgs,
) -> Result<ExitStatus, Error> {
    let values = if args.include_secret_values {
        if !std::io::stdin().is_terminal() {
            return Err(Problem::new(
                "ferry::import::secret-values",
                "--include-secret-values needs a terminal on stdin: secret values are not written from a script",
            )
            .help("run it yourself in a terminal, or import without it: each value is then a placeholder that keeps what the environment holds")
            .into());
        }
        SecretValues::Included
    } else {
        SecretValues::Placeholders
    };
    let target = target(session, env, args)?;
    let out = match (&args.out, &target.manifests) {
        (Some(out), _) => out.clone(),
        (None, Some(manifests)) => manifests.clone(),
        (None, None) => PathBuf::from("manifests"),
    };
    refuse_to_overwrite(&out, args.force)?;
    let template = template_gvc(target.manifests.as_deref()).unwrap_or(target.env.gvc.clone());
    let kinds = if args.kinds.is_empty() { Kind::ALL.to_vec() } else { args.kinds.clone() };
    let env = &target.env;
    let live = super::runtime()?.block_on(async {
        let client = connect::client(env)?;
        read(&client, env, &kinds).await.map_err(Error::from)
    })?;
    let scope = Scope { org: &env.org, gvc: &env.gvc, template: &template, shared: &target.shared };
    let mut imported: Vec<Imported> = Vec::new();
    let mut adoptable: Vec<(ResourceId, Value)> = Vec::new();
    let mut skipped: Vec<(ResourceId, String)> = Vec::new();
    for (kind, body) in live {
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
        let id = ResourceId::new(kind, name);
        match import::skipped(kind, &body, scope) {
            Some(why) => skipped.push((id, why)),
            None => {
                imported.push(import::manifest(kind, &body, scope, values));
                adoptable.push((id, body));
            }
        }
    }
    imported.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort();
    adoptable.sort_by(|a, b| a.0.cmp(&b.0));
    refuse_to_replace(&out, &imported)?;
    write_files(&out, &imported)?;
    let plan_file = write_skeleton(&target, &out)?;
    let json = session.global.output == OutputFormat::Json;
    if !json {
        output::print(&report(env, &out, &template, &imported, &skipped, plan_file.as_deref()))?;
    }
    // Files first: a refused adoption leaves them written.
    let console = Console::new(session);
    let adopted = args.adopt.then(|| {
        let shared = !target.shared.is_empty();
        super::runtime()?.block_on(adopt(session, env, shared, &adoptable, args, &console))
    });
    let (status, outcome) = match adopted {
        None => (Ok(ExitStatus::Success), None),
        Some(Ok(promoted)) => {
            if !json {
                output::print(&adopted_text(env, &promoted))?;
            }
            (Ok(ExitStatus::Success), Some(adopted_json(&promoted)))
        }
        Some(Err(error)) => (super::promote::blocked(error), Some(json!({"outcome": "refused"}))),
    };
    if json {
        let mut about = json!({
            "out": out.display().to_string(),
            "template": template,
            "written": imported.iter().map(|i| &i.path).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|(id, why)| json!({"id": id.to_string(), "why": why})).collect::<Vec<_>>(),
            "planFile": plan_file.as_ref().map(|p| p.display().to_string()),
        });
        if let Some(outcome) = outcome {
            about["adopt"] = outcome;
        }
        output::print(&super::json_about(SCHEMA, env, about))?;
    }
    status
}

/// `--adopt`: puts what was imported (`live`) under Ferry's management
/// with a plan of [`plan::adopt`], through the gates any release passes
/// (freeze, halt, approval) and the executor (lock, unmoved check, the
/// tag PATCHes, the `pre-ferry` release record).
async fn adopt(
    session: &Session<'_>,
    env: &Environment,
    shared: bool,
    live: &[(ResourceId, Value)],
    args: &ImportArgs,
    console: &Console,
) -> Result<Promoted, Error> {
    let client = connect::client(env)?;
    let digests =
        crate::observe::registry_digests(&client, &env.org, plan::adopt::lookups(env, live))
            .await?;
    let plan = plan::adopt::plan(plan::adopt::Inputs { env, shared, live, digests: &digests });
    console.plan(&plan);
    let options = Options {
        yes: args.yes,
        no_rollback: false,
        prune: false,
        lock_timeout: args.lock.lock_timeout,
        lock_ttl: args.lock.lock_ttl,
        sandbox: crate::promote::sandbox_exception(session.global.sim),
        during_freeze: false,
    };
    let Some(approval) = crate::promote::gates(&plan, &client, env, &options, console).await?
    else {
        return Ok(Promoted::UpToDate(Box::new(plan)));
    };
    crate::promote::execute_plan(plan, None, &client, env, &options, approval, console).await
}

fn adopted_text(env: &Environment, promoted: &Promoted) -> String {
    match promoted {
        Promoted::UpToDate(_) => format!(
            "Nothing to adopt: everything imported from {} already carries Ferry's managed tag\n",
            env.name
        ),
        Promoted::Released { plan, release } => format!(
            "Adopted {} in {} (only the `{}` tag written) and recorded release {} (pre-ferry): what {} runs, by digest\n",
            output::count(plan.summary.adopt, "resource"),
            env.name,
            plan::MANAGED_TAG,
            release.revision,
            env.name
        ),
    }
}

fn adopted_json(promoted: &Promoted) -> Value {
    match promoted {
        Promoted::UpToDate(plan) => json!({"outcome": "up-to-date", "plan": plan}),
        Promoted::Released { plan, release } => {
            json!({"outcome": "adopted", "plan": plan, "release": release})
        }
    }
}

/// The environment to import, from the plan file, or from `--org` and
/// `--gvc` when there is none (whose skeleton is then the plan file).
fn target(session: &Session<'_>, name: &str, args: &ImportArgs) -> Result<Target, Error> {
    let file = &session.global.file;
    let Some(org) = &args.org else {
        let workspace = session.workspace()?;
        let env = workspace.config.environment(name)?.clone();
        let as_written = inputs::workspace(file)?;
        let written = as_written.config.environment(name)?.clone();
        let spec = &workspace.config.manifests;
        let manifests = workspace.base.join(&spec.repository).join(&spec.path);
        let (topology, shared) = match workspace.config.topology {
            Topology::OrgPerEnv => ("org-per-env", Vec::new()),
            Topology::GvcPerEnv => (
                "gvc-per-env",
                workspace.config.environments.iter().map(|e| e.gvc.clone()).collect(),
            ),
        };
        return Ok(Target {
            env,
            written,
            manifests: Some(manifests),
            topology,
            skeleton: workspace.base.join("promotion.yaml"),
            shared,
        });
    };
    let gvc = args.gvc.as_deref().unwrap_or_default();
    if file.exists() {
        return Err(Problem::new(
            "ferry::import::plan-file-exists",
            format!("{} exists: --org and --gvc describe an environment only when there is no plan file", file.display()),
        )
        .help(format!("import an environment of {} by its name without --org and --gvc, or name a new plan file with -f (Ferry never writes over a plan file)", file.display()))
        .into());
    }
    let text = import::skeleton(&Skeleton {
        env: name,
        org,
        gvc,
        endpoint: args.endpoint.as_deref(),
        token_env: &args.token_env,
        topology: "org-per-env",
        manifests: "manifests",
    });
    let config = crate::config::parse(&SourceFile::new(file.display().to_string(), text))?;
    let env = config.environment(name)?.clone();
    Ok(Target {
        written: env.clone(),
        env,
        manifests: None,
        topology: "org-per-env",
        skeleton: file.clone(),
        shared: Vec::new(),
    })
}

/// Every live resource of `kinds` in `env`'s org and GVC, secrets with
/// their data (revealed, to learn their keys; the values are written only
/// with `--include-secret-values`). A kind the API cannot list here has
/// none.
async fn read<A: ControlPlane>(
    api: &A,
    env: &Environment,
    kinds: &[Kind],
) -> Result<Vec<(Kind, Value)>, ApiError> {
    let lists: Vec<Vec<(Kind, Value)>> = stream::iter(kinds.iter().copied())
        .map(|kind| async move {
            let path = paths::collection(&env.org, &env.gvc, kind);
            let items = match api.list(&path).await {
                Ok(items) => items,
                Err(error) if matches!(error.status(), Some(404 | 405)) => Vec::new(),
                Err(error) => return Err(error),
            };
            Ok(items.into_iter().map(|item| (kind, item)).collect())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    stream::iter(lists.into_iter().flatten())
        .map(|(kind, item)| async move {
            let name = item.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            if kind != Kind::Secret || name.is_empty() {
                return Ok((kind, item));
            }
            let revealed = crate::observe::fetch(api, env, &ResourceId::new(kind, name)).await?;
            Ok((kind, revealed.unwrap_or(item)))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

/// The manifests' template GVC (`manifest::template`, as render takes it).
/// `None` when there are no manifests, or they name none or several.
fn template_gvc(manifests: Option<&Path>) -> Option<String> {
    let folder = manifests.filter(|m| m.is_dir())?;
    let snapshot = repo::read_directory(&repo::root(folder), folder).ok()?;
    let (resources, _) = crate::manifest::load_documents(&snapshot.files);
    let set = crate::manifest::ManifestSet { resources };
    crate::manifest::template::template(&set).name().map(str::to_owned)
}

/// Refuses to write into a folder that already holds files, unless
/// `--force`: imported files would mix with, or replace, what is there.
fn refuse_to_overwrite(out: &Path, force: bool) -> Result<(), Problem> {
    let holds_files = std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some());
    if holds_files && !force {
        return Err(Problem::new(
            "ferry::import::out-not-empty",
            format!("{} already holds files; nothing was imported", out.display()),
        )
        .help("pass --out with a new folder, or --force to write over the files an earlier `ferry import` wrote (never over others)"));
    }
    Ok(())
}

/// Refuses, before anything is written, to write over a file that
/// `ferry import` did not write (it lacks [`import::WRITTEN_BY_IMPORT`]):
/// `--force` replaces only imported files.
fn refuse_to_replace(out: &Path, imported: &[Imported]) -> Result<(), Problems> {
    let mut problems = Problems::default();
    for file in imported {
        let path = out.join(&file.path);
        if !path.exists() && path.symlink_metadata().is_err() {
            continue;
        }
        let ours = crate::input_file::read(&path)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .is_some_and(|text| import::written_by_import(&text));
        if !ours {
            problems.push(
                Problem::new(
                    "ferry::import::not-ours",
                    format!("{} was not written by `ferry import`; nothing was imported", path.display()),
                )
                .help("move it away or pass --out with a new folder: --force replaces only files whose first line says `ferry import` wrote them"),
            );
        }
    }
    problems.into_result(())
}

fn write_files(out: &Path, imported: &[Imported]) -> Result<(), Problems> {
    let mut problems = Problems::default();
    for file in imported {
        let path = out.join(&file.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &file.text));
        if let Err(error) = written {
            problems.push(Problem::new(
                "ferry::import::write",
                format!("cannot write {}: {error}", path.display()),
            ));
        }
    }
    problems.into_result(())
}

/// Writes the plan file skeleton unless a plan file is there: one is never
/// written over, `--force` or not (its environments, approval rules and
/// overrides are a person's work). The path written, if any.
fn write_skeleton(target: &Target, out: &Path) -> Result<Option<PathBuf>, Problem> {
    if target.skeleton.exists() || target.skeleton.symlink_metadata().is_ok() {
        return Ok(None);
    }
    let folder = target
        .skeleton
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let manifests = relative(out, &folder);
    let env = &target.written;
    let text = import::skeleton(&Skeleton {
        env: &env.name,
        org: &env.org,
        gvc: &env.gvc,
        endpoint: env.endpoint.as_deref(),
        token_env: &env.token_env,
        topology: target.topology,
        manifests: &manifests,
    });
    std::fs::write(&target.skeleton, text).map_err(|error| {
        Problem::new(
            "ferry::import::write",
            format!("cannot write {}: {error}", target.skeleton.display()),
        )
    })?;
    Ok(Some(target.skeleton.clone()))
}

/// `path` relative to `base` when it lies inside it, else as absolute.
fn relative(path: &Path, base: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, base) = (absolute(path), absolute(base));
    let shown = path.strip_prefix(&base).map_or(path.as_path(), |p| p);
    let text = shown.display().to_string();
    if text.is_empty() { ".".to_owned() } else { text }
}

fn report(
    env: &Environment,
    out: &Path,
    template: &str,
    imported: &[Imported],
    skipped: &[(ResourceId, String)],
    plan_file: Option<&Path>,
) -> String {
    let mut text = format!(
        "Imported {} of {} (org {}, GVC {} written as {template}) into {}\n",
        output::count(imported.len(), "resource"),
        env.name,
        env.org,
        env.gvc,
        out.display()
    );
    for file in imported {
        text.push_str(&format!("  {}\n", file.path));
    }
    let kept = imported.iter().filter(|i| i.kind == Kind::Secret).count();
    if kept > 0 && imported.iter().any(|i| i.text.contains(kept_secret::KEEP_LIVE)) {
        text.push_str(&format!(
            "{} written with their keys only: each value is `{}`, which keeps what {} holds (see the comment in each file)\n",
            output::count(kept, "secret"),
            kept_secret::KEEP_LIVE,
            env.name
        ));
    }
    if !skipped.is_empty() {
        text.push_str(&format!("Not imported ({}):\n", skipped.len()));
        for (id, why) in skipped {
            text.push_str(&format!("  {id}: {why}\n"));
        }
    }
    if let Some(plan_file) = plan_file {
        text.push_str(&format!("Wrote the plan file {}\n", plan_file.display()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{Fake, Verb};

    fn env() -> Environment {
        let text = "manifests: {path: m}\ntopology: org-per-env\nenvironments:\n  - {name: prod, org: acme, gvc: app, tokenEnv: T}\n";
        crate::config::parse(&SourceFile::new("p.yaml", text))
            .unwrap_or_else(|e| panic!("{e:?}"))
            .environments
            .remove(0)
    }

    #[tokio::test]
    async fn every_kind_is_listed_and_each_secret_revealed() {
        let fake = Fake::new();
        fake.seed("/org/acme/gvc/app", json!({"kind": "gvc", "name": "app"}));
        fake.seed(
            "/org/acme/gvc/app/workload/api",
            json!({"kind": "workload", "name": "api", "spec": {}}),
        );
        fake.seed(
            "/org/acme/secret/db",
            json!({"kind": "secret", "name": "db", "type": "opaque", "data": {"payload": "p"}}),
        );
        let live = read(&fake, &env(), &Kind::ALL).await.unwrap_or_else(|e| panic!("{e}"));
        let mut names: Vec<String> = live
            .iter()
            .map(|(k, b)| format!("{k}/{}", b["name"].as_str().unwrap_or("?")))
            .collect();
        names.sort();
        assert_eq!(names, ["gvc/app", "secret/db", "workload/api"]);
        assert_eq!(fake.count(Verb::Get, "/org/acme/secret/db/-reveal"), 1);
        let lists = fake.calls().iter().filter(|c| c.verb == Verb::List).count();
        assert_eq!(lists, Kind::ALL.len(), "one list per kind");
    }
}
