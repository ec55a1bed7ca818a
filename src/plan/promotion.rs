//! The planner of a promotion into an environment (and of a deploy from git,
//! which is a promotion without a source). Pure: what was read (the
//! rendered desired state, the target's live state, the images and what
//! the registries hold) goes in, a [`Plan`] with its [`Steps`] comes out.
//! Reading those inputs is [`crate::promotion_plan`]'s job; carrying the
//! plan out is [`crate::execute`]'s.

use std::collections::HashMap;

use serde_json::Value;

use crate::applied::{Applied, Fields};
use crate::config::Environment;
use crate::diagnostic::{Problem, Problems};
use crate::graph::Graph;
use crate::manifest::image::{Source, classify};
use crate::manifest::{Kind, ResourceId, kept_secret};
use crate::release::{ReleaseImage, ReleaseKind};
use crate::render::{ExternalImage, Rendered};

use super::{
    ImageChange, Input, Plan, ReleaseInfo, State, StepInput, Target, build, comparable, steps,
};

/// What a promotion plan is made from.
pub struct Inputs<'a> {
    pub target: Target,
    pub graph: &'a Graph,
    /// The environment whose images are promoted (`None`: from git).
    pub src: Option<&'a Environment>,
    pub dst: &'a Environment,
    /// The desired state, rendered for `dst`.
    pub rendered: &'a [Rendered],
    /// `dst`'s live state of the rendered resources that exist
    /// ([`comparable`] form, with versions).
    pub live: HashMap<ResourceId, State>,
    /// `dst`'s resources tagged as managed by Ferry.
    pub managed: Vec<State>,
    /// What Ferry last wrote in `dst` ([`crate::applied`]).
    pub applied: Applied,
    /// Containers whose image changes, with what the registries said
    /// (`copy`, digests).
    pub images: Vec<ImageChange>,
    /// The digests `src` ran for images of external registries.
    pub external: &'a HashMap<(String, String), ExternalImage>,
    /// Delete managed resources that left git.
    pub prune: bool,
    /// The digests `dst`'s registry gives for the `(repository, tag)`
    /// images the workloads it adopts run ([`adopted_lookups`]).
    pub adopted_digests: &'a HashMap<(String, String), Option<String>>,
    /// The digests of own images a deploy leaves running by their tag
    /// (no pin without a change: [`super::deploy::Unpinned`]), by
    /// `(workload, container)`: the release still records them.
    pub unpinned: &'a HashMap<(String, String), String>,
}

/// Plans the promotion: the report (actions, changes, diffs, images) and
/// the steps (copies, checks, writes by dependency, the release record).
pub fn plan(inputs: Inputs<'_>) -> Plan {
    let (dst, src) = (inputs.dst, inputs.src);
    let desired: Vec<State> = inputs
        .rendered
        .iter()
        .map(|r| State {
            id: r.id.clone(),
            body: comparable(r.id.kind, &r.id.name, &dst.org, &dst.gvc, &r.body),
            version: None,
            item: None,
        })
        .collect();
    // Once written, the fields of every desired resource are Ferry's.
    let applied = desired.iter().map(|d| (d.id.clone(), Fields::of(&d.body))).collect();
    let bodies: HashMap<ResourceId, Value> =
        inputs.rendered.iter().map(|r| (r.id.clone(), r.body.clone())).collect();
    let release = ReleaseInfo {
        source: src.map(|s| s.name.clone()),
        commit: inputs.target.revision.as_ref().map(|r| r.commit.clone()),
        images: release_images(inputs.rendered, inputs.external, inputs.unpinned),
        kind: Some(ReleaseKind::of(src.map(|s| s.name.as_str()))),
        adopted: adopted_images(dst, inputs.rendered, &inputs.live, inputs.adopted_digests),
        ..ReleaseInfo::default()
    };
    let steps = StepInput {
        copies: steps::copies(&inputs.images, src, dst),
        checks: steps::checks(&inputs.images, &bodies, src, dst),
        bodies,
        prune: inputs.prune,
        release,
        writes: None,
        applied,
    };
    build(Input {
        target: inputs.target,
        graph: inputs.graph,
        desired,
        live: inputs.live,
        managed: inputs.managed,
        images: inputs.images,
        applied: inputs.applied,
        steps,
    })
}

/// The containers of the workloads a plan adopts (they exist in `dst`
/// but Ferry did not create them), with the images they run: `live` is
/// `dst`'s live state in [`comparable`] form.
fn adopted_containers<'a>(
    rendered: &'a [Rendered],
    live: &'a HashMap<ResourceId, State>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
    rendered
        .iter()
        .filter(|r| r.id.kind == Kind::Workload)
        .filter_map(move |r| {
            let live = live.get(&r.id)?;
            super::adoption(&r.body, &live.body)?;
            Some((r.id.name.as_str(), &live.body))
        })
        .flat_map(|(workload, body)| {
            super::container_images(body).into_iter().map(move |(c, i)| (workload, c, i))
        })
}

/// The `(repository, tag)` images of `dst`'s own registry that adopted
/// workloads run by tag: their digests are asked of the registry, so that
/// the pre-Ferry release records them.
pub fn adopted_lookups(
    dst: &Environment,
    rendered: &[Rendered],
    live: &HashMap<ResourceId, State>,
) -> Vec<(String, String)> {
    own_tags(dst, adopted_containers(rendered, live))
}

/// What the adopted workloads run before Ferry writes them, container by
/// container ([`running_images`]).
pub fn adopted_images(
    dst: &Environment,
    rendered: &[Rendered],
    live: &HashMap<ResourceId, State>,
    digests: &HashMap<(String, String), Option<String>>,
) -> Vec<ReleaseImage> {
    running_images(dst, adopted_containers(rendered, live), digests)
}

/// The `(repository, tag)` images of `dst`'s own registry that
/// `containers` (workload, container, image) run by tag, once each: what
/// [`running_images`] needs the registry's digests of.
pub fn own_tags<'a>(
    dst: &Environment,
    containers: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut wanted: Vec<(String, String)> = containers
        .filter_map(|(_, _, image)| {
            let parsed = classify(image, Some(dst.own_registry()));
            (parsed.source == Source::Own && parsed.digest.is_none())
                .then(|| (parsed.repository.to_owned(), parsed.tag.unwrap_or("latest").to_owned()))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted
}

/// What `containers` (workload, container, image) run, as a release
/// records it: the image as it runs, and its digest (written in the
/// reference, or the one `dst`'s registry gives for its tag, `digests`;
/// `None` for an external image by tag, or an own one the registry lacks).
pub fn running_images<'a>(
    dst: &Environment,
    containers: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
    digests: &HashMap<(String, String), Option<String>>,
) -> Vec<ReleaseImage> {
    containers
        .map(|(workload, container, image)| {
            let parsed = classify(image, Some(dst.own_registry()));
            let looked_up = || {
                let key = (parsed.repository.to_owned(), parsed.tag.unwrap_or("latest").to_owned());
                digests.get(&key).cloned().flatten()
            };
            let digest = match (parsed.digest, &parsed.source) {
                (Some(digest), _) => Some(digest.to_owned()),
                (None, Source::Own) => looked_up(),
                (None, _) => None,
            };
            ReleaseImage {
                workload: workload.to_owned(),
                container: container.to_owned(),
                image: image.to_owned(),
                digest,
            }
        })
        .collect()
}

/// Puts the values `dst`'s live secrets hold where the rendered secrets
/// keep them out of git ([`kept_secret::KEEP_LIVE`], as `ferry import`
/// writes them), so that they compare, and are written, as they are. A
/// secret whose live value is missing (it does not exist in `dst`, its
/// payload could not be revealed, or the manifests name a key it lacks)
/// is a problem: a placeholder is never written.
pub fn keep_live_secrets(
    dst: &Environment,
    rendered: &mut [Rendered],
    live: &HashMap<ResourceId, Value>,
) -> Result<(), Problems> {
    let mut problems = Problems::default();
    for resource in rendered.iter_mut().filter(|r| r.id.kind == Kind::Secret) {
        let Some(data) = resource.body.get_mut("data").filter(|d| kept_secret::holds(d)) else {
            continue;
        };
        let missing = kept_secret::fill(data, live.get(&resource.id).and_then(|l| l.get("data")));
        if missing.is_empty() {
            continue;
        }
        let why = if live.contains_key(&resource.id) {
            format!("{} has no value at {}", dst.name, missing.join(", "))
        } else {
            format!("it does not exist in {}", dst.name)
        };
        problems.push(
            Problem::new(
                "ferry::plan::kept-secret",
                format!(
                    "{} keeps its values as they are in the environment (`{}`), but {why}",
                    resource.id,
                    kept_secret::KEEP_LIVE
                ),
            )
            .at(resource.location.clone(), "values kept out of git")
            .help(format!(
                "write the values in place of `{}` (or supply them with an override of {}), or create the secret in {} first (docs/adoption.md)",
                kept_secret::KEEP_LIVE,
                dst.name,
                dst.name
            )),
        );
    }
    problems.into_result(())
}

/// Every container image of the release (changed or not), with digests:
/// the one written in the reference; else an external image's is the one
/// the source ran (`None` when unknown), an own image left running by tag
/// the one its tag resolves to (`unpinned`).
pub fn release_images(
    rendered: &[Rendered],
    external: &HashMap<(String, String), ExternalImage>,
    unpinned: &HashMap<(String, String), String>,
) -> Vec<ReleaseImage> {
    rendered
        .iter()
        .filter(|r| r.id.kind == Kind::Workload)
        .flat_map(|r| {
            super::container_images(&r.body)
                .into_iter()
                .map(|(container, image)| {
                    let key = (r.id.name.clone(), container.to_owned());
                    let ran = external.get(&key).and_then(|e| e.digest.clone());
                    let kept = || unpinned.get(&key).cloned();
                    let written = classify(image, None).digest;
                    ReleaseImage {
                        workload: r.id.name.clone(),
                        container: container.to_owned(),
                        image: image.to_owned(),
                        digest: written.map(str::to_owned).or(ran).or_else(kept),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Location, SourceFile};
    use crate::diff::Action;
    use crate::plan::{Check, ImageCopy, ImagesFrom, ManifestsFrom, Method, image_changes};
    use serde_json::json;

    const CONFIG: &str = "manifests:\n  path: m\ntopology: org-per-env\nenvironments:\n  - name: staging\n    org: acme-staging\n    gvc: app\n    tokenEnv: T1\n  - name: prod\n    org: acme-prod\n    gvc: app\n    tokenEnv: T2\n";

    fn environments() -> Vec<Environment> {
        let source = SourceFile::new("promotion.yaml", CONFIG.to_owned());
        crate::config::parse(&source).unwrap_or_else(|e| panic!("{e:?}")).environments
    }

    fn rendered(id: &str, body: Value) -> Rendered {
        Rendered::new(
            id.parse().unwrap_or_else(|_| panic!("{id}")),
            body,
            Location::new(&SourceFile::new("m.yaml", String::new()), 0..0),
        )
    }

    fn workload(name: &str, image: &str) -> Rendered {
        rendered(
            &format!("workload/{name}"),
            json!({"kind": "workload", "name": name, "spec": {"containers": [{"name": "main", "image": image}]}}),
        )
    }

    fn target() -> Target {
        Target {
            environment: "prod".into(),
            org: "acme-prod".into(),
            gvc: "app".into(),
            source: Some("staging".into()),
            revision: None,
            manifests_from: ManifestsFrom::Ref,
            images_from: ImagesFrom::Source,
        }
    }

    /// Plans `rendered` into prod from staging, against `live` bodies.
    fn plan_of(rendered: &[Rendered], live: &[Rendered], registry_has: &[&str]) -> Plan {
        plan_from(true, rendered, live, registry_has)
    }

    /// Plans into prod, from staging when `promoted` (else from git).
    fn plan_from(
        promoted: bool,
        rendered: &[Rendered],
        live: &[Rendered],
        registry_has: &[&str],
    ) -> Plan {
        let envs = environments();
        let (src, dst) = (promoted.then_some(&envs[0]), &envs[1]);
        let raw: HashMap<ResourceId, Value> =
            live.iter().map(|r| (r.id.clone(), r.body.clone())).collect();
        let mut images = image_changes(rendered.iter().map(|r| (&r.id, &r.body)), &raw);
        for image in &mut images {
            image.copy = Some(!registry_has.contains(&image.after.as_str()));
        }
        let graph = Graph { waves: vec![], dependencies: vec![] };
        plan(Inputs {
            target: target(),
            graph: &graph,
            src,
            dst,
            rendered,
            live: live
                .iter()
                .map(|r| {
                    let body = comparable(r.id.kind, &r.id.name, &dst.org, &dst.gvc, &r.body);
                    (r.id.clone(), State { id: r.id.clone(), body, version: Some(1), item: None })
                })
                .collect(),
            managed: vec![],
            applied: Applied::default(),
            images,
            external: &HashMap::new(),
            prune: false,
            adopted_digests: &HashMap::new(),
            unpinned: &HashMap::new(),
        })
    }

    #[test]
    fn a_promotion_copies_new_images_checks_them_and_writes_only_what_changes() {
        let digest = "sha256:aaaa";
        let api = format!("/org/acme-prod/image/api@{digest}");
        let web = "/org/acme-prod/image/web:1.0";
        let plan =
            plan_of(&[workload("api", &api), workload("web", web)], &[workload("web", web)], &[]);
        assert_eq!(
            plan.steps.copies,
            [ImageCopy {
                source: format!("acme-staging.registry.cpln.io/api@{digest}"),
                destination: "acme-prod.registry.cpln.io/api:latest".into(),
            }]
        );
        assert_eq!(
            plan.steps.checks,
            [Check::Image {
                repository: "api".into(),
                tag: "latest".into(),
                digest: Some(digest.into())
            }]
        );
        let writes: Vec<(String, Method)> =
            plan.steps.writes.iter().map(|w| (w.id.to_string(), w.method.clone())).collect();
        assert_eq!(writes, [("workload/api".to_owned(), Method::Put)]);
        assert!(plan.steps.writes[0].gate);
        let release = &plan.steps.release;
        assert_eq!(release.source.as_deref(), Some("staging"));
        assert_eq!(release.images.len(), 2, "every image of the release, changed or not");
        assert_eq!(release.images[0].digest.as_deref(), Some(digest));
        assert_eq!(plan.hash, plan.compute_hash());
    }

    #[test]
    fn the_release_records_what_adopted_workloads_ran_before_by_digest() {
        let envs = environments();
        let prod = &envs[1];
        let managed = |name: &str, image: &str| {
            let mut r = workload(name, image);
            r.body["tags"] = json!({crate::plan::MANAGED_TAG: "prod"});
            r
        };
        let rendered = [
            managed("api", "/org/acme-prod/image/api:1.4.2"),
            managed("web", "/org/acme-prod/image/web:1.4.2"),
            managed("cache", "redis:7"),
            managed("queue", "/org/acme-prod/image/queue:1"),
            managed("new", "/org/acme-prod/image/new:1"),
        ];
        let live_state = |r: &Rendered| {
            let body = comparable(r.id.kind, &r.id.name, &prod.org, &prod.gvc, &r.body);
            (r.id.clone(), State { id: r.id.clone(), body, version: Some(1), item: None })
        };
        let live: HashMap<ResourceId, State> = [
            workload("api", "/org/acme-prod/image/api:1.4.1"),
            workload("web", "/org/acme-prod/image/web@sha256:bbbb"),
            workload("cache", "redis:6"),
            // Ferry's already: not adopted.
            managed("queue", "/org/acme-prod/image/queue:0"),
        ]
        .iter()
        .map(live_state)
        .collect();
        assert_eq!(adopted_lookups(prod, &rendered, &live), [("api".into(), "1.4.1".into())]);
        let digests = HashMap::from([(("api".into(), "1.4.1".into()), Some("sha256:aaaa".into()))]);
        let images: Vec<(String, String, Option<String>)> =
            adopted_images(prod, &rendered, &live, &digests)
                .into_iter()
                .map(|i| (i.workload, i.image, i.digest))
                .collect();
        assert_eq!(
            images,
            [
                ("api".into(), "/org/acme-prod/image/api:1.4.1".into(), Some("sha256:aaaa".into())),
                (
                    "web".into(),
                    "/org/acme-prod/image/web@sha256:bbbb".into(),
                    Some("sha256:bbbb".into())
                ),
                ("cache".into(), "redis:6".into(), None),
            ]
        );
        let nothing_adopted = adopted_images(prod, &rendered, &HashMap::new(), &digests);
        assert!(nothing_adopted.is_empty());
    }

    #[test]
    fn an_image_left_running_by_tag_is_recorded_at_the_digest_it_resolves_to() {
        let tag = "/org/acme-prod/image/api:1.4.2";
        let rendered = [workload("api", tag), workload("web", "/org/acme-prod/image/web:1")];
        let unpinned = HashMap::from([(("api".to_owned(), "main".to_owned()), "sha256:a".into())]);
        let images: Vec<(String, Option<String>)> =
            release_images(&rendered, &HashMap::new(), &unpinned)
                .into_iter()
                .map(|i| (i.image, i.digest))
                .collect();
        assert_eq!(
            images,
            [
                (tag.to_owned(), Some("sha256:a".to_owned())),
                ("/org/acme-prod/image/web:1".into(), None)
            ]
        );
    }

    #[test]
    fn from_git_nothing_is_copied_and_images_are_checked_as_written() {
        let api = "/org/acme-prod/image/api:2.0";
        let plan = plan_from(false, &[workload("api", api)], &[], &[]);
        assert!(plan.steps.copies.is_empty(), "{:?}", plan.steps.copies);
        assert_eq!(
            plan.steps.checks,
            [Check::Image { repository: "api".into(), tag: "2.0".into(), digest: None }]
        );
        assert_eq!(plan.steps.release.source, None);
        assert_eq!(plan.steps.release.images[0].image, api);
        assert_eq!(plan.steps.writes.len(), 1);
    }

    #[test]
    fn nothing_to_change_plans_no_writes_and_an_image_already_there_no_copy() {
        let web = "/org/acme-prod/image/web:1.0";
        let plan = plan_of(&[workload("web", web)], &[workload("web", web)], &[web]);
        assert!(plan.steps.writes.is_empty() && plan.steps.copies.is_empty());
        assert!(!plan.summary.has_changes());
        assert!(plan.resources.iter().all(|r| r.action == Action::Unchanged));
    }

    #[test]
    fn secrets_kept_out_of_git_plan_as_they_run_and_a_missing_one_is_named() {
        let envs = environments();
        let kept = |name: &str| {
            rendered(
                &format!("secret/{name}"),
                json!({"kind": "secret", "name": name, "type": "opaque",
                       "data": {"payload": kept_secret::KEEP_LIVE, "encoding": "plain"}}),
            )
        };
        let live = rendered(
            "secret/db",
            json!({"kind": "secret", "name": "db", "type": "opaque",
                   "data": {"payload": "s3cr3t", "encoding": "plain"}}),
        );
        let raw: HashMap<ResourceId, Value> = HashMap::from([(live.id.clone(), live.body.clone())]);
        let mut desired = [kept("db")];
        assert!(keep_live_secrets(&envs[1], &mut desired, &raw).is_ok());
        assert_eq!(desired[0].body["data"]["payload"], "s3cr3t");
        let plan = plan_of(&desired, &[live], &[]);
        assert!(!plan.summary.has_changes(), "{:?}", plan.resources);
        let mut absent = [kept("cache")];
        let problems = keep_live_secrets(&envs[1], &mut absent, &raw).err().unwrap_or_default();
        assert_eq!(problems.len(), 1);
        let text = format!("{problems:?}");
        assert!(text.contains("secret/cache") && text.contains("does not exist in prod"), "{text}");
    }

    #[test]
    fn a_missing_kept_secret_says_to_replace_the_text_the_file_holds() {
        let text = "kind: secret\nname: cache\ntype: opaque\ndata:\n  payload: ferry:keep-live\n  encoding: plain\n";
        let source = SourceFile::new("manifests/cache.yaml", text);
        let body = json!({"kind": "secret", "name": "cache", "type": "opaque",
                          "data": {"payload": kept_secret::KEEP_LIVE, "encoding": "plain"}});
        let at = text.find("ferry:keep-live").unwrap_or(0);
        let mut absent = [Rendered::new(
            "secret/cache".parse().unwrap_or_else(|_| panic!("an id")),
            body,
            Location::new(&source, at..at + kept_secret::KEEP_LIVE.len()),
        )];
        let envs = environments();
        let problems: Vec<_> = keep_live_secrets(&envs[1], &mut absent, &HashMap::new())
            .err()
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].shown_message(),
            "secret/cache keeps its values as they are in the environment (`ferry:keep-live`), but it does not exist in prod"
        );
        assert_eq!(
            problems[0].shown_help().as_deref(),
            Some(
                "write the values in place of `ferry:keep-live` (or supply them with an override of prod), or create the secret in prod first (docs/adoption.md)"
            )
        );
        assert!(
            text.contains("payload: ferry:keep-live"),
            "the text the help names is in the file"
        );
    }

    #[test]
    fn the_same_inputs_make_the_same_plan() {
        let inputs = || {
            [
                workload("api", "/org/acme-prod/image/api:2"),
                rendered(
                    "secret/db",
                    json!({"kind": "secret", "name": "db", "type": "opaque", "data": {"payload": "x"}}),
                ),
            ]
        };
        let (a, b) = (plan_of(&inputs(), &[], &[]), plan_of(&inputs(), &[], &[]));
        assert_eq!(a.hash, b.hash);
        assert_eq!(a, b);
        let text = serde_json::to_string(&a).unwrap_or_default();
        assert!(!text.contains("\"payload\":\"x\""), "{text}");
        assert_eq!(
            a.secrets.get(&"secret/db".parse().unwrap_or_else(|_| panic!())),
            Some(&json!({"payload": "x"}))
        );
    }
}
