//! Image references as Control Plane reads them, end to end: a workload
//! with the org's own image next to Docker Hub images with and without a
//! namespace, `gcr.io` and `ghcr.io` images, a private external registry
//! (a loopback Debian registry with auth, pulled through a docker pull
//! secret, its host mapped in the simulator's config) and another org's
//! image. `promote` copies only the org's own image, leaves every external
//! string as git wrote it (or pinned, with `pinExternal`), records
//! external digests in the release, and refuses a DST whose GVC lacks a
//! pull secret SRC needed.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use ferry::sim::SimConfig;
use serde_json::Value;

use crate::support::command::{Run, ferry_with};
use crate::support::git::TestRepo;
use crate::support::oci::{Image, Registry};
use crate::support::registry_server::AuthMode::Basic;
use crate::support::registry_server::RegistryServer;
use crate::support::sim::Api;
use crate::support::sim::Sim;

const STAGING: (&str, &str) = ("acme-staging", "staging-token-i");
const PROD: (&str, &str) = ("acme-prod", "prod-token-i");
const PARTNER: (&str, &str) = ("partner", "partner-token-i");
const PRIVATE_PASSWORD: &str = "private-registry-password";

/// Every container of the workload, by name, as written in git (`PRIVATE`
/// is the private registry's host).
const CONTAINERS: [(&str, &str); 7] = [
    ("own", "//image/api:1.0"),
    ("redis", "redis:alpine"),
    ("hub", "someuser/app:1.0"),
    ("gcr", "gcr.io/google-samples/hello-app:1.0"),
    ("ghcr", "ghcr.io/owner/tool:v1"),
    ("private", "PRIVATE/team/private-app:2.0"),
    ("partner", "partner.registry.cpln.io/shared/lib:3"),
];

struct Setup {
    dir: tempfile::TempDir,
    sim: Sim,
    private: RegistryServer,
    /// The private image's digest.
    private_digest: String,
}

impl Setup {
    async fn start() -> Self {
        let private = RegistryServer::start_with_password(Basic, PRIVATE_PASSWORD);
        let host = private.target.host.clone();
        let config = SimConfig::new()
            .with_rollout_delay(Duration::from_millis(100))
            .with_org(STAGING.0, STAGING.1)
            .with_org(PROD.0, PROD.1)
            .with_org(PARTNER.0, PARTNER.1)
            .with_external_registry(
                &host,
                &host,
                Some(("<token>".to_owned(), PRIVATE_PASSWORD.to_owned())),
            );
        let sim = Sim::start(config).await;
        let private_image = Image::new("private-app", "amd64");
        Registry::new(&host, PRIVATE_PASSWORD)
            .push_image("team/private-app", "2.0", &private_image)
            .await;
        let push = |org: &str, token: &str| {
            Registry::new(&sim.registry_host(org).expect("registry"), token)
        };
        push(STAGING.0, STAGING.1).push_image("api", "1.0", &Image::new("api", "amd64")).await;
        push(PARTNER.0, PARTNER.1).push_image("shared/lib", "3", &Image::new("lib", "amd64")).await;
        let setup = Setup {
            dir: tempfile::tempdir().expect("temp dir"),
            sim,
            private_digest: private_image.digest(),
            private,
        };
        let docker_config = setup.path().join("docker");
        std::fs::create_dir_all(&docker_config).expect("docker config dir");
        std::fs::write(docker_config.join("config.json"), setup.docker_config()).expect("config");
        setup.commit(&setup.plan_file(""), &setup.manifests());
        setup
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn private_host(&self) -> &str {
        &self.private.target.host
    }

    /// A docker config with the private registry's credentials.
    fn docker_config(&self) -> String {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("<token>:{PRIVATE_PASSWORD}"));
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.private_host())
    }

    /// The GVC with both pull secrets, the secrets and the workload.
    fn manifests(&self) -> String {
        let containers: String = CONTAINERS
            .iter()
            .map(|(name, image)| {
                format!(
                    "    - name: {name}\n      image: {}\n      cpu: 50m\n      memory: 64Mi\n",
                    image.replace("PRIVATE", self.private_host())
                )
            })
            .collect();
        let links = "[//secret/private-pull, //secret/partner-pull]";
        let docker = |host: &str, password: &str| {
            format!(
                r#"'{{"auths":{{"{host}":{{"username":"<token>","password":"{password}"}}}}}}'"#
            )
        };
        format!(
            "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n  pullSecretLinks: {links}\n---\nkind: secret\nname: private-pull\ntype: docker\ndata: {}\n---\nkind: secret\nname: partner-pull\ntype: docker\ndata: {}\n---\nkind: workload\nname: app\nspec:\n  type: standard\n  containers:\n{containers}  defaultOptions:\n    capacityAI: false\n    autoscaling: {{metric: cpu, target: 80, minScale: 1, maxScale: 1}}\n",
            docker(self.private_host(), PRIVATE_PASSWORD),
            docker("partner.registry.cpln.io", PARTNER.1),
        )
    }

    /// staging and prod on the simulator; `prod_images` is prod's extra
    /// `images` settings.
    fn plan_file(&self, prod_images: &str) -> String {
        let environment = |name: &str, org: &str| {
            format!(
                "  - name: {name}\n    org: {org}\n    gvc: app\n    endpoint: {}\n    tokenEnv: TOKEN_{}\n    registry: {}\n    readiness: {{interval: 100ms, timeout: 8s, consecutiveChecks: 2}}\n",
                self.sim.api_url(),
                name.to_uppercase(),
                self.sim.registry_host(org).expect("registry"),
            )
        };
        format!(
            "manifests:\n  path: manifests\ntopology: org-per-env\nenvironments:\n{}{}    immutableTags: false\n{prod_images}",
            environment("staging", STAGING.0),
            environment("prod", PROD.0),
        )
    }

    fn commit(&self, plan: &str, manifests: &str) {
        let repo = TestRepo::init(self.path());
        repo.write(&[("promotion.yaml", plan), ("manifests/app.yaml", manifests)]);
        repo.commit_all("public images");
    }

    fn ferry(&self, args: &[&str]) -> Run {
        let docker = self.path().join("docker");
        ferry_with(
            self.path(),
            args,
            &[
                ("TOKEN_STAGING", STAGING.1),
                ("TOKEN_PROD", PROD.1),
                ("DOCKER_CONFIG", docker.to_str().expect("path")),
            ],
        )
    }

    /// staging deployed from git with a saved plan.
    fn deploy_staging(&self) {
        let saved = self.path().join("staging-plan.json");
        let plan = self.ferry(&["plan", "staging", "--out", saved.to_str().expect("path")]);
        assert_eq!(plan.code, Some(2), "{}\n{}", plan.stdout, plan.stderr);
        let applied = self.ferry(&["apply", saved.to_str().expect("path"), "--yes"]);
        assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    }

    /// prod's workload's images by container name.
    async fn prod_images(&self) -> Vec<(String, String)> {
        let api = Api::new(&self.sim, Some(PROD.1));
        let (_, workload) = api.get(&format!("/org/{}/gvc/app/workload/app", PROD.0)).await;
        workload["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .map(|c| {
                (c["name"].as_str().unwrap_or("").into(), c["image"].as_str().unwrap_or("").into())
            })
            .collect()
    }

    /// The repositories in prod's registry (image resources).
    async fn prod_registry(&self) -> Vec<String> {
        let api = Api::new(&self.sim, Some(PROD.1));
        let (_, list) = api.get(&format!("/org/{}/image", PROD.0)).await;
        let mut names: Vec<String> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// The newest release of prod.
    fn last_release(&self) -> Value {
        let history = self.ferry(&["history", "prod", "--output", "json"]);
        let releases: Value = serde_json::from_str(&history.stdout).expect("history JSON");
        releases["releases"][0].clone()
    }
}

fn written(setup: &Setup, container: &str) -> String {
    let image = CONTAINERS.iter().find(|(name, _)| *name == container).expect("container").1;
    image.replace("PRIVATE", setup.private_host())
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_copies_only_the_orgs_own_images_and_records_external_digests() {
    let setup = Setup::start().await;
    setup.deploy_staging();

    let started = std::time::Instant::now();
    let run = setup.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "unreachable registries are bounded: {:?}",
        started.elapsed()
    );
    assert!(run.stdout.contains("external, docker.io: not copied"), "{}", run.stdout);
    // One warning line names every external image left unknown.
    let unknown: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("are recorded as unknown")).collect();
    assert_eq!(unknown.len(), 1, "{}", run.stderr);
    for unreachable in ["redis:alpine", "someuser/app:1.0", "gcr.io/google-samples/hello-app:1.0"] {
        assert!(unknown[0].contains(&format!("{unreachable} (")), "{unreachable}: {}", unknown[0]);
    }
    assert_eq!(setup.prod_registry().await, ["api:1.0"], "only the org's own image moved");

    for (container, image) in setup.prod_images().await {
        match container.as_str() {
            "own" => assert!(image.starts_with("/org/acme-prod/image/api@sha256:"), "{image}"),
            other => assert_eq!(image, written(&setup, other), "{other} runs as git wrote it"),
        }
    }

    let release = setup.last_release();
    let digest_of = |container: &str| {
        release["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["container"] == container)
            .map(|i| i["digest"].clone())
            .expect("recorded")
    };
    assert_eq!(digest_of("private"), setup.private_digest.as_str(), "resolved with Docker config");
    for unknown in ["redis", "hub", "gcr", "ghcr", "partner"] {
        assert_eq!(digest_of(unknown), Value::Null, "{unknown} is recorded as unknown");
    }
    assert!(digest_of("own").as_str().is_some_and(|d| d.starts_with("sha256:")));
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_external_writes_the_digest_staging_ran() {
    let setup = Setup::start().await;
    setup.commit(
        &setup.plan_file("    images: {strategy: copy, pinExternal: true}\n"),
        &setup.manifests(),
    );
    setup.deploy_staging();
    let run = setup.ferry(&["promote", "staging", "prod", "--yes"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let images = setup.prod_images().await;
    let image = |name: &str| images.iter().find(|(c, _)| c == name).map(|(_, i)| i.clone());
    assert_eq!(
        image("private"),
        Some(format!("{}/team/private-app@{}", setup.private_host(), setup.private_digest))
    );
    assert_eq!(image("redis").as_deref(), Some("redis:alpine"), "unknown digest: as written");
    assert_eq!(
        image("partner").as_deref(),
        Some("partner.registry.cpln.io/shared/lib:3"),
        "another org's image is not external"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_a_prod_gvc_without_the_private_pull_secret_writing_nothing() {
    let setup = Setup::start().await;
    setup.deploy_staging();
    // prod's GVC loses the private registry's pull secret link.
    let overrides = "    overrides:\n      - kind: gvc\n        name: app\n        patch: {spec: {pullSecretLinks: [//secret/partner-pull]}}\n";
    setup.commit(&format!("{}{overrides}", setup.plan_file("")), &setup.manifests());
    let before = setup.sim.request_log().len();
    let run = setup.ferry(&["promote", "staging", "prod", "--yes", "--ref", "HEAD"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("image {} needs a pull secret", written(&setup, "private"))),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("is not ready for this release"), "{}", run.stderr);
    let writes: Vec<_> = setup.sim.request_log()[before..]
        .iter()
        .filter(|r| r.org.as_deref() == Some(PROD.0))
        .filter(|r| matches!(r.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE"))
        .filter(|r| !r.path.ends_with("/-query") && !r.path.contains("ferry-lock-prod"))
        .filter(|r| !(r.method == "POST" && r.path == "/org/acme-prod/secret"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(setup.prod_registry().await.is_empty(), "no image was copied");
}
