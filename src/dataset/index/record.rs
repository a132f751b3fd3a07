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
pub(crate) struct Record {
    pub iseq: u64,
    pub inner: VersionRecord,
}

impl Record {
    pub(crate) fn decode(iseq: u64, bytes: &[u8]) -> Result<Record> {
        let inner = VersionRecord::decode(bytes)
            .map_err(|e| Error::corrupt(format!("version record {iseq}: {e}")))?;
        Ok(Record { iseq, inner })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
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
