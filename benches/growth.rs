//! Growth series: how the costs of import (into a new dataset, and of 10,000 rows into one
//! that has rows), get, export, a range read at the oldest version, fsck and diff change with the number of rows, how opening
//! latest, reading at it, and writing (a commit on one fork, a graph node beside the other
//! heads) change with the number of heads, how a one-row commit's
//! cost changes with the number of commits before it, and how a sync's cost per commit
//! changes with the number of one-row commits it moves.
//!
//! ```text
//! cargo bench --bench growth -- --quick
//! STRATA_GROWTH_ROWS=10000,100000,1000000 cargo bench --bench growth -- --quick
//! STRATA_GROWTH_HEADS=1,10,100,1000 cargo bench --bench growth -- --quick heads
//! STRATA_GROWTH_COMMITS=100,1000,10000,50000 cargo bench --bench growth -- --quick commit
//! STRATA_GROWTH_SYNCS=1000,10000,100000 cargo bench --bench growth -- --quick sync
//! ```
//!
//! Row counts default to 10^4 and 10^5 (10^6 takes minutes per series on the project's
//! machine); head counts default to 1, 10, 100 and 1,000. Keys are written in scattered
//! order (a fixed permutation), in commits of 10,000 rows, on disk. The figures are in
//! `docs/performance.md`.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strata::{Doc, Graph, GraphOptions, Range, Repository, Version};

fn sizes(var: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(var)
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn rows() -> Vec<u64> {
    sizes("STRATA_GROWTH_ROWS", &[10_000, 100_000])
}

/// The `i`th key of a dataset of `n` rows in write order: a permutation of `0..n` that
/// spreads each commit's keys over the whole range.
fn scattered(i: u64, n: u64) -> u64 {
    // 2,654,435,761 is prime, so i ↦ i·p mod n is a bijection for every n used (none is a
    // multiple of it), and p mod n is far from 0 and from n for n = 10^4 … 10^7. (Until
    // 2026-12-01 p was 1,000,003, which is 3 mod 10^4 … 10^6: each commit wrote every third
    // key of one stretch, nearly in order.)
    (i * 2_654_435_761) % n
}

fn row(i: u64) -> (Vec<u8>, Vec<u8>) {
    (
        format!("site-{i:08}").into_bytes(),
        format!(r#"{{"id":{i},"name":"site number {i}","lat":12.345,"lon":-67.89,"depth":4.5,"tags":["a","b"]}}"#)
            .into_bytes(),
    )
}

fn imported(dir: &std::path::Path, n: u64) -> Repository {
    imported_in_commits(dir, n).0
}

/// A repository of `n` rows imported in commits of 10,000, with the commits' versions.
fn imported_in_commits(dir: &std::path::Path, n: u64) -> (Repository, Vec<Version>) {
    let repo = Repository::init(dir).expect("init");
    let versions = repo
        .import(
            "sites",
            (0..n).map(|i| Ok(row(scattered(i, n)))),
            10_000,
            None,
        )
        .expect("import");
    (repo, versions)
}

fn import(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth/import scattered");
    group.sample_size(10);
    for n in rows() {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| black_box(imported(dir.path(), n)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// A copy of the repository in `from` (a folder), for a run that writes to it.
fn copy_of(from: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("folder");
        for entry in std::fs::read_dir(from).expect("read folder") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(from, dir.path());
    dir
}

/// Importing 10,000 rows into a dataset that already holds `n`: new keys scattered among
/// the existing ones (each sorts just after an existing key, so none falls in a gap), and
/// the same 10,000 existing rows again with their values (nothing to write: reads only).
fn import_into(c: &mut Criterion) {
    const ADDED: u64 = 10_000;
    for n in rows() {
        let base = tempfile::tempdir().expect("tempdir");
        drop(imported(base.path(), n));
        let picked = move |j: u64| scattered(j * (n / ADDED).max(1), n);
        for (name, fresh) in [("new keys", true), ("unchanged rows", false)] {
            let mut group = c.benchmark_group(format!("growth/import 10,000 {name} into"));
            group.sample_size(10);
            group.throughput(Throughput::Elements(ADDED));
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter_batched(
                    || {
                        let dir = copy_of(base.path());
                        let repo = Repository::open(dir.path()).expect("open");
                        (repo, dir)
                    },
                    |(repo, dir)| {
                        let rows = (0..ADDED).map(|j| {
                            let (mut key, value) = row(picked(j));
                            if fresh {
                                key.extend_from_slice(b".1");
                            }
                            Ok((key, value))
                        });
                        black_box(repo.import("sites", rows, 10_000, None).expect("import"));
                        (repo, dir)
                    },
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }
}

fn reads(c: &mut Criterion) {
    for n in rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (repo, versions) = imported_in_commits(dir.path(), n);
        let latest = repo.latest().expect("latest");

        let mut group = c.benchmark_group("growth/get at latest");
        group.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(latest.get("sites", row(i).0).expect("get"))
            })
        });
        group.finish();

        let mut group = c.benchmark_group("growth/export");
        group.sample_size(10);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(latest.range("sites", Range::all()).count()))
        });
        group.finish();

        // The first commit's 10,000 rows are scattered among all n: a read at its version
        // should cost the rows it returns, not the rows written after it.
        let oldest = repo.at(&versions[0]).expect("oldest version");
        let mut group = c.benchmark_group("growth/range of 1,000 rows at the oldest version");
        group.sample_size(10);
        group.throughput(Throughput::Elements(1_000));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(oldest.range("sites", Range::all().limit(1_000)).count()))
        });
        group.finish();

        // A version below the newest reads through the born records too: the whole dataset
        // but the last commit's rows, against the export at latest above.
        let before = repo
            .at(&versions[versions.len().saturating_sub(2)])
            .expect("version before the newest");
        let mut group = c.benchmark_group("growth/export at the version before the newest");
        group.sample_size(10);
        group.throughput(Throughput::Elements(n.saturating_sub(10_000).max(1)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(before.range("sites", Range::all()).count()))
        });
        group.finish();

        let mut group = c.benchmark_group("growth/fsck");
        group.sample_size(10);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(repo.fsck(&mut |_, _| {}).expect("fsck").is_ok()))
        });
        group.finish();
    }
}

/// Diff between a dataset of `n` rows and the version where every row changed (past
/// 65,536 rows a scan of the dataset), and between that and one more commit of 1,000
/// changed rows (collected: it should not grow with `n`).
fn diff(c: &mut Criterion) {
    for n in rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = imported(dir.path(), n);
        let first = repo.heads().expect("heads").remove(0);
        let changed = |i: u64| {
            (
                row(i).0,
                format!(r#"{{"id":{i},"changed":true}}"#).into_bytes(),
            )
        };
        repo.import(
            "sites",
            (0..n).map(|i| Ok(changed(scattered(i, n)))),
            10_000,
            None,
        )
        .expect("import changed");
        let every = repo.heads().expect("heads").remove(0);
        let mut transaction = repo.transaction();
        for i in 0..1_000 {
            transaction.put("sites", row(i * (n / 1_000)).0, "{}");
        }
        let last = transaction.commit().expect("commit");

        let mut group = c.benchmark_group("growth/diff every row changed");
        group.sample_size(10);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(repo.diff(&first, &every).expect("diff").count()))
        });
        group.finish();

        let mut group = c.benchmark_group("growth/diff of 1,000 rows");
        group.sample_size(10);
        group.throughput(Throughput::Elements(1_000));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(repo.diff(&every, &last).expect("diff").count()))
        });
        group.finish();
    }
}

/// `h` heads: `h` writes on the first version, each setting one row of its own (the first
/// replaces that version as its head, each later one forks from it).
fn forked(dir: &std::path::Path, h: u64) -> Repository {
    let repo = imported(dir, 10_000);
    let base = repo.heads().expect("heads").remove(0);
    for fork in 0..h {
        repo.transaction()
            .put("sites", row(fork).0, format!(r#"{{"fork":{fork}}}"#))
            .replaces(std::slice::from_ref(&base))
            .commit()
            .expect("fork");
    }
    repo
}

fn heads(c: &mut Criterion) {
    for h in sizes("STRATA_GROWTH_HEADS", &[1, 10, 100, 1000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = forked(dir.path(), h);
        assert_eq!(repo.heads().expect("heads").len() as u64, h);

        let mut group = c.benchmark_group("heads/open latest");
        group.bench_with_input(BenchmarkId::from_parameter(h), &h, |b, _| {
            b.iter(|| black_box(repo.latest().expect("latest")))
        });
        group.finish();

        let latest = repo.latest().expect("latest");
        let one = repo
            .at(&repo.heads().expect("heads").remove(0))
            .expect("one head");
        let mut i = 0u64;
        let mut group = c.benchmark_group("heads/get at latest");
        group.bench_with_input(BenchmarkId::from_parameter(h), &h, |b, _| {
            b.iter(|| {
                i = (i + 7919) % 10_000;
                black_box(latest.get("sites", row(i).0).expect("get"))
            })
        });
        group.finish();
        let mut group = c.benchmark_group("heads/get at one head");
        group.bench_with_input(BenchmarkId::from_parameter(h), &h, |b, _| {
            b.iter(|| {
                i = (i + 7919) % 10_000;
                black_box(one.get("sites", row(i).0).expect("get"))
            })
        });
        group.finish();

        // A one-row commit that extends one fork: the number of heads stays `h`.
        let mut tip = repo.heads().expect("heads").remove(0);
        let mut group = c.benchmark_group("heads/one-row commit on one fork");
        group.sample_size(20);
        group.bench_with_input(BenchmarkId::from_parameter(h), &h, |b, _| {
            b.iter(|| {
                i = (i + 7919) % 10_000;
                tip = repo
                    .transaction()
                    .put("sites", row(i).0, r#"{"edited":true}"#)
                    .replaces(std::slice::from_ref(&tip))
                    .commit()
                    .expect("commit");
            })
        });
        group.finish();
        assert_eq!(repo.heads().expect("heads").len() as u64, h);

        // The graph alone: one node linking one of `h` heads.
        let dir = tempfile::tempdir().expect("tempdir");
        let graph = Graph::open(dir.path(), GraphOptions::default()).expect("graph");
        let roots = (0..h).map(|n| Doc::new(Vec::new(), format!("root {n}")));
        let mut last = vec![graph.batch(roots.collect()).expect("roots")[0].key.clone()];
        let mut n = 0u64;
        let mut group = c.benchmark_group("heads/graph add beside the heads");
        group.bench_with_input(BenchmarkId::from_parameter(h), &h, |b, _| {
            b.iter(|| {
                n += 1;
                last = vec![graph.add(&last, format!("node {n}")).expect("add").key];
            })
        });
        group.finish();
        assert_eq!(graph.heads().expect("heads").len() as u64, h);
    }
}

/// A one-row commit (`put` of a new key at latest) on a chain of `n` one-row commits: the
/// path below each commit grows by one, and so does the number of versions.
fn commits(c: &mut Criterion) {
    for n in sizes("STRATA_GROWTH_COMMITS", &[100, 1_000, 10_000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        for i in 0..n {
            let (key, value) = row(i);
            repo.put("sites", key, value).expect("put");
        }
        let mut i = n;
        let mut group = c.benchmark_group("growth/one-row commit after n commits");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let (key, value) = row(i);
                i += 1;
                black_box(repo.put("sites", key, value).expect("put"))
            })
        });
        group.finish();
    }
}

/// A sync, in memory between on-disk repositories, of `n` one-row commits into an empty
/// repository: every commit arrives before its payload, waits for it, and is indexed when
/// it comes.
fn syncs(c: &mut Criterion) {
    for n in sizes("STRATA_GROWTH_SYNCS", &[1_000, 10_000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = Repository::init(dir.path().join("source")).expect("init");
        for i in 0..n {
            let (key, value) = row(i);
            source.put("sites", key, value).expect("put");
        }
        let mut round = 0;
        let mut group = c.benchmark_group("growth/sync of n one-row commits");
        group.sample_size(10);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || {
                    round += 1;
                    Repository::init(dir.path().join(format!("target-{round}"))).expect("init")
                },
                |target| black_box(strata::sync_in_memory(&source, &target).expect("sync")),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    import,
    import_into,
    reads,
    diff,
    heads,
    commits,
    syncs
);
criterion_main!(benches);
