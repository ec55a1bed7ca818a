//! Loading 10,000 resources from a git repository and building their
//! graph, compared in the same run with `git archive` of the same tree (the
//! git CLI reading every blob: the floor for "read the manifests").
//!
//! `cargo bench --bench load_graph`; figures go in docs/performance.md.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use ferry::manifest::{ManifestSet, load_documents};
use ferry::{graph, repo};

const FILES: usize = 100;
const PER_FILE: usize = 100;

fn main() {
    divan::main();
}

/// A repository with 10,000 resources: secrets, identities and workloads
/// that reference them, one GVC, in 100 multi-document files.
static REPOSITORY: LazyLock<(tempfile::TempDir, PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let root = dir.path().to_path_buf();
    let manifests = root.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap_or_else(|e| panic!("folder: {e}"));
    for file in 0..FILES {
        let mut text = String::new();
        for doc in 0..PER_FILE {
            let n = file * PER_FILE + doc;
            let resource = match n % 3 {
                _ if n == 0 => "kind: gvc\nname: app\nspec:\n  staticPlacement:\n    locationLinks: [//location/aws-us-east-2]\n".to_owned(),
                0 => format!("kind: secret\nname: secret-{n}\ntype: opaque\ndata:\n  payload: value-{n}\n"),
                1 => format!("kind: identity\nname: identity-{n}\n"),
                _ => format!(
                    "kind: workload\nname: workload-{n}\nspec:\n  type: standard\n  identityLink: //gvc/app/identity/identity-{}\n  containers:\n    - name: main\n      image: //image/app:1.0.{n}\n      env:\n        - name: SECRET\n          value: cpln://secret/secret-{}.payload\n",
                    n - 1,
                    n - 2
                ),
            };
            text.push_str(&resource);
            text.push_str("---\n");
        }
        std::fs::write(manifests.join(format!("part-{file:03}.yaml")), text)
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    commit(&root);
    (dir, root)
});

fn commit(root: &Path) {
    let repo = git2::Repository::init(root).unwrap_or_else(|e| panic!("init: {e}"));
    let mut index = repo.index().unwrap_or_else(|e| panic!("index: {e}"));
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap_or_else(|e| panic!("add: {e}"));
    let tree =
        index.write_tree().and_then(|t| repo.find_tree(t)).unwrap_or_else(|e| panic!("tree: {e}"));
    let signature =
        git2::Signature::now("bench", "bench@ferry.invalid").unwrap_or_else(|e| panic!("{e}"));
    repo.commit(Some("HEAD"), &signature, &signature, "bench", &tree, &[])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Ferry: read the tree at HEAD, parse every document, build the graph.
#[divan::bench(sample_count = 10)]
fn ferry_load_and_graph() -> usize {
    let root = &REPOSITORY.1;
    let snapshot = repo::read_git(root, "HEAD", "manifests").unwrap_or_else(|e| panic!("{e}"));
    let (resources, problems) = load_documents(&snapshot.files);
    assert!(problems.is_empty() && resources.len() == FILES * PER_FILE);
    let set = ManifestSet { resources };
    let graph = graph::build(&set, &[]).unwrap_or_else(|p| panic!("{}", p.message));
    graph.waves.len()
}

/// Peer: `git archive HEAD manifests` into a pipe that is thrown away.
#[divan::bench(sample_count = 10)]
fn peer_git_archive() -> usize {
    let root = &REPOSITORY.1;
    let output = std::process::Command::new("git")
        .args(["-C", &root.display().to_string(), "archive", "HEAD", "manifests"])
        .output()
        .unwrap_or_else(|e| panic!("git: {e}"));
    assert!(output.status.success());
    output.stdout.len()
}
