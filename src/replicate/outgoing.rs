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
//! run for every node sent. Each log's read-ahead is topped up once half of it has gone
//! (reading a little at a time would decode a run again for each page), so that the
//! entries to be sent next are known well ahead; it shrinks as more logs are sent at
//! once, so the entries held stay under [`BUFFERED`] whatever the number of logs; with one
//! queued entry per wanted log, memory is O(wanted logs) plus that constant.
//!
//! Nodes are read ahead too: the nodes of the queued and read-ahead entries, in the order
//! they will be sent, are handed to a [`Prefetcher`], which reads them in key order on its
//! own thread (see `prefetch.rs` for why). A node it does not have is read here, one seek.
//! A sync file's writer has no pipe to stall, and reads them here instead
//! ([`Outgoing::reading_in_line`]): [`IN_LINE`] at a time, in key order, which measured
//! faster for it than the thread (`docs/performance.md`, "Sync").

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::prefetch::{self, Prefetcher};
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

/// The most entries read ahead across all logs being sent: enough, for one log, to ask
/// for [`prefetch::IN_FLIGHT`] nodes when half of them are left.
const BUFFERED: usize = 2 * prefetch::IN_FLIGHT;
/// How many nodes are read at once when reading in line (about 4 MiB of ~250-byte nodes).
const IN_LINE: usize = 16 * 1024;

/// Where the nodes to send come from.
enum Reading {
    /// A thread reads them ahead (a session: reading in line would stall the pipe).
    Thread(Prefetcher),
    /// [`Outgoing::pop`] reads them, [`IN_LINE`] at a time, and keeps them by key until
    /// they are sent.
    InLine(HashMap<String, Node>),
}

/// The sending half of a session.
pub(crate) struct Outgoing {
    graph: Graph,
    /// The last seq of each log as of the session's snapshot: nothing later is sent.
    limits: HashMap<String, u64>,
    queue: BinaryHeap<Reverse<Queued>>,
    /// Entries read ahead, per log being sent, in seq order.
    ahead: HashMap<String, VecDeque<(u64, Entry)>>,
    /// Reads the nodes of queued and read-ahead entries ahead of [`Outgoing::pop`].
    reading: Reading,
    /// Whether entries were read since the prefetcher was last asked: only then can it be
    /// asked for more (looking for keys to ask for goes over every entry held).
    unasked: bool,
}

impl Outgoing {
    pub(crate) fn new(graph: Graph, limits: HashMap<String, u64>) -> Outgoing {
        Outgoing {
            reading: Reading::Thread(Prefetcher::new(graph.clone())),
            graph,
            limits,
            queue: BinaryHeap::new(),
            ahead: HashMap::new(),
            unasked: false,
        }
    }

    /// Reads nodes in line instead of on a thread (see the module's doc).
    pub(crate) fn reading_in_line(mut self) -> Outgoing {
        self.reading = Reading::InLine(HashMap::new());
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
    /// entries after `seq` are read ahead for the calls that follow, topped up whenever half
    /// of them have gone.
    pub(crate) fn entry(&mut self, log: &str, seq: u64) -> Result<Option<Entry>> {
        let limit = self.limit(log);
        if seq == 0 || seq > limit {
            self.ahead.remove(log);
            return Ok(None);
        }
        let held = (BUFFERED / self.ahead.len().max(1)).max(1);
        let ahead = self.ahead.entry(log.to_string()).or_default();
        while ahead.front().is_some_and(|(at, _)| *at < seq) {
            ahead.pop_front();
        }
        if ahead.front().is_some_and(|(at, _)| *at != seq) {
            ahead.clear();
        }
        let from = ahead.back().map_or(seq, |(at, _)| at + 1);
        if from <= limit && ahead.len() <= held / 2 {
            let wanted = usize::try_from(limit - from + 1).unwrap_or(usize::MAX);
            let page = held.saturating_sub(ahead.len()).min(wanted).max(1);
            ahead.extend(self.graph.log_entries(log, from, page)?);
            self.unasked = true;
        }
        match ahead.pop_front() {
            Some((at, entry)) if at == seq => Ok(Some(entry)),
            _ => {
                self.ahead.remove(log);
                Ok(None)
            }
        }
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
        let stored = match self.reading {
            Reading::Thread(_) => self.take_fetched(&queued.key)?,
            Reading::InLine(_) => self.read_in_line(&queued.key)?,
        };
        let mut node = stored.ok_or_else(|| {
            Error::corrupt(format!(
                "entry {} of log {} names missing node {}",
                queued.seq, queued.log, queued.key
            ))
        })?;
        node.log = queued.log;
        node.seq = queued.seq;
        Ok(Some(node))
    }

    /// Once the prefetcher has room for a chunk and entries were read since it was last
    /// asked, asks it for the nodes of the queued and read-ahead entries it was not asked
    /// for yet, in change order: the order they are sent in, as far as the entries known
    /// here tell.
    fn read_ahead(&mut self) {
        let Reading::Thread(prefetcher) = &mut self.reading else {
            return;
        };
        let room = prefetcher.room();
        if room < prefetch::CHUNK || !self.unasked {
            return;
        }
        self.unasked = false;
        let mut upcoming: Vec<(u64, &String)> = upcoming(&self.queue, &self.ahead)
            .filter(|(_, key)| !prefetcher.is_asked(key))
            .collect();
        upcoming.sort_unstable();
        let keys = upcoming
            .into_iter()
            .take(room)
            .map(|(_, key)| key.clone())
            .collect();
        prefetcher.ask(keys);
    }

    /// Node `key` from the prefetcher, or read here if it does not have it (`None`: not
    /// stored).
    fn take_fetched(&mut self, key: &str) -> Result<Option<Node>> {
        self.read_ahead();
        let taken = match &mut self.reading {
            Reading::Thread(prefetcher) => prefetcher.take(key),
            Reading::InLine(_) => None,
        };
        match taken {
            Some(fetched) => Ok(fetched),
            None => match self.graph.get(key) {
                Ok(node) => Ok(Some(node)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Node `key`, read with the nodes of the entries queued and read ahead (up to
    /// [`IN_LINE`], in key order) unless it was read so already (`None`: not stored).
    /// What was read before and not sent is dropped, keeping memory bounded.
    fn read_in_line(&mut self, key: &str) -> Result<Option<Node>> {
        let Reading::InLine(fetched) = &mut self.reading else {
            return Ok(None);
        };
        if !fetched.contains_key(key) {
            fetched.clear();
            let mut keys: Vec<&str> = std::iter::once(key)
                .chain(upcoming(&self.queue, &self.ahead).map(|(_, key)| key.as_str()))
                .take(IN_LINE)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let nodes = self.graph.get_ascending(&keys, keys.len())?;
            for (key, node) in keys.into_iter().zip(nodes) {
                if let Some(node) = node {
                    fetched.insert(key.to_string(), node);
                }
            }
        }
        Ok(fetched.remove(key))
    }
}

/// The local change and node key of every entry queued and read ahead, in no set order.
fn upcoming<'a>(
    queue: &'a BinaryHeap<Reverse<Queued>>,
    ahead: &'a HashMap<String, VecDeque<(u64, Entry)>>,
) -> impl Iterator<Item = (u64, &'a String)> {
    let queued = queue
        .iter()
        .map(|Reverse(queued)| (queued.change, &queued.key));
    queued.chain(
        ahead
            .values()
            .flatten()
            .map(|(_, entry)| (entry.change, &entry.node)),
    )
}
