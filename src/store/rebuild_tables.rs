//! Typed access for rebuilding a repository from its primary records (`repair`): paging
//! through the stored nodes and payloads, stashing nodes in the order they will be
//! replayed, and clearing every record that is derived from them.
//!
//! Primary records are the nodes, the commit payloads and the repository's identity and
//! checkout; everything else (the change index, the changelogs, the heads, and the whole
//! version index) follows from the nodes, and is rebuilt by replaying them.

use super::keys::{self, KeyBuf, KeyReader};
use super::kv::{Batch, Durability, prefix_end};
use super::{Tables, WriteSet};
use crate::error::{Error, Result};

/// Every family derived from the nodes (the stash and the payloads are not).
const DERIVED: [&[u8]; 12] = [
    keys::NODES,
    keys::CHANGES,
    keys::HEADS,
    keys::LOGS,
    keys::ROWS,
    keys::VERSIONS,
    keys::VERSION_OF,
    keys::PENDING,
    keys::WAITS,
    keys::TIPS,
    keys::DATASETS,
    keys::META_INDEXED,
];

/// Keys deleted per write while clearing.
const CLEAR_STEP: usize = 4096;

/// A payload as stored.
pub(crate) struct Payload {
    /// The operations hash it is stored under.
    pub(crate) hash: [u8; 32],
    /// The numbers of its chunks.
    pub(crate) chunks: Vec<u64>,
    /// Its operations, or why they cannot be read.
    pub(crate) ops: Result<Vec<Vec<u8>>>,
}

/// A stashed node: its place in the replay (order, key) and its bytes.
pub(crate) type Stashed = ((u64, String), Vec<u8>);

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::corrupt(format!("{what} is not UTF-8")))
}

impl Tables {
    /// Up to `limit` stored nodes after `after` (in key order), as (key, bytes).
    pub(crate) fn nodes_page(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let start = match after {
            Some(key) => {
                let mut start = keys::node(key);
                start.push(0);
                start
            }
            None => keys::NODES.to_vec(),
        };
        let mut page = Vec::new();
        for item in self.kv.scan(&start, &prefix_end(keys::NODES))?.take(limit) {
            let (key, bytes) = item?;
            page.push((
                utf8(KeyReader::new(&key, keys::NODES)?.rest(), "node key")?,
                bytes,
            ));
        }
        Ok(page)
    }

    /// Node keys the change index and the version index name, a page at a time: `cursor`
    /// is where the last page ended (start with `None`); returns the keys and the next
    /// cursor (`None` at the end). Damaged records are passed over: this is for finding
    /// nodes whose own record is gone.
    pub(crate) fn named_nodes_page(
        &mut self,
        cursor: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<Vec<u8>>)> {
        let start = cursor.unwrap_or_else(|| keys::CHANGES.to_vec());
        let mut named = Vec::new();
        let mut last = None;
        for family in [keys::CHANGES, keys::VERSION_OF] {
            let end = prefix_end(family);
            if start.as_slice() >= end.as_slice() {
                continue;
            }
            let from = start.as_slice().max(family);
            for item in self.kv.scan(from, &end)?.take(limit) {
                let (key, value) = item?;
                if family == keys::CHANGES {
                    named.extend(super::runs::decode_keys(&value, 0).unwrap_or_default());
                } else if let Ok(node) = utf8(KeyReader::new(&key, family)?.rest(), "node key") {
                    named.push(node);
                }
                last = Some(key);
            }
            if let Some(mut next) = last {
                next.push(0);
                return Ok((named, Some(next)));
            }
        }
        Ok((named, None))
    }

    /// Up to `limit` stashed nodes after position `after`, in stash order, as
    /// (position, key, bytes).
    pub(crate) fn stash_page(
        &mut self,
        after: Option<&(u64, String)>,
        limit: usize,
    ) -> Result<Vec<Stashed>> {
        let start = match after {
            Some((order, key)) => {
                let mut start = stash_key(*order, key);
                start.push(0);
                start
            }
            None => keys::STASH.to_vec(),
        };
        let mut page = Vec::new();
        for item in self.kv.scan(&start, &prefix_end(keys::STASH))?.take(limit) {
            let (key, bytes) = item?;
            let mut reader = KeyReader::new(&key, keys::STASH)?;
            let order = reader.u64()?;
            let node = utf8(reader.rest(), "stashed node key")?;
            page.push(((order, node), bytes));
        }
        Ok(page)
    }

    /// Up to `limit` payloads after hash `after`, in hash order.
    pub(crate) fn payloads_page(
        &mut self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<Payload>> {
        let start = match after {
            Some(hash) => prefix_end(&KeyBuf::new(keys::OPS).raw(hash).finish()),
            None => keys::OPS.to_vec(),
        };
        let mut page: Vec<Payload> = Vec::new();
        for item in self.kv.scan(&start, &prefix_end(keys::OPS))? {
            let (key, chunk) = item?;
            let rest = KeyReader::new(&key, keys::OPS)?.rest();
            let hash: [u8; 32] = rest
                .get(..32)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| Error::corrupt("payload key is too short"))?;
            let number = KeyReader::new(&rest[32..], b"")?.u64()?;
            let full = page.len() == limit;
            let payload = match page.last_mut() {
                Some(last) if last.hash == hash => last,
                _ if full => break,
                _ => {
                    page.push(Payload {
                        hash,
                        chunks: Vec::new(),
                        ops: Ok(Vec::new()),
                    });
                    page.last_mut()
                        .ok_or_else(|| Error::corrupt("payload page is empty"))?
                }
            };
            payload.chunks.push(number);
            if let Ok(ops) = &mut payload.ops
                && let Err(error) = super::index_tables::split_chunk(&chunk, ops)
            {
                payload.ops = Err(error);
            }
        }
        Ok(page)
    }

    /// Deletes the stash.
    pub(crate) fn clear_stash(&mut self) -> Result<()> {
        self.clear_family(keys::STASH)
    }

    fn clear_family(&mut self, family: &[u8]) -> Result<()> {
        let end = prefix_end(family);
        loop {
            let keys: Vec<Vec<u8>> = self
                .kv
                .scan(family, &end)?
                .take(CLEAR_STEP)
                .map(|item| item.map(|(key, _)| key))
                .collect::<Result<_>>()?;
            if keys.is_empty() {
                return Ok(());
            }
            let mut batch = Batch::default();
            for key in &keys {
                batch.delete(key);
            }
            self.kv.write(batch, Durability::Flushed)?;
        }
    }
}

/// Whether `key` is a record derived from the nodes (the node records too: they are
/// stashed first, and replayed).
pub(crate) fn is_derived(key: &[u8]) -> bool {
    key == keys::META_LATEST
        || key == keys::META_MERGING
        || DERIVED.iter().any(|family| key.starts_with(family))
}

fn stash_key(order: u64, key: &str) -> Vec<u8> {
    KeyBuf::new(keys::STASH)
        .u64(order)
        .raw(key.as_bytes())
        .finish()
}

impl WriteSet {
    /// Stashes node `key` to be replayed at position `order`.
    pub(crate) fn stash_node(&mut self, order: u64, key: &str, bytes: &[u8]) {
        self.batch.put(&stash_key(order, key), bytes);
    }

    /// Deletes the chunks numbered `chunks` of a payload.
    pub(crate) fn delete_ops(&mut self, hash: &[u8; 32], chunks: impl IntoIterator<Item = u64>) {
        for chunk in chunks {
            let key = KeyBuf::new(keys::OPS).raw(hash).u64(chunk).finish();
            self.batch.delete(&key);
        }
    }
}
