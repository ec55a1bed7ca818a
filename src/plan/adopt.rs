//! The planner of `ferry import ENV --adopt`: what an environment runs,
//! put under Ferry's management as it is (Terraform's `import`: the
//! resource is managed from now on, and the next plan is empty).
//!
//! Pure: the live bodies `import` read and the digests the environment's
//! registry gives for the images its workloads run by tag go in; a
//! [`Plan`] comes out whose only writes are the tag-only PATCHes of adopt
//! rows ([`super::steps::writes`]: `{"tags": {"ferry/environment": …}}`
//! on every resource that lacks the managed tag, nothing else), and whose
//! release is a `pre-ferry` record of every workload's images by digest,
//! so that `ferry rollback` can go back to what ran before Ferry. No spec
//! field is ever written: the desired state of each resource is its live
//! state, the managed tag added. The executor ([`crate::execute`]) carries
//! it out as any plan (lock, unmoved check, writes, release record).

use std::collections::HashMap;

use serde_json::Value;

use crate::config::Environment;
use crate::graph::Graph;
use crate::manifest::{Kind, ResourceId};
use crate::release::ReleaseKind;

use super::{
    ImagesFrom, Input, ManifestsFrom, Plan, ReleaseInfo, State, StepInput, Target, build,
    container_images, promotion, steps,
};

/// What an adopt plan is made from.
pub struct Inputs<'a> {
    pub env: &'a Environment,
    /// The pipeline shares org-scoped resources between its environments
    /// (`gvc-per-env`): they are tagged [`crate::render::SHARED`], as
    /// render tags them.
    pub shared: bool,
    /// The live bodies of what `import` wrote, as the API gives them.
    pub live: &'a [(ResourceId, Value)],
    /// The digests `env`'s registry gives for the `(repository, tag)`
    /// images its workloads run ([`lookups`]).
    pub digests: &'a HashMap<(String, String), Option<String>>,
}

/// `(workload, container, image)` of the live workloads.
fn containers(live: &[(ResourceId, Value)]) -> impl Iterator<Item = (&str, &str, &str)> {
    live.iter().filter(|(id, _)| id.kind == Kind::Workload).flat_map(|(id, body)| {
        container_images(body).into_iter().map(move |(c, i)| (id.name.as_str(), c, i))
    })
}

/// The `(repository, tag)` images of `env`'s own registry that its
/// workloads run by tag: the release records their digests.
pub fn lookups(env: &Environment, live: &[(ResourceId, Value)]) -> Vec<(String, String)> {
    promotion::own_tags(env, containers(live))
}

/// The plan: an adopt row (tag-only PATCH) for each resource without the
/// managed tag, the others unchanged; the `pre-ferry` release of every
/// workload's images.
pub fn plan(inputs: Inputs<'_>) -> Plan {
    let env = inputs.env;
    let mut desired = Vec::new();
    let mut live = HashMap::new();
    for (id, body) in inputs.live {
        let mut tagged = body.clone();
        if super::unmanaged(body) {
            let owner = crate::render::owner(env, id.kind, inputs.shared);
            tagged = steps::with_tag(body, super::MANAGED_TAG, &owner);
        }
        desired.push(State { version: None, ..State::live(env, id, &tagged) });
        live.insert(id.clone(), State::live(env, id, body));
    }
    let release = ReleaseInfo {
        images: promotion::running_images(env, containers(inputs.live), inputs.digests),
        kind: Some(ReleaseKind::PreFerry),
        note: Some(format!("what ran in {} when `ferry import --adopt` adopted it", env.name)),
        ..ReleaseInfo::default()
    };
    build(Input {
        target: Target {
            environment: env.name.clone(),
            org: env.org.clone(),
            gvc: env.gvc.clone(),
            source: None,
            revision: None,
            manifests_from: ManifestsFrom::Imported,
            images_from: ImagesFrom::Running,
        },
        graph: &Graph { waves: Vec::new(), dependencies: Vec::new() },
        desired,
        live,
        managed: Vec::new(),
        images: Vec::new(),
        applied: crate::applied::Applied::default(),
        steps: StepInput { release, ..StepInput::default() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Action;
    use crate::plan::Method;
    use serde_json::json;

    fn env(topology: &str) -> Environment {
        let text = format!(
            "manifests: {{path: m}}\ntopology: {topology}\nenvironments:\n  - {{name: prod, org: acme, gvc: app, tokenEnv: T}}\n"
        );
        crate::config::parse(&crate::diagnostic::SourceFile::new("p.yaml", text))
            .unwrap_or_else(|e| panic!("{e:?}"))
            .environments
            .remove(0)
    }

    fn id(text: &str) -> ResourceId {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn live() -> Vec<(ResourceId, Value)> {
        vec![
            (
                id("workload/api"),
                json!({"kind": "workload", "name": "api", "version": 4, "spec": {"type": "standard", "containers": [
                    {"name": "main", "image": "/org/acme/image/api:1.4.2"},
                    {"name": "pinned", "image": "/org/acme/image/api@sha256:p"},
                    {"name": "proxy", "image": "nginx:1.25"}]}}),
            ),
            (
                id("secret/db"),
                json!({"kind": "secret", "name": "db", "type": "opaque", "data": {"payload": "s3cr3t"}}),
            ),
            (
                id("identity/api-id"),
                json!({"kind": "identity", "name": "api-id", "tags": {"ferry/environment": "prod"}}),
            ),
        ]
    }

    #[test]
    fn only_the_managed_tag_is_written_where_it_is_missing_and_the_release_has_every_digest() {
        let env = env("org-per-env");
        let live = live();
        assert_eq!(lookups(&env, &live), [("api".to_owned(), "1.4.2".to_owned())]);
        let digests = HashMap::from([(("api".into(), "1.4.2".into()), Some("sha256:a".into()))]);
        let plan = plan(Inputs { env: &env, shared: false, live: &live, digests: &digests });
        let actions: Vec<(&str, Action, usize)> =
            plan.resources.iter().map(|r| (r.id.as_str(), r.action, r.changes.len())).collect();
        assert_eq!(
            actions,
            [
                ("identity/api-id", Action::Unchanged, 0),
                ("secret/db", Action::Adopt, 0),
                ("workload/api", Action::Adopt, 0)
            ]
        );
        let writes: Vec<(String, &Method, Option<&Value>, bool)> = plan
            .steps
            .writes
            .iter()
            .map(|w| (w.id.to_string(), &w.method, w.body.as_ref(), w.gate || w.stamp))
            .collect();
        let tag = json!({"tags": {"ferry/environment": "prod"}});
        assert_eq!(
            writes,
            [
                ("secret/db".to_owned(), &Method::Patch, Some(&tag), false),
                ("workload/api".to_owned(), &Method::Patch, Some(&tag), false)
            ]
        );
        assert!(plan.steps.copies.is_empty() && plan.steps.checks.is_empty());
        assert!(plan.secrets.get(&id("secret/db")).is_none(), "no payload is written");
        let release = &plan.steps.release;
        assert_eq!(release.kind, Some(ReleaseKind::PreFerry));
        assert!(release.adopted.is_empty(), "this release is the pre-Ferry record itself");
        let images: Vec<(&str, Option<&str>)> =
            release.images.iter().map(|i| (i.image.as_str(), i.digest.as_deref())).collect();
        assert_eq!(
            images,
            [
                ("/org/acme/image/api:1.4.2", Some("sha256:a")),
                ("/org/acme/image/api@sha256:p", Some("sha256:p")),
                ("nginx:1.25", None)
            ]
        );
        assert_eq!(plan.summary.adopt, 2);
        assert!(!serde_json::to_string(&plan).unwrap_or_default().contains("s3cr3t"));
    }

    #[test]
    fn with_gvc_per_env_org_scoped_resources_are_tagged_shared_as_render_tags_them() {
        let env = env("gvc-per-env");
        let plan =
            plan(Inputs { env: &env, shared: true, live: &live(), digests: &HashMap::new() });
        let tag_of = |id: &str| {
            plan.steps.writes.iter().find(|w| w.id.to_string() == id).and_then(|w| {
                w.body.as_ref()?["tags"]["ferry/environment"].as_str().map(str::to_owned)
            })
        };
        assert_eq!(tag_of("secret/db").as_deref(), Some("shared"));
        assert_eq!(tag_of("workload/api").as_deref(), Some("prod"));
    }
}
