//! A version means the same rows on every device: forks and merges decided by causality,
//! whatever the shape of history, the order devices received it in, or their clocks.
//! Each test reproduces a history an audit found answered differently on two devices.

mod common;

use common::{commit_at, repo, sync, sync_both, value, value_in};
use strata::{Error, MergePolicy, Repository, Version};

const MINUTE: u64 = 60_000;
const T0: u64 = 1_800_000_000_000;

/// Everything a version reads, as text, for comparing devices.
fn snapshot(repo: &Repository, version: &Version) -> Vec<(String, String, bool)> {
    let view = repo.at(version).unwrap();
    let mut out = Vec::new();
    for dataset in view.datasets().unwrap() {
        for row in view.range(&dataset, strata::Range::all()) {
            let row = row.unwrap();
            out.push((
                String::from_utf8(row.key).unwrap(),
                String::from_utf8(row.value).unwrap(),
                row.forked,
            ));
        }
    }
    out
}

/// The criss-cross history of the audit: both devices merge the same two heads, then each
/// writes on its own merge. `skew` is added to every commit time of device B.
fn criss_cross(skew: i64) -> (Repository, Repository, Version, Version) {
    let b_time = |t: u64| (t as i64 + skew) as u64;
    let a = repo();
    let b = repo();
    let base = commit_at(&a, &[], T0, &[("d", "r", Some("0")), ("d", "s", Some("0"))]);
    sync(&a, &b);
    let ra = commit_at(&a, &[&base], T0 + MINUTE, &[("d", "r", Some("a"))]);
    let sb = commit_at(&b, &[&base], b_time(T0 + MINUTE), &[("d", "s", Some("b"))]);
    sync_both(&a, &b);
    let m1 = commit_at(&a, &[&ra, &sb], T0 + 2 * MINUTE, &[]);
    let m2 = commit_at(&b, &[&sb, &ra], b_time(T0 + 2 * MINUTE), &[]);
    let a2 = commit_at(&a, &[&m1], T0 + 3 * MINUTE, &[("d", "r", Some("a2"))]);
    let ux = commit_at(
        &b,
        &[&m2],
        b_time(T0 + 3 * MINUTE),
        &[("d", "u", Some("x"))],
    );
    sync_both(&a, &b);
    (a, b, a2, ux)
}

#[test]
fn criss_cross_reads_the_same_on_both_devices() {
    for skew in [0, 5 * MINUTE as i64, -5 * MINUTE as i64] {
        let (a, b, a2, ux) = criss_cross(skew);
        for device in [&a, &b] {
            assert_eq!(device.heads().unwrap().len(), 2);
            let latest = device.latest().unwrap();
            let r = latest.get("d", "r").unwrap().unwrap();
            assert_eq!(r.value, b"a2", "skew {skew}");
            assert!(
                !r.forked,
                "r = a2 was written after r = a was seen: no fork"
            );
            assert_eq!(value_in(&latest, "d", "s").as_deref(), Some("b"));
            assert_eq!(value_in(&latest, "d", "u").as_deref(), Some("x"));
            assert_eq!(device.forks("d", "r").unwrap().len(), 1);
            assert_eq!(latest.status().rows, 3);
        }
        // A plain merge of the two heads succeeds on both devices, and theirs/ours change
        // nothing: there is no conflict.
        for (device, policy) in [(0, None), (1, None), (0, Some(MergePolicy::Theirs))] {
            let (a, b, a2, ux) = criss_cross(skew);
            let device = [&a, &b][device];
            let mut tx = device.merge(&[a2.clone(), ux.clone()]);
            if let Some(policy) = policy {
                tx.policy(policy);
            }
            let merged = tx.commit().unwrap();
            assert_eq!(
                value_in(&device.at(&merged).unwrap(), "d", "r").as_deref(),
                Some("a2")
            );
        }
        // A merge made on B reads the same on A once synced, row for row.
        let from_b = b.merge(&[ux.clone(), a2.clone()]).commit().unwrap();
        sync(&b, &a);
        assert_eq!(snapshot(&a, &from_b), snapshot(&b, &from_b));
        assert_eq!(
            snapshot(&b, &from_b),
            vec![
                ("r".into(), "a2".into(), false),
                ("s".into(), "b".into(), false),
                ("u".into(), "x".into(), false)
            ]
        );
    }
}

#[test]
fn an_ancestor_never_wins_a_merge_of_three_heads() {
    // X: r=0; B1 (on X): r=1; h1 forks from X and writes s; h2 continues B1 with r=2;
    // h3 forks from B1 and writes t. r=1 is an ancestor of r=2: r must read 2, unforked,
    // even when B1's writer had a fast clock.
    for b1_skew in [0, 10 * MINUTE] {
        let repo = repo();
        let x = commit_at(&repo, &[], T0, &[("d", "r", Some("0"))]);
        let b1 = commit_at(
            &repo,
            &[&x],
            T0 + MINUTE + b1_skew,
            &[("d", "r", Some("1"))],
        );
        let h1 = commit_at(&repo, &[&x], T0 + 2 * MINUTE, &[("d", "s", Some("s"))]);
        let h2 = commit_at(&repo, &[&b1], T0 + 3 * MINUTE, &[("d", "r", Some("2"))]);
        let h3 = commit_at(&repo, &[&b1], T0 + 4 * MINUTE, &[("d", "t", Some("t"))]);
        let latest = repo.latest().unwrap();
        let r = latest.get("d", "r").unwrap().unwrap();
        assert_eq!((r.value.as_slice(), r.forked), (b"2".as_slice(), false));
        let merged = repo.merge(&[h1, h2, h3]).commit().unwrap();
        let view = repo.at(&merged).unwrap();
        assert_eq!(value_in(&view, "d", "r").as_deref(), Some("2"));
        assert_eq!(value_in(&view, "d", "s").as_deref(), Some("s"));
        assert_eq!(value_in(&view, "d", "t").as_deref(), Some("t"));
        assert_eq!(view.status().rows, 3);
    }
}

#[test]
fn truly_concurrent_versions_fork_and_the_newest_wins_the_same_everywhere() {
    let a = repo();
    let b = repo();
    let base = commit_at(&a, &[], T0, &[("d", "r", Some("0"))]);
    sync(&a, &b);
    // B's clock is five minutes fast: among concurrent versions its value is "newest",
    // on both devices alike.
    let va = commit_at(&a, &[&base], T0 + MINUTE, &[("d", "r", Some("a"))]);
    let vb = commit_at(&b, &[&base], T0 + 5 * MINUTE, &[("d", "r", Some("b"))]);
    sync_both(&a, &b);
    for device in [&a, &b] {
        let r = device.get("d", "r").unwrap().unwrap();
        assert_eq!((r.value.as_slice(), r.forked), (b"b".as_slice(), true));
        let forks: Vec<Version> = device
            .forks("d", "r")
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(forks, vec![vb.clone(), va.clone()]);
        // Without a policy the merge names every conflicting row, as data.
        match device.merge(&[]).commit() {
            Err(Error::Conflict { rows }) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].key, b"r");
                assert_eq!(rows[0].versions, vec![vb.to_string(), va.to_string()]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // Ours is the first head named; theirs the other.
    let ours = a
        .merge(&[va.clone(), vb.clone()])
        .policy(MergePolicy::Ours)
        .commit()
        .unwrap();
    assert_eq!(
        value_in(&a.at(&ours).unwrap(), "d", "r").as_deref(),
        Some("a")
    );
    let theirs = b
        .merge(&[va, vb])
        .policy(MergePolicy::Theirs)
        .commit()
        .unwrap();
    assert_eq!(
        value_in(&b.at(&theirs).unwrap(), "d", "r").as_deref(),
        Some("b")
    );
}

#[test]
fn heads_that_agree_merge_without_a_policy_and_read_unforked() {
    let repo = repo();
    let base = repo.put("d", "r", "0").unwrap();
    let one = common::put_replacing(&repo, &base, "d", "r", "same");
    common::after(&repo, &one);
    let two = common::put_replacing(&repo, &base, "d", "r", "same");
    assert!(repo.get("d", "r").unwrap().unwrap().forked);
    let merged = repo.merge(&[one, two]).commit().unwrap();
    let row = repo.at(&merged).unwrap().get("d", "r").unwrap().unwrap();
    assert_eq!(
        (row.value.as_slice(), row.forked),
        (b"same".as_slice(), false)
    );
    assert!(!repo.get("d", "r").unwrap().unwrap().forked);
}

#[test]
fn only_commits_are_versions() {
    let repo = repo();
    repo.put("s", "a", "1").unwrap();
    let b = repo.put("s", "b", "2").unwrap();
    let plumbing = repo.graph().append("hello").unwrap();
    let c = repo.put("s", "c", "3").unwrap();
    // The plumbing node is neither a parent, a head nor a version.
    assert_eq!(repo.heads().unwrap(), vec![c.clone()]);
    assert_eq!(
        repo.graph().get(c.as_str()).unwrap().links,
        vec![b.to_string()]
    );
    assert_eq!(repo.status().unwrap().heads, 1);
    assert_eq!(repo.status().unwrap().rows, 3);
    assert!(matches!(
        repo.resolve(&plumbing.key),
        Err(Error::VersionNotFound { .. })
    ));
    assert_eq!(value(&repo, "s", "a").as_deref(), Some("1"));
}

#[test]
fn a_merge_of_an_ancestor_or_of_non_heads_never_forks() {
    let repo = repo();
    let a = repo.put("d", "k", "1").unwrap();
    let b = repo.put("d", "k", "2").unwrap();
    let c = repo.put("d", "k", "3").unwrap();
    // a is an ancestor of b: nothing to merge.
    let err = repo.merge(&[a.clone(), b.clone()]).commit().unwrap_err();
    assert!(err.to_string().contains("nothing to merge"), "{err}");
    // Two versions on one line are not two heads either.
    let err = repo.merge(&[b.clone(), c.clone()]).commit().unwrap_err();
    assert!(err.to_string().contains("nothing to merge"), "{err}");
    assert_eq!(repo.heads().unwrap(), vec![c.clone()]);
    // A fork from a, merged with c: a's fork is a head; b is not.
    let fork = common::put_replacing(&repo, &a, "d", "x", "fork");
    let err = repo.merge(&[b, fork.clone()]).commit().unwrap_err();
    assert!(err.to_string().contains("not a head"), "{err}");
    repo.merge(&[c, fork]).commit().unwrap();
    assert_eq!(repo.heads().unwrap().len(), 1);
}

#[test]
fn names_reach_versions_by_prefix_case_head_and_ancestry() {
    let repo = repo();
    let one = repo.put("d", "k", "1").unwrap();
    let two = repo.put("d", "k", "2").unwrap();
    assert_eq!(
        repo.resolve(&one.as_str()[..6].to_uppercase()).unwrap(),
        one
    );
    assert_eq!(repo.resolve("HEAD").unwrap(), two);
    assert_eq!(repo.resolve("HEAD~1").unwrap(), one);
    assert_eq!(repo.resolve("latest~1").unwrap(), one);
    assert!(repo.resolve("HEAD~2").is_err());
    assert!(matches!(
        repo.resolve("abc"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_preview_shows_what_a_merge_would_write_and_parents_what_a_commit_links() {
    let repo = repo();
    let base = commit_at(
        &repo,
        &[],
        T0,
        &[("d", "r", Some("0")), ("d", "s", Some("0"))],
    );
    let one = commit_at(
        &repo,
        &[&base],
        T0 + MINUTE,
        &[("d", "r", Some("1")), ("d", "s", Some("same"))],
    );
    let two = commit_at(
        &repo,
        &[&base],
        T0 + 2 * MINUTE,
        &[("d", "r", Some("2")), ("d", "s", Some("same"))],
    );
    let before = repo.graph().change_count();
    let preview = repo.merge(&[one.clone(), two.clone()]).preview().unwrap();
    assert_eq!(preview.parents, vec![one.clone(), two.clone()]);
    assert_eq!(preview.conflicts.len(), 1);
    assert_eq!(preview.conflicts[0].key, b"r");
    let settled = repo
        .merge(&[one.clone(), two.clone()])
        .policy(MergePolicy::Newest)
        .preview()
        .unwrap();
    let rows: Vec<(&[u8], Option<&[u8]>)> = settled
        .operations
        .iter()
        .map(|op| (op.key.as_slice(), op.value.as_deref()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (&b"r"[..], Some(&b"2"[..])),
            (&b"s"[..], Some(&b"same"[..]))
        ]
    );
    assert!(settled.conflicts.is_empty());
    assert_eq!(
        repo.graph().change_count(),
        before,
        "a preview writes nothing"
    );

    // The parents a commit would link, as the commit links them: named heads in order;
    // all heads with this device's newest first; the head for a plain write.
    let named = repo.merge(&[two.clone(), one.clone()]);
    assert_eq!(named.parents().unwrap(), vec![two.clone(), one.clone()]);
    let all = repo.merge(&[]).parents().unwrap();
    assert_eq!(all.len(), 2);
    let own = repo.put("d", "t", "own").unwrap();
    let heads = repo.merge(&[]).parents().unwrap();
    assert_eq!(heads[0], own, "this device's newest head is ours");
    let mut tx = repo.merge(&[]);
    tx.policy(MergePolicy::Ours);
    assert_eq!(tx.parents().unwrap(), heads);
    let merged = tx.commit().unwrap();
    let links = repo.graph().get(merged.as_str()).unwrap().links;
    let heads: Vec<String> = heads.into_iter().map(String::from).collect();
    assert_eq!(links, heads, "the commit links the parents it said");
    let plain = repo.transaction();
    assert_eq!(plain.parents().unwrap(), vec![merged]);
}
