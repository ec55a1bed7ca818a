//! The embedded simulator's first use (`--sim`), and `ferry sim reset`,
//! which starts over.
//!
//! The first use sets up only what the command being run needs, and says
//! so, one line per environment: the demo images the manifests name, in
//! the registry of the environment that deploys from git (as CI would have
//! pushed them), and a release into the environment the command promotes
//! from, and into each one before it. Nothing else: a first `ferry deploy
//! dev --sim` deploys into an empty dev, as the quickstart says.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use super::Session;
use super::promote::Console;
use crate::cli::{OutputFormat, SourceArgs};
use crate::config::{Environment, PromotionConfig};
use crate::manifest::Kind;
use crate::promote::{Options, Promoted};
use crate::promotion_plan::Promotion;
use crate::sim::embedded::{self, FIRST_USE_MARKER};
use crate::{Error, ExitStatus, connect, output, plan};

/// Version of `sim reset --output json`.
pub const SCHEMA: &str = "ferry.sim-reset/v1";

/// What the command being run needs of the simulator on its first use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FirstUse {
    /// The environment the command releases into, or plans for.
    pub target: Option<String>,
    /// Where what it releases comes from.
    pub from: Origin,
}

/// Where a command's release comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Origin {
    /// git: no environment needs a release.
    #[default]
    Git,
    /// This environment's live state: it needs a release, and so does
    /// every environment it is promoted from.
    Env(String),
    /// The target's source in the plan file, if it has one.
    Configured,
}

impl FirstUse {
    /// A command that releases into (or plans for) `target` from `from`.
    pub fn of(target: &str, from: Origin) -> Self {
        Self { target: Some(target.to_owned()), from }
    }
}

/// What the first use sets up: demo images in one environment's registry,
/// and a release into each environment of `chain`, in order (the first
/// from git, each next one promoted from the one before).
#[derive(Debug)]
struct Setup<'a> {
    images_into: &'a Environment,
    chain: Vec<&'a Environment>,
    target: Option<&'a Environment>,
}

impl<'a> Setup<'a> {
    /// `None` when the command names an environment the plan file does not
    /// declare (the command itself says so), or the file declares none.
    fn of(config: &'a PromotionConfig, first_use: &FirstUse) -> Option<Self> {
        let target = match &first_use.target {
            Some(name) => Some(config.environment(name).ok()?),
            None => None,
        };
        let source = match &first_use.from {
            Origin::Git => None,
            Origin::Env(name) => Some(config.environment(name).ok()?),
            Origin::Configured => target.and_then(|t| config.source_of(t)),
        };
        let mut chain: Vec<&Environment> = Vec::new();
        let mut next = source;
        while let Some(env) = next {
            if chain.iter().any(|e| e.name == env.name) {
                // A loop of `from`s: the plan file's own check says so.
                return None;
            }
            chain.push(env);
            next = config.source_of(env);
        }
        chain.reverse();
        let images_into = chain
            .first()
            .copied()
            .or(target.filter(|_| source.is_none()))
            .or(config.environments.first())?;
        Some(Setup { images_into, chain, target })
    }

    /// What the first use did in `env`, and why, on one line. `images`:
    /// the demo images pushed into `images_into`'s registry; `made`: the
    /// release it made there, if it made one.
    fn line(
        &self,
        config: &PromotionConfig,
        env: &Environment,
        images: &[String],
        made: Option<&str>,
    ) -> String {
        let mut parts = Vec::new();
        if env.name == self.images_into.name && !images.is_empty() {
            parts.push(format!(
                "{} pushed to its registry ({}), the tags the manifests name, as CI would have pushed them",
                output::count(images.len(), "demo image"),
                images.join(", ")
            ));
        }
        let position = self.chain.iter().position(|e| e.name == env.name);
        let nothing = if parts.is_empty() { "nothing set up" } else { "nothing deployed" };
        match (position, made) {
            (Some(index), Some(made)) => {
                let next = self.chain.get(index + 1).copied().or(self.target);
                let next = next.map_or_else(|| "it".to_owned(), |n| n.name.clone());
                parts.push(format!("{made}, so that {next} has a release to promote from"));
            }
            _ if self.target.is_some_and(|t| t.name == env.name) => {
                parts.push(format!("{nothing}: left for your command"));
            }
            _ => {
                let first = match config.source_of(env) {
                    None => format!("`ferry deploy {}`", env.name),
                    Some(source) => format!("`ferry promote {} {}`", source.name, env.name),
                };
                parts.push(format!("{nothing}: {first} gives it its first release"));
            }
        }
        format!("  {}: {}", env.name, parts.join("; "))
    }
}

/// On the embedded simulator's first use (no marker in `state`): sets up
/// what `first_use` needs, saying one line per environment what it did
/// and why, then leaves the marker.
pub(crate) fn bootstrap(
    session: &Session<'_>,
    state: &Path,
    first_use: &FirstUse,
) -> Result<(), Error> {
    let marker = state.join(FIRST_USE_MARKER);
    if marker.exists() {
        return Ok(());
    }
    let workspace = session.workspace()?;
    let config = &workspace.config;
    let Some(setup) = Setup::of(config, first_use) else { return Ok(()) };
    output::status(&format!(
        "Preparing the simulator in {} (first use: only what this command needs; `ferry sim reset` starts over):",
        state.display()
    ));
    let quiet = Console::quiet(session);
    let mut said = Vec::new();
    let mut say = |line: String| {
        output::status(&line);
        said.push(line);
    };
    super::runtime()?.block_on(async {
        let images = push_demo_images(&workspace, setup.images_into).await?;
        let options = Options {
            yes: true,
            no_rollback: false,
            prune: false,
            lock_timeout: std::time::Duration::from_secs(30),
            lock_ttl: std::time::Duration::from_secs(120),
            // The first use of the embedded simulator sets it up from scripts.
            sandbox: true,
            during_freeze: false,
        };
        let mut done = BTreeSet::new();
        for (index, env) in setup.chain.iter().enumerate() {
            let src = index.checked_sub(1).map(|before| setup.chain[before]);
            let made = release(&workspace, src, env, &options, &quiet).await?;
            say(setup.line(config, env, &images, Some(&made)));
            done.insert(env.name.as_str());
        }
        for env in config.environments.iter().filter(|e| !done.contains(e.name.as_str())) {
            say(setup.line(config, env, &images, None));
        }
        Ok::<(), Error>(())
    })?;
    let mut text = said.join("\n");
    text.push('\n');
    std::fs::write(&marker, text)
        .map_err(|source| crate::sim::SimError::Io { path: marker.clone(), source })?;
    Ok(())
}

/// Pushes a demo image for every tag of the own registry that `env`'s
/// manifests name (from git) into `env`'s registry: what the first
/// deploy needs. Returns them as `NAME:TAG`, sorted.
async fn push_demo_images(
    workspace: &crate::inputs::Workspace,
    env: &Environment,
) -> Result<Vec<String>, Error> {
    let prepared = workspace.prepare(&env.name, &SourceArgs::default())?;
    let mut images = BTreeSet::new();
    for resource in prepared.manifests.set.resources.iter().filter(|r| r.kind == Kind::Workload) {
        for (_, image) in plan::container_images(&resource.body()) {
            let parsed = crate::manifest::image::classify(image, Some(env.own_registry()));
            if parsed.source == crate::manifest::image::Source::Own {
                images.insert((
                    parsed.repository.to_owned(),
                    parsed.tag.unwrap_or("latest").to_owned(),
                ));
            }
        }
    }
    let token = connect::token(env)?;
    for (repository, tag) in &images {
        crate::sim::seed::push_demo_image(&env.registry, token.expose(), repository, tag).await?;
    }
    Ok(images.into_iter().map(|(repository, tag)| format!("{repository}:{tag}")).collect())
}

/// One release of the set-up (from git without `src`); what it made, in
/// words: "the manifests deployed from git at ccff5748 (release 1)".
async fn release(
    workspace: &crate::inputs::Workspace,
    src: Option<&Environment>,
    dst: &Environment,
    options: &Options,
    console: &Console,
) -> Result<String, Error> {
    let promotion = Promotion::prepare(workspace, src, &dst.name, &SourceArgs::default()).await?;
    let how = match src {
        None => "deployed from git".to_owned(),
        Some(src) => format!("promoted from {}", src.name),
    };
    Ok(match crate::promote::promote(workspace, &promotion, options, console).await? {
        Promoted::Released { release, .. } => {
            let commit = release
                .commit
                .as_deref()
                .map_or(String::new(), |c| format!(" at {}", &c[..8.min(c.len())]));
            format!("the manifests {how}{commit} (release {})", release.revision)
        }
        Promoted::UpToDate(_) => format!("the manifests {how} already ran there"),
    })
}

/// `ferry sim reset`: removes the embedded simulator's state next to the
/// plan file (`.ferry/sim/`), saying what it held; the next `--sim`
/// command starts from scratch. Refused when there is none.
pub(crate) fn reset(session: &Session<'_>) -> Result<ExitStatus, Error> {
    let state = super::session::sim_state_dir(&session.global.file);
    let removed = embedded::reset(&state)?;
    if session.global.output == OutputFormat::Json {
        output::print(&format!(
            "{:#}\n",
            json!({
                "schema": SCHEMA,
                "removed": state.display().to_string(),
                "orgs": removed.orgs,
                "resources": removed.counts.map(|(resources, _)| resources),
                "image_tags": removed.counts.map(|(_, tags)| tags),
            })
        ))?;
        return Ok(ExitStatus::Success);
    }
    let held = match (&removed.orgs[..], removed.counts) {
        ([], _) => String::new(),
        (orgs, Some((resources, tags))) => format!(
            ": orgs {} with {} and {}",
            orgs.join(", "),
            output::count(resources, "resource"),
            output::count(tags, "image tag")
        ),
        (orgs, None) => format!(": orgs {}", orgs.join(", ")),
    };
    output::print(&format!(
        "Removed the embedded simulator's state in {}{held}. The next --sim command prepares it again.\n",
        state.display()
    ))?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    fn config() -> PromotionConfig {
        let text = "manifests:\n  path: m\ntopology: org-per-env\nenvironments:\n  - {name: dev, org: acme-dev, gvc: app, tokenEnv: T}\n  - {name: staging, org: acme-staging, gvc: app, tokenEnv: T}\n  - {name: prod, org: acme-prod, gvc: app, tokenEnv: T}\n";
        crate::config::parse(&SourceFile::new("promotion.yaml", text))
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn names(setup: &Setup<'_>) -> (String, Vec<String>) {
        let chain = setup.chain.iter().map(|e| e.name.clone()).collect();
        (setup.images_into.name.clone(), chain)
    }

    #[test]
    fn a_first_use_sets_up_only_the_releases_its_command_promotes_from() {
        let config = config();
        let cases = [
            (FirstUse::of("prod", Origin::Env("staging".into())), "dev", &["dev", "staging"][..]),
            (FirstUse::of("staging", Origin::Configured), "dev", &["dev"]),
            (FirstUse::of("dev", Origin::Configured), "dev", &[]),
            (FirstUse::of("dev", Origin::Git), "dev", &[]),
            (FirstUse::of("prod", Origin::Git), "prod", &[]),
            (FirstUse::default(), "dev", &[]),
        ];
        for (first_use, images, chain) in cases {
            let setup = Setup::of(&config, &first_use).unwrap_or_else(|| panic!("{first_use:?}"));
            let chain: Vec<String> = chain.iter().map(|c| (*c).to_owned()).collect();
            assert_eq!(names(&setup), (images.to_owned(), chain), "{first_use:?}");
        }
        let unknown = FirstUse::of("qa", Origin::Env("staging".into()));
        assert!(Setup::of(&config, &unknown).is_none(), "the command names the mistake");
    }

    #[test]
    fn each_environment_gets_one_line_saying_what_was_set_up_and_why() {
        let config = config();
        let env = |name: &str| config.environment(name).unwrap_or_else(|e| panic!("{e:?}"));
        let images = ["api:1.4.2".to_owned(), "worker:1.4.2".to_owned()];
        let promote = Setup::of(&config, &FirstUse::of("prod", Origin::Env("staging".into())))
            .unwrap_or_else(|| panic!("a set-up"));
        assert_eq!(
            promote.line(
                &config,
                env("dev"),
                &images,
                Some("the manifests deployed from git at ccff5748 (release 1)")
            ),
            "  dev: 2 demo images pushed to its registry (api:1.4.2, worker:1.4.2), the tags the manifests name, as CI would have pushed them; the manifests deployed from git at ccff5748 (release 1), so that staging has a release to promote from"
        );
        assert_eq!(
            promote.line(
                &config,
                env("staging"),
                &images,
                Some("the manifests promoted from dev at ccff5748 (release 1)")
            ),
            "  staging: the manifests promoted from dev at ccff5748 (release 1), so that prod has a release to promote from"
        );
        assert_eq!(
            promote.line(&config, env("prod"), &images, None),
            "  prod: nothing set up: left for your command"
        );
        let deploy = Setup::of(&config, &FirstUse::of("dev", Origin::Git))
            .unwrap_or_else(|| panic!("a set-up"));
        assert_eq!(
            deploy.line(&config, env("dev"), &images, None),
            "  dev: 2 demo images pushed to its registry (api:1.4.2, worker:1.4.2), the tags the manifests name, as CI would have pushed them; nothing deployed: left for your command"
        );
        assert_eq!(
            deploy.line(&config, env("staging"), &images, None),
            "  staging: nothing set up: `ferry promote dev staging` gives it its first release"
        );
        let status = Setup::of(&config, &FirstUse::default()).unwrap_or_else(|| panic!("a set-up"));
        assert_eq!(
            status.line(&config, env("dev"), &[], None),
            "  dev: nothing set up: `ferry deploy dev` gives it its first release"
        );
    }
}
