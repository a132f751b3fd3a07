//! Typed access to the version index's key families: row entries, version records, the
//! node → version map, pending commits and what they wait for, the index's heads, the
//! dataset names, commit payloads and the index's own counters.
//!
//! Values are bytes the version index encodes itself (this module knows keys, not what a
//! row entry or a version record means), except payload chunks, which are the commit's
//! operations exactly as hashed, each length-prefixed.
//!
//! About 700 lines: one accessor per family, each short, plus the read-ahead of row
//! entries and the format 2 upgrade of the heads; split by family they would all need the
//! same key helpers and the memo (`memo.rs`), which is where their reads are cached.

use std::collections::BTreeSet;
use std::ops::Bound;

use prost::encoding::{decode_varint, encode_varint};

use super::checkpoint::{self, Checkpointed};
use super::keys::{self, KeyBuf, KeyReader};
use super::kv::{Durability, prefix_end};
use super::memo::{self, Memo, WaitKey};
use super::{Tables, WriteSet, runs};
use crate::error::{Error, Result};

/// What a pending commit waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A parent commit (named by node key) that is not indexed yet.
    Parent,
    /// Its payload (named by operations hash).
    Payload,
}

impl Wait {
    fn byte(self) -> u8 {
        match self {
            Wait::Parent => 0,
            Wait::Payload => 1,
        }
    }

    /// The wait as the memo holds it: kind, target as bytes, change; `None` for a target
    /// the memo cannot hold (see [`memo::raw_target`]).
    fn memo_key(self, target: &str, change: u64) -> Option<WaitKey> {
        memo::raw_target(target).map(|raw| (usize::from(self.byte()), raw, change))
    }
}

/// The entries of one row read by a range scan: `(iseq, encoded entry)`, newest first.
/// `complete` is false when the row has more entries than the scan collected.
#[derive(Debug)]
pub(crate) struct RowScan {
    pub key: Vec<u8>,
    pub entries: Vec<(u64, Vec<u8>)>,
    pub complete: bool,
}

/// How many of a row's newest entries [`Tables::read_rows_ahead`] keeps (a row with more
/// is read again when more are asked for), and how many bytes in all (rows past that are
/// read when asked for): rows can be large.
const ENTRIES_AHEAD: usize = 4;
const BYTES_AHEAD: usize = 16 << 20;

/// How many operations one payload chunk holds at most (and about how many bytes). A
/// chunk is one record, and the engine caches whole blocks counted, not weighed (see
/// `kv.rs`), so chunks are kept small enough that a cache full of them stays small.
const OPS_PER_CHUNK: usize = 1024;
const CHUNK_BYTES: usize = 4 << 10;

fn row_prefix(dataset: &[u8], key: &[u8]) -> KeyBuf {
    KeyBuf::new(keys::ROWS).bytes(dataset).bytes(key)
}

/// The waits of one kind.
fn waits_of_kind(wait: Wait) -> KeyBuf {
    KeyBuf::new(keys::WAITS).raw(&[wait.byte()])
}

/// The waits of one kind for one target.
fn wait_prefix(wait: Wait, target: &str) -> KeyBuf {
    waits_of_kind(wait).bytes(target.as_bytes())
}

fn u64_value(value: &[u8], what: &str) -> Result<u64> {
    keys::decode_u64(value, what)
}

/// Writes a commit's operations as payload chunks one operation at a time, so that a
/// payload too large to hold in memory can be spread over several writes: each chunk goes
/// into the write that is current when it fills.
pub(crate) struct PayloadWriter {
    hash: [u8; 32],
    chunk: Vec<u8>,
    in_chunk: usize,
    next: u64,
}

impl PayloadWriter {
    pub(crate) fn new(hash: [u8; 32]) -> PayloadWriter {
        PayloadWriter {
            hash,
            chunk: Vec::new(),
            in_chunk: 0,
            next: 0,
        }
    }

    /// Adds one operation; true when it completed a chunk (then stored in `write`).
    pub(crate) fn push(&mut self, write: &mut WriteSet, op: &[u8]) -> bool {
        encode_varint(op.len() as u64, &mut self.chunk);
        self.chunk.extend_from_slice(op);
        self.in_chunk += 1;
        let full = self.in_chunk == OPS_PER_CHUNK || self.chunk.len() >= CHUNK_BYTES;
        if full {
            self.flush(write);
        }
        full
    }

    /// Stores the last chunk (a payload of no operations is one empty chunk).
    pub(crate) fn finish(mut self, write: &mut WriteSet) {
        if self.in_chunk > 0 || self.next == 0 {
            self.flush(write);
        }
    }

    fn flush(&mut self, write: &mut WriteSet) {
        let key = KeyBuf::new(keys::OPS)
            .raw(&self.hash)
            .u64(self.next)
            .finish();
        write.batch.put(&key, &self.chunk);
        self.chunk.clear();
        self.in_chunk = 0;
        self.next += 1;
    }
}

/// A merge being written in several writes: the iseq its row entries are written under
/// before its version record lands, its operations hash, and whether that payload was
/// stored before the merge began (then it is not the merge's to delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MergeMark {
    pub iseq: u64,
    pub hash: [u8; 32],
    pub payload_was_here: bool,
}

impl Tables {
    // ---- row entries ----

    /// Reads ahead the newest entries of each of `rows` (dataset, key) in one forward walk
    /// in key order, for the [`Tables::row_entries`] calls that follow until the next
    /// write: a commit's rows are read once, in key order, instead of with a seek each in
    /// the order they come, once for the plan and again for the index. The caller bounds
    /// how many rows it asks for at once.
    pub(crate) fn read_rows_ahead<'r>(
        &mut self,
        rows: impl IntoIterator<Item = (&'r [u8], &'r [u8])>,
    ) -> Result<()> {
        let mut prefixes: Vec<Vec<u8>> = rows
            .into_iter()
            .map(|(dataset, key)| row_prefix(dataset, key).finish())
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        self.kv.read_ahead(&prefixes, ENTRIES_AHEAD, BYTES_AHEAD)
    }

    /// The entries of a row with index sequence at most `bound`, newest first, at most
    /// `limit` of them.
    pub(crate) fn row_entries(
        &mut self,
        dataset: &[u8],
        key: &[u8],
        bound: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let prefix = row_prefix(dataset, key);
        let family = prefix.clone().finish();
        if let Some(ahead) = self.kv.ahead(&family) {
            // Entry keys end in the descending iseq: newest first, as a scan finds them.
            let mut out = Vec::new();
            for (entry, value) in &ahead.records {
                if out.len() == limit {
                    break;
                }
                let iseq = iseq_under(entry, &family)?;
                if iseq <= bound {
                    out.push((iseq, value.clone()));
                }
            }
            if out.len() == limit || ahead.complete {
                return Ok(out);
            }
        }
        let end = prefix_end(&family);
        let start = prefix.u64_desc(bound).finish();
        let mut out = Vec::new();
        for item in self.kv.scan(&start, &end)?.take(limit) {
            let (entry, value) = item?;
            let iseq = iseq_under(&entry, &family)?;
            out.push((iseq, value));
        }
        Ok(out)
    }

    /// The entry of a row written by version `iseq`, if any: one point read.
    pub(crate) fn row_entry(
        &mut self,
        dataset: &[u8],
        key: &[u8],
        iseq: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.kv
            .get(&row_prefix(dataset, key).u64_desc(iseq).finish())
    }

    /// Rows of `dataset` in key order from `start`, up to `end`, with their entries (at
    /// most `per_row` each, newest first): at most `limit` rows.
    pub(crate) fn rows_page(
        &mut self,
        dataset: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
        per_row: usize,
    ) -> Result<Vec<RowScan>> {
        let family = KeyBuf::new(keys::ROWS).bytes(dataset).finish();
        let family_end = prefix_end(&family);
        let first = match start {
            Bound::Unbounded => family.clone(),
            Bound::Included(key) => row_prefix(dataset, key).finish(),
            Bound::Excluded(key) => prefix_end(&row_prefix(dataset, key).finish()),
        };
        let mut rows: Vec<RowScan> = Vec::new();
        let mut scan = self.kv.scan(&first, &family_end)?;
        while let Some(item) = scan.next() {
            let (entry, value) = item?;
            let mut reader = KeyReader::new(&entry, &family)?;
            let key = reader.bytes()?;
            let iseq = reader.u64_desc()?;
            let past_end = match end {
                Bound::Unbounded => false,
                Bound::Included(last) => key.as_slice() > last,
                Bound::Excluded(last) => key.as_slice() >= last,
            };
            if past_end {
                break;
            }
            match rows.last_mut() {
                Some(row) if row.key == key => {
                    if row.entries.len() == per_row {
                        // A row with a long history: skip the rest of it in one seek.
                        row.complete = false;
                        scan.seek(&prefix_end(&row_prefix(dataset, &key).finish()));
                        continue;
                    }
                    row.entries.push((iseq, value));
                }
                _ => {
                    if rows.len() == limit {
                        break;
                    }
                    rows.push(RowScan {
                        key,
                        entries: vec![(iseq, value)],
                        complete: true,
                    });
                }
            }
        }
        Ok(rows)
    }

    /// Whether `dataset` has any row entry at all, at any version.
    pub(crate) fn dataset_has_entries(&mut self, dataset: &[u8]) -> Result<bool> {
        let family = KeyBuf::new(keys::ROWS).bytes(dataset).finish();
        Ok(self.kv.scan_prefix(&family)?.next().transpose()?.is_some())
    }

    // ---- versions ----

    /// The record of the version with index sequence `iseq`.
    pub(crate) fn version_record(&mut self, iseq: u64) -> Result<Option<Vec<u8>>> {
        if let Some(record) = self.memo().and_then(|memo| memo.record(iseq)) {
            return Ok(Some(record.to_vec()));
        }
        self.kv
            .get(&KeyBuf::new(keys::VERSIONS).u64_desc(iseq).finish())
    }

    /// The highest index sequence number used (0 when nothing is indexed).
    pub(crate) fn last_iseq(&mut self) -> Result<u64> {
        if let Some(last) = self.memo().and_then(|memo| memo.last_iseq) {
            return Ok(last);
        }
        let last = match self.kv.scan_prefix(keys::VERSIONS)?.next().transpose()? {
            Some((key, _)) => KeyReader::new(&key, keys::VERSIONS)?.u64_desc()?,
            None => 0,
        };
        self.remember(|memo| memo.last_iseq = Some(last));
        Ok(last)
    }

    /// The index sequence number of indexed commit `node`.
    pub(crate) fn iseq_of(&mut self, node: &str) -> Result<Option<u64>> {
        if let Some(iseq) = self.memo().and_then(|memo| memo.iseq_of(node)) {
            return Ok(Some(iseq));
        }
        match self
            .kv
            .get(&KeyBuf::new(keys::VERSION_OF).raw(node.as_bytes()).finish())?
        {
            Some(value) => u64_value(&value, "version number").map(Some),
            None => Ok(None),
        }
    }

    // ---- pending commits ----

    /// Whether commit `change` is pending.
    pub(crate) fn is_pending(&mut self, change: u64) -> Result<bool> {
        self.kv
            .contains(&KeyBuf::new(keys::PENDING).u64(change).finish())
    }

    /// Every pending commit's change number, in order.
    pub(crate) fn pending_changes(&mut self) -> Result<Vec<u64>> {
        self.kv
            .scan_prefix(keys::PENDING)?
            .map(|item| KeyReader::new(&item?.0, keys::PENDING)?.u64())
            .collect()
    }

    /// The pending commits that wait for `target`, in change order.
    pub(crate) fn waiters(&mut self, wait: Wait, target: &str) -> Result<Vec<u64>> {
        if self.kv.is_live() && self.memo.waits_unread() {
            let all = self.every_wait()?;
            self.memo.set_waits(all);
        }
        if let Some(found) = self
            .memo()
            .and_then(|memo| memo.waiters(usize::from(wait.byte()), target))
        {
            return Ok(found);
        }
        let prefix = wait_prefix(wait, target).finish();
        self.kv
            .scan_prefix(&prefix)?
            .map(|item| {
                let (key, _) = item?;
                let (_, change) = key.split_at(prefix.len());
                KeyReader::new(change, b"")?.u64()
            })
            .collect()
    }

    /// Every wait, or `None` past the memo's limit or for a target it cannot hold.
    fn every_wait(&mut self) -> Result<Option<BTreeSet<WaitKey>>> {
        let mut all = BTreeSet::new();
        for wait in [Wait::Parent, Wait::Payload] {
            let prefix = waits_of_kind(wait).finish();
            for item in self.kv.scan_prefix(&prefix)? {
                let (key, _) = item?;
                let mut reader = KeyReader::new(&key, &prefix)?;
                let target = reader.bytes()?;
                let change = reader.u64()?;
                let held = std::str::from_utf8(&target)
                    .ok()
                    .and_then(|target| wait.memo_key(target, change));
                match held {
                    Some(held) if all.len() < memo::WAITS => all.insert(held),
                    _ => return Ok(None),
                };
            }
        }
        Ok(Some(all))
    }

    /// Targets of `wait` that pending commits wait for, at most `limit`, in key order.
    pub(crate) fn waited_for(&mut self, wait: Wait, limit: usize) -> Result<Vec<String>> {
        let prefix = waits_of_kind(wait).finish();
        let mut targets: Vec<String> = Vec::new();
        for item in self.kv.scan_prefix(&prefix)? {
            let (key, _) = item?;
            let target = KeyReader::new(&key, &prefix)?.bytes()?;
            let target = String::from_utf8(target)
                .map_err(|_| Error::corrupt("wait target is not UTF-8"))?;
            if targets.last() != Some(&target) {
                if targets.len() == limit {
                    break;
                }
                targets.push(target);
            }
        }
        Ok(targets)
    }

    // ---- the index's heads, datasets, payloads, counters ----

    /// The version index's heads, ordered by key, once loaded (see
    /// `dataset::index::tips`).
    pub(crate) fn loaded_tips(&self) -> Option<&BTreeSet<String>> {
        self.tips.as_ref().map(Checkpointed::set)
    }

    /// The stored checkpoint of the version index's heads: the heads as of an index
    /// sequence number, and that number.
    pub(crate) fn tips_checkpoint(&mut self) -> Result<(BTreeSet<String>, u64)> {
        checkpoint::TIPS.read(&mut self.kv)
    }

    /// Keeps `tips`, current as of now, whose last checkpoint is as of index sequence
    /// number `as_of`.
    pub(crate) fn keep_tips(&mut self, tips: BTreeSet<String>, as_of: u64) {
        self.tips = Some(Checkpointed::new(tips, as_of));
    }

    /// Upgrades a format 2 repository to `format`, which stores the version index's heads
    /// in one record instead of a key each (the only difference): one atomic write deletes
    /// the keys, writes the record and the new format version. A read-only store makes the
    /// change in memory only, so it reads the repository the same way.
    pub(crate) fn upgrade_from_format_2(&mut self, format: u64) -> Result<()> {
        let mut tips = BTreeSet::new();
        let mut write = WriteSet::default();
        for item in self.kv.scan_prefix(keys::TIPS_FORMAT_2)? {
            let (key, _) = item?;
            let raw = KeyReader::new(&key, keys::TIPS_FORMAT_2)?.rest();
            tips.insert(
                String::from_utf8(raw.to_vec())
                    .map_err(|_| Error::corrupt("head key is not UTF-8"))?,
            );
            write.batch.delete(&key);
        }
        write.batch.put(keys::TIPS, &runs::encode_key_set(&tips));
        write
            .batch
            .put(keys::META_FORMAT, &keys::encode_u64(format));
        // The heads are loaded from the new record on first use (`upgrade_from_format_3`
        // makes it a checkpoint).
        self.commit_derived(write, Durability::Synced)
    }

    /// Every dataset ever written to, in byte order.
    pub(crate) fn datasets(&mut self) -> Result<Vec<Vec<u8>>> {
        self.kv
            .scan_prefix(keys::DATASETS)?
            .map(|item| KeyReader::new(&item?.0, keys::DATASETS)?.bytes())
            .collect()
    }

    /// A commit's stored operations (in order), if its payload is here.
    pub(crate) fn ops(&mut self, hash: &[u8; 32]) -> Result<Option<Vec<Vec<u8>>>> {
        Ok(self.ops_until(hash, usize::MAX)?.map(|(ops, _)| ops))
    }

    /// A commit's stored operations (in order), if its payload is here, read only until
    /// there are more than `most`; with whether they are all of them.
    pub(crate) fn ops_until(
        &mut self,
        hash: &[u8; 32],
        most: usize,
    ) -> Result<Option<(Vec<Vec<u8>>, bool)>> {
        let prefix = KeyBuf::new(keys::OPS).raw(hash).finish();
        let mut ops = Vec::new();
        let mut chunks = 0;
        for item in self.kv.scan_prefix(&prefix)? {
            let (_, chunk) = item?;
            chunks += 1;
            split_chunk(&chunk, &mut ops)?;
            if ops.len() > most {
                return Ok(Some((ops, false)));
            }
        }
        Ok((chunks > 0).then_some((ops, true)))
    }

    /// Whether a commit's payload is stored here.
    pub(crate) fn has_ops(&mut self, hash: &[u8; 32]) -> Result<bool> {
        let prefix = KeyBuf::new(keys::OPS).raw(hash).finish();
        Ok(self.kv.scan_prefix(&prefix)?.next().transpose()?.is_some())
    }

    /// Chunk `number` of a commit's stored operations (in order), if it is stored.
    pub(crate) fn ops_chunk(
        &mut self,
        hash: &[u8; 32],
        number: u64,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(chunk) = self
            .kv
            .get(&KeyBuf::new(keys::OPS).raw(hash).u64(number).finish())?
        else {
            return Ok(None);
        };
        let mut ops = Vec::new();
        split_chunk(&chunk, &mut ops)?;
        Ok(Some(ops))
    }

    /// The mark of a merge that was being written in several writes, if one is left.
    pub(crate) fn merging(&mut self) -> Result<Option<MergeMark>> {
        let Some(value) = self.kv.get(keys::META_MERGING)? else {
            return Ok(None);
        };
        let malformed = || Error::corrupt("the mark of an unfinished merge is malformed");
        if value.len() != 8 + 32 + 1 {
            return Err(malformed());
        }
        let (iseq, rest) = value.split_at(8);
        let (hash, flag) = rest.split_at(32);
        Ok(Some(MergeMark {
            iseq: u64_value(iseq, "unfinished merge")?,
            hash: hash.try_into().map_err(|_| malformed())?,
            payload_was_here: match flag {
                [0] => false,
                [1] => true,
                _ => return Err(malformed()),
            },
        }))
    }

    /// The last change the index has followed.
    pub(crate) fn indexed_change(&mut self) -> Result<u64> {
        if let Some(change) = self.memo().and_then(|memo| memo.indexed) {
            return Ok(change);
        }
        let change = match self.kv.get(keys::META_INDEXED)? {
            Some(value) => u64_value(&value, "indexed change")?,
            None => 0,
        };
        self.remember(|memo| memo.indexed = Some(change));
        Ok(change)
    }

    /// The counters of the view at latest, as the index encoded them.
    pub(crate) fn latest_counters(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(counters) = self.memo().and_then(|memo| memo.latest.clone()) {
            return Ok(counters);
        }
        let counters = self.kv.get(keys::META_LATEST)?;
        self.remember(|memo| memo.latest = Some(counters.clone()));
        Ok(counters)
    }

    /// The persistent checkout, if one is set.
    pub(crate) fn checkout(&mut self) -> Result<Option<String>> {
        if let Some(checkout) = self.memo().and_then(|memo| memo.checkout.clone()) {
            return Ok(checkout);
        }
        let checkout = match self.kv.get(keys::META_CHECKOUT)? {
            Some(key) => {
                Some(String::from_utf8(key).map_err(|_| Error::corrupt("checkout is not UTF-8"))?)
            }
            None => None,
        };
        self.remember(|memo| memo.checkout = Some(checkout.clone()));
        Ok(checkout)
    }

    /// The memo of hot records, unless reads go to a pinned snapshot.
    pub(super) fn memo(&self) -> Option<&Memo> {
        self.kv.is_live().then_some(&self.memo)
    }

    /// Records what a live read found in the memo.
    pub(super) fn remember(&mut self, note: impl FnOnce(&mut Memo)) {
        if self.kv.is_live() {
            note(&mut self.memo);
        }
    }
}

/// The iseq of a row entry's key, checking that it lies under `prefix` (its row's).
fn iseq_under(entry: &[u8], prefix: &[u8]) -> Result<u64> {
    let rest = entry
        .strip_prefix(prefix)
        .ok_or_else(|| Error::corrupt("row entry outside its row"))?;
    KeyReader::new(rest, b"")?.u64_desc()
}

/// Appends the operations of one payload chunk (each length-prefixed) to `ops`.
pub(super) fn split_chunk(chunk: &[u8], ops: &mut Vec<Vec<u8>>) -> Result<()> {
    let mut rest = chunk;
    while !rest.is_empty() {
        let len = decode_varint(&mut rest)
            .ok()
            .and_then(|len| usize::try_from(len).ok())
            .filter(|&len| len <= rest.len())
            .ok_or_else(|| Error::corrupt("payload chunk is truncated"))?;
        let (op, tail) = rest.split_at(len);
        ops.push(op.to_vec());
        rest = tail;
    }
    Ok(())
}

impl WriteSet {
    /// Stores one version of a row, written by the commit with index sequence `iseq`.
    pub(crate) fn put_row_entry(&mut self, dataset: &[u8], key: &[u8], iseq: u64, entry: &[u8]) {
        let key = row_prefix(dataset, key).u64_desc(iseq).finish();
        self.batch.put(&key, entry);
    }

    /// Stores a version record and the node → version map entry.
    pub(crate) fn put_version(&mut self, iseq: u64, node: &str, record: &[u8]) {
        self.batch
            .put(&KeyBuf::new(keys::VERSIONS).u64_desc(iseq).finish(), record);
        self.batch.put(
            &KeyBuf::new(keys::VERSION_OF).raw(node.as_bytes()).finish(),
            &keys::encode_u64(iseq),
        );
        self.memo
            .versions
            .push((node.to_string(), iseq, record.to_vec()));
    }

    /// Marks commit `change` pending.
    pub(crate) fn put_pending(&mut self, change: u64) {
        self.batch
            .put(&KeyBuf::new(keys::PENDING).u64(change).finish(), b"");
    }

    /// Clears commit `change`'s pending mark.
    pub(crate) fn delete_pending(&mut self, change: u64) {
        self.batch
            .delete(&KeyBuf::new(keys::PENDING).u64(change).finish());
    }

    /// Records that pending commit `change` waits for `target`.
    pub(crate) fn put_wait(&mut self, wait: Wait, target: &str, change: u64) {
        self.batch
            .put(&wait_prefix(wait, target).u64(change).finish(), b"");
        self.memo.waits.push((true, wait.memo_key(target, change)));
    }

    /// Forgets that pending commit `change` waits for `target`.
    pub(crate) fn delete_wait(&mut self, wait: Wait, target: &str, change: u64) {
        self.batch
            .delete(&wait_prefix(wait, target).u64(change).finish());
        self.memo.waits.push((false, wait.memo_key(target, change)));
    }

    /// Makes `node`, indexed as `iseq`, a head of the version index.
    pub(crate) fn add_tip(&mut self, node: &str, iseq: u64) {
        self.tips.add(node, iseq);
    }

    /// Removes `node` from the version index's heads.
    pub(crate) fn remove_tip(&mut self, node: &str) {
        self.tips.remove(node);
    }

    /// Records a dataset name.
    pub(crate) fn put_dataset(&mut self, dataset: &[u8]) {
        self.batch
            .put(&KeyBuf::new(keys::DATASETS).bytes(dataset).finish(), b"");
    }

    /// Stores a commit's operations under their hash, in chunks.
    pub(crate) fn put_ops(&mut self, hash: &[u8; 32], ops: &[Vec<u8>]) {
        let mut payload = PayloadWriter::new(*hash);
        for op in ops {
            payload.push(self, op);
        }
        payload.finish(self);
    }

    /// Deletes the entry version `iseq` wrote for a row.
    pub(crate) fn delete_row_entry(&mut self, dataset: &[u8], key: &[u8], iseq: u64) {
        self.batch
            .delete(&row_prefix(dataset, key).u64_desc(iseq).finish());
    }

    /// Records that a merge is being written in several writes.
    pub(crate) fn put_merging(&mut self, mark: &MergeMark) {
        let mut value = keys::encode_u64(mark.iseq).to_vec();
        value.extend_from_slice(&mark.hash);
        value.push(u8::from(mark.payload_was_here));
        self.batch.put(keys::META_MERGING, &value);
    }

    /// Clears the mark of a merge written in several writes.
    pub(crate) fn delete_merging(&mut self) {
        self.batch.delete(keys::META_MERGING);
    }

    /// Moves the index's checkpoint to `change`.
    pub(crate) fn put_indexed_change(&mut self, change: u64) {
        self.batch
            .put(keys::META_INDEXED, &keys::encode_u64(change));
        self.memo.indexed = Some(change);
    }

    /// Stores the counters of the view at latest.
    pub(crate) fn put_latest_counters(&mut self, counters: &[u8]) {
        self.batch.put(keys::META_LATEST, counters);
        self.memo.latest = Some(counters.to_vec());
    }

    /// Sets (`Some`) or clears the persistent checkout.
    pub(crate) fn set_checkout(&mut self, node: Option<&str>) {
        match node {
            Some(node) => self.batch.put(keys::META_CHECKOUT, node.as_bytes()),
            None => self.batch.delete(keys::META_CHECKOUT),
        }
        self.memo.checkout = Some(node.map(str::to_string));
    }
}
