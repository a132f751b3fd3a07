//! The graph: hyperlog's content-addressed DAG of nodes with per-device changelogs.
//!
//! Every write is a node `{links, value}` whose key is the framed hash of both. Nodes are
//! immutable and deduplicated by key. Each repository has its own log id; a node it stores
//! gets the next dense local `change` number and an entry in the changelog of the log it
//! came from (`(log, seq)`, dense per log). Heads are the nodes no other node links to.
//!
//! Unlike hyperlog, a batch is atomic (all or nothing), keeps the caller's order, may link
//! to earlier documents of the same batch, and never leaves a gap in change numbers or
//! sequence numbers.

mod changes;
mod hash;
mod node;
mod recent;
mod runs;
mod sign;
mod write;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

pub use changes::Changes;
pub use hash::{FramedSha256, NodeHasher, framed_update};
pub use node::{Entry, Node};
pub use sign::{Signer, Verifier};

use crate::error::{Error, Result};
use crate::keys;
use crate::kv::{self, Batch, Durability, Kv};
use write::Incoming;

/// The on-disk format version this build writes and reads.
const FORMAT_VERSION: u64 = 1;

/// How a graph is opened.
#[derive(Clone)]
pub struct GraphOptions {
    /// Computes node keys. Default: framed SHA-256 (hyperlog's).
    pub hasher: Arc<dyn NodeHasher>,
    /// Signs locally written nodes.
    pub signer: Option<Arc<dyn Signer>>,
    /// Verifies nodes received from other logs.
    pub verifier: Option<Arc<dyn Verifier>>,
    /// How durable each write is before it returns.
    pub durability: Durability,
    /// The log id to give a newly created repository (an existing one keeps its own).
    /// Default: 16 random bytes in hex.
    pub log_id: Option<String>,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            hasher: Arc::new(FramedSha256),
            signer: None,
            verifier: None,
            durability: Durability::default(),
            log_id: None,
        }
    }
}

impl std::fmt::Debug for GraphOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphOptions")
            .field("signer", &self.signer.is_some())
            .field("verifier", &self.verifier.is_some())
            .field("durability", &self.durability)
            .field("log_id", &self.log_id)
            .finish_non_exhaustive()
    }
}

/// A document to add: the links and value of a future node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doc {
    pub links: Vec<String>,
    pub value: Vec<u8>,
    /// The writer's identity for this node only (overrides the signer's).
    pub identity: Option<Vec<u8>>,
}

impl Doc {
    pub fn new(links: Vec<String>, value: impl Into<Vec<u8>>) -> Doc {
        Doc {
            links,
            value: value.into(),
            identity: None,
        }
    }
}

/// What a graph reports to observers registered with [`Graph::on_event`]: the writes made
/// through this API (`add`, `append`, `batch`, `ingest`). A dataset repository's commits
/// are reported by its commit feed (`Repository::changes`) instead.
#[derive(Debug)]
pub enum GraphEvent<'a> {
    /// A document is about to be added; its key is not computed yet and it is not stored.
    PreAdd {
        links: &'a [String],
        value: &'a [u8],
    },
    /// A node was stored (or already existed) and is readable.
    Add(&'a Node),
    /// A document was not added; nothing of its batch was written.
    Reject { error: &'a Error },
}

type Observer = Arc<dyn Fn(&GraphEvent) + Send + Sync>;

/// Runs under the graph's lock after every write that stored nodes, in the same critical
/// section: the dataset store uses it to index new nodes before anyone can read.
pub(crate) type AfterWrite = fn(&mut State, Durability) -> Result<()>;

/// A handle to an open graph. Cloning it is cheap; clones share the repository, and every
/// method may be called from any thread.
#[derive(Clone)]
pub struct Graph {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled after every write that added nodes (live change feeds wait on it).
    grown: Condvar,
    options: GraphOptions,
    observers: RwLock<Vec<Observer>>,
    path: Option<PathBuf>,
    after_write: Option<AfterWrite>,
}

/// What the lock protects: the storage and the counters derived from it.
pub(crate) struct State {
    pub(crate) kv: Kv,
    /// The last change number used.
    pub(crate) change_count: u64,
    pub(crate) log_id: String,
    /// The current heads, kept in memory and stored as one record (`keys::HEADS`). Their
    /// number is the graph's width, not its size.
    heads: BTreeSet<String>,
    recent: recent::Recent,
    /// Memory of the dataset index, when one follows this graph.
    pub(crate) index_memory: Option<crate::dataset::IndexMemory>,
}

impl Graph {
    /// Opens the graph stored in directory `dir`, creating it if it does not exist.
    /// Fails with [`Error::Locked`] when another process has it open.
    pub fn open(dir: impl AsRef<Path>, options: GraphOptions) -> Result<Graph> {
        Graph::open_with(Some(dir.as_ref()), options, None)
    }

    /// A fresh graph that lives in memory only.
    pub fn in_memory(options: GraphOptions) -> Result<Graph> {
        Graph::open_with(None, options, None)
    }

    /// Opens a graph on disk (`Some(dir)`) or in memory, with an after-write hook, which
    /// also runs once now to catch up with nodes stored before it last ran.
    pub(crate) fn open_with(
        dir: Option<&Path>,
        options: GraphOptions,
        after_write: Option<AfterWrite>,
    ) -> Result<Graph> {
        let kv = match dir {
            Some(dir) => Kv::open(dir)?,
            None => Kv::in_memory()?,
        };
        let graph = Graph::from_kv(kv, options, dir.map(Path::to_path_buf), after_write)?;
        if let Some(hook) = after_write {
            hook(&mut graph.lock(), graph.shared.options.durability)?;
        }
        Ok(graph)
    }

    fn from_kv(
        mut kv: Kv,
        options: GraphOptions,
        path: Option<PathBuf>,
        after_write: Option<AfterWrite>,
    ) -> Result<Graph> {
        let (change_count, log_id) = State::load_or_create(&mut kv, &options)?;
        let heads = match kv.get(keys::HEADS)? {
            Some(record) if !record.is_empty() => {
                runs::decode_keys(&record, 0)?.into_iter().collect()
            }
            _ => BTreeSet::new(),
        };
        let state = State {
            kv,
            change_count,
            log_id,
            heads,
            recent: recent::Recent::default(),
            index_memory: None,
        };
        Ok(Graph {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                grown: Condvar::new(),
                options,
                observers: RwLock::new(Vec::new()),
                path,
                after_write,
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the storage half-written (every write
        // is one atomic batch), so a poisoned lock is still safe to use.
        self.shared.state.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.kv.stop_reading_snapshots();
            state
        })
    }

    /// The directory the graph is stored in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// How durable each write is before it returns.
    pub(crate) fn durability(&self) -> Durability {
        self.shared.options.durability
    }

    /// The hash function node keys are computed with.
    pub(crate) fn hasher(&self) -> Arc<dyn NodeHasher> {
        self.shared.options.hasher.clone()
    }

    /// This repository's own log id.
    pub fn log_id(&self) -> String {
        self.lock().log_id.clone()
    }

    /// The number of nodes stored: the last change number.
    pub fn change_count(&self) -> u64 {
        self.lock().change_count
    }

    /// Registers an observer of adds and rejects.
    pub fn on_event(&self, observer: impl Fn(&GraphEvent) + Send + Sync + 'static) {
        self.shared
            .observers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(observer));
    }

    fn emit(&self, event: &GraphEvent) {
        let observers = self
            .shared
            .observers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for observer in observers {
            observer(event);
        }
    }

    /// Adds one node linking to `links`. Adding a node that exists returns the stored node
    /// and writes nothing.
    pub fn add(&self, links: &[String], value: impl AsRef<[u8]>) -> Result<Node> {
        let doc = Doc::new(links.to_vec(), value.as_ref());
        self.add_doc(doc)
    }

    /// Adds one document (links, value and an optional per-node identity).
    pub fn add_doc(&self, doc: Doc) -> Result<Node> {
        let mut nodes = self.batch(vec![doc])?;
        nodes
            .pop()
            .ok_or_else(|| Error::corrupt("a one-document batch returned no node"))
    }

    /// Adds a node that links to every current head.
    pub fn append(&self, value: impl AsRef<[u8]>) -> Result<Node> {
        let value = value.as_ref();
        // Observers run outside the lock (they may read the graph), so the heads are read
        // first and the node links to them even if another writer adds heads meanwhile.
        let heads = self.lock().heads_keys();
        self.emit(&GraphEvent::PreAdd {
            links: &heads,
            value,
        });
        let result = {
            let mut state = self.lock();
            let doc = Doc::new(heads, value);
            self.write(&mut state, vec![Incoming::local(doc)], Batch::default())
        };
        self.finish(result, 1).and_then(|mut nodes| {
            nodes
                .pop()
                .ok_or_else(|| Error::corrupt("append returned no node"))
        })
    }

    /// Adds several documents atomically, in the order given: either every document is
    /// stored or nothing is. A document may link to an earlier one of the same batch. A
    /// missing link fails the whole batch with [`Error::MissingLink`]. Returns one node per
    /// document (a document that already existed returns the stored node).
    pub fn batch(&self, docs: Vec<Doc>) -> Result<Vec<Node>> {
        self.submit(docs.into_iter().map(Incoming::local).collect())
    }

    /// Stores nodes that come from another repository (the replication seam), in order and
    /// atomically, with every check: the key must be the hash of links and value, every
    /// link must exist (or come earlier in `nodes`), `seq` must continue its log, and a
    /// configured verifier must accept nodes from other logs. Returns the stored nodes,
    /// with this repository's change numbers.
    pub fn ingest(&self, nodes: Vec<Node>) -> Result<Vec<Node>> {
        self.submit(nodes.into_iter().map(Incoming::remote).collect())
    }

    /// Reports each document about to be written, writes them all in one batch, and reports
    /// the outcome.
    fn submit(&self, incoming: Vec<Incoming>) -> Result<Vec<Node>> {
        if incoming.is_empty() {
            return Ok(Vec::new());
        }
        for item in &incoming {
            self.emit(&GraphEvent::PreAdd {
                links: item.links(),
                value: item.value(),
            });
        }
        let count = incoming.len();
        let result = {
            let mut state = self.lock();
            self.write(&mut state, incoming, Batch::default())
        };
        self.finish(result, count)
    }

    /// Writes `incoming` (plus whatever `batch` already holds, in the same atomic write),
    /// then runs the after-write hook.
    fn write(&self, state: &mut State, incoming: Vec<Incoming>, batch: Batch) -> Result<Vec<Node>> {
        let durability = self.shared.options.durability;
        let prepared = state.prepare(&self.shared.options, incoming, batch)?;
        state.kv.write(prepared.batch, durability)?;
        state.recent.record(
            prepared
                .stored
                .iter()
                .map(|(key, log)| (key.as_str(), log.as_str())),
        );
        if let Some(heads) = prepared.heads {
            state.heads = heads;
        }
        let grew = prepared.change_count > state.change_count;
        state.change_count = prepared.change_count;
        if grew {
            let indexed = match self.shared.after_write {
                Some(hook) => hook(state, durability),
                None => Ok(()),
            };
            // The nodes are stored whatever the hook says: wake live feeds either way.
            self.shared.grown.notify_all();
            indexed?;
        }
        Ok(prepared.nodes)
    }

    /// Adds one local document together with extra storage writes (a commit's payload),
    /// under a lock the caller already holds.
    pub(crate) fn add_locked(&self, state: &mut State, doc: Doc, extra: Batch) -> Result<Node> {
        let mut nodes = self.write(state, vec![Incoming::local(doc)], extra)?;
        nodes
            .pop()
            .ok_or_else(|| Error::corrupt("a one-document write returned no node"))
    }

    /// Reports the outcome of a write to observers, after the lock is released.
    fn finish(&self, result: Result<Vec<Node>>, count: usize) -> Result<Vec<Node>> {
        match &result {
            Ok(nodes) => nodes
                .iter()
                .for_each(|node| self.emit(&GraphEvent::Add(node))),
            Err(error) => (0..count).for_each(|_| self.emit(&GraphEvent::Reject { error })),
        }
        result
    }

    /// The node with key `key`, or [`Error::NotFound`].
    pub fn get(&self, key: &str) -> Result<Node> {
        self.lock()
            .node(key)?
            .ok_or_else(|| Error::NotFound(format!("node {key}")))
    }

    /// Whether a node with key `key` is stored.
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.lock().kv.contains(&keys::node(key))
    }

    /// The current heads (nodes no other node links to), ordered by key.
    pub fn heads(&self) -> Result<Vec<Node>> {
        let mut state = self.lock();
        let keys = state.heads_keys();
        keys.iter()
            .map(|key| {
                state
                    .node(key)?
                    .ok_or_else(|| Error::corrupt(format!("head {key} has no node")))
            })
            .collect()
    }

    /// The node with local change number `change`.
    pub fn get_change(&self, change: u64) -> Result<Node> {
        self.lock()
            .node_at_change(change)?
            .ok_or_else(|| Error::NotFound(format!("change {change}")))
    }

    /// Nodes in local change order, starting after change `since` (0 for all).
    pub fn changes(&self, since: u64) -> Changes {
        Changes::new(self.clone(), since)
    }

    /// Blocks until the graph has more than `after` changes, or `timeout` passes. Returns
    /// the change count then.
    pub fn wait_for_change(&self, after: u64, timeout: Option<Duration>) -> u64 {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        while state.change_count <= after {
            state = match deadline {
                None => self
                    .shared
                    .grown
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    self.shared
                        .grown
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
        state.change_count
    }

    /// The last sequence number of `log` (0 for a log this repository has no entry of).
    pub fn log_head(&self, log: &str) -> Result<u64> {
        self.lock().log_seq(log)
    }

    /// The changelog entry at `(log, seq)`.
    pub fn log_entry(&self, log: &str, seq: u64) -> Result<Option<Entry>> {
        runs::entry_at(&mut self.lock().kv, log, seq)
    }

    /// Every log this repository holds entries of, with its last sequence number.
    pub fn logs(&self) -> Result<Vec<(String, u64)>> {
        self.lock().logs()
    }
}

impl State {
    /// Reads the counters of an existing graph, or initialises a new one.
    fn load_or_create(kv: &mut Kv, options: &GraphOptions) -> Result<(u64, String)> {
        match kv.get(keys::META_LOG)? {
            Some(log) => {
                let format = kv
                    .get(keys::META_FORMAT)?
                    .ok_or_else(|| Error::corrupt("format version is missing"))?;
                let format = keys::decode_u64(&format, "format version")?;
                if format != FORMAT_VERSION {
                    return Err(Error::corrupt(format!(
                        "format version {format} is not supported by this build (it reads {FORMAT_VERSION})"
                    )));
                }
                let log =
                    String::from_utf8(log).map_err(|_| Error::corrupt("log id is not UTF-8"))?;
                Ok((runs::last_change(kv)?, log))
            }
            None => {
                let log = match &options.log_id {
                    Some(id) if id.is_empty() => {
                        return Err(Error::InvalidArgument("a log id cannot be empty".into()));
                    }
                    Some(id) => id.clone(),
                    None => hex::encode(rand::random::<[u8; 16]>()),
                };
                let mut batch = crate::kv::Batch::default();
                batch.put(keys::META_FORMAT, &keys::encode_u64(FORMAT_VERSION));
                batch.put(keys::META_LOG, log.as_bytes());
                kv.write(batch, Durability::Synced)?;
                Ok((0, log))
            }
        }
    }

    /// Runs `read` with every storage read seeing `snapshot` (see [`Kv::read_at`]).
    pub(crate) fn read_at<T>(
        &mut self,
        snapshot: kv::Snapshot,
        read: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let outer = self.kv.begin_reading(snapshot)?;
        let result = read(self);
        self.kv.end_reading(outer);
        result
    }

    pub(crate) fn node(&mut self, key: &str) -> Result<Option<Node>> {
        match self.kv.get(&keys::node(key))? {
            Some(bytes) => Node::decode(&bytes)
                .map(Some)
                .map_err(|e| Error::corrupt(format!("node {key}: {e}"))),
            None => Ok(None),
        }
    }

    pub(crate) fn node_at_change(&mut self, change: u64) -> Result<Option<Node>> {
        match runs::keys_from(&mut self.kv, change, 1)?.pop() {
            Some((_, key)) => self
                .node(&key)?
                .map(Some)
                .ok_or_else(|| Error::corrupt(format!("change {change} names missing node {key}"))),
            None => Ok(None),
        }
    }

    /// Node keys from change `from` on (at most `limit`), in change order.
    pub(crate) fn keys_from(&mut self, from: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        runs::keys_from(&mut self.kv, from, limit)
    }

    pub(crate) fn heads_keys(&self) -> Vec<String> {
        self.heads.iter().cloned().collect()
    }

    /// Every log with entries here, with its last sequence number, in log order.
    pub(crate) fn logs(&mut self) -> Result<Vec<(String, u64)>> {
        let mut names = Vec::new();
        let mut from = keys::LOGS.to_vec();
        loop {
            let next = self.kv.scan(&from, &kv::prefix_end(keys::LOGS))?.next();
            let Some((key, _)) = next else { break };
            let mut reader = keys::KeyReader::new(&key, keys::LOGS)?;
            let log = String::from_utf8(reader.bytes()?)
                .map_err(|_| Error::corrupt("log id is not UTF-8"))?;
            from = kv::prefix_end(&runs::log_prefix(&log));
            names.push(log);
        }
        names
            .into_iter()
            .map(|log| {
                let seq = runs::last_seq(&mut self.kv, &log)?;
                Ok((log, seq))
            })
            .collect()
    }

    pub(crate) fn log_seq(&mut self, log: &str) -> Result<u64> {
        runs::last_seq(&mut self.kv, log)
    }

    /// Entries of `log` from `from` on (at most `limit`), in seq order.
    pub(crate) fn log_entries_from(
        &mut self,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Entry)>> {
        runs::entries_from(&mut self.kv, log, from, limit)
    }
}
