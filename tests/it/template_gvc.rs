//! Issue 13, item 1: manifests written for one GVC (a chart's `cpln helm
//! template` output, a `-o yaml-slim` export) promoted between the GVCs
//! of a gvc-per-env pipeline on the simulator; every link written into
//! the live target names the target's GVC (docs/adoption.md).

use std::path::Path;
use std::time::Duration;

use ferry::sim::SimConfig;
use serde_json::{Value, json};

use crate::support::command::{Run, ferry_with, repo_root};
use crate::support::cpln::Cpln;
use crate::support::git::TestRepo;
use crate::support::oci::{Image, Registry};
use crate::support::sim::Api;
use crate::support::sim::Sim;

const ORG: &str = "acme";
const TOKEN: &str = "acme-token-t";
/// The chart's images, in the org's registry.
const IMAGES: [(&str, &str); 5] = [
    ("redis", "7.2.4"),
    ("cartservice", "v0.10.2"),
    ("productcatalogservice", "v0.10.2"),
    ("checkoutservice", "v0.10.2"),
    ("frontend", "v0.10.2"),
];

/// One org with the GVCs a team made by hand, the chart's images pushed.
struct Org {
    sim: Sim,
    api: Api,
}

impl Org {
    async fn start(gvcs: &[&str]) -> Self {
        let config =
            SimConfig::new().with_org(ORG, TOKEN).with_rollout_delay(Duration::from_millis(100));
        let sim = Sim::start(config).await;
        let api = Api::new(&sim, Some(TOKEN));
        for gvc in gvcs {
            let body = json!({"name": gvc, "spec": {"staticPlacement": {"locationLinks": ["//location/aws-us-east-2"]}}});
            let (status, answer) = api.post(&format!("/org/{ORG}/gvc"), body).await;
            assert!(status.is_success(), "{status}: {answer}");
        }
        let registry = Registry::new(&sim.registry_host(ORG).expect("registry"), TOKEN);
        for (repo, tag) in IMAGES {
            registry.push_image(repo, tag, &Image::new(&format!("{repo}-{tag}"), "amd64")).await;
        }
        Org { sim, api }
    }

    /// A repository holding `manifests` and a gvc-per-env plan file whose
    /// environments are `(name, gvc)`, in order.
    fn pipeline(&self, dir: &Path, environments: &[(&str, &str)], manifests: &[(&str, &str)]) {
        let mut plan =
            String::from("manifests:\n  path: manifests\ntopology: gvc-per-env\nenvironments:\n");
        for (name, gvc) in environments {
            plan.push_str(&format!(
                "  - name: {name}\n    org: {ORG}\n    gvc: {gvc}\n    endpoint: {}\n    tokenEnv: TOKEN_ACME\n    registry: {}\n    readiness: {{interval: 100ms, timeout: 8s, consecutiveChecks: 2}}\n",
                self.sim.api_url(),
                self.sim.registry_host(ORG).expect("registry"),
            ));
        }
        let repo = TestRepo::init(dir);
        let mut files = vec![("promotion.yaml", plan.as_str())];
        files.extend_from_slice(manifests);
        repo.write(&files);
        repo.commit_all("manifests written for one GVC");
    }

    /// The chart's output in a staging → prod pipeline.
    fn chart_pipeline(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let environments = [("staging", "boutique-staging"), ("prod", "boutique-prod")];
        self.pipeline(dir.path(), &environments, &[("manifests/online-boutique.yaml", &chart())]);
        dir
    }

    fn ferry(dir: &Path, args: &[&str]) -> Run {
        ferry_with(dir, args, &[("TOKEN_ACME", TOKEN)])
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api.get(&format!("/org/{ORG}{path}")).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Every item of the org, as the API shows it, but Ferry's own
    /// records (releases and locks are secrets too).
    async fn everything(&self, gvcs: &[&str]) -> Vec<Value> {
        let mut lists: Vec<String> =
            ["secret", "policy", "domain", "gvc"].iter().map(|k| format!("/{k}")).collect();
        for gvc in gvcs {
            for kind in ["workload", "identity", "volumeset"] {
                lists.push(format!("/gvc/{gvc}/{kind}"));
            }
        }
        let mut items = Vec::new();
        for list in lists {
            items.extend(self.get(&list).await["items"].as_array().cloned().unwrap_or_default());
        }
        items.retain(|i| {
            i["kind"] != "secret" || i["name"].as_str().is_some_and(|n| n.starts_with("boutique-"))
        });
        items
    }
}

fn chart() -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/online-boutique/online-boutique.yaml"))
        .expect("the chart's output")
}

fn ok(run: &Run, what: &str) {
    assert_eq!(run.code, Some(0), "{what}:\n{}\n{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_charts_output_written_for_one_gvc_promotes_from_one_gvc_to_another() {
    let org = Org::start(&["boutique-staging", "boutique-prod"]).await;
    let dir = org.chart_pipeline();
    let validated = Org::ferry(dir.path(), &["validate"]);
    ok(&validated, "validate");
    assert!(
        validated.stdout.contains("template GVC: `online-boutique` (the GVC their `gvc:` fields name), rendered as `boutique-staging` for staging, `boutique-prod` for prod"),
        "{}",
        validated.stdout
    );
    let json = Org::ferry(dir.path(), &["validate", "--output", "json"]);
    let report: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["templateGvc"]["name"], "online-boutique");
    assert_eq!(report["templateGvc"]["source"], "fields");

    ok(&Org::ferry(dir.path(), &["deploy", "staging", "--yes"]), "deploy staging");
    ok(&Org::ferry(dir.path(), &["promote", "staging", "prod", "--yes"]), "promote");

    for gvc in ["boutique-staging", "boutique-prod"] {
        let frontend = org.get(&format!("/gvc/{gvc}/workload/frontend")).await;
        assert_eq!(
            frontend["spec"]["identityLink"],
            format!("/org/{ORG}/gvc/{gvc}/identity/frontend")
        );
        let cart = org.get(&format!("/gvc/{gvc}/workload/cartservice")).await;
        assert_eq!(
            cart["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"],
            json!([
                format!("/org/{ORG}/gvc/{gvc}/workload/frontend"),
                format!("/org/{ORG}/gvc/{gvc}/workload/checkoutservice")
            ])
        );
        let redis = org.get(&format!("/gvc/{gvc}/workload/redis-cart")).await;
        assert!(redis["spec"]["containers"][0]["image"].as_str().is_some_and(|i| i.contains('@')));
    }
    // The org's one policy serves both GVCs' identities; the domain routes
    // to the last environment's frontend.
    let policy = org.get("/policy/boutique-secrets").await;
    let principals = &policy["bindings"][0]["principalLinks"];
    for gvc in ["boutique-staging", "boutique-prod"] {
        for identity in ["cartservice", "checkoutservice"] {
            let link = format!("/org/{ORG}/gvc/{gvc}/identity/{identity}");
            assert!(principals.as_array().is_some_and(|p| p.contains(&json!(link))), "{policy}");
        }
    }
    let domain = org.get("/domain/shop.example.com").await;
    assert_eq!(
        domain["spec"]["ports"][0]["routes"][0]["workloadLink"],
        format!("/org/{ORG}/gvc/boutique-prod/workload/frontend")
    );
    // Nothing live names the GVC the chart was written for.
    let (missing, _) = org.api.get(&format!("/org/{ORG}/gvc/online-boutique")).await;
    assert_eq!(missing.as_u16(), 404);
    let everything = org.everything(&["boutique-staging", "boutique-prod"]).await;
    assert_eq!(everything.len(), 2 + 1 + 1 + 2 + 2 * (5 + 3 + 1), "every resource and both GVCs");
    for item in &everything {
        assert!(!item.to_string().contains("/gvc/online-boutique"), "{item}");
        assert_ne!(item["gvc"], "online-boutique", "{item}");
    }
    let again = Org::ferry(dir.path(), &["plan", "prod", "--from", "staging"]);
    assert_eq!(again.code, Some(0), "nothing left to change:\n{}", again.stdout);
}

/// `cpln <kind> get -o yaml-slim` of what runs in staging, as a team would
/// bootstrap its manifests: `gvc: boutique-staging` and full-form links.
async fn export(org: &Org, gvc: &str) -> String {
    let cpln = Cpln::new(&org.sim, ORG, TOKEN);
    let mut exported = String::new();
    for kind in ["identity", "volumeset", "workload"] {
        let text =
            cpln.ok(&[kind, "get", "--gvc", gvc, "-o", "yaml-slim"], Duration::from_secs(60)).await;
        exported.push_str("---\n");
        exported.push_str(&text);
    }
    exported
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yaml_slim_export_of_one_gvc_promotes_into_another() {
    let org = Org::start(&["boutique-staging", "boutique-prod", "boutique-canary"]).await;
    let first = org.chart_pipeline();
    let chart = chart();
    ok(&Org::ferry(first.path(), &["deploy", "staging", "--yes"]), "deploy staging");

    // What the real CLI does with the chart's output for another GVC.
    let refused = Cpln::new(&org.sim, ORG, TOKEN)
        .run(
            &[
                "apply",
                "-f",
                &first.path().join("manifests/online-boutique.yaml").to_string_lossy(),
                "--gvc",
                "boutique-prod",
            ],
            Duration::from_secs(60),
        )
        .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            "The specified --gvc option 'boutique-prod' does not match the gvc value 'online-boutique'"
        ),
        "{}",
        crate::support::cpln::describe(&refused)
    );

    let exported = export(&org, "boutique-staging").await;
    assert!(exported.contains("gvc: boutique-staging"), "{exported}");
    assert!(
        exported.contains("/org/acme/gvc/boutique-staging/identity/cartservice"),
        "links in full form: {exported}"
    );
    // The org-scoped secrets the workloads read, from the chart (an export
    // of a secret has no payload).
    let secrets: String = chart
        .split("\n---\n")
        .filter(|doc| doc.contains("kind: secret"))
        .map(|doc| format!("---\n{doc}\n"))
        .collect();
    let second = tempfile::tempdir().expect("temp dir");
    org.pipeline(
        second.path(),
        &[("staging", "boutique-staging"), ("canary", "boutique-canary")],
        &[
            ("manifests/exported.yaml", exported.as_str()),
            ("manifests/secrets.yaml", secrets.as_str()),
        ],
    );
    let validated = Org::ferry(second.path(), &["validate"]);
    ok(&validated, "validate the export");
    assert!(
        validated.stdout.contains("template GVC: `boutique-staging` (the GVC their `gvc:` fields name), rendered as `boutique-staging` for staging, `boutique-canary` for canary"),
        "{}",
        validated.stdout
    );
    // Staging's release names the chart's commit, of the first repository:
    // the export is promoted at this repository's HEAD.
    let promoted =
        Org::ferry(second.path(), &["promote", "staging", "canary", "--ref", "HEAD", "--yes"]);
    ok(&promoted, "promote");
    let cart = org.get("/gvc/boutique-canary/workload/cartservice").await;
    assert_eq!(cart["spec"]["identityLink"], "/org/acme/gvc/boutique-canary/identity/cartservice");
    assert_eq!(
        cart["spec"]["firewallConfig"]["internal"]["inboundAllowWorkload"],
        json!([
            "/org/acme/gvc/boutique-canary/workload/frontend",
            "/org/acme/gvc/boutique-canary/workload/checkoutservice"
        ])
    );
    let canary = org.everything(&["boutique-canary"]).await;
    let workloads: Vec<&Value> = canary.iter().filter(|i| i["kind"] == "workload").collect();
    assert_eq!(workloads.len(), 5);
    for item in canary.iter().filter(|i| i["gvc"] == "boutique-canary") {
        assert!(!item.to_string().contains("gvc/boutique-staging"), "{item}");
    }
    let staging = org.get("/gvc/boutique-staging/workload/cartservice").await;
    assert_eq!(
        staging["spec"]["identityLink"], "/org/acme/gvc/boutique-staging/identity/cartservice",
        "staging is untouched"
    );
}
