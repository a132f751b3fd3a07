//! Hostile peers and files: a corpus of malicious or broken input played against a server
//! in a child process (this test binary started again, serving a repository with
//! `TcpServer` or `Session::serve_stdio`, or applying a sync file with `SyncFile::apply`),
//! so that its peak memory (VmHWM) is its own.
//!
//! Every case must end with a clear error (or, for unknown message types, be ignored as
//! hyperlog ignores them) within a bounded time; the TCP server must go on serving honest
//! peers during and after the corpus (a real sync runs beside the flood, the slowloris and
//! the silent peers, and its rows are compared); and afterwards the served repository holds
//! exactly what it held, row for row at every version, plus at most whole verified nodes,
//! with fsck clean.
//!
//! No test harness (`harness = false`): the stdio server's standard output is the protocol
//! stream. `cargo test --release --test hostile_peers` prints one line per case: the
//! error, the time it took, and the server's peak memory (figures in docs/reliability.md).
//! `STRATA_HOSTILE_LOGS` sets how many logs the "haves for millions of logs" peer names
//! (default 150,000) and `STRATA_HOSTILE_MAX_LOGS` the servers' limit on logs per session
//! (default 100,000; the library's default limit is 1,000,000: run with
//! `STRATA_HOSTILE_LOGS=2000000 STRATA_HOSTILE_MAX_LOGS=1000000` for the peak at that limit).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use strata::internals::decoders::{FrameDecoder, LogHead, Message};
use strata::{Graph, GraphOptions, Limits, Node, Range, Repository, Session, SyncFile, TcpServer};

/// Set in a child: serve the repository at this path over TCP.
const SERVE_TCP: &str = "STRATA_HOSTILE_SERVE_TCP";
/// Set in a child: serve the repository at this path on standard input and output.
const SERVE_STDIO: &str = "STRATA_HOSTILE_SERVE_STDIO";
/// Set in a child: apply the sync file named by `APPLY_FILE` to the repository here.
const APPLY: &str = "STRATA_HOSTILE_APPLY";
const APPLY_FILE: &str = "STRATA_HOSTILE_APPLY_FILE";

/// The server's idle timeout: every silent or stalled peer is cut after this.
const IDLE: Duration = Duration::from_secs(1);
/// The longest any case may take, the idle timeout and the slowest peer included.
const BOUND: Duration = Duration::from_secs(15);

/// The limits every server and applier in the corpus runs with: the defaults, but a short
/// idle timeout and a total one (a peer that sends valid but useless frames forever is
/// cut by the total).
fn limits() -> Limits {
    Limits {
        max_logs: env_count("STRATA_HOSTILE_MAX_LOGS", 100_000),
        idle_timeout: Some(IDLE),
        total_timeout: Some(Duration::from_secs(3)),
        ..Limits::default()
    }
}

/// A count from the environment, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// This process's peak resident memory, in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn outcome(result: &strata::Result<strata::SyncReport>) -> String {
    match result {
        Ok(report) => format!("ok {} nodes", report.progress.nodes_received),
        Err(error) => format!("error: {error}"),
    }
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(SERVE_TCP) {
        return serve_tcp(Path::new(&path));
    }
    if let Ok(path) = std::env::var(SERVE_STDIO) {
        let repo = Repository::open(&path).expect("the child opens its repository");
        let result = Session::new().limits(limits()).serve_stdio(&repo);
        eprintln!("result {}", outcome(&result));
        eprintln!("peak {}", peak_kib());
        return ExitCode::SUCCESS;
    }
    if let Ok(path) = std::env::var(APPLY) {
        let repo = Repository::open(&path).expect("the child opens its repository");
        let file = std::env::var(APPLY_FILE).expect("the file to apply");
        let file = std::fs::File::open(file).expect("the file to apply");
        let result = SyncFile::new().limits(limits()).apply(&repo, file);
        eprintln!("result {}", outcome(&result));
        eprintln!("peak {}", peak_kib());
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let corpus = Corpus::new();
    let tcp = tcp_server_survives_the_corpus(&corpus);
    let stdio = stdio_server_survives_the_corpus(&corpus);
    let files = sync_file_apply_survives_the_corpus(&corpus);
    // Unknown message types on the wire are ignored by design (as hyperlog ignores them):
    // the one case per transport that is not rejected.
    println!(
        "hostile: {} of {} cases rejected (tcp {}, stdio {}, files {}) in {:.1} s",
        tcp.0 + stdio.0 + files.0,
        tcp.1 + stdio.1 + files.1,
        tcp.0,
        stdio.0,
        files.0,
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 3 passed; 0 failed");
    ExitCode::SUCCESS
}

/// The TCP server child: serves until its standard input closes, printing each finished
/// session (`session ADDR RESULT`) and, on `peak`, its peak memory.
fn serve_tcp(path: &Path) -> ExitCode {
    let repo = Repository::open(path).expect("the child opens its repository");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let printer = out.clone();
    let server = TcpServer::start(
        "127.0.0.1:0",
        Session::new().limits(limits()),
        &repo,
        Arc::new(move |peer, result| {
            let mut out = printer.lock().expect("stdout");
            let _ = writeln!(out, "session {peer} {}", outcome(result));
            let _ = out.flush();
        }),
    )
    .expect("the server starts");
    {
        let mut out = out.lock().expect("stdout");
        let _ = writeln!(out, "port {}", server.local_addr().port());
        let _ = out.flush();
    }
    for line in std::io::stdin().lock().lines() {
        if line.is_ok_and(|line| line == "peak") {
            let mut out = out.lock().expect("stdout");
            let _ = writeln!(out, "peak {}", peak_kib());
            let _ = out.flush();
        }
    }
    server.stop();
    ExitCode::SUCCESS
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    strata::internals::decoders::encode_frame(message, &mut out);
    out
}

fn msg(message: &Message) -> Vec<u8> {
    frame(&message.encode())
}

fn handshake() -> Vec<u8> {
    frame(&[0, 8, 1])
}

/// How a hostile peer behaves after writing its bytes.
#[derive(Clone, Copy)]
enum Then {
    /// Hangs up its writing side.
    HangUp,
    /// Stays connected and says nothing more.
    Stall,
    /// Writes its bytes one at a time, this far apart, and never finishes.
    Trickle(Duration),
}

/// One hostile case: what the peer sends, how it behaves, and what the error must say
/// (`None`: the input is to be ignored and the session to complete).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expect: Option<&'static str>,
}

/// The corpus, and the nodes a server may keep from it (whole and verified).
struct Corpus {
    cases: Vec<Case>,
    /// Nodes of the hostile peers that pass every check: a server may store these.
    valid: BTreeSet<String>,
    /// A real sync file, for the file cases to take apart.
    file_frames: Vec<Vec<u8>>,
}

impl Corpus {
    fn new() -> Corpus {
        let source = Graph::in_memory(GraphOptions::default()).expect("graph");
        let first = source.append("first").expect("append");
        let second = source.append("second").expect("append");
        let mut forged = second.clone();
        forged.value = b"not what was hashed".to_vec();
        let mut claims_other = first.clone();
        claims_other.value = b"the value of another node".to_vec();
        // A node linking to a node no one sends: made in another graph that has its link.
        let elsewhere = Graph::in_memory(GraphOptions::default()).expect("graph");
        let unsent = elsewhere.append("never sent").expect("append");
        let mut dangling = elsewhere.add(&[unsent.key], "dangling").expect("add");
        dangling.seq = 1;
        let dangling_have = msg(&Message::Have(LogHead {
            log: dangling.log.clone(),
            seq: 1,
        }));
        let mut gap = second.clone();
        gap.seq = 3;
        let log = first.log.clone();
        let have = |seq| {
            msg(&Message::Have(LogHead {
                log: log.clone(),
                seq,
            }))
        };
        let node = |n: &Node| msg(&Message::Node(n.clone()));
        let logs = env_count("STRATA_HOSTILE_LOGS", 150_000);
        let mut many_haves = handshake();
        for i in 0..logs {
            many_haves.extend(msg(&Message::Have(LogHead {
                log: format!("{i:x}"),
                seq: 1,
            })));
        }
        let h = handshake;
        let cases = vec![
            Case {
                name: "wrong hash",
                bytes: [h(), have(2), frame(&[4]), node(&first), node(&forged)].concat(),
                then: Then::HangUp,
                expect: Some("checksum mismatch"),
            },
            Case {
                name: "node claiming another's hash",
                bytes: [h(), have(1), frame(&[4]), node(&claims_other)].concat(),
                then: Then::HangUp,
                expect: Some("checksum mismatch"),
            },
            Case {
                name: "missing link",
                bytes: [
                    h(),
                    dangling_have,
                    frame(&[4]),
                    node(&dangling),
                    frame(&[5]),
                ]
                .concat(),
                then: Then::HangUp,
                expect: Some("never became storable: node"),
            },
            Case {
                name: "changelog with a gap",
                bytes: [
                    h(),
                    have(3),
                    frame(&[4]),
                    node(&first),
                    node(&gap),
                    frame(&[5]),
                ]
                .concat(),
                then: Then::HangUp,
                expect: Some("waits for entry 2 of log"),
            },
            Case {
                name: "truncated frame",
                bytes: [h(), vec![0x40, 3, 8]].concat(),
                then: Then::HangUp,
                expect: Some("ended inside a frame"),
            },
            Case {
                name: "length prefix of 4 GiB",
                bytes: [h(), vec![0x80, 0x80, 0x80, 0x80, 0x10]].concat(),
                then: Then::Stall,
                expect: Some("over the limit"),
            },
            Case {
                name: "invalid varint",
                bytes: [h(), vec![0xff; 12]].concat(),
                then: Then::Stall,
                expect: Some("not a valid varint"),
            },
            Case {
                name: "garbage protobuf",
                bytes: [h(), frame(&[1, 0xff, 0x01, 0x07, 0x99])].concat(),
                then: Then::Stall,
                expect: Some("malformed Have"),
            },
            Case {
                name: "garbage node",
                bytes: [h(), frame(&[3, 0x0a, 0x40, 1, 2])].concat(),
                then: Then::Stall,
                expect: Some("malformed"),
            },
            Case {
                name: "unknown message types",
                bytes: [
                    h(),
                    frame(&[99, 1, 2, 3]),
                    frame(&[200]),
                    frame(&[4]),
                    frame(&[5]),
                ]
                .concat(),
                then: Then::HangUp,
                expect: None,
            },
            Case {
                name: "no handshake",
                bytes: frame(&[4]),
                then: Then::Stall,
                expect: Some("before its handshake"),
            },
            Case {
                name: "haves for millions of logs",
                bytes: many_haves,
                then: Then::HangUp,
                expect: Some("logs"),
            },
            Case {
                name: "never sends SentHeads",
                bytes: [h(), have(2)].concat(),
                then: Then::Stall,
                expect: Some("nothing moved"),
            },
            Case {
                name: "stops talking",
                bytes: [h(), have(2), frame(&[4]), node(&first)].concat(),
                then: Then::Stall,
                expect: Some("nothing moved"),
            },
            Case {
                name: "slowloris (one byte a time)",
                bytes: [h(), vec![0xe8, 0x07], vec![3; 1000]].concat(),
                then: Then::Trickle(Duration::from_millis(200)),
                expect: Some("nothing moved"),
            },
            Case {
                name: "slowloris (useless frames)",
                bytes: [h(), frame(&[99]).repeat(200)].concat(),
                then: Then::Trickle(Duration::from_millis(30)),
                expect: Some("took longer than its limit"),
            },
        ];
        let valid = [first.key.clone()].into();
        let author = Repository::in_memory().expect("repository");
        for i in 0..3 {
            author
                .put("sites", format!("f{i}"), format!("from a file {i}"))
                .expect("put");
        }
        author
            .put_file("photos", "p.jpg", &mut &[4u8; 70_000][..])
            .expect("put_file");
        let mut file = std::io::Cursor::new(Vec::new());
        SyncFile::new().write(&author, &mut file).expect("write");
        Corpus {
            cases,
            valid,
            file_frames: split_file(file.get_ref()),
        }
    }
}

/// Every row of one version: (dataset, key, value).
type Rows = Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>;

/// What a repository holds: its node keys, and every row of every version.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    nodes: BTreeSet<String>,
    rows: Vec<(String, Rows)>,
}

fn snapshot(repo: &Repository) -> Snapshot {
    let nodes: BTreeSet<String> = repo
        .graph()
        .changes(0)
        .map(|node| node.expect("a stored node").key)
        .collect();
    let mut rows = Vec::new();
    for key in &nodes {
        // Graph nodes that are not commits have no rows.
        let Ok(version) = repo.resolve(key) else {
            continue;
        };
        let view = repo.at(&version).expect("a view");
        let mut all = Vec::new();
        for dataset in view.datasets().expect("datasets") {
            for row in view.range(&dataset, Range::all()) {
                let row = row.expect("a row");
                all.push((dataset.clone(), row.key, row.value));
            }
        }
        rows.push((key.clone(), all));
    }
    Snapshot { nodes, rows }
}

/// A repository with a few versions on disk for a server to serve.
fn served(dir: &Path) -> (PathBuf, Snapshot) {
    let path = dir.join("served");
    let repo = Repository::init(&path).expect("init");
    for i in 0..5 {
        repo.put("sites", format!("s{i}"), format!("served {i}"))
            .expect("put");
    }
    repo.put_file("photos", "q.jpg", &mut &[9u8; 50_000][..])
        .expect("put_file");
    let before = snapshot(&repo);
    (path, before)
}

/// After the corpus: the repository holds what it held plus only valid nodes, and fsck
/// is clean.
fn unchanged_but_verified_nodes(path: &Path, before: &Snapshot, valid: &BTreeSet<String>) {
    let repo = Repository::open(path).expect("the served repository opens");
    let after = snapshot(&repo);
    let added: BTreeSet<&String> = after.nodes.difference(&before.nodes).collect();
    for key in &added {
        assert!(
            valid.contains(*key),
            "stored {key}, which no honest peer sent"
        );
    }
    assert!(before.nodes.is_subset(&after.nodes), "nodes were lost");
    // Every version there before reads row for row as before (honest peers add versions).
    let kept: Vec<_> = after
        .rows
        .iter()
        .filter(|(key, _)| before.nodes.contains(key))
        .cloned()
        .collect();
    assert_eq!(kept, before.rows, "rows changed");
    let check = repo.fsck(&mut |_, _| {}).expect("fsck");
    assert!(check.is_ok(), "{:?}", check.problems);
}

/// Plays one case over `stream`: writes, then behaves as the case says, then reads
/// whatever the server sends until it closes.
fn play(case: &Case, mut writer: impl Write, reader: impl Read + Send + 'static) {
    let drain = thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = { reader }.read_to_end(&mut sink);
    });
    match case.then {
        Then::HangUp => {
            let _ = writer.write_all(&case.bytes);
        }
        Then::Stall => {
            let _ = writer.write_all(&case.bytes);
            let _ = writer.flush();
            // Until the server gives up and closes.
            let _ = drain.join();
            return;
        }
        Then::Trickle(gap) => {
            let started = Instant::now();
            for byte in &case.bytes {
                if writer.write_all(&[*byte]).is_err() || writer.flush().is_err() {
                    break;
                }
                if started.elapsed() > BOUND {
                    break;
                }
                thread::sleep(gap);
            }
        }
    }
    drop(writer);
    let _ = drain.join();
}

fn lines(child: &mut Child) -> Receiver<String> {
    let (send, receive) = channel();
    let stdout = child.stdout.take().expect("piped stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

fn this_binary() -> Command {
    Command::new(std::env::current_exe().expect("this test's own binary"))
}

/// A TCP connection's two halves.
fn connect(port: u16) -> (TcpStream, TcpStream) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let reader = stream.try_clone().expect("clone");
    (stream, reader)
}

struct HalfClose(TcpStream);

impl Write for HalfClose {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for HalfClose {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

/// Whether a server line is about `peer`'s session. An honest peer's session (it stores
/// one node; no hostile one stores a node and succeeds) may have had the same address.
fn about(line: &str, peer: &str) -> bool {
    line.starts_with(&format!("session {peer} ")) && !line.ends_with(" ok 1 nodes")
}

/// Waits for the server's line about the session from `peer`.
fn session_line(lines: &Receiver<String>, peer: &str, others: &mut Vec<String>) -> String {
    if let Some(at) = others.iter().position(|l| about(l, peer)) {
        return others.remove(at);
    }
    let deadline = Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the server said nothing about {peer} in {BOUND:?}"));
        if about(&line, peer) {
            return line;
        }
        others.push(line);
    }
}

fn server_peak(server: &mut Child, lines: &Receiver<String>, others: &mut Vec<String>) -> u64 {
    let stdin = server.stdin.as_mut().expect("piped stdin");
    stdin.write_all(b"peak\n").expect("ask");
    stdin.flush().expect("ask");
    loop {
        let line = lines.recv_timeout(BOUND).expect("the server's peak");
        if let Some(kib) = line.strip_prefix("peak ") {
            return kib.parse().expect("a number");
        }
        others.push(line);
    }
}

fn check(case: &Case, result: &str) -> bool {
    match case.expect {
        Some(expected) => {
            assert!(
                result.contains("error: ") && result.contains(expected),
                "{}: expected an error saying {expected:?}, got {result}",
                case.name
            );
            true
        }
        None => {
            assert!(result.contains("ok"), "{}: {result}", case.name);
            false
        }
    }
}

/// An honest peer syncs with the server: it gets the served rows and leaves its own.
fn honest_sync(port: u16, n: usize) {
    let repo = Repository::in_memory().expect("repository");
    repo.put("honest", format!("h{n}"), format!("honest {n}"))
        .expect("put");
    let report = Session::new()
        .connect_tcp(("127.0.0.1", port), &repo)
        .expect("an honest sync completes beside hostile peers");
    assert!(report.progress.nodes_received >= 6, "{report:?}");
    assert_eq!(
        repo.get("sites", "s4").expect("get").expect("row").value,
        b"served 4"
    );
}

fn tcp_server_survives_the_corpus(corpus: &Corpus) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = served(dir.path());
    let mut server = this_binary()
        .env(SERVE_TCP, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let lines = lines(&mut server);
    let port: u16 = lines
        .recv_timeout(BOUND)
        .expect("the server's port")
        .strip_prefix("port ")
        .expect("port line")
        .parse()
        .expect("a port");
    let mut others = Vec::new();
    let mut honest = 0;
    let mut rejected = 0;
    for case in &corpus.cases {
        let started = Instant::now();
        let (stream, reader) = connect(port);
        let peer = stream.local_addr().expect("address").to_string();
        let slow = !matches!(case.then, Then::HangUp);
        let player = {
            let case_bytes = Case {
                name: case.name,
                bytes: case.bytes.clone(),
                then: case.then,
                expect: case.expect,
            };
            thread::spawn(move || play(&case_bytes, HalfClose(stream), reader))
        };
        if slow {
            // The server serves an honest peer while this one hangs on.
            honest += 1;
            honest_sync(port, honest);
        }
        let line = session_line(&lines, &peer, &mut others);
        let took = started.elapsed();
        player.join().expect("the peer");
        assert!(took < BOUND, "{}: {took:?}", case.name);
        let peak = server_peak(&mut server, &lines, &mut others);
        println!(
            "tcp   {:<30} {:>6.2} s  peak {:>7} KiB  {}",
            case.name,
            took.as_secs_f64(),
            peak,
            line.split_once(' ').map_or("", |(_, rest)| rest)
        );
        rejected += usize::from(check(case, &line));
    }

    // A flood of connections that say nothing, with an honest peer among them.
    let started = Instant::now();
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    honest += 1;
    honest_sync(port, honest);
    let peers: Vec<String> = flood
        .iter()
        .map(|s| s.local_addr().expect("address").to_string())
        .collect();
    let mut flood_errors = 0;
    for peer in &peers {
        let line = session_line(&lines, peer, &mut others);
        assert!(line.contains("error: "), "{line}");
        flood_errors += 1;
    }
    drop(flood);
    let peak = server_peak(&mut server, &lines, &mut others);
    println!(
        "tcp   {:<30} {:>6.2} s  peak {:>7} KiB  {} of {} silent connections cut",
        "flood of 300 connections",
        started.elapsed().as_secs_f64(),
        peak,
        flood_errors,
        peers.len()
    );
    assert!(started.elapsed() < BOUND);
    rejected += 1;

    drop(server.stdin.take());
    let status = server.wait().expect("the server ends");
    assert!(status.success());
    let mut valid = corpus.valid.clone();
    // The honest peers' commits are whole and verified too (each wrote one row).
    let repo = Repository::open(&path).expect("open");
    let commits = honest_commits(&repo);
    assert_eq!(commits.len(), honest, "every honest peer's commit arrived");
    valid.extend(commits);
    drop(repo);
    unchanged_but_verified_nodes(&path, &before, &valid);
    (rejected, corpus.cases.len() + 1)
}

/// The commits of the honest peers (each wrote one row of dataset `honest`, nothing else).
fn honest_commits(repo: &Repository) -> Vec<String> {
    let mut keys = Vec::new();
    for node in repo.graph().changes(0) {
        let node = node.expect("node");
        let Ok(version) = repo.resolve(&node.key) else {
            continue;
        };
        let view = repo.at(&version).expect("view");
        let change = view
            .range("honest", Range::all())
            .filter_map(|row| row.ok())
            .any(|row| row.version == version);
        if change {
            keys.push(node.key);
        }
    }
    keys
}

fn stdio_server_survives_the_corpus(corpus: &Corpus) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = served(dir.path());
    let mut rejected = 0;
    let mut cases = 0;
    for case in &corpus.cases {
        let started = Instant::now();
        let mut child = this_binary()
            .env(SERVE_STDIO, &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the stdio server");
        let writer = child.stdin.take().expect("stdin");
        let reader = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let player = {
            let case = Case {
                name: case.name,
                bytes: case.bytes.clone(),
                then: case.then,
                expect: case.expect,
            };
            thread::spawn(move || play(&case, writer, reader))
        };
        let mut said = String::new();
        stderr.read_to_string(&mut said).expect("stderr");
        let status = child.wait().expect("the server ends");
        player.join().expect("the peer");
        let took = started.elapsed();
        assert!(status.success(), "{}: {said}", case.name);
        assert!(took < BOUND, "{}: {took:?}", case.name);
        let (result, peak) = child_said(&said);
        rejected += usize::from(check(case, &result));
        cases += 1;
        println!(
            "stdio {:<30} {:>6.2} s  peak {:>7} KiB  {result}",
            case.name,
            took.as_secs_f64(),
            peak
        );
    }
    unchanged_but_verified_nodes(&path, &before, &corpus.valid);
    (rejected, cases)
}

/// What a stdio or apply child said on stderr: its result line, and its peak memory.
fn child_said(said: &str) -> (String, u64) {
    let result = said
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_default()
        .to_string();
    let peak = said
        .lines()
        .find_map(|l| l.strip_prefix("peak "))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (result, peak)
}

/// The frames of a sync file (each with its prefix), without its header and end.
fn split_file(bytes: &[u8]) -> Vec<Vec<u8>> {
    let header = b"STRATA-SYNC\0".len() + 1;
    let mut decoder = FrameDecoder::new(usize::MAX >> 1);
    decoder.push(&bytes[header..]);
    let mut frames = Vec::new();
    while let Some(body) = decoder.next_frame().expect("a frame") {
        if body.first() == Some(&24) {
            break;
        }
        frames.push(frame(&body));
    }
    frames
}

/// A sync file of these framed messages, sealed with a correct end frame (count and
/// SHA-256), so that only its content is hostile.
fn seal(frames: &[Vec<u8>]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = b"STRATA-SYNC\0\x01".to_vec();
    for framed in frames {
        out.extend_from_slice(framed);
    }
    let digest = Sha256::digest(&out);
    let mut end = vec![24, 0x08];
    prost::encoding::encode_varint(frames.len() as u64, &mut end);
    end.push(0x12);
    end.push(32);
    end.extend_from_slice(&digest);
    out.extend(frame(&end));
    out
}

fn sync_file_apply_survives_the_corpus(corpus: &Corpus) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = served(dir.path());
    let real = &corpus.file_frames;
    // frames: handshake, Want and Have of the one log, then nodes, payloads and the file.
    let (head, body) = real.split_at(3);
    let source = Graph::in_memory(GraphOptions::default()).expect("graph");
    let stranger = source.append("a stranger's node").expect("append");
    let mut forged = stranger.clone();
    forged.value = b"forged".to_vec();
    let logs = env_count("STRATA_HOSTILE_LOGS", 150_000);
    let mut many = vec![head[0].clone()];
    for i in 0..logs {
        let log = format!("{i:x}");
        many.push(msg(&Message::Want(LogHead {
            log: log.clone(),
            seq: 0,
        })));
        many.push(msg(&Message::Have(LogHead { log, seq: 1 })));
    }
    let sealed_real = seal(real);
    let mut cut = sealed_real.clone();
    cut.truncate(cut.len() / 2);
    let mut reordered = head.to_vec();
    reordered.extend(body.iter().skip(2).cloned());
    let files: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("truncated", cut, Some("truncated")),
        (
            "length prefix of 4 GiB",
            [
                b"STRATA-SYNC\0\x01".to_vec(),
                vec![0x80, 0x80, 0x80, 0x80, 0x10],
            ]
            .concat(),
            Some("the limit"),
        ),
        (
            "invalid varint",
            [b"STRATA-SYNC\0\x01".to_vec(), vec![0xff; 12]].concat(),
            Some("sync file"),
        ),
        (
            "garbage protobuf",
            seal(&[head.to_vec(), vec![frame(&[1, 0xff, 0x01, 0x07])]].concat()),
            Some("malformed Have"),
        ),
        (
            "unknown message types",
            seal(&[real.to_vec(), vec![frame(&[99, 1, 2]), frame(&[200])]].concat()),
            // A file is not a conversation: what no writer puts there is refused.
            Some("a file cannot"),
        ),
        (
            "wrong hash",
            seal(&[head.to_vec(), vec![msg(&Message::Node(forged))]].concat()),
            Some("checksum mismatch"),
        ),
        ("changelog with a gap", seal(&reordered), Some("entry")),
        ("haves for millions of logs", seal(&many), Some("logs")),
        // Last: once applied, the other files would find nothing to do.
        ("the real file, resealed", sealed_real.clone(), None),
    ];
    let mut rejected = 0;
    let mut cases = 0;
    let mut valid = corpus.valid.clone();
    for (name, bytes, expect) in files {
        let file = dir.path().join("hostile.sync");
        std::fs::write(&file, &bytes).expect("write");
        let started = Instant::now();
        let output = this_binary()
            .env(APPLY, &path)
            .env(APPLY_FILE, &file)
            .output()
            .expect("apply");
        let took = started.elapsed();
        let said = String::from_utf8_lossy(&output.stderr);
        let (result, peak) = child_said(&said);
        assert!(took < BOUND, "{name}: {took:?}");
        let case = Case {
            name,
            bytes: Vec::new(),
            then: Then::HangUp,
            expect,
        };
        rejected += usize::from(check(&case, &result));
        cases += usize::from(expect.is_some());
        println!(
            "file  {:<30} {:>6.2} s  peak {:>7} KiB  {result}",
            name,
            took.as_secs_f64(),
            peak
        );
        if expect.is_none() {
            // The real file's nodes are whole and verified; its rows are now there too.
            let repo = Repository::open(&path).expect("open");
            for node in repo.graph().changes(0) {
                valid.insert(node.expect("node").key);
            }
            assert_eq!(
                repo.get("sites", "f2").expect("get").expect("row").value,
                b"from a file 2"
            );
        }
    }
    // The real file's versions were added whole; every earlier version reads as before.
    let repo = Repository::open(&path).expect("open");
    let after = snapshot(&repo);
    for row in &before.rows {
        assert!(after.rows.contains(row), "version {} changed", row.0);
    }
    for key in after.nodes.difference(&before.nodes) {
        assert!(
            valid.contains(key),
            "stored {key}, which no honest file holds"
        );
    }
    let check = repo.fsck(&mut |_, _| {}).expect("fsck");
    assert!(check.is_ok(), "{:?}", check.problems);
    (rejected, cases)
}
