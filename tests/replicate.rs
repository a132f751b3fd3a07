//! Replication between strata replicas: in process, over tiny buffers, cut at random
//! bytes, live, with payload, and against hostile peers; forks and merges across devices;
//! sync files.

mod replicate_support;

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use replicate_support::{Cut, every_version, file_bytes};
use strata::{Doc, Error, Graph, GraphOptions, Node, Repository};
use strata::{
    Limits, Mode, Payload, PipeReader, PipeWriter, Session, Stop, SyncFile, duplex, sync_in_memory,
};

fn graph(log: &str) -> Graph {
    Graph::in_memory(GraphOptions {
        log_id: Some(log.into()),
        ..GraphOptions::default()
    })
    .unwrap()
}

fn head_keys(graph: &Graph) -> Vec<String> {
    graph.heads().unwrap().into_iter().map(|n| n.key).collect()
}

/// Every node of `log`, in seq order, as stored by `graph`.
fn log_nodes(graph: &Graph, log: &str) -> Vec<Node> {
    (1..=graph.log_head(log).unwrap())
        .map(|seq| {
            let entry = graph.log_entry(log, seq).unwrap().unwrap();
            let mut node = graph.get(&entry.node).unwrap();
            (node.log, node.seq) = (log.to_string(), seq);
            node
        })
        .collect()
}

/// Copies the first `count` entries of `log` from `from` into `to`.
fn copy_prefix(from: &Graph, to: &Graph, log: &str, count: usize) {
    let nodes: Vec<Node> = log_nodes(from, log).into_iter().take(count).collect();
    to.ingest(nodes).unwrap();
}

/// A writer that records everything written through it.
struct Tap<W> {
    inner: W,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl<W: Write> Write for Tap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.seen.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// The Wants in a recorded stream, as `(log, seq)`.
fn wants(stream: &[u8]) -> Vec<(String, u64)> {
    let mut at = 0;
    let mut found = Vec::new();
    while at < stream.len() {
        let len = varint(stream, &mut at) as usize;
        let message = &stream[at..at + len];
        at += len;
        if message[0] != 2 {
            continue;
        }
        // Log { 1: log (bytes), 2: seq (varint) }, in that order.
        let mut i = 1;
        assert_eq!(message[i], 0x0a);
        i += 1;
        let log_len = varint(message, &mut i) as usize;
        let log = String::from_utf8(message[i..i + log_len].to_vec()).unwrap();
        i += log_len;
        assert_eq!(message[i], 0x10);
        i += 1;
        found.push((log, varint(message, &mut i)));
    }
    found
}

/// Runs `a` against `b` over an in-memory duplex, recording what each side sends.
fn sync_recorded(a: &Graph, b: &Graph) -> (Vec<u8>, Vec<u8>) {
    let (a_end, b_end) = duplex(64 * 1024);
    let (a_seen, b_seen) = (Arc::default(), Arc::default());
    let a_tap = Tap {
        inner: a_end.writer,
        seen: Arc::clone(&a_seen),
    };
    let b_tap = Tap {
        inner: b_end.writer,
        seen: Arc::clone(&b_seen),
    };
    let b_graph = b.clone();
    let other = thread::spawn(move || Session::new().run(&b_graph, b_end.reader, b_tap));
    Session::new().run(a, a_end.reader, a_tap).unwrap();
    other.join().unwrap().unwrap();
    let take = |seen: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *seen.lock().unwrap());
    (take(a_seen), take(b_seen))
}

/// The Mapeo Core example (seeds/000): X and Y hold partial copies of logs X, Y and Z;
/// each asks only for the entries it lacks; afterwards all copies are identical, and a
/// third device catches up through X.
#[test]
fn three_devices_ask_only_for_what_they_lack() {
    let owners: Vec<Graph> = ["X", "Y", "Z"].iter().map(|log| graph(log)).collect();
    for (owner, count) in owners.iter().zip([10, 7, 4]) {
        for i in 0..count {
            owner.append(format!("{} {i}", owner.log_id())).unwrap();
        }
    }
    let (x, y, z) = (&owners[0], &owners[1], &owners[2]);
    // X: its own 10, Y's first 5, Z's first 2. Y: X's first 6, its own 7, Z's first 4.
    copy_prefix(y, x, "Y", 5);
    copy_prefix(z, x, "Z", 2);
    let y_device = graph("Y-device");
    copy_prefix(x, &y_device, "X", 6);
    copy_prefix(y, &y_device, "Y", 7);
    copy_prefix(z, &y_device, "Z", 4);

    let (from_x, from_y) = sync_recorded(x, &y_device);
    let mut asked_by_x = wants(&from_x);
    asked_by_x.sort();
    // "send me log Y after 5" = entries 6–7; "log Z after 2" = entries 3–4.
    assert_eq!(asked_by_x, vec![("Y".into(), 5), ("Z".into(), 2)]);
    // Y asks for entries 7–10 of log X.
    assert_eq!(wants(&from_y), vec![("X".into(), 6)]);
    let expected = vec![("X".into(), 10), ("Y".into(), 7), ("Z".into(), 4)];
    assert_eq!(x.logs().unwrap(), expected);
    assert_eq!(y_device.logs().unwrap(), expected);
    // The same entries (change numbers are local, so compare content and position).
    let entries = |graph: &Graph, log: &str| -> Vec<(String, u64, Vec<u8>)> {
        log_nodes(graph, log)
            .into_iter()
            .map(|n| (n.key, n.seq, n.value))
            .collect()
    };
    for log in ["X", "Y", "Z"] {
        assert_eq!(entries(x, log), entries(&y_device, log));
    }

    // Transitively: device Z (its own 4 entries only) syncs with X and gets everything.
    let (_, from_z) = sync_recorded(x, z);
    let mut asked_by_z = wants(&from_z);
    asked_by_z.sort();
    assert_eq!(asked_by_z, vec![("X".into(), 0), ("Y".into(), 0)]);
    assert_eq!(z.logs().unwrap(), expected);
    assert_eq!(head_keys(z), head_keys(x));
    assert_eq!(head_keys(z), head_keys(&y_device));
}

/// Two graphs with a shared root and a few thousand nodes each on top.
fn diverged(each: usize) -> (Graph, Graph) {
    let a = graph("a");
    let b = graph("b");
    let root = a.append("root").unwrap();
    b.ingest(vec![root]).unwrap();
    for i in 0..each {
        a.append(format!("a{i}")).unwrap();
        b.append(format!("b{i}")).unwrap();
    }
    (a, b)
}

#[test]
fn pipes_of_three_bytes_do_not_deadlock() {
    let (a, b) = diverged(1500);
    let (a_end, b_end) = duplex(3);
    let b_graph = b.clone();
    let other = thread::spawn(move || Session::new().run(&b_graph, b_end.reader, b_end.writer));
    let ra = Session::new().run(&a, a_end.reader, a_end.writer).unwrap();
    let rb = other.join().unwrap().unwrap();
    assert_eq!(head_keys(&a), head_keys(&b));
    assert_eq!(a.change_count(), 3001);
    assert_eq!(
        (ra.progress.nodes_sent, ra.progress.nodes_received),
        (1500, 1500)
    );
    assert_eq!(rb.progress, {
        let mut p = ra.progress.clone();
        std::mem::swap(&mut p.nodes_sent, &mut p.nodes_received);
        std::mem::swap(&mut p.nodes_to_send, &mut p.nodes_to_receive);
        p
    });
    assert_eq!(ra.progress.nodes_to_send, 1500, "the totals are exact");
}

/// A plain hyperlog peer learns of a log that holds no head only through the links of the
/// nodes it is sent. The log a link points into must be right also when the linked node
/// was stored before the graph was opened (read from the stored node, not from memory):
/// otherwise the peer never asks for that log and the linking node never becomes storable.
#[test]
fn a_link_into_a_log_stored_before_opening_reaches_a_plain_hyperlog_peer() {
    let dir = tempfile::tempdir().unwrap();
    let options = || GraphOptions {
        log_id: Some("a".into()),
        ..GraphOptions::default()
    };
    let other = graph("b");
    let b1 = other.append("b1").unwrap();
    Graph::open(dir.path(), options())
        .unwrap()
        .ingest(vec![b1.clone()])
        .unwrap();
    let a = Graph::open(dir.path(), options()).unwrap();
    let a1 = a.add(std::slice::from_ref(&b1.key), "a1").unwrap();
    assert_eq!(head_keys(&a), vec![a1.key.clone()], "log b holds no head");

    let peer = graph("c");
    Session::new()
        .plain_hyperlog()
        .run_in_memory(&a, &Session::new().plain_hyperlog(), &peer)
        .unwrap();
    assert_eq!(peer.logs().unwrap(), vec![("a".into(), 1), ("b".into(), 1)]);
    assert_eq!(peer.get(&a1.key).unwrap().links, vec![b1.key]);
}

/// Two devices that write the same document store the same node (the key is the hash of
/// links and value) in their own logs. Receiving the other's copy records it in the log it
/// was sent under, so that log stays dense and its later entries are accepted; the log
/// entry names the other logs its node links into, once each, never its own.
#[test]
fn the_same_node_written_on_two_devices_is_recorded_in_both_logs() {
    let (a, b) = (graph("a"), graph("b"));
    let same = a.append("same").unwrap();
    let a2 = a.add(std::slice::from_ref(&same.key), "a2").unwrap();
    let a3 = a.add(&[a2.key.clone(), same.key.clone()], "a3").unwrap();
    assert_eq!(b.append("same").unwrap().key, same.key);
    let b2 = b.add(std::slice::from_ref(&same.key), "b2").unwrap();

    sync_in_memory(&a, &b).unwrap();
    for graph in [&a, &b] {
        assert_eq!(
            graph.logs().unwrap(),
            vec![("a".into(), 3), ("b".into(), 2)]
        );
        assert_eq!(graph.log_entry("b", 1).unwrap().unwrap().node, same.key);
        assert_eq!(graph.log_entry("a", 1).unwrap().unwrap().node, same.key);
        assert_eq!(graph.log_entry("a", 3).unwrap().unwrap().node, a3.key);
        assert_eq!(graph.log_entry("b", 2).unwrap().unwrap().node, b2.key);
    }
    // a3 links into its own log only (a2, and `same`, first written in log a).
    assert!(a.log_entry("a", 3).unwrap().unwrap().links.is_empty());
    // On b, `same` was first written in log b: a2 and a3 link into it.
    assert_eq!(b.log_entry("a", 2).unwrap().unwrap().links, vec!["b"]);
    assert_eq!(b.log_entry("a", 3).unwrap().unwrap().links, vec!["b"]);
}

#[test]
fn modes_push_and_pull_move_nodes_one_way() {
    let (a, b) = diverged(20);
    Session::new()
        .mode(Mode::Push)
        .run_in_memory(&a, &Session::new(), &b)
        .unwrap();
    assert_eq!((a.change_count(), b.change_count()), (21, 41));
    let (c, d) = diverged(20);
    Session::new()
        .mode(Mode::Pull)
        .run_in_memory(&c, &Session::new(), &d)
        .unwrap();
    assert_eq!((c.change_count(), d.change_count()), (41, 21));
    let both =
        Session::new()
            .mode(Mode::Pull)
            .run_in_memory(&c, &Session::new().mode(Mode::Pull), &d);
    assert!(both.unwrap_err().to_string().contains("both pulling"));
}

#[test]
fn a_session_cut_at_any_byte_loses_nothing_and_the_next_completes_it() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..6 {
        let (a, b) = diverged(400);
        let cut_at = rng.random_range(10..60_000);
        let (a_end, b_end) = duplex(4096);
        let b_graph = b.clone();
        let other = thread::spawn(move || Session::new().run(&b_graph, b_end.reader, b_end.writer));
        let writer = Cut {
            inner: Some(a_end.writer),
            left: cut_at,
        };
        let first = Session::new().run(&a, a_end.reader, writer);
        let second = other.join().unwrap();
        assert!(
            first.is_err() || second.is_err(),
            "round {round}: cut at {cut_at}"
        );
        let (had_a, had_b) = (a.change_count(), b.change_count());
        let (ra, rb) = Session::new()
            .run_in_memory(&a, &Session::new(), &b)
            .unwrap();
        assert_eq!(head_keys(&a), head_keys(&b), "round {round}");
        assert_eq!(a.change_count(), 801);
        assert_eq!(
            ra.progress.nodes_received,
            801 - had_a,
            "only what was missing"
        );
        assert_eq!(rb.progress.nodes_received, 801 - had_b);
    }
}

#[test]
fn live_mode_forwards_both_ways_and_never_echoes() {
    let (a, b) = diverged(5);
    let stop = Stop::new();
    let session = Session::new().live(true).stop_signal(stop.clone());
    let (s1, s2) = (session.clone(), session.clone());
    let (ga, gb) = (a.clone(), b.clone());
    let running = thread::spawn(move || s1.run_in_memory(&ga, &s2, &gb));
    for i in 0..30 {
        a.append(format!("live a{i}")).unwrap();
        b.append(format!("live b{i}")).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while (a.change_count() < 71 || b.change_count() < 71) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    // Let any echo arrive before stopping.
    thread::sleep(Duration::from_millis(300));
    stop.stop();
    let (ra, rb) = running.join().unwrap().unwrap();
    assert_eq!(head_keys(&a), head_keys(&b));
    assert_eq!((a.change_count(), b.change_count()), (71, 71));
    assert!(ra.live && rb.live);
    // Each side sent exactly the nodes it wrote: nothing it received went back.
    assert_eq!(ra.progress.nodes_sent, 35);
    assert_eq!(rb.progress.nodes_sent, 35);
}

/// Runs a strata session against a scripted peer: `script` gets the stream ends of the
/// peer (what strata sent, and where to write).
fn against<F>(session: Session, graph: &Graph, script: F) -> Result<strata::SyncReport, Error>
where
    F: FnOnce(PipeReader, PipeWriter) + Send + 'static,
{
    let (ours, theirs) = duplex(1 << 20);
    let peer = thread::spawn(move || script(theirs.reader, theirs.writer));
    let result = session.run(graph, ours.reader, ours.writer);
    peer.join().unwrap();
    result
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut len = message.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(message);
    out
}

fn node_frame(node: &Node) -> Vec<u8> {
    let mut message = vec![3];
    message.extend(node.encode());
    frame(&message)
}

const HANDSHAKE: [u8; 4] = [3, 0, 8, 1];

/// Writes `bytes` and hangs up, then reads until strata closes (so its writes never block).
fn say_then_drain(bytes: Vec<u8>) -> impl FnOnce(PipeReader, PipeWriter) + Send {
    move |mut reader, mut writer| {
        let _ = writer.write_all(&bytes);
        drop(writer);
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    }
}

fn quick() -> Session {
    Session::new().limits(Limits {
        idle_timeout: Some(Duration::from_millis(500)),
        max_waiting: 64 * 1024,
        ..Limits::default()
    })
}

#[test]
fn out_of_order_flood_past_the_limit_fails_clearly() {
    let source = graph("flood");
    for i in 0..3000 {
        source
            .append(format!("node {i} with some padding to make it bigger"))
            .unwrap();
    }
    let mut bytes = HANDSHAKE.to_vec();
    for node in log_nodes(&source, "flood").iter().rev() {
        bytes.extend(node_frame(node));
    }
    let target = graph("t");
    let error = against(quick(), &target, say_then_drain(bytes)).unwrap_err();
    assert!(error.to_string().contains("wait for links"), "{error}");
    assert_eq!(target.change_count(), 0);
}

#[test]
fn any_order_within_the_limit_is_accepted() {
    let source = graph("shuffled");
    for i in 0..300 {
        source.append(format!("n{i}")).unwrap();
    }
    let mut nodes = log_nodes(&source, "shuffled");
    nodes.swap(0, 299);
    nodes.reverse();
    // Have{log "shuffled", seq 300}, SentHeads, the nodes far out of order, SentWants.
    let mut bytes = HANDSHAKE.to_vec();
    let mut have = vec![1, 0x0a, 8];
    have.extend_from_slice(b"shuffled");
    have.extend([0x10, 0xac, 0x02]);
    bytes.extend(frame(&have));
    bytes.extend(frame(&[4]));
    for node in &nodes {
        bytes.extend(node_frame(node));
    }
    bytes.extend(frame(&[5]));
    let target = graph("t");
    let report = against(Session::new(), &target, say_then_drain(bytes)).unwrap();
    assert_eq!(report.progress.nodes_received, 300);
    assert_eq!(report.progress.nodes_to_receive, 300);
    assert_eq!(head_keys(&target), head_keys(&source));
}

#[test]
fn hostile_peers_end_the_session_with_a_clear_error() {
    let source = graph("h");
    let first = source.append("first").unwrap();
    let second = source.append("second").unwrap();
    let mut forged = second.clone();
    forged.value = b"not what was hashed".to_vec();
    // A node that claims the key of another: its content hashes elsewhere.
    let mut claims_other = first.clone();
    claims_other.value = b"something else".to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "checksum mismatch",
            [HANDSHAKE.to_vec(), node_frame(&first), node_frame(&forged)].concat(),
        ),
        (
            "checksum mismatch",
            [HANDSHAKE.to_vec(), node_frame(&claims_other)].concat(),
        ),
        (
            "over the limit",
            [HANDSHAKE.to_vec(), vec![0xff, 0xff, 0xff, 0xff, 0x7f]].concat(),
        ),
        (
            "not a valid varint",
            [HANDSHAKE.to_vec(), vec![0xff; 12]].concat(),
        ),
        (
            "malformed Have",
            [HANDSHAKE.to_vec(), frame(&[1, 0xff, 0x01])].concat(),
        ),
        (
            "ended inside a frame",
            [HANDSHAKE.to_vec(), vec![0x40, 3, 8]].concat(),
        ),
        ("before its handshake", frame(&[4])),
        ("invalid mode", frame(&[0, 8, 1, 0x12, 3, b'b', b'a', b'd'])),
        ("closed the stream before", HANDSHAKE.to_vec()),
    ];
    for (expected, bytes) in cases {
        let target = graph("t");
        let error = against(quick(), &target, say_then_drain(bytes)).unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
        assert!(
            target.change_count() <= 1,
            "{expected}: only whole verified nodes"
        );
    }

    // A peer that never sends SentHeads (and never hangs up) meets the idle timeout.
    let target = graph("t");
    let started = Instant::now();
    let error = against(quick(), &target, |reader, mut writer| {
        writer.write_all(&HANDSHAKE).unwrap();
        thread::sleep(Duration::from_millis(1500));
        drop(reader);
    })
    .unwrap_err();
    assert!(error.to_string().contains("nothing moved"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Unknown message types are ignored, as hyperlog ignores them.
    let target = graph("t");
    let bytes = [
        HANDSHAKE.to_vec(),
        frame(&[99, 1, 2, 3]),
        frame(&[4]),
        frame(&[5]),
    ]
    .concat();
    let report = against(quick(), &target, say_then_drain(bytes)).unwrap();
    assert_eq!(report.progress.nodes_received, 0);
}

#[test]
fn repositories_sync_rows_and_files() {
    let a = Repository::in_memory().unwrap();
    let b = Repository::in_memory().unwrap();
    a.put("sites", "k1", "v1").unwrap();
    a.put("other", "k2", "v2").unwrap();
    let blob = vec![42u8; 200_000];
    a.put_file("files", "big.bin", &mut &blob[..]).unwrap();
    let (ra, rb) = Session::new()
        .run_in_memory(&a, &Session::new(), &b)
        .unwrap();
    assert_eq!(rb.progress.payloads_received, 3);
    assert_eq!(rb.progress.files_received, 1);
    assert_eq!(rb.progress.file_bytes_received, 200_000);
    assert_eq!(ra.progress.files_sent, 1);
    assert_eq!(b.get("sites", "k1").unwrap().unwrap().value, b"v1");
    let mut copy = Vec::new();
    b.open_file("files", "big.bin")
        .unwrap()
        .read_to_end(&mut copy)
        .unwrap();
    assert_eq!(copy, blob);
    assert_eq!(a.heads().unwrap(), b.heads().unwrap());
}

#[test]
fn graph_only_then_a_full_sync_completes_pending_commits() {
    let a = Repository::in_memory().unwrap();
    let b = Repository::in_memory().unwrap();
    a.put("d", "hello", "world").unwrap();
    a.put("d", "hello", "again").unwrap();
    let graph_only = Session::new().payload(Payload::GraphOnly);
    Session::new().run_in_memory(&a, &graph_only, &b).unwrap();
    assert_eq!(b.graph().change_count(), 2);
    assert_eq!(b.status().unwrap().pending, 2);
    assert!(b.get("d", "hello").unwrap().is_none());
    let (_, rb) = Session::new()
        .run_in_memory(&a, &Session::new(), &b)
        .unwrap();
    assert_eq!(rb.progress.nodes_received, 0);
    assert_eq!(rb.progress.payloads_received, 2);
    assert_eq!(b.status().unwrap().pending, 0);
    assert_eq!(b.get("d", "hello").unwrap().unwrap().value, b"again");
}

#[test]
fn rows_only_and_chosen_datasets() {
    let a = Repository::in_memory().unwrap();
    a.put("sites", "k", "v").unwrap();
    a.put("private", "k", "secret").unwrap();
    let blob = b"file bytes".to_vec();
    a.put_file("sites", "f", &mut &blob[..]).unwrap();
    let hash = a.get("sites", "f").unwrap().unwrap().file.unwrap().hash;

    let rows = Repository::in_memory().unwrap();
    Session::new()
        .run_in_memory(&a, &Session::new().payload(Payload::RowsOnly), &rows)
        .unwrap();
    assert_eq!(rows.get("private", "k").unwrap().unwrap().value, b"secret");
    assert!(rows.get("sites", "f").unwrap().is_some());
    assert!(
        !rows.has_blob(&hash).unwrap(),
        "rows only: no file contents"
    );

    let chosen = Repository::in_memory().unwrap();
    let only_sites = Session::new().payload(Payload::Datasets(vec![b"sites".to_vec()]));
    Session::new()
        .run_in_memory(&a, &only_sites, &chosen)
        .unwrap();
    assert!(chosen.has_blob(&hash).unwrap());
    assert_eq!(
        chosen.status().unwrap().pending,
        2,
        "the private commit (and its child) wait"
    );
}

#[test]
fn a_graph_session_and_a_repository_session_exchange_nodes() {
    let repo = Repository::in_memory().unwrap();
    repo.put("d", "k", "v").unwrap();
    let bare = graph("bare");
    bare.add_doc(Doc::new(vec![], "plain")).unwrap();
    let (rr, rg) = Session::new()
        .run_in_memory(&repo, &Session::new(), &bare)
        .unwrap();
    assert_eq!(
        (rr.progress.nodes_received, rg.progress.nodes_received),
        (1, 1)
    );
    assert_eq!(rr.progress.payloads_sent, 0);
}

/// The Mapeo example's forks: two devices edit the same row concurrently and sync; both
/// show the same two forks; a merge on one resolves them on both after the next sync.
#[test]
fn forks_from_two_devices_show_alike_and_a_merge_settles_them_everywhere() {
    let x = Repository::in_memory().unwrap();
    let z = Repository::in_memory().unwrap();
    x.put("points", "A", r#"{"name":"spring"}"#).unwrap();
    sync_in_memory(&x, &z).unwrap();
    let on_x = x.put("points", "A", r#"{"name":"well"}"#).unwrap();
    let on_z = z.put("points", "A", r#"{"name":"fountain"}"#).unwrap();
    sync_in_memory(&x, &z).unwrap();

    let forks = |repo: &Repository| -> Vec<(String, Vec<u8>)> {
        let mut forks: Vec<_> = repo
            .forks("points", "A")
            .unwrap()
            .into_iter()
            .map(|f| (f.version.as_str().to_string(), f.value))
            .collect();
        forks.sort();
        forks
    };
    assert_eq!(forks(&x).len(), 2);
    assert_eq!(forks(&x), forks(&z));
    let mut both = vec![on_x.as_str().to_string(), on_z.as_str().to_string()];
    both.sort();
    assert_eq!(forks(&x).into_iter().map(|f| f.0).collect::<Vec<_>>(), both);
    assert_eq!(x.heads().unwrap(), z.heads().unwrap());
    assert!(x.get("points", "A").unwrap().unwrap().forked);

    let merged = z
        .merge(&[])
        .put("points", "A", r#"{"name":"well and fountain"}"#)
        .commit()
        .unwrap();
    sync_in_memory(&x, &z).unwrap();
    for repo in [&x, &z] {
        assert_eq!(repo.heads().unwrap(), vec![merged.clone()]);
        let row = repo.get("points", "A").unwrap().unwrap();
        assert_eq!(row.value, br#"{"name":"well and fountain"}"#);
        assert!(!row.forked);
        assert_eq!(repo.forks("points", "A").unwrap().len(), 1);
    }
    assert_eq!(every_version(&x), every_version(&z));
}

#[test]
fn files_left_out_by_a_rows_only_sync_come_with_the_next_full_sync() {
    let a = Repository::in_memory().unwrap();
    a.put_file("photos", "p1.jpg", &mut &[1u8; 70_000][..])
        .unwrap();
    a.put_file("photos", "p2.jpg", &mut &b"small"[..]).unwrap();
    let b = Repository::in_memory().unwrap();
    Session::new()
        .run_in_memory(&a, &Session::new().payload(Payload::RowsOnly), &b)
        .unwrap();
    let p1 = b.get("photos", "p1.jpg").unwrap().unwrap().file.unwrap();
    assert!(!b.has_blob(&p1.hash).unwrap());
    // Files on their way are not problems: fsck counts them as wanted.
    let check = b.fsck(&mut |_, _| {}).unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    assert_eq!((check.wanted_files, check.blobs), (2, 0));

    let (_, rb) = Session::new()
        .run_in_memory(&a, &Session::new(), &b)
        .unwrap();
    assert_eq!(rb.progress.nodes_received, 0);
    assert_eq!(rb.progress.files_received, 2);
    assert_eq!(rb.progress.file_bytes_received, 70_005);
    assert_eq!(file_bytes(&b, "photos", "p1.jpg"), vec![1u8; 70_000]);
    assert_eq!(file_bytes(&b, "photos", "p2.jpg"), b"small");
    let check = b.fsck(&mut |_, _| {}).unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    assert_eq!((check.wanted_files, check.blobs), (0, 2));
    // Nothing is left to fetch.
    let (_, again) = Session::new()
        .run_in_memory(&a, &Session::new(), &b)
        .unwrap();
    assert_eq!(again.progress.files_received, 0);
}

#[test]
fn a_missing_file_that_no_peer_is_sending_is_a_problem() {
    // Only files received without their blob are wanted; one deleted from the disk is not.
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    repo.put_file("photos", "p.jpg", &mut &[6u8; 20_000][..])
        .unwrap();
    let file = repo.get("photos", "p.jpg").unwrap().unwrap().file.unwrap();
    let blobs = dir.path().join(".strata").join("blobs");
    let stored = std::fs::read_dir(blobs.join(&file.hash[..2]))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().contains(&file.hash[2..]))
        .expect("the stored blob");
    std::fs::remove_file(stored).unwrap();
    let check = repo.fsck(&mut |_, _| {}).unwrap();
    assert_eq!(check.wanted_files, 0);
    assert!(
        check.problems.iter().any(|p| p.contains(&file.hash)),
        "{:?}",
        check.problems
    );
}

#[test]
fn a_blob_that_does_not_match_its_hash_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    for repo in [
        Repository::init(dir.path()).unwrap(),
        Repository::in_memory().unwrap(),
    ] {
        let right = repo.add_blob(&mut &b"the right bytes"[..]).unwrap();
        let expected = strata::FileRef {
            hash: right.hash.replace('0', "1").replace('a', "0"),
            size: right.size,
        };
        assert_ne!(expected.hash, right.hash);
        let error = repo
            .add_blob_checked(&mut &b"the wrong bytes"[..], &expected)
            .unwrap_err();
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        assert!(!repo.has_blob(&expected.hash).unwrap());
        let wrong = repo.add_blob(&mut &b"probe"[..]).unwrap();
        assert!(repo.has_blob(&wrong.hash).unwrap());
        // A longer stream fails as soon as it passes the expected size.
        let long = vec![7u8; 1 << 20];
        let small = strata::FileRef {
            hash: expected.hash.clone(),
            size: 10,
        };
        assert!(repo.add_blob_checked(&mut &long[..], &small).is_err());
        let long_hash = repo.add_blob(&mut &long[..]).unwrap().hash;
        // (Stored only by the unchecked call just above.)
        assert!(repo.has_blob(&long_hash).unwrap());
        repo.add_blob_checked(&mut &b"the right bytes"[..], &right)
            .unwrap();
        assert!(repo.has_blob(&right.hash).unwrap());
    }
}

/// A sync file written from `from` for a recipient holding `since`.
fn sync_file(from: &Repository, since: Vec<(String, u64)>) -> Vec<u8> {
    let mut out = Vec::new();
    SyncFile::new().since(since).write(from, &mut out).unwrap();
    out
}

fn apply(bytes: &[u8], to: &Repository) -> Result<strata::SyncReport, Error> {
    SyncFile::new().apply(to, io::Cursor::new(bytes.to_vec()))
}

#[test]
fn a_sync_file_brings_what_the_recipient_lacks_and_applying_it_again_changes_nothing() {
    let a = Repository::in_memory().unwrap();
    let b = Repository::in_memory().unwrap();
    a.put("sites", "s1", "one").unwrap();
    sync_in_memory(&a, &b).unwrap();
    a.put("sites", "s2", "two").unwrap();
    a.put_file("photos", "p.jpg", &mut &[9u8; 150_000][..])
        .unwrap();
    b.put("sites", "s3", "three").unwrap();

    let bytes = sync_file(&a, b.graph().logs().unwrap());
    let report = apply(&bytes, &b).unwrap();
    assert_eq!(report.progress.nodes_received, 2, "only what b lacked");
    assert_eq!(report.progress.nodes_to_receive, 2);
    assert_eq!(report.progress.payloads_received, 2);
    assert_eq!(report.progress.files_received, 1);
    assert_eq!(b.get("sites", "s2").unwrap().unwrap().value, b"two");
    assert_eq!(file_bytes(&b, "photos", "p.jpg"), vec![9u8; 150_000]);
    assert!(b.fsck(&mut |_, _| {}).unwrap().is_ok());

    let before = every_version(&b);
    let again = apply(&bytes, &b).unwrap();
    assert_eq!(again.progress.nodes_received, 0);
    assert_eq!(again.progress.payloads_received, 0);
    assert_eq!(again.progress.files_received, 0);
    assert_eq!(every_version(&b), before);

    // And back the other way, everything: a's copy then matches b's at every version.
    apply(&sync_file(&b, Vec::new()), &a).unwrap();
    assert_eq!(every_version(&a), every_version(&b));
    assert_eq!(a.heads().unwrap(), b.heads().unwrap());
}

#[test]
fn a_truncated_or_altered_sync_file_is_refused_whole() {
    let a = Repository::in_memory().unwrap();
    for i in 0..20 {
        a.put("sites", format!("s{i}"), format!("value {i}"))
            .unwrap();
    }
    a.put_file("photos", "p.jpg", &mut &[5u8; 100_000][..])
        .unwrap();
    let bytes = sync_file(&a, Vec::new());
    let untouched = |b: &Repository| {
        assert_eq!(b.graph().change_count(), 0);
        assert!(b.missing_payloads().unwrap().is_empty());
        let photo = a.get("photos", "p.jpg").unwrap().unwrap().file.unwrap();
        assert!(!b.has_blob(&photo.hash).unwrap());
    };
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [
        0,
        5,
        13,
        40,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        cases.push((format!("cut at {cut}"), bytes[..cut].to_vec()));
    }
    for at in [
        3,
        20,
        200,
        bytes.len() / 2,
        bytes.len() - 40,
        bytes.len() - 2,
    ] {
        let mut altered = bytes.clone();
        altered[at] ^= 0x20;
        cases.push((format!("byte {at} altered"), altered));
    }
    cases.push(("a byte appended".into(), [bytes.clone(), vec![0]].concat()));
    for (what, file) in cases {
        let b = Repository::in_memory().unwrap();
        let error = apply(&file, &b).unwrap_err().to_string();
        assert!(
            error.contains("sync file") || error.contains("malformed"),
            "{what}: {error}"
        );
        untouched(&b);
    }
    let b = Repository::in_memory().unwrap();
    apply(&bytes, &b).unwrap();
    assert_eq!(every_version(&a), every_version(&b));
}

#[test]
fn a_sync_file_that_does_not_continue_the_recipient_is_refused() {
    let a = Repository::in_memory().unwrap();
    a.put("sites", "s1", "one").unwrap();
    a.put("sites", "s2", "two").unwrap();
    let b = Repository::in_memory().unwrap();
    // Written for a recipient holding a's first commit; b holds nothing.
    let log = a.graph().log_id();
    let bytes = sync_file(&a, vec![(log, 1)]);
    let error = apply(&bytes, &b).unwrap_err().to_string();
    assert!(error.contains("apply an earlier file first"), "{error}");
    assert_eq!(b.graph().change_count(), 0);
}

#[test]
fn pull_and_push_against_a_sync_peer_carry_rows_between_repositories() {
    // A puller's peer never says SentWants and a pusher's never says SentHeads: both
    // sides must still reach the end of the graph, and with it the end of the payload.
    let limits = strata::Limits {
        total_timeout: Some(std::time::Duration::from_secs(10)),
        ..strata::Limits::default()
    };
    let a = strata::Repository::in_memory().unwrap();
    a.put("sites", "A", "1").unwrap();
    let (b, c) = (
        strata::Repository::in_memory().unwrap(),
        strata::Repository::in_memory().unwrap(),
    );
    let sync_peer = Session::new().limits(limits.clone());
    let (pulled, _) = Session::new()
        .mode(Mode::Pull)
        .limits(limits.clone())
        .run_in_memory(&b, &sync_peer, &a)
        .unwrap();
    assert_eq!(pulled.progress.payloads_received, 1);
    assert_eq!(b.get("sites", "A").unwrap().unwrap().value, b"1");
    let (pushed, _) = Session::new()
        .mode(Mode::Push)
        .limits(limits)
        .run_in_memory(&a, &sync_peer, &c)
        .unwrap();
    assert_eq!(pushed.progress.payloads_sent, 1);
    assert_eq!(c.get("sites", "A").unwrap().unwrap().value, b"1");
}

/// A sender reads nodes ahead on a thread of its own, holding a clone of the graph. A peer
/// that takes a few nodes and hangs up ends the session with an error, and by the time the
/// session returns that thread is gone: the repository can be opened again at once (its
/// lock is released only when the last clone of the graph is dropped).
#[test]
fn a_peer_that_hangs_up_mid_way_leaves_no_reader_holding_the_repository() {
    use strata::internals::decoders::{LogHead, Message};
    let dir = tempfile::tempdir().unwrap();
    let source = Graph::open(dir.path(), GraphOptions::default()).unwrap();
    for batch in 0..40 {
        let docs = (0..1000).map(|i| Doc::new(vec![], format!("{batch}/{i}")));
        source.batch(docs.collect()).unwrap();
    }
    let (log, _) = source.logs().unwrap().pop().unwrap();
    let want = Message::Want(LogHead { log, seq: 0 }).encode();
    let result = against(Session::new(), &source, move |mut reader, mut writer| {
        writer
            .write_all(&[HANDSHAKE.to_vec(), frame(&want)].concat())
            .unwrap();
        // About a thousand nodes, while the reader is still well ahead, then hang up.
        let mut some = vec![0; 64 * 1024];
        reader.read_exact(&mut some).unwrap();
    });
    assert!(result.is_err(), "{result:?}");
    drop(source);
    Graph::open(dir.path(), GraphOptions::default()).expect("no clone of the graph is left");
}
