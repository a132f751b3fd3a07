//! Replication throughput and memory: measurements, not checks (performance is never
//! asserted). Each test is ignored; run one explicitly, for example
//!
//! ```text
//! cargo test --release --test replicate_throughput -- --ignored --nocapture tcp_loopback
//! ```
//!
//! `STRATA_SYNC_NODES` sets the number of nodes (default 100,000). The memory measurement
//! runs the two sides in two processes so that each one's peak resident memory can be read
//! (`/usr/bin/time -v`); see `docs/protocol.md`, "Measured figures", for the commands.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata::{
    Doc, FramedSha256, Graph, GraphOptions, NodeHasher, Repository, Session, SyncFile, TcpServer,
};

fn nodes() -> usize {
    std::env::var("STRATA_SYNC_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// Writes `count` ~100-byte nodes into `graph`, in batches of 1,000, each node linking to
/// the one before it (one device's own log).
fn fill(graph: &Graph, count: usize) {
    let mut prev: Option<String> = graph.heads().unwrap().pop().map(|n| n.key);
    let mut written = 0;
    while written < count {
        let size = (count - written).min(1000);
        let mut docs = Vec::with_capacity(size);
        for i in written..written + size {
            let value = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(80));
            let doc = Doc::new(prev.take().into_iter().collect(), value);
            // Chain inside the batch: each doc links to the one before it.
            prev = Some(FramedSha256.hash(&doc.links, &doc.value));
            docs.push(doc);
        }
        graph.batch(docs).unwrap();
        written += size;
    }
}

/// Imports `count` ~80-byte rows into dataset "rows", 1,000 rows a commit.
fn import_rows(repo: &Repository, count: usize) {
    repo.import(
        "rows",
        (0..count as u32).map(|i| {
            Ok((
                format!("{i:08}").into_bytes(),
                format!("{{\"v\":{i},\"pad\":\"{}\"}}", "y".repeat(60)).into_bytes(),
            ))
        }),
        1000,
        None,
    )
    .unwrap();
}

/// Whether to measure `what` ("graph" or "rows"): `STRATA_SYNC_ONLY` picks one.
fn measure(what: &str) -> bool {
    std::env::var("STRATA_SYNC_ONLY").map_or(true, |only| only == what)
}

#[test]
#[ignore = "a measurement; run it explicitly"]
fn tcp_loopback_nodes_and_rows_per_second() {
    let count = nodes();
    if measure("graph") {
        graph_only(count);
    }
    if measure("rows") {
        rows(count);
    }
}

fn graph_only(count: usize) {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    fill(&source, count);
    let server =
        TcpServer::start("127.0.0.1:0", Session::new(), &source, Arc::new(|_, _| {})).unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let started = Instant::now();
    let report = Session::new()
        .connect_tcp(server.local_addr(), &target)
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.progress.nodes_received, count as u64);
    println!(
        "graph only: {count} nodes in {seconds:.2} s = {:.0} nodes/s",
        count as f64 / seconds
    );
    server.stop();
}

fn rows(count: usize) {
    let repo = Repository::in_memory().unwrap();
    import_rows(&repo, count);
    let server =
        TcpServer::start("127.0.0.1:0", Session::new(), &repo, Arc::new(|_, _| {})).unwrap();
    let copy = Repository::in_memory().unwrap();
    let started = Instant::now();
    let report = Session::new()
        .connect_tcp(server.local_addr(), &copy)
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.progress.operations_received, count as u64);
    println!(
        "with payload: {count} rows in {seconds:.2} s = {:.0} rows/s",
        count as f64 / seconds
    );
    server.stop();
}

/// Writes a sync file of every node (then of every row, with payload) to a temporary file
/// and applies it to an empty replica.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn sync_file_write_and_apply_rates() {
    let count = nodes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync-file");
    let rate = |what: &str, n: usize, started: Instant, bytes: u64| {
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{what}: {n} in {seconds:.2} s = {:.0}/s ({:.1} MB)",
            n as f64 / seconds,
            bytes as f64 / 1e6
        );
    };

    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    fill(&source, count);
    let started = Instant::now();
    let out = std::fs::File::create(&path).unwrap();
    let report = SyncFile::new().write(&source, out).unwrap();
    rate("graph file written, nodes", count, started, report.bytes);
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let started = Instant::now();
    let applied = SyncFile::new()
        .apply(&target, std::fs::File::open(&path).unwrap())
        .unwrap();
    assert_eq!(applied.progress.nodes_received, count as u64);
    rate("graph file applied, nodes", count, started, report.bytes);

    let repo = Repository::in_memory().unwrap();
    import_rows(&repo, count);
    let started = Instant::now();
    let out = std::fs::File::create(&path).unwrap();
    let report = SyncFile::new().write(&repo, out).unwrap();
    rate("rows file written, rows", count, started, report.bytes);
    let copy = Repository::in_memory().unwrap();
    let started = Instant::now();
    let applied = SyncFile::new()
        .apply(&copy, std::fs::File::open(&path).unwrap())
        .unwrap();
    assert_eq!(applied.progress.operations_received, count as u64);
    rate("rows file applied, rows", count, started, report.bytes);
}

fn work_dir() -> PathBuf {
    PathBuf::from(std::env::var("STRATA_SYNC_DIR").expect("set STRATA_SYNC_DIR to a folder"))
}

/// Builds (once) an on-disk repository of `STRATA_SYNC_NODES` graph nodes in
/// `$STRATA_SYNC_DIR/source`.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn memory_1_build_source() {
    let dir = work_dir().join("source");
    let graph = Graph::open(&dir, GraphOptions::default()).unwrap();
    let have = graph.change_count() as usize;
    let started = Instant::now();
    fill(&graph, nodes().saturating_sub(have));
    println!(
        "source: {} nodes ({:.1} s)",
        graph.change_count(),
        started.elapsed().as_secs_f64()
    );
}

/// Serves `$STRATA_SYNC_DIR/source` to one peer on the port written to
/// `$STRATA_SYNC_DIR/port`, then exits.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn memory_2_serve_source() {
    let graph = Graph::open(work_dir().join("source"), GraphOptions::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(work_dir().join("port"), port.to_string()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let report = Session::new().run_tcp(stream, &graph).unwrap();
    println!("served {} nodes", report.progress.nodes_sent);
}

/// Pulls everything from the server above into a fresh `$STRATA_SYNC_DIR/target`.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn memory_3_pull_into_target() {
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(dir.join("target"));
    let port = std::fs::read_to_string(dir.join("port")).unwrap();
    let graph = Graph::open(dir.join("target"), GraphOptions::default()).unwrap();
    let started = Instant::now();
    let session = Session::new().on_progress(move |p| {
        if std::env::var("STRATA_SYNC_TRACE").is_ok() {
            eprintln!("{:?} {}", started.elapsed(), p.nodes_received);
        }
    });
    let report = session
        .connect_tcp(format!("127.0.0.1:{port}"), &graph)
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "pulled {} nodes in {seconds:.1} s = {:.0} nodes/s",
        report.progress.nodes_received,
        report.progress.nodes_received as f64 / seconds
    );
}

/// The cost of identity (issue 14): the same TCP loopback transfer with plain sessions
/// between unsigned replicas, plain sessions between signed ones (every node signed when
/// written and verified when received), and secure sessions (Noise, encrypted) between
/// signed ones. `docs/security.md` gives the figures.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn secure_vs_plain_throughput() {
    use strata::{Identity, ProjectKey};
    let count = nodes();
    let project = ProjectKey::generate();
    let graph = |identity: Option<&Identity>| {
        Graph::in_memory(GraphOptions {
            signer: identity.map(Identity::signer),
            verifier: identity.map(Identity::verifier),
            ..GraphOptions::default()
        })
        .unwrap()
    };
    let repo = |identity: Option<&Identity>| match identity {
        Some(identity) => Repository::options()
            .identity(identity.clone())
            .in_memory()
            .unwrap(),
        None => Repository::in_memory().unwrap(),
    };
    let cases = [
        ("plain, unsigned", false, false),
        ("plain, signed", false, true),
        ("secure, signed", true, true),
    ];
    for (name, secure, signed) in cases {
        // A fresh session for each server: stopping a server stops its session's clones.
        let session = || match secure {
            true => Session::new().secure(&project),
            false => Session::new(),
        };
        let (a, b) = (
            Identity::in_memory(project.clone()),
            Identity::in_memory(project.clone()),
        );
        let (a, b) = (signed.then_some(&a), signed.then_some(&b));
        if measure("graph") {
            let (source, target) = (graph(a), graph(b));
            fill(&source, count);
            let (seconds, report) = over_tcp(&session, &source, &target);
            assert_eq!(report.progress.nodes_received, count as u64);
            println!(
                "{name}: graph only, {count} nodes in {seconds:.2} s = {:.0} nodes/s",
                count as f64 / seconds
            );
        }
        if measure("rows") {
            let (source, target) = (repo(a), repo(b));
            import_rows(&source, count);
            let (seconds, report) = over_tcp(&session, &source, &target);
            assert_eq!(report.progress.operations_received, count as u64);
            println!(
                "{name}: with payload, {count} rows in {seconds:.2} s = {:.0} rows/s",
                count as f64 / seconds
            );
        }
    }
}

/// Serves `source` over TCP loopback and pulls it into `target`, each with a fresh
/// `session()`; returns the seconds the transfer took and the receiving side's report.
fn over_tcp(
    session: &dyn Fn() -> Session,
    source: impl Into<strata::Replica>,
    target: impl Into<strata::Replica>,
) -> (f64, strata::SyncReport) {
    let server = TcpServer::start("127.0.0.1:0", session(), source, Arc::new(|_, _| {})).unwrap();
    let started = Instant::now();
    let report = session().connect_tcp(server.local_addr(), target).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    server.stop();
    (seconds, report)
}
