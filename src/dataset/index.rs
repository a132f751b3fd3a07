//! The indexer: turns graph nodes into layers and version-index entries.
//!
//! It follows the graph's change log under the graph's lock, right after every write, so a
//! commit is readable the moment its write returns, and catches up at open after a crash
//! (`!meta!indexed` is its checkpoint). A node is indexed once its payload (operations) and
//! every parent are indexed; until then it is *pending*: in the graph, replicable, but not
//! visible in the dataset view.
//!
//! Layer assignment (dat-core's, fixed): a node extends its first parent's layer when that
//! parent is the layer's tip; otherwise (a root, a write on an old version, a concurrent
//! node that arrived later) it starts a new layer, which records its parent layer and the
//! change it forked at. A merge node also writes into its layer the rows its other parents
//! changed since the common ancestor (three-way), so later reads never look past it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prost::Message;

use super::commit::{Commit, CommitType, Content, OpKind, Operation};
use super::lineage::{self, Path, RowId};
use super::read::{lookup, lookup_sorted, newest, same, same_content};
use super::records::{self, Pointer, hex32};
use crate::error::{Error, Result};
use crate::graph::{Node, State};
use crate::keys;
use crate::kv::{Batch, Durability};
use crate::proto::strata::{Layer, Status};

fn read_counter(state: &mut State, key: &[u8], what: &str) -> Result<u64> {
    match state.kv.get(key)? {
        Some(value) => keys::decode_u64(&value, what),
        None => Ok(0),
    }
}

/// What the index keeps in memory: the current heads of the dataset view and the pending
/// commits with what each waits for. Both are also stored (`!meta!tips!`, `!pending!`) and
/// loaded once at open; a scan of either family would step over the tombstones of every
/// former entry. Their sizes are the number of heads and of commits waiting for payload,
/// not the data size.
#[derive(Debug, Default)]
pub(crate) struct IndexMemory {
    pub tips: BTreeSet<String>,
    pub pending: BTreeMap<u64, Waiting>,
}

/// What a pending commit may be waiting for: any of its parents, or its payload.
#[derive(Debug)]
pub(crate) struct Waiting {
    links: Vec<String>,
    payload: Option<String>,
}

impl Waiting {
    fn of(node: &Node) -> Waiting {
        Waiting {
            links: node.links.clone(),
            payload: Commit::decode(&node.value).ok().and_then(|c| c.operations),
        }
    }
}

/// The index memory, loaded on first use.
pub(crate) fn memory(state: &mut State) -> Result<&mut IndexMemory> {
    if state.index_memory.is_none() {
        let mut loaded = IndexMemory::default();
        for (key, _) in state.kv.scan_prefix(keys::META_TIPS)? {
            let tip = String::from_utf8(key[keys::META_TIPS.len()..].to_vec())
                .map_err(|_| Error::corrupt("head key is not UTF-8"))?;
            loaded.tips.insert(tip);
        }
        let changes: Vec<u64> = state
            .kv
            .scan_prefix(keys::PENDING)?
            .map(|(key, _)| keys::KeyReader::new(&key, keys::PENDING)?.u64())
            .collect::<Result<_>>()?;
        for change in changes {
            let node = state
                .node_at_change(change)?
                .ok_or_else(|| Error::corrupt(format!("pending change {change} is missing")))?;
            loaded.pending.insert(change, Waiting::of(&node));
        }
        state.index_memory = Some(loaded);
    }
    state
        .index_memory
        .as_mut()
        .ok_or_else(|| Error::corrupt("index memory is missing"))
}

/// Index writes are only flushed, never fsynced, whatever the graph's durability: the index
/// is derived from the graph, and LevelDB's log is replayed in order, so after a power loss
/// either an index write survived with everything before it or `!meta!indexed` is behind
/// and [`catch_up`] redoes the work at the next open.
const INDEX_DURABILITY: Durability = Durability::Flushed;

/// Indexes every node stored since the last run; then retries the pending nodes that were
/// waiting for one of them.
pub(crate) fn catch_up(state: &mut State, _graph_durability: Durability) -> Result<()> {
    memory(state)?;
    let mut indexed = read_counter(state, keys::META_INDEXED, "indexed change")?;
    let mut fresh: HashSet<String> = HashSet::new();
    while indexed < state.change_count {
        for (change, key) in state.keys_from(indexed + 1, 256)? {
            let node = state.node(&key)?.ok_or_else(|| {
                Error::corrupt(format!("change {change} names missing node {key}"))
            })?;
            let mut batch = Batch::default();
            let indexed_now = index_node(state, &node, &mut batch)?;
            if !indexed_now {
                batch.put(&keys::pending(change), b"");
            }
            batch.put(keys::META_INDEXED, &keys::encode_u64(change));
            state.kv.write(batch, INDEX_DURABILITY)?;
            let memory = memory(state)?;
            if indexed_now {
                record_tips(memory, &node);
                if !memory.pending.is_empty() {
                    fresh.insert(node.key);
                }
            } else {
                memory.pending.insert(change, Waiting::of(&node));
            }
            indexed = change;
        }
    }
    if !fresh.is_empty() {
        retry(state, fresh, None)?;
    }
    Ok(())
}

fn record_tips(memory: &mut IndexMemory, node: &Node) {
    for link in &node.links {
        memory.tips.remove(link);
    }
    memory.tips.insert(node.key.clone());
}

/// Retries the pending nodes waiting for payload `hash`, and then those they free.
pub(crate) fn payload_arrived(state: &mut State, hash: &str) -> Result<()> {
    retry(state, HashSet::new(), Some(hash))
}

/// Retries, in change order, the pending nodes that link to a node in `fresh` or wait for
/// payload `payload`; each node indexed here joins `fresh`, so descendants are freed in the
/// same pass. Nodes waiting for nothing that arrived are not touched.
fn retry(state: &mut State, mut fresh: HashSet<String>, payload: Option<&str>) -> Result<()> {
    let candidates: Vec<u64> = memory(state)?.pending.keys().copied().collect();
    for change in candidates {
        let waiting = &memory(state)?.pending[&change];
        let wakes = waiting
            .payload
            .as_deref()
            .is_some_and(|p| Some(p) == payload)
            || waiting.links.iter().any(|link| fresh.contains(link));
        if !wakes {
            continue;
        }
        let node = state
            .node_at_change(change)?
            .ok_or_else(|| Error::corrupt(format!("pending change {change} is missing")))?;
        let mut batch = Batch::default();
        if index_node(state, &node, &mut batch)? {
            batch.delete(&keys::pending(change));
            state.kv.write(batch, INDEX_DURABILITY)?;
            let memory = memory(state)?;
            memory.pending.remove(&change);
            record_tips(memory, &node);
            fresh.insert(node.key);
        }
    }
    Ok(())
}

/// How many nodes are pending.
pub(crate) fn pending_count(state: &mut State) -> Result<u64> {
    Ok(memory(state)?.pending.len() as u64)
}

/// The current heads of the dataset view, ordered by key.
pub(crate) fn tips(state: &mut State) -> Result<Vec<String>> {
    Ok(memory(state)?.tips.iter().cloned().collect())
}

/// The status a root starts from.
fn empty_status() -> Status {
    Status {
        modified: 0,
        rows: 0,
        files: 0,
        versions: 0,
        size: 0,
        r#type: crate::proto::strata::CommitType::Data as i32,
        layer: 0,
        change: 0,
    }
}

/// Moves the live-row counters for one row going from `before` to `after`.
pub(super) fn count(status: &mut Status, before: Option<&Pointer>, after: Option<&Pointer>) {
    if let Some(before) = before.filter(|p| !p.deleted) {
        let counter = if before.file {
            &mut status.files
        } else {
            &mut status.rows
        };
        *counter = counter.saturating_sub(1);
    }
    if let Some(after) = after.filter(|p| !p.deleted) {
        let counter = if after.file {
            &mut status.files
        } else {
            &mut status.rows
        };
        *counter += 1;
    }
}

/// Writes the version-index entries of one row at `(layer, change)`.
fn put_entry(batch: &mut Batch, layer: u64, change: u64, row: &RowId, pointer: &Pointer) {
    let encoded = pointer.encode();
    let changes = keys::data_changes_row(&row.0, &row.1)
        .u64(layer)
        .u64_desc(change)
        .finish();
    batch.put(&changes, &encoded);
    // The latest family only lists a layer's rows for range reads; values live in changes.
    let latest = keys::data_latest_dataset(layer, &row.0)
        .bytes(&row.1)
        .finish();
    batch.put(&latest, b"");
}

/// The entries of `rows` (sorted) at `path`, one sorted pass per dataset.
fn lookup_rows(
    state: &mut State,
    path: &Path,
    rows: &BTreeMap<RowId, (u64, &Operation)>,
) -> Result<Vec<Option<Pointer>>> {
    let mut found = Vec::with_capacity(rows.len());
    let mut rows = rows.keys().peekable();
    while let Some((dataset, _)) = rows.peek() {
        let dataset = dataset.clone();
        let mut keys: Vec<&[u8]> = Vec::new();
        while let Some(row) = rows.next_if(|(d, _)| *d == dataset) {
            keys.push(&row.1);
        }
        found.extend(lookup_sorted(&mut state.kv, path, &dataset, &keys)?);
    }
    Ok(found)
}

/// Indexes `node` into `batch`; `Ok(false)` when it cannot be indexed yet.
fn index_node(state: &mut State, node: &Node, batch: &mut Batch) -> Result<bool> {
    let mut parents: Vec<Status> = Vec::with_capacity(node.links.len());
    for link in &node.links {
        match records::node_status(&mut state.kv, link)? {
            Some(status) => parents.push(status),
            None => return Ok(false),
        }
    }
    // A value that is not a commit (graph plumbing) is indexed as a commit with no rows.
    let commit = Commit::decode(&node.value).ok();
    let Some(ops) = lineage::load_operations(&mut state.kv, commit.as_ref())? else {
        return Ok(false);
    };
    let ops_hash = commit
        .as_ref()
        .and_then(|c| c.operations.as_deref())
        .and_then(hex32)
        .unwrap_or([0; 32]);
    let change = node.change;

    // Layer assignment.
    let (layer, record) = match parents.first() {
        Some(first) => {
            let mut record = records::layer(&mut state.kv, first.layer)?;
            if record.tip == node.links[0] {
                record.tip = node.key.clone();
                record.tip_change = change;
                (first.layer, record)
            } else {
                new_layer(state, batch, node, Some((first.layer, first.change)))?
            }
        }
        None => new_layer(state, batch, node, None)?,
    };
    batch.put(&keys::layer_head(layer), &record.encode_to_vec());

    let ours_path: Option<Path> = match node.links.first() {
        Some(first) => Some(lineage::path_of(&mut state.kv, first)?),
        None => None,
    };
    let mut status = parents.first().cloned().unwrap_or_else(empty_status);
    status.versions += 1;
    status.size += node.value.len() as u64;

    // The commit's own operations: the last operation on a row wins.
    let mut own: BTreeMap<RowId, (u64, &Operation)> = BTreeMap::new();
    for (index, (op, encoded_len)) in ops.iter().enumerate() {
        status.size += *encoded_len as u64;
        own.insert((op.dataset.clone(), op.key.clone()), (index as u64, op));
    }
    let mut datasets = BTreeSet::new();
    let befores = match &ours_path {
        Some(path) => lookup_rows(state, path, &own)?,
        None => vec![None; own.len()],
    };
    for ((row, (index, op)), before) in own.iter().zip(befores) {
        let pointer = Pointer {
            deleted: op.kind == OpKind::Delete,
            file: op.content == Content::File && op.kind == OpKind::Put,
            version: node.key.clone(),
            change,
            ops: ops_hash,
            index: *index,
            value: op.value.clone().unwrap_or_default(),
        };
        count(&mut status, before.as_ref(), Some(&pointer));
        put_entry(batch, layer, change, row, &pointer);
        datasets.insert(row.0.clone());
    }

    // A merge takes what its other parents changed since the common ancestor.
    if let Some(ours_path) = &ours_path {
        let taken = fold_parents(state, node, ours_path, &own)?;
        for (row, (before, theirs)) in &taken {
            count(&mut status, before.as_ref(), Some(theirs));
            put_entry(batch, layer, change, row, theirs);
            batch.put(
                &keys::merged(&node.key).bytes(&row.0).bytes(&row.1).finish(),
                b"",
            );
            datasets.insert(row.0.clone());
        }
    }
    for dataset in datasets {
        batch.put(&keys::dataset(&dataset), b"");
    }

    if let Some(commit) = &commit {
        status.modified = commit.modified;
        status.r#type = match commit.kind {
            CommitType::Data => 1,
            CommitType::TransactionStart => 2,
            CommitType::TransactionData => 3,
            CommitType::TransactionEnd => 4,
            CommitType::Init => 5,
        };
    }
    status.layer = layer;
    status.change = change;
    batch.put(&keys::node_layer(&node.key), &status.encode_to_vec());
    for link in &node.links {
        batch.delete(&keys::tip(link));
    }
    batch.put(&keys::tip(&node.key), b"");
    Ok(true)
}

/// Starts a layer whose first node is `node`, forking from `(parent layer, change)`.
fn new_layer(
    state: &mut State,
    batch: &mut Batch,
    node: &Node,
    parent: Option<(u64, u64)>,
) -> Result<(u64, Layer)> {
    let layer = read_counter(state, keys::META_LAYERS, "layer count")? + 1;
    batch.put(keys::META_LAYERS, &keys::encode_u64(layer));
    let record = Layer {
        tip: node.key.clone(),
        tip_change: node.change,
        parent: parent.map(|(layer, _)| layer),
        fork_change: parent.map(|(_, change)| change),
        first: node.key.clone(),
    };
    Ok((layer, record))
}

/// For each parent after the first: the rows it changed since its merge base with the
/// first parent, which the merge takes (the first parent's value before, theirs after).
/// Rows the merge's own operations set are its resolution and are not taken. A conflict
/// the merge does not resolve (possible only in merges written elsewhere) goes to the
/// newest version, as a read of a fork would.
fn fold_parents(
    state: &mut State,
    node: &Node,
    ours_path: &Path,
    own: &BTreeMap<RowId, (u64, &Operation)>,
) -> Result<BTreeMap<RowId, (Option<Pointer>, Pointer)>> {
    let mut taken: BTreeMap<RowId, (Option<Pointer>, Pointer)> = BTreeMap::new();
    let mut done: HashMap<&str, ()> = HashMap::new();
    done.insert(node.links[0].as_str(), ());
    for other in node.links.iter().skip(1) {
        if done.insert(other.as_str(), ()).is_some() {
            continue;
        }
        let walk = lineage::merge_base(state, &node.links[0], other)?;
        let base_path = match &walk.base {
            Some(base) => lineage::path_of(&mut state.kv, base)?,
            None => Path::new(),
        };
        let theirs_path = lineage::path_of(&mut state.kv, other)?;
        let mut rows = BTreeSet::new();
        for key in &walk.only_b {
            lineage::touched(state, key, &mut rows)?;
        }
        for row in rows {
            if own.contains_key(&row) {
                continue;
            }
            let kv = &mut state.kv;
            let Some(theirs) = lookup(kv, &theirs_path, &row.0, &row.1)? else {
                continue;
            };
            let base = lookup(kv, &base_path, &row.0, &row.1)?;
            if same(Some(&theirs), base.as_ref()) {
                continue;
            }
            let before = lookup(kv, ours_path, &row.0, &row.1)?;
            let ours = taken.get(&row).map(|(_, p)| p.clone()).or(before.clone());
            let take = if same(ours.as_ref(), base.as_ref()) {
                true
            } else if same_content(ours.as_ref(), Some(&theirs)) {
                false
            } else {
                let candidates: Vec<&Pointer> =
                    ours.iter().chain(std::iter::once(&theirs)).collect();
                newest(kv, &candidates)?.is_some_and(|winner| winner.same_op(&theirs))
            };
            if take {
                taken.insert(row, (before, theirs));
            }
        }
    }
    Ok(taken)
}
