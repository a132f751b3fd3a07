//! Version records: what the index keeps about each indexed commit (a version), by its
//! index sequence number.

use prost::Message;

use super::ancestry::Seqs;
use crate::error::{Error, Result};
use crate::proto::strata::VersionRecord;

/// How many intervals a record may add to its base's excluded set before it stores its own
/// complete set instead, so that reading an ancestry is at most two records.
pub(crate) const MAX_ADDED_EXCLUSIONS: usize = 32;

/// A decoded version record with its iseq.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The commit's index sequence number (it is in the key, not the stored bytes).
    pub iseq: u64,
    /// The stored message.
    pub inner: VersionRecord,
}

impl Record {
    /// Decodes the stored bytes of the record of `iseq`.
    pub fn decode(iseq: u64, bytes: &[u8]) -> Result<Record> {
        let inner = VersionRecord::decode(bytes)
            .map_err(|e| Error::corrupt(format!("version record {iseq}: {e}")))?;
        Ok(Record { iseq, inner })
    }

    /// The stored bytes (the iseq is in the key).
    pub fn encode(&self) -> Vec<u8> {
        self.inner.encode_to_vec()
    }

    /// The excluded intervals this record stores (complete, or added to its base's).
    pub(crate) fn excluded_here(&self) -> Seqs {
        Seqs::from_pairs(&self.inner.excluded)
    }

    /// The first parent's iseq.
    pub(crate) fn first_parent(&self) -> Option<u64> {
        self.inner.parents.first().copied()
    }
}
