//! Typed access to the graph's key families: nodes, the change index, the per-log
//! changelogs, the heads record and the repository's identity.
//!
//! The change index and the changelogs are stored as runs (see `runs`); the heads as a
//! checkpoint (see `checkpoint`; `graph::heads` replays the changes after it). The last
//! change number and the heads are read once and then kept in step with every write
//! (`GraphCounters`), so the graph's hot path reads no counter.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::checkpoint::{self, Checkpointed, SetChange};
use super::keys::{self, KeyReader};
use super::kv::{Durability, STEPS, prefix_end};
use super::runs::{self, NewRuns};
use super::{Entry, Tables, WriteSet};
use crate::error::{Error, Result};

use super::recent::Recent;

/// What the store remembers about the graph between writes.
#[derive(Default)]
pub(crate) struct GraphCounters {
    change_count: Option<u64>,
    /// The current heads, once loaded.
    heads: Option<Checkpointed>,
    recent: Recent,
}

impl GraphCounters {
    /// The loaded heads, for a write to add its checkpoint to.
    pub(super) fn heads(&self) -> Option<&Checkpointed> {
        self.heads.as_ref()
    }

    pub(super) fn landed(
        &mut self,
        heads: SetChange,
        heads_checkpoint: Option<u64>,
        change_count: Option<u64>,
        recent: Vec<(String, String)>,
    ) {
        // Heads not loaded yet are loaded later from the checkpoint and the changes after
        // it, this write's among them.
        if let Some(loaded) = &mut self.heads {
            loaded.land(heads, heads_checkpoint);
        }
        if change_count.is_some() {
            self.change_count = change_count;
        }
        self.recent
            .record(recent.iter().map(|(key, log)| (key.as_str(), log.as_str())));
    }
}

impl Tables {
    /// The stored bytes of node `key`.
    pub(crate) fn node_bytes(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.kv.get(&keys::node(key))
    }

    /// The stored bytes of each node of `nodes`, which must ascend: a consecutive run of
    /// `among` ascending keys being read (a caller reads a big set a run at a time, so as
    /// not to hold the lock long). Node keys are hashes, spread evenly over the node
    /// records, so when the `among` keys are at least one in `STEPS / 2` of the stored
    /// nodes, stepping from one to the next is cheaper than a seek each (see
    /// [`Kv::get_ascending`](super::kv::Kv::get_ascending)).
    pub(crate) fn nodes_bytes_ascending(
        &mut self,
        nodes: &[&str],
        among: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let dense = (among.max(nodes.len()) as u64).saturating_mul(STEPS as u64 / 2);
        let step = self.known_change_count() <= dense;
        let keys: Vec<Vec<u8>> = nodes.iter().map(|node| keys::node(node)).collect();
        self.kv.get_ascending(&keys, step)
    }

    /// Whether node `key` is stored.
    pub(crate) fn has_node(&mut self, key: &str) -> Result<bool> {
        self.kv.contains(&keys::node(key))
    }

    /// Up to `limit` stored node keys that start with `prefix`, in key order.
    pub(crate) fn node_keys_with_prefix(
        &mut self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let start = keys::node(prefix);
        self.kv
            .scan_prefix(&start)?
            .take(limit)
            .map(|item| {
                let (key, _) = item?;
                let raw = KeyReader::new(&key, keys::NODES)?.rest();
                String::from_utf8(raw.to_vec()).map_err(|_| Error::corrupt("node key is not UTF-8"))
            })
            .collect()
    }

    /// The log a recently written node belongs to, if it is remembered (no storage read).
    pub(crate) fn recent_log_of(&self, key: &str) -> Option<&str> {
        self.graph.recent.log_of(key)
    }

    /// The last change number used (0 when the graph is empty).
    pub(crate) fn change_count(&mut self) -> Result<u64> {
        if let Some(count) = self.graph.change_count {
            return Ok(count);
        }
        let count = runs::last_change(&mut self.kv)?;
        self.graph.change_count = Some(count);
        Ok(count)
    }

    /// The last change number as last read or written: exact once
    /// [`Tables::change_count`] has been called (the graph does so when it opens).
    pub(crate) fn known_change_count(&self) -> u64 {
        self.graph.change_count.unwrap_or(0)
    }

    /// The graph's current heads, once loaded (see `graph::heads`).
    pub(crate) fn loaded_heads(&self) -> Option<&BTreeSet<String>> {
        self.graph.heads.as_ref().map(Checkpointed::set)
    }

    /// The stored checkpoint of the heads: the heads as of a change, and that change.
    pub(crate) fn heads_checkpoint(&mut self) -> Result<(BTreeSet<String>, u64)> {
        checkpoint::HEADS.read(&mut self.kv)
    }

    /// Keeps `heads`, current as of now, whose last checkpoint is as of change `as_of`.
    pub(crate) fn keep_heads(&mut self, heads: BTreeSet<String>, as_of: u64) {
        self.graph.heads = Some(Checkpointed::new(heads, as_of));
    }

    /// Upgrades a format 3 repository to `format`. Format 3 rewrote both sets of heads (the
    /// graph's and the version index's) at every write: each becomes a checkpoint as of
    /// the last change or index sequence number.
    pub(crate) fn upgrade_from_format_3(&mut self, format: u64) -> Result<()> {
        let mut write = WriteSet::default();
        write
            .batch
            .put(keys::HEADS_AS_OF, &keys::encode_u64(self.change_count()?));
        write
            .batch
            .put(keys::TIPS_AS_OF, &keys::encode_u64(self.last_iseq()?));
        write
            .batch
            .put(keys::META_FORMAT, &keys::encode_u64(format));
        self.commit_derived(write, Durability::Synced)
    }

    /// Node keys from change `from` on (at most `limit`), in change order.
    pub(crate) fn keys_from(&mut self, from: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        runs::keys_from(from, limit, |change| self.run_holding(change))
    }

    /// The run of the change index that holds `change` (or the last run before it).
    fn run_holding(&mut self, change: u64) -> Result<Option<(u64, Arc<Vec<u8>>)>> {
        if let Some(run) = self.memo().and_then(|memo| memo.run_holding(change)) {
            return Ok(Some(run));
        }
        let Some((first, record)) = runs::floor(&mut self.kv, keys::CHANGES, change)? else {
            return Ok(None);
        };
        let count = runs::key_count(&record)?;
        let record = Arc::new(record);
        let remembered = Arc::clone(&record);
        self.remember(|memo| memo.set_run(first, count, remembered));
        Ok(Some((first, record)))
    }

    /// The last sequence number of `log` (0 when this repository holds none of it).
    pub(crate) fn last_seq(&mut self, log: &str) -> Result<u64> {
        if let Some(seq) = self.memo().and_then(|memo| memo.last_seq(log)) {
            return Ok(seq);
        }
        let seq = runs::last_seq(&mut self.kv, log)?;
        self.remember(|memo| memo.set_last_seq(log, seq));
        Ok(seq)
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

    /// The entry at `(log, seq)`.
    pub(crate) fn log_entry(&mut self, log: &str, seq: u64) -> Result<Option<Entry>> {
        runs::entry_at(&mut self.kv, log, seq)
    }

    /// Every log with entries here, with its last sequence number, in log order. Costs one
    /// seek per log.
    pub(crate) fn logs(&mut self) -> Result<Vec<(String, u64)>> {
        let mut names = Vec::new();
        let mut from = keys::LOGS.to_vec();
        loop {
            let next = self.kv.scan(&from, &prefix_end(keys::LOGS))?.next();
            let Some((key, _)) = next.transpose()? else {
                break;
            };
            let log = String::from_utf8(KeyReader::new(&key, keys::LOGS)?.bytes()?)
                .map_err(|_| Error::corrupt("log id is not UTF-8"))?;
            from = prefix_end(&runs::log_prefix(&log));
            names.push(log);
        }
        names
            .into_iter()
            .map(|log| {
                let seq = self.last_seq(&log)?;
                Ok((log, seq))
            })
            .collect()
    }

    /// The repository's identity: its format version and its own log id, if it has one yet.
    pub(crate) fn identity(&mut self) -> Result<Option<(u64, String)>> {
        let Some(log) = self.kv.get(keys::META_LOG)? else {
            return Ok(None);
        };
        let format = self
            .kv
            .get(keys::META_FORMAT)?
            .ok_or_else(|| Error::corrupt("format version is missing"))?;
        let format = keys::decode_u64(&format, "format version")?;
        let log = String::from_utf8(log).map_err(|_| Error::corrupt("log id is not UTF-8"))?;
        Ok(Some((format, log)))
    }
}

impl WriteSet {
    /// Stores a node record (`log` is remembered for link checks once the write lands).
    pub(crate) fn put_node(&mut self, key: &str, log: &str, bytes: &[u8]) {
        self.batch.put(&keys::node(key), bytes);
        self.recent.push((key.to_string(), log.to_string()));
    }

    /// Stores the new runs of the change index and the changelogs, and the new last change.
    pub(crate) fn put_runs(&mut self, runs: NewRuns, change_count: u64) {
        let last_seqs = runs.write_to(&mut self.batch);
        self.memo.last_seqs.extend(last_seqs);
        self.change_count = Some(change_count);
    }

    /// Node `key` stops being a head of the graph.
    pub(crate) fn remove_head(&mut self, key: &str) {
        self.heads.remove(key);
    }

    /// Node `key`, stored as change `change`, becomes a head of the graph.
    pub(crate) fn add_head(&mut self, key: &str, change: u64) {
        self.heads.add(key, change);
    }

    /// Records a new repository's format version and log id.
    pub(crate) fn put_identity(&mut self, format: u64, log: &str) {
        self.batch.put(keys::META_FORMAT, &keys::encode_u64(format));
        self.batch.put(keys::META_LOG, log.as_bytes());
    }
}
