//! Side by side, in one run: strata against its anchors, with ratios.
//!
//! `cargo bench --bench compare`
//!
//! * **raw rusty-leveldb** (4.0.2, default options): the same number of records of the same
//!   sizes, with no graph, no hashing and no index: the engine's own ceiling.
//! * **hyperlog 4.12.1** (the JS original, on leveldown): `bench-add.js` from
//!   `../shared/jspeers`, copied to `target/jspeers` and installed there with
//!   `npm ci --ignore-scripts` on first use. Skipped, with a note, when node or npm is
//!   missing or the folder is not beside the project.
//!
//! Every workload writes ~100-byte JSON values to a fresh on-disk database, as
//! `bench-add.js` does. Figures are single runs on a shared machine: read them as ±15 %.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rusty_leveldb::{DB, Options, WriteBatch};
use strata::Repository;
use strata::{Doc, Graph, GraphOptions};

const ADDS: u64 = 20_000;
const BATCHED: u64 = 100_000;
const BATCH: u64 = 1_000;
const ROWS: u64 = 100_000;
const JS_NODES: u64 = 10_000;

/// The value `bench-add.js` writes: ~100 bytes of JSON.
fn value(i: u64) -> String {
    let bare = format!(
        r#"{{"i":{i},"type":"bench","ts":{},"pad":""}}"#,
        1_700_000_000_000 + i
    );
    let pad = "x".repeat(100usize.saturating_sub(bare.len()));
    format!(
        r#"{{"i":{i},"type":"bench","ts":{},"pad":"{pad}"}}"#,
        1_700_000_000_000 + i
    )
}

fn rate(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

/// strata: one `add` per node, each linking the previous one.
fn strata_add(dir: &Path) -> f64 {
    let graph = Graph::open(dir, GraphOptions::default()).expect("open");
    let started = Instant::now();
    let mut previous: Vec<String> = Vec::new();
    for i in 0..ADDS {
        previous = vec![graph.add(&previous, value(i)).expect("add").key];
    }
    rate(ADDS, started)
}

/// strata: batches of 1,000 documents, doc i of batch k linking doc i of batch k-1 (the
/// layout of `bench-add.js --mode batch`).
fn strata_batch(dir: &Path) -> f64 {
    let graph = Graph::open(dir, GraphOptions::default()).expect("open");
    let started = Instant::now();
    let mut previous: Vec<Vec<String>> = vec![Vec::new(); BATCH as usize];
    for round in 0..BATCHED / BATCH {
        let docs = (0..BATCH)
            .map(|j| Doc::new(previous[j as usize].clone(), value(round * BATCH + j)))
            .collect();
        let nodes = graph.batch(docs).expect("batch");
        previous = nodes.into_iter().map(|node| vec![node.key]).collect();
    }
    rate(BATCHED, started)
}

/// strata: an import of rows in commits of 10,000.
fn strata_import(dir: &Path) -> f64 {
    let repo = Repository::init(dir).expect("init");
    let started = Instant::now();
    let rows = (0..ROWS).map(|i| Ok((format!("row-{i:08}").into_bytes(), value(i).into_bytes())));
    repo.import("rows", rows, 10_000, None).expect("import");
    rate(ROWS, started)
}

/// Raw rusty-leveldb: `count` records (a 64-hex key and the value, like a node), written
/// `per_write` at a time, each write handed to the OS as strata's are.
fn raw(dir: &Path, count: u64, per_write: u64) -> f64 {
    let mut db = DB::open(dir, Options::default()).expect("open");
    let started = Instant::now();
    let mut i = 0;
    while i < count {
        let mut batch = WriteBatch::default();
        for j in i..(i + per_write).min(count) {
            let key = format!("{:064x}", (j as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            batch.put(key.as_bytes(), value(j).as_bytes());
        }
        db.write(batch, true).expect("write");
        i += per_write;
    }
    rate(count, started)
}

/// The JS peers, installed in `target/jspeers`; `None` (with the reason printed) when
/// they cannot be run here.
fn jspeers() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = root.join("../shared/jspeers");
    let copy = root.join("target/jspeers");
    if !source.join("bench-add.js").is_file() {
        println!("(hyperlog skipped: {} not found)", source.display());
        return None;
    }
    if !copy.join("node_modules").is_dir() {
        let _ = std::fs::create_dir_all(&copy);
        let copied = Command::new("cp")
            .args([
                "-r",
                &format!("{}/.", source.display()),
                &copy.display().to_string(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        let installed = copied
            && Command::new("npm")
                .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
                .current_dir(&copy)
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            println!(
                "(hyperlog skipped: could not install the JS peers with npm in {})",
                copy.display()
            );
            return None;
        }
    }
    Some(copy)
}

/// hyperlog's `bench-add.js`: nodes per second, from the JSON line it prints.
fn hyperlog(peers: &Path, mode: &str) -> Option<f64> {
    let output = Command::new("node")
        .args(["bench-add.js", &JS_NODES.to_string(), "--mode", mode])
        .current_dir(peers)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find(|line| line.starts_with('{'))?;
    let parsed: serde_json::Value = serde_json::from_str(line).ok()?;
    parsed["nodes_per_sec"].as_f64()
}

fn show(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:>9.0}/s", r))
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or_else(|| "-".to_string(), |t| format!("{:.2}x", ours / t))
}

fn main() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let fresh = |name: &str| scratch.path().join(name);

    println!("running: strata, raw rusty-leveldb, hyperlog (JS) ...");
    let add = strata_add(&fresh("add"));
    let raw_add = raw(&fresh("raw-add"), ADDS, 1);
    let batch = strata_batch(&fresh("batch"));
    let raw_batch = raw(&fresh("raw-batch"), BATCHED, BATCH);
    let import = strata_import(&fresh("import"));
    let raw_import = raw(&fresh("raw-import"), ROWS, 10_000);
    let peers = jspeers();
    let js_add = peers.as_deref().and_then(|p| hyperlog(p, "add"));
    let js_batch = peers.as_deref().and_then(|p| hyperlog(p, "batch"));

    println!();
    println!(
        "{:<44} {:>12} {:>16} {:>14} {:>10} {:>10}",
        "workload", "strata", "raw leveldb", "hyperlog JS", "vs raw", "vs JS"
    );
    let rows = [
        (
            "graph add, one node per write (20k)",
            add,
            Some(raw_add),
            js_add,
        ),
        (
            "graph batch of 1,000 (100k, parallel chains)",
            batch,
            Some(raw_batch),
            js_batch,
        ),
        (
            "dataset import, commits of 10k rows (100k)",
            import,
            Some(raw_import),
            None,
        ),
    ];
    for (name, ours, raw, js) in rows {
        println!(
            "{:<44} {:>12} {:>16} {:>14} {:>10} {:>10}",
            name,
            show(Some(ours)),
            show(raw),
            show(js),
            ratio(ours, raw),
            ratio(ours, js)
        );
    }
    println!();
    println!("raw leveldb: one record per node or row (64-hex key, the same value), rusty-leveldb");
    println!("4.0.2 default options; hyperlog JS: {JS_NODES} nodes, bench-add.js on leveldown.");
}
