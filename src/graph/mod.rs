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
mod heads;
mod node;
mod read;
mod sign;
mod write;

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use changes::Changes;
pub(crate) use hash::lower_hex;
pub use hash::{FramedSha256, NodeHasher, framed_update};
pub(crate) use heads::heads;
pub use node::Node;
pub(crate) use read::{node_at_change, read_node};
pub use sign::{Channel, Signer, Verifier};

use crate::error::{Error, Result};
use crate::store::{Durability, Store, Tables, WriteSet};
use write::Incoming;

/// The on-disk format version this build writes and reads. Version 2: the causal version
/// index (row entries by index sequence, version records with their ancestry). Version 3:
/// the index's heads in one record. Version 4: both sets of heads (the graph's and the
/// index's) stored as a checkpoint every so many writes (`store::checkpoint`), not at every
/// write. Older versions are upgraded when they open.
const FORMAT_VERSION: u64 = 4;

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
    /// The keys of the nodes it links to.
    pub links: Vec<String>,
    /// Its content.
    pub value: Vec<u8>,
    /// The writer's identity for this node only (overrides the signer's).
    pub identity: Option<Vec<u8>>,
}

impl Doc {
    /// A document with these links and this value.
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
        /// The links it will have.
        links: &'a [String],
        /// The value it will have.
        value: &'a [u8],
    },
    /// A node was stored (or already existed) and is readable.
    Add(&'a Node),
    /// A document was not added; nothing of its batch was written.
    Reject {
        /// Why.
        error: &'a Error,
    },
}

type Observer = Arc<dyn Fn(&GraphEvent) + Send + Sync>;

/// Something that follows the graph: after every write that stored nodes through the
/// `Graph` API, and once at open, it is given the lock to process the nodes stored since
/// its own checkpoint. The version index is the one follower; the graph knows nothing else
/// about it.
pub(crate) trait Follower: Send + Sync {
    /// Processes at most `limit` nodes stored after the follower's checkpoint; returns
    /// true once it has caught up with the graph.
    fn catch_up(&self, tables: &mut Tables, limit: usize) -> Result<bool>;
}

/// How many nodes a follower processes per turn of the lock: between turns, readers and
/// writers get theirs.
pub(crate) const FOLLOW_STEP: usize = 512;

/// A handle to an open graph. Cloning it is cheap; clones share the repository, and every
/// method may be called from any thread.
#[derive(Clone)]
pub struct Graph {
    shared: Arc<Shared>,
}

/// A graph handle that does not keep the graph open.
#[derive(Clone)]
pub(crate) struct WeakGraph(std::sync::Weak<Shared>);

impl WeakGraph {
    /// The graph, if some handle still keeps it open.
    pub(crate) fn upgrade(&self) -> Option<Graph> {
        self.0.upgrade().map(|shared| Graph { shared })
    }
}

struct Shared {
    store: Store,
    options: GraphOptions,
    log_id: String,
    observers: RwLock<Vec<Observer>>,
    follower: Option<Arc<dyn Follower>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("path", &self.path())
            .field("log_id", &self.shared.log_id)
            .finish_non_exhaustive()
    }
}

impl Graph {
    /// Opens the graph stored in directory `dir`, creating it if it does not exist.
    /// Fails with [`Error::Locked`] when another process has it open.
    pub fn open(dir: impl AsRef<Path>, options: GraphOptions) -> Result<Graph> {
        Graph::on_store(Store::open(dir.as_ref(), Duration::ZERO)?, options, None)
    }

    /// A fresh graph that lives in memory only.
    pub fn in_memory(options: GraphOptions) -> Result<Graph> {
        Graph::on_store(Store::in_memory()?, options, None)
    }

    /// Opens the graph kept in `store`, initialising a new one, with an optional follower,
    /// which catches up with the graph before this returns.
    pub(crate) fn on_store(
        store: Store,
        options: GraphOptions,
        follower: Option<Arc<dyn Follower>>,
    ) -> Result<Graph> {
        let log_id = {
            let mut tables = store.lock();
            // Read once here, then kept in step with every write (`change_count`).
            tables.change_count()?;
            let bound = options.signer.as_ref().and_then(|s| s.log_id());
            let mut identity = tables.identity()?;
            if let Some((2, log)) = identity {
                tables.upgrade_from_format_2(3)?;
                identity = Some((3, log));
            }
            if let Some((3, log)) = identity {
                tables.upgrade_from_format_3(FORMAT_VERSION)?;
                identity = Some((FORMAT_VERSION, log));
            }
            match identity {
                // A repository created before it had a key moves to the key's log.
                Some((format, log)) if format == FORMAT_VERSION => match bound {
                    Some(bound) if bound != log && !store.read_only() => {
                        let mut write = WriteSet::default();
                        write.put_identity(FORMAT_VERSION, &bound);
                        tables.commit(write, Durability::Synced)?;
                        bound
                    }
                    _ => log,
                },
                Some((format, _)) => {
                    return Err(Error::corrupt(format!(
                        "format version {format} is not supported by this build (it reads {FORMAT_VERSION})"
                    )));
                }
                None if store.read_only() => {
                    return Err(Error::corrupt("the repository has no identity record"));
                }
                None => {
                    let log = match bound.as_ref().or(options.log_id.as_ref()) {
                        Some(id) if id.is_empty() => {
                            return Err(Error::InvalidArgument("a log id cannot be empty".into()));
                        }
                        Some(id) => id.clone(),
                        None => hex::encode(rand::random::<[u8; 16]>()),
                    };
                    let mut write = WriteSet::default();
                    write.put_identity(FORMAT_VERSION, &log);
                    // A new repository's identity must survive a power loss at once.
                    tables.commit(write, Durability::Synced)?;
                    log
                }
            }
        };
        let graph = Graph {
            shared: Arc::new(Shared {
                store,
                options,
                log_id,
                observers: RwLock::new(Vec::new()),
                follower,
            }),
        };
        graph.follow()?;
        Ok(graph)
    }

    /// A handle that does not keep the graph open.
    pub(crate) fn downgrade(&self) -> WeakGraph {
        WeakGraph(Arc::downgrade(&self.shared))
    }

    /// The storage underneath (the lock and the tables).
    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Lets the follower catch up, one bounded step per turn of the lock.
    pub(crate) fn follow(&self) -> Result<()> {
        let Some(follower) = &self.shared.follower else {
            return Ok(());
        };
        while !follower.catch_up(&mut self.shared.store.lock(), FOLLOW_STEP)? {}
        Ok(())
    }

    /// The directory the graph is stored in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.shared.store.path()
    }

    /// How durable each write is before it returns.
    pub(crate) fn durability(&self) -> Durability {
        self.shared.options.durability
    }

    /// The hash function node keys are computed with.
    pub(crate) fn hasher(&self) -> Arc<dyn NodeHasher> {
        self.shared.options.hasher.clone()
    }

    /// The last entry of `log` the verifier can accept, if it accepts no later one.
    pub(crate) fn last_accepted(&self, log: &str) -> Option<u64> {
        let verifier = self.shared.options.verifier.as_ref()?;
        verifier.last_accepted(log)
    }

    /// This repository's own log id.
    pub fn log_id(&self) -> String {
        self.shared.log_id.clone()
    }

    /// The number of nodes stored: the last change number.
    pub fn change_count(&self) -> u64 {
        self.shared.store.lock().known_change_count()
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
        let heads: Vec<String> = heads::heads(&mut self.shared.store.lock())?
            .iter()
            .cloned()
            .collect();
        self.emit(&GraphEvent::PreAdd {
            links: &heads,
            value,
        });
        let doc = Doc::new(heads, value);
        let result = self.write(vec![Incoming::local(doc)]);
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
    /// with this repository's change numbers. The verifier treats them as received over a
    /// [`Channel::Plain`] channel (anyone could have sent them); see [`Graph::ingest_via`].
    pub fn ingest(&self, nodes: Vec<Node>) -> Result<Vec<Node>> {
        self.ingest_via(nodes, Channel::Plain)
    }

    /// [`Graph::ingest`], for nodes that came through `channel` (a secure session or a
    /// sealed sync file passes [`Channel::Secure`]).
    pub fn ingest_via(&self, nodes: Vec<Node>, channel: Channel) -> Result<Vec<Node>> {
        self.submit(
            nodes
                .into_iter()
                .map(|node| Incoming::remote(node, channel))
                .collect(),
        )
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
        let result = self.write(incoming);
        self.finish(result, count)
    }

    /// Writes `incoming` in one atomic batch, then lets the follower catch up.
    fn write(&self, incoming: Vec<Incoming>) -> Result<Vec<Node>> {
        let (nodes, grew) = {
            let mut tables = self.shared.store.lock();
            let mut write = WriteSet::default();
            let prepared = write::prepare(
                &mut tables,
                &self.shared.options,
                &self.shared.log_id,
                incoming,
                &mut write,
            )?;
            tables.commit(write, self.shared.options.durability)?;
            (prepared.nodes, prepared.grew)
        };
        if grew {
            // The nodes are stored whatever the follower says: wake live feeds either way.
            let followed = self.follow();
            self.shared.store.notify_grown();
            followed?;
        }
        Ok(nodes)
    }

    /// Adds one local document under a lock the caller holds, together with whatever
    /// `extend` adds to the same atomic write once the node's key and numbers are known
    /// (a commit's payload and index records). A document that is already stored (the same
    /// links and value) writes nothing and `extend` is not called. The caller wakes live
    /// feeds afterwards with [`Graph::notify_grown`].
    pub(crate) fn write_local(
        &self,
        tables: &mut Tables,
        doc: Doc,
        extend: impl FnOnce(&mut Tables, &Node, &mut WriteSet) -> Result<()>,
    ) -> Result<Node> {
        let (node, write) = self.prepare_local(tables, doc)?;
        if let Some(mut write) = write {
            extend(tables, &node, &mut write)?;
            tables.commit(write, self.shared.options.durability)?;
        }
        Ok(node)
    }

    /// The node one local document makes, and the write that would store it (`None` when
    /// it is already stored), for a caller that writes other records first under the lock
    /// it holds and then commits that write (extended) itself.
    pub(crate) fn prepare_local(
        &self,
        tables: &mut Tables,
        doc: Doc,
    ) -> Result<(Node, Option<WriteSet>)> {
        let mut write = WriteSet::default();
        let mut prepared = write::prepare(
            tables,
            &self.shared.options,
            &self.shared.log_id,
            vec![Incoming::local(doc)],
            &mut write,
        )?;
        let node = prepared
            .nodes
            .pop()
            .ok_or_else(|| Error::corrupt("a one-document write returned no node"))?;
        Ok((node, prepared.grew.then_some(write)))
    }

    /// Wakes live feeds after a write made with [`Graph::write_local`].
    pub(crate) fn notify_grown(&self) {
        self.shared.store.notify_grown();
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
}
