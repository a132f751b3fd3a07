//! Unusual row keys and dataset names: `!` (D1), `\xff` and high bytes (D2), `\x00`,
//! unicode and arbitrary binary. Each round-trips through put, get, range, history, diff
//! and forks; range bounds around them are exact; and a dataset named like a prefix of
//! another (`a` / `a\x00` / `ab`) never leaks rows into the other. The empty string is
//! the one name refused, as a dataset name and as a row key, by every write.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{after, repo, rows};
use proptest::prelude::*;
use strata::{Range, Repository};

fn odd_names() -> Vec<Vec<u8>> {
    vec![
        b"!".to_vec(),
        b"!!".to_vec(),
        b"a!b".to_vec(),
        b"a".to_vec(),
        b"a\x00".to_vec(),
        b"a\x00\x00".to_vec(),
        b"a\x00\x01".to_vec(),
        b"a\x00\xff".to_vec(),
        b"a\x01".to_vec(),
        b"ab".to_vec(),
        b"\x00".to_vec(),
        b"\x00\x00".to_vec(),
        b"\x00\x01".to_vec(),
        b"\x00\xff".to_vec(),
        b"\x01".to_vec(),
        b"\xff".to_vec(),
        b"\xff\xff".to_vec(),
        b"\xff\x00".to_vec(),
        b"\xc4".to_vec(),
        "ÿ".as_bytes().to_vec(),
        "日本語".as_bytes().to_vec(),
        "emoji 🦀".as_bytes().to_vec(),
        vec![0xc3, 0x28], // invalid UTF-8
        (0u8..=255).collect(),
    ]
}

fn value_of(dataset: &[u8], key: &[u8]) -> Vec<u8> {
    let mut v = b"value:".to_vec();
    v.extend_from_slice(dataset);
    v.push(b'|');
    v.extend_from_slice(key);
    v
}

fn range_keys(view: &strata::View, dataset: &[u8], range: Range) -> Vec<Vec<u8>> {
    rows(view, dataset, range)
        .into_iter()
        .map(|r| r.key)
        .collect()
}

/// Every odd name as a dataset, with every odd name as a key: all read back exactly, in
/// byte order, and datasets never leak into each other.
#[test]
fn odd_keys_and_datasets_round_trip() {
    let repo = repo();
    let names = odd_names();
    let mut tx = repo.transaction();
    for dataset in &names {
        for key in &names {
            tx.put(dataset, key, value_of(dataset, key));
        }
    }
    let version = tx.commit().unwrap();
    let mut sorted = names.clone();
    sorted.sort();
    let latest = repo.latest().unwrap();
    assert_eq!(latest.datasets().unwrap(), sorted);
    for dataset in &names {
        let got = rows(&latest, dataset, Range::all());
        let got_keys: Vec<Vec<u8>> = got.iter().map(|r| r.key.clone()).collect();
        assert_eq!(got_keys, sorted, "dataset {dataset:?}");
        for row in &got {
            assert_eq!(row.dataset, *dataset);
            assert_eq!(row.value, value_of(dataset, &row.key));
            assert_eq!(row.version, version);
        }
        for key in &names {
            let row = repo.get(dataset, key).unwrap().expect("row");
            assert_eq!(row.value, value_of(dataset, key));
            assert_eq!((&row.dataset, &row.key), (dataset, key));
        }
    }
    // A dataset or key that is a prefix or extension of an existing one is empty.
    for missing in [&b"a\x00\x00\x00"[..], b"b", b"\xff\xff\xff", b"!!!", b"a!"] {
        assert!(
            rows(&latest, missing, Range::all()).is_empty(),
            "{missing:?}"
        );
        assert_eq!(repo.get(missing, b"a").unwrap(), None);
        assert_eq!(repo.get(b"a", missing).unwrap(), None);
    }
}

/// Datasets `a`, `a\x00`, `ab` (and keys likewise): rows, deletes and bounds stay in their
/// own dataset.
#[test]
fn prefix_datasets_never_leak() {
    let repo = repo();
    // `\x00` is the lowest name there is (the empty one is refused): as a dataset it
    // sorts before the others, as a key before `k`.
    let datasets: [&[u8]; 5] = [b"a", b"a\x00", b"ab", b"a\x00b", b"\x00"];
    for (i, dataset) in datasets.iter().enumerate() {
        let mut tx = repo.transaction();
        for key in [&b"k"[..], b"k\x00", b"kk", b"\x00"] {
            tx.put(dataset, key, [i as u8]);
        }
        tx.commit().unwrap();
    }
    repo.delete(b"a\x00", b"k").unwrap();
    repo.delete(b"a", b"\x00").unwrap();
    let latest = repo.latest().unwrap();
    for (i, dataset) in datasets.iter().enumerate() {
        let got = rows(&latest, dataset, Range::all());
        let expected: Vec<&[u8]> = match *dataset {
            b"a\x00" => vec![b"\x00", b"k\x00", b"kk"],
            b"a" => vec![b"k", b"k\x00", b"kk"],
            _ => vec![b"\x00", b"k", b"k\x00", b"kk"],
        };
        assert_eq!(
            got.iter().map(|r| r.key.as_slice()).collect::<Vec<_>>(),
            expected,
            "{dataset:?}"
        );
        assert!(got.iter().all(|r| r.value == [i as u8]), "{dataset:?}");
        // Bounds exactly at the odd keys.
        assert_eq!(
            range_keys(
                &latest,
                dataset,
                Range::all().gt(b"k".to_vec()).lt(b"kk".to_vec())
            ),
            vec![b"k\x00".to_vec()]
        );
        assert_eq!(
            range_keys(
                &latest,
                dataset,
                Range::all().gte(b"k\x00".to_vec()).lte(b"k\x00".to_vec())
            ),
            vec![b"k\x00".to_vec()]
        );
        let below_k = range_keys(&latest, dataset, Range::all().lt(b"k".to_vec()));
        assert_eq!(below_k.len(), usize::from(expected.contains(&&b"\x00"[..])));
    }
    assert_eq!(repo.history(b"a\x00", b"k").unwrap().len(), 2);
    assert_eq!(repo.history(b"a", b"k").unwrap().len(), 1);
    assert_eq!(repo.history(b"ab", b"k").unwrap().len(), 1);
    assert_eq!(repo.history(b"a\x00b", b"\x00").unwrap().len(), 1);
    assert!(repo.history(b"a\x00\x00", b"k").unwrap().is_empty());
}

/// The empty string is not a dataset name nor a row key: every write refuses it and
/// writes nothing, alone or among valid operations.
#[test]
fn empty_dataset_names_and_keys_are_refused() {
    let repo = repo();
    repo.put("d", "k", "v").unwrap();
    let changes = repo.graph().change_count();
    let refused = |result: strata::Result<strata::Version>| {
        matches!(result, Err(strata::Error::InvalidArgument(_)))
    };
    assert!(refused(repo.put("", "k", "v")));
    assert!(refused(repo.put("d", "", "v")));
    assert!(refused(repo.put("", "", "v")));
    // `delete` looks the row up first, so an empty name is a row that is not there.
    assert!(matches!(
        repo.delete("", "k"),
        Err(strata::Error::RowNotFound { .. } | strata::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        repo.delete("d", ""),
        Err(strata::Error::RowNotFound { .. } | strata::Error::InvalidArgument(_))
    ));
    assert!(refused(repo.transaction().delete("d", "").commit()));
    assert!(refused(
        repo.transaction()
            .put("d", "ok", "v")
            .put("", "k", "v")
            .commit()
    ));
    assert!(refused(
        repo.transaction()
            .put("d", "ok", "v")
            .delete("d", "")
            .commit()
    ));
    assert!(refused(repo.put_file("", "f", &mut &b"bytes"[..])));
    assert!(refused(repo.put_file("d", "", &mut &b"bytes"[..])));
    let import = |dataset: &str, key: &str| {
        repo.import(
            dataset,
            [Ok((key.as_bytes().to_vec(), b"v".to_vec()))],
            10,
            None,
        )
    };
    assert!(matches!(
        import("", "k"),
        Err(strata::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        import("d", ""),
        Err(strata::Error::InvalidArgument(_))
    ));
    assert_eq!(repo.graph().change_count(), changes, "nothing written");
    assert_eq!(repo.get("d", "ok").unwrap(), None);
    assert_eq!(
        repo.latest().unwrap().datasets().unwrap(),
        vec![b"d".to_vec()]
    );
    assert!(repo.fsck(&mut |_, _| {}).unwrap().is_ok());
}

/// Odd keys through history, diff and forks: a fork on two heads for each odd key in an
/// odd dataset, then a diff of the heads and a merge.
#[test]
fn odd_keys_through_history_diff_and_forks() {
    let repo = repo();
    let names = odd_names();
    let dataset: &[u8] = b"d!\xff\x00";
    let mut tx = repo.transaction();
    for key in &names {
        tx.put(dataset, key, b"base");
    }
    let base = tx.commit().unwrap();
    let mut tx = repo.transaction();
    for key in &names {
        tx.put(dataset, key, [b"left:".as_slice(), key].concat());
    }
    let left = tx.commit().unwrap();
    after(&repo, &left);
    let mut tx = repo.transaction();
    for (i, key) in names.iter().enumerate() {
        if i % 2 == 0 {
            tx.delete(dataset, key);
        } else {
            tx.put(dataset, key, [b"right:".as_slice(), key].concat());
        }
    }
    tx.replaces(std::slice::from_ref(&base));
    let right = tx.commit().unwrap();
    let mut sorted = names.clone();
    sorted.sort();
    for (i, key) in names.iter().enumerate() {
        let history = repo.history(dataset, key).unwrap();
        let versions: Vec<&str> = history.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(
            versions,
            vec![right.as_str(), left.as_str(), base.as_str()],
            "{key:?}"
        );
        assert_eq!(history[0].deleted, i % 2 == 0);
        let row = repo.get(dataset, key).unwrap();
        let forks = repo.forks(dataset, key).unwrap();
        assert_eq!(forks.len(), 2, "{key:?}");
        assert_eq!(forks[0].version, right);
        assert_eq!(forks[1].value, [b"left:".as_slice(), key].concat());
        if i % 2 == 0 {
            assert_eq!(row, None, "the newest version is the delete");
        } else {
            let row = row.unwrap();
            assert!(row.forked);
            assert_eq!(row.value, [b"right:".as_slice(), key].concat());
        }
    }
    let diff: Vec<_> = repo
        .diff(&left, &right)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(
        diff.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        sorted
    );
    assert!(diff.iter().all(|e| e.dataset == dataset));
    for entry in &diff {
        let i = names.iter().position(|k| *k == entry.key).unwrap();
        assert_eq!(
            entry.old.as_ref().unwrap().value,
            [b"left:".as_slice(), &entry.key].concat()
        );
        assert_eq!(entry.new.as_ref().unwrap().deleted, i % 2 == 0);
    }
    // Latest lists the odd keys whose newest version is live, in order.
    let live: Vec<Vec<u8>> = range_keys(&repo.latest().unwrap(), dataset, Range::all());
    let mut expected: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, k)| k.clone())
        .collect();
    expected.sort();
    assert_eq!(live, expected);
    // A merge taking "ours" (left) resolves every fork.
    let mut tx = repo.merge(&[left.clone(), right.clone()]);
    tx.policy(strata::MergePolicy::Ours);
    let merged = tx.commit().unwrap();
    let view = repo.at(&merged).unwrap();
    assert_eq!(range_keys(&view, dataset, Range::all()), sorted);
    for key in &names {
        let row = repo.get(dataset, key).unwrap().unwrap();
        assert!(!row.forked);
        assert_eq!(row.value, [b"left:".as_slice(), key].concat());
    }
    // And the same after replication to another repository.
    let other = repo_clone(&repo);
    for key in &names {
        assert_eq!(
            other.get(dataset, key).unwrap().unwrap().value,
            [b"left:".as_slice(), key].concat()
        );
    }
}

fn repo_clone(repo: &Repository) -> Repository {
    let other = common::repo();
    common::sync(repo, &other);
    other
}

/// Odd names survive a reopen from disk.
#[test]
fn odd_keys_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let names = odd_names();
    {
        let repo = Repository::init(dir.path()).unwrap();
        let mut tx = repo.transaction();
        for name in &names {
            tx.put(name, name, value_of(name, name));
        }
        tx.commit().unwrap();
    }
    let repo = Repository::open(dir.path()).unwrap();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(repo.latest().unwrap().datasets().unwrap(), sorted);
    for name in &names {
        assert_eq!(
            repo.get(name, name).unwrap().unwrap().value,
            value_of(name, name)
        );
        assert_eq!(
            range_keys(&repo.latest().unwrap(), name, Range::all()),
            vec![name.clone()]
        );
    }
}

/// A row: (dataset, key).
type Row = (Vec<u8>, Vec<u8>);

fn in_bounds(key: &[u8], start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    let above = match start {
        Bound::Unbounded => true,
        Bound::Included(s) => key >= s.as_slice(),
        Bound::Excluded(s) => key > s.as_slice(),
    };
    let below = match end {
        Bound::Unbounded => true,
        Bound::Included(e) => key <= e.as_slice(),
        Bound::Excluded(e) => key < e.as_slice(),
    };
    above && below
}

/// Bytes that stress the key encoding: mostly 0x00, 0x01, 0xff, `!` and a few letters.
fn odd_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    odd_bytes_from(0, max)
}

/// A dataset name or row key: odd bytes, never empty.
fn odd_name(max: usize) -> impl Strategy<Value = Vec<u8>> {
    odd_bytes_from(1, max)
}

fn odd_bytes_from(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(0x00u8),
            Just(0x01),
            Just(0xff),
            Just(0xfe),
            Just(b'!'),
            Just(b'a'),
            any::<u8>()
        ],
        min..max,
    )
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        odd_bytes(4).prop_map(Bound::Included),
        odd_bytes(4).prop_map(Bound::Excluded),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary binary datasets and keys, puts and deletes over two commits: get,
    /// datasets and every range read equal a BTreeMap model.
    #[test]
    fn binary_keys_match_a_map(
        writes in prop::collection::vec((odd_name(3), odd_name(5), prop::option::of(odd_bytes(3))), 1..40),
        ranges in prop::collection::vec((bound(), bound(), prop::option::of(0usize..5)), 1..8),
    ) {
        let repo = repo();
        let mut model: BTreeMap<Row, Vec<u8>> = BTreeMap::new();
        let half = writes.len() / 2;
        for chunk in [&writes[..half], &writes[half..]] {
            if chunk.is_empty() {
                continue;
            }
            let mut tx = repo.transaction();
            let mut last: BTreeMap<Row, Option<Vec<u8>>> = BTreeMap::new();
            for (dataset, key, value) in chunk {
                match value {
                    Some(value) => tx.put(dataset, key, value),
                    None => tx.delete(dataset, key),
                };
                last.insert((dataset.clone(), key.clone()), value.clone());
            }
            tx.commit().unwrap();
            // The last operation on a row in one commit wins.
            for (row, value) in last {
                match value {
                    Some(value) => model.insert(row, value),
                    None => model.remove(&row),
                };
            }
        }
        let latest = repo.latest().unwrap();
        let datasets: std::collections::BTreeSet<Vec<u8>> = writes.iter().map(|w| w.0.clone()).collect();
        let live: Vec<Vec<u8>> = datasets
            .iter()
            .filter(|d| model.keys().any(|(md, _)| md == *d))
            .cloned()
            .collect();
        prop_assert_eq!(latest.datasets().unwrap(), live);
        for (dataset, key, _) in &writes {
            let got = latest.get(dataset, key).unwrap().map(|r| r.value);
            prop_assert_eq!(got, model.get(&(dataset.clone(), key.clone())).cloned());
        }
        for dataset in &datasets {
            let all: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter(|((d, _), _)| d == dataset)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            for (start, end, limit) in &ranges {
                let mut range = Range::all();
                range.start = start.clone();
                range.end = end.clone();
                range.limit = *limit;
                let got: Vec<(Vec<u8>, Vec<u8>)> = rows(&latest, dataset, range)
                    .into_iter()
                    .map(|r| (r.key, r.value))
                    .collect();
                let expected: Vec<(Vec<u8>, Vec<u8>)> = all
                    .iter()
                    .filter(|(k, _)| in_bounds(k, start, end))
                    .take(limit.unwrap_or(usize::MAX))
                    .cloned()
                    .collect();
                prop_assert_eq!(got, expected, "dataset {:?} range {:?}..{:?}", dataset, start, end);
            }
        }
    }
}
