//! Differences between two versions, row by row, in (dataset, key) order.
//!
//! Only rows touched since the versions' common ancestor can differ, so the diff walks the
//! graph back to that ancestor, collects the rows those commits touched, and compares each
//! at both versions. Its cost grows with the changes, not with the size of the data.

use std::collections::BTreeSet;

use super::Repository;
use super::lineage::{self, Path, RowId};
use super::read::{lookup, same, same_content};
use super::view::{RowVersion, row_version};
use crate::error::Result;

/// One row that differs: its version at `a` (`old`) and at `b` (`new`). A side is `None`
/// when the row does not exist there; a delete is a version with `deleted` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    pub dataset: Vec<u8>,
    pub key: Vec<u8>,
    pub old: Option<RowVersion>,
    pub new: Option<RowVersion>,
}

/// The differing rows; see [`Repository::diff`].
pub struct Diff {
    repo: Repository,
    a: Path,
    b: Path,
    rows: std::collections::btree_set::IntoIter<RowId>,
    dataset: Option<Vec<u8>>,
}

pub(super) fn diff(repo: &Repository, a: &str, b: &str) -> Result<Diff> {
    let a = repo.resolve_version(a)?;
    let b = repo.resolve_version(b)?;
    let mut state = repo.graph.lock();
    let walk = lineage::merge_base(&mut state, &a, &b)?;
    let mut rows = BTreeSet::new();
    for key in walk.only_a.iter().chain(&walk.only_b) {
        lineage::touched(&mut state, key, &mut rows)?;
    }
    Ok(Diff {
        repo: repo.clone(),
        a: lineage::path_of(&mut state.kv, &a)?,
        b: lineage::path_of(&mut state.kv, &b)?,
        rows: rows.into_iter(),
        dataset: None,
    })
}

impl Diff {
    /// Keeps only the rows of one dataset.
    pub fn dataset(mut self, dataset: impl AsRef<[u8]>) -> Diff {
        self.dataset = Some(dataset.as_ref().to_vec());
        self
    }

    fn compare(&self, row: RowId) -> Result<Option<DiffEntry>> {
        let mut state = self.repo.graph.lock();
        let old = lookup(&mut state.kv, &self.a, &row.0, &row.1)?;
        let new = lookup(&mut state.kv, &self.b, &row.0, &row.1)?;
        if same(old.as_ref(), new.as_ref()) || same_content(old.as_ref(), new.as_ref()) {
            return Ok(None);
        }
        Ok(Some(DiffEntry {
            old: old
                .map(|entry| row_version(&mut state, &entry))
                .transpose()?,
            new: new
                .map(|entry| row_version(&mut state, &entry))
                .transpose()?,
            dataset: row.0,
            key: row.1,
        }))
    }
}

impl Iterator for Diff {
    type Item = Result<DiffEntry>;

    fn next(&mut self) -> Option<Result<DiffEntry>> {
        loop {
            let row = self.rows.next()?;
            if self.dataset.as_ref().is_some_and(|d| *d != row.0) {
                continue;
            }
            match self.compare(row) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
