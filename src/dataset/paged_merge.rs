//! A merge too large for one write, written in pages with bounded memory.
//!
//! Every commit is one atomic write, which the engine holds whole in memory twice (the
//! write and its memory table): a merge settling millions of rows would need gigabytes. So
//! when the sides being merged wrote more rows than a diff collects, the merge is written
//! in pages instead:
//!
//! 1. *Decide.* The datasets those sides touched are read a page at a time in key order;
//!    each forked row is settled (or named as a conflict). Only the operations hash and
//!    counts are kept. A conflict fails here, before anything is written.
//! 2. *Write.* The commit node is prepared (its key is the version id each row entry
//!    names) and the iseq it will be indexed as is marked taken (`!meta!merging`). The same
//!    pages are read again; each settling operation goes into the payload and its row
//!    entry is written under that iseq, in writes of about [`ROWS_PER_WRITE`] rows, each
//!    holding the payload chunks of the entries it writes. No view reads past the last
//!    version record, so none of this is visible yet.
//! 3. *Land.* The last write stores the node, the version record, the index's heads and
//!    counters, and clears the mark: the merge becomes readable at once, as any commit.
//!
//! A crash before the last write leaves the mark; the next open ([`recover`]) deletes the
//! entries it names through the payload chunks written with them, then the chunks, before
//! anything else is indexed; an error before it (the process still running) undoes the
//! same at once. Both passes read the same rows in the same order under the
//! repository's lock, so the second settles exactly what the first hashed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::Repository;
use super::commit::{Commit, Operation, OperationsHasher};
use super::index::{Ancestry, LatestCounters, RowState, raw_hash};
use super::merge::{self, MergePolicy, Settled};
use super::range::{PAGE, PER_ROW, Scanned};
use super::version::Version;
use crate::error::{ConflictRow, Error, Result};
use crate::graph::Doc;
use crate::store::{Durability, MergeMark, PayloadWriter, Store, Tables, Wait, WriteSet};

/// About how many rows one write of a paged merge holds (it ends where a payload chunk
/// does): a few megabytes of memory, whatever the size of the merge.
pub(super) const ROWS_PER_WRITE: usize = 16 * 1024;

/// A merge of `parents` to be written in pages.
pub(super) struct PagedMerge {
    /// The merged heads, first = ours.
    pub links: Vec<Version>,
    /// Their views, in the same order.
    pub parents: Vec<Ancestry>,
    /// The datasets the sides being merged touched.
    pub datasets: BTreeSet<Vec<u8>>,
    /// The merge's own operations (resolutions), which come first in its payload.
    pub ops: Vec<Operation>,
    pub policy: Option<MergePolicy>,
    pub rows_per_write: usize,
}

/// What one row of the touched datasets asks of the merge.
enum RowPlan {
    /// The merge's own operations set it.
    Own,
    /// It is not forked at the union (where it reads as this state): the merge only
    /// counts it.
    Brought(Option<RowState>),
    /// The merge writes this operation for it.
    Settle(Operation),
    /// Its heads conflict.
    Conflict(ConflictRow),
}

/// What [`PagedMerge::each_row`] does with each row: the dataset, the row as scanned, and
/// what it asks of the merge.
type RowVisit<'v> = dyn FnMut(&mut Tables, &[u8], &Scanned, RowPlan) -> Result<()> + 'v;

impl PagedMerge {
    /// Passes every row of the touched datasets, with what it asks of the merge, to
    /// `visit`, a page at a time in key order.
    fn each_row(
        &self,
        repo: &Repository,
        tables: &mut Tables,
        visit: &mut RowVisit<'_>,
    ) -> Result<()> {
        let own: BTreeSet<(&[u8], &[u8])> = self
            .ops
            .iter()
            .map(|op| (op.dataset.as_slice(), op.key.as_slice()))
            .collect();
        let union = merge::union_of(&self.parents);
        let ours = self
            .parents
            .first()
            .ok_or_else(|| Error::InvalidArgument("a merge needs parents".into()))?;
        for dataset in &self.datasets {
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let start = match &cursor {
                    Some(key) => Bound::Excluded(key.as_slice()),
                    None => Bound::Unbounded,
                };
                let page = tables.rows_page(dataset, start, Bound::Unbounded, PAGE, PER_ROW)?;
                let more = page.len() == PAGE;
                for scan in page {
                    let scan = Scanned::decode(scan)?;
                    let plan = if own.contains(&(dataset.as_slice(), scan.key.as_slice())) {
                        RowPlan::Own
                    } else {
                        match scan.state(repo, tables, dataset, &union)? {
                            None => RowPlan::Brought(None),
                            Some(state) => match merge::settle_row(&state, ours, self.policy) {
                                Settled::Nothing => RowPlan::Brought(Some(state)),
                                Settled::Copy(entry) => {
                                    RowPlan::Settle(merge::copy_of(dataset, &scan.key, entry))
                                }
                                Settled::Conflict => RowPlan::Conflict(merge::conflict(
                                    dataset.clone(),
                                    scan.key.clone(),
                                    &state,
                                )),
                            },
                        }
                    };
                    visit(tables, dataset, &scan, plan)?;
                    cursor = Some(scan.key);
                }
                if !more {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The first pass: the commit the merge makes (its operations hash and counts),
    /// passing each settling operation to `settled`; every conflict, unsettled, fails it.
    pub(super) fn decide(
        &self,
        repo: &Repository,
        tables: &mut Tables,
        message: Option<String>,
        settled: &mut dyn FnMut(Operation),
    ) -> Result<Commit> {
        let mut commit = super::transaction::new_commit(message);
        let mut hasher = OperationsHasher::default();
        for op in &self.ops {
            hasher.add(&op.encode());
            commit.count(op);
        }
        let mut conflicts = Vec::new();
        self.each_row(repo, tables, &mut |_, _, _, plan| {
            match plan {
                RowPlan::Settle(op) => {
                    hasher.add(&op.encode());
                    commit.count(&op);
                    settled(op);
                }
                RowPlan::Conflict(row) => conflicts.push(row),
                RowPlan::Own | RowPlan::Brought(_) => {}
            }
            Ok(())
        })?;
        if !conflicts.is_empty() {
            return Err(Error::Conflict { rows: conflicts });
        }
        if commit.operation_count() > 0 {
            commit.operations = Some(hasher.finish());
        }
        Ok(commit)
    }

    /// Decides the merge, then writes it in pages and lands it; returns its version. A
    /// merge that fails after its first page is undone before the error is returned (the
    /// next commit would otherwise take its iseq, and read its entries as its own).
    pub(super) fn commit(
        &self,
        repo: &Repository,
        tables: &mut Tables,
        message: Option<String>,
    ) -> Result<Version> {
        let commit = self.decide(repo, tables, message, &mut |_| {})?;
        self.write(repo, tables, commit).or_else(|error| {
            undo(tables)?;
            Err(error)
        })
    }

    /// Writes the decided `commit` in pages and lands it.
    fn write(&self, repo: &Repository, tables: &mut Tables, commit: Commit) -> Result<Version> {
        let checkout = tables.checkout()?;
        let link_keys: Vec<String> = self.links.iter().map(|l| l.to_string()).collect();
        let doc = Doc::new(link_keys.clone(), commit.encode());
        let (node, last) = repo.graph.prepare_local(tables, doc)?;
        let Some(mut last) = last else {
            // The same merge, made in the same millisecond, is stored already.
            return Ok(Version::new(node.key));
        };
        let durability = repo.graph.durability();
        let mut indexing = repo.index.begin(tables, &node, &commit)?;
        let mut latest = LatestCounters::read(tables)?;
        let hash = match &commit.operations {
            Some(hash) => {
                Some(raw_hash(hash).ok_or_else(|| Error::corrupt("operations hash is not hex"))?)
            }
            None => None,
        };
        // A payload stored already (the same operations, received from a peer) is not
        // written again, and not the merge's to delete after a crash.
        let mut payload = match hash {
            Some(hash) if !tables.has_ops(&hash)? => Some(PayloadWriter::new(hash)),
            _ => None,
        };
        let mut write = WriteSet::default();
        if let Some(hash) = hash {
            write.put_merging(&MergeMark {
                iseq: indexing.iseq,
                hash,
                payload_was_here: payload.is_none(),
            });
        }
        let mut rows_in_write = 0;
        // Adds one operation to the payload; true where the write may end (the entries
        // it holds have their chunks in it).
        let mut add = |write: &mut WriteSet, op: &Operation, op_bytes: &mut u64| -> bool {
            let encoded = op.encode();
            *op_bytes += encoded.len() as u64;
            match &mut payload {
                Some(payload) => payload.push(write, &encoded),
                None => true,
            }
        };

        // The merge's own operations first, as in its payload; the last one on a row wins.
        let mut own: BTreeMap<(&[u8], &[u8]), &Operation> = BTreeMap::new();
        for op in &self.ops {
            add(&mut write, op, &mut indexing.op_bytes);
            own.insert((op.dataset.as_slice(), op.key.as_slice()), op);
        }
        for (row, op) in own {
            repo.index.index_row(
                tables,
                &mut indexing,
                row,
                op,
                false,
                &mut latest,
                &mut write,
            )?;
            rows_in_write += 1;
        }

        self.each_row(repo, tables, &mut |tables, dataset, scan, plan| {
            match plan {
                RowPlan::Own => {}
                RowPlan::Brought(after) => {
                    // Counted as the first parent reads it, then as the merge does (as the
                    // union of its parents: it writes nothing for the row).
                    let before = match indexing.first_view() {
                        Some(first) => scan.state(repo, tables, dataset, first)?,
                        None => None,
                    };
                    indexing.count(
                        before.as_ref().map(RowState::winner),
                        after.as_ref().map(RowState::winner),
                    );
                }
                RowPlan::Settle(op) => {
                    let may_end = add(&mut write, &op, &mut indexing.op_bytes);
                    let row = (dataset, scan.key.as_slice());
                    repo.index.index_row(
                        tables,
                        &mut indexing,
                        row,
                        &op,
                        false,
                        &mut latest,
                        &mut write,
                    )?;
                    rows_in_write += 1;
                    if may_end && rows_in_write >= self.rows_per_write {
                        tables.commit(std::mem::take(&mut write), durability)?;
                        rows_in_write = 0;
                    }
                }
                RowPlan::Conflict(_) => {
                    return Err(Error::corrupt(
                        "a merge's rows changed between its two passes",
                    ));
                }
            }
            Ok(())
        })?;
        if let Some(payload) = payload {
            payload.finish(&mut write);
        }
        tables.commit(write, durability)?;

        repo.index.finish(tables, indexing, &mut last)?;
        latest.write(&mut last);
        last.put_indexed_change(node.change);
        if let Some(checkout) = &checkout
            && link_keys.contains(checkout)
        {
            last.set_checkout(Some(&node.key));
        }
        last.delete_merging();
        tables.commit(last, durability)?;
        if let Some(hash) = &commit.operations {
            repo.index.wake(tables, Wait::Payload, hash)?;
        }
        Ok(Version::new(node.key))
    }
}

/// Undoes what a merge written in pages left when a crash cut it short. Run when a
/// repository is opened for writing, before anything is indexed (which would reuse the
/// merge's iseq).
pub(super) fn recover(store: &Store) -> Result<()> {
    undo(&mut store.lock())
}

/// Deletes the row entries and payload chunks of a merge written in pages that did not
/// land, and clears its mark (nothing when there is no mark).
fn undo(tables: &mut Tables) -> Result<()> {
    let Some(mark) = tables.merging()? else {
        return Ok(());
    };
    let mut last = WriteSet::default();
    if tables.last_iseq()? < mark.iseq {
        let mut chunks = 0;
        while let Some(ops) = tables.ops_chunk(&mark.hash, chunks)? {
            let mut write = WriteSet::default();
            for op in ops {
                let op = Operation::decode(&op)?;
                write.delete_row_entry(&op.dataset, &op.key, mark.iseq);
            }
            tables.commit(write, Durability::Flushed)?;
            chunks += 1;
        }
        if !mark.payload_was_here {
            last.delete_ops(&mark.hash, 0..chunks);
        }
    }
    last.delete_merging();
    tables.commit(last, Durability::Synced)
}
