//! Replication: hyperlog's replication protocol version 1 on the wire, exactly, with the
//! original's bugs fixed and the dataset payload carried on the same stream.
//!
//! A [`Session`] holds the options of one exchange (mode, live, what payload to fetch,
//! limits, a progress callback) and runs it over any byte stream with [`Session::run`]. It
//! works on a [`Repository`] (nodes and payload) or on a bare [`Graph`] (nodes only). The
//! transports are helpers around `run`: in memory ([`sync_in_memory`],
//! [`Session::run_in_memory`], [`duplex`]: two replicas in one program), TCP
//! ([`TcpServer`] for many peers, [`Session::connect_tcp`]), standard streams
//! ([`Session::serve_stdio`], and [`Session::run_command`] for a child process, so
//! `ssh host strata serve --stdio` works as with git), and sync files ([`SyncFile`]: what a
//! session would send, written to a file and applied elsewhere with the same checks).
//!
//! The pieces, top to bottom: `frame.rs` (length prefixes), `message.rs` (the messages),
//! `connection.rs` (a framed stream whose reading and writing never wait on each other),
//! `session.rs` (the state machine), `incoming.rs` and `outgoing.rs` (receiving and
//! sending nodes), `payload.rs` (operations and files), `bundle.rs` (sync files), and the
//! transports (`memory.rs`, `tcp.rs`, `stdio.rs`). The wire is described byte by byte
//! in `docs/protocol.md`.
//!
//! ```
//! use strata::{Graph, GraphOptions, sync_in_memory};
//!
//! let a = Graph::in_memory(GraphOptions::default())?;
//! let b = Graph::in_memory(GraphOptions::default())?;
//! a.append("hello")?;
//! b.append("world")?;
//! let (ra, rb) = sync_in_memory(&a, &b)?;
//! assert_eq!((ra.progress.nodes_sent, rb.progress.nodes_sent), (1, 1));
//! let keys = |g: &Graph| g.heads().map(|h| h.into_iter().map(|n| n.key).collect::<Vec<_>>());
//! assert_eq!(keys(&a)?, keys(&b)?);
//! # Ok::<(), strata::Error>(())
//! ```
//!
//! About 640 lines: the public face of replication (`Session`, its options, limits,
//! progress and report types, their docs and the example); the mechanics live in the
//! submodules.

mod bundle;
mod connection;
mod frame;
mod incoming;
mod memory;
mod message;
mod outgoing;
mod payload;
mod prefetch;
mod sealed;
mod secure;
mod session;
mod stdio;
mod tcp;

pub use bundle::{SyncFile, SyncFileReport};
pub use memory::{DuplexEnd, PipeReader, PipeWriter, duplex, sync_in_memory};
pub use tcp::{OnTcpSession, TcpServer};

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use connection::{Buffers, Connection, Event};
use session::{Engine, Settings};

// The decoders of peer bytes, for `internals::decoders` (the fuzz targets).
#[cfg(feature = "internals")]
pub use frame::{Decoder as FrameDecoder, encode as encode_frame};
#[cfg(feature = "internals")]
pub use message::{Handshake, LogHead, Message};
#[cfg(feature = "internals")]
pub use payload::Hello;

use crate::dataset::Repository;
use crate::error::{Error, Result};
use crate::graph::{Channel, Graph};
use crate::identity::ProjectKey;

/// Which way nodes go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Both ways (hyperlog's default).
    #[default]
    Sync,
    /// Only from this side to the peer.
    Push,
    /// Only from the peer to this side.
    Pull,
}

/// What payload (operations and files of commits) this side fetches. The graph itself is
/// always exchanged; a commit whose operations are not fetched stays pending (stored, not
/// readable) until a later session brings them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Payload {
    /// Operations and files of every commit.
    #[default]
    Everything,
    /// Operations of every commit, no file contents.
    RowsOnly,
    /// Operations and files of the commits that touch one of these datasets.
    Datasets(Vec<Vec<u8>>),
    /// Nothing but graph nodes.
    GraphOnly,
}

/// Bounds on a session's memory and time.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest message accepted from the peer. Default 16 MiB.
    pub max_frame: usize,
    /// Bytes of received nodes that may wait for their links (a peer sending out of
    /// order); past it the session fails. Default 64 MiB.
    pub max_waiting: usize,
    /// The most logs a peer may name in one session. Default 1,000,000.
    pub max_logs: usize,
    /// The largest operations payload of one commit. Default 256 MiB.
    pub max_payload: usize,
    /// Fail when nothing moves either way for this long (not applied to a live session
    /// once it is live). Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Fail when the whole session takes longer. Default none.
    pub total_timeout: Option<Duration>,
    /// The most sessions a [`TcpServer`] runs at once (handshakes included); a connection
    /// beyond it is closed at once and reported as refused, so a flood of connections
    /// costs no more than this many threads. Default 1,024: a flood must hold that many
    /// connections (each dropped at the idle timeout) before it keeps members out.
    pub max_sessions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 16 << 20,
            max_waiting: 64 << 20,
            max_logs: 1_000_000,
            max_payload: 256 << 20,
            idle_timeout: Some(Duration::from_secs(60)),
            total_timeout: None,
            max_sessions: 1024,
        }
    }
}

/// Counts of a session so far. The totals come from the have/want exchange: with a strata
/// peer they are exact once its Haves are in; with a hyperlog peer they grow as it
/// advertises logs. Operations totals grow as commits arrive (a commit counts its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Nodes sent to the peer.
    pub nodes_sent: u64,
    /// Nodes the peer asked for.
    pub nodes_to_send: u64,
    /// Nodes received and stored (new to this replica).
    pub nodes_received: u64,
    /// Nodes this side asked for.
    pub nodes_to_receive: u64,
    /// Commits whose operations were sent.
    pub payloads_sent: u64,
    /// Bytes of operations sent.
    pub payload_bytes_sent: u64,
    /// Commits whose operations were received and stored.
    pub payloads_received: u64,
    /// Bytes of operations received.
    pub payload_bytes_received: u64,
    /// Operations asked for (the counts their commits carry).
    pub operations_to_receive: u64,
    /// Operations received.
    pub operations_received: u64,
    /// Files sent.
    pub files_sent: u64,
    /// Bytes of files sent.
    pub file_bytes_sent: u64,
    /// Files received and stored.
    pub files_received: u64,
    /// Bytes of files asked for.
    pub file_bytes_to_receive: u64,
    /// Bytes of files received.
    pub file_bytes_received: u64,
}

/// What kind of peer a session talked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A strata peer (it sent a strata hello): causal order, exact totals, payload.
    Strata,
    /// A plain hyperlog peer (or a strata peer in plain mode).
    Hyperlog,
}

/// The outcome of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// The final counts.
    pub progress: Progress,
    /// Who the peer was.
    pub peer: Peer,
    /// Whether the session was live.
    pub live: bool,
}

/// Ends live sessions (and cancels others) from another thread. Clones share the signal.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A signal not yet given.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Gives the signal: live sessions end cleanly, others fail as cancelled.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the signal was given.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a session replicates: a repository (graph and payload) or a bare graph.
#[derive(Clone)]
pub struct Replica {
    graph: Graph,
    repo: Option<Repository>,
}

impl From<&Graph> for Replica {
    fn from(graph: &Graph) -> Replica {
        Replica {
            graph: graph.clone(),
            repo: None,
        }
    }
}

impl From<&Repository> for Replica {
    fn from(repo: &Repository) -> Replica {
        Replica {
            graph: repo.graph().clone(),
            repo: Some(repo.clone()),
        }
    }
}

/// A callback told the counts as they change.
type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The options of a replication session; [`Session::run`] runs one. Cloning is cheap (a
/// server clones it for every peer).
#[derive(Clone, Default)]
pub struct Session {
    mode: Mode,
    live: bool,
    payload: Payload,
    limits: Limits,
    plain: bool,
    project: Option<ProjectKey>,
    responder: bool,
    peer: Option<String>,
    progress: Option<ProgressFn>,
    stop: Stop,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("mode", &self.mode)
            .field("live", &self.live)
            .field("payload", &self.payload)
            .field("limits", &self.limits)
            .field("plain", &self.plain)
            .field("secure", &self.project.is_some())
            .field("responder", &self.responder)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// How often a waiting live session looks at its stop signal and a progress callback is
/// called at most.
const TICK: Duration = Duration::from_millis(100);
/// How long a batch of received nodes may wait for more before it is stored.
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// The most bytes of messages handed to the writer thread at once.
const GATHER: usize = 32 * 1024;
/// How long a finished session waits for the peer to close its side.
const LINGER: Duration = Duration::from_secs(5);

impl Session {
    /// Sync mode, not live, everything fetched, default limits.
    pub fn new() -> Session {
        Session::default()
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Session {
        self.mode = mode;
        self
    }

    /// Keeps the stream open after the exchange and forwards new nodes both ways until
    /// either side closes it or [`Stop::stop`] is called. Live on either side makes both
    /// sides live.
    pub fn live(mut self, live: bool) -> Session {
        self.live = live;
        self
    }

    /// Sets what payload this side fetches (with a strata peer that has a repository).
    pub fn payload(mut self, payload: Payload) -> Session {
        self.payload = payload;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Session {
        self.limits = limits;
        self
    }

    /// Speaks plain hyperlog: no strata hello, so the peer (even a strata one) behaves as
    /// hyperlog 4.12.1 and this side sends exactly what hyperlog would.
    pub fn plain_hyperlog(mut self) -> Session {
        self.plain = true;
        self
    }

    /// Runs the session over an authenticated, encrypted channel opened with the project
    /// key (Noise, see `docs/security.md`): a peer without the key is refused before
    /// anything of the repository is said, and an altered, replayed or reordered message
    /// ends the session. Both sides must use it; a session without it speaks the plain
    /// hyperlog wire, readable and writable by anyone who reaches it.
    pub fn secure(mut self, project: &ProjectKey) -> Session {
        self.project = Some(project.clone());
        self
    }

    /// Takes the answering side of a secure session's handshake (the side that accepted
    /// the connection). [`TcpServer`], [`Session::serve_stdio`] and the second session of
    /// [`Session::run_in_memory`] answer on their own; the default side starts it.
    pub fn responder(mut self) -> Session {
        self.responder = true;
        self
    }

    /// Names the peer in errors about what it sent (for example its address).
    pub fn peer_name(mut self, name: impl Into<String>) -> Session {
        self.peer = Some(name.into());
        self
    }

    /// Whether the session runs over a secure channel.
    pub fn is_secure(&self) -> bool {
        self.project.is_some()
    }

    /// Calls `callback` with the counts as they change (at most every 100 ms, and once at
    /// the end).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Session {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// Uses `stop` as this session's stop signal.
    pub fn stop_signal(mut self, stop: Stop) -> Session {
        self.stop = stop;
        self
    }

    /// This session's stop signal.
    pub fn stopper(&self) -> Stop {
        self.stop.clone()
    }

    fn settings(&self, replica: &Replica) -> Settings {
        Settings {
            mode: self.mode,
            live: self.live,
            payload: self.payload.clone(),
            hello: !self.plain,
            repository: replica.repo.is_some(),
            max_logs: self.limits.max_logs,
            max_waiting: self.limits.max_waiting,
            max_payload: self.limits.max_payload,
            channel: match self.project {
                Some(_) => Channel::Secure,
                None => Channel::Plain,
            },
        }
    }

    /// Runs one session over a transport's read and write halves. Returns when the
    /// exchange is complete (or, live, when it is closed or stopped); the write half is
    /// closed then. On error, everything already verified and stored stays, and nothing
    /// half-written does. A secure session first runs its handshake on the two halves.
    pub fn run<R, W>(&self, replica: impl Into<Replica>, reader: R, writer: W) -> Result<SyncReport>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        self.run_secured(replica.into(), reader, writer, || {})
    }

    /// [`Session::run`], calling `secured` once the secure handshake is over (a transport
    /// bounds the handshake's wait for a silent peer, then lifts the bound).
    fn run_secured<R, W>(
        &self,
        replica: Replica,
        reader: R,
        writer: W,
        secured: impl FnOnce(),
    ) -> Result<SyncReport>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let result = match &self.project {
            Some(project) => secure::handshake(reader, writer, project, !self.responder).and_then(
                |(reader, writer)| {
                    secured();
                    self.exchange(replica, reader, writer)
                },
            ),
            None => self.exchange(replica, reader, writer),
        };
        let peer = self.peer.as_deref().unwrap_or("the peer");
        result.map_err(|e| name_peer(e, peer))
    }

    fn exchange<R, W>(&self, replica: Replica, reader: R, writer: W) -> Result<SyncReport>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let buffers = Buffers {
            max_frame: self.limits.max_frame,
            inbox: 4 << 20,
            outbox: 1 << 20,
        };
        let settings = self.settings(&replica);
        let connection = Connection::new(reader, writer, buffers)?;
        let mut engine = Engine::new(replica, settings)?;
        let result = self.drive(&mut engine, &connection);
        if result.is_err() {
            // Whole nodes received before the failure pass the same checks and are kept;
            // the session's own error is the one to report.
            let _ = engine.idle();
        }
        self.report(engine.progress());
        result.map(|()| engine.report())
    }

    fn report(&self, progress: &Progress) {
        if let Some(callback) = &self.progress {
            callback(progress);
        }
    }

    fn drive(&self, engine: &mut Engine, connection: &Connection) -> Result<()> {
        let started = Instant::now();
        let total = self.limits.total_timeout.map(|t| started + t);
        let mut active = Instant::now();
        let mut reported = (Instant::now(), Progress::default());
        let mut watcher: Option<Watcher> = None;
        let mut frames = VecDeque::new();
        loop {
            let (sent, more) = produce(engine, connection)?;
            if sent {
                active = Instant::now();
            }
            if reported.0.elapsed() >= TICK && *engine.progress() != reported.1 {
                self.report(engine.progress());
                reported = (Instant::now(), engine.progress().clone());
            }
            if engine.is_finished() {
                break;
            }
            if self.stop.is_stopped() {
                if engine.is_live() {
                    break;
                }
                return Err(Error::Replication(
                    "stopped before the session was complete".into(),
                ));
            }
            if engine.is_live() && watcher.is_none() {
                watcher = Some(Watcher::start(engine.graph().clone(), connection)?);
            }
            // With more to send, wait for room (there may be some already).
            let want_room = more || engine.live_behind();
            let idle = (!engine.is_live())
                .then_some(self.limits.idle_timeout)
                .flatten()
                .map(|t| active + t);
            let mut deadline = [total, idle].into_iter().flatten().min();
            if engine.has_unstored() {
                deadline = Some(deadline.map_or(Instant::now() + BATCH_WAIT, |d| {
                    d.min(Instant::now() + BATCH_WAIT)
                }));
            }
            if engine.is_live() || self.progress.is_some() {
                let tick = Instant::now() + TICK;
                deadline = Some(deadline.map_or(tick, |d| d.min(tick)));
            }
            match connection.next_event(want_room, deadline)? {
                Event::Frame(frame) => {
                    active = Instant::now();
                    engine.receive(&frame)?;
                    // Take what else has arrived, then store the batch only if nothing
                    // more is waiting: batches stay large while the peer streams.
                    connection.take_frames(&mut frames, 1024);
                    for frame in frames.drain(..) {
                        engine.receive(&frame)?;
                    }
                }
                Event::Room => active = Instant::now(),
                Event::Poked => {}
                Event::Eof if engine.is_live() => break,
                Event::Eof => {
                    engine.idle()?;
                    if engine.may_end()? {
                        break;
                    }
                    if !engine.heard_peer() {
                        // A secure server closes on a plain peer without a word.
                        return Err(Error::Replication(
                            "the peer closed the stream without a handshake: a secure strata \
                             peer does that to a plain one (use --plain on both sides, or \
                             neither), and a busy server to a peer beyond its limit"
                                .into(),
                        ));
                    }
                    // Nodes whose history never came say more than the early end.
                    let stranded = engine.stranded().map(|s| format!(": {s}"));
                    return Err(Error::Replication(format!(
                        "the peer closed the stream before the session was complete{}",
                        stranded.unwrap_or_default()
                    )));
                }
                Event::Timeout => {
                    let now = Instant::now();
                    if total.is_some_and(|t| now >= t) {
                        return Err(Error::Replication(format!(
                            "the session took longer than its limit of {:?}",
                            self.limits.total_timeout.unwrap_or_default()
                        )));
                    }
                    if idle.is_some_and(|t| now >= t) {
                        return Err(Error::Replication(format!(
                            "nothing moved either way for {:?}",
                            self.limits.idle_timeout.unwrap_or_default()
                        )));
                    }
                    engine.idle()?;
                }
            }
        }
        drop(watcher);
        engine.idle()?;
        let mut rest = Vec::new();
        while let Some(message) = engine.next_output()? {
            frame::encode(&message, &mut rest);
        }
        connection.send_framed(rest)?;
        let linger = Instant::now() + LINGER;
        connection.finish(Some(total.map_or(linger, |t| t.max(linger))))?;
        // Let the peer close its side (it has everything); whatever it still says is
        // handled, but a silent peer cannot hold a finished session.
        while let Event::Frame(frame) = connection.next_event(false, Some(linger))? {
            engine.receive(&frame)?;
        }
        Ok(())
    }
}

/// Names `peer` in a rejection of what it sent.
fn name_peer(error: Error, peer: &str) -> Error {
    match error {
        Error::InvalidSignature {
            key,
            log,
            reason,
            peer: None,
        } => Error::InvalidSignature {
            key,
            log,
            reason,
            peer: Some(peer.to_string()),
        },
        other => other,
    }
}

/// Sends what the engine has to say while the outbox has room, gathered into writes of at
/// most [`GATHER`] bytes: few enough for locks and wake-ups not to count, small enough for
/// the writer thread to send one while the session produces the next. Produces at most
/// the room there was when called, so a writer that keeps up cannot keep the session from
/// its other work (received frames, timeouts). Returns whether anything was sent, and
/// whether the engine may have more.
fn produce(engine: &mut Engine, connection: &Connection) -> Result<(bool, bool)> {
    let mut budget = connection.room();
    let mut sent = false;
    let mut exhausted = false;
    while budget > 0 {
        let room = budget.min(GATHER);
        let mut framed = Vec::with_capacity(room + 1024);
        while framed.len() < room {
            match engine.next_output()? {
                Some(message) => frame::encode(&message, &mut framed),
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        budget = budget.saturating_sub(framed.len());
        sent |= !framed.is_empty();
        connection.send_framed(framed)?;
        if exhausted {
            break;
        }
    }
    Ok((sent, !exhausted))
}

/// In a live session, wakes the session when the graph grows.
struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Watcher {
    fn start(graph: Graph, connection: &Connection) -> Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let poke = connection.poke_handle();
        let stopped = stop.clone();
        thread::Builder::new()
            .name("strata-live".into())
            .spawn(move || {
                let mut seen = graph.change_count();
                while !stopped.load(Ordering::SeqCst) {
                    let now = graph.wait_for_change(seen, Some(TICK));
                    if now > seen {
                        seen = now;
                        poke.poke();
                    }
                }
            })
            .map_err(|e| Error::io("starting the live watcher", e))?;
        Ok(Watcher { stop })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
