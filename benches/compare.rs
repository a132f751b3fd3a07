//! Side by side, in one run: strata against its anchors, with rates and ratios.
//!
//! `cargo bench --bench compare` (about two minutes here; `docs/performance.md` has a run)
//!
//! * **raw rusty-leveldb** (4.0.2, default options): the same number of records of the same
//!   sizes, with no graph, no hashing and no index: the engine's own ceiling for writes,
//!   point reads (`DB::get`) and a full scan. Durable writes are set against the disk's
//!   own ceiling instead: appending a record to a file and `fdatasync`ing it.
//! * **hyperlog 4.12.1** (the JS original, on leveldown): `bench-add.js` (add, batch) and
//!   `replicate-tcp.js bench` (TCP replication between two JS peers, two processes) from
//!   `../shared/jspeers`, copied to `target/jspeers` and installed there with
//!   `npm ci --ignore-scripts` on first use.
//! * **dat-core 6.0.2** (the JS original's dataset layer): `benches/js/datcore-bench.js`,
//!   copied into that install on every run, for row import and point gets.
//! * **strata loopback TCP sync**, graph only and with payload, in three modes: plain
//!   sessions between unsigned replicas, plain sessions between signed ones (every node
//!   signed when written, verified when received) and secure sessions (Noise, encrypted)
//!   between signed ones (issue 14's cost of identity).
//!
//! The JS parts are skipped, with a note, when node or npm is missing or the folder is not
//! beside the project. Every workload uses ~100-byte JSON values and fresh on-disk
//! databases, as the JS scripts do. Writes and syncs are single runs, durable writes and
//! reads the median of five rounds; on a shared machine read them as ±15 %.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rusty_leveldb::{DB, LdbIterator, Options, WriteBatch};
use strata::{
    Doc, Durability, FramedSha256, Graph, GraphOptions, Identity, NodeHasher, ProjectKey, Range,
    Replica, Repository, Session, SyncReport, TcpServer,
};

const ADDS: u64 = 20_000;
/// Rounds of adds, strata's and the raw engine's in turn, each from empty (the median round
/// is shown): one round swung between 0.24x and 0.32x of raw from one run to the next.
const ADD_ROUNDS: usize = 5;
/// Durable writes (an fdatasync each) per round: few, since each waits for the disk.
const SYNCED: u64 = 300;
/// Rounds of durable writes, each kind in turn, so that all see the same disk: the disk's
/// latency swings with other writers (the median round is shown).
const SYNCED_ROUNDS: usize = 5;
/// Rounds of point reads and of scans, strata's and the raw engine's in turn (the median
/// round is shown): the first round of each also fills the engine's block cache.
const READ_ROUNDS: usize = 5;
const BATCHED: u64 = 100_000;
const BATCH: u64 = 1_000;
const ROWS: u64 = 100_000;
const GETS: u64 = 10_000;
const JS_NODES: u64 = 10_000;
/// Nodes (graph only) or rows (with payload) per sync; the JS replication moves
/// `JS_NODES` (its fill alone takes ~8 s at hyperlog's add rate).
const SYNC: u64 = 100_000;

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

/// The median of some rounds' rates.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn rate(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

/// The `GETS` indexes the point reads visit: a fixed stride through `0..count`, so that
/// consecutive reads land far apart, as `datcore-bench.js` does.
fn spread(count: u64) -> impl Iterator<Item = u64> {
    (1..=GETS).map(move |n| (n * 7919) % count)
}

/// strata: `count` `add`s at `durability`, each node linking the previous one.
fn strata_add(dir: &Path, durability: Durability, count: u64) -> f64 {
    let options = GraphOptions {
        durability,
        ..GraphOptions::default()
    };
    let graph = Graph::open(dir, options).expect("open");
    let started = Instant::now();
    let mut previous: Vec<String> = Vec::new();
    for i in 0..count {
        previous = vec![graph.add(&previous, value(i)).expect("add").key];
    }
    rate(count, started)
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

/// strata: `SYNCED` durable one-row commits (what `strata put` does), each fdatasynced.
fn strata_synced_put(dir: &Path) -> f64 {
    let repo = Repository::options()
        .durability(Durability::Synced)
        .init(dir)
        .expect("init");
    let started = Instant::now();
    for i in 0..SYNCED {
        repo.put("rows", row_key(i), value(i)).expect("put");
    }
    rate(SYNCED, started)
}

/// The disk's own ceiling for durable writes: append a record of the same size to a file
/// and `fdatasync` it, `SYNCED` times (what a write-ahead log must do at the least).
fn raw_fdatasync(dir: &Path) -> f64 {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("dir");
    let mut file = std::fs::File::create(dir.join("log")).expect("create");
    let started = Instant::now();
    for i in 0..SYNCED {
        file.write_all(value(i).as_bytes()).expect("write");
        file.sync_data().expect("fdatasync");
    }
    rate(SYNCED, started)
}

fn row_key(i: u64) -> String {
    format!("row-{i:08}")
}

/// strata: an import of `ROWS` rows in commits of 10,000; the repository is kept for the
/// reads.
fn strata_import(dir: &Path) -> (f64, Repository) {
    let repo = Repository::init(dir).expect("init");
    let started = Instant::now();
    let rows = (0..ROWS).map(|i| Ok((row_key(i).into_bytes(), value(i).into_bytes())));
    repo.import("rows", rows, 10_000, None).expect("import");
    (rate(ROWS, started), repo)
}

/// strata: point gets at the latest version of the imported rows.
fn strata_get(repo: &Repository) -> f64 {
    let latest = repo.latest().expect("latest");
    let started = Instant::now();
    for i in spread(ROWS) {
        latest.get("rows", row_key(i)).expect("get").expect("row");
    }
    rate(GETS, started)
}

/// strata: an export's read, every row with its value at the latest version.
fn strata_scan(repo: &Repository) -> f64 {
    let latest = repo.latest().expect("latest");
    let started = Instant::now();
    let mut rows = 0;
    for row in latest.range("rows", Range::all()) {
        std::hint::black_box(row.expect("row"));
        rows += 1;
    }
    assert_eq!(rows as u64, ROWS);
    rate(ROWS, started)
}

fn raw_key(i: u64) -> String {
    format!("{:064x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Raw rusty-leveldb: `count` records (a 64-hex key and the value, like a node), written
/// `per_write` at a time, each write handed to the OS as strata's are. The database is
/// kept for the reads.
fn raw(dir: &Path, count: u64, per_write: u64) -> (f64, DB) {
    let mut db = DB::open(dir, Options::default()).expect("open");
    let started = Instant::now();
    let mut i = 0;
    while i < count {
        let mut batch = WriteBatch::default();
        for j in i..(i + per_write).min(count) {
            batch.put(raw_key(j).as_bytes(), value(j).as_bytes());
        }
        db.write(batch, true).expect("write");
        i += per_write;
    }
    (rate(count, started), db)
}

/// Raw rusty-leveldb: `DB::get` of records written by [`raw`].
fn raw_get(db: &mut DB, count: u64) -> f64 {
    let started = Instant::now();
    for i in spread(count) {
        db.get(raw_key(i).as_bytes()).expect("record");
    }
    rate(GETS, started)
}

/// Raw rusty-leveldb: one forward iteration over every record, keys and values copied.
fn raw_scan(db: &mut DB, count: u64) -> f64 {
    let started = Instant::now();
    let mut it = db.new_iter().expect("iterator");
    let mut seen = 0;
    while let Some((key, value)) = it.next() {
        std::hint::black_box((key, value));
        seen += 1;
    }
    assert_eq!(seen, count);
    rate(count, started)
}

/// How a sync is run: the session kind and whether the replicas sign their nodes.
#[derive(Clone, Copy)]
enum SyncMode {
    PlainUnsigned,
    PlainSigned,
    SecureSigned,
}

impl SyncMode {
    const ALL: [SyncMode; 3] = [
        SyncMode::PlainUnsigned,
        SyncMode::PlainSigned,
        SyncMode::SecureSigned,
    ];

    fn name(self) -> &'static str {
        match self {
            SyncMode::PlainUnsigned => "plain, unsigned",
            SyncMode::PlainSigned => "plain, signed",
            SyncMode::SecureSigned => "secure, signed",
        }
    }

    /// A fresh session: stopping a server stops its session's clones, so each server
    /// and each client gets its own.
    fn session(self, project: &ProjectKey) -> Session {
        match self {
            SyncMode::SecureSigned => Session::new().secure(project),
            _ => Session::new(),
        }
    }

    /// A new device identity of the project when this mode signs.
    fn identity(self, project: &ProjectKey) -> Option<Identity> {
        match self {
            SyncMode::PlainUnsigned => None,
            _ => Some(Identity::in_memory(project.clone())),
        }
    }
}

/// Serves `source` over TCP loopback and pulls it into `target`; returns the seconds the
/// transfer took and the receiving side's report.
fn over_tcp(
    mode: SyncMode,
    project: &ProjectKey,
    source: impl Into<Replica>,
    target: impl Into<Replica>,
) -> (f64, SyncReport) {
    let server = TcpServer::start(
        "127.0.0.1:0",
        mode.session(project),
        source,
        Arc::new(|_, _| {}),
    )
    .expect("serve");
    let started = Instant::now();
    let report = mode
        .session(project)
        .connect_tcp(server.local_addr(), target)
        .expect("sync");
    let seconds = started.elapsed().as_secs_f64();
    server.stop();
    (seconds, report)
}

/// strata graph-only sync of `SYNC` nodes (one log, a chain written in batches of 1,000,
/// as `tests/replicate_throughput.rs` writes it) between two on-disk graphs.
fn sync_graph(dir: &Path, mode: SyncMode, project: &ProjectKey) -> f64 {
    let graph = |name: &str| {
        let identity = mode.identity(project);
        let options = GraphOptions {
            signer: identity.as_ref().map(Identity::signer),
            verifier: identity.as_ref().map(Identity::verifier),
            ..GraphOptions::default()
        };
        Graph::open(dir.join(name), options).expect("open")
    };
    let (source, target) = (graph("source"), graph("target"));
    let mut previous: Option<String> = None;
    for round in 0..SYNC / BATCH {
        let docs = (round * BATCH..(round + 1) * BATCH)
            .map(|i| {
                let doc = Doc::new(previous.take().into_iter().collect(), value(i));
                // Chain inside the batch: each doc links to the one before it.
                previous = Some(FramedSha256.hash(&doc.links, &doc.value));
                doc
            })
            .collect();
        source.batch(docs).expect("batch");
    }
    let (seconds, report) = over_tcp(mode, project, &source, &target);
    assert_eq!(report.progress.nodes_received, SYNC);
    SYNC as f64 / seconds
}

/// strata sync with payload: `SYNC` rows imported 1,000 a commit, pulled with their
/// operations into an empty on-disk repository.
fn sync_rows(dir: &Path, mode: SyncMode, project: &ProjectKey) -> f64 {
    let repo = |name: &str| {
        let options = match mode.identity(project) {
            Some(identity) => Repository::options().identity(identity),
            None => Repository::options(),
        };
        options.init(dir.join(name)).expect("init")
    };
    let (source, target) = (repo("source"), repo("target"));
    let rows = (0..SYNC).map(|i| Ok((row_key(i).into_bytes(), value(i).into_bytes())));
    source.import("rows", rows, 1_000, None).expect("import");
    let (seconds, report) = over_tcp(mode, project, &source, &target);
    assert_eq!(report.progress.operations_received, SYNC);
    SYNC as f64 / seconds
}

/// The JS peers, installed in `target/jspeers` with this project's dat-core script beside
/// them; `None` (with the reason printed) when they cannot be run here.
fn jspeers() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = root.join("../shared/jspeers");
    let copy = root.join("target/jspeers");
    if !source.join("bench-add.js").is_file() {
        println!("(JS skipped: {} not found)", source.display());
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
                "(JS skipped: could not install the JS peers with npm in {})",
                copy.display()
            );
            return None;
        }
    }
    // Copied on every run (the source is read-only there), so that an edit applies.
    let script = "datcore-bench.js";
    let copied = std::fs::read(root.join("benches/js").join(script))
        .and_then(|text| std::fs::write(copy.join(script), text));
    if let Err(error) = copied {
        println!("(dat-core skipped: could not copy {script}: {error})");
    }
    Some(copy)
}

/// Runs `node args...` in the JS peers' folder and parses the last JSON line it prints;
/// `None`, with a note, when it fails.
fn node(peers: &Path, args: &[&str]) -> Option<serde_json::Value> {
    let output = Command::new("node")
        .args(args)
        .current_dir(peers)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed = text
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok());
    if !output.status.success() || parsed.is_none() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        println!("(node {} failed: {})", args.join(" "), tail.join(" / "));
        return None;
    }
    parsed
}

/// The JS figures, each `None` when not measured.
#[derive(Default)]
struct Js {
    add: Option<f64>,
    batch: Option<f64>,
    replicate: Option<f64>,
    import: Option<f64>,
    get: Option<f64>,
}

fn js(peers: &Path) -> Js {
    let nodes = JS_NODES.to_string();
    let hyperlog = |mode: &str| {
        node(peers, &["bench-add.js", &nodes, "--mode", mode])
            .and_then(|out| out["nodes_per_sec"].as_f64())
    };
    // The client's replication time, from its connect to the end of the session.
    let replicate = node(peers, &["replicate-tcp.js", "bench", &nodes]).and_then(|out| {
        let ok = out["ok"].as_bool() == Some(true);
        let ms = out["client"]["replicate_ms"].as_f64()?;
        ok.then(|| out["n"].as_f64().unwrap_or(0.0) / (ms / 1000.0))
    });
    let (rows, gets) = (ROWS.to_string(), GETS.to_string());
    let datcore = node(peers, &["datcore-bench.js", &rows, "10000", &gets]);
    Js {
        add: hyperlog("add"),
        batch: hyperlog("batch"),
        replicate,
        import: datcore
            .as_ref()
            .and_then(|out| out["rows_per_sec"].as_f64()),
        get: datcore
            .as_ref()
            .and_then(|out| out["gets_per_sec"].as_f64()),
    }
}

fn show(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:>9.0}/s", r))
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or_else(|| "-".to_string(), |t| format!("{:.2}x", ours / t))
}

fn main() {
    let begun = Instant::now();
    let scratch = tempfile::tempdir().expect("tempdir");
    let fresh = |name: &str| scratch.path().join(name);

    println!("running: strata, raw rusty-leveldb, hyperlog and dat-core (JS), strata sync ...");
    let mut adds: [Vec<f64>; 2] = Default::default();
    for round in 0..ADD_ROUNDS {
        let dir = fresh(&format!("add-{round}"));
        adds[0].push(strata_add(&dir, Durability::Flushed, ADDS));
        adds[1].push(raw(&fresh(&format!("raw-add-{round}")), ADDS, 1).0);
    }
    let [add, raw_add] = adds.map(median);
    let mut durable: [Vec<f64>; 3] = Default::default();
    for round in 0..SYNCED_ROUNDS {
        durable[0].push(raw_fdatasync(&fresh(&format!("raw-synced-{round}"))));
        let dir = fresh(&format!("synced-add-{round}"));
        durable[1].push(strata_add(&dir, Durability::Synced, SYNCED));
        durable[2].push(strata_synced_put(&fresh(&format!("synced-put-{round}"))));
    }
    let [raw_synced, synced_add, synced_put] = durable.map(median);
    let batch = strata_batch(&fresh("batch"));
    let (raw_batch, _) = raw(&fresh("raw-batch"), BATCHED, BATCH);
    let (import, repo) = strata_import(&fresh("import"));
    let (raw_import, mut raw_db) = raw(&fresh("raw-import"), ROWS, 10_000);
    let mut reads: [Vec<f64>; 4] = Default::default();
    for _ in 0..READ_ROUNDS {
        reads[0].push(strata_get(&repo));
        reads[1].push(raw_get(&mut raw_db, ROWS));
        reads[2].push(strata_scan(&repo));
        reads[3].push(raw_scan(&mut raw_db, ROWS));
    }
    let [get, raw_get, scan, raw_scan] = reads.map(median);
    drop((repo, raw_db));

    let project = ProjectKey::generate();
    let syncs: Vec<(SyncMode, f64, f64)> = SyncMode::ALL
        .iter()
        .enumerate()
        .map(|(n, &mode)| {
            let graph = sync_graph(&fresh(&format!("sync-graph-{n}")), mode, &project);
            let rows = sync_rows(&fresh(&format!("sync-rows-{n}")), mode, &project);
            (mode, graph, rows)
        })
        .collect();
    let js = jspeers().map(|peers| js(&peers)).unwrap_or_default();

    println!();
    println!(
        "{:<48} {:>12} {:>14} {:>14} {:>9} {:>9}",
        "workload", "strata", "raw leveldb", "JS original", "vs raw", "vs JS"
    );
    let mut rows = vec![
        (
            "graph add, one node per write (median of 5x20k)".to_string(),
            add,
            Some(raw_add),
            js.add,
        ),
        (
            "durable add, fdatasync each (median of 5x300)".to_string(),
            synced_add,
            Some(raw_synced),
            None,
        ),
        (
            "durable one-row commit (median of 5x300)".to_string(),
            synced_put,
            Some(raw_synced),
            None,
        ),
        (
            "graph batch of 1,000 (100k, parallel chains)".to_string(),
            batch,
            Some(raw_batch),
            js.batch,
        ),
        (
            "dataset import, commits of 10k rows (100k)".to_string(),
            import,
            Some(raw_import),
            js.import,
        ),
        (
            "get at latest, 10k random of 100k (median of 5)".to_string(),
            get,
            Some(raw_get),
            js.get,
        ),
        (
            "scan, every row with value, 100k (median of 5)".to_string(),
            scan,
            Some(raw_scan),
            None,
        ),
    ];
    for (mode, graph, with_payload) in syncs {
        rows.push((
            format!("sync TCP, graph only, {} (100k)", mode.name()),
            graph,
            None,
            js.replicate,
        ));
        rows.push((
            format!("sync TCP, with payload, {} (100k)", mode.name()),
            with_payload,
            None,
            None,
        ));
    }
    for (name, ours, raw, js) in rows {
        println!(
            "{:<48} {:>12} {:>14} {:>14} {:>9} {:>9}",
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
    println!("4.0.2 default options; gets are DB::get, the scan one iterator over every record.");
    println!("Durable rows are measured against the disk itself (\"raw\"): append ~100 bytes to a");
    println!("file and fdatasync it (rusty-leveldb's own sync flag does not reach the disk); the");
    println!("three kinds take turns, five rounds, median round shown.");
    println!("JS original: hyperlog 4.12.1 for the graph rows ({JS_NODES} nodes, bench-add.js;");
    println!("sync rows: replicate-tcp.js bench, two node processes, graph only), dat-core 6.0.2");
    println!("for import and get (datcore-bench.js, batches of 10k rows); all on leveldown.");
    println!("sync: strata server and client threads over 127.0.0.1, on-disk replicas; payload");
    println!(
        "rows are imported 1,000 a commit. Whole run: {:.0} s.",
        begun.elapsed().as_secs_f64()
    );
}
