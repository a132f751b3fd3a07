//! A merge too large for one write is written in pages: the same commit as a merge written
//! whole. Two repositories hold the same history (commits written by hand at fixed times, so
//! their ids agree); one merges whole, the other in pages of various sizes, and the merges
//! must write the same operations in the same order, read the same, count the same, and
//! refuse the same conflicts; their previews and dry runs must agree beforehand.

mod common;

use std::collections::BTreeMap;

use common::commit_at;
use strata::{Commit, Error, MergePolicy, Range, Repository, Version};

/// Every row of every dataset a version reads: (dataset, key) → value.
fn content(repo: &Repository, version: &Version) -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let view = repo.at(version).expect("at");
    let mut rows = BTreeMap::new();
    for dataset in view.datasets().expect("datasets") {
        for row in view.range(&dataset, Range::all()) {
            let row = row.expect("row");
            rows.insert((dataset.clone(), row.key), row.value);
        }
    }
    rows
}

/// A base of 60 rows in "a" and 20 in "b", then three heads written on it concurrently:
/// overlapping puts (some with equal values), deletes (one on both sides), a dataset only
/// one head has. Returns the heads, newest first.
fn history(repo: &Repository) -> Vec<Version> {
    let base_rows: Vec<(String, String, String)> = (0..60)
        .map(|i| ("a".to_string(), format!("k{i:02}"), format!("base{i}")))
        .chain((0..20).map(|i| ("b".to_string(), format!("x{i:02}"), format!("base{i}"))))
        .collect();
    let write = |links: &[&Version], time: u64, list: Vec<(String, String, Option<String>)>| {
        let borrowed: Vec<(&str, &str, Option<&str>)> = list
            .iter()
            .map(|(d, k, v)| (d.as_str(), k.as_str(), v.as_deref()))
            .collect();
        commit_at(repo, links, time, &borrowed)
    };
    let base = write(
        &[],
        1_000,
        base_rows
            .into_iter()
            .map(|(d, k, v)| (d, k, Some(v)))
            .collect(),
    );
    let mut one = Vec::new();
    for i in 0..20 {
        one.push(("a".into(), format!("k{i:02}"), Some(format!("one{i}"))));
    }
    for i in 40..46 {
        one.push(("a".into(), format!("k{i:02}"), None));
    }
    one.push(("b".into(), "x03".into(), Some("one".into())));
    let mut two = Vec::new();
    for i in 10..30 {
        // Rows 10..14 get the value head one gave them: forked, with equal content.
        let value = if i < 15 {
            format!("one{i}")
        } else {
            format!("two{i}")
        };
        two.push(("a".into(), format!("k{i:02}"), Some(value)));
    }
    two.push(("a".into(), "k42".into(), None));
    two.push(("a".into(), "k44".into(), Some("two".into())));
    let mut three = Vec::new();
    three.push(("a".into(), "k15".into(), Some("three".into())));
    three.push(("b".into(), "x03".into(), None));
    for i in 0..8 {
        three.push(("c".into(), format!("c{i}"), Some(format!("three{i}"))));
    }
    let one = write(&[&base], 2_000, one);
    let two = write(&[&base], 3_000, two);
    let three = write(&[&base], 2_500, three);
    vec![two, three, one]
}

/// Two repositories with the same history.
fn twins() -> (Repository, Repository, Vec<Version>) {
    let whole = Repository::in_memory().expect("repository");
    let paged = Repository::in_memory().expect("repository");
    let heads = history(&whole);
    assert_eq!(history(&paged), heads, "the same history has the same ids");
    (whole, paged, heads)
}

/// Merges `heads` with `policy` and an own resolution, whole in one repository and in pages
/// of `rows` in the other; both must make the same commit.
fn same_merge(heads: &[Version], policy: Option<MergePolicy>, resolve: bool, rows: usize) {
    let (whole, paged, _) = twins();
    let merge = |repo: &Repository, pages: Option<usize>| {
        let mut tx = repo.merge(heads);
        if let Some(policy) = policy {
            tx.policy(policy);
        }
        if resolve {
            tx.put("a", "k12", "resolved");
            tx.delete("a", "k16");
        }
        if let Some(rows) = pages {
            tx.in_pages(rows);
        }
        // What a preview holds, a dry run counts, and both name the parents as the
        // commit links them.
        let (preview, dry_run) = (tx.preview().unwrap(), tx.dry_run().unwrap());
        assert_eq!(dry_run.parents, preview.parents);
        assert_eq!(dry_run.operations, preview.operations.len() as u64);
        assert_eq!(dry_run.conflicts, preview.conflicts);
        assert_eq!(tx.parents().unwrap(), preview.parents);
        let committed = tx.commit();
        if let Ok(version) = &committed {
            let links = repo.graph().get(version.as_str()).unwrap().links;
            let parents: Vec<String> = preview.parents.into_iter().map(String::from).collect();
            assert_eq!(links, parents, "the commit links the parents previewed");
        }
        committed
    };
    let case = format!(
        "{} heads, {policy:?}, resolved {resolve}, pages of {rows}",
        heads.len()
    );
    let a = merge(&whole, None);
    let b = merge(&paged, Some(rows));
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(Error::Conflict { rows: x }), Err(Error::Conflict { rows: y })) => {
            assert_eq!(x, y, "{case}: the same conflicts");
            assert!(!x.is_empty(), "{case}: a conflict names its rows");
            assert_eq!(
                paged.heads().expect("heads").len(),
                3,
                "{case}: a refused merge writes nothing"
            );
            return;
        }
        (a, b) => panic!("{case}: whole {a:?}, in pages {b:?}"),
    };
    assert_eq!(
        whole.operations(&a).expect("operations"),
        paged.operations(&b).expect("operations"),
        "{case}: the same operations, in the same order"
    );
    let commit = |repo: &Repository, v: &Version| {
        let node = repo.graph().get(v.as_str()).expect("node");
        let mut commit = Commit::decode(&node.value).expect("commit");
        commit.modified = 0;
        (commit, node.links)
    };
    assert_eq!(
        commit(&whole, &a),
        commit(&paged, &b),
        "{case}: the same commit"
    );
    assert_eq!(
        content(&whole, &a),
        content(&paged, &b),
        "{case}: the same rows"
    );
    let status = |repo: &Repository, v: &Version| {
        let mut status = repo.at(v).expect("at").status();
        status.modified = 0;
        status
    };
    assert_eq!(
        status(&whole, &a),
        status(&paged, &b),
        "{case}: the same counters"
    );
    let latest = |repo: &Repository| {
        let mut status = repo.latest().expect("latest").status();
        status.modified = 0;
        status
    };
    assert_eq!(
        latest(&whole),
        latest(&paged),
        "{case}: the same counters at latest"
    );
    for repo in [&whole, &paged] {
        let report = repo.fsck(&mut |_, _| {}).expect("fsck");
        assert!(report.is_ok(), "{case}: fsck {:?}", report.problems);
    }
    // What each merge settled, a commit on it reads as settled.
    let on_top = paged.transaction().put("a", "k00", "after").commit();
    let on_top = on_top.expect("a commit after the merge");
    let mut expected = content(&paged, &b);
    expected.insert((b"a".to_vec(), b"k00".to_vec()), b"after".to_vec());
    assert_eq!(
        content(&paged, &on_top),
        expected,
        "{case}: a commit on the merge"
    );
}

#[test]
fn a_merge_in_pages_is_the_merge_written_whole() {
    let (_, _, heads) = twins();
    let two_heads = [heads[0].clone(), heads[2].clone()];
    let reversed = [heads[2].clone(), heads[0].clone()];
    let policies = [
        None,
        Some(MergePolicy::Newest),
        Some(MergePolicy::Ours),
        Some(MergePolicy::Theirs),
    ];
    for rows in [1, 7, 10_000] {
        for policy in policies {
            for resolve in [false, true] {
                same_merge(&two_heads, policy, resolve, rows);
                same_merge(&reversed, policy, resolve, rows);
                same_merge(&heads, policy, resolve, rows);
            }
        }
    }
}

#[test]
fn a_merge_of_more_rows_than_one_write_holds_reads_whole() {
    // Two heads that each wrote 70,000 rows (more than a merge settles in one write) with
    // different values, and one row only one of them has; the merge names theirs first.
    let repo = Repository::in_memory().expect("repository");
    let base = repo.put("small", "base", "1").expect("base");
    let import = |tag: &str| {
        let mut importer = repo.importer("big", usize::MAX, None).force(true);
        for i in 0..70_000u32 {
            importer
                .put(
                    format!("r{i:06}").into_bytes(),
                    format!("{tag}{i}").into_bytes(),
                )
                .expect("put");
        }
        importer.finish().expect("import").pop().expect("a version")
    };
    let theirs = import("theirs");
    repo.checkout(&base).expect("checkout");
    import("ours");
    let only_ours = repo.put("small", "only", "ours").expect("put");
    repo.checkout_latest().expect("checkout latest");

    let mut tx = repo.merge(&[theirs.clone(), only_ours.clone()]);
    let refused = tx.commit();
    match refused {
        Err(Error::Conflict { rows }) => assert_eq!(rows.len(), 70_000, "every row conflicts"),
        other => panic!("a merge without a policy: {other:?}"),
    }
    assert_eq!(
        repo.heads().expect("heads").len(),
        2,
        "a refused merge writes nothing"
    );

    let mut tx = repo.merge(&[theirs.clone(), only_ours.clone()]);
    tx.policy(MergePolicy::Ours);
    let merged = tx.commit().expect("a merge");
    let view = repo.at(&merged).expect("at");
    assert_eq!(view.status().rows, 70_002, "every row once");
    assert_eq!(
        common::value_in(&view, "big", "r000000").as_deref(),
        Some("theirs0")
    );
    assert_eq!(
        common::value_in(&view, "big", "r069999").as_deref(),
        Some("theirs69999")
    );
    assert_eq!(
        common::value_in(&view, "small", "only").as_deref(),
        Some("ours")
    );
    assert_eq!(repo.operations(&merged).expect("operations").len(), 70_000);
    assert_eq!(repo.heads().expect("heads"), vec![merged.clone()]);
    let report = repo.fsck(&mut |_, _| {}).expect("fsck");
    assert!(report.is_ok(), "fsck {:?}", report.problems);
}
