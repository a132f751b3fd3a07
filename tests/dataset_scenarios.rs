//! End-to-end scenarios of the dataset store: versions, forks across devices, merges,
//! diffs and history, as a user relies on them.

mod common;

use common::{repo, sync, value};
use strata::Error;
use strata::{MergePolicy, Range, Repository, Version};

#[test]
fn put_get_overwrite_delete() {
    let repo = repo();
    let v1 = repo.put("d", "hello", "world").unwrap();
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("world"));
    let v2 = repo.put("d", "hello", "welt").unwrap();
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("welt"));
    repo.delete("d", "hello").unwrap();
    assert_eq!(value(&repo, "d", "hello"), None);
    // Old versions still read as they were.
    assert_eq!(
        repo.at(&v1)
            .unwrap()
            .get("d", "hello")
            .unwrap()
            .unwrap()
            .value,
        b"world"
    );
    assert_eq!(
        repo.at(&v2)
            .unwrap()
            .get("d", "hello")
            .unwrap()
            .unwrap()
            .value,
        b"welt"
    );
    let history = repo.history("d", "hello").unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[0].deleted);
    assert_eq!(history[2].value, b"world");
}

#[test]
fn write_on_old_version_forks_and_latest_shows_both_sides() {
    let repo = repo();
    let base = repo.put("d", "a", "1").unwrap();
    repo.put("d", "b", "1").unwrap();
    repo.put("d", "a", "2").unwrap();
    // Write on the old version: a fork.
    let fork = common::put_replacing(&repo, &base, "d", "c", "fork");
    assert_eq!(repo.heads().unwrap().len(), 2);
    // Latest shows every head's changes.
    assert_eq!(value(&repo, "d", "a").as_deref(), Some("2"));
    assert_eq!(value(&repo, "d", "b").as_deref(), Some("1"));
    assert_eq!(value(&repo, "d", "c").as_deref(), Some("fork"));
    // The fork's own view has only its history.
    let at_fork = repo.at(&fork).unwrap();
    assert_eq!(at_fork.get("d", "a").unwrap().unwrap().value, b"1");
    assert!(at_fork.get("d", "b").unwrap().is_none());
    let keys: Vec<Vec<u8>> = repo
        .latest()
        .unwrap()
        .range("d", Range::all())
        .map(|r| r.unwrap().key)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn concurrent_edits_are_forks_and_a_versioned_update_resolves_them() {
    let x = repo();
    let original = x.put("obs", "A", "x1").unwrap();
    let y = repo();
    let z = repo();
    sync(&x, &y);
    sync(&x, &z);
    let vy = y.put("obs", "A", "edited on y").unwrap();
    let vz = z.put("obs", "A", "edited on z").unwrap();
    sync(&y, &x);
    sync(&z, &x);
    assert_eq!(x.heads().unwrap().len(), 2);
    let row = x.get("obs", "A").unwrap().unwrap();
    assert!(row.forked, "a row edited on two devices is a fork");
    let forks = x.forks("obs", "A").unwrap();
    let versions: Vec<&str> = forks.iter().map(|f| f.version.as_str()).collect();
    assert!(versions.contains(&vy.as_str()) && versions.contains(&vz.as_str()));
    assert_eq!(forks.len(), 2);
    assert_ne!(forks[0].log, forks[1].log);
    // Name both versions: a merge that resolves the fork.
    let mut tx = x.transaction();
    tx.put("obs", "A", "resolved").replaces(&[vy, vz]);
    let merged = tx.commit().unwrap();
    assert_eq!(x.heads().unwrap(), vec![merged.clone()]);
    let row = x.get("obs", "A").unwrap().unwrap();
    assert!(!row.forked);
    assert_eq!(row.value, b"resolved");
    assert_eq!(
        x.at(&original)
            .unwrap()
            .get("obs", "A")
            .unwrap()
            .unwrap()
            .value,
        b"x1"
    );
}

#[test]
fn merge_keeps_non_conflicting_changes_from_both_sides() {
    let repo = repo();
    let base = repo.put("d", "shared", "0").unwrap();
    repo.put("d", "ours", "1").unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "theirs", "2")
        .replaces(std::slice::from_ref(&base));
    tx.commit().unwrap();
    let merged = repo.merge(&[]).commit().unwrap();
    let view = repo.at(&merged).unwrap();
    assert_eq!(view.get("d", "ours").unwrap().unwrap().value, b"1");
    assert_eq!(view.get("d", "theirs").unwrap().unwrap().value, b"2");
    assert_eq!(view.get("d", "shared").unwrap().unwrap().value, b"0");
    assert_eq!(repo.heads().unwrap(), vec![merged.clone()]);
    // Later writes continue from the merge and still see both sides.
    repo.put("d", "after", "3").unwrap();
    assert_eq!(value(&repo, "d", "theirs").as_deref(), Some("2"));
    assert_eq!(repo.status().unwrap().rows, 4);
}

#[test]
fn merge_conflict_needs_a_policy_and_writes_nothing_without_one() {
    let repo = repo();
    let base = repo.put("d", "k", "base").unwrap();
    let ours = repo.put("d", "k", "ours").unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "k", "theirs").replaces(&[base]);
    let theirs = tx.commit().unwrap();
    let count = repo.graph().change_count();
    let err = repo
        .merge(&[ours.clone(), theirs.clone()])
        .commit()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { rows } if rows.len() == 1),
        "{err}"
    );
    assert_eq!(repo.graph().change_count(), count);
    // Each policy settles it (on a copy each: once merged, the two are no longer heads).
    for (policy, expected) in [(MergePolicy::Theirs, "theirs"), (MergePolicy::Ours, "ours")] {
        let copy = common::repo();
        sync(&repo, &copy);
        let mut tx = copy.merge(&[ours.clone(), theirs.clone()]);
        tx.policy(policy);
        let merged = tx.commit().unwrap();
        let row = copy.at(&merged).unwrap().get("d", "k").unwrap().unwrap();
        assert_eq!(row.value, expected.as_bytes());
    }
}

#[test]
fn diff_lists_changed_rows_with_deletes() {
    let repo = repo();
    let a = repo.put("d", "x", "1").unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "y", "2")
        .put("d", "x", "1b")
        .delete("d", "gone");
    tx.commit().unwrap();
    repo.put("d", "gone", "soon").unwrap();
    let b = repo.delete("d", "gone").unwrap();
    let entries: Vec<_> = repo.diff(&a, &b).unwrap().map(|e| e.unwrap()).collect();
    let keys: Vec<&[u8]> = entries.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(keys, vec![b"x".as_slice(), b"y".as_slice()]);
    assert_eq!(entries[0].old.as_ref().unwrap().value, b"1");
    assert_eq!(entries[0].new.as_ref().unwrap().value, b"1b");
    assert!(entries[1].old.is_none());
}

#[test]
fn checkout_is_persistent_and_writing_there_forks() {
    let dir = tempfile::tempdir().unwrap();
    let first;
    {
        let repo = Repository::init(dir.path()).unwrap();
        first = repo.put("d", "k", "1").unwrap();
        repo.put("d", "k", "2").unwrap();
        repo.checkout(&repo.resolve(&first[..12]).unwrap()).unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    assert_eq!(repo.checked_out().unwrap(), Some(first.clone()));
    assert_eq!(value(&repo, "d", "k").as_deref(), Some("1"));
    let forked = repo.put("d", "k", "3").unwrap();
    assert_eq!(repo.heads().unwrap().len(), 2);
    assert_eq!(repo.checked_out().unwrap(), Some(forked));
    assert_eq!(value(&repo, "d", "k").as_deref(), Some("3"));
    repo.checkout_latest().unwrap();
    assert!(repo.get("d", "k").unwrap().unwrap().forked);
}

#[test]
fn payload_arriving_later_makes_a_commit_visible() {
    let a = repo();
    a.put("d", "k", "v").unwrap();
    let b = repo();
    let node = a.graph().changes(0).next().unwrap().unwrap();
    b.graph().ingest(vec![node.clone()]).unwrap();
    assert!(b.get("d", "k").unwrap().is_none());
    assert_eq!(b.status().unwrap().pending, 1);
    let commit = strata::Commit::decode(&node.value).unwrap();
    let payload = a
        .payload(commit.operations.as_deref().unwrap())
        .unwrap()
        .unwrap();
    b.add_payload(&payload).unwrap();
    assert_eq!(b.get("d", "k").unwrap().unwrap().value, b"v");
    assert_eq!(b.status().unwrap().pending, 0);
}

#[test]
fn files_stream_in_and_out_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    repo.put_file("photos", "a.jpg", &mut data.as_slice())
        .unwrap();
    let row = repo.get("photos", "a.jpg").unwrap().unwrap();
    let file = row.file.expect("a file row");
    assert_eq!(file.size, data.len() as u64);
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut repo.open_file("photos", "a.jpg").unwrap(), &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(repo.status().unwrap().files, 1);
}

fn busy_repository(dir: &std::path::Path) -> (Repository, Version) {
    let repo = Repository::init(dir).unwrap();
    let base = repo.put("d", "a", "1").unwrap();
    repo.put("d", "b", "2").unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "c", "3").replaces(std::slice::from_ref(&base));
    tx.commit().unwrap();
    repo.merge(&[]).commit().unwrap();
    repo.put_file("f", "x.bin", &mut &b"file bytes"[..])
        .unwrap();
    repo.delete("d", "a").unwrap();
    (repo, base)
}

#[test]
fn fsck_passes_a_healthy_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = busy_repository(dir.path());
    let mut calls = 0;
    let report = repo.fsck(&mut |_, _| calls += 1).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.nodes, repo.graph().change_count());
    assert_eq!(report.blobs, 1);
    assert!(report.payloads >= 5);
    // Six commits (the merge writes no operation); five row entries: a (put, delete), b,
    // c and the file.
    assert_eq!(report.versions, 6);
    assert_eq!(report.rows, 5);
    assert!(calls > 0);
}

#[test]
fn fsck_reports_a_damaged_payload_a_lost_index_entry_and_a_corrupt_blob() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join(".strata");
    {
        let (repo, _) = busy_repository(dir.path());
        let row = repo.get("f", "x.bin").unwrap().unwrap();
        let hash = row.file.unwrap().hash;
        std::fs::write(
            storage.join("blobs").join(&hash[..2]).join(&hash[2..]),
            b"tampered",
        )
        .unwrap();
    }
    // The version that put d/b (its payload is damaged) and the one that deleted d/a (its
    // row entry is lost): two commits, so that each problem is found on its own.
    let (put_b, delete_a) = {
        let repo = Repository::open(dir.path()).unwrap();
        let put_b = repo.history("d", "b").unwrap()[0].version.clone();
        let delete_a = repo.history("d", "a").unwrap()[0].version.clone();
        let node = repo.graph().get(&put_b).unwrap();
        let hash = strata::Commit::decode(&node.value)
            .unwrap()
            .operations
            .unwrap();
        (hex::decode(hash).unwrap(), delete_a)
    };
    {
        use strata::internals::keys::{KeyBuf, OPS, ROWS};
        let mut kv = strata::internals::kv::Kv::open(&storage.join("db")).unwrap();
        let chunks = KeyBuf::new(OPS).raw(&put_b).finish();
        let (chunk_key, _) = kv.scan_prefix(&chunks).unwrap().next().unwrap().unwrap();
        let entries = KeyBuf::new(ROWS).bytes(b"d").bytes(b"a").finish();
        let (entry_key, _) = kv.scan_prefix(&entries).unwrap().next().unwrap().unwrap();
        let mut batch = strata::internals::kv::Batch::default();
        // A well-formed chunk holding another operation.
        batch.put(&chunk_key, b"\x05\x08\x01\x1a\x01z");
        batch.delete(&entry_key);
        kv.write(batch, strata::Durability::Synced).unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    let report = repo.fsck(&mut |_, _| {}).unwrap();
    let text = report.problems.join("\n");
    assert!(text.contains("payload of commit"), "{text}");
    assert!(
        text.contains(&format!(
            "the version index lacks row d/a of commit {delete_a}"
        )),
        "{text}"
    );
    assert!(text.contains("blob"), "{text}");
}

/// A payload chunk that no longer decodes (its length prefix runs past its end) is damage
/// like any other: fsck names the commit and goes on checking the rest.
#[test]
fn fsck_reports_an_undecodable_payload_chunk_and_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join(".strata");
    let (put_b, payload) = {
        let (repo, _) = busy_repository(dir.path());
        let put_b = repo.history("d", "b").unwrap()[0].version.clone();
        let node = repo.graph().get(&put_b).unwrap();
        let hash = strata::Commit::decode(&node.value)
            .unwrap()
            .operations
            .unwrap();
        (put_b, hex::decode(hash).unwrap())
    };
    {
        use strata::internals::keys::{KeyBuf, OPS};
        let mut kv = strata::internals::kv::Kv::open(&storage.join("db")).unwrap();
        let chunks = KeyBuf::new(OPS).raw(&payload).finish();
        let (chunk_key, _) = kv.scan_prefix(&chunks).unwrap().next().unwrap().unwrap();
        let mut batch = strata::internals::kv::Batch::default();
        batch.put(&chunk_key, b"\x7f\x01");
        kv.write(batch, strata::Durability::Synced).unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    let report = repo
        .fsck(&mut |_, _| {})
        .expect("damage is reported, not an error");
    let text = report.problems.join("\n");
    assert!(text.contains(put_b.as_str()), "{text}");
    assert_eq!(report.versions, 6);
    assert_eq!(report.blobs, 1);
}

#[test]
fn live_commit_feed_sees_commits_as_they_land() {
    let repo = repo();
    repo.put("d", "first", "1").unwrap();
    let writer = repo.clone();
    let handle = std::thread::spawn(move || {
        for i in 0..3 {
            writer.put("d", format!("k{i}"), "v").unwrap();
        }
    });
    let feed = repo
        .changes(1)
        .live()
        .idle_timeout(std::time::Duration::from_secs(5));
    let seen: Vec<_> = feed.take(3).map(|c| c.unwrap()).collect();
    handle.join().unwrap();
    assert_eq!(
        seen.iter().map(|c| c.change).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(
        seen.iter()
            .all(|c| c.visible && c.commit.as_ref().is_some_and(|c| c.puts == 1))
    );
}

#[test]
fn three_head_merge_catches_conflicts_between_any_two_heads() {
    let repo = repo();
    let base = repo.put("d", "k", "base").unwrap();
    let mut heads = Vec::new();
    for (key, value) in [("other", "1"), ("k", "two"), ("k", "three")] {
        let mut tx = repo.transaction();
        tx.put("d", key, value)
            .replaces(std::slice::from_ref(&base));
        heads.push(tx.commit().unwrap());
    }
    // Heads 2 and 3 changed "k" differently; head 1 did not touch it.
    let err = repo.merge(&heads).commit().unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { rows } if rows.len() == 1),
        "{err}"
    );
    let mut tx = repo.merge(&heads);
    tx.policy(MergePolicy::Newest);
    let merged = tx.commit().unwrap();
    let view = repo.at(&merged).unwrap();
    assert_eq!(view.get("d", "other").unwrap().unwrap().value, b"1");
    let k = view.get("d", "k").unwrap().unwrap().value;
    assert!(k == b"two" || k == b"three", "{k:?}");
    assert_eq!(repo.heads().unwrap(), vec![merged]);
}

#[test]
fn replacing_several_versions_takes_a_policy_for_other_conflicts() {
    let repo = repo();
    let base = repo.put("d", "a", "0").unwrap();
    let mut versions = Vec::new();
    for side in ["left", "right"] {
        let mut tx = repo.transaction();
        tx.put("d", "a", side)
            .put("d", "b", side)
            .replaces(std::slice::from_ref(&base));
        versions.push(tx.commit().unwrap());
    }
    // Resolving "a" merges the two heads, which also disagree on "b".
    let mut tx = repo.transaction();
    tx.put("d", "a", "both").replaces(&versions);
    assert!(matches!(tx.commit().unwrap_err(), Error::Conflict { .. }));
    let mut tx = repo.transaction();
    tx.put("d", "a", "both")
        .replaces(&versions)
        .policy(MergePolicy::Ours);
    tx.commit().unwrap();
    assert_eq!(repo.heads().unwrap().len(), 1);
    assert_eq!(value(&repo, "d", "a").as_deref(), Some("both"));
    assert!(!repo.get("d", "b").unwrap().unwrap().forked);
}

#[test]
fn pending_commits_wake_only_for_what_they_wait_for() {
    let a = repo();
    let b = repo();
    a.put("d", "first", "1").unwrap();
    a.put("d", "second", "2").unwrap();
    let nodes: Vec<_> = a.graph().changes(0).map(|n| n.unwrap()).collect();
    b.graph().ingest(nodes.clone()).unwrap();
    assert_eq!(b.status().unwrap().pending, 2);
    // Local work goes on while both wait.
    b.put("local", "x", "y").unwrap();
    assert_eq!(b.status().unwrap().pending, 2);
    // The second commit's payload alone frees nothing: its parent still waits.
    let payload = |node: &strata::Node| {
        let commit = strata::Commit::decode(&node.value).unwrap();
        a.payload(commit.operations.as_deref().unwrap())
            .unwrap()
            .unwrap()
    };
    b.add_payload(&payload(&nodes[1])).unwrap();
    assert_eq!(b.status().unwrap().pending, 2);
    // The first one's frees both, in order.
    b.add_payload(&payload(&nodes[0])).unwrap();
    assert_eq!(b.status().unwrap().pending, 0);
    assert_eq!(
        b.latest()
            .unwrap()
            .get("d", "second")
            .unwrap()
            .unwrap()
            .value,
        b"2"
    );
    assert!(b.fsck(&mut |_, _| {}).unwrap().is_ok());
}

#[test]
fn fsck_of_a_repository_being_written_reports_no_false_problems() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    for batch in 0..6 {
        let rows = (0..200).map(move |i| Ok((format!("k{batch}-{i}").into_bytes(), b"v".to_vec())));
        repo.import("d", rows, 2, None).unwrap();
    }
    let writer = repo.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut written = 0u64;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) || written < 20 {
            writer.put("w", format!("{written}"), "x").unwrap();
            written += 1;
        }
        written
    });
    let mut pages = 0;
    let report = repo
        .fsck(&mut |_, _| {
            pages += 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
        })
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = handle.join().unwrap();
    assert!(pages > 1, "the check spans several pages");
    assert!(written >= 20);
    assert!(report.is_ok(), "{:?}", report.problems);
    // The writes that raced the check are all there, and a new check sees them.
    assert!(repo.fsck(&mut |_, _| {}).unwrap().is_ok());
}

#[test]
fn an_importer_commits_every_batch_and_knows_what_it_committed() {
    let repo = repo();
    let mut importer = repo.importer("d", 3, Some("import"));
    for i in 0..7 {
        importer.put(format!("k{i}"), format!("{i}")).unwrap();
    }
    assert_eq!(importer.committed().len(), 2);
    assert_eq!(importer.rows_committed(), 6);
    // Only committed batches are visible; the 7th row waits for finish.
    assert!(repo.get("d", "k6").unwrap().is_none());
    let versions = importer.finish().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(repo.heads().unwrap(), vec![versions[2].clone()]);
    assert_eq!(repo.status().unwrap().rows, 7);
    let feed: Vec<_> = repo.changes(0).map(|c| c.unwrap()).collect();
    assert!(
        feed.iter()
            .all(|c| c.commit.as_ref().unwrap().message.as_deref() == Some("import"))
    );
}

/// Both sets of heads as format 3 stored them: each current set in one record, with no
/// checkpoint number.
fn legacy_heads(batch: &mut strata::internals::kv::Batch, repo: &Repository) {
    use strata::internals::decoders::encode_keys;
    use strata::internals::keys::{HEADS, HEADS_AS_OF, TIPS, TIPS_AS_OF};
    let nodes = repo.graph().heads().unwrap();
    let mut keys: Vec<&str> = nodes.iter().map(|node| node.key.as_str()).collect();
    keys.sort();
    batch.put(HEADS, &encode_keys(&keys));
    batch.delete(HEADS_AS_OF);
    let versions = repo.heads().unwrap();
    let keys: Vec<&str> = versions.iter().map(|version| version.as_str()).collect();
    batch.put(TIPS, &encode_keys(&keys));
    batch.delete(TIPS_AS_OF);
}

/// A format 2 repository (the index's heads a key each) reads the same after opening: read
/// only, nothing on disk changes and it still reads as before; opened for writing, it is
/// upgraded (to one heads record, then to format 4's heads checkpoint) and it goes on
/// taking commits.
#[test]
fn a_format_2_repository_is_upgraded_when_it_opens() {
    use strata::internals::keys::{HEADS_AS_OF, META_FORMAT, TIPS, TIPS_FORMAT_2};
    use strata::internals::kv::{Batch, Kv};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".strata").join("db");
    let mut batch = Batch::default();
    let heads = {
        let repo = Repository::init(dir.path()).unwrap();
        let base = repo.put("d", "a", "1").unwrap();
        repo.put("d", "b", "1").unwrap();
        common::put_replacing(&repo, &base, "d", "c", "fork");
        legacy_heads(&mut batch, &repo);
        repo.heads().unwrap()
    };
    assert_eq!(heads.len(), 2);
    // Back to format 2's layout, as that build wrote it.
    {
        let mut kv = Kv::open(&db).unwrap();
        batch.delete(TIPS);
        for head in &heads {
            let mut key = TIPS_FORMAT_2.to_vec();
            key.extend_from_slice(head.as_str().as_bytes());
            batch.put(&key, b"");
        }
        batch.put(META_FORMAT, &2u64.to_be_bytes());
        kv.write(batch, strata::Durability::Synced).unwrap();
    }
    let format_2_keys = |kv: &mut Kv| kv.scan_prefix(TIPS_FORMAT_2).unwrap().count();
    let reads = |repo: &Repository| {
        assert_eq!(repo.heads().unwrap(), heads);
        assert_eq!(value(repo, "d", "b").as_deref(), Some("1"));
        assert_eq!(value(repo, "d", "c").as_deref(), Some("fork"));
    };
    {
        let reader = Repository::options()
            .read_only(true)
            .open(dir.path())
            .unwrap();
        reads(&reader);
    }
    assert_eq!(format_2_keys(&mut Kv::open(&db).unwrap()), 2);
    {
        let repo = Repository::open(dir.path()).unwrap();
        reads(&repo);
        let merged = repo.put("d", "e", "after").unwrap();
        assert!(repo.heads().unwrap().contains(&merged));
    }
    let mut kv = Kv::open(&db).unwrap();
    assert_eq!(format_2_keys(&mut kv), 0);
    assert_eq!(
        kv.get(META_FORMAT).unwrap(),
        Some(4u64.to_be_bytes().to_vec())
    );
    assert!(kv.get(TIPS).unwrap().is_some());
    assert!(kv.get(HEADS_AS_OF).unwrap().is_some());
    drop(kv);
    let repo = Repository::open(dir.path()).unwrap();
    assert_eq!(value(&repo, "d", "e").as_deref(), Some("after"));
    assert!(repo.fsck(&mut |_, _| {}).unwrap().problems.is_empty());
}

/// A format 3 repository (the graph's heads rewritten whole at every write) reads the same
/// after opening: read only, nothing on disk changes; opened for writing, its heads record
/// becomes format 4's checkpoint as of its last change, and writes after it (past the next
/// checkpoint too) leave the heads right through reopens and fsck.
#[test]
fn a_format_3_repository_is_upgraded_when_it_opens() {
    use strata::internals::keys::{HEADS_AS_OF, META_FORMAT, TIPS_AS_OF};
    use strata::internals::kv::{Batch, Kv};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".strata").join("db");
    // The heads as the graph reports them, checked against every node: those no node links
    // to.
    let graph_heads = |repo: &Repository| -> Vec<String> {
        let graph = repo.graph();
        let mut keys: Vec<String> = graph
            .heads()
            .unwrap()
            .into_iter()
            .map(|node| node.key)
            .collect();
        keys.sort();
        let (mut all, mut linked) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for node in graph.changes(0) {
            let node = node.unwrap();
            linked.extend(node.links);
            all.insert(node.key);
        }
        assert_eq!(keys, all.difference(&linked).cloned().collect::<Vec<_>>());
        keys
    };
    let mut batch = Batch::default();
    let (heads, versions) = {
        let repo = Repository::init(dir.path()).unwrap();
        let base = repo.put("d", "a", "1").unwrap();
        for i in 0..300 {
            repo.put("d", format!("k{i}"), "1").unwrap();
        }
        common::put_replacing(&repo, &base, "d", "c", "fork");
        legacy_heads(&mut batch, &repo);
        (graph_heads(&repo), repo.heads().unwrap())
    };
    assert_eq!((heads.len(), versions.len()), (2, 2));
    batch.put(META_FORMAT, &3u64.to_be_bytes());
    let mut kv = Kv::open(&db).unwrap();
    kv.write(batch, strata::Durability::Synced).unwrap();
    drop(kv);
    let format = |kv: &mut Kv| kv.get(META_FORMAT).unwrap().map(|b| b[7]);
    {
        let reader = Repository::options()
            .read_only(true)
            .open(dir.path())
            .unwrap();
        assert_eq!(graph_heads(&reader), heads);
        assert_eq!(reader.heads().unwrap(), versions);
        assert_eq!(value(&reader, "d", "c").as_deref(), Some("fork"));
    }
    let mut kv = Kv::open(&db).unwrap();
    assert_eq!(format(&mut kv), Some(3), "a read-only open changes nothing");
    assert_eq!(kv.get(HEADS_AS_OF).unwrap(), None);
    assert_eq!(kv.get(TIPS_AS_OF).unwrap(), None);
    drop(kv);
    let after = {
        let repo = Repository::open(dir.path()).unwrap();
        assert_eq!(graph_heads(&repo), heads);
        assert_eq!(repo.heads().unwrap(), versions);
        for i in 0..300 {
            repo.put("d", format!("after{i}"), "2").unwrap();
        }
        (graph_heads(&repo), repo.heads().unwrap())
    };
    let mut kv = Kv::open(&db).unwrap();
    assert_eq!(format(&mut kv), Some(4));
    assert!(kv.get(HEADS_AS_OF).unwrap().is_some());
    assert!(kv.get(TIPS_AS_OF).unwrap().is_some());
    drop(kv);
    let repo = Repository::open(dir.path()).unwrap();
    assert_eq!((graph_heads(&repo), repo.heads().unwrap()), after);
    assert_eq!(value(&repo, "d", "after299").as_deref(), Some("2"));
    assert!(repo.fsck(&mut |_, _| {}).unwrap().problems.is_empty());
}

/// The rows of `view` in `dataset` within `range`, as (key, value).
fn pairs(view: &strata::View, dataset: &str, range: Range) -> Vec<(String, String)> {
    view.range(dataset, range)
        .map(|row| {
            let row = row.unwrap();
            (
                String::from_utf8(row.key).unwrap(),
                String::from_utf8(row.value).unwrap(),
            )
        })
        .collect()
}

/// A dataset that grows, changes, forks and merges after each version: a range read at each
/// old version (whole, bounded, limited, across many pages) returns exactly the rows it held,
/// read from the keys its history wrote where its rows are sparse, on a repository and on
/// a peer that indexed the commits in another order.
#[test]
fn range_reads_at_old_versions_return_exactly_their_rows_however_the_dataset_grew() {
    use std::collections::BTreeMap;
    let repo = repo();
    let other = common::repo();
    let mut expected: Vec<(Version, BTreeMap<String, String>)> = Vec::new();
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    // A bijection on 0..40,000 (7,919 is prime): the keys spread over the whole range.
    let key = |i: u64| format!("k{:05}", (i * 7919) % 40_000);
    // The first six commits write 100 new rows each and the last six 3,000, so the early
    // versions hold fewer than one row in 16 of the dataset as it ends: reads there take
    // the keys their history wrote.
    let mut written = 0;
    for c in 0..12u64 {
        if c == 4 {
            // A fork off the third version that changes one of its rows and adds one,
            // then a merge of it and the main line, on which the rest is written.
            let mut tx = repo.transaction();
            tx.replaces(std::slice::from_ref(&expected[2].0));
            tx.put("d", key(1), "fork").put("d", "zz-fork-only", "fork");
            let fork = tx.commit().unwrap();
            let mut forked = expected[2].1.clone();
            for rows in [&mut forked, &mut rows] {
                rows.insert(key(1), "fork".into());
                rows.insert("zz-fork-only".into(), "fork".into());
            }
            expected.push((fork, forked));
            assert_eq!(repo.heads().unwrap().len(), 2);
            expected.push((repo.merge(&[]).commit().unwrap(), rows.clone()));
        }
        let mut tx = repo.transaction();
        // New rows scattered among the old ones, 20 changed, 10 deleted.
        let new = if c < 6 { 100 } else { 3_000 };
        for i in written..written + new {
            tx.put("d", key(i), format!("new in {c}"));
            rows.insert(key(i), format!("new in {c}"));
        }
        for i in (0..written).step_by(37).take(20) {
            tx.put("d", key(i), format!("changed in {c}"));
            rows.insert(key(i), format!("changed in {c}"));
        }
        for i in (5..written).step_by(53).take(10) {
            tx.delete("d", key(i));
            rows.remove(&key(i));
        }
        written += new;
        expected.push((tx.commit().unwrap(), rows.clone()));
    }
    assert_eq!(repo.heads().unwrap().len(), 1);
    sync(&repo, &other);
    for repo in [&repo, &other] {
        for (version, rows) in &expected {
            let view = repo.at(version).unwrap();
            let all: Vec<(String, String)> = rows.clone().into_iter().collect();
            assert_eq!(
                pairs(&view, "d", Range::all()),
                all,
                "all rows at {version}"
            );
            let (low, high) = (&all[all.len() / 5].0, &all[all.len() * 4 / 5].0);
            let bounded: Vec<_> = all
                .iter()
                .filter(|(k, _)| k > low && k < high)
                .cloned()
                .collect();
            assert_eq!(
                pairs(&view, "d", Range::all().gt(low.clone()).lt(high.clone())),
                bounded
            );
            let from: Vec<_> = all
                .iter()
                .filter(|(k, _)| k >= low)
                .take(300)
                .cloned()
                .collect();
            assert_eq!(
                pairs(&view, "d", Range::all().gte(low.clone()).limit(300)),
                from
            );
            assert_eq!(
                pairs(&view, "d", Range::prefix("zz")).len(),
                usize::from(rows.contains_key("zz-fork-only"))
            );
        }
        assert!(repo.fsck(&mut |_, _| {}).unwrap().is_ok());
    }
}

/// A sparse old version whose history is too long to collect the keys of (more than about
/// 262,144 operations) is read by the scan, still exactly: every 40th key of a dataset that
/// grew fortyfold, at a version whose history also wrote 300,000 rows elsewhere.
#[test]
fn a_sparse_old_version_with_a_long_history_reads_exactly_its_rows() {
    let repo = common::repo();
    let key = |i: u64| format!("{i:06}").into_bytes();
    repo.import(
        "elsewhere",
        (0..300_000).map(|i| Ok((key(i), b"x".to_vec()))),
        100_000,
        None,
    )
    .unwrap();
    let old = repo
        .import(
            "d",
            (0..1_000).map(|i| Ok((key(i * 40), b"old".to_vec()))),
            100_000,
            None,
        )
        .unwrap()
        .pop()
        .unwrap();
    repo.import(
        "d",
        (0..40_000)
            .filter(|i| i % 40 != 0)
            .map(|i| Ok((key(i), b"new".to_vec()))),
        100_000,
        None,
    )
    .unwrap();
    let view = repo.at(&old).unwrap();
    let read: Vec<Vec<u8>> = view
        .range("d", Range::all())
        .map(|row| row.unwrap().key)
        .collect();
    assert_eq!(read, (0..1_000).map(|i| key(i * 40)).collect::<Vec<_>>());
    let tail: Vec<Vec<u8>> = view
        .range("d", Range::all().gt(key(20_000)).limit(100))
        .map(|row| row.unwrap().key)
        .collect();
    assert_eq!(tail, (501..601).map(|i| key(i * 40)).collect::<Vec<_>>());
}

#[test]
fn fsck_checks_a_commit_that_writes_rows_more_than_once_against_its_last_operation() {
    // One commit of 3,000 operations (several payload chunks) that writes some rows again
    // in a later chunk: the index holds each row's last operation, and fsck agrees.
    let repo = repo();
    let mut tx = repo.transaction();
    for i in 0..2_000 {
        tx.put("d", format!("k{i:04}"), format!("first {i}"));
    }
    for i in (0..2_000).step_by(2) {
        tx.put("d", format!("k{i:04}"), format!("second {i}"));
    }
    tx.delete("d", "k0001");
    let version = tx.commit().unwrap();
    assert_eq!(repo.operations(&version).unwrap().len(), 3_001);
    assert_eq!(value(&repo, "d", "k0000").as_deref(), Some("second 0"));
    assert_eq!(value(&repo, "d", "k0003").as_deref(), Some("first 3"));
    assert_eq!(value(&repo, "d", "k0001"), None);
    let report = repo.fsck(&mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.payloads, 1);
}

#[test]
fn fsck_finds_a_row_entry_its_commit_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let version = {
        let repo = Repository::init(dir.path()).unwrap();
        repo.put("d", "a", "1").unwrap()
    };
    {
        use strata::internals::keys::{KeyBuf, ROWS};
        let mut kv =
            strata::internals::kv::Kv::open(&dir.path().join(".strata").join("db")).unwrap();
        let entries = KeyBuf::new(ROWS).bytes(b"d").bytes(b"a").finish();
        let (key, entry) = kv.scan_prefix(&entries).unwrap().next().unwrap().unwrap();
        // The same entry (the same version and value) for a row the commit never wrote.
        let mut forged = KeyBuf::new(ROWS).bytes(b"d").bytes(b"forged").finish();
        forged.extend_from_slice(&key[entries.len()..]);
        let mut batch = strata::internals::kv::Batch::default();
        batch.put(&forged, &entry);
        kv.write(batch, strata::Durability::Synced).unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    let report = repo.fsck(&mut |_, _| {}).unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains(&format!(
            "the version index holds 2 row entries of commit {version}, which wrote 1"
        )),
        "{text}"
    );
}
