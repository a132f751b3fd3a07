//! dat-core 6.0.2 `test/diff.js` (spec §9.2, case 13), ported: `repo.diff(a, b)` yields
//! one `DiffEntry` per differing row, in (dataset, key) order, with the row's version at
//! `a` (`old`) and at `b` (`new`). Plus the fixes of D6/D7: diff and get around deletes
//! never fail, and a delete shows as a version with `deleted == true`.

mod common;

use common::{after, repo};
use strata::{DiffEntry, Repository, Version};

fn entries(repo: &Repository, a: &Version, b: &Version) -> Vec<DiffEntry> {
    repo.diff(a, b)
        .unwrap()
        .collect::<strata::Result<Vec<_>>>()
        .unwrap()
}

/// (key, old value or "<del>" / "-", new value or "<del>" / "-").
fn summary(entries: &[DiffEntry]) -> Vec<(String, String, String)> {
    let side = |v: &Option<strata::RowVersion>| match v {
        None => "-".to_string(),
        Some(v) if v.deleted => "<del>".to_string(),
        Some(v) => String::from_utf8(v.value.clone()).unwrap(),
    };
    entries
        .iter()
        .map(|e| {
            (
                format!(
                    "{}/{}",
                    String::from_utf8_lossy(&e.dataset),
                    String::from_utf8_lossy(&e.key)
                ),
                side(&e.old),
                side(&e.new),
            )
        })
        .collect()
}

fn s(key: &str, old: &str, new: &str) -> (String, String, String) {
    (key.to_string(), old.to_string(), new.to_string())
}

/// §9.2 case 13, `diff`: world then welt; the diff of the two heads is exactly one pair,
/// put hello world → put hello welt.
#[test]
fn diff() {
    let repo = repo();
    let old = repo.put("d", "hello", "world").unwrap();
    let new = repo.put("d", "hello", "welt").unwrap();
    let found = entries(&repo, &old, &new);
    assert_eq!(found.len(), 1);
    let entry = &found[0];
    assert_eq!(
        (entry.dataset.as_slice(), entry.key.as_slice()),
        (&b"d"[..], &b"hello"[..])
    );
    let (a, b) = (entry.old.as_ref().unwrap(), entry.new.as_ref().unwrap());
    assert_eq!(
        (a.value.as_slice(), a.deleted, a.version.as_str()),
        (&b"world"[..], false, old.as_str())
    );
    assert_eq!(
        (b.value.as_slice(), b.deleted, b.version.as_str()),
        (&b"welt"[..], false, new.as_str())
    );
    // The other way round swaps the sides; a version against itself is empty.
    let back = entries(&repo, &new, &old);
    assert_eq!(summary(&back), vec![s("d/hello", "welt", "world")]);
    assert!(entries(&repo, &new, &new).is_empty());
    // Prefixes work as versions.
    let (a, b) = (repo.resolve(&old[..8]), repo.resolve(&new[..9]));
    assert_eq!(entries(&repo, &a.unwrap(), &b.unwrap()).len(), 1);
}

/// D6/D7: the original crashed comparing or formatting a delete. Every combination of
/// put, delete and absence diffs cleanly; deletes show as `deleted` versions; rows that
/// are absent or deleted on both sides do not differ.
#[test]
fn diff_and_get_around_deletes() {
    let repo = repo();
    let mut tx = repo.transaction();
    tx.put("d", "kept", "1")
        .put("d", "changed", "1")
        .put("d", "deleted", "1")
        .put("d", "recreated", "1")
        .delete("d", "tomb");
    let a = tx.commit().unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "changed", "2")
        .delete("d", "deleted")
        .delete("d", "recreated")
        .put("d", "added", "2")
        .delete("d", "never")
        .put("d", "tomb", "alive");
    tx.commit().unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "recreated", "3").delete("d", "added");
    let b = tx.commit().unwrap();
    let found = entries(&repo, &a, &b);
    assert_eq!(
        summary(&found),
        vec![
            s("d/changed", "1", "2"),
            s("d/deleted", "1", "<del>"),
            s("d/recreated", "1", "3"),
            s("d/tomb", "<del>", "alive"),
        ],
        "added-then-deleted and never-existing rows do not differ"
    );
    assert_eq!(
        summary(&entries(&repo, &b, &a)),
        vec![
            s("d/changed", "2", "1"),
            s("d/deleted", "<del>", "1"),
            s("d/recreated", "3", "1"),
            s("d/tomb", "alive", "<del>"),
        ]
    );
    // Get of deleted rows at every version is Ok(None), never an error.
    for version in [&a, &b] {
        let view = repo.at(version).unwrap();
        for key in ["deleted", "never", "tomb", "added", "missing"] {
            let row = view.get("d", key).unwrap();
            if let Some(row) = row {
                assert!(!row.value.is_empty(), "{key} at {version}");
            }
        }
    }
    assert_eq!(repo.get("d", "deleted").unwrap(), None);
    assert_eq!(repo.get("d", "added").unwrap(), None);
    // A diff from a put to a delete of the only row, and from the empty root side.
    let only = common::repo();
    let put = only.put("d", "x", "v").unwrap();
    let del = only.delete("d", "x").unwrap();
    assert_eq!(
        summary(&entries(&only, &put, &del)),
        vec![s("d/x", "v", "<del>")]
    );
    let entry = &entries(&only, &put, &del)[0];
    assert_eq!(entry.new.as_ref().unwrap().version, del);
    assert!(entry.new.as_ref().unwrap().value.is_empty());
}

/// Diff across a fork compares only what changed since the common ancestor, in
/// (dataset, key) order, and can be limited to one dataset.
#[test]
fn diff_between_forks_and_datasets() {
    let repo = repo();
    let mut tx = repo.transaction();
    tx.put("b", "shared", "0").put("a", "shared", "0");
    let base = tx.commit().unwrap();
    let mut tx = repo.transaction();
    tx.put("b", "k", "left")
        .put("a", "left-only", "l")
        .delete("a", "shared");
    let left = tx.commit().unwrap();
    after(&repo, &left);
    let mut tx = repo.transaction();
    tx.put("b", "k", "right")
        .put("d", "right-only", "r")
        .replaces(std::slice::from_ref(&base));
    let right = tx.commit().unwrap();
    assert_eq!(
        summary(&entries(&repo, &left, &right)),
        vec![
            s("a/left-only", "l", "-"),
            s("a/shared", "<del>", "0"),
            s("b/k", "left", "right"),
            s("d/right-only", "-", "r"),
        ]
    );
    let only_b: Vec<DiffEntry> = repo
        .diff(&left, &right)
        .unwrap()
        .dataset("b")
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(summary(&only_b), vec![s("b/k", "left", "right")]);
    // Against the merge, each side sees the other's changes.
    let mut tx = repo.merge(&[left.clone(), right.clone()]);
    tx.policy(strata::MergePolicy::Newest);
    let merged = tx.commit().unwrap();
    assert_eq!(
        summary(&entries(&repo, &left, &merged)),
        vec![s("b/k", "left", "right"), s("d/right-only", "-", "r")]
    );
    assert_eq!(
        summary(&entries(&repo, &right, &merged)),
        vec![s("a/left-only", "-", "l"), s("a/shared", "0", "<del>")]
    );
}

/// Two repositories with unrelated roots, brought together: the diff of their heads
/// lists every row of both.
#[test]
fn diff_of_unrelated_histories() {
    let x = repo();
    let y = repo();
    let vx = x.put("d", "from-x", "1").unwrap();
    let mut tx = y.transaction();
    tx.put("d", "from-y", "2").put("d", "both", "y");
    let vy = tx.commit().unwrap();
    x.put("d", "both", "x").unwrap();
    common::sync(&y, &x);
    let hx = x.heads().unwrap().into_iter().find(|h| *h != vy).unwrap();
    assert_ne!(hx, vx);
    assert_eq!(
        summary(&entries(&x, &hx, &vy)),
        vec![
            s("d/both", "x", "y"),
            s("d/from-x", "1", "-"),
            s("d/from-y", "-", "2")
        ]
    );
}
