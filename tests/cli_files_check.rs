//! The CLI's file rows, `fsck`, graph plumbing, the locked-repository error and `--help`,
//! run through the real binary.

mod cli_support;

use cli_support::{Repo, assert_clean_error, describe, strata};
use serde_json::Value;

/// Bytes that are not UTF-8 and span several read chunks.
fn content() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn files_put_get_and_ls_stream_content_exactly() {
    let repo = Repo::new();
    let data = content();
    std::fs::write(repo.path().join("in.bin"), &data).unwrap();
    let v1 = repo
        .ok(&["files", "put", "photos", "a.bin", "in.bin"])
        .trim()
        .to_string();
    assert_eq!(v1.len(), 64);
    let stored = repo.json(&["files", "put", "photos", "b.bin", "-", "--json"]);
    // (stdin was empty: an empty file)
    assert_eq!(stored["size"], 0);
    let from_stdin =
        repo.run_with_input(&["files", "put", "photos", "c.bin", "-", "--json"], &data);
    assert!(
        from_stdin.status.success(),
        "{}",
        describe(&["files", "put"], &from_stdin)
    );
    let c: Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(c["size"], data.len());
    assert_eq!(c["hash"], sha256_hex(&data).as_str());
    assert_eq!(c["dataset"], "photos");
    assert_eq!(c["key"], "c.bin");

    // To stdout, with `-`, and to a file.
    assert_eq!(repo.ok_bytes(&["files", "get", "photos", "a.bin"]), data);
    assert_eq!(
        repo.ok_bytes(&["files", "get", "photos", "c.bin", "-"]),
        data
    );
    repo.ok(&["files", "get", "photos", "a.bin", "out.bin"]);
    assert_eq!(std::fs::read(repo.path().join("out.bin")).unwrap(), data);

    let listed = repo.ndjson(&["files", "ls", "--json"]);
    let keys: Vec<&str> = listed.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["a.bin", "b.bin", "c.bin"]);
    assert_eq!(listed[0]["version"], v1.as_str());
    assert_eq!(listed[0]["size"], data.len());
    assert_eq!(listed[0]["hash"], sha256_hex(&data).as_str());
    assert_eq!(listed[0]["dataset"], "photos");
    let text = repo.ok(&["files", "ls", "photos"]);
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains(&sha256_hex(&data)), "{text}");
    let stderr = repo.fail(&["files", "ls", "nothing"]);
    assert!(
        stderr.starts_with("strata: not found: dataset nothing "),
        "{stderr}"
    );

    // Files count in status; `get` points to `files get`; --json shows the file.
    assert_eq!(repo.json(&["status", "--json"])["files"], 3);
    let stderr = repo.fail(&["get", "photos", "a.bin"]);
    assert!(stderr.contains("files get"), "{stderr}");
    let row = repo.json(&["get", "photos", "a.bin", "--json"]);
    assert_eq!(row["file"]["size"], data.len());
    assert_eq!(row["value"], Value::Null);

    // An older version of a file, read with --at.
    std::fs::write(repo.path().join("in.bin"), b"second version").unwrap();
    repo.ok(&["files", "put", "photos", "a.bin", "in.bin"]);
    assert_eq!(
        repo.ok(&["files", "get", "photos", "a.bin"]),
        "second version"
    );
    assert_eq!(
        repo.ok_bytes(&["files", "get", "photos", "a.bin", "--at", &v1]),
        data
    );
    let old = repo.ndjson(&["files", "ls", "--at", &v1, "--json"]);
    assert_eq!(old.len(), 1);
}

#[test]
fn files_errors_are_clear() {
    let repo = Repo::new();
    let stderr = repo.fail(&["files", "put", "d", "k", "no-such-file"]);
    assert!(stderr.contains("no-such-file"), "{stderr}");
    let stderr = repo.fail(&["files", "get", "d", "k"]);
    assert!(stderr.contains("not found: row k in dataset d"), "{stderr}");
    repo.put("d", "row", "1");
    let stderr = repo.fail(&["files", "get", "d", "row"]);
    assert!(stderr.contains("not a file"), "{stderr}");
}

#[test]
fn a_corrupt_blob_fails_verification_and_leaves_no_output_file() {
    let repo = Repo::new();
    let data = content();
    std::fs::write(repo.path().join("in.bin"), &data).unwrap();
    let v1 = repo
        .ok(&["files", "put", "f", "x", "in.bin"])
        .trim()
        .to_string();
    let hash = sha256_hex(&data);
    let blob = repo
        .storage()
        .join("blobs")
        .join(&hash[..2])
        .join(&hash[2..]);
    let mut tampered = data.clone();
    tampered[1000] ^= 1;
    std::fs::write(&blob, &tampered).unwrap();

    let stderr = repo.fail(&["files", "get", "f", "x", "out.bin"]);
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(!repo.path().join("out.bin").exists());
    let stderr = repo.fail(&["files", "get", "f", "x"]);
    assert!(stderr.contains("corrupt"), "{stderr}");
    // Also when read at a version through the store's layout.
    repo.ok(&["files", "put", "f", "x", "-"]);
    let stderr = repo.fail(&["files", "get", "f", "x", "--at", &v1]);
    assert!(stderr.contains("corrupt"), "{stderr}");

    // fsck finds it.
    let stdout = {
        let output = repo.run(&["fsck"]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe(&["fsck"], &output)
        );
        assert_clean_error(&["fsck"], &output);
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(
        stdout.contains(&format!("problem: blob {hash}")),
        "{stdout}"
    );
}

#[test]
fn fsck_passes_on_a_healthy_repository_and_fails_on_a_damaged_one() {
    let repo = Repo::new();
    repo.put("d", "a", "1");
    let put_b = repo.put("d", "b", "2");
    repo.ok(&["del", "d", "a"]);
    std::fs::write(repo.path().join("f.bin"), b"file").unwrap();
    repo.ok(&["files", "put", "f", "x", "f.bin"]);

    let text = repo.ok(&["fsck"]);
    assert!(
        text.contains("checked 4 nodes") && text.contains("no problems"),
        "{text}"
    );
    // Progress goes to stderr only, and only when asked for.
    let output = repo.run(&["fsck", "--progress"]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), text);
    let report = repo.json(&["fsck", "--json"]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["nodes"], 4);
    assert_eq!(report["blobs"], 1);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["versions"], 4);
    assert_eq!(report["rows"], 4);
    for field in ["entries", "payloads", "pending"] {
        assert!(report.get(field).is_some(), "{field} missing in {report}");
    }

    // Damage: overwrite the payload of the commit that put d/b with another (well-formed)
    // operation, and delete the blob.
    let payload = {
        let opened = strata::Repository::open(repo.path()).unwrap();
        let node = opened.graph().get(&put_b).unwrap();
        let hash = strata::Commit::decode(&node.value)
            .unwrap()
            .operations
            .unwrap();
        hex::decode(hash).unwrap()
    };
    {
        use strata::internals::keys::{KeyBuf, OPS};
        let mut kv = strata::internals::kv::Kv::open(&repo.storage().join("db")).unwrap();
        let chunks = KeyBuf::new(OPS).raw(&payload).finish();
        let (chunk_key, _) = kv.scan_prefix(&chunks).unwrap().next().unwrap().unwrap();
        let mut batch = strata::internals::kv::Batch::default();
        batch.put(&chunk_key, b"\x05\x08\x01\x1a\x01z");
        kv.write(batch, strata::Durability::Synced).unwrap();
    }
    let hash = sha256_hex(b"file");
    std::fs::remove_file(
        repo.storage()
            .join("blobs")
            .join(&hash[..2])
            .join(&hash[2..]),
    )
    .unwrap();
    let output = repo.run(&["fsck"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe(&["fsck"], &output)
    );
    let stderr = assert_clean_error(&["fsck"], &output);
    assert!(stderr.contains("problem"), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(&format!("problem: payload of commit {put_b}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("problem: blob {hash}")),
        "{stdout}"
    );
    assert!(stdout.contains("2 problems"), "{stdout}");

    let output = repo.run(&["fsck", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["problems"].as_array().unwrap().len() >= 2);
}

#[test]
fn readers_work_beside_a_writer_and_writers_name_who_holds_it() {
    let repo = Repo::new();
    repo.put("d", "k", "1");
    // This test process holds the repository open for writing.
    let held = strata::Repository::open(repo.path()).unwrap();
    held.put("d", "k", "2").unwrap();
    // Reads never wait for a writer: they open read-only and see what it committed.
    assert_eq!(repo.ok(&["get", "d", "k"]), "2\n");
    assert!(repo.ok(&["status"]).contains("rows        1"));
    assert!(repo.ok(&["log", "--oneline"]).lines().count() == 2);
    assert!(repo.ok(&["fsck"]).contains("no problems"));
    // A write with --wait 0 fails at once, naming the holder by pid.
    let holder = format!("process {}", std::process::id());
    for args in [
        &["put", "d", "k", "3", "--wait", "0"][..],
        &["del", "d", "k", "--wait", "0"],
    ] {
        let stderr = repo.fail(args);
        assert!(stderr.contains("locked by"), "{stderr}");
        assert!(stderr.contains(&holder), "{stderr}");
        assert!(stderr.contains(".strata"), "{stderr}");
    }
    // With a wait, it says once whom it waits for, then fails when the wait is over.
    let started = std::time::Instant::now();
    let output = repo.run(&["put", "d", "k", "3", "--wait", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("strata: note: waiting up to 1 second for process"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("(waited 1 second; --wait SECS waits longer)"),
        "{stderr}"
    );
    drop(held);
    repo.ok(&["put", "d", "k", "3", "--wait", "0"]);
    assert_eq!(repo.ok(&["get", "d", "k"]), "3\n");
}

#[test]
fn graph_plumbing_adds_and_reads_nodes() {
    let repo = Repo::new();
    let hello = repo.ok(&["graph", "add", "hello"]);
    assert_eq!(
        hello,
        "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602\n"
    );
    let hello = hello.trim();
    let world = repo.json(&["graph", "add", "world", "--link", hello, "--json"]);
    assert_eq!(world["links"], serde_json::json!([hello]));
    assert_eq!(world["value"], "world");
    assert_eq!(world["change"], 2);
    assert_eq!(world["seq"], 2);
    let world_key = world["key"].as_str().unwrap();

    let node = repo.json(&["graph", "get", hello, "--json"]);
    assert_eq!(node["value"], "hello");
    assert_eq!(node["links"], serde_json::json!([]));
    let text = repo.ok(&["graph", "get", world_key]);
    assert!(text.contains(&format!("link      {hello}")), "{text}");
    assert!(text.contains("value     world"), "{text}");

    assert_eq!(repo.ok(&["graph", "heads"]), format!("{world_key}\n"));
    let heads = repo.ndjson(&["graph", "heads", "--json"]);
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0]["key"], world_key);

    let changes = repo.ndjson(&["graph", "changes", "--json"]);
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["key"], hello);
    let since = repo.ndjson(&["graph", "changes", "--since", "1", "--json"]);
    assert_eq!(since.len(), 1);
    assert_eq!(since[0]["key"], world_key);
    assert_eq!(repo.ok(&["graph", "changes"]).lines().count(), 2);

    let stderr = repo.fail(&["graph", "add", "x", "--link", "ffff"]);
    assert!(stderr.contains("missing link"), "{stderr}");
    let stderr = repo.fail(&["graph", "get", &"0".repeat(64)]);
    assert!(stderr.contains("not found"), "{stderr}");
    // Graph nodes that are not commits show in log as such.
    let log = repo.ndjson(&["log", "--json"]);
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["commit"], false);
}

/// `graph get` names a node by a unique prefix too, commit or not; a prefix that names no
/// node is "not found".
#[test]
fn graph_get_names_any_node_by_a_prefix() {
    let repo = Repo::new();
    let hello = repo.ok(&["graph", "add", "hello"]);
    let hello = hello.trim();
    let world = repo.json(&["graph", "add", "world", "--link", hello, "--json"]);
    let world_key = world["key"].as_str().unwrap();
    assert_eq!(
        repo.json(&["graph", "get", &world_key[..10], "--json"])["key"],
        world_key
    );
    let stderr = repo.fail(&["graph", "get", "0000000000"]);
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &[],
        &["init"],
        &["status"],
        &["put"],
        &["get"],
        &["del"],
        &["history"],
        &["forks"],
        &["datasets"],
        &["log"],
        &["heads"],
        &["checkout"],
        &["diff"],
        &["merge"],
        &["files"],
        &["files", "put"],
        &["files", "get"],
        &["files", "ls"],
        &["fsck"],
        &["graph"],
        &["graph", "add"],
        &["graph", "get"],
        &["graph", "heads"],
        &["graph", "changes"],
        &["ls"],
        &["rows"],
        &["show"],
        &["import"],
        &["export"],
        &["demo"],
        &["completions"],
    ];
    let dir = tempfile::tempdir().unwrap();
    for command in commands {
        let output = strata()
            .args(*command)
            .arg("--help")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            describe(command, &output)
        );
        let help = String::from_utf8_lossy(&output.stdout);
        if !command.is_empty() {
            assert!(
                help.contains("Example"),
                "no example in help of {command:?}:\n{help}"
            );
        }
        // The repository options stand apart from the command's own, under their heading;
        // the commands that work on no repository do not take them.
        let repo_free = matches!(command, [] | ["demo" | "completions" | "files" | "graph"]);
        if !repo_free {
            let heading = help.find("\nRepository:\n");
            let option = help.find("--repo <PATH>");
            assert!(
                heading.is_some() && option > heading,
                "--repo is not under its heading in help of {command:?}:\n{help}"
            );
        }
        if matches!(command, ["demo" | "completions"]) {
            assert!(
                !help.contains("--repo"),
                "{command:?} takes --repo:\n{help}"
            );
        }
    }
}
