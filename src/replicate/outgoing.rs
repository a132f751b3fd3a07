//! Sending nodes: each wanted log from the peer's head up to this session's snapshot, one
//! entry at a time, the logs merged by local change number.
//!
//! Like hyperlog's outgoing queue, at most one entry per wanted log is queued: the next one
//! of that log, taken when the previous one has gone out. The queue hands out the entry
//! with the lowest local change. Local change order is topological, so once every log the
//! peer wants is known, this merge sends every node after its links (see `docs/protocol.md`
//! for the argument); strata waits for a strata peer's `WantsDone` before sending, and so
//! sends in causal order.
//!
//! Entries are read from the changelogs a page at a time ([`Graph::log_entries`]): a run
//! of entries is stored as one record, so reading them one by one would decode the whole
//! run for every node sent. Pages shrink as more logs are sent at once, so the entries
//! held stay under [`BUFFERED`] whatever the number of logs; with one queued entry per
//! wanted log, memory is O(wanted logs) plus that constant.
//!
//! A sync file's writer also reads nodes ahead ([`Outgoing::reading_nodes_ahead`]): the
//! nodes of the queued and read-ahead entries at once, in key order
//! ([`Graph::get_ascending`]). Node keys are hashes, so the nodes of consecutive entries
//! lie anywhere in storage, and one seek each (a block from every table and level) is
//! most of a sender's work; read together in key order, a dense share of the stored nodes
//! (a clone, a long catch-up) costs steps from one to the next instead. At most
//! [`FETCHED`] nodes are held. A session does not: reading thousands of nodes in one go
//! stalls the pipe to the peer, which then idles (measured: `docs/performance.md`, "Sync").

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::error::{Error, Result};
use crate::graph::{Graph, Node};
use crate::store::Entry;

/// One queued entry: ordered by local change, then log and seq (for determinism).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    change: u64,
    log: String,
    seq: u64,
    key: String,
}

/// The most entries read ahead from one log at a time (more when reading nodes ahead:
/// enough for [`FETCHED`] nodes of one long log).
const PAGE: usize = 512;
/// The most entries read ahead across all logs being sent.
const BUFFERED: usize = 64 * 1024;
/// The most nodes read ahead (about 4 MiB of ~250-byte nodes).
const FETCHED: usize = 16 * 1024;

/// The sending half of a session.
pub(crate) struct Outgoing {
    graph: Graph,
    /// The last seq of each log as of the session's snapshot: nothing later is sent.
    limits: HashMap<String, u64>,
    queue: BinaryHeap<Reverse<Queued>>,
    /// Entries read ahead, per log being sent, in seq order.
    ahead: HashMap<String, VecDeque<(u64, Entry)>>,
    /// Nodes read ahead for queued and read-ahead entries, by key.
    fetched: HashMap<String, Node>,
    /// How many nodes to read at once: 1, or [`FETCHED`] when reading nodes ahead.
    window: usize,
}

impl Outgoing {
    pub(crate) fn new(graph: Graph, limits: HashMap<String, u64>) -> Outgoing {
        Outgoing {
            graph,
            limits,
            queue: BinaryHeap::new(),
            ahead: HashMap::new(),
            fetched: HashMap::new(),
            window: 1,
        }
    }

    /// Reads nodes ahead, [`FETCHED`] at a time in key order (see the module's doc).
    pub(crate) fn reading_nodes_ahead(mut self) -> Outgoing {
        self.window = FETCHED;
        self
    }

    /// The last seq of `log` in the snapshot (0 when this replica had none of it).
    pub(crate) fn limit(&self, log: &str) -> u64 {
        self.limits.get(log).copied().unwrap_or(0)
    }

    /// Every log of the snapshot, with its last seq, in log order.
    pub(crate) fn logs(&self) -> Vec<(String, u64)> {
        let mut logs: Vec<(String, u64)> = self
            .limits
            .iter()
            .map(|(log, &seq)| (log.clone(), seq))
            .collect();
        logs.sort();
        logs
    }

    /// The entry at `(log, seq)` if it is within the snapshot. Logs are read forward: the
    /// entries after `seq` are read ahead for the calls that follow.
    pub(crate) fn entry(&mut self, log: &str, seq: u64) -> Result<Option<Entry>> {
        let limit = self.limit(log);
        if seq == 0 || seq > limit {
            self.ahead.remove(log);
            return Ok(None);
        }
        if let Some(ahead) = self.ahead.get_mut(log) {
            while ahead.front().is_some_and(|(at, _)| *at < seq) {
                ahead.pop_front();
            }
            if let Some((at, _)) = ahead.front()
                && *at == seq
            {
                return Ok(ahead.pop_front().map(|(_, entry)| entry));
            }
        }
        let logs = self.ahead.len().max(1);
        let page = (BUFFERED / logs).clamp(1, PAGE.max(self.window));
        let wanted = usize::try_from(limit - seq + 1).unwrap_or(usize::MAX);
        let mut entries: VecDeque<(u64, Entry)> =
            self.graph.log_entries(log, seq, page.min(wanted))?.into();
        let first = match entries.pop_front() {
            Some((at, entry)) if at == seq => entry,
            _ => return Ok(None),
        };
        self.ahead.insert(log.to_string(), entries);
        Ok(Some(first))
    }

    /// Queues an entry read by [`Outgoing::entry`].
    pub(crate) fn enqueue(&mut self, log: &str, seq: u64, entry: Entry) {
        self.queue.push(Reverse(Queued {
            change: entry.change,
            log: log.to_string(),
            seq,
            key: entry.node,
        }));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The queued node with the lowest change, as it is sent: under the log and seq of its
    /// entry (a node stored under another log is sent under the one being streamed).
    pub(crate) fn pop(&mut self) -> Result<Option<Node>> {
        let Some(Reverse(queued)) = self.queue.pop() else {
            return Ok(None);
        };
        if !self.fetched.contains_key(&queued.key) {
            self.fetch(&queued.key)?;
        }
        let mut node = self.fetched.remove(&queued.key).ok_or_else(|| {
            Error::corrupt(format!(
                "entry {} of log {} names missing node {}",
                queued.seq, queued.log, queued.key
            ))
        })?;
        node.log = queued.log;
        node.seq = queued.seq;
        Ok(Some(node))
    }

    /// Reads node `first` and, when reading ahead, the nodes of the entries queued and
    /// read ahead, up to the window, in key order. What was read before and not sent (the
    /// entries of a log the peer stopped wanting) is dropped, keeping memory bounded.
    fn fetch(&mut self, first: &str) -> Result<()> {
        self.fetched.clear();
        let queued = self.queue.iter().map(|Reverse(queued)| &queued.key);
        let ahead = self.ahead.values().flatten().map(|(_, entry)| &entry.node);
        let mut keys: Vec<&str> = std::iter::once(first)
            .chain(queued.chain(ahead).map(String::as_str))
            .take(self.window)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let nodes = self.graph.get_ascending(&keys)?;
        for (key, node) in keys.into_iter().zip(nodes) {
            if let Some(node) = node {
                self.fetched.insert(key.to_string(), node);
            }
        }
        Ok(())
    }
}
