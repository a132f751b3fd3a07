//! The dataset store: dat-core's data model on the graph, with Mapeo's fork semantics.
//!
//! A [`Repository`] holds datasets (namespaces of rows: any bytes as key and value, or a
//! file). Every write is one commit node in the graph; the indexer turns commits into
//! layers and a version index, so any version can be read (`at`), "latest" shows every
//! current head with forks visible, and versions can be merged and diffed.

mod blobs;
mod commit;
mod diff;
mod feed;
mod fsck;
mod index;
mod lineage;
mod merge;
mod read;
mod records;
mod view;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use blobs::BlobReader;
pub use commit::{Commit, CommitType, Content, FileRef, OpKind, Operation};
pub use diff::{Diff, DiffEntry};
pub use feed::{CommitFeed, CommitInfo};
pub use fsck::FsckReport;
pub use merge::MergePolicy;
pub use view::{Range, RepoStatus, Row, RowVersion, Rows, View};

pub(crate) use index::IndexMemory;
use index::tips;

use crate::error::{Error, Result};
use crate::graph::{Doc, Graph, GraphOptions, Node, State};
use crate::keys;
use crate::kv::Batch;
use blobs::Blobs;
use read::Lens;

/// A set of heads and their common ancestor (if they share history).
type HeadsBase = (Vec<String>, Option<String>);

/// A resolved lens and the storage generation it was resolved at.
type CachedLens = (u64, Arc<Lens>);

/// The name of the folder a repository keeps inside a project folder.
pub const STORAGE_DIR: &str = ".strata";

/// An open repository. Cloning is cheap; clones share it, from any thread.
#[derive(Clone)]
pub struct Repository {
    graph: Graph,
    blobs: Blobs,
    /// The resolved "latest" lens, valid until the storage's next write.
    latest: Arc<Mutex<Option<CachedLens>>>,
    /// The common ancestor of a set of heads, by heads (a few recent sets).
    bases: Arc<Mutex<Vec<HeadsBase>>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("path", &self.graph.path())
            .finish()
    }
}

/// What a commit's parents are.
#[derive(Clone, Debug)]
enum Parents {
    /// The persistent checkout if there is one, else this device's newest head.
    Auto,
    /// The versions a write replaces (Mapeo's versioned updates).
    Replaces(Vec<String>),
    /// A merge of these heads (all current heads when empty).
    Merge { heads: Vec<String> },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Repository {
    /// Creates a repository in `folder` (its storage goes in `folder/.strata`).
    pub fn init(folder: impl AsRef<Path>) -> Result<Repository> {
        let storage = folder.as_ref().join(STORAGE_DIR);
        if storage.join("db").exists() {
            return Err(Error::InvalidArgument(format!(
                "a repository already exists at {}",
                storage.display()
            )));
        }
        Repository::open_storage(&storage, GraphOptions::default())
    }

    /// Opens the repository whose storage directory is `storage` (a `.strata` folder),
    /// creating it if needed.
    pub fn open_storage(storage: impl AsRef<Path>, options: GraphOptions) -> Result<Repository> {
        let storage = storage.as_ref();
        let graph = Graph::open_with(Some(&storage.join("db")), options, Some(index::catch_up))?;
        Ok(Repository {
            graph,
            blobs: Blobs::in_dir(storage.join("blobs"))?,
            latest: Arc::new(Mutex::new(None)),
            bases: Arc::default(),
        })
    }

    /// Opens an existing repository: `path` is a project folder (containing `.strata`) or
    /// the storage folder itself.
    pub fn open(path: impl AsRef<Path>) -> Result<Repository> {
        let storage = Repository::storage_of(path.as_ref()).ok_or_else(|| {
            Error::NotFound(format!(
                "no strata repository at {}",
                path.as_ref().display()
            ))
        })?;
        Repository::open_storage(storage, GraphOptions::default())
    }

    /// The storage folder of the repository at `path` (a project folder or the storage
    /// folder itself), if there is one.
    pub fn storage_of(path: &Path) -> Option<PathBuf> {
        if path.join(STORAGE_DIR).join("db").is_dir() {
            Some(path.join(STORAGE_DIR))
        } else if path.join("db").is_dir() {
            Some(path.to_path_buf())
        } else {
            None
        }
    }

    /// Finds the repository containing `start`, looking upward like git.
    pub fn discover(start: &Path) -> Option<PathBuf> {
        start.ancestors().find_map(|dir| {
            let storage = dir.join(STORAGE_DIR);
            storage.join("db").is_dir().then_some(storage)
        })
    }

    /// A fresh repository that lives in memory only (files included).
    pub fn in_memory(options: GraphOptions) -> Result<Repository> {
        let graph = Graph::open_with(None, options, Some(index::catch_up))?;
        Ok(Repository {
            graph,
            blobs: Blobs::in_memory(),
            latest: Arc::new(Mutex::new(None)),
            bases: Arc::default(),
        })
    }

    /// The graph underneath (plumbing: nodes, heads, changelogs).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    // ---- versions and views ----

    /// The full key of the version `prefix` names: a node key, or a unique prefix of at
    /// least 8 characters of one. The version must be visible (indexed).
    pub fn resolve_version(&self, prefix: &str) -> Result<String> {
        let mut state = self.graph.lock();
        resolve_version(&mut state, prefix)
    }

    fn latest_lens(&self, state: &mut State) -> Result<Arc<Lens>> {
        let generation = state.kv.generation();
        let mut cache = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, lens)) = cache.as_ref()
            && *cached == generation
        {
            return Ok(lens.clone());
        }
        let tips = tips(state)?;
        let lens = Arc::new(match tips.len() {
            0 => Lens::Empty,
            1 => {
                let path = lineage::path_of(&mut state.kv, &tips[0])?;
                Lens::One {
                    version: tips[0].clone(),
                    path,
                }
            }
            _ => {
                let base = match self.common_base(state, &tips)? {
                    Some(base) => lineage::path_of(&mut state.kv, &base)?,
                    None => Vec::new(),
                };
                let heads = tips
                    .iter()
                    .map(|tip| Ok((tip.clone(), lineage::path_of(&mut state.kv, tip)?)))
                    .collect::<Result<_>>()?;
                Lens::Many { base, heads }
            }
        });
        *cache = Some((generation, lens.clone()));
        Ok(lens)
    }

    /// The heads' common ancestor, remembered per set of heads. A write on one branch
    /// replaces that branch's head with a child of it, which leaves the common ancestor as
    /// it was: such a set is answered from the set it grew from, without a walk.
    fn common_base(&self, state: &mut State, heads: &[String]) -> Result<Option<String>> {
        const REMEMBERED: usize = 8;
        let mut bases = self.bases.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, base)) = bases.iter().find(|(set, _)| set.as_slice() == heads) {
            return Ok(base.clone());
        }
        let mut known = None;
        for (set, base) in bases.iter() {
            let added: Vec<&String> = heads.iter().filter(|h| !set.contains(h)).collect();
            let removed: Vec<&String> = set.iter().filter(|h| !heads.contains(h)).collect();
            if let ([new], [old]) = (added.as_slice(), removed.as_slice())
                && state
                    .node(new)?
                    .is_some_and(|node| node.links == [(*old).clone()])
            {
                known = Some(base.clone());
                break;
            }
        }
        let base = match known {
            Some(base) => base,
            None => lineage::common_base(state, heads)?,
        };
        if bases.len() == REMEMBERED {
            bases.remove(0);
        }
        bases.push((heads.to_vec(), base.clone()));
        Ok(base)
    }

    /// The view at latest: every current head (forks visible), ignoring any checkout.
    pub fn latest(&self) -> Result<View> {
        let mut state = self.graph.lock();
        let lens = self.latest_lens(&mut state)?;
        Ok(View {
            repo: self.clone(),
            lens,
        })
    }

    /// The view at one version (a node key or unique prefix of 8+ characters).
    pub fn at(&self, version: &str) -> Result<View> {
        let mut state = self.graph.lock();
        let version = resolve_version(&mut state, version)?;
        let path = lineage::path_of(&mut state.kv, &version)?;
        Ok(View {
            repo: self.clone(),
            lens: Arc::new(Lens::One { version, path }),
        })
    }

    /// The view reads and writes use by default: the persistent checkout if set, else latest.
    pub fn view(&self) -> Result<View> {
        match self.checked_out()? {
            Some(version) => self.at(&version),
            None => self.latest(),
        }
    }

    /// The row at `key` in `dataset` in the current view.
    pub fn get(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Option<Row>> {
        self.view()?.get(dataset, key)
    }

    /// The current heads of the dataset view, ordered by key.
    pub fn heads(&self) -> Result<Vec<String>> {
        tips(&mut self.graph.lock())
    }

    /// Every distinct version of a row across the current heads.
    pub fn forks(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        self.latest()?.forks(dataset, key)
    }

    /// Every version of a row ever written, on any fork, newest first. Costs
    /// O(versions of that row).
    pub fn history(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        let mut state = self.graph.lock();
        let prefix = keys::data_changes_row(dataset.as_ref(), key.as_ref()).finish();
        let mut entries: Vec<records::Pointer> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (_, value) in state.kv.scan_prefix(&prefix)? {
            let entry = records::Pointer::decode(&value)?;
            // A merge re-records the versions it takes; list each version once.
            if seen.insert((entry.version.clone(), entry.index)) {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| b.change.cmp(&a.change).then(b.index.cmp(&a.index)));
        entries
            .iter()
            .map(|entry| view::row_version(&mut state, entry))
            .collect()
    }

    /// The repository's counters in the current view.
    pub fn status(&self) -> Result<RepoStatus> {
        self.view()?.status()
    }

    // ---- checkout ----

    /// The persistent checkout, if one is set.
    pub fn checked_out(&self) -> Result<Option<String>> {
        let mut state = self.graph.lock();
        checked_out(&mut state)
    }

    /// Makes `version` the repository's current view, persistently: later opens read there,
    /// and a write there forks from it (the checkout then follows the new commit).
    pub fn checkout(&self, version: &str) -> Result<String> {
        let mut state = self.graph.lock();
        let version = resolve_version(&mut state, version)?;
        let mut batch = Batch::default();
        batch.put(keys::META_CHECKOUT, version.as_bytes());
        state.kv.write(batch, crate::kv::Durability::Synced)?;
        Ok(version)
    }

    /// Returns to latest (clears the persistent checkout).
    pub fn checkout_latest(&self) -> Result<()> {
        let mut state = self.graph.lock();
        let mut batch = Batch::default();
        batch.delete(keys::META_CHECKOUT);
        state.kv.write(batch, crate::kv::Durability::Synced)
    }

    // ---- writes ----

    /// Starts a commit: add operations, then [`Transaction::commit`].
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self, Parents::Auto)
    }

    /// Starts a merge of `heads` (all current heads when empty): add resolutions, choose a
    /// policy for conflicts, then [`Transaction::commit`].
    pub fn merge(&self, heads: &[String]) -> Transaction<'_> {
        Transaction::new(
            self,
            Parents::Merge {
                heads: heads.to_vec(),
            },
        )
    }

    /// Writes one row; returns the new version.
    pub fn put(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<String> {
        let mut tx = self.transaction();
        tx.put(dataset, key, value);
        tx.commit()
    }

    /// Deletes one row (a tombstone: its history is kept); returns the new version.
    pub fn delete(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<String> {
        let mut tx = self.transaction();
        tx.delete(dataset, key);
        tx.commit()
    }

    /// Imports rows into `dataset`, one commit per `batch_size` rows. A row that fails
    /// (the iterator yields an error) stops the import: the batches before it stay
    /// committed, nothing of its own batch is. Returns the versions committed. (To know
    /// what was committed when it fails, use [`Repository::importer`].)
    pub fn import<I>(
        &self,
        dataset: impl AsRef<[u8]>,
        rows: I,
        batch_size: usize,
        message: Option<&str>,
    ) -> Result<Vec<String>>
    where
        I: IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    {
        let mut importer = self.importer(dataset, batch_size, message);
        for row in rows {
            let (key, value) = row?;
            importer.put(key, value)?;
        }
        importer.finish()
    }

    /// Starts a streaming import into `dataset`: rows go in one at a time and are committed
    /// every `batch_size` rows; the importer can always say what it has committed.
    pub fn importer(
        &self,
        dataset: impl AsRef<[u8]>,
        batch_size: usize,
        message: Option<&str>,
    ) -> Importer<'_> {
        Importer {
            repo: self,
            dataset: dataset.as_ref().to_vec(),
            batch_size: batch_size.max(1),
            message: message.map(str::to_string),
            pending: self.transaction(),
            committed: Vec::new(),
            rows: 0,
        }
    }

    /// Writes `reader`'s bytes as a file row; the bytes are streamed into the blob store.
    /// (For a message or `replaces`, use [`Transaction::put_file`].)
    pub fn put_file(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        reader: &mut dyn Read,
    ) -> Result<String> {
        let mut tx = self.transaction();
        tx.put_file(dataset, key, reader)?;
        tx.commit()
    }

    /// A stream of a file row's bytes in the current view, checked against its hash as it
    /// is read.
    pub fn open_file(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<BlobReader> {
        self.view()?.open_file(dataset, key)
    }

    /// Whether the blob store holds the blob with this SHA-256 (hex).
    pub fn has_blob(&self, hash: &str) -> Result<bool> {
        self.blobs.contains(hash)
    }

    // ---- diff and changes ----

    /// Every row whose value differs between versions `a` and `b`, in (dataset, key) order.
    /// Costs O(changes since their common ancestor), not O(rows).
    pub fn diff(&self, a: &str, b: &str) -> Result<Diff> {
        diff::diff(self, a, b)
    }

    /// Commits in local change order after change `since` (0 for all); `.live()` keeps
    /// following new ones.
    pub fn changes(&self, since: u64) -> CommitFeed {
        CommitFeed::new(self.clone(), since)
    }

    /// Datasets with at least one live row in the current view.
    pub fn datasets(&self) -> Result<Vec<Vec<u8>>> {
        self.view()?.datasets()
    }

    // ---- the replication seam ----

    /// Stores nodes received from another repository (see [`Graph::ingest`] for the
    /// checks). Commits whose payload is not here yet are stored but stay invisible until
    /// [`Repository::add_payload`] brings it.
    pub fn apply_remote(&self, nodes: Vec<Node>) -> Result<Vec<Node>> {
        self.graph.ingest(nodes)
    }

    /// Stores a commit's payload (its encoded operations, in order), content-checked: it is
    /// stored under the hash of what was given, so it can only satisfy a commit that names
    /// exactly these operations. Commits waiting for it become visible. Returns the hash.
    pub fn add_payload(&self, operations: &[Vec<u8>]) -> Result<String> {
        for op in operations {
            let op = Operation::decode(op)?;
            // A file row's value must name a blob: checked now, not when someone reads it.
            if op.kind == OpKind::Put && op.content == Content::File {
                FileRef::decode(op.value.as_deref().unwrap_or_default())?;
            }
        }
        let hash = commit::operations_hash(operations.iter().map(Vec::as_slice));
        let raw =
            records::hex32(&hash).ok_or_else(|| Error::corrupt("operations hash is not hex"))?;
        let mut batch = Batch::default();
        for (index, op) in operations.iter().enumerate() {
            batch.put(&keys::operation(&raw, index as u64), op);
        }
        let mut state = self.graph.lock();
        state.kv.write(batch, self.graph.durability())?;
        index::payload_arrived(&mut state, &hash)?;
        Ok(hash)
    }

    /// The payload of a commit by its operations hash, if stored here.
    pub fn payload(&self, hash: &str) -> Result<Option<Vec<Vec<u8>>>> {
        let raw = records::hex32(hash)
            .ok_or_else(|| Error::InvalidArgument(format!("{hash} is not an operations hash")))?;
        let prefix = keys::KeyBuf::new(keys::OPERATIONS).raw(&raw).finish();
        let mut state = self.graph.lock();
        let ops: Vec<Vec<u8>> = state.kv.scan_prefix(&prefix)?.map(|(_, v)| v).collect();
        Ok((!ops.is_empty()).then_some(ops))
    }

    fn commit_ops(&self, tx: Transaction) -> Result<String> {
        let Transaction {
            ops,
            message,
            parents,
            policy,
            ..
        } = tx;
        let mut state = self.graph.lock();
        let links = self.choose_links(&mut state, &ops, parents)?;
        let ops = if links.len() > 1 {
            merge::resolve_conflicts(&mut state, &links, ops, policy)?
        } else {
            ops
        };
        if ops.is_empty() && links.len() < 2 {
            return Err(Error::InvalidArgument("nothing to commit".into()));
        }
        let encoded: Vec<Vec<u8>> = ops.iter().map(Operation::encode).collect();
        let mut extra = Batch::default();
        let operations = if encoded.is_empty() {
            None
        } else {
            let hash = commit::operations_hash(encoded.iter().map(Vec::as_slice));
            let raw = records::hex32(&hash)
                .ok_or_else(|| Error::corrupt("operations hash is not hex"))?;
            for (index, op) in encoded.iter().enumerate() {
                extra.put(&keys::operation(&raw, index as u64), op);
            }
            Some(hash)
        };
        let count = |f: &dyn Fn(&Operation) -> bool| ops.iter().filter(|op| f(op)).count() as u64;
        let commit = Commit {
            kind: CommitType::Data,
            message,
            modified: now_ms(),
            puts: count(&|op| op.kind == OpKind::Put && op.content == Content::Row),
            deletes: count(&|op| op.kind == OpKind::Delete),
            files: count(&|op| op.kind == OpKind::Put && op.content == Content::File),
            operations,
        };
        // Graph events report writes made through the `Graph` API; commits are reported by
        // the commit feed (an observer called from inside this lock could not read).
        let node =
            self.graph
                .add_locked(&mut state, Doc::new(links.clone(), commit.encode()), extra)?;
        if records::node_status(&mut state.kv, &node.key)?.is_none() {
            return Err(Error::corrupt(format!(
                "commit {} was not indexed",
                node.key
            )));
        }
        if let Some(checkout) = checked_out(&mut state)?
            && links.contains(&checkout)
        {
            let mut batch = Batch::default();
            batch.put(keys::META_CHECKOUT, node.key.as_bytes());
            state.kv.write(batch, self.graph.durability())?;
        }
        Ok(node.key)
    }

    /// The parents of a new commit.
    fn choose_links(
        &self,
        state: &mut State,
        ops: &[Operation],
        parents: Parents,
    ) -> Result<Vec<String>> {
        match parents {
            Parents::Auto => {
                if let Some(checkout) = checked_out(state)? {
                    return Ok(vec![checkout]);
                }
                Ok(preferred_tip(state)?.into_iter().collect())
            }
            Parents::Replaces(versions) => {
                let versions = versions
                    .iter()
                    .map(|v| resolve_version(state, v))
                    .collect::<Result<Vec<_>>>()?;
                if versions.len() == 1 {
                    return Ok(versions);
                }
                // Several replaced versions: link the heads that hold them, which merges
                // those heads and resolves the fork.
                let rows: BTreeSet<(Vec<u8>, Vec<u8>)> = ops
                    .iter()
                    .map(|op| (op.dataset.clone(), op.key.clone()))
                    .collect();
                let tips = tips(state)?;
                let mut links: Vec<String> = Vec::new();
                for version in versions {
                    let mut holders = Vec::new();
                    for tip in &tips {
                        let path = lineage::path_of(&mut state.kv, tip)?;
                        for (dataset, key) in &rows {
                            if read::lookup(&mut state.kv, &path, dataset, key)?
                                .is_some_and(|entry| entry.version == version)
                            {
                                holders.push(tip.clone());
                                break;
                            }
                        }
                    }
                    if holders.is_empty() {
                        holders.push(version);
                    }
                    for holder in holders {
                        if !links.contains(&holder) {
                            links.push(holder);
                        }
                    }
                }
                Ok(links)
            }
            Parents::Merge { heads, .. } => {
                let explicit = !heads.is_empty();
                let mut links = if explicit {
                    heads
                        .iter()
                        .map(|h| resolve_version(state, h))
                        .collect::<Result<Vec<_>>>()?
                } else {
                    tips(state)?
                };
                let mut seen = BTreeSet::new();
                links.retain(|l| seen.insert(l.clone()));
                if links.len() < 2 {
                    return Err(Error::InvalidArgument(
                        "a merge needs at least two heads; there is nothing to merge".into(),
                    ));
                }
                // Merging every head: this device's own head goes first ("ours"), and the
                // merge continues its layer. Named heads keep the caller's order.
                if !explicit
                    && let Some(preferred) = preferred_tip(state)?
                    && let Some(pos) = links.iter().position(|l| *l == preferred)
                {
                    links.swap(0, pos);
                }
                Ok(links)
            }
        }
    }
}

/// The full key of an indexed version from a key or a unique prefix of 8+ characters.
fn resolve_version(state: &mut State, prefix: &str) -> Result<String> {
    if prefix.len() < 8 {
        return Err(Error::InvalidArgument(format!(
            "version {prefix:?} is too short: give at least 8 characters"
        )));
    }
    let start = keys::node(prefix);
    let matches: Vec<String> = state
        .kv
        .scan_prefix(&start)?
        .take(2)
        .map(|(key, _)| String::from_utf8_lossy(&key[keys::NODES.len()..]).into_owned())
        .collect();
    let version = match matches.as_slice() {
        [] => return Err(Error::NotFound(format!("unknown version {prefix}"))),
        [one] => one.clone(),
        [one, ..] if one == prefix => one.clone(),
        [a, b] => {
            return Err(Error::InvalidArgument(format!(
                "ambiguous version {prefix}: it matches {a}, {b} and maybe more"
            )));
        }
        _ => return Err(Error::NotFound(format!("unknown version {prefix}"))),
    };
    if records::node_status(&mut state.kv, &version)?.is_none() {
        return Err(Error::NotFound(format!(
            "version {version} is not visible yet (its payload or a parent has not arrived)"
        )));
    }
    Ok(version)
}

/// The head a plain write continues: this device's newest head, else the newest head.
fn preferred_tip(state: &mut State) -> Result<Option<String>> {
    let mut best: Option<(bool, u64, String)> = None;
    for tip in tips(state)? {
        let node = state
            .node(&tip)?
            .ok_or_else(|| Error::corrupt(format!("head {tip} is missing")))?;
        let candidate = (node.log == state.log_id, node.change, tip);
        if best.as_ref().is_none_or(|b| candidate > *b) {
            best = Some(candidate);
        }
    }
    Ok(best.map(|(_, _, tip)| tip))
}

fn checked_out(state: &mut State) -> Result<Option<String>> {
    match state.kv.get(keys::META_CHECKOUT)? {
        Some(key) => String::from_utf8(key)
            .map(Some)
            .map_err(|_| Error::corrupt("checkout is not UTF-8")),
        None => Ok(None),
    }
}

/// A streaming import; see [`Repository::importer`].
pub struct Importer<'a> {
    repo: &'a Repository,
    dataset: Vec<u8>,
    batch_size: usize,
    message: Option<String>,
    /// The batch being filled.
    pending: Transaction<'a>,
    committed: Vec<String>,
    /// Rows in committed batches.
    rows: u64,
}

impl Importer<'_> {
    /// Adds a row; commits the batch when it is full.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.pending.put(&self.dataset, key, value);
        if self.pending.len() >= self.batch_size {
            self.commit_batch()?;
        }
        Ok(())
    }

    fn commit_batch(&mut self) -> Result<()> {
        let mut batch = std::mem::replace(&mut self.pending, self.repo.transaction());
        if let Some(message) = &self.message {
            batch.message(message.clone());
        }
        let rows = batch.len() as u64;
        self.committed.push(batch.commit()?);
        self.rows += rows;
        Ok(())
    }

    /// The versions committed so far, oldest first.
    pub fn committed(&self) -> &[String] {
        &self.committed
    }

    /// How many rows the committed batches hold.
    pub fn rows_committed(&self) -> u64 {
        self.rows
    }

    /// Commits the last, partial batch; returns every version committed.
    pub fn finish(mut self) -> Result<Vec<String>> {
        if !self.pending.is_empty() {
            self.commit_batch()?;
        }
        Ok(self.committed)
    }
}

/// A commit being built: operations, a message, and what it replaces or merges.
pub struct Transaction<'a> {
    repo: &'a Repository,
    ops: Vec<Operation>,
    message: Option<String>,
    parents: Parents,
    policy: Option<MergePolicy>,
}

impl<'a> Transaction<'a> {
    fn new(repo: &'a Repository, parents: Parents) -> Transaction<'a> {
        Transaction {
            repo,
            ops: Vec::new(),
            message: None,
            parents,
            policy: None,
        }
    }

    pub fn put(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.ops.push(Operation {
            kind: OpKind::Put,
            content: Content::Row,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
        });
        self
    }

    /// Puts a file row: streams `reader` into the blob store now (the blob is kept even if
    /// the commit is never made; it is content-addressed, so nothing refers to it then).
    pub fn put_file(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        reader: &mut dyn Read,
    ) -> Result<&mut Self> {
        let file = self.repo.blobs.write(reader)?;
        self.ops.push(Operation {
            kind: OpKind::Put,
            content: Content::File,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: Some(file.encode()),
        });
        Ok(self)
    }

    /// Puts a value serialized as JSON.
    pub fn put_json<T: serde::Serialize>(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<&mut Self> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(self.put(dataset, key, bytes))
    }

    pub fn delete(&mut self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Operation {
            kind: OpKind::Delete,
            content: Content::Row,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: None,
        });
        self
    }

    pub fn message(&mut self, message: impl Into<String>) -> &mut Self {
        self.message = Some(message.into());
        self
    }

    /// Names the version(s) this write replaces. One version that is no longer the newest
    /// of its layer makes the write a fork; several make it a merge of the heads holding
    /// them, which resolves that fork.
    pub fn replaces(&mut self, versions: &[String]) -> &mut Self {
        if !versions.is_empty() {
            self.parents = Parents::Replaces(versions.to_vec());
        }
        self
    }

    /// For a merge (or a write replacing several versions, which merges their heads): how
    /// to settle rows changed differently on several sides that this commit's own
    /// operations do not settle. Without a policy such a conflict is an error.
    pub fn policy(&mut self, policy: MergePolicy) -> &mut Self {
        self.policy = Some(policy);
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Writes the commit atomically; returns its version.
    pub fn commit(self) -> Result<String> {
        self.repo.commit_ops(self)
    }
}
