//! Reading a sender's nodes ahead, on a thread of its own.
//!
//! A sender sends nodes in local change order, but node keys are hashes: the nodes of
//! consecutive entries lie anywhere in storage, and one seek each (a block from every table
//! and level the key could be in) is most of a sender's work. Read together in key order,
//! a dense share of the stored nodes costs steps from one to the next instead
//! ([`Graph::get_ascending`]). Reading thousands of nodes at once on the session's own
//! thread stalls the pipe to the peer, which then idles (measured: `docs/performance.md`,
//! "Sync"); a [`Prefetcher`] reads them on its own thread, a window ahead of what is sent:
//!
//! * the sender asks for the nodes of the entries it will send next, in send order
//!   ([`Prefetcher::ask`]); at most [`IN_FLIGHT`] keys are asked for and not yet taken,
//!   which bounds the nodes held here and in the channel (a key asked for and never taken,
//!   an entry dropped unsent, only takes room);
//! * the thread reads them a chunk at a time (up to [`CHUNK`] keys) in key order, [`RUN`]
//!   keys under one storage lock at a time, so that the session's own reads and writes
//!   and other users of the repository get the lock in between, and hands the nodes back
//!   through a bounded channel;
//! * [`Prefetcher::take`] gives a node asked for, waiting for the thread to reach it, and
//!   `None` for a key not asked for or once the thread has stopped (a storage error ends
//!   it): the caller then reads the node itself. Correctness never depends on the thread.
//!
//! The thread starts at the first request. Dropping the prefetcher closes both channels
//! and joins the thread, which stops after the run it is reading: a session that ends,
//! fails or is dropped mid-way leaves no thread behind, and no clone of the graph.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{self, JoinHandle};

use crate::graph::{Graph, Node};

/// The most keys asked for and not yet taken (about 8 MiB of ~250-byte nodes).
pub(crate) const IN_FLIGHT: usize = 32 * 1024;
/// The most keys read in key order together. The more, the denser among the stored nodes,
/// and the cheaper each read (measured: a sender at 10^6 nodes on disk used 15-20 % less
/// CPU with chunks of 16,384 than one at a time, and no less with 1,024); but the first
/// node of a chunk waits for the whole chunk, so a session's first chunks are smaller
/// (from [`RUN`] keys, doubling), so that the pipe does not wait for the first node.
pub(crate) const CHUNK: usize = IN_FLIGHT / 2;
/// How many keys are read under one storage lock.
const RUN: usize = 256;

/// The nodes of one run, by key (`None`: not stored).
type Fetched = Vec<(String, Option<Node>)>;

/// The thread and its two channels.
struct Worker {
    requests: Sender<Vec<String>>,
    results: Receiver<Fetched>,
    thread: JoinHandle<()>,
}

/// Reads nodes ahead of a sender (see the module's doc).
pub(crate) struct Prefetcher {
    graph: Graph,
    worker: Option<Worker>,
    /// Keys asked for and not taken yet.
    asked: HashSet<String>,
    /// Nodes the thread handed back and not taken yet.
    fetched: HashMap<String, Option<Node>>,
    /// How many keys were asked for so far: the next chunk's size (at least [`RUN`], at
    /// most [`CHUNK`]).
    asked_ever: usize,
}

impl Prefetcher {
    pub(crate) fn new(graph: Graph) -> Prefetcher {
        Prefetcher {
            graph,
            worker: None,
            asked: HashSet::new(),
            fetched: HashMap::new(),
            asked_ever: 0,
        }
    }

    /// How many more keys may be asked for.
    pub(crate) fn room(&self) -> usize {
        IN_FLIGHT.saturating_sub(self.asked.len())
    }

    pub(crate) fn is_asked(&self, key: &str) -> bool {
        self.asked.contains(key)
    }

    /// Asks for the nodes `keys`, in the order they will be taken; keys past
    /// [`Prefetcher::room`] are left out. Without a thread (one could not be started)
    /// nothing is asked, and every node is read by the caller.
    pub(crate) fn ask(&mut self, keys: Vec<String>) {
        let mut keys: &[String] = &keys[..keys.len().min(self.room())];
        if keys.is_empty() {
            return;
        }
        if self.worker.is_none() {
            self.worker = Worker::start(self.graph.clone());
        }
        let Some(worker) = &self.worker else {
            return;
        };
        while !keys.is_empty() {
            let (chunk, rest) = keys.split_at(self.asked_ever.clamp(RUN, CHUNK).min(keys.len()));
            // A thread that stopped has closed its results: `take` then finds out.
            if worker.requests.send(chunk.to_vec()).is_err() {
                return;
            }
            self.asked.extend(chunk.iter().cloned());
            self.asked_ever += chunk.len();
            keys = rest;
        }
    }

    /// The node `key` if it was asked for and read (waiting for the thread to reach it);
    /// `Some(None)` if the thread found no such node; `None` if the caller must read it.
    pub(crate) fn take(&mut self, key: &str) -> Option<Option<Node>> {
        if !self.asked.remove(key) {
            return None;
        }
        loop {
            if let Some(node) = self.fetched.remove(key) {
                return Some(node);
            }
            // Runs arrive in the order asked, so the wait ends with this key's run, or
            // with the thread's end (`recv` fails once it has dropped its sender).
            let run = self.worker.as_ref()?.results.recv().ok()?;
            for (fetched, node) in run {
                if fetched == key || self.asked.contains(&fetched) {
                    self.fetched.insert(fetched, node);
                }
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        if let Some(Worker {
            requests,
            results,
            thread,
        }) = self.worker.take()
        {
            // With both channels closed the thread stops at its next request or result.
            drop(requests);
            drop(results);
            // A panic on that thread has nothing to hand back here.
            let _ = thread.join();
        }
    }
}

impl Worker {
    /// Starts the thread, or gives `None` if the system refuses one.
    fn start(graph: Graph) -> Option<Worker> {
        let (requests, asked) = mpsc::channel();
        let (handed, results) = mpsc::sync_channel(IN_FLIGHT / RUN);
        let thread = thread::Builder::new()
            .name("strata-prefetch".into())
            .spawn(move || read_ahead(&graph, &asked, &handed))
            .ok()?;
        Some(Worker {
            requests,
            results,
            thread,
        })
    }
}

/// The thread's loop: each chunk asked for is read in key order, a run at a time. Ends
/// when either channel closes or a read fails (the caller then reads for itself, and meets
/// the error there).
fn read_ahead(graph: &Graph, asked: &Receiver<Vec<String>>, handed: &SyncSender<Fetched>) {
    while let Ok(mut chunk) = asked.recv() {
        chunk.sort_unstable();
        chunk.dedup();
        let among = chunk.len();
        for run in chunk.chunks(RUN) {
            let keys: Vec<&str> = run.iter().map(String::as_str).collect();
            let Ok(nodes) = graph.get_ascending(&keys, among) else {
                return;
            };
            let fetched = run.iter().cloned().zip(nodes).collect();
            if handed.send(fetched).is_err() {
                return;
            }
        }
    }
}
