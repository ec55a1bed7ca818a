//! Setup shared by the benchmarks that run Ferry against the simulator.

use std::path::Path;
use std::process::{Command, Output};

use ferry::sim::SimHandle;

/// A git repository with a GVC, `count` workloads running `//image/IMAGE`,
/// and `plan` as promotion.yaml.
#[allow(dead_code, reason = "benchmarks with other manifests use commit_repository")]
pub fn write_repository(root: &Path, count: usize, image: &str, plan: &str) {
    let mut text = String::from(GVC);
    for n in 0..count {
        text.push_str(&format!(
            "---\nkind: workload\nname: worker-{n}\nspec:\n  type: standard\n  containers:\n    - name: main\n      image: //image/{}\n      cpu: 100m\n      memory: 128Mi\n",
            image.replace("{n}", &n.to_string())
        ));
    }
    commit_repository(root, &text, plan);
}

/// The GVC `app`, in one location.
pub const GVC: &str = "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n";

/// A git repository with `manifests` as manifests/app.yaml and `plan` as
/// promotion.yaml, committed.
pub fn commit_repository(root: &Path, manifests: &str, plan: &str) {
    commit_files(root, &[("manifests/app.yaml", manifests.to_owned())], plan);
}

/// A git repository with the shipped example (manifests-example/ and
/// overrides/) and `plan` as promotion.yaml, committed.
#[allow(dead_code, reason = "only the benchmarks of the example use it")]
pub fn commit_example(root: &Path, plan: &str) {
    let mut files = Vec::new();
    for folder in ["manifests-example", "overrides"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            files.push((format!("{folder}/{name}"), text));
        }
    }
    let files: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    commit_files(root, &files, plan);
}

/// `files` (path, text) and `plan` as promotion.yaml in a new git
/// repository at `root`, committed.
fn commit_files(root: &Path, files: &[(&str, String)], plan: &str) {
    for (path, text) in files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(root.join("promotion.yaml"), plan).unwrap_or_else(|e| panic!("{e}"));
    let repo = git2::Repository::init(root).unwrap_or_else(|e| panic!("{e}"));
    let mut index = repo.index().unwrap_or_else(|e| panic!("{e}"));
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap_or_else(|e| panic!("{e}"));
    let tree = index.write_tree().and_then(|t| repo.find_tree(t)).unwrap_or_else(|e| panic!("{e}"));
    let signature =
        git2::Signature::now("bench", "bench@ferry.invalid").unwrap_or_else(|e| panic!("{e}"));
    repo.commit(Some("HEAD"), &signature, &signature, "bench", &tree, &[])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Runs the `ferry` binary in `dir` with `vars`.
pub fn ferry(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .envs(vars.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("ferry: {e}"))
}

/// PUTs rendered bodies (`ferry render ENV --output json`) into an org.
pub async fn put_all(sim: &SimHandle, org: &str, token: &str, rendered: &[u8]) {
    let bodies: Vec<serde_json::Value> =
        serde_json::from_slice(rendered).unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest::Client::new();
    for body in bodies {
        let path = match body["kind"].as_str() {
            Some("gvc") => format!("/org/{org}/gvc"),
            Some("identity") => format!("/org/{org}/gvc/app/identity"),
            _ => format!("/org/{org}/gvc/app/workload"),
        };
        let response = client
            .put(format!("{}{path}", sim.api_url()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(response.status().is_success(), "{}", response.status());
    }
}
