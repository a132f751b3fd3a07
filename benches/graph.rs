//! Graph write benchmarks: `add`, `append` and `batch`, each on an on-disk repository (in a
//! temporary folder) and in memory.
//!
//! ```text
//! cargo bench --bench graph              # full run
//! cargo bench --bench graph -- --quick   # smoke run, well under a minute
//! ```
//!
//! Every value is a ~100-byte JSON document, and every node links to the node written before
//! it, so the graph is one long chain with a single head (the shape of a device's own log).
//! The repositories grow across iterations, as a real one does. On disk the default
//! durability is used (`Flushed`: each write handed to the OS, surviving `kill -9`);
//! `add/disk_synced` adds an fdatasync per write (`Synced`: surviving power loss).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata::{Doc, Durability, Graph, GraphOptions};
use strata::{FramedSha256, NodeHasher};
use tempfile::TempDir;

/// Documents per `batch` call.
const BATCH: u64 = 1000;

/// Short warm-up and measurement: the repositories grow with every iteration, so long runs
/// measure ever larger repositories (and `--quick` stays well under a minute).
fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
}

/// Where a benchmark's repository lives.
#[derive(Clone, Copy)]
enum Store {
    Disk,
    DiskSynced,
    Memory,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Disk => "disk",
            Store::DiskSynced => "disk_synced",
            Store::Memory => "memory",
        }
    }

    /// Opens a fresh graph; the folder (if any) lives as long as the returned guard.
    fn open(self) -> (Graph, Option<TempDir>) {
        let mut options = GraphOptions::default();
        match self {
            Store::Memory => (
                Graph::in_memory(options).expect("open an in-memory graph"),
                None,
            ),
            Store::Disk | Store::DiskSynced => {
                if matches!(self, Store::DiskSynced) {
                    options.durability = Durability::Synced;
                }
                let dir = tempfile::Builder::new()
                    .prefix("strata-bench-")
                    .tempdir()
                    .expect("create a temporary folder");
                let graph = Graph::open(dir.path().join("graph"), options).expect("open a graph");
                (graph, Some(dir))
            }
        }
    }
}

/// A JSON document of about 100 bytes, different for every `i`.
fn value(i: u64) -> String {
    let lat = -3.0 - (i % 9973) as f64 / 10_000.0;
    let lon = -62.0 - (i % 7919) as f64 / 10_000.0;
    format!(
        r#"{{"type":"observation","id":{i},"lat":{lat:.4},"lon":{lon:.4},"species":"Ceiba pentandra","ok":true}}"#
    )
}

/// Builds the next document of the chain. Its key is computed here so the next document can
/// link to it before it is stored; the key is the same one the graph will compute.
fn next_doc(previous: &mut Option<String>, i: u64) -> Doc {
    let links: Vec<String> = previous.take().into_iter().collect();
    let value = value(i);
    *previous = Some(FramedSha256.hash(&links, value.as_bytes()));
    Doc::new(links, value)
}

/// `Graph::add`: one node per call, linking the previous one.
fn add(c: &mut Criterion) {
    let mut group = c.benchmark_group("add");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for store in [Store::Disk, Store::DiskSynced, Store::Memory] {
        let (graph, _dir) = store.open();
        let mut previous = None;
        let mut i = 0;
        group.bench_function(store.name(), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    next_doc(&mut previous, i)
                },
                |doc| black_box(graph.add(&doc.links, &doc.value).expect("add")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// `Graph::append`: one node per call, linking every head (here: the previous node).
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for store in [Store::Disk, Store::Memory] {
        let (graph, _dir) = store.open();
        let mut i = 0;
        group.bench_function(store.name(), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    value(i)
                },
                |value| black_box(graph.append(value).expect("append")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// `Graph::batch`: 1000 documents per atomic call, each linking the one before it (the
/// first links the previous batch's last node).
fn batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    configure(&mut group);
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    for store in [Store::Disk, Store::Memory] {
        let (graph, _dir) = store.open();
        let mut previous = None;
        let mut i = 0;
        group.bench_function(store.name(), |b| {
            b.iter_batched(
                || {
                    (0..BATCH)
                        .map(|_| {
                            i += 1;
                            next_doc(&mut previous, i)
                        })
                        .collect::<Vec<_>>()
                },
                |docs| black_box(graph.batch(docs).expect("batch")),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, add, append, batch);
criterion_main!(benches);
