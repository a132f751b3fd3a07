//! The state of a row at a view, decided by causality alone.
//!
//! A view reads a set of commits (its ancestry). The row's versions in that view are the
//! entries its commits wrote; a version that is an ancestor of another is superseded by it.
//! What is left, the *heads* of the row's own version graph in the view, is the row's
//! state: one head is a value (or a delete); several are a fork, read as the newest by
//! commit time, ties broken by version id, the same on every device. Nothing here depends
//! on the order in which this repository received or indexed anything.
//!
//! Entries are read newest first (by iseq, which is topological), so the first visible
//! entry is always a head; an entry whose `covers_older` flag is set has every older entry
//! in its ancestry, so the scan stops there. Rows that were never written concurrently
//! therefore cost one seek and one entry.

use std::cell::Cell;
use std::cmp::Ordering;

use super::ancestry::Ancestry;
use super::entry::RowEntry;
use super::{Lookup, VersionIndex};
use crate::error::Result;
use crate::store::Tables;

/// How many entries of a row one storage read takes.
const PAGE: usize = 64;

/// A row's heads at a view, winner first.
#[derive(Clone, Debug)]
pub(crate) struct RowState {
    pub heads: Vec<RowEntry>,
}

impl RowState {
    /// The version a read returns: the newest head.
    pub(crate) fn winner(&self) -> &RowEntry {
        // A state is only built with at least one head.
        &self.heads[0]
    }

    /// Whether the row has several concurrent versions here.
    pub(crate) fn forked(&self) -> bool {
        self.heads.len() > 1
    }
}

/// The heads among `entries` (newest first) that `view` holds, winner first; `None` when
/// the view holds none of them. `entries` must reach at least the first visible entry that
/// covers the older ones, or the row's oldest entry.
pub(crate) fn heads(
    lookup: &mut Lookup<'_>,
    entries: impl IntoIterator<Item = RowEntry>,
    view: &Ancestry,
) -> Result<Option<RowState>> {
    let mut heads: Vec<RowEntry> = Vec::new();
    for entry in entries {
        if !view.contains(entry.iseq) {
            continue;
        }
        let mut superseded = false;
        for head in &heads {
            if lookup.ancestry(head.iseq)?.contains(entry.iseq) {
                superseded = true;
                break;
            }
        }
        let stop = entry.covers_older;
        if !superseded {
            heads.push(entry);
        }
        if stop {
            break;
        }
    }
    if heads.is_empty() {
        return Ok(None);
    }
    if heads.len() > 1 {
        let mut keyed = Vec::with_capacity(heads.len());
        for head in heads {
            keyed.push((lookup.time(head.iseq)?, head));
        }
        keyed.sort_by(|(ta, a), (tb, b)| newest_first(*ta, a, *tb, b));
        heads = keyed.into_iter().map(|(_, head)| head).collect();
    }
    Ok(Some(RowState { heads }))
}

/// Fork order: newest commit time first, ties broken by version id (descending), so every
/// device orders the same versions the same way.
fn newest_first(ta: u64, a: &RowEntry, tb: u64, b: &RowEntry) -> Ordering {
    (tb, &b.version).cmp(&(ta, &a.version))
}

/// The entries of a row with iseq at most `top`, newest first, up to and including the
/// first one `last` accepts (all of them if none does).
pub(crate) fn entries_until(
    tables: &mut Tables,
    dataset: &[u8],
    key: &[u8],
    top: u64,
    last: impl Fn(&RowEntry) -> bool,
) -> Result<Vec<RowEntry>> {
    let mut collected = Vec::new();
    let mut bound = top;
    loop {
        let page = tables.row_entries(dataset, key, bound, PAGE)?;
        let full = page.len() == PAGE;
        for (iseq, bytes) in page {
            bound = iseq.saturating_sub(1);
            let entry = RowEntry::decode_owned(iseq, bytes)?;
            let done = last(&entry);
            collected.push(entry);
            if done {
                return Ok(collected);
            }
        }
        if !full || bound == 0 {
            return Ok(collected);
        }
    }
}

impl VersionIndex {
    /// The state of a row at `view`: one seek, and a scan of the row's own entries only as
    /// far as the first visible one that covers the older ones.
    pub(crate) fn row_state(
        &self,
        tables: &mut Tables,
        dataset: &[u8],
        key: &[u8],
        view: &Ancestry,
    ) -> Result<Option<RowState>> {
        let entries = entries_until(tables, dataset, key, view.top, |entry| {
            entry.covers_older && view.contains(entry.iseq)
        })?;
        heads(&mut self.lookup(tables), entries, view)
    }

    /// The states of a row at two views (a diff's sides): one seek, and a scan of the
    /// row's entries as far as both views need.
    pub(crate) fn row_states(
        &self,
        tables: &mut Tables,
        dataset: &[u8],
        key: &[u8],
        a: &Ancestry,
        b: &Ancestry,
    ) -> Result<(Option<RowState>, Option<RowState>)> {
        let (a_reached, b_reached) = (Cell::new(false), Cell::new(false));
        let entries = entries_until(tables, dataset, key, a.top.max(b.top), |entry| {
            if entry.covers_older {
                a_reached.set(a_reached.get() || a.contains(entry.iseq));
                b_reached.set(b_reached.get() || b.contains(entry.iseq));
            }
            a_reached.get() && b_reached.get()
        })?;
        let mut lookup = self.lookup(tables);
        let old = heads(&mut lookup, entries.iter().cloned(), a)?;
        Ok((old, heads(&mut lookup, entries, b)?))
    }
}
