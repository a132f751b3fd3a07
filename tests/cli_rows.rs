//! The CLI's repository and row commands, run through the real binary: `init`, `status`,
//! `put`, `get`, `del`, `history`, `forks`, `datasets`, and the conventions every command
//! shares (finding the repository, `--repo`, `--json`, exit codes, error lines).

mod cli_support;

use cli_support::{Repo, assert_clean_error, describe, strata};
use serde_json::json;

#[test]
fn init_creates_a_repository_and_refuses_a_second_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = strata()
        .arg("init")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&["init"], &output));
    assert!(String::from_utf8_lossy(&output.stdout).contains(".strata"));
    assert!(dir.path().join(".strata").join("db").is_dir());

    let output = strata()
        .arg("init")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe(&["init"], &output)
    );
    let stderr = assert_clean_error(&["init"], &output);
    assert!(stderr.contains("already exists"), "{stderr}");

    // A named folder is created if needed; --json reports where and the device id.
    let target = dir.path().join("new").join("place");
    let target_arg = target.to_str().unwrap();
    let output = strata()
        .args(["init", target_arg, "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&["init"], &output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["path"].as_str().unwrap().ends_with(".strata"));
    assert_eq!(
        report["log_id"].as_str().unwrap().len(),
        64,
        "the device key in hex"
    );
    assert!(target.join(".strata").join("db").is_dir());
}

#[test]
fn the_repository_is_found_from_a_subfolder_or_given_with_repo() {
    let repo = Repo::new();
    repo.put("d", "k", "1");
    let sub = repo.path().join("a").join("b");
    std::fs::create_dir_all(&sub).unwrap();
    let output = strata()
        .args(["get", "d", "k"])
        .current_dir(&sub)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&["get"], &output));
    assert_eq!(output.stdout, b"1\n");

    let elsewhere = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().to_str().unwrap();
    let output = strata()
        .args(["--repo", repo_arg, "get", "d", "k"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        describe(&["--repo"], &output)
    );
    assert_eq!(output.stdout, b"1\n");
    // The storage folder itself works too, and so does the environment variable.
    let storage = repo.storage();
    let output = strata()
        .args(["get", "d", "k", "--repo", storage.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(output.stdout, b"1\n", "{}", describe(&["--repo"], &output));
    let output = strata()
        .args(["get", "d", "k"])
        .env("STRATA_REPO", repo_arg)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(
        output.stdout,
        b"1\n",
        "{}",
        describe(&["STRATA_REPO"], &output)
    );

    // No repository: a clear error, exit 1.
    let output = strata()
        .args(["status"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = assert_clean_error(&["status"], &output);
    assert!(stderr.contains("not in a strata repository"), "{stderr}");
    let missing = elsewhere.path().join("nothing");
    let output = strata()
        .args(["status", "--repo", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = assert_clean_error(&["status"], &output);
    assert!(stderr.contains("no strata repository at"), "{stderr}");
}

#[test]
fn put_stores_compact_json_keeping_key_order_and_number_text() {
    let repo = Repo::new();
    let version = repo.put(
        "sites",
        "s-17",
        r#"{ "name": "Spring 17",  "depth": 4.50, "big": 123456789012345678901234567890, "a": 1e3 }"#,
    );
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        repo.ok(&["get", "sites", "s-17"]),
        "{\"name\":\"Spring 17\",\"depth\":4.50,\"big\":123456789012345678901234567890,\"a\":1e3}\n"
    );
    // --raw gives the exact bytes back; JSON values too.
    assert_eq!(
        repo.ok_bytes(&["get", "sites", "s-17", "--raw"]),
        b"{\"name\":\"Spring 17\",\"depth\":4.50,\"big\":123456789012345678901234567890,\"a\":1e3}"
    );
    // Negative numbers are values, not options.
    repo.put("sites", "neg", "-5");
    assert_eq!(repo.ok(&["get", "sites", "neg"]), "-5\n");

    let row = repo.json(&["get", "sites", "s-17", "--json"]);
    assert_eq!(row["dataset"], "sites");
    assert_eq!(row["key"], "s-17");
    assert_eq!(row["version"], version.as_str());
    assert_eq!(row["forked"], false);
    assert_eq!(row["file"], serde_json::Value::Null);
    assert_eq!(row["value"]["name"], "Spring 17");
    // Number text survives into JSON output.
    let text = repo.ok(&["get", "sites", "s-17", "--json"]);
    assert!(text.contains("\"depth\":4.50"), "{text}");
    assert!(text.contains("123456789012345678901234567890"), "{text}");
}

#[test]
fn invalid_json_is_refused_with_a_hint_and_raw_stores_bytes_as_given() {
    let repo = Repo::new();
    let stderr = repo.fail(&["put", "d", "k", "{not json"]);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    assert!(stderr.contains("--raw"), "{stderr}");
    assert!(
        repo.ok(&["log", "--json"]).is_empty(),
        "nothing was written"
    );

    let version = repo.ok(&["put", "d", "k", "plain text, no newline", "--raw"]);
    assert_eq!(version.trim().len(), 64);
    assert_eq!(repo.ok_bytes(&["get", "d", "k"]), b"plain text, no newline");
    let row = repo.json(&["get", "d", "k", "--json"]);
    assert_eq!(row["value"], "plain text, no newline");
}

#[test]
fn keys_and_datasets_may_be_any_bytes_given_with_hex() {
    let repo = Repo::new();
    repo.ok(&[
        "put",
        "--hex-dataset",
        "ff00",
        "--hex",
        "0aff21",
        "raw",
        "--raw",
    ]);
    assert_eq!(
        repo.ok(&["get", "--hex-dataset", "0xff00", "--hex", "0x0aff21"]),
        "raw"
    );
    let row = repo.json(&["get", "--hex-dataset", "ff00", "--hex", "0aff21", "--json"]);
    assert_eq!(row["dataset"], json!({"hex": "ff00"}));
    assert_eq!(row["key"], json!({"hex": "0aff21"}));
    // Bytes that are text are the same row however they are written, and print as text.
    repo.ok(&["put", "--hex-dataset", "6162", "--hex", "6364", "1"]);
    assert_eq!(repo.ok(&["get", "ab", "cd"]), "1\n");
    assert_eq!(repo.ok(&["get", "ab", "--hex", "6364"]), "1\n");
    assert_eq!(
        repo.json(&["datasets", "--json"]),
        json!(["ab", {"hex": "ff00"}])
    );
    assert_eq!(repo.ok(&["datasets"]), "ab\n0xff00\n");
    let stderr = repo.fail(&["get", "ab", "--hex", "zz"]);
    assert_eq!(
        stderr,
        "strata: invalid argument: KEY \"zz\" is not hex (with --hex, write the key's bytes as hex digits)\n"
    );
    for args in [["history", "ab"], ["forks", "ab"]] {
        let versions = repo.ndjson(&[args[0], args[1], "--hex", "6364", "--json"]);
        assert_eq!(versions.len(), 1, "{args:?}");
    }
    assert_eq!(
        repo.ok(&["export", "--dataset", "ff00", "--hex-dataset"]),
        "{\"_key\":{\"hex\":\"0aff21\"},\"_raw\":\"raw\"}\n"
    );
    repo.ok(&["del", "--hex-dataset", "ff00", "--hex", "0aff21"]);
    repo.fail(&["get", "--hex-dataset", "ff00", "--hex", "0aff21"]);
}

#[test]
fn a_key_that_looks_like_hex_is_text_as_written() {
    let repo = Repo::new();
    // Imported from a field, put, got, listed and deleted: one spelling, as written.
    let output = repo.run_with_input(
        &["import", "-", "--dataset", "ds", "--key", "id"],
        b"{\"id\":\"0xABCDEF0123\",\"v\":1}\n",
    );
    assert!(
        output.status.success(),
        "{}",
        describe(&["import"], &output)
    );
    assert_eq!(
        repo.ok(&["get", "ds", "0xABCDEF0123"]),
        "{\"id\":\"0xABCDEF0123\",\"v\":1}\n"
    );
    let row = repo.json(&["get", "ds", "0xABCDEF0123", "--json"]);
    assert_eq!(row["key"], "0xABCDEF0123");
    assert_eq!(
        repo.ndjson(&["history", "ds", "0xABCDEF0123", "--json"])
            .len(),
        1
    );
    let stderr = repo.fail(&["get", "ds", "0xabcdef0123"]);
    assert_eq!(
        stderr,
        "strata: not found: row 0xabcdef0123 in dataset ds (keys are taken as written; to give a key's bytes in hex, pass --hex)\n"
    );
    repo.put("ds", "0xff", "2");
    assert_eq!(
        repo.ok(&["export", "--dataset", "ds"]),
        "{\"_key\":\"0xABCDEF0123\",\"id\":\"0xABCDEF0123\",\"v\":1}\n{\"_key\":\"0xff\",\"_value\":2}\n"
    );
    repo.ok(&["del", "ds", "0xABCDEF0123"]);
    repo.fail(&["get", "ds", "0xABCDEF0123"]);
}

#[test]
fn empty_dataset_names_and_row_keys_are_refused() {
    let repo = Repo::new();
    let cases: [(&[&str], &str); 10] = [
        (&["put", "", "k", "1"], "a dataset name"),
        (&["get", "", "k"], "a dataset name"),
        (&["del", "", "k"], "a dataset name"),
        (&["history", "", "k"], "a dataset name"),
        (&["forks", "", "k"], "a dataset name"),
        (&["put", "--hex-dataset", "", "k", "1"], "a dataset name"),
        (&["put", "d", "", "1"], "a row key"),
        (&["get", "d", ""], "a row key"),
        (&["del", "d", ""], "a row key"),
        (&["put", "d", "--hex", "", "1"], "a row key"),
    ];
    for (args, what) in cases {
        let stderr = repo.fail(args);
        assert_eq!(
            stderr,
            format!("strata: invalid argument: {what} cannot be empty\n"),
            "{args:?}"
        );
    }
    assert!(
        repo.ok(&["log", "--json"]).is_empty(),
        "nothing was written"
    );
}

#[test]
fn get_of_a_missing_row_or_dataset_is_not_found_with_exit_code_1() {
    let repo = Repo::new();
    let stderr = repo.fail(&["get", "d", "k"]);
    assert_eq!(stderr, "strata: not found: row k in dataset d\n");
    repo.put("d", "other", "1");
    let stderr = repo.fail(&["get", "d", "k", "--json"]);
    assert_eq!(stderr, "strata: not found: row k in dataset d\n");
    let stderr = repo.fail(&["history", "d", "k"]);
    assert!(stderr.contains("not found: row k in dataset d"), "{stderr}");
    let stderr = repo.fail(&["forks", "d", "k"]);
    assert!(stderr.contains("not found: row k in dataset d"), "{stderr}");
    let stderr = repo.fail(&["del", "d", "k"]);
    assert!(stderr.contains("not found: row k in dataset d"), "{stderr}");
}

#[test]
fn usage_errors_exit_with_code_2() {
    let repo = Repo::new();
    repo.usage_error(&["put", "d", "k"]);
    repo.usage_error(&["get"]);
    repo.usage_error(&["no-such-command"]);
    repo.usage_error(&["merge", "--ours", "--theirs"]);
    repo.usage_error(&["checkout"]);
}

#[test]
fn writes_take_a_message_and_reads_go_back_in_time() {
    let repo = Repo::new();
    let v1 = repo
        .ok(&["put", "d", "k", "1", "-m", "first"])
        .trim()
        .to_string();
    let v2 = repo
        .ok(&["put", "d", "k", "2", "--message", "second"])
        .trim()
        .to_string();
    let written = repo.json(&["put", "d", "j", "true", "--json"]);
    assert_eq!(written["dataset"], "d");
    assert_eq!(written["key"], "j");
    assert_eq!(written["version"].as_str().unwrap().len(), 64);

    assert_eq!(repo.ok(&["get", "d", "k"]), "2\n");
    assert_eq!(repo.ok(&["get", "d", "k", "--at", &v1]), "1\n");
    // Any unique prefix of 8+ characters names a version.
    assert_eq!(repo.ok(&["get", "d", "k", "--at", &v1[..8]]), "1\n");
    assert_eq!(repo.ok(&["get", "d", "k", "--at", &v2[..12]]), "2\n");
    let stderr = repo.fail(&["get", "d", "j", "--at", &v1]);
    assert!(stderr.contains("not found: row j"), "{stderr}");

    let log = repo.ndjson(&["log", "--json"]);
    assert_eq!(log[1]["message"], "second");
    assert_eq!(log[2]["message"], "first");

    let deleted = repo.ok(&["del", "d", "k", "-m", "gone"]).trim().to_string();
    assert_eq!(deleted.len(), 64);
    repo.fail(&["get", "d", "k"]);
    assert_eq!(repo.ok(&["get", "d", "k", "--at", &v2]), "2\n");
    let deleted_json = repo.json(&["del", "d", "j", "--json"]);
    assert_eq!(deleted_json["key"], "j");

    // History keeps everything, newest first, the delete as a tombstone.
    let history = repo.ndjson(&["history", "d", "k", "--json"]);
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["version"], deleted.as_str());
    assert_eq!(history[0]["deleted"], true);
    assert_eq!(history[0]["value"], serde_json::Value::Null);
    assert_eq!(history[1]["version"], v2.as_str());
    assert_eq!(history[1]["value"], 2);
    assert_eq!(history[2]["value"], 1);
    for entry in &history {
        for field in [
            "version", "log", "change", "time", "time_iso", "deleted", "value", "file",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
        assert!(entry["time"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(entry["time_iso"].as_str().unwrap().ends_with('Z'));
    }
    let text = repo.ok(&["history", "d", "k"]);
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().next().unwrap().contains("(deleted)"), "{text}");
    assert!(text.contains(&v1), "{text}");
}

#[test]
fn unknown_and_too_short_versions_are_clear_errors() {
    let repo = Repo::new();
    repo.put("d", "k", "1");
    let stderr = repo.fail(&["get", "d", "k", "--at", "0000000000"]);
    assert!(stderr.contains("unknown version 0000000000"), "{stderr}");
    let stderr = repo.fail(&["get", "d", "k", "--at", "abc"]);
    assert!(stderr.contains("too short"), "{stderr}");
    let stderr = repo.fail(&["datasets", "--at", "ffffffffff"]);
    assert!(stderr.contains("unknown version"), "{stderr}");
    let stderr = repo.fail(&["put", "d", "k", "2", "--replaces", "ffffffffff"]);
    assert!(stderr.contains("unknown version"), "{stderr}");
}

#[test]
fn a_concurrent_write_is_a_fork_that_get_forks_and_status_show() {
    let repo = Repo::new();
    let base = repo.put("d", "k", r#""base""#);
    let ours = repo.put("d", "k", r#""ours""#);
    // A write that replaces an old version forks from it.
    let theirs = repo
        .ok(&["put", "d", "k", r#""theirs""#, "--replaces", &base])
        .trim()
        .to_string();
    repo.put("d", "untouched", "1");

    let output = repo.run(&["get", "d", "k"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fork"), "{stderr}");
    let row = repo.json(&["get", "d", "k", "--json"]);
    assert_eq!(row["forked"], true);

    let forks = repo.ndjson(&["forks", "d", "k", "--json"]);
    let versions: Vec<&str> = forks
        .iter()
        .map(|f| f["version"].as_str().unwrap())
        .collect();
    assert_eq!(forks.len(), 2, "{forks:?}");
    assert!(versions.contains(&ours.as_str()) && versions.contains(&theirs.as_str()));
    for fork in &forks {
        assert_eq!(fork["deleted"], false);
        assert_eq!(
            fork["log"].as_str().unwrap().len(),
            64,
            "a device key in hex"
        );
    }
    assert_eq!(repo.ok(&["forks", "d", "k"]).lines().count(), 2);
    // A row that is not forked has one version.
    assert_eq!(repo.ndjson(&["forks", "d", "untouched", "--json"]).len(), 1);

    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["heads"], 2);
    assert_eq!(status["forked"], true);
    assert_eq!(status["rows"], 2);
    assert_eq!(status["checkout"], serde_json::Value::Null);
    let text = repo.ok(&["status"]);
    assert!(text.contains("forked"), "{text}");

    // Naming both versions resolves the fork with a merge commit.
    let merged = repo
        .ok(&[
            "put",
            "d",
            "k",
            r#""both""#,
            "--replaces",
            &ours,
            "--replaces",
            &theirs,
        ])
        .trim()
        .to_string();
    assert_eq!(repo.ok(&["get", "d", "k"]), "\"both\"\n");
    assert_eq!(repo.json(&["status", "--json"])["heads"], 1);
    let log = repo.ndjson(&["log", "--json", "-n", "1"]);
    assert_eq!(log[0]["version"], merged.as_str());
    assert_eq!(log[0]["links"].as_array().unwrap().len(), 2);

    // A delete may name the version it replaces too.
    let deleted = repo
        .ok(&["del", "d", "k", "--replaces", &merged, "-m", "remove"])
        .trim()
        .to_string();
    repo.fail(&["get", "d", "k"]);
    let history = repo.ndjson(&["history", "d", "k", "--json"]);
    assert_eq!(history[0]["version"], deleted.as_str());
    assert_eq!(history[0]["deleted"], true);
    assert_eq!(history.len(), 5);
}

#[test]
fn status_reports_counters_checkout_and_paths() {
    let repo = Repo::new();
    let empty = repo.json(&["status", "--json"]);
    assert_eq!(empty["rows"], 0);
    assert_eq!(empty["heads"], 0);
    assert_eq!(empty["modified_iso"], serde_json::Value::Null);
    let v1 = repo.put("d", "a", "1");
    repo.put("d", "b", "2");
    repo.put("e", "c", "3");
    let status = repo.json(&["status", "--json"]);
    for field in [
        "path",
        "log_id",
        "checkout",
        "at",
        "rows",
        "files",
        "versions",
        "nodes",
        "heads",
        "forked",
        "size",
        "modified",
        "modified_iso",
        "pending",
    ] {
        assert!(status.get(field).is_some(), "{field} missing in {status}");
    }
    assert_eq!(status["rows"], 3);
    assert_eq!(status["files"], 0);
    assert_eq!(status["versions"], 3);
    assert_eq!(status["nodes"], 3);
    assert_eq!(status["heads"], 1);
    assert_eq!(status["forked"], false);
    assert_eq!(status["pending"], 0);
    assert!(status["size"].as_u64().unwrap() > 0);
    assert!(status["path"].as_str().unwrap().ends_with(".strata"));
    let at = repo.json(&["status", "--json", "--at", &v1[..10]]);
    assert_eq!(at["rows"], 1);
    assert_eq!(at["at"], v1.as_str());

    repo.ok(&["checkout", &v1]);
    let checked = repo.json(&["status", "--json"]);
    assert_eq!(checked["checkout"], v1.as_str());
    assert_eq!(checked["rows"], 1);
    let text = repo.ok(&["status"]);
    assert!(text.contains(&v1) && text.contains("checked out"), "{text}");
    for label in [
        "rows", "files", "versions", "heads", "size", "modified", "pending",
    ] {
        assert!(text.contains(label), "{label} missing in {text}");
    }
}

#[test]
fn datasets_lists_live_datasets_now_and_at_a_version() {
    let repo = Repo::new();
    let v1 = repo.put("alpha", "k", "1");
    repo.put("beta", "k", "1");
    assert_eq!(repo.ok(&["datasets"]), "alpha\nbeta\n");
    assert_eq!(repo.json(&["datasets", "--json"]), json!(["alpha", "beta"]));
    assert_eq!(
        repo.json(&["datasets", "--at", &v1, "--json"]),
        json!(["alpha"])
    );
    repo.ok(&["del", "alpha", "k"]);
    assert_eq!(repo.ok(&["datasets"]), "beta\n");
}
