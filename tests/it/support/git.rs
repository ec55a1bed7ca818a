//! Git repositories built by the tests with git2 (no git CLI, no global
//! configuration), with fixed signatures so that commit SHAs are stable.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature, Time};

/// A repository whose commits the test controls.
pub struct TestRepo {
    pub repo: Repository,
    pub dir: PathBuf,
}

impl TestRepo {
    pub fn init(dir: &Path) -> Self {
        let repo = Repository::init(dir).expect("init repository");
        Self { repo, dir: dir.to_path_buf() }
    }

    pub fn open(dir: &Path) -> Self {
        let repo = Repository::open(dir).expect("open repository");
        Self { repo, dir: dir.to_path_buf() }
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Oid {
        self.repo.head().ok().and_then(|h| h.target()).expect("HEAD is a commit")
    }

    /// Writes `files` (path, text) into the work tree.
    pub fn write(&self, files: &[(&str, &str)]) {
        for (path, text) in files {
            let full = self.dir.join(path);
            std::fs::create_dir_all(full.parent().expect("file has a folder"))
                .expect("create folders");
            std::fs::write(full, text).expect("write file");
        }
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.join(path)).expect("remove file");
    }

    /// Commits the whole work tree on HEAD's branch.
    pub fn commit_all(&self, message: &str) -> Oid {
        let mut index = self.repo.index().expect("index");
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write index");
        let tree = self.repo.find_tree(index.write_tree().expect("tree")).expect("find tree");
        let signature =
            Signature::new("Ferry Tests", "tests@ferry.invalid", &Time::new(1_700_000_000, 0))
                .expect("signature");
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &signature, &signature, message, &tree, &parents)
            .expect("commit")
    }

    pub fn tag(&self, name: &str, commit: Oid) {
        let object = self.repo.find_object(commit, None).expect("object");
        self.repo.tag_lightweight(name, &object, false).expect("tag");
    }

    pub fn branch(&self, name: &str, commit: Oid) {
        let commit = self.repo.find_commit(commit).expect("commit");
        self.repo.branch(name, &commit, true).expect("branch");
    }
}

/// Writes the shipped example (`manifests-example/`, `overrides/`) and
/// `extra` files into `repo` and commits them.
pub fn commit_example(repo: &TestRepo, extra: &[(&str, &str)]) {
    let root = crate::support::command::repo_root();
    let mut files: Vec<(String, String)> =
        extra.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect();
    for folder in ["manifests-example", "overrides"] {
        for entry in std::fs::read_dir(root.join(folder)).expect("example folder") {
            let path = entry.expect("entry").path();
            let name =
                format!("{folder}/{}", path.file_name().and_then(|n| n.to_str()).expect("name"));
            files.push((name, std::fs::read_to_string(&path).expect("example file")));
        }
    }
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    repo.write(&borrowed);
    repo.commit_all("the example");
}
