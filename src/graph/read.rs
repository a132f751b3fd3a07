//! Reading the graph: nodes by key, prefix or change number, the heads, the per-log
//! changelogs, and waiting for the graph to grow.

use std::time::Duration;

use super::{Changes, Graph, Node};
use crate::error::{Error, Result};
use crate::store::{Entry, Tables};

impl Graph {
    /// The node with key `key`, or [`Error::NotFound`].
    pub fn get(&self, key: &str) -> Result<Node> {
        read_node(&mut self.shared.store.lock(), key)?
            .ok_or_else(|| Error::NotFound(format!("node {key}")))
    }

    /// The nodes with keys `keys`, which must ascend, read under one lock (`None` for a key
    /// not stored): a consecutive run of `among` ascending keys read together. A sender
    /// reading many nodes at once uses this: in key order, the storage layer can step from
    /// one node to the next instead of seeking each, when the `among` keys are dense
    /// enough among the stored nodes (`Tables::nodes_bytes_ascending`).
    pub(crate) fn get_ascending(&self, keys: &[&str], among: usize) -> Result<Vec<Option<Node>>> {
        let stored = self
            .shared
            .store
            .lock()
            .nodes_bytes_ascending(keys, among)?;
        keys.iter()
            .zip(stored)
            .map(|(key, bytes)| decode_stored(key, bytes))
            .collect()
    }

    /// The node whose key is `name` or starts with it (at least 4 characters, either case).
    /// A prefix shared by several nodes is refused, naming some of them.
    pub fn find(&self, name: &str) -> Result<Node> {
        if name.len() < 4 {
            return Err(Error::InvalidArgument(format!(
                "node {name:?} is too short: give at least 4 characters"
            )));
        }
        let lower = name.to_ascii_lowercase();
        let mut tables = self.shared.store.lock();
        let keys = tables.node_keys_with_prefix(&lower, 5)?;
        let key = match keys.as_slice() {
            [] => return Err(Error::NotFound(format!("node {name}"))),
            [one] => one.clone(),
            [first, ..] if *first == lower => first.clone(),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "ambiguous node {name}: it matches {}",
                    keys.join(", ")
                )));
            }
        };
        read_node(&mut tables, &key)?.ok_or_else(|| Error::NotFound(format!("node {key}")))
    }

    /// Whether a node with key `key` is stored.
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.shared.store.lock().has_node(key)
    }

    /// The current heads (nodes no other node links to), ordered by key.
    pub fn heads(&self) -> Result<Vec<Node>> {
        let mut tables = self.shared.store.lock();
        let keys: Vec<String> = super::heads::heads(&mut tables)?.iter().cloned().collect();
        keys.iter()
            .map(|key| {
                read_node(&mut tables, key)?
                    .ok_or_else(|| Error::corrupt(format!("head {key} has no node")))
            })
            .collect()
    }

    /// The node with local change number `change`.
    pub fn get_change(&self, change: u64) -> Result<Node> {
        node_at_change(&mut self.shared.store.lock(), change)?
            .ok_or_else(|| Error::NotFound(format!("change {change}")))
    }

    /// Nodes in local change order, starting after change `since` (0 for all).
    pub fn changes(&self, since: u64) -> Changes {
        Changes::new(self.clone(), since)
    }

    /// Blocks until the graph has more than `after` changes, or `timeout` passes. Returns
    /// the change count then.
    pub fn wait_for_change(&self, after: u64, timeout: Option<Duration>) -> u64 {
        self.shared.store.wait_for_growth(after, timeout)
    }

    /// The last sequence number of `log` (0 for a log this repository has no entry of).
    pub fn log_head(&self, log: &str) -> Result<u64> {
        self.shared.store.lock().last_seq(log)
    }

    /// The changelog entry at `(log, seq)`.
    pub fn log_entry(&self, log: &str, seq: u64) -> Result<Option<Entry>> {
        self.shared.store.lock().log_entry(log, seq)
    }

    /// Entries of `log` from seq `from` on (at most `limit`), in seq order.
    pub fn log_entries(&self, log: &str, from: u64, limit: usize) -> Result<Vec<(u64, Entry)>> {
        self.shared.store.lock().log_entries_from(log, from, limit)
    }

    /// Every log this repository holds entries of, with its last sequence number.
    pub fn logs(&self) -> Result<Vec<(String, u64)>> {
        self.shared.store.lock().logs()
    }

    /// The log heads that any replica holding the nodes `keys` holds at least: for each log
    /// among their ancestors (the nodes themselves included), the highest sequence number
    /// met. A replica holds every log as a prefix, so it holds all of these entries; this
    /// is what to pass to `SyncFile::since` to write only what a replica at those
    /// versions lacks. Walks the whole ancestry; an unknown key is [`Error::NotFound`].
    ///
    /// ```
    /// use strata::{Graph, GraphOptions};
    ///
    /// let graph = Graph::in_memory(GraphOptions::default())?;
    /// let first = graph.append("a")?;
    /// let second = graph.append("b")?;
    /// assert_eq!(graph.log_heads_at(&[first.key.as_str()])?, vec![(first.log.clone(), 1)]);
    /// assert_eq!(graph.log_heads_at(&[second.key.as_str()])?, vec![(second.log, 2)]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn log_heads_at(&self, keys: &[&str]) -> Result<Vec<(String, u64)>> {
        let mut heads: std::collections::BTreeMap<String, u64> = Default::default();
        let mut seen: std::collections::HashSet<String> = Default::default();
        let mut queue: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        while let Some(key) = queue.pop() {
            if !seen.insert(key.clone()) {
                continue;
            }
            let node = self.get(&key)?;
            let head = heads.entry(node.log).or_default();
            *head = (*head).max(node.seq);
            queue.extend(node.links.into_iter().filter(|link| !seen.contains(link)));
        }
        Ok(heads.into_iter().collect())
    }
}

/// Reads and decodes node `key`.
pub(crate) fn read_node(tables: &mut Tables, key: &str) -> Result<Option<Node>> {
    decode_stored(key, tables.node_bytes(key)?)
}

/// The node stored as `bytes` under `key`, if any.
fn decode_stored(key: &str, bytes: Option<Vec<u8>>) -> Result<Option<Node>> {
    match bytes {
        Some(bytes) => Node::decode(&bytes)
            .map(Some)
            .map_err(|e| Error::corrupt(format!("node {key}: {e}"))),
        None => Ok(None),
    }
}

/// The node with local change number `change`.
pub(crate) fn node_at_change(tables: &mut Tables, change: u64) -> Result<Option<Node>> {
    match tables.keys_from(change, 1)?.pop() {
        Some((_, key)) => read_node(tables, &key)?
            .map(Some)
            .ok_or_else(|| Error::corrupt(format!("change {change} names missing node {key}"))),
        None => Ok(None),
    }
}
