//! The exit codes, command by command, as a pipeline reads them: 0 done or
//! nothing to change, 1 an error (usage errors too), 2 changes present
//! (`plan`), 3 blocked (approval, lock, freeze). Run on the embedded
//! simulator with its sandbox exception turned off, so that approval
//! behaves as on a real environment. The lock's 3 is asserted in
//! promote's lock tests, freeze and halt in `approval`.

use crate::support::command::{ferry_with, repo_root};
use crate::support::git::{TestRepo, commit_example};

/// Each row: the arguments (after `--sim -f promotion.example.yaml`
/// unless it is a usage row), the expected exit code, and why.
const TABLE: &[(&[&str], i32, &str)] = &[
    (&["--help"], 0, "help"),
    (&["--version"], 0, "version"),
    (&["plan", "prod", "--frm", "staging"], 1, "a misspelled flag"),
    (&["promote", "staging"], 1, "a missing argument"),
    (&["bogus"], 1, "an unknown command"),
    (&["validate"], 0, "valid"),
    (&["validate", "qa"], 1, "an unknown environment"),
    (&["graph", "prod"], 0, "the graph"),
    (&["graph", "qa"], 1, "an unknown environment"),
    (&["render", "dev"], 0, "rendered"),
    (&["render", "qa"], 1, "an unknown environment"),
    (&["plan", "prod", "--from", "staging"], 2, "changes present"),
    (&["plan", "staging"], 0, "no changes"),
    (&["plan", "qa"], 1, "an unknown environment"),
    (&["promote", "staging", "prod", "--yes"], 3, "--yes alone into requireApproval"),
    (&["promote", "staging", "prod"], 3, "nobody to ask"),
    (&["promote", "dev", "staging", "--yes"], 0, "nothing to promote"),
    (&["promote", "staging", "qa", "--yes"], 1, "an unknown environment"),
    (&["deploy", "dev", "--yes"], 0, "nothing to deploy"),
    (&["deploy", "prod", "--yes"], 1, "prod has a source"),
    (&["apply", "missing.json"], 1, "no such plan"),
    (&["plan", "prod", "--from", "staging", "--out", "prod.json"], 2, "saved"),
    (&["apply", "prod.json", "--during-freeze"], 1, "--during-freeze is for a rollback"),
    (&["apply", "prod.json"], 0, "the saved plan applied"),
    (&["apply", "prod.json"], 1, "applied again: prod moved since it was made"),
    (&["plan", "prod", "--from", "staging"], 0, "no changes left"),
    (&["rollback", "prod", "--yes"], 1, "no earlier release"),
    (&["rollback", "qa", "--yes"], 1, "an unknown environment"),
    (&["history", "prod"], 0, "the releases"),
    (&["history", "prod", "9"], 1, "no such release"),
    (&["status"], 0, "every environment read"),
    (&["status", "qa"], 1, "an unknown environment"),
    (&["unlock", "prod"], 0, "not locked"),
    (&["unlock", "qa"], 1, "an unknown environment"),
    (&["image", "copy", "not a reference", "x"], 1, "a bad reference"),
    (&["sim", "image", "push", "dev", "api:9.9.9"], 0, "a demo image"),
    (&["sim", "image", "push", "qa", "api:9.9.9"], 1, "an unknown environment"),
];

#[test]
fn every_command_exits_with_the_code_its_outcome_means() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = std::fs::read_to_string(repo_root().join("promotion.example.yaml")).expect("plan");
    commit_example(&TestRepo::init(dir.path()), &[("promotion.example.yaml", &plan)]);
    let vars = [(ferry::promote::SIM_STRICT_APPROVAL, "1")];
    let mut wrong = Vec::new();
    for (args, code, why) in TABLE {
        let usage = args.first().is_some_and(|a| a.starts_with("--") || *a == "bogus");
        let mut all = args.to_vec();
        if !usage {
            all.extend(["--sim", "-f", "promotion.example.yaml"]);
        }
        let run = ferry_with(dir.path(), &all, &vars);
        if run.code != Some(*code) {
            wrong.push(format!(
                "ferry {} ({why}): exit {:?}, expected {code}\n{}",
                all.join(" "),
                run.code,
                run.stderr
            ));
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
