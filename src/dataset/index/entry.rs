//! Row entries: one version of one row, as stored in the version index.
//!
//! An entry is written for every row a commit sets (a put, a file or a delete), keyed by
//! the row and the commit's index sequence number, newest first. It carries the value
//! itself, so a read is one seek, and the version id of the commit that wrote it. Its
//! `covers_older` flag records, at indexing time, that every older entry of the row is in
//! the writing commit's ancestry: then no older entry can be concurrent with it, and a read
//! stops there. Only rows written concurrently lack the flag.

use crate::error::{Error, Result};

const DELETED: u8 = 1;
const FILE: u8 = 2;
const COVERS_OLDER: u8 = 4;
const VERSION_HEX: u8 = 0;
const VERSION_TEXT: u8 = 1;

/// One version of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowEntry {
    /// The index sequence number of the commit that wrote it.
    pub iseq: u64,
    /// The row is deleted in this version (a tombstone).
    pub deleted: bool,
    /// The value is an encoded `FileRef`.
    pub file: bool,
    /// Every older entry of this row is in the writer's ancestry.
    pub covers_older: bool,
    /// The writer's node key (the version id).
    pub version: String,
    /// The row's bytes, the encoded file reference, or empty for a delete.
    pub value: Vec<u8>,
}

impl RowEntry {
    /// The stored bytes (the iseq is in the key).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.value.len() + 40);
        buf.push(
            (u8::from(self.deleted) * DELETED)
                | (u8::from(self.file) * FILE)
                | (u8::from(self.covers_older) * COVERS_OLDER),
        );
        match raw_hash(&self.version) {
            Some(raw) => {
                buf.push(VERSION_HEX);
                buf.extend_from_slice(&raw);
            }
            None => {
                buf.push(VERSION_TEXT);
                prost::encoding::encode_varint(self.version.len() as u64, &mut buf);
                buf.extend_from_slice(self.version.as_bytes());
            }
        }
        buf.extend_from_slice(&self.value);
        buf
    }

    /// Decodes the stored bytes of the entry of the commit `iseq`.
    pub fn decode(iseq: u64, bytes: &[u8]) -> Result<RowEntry> {
        let (mut entry, value_at) = RowEntry::decode_head(iseq, bytes)?;
        entry.value = bytes[value_at..].to_vec();
        Ok(entry)
    }

    /// [`decode`](RowEntry::decode), keeping the stored bytes' buffer as the value's: a
    /// scan owns what it read, and a value is most of an entry.
    pub fn decode_owned(iseq: u64, mut bytes: Vec<u8>) -> Result<RowEntry> {
        let (mut entry, value_at) = RowEntry::decode_head(iseq, &bytes)?;
        bytes.drain(..value_at);
        entry.value = bytes;
        Ok(entry)
    }

    /// The entry without its value, and where the value starts in `bytes`.
    fn decode_head(iseq: u64, bytes: &[u8]) -> Result<(RowEntry, usize)> {
        let bad = |reason: &str| Error::corrupt(format!("row entry {iseq}: {reason}"));
        let [flags, tag, rest @ ..] = bytes else {
            return Err(bad("too short"));
        };
        let (version, value) = match *tag {
            VERSION_HEX => {
                let (raw, value) = rest
                    .split_first_chunk::<32>()
                    .ok_or_else(|| bad("short version"))?;
                (crate::graph::lower_hex(raw), value)
            }
            VERSION_TEXT => {
                let mut rest = rest;
                let len = prost::encoding::decode_varint(&mut rest)
                    .ok()
                    .and_then(|len| usize::try_from(len).ok())
                    .filter(|&len| len <= rest.len())
                    .ok_or_else(|| bad("bad version length"))?;
                let (text, value) = rest.split_at(len);
                let text =
                    String::from_utf8(text.to_vec()).map_err(|_| bad("version is not UTF-8"))?;
                (text, value)
            }
            _ => return Err(bad("unknown version tag")),
        };
        let entry = RowEntry {
            iseq,
            deleted: flags & DELETED != 0,
            file: flags & FILE != 0,
            covers_older: flags & COVERS_OLDER != 0,
            version,
            value: Vec::new(),
        };
        Ok((entry, bytes.len() - value.len()))
    }

    /// Whether the row is live (not deleted) in this version.
    pub(crate) fn live(&self) -> bool {
        !self.deleted
    }

    /// Whether two entries leave the row with the same content: both deleted, or the same
    /// kind (row or file) with the same bytes.
    pub(crate) fn same_content(&self, other: &RowEntry) -> bool {
        match (self.deleted, other.deleted) {
            (true, true) => true,
            (false, false) => self.file == other.file && self.value == other.value,
            _ => false,
        }
    }
}

/// The 32 raw bytes of a 64-character lowercase hex string.
pub(crate) fn raw_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut raw = [0u8; 32];
    hex::decode_to_slice(text, &mut raw).ok()?;
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_hex_and_text_versions() {
        for version in ["ab".repeat(32), "not-a-hash".to_string()] {
            let entry = RowEntry {
                iseq: 7,
                deleted: false,
                file: true,
                covers_older: true,
                version,
                value: b"\x00\xffvalue".to_vec(),
            };
            assert_eq!(RowEntry::decode(7, &entry.encode()).unwrap(), entry);
        }
        assert!(RowEntry::decode(1, &[0]).is_err());
        assert!(RowEntry::decode(1, &[0, 9, 1]).is_err());
    }
}
