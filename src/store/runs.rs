//! Changelog runs: the change index and the per-log changelogs, stored a batch at a time.
//!
//! A write of n nodes takes n consecutive change numbers and, per log, consecutive sequence
//! numbers, so each is stored as one record per batch (a *run*, at most [`MAX_RUN`] long)
//! keyed by its first number, descending. A forward seek to `desc(n)` lands on the run
//! holding `n`, and a seek to `desc(u64::MAX)` on the newest run, which gives the counters
//! without storing them. This keeps LevelDB's work per node to one record (the node
//! itself) instead of three.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use prost::encoding::{decode_varint, encode_varint};

use super::keys::{self, KeyBuf, KeyReader};
use super::kv::{Batch, Kv, prefix_end};
use crate::error::{Error, Result};
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};

/// One slot of a per-log changelog: which node sits at a `(log, seq)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node's local change number.
    pub change: u64,
    /// The node's key.
    pub node: String,
    /// The other logs the node's links live in ("log links"), so a replication peer can
    /// advertise those logs before it sends this node.
    pub links: Vec<String>,
}

impl Entry {
    /// hyperlog's `Entry` encoding (its declaration order is its tag order).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.node.len() + 40 * self.links.len() + 8);
        put_varint(&mut buf, 1, self.change);
        put_bytes(&mut buf, 2, self.node.as_bytes());
        for link in &self.links {
            put_bytes(&mut buf, 3, link.as_bytes());
        }
        buf
    }

    /// Decodes a stored entry; fields in any order, unknown fields refused.
    pub fn decode(bytes: &[u8]) -> Result<Entry> {
        const WHAT: &str = "log entry";
        let mut reader = FieldReader::new(bytes, WHAT);
        let (mut change, mut node, mut links) = (None, None, Vec::new());
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => change = Some(field.varint(&reader, number)?),
                2 => node = Some(field.string(&reader, number)?),
                3 => links.push(field.string(&reader, number)?),
                // hyperlog declares log and seq but never stores them; accept them.
                4 => drop(field.string(&reader, number)?),
                5 => drop(field.varint(&reader, number)?),
                _ => return Err(reader.unexpected(number)),
            }
        }
        Ok(Entry {
            change: required(change, WHAT, "change")?,
            node: required(node, WHAT, "node")?,
            links,
        })
    }
}

/// The longest run one record holds; longer batches are split.
pub(crate) const MAX_RUN: usize = 1024;

const FIXED_WIDTH: u8 = 0;
const VARIABLE_WIDTH: u8 = 1;

fn bad(what: &str) -> Error {
    Error::corrupt(format!("changelog run: {what}"))
}

/// Takes one varint-length-prefixed item off the front of `rest`.
fn take_prefixed<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8]> {
    let len = decode_varint(rest).map_err(|_| bad(&format!("bad {what} length")))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= rest.len())
        .ok_or_else(|| bad(&format!("{what} runs past the end")))?;
    let (item, tail) = rest.split_at(len);
    *rest = tail;
    Ok(item)
}

/// Encodes node keys; keys of one length (the usual case) are stored back to back so one
/// can be found without parsing the others.
pub fn encode_keys(keys: &[&str]) -> Vec<u8> {
    let width = keys.first().map_or(0, |k| k.len());
    let mut buf = Vec::with_capacity(keys.len() * width + 4);
    if keys.iter().all(|k| k.len() == width) {
        buf.push(FIXED_WIDTH);
        encode_varint(width as u64, &mut buf);
        keys.iter()
            .for_each(|k| buf.extend_from_slice(k.as_bytes()));
    } else {
        buf.push(VARIABLE_WIDTH);
        for key in keys {
            encode_varint(key.len() as u64, &mut buf);
            buf.extend_from_slice(key.as_bytes());
        }
    }
    buf
}

/// The node keys of a run from position `from` on.
pub fn decode_keys(record: &[u8], from: usize) -> Result<Vec<String>> {
    decode_some_keys(record, from, usize::MAX)
}

/// At most `limit` node keys of a run from position `from` on (a run holds up to 1,024,
/// and a reader after one key should not decode them all).
fn decode_some_keys(record: &[u8], from: usize, limit: usize) -> Result<Vec<String>> {
    let (&kind, mut rest) = record.split_first().ok_or_else(|| bad("empty"))?;
    let text =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| bad("key is not UTF-8"));
    match kind {
        FIXED_WIDTH => {
            let width = usize::try_from(decode_varint(&mut rest).map_err(|_| bad("bad width"))?)
                .map_err(|_| bad("bad width"))?;
            if width == 0 && rest.is_empty() {
                return Ok(Vec::new());
            }
            if width == 0 || rest.len() % width != 0 {
                return Err(bad("length is not a multiple of the key width"));
            }
            rest.chunks(width)
                .skip(from)
                .take(limit)
                .map(text)
                .collect()
        }
        VARIABLE_WIDTH => {
            let mut keys = Vec::new();
            let mut index = 0;
            while !rest.is_empty() && keys.len() < limit {
                let key = take_prefixed(&mut rest, "key")?;
                // Node keys are hashes, never empty; empty keys would also write back as
                // the run of no keys (fixed width 0), so a record holding one is damage.
                if key.is_empty() {
                    return Err(bad("empty key"));
                }
                if index >= from {
                    keys.push(text(key)?);
                }
                index += 1;
            }
            Ok(keys)
        }
        _ => Err(bad("unknown kind")),
    }
}

/// A set of node keys kept as one run record (the graph's heads, the index's heads).
pub(crate) fn encode_key_set(keys: &BTreeSet<String>) -> Vec<u8> {
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    encode_keys(&refs)
}

/// The set of node keys stored as one run record under `key` (empty when it is absent).
pub(crate) fn read_key_set(kv: &mut Kv, key: &[u8]) -> Result<BTreeSet<String>> {
    match kv.get(key)? {
        Some(record) if !record.is_empty() => Ok(decode_keys(&record, 0)?.into_iter().collect()),
        _ => Ok(BTreeSet::new()),
    }
}

/// How many keys a run record holds.
pub fn key_count(record: &[u8]) -> Result<u64> {
    match record.split_first() {
        Some((&FIXED_WIDTH, mut rest)) => {
            let width = decode_varint(&mut rest).map_err(|_| bad("bad width"))?;
            match width {
                0 if rest.is_empty() => Ok(0),
                0 => Err(bad("zero width")),
                width => Ok(rest.len() as u64 / width),
            }
        }
        Some((&VARIABLE_WIDTH, rest)) => count_prefixed(rest, "key"),
        _ => Err(bad("unknown kind")),
    }
}

/// Encodes a run of changelog entries, each length-prefixed.
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(entries.len() * 80);
    for entry in entries {
        let encoded = entry.encode();
        encode_varint(encoded.len() as u64, &mut buf);
        buf.extend_from_slice(&encoded);
    }
    buf
}

/// How many length-prefixed items follow, without decoding them.
fn count_prefixed(mut rest: &[u8], what: &str) -> Result<u64> {
    let mut count = 0;
    while !rest.is_empty() {
        take_prefixed(&mut rest, what)?;
        count += 1;
    }
    Ok(count)
}

/// The entries of a run written by [`encode_entries`].
pub fn decode_entries(mut record: &[u8]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    while !record.is_empty() {
        entries.push(Entry::decode(take_prefixed(&mut record, "entry")?)?);
    }
    Ok(entries)
}

/// The run whose first number is the largest at or below `n`, under `prefix`.
pub(crate) fn floor(kv: &mut Kv, prefix: &[u8], n: u64) -> Result<Option<(u64, Vec<u8>)>> {
    let start = KeyBuf::new(prefix).u64_desc(n).finish();
    let end = prefix_end(prefix);
    match kv.scan(&start, &end)?.next().transpose()? {
        Some((key, record)) => {
            let mut reader = KeyReader::new(&key, prefix)?;
            let first = reader.u64_desc()?;
            Ok(Some((first, record)))
        }
        None => Ok(None),
    }
}

/// The prefix of one log's runs.
pub(crate) fn log_prefix(log: &str) -> Vec<u8> {
    KeyBuf::new(keys::LOGS).bytes(log.as_bytes()).finish()
}

/// The last change number stored (0 when empty).
pub(crate) fn last_change(kv: &mut Kv) -> Result<u64> {
    match floor(kv, keys::CHANGES, u64::MAX)? {
        Some((first, record)) => Ok(first + key_count(&record)? - 1),
        None => Ok(0),
    }
}

/// The last sequence number of `log` (0 when this repository holds none of it).
pub(crate) fn last_seq(kv: &mut Kv, log: &str) -> Result<u64> {
    match floor(kv, &log_prefix(log), u64::MAX)? {
        Some((first, record)) => Ok(first + count_prefixed(&record, "entry")? - 1),
        None => Ok(0),
    }
}

/// Node keys from change `from` on, at most `limit` of them, in change order; `run_at`
/// gives the run of the change index holding a change (as [`floor`] finds it).
pub(crate) fn keys_from(
    from: u64,
    limit: usize,
    mut run_at: impl FnMut(u64) -> Result<Option<(u64, Arc<Vec<u8>>)>>,
) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let mut next = from;
    while out.len() < limit {
        let Some((first, record)) = run_at(next)? else {
            break;
        };
        let offset = usize::try_from(next - first).map_err(|_| bad("offset"))?;
        let keys = decode_some_keys(&record, offset, limit - out.len())?;
        if keys.is_empty() {
            break;
        }
        for key in keys {
            out.push((next, key));
            next += 1;
        }
    }
    Ok(out)
}

/// Entries of `log` from seq `from` on, at most `limit` of them, in seq order.
pub(crate) fn entries_from(
    kv: &mut Kv,
    log: &str,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Entry)>> {
    let prefix = log_prefix(log);
    let mut out = Vec::new();
    let mut next = from;
    while out.len() < limit {
        let Some((first, record)) = floor(kv, &prefix, next)? else {
            break;
        };
        let offset = usize::try_from(next - first).map_err(|_| bad("offset"))?;
        let entries = decode_entries(&record)?;
        if offset >= entries.len() {
            break;
        }
        for entry in entries.into_iter().skip(offset) {
            if out.len() == limit {
                break;
            }
            out.push((next, entry));
            next += 1;
        }
    }
    Ok(out)
}

/// The entry at `(log, seq)`.
pub(crate) fn entry_at(kv: &mut Kv, log: &str, seq: u64) -> Result<Option<Entry>> {
    match floor(kv, &log_prefix(log), seq)? {
        Some((first, record)) => {
            let index = usize::try_from(seq - first).map_err(|_| bad("offset"))?;
            Ok(decode_entries(&record)?.into_iter().nth(index))
        }
        None => Ok(None),
    }
}

/// The runs a write adds: the new changes, and each log's new entries.
#[derive(Default)]
pub(crate) struct NewRuns {
    first_change: u64,
    keys: Vec<String>,
    logs: HashMap<String, (u64, Vec<Entry>)>,
}

impl NewRuns {
    pub fn new(first_change: u64) -> NewRuns {
        NewRuns {
            first_change,
            ..NewRuns::default()
        }
    }

    pub fn add_change(&mut self, key: &str) {
        self.keys.push(key.to_string());
    }

    /// Adds an entry at `seq`, which must follow the log's previous entry in this write.
    pub fn add_entry(&mut self, log: &str, seq: u64, entry: Entry) {
        self.logs
            .entry(log.to_string())
            .or_insert_with(|| (seq, Vec::new()))
            .1
            .push(entry);
    }

    /// The entry this write already holds at `(log, seq)`.
    pub fn entry(&self, log: &str, seq: u64) -> Option<&Entry> {
        let (first, entries) = self.logs.get(log)?;
        entries.get(usize::try_from(seq.checked_sub(*first)?).ok()?)
    }

    /// The last seq this write gives `log`, if it gives it any.
    pub fn last_seq(&self, log: &str) -> Option<u64> {
        self.logs
            .get(log)
            .map(|(first, entries)| first + entries.len() as u64 - 1)
    }

    /// Puts the runs into `batch`; returns each log's last seq after the write.
    pub fn write_to(self, batch: &mut Batch) -> Vec<(String, u64)> {
        let mut first = self.first_change;
        for chunk in self.keys.chunks(MAX_RUN) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            batch.put(&keys::change(first), &encode_keys(&refs));
            first += chunk.len() as u64;
        }
        let mut last_seqs = Vec::with_capacity(self.logs.len());
        for (log, (first_seq, entries)) in self.logs {
            let mut seq = first_seq;
            for chunk in entries.chunks(MAX_RUN) {
                batch.put(&keys::log_entry(&log, seq), &encode_entries(chunk));
                seq += chunk.len() as u64;
            }
            last_seqs.push((log, seq - 1));
        }
        last_seqs
    }
}
