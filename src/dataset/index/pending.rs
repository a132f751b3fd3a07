//! Following the graph: every stored node that is a commit is indexed as soon as its
//! parents are indexed and its payload is here; until then it is *pending*: in the graph
//! and replicable, but not a version yet.
//!
//! A pending commit is recorded under everything it waits for (each parent commit not yet
//! indexed, its payload hash), so an arrival finds exactly its waiters with one scan of
//! its own key range, whatever the number of pending commits: indexing a commit wakes the
//! commits waiting for it as a parent, storing a payload wakes those waiting for it.
//! Nodes that are not commits (graph plumbing, a plain hyperlog peer's nodes) are never
//! versions; they are followed and left alone.

use std::collections::VecDeque;

use super::{Indexable, LatestCounters, VersionIndex, raw_hash};
use crate::dataset::commit::{Commit, Operation};
use crate::error::{Error, Result};
use crate::graph::{Follower, Node, node_at_change, read_node};
use crate::store::{Durability, Tables, Wait, WriteSet};

/// Index writes are only flushed, never fsynced: the index is derived from the graph, and
/// LevelDB replays its log in order, so after a power loss either an index write survived
/// with everything before it, or the checkpoint is behind and the work is redone at open.
const INDEX_DURABILITY: Durability = Durability::Flushed;

impl Follower for VersionIndex {
    fn catch_up(&self, tables: &mut Tables, limit: usize) -> Result<bool> {
        let followed = tables.indexed_change()?;
        let count = tables.change_count()?;
        if followed >= count {
            return Ok(true);
        }
        for (change, key) in tables.keys_from(followed + 1, limit)? {
            let node = read_node(tables, &key)?.ok_or_else(|| {
                Error::corrupt(format!("change {change} names missing node {key}"))
            })?;
            let mut write = WriteSet::default();
            let indexed = self.follow(tables, &node, &mut write)?;
            write.put_indexed_change(change);
            tables.commit_derived(write, INDEX_DURABILITY)?;
            if indexed {
                self.wake(tables, Wait::Parent, &node.key)?;
            }
        }
        Ok(tables.indexed_change()? >= count)
    }
}

/// A commit's operations with their encoded sizes, or `None` when its payload is not here.
pub(crate) fn load_operations(
    tables: &mut Tables,
    commit: &Commit,
) -> Result<Option<Vec<(Operation, usize)>>> {
    let Some(hash) = commit.operations.as_deref() else {
        return Ok(Some(Vec::new()));
    };
    let raw =
        raw_hash(hash).ok_or_else(|| Error::malformed("commit", "operations hash is not hex"))?;
    let Some(ops) = tables.ops(&raw)? else {
        return Ok(None);
    };
    ops.iter()
        .map(|op| Ok((Operation::decode(op)?, op.len())))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

impl VersionIndex {
    /// Follows one newly stored node: indexes it when it is a commit that is ready, marks it
    /// pending otherwise. Returns whether it was indexed.
    fn follow(&self, tables: &mut Tables, node: &Node, write: &mut WriteSet) -> Result<bool> {
        let Ok(commit) = Commit::decode(&node.value) else {
            return Ok(false);
        };
        let waits = self.waits_of(tables, node, &commit)?;
        let mut latest = LatestCounters::read(tables)?;
        let indexed = if waits.is_empty() {
            self.index_ready(tables, node, &commit, &mut latest, write)?;
            true
        } else {
            write.put_pending(node.change);
            for (wait, target) in &waits {
                write.put_wait(*wait, target, node.change);
            }
            latest.pending += 1;
            false
        };
        latest.write(write);
        Ok(indexed)
    }

    /// What a commit still waits for: parent commits not indexed yet, and its payload.
    fn waits_of(
        &self,
        tables: &mut Tables,
        node: &Node,
        commit: &Commit,
    ) -> Result<Vec<(Wait, String)>> {
        let mut waits = Vec::new();
        for link in &node.links {
            if tables.iseq_of(link)?.is_some() {
                continue;
            }
            let parent = read_node(tables, link)?.ok_or_else(|| {
                Error::corrupt(format!("node {} links to missing {link}", node.key))
            })?;
            if Commit::decode(&parent.value).is_ok() {
                waits.push((Wait::Parent, link.clone()));
            }
        }
        if let Some(hash) = &commit.operations {
            let raw = raw_hash(hash)
                .ok_or_else(|| Error::malformed("commit", "operations hash is not hex"))?;
            if !tables.has_ops(&raw)? {
                waits.push((Wait::Payload, hash.clone()));
            }
        }
        Ok(waits)
    }

    /// Indexes a commit whose parents and payload are here.
    fn index_ready(
        &self,
        tables: &mut Tables,
        node: &Node,
        commit: &Commit,
        latest: &mut LatestCounters,
        write: &mut WriteSet,
    ) -> Result<u64> {
        let ops = load_operations(tables, commit)?
            .ok_or_else(|| Error::corrupt(format!("commit {} lost its payload", node.key)))?;
        self.index(
            tables,
            Indexable {
                node,
                commit,
                ops: &ops,
                fresh: &|_, _| false,
                new: false,
            },
            latest,
            write,
        )
    }

    /// Something pending commits may wait for has arrived: index every waiter that has
    /// nothing else to wait for, and then, in turn, the commits waiting for those.
    pub(crate) fn wake(&self, tables: &mut Tables, wait: Wait, target: &str) -> Result<()> {
        let mut arrivals: VecDeque<(Wait, String)> = VecDeque::from([(wait, target.to_string())]);
        while let Some((wait, target)) = arrivals.pop_front() {
            for change in tables.waiters(wait, &target)? {
                let mut write = WriteSet::default();
                write.delete_wait(wait, &target, change);
                if !tables.is_pending(change)? {
                    // Indexed already (what it waited for arrived by another route).
                    tables.commit_derived(write, INDEX_DURABILITY)?;
                    continue;
                }
                let node = node_at_change(tables, change)?
                    .ok_or_else(|| Error::corrupt(format!("pending change {change} is missing")))?;
                let commit = Commit::decode(&node.value)?;
                let indexed = if self.waits_of(tables, &node, &commit)?.is_empty() {
                    write.delete_pending(change);
                    // Whatever else it was recorded as waiting for is here now.
                    for link in &node.links {
                        write.delete_wait(Wait::Parent, link, change);
                    }
                    if let Some(hash) = &commit.operations {
                        write.delete_wait(Wait::Payload, hash, change);
                    }
                    let mut latest = LatestCounters::read(tables)?;
                    latest.pending = latest.pending.saturating_sub(1);
                    self.index_ready(tables, &node, &commit, &mut latest, &mut write)?;
                    latest.write(&mut write);
                    true
                } else {
                    false
                };
                tables.commit_derived(write, INDEX_DURABILITY)?;
                if indexed {
                    arrivals.push_back((Wait::Parent, node.key));
                }
            }
        }
        Ok(())
    }
}
