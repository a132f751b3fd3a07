//! Every LevelDB key family strata writes, and the byte encoding of its parts.
//!
//! Keys compare bytewise. A key is a family prefix (readable ASCII such as `!log!!nodes!`,
//! named as in the 2015 dat-core DESIGN document) followed by typed parts:
//!
//! * user bytes (dataset names, row keys, log ids, node keys that are not the last part) are
//!   escaped: `0x00` becomes `0x00 0xff` and the part ends with `0x00 0x01`. The encoding is
//!   prefix-free and preserves order, so any bytes (`!`, `\xff`, empty, non-UTF-8) are safe
//!   and a scan over one part's range never strays into another's;
//! * numbers are 8 bytes big-endian (ascending) or their bitwise complement (descending, so a
//!   forward seek lands on the largest number at or below a bound);
//! * a node key in the last position is written raw, so prefix scans (`expand`) work on it.
//!
//! rusty-leveldb's reverse iteration is unreliable, so every "newest at or below n" lookup
//! is a forward seek over a descending encoding.
//!
//! `docs/format.md` lists every family byte by byte.

use crate::error::{Error, Result};

/// `!log!!nodes!<node key>` → the stored node (hyperlog `Node` protobuf).
pub const NODES: &[u8] = b"!log!!nodes!";
/// `!log!!changes!<u64 desc first change>` → a run of node keys: the nodes with change
/// numbers `first`, `first + 1`, … (one record per write; see `graph::runs`). Dense.
pub const CHANGES: &[u8] = b"!log!!changes!";
/// `!log!!heads` → the heads (nodes no other node links to) as of the change in
/// `HEADS_AS_OF`, as one run of keys (`graph::runs`): a checkpoint, rewritten every
/// `checkpoint::CHECKPOINT_EVERY` changes, so that a write's cost does not grow with the
/// number of heads. One record, not one per head: per-head keys would leave a tombstone per
/// former head for every scan to step over.
pub const HEADS: &[u8] = b"!log!!heads";
/// `!log!!heads!as-of` → u64: the change the heads checkpoint is as of (absent in format 3
/// and older, which rewrote the heads at every write).
pub const HEADS_AS_OF: &[u8] = b"!log!!heads!as-of";
/// `!log!!logs!<esc log id><u64 desc first seq>` → a run of hyperlog `Entry` protobufs
/// (each length-prefixed) for seqs `first`, `first + 1`, …. Dense per log.
pub const LOGS: &[u8] = b"!log!!logs!";
/// `!meta!log` → this repository's own log id (32 hex characters).
pub const META_LOG: &[u8] = b"!meta!log";
/// `!meta!format` → u64: the on-disk format version.
pub const META_FORMAT: &[u8] = b"!meta!format";

/// `!rows!<esc dataset><esc key><u64 desc iseq>` → row entry: one version of one row, as
/// the commit with index sequence `iseq` wrote it (see `version::entry`). All entries of a
/// row are adjacent, newest first, so a read at any version is one forward seek plus a
/// scan of that row's own entries, and a dataset's rows in key order are one scan.
pub const ROWS: &[u8] = b"!rows!";
/// `!versions!<u64 desc iseq>` → version record (protobuf `VersionRecord`): the indexed
/// commit with that index sequence number, its ancestry and its counters. Descending, so
/// the newest is the first key of the family.
pub const VERSIONS: &[u8] = b"!versions!";
/// `!version-of!<node key>` → u64 iseq: which indexed commit a node is.
pub const VERSION_OF: &[u8] = b"!version-of!";
/// `!pending!<u64 change>` → empty: commits stored but not yet indexed (a parent or their
/// payload has not arrived).
pub const PENDING: &[u8] = b"!pending!";
/// `!waits!<u8 kind><esc target><u64 change>` → empty: pending commit `change` waits for
/// `target` (kind 0: a parent commit's node key; kind 1: a payload hash), so an arrival
/// finds exactly its waiters.
pub const WAITS: &[u8] = b"!waits!";
/// `!tips` → the node keys (a key run, as `!log!!heads`) of the version index's heads
/// (indexed commits no indexed commit links to) as of the index sequence number in
/// `TIPS_AS_OF`: a checkpoint, rewritten every `checkpoint::CHECKPOINT_EVERY` iseqs (format
/// 3 rewrote it whenever the heads changed). One record, not a key per head: format 2 kept
/// a key per head and deleted it when the head was built on, so each commit left a
/// deletion marker right after the row entries, and every seek past a dataset's last row,
/// a new key, stepped over them until a compaction dropped them.
pub const TIPS: &[u8] = b"!tips";
/// `!tips-as-of` → u64: the index sequence number the `!tips` checkpoint is as of (absent
/// in format 3 and older).
pub const TIPS_AS_OF: &[u8] = b"!tips-as-of";
/// `!tips!<node key>` → empty: the heads as format 2 stored them, one key each; read only
/// to upgrade such a repository (see `Tables::upgrade_from_format_2`).
pub const TIPS_FORMAT_2: &[u8] = b"!tips!";
/// `!datasets!<esc dataset>` → empty: every dataset ever written to.
pub const DATASETS: &[u8] = b"!datasets!";
/// `!ops!<32-byte operations hash><u64 chunk>` → a chunk of a commit's operations, each
/// length-prefixed, in order.
pub const OPS: &[u8] = b"!ops!";
/// `!meta!indexed` → u64: every change up to this one has been followed by the index
/// (indexed, pending, or not a commit).
pub const META_INDEXED: &[u8] = b"!meta!indexed";
/// `!meta!latest` → counters of the view at latest (live rows and files, pending commits).
pub const META_LATEST: &[u8] = b"!meta!latest";
/// `!meta!merging` → u64 iseq, 32-byte operations hash, 1 byte (1: the payload was stored
/// before): a merge too large for one write is being written under that iseq; its row
/// entries and payload chunks are deleted on the next open if its version record never
/// landed. Absent otherwise.
pub const META_MERGING: &[u8] = b"!meta!merging";
/// `!repair!<u64 order><node key>` → node bytes: while `repair` runs, the nodes waiting
/// to be replayed, in the order they were first stored. Empty otherwise.
pub const STASH: &[u8] = b"!repair!";
/// `!meta!checkout` → node key: the persistent checkout, if any.
pub const META_CHECKOUT: &[u8] = b"!meta!checkout";

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xff;
const TERMINATOR: u8 = 0x01;

/// Builds one key, part by part.
#[derive(Clone, Debug)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    /// Starts a key of `family`.
    pub fn new(family: &[u8]) -> KeyBuf {
        let mut buf = Vec::with_capacity(family.len() + 48);
        buf.extend_from_slice(family);
        KeyBuf(buf)
    }

    /// Appends user bytes, escaped and terminated.
    pub fn bytes(mut self, part: &[u8]) -> KeyBuf {
        for &b in part {
            self.0.push(b);
            if b == ESCAPE {
                self.0.push(ESCAPED_ZERO);
            }
        }
        self.0.push(ESCAPE);
        self.0.push(TERMINATOR);
        self
    }

    /// Appends a number so that keys sort by it ascending.
    pub fn u64(mut self, n: u64) -> KeyBuf {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Appends a number so that keys sort by it descending.
    pub fn u64_desc(mut self, n: u64) -> KeyBuf {
        self.0.extend_from_slice(&(!n).to_be_bytes());
        self
    }

    /// Appends bytes as they are. Only for the last part of a key, or a part of fixed
    /// length.
    pub fn raw(mut self, part: &[u8]) -> KeyBuf {
        self.0.extend_from_slice(part);
        self
    }

    /// The key's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads the parts of a key back, in the order they were written.
pub struct KeyReader<'a> {
    rest: &'a [u8],
}

fn bad_key(reason: &str) -> Error {
    Error::corrupt(format!("bad index key: {reason}"))
}

impl<'a> KeyReader<'a> {
    /// Starts reading `key`, which must begin with `family`.
    pub fn new(key: &'a [u8], family: &[u8]) -> Result<KeyReader<'a>> {
        match key.strip_prefix(family) {
            Some(rest) => Ok(KeyReader { rest }),
            None => Err(bad_key("wrong family")),
        }
    }

    /// Reads an escaped part.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let Some(&b) = self.rest.get(i) else {
                return Err(bad_key("unterminated part"));
            };
            if b == ESCAPE {
                match self.rest.get(i + 1) {
                    Some(&ESCAPED_ZERO) => {
                        out.push(ESCAPE);
                        i += 2;
                    }
                    Some(&TERMINATOR) => {
                        self.rest = &self.rest[i + 2..];
                        return Ok(out);
                    }
                    _ => return Err(bad_key("bad escape")),
                }
            } else {
                out.push(b);
                i += 1;
            }
        }
    }

    /// Reads an ascending number.
    pub fn u64(&mut self) -> Result<u64> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad_key("short number"))?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*head))
    }

    /// Reads a descending number.
    pub fn u64_desc(&mut self) -> Result<u64> {
        self.u64().map(|n| !n)
    }

    /// The bytes left over (a raw last part).
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// Encodes a u64 value (counters) as 8 bytes big-endian.
pub fn encode_u64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Decodes a value written by [`encode_u64`].
pub fn decode_u64(value: &[u8], what: &str) -> Result<u64> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| Error::corrupt(format!("{what}: expected 8 bytes, found {}", value.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// `!log!!nodes!<key>`.
pub fn node(key: &str) -> Vec<u8> {
    KeyBuf::new(NODES).raw(key.as_bytes()).finish()
}

/// `!log!!changes!<first change of a run>`.
pub fn change(first: u64) -> Vec<u8> {
    KeyBuf::new(CHANGES).u64_desc(first).finish()
}

/// `!log!!logs!<log><first seq of a run>`.
pub fn log_entry(log: &str, first: u64) -> Vec<u8> {
    KeyBuf::new(LOGS)
        .bytes(log.as_bytes())
        .u64_desc(first)
        .finish()
}
