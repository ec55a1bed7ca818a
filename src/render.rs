//! The manifests as one environment must have them. Pure.
//!
//! For each resource: the inline `gvc:` is dropped (the environment decides
//! where GVC-scoped resources live); the `kind: gvc` document takes the
//! environment's GVC name; every link is rewritten for the environment's
//! org and GVC and written in full (`/org/ORG/…`, the form the API
//! returns); the environment's overrides are merged in; container images
//! are set to what is being promoted, in the form the image strategy
//! needs.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::{Environment, ImageStrategy, Patch};
use crate::diagnostic::{Location, Problem, Problems};
use crate::manifest::image::{self, Source};
use crate::manifest::link;
use crate::manifest::{Kind, ManifestSet, ResourceId};

/// One resource ready to compare with live state and to apply.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub id: ResourceId,
    pub body: Value,
    /// Where the resource is defined in the manifests.
    pub location: Location,
}

/// The image one container is promoted with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PromotedImage {
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`, when known (always, when promoting from live state).
    pub digest: Option<String>,
    /// The registry host the image is read from when it comes from another
    /// org (`pull-secret`); `None` for the environment's own registry.
    pub registry: Option<String>,
}

/// Images being promoted, by workload and container name.
pub type ImageMap = HashMap<(String, String), PromotedImage>;

/// An image from an external registry that the source environment runs:
/// never copied, never rewritten (pinned only with `images.pinExternal`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalImage {
    /// The reference as the source's workload has it.
    pub image: String,
    /// The digest it ran (`sha256:…`); `None` when the registry could not
    /// tell (unreachable, or refused).
    pub digest: Option<String>,
}

/// What a source environment runs, by workload and container name.
#[derive(Debug, Clone, Default)]
pub struct SourceImages {
    /// Images of the source's own registry: what moves.
    pub promoted: ImageMap,
    /// Images of external registries: what is recorded (and pinned).
    pub external: HashMap<(String, String), ExternalImage>,
}

/// Renders every resource for `env`. `source_registry` is the registry
/// host images are pulled from with the `pull-secret` strategy.
///
/// `shared_gvcs` (gvc-per-env: every environment's GVC, in order) makes
/// org-scoped resources, which all environments of the org share, render
/// the same for each: a list of links into the manifests' GVC names every
/// environment's GVC, a single link names the last environment's, and the
/// resource is marked as shared.
pub fn render(
    manifests: &ManifestSet,
    env: &Environment,
    shared_gvcs: Option<&[String]>,
    patches: &[Patch],
    images: &SourceImages,
    source_registry: Option<&str>,
) -> Result<Vec<Rendered>, Problems> {
    let manifest_gvcs: Vec<&str> = manifests.gvcs().map(|g| g.name.as_str()).collect();
    let own_gvc = [env.gvc.clone()];
    let links = LinkRewrite { org: &env.org, gvcs: &own_gvc, manifest_gvcs: &manifest_gvcs };
    let shared_links =
        shared_gvcs.map(|gvcs| LinkRewrite { org: &env.org, gvcs, manifest_gvcs: &manifest_gvcs });
    let mut problems = Problems::default();
    let mut rendered = Vec::with_capacity(manifests.resources.len());
    for resource in &manifests.resources {
        let mut body = resource.body();
        let Some(object) = body.as_object_mut() else { continue };
        object.remove("gvc");
        let name = if resource.kind == Kind::Gvc { env.gvc.clone() } else { resource.name.clone() };
        object.insert("name".to_owned(), Value::String(name.clone()));
        for patch in patches.iter().filter(|p| p.target == resource.id()) {
            let mut fields = patch.patch.to_json();
            if let Some(fields) = fields.as_object_mut() {
                for key in ["kind", "name", "gvc"] {
                    fields.remove(key);
                }
            }
            merge(&mut body, &fields);
        }
        let shared = !resource.kind.is_gvc_scoped() && resource.kind != Kind::Gvc;
        let (owner, rewrite) = match &shared_links {
            Some(shared_links) if shared => (SHARED, shared_links),
            _ => (env.name.as_str(), &links),
        };
        mark_managed(&mut body, owner);
        if resource.kind == Kind::Workload {
            set_images(
                &mut body,
                &resource.name,
                env,
                images,
                source_registry,
                &mut problems,
                resource.location(),
            );
        }
        rewrite.apply(&mut body);
        rendered.push(Rendered {
            id: ResourceId::new(resource.kind, name),
            body,
            location: resource.location(),
        });
    }
    problems.into_result(rendered)
}

/// The owner of org-scoped resources that every environment of a
/// gvc-per-env pipeline shares (never pruned by one environment).
pub const SHARED: &str = "shared";

/// Tags the resource as managed by Ferry for this environment, so that it
/// can be pruned once it leaves git.
fn mark_managed(body: &mut Value, env: &str) {
    let Some(object) = body.as_object_mut() else { return };
    let tags = object.entry("tags").or_insert_with(|| Value::Object(Map::new()));
    if let Some(tags) = tags.as_object_mut() {
        tags.insert(crate::plan::MANAGED_TAG.to_owned(), Value::String(env.to_owned()));
    }
}

/// Merges an override into a document: mappings merge key by key, lists of
/// named items merge by `name` (new names are appended), other lists and
/// scalars are replaced, and `null` removes a key.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else if let Some(existing) = target.get_mut(key) {
                    merge(existing, value);
                } else {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(target), Value::Array(patch)) if named(target) && named(patch) => {
            for item in patch {
                let name = item.get("name");
                match target.iter_mut().find(|t| t.get("name") == name) {
                    Some(existing) => merge(existing, item),
                    None => target.push(item.clone()),
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// A list whose items are all mappings with a `name`.
fn named(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

fn set_images(
    body: &mut Value,
    workload: &str,
    env: &Environment,
    images: &SourceImages,
    source_registry: Option<&str>,
    problems: &mut Problems,
    location: Location,
) {
    let Some(containers) = body.pointer_mut("/spec/containers").and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in containers {
        let Some(name) = container.get("name").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        let Some(current) = container.get("image").and_then(Value::as_str).map(str::to_owned)
        else {
            continue;
        };
        let written = image::classify(&current, Some(env.own_registry()));
        let key = (workload.to_owned(), name.clone());
        if let Source::External { .. } = written.source {
            // The string in git is what runs; pinned only when asked.
            let ran = images.external.get(&key).filter(|_| env.pin_external);
            if let Some(pinned) = ran.and_then(|ran| pin_external(&current, ran))
                && let Some(object) = container.as_object_mut()
            {
                object.insert("image".to_owned(), Value::String(pinned));
            }
            continue;
        }
        let promoted = images.promoted.get(&key).cloned().or_else(|| {
            (written.source == Source::Own).then(|| PromotedImage {
                repository: written.repository.to_owned(),
                tag: written.tag.map(str::to_owned),
                digest: written.digest.map(str::to_owned),
                registry: None,
            })
        });
        let Some(promoted) = promoted else { continue };
        let reference = match (&env.images, promoted.registry.as_deref().or(source_registry)) {
            (ImageStrategy::PullSecret { .. }, Some(registry)) => {
                external_reference(registry, &promoted)
            }
            (ImageStrategy::PullSecret { secret }, None) => {
                problems.push(
                    Problem::new(
                        "ferry::render::no-source-registry",
                        format!("workload/{workload} pulls `{current}` through pull secret `{secret}`, but no source environment has a registry to pull from"),
                    )
                    .at(location.clone(), "this workload")
                    .help("give the environment a `from` environment, or use `images: copy`"),
                );
                continue;
            }
            _ => own_reference(&env.org, &promoted),
        };
        if let Some(object) = container.as_object_mut() {
            object.insert("image".to_owned(), Value::String(reference));
        }
    }
}

/// `written` pinned to the digest the source ran, when the source ran the
/// same image (host and repository) and its digest is known.
fn pin_external(written: &str, ran: &ExternalImage) -> Option<String> {
    let digest = ran.digest.as_deref()?;
    let (a, b) = (image::classify(written, None), image::classify(&ran.image, None));
    (a.source == b.source && a.repository == b.repository && a.digest.is_none())
        .then(|| image::pinned(written, digest))
}

/// `/org/ORG/image/REPO:TAG` or `…@sha256:…`: the environment's registry,
/// in the full link form the API returns.
fn own_reference(org: &str, image: &PromotedImage) -> String {
    format!("/org/{org}/image/{}", name_and_version(image))
}

/// `HOST/REPO:TAG` or `HOST/REPO@sha256:…`: another org's registry.
fn external_reference(registry: &str, image: &PromotedImage) -> String {
    format!("{registry}/{}", name_and_version(image))
}

/// A digest pins exactly; a tag is used only when no digest is known.
fn name_and_version(image: &PromotedImage) -> String {
    match (&image.digest, &image.tag) {
        (Some(digest), _) => format!("{}@{digest}", image.repository),
        (None, Some(tag)) => format!("{}:{tag}", image.repository),
        (None, None) => image.repository.clone(),
    }
}

/// Rewrites links for the target org and GVC, in full form.
struct LinkRewrite<'a> {
    org: &'a str,
    /// The GVCs links into the manifests' GVC name: the environment's, or
    /// (shared resources) every environment's, the last one for a single
    /// link.
    gvcs: &'a [String],
    /// GVC names the manifests use.
    manifest_gvcs: &'a [&'a str],
}

/// Kinds that appear in links (managed or not).
const LINK_KINDS: &[&str] = &[
    "agent",
    "auditctx",
    "cloudaccount",
    "domain",
    "group",
    "gvc",
    "identity",
    "image",
    "ipset",
    "location",
    "policy",
    "secret",
    "serviceaccount",
    "user",
    "volumeset",
    "workload",
    "mk8s",
];

impl LinkRewrite<'_> {
    fn apply(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Some(rewritten) = self.rewrite(text) {
                    *text = rewritten;
                }
            }
            Value::Array(items) => {
                let expanded: Vec<Value> = items
                    .iter()
                    .flat_map(|item| match item.as_str().and_then(|text| self.rewrite_all(text)) {
                        Some(links) => links.into_iter().map(Value::String).collect(),
                        None => {
                            let mut item = item.clone();
                            self.apply(&mut item);
                            vec![item]
                        }
                    })
                    .collect();
                *items = expanded;
            }
            Value::Object(map) => self.apply_map(map),
            _ => {}
        }
    }

    fn apply_map(&self, map: &mut Map<String, Value>) {
        for (key, value) in map.iter_mut() {
            // Images were set already; `cpln://` URIs are org-relative.
            if key != "image" {
                self.apply(value);
            }
        }
    }

    /// A single link: into the manifests' GVC, the last of `gvcs`.
    fn rewrite(&self, text: &str) -> Option<String> {
        self.rewrite_all(text).and_then(|mut all| all.pop())
    }

    /// A link as it appears in a list: one per GVC of `gvcs` when it points
    /// into the manifests' GVC.
    fn rewrite_all(&self, text: &str) -> Option<Vec<String>> {
        if text.starts_with("cpln://") {
            return None;
        }
        let parsed = link::parse(text)?;
        if !LINK_KINDS.contains(&parsed.kind) {
            return None;
        }
        let org = self.org;
        let name = parsed.name;
        let ours = |gvc: &str| self.manifest_gvcs.contains(&gvc);
        let each =
            |make: &dyn Fn(&str) -> String| self.gvcs.iter().map(|g| make(g)).collect::<Vec<_>>();
        Some(match (parsed.gvc, parsed.kind) {
            (Some(gvc), kind) if ours(gvc) => {
                each(&|g| format!("/org/{org}/gvc/{g}/{kind}/{name}"))
            }
            (Some(gvc), kind) => vec![format!("/org/{org}/gvc/{gvc}/{kind}/{name}")],
            // A bare `//identity/x` means the environment's GVC.
            (None, kind @ ("identity" | "workload" | "volumeset")) => {
                each(&|g| format!("/org/{org}/gvc/{g}/{kind}/{name}"))
            }
            (None, "gvc") if ours(name) => each(&|g| format!("/org/{org}/gvc/{g}")),
            (None, kind) => vec![format!("/org/{org}/{kind}/{name}")],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Readiness;
    use crate::diagnostic::SourceFile;
    use crate::manifest::load_documents;

    fn env(images: ImageStrategy) -> Environment {
        Environment {
            name: "prod".into(),
            from: None,
            org: "acme-prod".into(),
            gvc: "shop-prod".into(),
            endpoint: None,
            token_env: "T".into(),
            images,
            registry: "acme-prod.registry.cpln.io".into(),
            readiness: Readiness::default(),
            overrides: Vec::new(),
            immutable_tags: true,
            pin_external: false,
            require_approval: false,
            history_limit: 20,
            max_deletes: None,
            location: Location::new(&SourceFile::new("p", "x"), (0, 1)),
        }
    }

    fn manifests(text: &str) -> ManifestSet {
        let (resources, problems) = load_documents(&[SourceFile::new("m.yaml", text)]);
        assert!(problems.is_empty());
        ManifestSet { resources }
    }

    /// `text` rendered for `env` with `images`, without overrides.
    fn rendered(text: &str, env: &Environment, images: &SourceImages) -> Vec<Rendered> {
        render(&manifests(text), env, None, &[], images, None).unwrap_or_else(|p| panic!("{p:?}"))
    }

    const APP: &str = "kind: gvc\nname: app\nspec:\n  pullSecretLinks: [//secret/pull]\n---\nkind: workload\nname: api\ngvc: app\nspec:\n  identityLink: //gvc/app/identity/api-id\n  containers:\n    - name: main\n      image: //image/api:1.0\n      env:\n        - {name: A, value: cpln://secret/db.url}\n        - {name: B, value: //cdn.example.com/x}\n        - {name: C, value: one}\n";

    #[test]
    fn rewrites_gvc_links_and_images_for_the_environment() {
        let out = rendered(APP, &env(ImageStrategy::Copy), &SourceImages::default());
        assert_eq!(out[0].id.to_string(), "gvc/shop-prod");
        assert_eq!(out[0].body["spec"]["pullSecretLinks"][0], "/org/acme-prod/secret/pull");
        let api = &out[1].body;
        assert!(api.get("gvc").is_none());
        assert_eq!(api["spec"]["identityLink"], "/org/acme-prod/gvc/shop-prod/identity/api-id");
        let container = &api["spec"]["containers"][0];
        assert_eq!(container["image"], "/org/acme-prod/image/api:1.0");
        assert_eq!(container["env"][0]["value"], "cpln://secret/db.url");
        assert_eq!(container["env"][1]["value"], "//cdn.example.com/x", "not a link");
    }

    #[test]
    fn promoted_images_pin_digests_per_strategy() {
        let mut images = SourceImages::default();
        images.promoted.insert(
            ("api".into(), "main".into()),
            PromotedImage {
                repository: "api".into(),
                tag: Some("1.1".into()),
                digest: Some("sha256:ab".into()),
                registry: None,
            },
        );
        let copy = render(&manifests(APP), &env(ImageStrategy::Copy), None, &[], &images, None)
            .unwrap_or_default();
        assert_eq!(
            copy[1].body["spec"]["containers"][0]["image"],
            "/org/acme-prod/image/api@sha256:ab"
        );
        let pull = ImageStrategy::PullSecret { secret: "pull".into() };
        let pulled = render(
            &manifests(APP),
            &env(pull),
            None,
            &[],
            &images,
            Some("acme-staging.registry.cpln.io"),
        )
        .unwrap_or_default();
        assert_eq!(
            pulled[1].body["spec"]["containers"][0]["image"],
            "acme-staging.registry.cpln.io/api@sha256:ab"
        );
    }

    const PUBLIC: &str = "kind: workload\nname: cache\nspec:\n  containers:\n    - {name: redis, image: 'redis:alpine'}\n    - {name: app, image: 'someuser/app:1.0'}\n    - {name: gcr, image: 'gcr.io/proj/app:v1'}\n    - {name: other, image: 'partner.registry.cpln.io/api:3'}\n    - {name: own, image: 'acme-prod.registry.cpln.io/api:2'}\n";

    fn images_of(rendered: &[Rendered]) -> Vec<String> {
        crate::plan::container_images(&rendered[0].body)
            .into_iter()
            .map(|(_, image)| image.to_owned())
            .collect()
    }

    #[test]
    fn external_and_other_org_images_run_as_written() {
        let out = rendered(PUBLIC, &env(ImageStrategy::Copy), &SourceImages::default());
        assert_eq!(
            images_of(&out),
            [
                "redis:alpine",
                "someuser/app:1.0",
                "gcr.io/proj/app:v1",
                "partner.registry.cpln.io/api:3",
                "/org/acme-prod/image/api:2"
            ]
        );
    }

    #[test]
    fn pin_external_writes_the_digest_the_source_ran() {
        let mut images = SourceImages::default();
        let ran = |image: &str, digest: Option<&str>| ExternalImage {
            image: image.into(),
            digest: digest.map(Into::into),
        };
        images
            .external
            .insert(("cache".into(), "redis".into()), ran("redis:alpine", Some("sha256:ab")));
        images.external.insert(("cache".into(), "app".into()), ran("someuser/app:1.0", None));
        images
            .external
            .insert(("cache".into(), "gcr".into()), ran("gcr.io/other/app:v1", Some("sha256:cd")));
        let mut pinning = env(ImageStrategy::Copy);
        pinning.pin_external = true;
        let out = rendered(PUBLIC, &pinning, &images);
        let written = images_of(&out);
        assert_eq!(written[0], "redis@sha256:ab");
        assert_eq!(written[1], "someuser/app:1.0", "digest unknown: as written");
        assert_eq!(written[2], "gcr.io/proj/app:v1", "the source ran another repository");
        let plain = rendered(PUBLIC, &env(ImageStrategy::Copy), &images);
        assert_eq!(images_of(&plain)[0], "redis:alpine", "pinned only when asked");
    }

    #[test]
    fn shared_resources_render_the_same_for_every_environment() {
        let text = "kind: policy\nname: p\ntargetKind: secret\ntargetLinks: [//secret/db]\nbindings:\n  - permissions: [reveal]\n    principalLinks: [//gvc/app/identity/api-id]\n---\nkind: domain\nname: a.example.com\nspec: {ports: [{routes: [{workloadLink: //gvc/app/workload/web}]}]}\n---\nkind: gvc\nname: app\n";
        let gvcs = ["app-staging".to_owned(), "shop-prod".to_owned()];
        let out = render(
            &manifests(text),
            &env(ImageStrategy::None),
            Some(&gvcs),
            &[],
            &SourceImages::default(),
            None,
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(
            out[0].body["bindings"][0]["principalLinks"],
            serde_json::json!([
                "/org/acme-prod/gvc/app-staging/identity/api-id",
                "/org/acme-prod/gvc/shop-prod/identity/api-id"
            ])
        );
        assert_eq!(out[0].body["tags"][crate::plan::MANAGED_TAG], SHARED);
        assert_eq!(
            out[1].body["spec"]["ports"][0]["routes"][0]["workloadLink"],
            "/org/acme-prod/gvc/shop-prod/workload/web"
        );
        assert_eq!(
            out[2].body["tags"][crate::plan::MANAGED_TAG],
            "prod",
            "the GVC is the environment's own"
        );
    }

    #[test]
    fn overrides_merge_by_name() {
        let mut target = serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}], "keep": 1, "drop": 2}});
        let patch = serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}], "drop": null}});
        merge(&mut target, &patch);
        assert_eq!(
            target,
            serde_json::json!({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}], "keep": 1}})
        );
        let mut list = serde_json::json!({"links": ["a", "b"]});
        merge(&mut list, &serde_json::json!({"links": ["c"]}));
        assert_eq!(list, serde_json::json!({"links": ["c"]}));
    }
}
