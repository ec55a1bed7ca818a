//! The planner of a deploy: git into an environment that has no source
//! (`ferry deploy ENV`, and `ferry plan ENV` of the first environment,
//! which previews it). Pure.
//!
//! A deploy is a promotion without a source ([`super::promotion`] makes
//! the plan); what this module decides is which images it runs:
//!
//! 1. [`wanted`]: every container image of the environment's own registry,
//!    as git writes it, or as an `--image NAME=REF` replaces it (what CI
//!    just built and pushed, without committing a tag to git). `NAME` is a
//!    container name or a repository name;
//! 2. the edge asks the environment's registry for each tag's digest;
//! 3. [`pinned`]: each image pinned by that digest, or the deploy refused,
//!    naming every image the registry lacks, before anything is written.
//!
//! The release it records holds those digests, so that the next promotion
//! out of the environment ships exactly them.
//!
//! 4. [`unpinned`]: no pin without a change. A container that already runs
//!    git's tag, which the environment's current release recorded at the
//!    digest that tag still resolves to, is left running the tag: it runs
//!    exactly what was released, and writing the pin would roll the
//!    workload out for nothing (an environment `ferry import --adopt`
//!    recorded plans as no changes). The release still records the digest.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use serde_json::Value;

use crate::config::{Environment, PromotionConfig};
use crate::diagnostic::{Problem, Problems};
use crate::manifest::image::{Source, classify};
use crate::manifest::{Kind, ResourceId};
use crate::release::Release;
use crate::render::{ImageMap, PromotedImage, Rendered};

/// `--image NAME=REF`: the image of the containers named `NAME`, or of
/// those running repository `NAME`, replaced by `REF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageOverride {
    pub name: String,
    pub reference: String,
}

impl FromStr for ImageOverride {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((name, reference)) if !name.trim().is_empty() && !reference.trim().is_empty() => {
                Ok(ImageOverride { name: name.trim().into(), reference: reference.trim().into() })
            }
            _ => Err(format!(
                "`{text}` is not CONTAINER_OR_REPOSITORY=IMAGE (for example api=//image/api:abc123)"
            )),
        }
    }
}

/// One container image of the environment's own registry that a deploy
/// runs, before its digest is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub workload: String,
    pub container: String,
    pub repository: String,
    /// The tag (`latest` when none is written).
    pub tag: String,
    /// The digest written (in git or in `--image`), if any.
    pub digest: Option<String>,
    /// The `--image` that chose it.
    pub from_override: Option<String>,
}

impl Wanted {
    /// The `(repository, tag)` to look up in the registry, when no digest
    /// is written.
    pub fn lookup(&self) -> Option<(String, String)> {
        self.digest.is_none().then(|| (self.repository.clone(), self.tag.clone()))
    }
}

/// Why `env` is not deployed into: it has a source, so it is promoted into
/// (`--force` deploys anyway).
pub fn refusal(config: &PromotionConfig, env: &Environment) -> Option<Problem> {
    let source = config.source_of(env)?;
    Some(
        Problem::new(
            "ferry::deploy::has-source",
            format!(
                "{} is promoted into from {}: deploy releases git only into an environment with no source",
                env.name, source.name
            ),
        )
        .help(format!(
            "run `ferry promote {} {}` to ship what runs in {}, or pass --force to release git into {} anyway",
            source.name, env.name, source.name, env.name
        )),
    )
}

/// The own-registry images of `rendered`'s workloads (rendered for `env`
/// with the images as written), each replaced by the `--image` that names
/// its container or its repository. Refused: an `--image` that names no
/// such container, whose image is not of `env`'s registry, or two that
/// name the same container.
pub fn wanted(
    env: &Environment,
    rendered: &[Rendered],
    overrides: &[ImageOverride],
) -> Result<Vec<Wanted>, Problems> {
    let mut problems = Problems::default();
    for image in overrides {
        if classify(&image.reference, Some(env.own_registry())).source != Source::Own {
            problems.push(
                Problem::new(
                    "ferry::deploy::image-not-own",
                    format!(
                        "--image {}={}: not an image of {}'s registry ({})",
                        image.name, image.reference, env.name, env.registry
                    ),
                )
                .help("--image replaces an image of the environment's own registry, such as `//image/api:abc123`; write other images in git"),
            );
        }
    }
    let mut found = Vec::new();
    let mut used = BTreeSet::new();
    let (mut containers, mut repositories) = (BTreeSet::new(), BTreeSet::new());
    for resource in rendered.iter().filter(|r| r.id.kind == Kind::Workload) {
        for (container, image) in super::container_images(&resource.body) {
            let written = classify(image, Some(env.own_registry()));
            if written.source != Source::Own {
                continue;
            }
            containers.insert(container.to_owned());
            repositories.insert(written.repository.to_owned());
            let named: Vec<&ImageOverride> = overrides
                .iter()
                .filter(|o| o.name == container || o.name == written.repository)
                .collect();
            used.extend(named.iter().map(|o| o.name.clone()));
            let distinct: BTreeSet<&str> = named.iter().map(|o| o.reference.as_str()).collect();
            if distinct.len() > 1 {
                problems.push(Problem::new(
                    "ferry::deploy::image-ambiguous",
                    format!(
                        "workload/{} container {container}: named by --image {}",
                        resource.id.name,
                        named
                            .iter()
                            .map(|o| format!("{}={}", o.name, o.reference))
                            .collect::<Vec<_>>()
                            .join(" and --image ")
                    ),
                ).help("give each container one image: name it by its container or by its repository, not both"));
                continue;
            }
            let chosen = named.first();
            let reference = chosen.map_or(image, |o| o.reference.as_str());
            let parsed = classify(reference, Some(env.own_registry()));
            found.push(Wanted {
                workload: resource.id.name.clone(),
                container: container.to_owned(),
                repository: parsed.repository.to_owned(),
                tag: parsed.tag.unwrap_or("latest").to_owned(),
                digest: parsed.digest.map(str::to_owned),
                from_override: chosen.map(|o| format!("{}={}", o.name, o.reference)),
            });
        }
    }
    for image in overrides.iter().filter(|o| !used.contains(&o.name)) {
        let list = |names: &BTreeSet<String>| names.iter().cloned().collect::<Vec<_>>().join(", ");
        problems.push(
            Problem::new(
                "ferry::deploy::image-unmatched",
                format!(
                    "--image {}={}: no container of {}'s registry is named {} or runs repository {}",
                    image.name, image.reference, env.name, image.name, image.name
                ),
            )
            .help(format!(
                "containers: {}; repositories: {}",
                list(&containers),
                list(&repositories)
            )),
        );
    }
    problems.into_result(found)
}

/// The images pinned by digest, as [`crate::render`] takes them: a written
/// digest as it is, a tag by the digest `env`'s registry gives for it
/// (`found`, by repository and tag). Refused, naming each, when the
/// registry lacks any.
pub fn pinned(
    env: &Environment,
    wanted: &[Wanted],
    found: &HashMap<(String, String), Option<String>>,
) -> Result<ImageMap, Problems> {
    let mut problems = Problems::default();
    let mut images = ImageMap::new();
    for image in wanted {
        let digest = match (&image.digest, image.lookup()) {
            (Some(digest), _) => Some(digest.clone()),
            (None, Some(key)) => found.get(&key).cloned().flatten(),
            (None, None) => None,
        };
        let Some(digest) = digest else {
            let by = image
                .from_override
                .as_ref()
                .map_or_else(|| "as written in git".to_owned(), |o| format!("from --image {o}"));
            problems.push(
                Problem::new(
                    "ferry::deploy::image-missing",
                    format!(
                        "workload/{} container {}: image {}:{} ({by}) is not in {}'s registry ({})",
                        image.workload,
                        image.container,
                        image.repository,
                        image.tag,
                        env.name,
                        env.registry
                    ),
                )
                .help("push the image first (CI builds and pushes before it deploys), or correct the tag"),
            );
            continue;
        };
        images.insert(
            (image.workload.clone(), image.container.clone()),
            PromotedImage {
                repository: image.repository.clone(),
                tag: Some(image.tag.clone()),
                digest: Some(digest),
                registry: None,
            },
        );
    }
    problems.into_result(images)
}

/// A container a deploy leaves running by its tag ([`unpinned`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpinned {
    pub workload: String,
    pub container: String,
    /// The reference the live container runs, written back as it is.
    pub image: String,
    /// The digest its tag resolves to now, which the release records.
    pub digest: String,
}

/// No pin without a change: of the images [`pinned`] pinned (`images`),
/// those git writes by tag while the live container (`live`, by workload)
/// runs the same repository and tag, unpinned, and `current` (the
/// environment's newest succeeded release) recorded that container at the
/// digest the tag resolves to now. A tag that moved is pinned as before.
pub fn unpinned(
    env: &Environment,
    wanted: &[Wanted],
    images: &ImageMap,
    live: &HashMap<ResourceId, Value>,
    current: Option<&Release>,
) -> Vec<Unpinned> {
    let Some(current) = current else { return Vec::new() };
    let own = Some(env.own_registry());
    wanted
        .iter()
        .filter(|w| w.digest.is_none())
        .filter_map(|w| {
            let key = (w.workload.clone(), w.container.clone());
            let digest = images.get(&key)?.digest.clone()?;
            let body = live.get(&ResourceId::new(Kind::Workload, w.workload.as_str()))?;
            let (_, running) =
                super::container_images(body).into_iter().find(|(c, _)| *c == w.container)?;
            let runs = classify(running, own);
            let same_tag = runs.source == Source::Own
                && runs.repository == w.repository
                && runs.digest.is_none()
                && runs.tag.unwrap_or("latest") == w.tag;
            let recorded = current
                .images
                .iter()
                .find(|i| i.workload == w.workload && i.container == w.container)?;
            let released = recorded.digest.as_deref() == Some(digest.as_str())
                && classify(&recorded.image, own).repository == w.repository;
            (same_tag && released).then(|| Unpinned {
                workload: w.workload.clone(),
                container: w.container.clone(),
                image: running.to_owned(),
                digest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Location, SourceFile};
    use crate::graph::Graph;
    use crate::plan::promotion::{self, Inputs};
    use crate::plan::{Check, ImagesFrom, ManifestsFrom, Target, image_changes};
    use serde_json::{Value, json};

    const CONFIG: &str = "manifests:\n  path: m\ntopology: org-per-env\nenvironments:\n  - name: dev\n    org: acme-dev\n    gvc: app\n    tokenEnv: T0\n  - name: staging\n    org: acme-staging\n    gvc: app\n    tokenEnv: T1\n";

    fn config() -> PromotionConfig {
        let source = SourceFile::new("promotion.yaml", CONFIG.to_owned());
        crate::config::parse(&source).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn workload(name: &str, containers: &[(&str, &str)]) -> Rendered {
        let containers: Vec<Value> =
            containers.iter().map(|(c, i)| json!({"name": c, "image": i})).collect();
        Rendered::new(
            format!("workload/{name}").parse().unwrap_or_else(|_| panic!("{name}")),
            json!({"kind": "workload", "name": name, "spec": {"containers": containers}}),
            Location::new(&SourceFile::new("m.yaml", String::new()), 0..0),
        )
    }

    fn example() -> Vec<Rendered> {
        vec![
            workload("api", &[("main", "/org/acme-dev/image/api:1.4.2"), ("proxy", "nginx:1.25")]),
            workload("db-migrate", &[("main", "/org/acme-dev/image/api:1.4.2")]),
            workload("web", &[("main", "/org/acme-dev/image/web:1.4.2")]),
        ]
    }

    fn image(name: &str, reference: &str) -> ImageOverride {
        format!("{name}={reference}").parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn codes(problems: Problems) -> Vec<&'static str> {
        problems.into_iter().map(|p| p.code).collect()
    }

    #[test]
    fn an_environment_with_a_source_is_refused_the_first_is_not() {
        let config = config();
        assert!(refusal(&config, &config.environments[0]).is_none());
        let refused = refusal(&config, &config.environments[1]).map(|p| p.message.clone());
        assert_eq!(
            refused.as_deref(),
            Some(
                "staging is promoted into from dev: deploy releases git only into an environment with no source"
            )
        );
    }

    #[test]
    fn an_override_names_a_repository_or_a_container_and_only_own_images() {
        let config = config();
        let dev = &config.environments[0];
        let wanted = wanted(dev, &example(), &[image("api", "//image/api:abc123")])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let tags: Vec<(&str, &str, &str, bool)> = wanted
            .iter()
            .map(|w| {
                (
                    w.workload.as_str(),
                    w.repository.as_str(),
                    w.tag.as_str(),
                    w.from_override.is_some(),
                )
            })
            .collect();
        // Both containers running repository api; web as written; nginx
        // (Docker Hub) is not the registry's.
        assert_eq!(
            tags,
            [
                ("api", "api", "abc123", true),
                ("db-migrate", "api", "abc123", true),
                ("web", "web", "1.4.2", false)
            ]
        );
        let by_container = wanted_of(dev, &[image("main", "//image/app@sha256:d")]);
        assert!(by_container.iter().all(|w| w.repository == "app"
            && w.digest.as_deref() == Some("sha256:d")
            && w.lookup().is_none()));
    }

    fn wanted_of(env: &Environment, overrides: &[ImageOverride]) -> Vec<Wanted> {
        wanted(env, &example(), overrides).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn overrides_that_match_nothing_leave_the_registry_or_conflict_are_all_reported() {
        let config = config();
        let problems = wanted(
            &config.environments[0],
            &example(),
            &[
                image("nginx", "//image/nginx:2"),
                image("web", "ghcr.io/acme/web:2"),
                image("api", "//image/api:2"),
                image("main", "//image/api:3"),
            ],
        )
        .err()
        .unwrap_or_default();
        assert_eq!(
            codes(problems),
            [
                "ferry::deploy::image-not-own",
                "ferry::deploy::image-ambiguous",
                "ferry::deploy::image-ambiguous",
                "ferry::deploy::image-ambiguous",
                "ferry::deploy::image-unmatched"
            ]
        );
        assert!("api".parse::<ImageOverride>().is_err());
        assert!("=//image/api:1".parse::<ImageOverride>().is_err());
    }

    #[test]
    fn tags_are_pinned_by_the_registrys_digest_and_every_missing_one_is_named() {
        let config = config();
        let dev = &config.environments[0];
        let wanted = wanted_of(dev, &[image("api", "//image/api:abc123")]);
        let found = HashMap::from([
            (("api".to_owned(), "abc123".to_owned()), Some("sha256:a".to_owned())),
            (("web".to_owned(), "1.4.2".to_owned()), None),
        ]);
        let problems = pinned(dev, &wanted, &found).err().unwrap_or_default();
        let messages: Vec<String> = problems.into_iter().map(|p| p.message.clone()).collect();
        assert_eq!(
            messages,
            [
                "workload/web container main: image web:1.4.2 (as written in git) is not in dev's registry (acme-dev.registry.cpln.io)"
            ]
        );
        let found = HashMap::from([
            (("api".to_owned(), "abc123".to_owned()), Some("sha256:a".to_owned())),
            (("web".to_owned(), "1.4.2".to_owned()), Some("sha256:w".to_owned())),
        ]);
        let images = pinned(dev, &wanted, &found).unwrap_or_else(|e| panic!("{e:?}"));
        let api = &images[&("db-migrate".to_owned(), "main".to_owned())];
        assert_eq!((api.tag.as_deref(), api.digest.as_deref()), (Some("abc123"), Some("sha256:a")));
    }

    /// A release of dev that recorded `api`'s main container at `digest`.
    fn released(image: &str, digest: &str) -> Release {
        let text = format!(
            r#"{{"schema": "ferry.release/v1", "environment": "dev", "revision": 1, "kind": "pre-ferry",
                "source": null, "commit": null, "plan_hash": "", "actor": {{"user": null, "ci_run": null}},
                "started": "", "finished": "", "outcome": "succeeded", "rolled_back": false,
                "images": [{{"workload": "api", "container": "main", "image": "{image}", "digest": "{digest}"}}]}}"#
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_tag_that_runs_what_was_released_is_not_pinned_a_tag_that_moved_is() {
        let config = config();
        let dev = &config.environments[0];
        let git = [workload("api", &[("main", "//image/api:1.4.2")])];
        let wanted = wanted(dev, &git, &[]).unwrap_or_else(|e| panic!("{e:?}"));
        let now = |digest: &str| {
            let found = HashMap::from([(("api".into(), "1.4.2".into()), Some(digest.to_owned()))]);
            pinned(dev, &wanted, &found).unwrap_or_else(|e| panic!("{e:?}"))
        };
        let live = |image: &str| {
            HashMap::from([(
                ResourceId::new(Kind::Workload, "api"),
                json!({"spec": {"containers": [{"name": "main", "image": image}]}}),
            )])
        };
        let running = "/org/acme-dev/image/api:1.4.2";
        let release = released(running, "sha256:a");
        // The tag still resolves to what the release recorded: left as it runs.
        assert_eq!(
            unpinned(dev, &wanted, &now("sha256:a"), &live(running), Some(&release)),
            [Unpinned {
                workload: "api".into(),
                container: "main".into(),
                image: running.into(),
                digest: "sha256:a".into(),
            }]
        );
        // The tag moved since: pinned, as any deploy pins.
        assert!(
            unpinned(dev, &wanted, &now("sha256:b"), &live(running), Some(&release)).is_empty()
        );
        // Not what the rule covers: no release yet, a live pin, another
        // tag or repository live, a release of another repository.
        for (image, release) in [
            (running, None),
            ("/org/acme-dev/image/api@sha256:a", Some(&release)),
            ("/org/acme-dev/image/api:1.4.1", Some(&release)),
            ("/org/acme-dev/image/web:1.4.2", Some(&release)),
            (running, Some(&released("/org/acme-dev/image/web:1.4.2", "sha256:a"))),
        ] {
            assert!(
                unpinned(dev, &wanted, &now("sha256:a"), &live(image), release).is_empty(),
                "{image}"
            );
        }
        // git writing the digest itself is git's to say.
        let by_digest = [workload("api", &[("main", "//image/api:1.4.2@sha256:a")])];
        let written = wanted_of_rendered(dev, &by_digest);
        let images = pinned(dev, &written, &HashMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(unpinned(dev, &written, &images, &live(running), Some(&release)).is_empty());
    }

    fn wanted_of_rendered(env: &Environment, rendered: &[Rendered]) -> Vec<Wanted> {
        wanted(env, rendered, &[]).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The whole deploy plan from data: rendered with the pinned images,
    /// planned with no source against a dev that runs nothing yet.
    #[test]
    fn a_deploy_plan_writes_pinned_images_checks_them_copies_nothing_and_records_the_digests() {
        let config = config();
        let dev = &config.environments[0];
        let wanted = wanted_of(dev, &[image("api", "//image/api:abc123")]);
        let found: HashMap<(String, String), Option<String>> = wanted
            .iter()
            .filter_map(Wanted::lookup)
            .map(|(r, t)| {
                let digest = format!("sha256:{r}{t}");
                ((r, t), Some(digest))
            })
            .collect();
        let images = pinned(dev, &wanted, &found).unwrap_or_else(|e| panic!("{e:?}"));
        // As crate::render writes them: pinned in the environment's registry.
        let api = "/org/acme-dev/image/api@sha256:apiabc123";
        let rendered = [
            workload("api", &[("main", api), ("proxy", "nginx:1.25")]),
            workload("db-migrate", &[("main", api)]),
            workload("web", &[("main", "/org/acme-dev/image/web@sha256:web1.4.2")]),
        ];
        let mut changes = image_changes(rendered.iter().map(|r| (&r.id, &r.body)), &HashMap::new());
        for change in &mut changes {
            change.tag = images
                .get(&(change.workload.clone(), change.container.clone()))
                .and_then(|p| p.tag.clone());
            change.copy = Some(false);
        }
        let graph = Graph { waves: vec![], dependencies: vec![] };
        let plan = promotion::plan(Inputs {
            target: Target {
                environment: "dev".into(),
                org: dev.org.clone(),
                gvc: dev.gvc.clone(),
                source: None,
                revision: None,
                manifests_from: ManifestsFrom::PlanFile,
                images_from: ImagesFrom::Manifests,
            },
            graph: &graph,
            src: None,
            dst: dev,
            rendered: &rendered,
            live: HashMap::new(),
            applied: Default::default(),
            managed: vec![],
            images: changes,
            external: &HashMap::new(),
            prune: false,
            adopted_digests: &HashMap::new(),
            unpinned: &HashMap::new(),
        });
        assert!(plan.steps.copies.is_empty(), "a deploy copies nothing");
        assert!(plan.steps.checks.contains(&Check::Image {
            repository: "api".into(),
            tag: "abc123".into(),
            digest: Some("sha256:apiabc123".into()),
        }));
        assert_eq!(plan.steps.release.source, None);
        let recorded: Vec<(&str, Option<&str>)> = plan
            .steps
            .release
            .images
            .iter()
            .map(|i| (i.workload.as_str(), i.digest.as_deref()))
            .collect();
        assert_eq!(
            recorded,
            [
                ("api", Some("sha256:apiabc123")),
                ("api", None),
                ("db-migrate", Some("sha256:apiabc123")),
                ("web", Some("sha256:web1.4.2"))
            ]
        );
        assert_eq!(plan.steps.writes.len(), 3);
    }
}
