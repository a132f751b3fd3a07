//! Several processes on one repository, through the real binary: readers never wait for
//! or fail because of a writer, and writers wait for each other instead of failing.
//!
//! Sizes can be raised to the issue's figures with environment variables:
//! `STRATA_TEST_IMPORT_ROWS=500000 cargo test --release --test cli_concurrency -- --nocapture`
//! prints the rows, time, and reader calls made and failed.

mod cli_support;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cli_support::{Repo, describe};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn four_shell_writers_of_100_puts_each_all_land() {
    let writers = 4;
    let puts = env_or("STRATA_TEST_PUTS", 100);
    let repo = Repo::new();
    // Each writer is a shell loop of `strata put`, as a user would script it.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_strata"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!(
        "i=0; while [ $i -lt {puts} ]; do strata put d \"w$W-$i\" $i >/dev/null || exit 1; i=$((i+1)); done"
    );
    let started = Instant::now();
    let loops: Vec<_> = (0..writers)
        .map(|w| {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .current_dir(repo.path())
                .env("PATH", &path)
                .env("W", w.to_string())
                .env_remove("STRATA_REPO")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for shell in loops {
        let output = shell.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let elapsed = started.elapsed();
    let keys = repo.ok(&["ls", "d", "--keys"]);
    assert_eq!(keys.lines().count(), writers * puts);
    assert_eq!(repo.ndjson(&["log", "--json"]).len(), writers * puts);
    assert_eq!(repo.ndjson(&["heads", "--json"]).len(), 1);
    assert!(repo.ok(&["fsck"]).contains("no problems"));
    eprintln!(
        "{writers} shell loops x {puts} puts: all {} landed in {elapsed:.1?}",
        writers * puts
    );
}

#[test]
fn readers_never_fail_during_a_long_import() {
    let rows = env_or("STRATA_TEST_IMPORT_ROWS", 100_000);
    let repo = Arc::new(Repo::new());
    repo.put("probe", "k", r#""here""#);
    let path = repo.path().join("big.ndjson");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..rows {
            writeln!(
                file,
                r#"{{"id":"obs-{i:08}","lat":-3.{:04},"species":"Ceiba pentandra","count":{}}}"#,
                i % 9973,
                i % 37
            )
            .unwrap();
        }
    }
    let started = Instant::now();
    let args = ["import", "big.ndjson", "-d", "obs", "-k", "id", "--json"];
    let mut import = repo.spawn(&args, Stdio::null());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [
        &["get", "probe", "k"][..],
        &["status", "--json"],
        &["log", "--oneline", "-n", "3"],
    ]
    .into_iter()
    .map(|args| {
        let (repo, done) = (repo.clone(), done.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (mut calls, mut failures) = (0u64, Vec::new());
            while !done.load(Ordering::SeqCst) {
                let output = repo.run(&args);
                calls += 1;
                if !output.status.success() {
                    failures.push(describe(&args, &output));
                }
            }
            (args.join(" "), calls, failures)
        })
    })
    .collect();
    let status = import.wait().unwrap();
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let mut stderr = String::new();
    std::io::Read::read_to_string(import.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let mut total = 0;
    for reader in readers {
        let (command, calls, failures) = reader.join().unwrap();
        eprintln!(
            "strata {command}: {calls} calls during the import, {} failed",
            failures.len()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        total += calls;
    }
    // Readers ran the whole time, and saw the import land.
    assert!(total >= 6, "only {total} reader calls");
    assert_eq!(repo.json(&["status", "--json"])["rows"], rows + 1);
    eprintln!(
        "imported {rows} rows in {elapsed:.1?} with 3 readers polling: {total} reader calls, none failed"
    );
}
