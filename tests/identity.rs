//! Identity and access: signed device logs, secure sessions and sealed sync files, who may
//! join, and removal (issue 14; docs/security.md).

use std::io::{Cursor, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use strata::{
    Error, FramedSha256, Graph, GraphOptions, Identity, Node, NodeHasher, OnTcpSession, ProjectKey,
    Repository, Session, SyncFile, TcpServer, sync_in_memory,
};

fn member(project: &ProjectKey) -> (Identity, Repository) {
    let identity = Identity::in_memory(project.clone());
    let repo = Repository::options()
        .identity(identity.clone())
        .in_memory()
        .unwrap();
    (identity, repo)
}

fn secure(project: &ProjectKey) -> Session {
    Session::new().secure(project)
}

fn sync(project: &ProjectKey, a: &Repository, b: &Repository) {
    secure(project)
        .run_in_memory(a, &secure(project), b)
        .unwrap();
}

fn no_report() -> OnTcpSession {
    Arc::new(|_, _| {})
}

fn row(repo: &Repository, key: &str) -> Option<Vec<u8>> {
    repo.get("sites", key).unwrap().map(|row| row.value)
}

#[test]
fn nodes_are_signed_by_a_key_kept_outside_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join(strata::STORAGE_DIR);
    let identity = Identity::create(&storage).unwrap();
    assert!(
        !identity.accepts_unsigned(),
        "a new repository takes only signed logs"
    );
    {
        let repo = Repository::init(dir.path()).unwrap();
        assert_eq!(repo.graph().log_id(), identity.log_id());
        repo.put("sites", "A", "1").unwrap();
        let head = &repo.graph().heads().unwrap()[0];
        assert_eq!(head.log, identity.log_id());
        assert_eq!(
            head.identity.as_deref(),
            Some(identity.device().public().as_bytes().as_slice())
        );
        assert_eq!(head.signature.as_ref().map(Vec::len), Some(64));
        // The signature stays outside the hash: the key is hyperlog's.
        assert_eq!(head.key, FramedSha256.hash(&head.links, &head.value));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let keys = storage.join(strata::IDENTITY_DIR);
        for file in ["device.key", "project.key"] {
            let mode = std::fs::metadata(keys.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        // Reopened, it signs with the same key.
        let repo = Repository::open(dir.path()).unwrap();
        assert_eq!(repo.graph().log_id(), identity.log_id());
        drop(repo);
        // A key others can read is refused.
        let device = keys.join("device.key");
        std::fs::set_permissions(&device, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Repository::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Security(_)), "{err}");
    }
}

/// A malicious member's replica: a bare graph that checks nothing, holding `victim`'s log
/// and one more entry in it with a signature `victim` never made.
fn forger(project: &ProjectKey, victim: &Repository) -> (Graph, Node) {
    let m = Graph::in_memory(GraphOptions::default()).unwrap();
    secure(project)
        .run_in_memory(victim, &secure(project), &m)
        .unwrap();
    let log = victim.graph().log_id();
    let value = b"forged".to_vec();
    let forged = Node {
        key: FramedSha256.hash(&[], &value),
        links: Vec::new(),
        value,
        seq: m.log_head(&log).unwrap() + 1,
        change: 0,
        identity: Some(hex::decode(&log).unwrap()),
        signature: Some(vec![7; 64]),
        log,
    };
    m.ingest(vec![forged.clone()]).unwrap();
    (m, forged)
}

fn assert_forgery_refused(err: &Error, log: &str, peer: &str) {
    match err {
        Error::InvalidSignature {
            log: rejected,
            peer: Some(from),
            ..
        } => {
            assert_eq!(rejected, log);
            assert!(from.contains(peer), "{err}");
        }
        other => panic!("expected a rejected node, got {other}"),
    }
    assert!(err.to_string().contains(log), "{err}");
}

#[test]
fn a_forged_entry_is_refused_on_every_transport() {
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    a.put("sites", "A", "1").unwrap();
    let log = a.graph().log_id();
    let (m, forged) = forger(&project, &a);

    // In memory.
    let (_, b) = member(&project);
    let err = secure(&project)
        .peer_name("mallory")
        .run_in_memory(&b, &secure(&project), &m)
        .unwrap_err();
    assert_forgery_refused(&err, &log, "mallory");
    assert!(!b.graph().contains(&forged.key).unwrap());

    // TCP.
    let server = TcpServer::start("127.0.0.1:0", secure(&project), &m, no_report()).unwrap();
    let (_, c) = member(&project);
    let err = secure(&project)
        .connect_tcp(server.local_addr(), &c)
        .unwrap_err();
    assert_forgery_refused(&err, &log, &server.local_addr().to_string());
    assert!(!c.graph().contains(&forged.key).unwrap());
    server.stop();

    // A sealed sync file.
    let mut file = Cursor::new(Vec::new());
    SyncFile::new()
        .write_sealed(&m, &project, &mut file)
        .unwrap();
    let (_, d) = member(&project);
    let err = SyncFile::new()
        .apply_sealed(&d, &project, Cursor::new(file.into_inner()))
        .unwrap_err();
    assert_forgery_refused(&err, &log, "sealed sync file");
    assert!(!d.graph().contains(&forged.key).unwrap());
}

#[test]
fn an_outsider_is_refused_learns_nothing_and_writes_nothing() {
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    a.put("sites", "A", "1").unwrap();
    let changes = a.graph().change_count();
    let server = TcpServer::start("127.0.0.1:0", secure(&project), &a, no_report()).unwrap();
    let address = server.local_addr();

    // A plain hyperlog handshake gets nothing back.
    let mut raw = TcpStream::connect(address).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(&[3, 0, 8, 1]).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    let mut received = Vec::new();
    let _ = raw.read_to_end(&mut received);
    assert!(received.is_empty(), "the outsider received {received:?}");

    // A strata session with another project's key, or none, is refused.
    let outsider = Repository::in_memory().unwrap();
    outsider.put("sites", "X", "intruder").unwrap();
    let wrong = Session::new().secure(&ProjectKey::generate());
    let err = wrong.connect_tcp(address, &outsider).unwrap_err();
    assert!(matches!(err, Error::Security(_)), "{err}");
    // (A plain peer and the server wait for each other's first message: a short timeout.)
    let plain = Session::new().limits(strata::Limits {
        idle_timeout: Some(Duration::from_secs(2)),
        ..strata::Limits::default()
    });
    assert!(plain.connect_tcp(address, &outsider).is_err());
    assert_eq!(outsider.get("sites", "A").unwrap(), None);
    assert_eq!(
        a.graph().change_count(),
        changes,
        "the outsider wrote nothing"
    );
    server.stop();

    // An outsider that a member connects to sees one handshake message: an ephemeral key
    // and a tag, nothing of the repository.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let listening = listener.local_addr().unwrap();
    let seen = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let err = secure(&project).connect_tcp(listening, &a).unwrap_err();
    assert!(matches!(err, Error::Security(_)), "{err}");
    let seen = seen.join().unwrap();
    assert_eq!(seen.len(), 2 + 32 + 16, "{seen:?}");
    let log = a.graph().log_id();
    let text = String::from_utf8_lossy(&seen);
    assert!(!text.contains(&log) && !text.contains("sites"));
}

/// What the relay does to the messages from client to server after the handshake.
#[derive(Clone, Copy)]
enum Meddle {
    Flip,
    Replay,
}

/// Relays length-prefixed Noise messages from `from` to `to`, meddling with the first one
/// after the handshake message.
fn relay(mut from: TcpStream, mut to: TcpStream, meddle: Option<Meddle>) {
    let mut index = 0;
    loop {
        let mut prefix = [0u8; 2];
        if from.read_exact(&mut prefix).is_err() {
            break;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        if from.read_exact(&mut message).is_err() {
            break;
        }
        let mut out = [prefix.as_slice(), &message].concat();
        if index == 1 {
            match meddle {
                Some(Meddle::Flip) => {
                    let last = out.len() - 1;
                    out[last] ^= 1;
                }
                Some(Meddle::Replay) => out.extend_from_slice(&out.clone()),
                None => {}
            }
        }
        index += 1;
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn tampered_or_replayed_frames_end_the_session() {
    for meddle in [Meddle::Flip, Meddle::Replay] {
        let project = ProjectKey::generate();
        let (_, a) = member(&project);
        a.put("sites", "A", "1").unwrap();
        let results = Arc::new(Mutex::new(Vec::new()));
        let seen = results.clone();
        let on_session: OnTcpSession = Arc::new(move |_, result| {
            seen.lock()
                .unwrap()
                .push(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        });
        let server = TcpServer::start("127.0.0.1:0", secure(&project), &a, on_session).unwrap();
        let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_address = proxy.local_addr().unwrap();
        let server_address = server.local_addr();
        let relays = thread::spawn(move || {
            let (client, _) = proxy.accept().unwrap();
            let upstream = TcpStream::connect(server_address).unwrap();
            let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let back = thread::spawn(move || relay(u2, c2, None));
            relay(client, upstream, Some(meddle));
            let _ = back.join();
        });
        let (_, b) = member(&project);
        let session = secure(&project).limits(strata::Limits {
            idle_timeout: Some(Duration::from_secs(10)),
            ..strata::Limits::default()
        });
        assert!(session.connect_tcp(proxy_address, &b).is_err());
        relays.join().unwrap();
        for _ in 0..100 {
            if !results.lock().unwrap().is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let results = results.lock().unwrap();
        let err = results[0].as_ref().unwrap_err();
        assert!(err.contains("did not authenticate"), "{err}");
        server.stop();
    }
}

#[test]
fn a_sealed_sync_file_opens_only_whole_and_with_the_key() {
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    for i in 0..300 {
        a.put("sites", format!("S{i}"), "x".repeat(500)).unwrap();
    }
    let mut file = Cursor::new(Vec::new());
    SyncFile::new()
        .write_sealed(&a, &project, &mut file)
        .unwrap();
    let sealed = file.into_inner();
    assert!(sealed.len() > 64 * 1024, "several chunks: {}", sealed.len());
    assert!(!String::from_utf8_lossy(&sealed).contains("S299"));

    let refused = |bytes: Vec<u8>, key: &ProjectKey| {
        let (_, b) = member(&project);
        let err = SyncFile::new()
            .apply_sealed(&b, key, Cursor::new(bytes))
            .unwrap_err();
        assert!(matches!(err, Error::Security(_)), "{err}");
        assert_eq!(b.graph().change_count(), 0, "nothing stored");
    };
    let mut flipped = sealed.clone();
    flipped[sealed.len() / 2] ^= 1;
    refused(flipped, &project);
    refused(sealed[..sealed.len() - 1].to_vec(), &project);
    refused(sealed[..64 + 64 * 1024 + 16].to_vec(), &project);
    let mut extended = sealed.clone();
    extended.push(0);
    refused(extended, &project);
    refused(sealed.clone(), &ProjectKey::generate());

    let (_, b) = member(&project);
    SyncFile::new()
        .apply_sealed(&b, &project, Cursor::new(sealed))
        .unwrap();
    assert_eq!(row(&b, "S299"), Some("x".repeat(500).into_bytes()));
}

#[test]
fn a_removed_device_is_refused_where_the_removal_has_synced() {
    let project = ProjectKey::generate();
    let (ida, a) = member(&project);
    let (idb, b) = member(&project);
    let (idc, c) = member(&project);
    idc.set_name(c.graph(), "field tablet").unwrap();
    c.put("sites", "C1", "1").unwrap();
    sync(&project, &a, &c);
    sync(&project, &a, &b);
    let c_log = idc.log_id();
    let held = a.graph().log_head(&c_log).unwrap();

    ida.remove(a.graph(), &c_log).unwrap();
    c.put("sites", "C2", "2").unwrap();
    // `a` made the removal: it refuses C2 without failing the session.
    sync(&project, &a, &c);
    assert_eq!(row(&a, "C2"), None);
    assert_eq!(row(&a, "C1"), Some(b"1".to_vec()));
    assert_eq!(a.graph().log_head(&c_log).unwrap(), held);

    // `b` has not heard of the removal yet: it takes C2 (entries already copied stay).
    sync(&project, &b, &c);
    assert_eq!(row(&b, "C2"), Some(b"2".to_vec()));
    // The removal reaches `b`; `a` still refuses what `b` offers of C's later entries.
    sync(&project, &a, &b);
    assert_eq!(row(&a, "C2"), None);
    c.put("sites", "C3", "3").unwrap();
    sync(&project, &b, &c);
    assert_eq!(row(&b, "C3"), None, "refused once the removal has synced");
    assert_eq!(
        row(&b, "C1"),
        Some(b"1".to_vec()),
        "past entries stay readable"
    );

    let devices = idb.devices(b.graph()).unwrap();
    let removed = devices.iter().find(|d| d.key == c_log).unwrap();
    assert_eq!(removed.removed_after, Some(held));
    assert_eq!(removed.name.as_deref(), Some("field tablet"));
    assert!(removed.first_seen.is_some() && removed.last_seen >= removed.first_seen);
    assert!(
        devices
            .iter()
            .any(|d| d.this_device && d.key == idb.log_id())
    );
    assert!(
        devices
            .iter()
            .any(|d| d.key == ida.log_id() && d.removed_after.is_none())
    );

    // A forged removal (another key signing in `a`'s log) is refused like any forgery.
    assert!(strata::device_of_log(&c_log).is_some());
}

/// Unsigned entries (hyperlog's, or a log from before keys) come in only from a plain
/// peer, and only where the repository allows them: a secure session or a sealed file
/// carries signed logs only, even between members that both accept unsigned entries.
#[test]
fn unsigned_logs_only_from_a_plain_peer_and_only_when_the_repository_allows_them() {
    let project = ProjectKey::generate();
    let (ida, a) = member(&project);
    let old = Repository::in_memory().unwrap();
    old.put("sites", "O", "old").unwrap();
    let err = sync_in_memory(&a, &old).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSignature { reason, .. } if reason.contains("only signed")),
        "{err}"
    );
    assert_eq!(row(&a, "O"), None);

    // A member that took the unsigned log from a plain peer cannot pass it on securely.
    let (idb, b) = member(&project);
    idb.set_accept_unsigned(true).unwrap();
    sync_in_memory(&b, &old).unwrap();
    assert_eq!(row(&b, "O"), Some(b"old".to_vec()));
    ida.set_accept_unsigned(true).unwrap();
    let unsigned_log = old.graph().log_id();
    let refused = |err: Error| {
        assert!(
            matches!(&err, Error::InvalidSignature { log, reason, .. }
                if *log == unsigned_log && reason.contains("secure session carries only signed")),
            "{err}"
        );
        assert_eq!(row(&a, "O"), None);
        assert_eq!(
            a.graph().log_head(&unsigned_log).unwrap(),
            0,
            "nothing of it stored"
        );
    };
    refused(
        secure(&project)
            .run_in_memory(&a, &secure(&project), &b)
            .unwrap_err(),
    );
    let mut sealed = Cursor::new(Vec::new());
    SyncFile::new()
        .write_sealed(&b, &project, &mut sealed)
        .unwrap();
    refused(
        SyncFile::new()
            .apply_sealed(&a, &project, Cursor::new(sealed.into_inner()))
            .unwrap_err(),
    );

    // From a plain peer, with the repository's consent, it comes in.
    let mut plain = Cursor::new(Vec::new());
    SyncFile::new().write(&b, &mut plain).unwrap();
    SyncFile::new()
        .apply(&a, Cursor::new(plain.into_inner()))
        .unwrap();
    assert_eq!(row(&a, "O"), Some(b"old".to_vec()));
}

#[test]
fn a_repository_from_before_keys_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let old_log = {
        let repo = Repository::init(dir.path()).unwrap();
        repo.put("sites", "A", "1").unwrap();
        repo.graph().log_id()
    };
    let storage = Repository::storage_of(dir.path()).unwrap();
    // Without keys it opens as before.
    drop(Repository::open(dir.path()).unwrap());
    let identity = Identity::create(&storage).unwrap();
    assert!(
        identity.accepts_unsigned(),
        "peers that have not upgraded still sync"
    );
    let repo = Repository::open(dir.path()).unwrap();
    assert_eq!(repo.graph().log_id(), identity.log_id());
    assert_ne!(old_log, identity.log_id());
    assert_eq!(row(&repo, "A"), Some(b"1".to_vec()));
    repo.put("sites", "B", "2").unwrap();
    assert_eq!(repo.graph().log_head(&identity.log_id()).unwrap(), 1);
    assert_eq!(repo.graph().log_head(&old_log).unwrap(), 1);

    // Joining another project keeps the device key and takes the project key.
    drop(repo);
    let project = ProjectKey::generate();
    let joined = Identity::join(&storage, project.clone()).unwrap();
    assert_eq!(joined.log_id(), identity.log_id());
    let loaded = Identity::load(&storage).unwrap().unwrap();
    assert_eq!(loaded.project_key(), &project);
}

#[test]
fn a_silent_peer_does_not_hold_a_secure_server() {
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    let session = secure(&project).limits(strata::Limits {
        idle_timeout: Some(Duration::from_millis(500)),
        ..strata::Limits::default()
    });
    let server = TcpServer::start("127.0.0.1:0", session, &a, no_report()).unwrap();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let _ = raw.read_to_end(&mut received);
    assert!(received.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for _ in 0..100 {
        if server.active_sessions() == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.active_sessions(), 0);
    server.stop();
}

/// A plain peer and a secure one do not understand each other: both ends say so at once,
/// naming `--plain`, instead of waiting for the idle timeout (60 s by default, kept here).
#[test]
fn a_plain_peer_and_a_secure_one_fail_at_once_saying_why() {
    type Ended = Arc<Mutex<Vec<String>>>;
    fn serve(session: Session, repo: &Repository) -> (TcpServer, Ended) {
        let ended: Ended = Arc::default();
        let seen = ended.clone();
        let report: OnTcpSession = Arc::new(move |_, result| {
            if let Err(e) = result {
                seen.lock().unwrap().push(e.to_string());
            }
        });
        (
            TcpServer::start("127.0.0.1:0", session, repo, report).unwrap(),
            ended,
        )
    }
    fn server_said(ended: &Ended) -> String {
        for _ in 0..200 {
            if let Some(said) = ended.lock().unwrap().first() {
                return said.clone();
            }
            thread::sleep(Duration::from_millis(25));
        }
        panic!("the server reported no failed session");
    }
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    a.put("sites", "A", "1").unwrap();
    let (_, b) = member(&project);

    // (server, client, what the client says, what the server says)
    let cases = [
        (
            secure(&project),
            Session::new(),
            "without a handshake",
            "speaks plain hyperlog",
        ),
        // The plain server's handshake may be lost as it hangs up: then the client cannot
        // tell it from other refusals, and says so, naming each.
        (
            Session::new(),
            secure(&project),
            "plain hyperlog",
            "opened a secure strata session",
        ),
    ];
    for (served, client, client_says, server_says) in cases {
        let (server, ended) = serve(served, &a);
        let started = std::time::Instant::now();
        let err = client
            .connect_tcp(server.local_addr(), &b)
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(
            err.contains(client_says) && err.contains("--plain"),
            "{err}"
        );
        let said = server_said(&ended);
        assert!(said.contains(server_says), "{said}");
        server.stop();
    }
    assert_eq!(row(&b, "A"), None, "nothing crossed");
}

/// A flood of connections that never finish the handshake holds at most `max_sessions`
/// threads: the connection beyond is closed at once and reported, and once the flood
/// ends a member syncs as usual.
#[test]
fn a_flood_of_silent_connections_holds_at_most_max_sessions() {
    let project = ProjectKey::generate();
    let (_, a) = member(&project);
    a.put("sites", "A", "1").unwrap();
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = refused.clone();
    let report: OnTcpSession = Arc::new(move |_, result| {
        if let Err(e) = result {
            seen.lock().unwrap().push(e.to_string());
        }
    });
    let session = secure(&project).limits(strata::Limits {
        max_sessions: 4,
        ..strata::Limits::default()
    });
    let server = TcpServer::start("127.0.0.1:0", session, &a, report).unwrap();
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    for _ in 0..200 {
        if server.active_sessions() == 4 {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(server.active_sessions(), 4);
    let mut extra = TcpStream::connect(server.local_addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    extra.read_to_end(&mut received).unwrap();
    assert!(received.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The refusal is reported just after the connection is closed: wait for it.
    let mut said = Vec::new();
    for _ in 0..200 {
        said = refused.lock().unwrap().clone();
        if said.iter().any(|e| e.contains("already serving 4 peer(s)")) {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    assert!(
        said.iter().any(|e| e.contains("already serving 4 peer(s)")),
        "{said:?}"
    );
    drop(silent);
    for _ in 0..200 {
        if server.active_sessions() == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    let (_, b) = member(&project);
    secure(&project)
        .connect_tcp(server.local_addr(), &b)
        .unwrap();
    assert_eq!(row(&b, "A"), Some(b"1".to_vec()));
    server.stop();
}

fn signed_graph(identity: &Identity) -> Graph {
    Graph::in_memory(GraphOptions {
        signer: Some(identity.signer()),
        verifier: Some(identity.verifier()),
        ..GraphOptions::default()
    })
    .unwrap()
}

/// Signatures of a received batch are checked together: one bad signature among many
/// good ones still refuses the whole batch, naming that node; the good batch is stored.
#[test]
fn one_bad_signature_in_a_batch_refuses_it_whole_naming_the_node() {
    let project = ProjectKey::generate();
    let writer = signed_graph(&Identity::in_memory(project.clone()));
    let mut previous: Vec<String> = Vec::new();
    for i in 0..50 {
        previous = vec![writer.add(&previous, format!("entry {i}")).unwrap().key];
    }
    let nodes: Vec<Node> = writer
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap();
    for bad in [0, 29, 49] {
        let mut tampered = nodes.clone();
        tampered[bad].signature.as_mut().unwrap()[10] ^= 1;
        let reader = signed_graph(&Identity::in_memory(project.clone()));
        let err = reader
            .ingest_via(tampered, strata::Channel::Secure)
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSignature { key, reason, .. }
                if *key == nodes[bad].key && reason.contains("does not verify")),
            "{err}"
        );
        assert_eq!(reader.change_count(), 0, "nothing of the batch stored");
    }
    let reader = signed_graph(&Identity::in_memory(project.clone()));
    reader
        .ingest_via(nodes.clone(), strata::Channel::Secure)
        .unwrap();
    assert_eq!(reader.change_count(), 50);
}

/// A log named by a weak (small-order) public key: a signature made of the identity
/// point and a zero scalar passes a batch check for any message, so such keys are refused
/// on their own (the single, strict check refuses them too).
#[test]
fn a_log_named_by_a_weak_key_is_refused() {
    let project = ProjectKey::generate();
    let mut weak = [0u8; 32];
    weak[0] = 1; // the identity point, compressed
    let log = hex::encode(weak);
    assert!(strata::device_of_log(&log).is_some());
    let mut signature = vec![0u8; 64];
    signature[0] = 1; // R = the identity point, s = 0
    let mut nodes = Vec::new();
    let mut links: Vec<String> = Vec::new();
    for seq in 1..=3u64 {
        let value = format!("forged {seq}").into_bytes();
        let key = FramedSha256.hash(&links, &value);
        nodes.push(Node {
            key: key.clone(),
            links: links.clone(),
            value,
            log: log.clone(),
            seq,
            change: 0,
            identity: Some(weak.to_vec()),
            signature: Some(signature.clone()),
        });
        links = vec![key];
    }
    for batch in [nodes.clone(), nodes[..1].to_vec()] {
        let reader = signed_graph(&Identity::in_memory(project.clone()));
        let err = reader
            .ingest_via(batch, strata::Channel::Secure)
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSignature { key, .. } if *key == nodes[0].key),
            "{err}"
        );
        assert_eq!(reader.change_count(), 0);
    }
}

/// The cost of verifying received nodes, in process (no session, no transport): 20,000
/// signed nodes ingested in batches of 1,024 (as a session stores them), with the
/// signatures of a batch checked together (the verifier's `verify_all`) and one by one
/// (the trait's default, through a wrapper that has only `verify`), alternating so that
/// both see the same machine load. `docs/security.md` gives the figures.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn verification_cost_batched_and_one_by_one() {
    struct OneByOne(Arc<dyn strata::Verifier>);
    impl strata::Verifier for OneByOne {
        fn verify(&self, node: &Node, channel: strata::Channel) -> Result<bool, String> {
            self.0.verify(node, channel)
        }
    }
    let project = ProjectKey::generate();
    let writer = signed_graph(&Identity::in_memory(project.clone()));
    let mut previous: Vec<String> = Vec::new();
    for chunk in 0..20 {
        let docs = (0..1000)
            .map(|i| {
                let doc = strata::Doc::new(
                    previous.clone(),
                    format!("node {chunk} {i} {}", "x".repeat(80)),
                );
                previous = Vec::new();
                doc
            })
            .collect();
        previous = vec![writer.batch(docs).unwrap().last().unwrap().key.clone()];
    }
    let nodes: Vec<Node> = writer
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap();
    let run = |verifier: Arc<dyn strata::Verifier>| {
        let reader = Graph::in_memory(GraphOptions {
            verifier: Some(verifier),
            ..GraphOptions::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        for batch in nodes.chunks(1024) {
            reader
                .ingest_via(batch.to_vec(), strata::Channel::Secure)
                .unwrap();
        }
        nodes.len() as f64 / started.elapsed().as_secs_f64()
    };
    let unverified = || {
        let reader = Graph::in_memory(GraphOptions::default()).unwrap();
        let started = std::time::Instant::now();
        for batch in nodes.chunks(1024) {
            reader.ingest(batch.to_vec()).unwrap();
        }
        nodes.len() as f64 / started.elapsed().as_secs_f64()
    };
    for round in 1..=3 {
        let identity = Identity::in_memory(project.clone());
        let batched = run(identity.verifier());
        let single = run(Arc::new(OneByOne(identity.verifier())));
        let none = unverified();
        println!(
            "round {round}: no verifier {none:.0} nodes/s; batched {batched:.0} nodes/s; one by one {single:.0} nodes/s"
        );
    }
}
