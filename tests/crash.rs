//! Crash tests: a writer process is killed with SIGKILL at varying points. Every commit it
//! acknowledged must survive, and the repository must open and pass fsck.
//!
//! The writer is this test binary re-run on an ignored test (`crash_child`), told by
//! environment variables where to write and how.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use strata::{Durability, Repository};

const DIR: &str = "STRATA_CRASH_DIR";
const MODE: &str = "STRATA_CRASH_MODE";

/// The writer. Prints `ok <version>` after each commit returns.
#[test]
#[ignore = "run by the crash tests as a child process"]
fn crash_child() {
    let (Ok(dir), Ok(mode)) = (std::env::var(DIR), std::env::var(MODE)) else {
        return;
    };
    let storage = std::path::Path::new(&dir).join(".strata");
    let repo = Repository::options()
        .durability(Durability::Synced)
        .open_storage(&storage)
        .expect("open");
    // Each writer process writes values of its own: an import leaves out rows that already
    // hold their value, and a new process starts again at round 0.
    let writer = std::process::id();
    for round in 0u64.. {
        let version = match mode.as_str() {
            "puts" => repo
                .put(
                    "d",
                    format!("k{}", round % 50),
                    format!("{{\"round\":{round}}}"),
                )
                .expect("put"),
            "imports" => {
                let rows = (0..2_000u64).map(move |i| {
                    Ok((
                        format!("r{i:05}").into_bytes(),
                        format!("{{\"writer\":{writer},\"round\":{round},\"i\":{i}}}").into_bytes(),
                    ))
                });
                repo.import("big", rows, 500, None)
                    .expect("import")
                    .pop()
                    .expect("a version")
            }
            _ => {
                // Forks and merges: write on an old version, then merge every few rounds.
                if round % 3 == 2 {
                    let mut tx = repo.merge(&[]);
                    tx.policy(strata::MergePolicy::Newest);
                    match tx.commit() {
                        Ok(version) => version,
                        Err(strata::Error::InvalidArgument(_)) => {
                            repo.put("m", "x", "1").expect("put")
                        }
                        Err(error) => panic!("merge: {error}"),
                    }
                } else {
                    let base = repo.history("d", "k0").expect("history").pop();
                    let mut tx = repo.transaction();
                    tx.put("d", "k0", format!("{round}"));
                    if let Some(base) = base {
                        tx.replaces(&[base.version]);
                    }
                    tx.commit().expect("commit")
                }
            }
        };
        println!("ok {version}");
    }
}

/// Kills a writer on the same repository once per entry of `kill_after` (each after that
/// many acknowledged commits): recovering from one crash must not spoil the next.
fn crash_repeatedly(mode: &str, kill_after: &[usize]) {
    let dir = tempfile::tempdir().expect("tempdir");
    Repository::init(dir.path()).expect("init");
    let mut acknowledged = Vec::new();
    for &count in kill_after {
        acknowledged.extend(crash_once(dir.path(), mode, count));
        let repo = Repository::open(dir.path()).expect("a crashed repository opens");
        for version in &acknowledged {
            repo.resolve(version)
                .and_then(|version| repo.at(&version))
                .unwrap_or_else(|e| panic!("acknowledged version {version} is lost: {e}"));
        }
        let report = repo.fsck(&mut |_, _| {}).expect("fsck runs");
        assert!(report.is_ok(), "fsck after a crash: {:?}", report.problems);
        // The repository keeps working after the crash, and what it writes then must
        // survive the next crash too.
        let after = repo
            .put("after", "crash", format!("{count}"))
            .expect("a write after the crash");
        acknowledged.push(after.to_string());
    }
}

/// Runs the writer until it has acknowledged `count` commits, then kills it with SIGKILL.
/// Returns the versions it acknowledged.
fn crash_once(dir: &std::path::Path, mode: &str, count: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR, dir)
        .env(MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(version) = line.strip_prefix("ok ") {
            acknowledged.push(version.to_string());
            if acknowledged.len() >= count {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(acknowledged.len() >= count, "the writer stopped early");
    acknowledged
}

#[test]
fn killed_during_single_puts() {
    crash_repeatedly("puts", &[1, 7, 40, 3]);
}

#[test]
fn killed_during_batched_imports() {
    crash_repeatedly("imports", &[1, 3, 2]);
}

#[test]
fn killed_during_forks_and_merges() {
    crash_repeatedly("forks", &[2, 11, 5]);
}
