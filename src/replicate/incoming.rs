//! Receiving nodes: in any order, into atomic batches, in bounded memory.
//!
//! A received node is ready when it continues its log (its `seq` is the next one this
//! replica expects) and every node it links to is stored or already ready. Ready nodes
//! collect into a batch that goes to [`Graph::ingest`] whole, which recomputes each hash,
//! checks links and sequence numbers again, and stores the batch atomically (or nothing).
//!
//! A node that is not ready waits under the one thing it lacks: a missing link, or the
//! entry before it in its log. When that arrives, exactly its waiters are looked at again
//! (and may wait for something else). Waiting nodes count against a limit; past it the
//! session fails, so a peer sending in any order costs bounded memory.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::error::{Error, Result};
use crate::graph::{Channel, Graph, Node};

/// How many keys of recently received nodes are remembered, so that checking a link to
/// one (the usual case) costs no storage read.
const RECENT: usize = 64 * 1024;

/// A batch is ingested once it holds this many nodes...
const BATCH_NODES: usize = 1024;
/// ...or this many bytes.
const BATCH_BYTES: usize = 4 << 20;

/// What a waiting node lacks.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Lack {
    /// The node with this key.
    Node(String),
    /// The entry `(log, seq)`: the one before the waiting node in its log.
    Entry(String, u64),
}

enum Verdict {
    Ready,
    /// Already received (its seq is behind the log): the batch re-checks it, and storing
    /// it again is a no-op, or fails if it contradicts what is stored.
    Again,
    Wait(Lack),
}

/// Keys of nodes received lately, oldest forgotten first.
#[derive(Default)]
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    fn insert(&mut self, key: &str) {
        if self.set.insert(key.to_string()) {
            self.order.push_back(key.to_string());
            if self.order.len() > RECENT
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The receiving half of a session.
pub(crate) struct Incoming {
    graph: Graph,
    /// What the nodes came through (the verifier trusts a secure channel more).
    channel: Channel,
    /// The next seq expected in each log seen this session.
    next_seq: HashMap<String, u64>,
    recent: Recent,
    batch: Vec<Node>,
    batch_bytes: usize,
    waiting: HashMap<Lack, Vec<Node>>,
    waiting_nodes: usize,
    waiting_bytes: usize,
    /// Bytes that may wait (out-of-order nodes) before the session fails.
    limit: usize,
}

/// What one ingested batch brought.
pub(crate) struct Stored {
    /// Nodes this replica did not have before.
    pub new: Vec<Node>,
}

fn size_of(node: &Node) -> usize {
    node.value.len() + node.key.len() + node.log.len() + 66 * node.links.len() + 64
}

impl Incoming {
    pub(crate) fn new(graph: Graph, channel: Channel, limit: usize) -> Incoming {
        Incoming {
            graph,
            channel,
            next_seq: HashMap::new(),
            recent: Recent::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            waiting: HashMap::new(),
            waiting_nodes: 0,
            waiting_bytes: 0,
            limit,
        }
    }

    /// The last seq of `log` this replica holds or has ready.
    pub(crate) fn head(&mut self, log: &str) -> Result<u64> {
        Ok(self.next_seq(log)? - 1)
    }

    fn next_seq(&mut self, log: &str) -> Result<u64> {
        if let Some(&next) = self.next_seq.get(log) {
            return Ok(next);
        }
        let next = self.graph.log_head(log)? + 1;
        self.next_seq.insert(log.to_string(), next);
        Ok(next)
    }

    /// Takes one received node. Returns the `(log, seq)` of every node that became ready
    /// (it and the waiters it freed), in order; a node received again is not among them.
    pub(crate) fn receive(&mut self, node: Node) -> Result<Vec<(String, u64)>> {
        let mut ready = Vec::new();
        let mut work = vec![node];
        while let Some(node) = work.pop() {
            match self.verdict(&node)? {
                Verdict::Wait(lack) => self.wait(lack, node)?,
                Verdict::Again => self.add_to_batch(node),
                Verdict::Ready => {
                    if let Some(next) = self.next_seq.get_mut(&node.log) {
                        *next = node.seq + 1;
                    }
                    self.recent.insert(&node.key);
                    ready.push((node.log.clone(), node.seq));
                    // Nothing waits while the peer sends in order (the usual case): then
                    // this costs no lookup at all.
                    if !self.waiting.is_empty() {
                        for lack in [
                            Lack::Node(node.key.clone()),
                            Lack::Entry(node.log.clone(), node.seq),
                        ] {
                            if let Some(freed) = self.waiting.remove(&lack) {
                                self.waiting_nodes -= freed.len();
                                self.waiting_bytes -= freed.iter().map(size_of).sum::<usize>();
                                work.extend(freed);
                            }
                        }
                    }
                    self.add_to_batch(node);
                }
            }
        }
        Ok(ready)
    }

    fn verdict(&mut self, node: &Node) -> Result<Verdict> {
        let next = self.next_seq(&node.log)?;
        if node.seq < next {
            return Ok(Verdict::Again);
        }
        if node.seq > next {
            return Ok(Verdict::Wait(Lack::Entry(node.log.clone(), node.seq - 1)));
        }
        for link in &node.links {
            if !self.recent.set.contains(link) && !self.graph.contains(link)? {
                return Ok(Verdict::Wait(Lack::Node(link.clone())));
            }
        }
        Ok(Verdict::Ready)
    }

    fn wait(&mut self, lack: Lack, node: Node) -> Result<()> {
        self.waiting_nodes += 1;
        self.waiting_bytes += size_of(&node);
        if self.waiting_bytes > self.limit {
            return Err(Error::Replication(format!(
                "{} received nodes wait for links or earlier log entries, more than the limit \
                 of {} bytes allows (the peer sends far out of order)",
                self.waiting_nodes, self.limit
            )));
        }
        self.waiting.entry(lack).or_default().push(node);
        Ok(())
    }

    fn add_to_batch(&mut self, node: Node) {
        self.batch_bytes += size_of(&node);
        self.batch.push(node);
    }

    /// Whether ready nodes wait to be stored.
    pub(crate) fn has_batch(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Whether the batch is big enough to be stored now.
    pub(crate) fn batch_full(&self) -> bool {
        self.batch.len() >= BATCH_NODES || self.batch_bytes >= BATCH_BYTES
    }

    /// Stores the batch, if any, in one atomic ingest.
    pub(crate) fn flush(&mut self) -> Result<Stored> {
        if self.batch.is_empty() {
            return Ok(Stored { new: Vec::new() });
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let before = self.graph.change_count();
        let stored = self.graph.ingest_via(batch, self.channel)?;
        Ok(Stored {
            new: stored.into_iter().filter(|n| n.change > before).collect(),
        })
    }

    /// A node that is still waiting and what it waits for, if any: at the end of a session
    /// this means the peer sent nodes whose history it never sent.
    pub(crate) fn stranded(&self) -> Option<String> {
        self.waiting.iter().next().map(|(lack, nodes)| {
            let what = match lack {
                Lack::Node(key) => format!("node {key}"),
                Lack::Entry(log, seq) => format!("entry {seq} of log {log}"),
            };
            format!(
                "{} received node(s) never became storable: node {} waits for {what}",
                self.waiting_nodes,
                nodes.first().map_or("?", |n| n.key.as_str())
            )
        })
    }
}
