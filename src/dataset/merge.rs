//! Merging heads: what a merge commit must settle, decided by causality.
//!
//! A merge reads the union of its parents' ancestries. A row whose versions in that union
//! are all on one line of descent has one head and needs nothing. A row with several
//! concurrent heads must be settled by the merge itself, so that the merge reads as one
//! value everywhere: heads that agree (same content) are settled by writing that content;
//! heads that differ are a conflict, settled by the merge's own operation on the row or by
//! a policy, which writes the chosen head's content. Otherwise the merge fails with every
//! conflicting row and writes nothing. Only rows written on some but not all sides can have
//! concurrent heads, so the rows examined are those the divergent commits wrote: the cost
//! grows with the work being merged, not with the data.

use std::collections::BTreeSet;

use super::commit::{Content, OpKind, Operation};
use super::index::{Ancestry, RowEntry, RowState, Seqs, VersionIndex, Written};
use crate::error::{ConflictRow, Error, Result};
use crate::store::Tables;

/// How a merge settles a row that its heads changed concurrently to different contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// Keep "ours": the newest of the row's concurrent versions that the first merged head
    /// holds (this device's head when every head is merged); the newest of all when it
    /// holds none.
    Ours,
    /// Take "theirs": the newest of the concurrent versions the first head does not hold.
    Theirs,
    /// Take the newest of the concurrent versions (commit time, ties broken by version id).
    Newest,
}

/// The operation that sets a row to what `entry` holds.
pub(crate) fn copy_of(dataset: &[u8], key: &[u8], entry: &RowEntry) -> Operation {
    let (kind, content, value) = if entry.deleted {
        (OpKind::Delete, Content::Row, None)
    } else if entry.file {
        (OpKind::Put, Content::File, Some(entry.value.clone()))
    } else {
        (OpKind::Put, Content::Row, Some(entry.value.clone()))
    };
    Operation {
        kind,
        content,
        dataset: dataset.to_vec(),
        key: key.to_vec(),
        value,
    }
}

/// The union of the parents' ancestries, as one view.
pub(crate) fn union_of(parents: &[Ancestry]) -> Ancestry {
    let top = parents.iter().map(|p| p.top).max().unwrap_or(0);
    let mut known = Seqs::default();
    for parent in parents {
        known = known.union(&parent.to_seqs());
    }
    Ancestry {
        top,
        excluded: std::sync::Arc::new(known.complement_within(1, top)),
    }
}

/// The commits some parents hold and others do not.
fn divergent(parents: &[Ancestry]) -> Seqs {
    let mut all = Seqs::default();
    let mut common: Option<Seqs> = None;
    for parent in parents {
        let seqs = parent.to_seqs();
        all = all.union(&seqs);
        common = Some(match common {
            Some(common) => common.intersection(&seqs),
            None => seqs,
        });
    }
    let common = common.unwrap_or_default();
    let top = all.iter().last().map_or(0, |(_, end)| end);
    all.intersection(&common.complement_within(1, top))
}

/// How a merge settles a row with `state` at the union of its parents that its own
/// operations do not set.
pub(crate) enum Settled<'s> {
    /// The row has one head there: nothing to settle.
    Nothing,
    /// The merge writes a copy of this head's content.
    Copy(&'s RowEntry),
    /// Concurrent heads differ and no policy chooses: a conflict.
    Conflict,
}

/// How a merge whose first parent is `ours` settles a row with `state` under `policy`.
pub(crate) fn settle_row<'s>(
    state: &'s RowState,
    ours: &Ancestry,
    policy: Option<MergePolicy>,
) -> Settled<'s> {
    if !state.forked() {
        return Settled::Nothing;
    }
    let winner = state.winner();
    let chosen = if state.heads.iter().all(|head| head.same_content(winner)) {
        Some(winner)
    } else {
        // Heads are newest first, so the first match is the newest of its kind.
        match policy {
            None => None,
            Some(MergePolicy::Newest) => Some(winner),
            Some(MergePolicy::Ours) => state
                .heads
                .iter()
                .find(|head| ours.contains(head.iseq))
                .or(Some(winner)),
            Some(MergePolicy::Theirs) => state
                .heads
                .iter()
                .find(|head| !ours.contains(head.iseq))
                .or(Some(winner)),
        }
    };
    chosen.map_or(Settled::Conflict, Settled::Copy)
}

/// The rows a merge of `parents` must look at, collected when there are at most `limit`:
/// those the commits some parents hold and others do not wrote; else only the datasets
/// those rows are in.
pub(crate) fn rows_to_settle(
    index: &VersionIndex,
    tables: &mut Tables,
    parents: &[Ancestry],
    limit: usize,
) -> Result<Written> {
    index.rows_written_up_to(tables, &divergent(parents), limit)
}

/// Checks a merge of `parents` (first = ours) that must look at `rows`, and returns its
/// operations: `ops` plus one per row with several concurrent heads that `ops` does not
/// set (agreeing heads, and conflicts settled by `policy`). Unsettled conflicts fail with
/// [`Error::Conflict`].
pub(crate) fn settle(
    index: &VersionIndex,
    tables: &mut Tables,
    parents: &[Ancestry],
    rows: BTreeSet<(Vec<u8>, Vec<u8>)>,
    mut ops: Vec<Operation>,
    policy: Option<MergePolicy>,
) -> Result<Vec<Operation>> {
    let own: BTreeSet<(Vec<u8>, Vec<u8>)> = ops
        .iter()
        .map(|op| (op.dataset.clone(), op.key.clone()))
        .collect();
    let union = union_of(parents);
    let ours = parents
        .first()
        .ok_or_else(|| Error::InvalidArgument("a merge needs parents".into()))?;
    let mut conflicts: Vec<ConflictRow> = Vec::new();
    for (dataset, key) in rows {
        if own.contains(&(dataset.clone(), key.clone())) {
            continue;
        }
        let Some(state) = index.row_state(tables, &dataset, &key, &union)? else {
            continue;
        };
        match settle_row(&state, ours, policy) {
            Settled::Nothing => {}
            Settled::Copy(entry) => ops.push(copy_of(&dataset, &key, entry)),
            Settled::Conflict => conflicts.push(conflict(dataset, key, &state)),
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflict { rows: conflicts });
    }
    Ok(ops)
}

/// The conflict of a row with `state`.
pub(crate) fn conflict(dataset: Vec<u8>, key: Vec<u8>, state: &RowState) -> ConflictRow {
    ConflictRow {
        versions: state.heads.iter().map(|h| h.version.clone()).collect(),
        dataset,
        key,
    }
}
