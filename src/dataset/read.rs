//! Reading through the repository's current view: shortcuts for the most common reads,
//! and a row's whole history.

use super::Repository;
use super::index::entries_until;
use super::view::{RepoStatus, Row, RowVersion};
use crate::error::Result;

impl Repository {
    /// The row at `key` in `dataset` in the current view (the checkout, else latest).
    pub fn get(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Option<Row>> {
        self.view()?.get(dataset, key)
    }

    /// Every concurrent version of a row at latest, newest first.
    pub fn forks(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        self.latest()?.forks(dataset, key)
    }

    /// Every version of a row ever written here, on any fork, newest first (in the order
    /// this repository indexed them). Costs O(versions of that row).
    pub fn history(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        let mut tables = self.graph.store().lock();
        let entries = entries_until(
            &mut tables,
            dataset.as_ref(),
            key.as_ref(),
            u64::MAX,
            |_| false,
        )?;
        entries
            .into_iter()
            .map(|entry| self.row_version(&mut tables, entry))
            .collect()
    }

    /// A stream of a file row's bytes in the current view, checked against its hash as it
    /// is read.
    pub fn open_file(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<super::BlobReader> {
        self.view()?.open_file(dataset, key)
    }

    /// The repository's counters in the current view.
    pub fn status(&self) -> Result<RepoStatus> {
        Ok(self.view()?.status())
    }
}
