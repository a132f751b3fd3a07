//! Dataset store benchmarks: import, point reads at latest and at old versions, range reads.
//!
//! `cargo bench --bench dataset` (add `-- --quick` for a fast pass). The "old version"
//! reads run on a history of many commits with unmerged forks on the read path, to show
//! that a read at any version costs about the same as a read at latest.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata::{Range, Repository, Version};

const ROWS: u64 = 100_000;

fn row(i: u64) -> (Vec<u8>, Vec<u8>) {
    (
        format!("site-{i:08}").into_bytes(),
        format!(r#"{{"id":{i},"name":"site number {i}","lat":12.345,"lon":-67.89,"depth":4.5,"tags":["a","b"]}}"#)
            .into_bytes(),
    )
}

fn imported(dir: &std::path::Path) -> Repository {
    let repo = Repository::init(dir).expect("init");
    repo.import("sites", (0..ROWS).map(|i| Ok(row(i))), 10_000, None)
        .expect("import");
    repo
}

fn import(c: &mut Criterion) {
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("100k rows, batches of 10k, on disk", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| black_box(imported(dir.path())),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// A history where the oldest version sits under many commits and several forks: every
/// tenth commit updates rows on a fork written on an older version (never merged).
fn deep_history(dir: &std::path::Path) -> (Repository, Version) {
    let repo = imported(dir);
    let old = repo.heads().expect("heads").remove(0);
    let mut base = old.clone();
    for round in 0..200u64 {
        let mut tx = repo.transaction();
        for j in 0..50 {
            let i = (round * 97 + j * 31) % ROWS;
            tx.put("sites", row(i).0, format!(r#"{{"round":{round}}}"#));
        }
        if round % 10 == 9 {
            tx.replaces(std::slice::from_ref(&base));
        }
        let version = tx.commit().expect("commit");
        if round % 10 == 9 {
            base = version;
        }
    }
    (repo, old)
}

fn get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repo, old) = deep_history(dir.path());
    let latest = repo.latest().expect("latest");
    let at_old = repo.at(&old).expect("old version");
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("at latest (several heads)", |b| {
        b.iter(|| {
            i = (i + 7919) % ROWS;
            black_box(latest.get("sites", row(i).0).expect("get"))
        })
    });
    let tip = repo.heads().expect("heads").remove(0);
    let at_tip = repo.at(&tip).expect("tip");
    group.bench_function("at one head", |b| {
        b.iter(|| {
            i = (i + 7919) % ROWS;
            black_box(at_tip.get("sites", row(i).0).expect("get"))
        })
    });
    group.bench_function("at the oldest version", |b| {
        b.iter(|| {
            i = (i + 7919) % ROWS;
            black_box(at_old.get("sites", row(i).0).expect("get"))
        })
    });
    group.finish();
}

fn range(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = imported(dir.path());
    let view = repo.latest().expect("latest");
    let mut group = c.benchmark_group("range");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("all 100k rows with values", |b| {
        b.iter(|| black_box(view.range("sites", Range::all()).count()))
    });
    group.finish();
}

criterion_group!(benches, import, get, range);
criterion_main!(benches);
