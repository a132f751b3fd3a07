//! strata against the real hyperlog 4.12.1 (node, `interop/peer.js`) over TCP: sync, push,
//! pull and live, strata as client and as server, at least 10,000 nodes each, including
//! hyperlog's out-of-order delivery (spec §3.5). Both ends must finish with the same heads
//! and node count.
//!
//! These tests need node and npm; `interop/node_modules` is installed with `npm ci` when
//! missing. Without node they fail, loudly: CI machines have it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;
use strata::{Graph, GraphOptions};
use strata::{Mode, Session};

/// One npm install at a time, across the tests of this file.
static INSTALL: Mutex<()> = Mutex::new(());

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn ensure_installed() {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = interop_dir();
    if dir.join("node_modules/hyperlog/package.json").is_file() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm is required for the hyperlog interoperability tests (install node and npm)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

struct Peer {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        ensure_installed();
        // peer.js gives up after --timeout seconds (120 by default); on a loaded CI machine
        // the JS side alone can take longer than that, so it gets ten minutes.
        let mut child = Command::new("node")
            .arg(interop_dir().join("peer.js"))
            .args(args)
            .args(["--timeout", "600"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("node is required for the hyperlog interoperability tests");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Peer { child, lines }
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("peer.js printed {line:?}"))
    }

    /// The peer's final `{nodes, heads}`, after it exited successfully.
    fn finish(mut self) -> Value {
        let stats = self.line();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer.js failed: {status}");
        stats
    }
}

fn graph(log: &str, nodes: usize) -> Graph {
    let graph = Graph::in_memory(GraphOptions {
        log_id: Some(log.into()),
        ..GraphOptions::default()
    })
    .unwrap();
    let mut prev: Vec<String> = Vec::new();
    for chunk in (0..nodes).collect::<Vec<_>>().chunks(1000) {
        let mut batch = Vec::new();
        for i in chunk {
            batch.push(strata::Doc::new(prev.clone(), format!("{log} {i}")));
            // Each document links to the previous one, earlier in the same batch.
            prev = vec![graph_key(&prev, &format!("{log} {i}"))];
        }
        graph.batch(batch).unwrap();
    }
    graph
}

/// The key a node with these links and value gets (framed SHA-256).
fn graph_key(links: &[String], value: &str) -> String {
    use strata::{FramedSha256, NodeHasher};
    FramedSha256.hash(links, value.as_bytes())
}

fn assert_same(graph: &Graph, stats: &Value, nodes: u64) {
    let heads: Vec<String> = graph.heads().unwrap().into_iter().map(|n| n.key).collect();
    let js_heads: Vec<String> = stats["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert_eq!(heads, js_heads);
    assert_eq!(graph.change_count(), nodes);
    assert_eq!(stats["nodes"].as_u64(), Some(nodes));
}

fn connect_to(peer: &mut Peer, session: &Session, graph: &Graph) -> strata::SyncReport {
    let port = peer.line()["port"].as_u64().unwrap();
    session
        .connect_tcp(("127.0.0.1", port as u16), graph)
        .unwrap()
}

#[test]
fn sync_strata_client_with_a_hyperlog_server() {
    let local = graph("strata", 5000);
    let mut peer = Peer::start(&["serve", "--id", "js", "--nodes", "5000"]);
    let report = connect_to(&mut peer, &Session::new(), &local);
    assert_same(&local, &peer.finish(), 10_000);
    assert_eq!(report.peer, strata::Peer::Hyperlog);
    assert_eq!(
        (report.progress.nodes_sent, report.progress.nodes_received),
        (5000, 5000)
    );
}

#[test]
fn push_from_strata_to_a_pulling_hyperlog() {
    let local = graph("strata", 10_000);
    let mut peer = Peer::start(&["serve", "--mode", "pull"]);
    let report = connect_to(&mut peer, &Session::new().mode(Mode::Push), &local);
    assert_same(&local, &peer.finish(), 10_000);
    assert_eq!(report.progress.nodes_sent, 10_000);
}

#[test]
fn pull_out_of_order_nodes_from_a_pushing_hyperlog() {
    // Every node of log "js" links to one of log "js-a": hyperlog sends many of them
    // before their links, and strata must hold them until the links arrive.
    let local = graph("strata", 0);
    let mut peer = Peer::start(&["serve", "--mode", "push", "--nodes", "5000", "--cross"]);
    let report = connect_to(&mut peer, &Session::new().mode(Mode::Pull), &local);
    assert_same(&local, &peer.finish(), 10_000);
    assert_eq!(report.progress.nodes_received, 10_000);
    assert_eq!(report.progress.nodes_to_receive, 10_000);
}

/// Serves `local` with `session` and lets a hyperlog client connect with `args`.
fn serve_to_hyperlog(
    local: &Graph,
    session: Session,
    args: &[&str],
) -> (Value, strata::SyncReport) {
    let (done, reports) = mpsc::channel();
    let on_session: strata::OnTcpSession = std::sync::Arc::new(move |_, result| {
        let _ = done.send(match result {
            Ok(report) => Ok(report.clone()),
            Err(error) => Err(error.to_string()),
        });
    });
    let server = strata::TcpServer::start("127.0.0.1:0", session, local, on_session).unwrap();
    let port = server.local_addr().port().to_string();
    let mut full = vec!["connect", port.as_str()];
    full.extend_from_slice(args);
    let stats = Peer::start(&full).finish();
    let report = reports
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    server.stop();
    (stats, report)
}

#[test]
fn a_hyperlog_client_syncs_with_a_strata_server() {
    let local = graph("strata", 5000);
    let (stats, report) =
        serve_to_hyperlog(&local, Session::new(), &["--nodes", "5000", "--cross"]);
    assert_same(&local, &stats, 15_000);
    assert_eq!(report.progress.nodes_received, 10_000);
}

#[test]
fn a_pushing_hyperlog_client_and_a_pulling_strata_server() {
    let local = graph("strata", 0);
    let session = Session::new().mode(Mode::Pull);
    let (stats, _) = serve_to_hyperlog(&local, session, &["--nodes", "10000", "--mode", "push"]);
    assert_same(&local, &stats, 10_000);
}

#[test]
fn live_replication_with_hyperlog_both_ways() {
    let local = graph("strata", 5000);
    let writer = local.clone();
    // Once the session is live, strata writes 100 nodes and hyperlog writes 100.
    let adding = std::thread::spawn(move || {
        while writer.change_count() < 10_000 {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..100 {
            writer.append(format!("strata live {i}")).unwrap();
        }
    });
    let args = [
        "--nodes", "5000", "--live", "--add", "100", "--expect", "10200",
    ];
    let (stats, report) = serve_to_hyperlog(&local, Session::new().live(true), &args);
    adding.join().unwrap();
    assert!(report.live);
    // hyperlog ends once it holds all 10,200; give strata's copy a moment to match.
    for _ in 0..100 {
        if local.change_count() == 10_200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_same(&local, &stats, 10_200);
}
