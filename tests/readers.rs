//! Readers never lie and never wait: a pinned snapshot reads exactly what the store held
//! when it was pinned, however much is written and compacted afterwards (rusty-leveldb
//! deletes the table files a compaction makes obsolete, and its iterators end quietly on a
//! missing file); a read-only open beside a writer reads the moment it opened at; and
//! opening a repository that is open in the same process shares it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata::Repository;
use strata::internals::kv::{Batch, Kv};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn fill(kv: &mut Kv, value: &[u8]) {
    let mut batch = Batch::default();
    for i in 0..2000 {
        batch.put(&key(i), value);
    }
    kv.write(batch, strata::Durability::Flushed).unwrap();
}

#[test]
fn a_pin_reads_everything_it_pinned_across_compactions() {
    for on_disk in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = if on_disk {
            Kv::open(dir.path()).unwrap()
        } else {
            Kv::in_memory().unwrap()
        };
        fill(&mut kv, b"old");
        kv.compact().unwrap();
        let pin = kv.pin().unwrap();
        fill(&mut kv, b"new");
        kv.compact().unwrap();
        let rows = kv
            .read_at(pin, |kv| {
                kv.scan_prefix(b"key")?.collect::<strata::Result<Vec<_>>>()
            })
            .unwrap();
        assert_eq!(rows.len(), 2000, "on disk: {on_disk}");
        assert!(rows.iter().all(|(_, v)| v == b"old"));
        assert_eq!(
            kv.read_at(pin, |kv| kv.get(&key(7))).unwrap().as_deref(),
            Some(&b"old"[..])
        );
        kv.unpin(pin);
        // Released: the live state reads the new values, and the obsolete tables are gone.
        assert_eq!(kv.get(&key(7)).unwrap().as_deref(), Some(&b"new"[..]));
        if on_disk {
            kv.compact().unwrap();
            let tables = std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".ldb")
                })
                .count();
            assert!(
                tables <= 2,
                "{tables} tables left after the pin was released"
            );
        }
    }
}

#[test]
fn fsck_during_imports_and_compactions_reports_no_false_damage() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let rows = |from: u32, to: u32| {
        (from..to).map(|i| {
            Ok((
                format!("r{i:07}").into_bytes(),
                format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(80)).into_bytes(),
            ))
        })
    };
    repo.import("big", rows(0, 30_000), 5_000, None).unwrap();
    repo.compact().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let repo = repo.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut round = 0;
            while !done.load(Ordering::Relaxed) {
                repo.import(
                    "big",
                    rows(round * 5_000, round * 5_000 + 40_000),
                    5_000,
                    None,
                )
                .unwrap();
                repo.compact().unwrap();
                round += 1;
            }
        })
    };
    for _ in 0..3 {
        let report = repo.fsck(&mut |_, _| {}).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }
    done.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let report = repo.fsck(&mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_reader_opens_beside_a_writer_and_sees_the_repository_as_of_its_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Repository::init(dir.path()).unwrap();
    let first = writer.put("d", "k", "1").unwrap();
    let reader = Repository::options()
        .read_only(true)
        .open(dir.path())
        .unwrap();
    writer.put("d", "k", "2").unwrap();
    writer.compact().unwrap();
    // The reader reads the moment it opened at, and refuses every change.
    assert_eq!(reader.get("d", "k").unwrap().unwrap().value, b"1");
    assert_eq!(reader.heads().unwrap(), vec![first.clone()]);
    assert!(matches!(
        reader.put("d", "k", "3"),
        Err(strata::Error::ReadOnly)
    ));
    assert!(matches!(
        reader.checkout(&first),
        Err(strata::Error::ReadOnly)
    ));
    assert!(reader.fsck(&mut |_, _| {}).unwrap().is_ok());
    // A new reader sees the new state; the writer was never disturbed.
    let again = Repository::options()
        .read_only(true)
        .open(dir.path())
        .unwrap();
    assert_eq!(again.get("d", "k").unwrap().unwrap().value, b"2");
    writer.put("d", "k", "4").unwrap();
    assert_eq!(writer.get("d", "k").unwrap().unwrap().value, b"4");
}

#[test]
fn opening_an_open_repository_in_the_same_process_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    repo.put("d", "k", "1").unwrap();
    let view = repo.latest().unwrap();
    drop(repo);
    // A live view keeps the repository open; opening it again shares it.
    let again = Repository::open(dir.path()).unwrap();
    again.put("d", "k", "2").unwrap();
    assert_eq!(view.get("d", "k").unwrap().unwrap().value, b"1");
    drop((view, again));
    // Once every handle is gone, the lock is released for other processes too.
    let third = Repository::open(dir.path()).unwrap();
    assert_eq!(third.get("d", "k").unwrap().unwrap().value, b"2");
}

#[test]
fn a_read_only_open_by_a_relative_path_reads_what_only_the_log_holds() {
    // A writer that closes leaves its last writes in the log; a reader recovers them into
    // a table in memory, which once failed under a relative path ("not part of the
    // database").
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    repo.put("sites", "A", "1").unwrap();
    drop(repo);
    let here = std::env::current_dir().unwrap();
    let relative = dir
        .path()
        .strip_prefix(&here)
        .expect("the target folder is below the package");
    assert!(relative.is_relative());
    let reader = Repository::options()
        .read_only(true)
        .open(relative)
        .unwrap();
    assert_eq!(reader.get("sites", "A").unwrap().unwrap().value, b"1");
}
