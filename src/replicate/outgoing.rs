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

/// The most entries read ahead from one log at a time.
const PAGE: usize = 512;
/// The most entries read ahead across all logs being sent.
const BUFFERED: usize = 64 * 1024;

/// The sending half of a session.
pub(crate) struct Outgoing {
    graph: Graph,
    /// The last seq of each log as of the session's snapshot: nothing later is sent.
    limits: HashMap<String, u64>,
    queue: BinaryHeap<Reverse<Queued>>,
    /// Entries read ahead, per log being sent, in seq order.
    ahead: HashMap<String, VecDeque<(u64, Entry)>>,
}

impl Outgoing {
    pub(crate) fn new(graph: Graph, limits: HashMap<String, u64>) -> Outgoing {
        Outgoing {
            graph,
            limits,
            queue: BinaryHeap::new(),
            ahead: HashMap::new(),
        }
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
        let page = (BUFFERED / logs).clamp(1, PAGE);
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
        let mut node = self.graph.get(&queued.key).map_err(|e| match e {
            Error::NotFound(_) => Error::corrupt(format!(
                "entry {} of log {} names missing node {}",
                queued.seq, queued.log, queued.key
            )),
            other => other,
        })?;
        node.log = queued.log;
        node.seq = queued.seq;
        Ok(Some(node))
    }
}
