//! The version index: turns commits into versions that can be read at any point of
//! history, with forks decided by causality alone.
//!
//! Each commit, once its parents and its payload are here, is *indexed*: it gets this
//! repository's next index sequence number (iseq), a version record (its parents, its
//! ancestry as a set of iseqs, its counters) and one row entry per row it sets. A view (one
//! version, or latest) is an ancestry; reading a row there is one seek into the row's
//! entries (see `resolve`). Nothing is copied when history forks or merges: a merge commit
//! writes entries only for the rows it settles, so its cost, like a diff's, grows with the
//! work being merged and never with the size of the data.
//!
//! The index follows the graph (it is the graph's follower): nodes stored through the
//! graph are indexed, or parked as pending until what they wait for arrives (see
//! `pending`). A repository's own commits are indexed in the same atomic write that stores
//! them.
//!
//! About 700 lines: indexing one commit (`VersionIndex::index`, in the steps `begin`,
//! `index_row`, `finish` that a merge written in pages also takes) is one procedure over
//! the version record, the row entries and the counters, kept in one place so that it
//! reads top to bottom.

mod ancestry;
mod entry;
mod pending;
mod record;
mod resolve;
mod tips;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

pub(crate) use ancestry::{Ancestry, Seqs, excluded_for};
pub(crate) use entry::{RowEntry, raw_hash};
pub(crate) use record::Record;
// The decoders of stored index values, for `internals::decoders` (the fuzz targets).
pub(crate) use resolve::{RowState, entries_until, heads};
pub(crate) use tips::tips;
#[cfg(feature = "internals")]
pub use {entry::RowEntry as IndexRowEntry, record::Record as IndexRecord};

use super::commit::{Commit, Content, OpKind, Operation};
use crate::error::{Error, Result};
use crate::graph::Node;
use crate::proto::strata::VersionRecord;
use crate::store::{Tables, WriteSet};

/// How many version records and ancestries are kept decoded in memory.
const CACHED: usize = 4096;

/// What some versions wrote: the rows, unless there were too many to collect, and the
/// datasets they are in.
pub(crate) struct Written {
    pub(crate) rows: Option<BTreeSet<(Vec<u8>, Vec<u8>)>>,
    pub(crate) datasets: BTreeSet<Vec<u8>>,
}

/// The record of version `iseq`, read and decoded (not cached: see [`VersionIndex::record`]).
pub(crate) fn read_record(tables: &mut Tables, iseq: u64) -> Result<Record> {
    let bytes = tables
        .version_record(iseq)?
        .ok_or_else(|| Error::corrupt(format!("version {iseq} has no record")))?;
    Record::decode(iseq, &bytes)
}

/// The version index of one repository: shared by its handles, and the graph's follower.
pub(crate) struct VersionIndex {
    caches: Mutex<Caches>,
}

struct Caches {
    records: LruCache<u64, Arc<Record>>,
    excluded: LruCache<u64, Arc<Seqs>>,
}

/// Live rows and files, as counted at a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub rows: u64,
    pub files: u64,
}

impl Counts {
    /// Moves the counters for one row going from `before` to `after`.
    pub(crate) fn apply(&mut self, before: Option<&RowEntry>, after: Option<&RowEntry>) {
        if let Some(before) = before.filter(|e| e.live()) {
            let counter = if before.file {
                &mut self.files
            } else {
                &mut self.rows
            };
            *counter = counter.saturating_sub(1);
        }
        if let Some(after) = after.filter(|e| e.live()) {
            let counter = if after.file {
                &mut self.files
            } else {
                &mut self.rows
            };
            *counter += 1;
        }
    }
}

/// The counters of the view at latest, kept with every write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LatestCounters {
    pub counts: Counts,
    /// Commits stored but not yet indexed.
    pub pending: u64,
}

impl LatestCounters {
    pub(crate) fn read(tables: &mut Tables) -> Result<LatestCounters> {
        let Some(bytes) = tables.latest_counters()? else {
            return Ok(LatestCounters::default());
        };
        let mut rest = bytes.as_slice();
        let mut next = || {
            prost::encoding::decode_varint(&mut rest)
                .map_err(|_| Error::corrupt("the latest counters are malformed"))
        };
        Ok(LatestCounters {
            counts: Counts {
                rows: next()?,
                files: next()?,
            },
            pending: next()?,
        })
    }

    pub(crate) fn write(&self, write: &mut WriteSet) {
        let mut buf = Vec::with_capacity(24);
        for n in [self.counts.rows, self.counts.files, self.pending] {
            prost::encoding::encode_varint(n, &mut buf);
        }
        write.put_latest_counters(&buf);
    }
}

/// Reads version records and ancestries for the row resolver, including those of a commit
/// being indexed (not stored yet).
pub(crate) struct Lookup<'a> {
    index: &'a VersionIndex,
    tables: &'a mut Tables,
    unstored: Option<(Ancestry, u64)>,
}

impl Lookup<'_> {
    /// The ancestry of version `iseq`.
    pub(crate) fn ancestry(&mut self, iseq: u64) -> Result<Ancestry> {
        if let Some((ancestry, _)) = &self.unstored
            && ancestry.top == iseq
        {
            return Ok(ancestry.clone());
        }
        self.index.ancestry(self.tables, iseq)
    }

    /// The commit time of version `iseq`.
    pub(crate) fn time(&mut self, iseq: u64) -> Result<u64> {
        if let Some((ancestry, time)) = &self.unstored
            && ancestry.top == iseq
        {
            return Ok(*time);
        }
        Ok(self.index.record(self.tables, iseq)?.inner.modified)
    }
}

/// How many rows of a commit are read ahead at once ([`Tables::read_rows_ahead`]): their
/// newest entries are held in memory until the commit is written.
pub(crate) const ROWS_AHEAD: usize = 16 * 1024;

/// A commit ready to be indexed: its parents are indexed and its operations are here.
pub(crate) struct Indexable<'a> {
    pub node: &'a Node,
    pub commit: &'a Commit,
    /// Its operations, in order, with their encoded sizes.
    pub ops: &'a [(Operation, usize)],
    /// Rows the caller knows have no entry at all yet (an import into a new dataset), for
    /// which the index need not read anything.
    pub fresh: &'a dyn Fn(&[u8], &[u8]) -> bool,
    /// Whether the graph stores the node in this same write: such a node cannot have been
    /// indexed, and the check that it was not (a read of a key that is absent, the
    /// dearest kind) is skipped.
    pub new: bool,
}

/// A commit being indexed (see [`VersionIndex::begin`]): what its row entries and its
/// version record are computed from, built up row by row, in one write or, for a merge
/// written in pages, across several.
pub(crate) struct Indexing {
    node: String,
    change: u64,
    log: String,
    node_bytes: u64,
    modified: u64,
    operations: Option<String>,
    /// The iseq the commit is indexed as.
    pub(crate) iseq: u64,
    parents: Vec<(u64, String)>,
    own: Ancestry,
    first: Option<Arc<Record>>,
    first_ancestry: Option<Ancestry>,
    excluded_base: Option<u64>,
    excluded_stored: Seqs,
    counts: Counts,
    /// The encoded size of the commit's operations.
    pub(crate) op_bytes: u64,
    datasets: BTreeSet<Vec<u8>>,
}

impl Indexing {
    /// For a merge: the commits it brings that its first parent does not hold.
    fn brought(&self) -> Option<Seqs> {
        let first = self
            .first_ancestry
            .as_ref()
            .filter(|_| self.parents.len() > 1)?;
        Some(
            self.own.to_seqs().intersection(
                &first
                    .excluded
                    .union(&Seqs::range(first.top + 1, self.iseq - 1)),
            ),
        )
    }

    /// The commit's first parent as a view (`None` for a root commit).
    pub(crate) fn first_view(&self) -> Option<&Ancestry> {
        self.first_ancestry.as_ref()
    }

    /// Counts a row the commit does not set going from `before` (at its first parent) to
    /// `after` (at the commit).
    pub(crate) fn count(&mut self, before: Option<&RowEntry>, after: Option<&RowEntry>) {
        self.counts.apply(before, after);
    }
}

impl VersionIndex {
    pub(crate) fn new() -> VersionIndex {
        let size = NonZeroUsize::new(CACHED).unwrap_or(NonZeroUsize::MIN);
        VersionIndex {
            caches: Mutex::new(Caches {
                records: LruCache::new(size),
                excluded: LruCache::new(size),
            }),
        }
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Caches> {
        // The caches only hold immutable records, so a poisoned lock holds nothing wrong.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lookup<'a>(&'a self, tables: &'a mut Tables) -> Lookup<'a> {
        Lookup {
            index: self,
            tables,
            unstored: None,
        }
    }

    /// The record of version `iseq`.
    pub(crate) fn record(&self, tables: &mut Tables, iseq: u64) -> Result<Arc<Record>> {
        if let Some(record) = self.caches().records.get(&iseq) {
            return Ok(record.clone());
        }
        let record = Arc::new(read_record(tables, iseq)?);
        self.caches().records.put(iseq, record.clone());
        Ok(record)
    }

    /// The ancestry of version `iseq`: at most two records read.
    pub(crate) fn ancestry(&self, tables: &mut Tables, iseq: u64) -> Result<Ancestry> {
        if let Some(excluded) = self.caches().excluded.get(&iseq) {
            return Ok(Ancestry {
                top: iseq,
                excluded: excluded.clone(),
            });
        }
        let record = self.record(tables, iseq)?;
        let mut excluded = record.excluded_here();
        if let Some(base) = record.inner.excluded_base {
            let base = self.record(tables, base)?;
            if base.inner.excluded_base.is_some() {
                return Err(Error::corrupt(format!(
                    "version {iseq} builds its ancestry on a version that does the same"
                )));
            }
            excluded = excluded.union(&base.excluded_here());
        }
        let excluded = Arc::new(excluded);
        self.caches().excluded.put(iseq, excluded.clone());
        Ok(Ancestry {
            top: iseq,
            excluded,
        })
    }

    /// The view at latest: every indexed commit.
    pub(crate) fn latest(&self, tables: &mut Tables) -> Result<Ancestry> {
        Ok(Ancestry::everything(tables.last_iseq()?))
    }

    /// The iseqs of a node's parents that are indexed commits, in link order. Links to
    /// nodes that are not commits (graph plumbing) are not parents of a version.
    fn parent_versions(&self, tables: &mut Tables, node: &Node) -> Result<Vec<(u64, String)>> {
        let mut parents: Vec<(u64, String)> = Vec::new();
        for link in &node.links {
            if let Some(iseq) = tables.iseq_of(link)?
                && !parents.iter().any(|(p, _)| *p == iseq)
            {
                parents.push((iseq, link.clone()));
            }
        }
        Ok(parents)
    }

    /// Adds to `write` everything indexing `commit` takes: its version record, its row
    /// entries, the index's heads; and moves the counters of latest. Returns its iseq.
    pub(crate) fn index(
        &self,
        tables: &mut Tables,
        commit: Indexable,
        latest: &mut LatestCounters,
        write: &mut WriteSet,
    ) -> Result<u64> {
        let node = commit.node;
        if !commit.new && tables.iseq_of(&node.key)?.is_some() {
            return Err(Error::corrupt(format!(
                "commit {} is indexed twice",
                node.key
            )));
        }
        let mut indexing = self.begin(tables, node, commit.commit)?;

        // The commit's own rows: the last operation on a row wins.
        let mut own_rows: BTreeMap<(&[u8], &[u8]), &Operation> = BTreeMap::new();
        for (op, size) in commit.ops {
            indexing.op_bytes += *size as u64;
            own_rows.insert((op.dataset.as_slice(), op.key.as_slice()), op);
        }
        // Asked once per row: for an import the answer takes a lock and Bloom filters.
        let fresh: Vec<bool> = own_rows.keys().map(|(d, k)| (commit.fresh)(d, k)).collect();
        let mut upcoming = own_rows.keys().zip(&fresh);
        for (at, (((dataset, key), op), &is_fresh)) in own_rows.iter().zip(&fresh).enumerate() {
            if at % ROWS_AHEAD == 0 {
                // The next window of rows, read in one walk in key order (a no-op when the
                // plan of this commit has just read the same rows ahead).
                tables.read_rows_ahead(
                    upcoming
                        .by_ref()
                        .take(ROWS_AHEAD)
                        .filter(|(_, is_fresh)| !**is_fresh)
                        .map(|(row, _)| *row),
                )?;
            }
            self.index_row(
                tables,
                &mut indexing,
                (dataset, key),
                op,
                is_fresh,
                latest,
                write,
            )?;
        }

        // A merge also changes, relative to its first parent, the rows its other parents'
        // sides wrote: count them as the merge reads them.
        if let Some(brought) = indexing.brought() {
            for row in self.rows_written(tables, &brought)? {
                if own_rows.contains_key(&(row.0.as_slice(), row.1.as_slice())) {
                    continue;
                }
                self.count_brought(tables, &mut indexing, &row.0, &row.1)?;
            }
        }
        self.finish(tables, indexing, write)
    }

    /// Starts indexing `node`, whose value is `commit`, as the next iseq: its parents,
    /// ancestry and the counters it starts from.
    pub(crate) fn begin(
        &self,
        tables: &mut Tables,
        node: &Node,
        commit: &Commit,
    ) -> Result<Indexing> {
        let iseq = tables.last_iseq()? + 1;
        let parents = self.parent_versions(tables, node)?;
        let mut parent_ancestries = Vec::with_capacity(parents.len());
        for (p, _) in &parents {
            parent_ancestries.push(self.ancestry(tables, *p)?);
        }
        let excluded = ancestry::excluded_for(iseq, &parent_ancestries);
        let own = Ancestry {
            top: iseq,
            excluded: Arc::new(excluded.clone()),
        };
        let (excluded_base, excluded_stored) =
            self.stored_exclusions(tables, &parents, iseq, excluded)?;
        let first = match parents.first() {
            Some((p, _)) => Some(self.record(tables, *p)?),
            None => None,
        };
        let counts = first.as_ref().map_or(Counts::default(), |r| Counts {
            rows: r.inner.rows,
            files: r.inner.files,
        });
        Ok(Indexing {
            node: node.key.clone(),
            change: node.change,
            log: node.log.clone(),
            node_bytes: node.value.len() as u64,
            modified: commit.modified,
            operations: commit.operations.clone(),
            iseq,
            parents,
            own,
            first,
            first_ancestry: parent_ancestries.into_iter().next(),
            excluded_base,
            excluded_stored,
            counts,
            op_bytes: 0,
            datasets: BTreeSet::new(),
        })
    }

    /// Writes the entry of one row the commit sets (`op` is the last operation on it) and
    /// moves the commit's and latest's counters. A row that is `fresh` has no entry yet.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn index_row(
        &self,
        tables: &mut Tables,
        indexing: &mut Indexing,
        (dataset, key): (&[u8], &[u8]),
        op: &Operation,
        fresh: bool,
        latest: &mut LatestCounters,
        write: &mut WriteSet,
    ) -> Result<()> {
        let iseq = indexing.iseq;
        let mut entry = RowEntry {
            iseq,
            deleted: op.kind == OpKind::Delete,
            file: op.kind == OpKind::Put && op.content == Content::File,
            covers_older: true,
            version: indexing.node.clone(),
            value: op.value.clone().unwrap_or_default(),
        };
        if fresh {
            indexing.counts.apply(None, Some(&entry));
            latest.counts.apply(None, Some(&entry));
        } else {
            let first_ancestry = indexing.first_ancestry.as_ref();
            // Read as far back as the first entry that covers the older ones and that the
            // first parent holds (so its own ancestry and latest hold it too).
            let existing = entries_until(tables, dataset, key, iseq, |e| {
                e.covers_older && first_ancestry.is_some_and(|a| a.contains(e.iseq))
            })?;
            // Older entries beyond the last one read are in its ancestry, hence in ours.
            entry.covers_older = existing.iter().all(|e| indexing.own.contains(e.iseq));
            let mut lookup = Lookup {
                index: self,
                tables,
                unstored: Some((indexing.own.clone(), indexing.modified)),
            };
            let before = match first_ancestry {
                Some(view) => heads(&mut lookup, existing.iter().cloned(), view)?,
                None => None,
            };
            let everything = Ancestry::everything(iseq);
            let latest_before = heads(&mut lookup, existing.iter().cloned(), &everything)?;
            let latest_after = heads(
                &mut lookup,
                std::iter::once(entry.clone()).chain(existing.iter().cloned()),
                &everything,
            )?;
            indexing
                .counts
                .apply(before.as_ref().map(RowState::winner), Some(&entry));
            latest.counts.apply(
                latest_before.as_ref().map(RowState::winner),
                latest_after.as_ref().map(RowState::winner),
            );
        }
        write.put_row_entry(dataset, key, iseq, &entry.encode());
        if !indexing.datasets.contains(dataset) {
            indexing.datasets.insert(dataset.to_vec());
        }
        Ok(())
    }

    /// Counts a row that a merge brings from its other parents' sides without setting it:
    /// as its first parent reads it, then as the merge does.
    fn count_brought(
        &self,
        tables: &mut Tables,
        indexing: &mut Indexing,
        dataset: &[u8],
        key: &[u8],
    ) -> Result<()> {
        let Some(first_view) = indexing.first_ancestry.as_ref() else {
            return Ok(());
        };
        let existing = entries_until(tables, dataset, key, indexing.iseq, |e| {
            e.covers_older && first_view.contains(e.iseq)
        })?;
        let mut lookup = Lookup {
            index: self,
            tables,
            unstored: Some((indexing.own.clone(), indexing.modified)),
        };
        let before = heads(&mut lookup, existing.iter().cloned(), first_view)?;
        let after = heads(&mut lookup, existing, &indexing.own)?;
        indexing.counts.apply(
            before.as_ref().map(RowState::winner),
            after.as_ref().map(RowState::winner),
        );
        Ok(())
    }

    /// Adds the version record and the index's heads to `write`. Returns the iseq.
    pub(crate) fn finish(
        &self,
        tables: &mut Tables,
        indexing: Indexing,
        write: &mut WriteSet,
    ) -> Result<u64> {
        let Indexing {
            node,
            change,
            log,
            node_bytes,
            modified,
            operations,
            iseq,
            parents,
            first,
            excluded_base,
            excluded_stored,
            counts,
            op_bytes,
            datasets,
            ..
        } = indexing;
        for dataset in datasets {
            write.put_dataset(&dataset);
        }
        let record = Record {
            iseq,
            inner: VersionRecord {
                node: node.clone(),
                change,
                log,
                modified,
                operations,
                parents: parents.iter().map(|(p, _)| *p).collect(),
                rows: counts.rows,
                files: counts.files,
                versions: first.as_ref().map_or(0, |r| r.inner.versions) + 1,
                size: first.as_ref().map_or(0, |r| r.inner.size) + node_bytes + op_bytes,
                excluded_base,
                excluded: excluded_stored.to_pairs(),
            },
        };
        write.put_version(iseq, &node, &record.encode());
        // Loaded first, so that the write can store a checkpoint of them when it lands.
        tips(tables)?;
        for (_, parent) in &parents {
            write.remove_tip(parent);
        }
        write.add_tip(&node, iseq);
        Ok(iseq)
    }

    /// How a new version's excluded set is stored: added to its single parent's base when
    /// that stays small, else complete.
    fn stored_exclusions(
        &self,
        tables: &mut Tables,
        parents: &[(u64, String)],
        iseq: u64,
        complete: Seqs,
    ) -> Result<(Option<u64>, Seqs)> {
        if let [(parent, _)] = parents {
            let record = self.record(tables, *parent)?;
            let gap = Seqs::range(parent + 1, iseq.saturating_sub(1));
            let (base, added) = match record.inner.excluded_base {
                Some(base) => (Some(base), record.excluded_here().union(&gap)),
                None if record.inner.excluded.is_empty() => (None, gap),
                None => (Some(*parent), gap),
            };
            if added.intervals() <= record::MAX_ADDED_EXCLUSIONS {
                return Ok((base, added));
            }
        }
        Ok((None, complete))
    }

    /// Every row written by the versions in `versions`, sorted.
    pub(crate) fn rows_written(
        &self,
        tables: &mut Tables,
        versions: &Seqs,
    ) -> Result<BTreeSet<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .rows_written_up_to(tables, versions, usize::MAX)?
            .rows
            .unwrap_or_default())
    }

    /// Every row written by the versions in `versions`, sorted, unless there are more than
    /// `limit`; and the datasets they are in, always. Past `limit` memory holds only the
    /// dataset names, whatever the size of the versions' payloads.
    pub(crate) fn rows_written_up_to(
        &self,
        tables: &mut Tables,
        versions: &Seqs,
        limit: usize,
    ) -> Result<Written> {
        let mut rows = Some(BTreeSet::new());
        let mut datasets = BTreeSet::new();
        for (start, end) in versions.iter() {
            for iseq in start..=end {
                let record = self.record(tables, iseq)?;
                self.visit_operations(tables, &record, &mut |op| {
                    if !datasets.contains(&op.dataset) {
                        datasets.insert(op.dataset.clone());
                    }
                    if let Some(collected) = &mut rows {
                        collected.insert((op.dataset, op.key));
                        if collected.len() > limit {
                            rows = None;
                        }
                    }
                    Ok(true)
                })?;
            }
        }
        Ok(Written { rows, datasets })
    }

    /// The operations of an indexed version.
    pub(crate) fn operations_of(
        &self,
        tables: &mut Tables,
        record: &Record,
    ) -> Result<Vec<Operation>> {
        Ok(self
            .operations_up_to(tables, record, usize::MAX)?
            .unwrap_or_default())
    }

    /// The operations of an indexed version, unless it has more than `most`: `None` then,
    /// without reading the rest of its payload.
    pub(crate) fn operations_up_to(
        &self,
        tables: &mut Tables,
        record: &Record,
        most: usize,
    ) -> Result<Option<Vec<Operation>>> {
        let mut ops = Vec::new();
        let mut all = true;
        self.visit_operations(tables, record, &mut |op| {
            ops.push(op);
            all = ops.len() <= most;
            Ok(all)
        })?;
        Ok(all.then_some(ops))
    }

    /// Passes the operations of an indexed version to `visit`, in order, a payload chunk
    /// at a time, until it returns false.
    pub(crate) fn visit_operations(
        &self,
        tables: &mut Tables,
        record: &Record,
        visit: &mut dyn FnMut(Operation) -> Result<bool>,
    ) -> Result<()> {
        let Some(hash) = record.inner.operations.as_deref() else {
            return Ok(());
        };
        let raw = raw_hash(hash).ok_or_else(|| {
            Error::corrupt(format!(
                "version {} names a bad operations hash",
                record.iseq
            ))
        })?;
        for number in 0.. {
            let Some(chunk) = tables.ops_chunk(&raw, number)? else {
                if number == 0 {
                    return Err(Error::corrupt(format!(
                        "indexed version {} has no payload",
                        record.inner.node
                    )));
                }
                return Ok(());
            };
            for op in chunk {
                if !visit(Operation::decode(&op)?)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
