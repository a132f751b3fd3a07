//! dat-core 6.0.2 `test/dataset.js` (spec §9.2, cases 11–12), ported: a dataset is the
//! first argument of every read and write (the original's default dataset `""` is `"d"`
//! here: dataset names cannot be empty); a write stream
//! is `repo.import`. Plus the fix of D12: status counts live rows, not operations, and
//! `datasets()` lists only datasets with a live row in the view.

mod common;

use common::{keys, repo};
use strata::Range;

fn import(
    repo: &strata::Repository,
    dataset: &str,
    rows: &[(&str, &str)],
    batch: usize,
) -> Vec<strata::Version> {
    repo.import(
        dataset,
        rows.iter()
            .map(|(k, v)| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec()))),
        batch,
        None,
    )
    .unwrap()
}

/// §9.2 case 11, `opens` (through a dataset): a fresh repository's datasets are empty.
#[test]
fn opens() {
    let repo = repo();
    let latest = repo.latest().unwrap();
    assert!(latest.datasets().unwrap().is_empty());
    assert!(keys(&latest, "test", Range::all()).is_empty());
    assert_eq!(repo.get("test", "a").unwrap(), None);
}

/// §9.2 case 12, `write to dataset`: a write stream with batch size 2 into dataset `test`
/// writes a, b, c; the key stream of `no-exist` is empty and that of `test` is a, b, c.
/// (The original's batch size counts bytes; strata's counts rows, so 3 rows are 2
/// commits.)
#[test]
fn write_to_dataset() {
    let repo = repo();
    let versions = import(&repo, "test", &[("a", "a"), ("b", "b"), ("c", "c")], 2);
    assert_eq!(versions.len(), 2);
    let latest = repo.latest().unwrap();
    assert!(keys(&latest, "no-exist", Range::all()).is_empty());
    assert_eq!(keys(&latest, "test", Range::all()), vec!["a", "b", "c"]);
    // The default dataset is separate.
    assert!(keys(&latest, "d", Range::all()).is_empty());
    assert_eq!(repo.get("d", "a").unwrap(), None);
    assert_eq!(latest.datasets().unwrap(), vec![b"test".to_vec()]);
    // Each commit carries its rows.
    assert_eq!(repo.get("test", "a").unwrap().unwrap().version, versions[0]);
    assert_eq!(repo.get("test", "c").unwrap().unwrap().version, versions[1]);
}

/// Datasets do not leak into each other, including the default one.
#[test]
fn datasets_are_separate_namespaces() {
    let repo = repo();
    repo.put("d", "k", "default").unwrap();
    repo.put("one", "k", "one").unwrap();
    repo.put("two", "k", "two").unwrap();
    repo.delete("two", "k").unwrap();
    for (dataset, expected) in [("d", Some("default")), ("one", Some("one")), ("two", None)] {
        let row = repo.get(dataset, "k").unwrap();
        assert_eq!(
            row.as_ref().map(|r| r.value.as_slice()),
            expected.map(str::as_bytes)
        );
        if let Some(row) = row {
            assert_eq!(row.dataset, dataset.as_bytes());
        }
    }
    assert_eq!(
        repo.latest().unwrap().datasets().unwrap(),
        vec![b"d".to_vec(), b"one".to_vec()]
    );
}

/// D12: status counts live rows (a put then a delete is 0, an overwrite is 1), not
/// operations; datasets whose rows are all deleted are not listed, but are at an older
/// version where they had rows.
#[test]
fn status_counts_live_rows_and_datasets_omit_emptied_ones() {
    let repo = repo();
    let mut tx = repo.transaction();
    tx.put("a", "1", "x").put("a", "2", "x").put("b", "1", "x");
    let three = tx.commit().unwrap();
    repo.put("a", "1", "overwritten").unwrap();
    repo.delete("a", "2").unwrap();
    // Deleting a row that does not exist is refused; a transaction's delete writes a
    // tombstone, which is no live row either.
    assert!(matches!(
        repo.delete("a", "never"),
        Err(strata::Error::RowNotFound { .. })
    ));
    repo.transaction().delete("a", "never").commit().unwrap();
    let status = repo.status().unwrap();
    assert_eq!(status.rows, 2, "a/1 and b/1 are live: {status:?}");
    assert_eq!(status.files, 0);
    assert_eq!(status.heads, 1);
    let emptied = repo.delete("b", "1").unwrap();
    assert_eq!(repo.status().unwrap().rows, 1);
    let latest = repo.latest().unwrap();
    assert_eq!(latest.datasets().unwrap(), vec![b"a".to_vec()]);
    // At the batch, both datasets have rows.
    let old = repo.at(&three).unwrap();
    assert_eq!(old.datasets().unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(old.status().rows, 3);
    assert_eq!(repo.at(&emptied).unwrap().status().rows, 1);
    // Putting a row back brings the dataset back.
    repo.put("b", "2", "back").unwrap();
    assert_eq!(
        repo.latest().unwrap().datasets().unwrap(),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(repo.status().unwrap().rows, 2);
    // Commits count versions, not operations.
    assert_eq!(repo.status().unwrap().versions, 6);
}

/// Status at latest with a fork counts each live row once: a row added on two heads is
/// one row, a row deleted on one head and kept on another follows the read.
#[test]
fn status_at_latest_with_forks_counts_each_row_once() {
    let repo = repo();
    let base = repo.put("d", "x", "base").unwrap();
    repo.put("d", "y", "1").unwrap();
    let mut tx = repo.transaction();
    tx.put("d", "y", "2").replaces(std::slice::from_ref(&base));
    tx.commit().unwrap();
    let live = common::rows(&repo.latest().unwrap(), "d", Range::all()).len();
    assert_eq!(live, 2);
    assert_eq!(repo.status().unwrap().rows, live as u64);
}
