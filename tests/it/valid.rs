//! Valid manifests in the shapes Control Plane users write (tests/valid/):
//! multi-document files with comments, `kind: list`, `-o yaml` and
//! `-o yaml-slim` exports, CRLF line ends, a BOM, every workload type,
//! every secret type, every location link form. Each folder must validate
//! with no problem at all and render for every environment.

use std::path::PathBuf;

use ferry::validate::schema::SECRET_TYPES;

use crate::support::command::{ferry, repo_root};

pub fn folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/valid"))
        .expect("tests/valid exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("promotion.yaml").is_file())
        .collect();
    folders.sort();
    assert!(!folders.is_empty(), "no folder under tests/valid");
    folders
}

/// Every manifest file's text, for checking what the corpus covers.
fn manifests_text() -> String {
    let mut text = String::new();
    for folder in folders() {
        for entry in std::fs::read_dir(folder.join("manifests")).expect("manifests/") {
            let bytes = std::fs::read(entry.expect("an entry").path()).expect("readable");
            text.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
            text.push('\n');
        }
    }
    text
}

#[test]
fn real_world_shapes_validate_without_a_problem() {
    for folder in folders() {
        let run = ferry(&folder, &["validate", "-f", "promotion.yaml", "--worktree"]);
        assert_eq!(run.code, Some(0), "{}:\n{}", folder.display(), run.stderr);
        assert!(
            !run.stderr.contains("ferry::"),
            "{}: a problem or warning:\n{}",
            folder.display(),
            run.stderr
        );
        assert!(run.stdout.contains("valid:"), "{}", run.stdout);
        for env in ["staging", "prod"] {
            let render = ferry(&folder, &["render", env, "-f", "promotion.yaml", "--worktree"]);
            assert_eq!(render.code, Some(0), "render {env}:\n{}", render.stderr);
            assert!(render.stdout.contains("kind: workload"), "{}", render.stdout);
            if folder.ends_with("realistic") {
                // Fields Ferry does not know are kept as written.
                assert!(render.stdout.contains("newPlatformFeature:"), "{}", render.stdout);
            }
        }
    }
}

#[test]
fn the_valid_corpus_covers_every_type_and_form() {
    let text = manifests_text();
    for kind in SECRET_TYPES.iter().chain(&["serverless", "standard", "cron", "stateful"]) {
        assert!(text.contains(&format!("type: {kind}\n")), "no `type: {kind}`");
    }
    for form in ["- //location/aws-", "- /org/acme-staging/location/gcp-", "- //location/azure-"] {
        assert!(text.contains(form), "no location link like `{form}`");
    }
    for shape in ["kind: list\n", "\n---\n", "\nstatus:\n", "\nlinks:\n", "\ndescription: "] {
        assert!(text.contains(shape), "no `{shape}`");
    }
    let raw: Vec<Vec<u8>> = folders()
        .iter()
        .flat_map(|f| std::fs::read_dir(f.join("manifests")).expect("manifests/"))
        .map(|e| std::fs::read(e.expect("an entry").path()).expect("readable"))
        .collect();
    assert!(raw.iter().any(|b| b.starts_with(b"\xef\xbb\xbf")), "no file with a BOM");
    assert!(raw.iter().any(|b| b.windows(2).any(|w| w == b"\r\n")), "no CRLF file");
    // A yaml-slim export: keys sorted, so `kind` is not the first line.
    assert!(raw.iter().any(|b| b.starts_with(b"description: ")), "no yaml-slim export");
}
