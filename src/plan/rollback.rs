//! The planner of a rollback: an environment's workloads re-pointed at
//! the images an earlier release ran, by digest, container by container,
//! and nothing else (Control Plane has no rollback primitive; its
//! documented way back is a PATCH of each container's image, merged by
//! name with `$patch/containers`, after checking that the image is still
//! in the org's registry: seed `004`, reference §4.2 and §6.5).
//!
//! Pure: the environment's release records, the live bodies of the
//! release's workloads and what the registries hold go in; a [`Plan`]
//! (PATCH writes, image checks, copies back from the source's registry
//! when the plan file allows them, the release record) or every reason
//! the rollback is refused comes out. Reading those inputs is
//! [`crate::rollback`]'s job; carrying the plan out is
//! [`crate::execute`]'s, as for any plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use miette::Diagnostic;
use serde_json::{Value, json};

use crate::config::Environment;
use crate::diff::Action;
use crate::graph::Graph;
use crate::manifest::image::{Source, classify};
use crate::manifest::{Kind, ResourceId};
use crate::release::{Outcome, Release, ReleaseImage, ReleaseKind};

use super::{
    Check, ImageChange, ImageCopy, ImagesFrom, Input, ManifestsFrom, Method, Plan, ReleaseInfo,
    Rollback, State, StepInput, Target, Write, build, container_images,
};

/// Tags a registry holds, by `(repository, digest)`.
pub type Holdings = HashMap<(String, String), BTreeSet<String>>;

/// What a rollback plan is made from.
pub struct Inputs<'a> {
    /// The environment rolled back.
    pub env: &'a Environment,
    /// The environment a missing image is copied back from (the target
    /// release's source), if any.
    pub src: Option<&'a Environment>,
    /// `env`'s readable release records, in any order.
    pub releases: &'a [Release],
    /// `--to`: the release to go back to (default: the newest succeeded
    /// release before the current one).
    pub to: Option<u64>,
    /// Live bodies of the target release's workloads that exist, by name.
    pub live: &'a HashMap<String, Value>,
    /// What `env`'s registry holds of the target release's own images.
    pub held: &'a Holdings,
    /// What `src`'s registry holds of those `env`'s registry lacks.
    pub source_held: &'a Holdings,
}

/// Why a rollback cannot be planned.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RollbackError {
    #[error("{environment} has no succeeded release {}to roll back to", before(*current))]
    #[diagnostic(
        code(ferry::rollback::nothing),
        help("`ferry history {environment}` lists its releases; `--to REVISION` picks one")
    )]
    NothingEarlier { environment: String, current: Option<u64> },

    #[error("{environment} has no readable release {revision}")]
    #[diagnostic(
        code(ferry::rollback::unknown),
        help("`ferry history {environment}` lists its releases")
    )]
    Unknown { environment: String, revision: u64 },

    #[error("release {revision} of {environment} failed: there is nothing it ran to go back to")]
    #[diagnostic(
        code(ferry::rollback::failed_release),
        help("roll back to a release that succeeded; `ferry history {environment}` lists them")
    )]
    NotSucceeded { environment: String, revision: u64 },

    #[error("cannot roll {environment} back to release {revision}")]
    #[diagnostic(code(ferry::rollback::refused), help("{}; nothing was written", listed(reasons)))]
    Refused { environment: String, revision: u64, reasons: Vec<Reason> },
}

fn before(current: Option<u64>) -> String {
    current.map_or_else(String::new, |c| format!("before release {c} "))
}

/// One reason a rollback is refused; all of them are reported together.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The workload's containers are not the ones the release ran.
    ContainersChanged { workload: String, then: Vec<String>, now: Vec<String> },
    /// The workload the release ran is gone.
    WorkloadGone { workload: String },
    /// The release recorded no digest for an image of the org's registry.
    NoDigest { workload: String, container: String, image: String },
    /// An image is not in the environment's registry and is not copied back.
    ImageMissing { image: String, org: String, copy: CopyBack },
}

/// Why a missing image is not copied back.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CopyBack {
    /// `rollback.copyMissingImages` is not set.
    NotAllowed { environment: String, source: Option<String> },
    /// The environment has no source to copy it from.
    NoSource,
    /// The source's registry lacks it too.
    SourceLacks { source: String },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ContainersChanged { workload, then, now } => write!(
                f,
                "the containers of workload/{workload} changed since (then: {}; now: {}), and a rollback re-points images only",
                then.join(", "),
                now.join(", ")
            ),
            Reason::WorkloadGone { workload } => {
                write!(f, "workload/{workload} no longer exists, and a rollback creates nothing")
            }
            Reason::NoDigest { workload, container, image } => write!(
                f,
                "the release recorded no digest for {image} (workload/{workload} {container})"
            ),
            Reason::ImageMissing { image, org, copy } => {
                write!(f, "image {image} is no longer in {org}'s registry")?;
                match copy {
                    CopyBack::NotAllowed { environment, source: Some(source) } => write!(
                        f,
                        " (set `rollback.copyMissingImages: true` on {environment} in the plan file to copy it back from {source}'s registry)"
                    ),
                    CopyBack::NotAllowed { .. } | CopyBack::NoSource => {
                        write!(f, " and there is no source environment to copy it back from")
                    }
                    CopyBack::SourceLacks { source } => {
                        write!(f, " nor in {source}'s registry to copy it back from")
                    }
                }
            }
        }
    }
}

/// The reasons, one sentence, `; `-separated.
pub fn listed(reasons: &[Reason]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The release running now (the newest that succeeded) and the one to go
/// back to: `to`, or the newest succeeded release before the current one.
pub fn choose<'a>(
    environment: &str,
    releases: &'a [Release],
    to: Option<u64>,
) -> Result<(Option<&'a Release>, &'a Release), RollbackError> {
    let mut succeeded: Vec<&Release> =
        releases.iter().filter(|r| r.outcome == Outcome::Succeeded).collect();
    succeeded.sort_by_key(|r| r.revision);
    let current = succeeded.last().copied();
    let target = match to {
        Some(revision) => {
            let found = releases.iter().find(|r| r.revision == revision).ok_or_else(|| {
                RollbackError::Unknown { environment: environment.to_owned(), revision }
            })?;
            if found.outcome != Outcome::Succeeded {
                return Err(RollbackError::NotSucceeded {
                    environment: environment.to_owned(),
                    revision,
                });
            }
            found
        }
        None => {
            succeeded.iter().rev().nth(1).copied().ok_or_else(|| RollbackError::NothingEarlier {
                environment: environment.to_owned(),
                current: current.map(|c| c.revision),
            })?
        }
    };
    Ok((current, target))
}

/// The images of `release` in `env`'s own registry, as `(repository,
/// digest)`: what the registries are asked about.
pub fn own_images(env: &Environment, release: &Release) -> Vec<(String, String)> {
    let mut images: Vec<(String, String)> = release
        .images
        .iter()
        .filter_map(|i| {
            let parsed = classify(&i.image, Some(env.own_registry()));
            let digest = parsed.digest.map(str::to_owned).or_else(|| i.digest.clone())?;
            (parsed.source == Source::Own).then(|| (parsed.repository.to_owned(), digest))
        })
        .collect();
    images.sort();
    images.dedup();
    images
}

/// Plans the rollback, or says every reason it cannot be done.
pub fn plan(inputs: &Inputs<'_>) -> Result<Plan, RollbackError> {
    let env = inputs.env;
    let (current, target) = choose(&env.name, inputs.releases, inputs.to)?;
    let mut reasons: Vec<Reason> = Vec::new();
    // Workload → its containers' images as the release ran them.
    let mut wanted: BTreeMap<&str, Vec<&ReleaseImage>> = BTreeMap::new();
    for image in &target.images {
        wanted.entry(image.workload.as_str()).or_default().push(image);
    }
    let mut desired: Vec<State> = Vec::new();
    let mut live: HashMap<ResourceId, State> = HashMap::new();
    let mut changes: Vec<ImageChange> = Vec::new();
    let mut writes: Vec<Write> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let mut copies: BTreeMap<String, ImageCopy> = BTreeMap::new();
    for (workload, images) in &wanted {
        let Some(body) = inputs.live.get(*workload) else {
            reasons.push(Reason::WorkloadGone { workload: (*workload).to_owned() });
            continue;
        };
        let running = container_images(body);
        let mut then: Vec<String> = images.iter().map(|i| i.container.clone()).collect();
        let mut now: Vec<String> = running.iter().map(|(c, _)| (*c).to_owned()).collect();
        then.sort();
        now.sort();
        if then != now {
            reasons.push(Reason::ContainersChanged { workload: (*workload).to_owned(), then, now });
            continue;
        }
        let mut patches: Vec<Value> = Vec::new();
        for image in images {
            let before = running.iter().find(|(c, _)| *c == image.container).map(|(_, i)| *i);
            let Some(after) = written(env, image) else {
                reasons.push(Reason::NoDigest {
                    workload: image.workload.clone(),
                    container: image.container.clone(),
                    image: image.image.clone(),
                });
                continue;
            };
            if before.is_some_and(|b| same(env, b, &after)) {
                continue;
            }
            let parsed = classify(&after, Some(env.own_registry()));
            let mut change = ImageChange {
                workload: image.workload.clone(),
                container: image.container.clone(),
                before: before.map(str::to_owned),
                after: after.clone(),
                tag: parsed.tag.map(str::to_owned),
                digest: parsed.digest.map(str::to_owned).or_else(|| image.digest.clone()),
                copy: Some(false),
                external: parsed.source.host().map(str::to_owned),
            };
            if parsed.source == Source::Own
                && let Some(digest) = change.digest.clone()
            {
                let key = (parsed.repository.to_owned(), digest.clone());
                let repository = key.0.clone();
                let tag = match inputs.held.get(&key).and_then(|tags| tags.first()) {
                    Some(tag) => Some(tag.clone()),
                    None => match copy_back(inputs, &key) {
                        Ok((source, tag)) => {
                            let destination = format!("{}/{repository}:{tag}", env.registry);
                            copies.insert(
                                destination.clone(),
                                ImageCopy {
                                    source: format!("{}/{repository}@{digest}", source.registry),
                                    destination,
                                },
                            );
                            change.copy = Some(true);
                            Some(tag)
                        }
                        Err(copy) => {
                            reasons.push(Reason::ImageMissing {
                                image: format!("{repository}@{digest}"),
                                org: env.org.clone(),
                                copy,
                            });
                            None
                        }
                    },
                };
                if let Some(tag) = tag {
                    let check = Check::Image { repository, tag: tag.clone(), digest: Some(digest) };
                    if !checks.contains(&check) {
                        checks.push(check);
                    }
                    change.tag = Some(tag);
                }
            }
            patches.push(json!({"name": image.container, "image": after}));
            changes.push(change);
        }
        if patches.is_empty() {
            continue;
        }
        let id = ResourceId::new(Kind::Workload, *workload);
        let mut after = body.clone();
        for patch in &patches {
            set_image(&mut after, patch);
        }
        desired.push(State { version: None, ..State::live(env, &id, &after) });
        live.insert(id.clone(), State::live(env, &id, body));
        writes.push(Write {
            id,
            action: Action::Update,
            method: Method::Patch,
            body: Some(json!({"spec": {"$patch/containers": patches}})),
            after_written: Vec::new(),
            after_ready: Vec::new(),
            gate: true,
            stamp: true,
        });
    }
    if !reasons.is_empty() {
        reasons.sort();
        reasons.dedup();
        return Err(RollbackError::Refused {
            environment: env.name.clone(),
            revision: target.revision,
            reasons,
        });
    }
    let release = ReleaseInfo {
        source: target.source.clone(),
        // The configuration stays the current release's: only images move.
        commit: current.and_then(|c| c.commit.clone()).or_else(|| target.commit.clone()),
        images: release_images(target, current),
        kind: Some(ReleaseKind::Rollback),
        note: Some(format!("rollback to {}", target.revision)),
        adopted: Vec::new(),
    };
    let mut plan = build(Input {
        target: Target {
            environment: env.name.clone(),
            org: env.org.clone(),
            gvc: env.gvc.clone(),
            source: inputs.src.map(|s| s.name.clone()),
            revision: None,
            manifests_from: ManifestsFrom::Unread,
            images_from: ImagesFrom::Release,
        },
        graph: &Graph { waves: Vec::new(), dependencies: Vec::new() },
        desired,
        live,
        managed: Vec::new(),
        images: changes,
        applied: crate::applied::Applied::default(),
        steps: StepInput {
            copies: copies.into_values().collect(),
            checks,
            release,
            writes: Some(writes),
            ..StepInput::default()
        },
    });
    plan.rollback = Some(Rollback {
        to: target.revision,
        current: current.map(|c| c.revision),
        not_restored: not_restored(target, current),
    });
    plan.hash = plan.compute_hash();
    Ok(plan)
}

/// The reference a container is set to: an image of the org's registry
/// as `/org/ORG/image/REPOSITORY@DIGEST`; any other as the release wrote
/// it. `None` for an own image whose digest was not recorded.
fn written(env: &Environment, image: &ReleaseImage) -> Option<String> {
    let parsed = classify(&image.image, Some(env.own_registry()));
    if parsed.source != Source::Own {
        return Some(image.image.clone());
    }
    let digest = parsed.digest.or(image.digest.as_deref())?;
    Some(format!("/org/{}/image/{}@{digest}", env.org, parsed.repository))
}

/// Whether two references name the same image: equal, or both of the
/// org's registry with the same repository and digest.
fn same(env: &Environment, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (classify(a, Some(env.own_registry())), classify(b, Some(env.own_registry())));
    a.source == Source::Own
        && b.source == Source::Own
        && a.repository == b.repository
        && a.digest.is_some()
        && a.digest == b.digest
}

/// Where a missing image is copied back from, and under which tag; or why
/// it cannot be.
fn copy_back<'a>(
    inputs: &Inputs<'a>,
    key: &(String, String),
) -> Result<(&'a Environment, String), CopyBack> {
    let env = inputs.env;
    if !env.copy_missing_images {
        return Err(CopyBack::NotAllowed {
            environment: env.name.clone(),
            source: inputs.src.map(|s| s.name.clone()),
        });
    }
    let source = inputs.src.ok_or(CopyBack::NoSource)?;
    inputs
        .source_held
        .get(key)
        .and_then(|tags| tags.first())
        .map(|tag| (source, tag.clone()))
        .ok_or_else(|| CopyBack::SourceLacks { source: source.name.clone() })
}

/// Sets the image of the container `patch` names in a workload body.
fn set_image(body: &mut Value, patch: &Value) {
    let containers = body.pointer_mut("/spec/containers").and_then(Value::as_array_mut);
    for container in containers.into_iter().flatten() {
        if container.get("name") == patch.get("name")
            && let (Some(slot), Some(image)) = (container.as_object_mut(), patch.get("image"))
        {
            slot.insert("image".to_owned(), image.clone());
        }
    }
}

/// The images the environment runs after the rollback: the target
/// release's, and those of workloads created since, as the current
/// release recorded them.
fn release_images(target: &Release, current: Option<&Release>) -> Vec<ReleaseImage> {
    let mut images = target.images.clone();
    let known: BTreeSet<&str> = target.images.iter().map(|i| i.workload.as_str()).collect();
    images.extend(
        current
            .into_iter()
            .flat_map(|c| &c.images)
            .filter(|i| !known.contains(i.workload.as_str()))
            .cloned(),
    );
    images
}

/// What a rollback leaves as it is, one sentence each.
fn not_restored(target: &Release, current: Option<&Release>) -> Vec<String> {
    let known: BTreeSet<&str> = target.images.iter().map(|i| i.workload.as_str()).collect();
    let since: BTreeSet<String> = current
        .into_iter()
        .flat_map(|c| &c.images)
        .filter(|i| !known.contains(i.workload.as_str()))
        .map(|i| format!("workload/{}", i.workload))
        .collect();
    let created = if since.is_empty() {
        format!("resources created since release {} stay", target.revision)
    } else {
        format!(
            "resources created since release {} stay, among them {}",
            target.revision,
            since.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    vec![
        "secrets: their payloads stay as they are now".to_owned(),
        "configuration: every field but the containers' images (env, resources, ports, probes, scaling), and the GVC, identities, policies and domains stay as they are now".to_owned(),
        created,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::release::Actor;

    const D1: &str = "sha256:1111";
    const D2: &str = "sha256:2222";
    const D3: &str = "sha256:3333";
    const D4: &str = "sha256:4444";

    fn environments(copy_missing: bool) -> Vec<Environment> {
        let rollback = if copy_missing { ", rollback: {copyMissingImages: true}" } else { "" };
        let text = format!(
            "manifests: {{path: m}}\ntopology: org-per-env\nenvironments:\n  - {{name: staging, org: acme-staging, gvc: app, tokenEnv: T1}}\n  - {{name: prod, org: acme-prod, gvc: app, tokenEnv: T2{rollback}}}\n"
        );
        crate::config::parse(&SourceFile::new("promotion.yaml", text))
            .unwrap_or_else(|e| panic!("{e:?}"))
            .environments
    }

    fn image(workload: &str, container: &str, image: &str) -> ReleaseImage {
        let digest = image.split_once('@').map(|(_, d)| d.to_owned());
        ReleaseImage {
            workload: workload.into(),
            container: container.into(),
            image: image.into(),
            digest,
        }
    }

    fn release(revision: u64, outcome: Outcome, images: Vec<ReleaseImage>) -> Release {
        Release {
            schema: crate::release::SCHEMA.into(),
            environment: "prod".into(),
            revision,
            kind: Some(ReleaseKind::Promote),
            source: Some("staging".into()),
            commit: Some(format!("c0ffee{revision}")),
            images,
            plan_hash: String::new(),
            actor: Actor::default(),
            started: String::new(),
            finished: String::new(),
            outcome,
            rolled_back: false,
            message: None,
            approval: None,
            pending: None,
            app: None,
            shared_changed: Vec::new(),
        }
    }

    fn api(digest: &str) -> ReleaseImage {
        image("api", "main", &format!("/org/acme-prod/image/api@{digest}"))
    }

    fn workload(containers: &[(&str, &str)]) -> Value {
        let containers: Vec<Value> = containers
            .iter()
            .map(|(name, image)| json!({"name": name, "image": image, "cpu": "50m"}))
            .collect();
        json!({"kind": "workload", "name": "api", "version": 7, "tags": {"ferry/release": "3"},
               "spec": {"type": "standard", "containers": containers}})
    }

    fn holdings(entries: &[(&str, &str, &str)]) -> Holdings {
        let mut held = Holdings::new();
        for (repository, digest, tag) in entries {
            held.entry(((*repository).to_owned(), (*digest).to_owned()))
                .or_default()
                .insert((*tag).to_owned());
        }
        held
    }

    struct Case {
        copy_missing: bool,
        releases: Vec<Release>,
        to: Option<u64>,
        live: HashMap<String, Value>,
        held: Holdings,
        source_held: Holdings,
    }

    impl Case {
        /// Three succeeded releases of api (D1, D2, D3); prod runs D3.
        fn three() -> Self {
            Case {
                copy_missing: false,
                releases: vec![
                    release(1, Outcome::Succeeded, vec![api(D1)]),
                    release(2, Outcome::Succeeded, vec![api(D2)]),
                    release(3, Outcome::Succeeded, vec![api(D3)]),
                ],
                to: None,
                live: HashMap::from([(
                    "api".to_owned(),
                    workload(&[("main", &format!("/org/acme-prod/image/api@{D3}"))]),
                )]),
                held: holdings(&[("api", D1, "1.0"), ("api", D2, "2.0"), ("api", D3, "3.0")]),
                source_held: Holdings::new(),
            }
        }

        fn plan(&self) -> Result<Plan, RollbackError> {
            let envs = environments(self.copy_missing);
            plan(&Inputs {
                env: &envs[1],
                src: Some(&envs[0]),
                releases: &self.releases,
                to: self.to,
                live: &self.live,
                held: &self.held,
                source_held: &self.source_held,
            })
        }
    }

    fn reasons(result: Result<Plan, RollbackError>) -> Vec<Reason> {
        match result {
            Err(RollbackError::Refused { reasons, .. }) => reasons,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn by_default_the_previous_succeeded_release_comes_back_by_digest_through_a_patch() {
        let plan = Case::three().plan().unwrap_or_else(|e| panic!("{e}"));
        let rollback = plan.rollback.clone().unwrap_or_else(|| panic!("a rollback"));
        assert_eq!((rollback.to, rollback.current), (2, Some(3)));
        assert_eq!(plan.steps.writes.len(), 1);
        let write = &plan.steps.writes[0];
        assert_eq!(
            (write.id.to_string(), &write.method),
            ("workload/api".to_owned(), &Method::Patch)
        );
        assert!(write.gate && write.stamp);
        assert_eq!(
            write.body,
            Some(json!({"spec": {"$patch/containers": [
                {"name": "main", "image": format!("/org/acme-prod/image/api@{D2}")}
            ]}}))
        );
        // Nothing else: no copies, the image checked in prod's registry.
        assert!(plan.steps.copies.is_empty());
        assert_eq!(
            plan.steps.checks,
            [Check::Image { repository: "api".into(), tag: "2.0".into(), digest: Some(D2.into()) }]
        );
        assert_eq!(plan.resources.len(), 1);
        assert_eq!(plan.resources[0].action, Action::Update);
        assert_eq!(plan.resources[0].changes.len(), 1, "{:?}", plan.resources[0].changes);
        assert_eq!(plan.resources[0].changes[0].path, "spec.containers[main].image");
        assert!(plan.resources[0].live.exists && plan.resources[0].live.fingerprint.is_some());
        let release = &plan.steps.release;
        assert_eq!(release.kind, Some(ReleaseKind::Rollback));
        assert_eq!(release.note.as_deref(), Some("rollback to 2"));
        assert_eq!(release.images, [api(D2)]);
        assert_eq!(
            release.commit.as_deref(),
            Some("c0ffee3"),
            "the configuration stays release 3's"
        );
        assert!(rollback.not_restored.iter().any(|l| l.starts_with("secrets")));
        assert_eq!(plan.hash, plan.compute_hash());
        let text = crate::plan::text(&plan, crate::plan::Style::default());
        assert!(text.contains("Rollback: prod (now release 3) back to the images of release 2"));
        assert!(text.contains("Not restored by a rollback:\n  - secrets"), "{text}");
    }

    #[test]
    fn failed_releases_are_skipped_and_to_picks_one() {
        let mut case = Case::three();
        case.releases.push(release(4, Outcome::Failed, vec![api(D4)]));
        case.releases[1].outcome = Outcome::Failed;
        let plan = case.plan().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.rollback.map(|r| (r.to, r.current)), Some((1, Some(3))));
        case.to = Some(3);
        let same = case.plan().unwrap_or_else(|e| panic!("{e}"));
        assert!(same.steps.writes.is_empty() && !same.summary.has_changes(), "3 runs already");
        case.to = Some(2);
        assert!(matches!(case.plan(), Err(RollbackError::NotSucceeded { revision: 2, .. })));
        case.to = Some(9);
        assert!(matches!(case.plan(), Err(RollbackError::Unknown { revision: 9, .. })));
        case.releases.truncate(1);
        case.to = None;
        let nothing = case.plan().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            nothing,
            Err("prod has no succeeded release before release 1 to roll back to".into())
        );
    }

    #[test]
    fn a_changed_container_set_or_a_gone_workload_is_refused_by_name() {
        let mut case = Case::three();
        case.live.insert(
            "api".into(),
            workload(&[("main", "/org/acme-prod/image/api:3.0"), ("sidecar", "envoy:1")]),
        );
        case.releases[1].images.push(image("worker", "main", &format!("//image/worker@{D1}")));
        assert_eq!(
            reasons(case.plan()),
            [
                Reason::ContainersChanged {
                    workload: "api".into(),
                    then: vec!["main".into()],
                    now: vec!["main".into(), "sidecar".into()],
                },
                Reason::WorkloadGone { workload: "worker".into() },
            ]
        );
    }

    #[test]
    fn a_missing_image_is_refused_unless_it_can_be_copied_back() {
        let mut case = Case::three();
        case.held = holdings(&[("api", D3, "3.0")]);
        let refused = reasons(case.plan());
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].to_string(),
            "image api@sha256:2222 is no longer in acme-prod's registry (set `rollback.copyMissingImages: true` on prod in the plan file to copy it back from staging's registry)"
        );
        case.copy_missing = true;
        assert!(matches!(
            &reasons(case.plan())[0],
            Reason::ImageMissing { copy: CopyBack::SourceLacks { .. }, .. }
        ));
        case.source_held = holdings(&[("api", D2, "2.0")]);
        let plan = case.plan().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.steps.copies,
            [ImageCopy {
                source: format!("acme-staging.registry.cpln.io/api@{D2}"),
                destination: "acme-prod.registry.cpln.io/api:2.0".into(),
            }]
        );
        assert_eq!(
            plan.steps.checks,
            [Check::Image { repository: "api".into(), tag: "2.0".into(), digest: Some(D2.into()) }]
        );
        assert_eq!(plan.summary.images_to_copy, 1);
    }

    #[test]
    fn only_containers_that_differ_are_patched_and_external_images_are_kept_as_written() {
        let mut case = Case::three();
        case.releases[1].images = vec![
            image("api", "main", &format!("/org/acme-prod/image/api@{D3}")),
            image("api", "cache", "redis:7"),
        ];
        case.live.insert(
            "api".into(),
            workload(&[("main", &format!("//image/api@{D3}")), ("cache", "redis:8")]),
        );
        let plan = case.plan().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.steps.writes[0].body,
            Some(json!({"spec": {"$patch/containers": [{"name": "cache", "image": "redis:7"}]}}))
        );
        assert!(plan.steps.checks.is_empty(), "an external image is not in the org's registry");
        assert_eq!(plan.images[0].external.as_deref(), Some("docker.io"));
    }
}
