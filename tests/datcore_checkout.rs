//! dat-core 6.0.2 `test/checkout.js` (spec §9.2, cases 6–10), ported: a checkout is
//! `repo.at(version)` (a read-only view) or `repo.checkout(version)` (persistent); writing
//! on an old version is `tx.replaces(&[old])`. Plus the fixes of D13 (an ambiguous version
//! prefix is an error) and D9 (a merge keeps the non-conflicting changes of every side,
//! also after reopening an on-disk repository).

mod common;

use common::{after, commit_at, keys, repo, rows, value};
use strata::{Commit, CommitType, MergePolicy, Range, Repository};
use strata::{Error, Version};
use strata::{FramedSha256, NodeHasher};

fn text(view: &strata::View, key: &str) -> Option<String> {
    view.get("d", key)
        .unwrap()
        .map(|row| String::from_utf8(row.value).unwrap())
}

/// §9.2 case 6, `bad checkout`. The original emits an error because the hash is shorter
/// than 16 characters. strata accepts unique prefixes of 4+ characters: a shorter one is
/// `InvalidArgument`, a 4+ character one that names nothing is `VersionNotFound`
/// ("not-exist" has 9 characters). A version of another repository is not one here.
#[test]
fn bad_checkout() {
    let repo = repo();
    let not_found = |result: strata::Result<strata::Version>| {
        matches!(result, Err(Error::VersionNotFound { pending: false, .. }))
    };
    assert!(not_found(repo.resolve("not-exist")));
    assert!(matches!(
        repo.resolve("abc"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(repo.resolve(""), Err(Error::InvalidArgument(_))));
    repo.put("d", "hello", "world").unwrap();
    assert!(not_found(repo.resolve("not-exist")));
    assert!(matches!(
        repo.resolve("012"),
        Err(Error::InvalidArgument(_))
    ));
    let elsewhere = common::repo().put("d", "hello", "there").unwrap();
    assert!(matches!(
        repo.at(&elsewhere),
        Err(Error::VersionNotFound { .. })
    ));
    assert!(matches!(
        repo.checkout(&elsewhere),
        Err(Error::VersionNotFound { .. })
    ));
    assert!(matches!(
        repo.diff(&elsewhere, &elsewhere),
        Err(Error::VersionNotFound { .. })
    ));
    // A failed checkout leaves the repository where it was.
    assert_eq!(repo.checked_out().unwrap(), None);
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("world"));
}

/// §9.2 case 7, `checkout`: after world then welt, the old version reads world.
#[test]
fn checkout() {
    let repo = repo();
    let old = repo.put("d", "hello", "world").unwrap();
    let new = repo.put("d", "hello", "welt").unwrap();
    assert_eq!(
        text(&repo.at(&old).unwrap(), "hello").as_deref(),
        Some("world")
    );
    assert_eq!(
        text(
            &repo.at(&repo.resolve(&old[..8]).unwrap()).unwrap(),
            "hello"
        )
        .as_deref(),
        Some("world")
    );
    assert_eq!(
        text(&repo.at(&new).unwrap(), "hello").as_deref(),
        Some("welt")
    );
    assert_eq!(repo.at(&old).unwrap().heads(), vec![old.clone()]);
    // The persistent checkout moves the repository's default view, and back.
    let named = repo.resolve(&old[..10]).unwrap();
    assert_eq!(named, old);
    repo.checkout(&named).unwrap();
    assert_eq!(repo.checked_out().unwrap(), Some(old.clone()));
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("world"));
    // `latest` ignores the checkout.
    assert_eq!(
        text(&repo.latest().unwrap(), "hello").as_deref(),
        Some("welt")
    );
    repo.checkout_latest().unwrap();
    assert_eq!(repo.checked_out().unwrap(), None);
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("welt"));
}

/// §9.2 case 8, `put after checkout`: a view taken before a write keeps reading what it
/// read; the repository sees the new value.
#[test]
fn put_after_checkout() {
    let repo = repo();
    let head = repo.put("d", "hello", "world").unwrap();
    let checkout = repo.at(&head).unwrap();
    let latest_before = repo.latest().unwrap();
    repo.put("d", "hello", "verden").unwrap();
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("verden"));
    assert_eq!(text(&checkout, "hello").as_deref(), Some("world"));
    // A view is resolved when it is made: latest taken before the write is a snapshot.
    assert_eq!(text(&latest_before, "hello").as_deref(), Some("world"));
    assert_eq!(repo.heads().unwrap().len(), 1);
}

/// §9.2 case 9, `put in checkout`: a write on the old version forks (two heads); the fork
/// reads verden, the other head still reads welt. Fixed semantics: the original's main
/// instance keeps reading its own branch only; strata's latest shows every head, so the
/// row changed on both heads is a fork there, listing both versions.
#[test]
fn put_in_checkout() {
    let repo = repo();
    let old = repo.put("d", "hello", "world").unwrap();
    let welt = repo.put("d", "hello", "welt").unwrap();
    after(&repo, &welt);
    let verden = common::put_replacing(&repo, &old, "d", "hello", "verden");
    assert_eq!(
        repo.graph().get(&verden).unwrap().links,
        vec![old.to_string()]
    );
    assert_eq!(
        text(&repo.at(&verden).unwrap(), "hello").as_deref(),
        Some("verden")
    );
    assert_eq!(
        text(&repo.at(&welt).unwrap(), "hello").as_deref(),
        Some("welt")
    );
    let mut heads = repo.heads().unwrap();
    heads.sort();
    let mut expected = vec![welt.clone(), verden.clone()];
    expected.sort();
    assert_eq!(heads, expected, "two heads");
    let row = repo.get("d", "hello").unwrap().unwrap();
    assert!(row.forked);
    assert_eq!(row.value, b"verden", "the newest version wins the read");
    let forks = repo.forks("d", "hello").unwrap();
    let versions: Vec<&str> = forks.iter().map(|f| f.version.as_str()).collect();
    assert_eq!(
        versions,
        vec![verden.as_str(), welt.as_str()],
        "newest first"
    );
    // The same through a persistent checkout: a plain write there forks, and the checkout
    // follows the new commit.
    repo.checkout(&old).unwrap();
    let mars = repo.put("d", "hello", "mars").unwrap();
    assert_eq!(repo.checked_out().unwrap(), Some(mars.clone()));
    assert_eq!(repo.heads().unwrap().len(), 3);
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("mars"));
    repo.checkout_latest().unwrap();
    assert_eq!(repo.forks("d", "hello").unwrap().len(), 3);
}

/// §9.2 case 10, `read-stream after checkout`: after a fork, each head's read stream has
/// exactly its own row.
#[test]
fn read_stream_after_checkout() {
    let repo = repo();
    let old = repo.put("d", "hello", "world").unwrap();
    let verden = repo.put("d", "hello", "verden").unwrap();
    let mars = common::put_replacing(&repo, &old, "d", "hello", "mars");
    assert_eq!(repo.heads().unwrap().len(), 2);
    for (head, expected) in [(&verden, "verden"), (&mars, "mars")] {
        let got = rows(&repo.at(head).unwrap(), "d", Range::all());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, b"hello");
        assert_eq!(got[0].value, expected.as_bytes());
        assert_eq!(&got[0].version, head);
        assert!(!got[0].forked, "a single version has no forks");
    }
    // At latest the row is listed once, flagged as forked.
    let latest = rows(&repo.latest().unwrap(), "d", Range::all());
    assert_eq!(latest.len(), 1);
    assert!(latest[0].forked);
}

/// Finds two commit values on `parent` whose node keys share their first 8 hex characters.
fn colliding_commits(parent: &str) -> (Vec<u8>, Vec<u8>) {
    let mut seen = std::collections::HashMap::new();
    let links = vec![parent.to_string()];
    for modified in 0u64.. {
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
        if let Some(other) = seen.insert(key[..8].to_string(), value.clone()) {
            return (other, value);
        }
    }
    unreachable!()
}

/// D13: the original expands a checkout prefix to the first match. strata refuses an
/// ambiguous prefix, naming the versions it matches, and resolves a longer one that is
/// unique.
#[test]
fn ambiguous_prefix_is_an_error() {
    let repo = repo();
    let root = repo.put("d", "k", "v").unwrap();
    let (a, b) = colliding_commits(&root);
    let links = [root.to_string()];
    let a = repo.graph().add(&links, a).unwrap().key;
    let b = repo.graph().add(&links, b).unwrap().key;
    assert_eq!(a[..8], b[..8]);
    for name in [&a[..8], &b[..8], &a[..8].to_uppercase()] {
        match repo.resolve(name) {
            Err(Error::AmbiguousVersion { prefix, matches }) => {
                assert_eq!(prefix, name);
                assert!(matches.contains(&a) && matches.contains(&b), "{matches:?}");
            }
            other => panic!("expected an ambiguous version, got {other:?}"),
        }
    }
    assert_eq!(repo.checked_out().unwrap(), None);
    // The shortest distinguishing prefix (at least 8) resolves to the right one.
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let a = repo.resolve(&a[..=common]).unwrap();
    let b = repo.resolve(&b[..=common]).unwrap();
    assert_ne!(a, b);
    assert_eq!(repo.at(&a).unwrap().heads(), vec![a.clone()]);
    assert_eq!(repo.at(&b).unwrap().heads(), vec![b.clone()]);
    // Both read the parent's rows.
    assert_eq!(text(&repo.at(&b).unwrap(), "k").as_deref(), Some("v"));
}

/// D9: a merge keeps the non-conflicting changes of both sides (the original keeps only
/// the chosen layer plus the merge's own operations), in the merging repository, on
/// another device it replicates to, and after reopening from disk. The conflict is
/// settled by the policy.
#[test]
fn merge_keeps_both_sides_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let merged;
    {
        let repo = Repository::init(dir.path()).unwrap();
        let base = repo.put("d", "a", "1").unwrap();
        let mut tx = repo.transaction();
        tx.put("d", "b", "2").put("d", "conflict", "ours");
        let ours = tx.commit().unwrap();
        after(&repo, &ours);
        let mut tx = repo.transaction();
        tx.put("d", "c", "3")
            .put("d", "conflict", "theirs")
            .delete("d", "a")
            .replaces(std::slice::from_ref(&base));
        let theirs = tx.commit().unwrap();
        assert!(matches!(
            repo.merge(&[]).commit(),
            Err(Error::Conflict { rows }) if rows.len() == 1
        ));
        let mut tx = repo.merge(&[ours.clone(), theirs.clone()]);
        tx.policy(MergePolicy::Ours);
        merged = tx.commit().unwrap();
        let links = repo.graph().get(&merged).unwrap().links;
        assert_eq!(links, vec![ours.to_string(), theirs.to_string()]);
        check_merge(&repo, &merged);
        // Another device that receives everything reads the same.
        let other = common::repo();
        common::sync(&repo, &other);
        check_merge(&other, &merged);
    }
    let repo = Repository::open(dir.path()).unwrap();
    check_merge(&repo, &merged);
    // Writes after the reopen continue from the merge and keep both sides.
    let next = repo.put("d", "d", "4").unwrap();
    assert_eq!(
        repo.graph().get(&next).unwrap().links,
        vec![merged.to_string()]
    );
    assert_eq!(
        keys(&repo.latest().unwrap(), "d", Range::all()),
        vec!["b", "c", "conflict", "d"]
    );
}

fn check_merge(repo: &Repository, merged: &Version) {
    assert_eq!(repo.heads().unwrap(), vec![merged.clone()]);
    for view in [repo.at(merged).unwrap(), repo.latest().unwrap()] {
        assert_eq!(text(&view, "a"), None, "their delete is kept");
        assert_eq!(text(&view, "b").as_deref(), Some("2"));
        assert_eq!(text(&view, "c").as_deref(), Some("3"));
        assert_eq!(text(&view, "conflict").as_deref(), Some("ours"));
        assert!(!view.get("d", "conflict").unwrap().unwrap().forked);
        assert_eq!(keys(&view, "d", Range::all()), vec!["b", "c", "conflict"]);
    }
    assert_eq!(repo.status().unwrap().rows, 3);
}

/// A merge of explicit resolutions needs no policy; a merge with a single head is refused.
#[test]
fn merge_with_own_resolution_and_nothing_to_merge() {
    let repo = repo();
    let base = repo.put("d", "k", "base").unwrap();
    assert!(matches!(
        repo.merge(&[]).commit(),
        Err(Error::InvalidArgument(_))
    ));
    let ours = repo.put("d", "k", "ours").unwrap();
    let theirs = common::put_replacing(&repo, &base, "d", "k", "theirs");
    let mut tx = repo.merge(&[]);
    tx.put("d", "k", "settled");
    let merged = tx.commit().unwrap();
    let mut links = repo.graph().get(&merged).unwrap().links;
    links.sort();
    let mut expected = vec![ours.to_string(), theirs.to_string()];
    expected.sort();
    assert_eq!(links, expected);
    let row = repo.get("d", "k").unwrap().unwrap();
    assert_eq!(
        (row.value.as_slice(), row.version.as_str()),
        (&b"settled"[..], merged.as_str())
    );
    assert!(!row.forked);
    // After reading at a GraphOptions-default in-memory clone the result is the same.
    let other = Repository::in_memory().unwrap();
    common::sync(&repo, &other);
    assert_eq!(value(&other, "d", "k").as_deref(), Some("settled"));
}

/// Three heads: the row changed to different values on the second and third heads (not
/// on the first) is a conflict like any other, so a merge of all three without a policy
/// must refuse it, as it does for two heads.
#[test]
fn three_head_merge_reports_a_conflict_between_other_heads() {
    let repo = repo();
    let base = repo.put("d", "x", "base").unwrap();
    let first = repo.put("d", "unrelated", "1").unwrap();
    let second = common::put_replacing(&repo, &base, "d", "x", "one");
    after(&repo, &second);
    let third = common::put_replacing(&repo, &base, "d", "x", "two");
    assert_eq!(repo.heads().unwrap().len(), 3);
    let count = repo.graph().change_count();
    let result = repo.merge(&[first, second, third]).commit();
    assert!(
        matches!(&result, Err(Error::Conflict { rows }) if rows.len() == 1),
        "{result:?}"
    );
    assert_eq!(repo.graph().change_count(), count, "nothing written");
}

/// Three heads that all changed a row: the `Newest` policy takes the newest of all three
/// (what a read at latest shows), not the newest of the first two.
#[test]
fn three_head_merge_newest_takes_the_newest_of_all() {
    let repo = repo();
    let base = repo.put("d", "x", "base").unwrap();
    let first = repo.put("d", "x", "zero").unwrap();
    let second = common::put_replacing(&repo, &base, "d", "x", "one");
    after(&repo, &second);
    let third = common::put_replacing(&repo, &base, "d", "x", "two");
    assert_eq!(repo.get("d", "x").unwrap().unwrap().value, b"two");
    let mut tx = repo.merge(&[first, second, third]);
    tx.policy(MergePolicy::Newest);
    let merged = tx.commit().unwrap();
    let row = repo.at(&merged).unwrap().get("d", "x").unwrap().unwrap();
    assert_eq!(row.value, b"two");
}

/// Three heads, clocks skewed: the base was written by a device whose clock runs ahead.
/// Two heads changed a row; the first head did not. `Newest` settles the conflict between
/// the two changes, as a read at latest does: the unchanged first head's (older, but
/// later-stamped) base value is not one of the conflicting versions.
#[test]
fn three_head_merge_newest_ignores_an_unchanged_head() {
    let repo = repo();
    let base = commit_at(&repo, &[], 1_000_000, &[("d", "x", Some("base"))]);
    let first = commit_at(&repo, &[&base], 1_000_001, &[("d", "y", Some("1"))]);
    let second = commit_at(&repo, &[&base], 500_000, &[("d", "x", Some("one"))]);
    let third = commit_at(&repo, &[&base], 600_000, &[("d", "x", Some("two"))]);
    assert_eq!(repo.heads().unwrap().len(), 3);
    let latest = repo.get("d", "x").unwrap().unwrap();
    assert!(latest.forked);
    assert_eq!(
        latest.value, b"two",
        "latest reads the newest of the two edits"
    );
    let mut tx = repo.merge(&[first, second, third]);
    tx.policy(MergePolicy::Newest);
    let merged = tx.commit().unwrap();
    let row = repo.at(&merged).unwrap().get("d", "x").unwrap().unwrap();
    assert_eq!(row.value, b"two", "the merge keeps one of the edits");
}
