//! Lineage: where a version's history lives in the layer index, and how two versions
//! relate in the graph.
//!
//! A version (node `n` in layer `L` at change `c`) reads through its *path*:
//! `[(L, c), (parent of L, change it forked at), …]`. The path grows only with forks that
//! were never merged, not with history length: a merge folds the other side's changes into
//! the merging layer.
//!
//! The merge base of two versions is found by walking the graph backwards from both in
//! descending change order (local change order is topological), as git's merge-base does.
//! The walk also yields the nodes reachable from only one side, whose touched keys are
//! exactly the keys that may differ: diff and merge cost grows with the changes since the
//! common ancestor, not with the size of the data.

use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::commit::{Commit, Operation};
use super::records::{self, hex32};
use crate::error::{Error, Result};
use crate::graph::State;
use crate::keys::{self, KeyReader};
use crate::kv::Kv;

/// A version's read path: `(layer, highest change visible in it)`, nearest layer first.
pub(crate) type Path = Vec<(u64, u64)>;

/// A row, as `(dataset, key)`.
pub(crate) type RowId = (Vec<u8>, Vec<u8>);

/// The read path of indexed node `key`.
pub(crate) fn path_of(kv: &mut Kv, key: &str) -> Result<Path> {
    let status = records::node_status(kv, key)?
        .ok_or_else(|| Error::NotFound(format!("version {key} is not visible here")))?;
    let mut path = vec![(status.layer, status.change)];
    let mut layer = records::layer(kv, status.layer)?;
    let mut current = status.layer;
    while let Some(parent) = layer.parent {
        if parent >= current {
            return Err(Error::corrupt(format!(
                "layer {current} forks from later layer {parent}"
            )));
        }
        path.push((parent, layer.fork_change.unwrap_or(0)));
        layer = records::layer(kv, parent)?;
        current = parent;
    }
    Ok(path)
}

/// The result of walking back from two versions.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// The newest common ancestor, if the two share history.
    pub base: Option<String>,
    /// Nodes reachable from the first version but not the second.
    pub only_a: Vec<String>,
    /// Nodes reachable from the second version but not the first.
    pub only_b: Vec<String>,
}

const SIDE_A: u8 = 1;
const SIDE_B: u8 = 2;
const STALE: u8 = 4;

/// Walks back from `a` and `b` until every node still queued is a common ancestor.
pub(crate) fn merge_base(state: &mut State, a: &str, b: &str) -> Result<Walk> {
    let mut walk = Walk::default();
    if a == b {
        walk.base = Some(a.to_string());
        return Ok(walk);
    }
    let mut flags: HashMap<String, u8> = HashMap::new();
    // Queued nodes by change, with their links (read once, when queued).
    let mut queue: BinaryHeap<(u64, String)> = BinaryHeap::new();
    let mut links_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut live = 0usize;
    for (key, side) in [(a, SIDE_A), (b, SIDE_B)] {
        let node = state
            .node(key)?
            .ok_or_else(|| Error::NotFound(format!("version {key}")))?;
        flags.insert(key.to_string(), side);
        queue.push((node.change, key.to_string()));
        links_of.insert(key.to_string(), node.links);
        live += 1;
    }
    while live > 0 {
        let Some((_, key)) = queue.pop() else { break };
        let flag = flags.get(&key).copied().unwrap_or(0);
        let spread = if flag & STALE != 0 {
            flag
        } else {
            live -= 1;
            if flag & (SIDE_A | SIDE_B) == SIDE_A | SIDE_B {
                walk.base.get_or_insert_with(|| key.clone());
                flag | STALE
            } else {
                if flag == SIDE_A {
                    walk.only_a.push(key.clone());
                } else {
                    walk.only_b.push(key.clone());
                }
                flag
            }
        };
        for link in links_of.remove(&key).unwrap_or_default() {
            let old = flags.get(&link).copied();
            let new = old.unwrap_or(0) | spread;
            match old {
                None => {
                    let parent = state.node(&link)?.ok_or_else(|| {
                        Error::corrupt(format!("node {key} links to missing {link}"))
                    })?;
                    queue.push((parent.change, link.clone()));
                    links_of.insert(link.clone(), parent.links);
                    if new & STALE == 0 {
                        live += 1;
                    }
                }
                Some(old) if old & STALE == 0 && new & STALE != 0 => live -= 1,
                Some(_) => {}
            }
            flags.insert(link, new);
        }
    }
    Ok(walk)
}

/// The newest common ancestor of all of `heads` (folding pairwise), if there is one.
pub(crate) fn common_base(state: &mut State, heads: &[String]) -> Result<Option<String>> {
    let Some((first, rest)) = heads.split_first() else {
        return Ok(None);
    };
    let mut base = first.clone();
    for head in rest {
        match merge_base(state, &base, head)?.base {
            Some(next) => base = next,
            None => return Ok(None),
        }
    }
    Ok(Some(base))
}

/// The operations of a commit (with their encoded sizes), or `None` when its payload is not
/// here (yet). A node that is not a commit (`None`) has no operations.
pub(crate) fn load_operations(
    kv: &mut Kv,
    commit: Option<&Commit>,
) -> Result<Option<Vec<(Operation, usize)>>> {
    let Some(commit) = commit else {
        return Ok(Some(Vec::new()));
    };
    let Some(hash) = commit.operations.as_deref() else {
        return Ok(Some(Vec::new()));
    };
    let raw =
        hex32(hash).ok_or_else(|| Error::malformed("commit", "operations hash is not hex"))?;
    let expected = commit.operation_count();
    let prefix = keys::KeyBuf::new(keys::OPERATIONS).raw(&raw).finish();
    let mut ops = Vec::new();
    for (_, value) in kv.scan_prefix(&prefix)? {
        ops.push((Operation::decode(&value)?, value.len()));
    }
    if ops.len() as u64 != expected {
        return Ok(None);
    }
    Ok(Some(ops))
}

/// Every row a node changed: its own operations and, for a merge, the rows it took from
/// its other parents.
pub(crate) fn touched(state: &mut State, key: &str, into: &mut BTreeSet<RowId>) -> Result<()> {
    let node = state
        .node(key)?
        .ok_or_else(|| Error::NotFound(format!("version {key}")))?;
    let commit = Commit::decode(&node.value).ok();
    let ops = load_operations(&mut state.kv, commit.as_ref())?
        .ok_or_else(|| Error::corrupt(format!("indexed version {key} has no payload")))?;
    into.extend(ops.into_iter().map(|(op, _)| (op.dataset, op.key)));
    let prefix = keys::merged(key).finish();
    for (entry, _) in state.kv.scan_prefix(&prefix)? {
        let mut reader = KeyReader::new(&entry, keys::DATA_MERGED)?;
        reader.bytes()?;
        let dataset = reader.bytes()?;
        into.insert((dataset, reader.bytes()?));
    }
    Ok(())
}
