//! Everyday use of the CLI, through the real binary: `show`, `ls`, version names (`HEAD`,
//! `HEAD~N`, `latest`, any-case prefixes), `merge --dry-run` and the full list of
//! conflicts, re-runnable imports and Ctrl-C, and the papercuts users met (option order,
//! resolution-file line numbers, commands that take no repository).

mod cli_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{Repo, describe};
use serde_json::{Value, json};

/// Writes `lines` to a file in the repository's folder; returns its name.
fn file(repo: &Repo, name: &str, lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(repo.path().join(name), text).unwrap();
    name.to_string()
}

/// `n` NDJSON rows `{"id":"r<i>","v":<value>}`.
fn rows(n: usize, value: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"id":"r{i:06}","v":{value}}}"#))
        .collect()
}

#[test]
fn show_prints_a_commit_with_the_operations_it_wrote() {
    let repo = Repo::new();
    let name = file(&repo, "two.ndjson", &rows(2, "1"));
    repo.ok(&["import", &name, "-d", "d", "-k", "id", "-m", "two rows"]);
    repo.ok(&["del", "d", "r000000", "-m", "gone"]);

    let text = repo.ok(&["show"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(" (head)"), "{text}");
    assert!(
        text.contains("Changes: 0 puts, 1 delete, 0 files"),
        "{text}"
    );
    assert!(text.contains("    gone"), "{text}");
    assert_eq!(*lines.last().unwrap(), "del d r000000", "{text}");

    let shown = repo.json(&["show", "HEAD~1", "--json"]);
    assert_eq!(shown["message"], "two rows");
    assert_eq!(shown["puts"], 2);
    assert_eq!(
        shown["operations"],
        json!([
            {"op": "put", "dataset": "d", "key": "r000000", "value": {"id": "r000000", "v": 1}, "file": null},
            {"op": "put", "dataset": "d", "key": "r000001", "value": {"id": "r000001", "v": 1}, "file": null},
        ])
    );
    // The version shown is the one named, by any name.
    let full = shown["version"].as_str().unwrap();
    assert_eq!(repo.json(&["show", &full[..6], "--json"])["version"], full);

    let stderr = repo.fail(&["show", "abcdef12"]);
    assert_eq!(stderr, "strata: unknown version abcdef12\n");
}

#[test]
fn versions_are_named_by_head_latest_ancestry_and_a_prefix_in_any_case() {
    let repo = Repo::new();
    let v1 = repo.put("d", "k", "1");
    let v2 = repo.put("d", "k", "2");
    let v3 = repo.put("d", "k", "3");
    assert_eq!(repo.ok(&["get", "d", "k", "--at", "HEAD~2"]), "1\n");
    assert_eq!(repo.ok(&["get", "d", "k", "--at", "HEAD~"]), "2\n");
    assert_eq!(repo.ok(&["get", "d", "k", "--at", "latest"]), "3\n");
    let upper = v2[..6].to_uppercase();
    assert_eq!(repo.ok(&["get", "d", "k", "--at", &upper]), "2\n");
    assert_eq!(
        repo.json(&["show", "HEAD", "--json"])["version"],
        v3.as_str()
    );
    let diff = repo.ndjson(&["diff", "HEAD~2", "HEAD", "--json"]);
    assert_eq!(diff[0]["old"]["version"], v1.as_str());

    // `log --oneline` abbreviates versions to 12 characters, which name them back.
    let oneline = repo.ok(&["log", "--oneline"]);
    let first = oneline.lines().next().unwrap();
    assert!(first.starts_with(&format!("* {} ", &v3[..12])), "{oneline}");
    assert!(!oneline.contains(&v3[..13]), "{oneline}");

    let stderr = repo.fail(&["get", "d", "k", "--at", "HEAD~3"]);
    assert!(
        stderr.contains("goes back past the first commit"),
        "{stderr}"
    );
    let stderr = repo.fail(&["get", "d", "k", "--at", "HEAD~x"]);
    assert!(
        stderr.contains("what follows ~ must be a number"),
        "{stderr}"
    );

    // `latest` is one version only while there is one head.
    repo.ok(&["put", "--replaces", &v1, "d", "k", "4"]);
    let stderr = repo.fail(&["get", "d", "k", "--at", "latest"]);
    assert!(stderr.contains("latest has 2 heads"), "{stderr}");
}

#[test]
fn ls_lists_rows_in_key_order_by_prefix_and_limit() {
    let repo = Repo::new();
    for (key, value) in [("b1", "3"), ("a2", "2"), ("a1", "1")] {
        repo.put("d", key, value);
    }
    repo.put("other", "x", "9");
    assert_eq!(repo.ok(&["ls", "d"]), "a1\t1\na2\t2\nb1\t3\n");
    assert_eq!(repo.ok(&["rows", "d", "--prefix", "a"]), "a1\t1\na2\t2\n");
    assert_eq!(repo.ok(&["ls", "d", "--limit", "1", "--keys"]), "a1\n");
    assert_eq!(
        repo.ok(&["ls", "d", "--prefix", "6231", "--hex"]),
        "b1\t3\n"
    );
    assert_eq!(repo.ok(&["ls", "d", "--prefix", "zz"]), "");
    assert_eq!(repo.ok(&["ls", "d", "--at", "HEAD~3"]), "b1\t3\n");
    let listed = repo.ndjson(&["ls", "d", "--json", "-n", "2"]);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["key"], "a2");
    assert_eq!(listed[1]["value"], 2);
    assert_eq!(listed[1]["forked"], false);
    assert_eq!(listed[1]["version"].as_str().unwrap().len(), 64);

    // A dataset that does not exist is an error naming those that do.
    let stderr = repo.fail(&["ls", "dd"]);
    assert_eq!(
        stderr,
        "strata: not found: dataset dd (no rows at latest; datasets: d, other)\n"
    );
}

/// Two heads that both change rows `r000000`..`r000011` from the same base.
fn conflicted(repo: &Repo) {
    let base = file(repo, "base.ndjson", &rows(12, "0"));
    repo.ok(&["import", &base, "-d", "d", "-k", "id"]);
    let ours = file(repo, "ours.ndjson", &rows(12, "1"));
    repo.ok(&["import", &ours, "-d", "d", "-k", "id"]);
    repo.ok(&["checkout", "HEAD~1"]);
    let theirs = file(repo, "theirs.ndjson", &rows(12, "2"));
    repo.ok(&["import", &theirs, "-d", "d", "-k", "id"]);
    repo.ok(&["checkout", "--latest"]);
}

#[test]
fn merge_dry_run_lists_every_conflict_and_writes_nothing() {
    let repo = Repo::new();
    conflicted(&repo);
    let commits = repo.ndjson(&["log", "--json"]).len();

    // Text: the count, the first ten rows, and a hint; the dry run itself succeeds.
    let output = repo.run(&["merge", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&[], &output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("merge of 2 heads: "), "{stdout}");
    assert!(stdout.contains("\n12 conflicting rows that no policy or resolution settles:\n"));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("  d r0")).count(),
        10
    );
    assert!(
        stdout.contains("… and 2 more (--json lists every row)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "strata: note: the merge would fail on 12 conflicting rows: settle them with --ours, --theirs or --newest, or list them in a --resolve FILE\n"
    );

    // JSON: every row, with its concurrent versions.
    let report = repo.json(&["merge", "--dry-run", "--json"]);
    assert_eq!(report["version"], Value::Null);
    assert_eq!(report["parents"].as_array().unwrap().len(), 2);
    let conflicts = report["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 12);
    assert_eq!(conflicts[11]["key"], "r000011");
    assert_eq!(conflicts[11]["versions"].as_array().unwrap().len(), 2);

    // A real merge without a policy fails: text names the first rows with a hint, --json
    // lists every row; nothing is written.
    let stderr = repo.fail(&["merge"]);
    assert!(stderr.starts_with("strata: merge conflict on 12 row(s): d/r000000, "));
    assert!(
        stderr.contains("and 7 more; nothing was written"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`strata merge --dry-run --json` lists every row"),
        "{stderr}"
    );
    // A real merge without a policy: the same list with --json, nothing written.
    let output = repo.run(&["merge", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["conflicts"].as_array().unwrap().len(), 12);
    assert_eq!(repo.ndjson(&["log", "--json"]).len(), commits);

    // With a policy the dry run is clean, and still writes nothing.
    let text = repo.ok(&["merge", "--dry-run", "--theirs"]);
    assert!(
        text.contains("would write 12 rows\nno conflicts\n"),
        "{text}"
    );
    assert_eq!(repo.ndjson(&["log", "--json"]).len(), commits);
    let merged = repo.json(&["merge", "--theirs", "--json"]);
    assert_eq!(merged["operations"], 12);
    assert_eq!(merged["conflicts"], json!([]));
    assert_eq!(repo.ndjson(&["heads", "--json"]).len(), 1);
    assert_eq!(
        repo.ok(&["get", "d", "r000005"]),
        "{\"id\":\"r000005\",\"v\":1}\n"
    );
}

#[test]
fn options_may_come_before_positionals() {
    let repo = Repo::new();
    let base = repo.put("d", "k", "1");
    let ours = repo.put("d", "k", "2");
    let theirs = repo
        .ok(&["put", "--replaces", &base, "-m", "fork", "d", "k", "3"])
        .trim()
        .to_string();
    assert_eq!(repo.ndjson(&["heads", "--json"]).len(), 2);
    // Several versions: repeated, or separated by commas.
    let both = format!("{ours},{theirs}");
    repo.ok(&["put", "--replaces", &both, "d", "k", "4"]);
    assert_eq!(repo.ndjson(&["heads", "--json"]).len(), 1);
    assert_eq!(repo.ok(&["get", "d", "k"]), "4\n");
    repo.ok(&["--repo", ".", "del", "--message", "bye", "d", "k"]);
    repo.fail(&["get", "d", "k"]);
}

#[test]
fn a_bad_resolution_line_is_named_by_one_line_number() {
    let repo = Repo::new();
    conflicted(&repo);
    std::fs::write(
        repo.path().join("fix.ndjson"),
        "{\"dataset\":\"d\",\"key\":\"r000000\",\"value\":1}\n\n{\"dataset\":\"d\",\"key\":\"r000001\",\"vaule\":1}\n",
    )
    .unwrap();
    let stderr = repo.fail(&["merge", "--resolve", "fix.ndjson"]);
    assert!(
        stderr.starts_with("strata: fix.ndjson line 3: unknown field `vaule`"),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("(column 38)"), "{stderr}");
    assert_eq!(stderr.matches("line").count(), 1, "{stderr}");
}

#[test]
fn an_import_run_again_writes_nothing_and_says_so() {
    let repo = Repo::new();
    let name = file(&repo, "t.ndjson", &rows(3, "1"));
    let first = repo.json(&["import", &name, "-d", "d", "-k", "id", "--json"]);
    assert_eq!(
        (first["rows"].clone(), first["written"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(first["complete"], true);

    let again = repo.ok(&["import", &name, "-d", "d", "-k", "id"]);
    assert_eq!(
        again,
        "nothing to import: all 3 rows of t.ndjson already hold these values in d (--force writes them anyway)\n"
    );
    let again = repo.json(&["import", &name, "-d", "d", "-k", "id", "--json"]);
    assert_eq!(again["written"], 0);
    assert_eq!(again["unchanged"], 3);
    assert_eq!(again["commits"], 0);
    assert_eq!(repo.ndjson(&["log", "--json"]).len(), 1);
    assert_eq!(repo.ndjson(&["history", "d", "r000001", "--json"]).len(), 1);

    // One row changed: only it is written.
    let mut changed = rows(3, "1");
    changed[1] = r#"{"id":"r000001","v":2}"#.to_string();
    let name = file(&repo, "t.ndjson", &changed);
    let said = repo.ok(&["import", &name, "-d", "d", "-k", "id"]);
    assert!(
        said.starts_with("imported 1 row into d in 1 commit (")
            && said.contains("; 2 rows already held these values\n"),
        "{said}"
    );
    assert_eq!(repo.json(&["show", "--json"])["puts"], 1);

    // --force writes every row again.
    let forced = repo.json(&["import", &name, "-d", "d", "-k", "id", "--force", "--json"]);
    assert_eq!(forced["written"], 3);
    assert_eq!(repo.ndjson(&["history", "d", "r000000", "--json"]).len(), 2);
}

/// Sends SIGINT to a process, as Ctrl-C in its terminal does.
fn interrupt(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_stops_an_import_at_a_commit_boundary_and_running_it_again_finishes_it() {
    const ROWS: usize = 300_000;
    let repo = Repo::new();
    let name = file(&repo, "big.ndjson", &rows(ROWS, "1"));
    let args = [
        "import", &name, "-d", "d", "-k", "id", "--batch", "2000", "--json",
    ];
    let child = repo.spawn(&args, Stdio::null());
    // Interrupt once a few batches are committed (read beside the import, read-only).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let commits = repo.ndjson(&["log", "--json"]).len();
        if commits >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the import committed nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    interrupt(child.id());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("strata: interrupted: committing the rows read so far"),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert!(last.starts_with("strata: interrupted: "), "{stderr}");
    assert!(
        last.ends_with("run the same command again to continue: rows already imported are skipped"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["complete"], false);
    let committed = summary["rows"].as_u64().unwrap();
    assert!(committed > 0 && committed < ROWS as u64, "{summary}");
    let newest = summary["versions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last.contains(&format!("last version {}", newest.as_str().unwrap())),
        "{last}"
    );
    // What it says is committed is what the repository holds.
    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["rows"].as_u64(), Some(committed));
    assert_eq!(repo.json(&["show", "--json"])["version"], newest);

    // The same command again writes only the rest.
    let rest = repo.json(&args);
    assert_eq!(rest["complete"], true);
    assert_eq!(rest["written"].as_u64(), Some(ROWS as u64 - committed));
    assert_eq!(repo.json(&["status", "--json"])["rows"], ROWS);
    repo.ok(&["fsck"]);
}

#[test]
fn commands_without_a_repository_refuse_repo_and_init_names_a_file_in_the_way() {
    let repo = Repo::new();
    for args in [
        &["--repo", ".", "demo"][..],
        &["--repo", ".", "completions", "bash"],
    ] {
        let stderr = repo.usage_error(args);
        assert!(
            stderr.contains("work on no repository: leave out --repo"),
            "{stderr}"
        );
    }
    repo.usage_error(&["demo", "--repo", "."]);
    std::fs::write(repo.path().join("notrepo.txt"), "x").unwrap();
    let stderr = repo.fail(&["--repo", "notrepo.txt", "init"]);
    assert_eq!(
        stderr,
        "strata: invalid argument: notrepo.txt exists and is not a folder\n"
    );
    // A missing dataset is an error everywhere, not an empty answer.
    repo.put("airports", "SFO", "1");
    for args in [
        &["export", "-d", "airport"][..],
        &["ls", "airport"],
        &["files", "ls", "airport"],
        &["diff", "HEAD", "HEAD", "-d", "airport"],
    ] {
        let stderr = repo.fail(args);
        assert!(
            stderr.starts_with("strata: not found: dataset airport (no rows at "),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("datasets: airports)"), "{stderr}");
    }
}

#[test]
fn a_long_version_or_node_name_is_quoted_in_at_most_about_200_bytes() {
    let repo = Repo::new();
    repo.put("d", "k", "1");
    let long = "a".repeat(5000);
    let tilde = format!("HEAD~{long}");
    let back = format!("{long}~1");
    for args in [
        &["get", "d", "k", "--at", &long][..],
        &["get", "d", "k", "--at", &tilde],
        &["show", &back],
        &["diff", &long, "HEAD"],
        &["graph", "get", &long],
    ] {
        let stderr = repo.fail(args);
        assert!(stderr.len() < 300, "{} bytes: {stderr}", stderr.len());
        assert!(stderr.contains("aaa…"), "{stderr}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let repo = Repo::new();
    let name = file(&repo, "rows.ndjson", &rows(20_000, "1"));
    repo.ok(&["import", &name, "-d", "d", "-k", "id"]);
    for args in [&["export", "-d", "d"][..], &["ls", "d"], &["log"]] {
        // As `strata export | head -c 10` does: read a little, then close the pipe.
        let mut child = repo.spawn(args, Stdio::null());
        let mut first = [0u8; 10];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", describe(args, &output));
        assert!(output.stderr.is_empty(), "{}", describe(args, &output));
    }
}
