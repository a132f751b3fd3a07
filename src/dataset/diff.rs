//! Differences between two versions, row by row, in (dataset, key) order.
//!
//! Only rows written by commits that one version holds and the other does not can differ.
//! A diff of a few changes collects the rows those commits wrote and compares each at both
//! versions: its cost grows with the changes, not with the size of the data. Past
//! [`COLLECT`] changed rows, collecting would grow memory with the change and cost a seek
//! per row, so the diff reads the datasets those commits touched instead, a page at a
//! time in key order, resolving each row at both versions from the entries the scan
//! holds: bounded memory and a streaming scan, whatever the size of the change.

use std::collections::{BTreeSet, VecDeque, btree_set};
use std::ops::Bound;

use super::Repository;
use super::index::{Ancestry, RowState};
use super::range::{PAGE, PER_ROW, Scanned};
use super::version::Version;
use super::view::RowVersion;
use crate::error::Result;
use crate::store::Tables;

/// Changed rows a diff (or a merge) collects before it scans the touched datasets
/// instead.
pub(super) const COLLECT: usize = 1 << 16;

/// One row that differs: its version at `a` (`old`) and at `b` (`new`). A side is `None`
/// when the row does not exist there; a delete is a version with `deleted` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    /// The dataset.
    pub dataset: Vec<u8>,
    /// The row key.
    pub key: Vec<u8>,
    /// The row at the first version.
    pub old: Option<RowVersion>,
    /// The row at the second version.
    pub new: Option<RowVersion>,
}

/// The differing rows; see [`Repository::diff`].
pub struct Diff {
    repo: Repository,
    a: Ancestry,
    b: Ancestry,
    source: Source,
    dataset: Option<Vec<u8>>,
}

/// Where a diff's candidate rows come from.
enum Source {
    /// The rows the differing commits wrote, collected and sorted.
    Rows(btree_set::IntoIter<(Vec<u8>, Vec<u8>)>),
    /// Every row of the datasets they touched, a page at a time.
    Scan {
        datasets: btree_set::IntoIter<Vec<u8>>,
        /// The dataset being read, and where its next page starts.
        reading: Option<(Vec<u8>, Bound<Vec<u8>>)>,
        found: VecDeque<DiffEntry>,
    },
}

impl Repository {
    /// The rows whose content differs between versions `a` and `b`, in (dataset, key) order.
    pub fn diff(&self, a: &Version, b: &Version) -> Result<Diff> {
        self.diff_collecting(a, b, COLLECT)
    }

    /// [`Repository::diff`], scanning the touched datasets whatever the size of the
    /// change: for the project's tests of that path.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn diff_scanning(&self, a: &Version, b: &Version) -> Result<Diff> {
        self.diff_collecting(a, b, 0)
    }

    fn diff_collecting(&self, a: &Version, b: &Version, collect: usize) -> Result<Diff> {
        let mut tables = self.graph.store().lock();
        let mut view = |version: &Version| -> Result<Ancestry> {
            let iseq = super::version::iseq(&mut tables, version)?;
            self.index.ancestry(&mut tables, iseq)
        };
        let (a, b) = (view(a)?, view(b)?);
        let (sa, sb) = (a.to_seqs(), b.to_seqs());
        let top = a.top.max(b.top);
        let only_a = sa.intersection(&sb.complement_within(1, top));
        let only_b = sb.intersection(&sa.complement_within(1, top));
        let written =
            self.index
                .rows_written_up_to(&mut tables, &only_a.union(&only_b), collect)?;
        let source = match written.rows {
            Some(rows) => Source::Rows(rows.into_iter()),
            None => Source::Scan {
                datasets: written.datasets.into_iter(),
                reading: None,
                found: VecDeque::new(),
            },
        };
        Ok(Diff {
            repo: self.clone(),
            a,
            b,
            source,
            dataset: None,
        })
    }
}

impl Diff {
    /// Keeps only the rows of one dataset.
    pub fn dataset(mut self, dataset: impl AsRef<[u8]>) -> Diff {
        self.dataset = Some(dataset.as_ref().to_vec());
        self
    }

    fn compare(&self, dataset: Vec<u8>, key: Vec<u8>) -> Result<Option<DiffEntry>> {
        let mut tables = self.repo.graph.store().lock();
        let index = &self.repo.index;
        let (old, new) = index.row_states(&mut tables, &dataset, &key, &self.a, &self.b)?;
        self.entry(&mut tables, dataset, key, old, new)
    }

    /// The difference between a row's states at `a` and at `b`, if any.
    fn entry(
        &self,
        tables: &mut Tables,
        dataset: Vec<u8>,
        key: Vec<u8>,
        old: Option<RowState>,
        new: Option<RowState>,
    ) -> Result<Option<DiffEntry>> {
        let winner = |state: Option<RowState>| state.and_then(|s| s.heads.into_iter().next());
        let (old, new) = (winner(old), winner(new));
        let same = match (&old, &new) {
            (None, None) => true,
            (Some(o), Some(n)) => o.iseq == n.iseq || o.same_content(n),
            (Some(e), None) | (None, Some(e)) => e.deleted,
        };
        if same {
            return Ok(None);
        }
        Ok(Some(DiffEntry {
            old: old.map(|e| self.repo.row_version(tables, e)).transpose()?,
            new: new.map(|e| self.repo.row_version(tables, e)).transpose()?,
            dataset,
            key,
        }))
    }

    /// Reads the next page of the dataset being scanned (or starts the next dataset) into
    /// `found`. Returns false when every touched dataset has been read.
    fn scan_page(&mut self) -> Result<bool> {
        let Source::Scan {
            datasets, reading, ..
        } = &mut self.source
        else {
            return Ok(false);
        };
        let (dataset, cursor) = match reading.take() {
            Some(reading) => reading,
            None => loop {
                let Some(next) = datasets.next() else {
                    return Ok(false);
                };
                if self.dataset.as_ref().is_none_or(|d| *d == next) {
                    break (next, Bound::Unbounded);
                }
            },
        };
        let repo = self.repo.clone();
        let mut tables = repo.graph.store().lock();
        let start = match &cursor {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(key) => Bound::Included(key.as_slice()),
            Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        };
        let page = tables.rows_page(&dataset, start, Bound::Unbounded, PAGE, PER_ROW)?;
        let more = page.len() == PAGE;
        let mut last = None;
        let mut entries = Vec::new();
        for scan in page {
            let scan = Scanned::decode(scan)?;
            let old = scan.state(&repo, &mut tables, &dataset, &self.a)?;
            let new = scan.state(&repo, &mut tables, &dataset, &self.b)?;
            last = Some(scan.key.clone());
            if let Some(entry) = self.entry(&mut tables, dataset.clone(), scan.key, old, new)? {
                entries.push(entry);
            }
        }
        let Source::Scan { reading, found, .. } = &mut self.source else {
            return Ok(false);
        };
        found.extend(entries);
        if let (true, Some(last)) = (more, last) {
            *reading = Some((dataset, Bound::Excluded(last)));
        }
        Ok(true)
    }
}

impl Iterator for Diff {
    type Item = Result<DiffEntry>;

    fn next(&mut self) -> Option<Result<DiffEntry>> {
        loop {
            let (dataset, key) = match &mut self.source {
                Source::Rows(rows) => rows.next()?,
                Source::Scan { found, .. } => {
                    if let Some(entry) = found.pop_front() {
                        return Some(Ok(entry));
                    }
                    match self.scan_page() {
                        Ok(true) => continue,
                        Ok(false) => return None,
                        Err(error) => {
                            self.source = Source::Rows(BTreeSet::new().into_iter());
                            return Some(Err(error));
                        }
                    }
                }
            };
            if self.dataset.as_ref().is_some_and(|d| *d != dataset) {
                continue;
            }
            match self.compare(dataset, key) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
