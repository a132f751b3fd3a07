//! The CLI's version commands, run through the real binary: `log`, `heads`, `checkout`,
//! `diff`, `merge`, and how versions are named (full ids, prefixes, errors).

mod cli_support;

use std::collections::HashMap;

use cli_support::Repo;
use serde_json::Value;
use strata::{Commit, CommitType, FramedSha256, NodeHasher};

/// A repository with a fork: `base` then `ours` on one side, `theirs` (and a row `b`) on the
/// other, both changing row `d/a`.
struct Forked {
    repo: Repo,
    base: String,
    ours: String,
    theirs: String,
    side: String,
}

fn forked() -> Forked {
    let repo = Repo::new();
    let base = repo
        .ok(&["put", "d", "a", "1", "-m", "first"])
        .trim()
        .to_string();
    let ours = repo
        .ok(&["put", "d", "a", "2", "-m", "second"])
        .trim()
        .to_string();
    repo.ok(&["checkout", &base]);
    let theirs = repo
        .ok(&["put", "d", "a", "3", "-m", "fork side"])
        .trim()
        .to_string();
    let side = repo.put("d", "b", r#""x""#);
    repo.ok(&["checkout", "--latest"]);
    Forked {
        repo,
        base,
        ours,
        theirs,
        side,
    }
}

fn versions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect()
}

#[test]
fn log_lists_commits_newest_first_with_their_fields() {
    let repo = Repo::new();
    let v1 = repo
        .ok(&["put", "d", "a", "1", "-m", "first"])
        .trim()
        .to_string();
    let v2 = repo
        .ok(&["put", "d", "b", "2", "-m", "multi\nline message"])
        .trim()
        .to_string();
    let v3 = repo.ok(&["del", "d", "a"]).trim().to_string();
    let log = repo.ndjson(&["log", "--json"]);
    assert_eq!(versions(&log), vec![&v3, &v2, &v1]);
    for entry in &log {
        for field in [
            "version", "change", "log", "seq", "links", "time", "time_iso", "message", "puts",
            "deletes", "files", "commit", "visible", "head", "checkout",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
        assert_eq!(entry["visible"], true);
        assert_eq!(entry["commit"], true);
    }
    assert_eq!(log[0]["head"], true);
    assert_eq!(log[1]["head"], false);
    assert_eq!(log[0]["deletes"], 1);
    assert_eq!(log[0]["puts"], 0);
    assert_eq!(log[0]["message"], Value::Null);
    assert_eq!(log[1]["message"], "multi\nline message");
    assert_eq!(log[2]["change"], 1);
    assert_eq!(log[2]["seq"], 1);
    assert_eq!(log[2]["links"], serde_json::json!([]));
    assert_eq!(log[1]["links"], serde_json::json!([v1]));
    assert_eq!(repo.ndjson(&["log", "--json", "-n", "2"]).len(), 2);

    let text = repo.ok(&["log"]);
    assert!(text.starts_with(&format!("* {v3} (head)\n")), "{text}");
    assert!(text.contains("    first"), "{text}");
    assert!(text.contains("    line message"), "{text}");
    assert!(text.contains("1 delete"), "{text}");
    let oneline = repo.ok(&["log", "--oneline"]);
    assert_eq!(oneline.lines().count(), 3, "{oneline}");
    assert!(
        oneline.lines().nth(2).unwrap().ends_with(" first"),
        "{oneline}"
    );
}

#[test]
fn log_draws_forks_and_merges_as_a_graph() {
    let f = forked();
    let merged = f
        .repo
        .ok(&["merge", &f.side, &f.ours, "--ours", "-m", "join"])
        .trim()
        .to_string();
    let oneline = f.repo.ok(&["log", "--oneline"]);
    let lines: Vec<&str> = oneline.lines().collect();
    // *   merge
    // |\
    // * | side
    // * | theirs
    // | * ours
    // |/
    // * base
    assert_eq!(lines.len(), 7, "{oneline}");
    assert!(
        lines[0].starts_with('*') && lines[0].contains(&merged[..12]),
        "{oneline}"
    );
    assert_eq!(lines[1], "|\\", "{oneline}");
    assert!(
        lines[2].starts_with("* |") && lines[2].contains(&f.side[..12]),
        "{oneline}"
    );
    assert!(
        lines[3].starts_with("* |") && lines[3].contains(&f.theirs[..12]),
        "{oneline}"
    );
    assert!(
        lines[4].starts_with("| *") && lines[4].contains(&f.ours[..12]),
        "{oneline}"
    );
    assert_eq!(lines[5], "|/", "{oneline}");
    assert!(
        lines[6].starts_with("* ") && lines[6].contains(&f.base[..12]),
        "{oneline}"
    );

    let full = f.repo.ok(&["log"]);
    assert!(
        full.contains(&format!("Merge:   {} {}", f.side, f.ours)),
        "{full}"
    );
    assert!(full.contains("\n|/\n"), "{full}");

    let log = f.repo.ndjson(&["log", "--json"]);
    assert_eq!(log[0]["links"], serde_json::json!([f.side, f.ours]));
}

#[test]
fn heads_checkout_and_log_mark_forks_and_the_checkout() {
    let f = forked();
    let heads = f.repo.ndjson(&["heads", "--json"]);
    let mut listed = versions(&heads);
    listed.sort();
    let mut expected = vec![f.ours.as_str(), f.side.as_str()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(heads.iter().all(|h| h["head"] == true));
    let text = f.repo.ok(&["heads"]);
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains(&f.ours) && text.contains(&f.side), "{text}");

    let log = f.repo.ndjson(&["log", "--json"]);
    let marked: Vec<&str> = log
        .iter()
        .filter(|e| e["head"] == true)
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(marked.len(), 2);

    // A persistent checkout: reads see that version, log marks it.
    let out = f.repo.ok(&["checkout", &f.ours[..10]]);
    assert_eq!(out.trim(), f.ours);
    assert_eq!(f.repo.ok(&["get", "d", "a"]), "2\n");
    f.repo.fail(&["get", "d", "b"]);
    let log = f.repo.ndjson(&["log", "--json"]);
    let checkout: Vec<&str> = log
        .iter()
        .filter(|e| e["checkout"] == true)
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(checkout, vec![f.ours.as_str()]);
    assert!(
        f.repo
            .ok(&["log"])
            .contains(&format!("{} (head, checkout)", f.ours))
    );

    // A write there continues from it, and the checkout follows.
    let next = f.repo.put("d", "c", "7");
    assert_eq!(
        f.repo.json(&["status", "--json"])["checkout"],
        next.as_str()
    );

    let latest = f.repo.json(&["checkout", "--latest", "--json"]);
    assert_eq!(latest["checkout"], Value::Null);
    assert_eq!(latest["heads"].as_array().unwrap().len(), 2);
    assert_eq!(f.repo.ok(&["checkout", "--latest"]).trim(), "latest");
    assert_eq!(f.repo.ok(&["get", "d", "b"]), "\"x\"\n");
    let checked = f.repo.json(&["checkout", &f.base, "--json"]);
    assert_eq!(checked["checkout"], f.base.as_str());

    let stderr = f.repo.fail(&["checkout", "0123456789abcdef"]);
    assert!(stderr.contains("unknown version"), "{stderr}");
    let stderr = f.repo.fail(&["checkout", "012"]);
    assert!(stderr.contains("too short"), "{stderr}");
}

#[test]
fn diff_shows_added_changed_and_deleted_rows() {
    let repo = Repo::new();
    repo.put("d", "deleted", "1");
    let v1 = repo.put("d", "changed", "1");
    repo.put("e", "other", "1");
    let v2 = repo.ok(&["put", "d", "changed", "2"]).trim().to_string();
    repo.ok(&["del", "d", "deleted"]);
    repo.put("d", "added", r#"{"x":1}"#);
    let v3 = repo.put("e", "other", "2");

    let entries = repo.ndjson(&["diff", &v1, &v3, "--json"]);
    let keys: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["dataset"].as_str().unwrap(), e["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("d", "added"),
            ("d", "changed"),
            ("d", "deleted"),
            ("e", "other")
        ]
    );
    let added = &entries[0];
    assert_eq!(added["old"], Value::Null);
    assert_eq!(added["new"]["value"], serde_json::json!({"x": 1}));
    let changed = &entries[1];
    assert_eq!(changed["old"]["value"], 1);
    assert_eq!(changed["new"]["value"], 2);
    assert_eq!(changed["old"]["version"], v1.as_str());
    assert_eq!(changed["new"]["version"], v2.as_str());
    // A delete is a version with `deleted` set.
    assert_eq!(entries[2]["old"]["value"], 1);
    assert_eq!(entries[2]["new"]["deleted"], true);
    assert_eq!(entries[2]["new"]["value"], Value::Null);

    let only_e = repo.ndjson(&["diff", &v1, &v3, "--dataset", "e", "--json"]);
    assert_eq!(only_e.len(), 1);

    let text = repo.ok(&["diff", &v2, &v3, "-d", "d"]);
    assert!(text.contains("A d added"), "{text}");
    assert!(text.contains("D d deleted"), "{text}");
    assert!(text.contains("  + {\"x\":1}"), "{text}");
    assert!(text.contains("  + (deleted)"), "{text}");
    assert_eq!(repo.ok(&["diff", &v3, &v3]), "");

    let stderr = repo.fail(&["diff", &v1, "ffffffffffff"]);
    assert!(stderr.contains("unknown version"), "{stderr}");
}

#[test]
fn merge_without_a_policy_fails_on_a_conflict_and_writes_nothing() {
    let f = forked();
    let before = f.repo.ndjson(&["log", "--json"]).len();
    let stderr = f.repo.fail(&["merge"]);
    assert!(stderr.contains("conflict on 1 row"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(f.repo.ndjson(&["log", "--json"]).len(), before);
    assert_eq!(f.repo.json(&["status", "--json"])["heads"], 2);
}

/// The conflict error names the rows to settle, with or without a resolution file that
/// settles other rows.
#[test]
fn a_merge_conflict_names_the_rows_to_settle() {
    let f = forked();
    let stderr = f.repo.fail(&["merge"]);
    assert!(stderr.contains("d/a"), "{stderr}");
    std::fs::write(
        f.repo.path().join("partial.ndjson"),
        "{\"dataset\":\"d\",\"key\":\"unrelated\",\"value\":1}\n",
    )
    .unwrap();
    let stderr = f.repo.fail(&["merge", "--resolve", "partial.ndjson"]);
    assert!(stderr.contains("d/a"), "{stderr}");
}

#[test]
fn merge_policies_settle_conflicts_and_keep_everything_else() {
    for (policy, expected) in [("--ours", "2"), ("--theirs", "3"), ("--newest", "3")] {
        let f = forked();
        let merged = f.repo.json(&["merge", &f.ours, &f.side, policy, "--json"]);
        assert_eq!(merged["parents"], serde_json::json!([f.ours, f.side]));
        assert_eq!(merged["version"].as_str().unwrap().len(), 64);
        assert_eq!(
            f.repo.ok(&["get", "d", "a"]),
            format!("{expected}\n"),
            "{policy}"
        );
        // The row only the other side wrote is kept.
        assert_eq!(f.repo.ok(&["get", "d", "b"]), "\"x\"\n");
        assert_eq!(f.repo.json(&["status", "--json"])["heads"], 1);
        // Nothing left to merge.
        let stderr = f.repo.fail(&["merge", "--ours"]);
        assert!(stderr.contains("nothing to merge"), "{stderr}");
    }
}

#[test]
fn merge_with_a_resolution_file() {
    let f = forked();
    let dir = f.repo.path();
    let file = dir.join("fixes.ndjson");
    std::fs::write(
        &file,
        "{\"dataset\": \"d\", \"key\": \"a\", \"value\": {\"settled\": true}}\n\n\
         {\"dataset\": \"d\", \"key\": \"new\", \"raw\": \"plain\"}\n\
         {\"dataset\": \"d\", \"key\": \"b\", \"deleted\": true}\n",
    )
    .unwrap();
    let version = f
        .repo
        .ok(&["merge", "--resolve", "fixes.ndjson", "-m", "settled"])
        .trim()
        .to_string();
    assert_eq!(version.len(), 64);
    assert_eq!(f.repo.ok(&["get", "d", "a"]), "{\"settled\":true}\n");
    assert_eq!(f.repo.ok(&["get", "d", "new"]), "plain");
    f.repo.fail(&["get", "d", "b"]);
    let log = f.repo.ndjson(&["log", "--json", "-n", "1"]);
    assert_eq!(log[0]["message"], "settled");
    assert_eq!(log[0]["links"].as_array().unwrap().len(), 2);
}

#[test]
fn a_bad_resolution_line_names_the_file_and_line_and_writes_nothing() {
    let f = forked();
    let before = f.repo.ndjson(&["log", "--json"]).len();
    let cases = [
        (
            "{\"dataset\":\"d\",\"key\":\"a\",\"value\":1}\n{oops\n",
            "line 2",
        ),
        ("{\"dataset\":\"d\",\"key\":\"a\",\"vaule\":1}\n", "vaule"),
        (
            "{\"dataset\":\"d\",\"key\":\"a\",\"value\":1,\"deleted\":true}\n",
            "exactly one",
        ),
        ("{\"dataset\":\"d\",\"value\":1}\n", "key"),
        (
            "{\"dataset\":{\"hex\":\"zz\"},\"key\":\"a\",\"value\":1}\n",
            "not hex",
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(f.repo.path().join("bad.ndjson"), content).unwrap();
        let stderr = f.repo.fail(&["merge", "--resolve", "bad.ndjson"]);
        assert!(stderr.contains("bad.ndjson line "), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let stderr = f.repo.fail(&["merge", "--resolve", "missing.ndjson"]);
    assert!(stderr.contains("missing.ndjson"), "{stderr}");
    assert_eq!(f.repo.ndjson(&["log", "--json"]).len(), before);
    // A resolution file that leaves a conflict unsettled still fails.
    std::fs::write(
        f.repo.path().join("partial.ndjson"),
        "{\"dataset\":\"d\",\"key\":\"unrelated\",\"value\":1}\n",
    )
    .unwrap();
    let stderr = f.repo.fail(&["merge", "--resolve", "partial.ndjson"]);
    assert!(stderr.contains("conflict on 1 row"), "{stderr}");
    assert_eq!(f.repo.ndjson(&["log", "--json"]).len(), before);
}

#[test]
fn an_ambiguous_version_prefix_is_a_clear_error() {
    // Two commits on the same parent whose keys share their first 8 hex characters: found
    // by hashing candidate commits here (about 2^16 of them), then added to the graph
    // (only commits are versions).
    let repo = Repo::new();
    let root = repo.put("d", "k", "1");
    let links = vec![root.clone()];
    let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
    let (first, second) = (0u64..)
        .find_map(|modified| {
            let value = Commit {
                kind: CommitType::Data,
                message: Some("collide".into()),
                modified,
                puts: 0,
                deletes: 0,
                files: 0,
                operations: None,
            }
            .encode();
            let key = FramedSha256.hash(&links, &value);
            seen.insert(key[..8].to_string(), value.clone())
                .map(|other| (other, value))
        })
        .unwrap();
    let (a, b) = {
        let opened = strata::Repository::open(repo.path()).unwrap();
        let a = opened.graph().add(&links, first).unwrap().key;
        let b = opened.graph().add(&links, second).unwrap().key;
        (a, b)
    };
    assert_eq!(a[..8], b[..8]);
    let stderr = repo.fail(&["datasets", "--at", &a[..8]]);
    assert!(stderr.contains("ambiguous version"), "{stderr}");
    let stderr = repo.fail(&["checkout", &a[..8]]);
    assert!(stderr.contains("ambiguous version"), "{stderr}");
    // A longer prefix settles it.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    repo.ok(&["datasets", "--at", &a[..common + 1]]);
}
