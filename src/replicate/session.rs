//! The session state machine: hyperlog's replication protocol v1 (spec §3.2–§3.6), with
//! strata's fixes, written without I/O so that any transport (and a test) can drive it.
//!
//! The driver feeds every received frame to [`Engine::receive`], calls [`Engine::idle`]
//! when no frame is waiting, and sends whatever [`Engine::next_output`] returns while the
//! transport has room. The engine decides everything else:
//!
//! * **Handshake.** Both sides send one at once. The modes and the four "sent" flags
//!   follow hyperlog exactly. A strata peer is recognised by the hello in the handshake's
//!   `metadata`; a plain hyperlog peer gets plain hyperlog.
//! * **Haves.** A snapshot of every log's last seq is taken when the session starts; no
//!   entry past it is advertised or sent (hyperlog's `changes` snapshot, taken on every side
//!   here: bug H7). To a hyperlog peer strata advertises the logs of its heads, in head
//!   order, and the logs a node links to just before that node, as hyperlog does (so the
//!   captured sessions are reproduced byte for byte). To a strata peer it advertises every
//!   log before `SentHeads`, so all Wants, and with them exact totals, are known early.
//! * **Wants and nodes.** A Have for more than this replica holds gets one Want. A Want
//!   starts sending that log (see `outgoing.rs`); a strata peer's nodes are held back until
//!   it says `WantsDone`, which makes the order causal. Received nodes go through
//!   `incoming.rs` (any order, bounded memory, atomic batches).
//! * **The end.** `SentWants` goes out once every wanted node is stored and this side has
//!   nothing left to send; when both sides have sent both `SentHeads` and `SentWants` the
//!   session is done: it ends, or, in live mode, forwards every later local node that the
//!   peer is not known to have (never one it sent: bug H5).
//! * **Payload.** With a strata peer and a repository on both ends, `payload.rs` fetches the
//!   operations and files of received commits on the same stream.
//!
//! About 580 lines with its tests: the protocol's state machine is one piece; split, one
//! turn of the exchange would be spread over several files.

use std::collections::{HashMap, HashSet, VecDeque};

use super::incoming::Incoming;
use super::message::{Handshake, LogHead, Message, VERSION};
use super::outgoing::Outgoing;
use super::payload::{Hello, PayloadExchange};
use super::{Mode, Payload, Peer, Progress, Replica, SyncReport};
use crate::error::{Error, Result};
use crate::graph::Channel;

/// What the engine needs to know of the session's options.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub mode: Mode,
    pub live: bool,
    pub payload: Payload,
    /// Whether to introduce ourselves as strata (off: behave exactly as hyperlog).
    pub hello: bool,
    /// Whether this side has a repository (and so can exchange payload).
    pub repository: bool,
    pub max_logs: usize,
    pub max_waiting: usize,
    pub max_payload: usize,
    /// Whether the session runs over a secure channel.
    pub channel: Channel,
}

/// One message ready to go out, and what sending it means.
enum Out {
    Control(Vec<u8>),
    /// The node at `(log, seq)` of a wanted log: once it is sent, the next one is queued.
    Cursor(Vec<u8>, String, u64),
    /// A node forwarded in live mode.
    Live(Vec<u8>),
}

/// The peer, once its handshake has arrived.
struct Remote {
    strata: bool,
}

pub(crate) struct Engine {
    replica: Replica,
    settings: Settings,
    out: VecDeque<Out>,
    /// A node of a wanted log sits in `out` (hyperlog sends one at a time).
    in_flight: bool,
    remote: Option<Remote>,
    local_sent_heads: bool,
    local_sent_wants: bool,
    remote_sent_heads: bool,
    remote_sent_wants: bool,
    done: bool,
    live: bool,
    advertised: HashSet<String>,
    /// Whether this side went through advertising (and so may be asked for nodes).
    advertised_any: bool,
    /// Logs this side wants, with the seq it was told the peer has.
    wanted: HashMap<String, u64>,
    /// Wanted nodes not received yet.
    missing: u64,
    /// Logs being sent (a Want arrived and entries remain).
    sending: HashSet<String>,
    /// Whether nodes may go out (a strata peer must first say `WantsDone`).
    may_send: bool,
    /// The last seq of each log the peer is known to hold: what it said, was sent, or sent.
    peer_known: HashMap<String, u64>,
    /// Live mode forwards the local nodes after this change (the snapshot's, at first).
    live_next: u64,
    incoming: Incoming,
    outgoing: Outgoing,
    payload: Option<PayloadExchange>,
    progress: Progress,
}

impl Engine {
    /// Takes the snapshot and queues the handshake.
    pub(crate) fn new(replica: Replica, settings: Settings) -> Result<Engine> {
        let graph = replica.graph.clone();
        let snapshot_change = graph.change_count();
        let limits: HashMap<String, u64> = graph.logs()?.into_iter().collect();
        let hello = settings
            .hello
            .then(|| Hello::new(&settings.payload, settings.repository).encode());
        let handshake = Message::Handshake(Handshake {
            version: VERSION,
            mode: match settings.mode {
                Mode::Sync => None,
                Mode::Push => Some("push".into()),
                Mode::Pull => Some("pull".into()),
            },
            metadata: hello,
            live: settings.live,
        });
        Ok(Engine {
            incoming: Incoming::new(graph.clone(), settings.channel, settings.max_waiting),
            outgoing: Outgoing::new(graph, limits),
            replica,
            out: VecDeque::from([Out::Control(handshake.encode())]),
            in_flight: false,
            remote: None,
            local_sent_heads: false,
            local_sent_wants: false,
            remote_sent_heads: false,
            remote_sent_wants: false,
            done: false,
            live: settings.live,
            advertised: HashSet::new(),
            advertised_any: false,
            wanted: HashMap::new(),
            missing: 0,
            sending: HashSet::new(),
            may_send: false,
            peer_known: HashMap::new(),
            live_next: snapshot_change,
            payload: None,
            progress: Progress::default(),
            settings,
        })
    }

    /// The counts so far.
    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether the session is over: done, not live, and no payload transfer under way.
    pub(crate) fn is_finished(&self) -> bool {
        self.done && !self.live && self.payload.as_ref().is_none_or(PayloadExchange::finished)
    }

    /// Whether the peer may end the stream now without cutting the session short: this
    /// side has every node it asked for and nothing left to send, and the peer has said
    /// it wants nothing more, or could not want anything (this side advertised nothing).
    /// hyperlog ends a session in push or pull mode against a sync peer this way: the side
    /// that is done first closes, and the other ends with it.
    pub(crate) fn may_end(&mut self) -> Result<bool> {
        if !(self.local_sent_wants
            && !self.in_flight
            && self.outgoing.is_empty()
            && (self.remote_sent_wants || !self.advertised_any))
        {
            return Ok(false);
        }
        self.store()?;
        if let Some(stranded) = self.incoming.stranded() {
            return Err(Error::Replication(stranded));
        }
        Ok(self.payload.as_ref().is_none_or(PayloadExchange::finished))
    }

    /// What received nodes still wait for, if any (see `Incoming::stranded`).
    pub(crate) fn stranded(&self) -> Option<String> {
        self.incoming.stranded()
    }

    /// Whether received nodes are waiting to be stored.
    pub(crate) fn has_unstored(&self) -> bool {
        self.incoming.has_batch()
    }

    /// Whether the session has reached live forwarding.
    pub(crate) fn is_live(&self) -> bool {
        self.done && self.live
    }

    /// The graph this session replicates.
    pub(crate) fn graph(&self) -> &crate::graph::Graph {
        &self.replica.graph
    }

    /// The final report.
    pub(crate) fn report(&self) -> SyncReport {
        SyncReport {
            progress: self.progress.clone(),
            peer: match &self.remote {
                Some(Remote { strata: true }) => Peer::Strata,
                _ => Peer::Hyperlog,
            },
            live: self.live,
        }
    }

    /// Whether the peer's handshake has arrived.
    pub(crate) fn heard_peer(&self) -> bool {
        self.remote.is_some()
    }

    /// Handles one received frame.
    pub(crate) fn receive(&mut self, frame: &[u8]) -> Result<()> {
        if frame.is_empty() && self.remote.is_none() {
            // A secure session's first handshake message starts with two length bytes,
            // 0 and 48: read as plain frames, an empty one.
            return Err(Error::Replication(
                "the peer opened a secure strata session, and this side speaks plain \
                 hyperlog (--plain): use --plain on both sides, or neither"
                    .into(),
            ));
        }
        let message = Message::decode(frame)?;
        let strata = match (&message, &self.remote) {
            (Message::Handshake(handshake), None) => return self.on_handshake(handshake),
            (Message::Handshake(_), Some(_)) => {
                return Err(Error::Replication(
                    "the peer sent a second handshake".into(),
                ));
            }
            (_, None) => {
                return Err(Error::Replication(
                    "the peer sent a message before its handshake".into(),
                ));
            }
            (_, Some(remote)) => remote.strata,
        };
        match message {
            Message::Handshake(_) | Message::Unknown(_) => Ok(()),
            Message::Have(head) => self.on_have(head),
            Message::Want(head) => self.on_want(head),
            Message::Node(node) => self.on_node(node),
            Message::SentHeads => self.on_sent_heads(),
            Message::SentWants => {
                self.remote_sent_wants = true;
                self.update()
            }
            // strata's messages mean nothing from a peer that did not say hello.
            _ if !strata => Ok(()),
            Message::WantsDone => {
                self.may_send = true;
                self.pull()
            }
            other => match &mut self.payload {
                Some(payload) => payload.receive(other, &mut self.progress),
                None => Err(Error::Replication(
                    "the peer sent payload, but this session carries no payload".into(),
                )),
            },
        }
    }

    fn on_handshake(&mut self, handshake: &Handshake) -> Result<()> {
        if handshake.version != VERSION {
            return Err(Error::Replication(format!(
                "the peer speaks protocol version {}; this build speaks {VERSION}",
                handshake.version
            )));
        }
        let remote_mode = match handshake.mode.as_deref().unwrap_or("sync") {
            "sync" => Mode::Sync,
            "push" => Mode::Push,
            "pull" => Mode::Pull,
            other => {
                return Err(Error::Replication(format!(
                    "remote uses invalid mode: {other}"
                )));
            }
        };
        let mode = self.settings.mode;
        match (mode, remote_mode) {
            (Mode::Pull, Mode::Pull) => {
                return Err(Error::Replication(
                    "remote and local are both pulling".into(),
                ));
            }
            (Mode::Push, Mode::Push) => {
                return Err(Error::Replication(
                    "remote and local are both pushing".into(),
                ));
            }
            _ => {}
        }
        let hello = match &handshake.metadata {
            Some(metadata) if self.settings.hello => Hello::decode(metadata)?,
            _ => None,
        };
        if let (Some(hello), Some(repo)) = (&hello, &self.replica.repo)
            && hello.repository
        {
            let mut payload = PayloadExchange::new(
                repo.clone(),
                self.settings.payload.clone(),
                hello.payload.clone(),
                self.settings.max_payload,
            );
            payload.ask_pending(&mut self.progress)?;
            self.payload = Some(payload);
        }
        let strata = hello.is_some();
        self.remote = Some(Remote { strata });
        // A flag a side sets without sending its message (because of the other side's
        // mode) is set on both sides: a puller's peer never says `SentWants` and a
        // pusher's peer never says `SentHeads`. Without this the puller or pusher is never
        // done, and with payload on both sides (whose end waits for the graph's) neither
        // side ever ends.
        self.remote_sent_wants = remote_mode == Mode::Push || mode == Mode::Pull;
        self.remote_sent_heads = remote_mode == Mode::Pull || mode == Mode::Push;
        self.local_sent_wants = mode == Mode::Push || remote_mode == Mode::Pull;
        self.local_sent_heads = mode == Mode::Pull || remote_mode == Mode::Push;
        self.live |= handshake.live;
        self.may_send = !strata;
        if self.local_sent_heads {
            return self.update();
        }
        if strata {
            for (log, _) in self.outgoing.logs() {
                self.advertise(&log);
            }
        } else {
            for head in self.replica.graph.heads()? {
                self.advertise(&head.log);
            }
        }
        self.local_sent_heads = true;
        self.advertised_any = true;
        self.control(&Message::SentHeads);
        self.update()
    }

    fn control(&mut self, message: &Message) {
        self.out.push_back(Out::Control(message.encode()));
    }

    /// Sends a Have for `log` once per session, at the snapshot's seq.
    fn advertise(&mut self, log: &str) {
        if self.advertised.contains(log) {
            return;
        }
        self.advertised.insert(log.to_string());
        let seq = self.outgoing.limit(log);
        if seq > 0 {
            self.control(&Message::Have(LogHead {
                log: log.to_string(),
                seq,
            }));
        }
    }

    fn know(&mut self, log: &str, seq: u64) {
        match self.peer_known.get_mut(log) {
            Some(known) => *known = (*known).max(seq),
            None => {
                self.peer_known.insert(log.to_string(), seq);
            }
        }
    }

    fn check_logs(&self, count: usize) -> Result<()> {
        if count > self.settings.max_logs {
            return Err(Error::Replication(format!(
                "the peer names more than {} logs (the session's limit)",
                self.settings.max_logs
            )));
        }
        Ok(())
    }

    fn on_have(&mut self, head: LogHead) -> Result<()> {
        self.know(&head.log, head.seq);
        // A side that declared it wants nothing never asks; a log is asked for once.
        if self.local_sent_wants || self.wanted.contains_key(&head.log) {
            return Ok(());
        }
        let local = self.incoming.head(&head.log)?;
        // Entries this replica would refuse (a removed device's) are not asked for.
        let seq = match self.replica.graph.last_accepted(&head.log) {
            Some(last) => head.seq.min(last),
            None => head.seq,
        };
        if local >= seq {
            return Ok(());
        }
        self.check_logs(self.wanted.len() + 1)?;
        let count = seq - local;
        self.missing += count;
        self.progress.nodes_to_receive += count;
        self.wanted.insert(head.log.clone(), seq);
        self.control(&Message::Want(LogHead {
            log: head.log,
            seq: local,
        }));
        Ok(())
    }

    fn on_want(&mut self, want: LogHead) -> Result<()> {
        self.know(&want.log, want.seq);
        if self.sending.contains(&want.log) {
            return Ok(());
        }
        self.check_logs(self.sending.len() + 1)?;
        self.progress.nodes_to_send += self.outgoing.limit(&want.log).saturating_sub(want.seq);
        self.sending.insert(want.log.clone());
        self.queue_entry(&want.log, want.seq.saturating_add(1))
    }

    /// Queues the entry `(log, seq)` after advertising the logs its node links into, or
    /// ends the log's sending when there is no such entry in the snapshot.
    fn queue_entry(&mut self, log: &str, seq: u64) -> Result<()> {
        let Some(entry) = self.outgoing.entry(log, seq)? else {
            self.sending.remove(log);
            self.pull()?;
            return self.maybe_sent_wants();
        };
        for link_log in &entry.links {
            self.advertise(link_log);
        }
        self.outgoing.enqueue(log, seq, entry);
        self.pull()
    }

    /// Moves the lowest queued node into the output, when none is there already.
    fn pull(&mut self) -> Result<()> {
        if self.in_flight || !self.may_send {
            return Ok(());
        }
        if let Some(node) = self.outgoing.pop()? {
            self.know(&node.log, node.seq);
            self.progress.nodes_sent += 1;
            let (log, seq) = (node.log.clone(), node.seq);
            self.out
                .push_back(Out::Cursor(Message::Node(node).encode(), log, seq));
            self.in_flight = true;
        }
        Ok(())
    }

    fn on_node(&mut self, node: crate::graph::Node) -> Result<()> {
        self.know(&node.log, node.seq);
        // A removed device's later entries are refused here, without failing the session
        // of a peer that holds them (they were not asked for: see `on_have`).
        if self
            .replica
            .graph
            .last_accepted(&node.log)
            .is_some_and(|last| node.seq > last)
        {
            return self.maybe_sent_wants();
        }
        for (log, seq) in self.incoming.receive(node)? {
            if self.wanted.get(&log).is_some_and(|&to| seq <= to) && self.missing > 0 {
                self.missing -= 1;
            }
        }
        if self.incoming.batch_full() {
            self.store()?;
        }
        self.maybe_sent_wants()
    }

    /// Stores the ready batch and lets the payload exchange see the new nodes.
    fn store(&mut self) -> Result<()> {
        let stored = self.incoming.flush()?;
        self.progress.nodes_received += stored.new.len() as u64;
        if let Some(payload) = &mut self.payload {
            payload.nodes_stored(&stored.new, &mut self.progress)?;
        }
        Ok(())
    }

    fn on_sent_heads(&mut self) -> Result<()> {
        if self.remote_sent_heads {
            return Ok(());
        }
        self.remote_sent_heads = true;
        if self.remote.as_ref().is_some_and(|r| r.strata) {
            self.control(&Message::WantsDone);
        }
        self.maybe_sent_wants()?;
        self.update()
    }

    /// Sends `SentWants` once every wanted node is stored, all Haves are in, and this side
    /// has nothing queued to send.
    fn maybe_sent_wants(&mut self) -> Result<()> {
        if self.local_sent_wants
            || !self.remote_sent_heads
            || self.missing > 0
            || self.in_flight
            || !self.outgoing.is_empty()
        {
            return Ok(());
        }
        self.store()?;
        self.local_sent_wants = true;
        self.control(&Message::SentWants);
        self.update()
    }

    /// Ends the exchange when both sides have sent heads and wants.
    fn update(&mut self) -> Result<()> {
        if self.done
            || !self.local_sent_heads
            || !self.local_sent_wants
            || !self.remote_sent_heads
            || !self.remote_sent_wants
        {
            return Ok(());
        }
        self.done = true;
        if let Some(payload) = &mut self.payload {
            payload.graph_done();
        }
        if !self.live {
            self.store()?;
            if let Some(stranded) = self.incoming.stranded() {
                return Err(Error::Replication(stranded));
            }
        }
        Ok(())
    }

    /// Called when no received frame is waiting: stores what is ready.
    pub(crate) fn idle(&mut self) -> Result<()> {
        self.store()?;
        self.maybe_sent_wants()
    }

    /// The next message to send (type byte and body), if any.
    pub(crate) fn next_output(&mut self) -> Result<Option<Vec<u8>>> {
        if self.out.is_empty() {
            if let Some(payload) = &mut self.payload
                && let Some(message) = payload.next_output(&mut self.progress)?
            {
                return Ok(Some(message.encode()));
            }
            if self.is_live() {
                self.forward_live()?;
            }
        }
        Ok(match self.out.pop_front() {
            None => None,
            Some(Out::Control(bytes) | Out::Live(bytes)) => Some(bytes),
            Some(Out::Cursor(bytes, log, seq)) => {
                self.in_flight = false;
                self.queue_entry(&log, seq + 1)?;
                Some(bytes)
            }
        })
    }

    /// Live mode: queues the local nodes stored after the snapshot (a page at a time) that
    /// the peer is not known to hold.
    fn forward_live(&mut self) -> Result<()> {
        for node in self.replica.graph.changes(self.live_next).take(256) {
            let node = node?;
            self.live_next = node.change;
            if self
                .peer_known
                .get(&node.log)
                .is_some_and(|&s| s >= node.seq)
            {
                continue;
            }
            self.know(&node.log, node.seq);
            self.progress.nodes_sent += 1;
            self.out.push_back(Out::Live(Message::Node(node).encode()));
        }
        Ok(())
    }

    /// Whether local nodes stored after `live_next` may need forwarding.
    pub(crate) fn live_behind(&self) -> bool {
        self.is_live() && self.replica.graph.change_count() > self.live_next
    }
}

#[cfg(test)]
mod tests;
