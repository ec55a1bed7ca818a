//! The plan of one promotion into an environment, made in one place for
//! `ferry plan`, `ferry render --from`, `ferry promote` and `ferry apply`,
//! so that the plan shown is exactly the plan carried out:
//!
//! - manifests: at `--ref`; else at the commit of the source environment's
//!   last successful release (what runs there); else at the plan file's
//!   revision (`--worktree`: the files on disk);
//! - images: what the source environment's live workloads run, by digest;
//!   without a source, as the manifests write them, except that a digest an
//!   earlier promotion pinned is kept while the tag written in git still
//!   points at it in the environment's registry;
//! - rendered for the environment and compared with its live state.

use std::collections::HashMap;

use futures::TryFutureExt;

use serde_json::Value;

use crate::api::Client;
use crate::cli::SourceArgs;
use crate::config::{Environment, ImageStrategy};
use crate::inputs::{Prepared, Workspace};
use crate::manifest::image::classify;
use crate::manifest::{Kind, ResourceId};
use crate::plan::deploy::ImageOverride;
use crate::plan::{self, ImagesFrom, ManifestsFrom, Plan, Target};
use crate::release::Release;
use crate::render::{self, ImageMap, Rendered, SourceImages};
use crate::{Error, connect, history, observe};

/// A promotion's inputs, chosen and checked: the source environment (if
/// any) and the target's manifests at the chosen revision.
pub struct Promotion<'a> {
    /// The environment whose live images are promoted.
    pub src: Option<&'a Environment>,
    /// The target environment's manifests, overrides and graph.
    pub prepared: Prepared,
    /// Why the manifests were read at their revision.
    pub manifests_from: ManifestsFrom,
    /// Plan deletes of managed resources that left git (`--prune`).
    pub prune: bool,
    /// Without a source (a deploy): images that replace git's (`--image`).
    pub images: Vec<ImageOverride>,
    /// `--change-shared`: changes of what other environments share are
    /// accepted for all of them ([`plan::shared_refusal`]).
    pub change_shared: bool,
}

/// A plan with what it was made from.
pub struct Made {
    pub plan: Plan,
    pub rendered: Vec<Rendered>,
    /// What the source runs (empty without one).
    pub images: SourceImages,
}

/// Which revision to read the manifests at, and why: `--worktree` and
/// `--ref` as asked; else the commit of `src`'s last successful release;
/// else the plan file's revision. `src` is the source environment's name
/// with its last successful release, if any.
pub fn choose_manifests(
    requested: &SourceArgs,
    src: Option<(&str, Option<&Release>)>,
) -> (SourceArgs, ManifestsFrom) {
    if requested.worktree {
        return (requested.clone(), ManifestsFrom::Worktree);
    }
    if requested.revision.is_some() {
        return (requested.clone(), ManifestsFrom::Ref);
    }
    let released = src.and_then(|(name, release)| {
        let release = release?;
        let commit = release.commit.clone()?;
        Some((
            commit,
            ManifestsFrom::Release { environment: name.to_owned(), release: release.revision },
        ))
    });
    match released {
        Some((commit, from)) => (SourceArgs { revision: Some(commit), worktree: false }, from),
        None => (SourceArgs::default(), ManifestsFrom::PlanFile),
    }
}

impl<'a> Promotion<'a> {
    /// Chooses the manifests (asking `src`'s history when neither `--ref`
    /// nor `--worktree` decides) and prepares `dst` with them.
    pub async fn prepare(
        workspace: &Workspace,
        src: Option<&'a Environment>,
        dst: &str,
        requested: &SourceArgs,
    ) -> Result<Self, Error> {
        let release = match src {
            Some(src) if !requested.worktree && requested.revision.is_none() => {
                history::last_succeeded(&connect::client(src)?, src).await?
            }
            _ => None,
        };
        let (source, manifests_from) =
            choose_manifests(requested, src.map(|s| (s.name.as_str(), release.as_ref())));
        Self::prepare_at(workspace, src, dst, &source, manifests_from)
    }

    /// Prepares `dst` with manifests already chosen (a saved plan's).
    pub fn prepare_at(
        workspace: &Workspace,
        src: Option<&'a Environment>,
        dst: &str,
        source: &SourceArgs,
        manifests_from: ManifestsFrom,
    ) -> Result<Self, Error> {
        Ok(Self {
            src,
            prepared: workspace.prepare(dst, source)?,
            manifests_from,
            prune: false,
            images: Vec::new(),
            change_shared: false,
        })
    }

    /// The target environment.
    pub fn dst(&self) -> &Environment {
        &self.prepared.env
    }

    /// Renders the target's manifests with the images being promoted: those
    /// the source's live workloads run (read from its API), else as
    /// written in git.
    pub async fn render(
        &self,
        workspace: &Workspace,
    ) -> Result<(Vec<Rendered>, SourceImages), Error> {
        let pull_from = self.pull_from();
        let images = match self.src {
            Some(source) => {
                let workloads: Vec<String> = self
                    .prepared
                    .manifests
                    .set
                    .resources
                    .iter()
                    .filter(|r| r.kind == Kind::Workload)
                    .map(|r| r.name.clone())
                    .collect();
                observe::running_images(
                    &connect::client(source)?,
                    source,
                    &workloads,
                    pull_from.as_deref(),
                )
                .await?
            }
            None => SourceImages::default(),
        };
        let rendered = self.render_with(workspace, &images, pull_from)?;
        Ok((rendered, images))
    }

    /// With the `pull-secret` strategy, the source's registry, which the
    /// target pulls from.
    fn pull_from(&self) -> Option<String> {
        match (&self.dst().images, self.src) {
            (ImageStrategy::PullSecret { .. }, Some(source)) => Some(source.registry.clone()),
            _ => None,
        }
    }

    /// Renders the target's manifests with the images as git writes them:
    /// no environment is read (a saved plan's secret payloads come from
    /// here).
    pub fn render_as_written(&self, workspace: &Workspace) -> Result<Vec<Rendered>, Error> {
        let pull_from = self.pull_from();
        self.render_with(workspace, &SourceImages::default(), pull_from)
    }

    fn render_with(
        &self,
        workspace: &Workspace,
        images: &SourceImages,
        pull_from: Option<String>,
    ) -> Result<Vec<Rendered>, Error> {
        let rendered = render::for_environment(
            &workspace.config,
            self.dst(),
            &self.prepared.manifests.set,
            &self.prepared.patches,
            images,
            pull_from.as_deref(),
        )?;
        Ok(rendered)
    }

    /// Renders, reads the target's live state and makes the plan.
    pub async fn make(&self, workspace: &Workspace) -> Result<Made, Error> {
        let env = self.dst();
        let client = connect::client(env)?;
        // The target's live state does not depend on the images: it is read
        // while the source's images are (the resources are those git
        // names, whatever images they run).
        let written = self.render_as_written(workspace)?;
        // The target registry's tags the images land on as git names
        // them, read while the source's images are resolved: a promotion
        // usually ships the tags git names, and the source's workloads,
        // pinned by digest, only give their tags after a query of their
        // own, which these reads need not wait for.
        let as_written = observe::landings(env, &written, &SourceImages::default());
        let prefetched = observe::registry_digests(&client, &env.org, as_written);
        let ids: Vec<_> = written.into_iter().map(|r| r.id).collect();
        let images = async {
            let (mut rendered, mut images) = self.render(workspace).await?;
            let mut wanted = Vec::new();
            if self.src.is_none() {
                (wanted, images.promoted) = self.deploy_images(&client, &rendered).await?;
                rendered = self.render_with(workspace, &images, self.pull_from())?;
            }
            Ok::<_, Error>((rendered, images, wanted))
        };
        let images = async {
            let ((rendered, images, wanted), mut known) =
                futures::try_join!(images, prefetched.map_err(Error::from))?;
            // The tags the images land on that git does not name (the
            // source runs another tag), also while the live state is read.
            let landings = observe::landings(env, &rendered, &images);
            let others = landings.into_iter().filter(|key| !known.contains_key(key));
            known.extend(observe::registry_digests(&client, &env.org, others).await?);
            Ok::<_, Error>((rendered, images, known, wanted))
        };
        // A deploy leaves a tag that runs what the current release recorded.
        let current = async {
            match self.src {
                None => history::last_succeeded(&client, env).await.map_err(Error::from),
                Some(_) => Ok(None),
            }
        };
        let ((mut rendered, images, known, wanted), mut observation, current) = futures::try_join!(
            images,
            observe::observe(&client, env, &ids).map_err(Error::from),
            current
        )?;
        if rendered.iter().map(|r| &r.id).ne(ids.iter()) {
            // Not expected; but a plan is only ever made against what it writes.
            let ids: Vec<_> = rendered.iter().map(|r| r.id.clone()).collect();
            observation = observe::observe(&client, env, &ids).await?;
        }
        plan::other_apps(env, &rendered, &observation.raw).into_result(())?;
        plan::promotion::keep_live_secrets(env, &mut rendered, &observation.raw)?;
        let unpinned = plan::deploy::unpinned(
            env,
            &wanted,
            &images.promoted,
            &observation.raw,
            current.as_ref(),
        );
        for kept in &unpinned {
            let id = ResourceId::new(Kind::Workload, kept.workload.as_str());
            set_image(&mut rendered, &id, &kept.container, &kept.image);
        }
        let unpinned: HashMap<(String, String), String> = unpinned
            .into_iter()
            .map(|kept| ((kept.workload, kept.container), kept.digest))
            .collect();
        keep_current_pins(&client, env, &mut rendered, &images.promoted, &observation.raw).await?;
        let mut image_changes =
            plan::image_changes(rendered.iter().map(|r| (&r.id, &r.body)), &observation.raw);
        // The copy decision and the digests of what is adopted: one round.
        let ((), adopted_digests) = futures::try_join!(
            observe::check_copies(&client, env, &mut image_changes, &images, &known),
            observe::registry_digests(
                &client,
                &env.org,
                plan::promotion::adopted_lookups(env, &rendered, &observation.live),
            ),
        )?;
        let mut plan = plan::promotion::plan(plan::promotion::Inputs {
            target: Target {
                environment: env.name.clone(),
                org: env.org.clone(),
                gvc: env.gvc.clone(),
                source: self.src.map(|f| f.name.clone()),
                revision: self.prepared.manifests.revision.clone(),
                manifests_from: self.manifests_from.clone(),
                images_from: if self.src.is_some() {
                    ImagesFrom::Source
                } else {
                    ImagesFrom::Manifests
                },
            },
            graph: &self.prepared.graph,
            src: self.src,
            dst: env,
            rendered: &rendered,
            live: observation.live,
            managed: observation.managed,
            applied: observation.applied,
            images: image_changes,
            external: &images.external,
            prune: self.prune,
            adopted_digests: &adopted_digests,
            unpinned: &unpinned,
        });
        plan.image_overrides =
            self.images.iter().map(|o| format!("{}={}", o.name, o.reference)).collect();
        mark_shared(&mut plan, &workspace.config);
        plan.change_shared = self.change_shared;
        plan.bind(origin(&workspace.config, env, self.src));
        Ok(Made { plan, rendered, images })
    }
}

/// In a gvc-per-env pipeline, an org-level resource (not the GVC) is one
/// object for every environment: its row names them all.
fn mark_shared(plan: &mut Plan, config: &crate::config::PromotionConfig) {
    if config.topology != crate::config::Topology::GvcPerEnv {
        return;
    }
    let all: Vec<String> = config.environments.iter().map(|e| e.name.clone()).collect();
    for resource in &mut plan.resources {
        let shared = resource.id.parse::<ResourceId>().is_ok_and(|id| {
            let copied =
                config.shared_per_environment && crate::render::COPIED_KINDS.contains(&id.kind);
            !id.kind.is_gvc_scoped() && id.kind != Kind::Gvc && !copied
        });
        if shared {
            resource.shared_with.clone_from(&all);
        }
    }
}

/// Where a plan into `dst` from `src` is made under `config`: what a saved
/// plan is bound to ([`plan::Origin`]), endpoints as resolved now.
pub fn origin(
    config: &crate::config::PromotionConfig,
    dst: &Environment,
    src: Option<&Environment>,
) -> plan::Origin {
    let place = |env: &Environment| plan::Place {
        org: env.org.clone(),
        gvc: env.gvc.clone(),
        endpoint: connect::endpoint(env),
    };
    plan::Origin {
        topology: config.topology,
        endpoint: connect::endpoint(dst),
        source: src.map(place),
    }
}

impl Promotion<'_> {
    /// A deploy's images (no source): the own-registry images as git
    /// writes them (`rendered`) or as `--image` replaces them, each pinned
    /// by the digest the target's registry gives for its tag; refused,
    /// naming every one it lacks, before anything is written
    /// ([`plan::deploy`]).
    async fn deploy_images(
        &self,
        client: &Client,
        rendered: &[Rendered],
    ) -> Result<(Vec<plan::deploy::Wanted>, ImageMap), Error> {
        let env = self.dst();
        let wanted = plan::deploy::wanted(env, rendered, &self.images)?;
        let found = observe::registry_digests(
            client,
            &env.org,
            wanted.iter().filter_map(plan::deploy::Wanted::lookup),
        )
        .await?;
        let pinned = plan::deploy::pinned(env, &wanted, &found)?;
        Ok((wanted, pinned))
    }
}

/// A container whose image comes from git as a tag while the live workload
/// runs the same repository pinned by digest (an earlier promotion's pin).
#[derive(Debug, PartialEq, Eq)]
struct Pin {
    workload: ResourceId,
    container: String,
    repository: String,
    tag: String,
    digest: String,
    /// The live image reference, kept when the tag still points at `digest`.
    live: String,
}

/// Keeps, in `rendered`, the digest an earlier promotion pinned for an image
/// that comes from git as a tag, while that tag still points at the digest
/// in the environment's registry: running the pinned digest is running
/// what git says, so it is not a change.
async fn keep_current_pins(
    client: &Client,
    env: &Environment,
    rendered: &mut [Rendered],
    promoted: &ImageMap,
    live: &HashMap<ResourceId, Value>,
) -> Result<(), Error> {
    let pins = pins(&env.org, rendered, promoted, live);
    if pins.is_empty() {
        return Ok(());
    }
    let found = observe::registry_digests(
        client,
        &env.org,
        pins.iter().map(|p| (p.repository.clone(), p.tag.clone())),
    )
    .await?;
    for pin in pins {
        let current = found.get(&(pin.repository.clone(), pin.tag.clone())).cloned().flatten();
        if current.as_deref() != Some(pin.digest.as_str()) {
            continue;
        }
        set_image(rendered, &pin.workload, &pin.container, &pin.live);
    }
    Ok(())
}

/// Sets the image of `workload`'s `container` in `rendered`.
fn set_image(rendered: &mut [Rendered], workload: &ResourceId, container: &str, image: &str) {
    let body = rendered.iter_mut().find(|r| &r.id == workload).map(|r| &mut r.body);
    let containers =
        body.and_then(|b| b.pointer_mut("/spec/containers")).and_then(Value::as_array_mut);
    for found in containers.into_iter().flatten() {
        if found.get("name").and_then(Value::as_str) == Some(container) {
            found["image"] = Value::String(image.to_owned());
        }
    }
}

/// The containers whose git tag may stand for a live pin (pure): the image
/// is not being promoted from a source, lands in `org`'s own registry as a
/// tag without digest, and the live container runs the same repository by
/// digest.
fn pins(
    org: &str,
    rendered: &[Rendered],
    promoted: &ImageMap,
    live: &HashMap<ResourceId, Value>,
) -> Vec<Pin> {
    let own = format!("/org/{org}/image/");
    let mut found = Vec::new();
    for resource in rendered.iter().filter(|r| r.id.kind == Kind::Workload) {
        let Some(live_body) = live.get(&resource.id) else { continue };
        let live_images = plan::container_images(live_body);
        for (container, desired) in plan::container_images(&resource.body) {
            if promoted.contains_key(&(resource.id.name.clone(), container.to_owned()))
                || !desired.starts_with(&own)
            {
                continue;
            }
            let Some((_, running)) = live_images.iter().find(|(c, _)| *c == container) else {
                continue;
            };
            let (wanted, current) = (classify(desired, None), classify(running, None));
            if !running.starts_with(&own) || wanted.repository != current.repository {
                continue;
            }
            let (Some(tag), None, Some(digest)) = (wanted.tag, wanted.digest, current.digest)
            else {
                continue;
            };
            if current.tag.is_some_and(|t| t != tag) {
                continue;
            }
            found.push(Pin {
                workload: resource.id.clone(),
                container: container.to_owned(),
                repository: wanted.repository.to_owned(),
                tag: tag.to_owned(),
                digest: digest.to_owned(),
                live: (*running).to_owned(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Actor, Outcome};
    use serde_json::json;

    fn release(revision: u64, commit: Option<&str>) -> Release {
        Release {
            schema: crate::release::SCHEMA.into(),
            environment: "staging".into(),
            revision,
            kind: None,
            source: Some("dev".into()),
            commit: commit.map(str::to_owned),
            images: vec![],
            plan_hash: String::new(),
            actor: Actor::default(),
            started: String::new(),
            finished: String::new(),
            outcome: Outcome::Succeeded,
            rolled_back: false,
            message: None,
            approval: None,
            pending: None,
            app: None,
            shared_changed: Vec::new(),
        }
    }

    #[test]
    fn manifests_come_from_the_source_release_unless_asked_otherwise() {
        let released = release(3, Some("abc123"));
        let (source, from) =
            choose_manifests(&SourceArgs::default(), Some(("staging", Some(&released))));
        assert_eq!(source.revision.as_deref(), Some("abc123"));
        assert_eq!(from, ManifestsFrom::Release { environment: "staging".into(), release: 3 });

        let asked = SourceArgs { revision: Some("v2".into()), worktree: false };
        let (source, from) = choose_manifests(&asked, Some(("staging", Some(&released))));
        assert_eq!((source.revision.as_deref(), from), (Some("v2"), ManifestsFrom::Ref));

        let worktree = SourceArgs { revision: None, worktree: true };
        let (source, from) = choose_manifests(&worktree, Some(("staging", Some(&released))));
        assert_eq!((source.worktree, from), (true, ManifestsFrom::Worktree));

        for src in [None, Some(("staging", None)), Some(("staging", Some(&release(1, None))))] {
            let (source, from) = choose_manifests(&SourceArgs::default(), src);
            assert_eq!((source.revision, from), (None, ManifestsFrom::PlanFile));
        }
    }

    fn workload(image: &str) -> Value {
        json!({"kind": "workload", "spec": {"containers": [{"name": "main", "image": image}]}})
    }

    fn rendered(image: &str) -> Vec<Rendered> {
        vec![Rendered::new(
            ResourceId::new(Kind::Workload, "api"),
            workload(image),
            crate::diagnostic::Location::new(
                &crate::diagnostic::SourceFile::new("api.yaml", String::new()),
                0..0,
            ),
        )]
    }

    #[test]
    fn a_git_tag_may_stand_for_a_live_pin_of_the_same_repository() {
        let id = ResourceId::new(Kind::Workload, "api");
        let tag = "/org/p/image/api:1.4.2";
        let live = |image: &str| HashMap::from([(id.clone(), workload(image))]);
        let found = pins("p", &rendered(tag), &ImageMap::new(), &live("/org/p/image/api@sha256:d"));
        assert_eq!(
            found,
            [Pin {
                workload: id.clone(),
                container: "main".into(),
                repository: "api".into(),
                tag: "1.4.2".into(),
                digest: "sha256:d".into(),
                live: "/org/p/image/api@sha256:d".into(),
            }]
        );
        let with_tag =
            pins("p", &rendered(tag), &ImageMap::new(), &live("/org/p/image/api:1.4.2@sha256:d"));
        assert_eq!(with_tag.len(), 1);
        for (desired, running) in [
            (tag, "/org/p/image/web@sha256:d"),
            (tag, "/org/p/image/api:1.4.1@sha256:d"),
            (tag, "/org/p/image/api:1.4.2"),
            (tag, "/org/other/image/api@sha256:d"),
            ("/org/p/image/api@sha256:e", "/org/p/image/api@sha256:d"),
        ] {
            assert!(
                pins("p", &rendered(desired), &ImageMap::new(), &live(running)).is_empty(),
                "{desired} vs {running}"
            );
        }
        let promoted = ImageMap::from([(
            ("api".to_owned(), "main".to_owned()),
            render::PromotedImage {
                repository: "api".into(),
                tag: Some("1.4.2".into()),
                digest: None,
                registry: None,
            },
        )]);
        assert!(
            pins("p", &rendered(tag), &promoted, &live("/org/p/image/api@sha256:d")).is_empty()
        );
    }
}
