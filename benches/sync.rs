//! Sync and merge as they grow (issue 13's "sync measured" and its change-size series).
//!
//! * `sync/graph ...`: n nodes (one log, chains of 1,000 written a batch at a time, as
//!   `tests/replicate_throughput.rs` writes them), pulled into an empty on-disk graph,
//!   in process (`sync_in_memory`) and over loopback TCP (`TcpServer`, `connect_tcp`).
//! * `sync/rows ...`: n rows imported 1,000 a commit, pulled with their operations into an
//!   empty on-disk repository, the same two ways.
//! * `merge/changed rows`: two heads that each changed the same m rows differently (two
//!   devices, synced), merged with the `newest` policy: every row is a conflict the merge
//!   settles. Each sample merges a fresh copy of the same repository.
//!
//! ```text
//! cargo bench --bench sync -- --quick
//! STRATA_SYNC_SIZES=10000,100000,1000000 cargo bench --bench sync -- --quick sync/
//! STRATA_MERGE_ROWS=1000,10000,100000,1000000 cargo bench --bench sync -- --quick merge
//! ```
//!
//! Memory is not measured here (criterion cannot): `docs/performance.md` gives the peak
//! resident size of the same work under `/usr/bin/time -v`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strata::{
    Doc, FramedSha256, Graph, GraphOptions, MergePolicy, NodeHasher, Replica, Repository, Session,
    SyncReport, TcpServer,
};

/// Sizes from a comma-separated environment variable, or the defaults.
fn sizes(variable: &str, defaults: &[u64]) -> Vec<u64> {
    match std::env::var(variable) {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("a comma-separated list of sizes"))
            .collect(),
        Err(_) => defaults.to_vec(),
    }
}

/// A ~115-byte JSON value, as the other benches write.
fn value(i: u64) -> String {
    format!(
        r#"{{"i":{i},"type":"bench","ts":{},"note":"row {i} of the sync and merge series"}}"#,
        1_700_000_000_000 + i
    )
}

fn key(i: u64) -> String {
    format!("row-{i:08}")
}

/// Pulls `source` into `target` over TCP loopback; the receiving side's report.
fn over_tcp(source: impl Into<Replica>, target: impl Into<Replica>) -> SyncReport {
    let server = TcpServer::start("127.0.0.1:0", Session::new(), source, Arc::new(|_, _| {}))
        .expect("serve");
    let report = Session::new()
        .connect_tcp(server.local_addr(), target)
        .expect("sync");
    server.stop();
    report
}

/// A graph of `n` nodes in chains of 1,000, one batch per chain.
fn source_graph(dir: &Path, n: u64) -> Graph {
    let graph = Graph::open(dir, GraphOptions::default()).expect("open");
    let mut written = 0;
    while written < n {
        let mut previous: Option<String> = None;
        let docs = (written..(written + 1_000).min(n))
            .map(|i| {
                let doc = Doc::new(previous.take().into_iter().collect(), value(i));
                previous = Some(FramedSha256.hash(&doc.links, &doc.value));
                doc
            })
            .collect::<Vec<_>>();
        written += docs.len() as u64;
        graph.batch(docs).expect("batch");
    }
    graph
}

/// A repository of `n` rows imported 1,000 a commit.
fn source_rows(dir: &Path, n: u64) -> Repository {
    let repo = Repository::init(dir).expect("init");
    let rows = (0..n).map(|i| Ok((key(i).into_bytes(), value(i).into_bytes())));
    repo.import("rows", rows, 1_000, None).expect("import");
    repo
}

/// Makes a new `open(path)` for each sample, each under a new path in `dir`.
fn fresh<T>(dir: &Path, open: impl Fn(PathBuf) -> T) -> impl FnMut() -> T {
    let mut round = 0;
    move || {
        round += 1;
        open(dir.join(format!("sample-{round}")))
    }
}

/// One series point: `pull` into a fresh `target()` each sample, `n` elements a sample.
fn series<T>(
    c: &mut Criterion,
    name: &str,
    n: u64,
    mut target: impl FnMut() -> T,
    pull: impl Fn(T),
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
        b.iter_batched(&mut target, &pull, BatchSize::PerIteration)
    });
    group.finish();
}

fn graph_sync(c: &mut Criterion) {
    for n in sizes("STRATA_SYNC_SIZES", &[10_000, 100_000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = source_graph(&dir.path().join("source"), n);
        let mut target = fresh(dir.path(), |path| {
            Graph::open(path, GraphOptions::default()).expect("open")
        });
        series(c, "sync/graph in process", n, &mut target, |target| {
            let (_, received) = strata::sync_in_memory(&source, &target).expect("sync");
            assert_eq!(received.progress.nodes_received, n);
        });
        series(
            c,
            "sync/graph over loopback TCP",
            n,
            &mut target,
            |target| {
                assert_eq!(over_tcp(&source, &target).progress.nodes_received, n);
            },
        );
    }
}

fn rows_sync(c: &mut Criterion) {
    for n in sizes("STRATA_SYNC_SIZES", &[10_000, 100_000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = source_rows(&dir.path().join("source"), n);
        let mut target = fresh(dir.path(), |path| Repository::init(path).expect("init"));
        series(c, "sync/rows in process", n, &mut target, |target| {
            let (_, received) = strata::sync_in_memory(&source, &target).expect("sync");
            assert_eq!(received.progress.operations_received, n);
        });
        series(c, "sync/rows over loopback TCP", n, &mut target, |target| {
            assert_eq!(over_tcp(&source, &target).progress.operations_received, n);
        });
    }
}

/// A repository whose two heads each changed the same `m` rows to different values.
fn forked(dir: &Path, m: u64) {
    let ours = Repository::init(dir.join("ours")).expect("init");
    let theirs = Repository::init(dir.join("theirs")).expect("init");
    let rows = |side: &'static str| {
        (0..m).map(move |i| {
            let value = format!(r#"{{"i":{i},"note":"changed on {side}","pad":"{i:064}"}}"#);
            Ok((key(i).into_bytes(), value.into_bytes()))
        })
    };
    ours.import("rows", rows("the base"), 10_000, None)
        .expect("import");
    strata::sync_in_memory(&ours, &theirs).expect("sync");
    ours.import("rows", rows("ours"), 10_000, None)
        .expect("import");
    theirs
        .import("rows", rows("theirs"), 10_000, None)
        .expect("import");
    strata::sync_in_memory(&ours, &theirs).expect("sync");
    assert_eq!(ours.heads().expect("heads").len(), 2);
}

fn merge(c: &mut Criterion) {
    for m in sizes("STRATA_MERGE_ROWS", &[1_000, 10_000, 100_000]) {
        let dir = tempfile::tempdir().expect("tempdir");
        forked(dir.path(), m);
        let template = dir.path().join("ours");
        let copy = fresh(dir.path(), |copy| {
            let copied = Command::new("cp")
                .arg("-r")
                .args([&template, &copy])
                .status()
                .expect("cp");
            assert!(copied.success(), "cp -r failed");
            Repository::open(&copy).expect("open")
        });
        series(c, "merge/changed rows", m, copy, |repo| {
            let merged = repo.merge(&[]).policy(MergePolicy::Newest).commit();
            black_box(merged.expect("merge"));
        });
    }
}

criterion_group!(benches, graph_sync, rows_sync, merge);
criterion_main!(benches);
