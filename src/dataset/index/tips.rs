//! The version index's heads ("tips"): indexed commits no indexed commit links to.
//!
//! Indexing a commit makes it a head and its parents stop being heads. The set lives in
//! memory, changed by each write, and is stored as a checkpoint every so many index
//! sequence numbers (see `store::checkpoint`). Loading it replays the version records after
//! the checkpoint in iseq order: a commit is indexed only after its parents, so each
//! replayed version was a head when it was indexed, and its parents stopped being heads
//! then.

use std::collections::BTreeSet;

use super::{Record, read_record};
use crate::error::{Error, Result};
use crate::store::Tables;

/// The version index's current heads, ordered by key, loaded on first use.
pub(crate) fn tips(tables: &mut Tables) -> Result<&BTreeSet<String>> {
    if tables.loaded_tips().is_none() {
        let (mut tips, as_of) = tables.tips_checkpoint()?;
        for iseq in as_of + 1..=tables.last_iseq()? {
            let record = read_record(tables, iseq)?;
            for &parent in &record.inner.parents {
                tips.remove(&record_of(tables, parent, iseq)?.inner.node);
            }
            tips.insert(record.inner.node);
        }
        tables.keep_tips(tips, as_of);
    }
    tables
        .loaded_tips()
        .ok_or_else(|| Error::corrupt("the version index's heads were not loaded"))
}

/// The record of `parent`, a parent of version `child`.
fn record_of(tables: &mut Tables, parent: u64, child: u64) -> Result<Record> {
    if parent >= child {
        return Err(Error::corrupt(format!(
            "version {child} names parent {parent}, which is not below it"
        )));
    }
    read_record(tables, parent)
}
