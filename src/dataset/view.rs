//! Read-only views of the whole repository: at one version (a checkout), or at latest
//! (every current head, forks visible).
//!
//! A view is an ancestry (the commits it reads) fixed when the view is made, so later
//! writes never change what it reads. A `get` is one seek into the row's entries; range
//! reads are one forward scan of the dataset's entries a page at a time, holding nothing
//! between pages.

use std::sync::Arc;

use super::commit::FileRef;
use super::index::{Ancestry, Counts, RowEntry, RowState};
use super::range::{Range, Rows};
use super::version::Version;
use super::{BlobReader, Repository};
use crate::error::{Error, Result};
use crate::store::Tables;

/// A row as a view sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The dataset it belongs to.
    pub dataset: Vec<u8>,
    /// Its key.
    pub key: Vec<u8>,
    /// The row's bytes (empty for a file row: see `file`).
    pub value: Vec<u8>,
    /// Set when the row is a file in the blob store.
    pub file: Option<FileRef>,
    /// The version id: the commit that wrote this value.
    pub version: Version,
    /// True when the row has several concurrent versions in this view (a fork); the value
    /// is the newest of them. [`View::forks`] lists them all.
    pub forked: bool,
}

impl Row {
    /// The value parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value).map_err(|e| Error::malformed("JSON row", e))
    }
}

/// One version of a row, as history and forks list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowVersion {
    /// The commit that wrote it.
    pub version: Version,
    /// The device (log) that wrote it.
    pub log: String,
    /// This repository's change number of that commit.
    pub change: u64,
    /// The commit's time, ms since the Unix epoch, by the writer's clock.
    pub time: u64,
    /// True for a delete (a tombstone: the row's history is kept).
    pub deleted: bool,
    /// The row's bytes (empty for deletes and files).
    pub value: Vec<u8>,
    /// Set when this version of the row is a file.
    pub file: Option<FileRef>,
}

/// A repository's counters, as of one view.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepoStatus {
    /// Live rows (files excluded).
    pub rows: u64,
    /// Live files.
    pub files: u64,
    /// Commits on the first-parent path of the version (the newest head's, at latest).
    pub versions: u64,
    /// Bytes of commits and operations on that path.
    pub size: u64,
    /// Time of the newest commit seen, ms since the Unix epoch.
    pub modified: u64,
    /// How many heads the view reads (1 for a single version).
    pub heads: usize,
    /// Commits stored but not yet visible (payload or parent missing).
    pub pending: u64,
}

/// What a view reads: an ancestry, the versions it stands for, and its counters.
#[derive(Debug)]
pub(super) struct Lens {
    pub ancestry: Ancestry,
    /// The version (one), or the heads at latest (ordered by key).
    pub heads: Vec<Version>,
    pub latest: bool,
    pub status: RepoStatus,
}

/// A read-only view of the repository at one version or at latest.
#[derive(Clone)]
pub struct View {
    pub(super) repo: Repository,
    pub(super) lens: Arc<Lens>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("heads", &self.lens.heads)
            .field("latest", &self.lens.latest)
            .finish()
    }
}

/// Builds a row from its state, or `None` for a delete.
pub(super) fn row_of(
    dataset: &[u8],
    key: Vec<u8>,
    state: RowState,
    with_value: bool,
) -> Result<Option<Row>> {
    let forked = state.forked();
    let Some(winner) = state.heads.into_iter().next().filter(RowEntry::live) else {
        return Ok(None);
    };
    let (value, file) = if winner.file {
        (Vec::new(), Some(FileRef::decode(&winner.value)?))
    } else if with_value {
        (winner.value, None)
    } else {
        (Vec::new(), None)
    };
    Ok(Some(Row {
        dataset: dataset.to_vec(),
        key,
        value,
        file,
        version: Version::new(winner.version),
        forked,
    }))
}

impl Repository {
    /// Describes one row entry as a row version.
    pub(super) fn row_version(&self, tables: &mut Tables, entry: RowEntry) -> Result<RowVersion> {
        let record = self.index.record(tables, entry.iseq)?;
        let file = if entry.file && !entry.deleted {
            Some(FileRef::decode(&entry.value)?)
        } else {
            None
        };
        Ok(RowVersion {
            version: Version::new(entry.version),
            log: record.inner.log.clone(),
            change: record.inner.change,
            time: record.inner.modified,
            deleted: entry.deleted,
            value: if entry.deleted || entry.file {
                Vec::new()
            } else {
                entry.value
            },
            file,
        })
    }
}

impl View {
    /// The versions this view reads: one for a checkout, every head at latest.
    pub fn heads(&self) -> &[Version] {
        &self.lens.heads
    }

    /// The version this view is at, when it reads one version (not latest).
    pub fn version(&self) -> Option<&Version> {
        match self.lens.heads.as_slice() {
            [one] if !self.lens.latest => Some(one),
            _ => None,
        }
    }

    /// Whether this is the view at latest.
    pub fn is_latest(&self) -> bool {
        self.lens.latest
    }

    pub(super) fn state(
        &self,
        tables: &mut Tables,
        dataset: &[u8],
        key: &[u8],
    ) -> Result<Option<RowState>> {
        self.repo
            .index
            .row_state(tables, dataset, key, &self.lens.ancestry)
    }

    /// The row at `key` in `dataset`, or `None` if it does not exist (or is deleted).
    pub fn get(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Option<Row>> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        let mut tables = self.repo.graph.store().lock();
        match self.state(&mut tables, dataset, key)? {
            Some(state) => row_of(dataset, key.to_vec(), state, true),
            None => Ok(None),
        }
    }

    /// A stream of a file row's bytes in this view, checked against its hash as it is read.
    pub fn open_file(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<BlobReader> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        let row = self.get(dataset, key)?.ok_or_else(|| Error::RowNotFound {
            dataset: dataset.to_vec(),
            key: key.to_vec(),
        })?;
        let file = row.file.ok_or_else(|| {
            Error::InvalidArgument(format!("row {} is not a file", crate::error::show(key)))
        })?;
        self.repo.blobs.open(&file)
    }

    /// Every concurrent version of the row in this view, newest first (one when the row
    /// is not forked; none if it never existed). Deletes are included, flagged.
    pub fn forks(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        let mut tables = self.repo.graph.store().lock();
        let Some(state) = self.state(&mut tables, dataset, key)? else {
            return Ok(Vec::new());
        };
        state
            .heads
            .into_iter()
            .map(|entry| self.repo.row_version(&mut tables, entry))
            .collect()
    }

    /// Rows of `dataset` in key order, within `range`.
    pub fn range(&self, dataset: impl AsRef<[u8]>, range: Range) -> Rows {
        Rows::new(self.clone(), dataset.as_ref().to_vec(), range)
    }

    /// Datasets with at least one live row in this view, in byte order.
    pub fn datasets(&self) -> Result<Vec<Vec<u8>>> {
        let names = self.repo.graph.store().lock().datasets()?;
        let mut live = Vec::new();
        for name in names {
            let mut rows = self.range(&name, Range::all().keys_only().limit(1));
            if rows.next().transpose()?.is_some() {
                live.push(name);
            }
        }
        Ok(live)
    }

    /// The repository's counters as of this view.
    pub fn status(&self) -> RepoStatus {
        self.lens.status.clone()
    }
}

/// The status of a view from the counters of its versions.
pub(super) fn status_of(
    counts: Counts,
    newest: &super::index::Record,
    heads: usize,
    pending: u64,
    modified: u64,
) -> RepoStatus {
    RepoStatus {
        rows: counts.rows,
        files: counts.files,
        versions: newest.inner.versions,
        size: newest.inner.size,
        modified,
        heads,
        pending,
    }
}
