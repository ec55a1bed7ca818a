//! `ferry import`'s conversion: what an environment runs (live JSON, as
//! the API gives it) → manifests (YAML a team commits). Pure; reading the
//! API and writing the files is `commands::import`'s job.
//!
//! A manifest is what `cpln <kind> get -o yaml-slim` writes (the CLI's
//! `slimObject`: server-managed fields dropped), and further what Ferry
//! itself would add or that only says what the API fills in anyway, so
//! that planning the environment from the imported files shows no change
//! ([`crate::normalize`] is the reference for both):
//!
//! - links in short form: `/org/ORG/…` → `//…`, the environment's GVC in
//!   them (and the GVC's own name, and `gvc:`) written as the template GVC;
//! - internal hostnames of the environment's GVC
//!   (`WORKLOAD.GVC.cpln.local`) written under the template GVC, as
//!   [`crate::render`] renders them back (not in a secret's payload);
//! - images as they run: the org's own as `//image/NAME:TAG`;
//! - tags: Ferry's ownership tag and platform tags dropped; a description
//!   that only repeats the name dropped;
//! - secrets: type and keys, every value a [`KEEP_LIVE`] placeholder (the
//!   file's comment says how to supply them), unless values are included.
//!
//! Not imported: what is built into every org, Ferry's own release records,
//! locks and record of the fields it wrote, other GVCs and what belongs to
//! them.

use serde_json::{Map, Value, json};

use crate::manifest::Kind;
use crate::manifest::kept_secret::{self, KEEP_LIVE};

/// Where the live resources are and how their manifests name the GVC.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub org: &'a str,
    /// The environment's GVC.
    pub gvc: &'a str,
    /// The GVC name the manifests use (the template the environment's GVC
    /// is rendered from).
    pub template: &'a str,
    /// gvc-per-env: every environment's GVC. The org-scoped resources the
    /// pipeline's environments share are rendered with a link into each
    /// of them where the manifests write one into the template
    /// ([`crate::render`]), so such links are written back as that one;
    /// empty otherwise.
    pub shared: &'a [String],
}

/// Whether secret values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretValues {
    /// Every value a placeholder.
    Placeholders,
    /// The values as the API revealed them (`--include-secret-values`).
    Included,
}

/// One imported manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub kind: Kind,
    /// The name as the manifest writes it.
    pub name: String,
    /// Where it goes, relative to the output folder: `KIND/NAME.yaml`.
    pub path: String,
    pub text: String,
}

/// Fields `-o yaml-slim` drops (the CLI's `slimObject`) beyond those the
/// API manages ([`crate::normalize::SERVER_MANAGED`], which holds `gvc`,
/// written again below): an image's.
const SLIM_IMAGE: &[&str] = &["repository", "tag", "manifest", "digest"];

/// Why a live resource is not imported; `None` when it is.
pub fn skipped(kind: Kind, body: &Value, scope: Scope<'_>) -> Option<String> {
    let name = body.get("name").and_then(Value::as_str)?;
    if body.get("origin").and_then(Value::as_str) == Some("builtin") {
        return Some("built into every org".to_owned());
    }
    if !is_file_name(name) {
        return Some("its name cannot be a file name".to_owned());
    }
    let tags = body.get("tags");
    let tagged = |tag: &str| tags.and_then(|t| t.get(tag)).is_some();
    if kind == Kind::Secret && tagged(crate::release::RELEASE_OF_TAG) {
        return Some("a release record Ferry writes".to_owned());
    }
    if kind == Kind::Secret && tagged(crate::applied::APPLIED_OF_TAG) {
        return Some("the record of the fields Ferry last wrote".to_owned());
    }
    if kind == Kind::Secret && tagged(crate::lock::LOCK_OF_TAG) {
        return Some("a promotion lock Ferry writes".to_owned());
    }
    if kind == Kind::Gvc && name != scope.gvc {
        return Some(format!("another GVC than {}'s", scope.gvc));
    }
    if !kind.is_gvc_scoped() && kind != Kind::Gvc {
        let mut gvcs = Vec::new();
        linked_gvcs(body, scope.org, &mut gvcs);
        if !gvcs.is_empty() && !gvcs.iter().any(|g| g == scope.gvc) {
            gvcs.sort();
            gvcs.dedup();
            return Some(format!("it links only to GVC {}, not to {}", gvcs.join(", "), scope.gvc));
        }
    }
    None
}

/// A Control Plane name is a file name as it is; anything else (a slash,
/// a leading dot) is never turned into a path.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The GVCs of `org` that links anywhere in `value` name.
fn linked_gvcs(value: &Value, org: &str, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            let rest = text
                .strip_prefix(&format!("/org/{org}/gvc/"))
                .or_else(|| text.strip_prefix("//gvc/"));
            if let Some(gvc) = rest.and_then(|r| r.split('/').next()).filter(|g| !g.is_empty()) {
                out.push(gvc.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| linked_gvcs(v, org, out)),
        Value::Object(map) => {
            for (key, value) in map {
                if !["description", "tags", "data"].contains(&key.as_str()) {
                    linked_gvcs(value, org, out);
                }
            }
        }
        _ => {}
    }
}

/// The manifest of one live resource.
pub fn manifest(kind: Kind, body: &Value, scope: Scope<'_>, values: SecretValues) -> Imported {
    let mut doc = body.as_object().cloned().unwrap_or_default();
    let live_name = doc.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = if kind == Kind::Gvc { scope.template.to_owned() } else { live_name.clone() };
    let server = crate::normalize::SERVER_MANAGED.iter().chain(SLIM_IMAGE);
    for field in server.chain(&["kind", "name"]) {
        doc.remove(*field);
    }
    if doc.get("description").and_then(Value::as_str) == Some(live_name.as_str()) {
        doc.remove("description");
    }
    if let Some(Value::Object(tags)) = doc.get_mut("tags") {
        tags.remove(crate::plan::MANAGED_TAG);
        tags.retain(|_, v| !v.is_null());
    }
    let mut tags_only = json!({"tags": doc.get("tags").cloned().unwrap_or(Value::Null)});
    crate::diff::without_platform_tags(&mut tags_only);
    match tags_only.get("tags") {
        Some(Value::Object(tags)) if !tags.is_empty() => {
            doc.insert("tags".into(), Value::Object(tags.clone()));
        }
        _ => {
            doc.remove("tags");
        }
    }
    // An org-scoped resource a gvc-per-env pipeline shares links into
    // every environment's GVC as render wrote it.
    let links = Links {
        scope,
        shared: !kind.is_gvc_scoped() && kind != Kind::Gvc && !scope.shared.is_empty(),
    };
    for (key, value) in &mut doc {
        if crate::normalize::is_linkable(kind.as_str(), key) {
            links.shorten(value);
        }
    }
    // Internal hostnames too, the way render wrote them (a shared
    // resource's: the last environment's GVC).
    let mut gvcs = vec![scope.gvc];
    if links.shared {
        gvcs.extend(scope.shared.iter().map(String::as_str));
    }
    crate::render::hostnames::rewrite_fields(&mut doc, kind, &gvcs, scope.template);
    let secret = kind == Kind::Secret;
    if secret
        && values == SecretValues::Placeholders
        && let Some(data) = doc.get_mut("data")
    {
        *data = kept_secret::placeholders(data);
    }
    let mut ordered = Map::new();
    ordered.insert("kind".into(), Value::String(kind.as_str().to_owned()));
    ordered.insert("name".into(), Value::String(name.clone()));
    if kind.is_gvc_scoped() {
        ordered.insert("gvc".into(), Value::String(scope.template.to_owned()));
    }
    for key in ["description", "tags"] {
        if let Some(value) = doc.remove(key) {
            ordered.insert(key.into(), value);
        }
    }
    ordered.extend(doc);
    let yaml = crate::manifest::yaml::to_yaml(&Value::Object(ordered));
    let text = match (secret, values) {
        (true, SecretValues::Placeholders) => format!("{}{yaml}", placeholder_comment()),
        (true, SecretValues::Included) => format!(
            "# Imported with --include-secret-values: this file holds the secret's values.\n# Keep it out of shared repositories, or replace each value with `{KEEP_LIVE}`.\n{yaml}"
        ),
        _ => yaml,
    };
    let text = format!("{WRITTEN_BY_IMPORT}{text}");
    Imported { kind, path: format!("{}/{name}.yaml", kind.as_str()), name, text }
}

/// The first line of every manifest `ferry import` writes: `--force`
/// writes over a file only when it still starts with it, so a file a
/// person wrote, or took over by deleting the line, is never replaced.
pub const WRITTEN_BY_IMPORT: &str = "# Written by `ferry import`; `ferry import --force` may write over this file (delete this line to keep it yours).\n";

/// Whether `text` is a manifest `ferry import` wrote (and may write over).
pub fn written_by_import(text: &str) -> bool {
    text.starts_with(WRITTEN_BY_IMPORT)
}

fn placeholder_comment() -> String {
    format!(
        "# The values of this secret were not imported. `{KEEP_LIVE}` keeps the value\n\
         # the environment's secret holds: `ferry plan` and `promote` read it there\n\
         # and never change it. To manage a value in git instead, write it in place\n\
         # of the placeholder (or set it per environment with an override).\n"
    )
}

/// How one resource's links are written.
struct Links<'a> {
    scope: Scope<'a>,
    /// The resource is shared by a gvc-per-env pipeline's environments:
    /// a link into any of their GVCs is written as the template, once.
    shared: bool,
}

impl Links<'_> {
    /// Links in short form: `/org/ORG/x` → `//x`, and the environment's
    /// GVC (a shared resource: any of the pipeline's) written as the
    /// template (`//gvc/GVC/…` → `//gvc/TEMPLATE/…`); in a shared
    /// resource's lists, the links that became the same, once.
    fn shorten(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.short_link(text).unwrap_or_else(|| text.clone()),
            Value::Array(items) => {
                items.iter_mut().for_each(|v| self.shorten(v));
                let mut seen = Vec::new();
                items.retain(|item| match item.as_str() {
                    Some(text) if self.shared => {
                        let first = !seen.contains(&text.to_owned());
                        seen.push(text.to_owned());
                        first
                    }
                    _ => true,
                });
            }
            Value::Object(map) => map.values_mut().for_each(|v| self.shorten(v)),
            _ => {}
        }
    }

    fn short_link(&self, text: &str) -> Option<String> {
        let scope = self.scope;
        let rest = text
            .strip_prefix(&format!("/org/{}/", scope.org))
            .or_else(|| text.strip_prefix("//").filter(|r| !r.is_empty() && !r.starts_with('/')))?;
        let ours =
            |gvc: &str| gvc == scope.gvc || (self.shared && scope.shared.iter().any(|g| g == gvc));
        let in_gvc = rest.strip_prefix("gvc/").map(|r| r.split_at(r.find('/').unwrap_or(r.len())));
        let rest = match in_gvc {
            Some((gvc, tail)) if ours(gvc) => format!("gvc/{}{tail}", scope.template),
            _ => rest.to_owned(),
        };
        Some(format!("//{rest}"))
    }
}

/// The skeleton of a plan file for `env`, read from `manifests` (relative
/// to the plan file's folder, which is taken to be the repository).
pub struct Skeleton<'a> {
    pub env: &'a str,
    pub org: &'a str,
    pub gvc: &'a str,
    pub endpoint: Option<&'a str>,
    pub token_env: &'a str,
    pub topology: &'a str,
    pub manifests: &'a str,
}

/// The plan file `ferry import` writes when there is none.
pub fn skeleton(s: &Skeleton<'_>) -> String {
    let mut env = Map::new();
    env.insert("name".into(), json!(s.env));
    env.insert("org".into(), json!(s.org));
    env.insert("gvc".into(), json!(s.gvc));
    if let Some(endpoint) = s.endpoint {
        env.insert("endpoint".into(), json!(endpoint));
    }
    env.insert("tokenEnv".into(), json!(s.token_env));
    let body = json!({
        "version": 1,
        "manifests": {"repository": ".", "path": s.manifests, "revision": "HEAD"},
        "topology": s.topology,
        "environments": [Value::Object(env)],
    });
    format!(
        "# Ferry promotion plan file, written by `ferry import {}` (docs/adoption.md).\n\
         # Add the environments {} is promoted from and to, in promotion order;\n\
         # promotion.example.yaml documents every key.\n{}",
        s.env,
        s.env,
        crate::manifest::yaml::to_yaml(&body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> =
        Scope { org: "acme", gvc: "shop-prod", template: "shop", shared: &[] };

    fn imported(kind: Kind, body: &Value) -> (Value, String) {
        let out = manifest(kind, body, SCOPE, SecretValues::Placeholders);
        let source = crate::diagnostic::SourceFile::new(out.path.clone(), out.text.clone());
        let docs =
            crate::manifest::yaml::parse_documents(&source).unwrap_or_else(|e| panic!("{e:?}"));
        (docs[0].to_json(), out.path)
    }

    #[test]
    fn a_resource_gvc_per_env_environments_share_links_into_the_template_once() {
        let live = json!({"kind": "policy", "name": "p", "targetKind": "secret",
            "targetLinks": ["/org/acme/secret/db"],
            "bindings": [{"permissions": ["reveal"], "principalLinks": [
                "/org/acme/gvc/shop-staging/identity/api", "/org/acme/gvc/shop-prod/identity/api",
                "/org/acme/gvc/other/identity/x"]}]});
        let principals = |scope: Scope<'_>| {
            let out = manifest(Kind::Policy, &live, scope, SecretValues::Placeholders);
            let source = crate::diagnostic::SourceFile::new(out.path.clone(), out.text.clone());
            let docs =
                crate::manifest::yaml::parse_documents(&source).unwrap_or_else(|e| panic!("{e:?}"));
            docs[0].to_json()["bindings"][0]["principalLinks"].clone()
        };
        let shared = ["shop-staging".to_owned(), "shop-prod".to_owned()];
        assert_eq!(
            principals(Scope { shared: &shared, ..SCOPE }),
            json!(["//gvc/shop/identity/api", "//gvc/other/identity/x"])
        );
        assert_eq!(
            principals(SCOPE),
            json!([
                "//gvc/shop-staging/identity/api",
                "//gvc/shop/identity/api",
                "//gvc/other/identity/x"
            ]),
            "org-per-env: only the environment's GVC is the template's"
        );
    }

    #[test]
    fn a_workload_is_written_slim_with_short_links_and_the_template_gvc() {
        let live = json!({
            "kind": "workload", "name": "api", "id": "1f2e", "version": 7, "gvc": "shop-prod",
            "description": "api", "created": "2026-01-01T00:00:00Z", "lastModified": "x",
            "links": [{"rel": "self", "href": "/org/acme/gvc/shop-prod/workload/api"}],
            "status": {"endpoint": "https://api.example"},
            "tags": {"ferry/environment": "prod", "cpln/deployTimestamp": "now", "team": "shop"},
            "spec": {"type": "standard", "identityLink": "/org/acme/gvc/shop-prod/identity/api",
                "containers": [{"name": "main", "image": "/org/acme/image/api:1.4@sha256:ab",
                    "env": [{"name": "DB", "value": "cpln://secret/db.payload"},
                            {"name": "PATH_LIKE", "value": "/org/other/secret/x"},
                            {"name": "CART", "value": "http://cart.shop-prod.cpln.local:7070,x.edge.cpln.local"}]}]}});
        let (doc, path) = imported(Kind::Workload, &live);
        assert_eq!(path, "workload/api.yaml");
        assert_eq!(
            doc,
            json!({"kind": "workload", "name": "api", "gvc": "shop", "tags": {"team": "shop"},
                "spec": {"type": "standard", "identityLink": "//gvc/shop/identity/api",
                    "containers": [{"name": "main", "image": "//image/api:1.4@sha256:ab",
                        "env": [{"name": "DB", "value": "cpln://secret/db.payload"},
                                {"name": "PATH_LIKE", "value": "/org/other/secret/x"},
                                {"name": "CART", "value": "http://cart.shop.cpln.local:7070,x.edge.cpln.local"}]}]}}),
            "an internal hostname of the environment's GVC is written under the template"
        );
    }

    #[test]
    fn the_gvc_takes_the_template_name_and_its_links_are_short() {
        let live = json!({"kind": "gvc", "name": "shop-prod", "description": "the shop",
            "spec": {"staticPlacement": {"locationLinks": ["/org/acme/location/aws-us-west-2"]},
                     "pullSecretLinks": ["/org/acme/secret/pull"]}});
        let (doc, path) = imported(Kind::Gvc, &live);
        assert_eq!(path, "gvc/shop.yaml");
        assert_eq!(doc["name"], "shop");
        assert_eq!(doc["description"], "the shop");
        assert_eq!(doc["spec"]["staticPlacement"]["locationLinks"][0], "//location/aws-us-west-2");
        assert_eq!(doc["spec"]["pullSecretLinks"][0], "//secret/pull");
        assert!(doc.get("gvc").is_none());
    }

    #[test]
    fn secrets_keep_type_and_keys_never_values() {
        let live = json!({"kind": "secret", "name": "db", "type": "userpass",
            "data": {"username": "shop", "password": "hunter2-payload", "encoding": "plain"}});
        let out = manifest(Kind::Secret, &live, SCOPE, SecretValues::Placeholders);
        assert!(
            !out.text.contains("hunter2") && !out.text.contains("username: shop"),
            "{}",
            out.text
        );
        assert!(written_by_import(&out.text), "{}", out.text);
        let rest = out.text.strip_prefix(WRITTEN_BY_IMPORT).unwrap_or_default();
        assert!(rest.starts_with("# The values of this secret were not imported"), "{rest}");
        let (doc, _) = imported(Kind::Secret, &live);
        assert_eq!(
            doc["data"],
            json!({"username": KEEP_LIVE, "password": KEEP_LIVE, "encoding": "plain"})
        );
        let docker =
            json!({"kind": "secret", "name": "pull", "type": "docker", "data": "{\"auths\":{}}"});
        assert_eq!(imported(Kind::Secret, &docker).0["data"], KEEP_LIVE);
        let included = manifest(Kind::Secret, &live, SCOPE, SecretValues::Included);
        assert!(included.text.contains("hunter2-payload"));
    }

    #[test]
    fn builtins_ferrys_own_and_other_gvcs_are_not_imported() {
        let skip = |kind: Kind, body: Value| skipped(kind, &body, SCOPE);
        assert!(skip(Kind::Group, json!({"name": "superusers", "origin": "builtin"})).is_some());
        let record = json!({"name": "ferry-release-prod-3", "tags": {"ferry/release-of": "prod"}});
        assert!(skip(Kind::Secret, record).is_some());
        let lock = json!({"name": "ferry-lock-prod", "tags": {"ferry/lock-of": "prod"}});
        assert!(skip(Kind::Secret, lock).is_some());
        let applied = json!({"name": "ferry-applied-prod", "tags": {"ferry/applied-of": "prod"}});
        assert!(skip(Kind::Secret, applied).is_some());
        assert!(skip(Kind::Gvc, json!({"name": "shop-staging"})).is_some());
        assert!(skip(Kind::Gvc, json!({"name": "shop-prod"})).is_none());
        let elsewhere = json!({"name": "staging.example.com", "spec": {"ports": [{"routes": [
            {"workloadLink": "/org/acme/gvc/shop-staging/workload/web"}]}]}});
        let why = skip(Kind::Domain, elsewhere);
        assert!(why.as_deref().is_some_and(|w| w.contains("shop-staging")), "{why:?}");
        let here = json!({"name": "example.com", "spec": {"ports": [{"routes": [
            {"workloadLink": "/org/acme/gvc/shop-prod/workload/web"}]}]}});
        assert!(skip(Kind::Domain, here).is_none());
        assert!(skip(Kind::Secret, json!({"name": "db"})).is_none());
        assert!(skip(Kind::Secret, json!({"name": "../x"})).is_some());
    }

    #[test]
    fn the_skeleton_is_a_plan_file_ferry_reads() {
        let text = skeleton(&Skeleton {
            env: "prod",
            org: "acme",
            gvc: "shop-prod",
            endpoint: None,
            token_env: "CPLN_TOKEN",
            topology: "gvc-per-env",
            manifests: "cpln",
        });
        let parsed = crate::config::parse(&crate::diagnostic::SourceFile::new("p.yaml", text))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.manifests.path, "cpln");
        assert_eq!(parsed.environments[0].gvc, "shop-prod");
    }
}
