//! Differences between two versions, row by row, in (dataset, key) order.
//!
//! Only rows written by commits that one version holds and the other does not can differ,
//! so a diff collects the rows those commits wrote and compares each at both versions. Its
//! cost grows with the changes between the versions, not with the size of the data.

use std::collections::btree_set;

use super::Repository;
use super::index::{Ancestry, RowState};
use super::version::Version;
use super::view::RowVersion;
use crate::error::Result;

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
    rows: btree_set::IntoIter<(Vec<u8>, Vec<u8>)>,
    dataset: Option<Vec<u8>>,
}

impl Repository {
    /// The rows whose content differs between versions `a` and `b`, in (dataset, key) order.
    pub fn diff(&self, a: &Version, b: &Version) -> Result<Diff> {
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
        let rows = self
            .index
            .rows_written(&mut tables, &only_a.union(&only_b))?;
        Ok(Diff {
            repo: self.clone(),
            a,
            b,
            rows: rows.into_iter(),
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
        let winner = |state: Option<RowState>| state.map(|s| s.heads.into_iter().next());
        let old = winner(index.row_state(&mut tables, &dataset, &key, &self.a)?).flatten();
        let new = winner(index.row_state(&mut tables, &dataset, &key, &self.b)?).flatten();
        let same = match (&old, &new) {
            (None, None) => true,
            (Some(o), Some(n)) => o.iseq == n.iseq || o.same_content(n),
            (Some(e), None) | (None, Some(e)) => e.deleted,
        };
        if same {
            return Ok(None);
        }
        Ok(Some(DiffEntry {
            old: old
                .map(|e| self.repo.row_version(&mut tables, e))
                .transpose()?,
            new: new
                .map(|e| self.repo.row_version(&mut tables, e))
                .transpose()?,
            dataset,
            key,
        }))
    }
}

impl Iterator for Diff {
    type Item = Result<DiffEntry>;

    fn next(&mut self) -> Option<Result<DiffEntry>> {
        loop {
            let (dataset, key) = self.rows.next()?;
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
