//! dat-core 6.0.2 `test/replicate.js` (spec §9.2, case 14), ported: replication is
//! simulated by copying every node and payload (`common::sync`, the same approach as
//! `tests/dataset_scenarios.rs`), which exercises the receiving side's seam
//! (`graph().ingest` + `add_payload`). Plus what the original got wrong after replication:
//! D10 (a clone reads and writes on the replicated history at once) and forks that read
//! the same on every device.

mod common;

use common::{after, repo, sync, value};
use strata::{Commit, Range, Repository, Version};

/// §9.2 case 14, `clone`: three puts (hello twice, test), then an empty repository
/// receives everything. Its heads are the source's, and the head reads test = test and
/// hello = welt. Fixed semantics (D10): the original's clone still reads "not found"
/// until it checks out `heads[0]` or reopens; strata's clone reads latest at once.
#[test]
fn clone() {
    let db = repo();
    db.put("d", "hello", "world").unwrap();
    db.put("d", "hello", "welt").unwrap();
    db.put("d", "test", "test").unwrap();
    let clone = repo();
    assert_eq!(sync(&db, &clone), 3);
    let heads = clone.heads().unwrap();
    assert_eq!(heads, db.heads().unwrap());
    assert_eq!(heads.len(), 1);
    let checkout = clone.at(&heads[0]).unwrap();
    let text =
        |key: &str| String::from_utf8(checkout.get("d", key).unwrap().unwrap().value).unwrap();
    assert_eq!(text("test"), "test");
    assert_eq!(text("hello"), "welt");
    assert_eq!(value(&clone, "d", "test").as_deref(), Some("test"));
    assert_eq!(value(&clone, "d", "hello").as_deref(), Some("welt"));
    // Same history, same versions, same logs.
    let history = |repo: &Repository| -> Vec<(Version, String, Vec<u8>)> {
        repo.history("d", "hello")
            .unwrap()
            .into_iter()
            .map(|v| (v.version, v.log, v.value))
            .collect()
    };
    assert_eq!(history(&clone), history(&db));
    assert_eq!(history(&clone).len(), 2);
    assert_eq!(clone.graph().logs().unwrap(), db.graph().logs().unwrap());
    // A second sync has nothing to send either way.
    assert_eq!(sync(&db, &clone), 0);
    assert_eq!(sync(&clone, &db), 0);
    // D10: a write on the clone continues the replicated head, it does not start a root.
    let next = clone.put("d", "hello", "from the clone").unwrap();
    assert_eq!(clone.graph().get(&next).unwrap().links, heads);
    assert_eq!(sync(&clone, &db), 1);
    assert_eq!(value(&db, "d", "hello").as_deref(), Some("from the clone"));
    assert_eq!(db.heads().unwrap(), vec![next]);
}

/// A clone into an on-disk repository reads the same after it is reopened.
#[test]
fn clone_to_disk_and_reopen() {
    let db = repo();
    db.import(
        "rows",
        (0..50u32).map(|i| Ok((format!("{i:03}").into_bytes(), vec![i as u8]))),
        7,
        Some("import"),
    )
    .unwrap();
    db.delete("rows", "010").unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let clone = Repository::init(dir.path()).unwrap();
        sync(&db, &clone);
    }
    let clone = Repository::open(dir.path()).unwrap();
    assert_eq!(clone.heads().unwrap(), db.heads().unwrap());
    let keys = common::keys(&clone.latest().unwrap(), "rows", Range::all());
    assert_eq!(keys.len(), 49);
    assert!(!keys.contains(&"010".to_string()));
    assert_eq!(clone.get("rows", "042").unwrap().unwrap().value, vec![42]);
    assert_eq!(clone.status().unwrap().rows, 49);
}

/// Concurrent edits on two devices, synced both ways: both devices see the same heads,
/// the same fork (the same winner, the same versions), and each device's own change to
/// an unforked row.
#[test]
fn concurrent_writes_read_the_same_on_every_device() {
    let a = repo();
    a.put("d", "shared", "0").unwrap();
    let b = repo();
    sync(&a, &b);
    let va = a.put("d", "shared", "from a").unwrap();
    a.put("d", "only-a", "a").unwrap();
    after(&a, &va);
    let vb = b.put("d", "shared", "from b").unwrap();
    b.put("d", "only-b", "b").unwrap();
    sync(&a, &b);
    sync(&b, &a);
    assert_eq!(a.heads().unwrap(), b.heads().unwrap());
    assert_eq!(a.heads().unwrap().len(), 2);
    for repo in [&a, &b] {
        let row = repo.get("d", "shared").unwrap().unwrap();
        assert!(row.forked);
        assert_eq!(row.value, b"from b", "the newest wins on every device");
        let versions: Vec<Version> = repo
            .forks("d", "shared")
            .unwrap()
            .into_iter()
            .map(|f| f.version)
            .collect();
        assert_eq!(versions, vec![vb.clone(), va.clone()]);
        assert_eq!(value(repo, "d", "only-a").as_deref(), Some("a"));
        assert_eq!(value(repo, "d", "only-b").as_deref(), Some("b"));
        assert_eq!(
            common::keys(&repo.latest().unwrap(), "d", Range::all()),
            vec!["only-a", "only-b", "shared"]
        );
    }
    // Each fork names the device that wrote it.
    let forks = a.forks("d", "shared").unwrap();
    assert_eq!(forks[0].log, b.graph().log_id());
    assert_eq!(forks[1].log, a.graph().log_id());
    // A merge on one device resolves the fork everywhere once it travels.
    let mut tx = a.merge(&[]);
    tx.policy(strata::MergePolicy::Ours);
    let merged = tx.commit().unwrap();
    sync(&a, &b);
    for repo in [&a, &b] {
        assert_eq!(repo.heads().unwrap(), vec![merged.clone()]);
        let row = repo.get("d", "shared").unwrap().unwrap();
        assert!(!row.forked);
        assert_eq!(
            row.value, b"from a",
            "ours is the merging device's own head"
        );
    }
}

/// Three devices with partial copies end with the same data everywhere (transitive sync).
#[test]
fn three_party_sync_is_transitive() {
    let x = repo();
    let y = repo();
    let z = repo();
    x.put("obs", "1", "x").unwrap();
    sync(&x, &y);
    y.put("obs", "2", "y").unwrap();
    sync(&y, &z);
    z.put("obs", "3", "z").unwrap();
    sync(&z, &x);
    for repo in [&x, &z] {
        assert_eq!(
            common::keys(&repo.latest().unwrap(), "obs", Range::all()),
            vec!["1", "2", "3"]
        );
    }
    sync(&x, &y);
    assert_eq!(x.heads().unwrap(), y.heads().unwrap());
    assert_eq!(y.heads().unwrap(), z.heads().unwrap());
    let mut logs: Vec<_> = [&x, &y, &z]
        .iter()
        .map(|r| r.graph().logs().unwrap())
        .collect();
    logs.dedup();
    assert_eq!(logs.len(), 1, "identical logs everywhere");
}

/// A commit whose payload has not arrived is in the graph but invisible; it becomes
/// visible, with its descendants, when the payload comes.
#[test]
fn payload_later_makes_commits_and_descendants_visible() {
    let a = repo();
    let first = a.put("d", "k", "1").unwrap();
    let second = a.put("d", "k", "2").unwrap();
    let b = repo();
    let nodes: Vec<_> = a.graph().changes(0).map(|n| n.unwrap()).collect();
    b.graph().ingest(nodes.clone()).unwrap();
    assert_eq!(b.get("d", "k").unwrap(), None);
    assert!(b.heads().unwrap().is_empty());
    assert!(matches!(
        b.at(&second),
        Err(strata::Error::VersionNotFound { .. })
    ));
    assert!(matches!(
        b.resolve(&second),
        Err(strata::Error::VersionNotFound { pending: true, .. })
    ));
    assert_eq!(b.status().unwrap().pending, 2);
    // The second payload first: still nothing (its parent is invisible).
    let payload = |node: &strata::Node| {
        let hash = Commit::decode(&node.value).unwrap().operations.unwrap();
        a.payload(&hash).unwrap().unwrap()
    };
    b.add_payload(&payload(&nodes[1])).unwrap();
    assert!(b.heads().unwrap().is_empty());
    b.add_payload(&payload(&nodes[0])).unwrap();
    assert_eq!(b.heads().unwrap(), vec![second.clone()]);
    assert_eq!(value(&b, "d", "k").as_deref(), Some("2"));
    assert_eq!(
        b.at(&first).unwrap().get("d", "k").unwrap().unwrap().value,
        b"1"
    );
    assert_eq!(b.status().unwrap().pending, 0);
}
