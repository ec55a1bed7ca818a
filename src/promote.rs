//! `promote SRC DST`: the exact artifact that runs in SRC reaches DST, in
//! order, verified, recorded, and undone by itself if it does not come up.
//!
//! 1. The plan is made by [`crate::promotion_plan`], exactly as `ferry plan`
//!    makes it: the manifests at the git commit of SRC's last successful
//!    release (or `--ref`, or the plan file's revision for a first
//!    promotion); the images those SRC's live workloads run, by digest.
//! 2. The plan is shown; a person confirms it (or `--yes`).
//! 3. DST's lock is taken, and the plan is made again under it: if
//!    anything moved since it was shown, nothing is written.
//! 4. DST's GVC is checked to carry a pull secret for every image outside
//!    the org that SRC's needed one for; images are copied (or the pull
//!    secret checked); everything DST needs is checked to exist before the
//!    first write.
//! 5. Resources are written wave by wave, waiting for readiness.
//! 6. On failure, what was changed is restored (unless `--no-rollback`).
//! 7. The release is recorded in DST's org, whatever the outcome.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use miette::Diagnostic;
use serde_json::Value;

use crate::api::{Client, paths};
use crate::apply::{self, ApplyError, CancellationToken, Step, TagWrite};
use crate::config::{Environment, ImageStrategy};
use crate::diff::{Action, Op};
use crate::inputs::Workspace;
use crate::lock::{Lock, LockError};
use crate::manifest::{Kind, ResourceId};
use crate::plan::{self, Plan};
use crate::promotion_plan::{Made, Promotion};
use crate::release::{self, Actor, Outcome, Release, ReleaseImage};
use crate::timestamp::{now_ms, rfc3339};
use crate::{Error, connect, history, observe};

/// Choices of one promotion.
#[derive(Clone, Debug)]
pub struct Options {
    /// Do not ask; for CI.
    pub yes: bool,
    /// Leave a failed promotion as it is.
    pub no_rollback: bool,
    /// Also delete managed resources that left git.
    pub prune: bool,
    /// How long to wait for another promotion's lock.
    pub lock_timeout: Duration,
    /// How long the lock lives without renewal (renewed every third of it).
    pub lock_ttl: Duration,
}

/// What the person running Ferry sees and decides.
pub trait Frontend: apply::Reporter + crate::registry::Reporter {
    /// Show the plan.
    fn plan(&self, plan: &Plan);
    /// Ask whether to go ahead; `None` when nobody can be asked.
    fn confirm(&self, plan: &Plan) -> Option<bool>;
    /// Progress and outcomes, one line each.
    fn note(&self, line: &str);
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PromoteError {
    #[error("promoting into {environment} needs an approval")]
    #[diagnostic(
        code(ferry::promote::approval),
        help(
            "run it on a terminal to confirm the plan, or pass --yes (in CI, after the environment's approval gate)"
        )
    )]
    NotApproved { environment: String },

    #[error("the promotion was declined")]
    #[diagnostic(code(ferry::promote::declined))]
    Declined,

    #[error("{resource} changed in {environment} since the plan was made")]
    #[diagnostic(
        code(ferry::promote::moved),
        help("nothing was written; make the plan again and review it")
    )]
    Moved { environment: String, resource: String },

    #[error("{environment} is not ready for this release")]
    #[diagnostic(code(ferry::promote::preflight), help("{}; nothing was written", problems.join("; ")))]
    Preflight { environment: String, problems: Vec<String> },

    #[error("promotion into {environment} failed; {restored}")]
    #[diagnostic(
        code(ferry::promote::failed),
        help("release {revision} is recorded as failed; see `ferry history {environment}`")
    )]
    Failed {
        environment: String,
        revision: u64,
        restored: String,
        #[source]
        #[diagnostic_source]
        cause: ApplyError,
    },

    #[error("copying {image} failed")]
    #[diagnostic(code(ferry::promote::copy))]
    Copy {
        image: String,
        #[source]
        #[diagnostic_source]
        source: crate::registry::RegistryError,
    },

    #[error("interrupted before anything was written; the lock of {environment} was released")]
    #[diagnostic(code(ferry::promote::interrupted), help("run the promotion again"))]
    Interrupted { environment: String },

    #[error("interrupted twice, so stopped at once; the lock of {environment} was released")]
    #[diagnostic(
        code(ferry::promote::interrupted),
        help(
            "what was written so far stays and no release was recorded; `ferry plan {environment}` shows what differs, and promoting again converges"
        )
    )]
    Abandoned { environment: String },

    #[error("interrupted while waiting for the lock of {environment}; nothing was changed")]
    #[diagnostic(
        code(ferry::promote::interrupted),
        help("a lock created at the instant of the interruption expires by itself")
    )]
    InterruptedWaiting { environment: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
}

/// How a promotion ended.
pub enum Promoted {
    /// Nothing to change.
    UpToDate(Box<Plan>),
    /// Written, ready and recorded.
    Released { plan: Box<Plan>, release: Box<Release> },
}

/// Carries out `promotion` (without a source: deploys its target from
/// git, as written). `expected` is a saved plan that must be exactly what
/// is about to be applied (`ferry apply`).
pub async fn promote(
    workspace: &Workspace,
    promotion: &Promotion<'_>,
    options: &Options,
    expected: Option<&Plan>,
    frontend: &dyn Frontend,
) -> Result<Promoted, Error> {
    let dst = promotion.dst();
    let dst_client = connect::client(dst)?;
    let made = promotion.make(workspace).await?;
    if let Some(expected) = expected {
        unchanged_since(expected, &made.plan, dst)?;
    }
    frontend.plan(&made.plan);
    if options.prune
        && let Some(refused) = plan::prune_refusal(&made.plan, dst)
    {
        return Err(refused.into());
    }
    if !made.plan.summary.has_changes() {
        return Ok(Promoted::UpToDate(Box::new(made.plan)));
    }
    if !options.yes && expected.is_none() {
        match frontend.confirm(&made.plan) {
            Some(true) => {}
            Some(false) => return Err(PromoteError::Declined.into()),
            None => return Err(PromoteError::NotApproved { environment: dst.name.clone() }.into()),
        }
    }
    let actor = Actor::from_environment();
    // Listening before the lock exists: a signal from here on releases it.
    let mut signals = crate::shutdown::Signals::listen();
    let acquire = Lock::acquire(
        &dst_client,
        dst,
        &actor,
        options.lock_ttl.max(Duration::from_secs(1)),
        options.lock_timeout,
    );
    let lock = tokio::select! {
        lock = acquire => lock.map_err(PromoteError::from)?,
        () = signals.received() => {
            return Err(PromoteError::InterruptedWaiting { environment: dst.name.clone() }.into());
        }
    };
    frontend.note(&format!("Locked {} for this promotion", dst.name));
    let run = Run {
        workspace,
        promotion,
        src: promotion.src,
        dst,
        client: &dst_client,
        options,
        actor,
        frontend,
    };
    // A first signal stops gracefully (writes in flight finish, what was
    // changed is restored and the release recorded); a second stops at once.
    let stop = CancellationToken::new();
    let locked = run.locked(&made, &stop);
    tokio::pin!(locked);
    let result = tokio::select! {
        result = &mut locked => result,
        () = signals.received() => {
            frontend.note("Interrupted: letting the writes in flight finish, then restoring what changed (signal again to stop at once)");
            stop.cancel();
            tokio::select! {
                result = &mut locked => result,
                () = signals.received() => Err(PromoteError::Abandoned { environment: dst.name.clone() }.into()),
            }
        }
    };
    if let Err(error) = lock.release().await {
        tracing::warn!("could not release the lock of {}: {error}; it expires by itself", dst.name);
    }
    result
}

/// A saved plan is carried out only if the plan made now is the same.
fn unchanged_since(expected: &Plan, now: &Plan, dst: &Environment) -> Result<(), Error> {
    let moved = |resource: &str| {
        Error::from(PromoteError::Moved {
            environment: dst.name.clone(),
            resource: resource.to_owned(),
        })
    };
    if expected.hash != expected.compute_hash() {
        return Err(moved("the saved plan (its hash does not match its content)"));
    }
    for saved in &expected.resources {
        let current = now.resources.iter().find(|r| r.id == saved.id);
        match current {
            Some(current)
                if current.live == saved.live && current.desired_hash == saved.desired_hash => {}
            _ => return Err(moved(&saved.id)),
        }
    }
    if let Some(extra) =
        now.resources.iter().find(|r| !expected.resources.iter().any(|s| s.id == r.id))
    {
        return Err(moved(&extra.id));
    }
    if now.images != expected.images {
        return Err(moved("the images being promoted"));
    }
    Ok(())
}

struct Run<'a> {
    workspace: &'a Workspace,
    promotion: &'a Promotion<'a>,
    src: Option<&'a Environment>,
    dst: &'a Environment,
    client: &'a Client,
    options: &'a Options,
    actor: Actor,
    frontend: &'a dyn Frontend,
}

impl Run<'_> {
    async fn locked(&self, approved: &Made, stop: &CancellationToken) -> Result<Promoted, Error> {
        let made = self.promotion.make(self.workspace).await?;
        unchanged_since(&approved.plan, &made.plan, self.dst)?;
        let started = now_ms();
        let existing: Vec<u64> =
            history::releases(self.client, self.dst).await?.into_iter().map(|(r, _)| r).collect();
        let revision = release::next_revision(&existing);
        let prepared = async {
            self.check_pull_secrets(&made).await?;
            self.move_images(&made.plan).await?;
            self.preflight(&made).await
        };
        tokio::select! {
            prepared = prepared => prepared?,
            () = stop.cancelled() => {
                return Err(PromoteError::Interrupted { environment: self.dst.name.clone() }.into());
            }
        }
        let steps = self.steps(&made, revision);
        let outcome = apply::execute(self.client, self.dst, &steps, self.frontend, stop).await;
        let mut record = Release {
            schema: release::SCHEMA.to_owned(),
            environment: self.dst.name.clone(),
            revision,
            source: self.src.map(|s| s.name.clone()),
            commit: made.plan.target.revision.as_ref().map(|r| r.commit.clone()),
            images: release_images(&made),
            plan_hash: made.plan.hash.clone(),
            actor: self.actor.clone(),
            started: rfc3339(started),
            finished: String::new(),
            outcome: Outcome::Succeeded,
            rolled_back: false,
            message: None,
        };
        match outcome.result {
            Ok(()) => {
                record.finished = rfc3339(now_ms());
                history::record(self.client, self.dst, &record, &existing).await?;
                Ok(Promoted::Released { plan: Box::new(made.plan), release: Box::new(record) })
            }
            Err(cause) => {
                let restored = if self.options.no_rollback {
                    format!(
                        "{} changed resources were left as they are (--no-rollback)",
                        outcome.written.len()
                    )
                } else {
                    self.restore(&outcome.written, &made.before).await
                };
                record.outcome = Outcome::Failed;
                record.rolled_back =
                    !self.options.no_rollback && !restored.starts_with("restoring failed");
                record.message = Some(format!("{cause}; {restored}"));
                record.finished = rfc3339(now_ms());
                history::record(self.client, self.dst, &record, &existing).await?;
                Err(PromoteError::Failed {
                    environment: self.dst.name.clone(),
                    revision,
                    restored,
                    cause,
                }
                .into())
            }
        }
    }

    /// The plan's changes as steps, workloads tagged with the release.
    fn steps(&self, made: &Made, revision: u64) -> Vec<Step> {
        let rendered: HashMap<&ResourceId, &Value> =
            made.rendered.iter().map(|r| (&r.id, &r.body)).collect();
        made.plan
            .resources
            .iter()
            .filter(|r| match r.action {
                Action::Unchanged => false,
                Action::Delete => self.options.prune,
                _ => true,
            })
            .filter_map(|r| {
                let id: ResourceId = r.id.parse().ok()?;
                let body = rendered.get(&id).map(|body| {
                    if id.kind == Kind::Workload {
                        apply::with_tag(body, release::RELEASE_TAG, &revision.to_string())
                    } else {
                        (*body).clone()
                    }
                });
                let max_wave = made.plan.resources.iter().filter_map(|p| p.wave).max().unwrap_or(0);
                let removed_tags: Vec<String> = r
                    .changes
                    .iter()
                    .filter(|c| c.op == Op::Remove)
                    .filter_map(|c| c.path.strip_prefix("tags.").map(str::to_owned))
                    .collect();
                Some(Step {
                    wave: r.wave.unwrap_or(max_wave + 1),
                    action: r.action,
                    body,
                    removes_fields: r.changes.iter().any(|c| c.op == Op::Remove),
                    tags: if removed_tags.is_empty() {
                        TagWrite::Merge
                    } else {
                        TagWrite::Drop(removed_tags)
                    },
                    id,
                })
            })
            .collect()
    }

    /// Puts back what `written` changed; says what it did.
    async fn restore(&self, written: &[ResourceId], before: &HashMap<ResourceId, Value>) -> String {
        if written.is_empty() {
            return "nothing had been written".to_owned();
        }
        self.frontend.note(&format!(
            "Restoring the {} this promotion changed",
            crate::output::count(written.len(), "resource")
        ));
        let steps = apply::restore_steps(written, before);
        // Restoring is not itself stopped by the first signal.
        let outcome =
            apply::execute(self.client, self.dst, &steps, self.frontend, &CancellationToken::new())
                .await;
        let names: Vec<String> = written.iter().map(ToString::to_string).collect();
        match outcome.result {
            Ok(()) => format!("restored {}", names.join(", ")),
            Err(error) => format!("restoring failed ({error}); check {}", names.join(", ")),
        }
    }

    /// Before anything moves: DST's GVC has a pull secret for every image
    /// outside the org that SRC's GVC needed one for.
    async fn check_pull_secrets(&self, made: &Made) -> Result<(), Error> {
        let Some(src) = self.src else { return Ok(()) };
        let src_client = connect::client(src)?;
        let problems =
            crate::pull_secrets::missing(&src_client, src, self.client, self.dst, &made.rendered)
                .await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PromoteError::Preflight { environment: self.dst.name.clone(), problems }.into())
        }
    }

    /// Copies every image DST's registry lacks, or checks the pull secret.
    async fn move_images(&self, plan: &Plan) -> Result<(), Error> {
        let Some(src) = self.src else { return Ok(()) };
        match &self.dst.images {
            ImageStrategy::Copy => {
                let mut credentials = crate::registry::Credentials::anonymous();
                for env in [src, self.dst] {
                    let token = connect::token(env)?;
                    credentials.insert(
                        env.registry.clone(),
                        crate::registry::Credential::basic(
                            crate::registry::TOKEN_USER,
                            token.expose(),
                        ),
                    );
                }
                let mut copies: BTreeMap<String, (String, String)> = BTreeMap::new();
                for image in plan.images.iter().filter(|i| i.copy == Some(true)) {
                    let parsed = crate::manifest::image::classify(&image.after, None);
                    let version = match (&image.digest, &image.tag) {
                        (Some(digest), _) => format!("@{digest}"),
                        (None, Some(tag)) => format!(":{tag}"),
                        (None, None) => ":latest".to_owned(),
                    };
                    let tag = image.tag.clone().unwrap_or_else(|| "latest".to_owned());
                    let source = format!("{}/{}{version}", src.registry, parsed.repository);
                    let destination = format!("{}/{}:{tag}", self.dst.registry, parsed.repository);
                    copies.insert(destination.clone(), (source, destination));
                }
                for (source, destination) in copies.into_values() {
                    self.frontend.note(&format!("Copying {source} -> {destination}"));
                    let request = crate::registry::CopyRequest::new(
                        source.parse().map_err(|e| copy_error(&source, e))?,
                        destination.parse().map_err(|e| copy_error(&destination, e))?,
                    );
                    let report = crate::registry::copy_image(&request, &credentials, self.frontend)
                        .await
                        .map_err(|source_error| PromoteError::Copy {
                            image: source.clone(),
                            source: source_error,
                        })?;
                    self.frontend
                        .note(&format!("Copied {} ({})", report.destination, report.digest));
                }
                Ok(())
            }
            ImageStrategy::PullSecret { .. } | ImageStrategy::None => Ok(()),
        }
    }

    /// Everything DST needs exists: images in its registry, the pull
    /// secret on its GVC, its locations.
    async fn preflight(&self, made: &Made) -> Result<(), Error> {
        let mut problems = Vec::new();
        let own = |image: &&crate::plan::ImageChange| {
            crate::manifest::image::classify(&image.after, Some(self.dst.own_registry())).source
                == crate::manifest::image::Source::Own
                && matches!(self.dst.images, ImageStrategy::Copy | ImageStrategy::None)
        };
        let found = observe::registry_digests(
            self.client,
            &self.dst.org,
            made.plan.images.iter().filter(own).map(observe::landing),
        )
        .await?;
        for image in made.plan.images.iter().filter(own) {
            let (repository, tag) = observe::landing(image);
            match (found.get(&(repository.clone(), tag.clone())).cloned().flatten(), &image.digest)
            {
                (None, _) => problems.push(format!(
                    "image {repository}:{tag} is not in {}'s registry",
                    self.dst.org
                )),
                (Some(found), Some(wanted)) if &found != wanted => {
                    problems.push(format!(
                        "image {repository}:{tag} in {} is {found}, not {wanted}",
                        self.dst.org
                    ));
                }
                _ => {}
            }
        }
        problems.sort();
        problems.dedup();
        if let ImageStrategy::PullSecret { secret } = &self.dst.images {
            let id = ResourceId::new(Kind::Secret, secret.clone());
            let linked = made.rendered.iter().filter(|r| r.id.kind == Kind::Gvc).any(|gvc| {
                gvc.body.pointer("/spec/pullSecretLinks").and_then(Value::as_array).is_some_and(
                    |links| {
                        links
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|l| l.rsplit('/').next() == Some(secret.as_str()))
                    },
                )
            });
            let data = match made.rendered.iter().find(|r| r.id == id) {
                Some(rendered) => rendered.body.get("data").cloned(),
                None => {
                    let path = paths::item(&self.dst.org, &self.dst.gvc, Kind::Secret, secret);
                    self.client
                        .get_opt(&format!("{path}/-reveal"))
                        .await?
                        .and_then(|s| s.get("data").cloned())
                }
            };
            match (linked, data) {
                (false, _) | (_, None) => {
                    problems.push(format!(
                        "pull secret `{secret}` must exist and be in the GVC's pullSecretLinks"
                    ));
                }
                (true, Some(data)) => {
                    let hosts = crate::manifest::image::docker_hosts(&data);
                    if let Some(src) = self.src.filter(|src| !hosts.contains(&src.registry)) {
                        problems.push(format!(
                            "pull secret `{secret}` has no credentials for {}, the registry of {} (it has: {})",
                            src.registry,
                            src.name,
                            if hosts.is_empty() { "none".to_owned() } else { hosts.join(", ") }
                        ));
                    }
                }
            }
        }
        for gvc in made.rendered.iter().filter(|r| r.id.kind == Kind::Gvc) {
            let links =
                gvc.body.pointer("/spec/staticPlacement/locationLinks").and_then(Value::as_array);
            for location in links.into_iter().flatten().filter_map(Value::as_str) {
                let name = location.rsplit('/').next().unwrap_or(location);
                if self
                    .client
                    .get_opt(&format!("/org/{}/location/{name}", self.dst.org))
                    .await?
                    .is_none()
                {
                    problems.push(format!("location {name} does not exist in {}", self.dst.org));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PromoteError::Preflight { environment: self.dst.name.clone(), problems }.into())
        }
    }
}

fn copy_error(reference: &str, error: crate::registry::InvalidReference) -> PromoteError {
    PromoteError::Copy {
        image: reference.to_owned(),
        source: crate::registry::RegistryError::from(error),
    }
}

/// Every container image of the release (changed or not), with digests:
/// an external image's is the one the source ran (`None` when unknown).
fn release_images(made: &Made) -> Vec<ReleaseImage> {
    made.rendered
        .iter()
        .filter(|r| r.id.kind == Kind::Workload)
        .flat_map(|r| {
            plan::container_images(&r.body)
                .into_iter()
                .map(|(container, image)| {
                    let key = (r.id.name.clone(), container.to_owned());
                    let ran = made.images.external.get(&key).and_then(|e| e.digest.clone());
                    let written = crate::manifest::image::classify(image, None).digest;
                    ReleaseImage {
                        workload: r.id.name.clone(),
                        container: container.to_owned(),
                        image: image.to_owned(),
                        digest: written.map(str::to_owned).or(ran),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

impl From<PromoteError> for Error {
    fn from(error: PromoteError) -> Self {
        Error::Promote(Box::new(error))
    }
}
