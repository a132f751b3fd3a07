//! Read-only views of the whole repository: at one version (a checkout), or at "latest"
//! (every current head, with forks visible).
//!
//! A view resolves its paths once, when it is made; after that a `get` costs one seek per
//! layer on the path plus one to read the value, however long the history. Range reads
//! merge the layers' sorted key lists a page at a time, holding no storage iterator between
//! pages, so memory stays bounded and writers are never blocked for long.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use super::commit::FileRef;
use super::read::{Lens, Resolved};
use super::records::{self, Pointer};
use super::{BlobReader, Repository};
use crate::error::{Error, Result};
use crate::graph::State;
use crate::keys::{self, KeyReader};
use crate::kv::prefix_end;

/// How many candidate keys a range read takes from each layer per page.
const PAGE: usize = 256;

/// A row as a view sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub dataset: Vec<u8>,
    pub key: Vec<u8>,
    /// The row's bytes (empty for a file row: see `file`).
    pub value: Vec<u8>,
    /// Set when the row is a file in the blob store.
    pub file: Option<FileRef>,
    /// The version id: the key of the commit that wrote this value.
    pub version: String,
    /// True when the row has several versions across the current heads (a fork); the
    /// value is the newest of them. [`View::forks`] lists them all.
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
    /// The key of the commit that wrote it.
    pub version: String,
    /// The device (log) that wrote it.
    pub log: String,
    /// This repository's change number of that commit.
    pub change: u64,
    /// The commit's time, ms since the Unix epoch.
    pub time: u64,
    /// True for a delete (a tombstone: the row's history is kept).
    pub deleted: bool,
    /// The row's bytes (empty for deletes and files).
    pub value: Vec<u8>,
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

/// Bounds and shape of a range read over one dataset's rows.
#[derive(Clone, Debug)]
pub struct Range {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
    pub limit: Option<usize>,
    /// Read keys only: values are left empty and not loaded.
    pub keys_only: bool,
}

impl Default for Range {
    fn default() -> Self {
        Range {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: None,
            keys_only: false,
        }
    }
}

impl Range {
    /// Every row.
    pub fn all() -> Range {
        Range::default()
    }

    pub fn gt(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.start = Bound::Excluded(key.into());
        self
    }

    pub fn gte(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.start = Bound::Included(key.into());
        self
    }

    pub fn lt(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.end = Bound::Excluded(key.into());
        self
    }

    pub fn lte(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.end = Bound::Included(key.into());
        self
    }

    pub fn limit(mut self, limit: usize) -> Range {
        self.limit = Some(limit);
        self
    }

    pub fn keys_only(mut self) -> Range {
        self.keys_only = true;
        self
    }

    fn below_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => true,
            Bound::Included(end) => key <= end.as_slice(),
            Bound::Excluded(end) => key < end.as_slice(),
        }
    }
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
            .field("heads", &self.heads())
            .finish()
    }
}

/// Builds a row from an entry, or `None` for a delete.
fn row_of(dataset: &[u8], key: &[u8], resolved: Resolved, with_value: bool) -> Result<Option<Row>> {
    let Resolved { winner, forks } = resolved;
    if winner.deleted {
        return Ok(None);
    }
    let (value, file) = if winner.file {
        (Vec::new(), Some(FileRef::decode(&winner.value)?))
    } else if with_value {
        (winner.value, None)
    } else {
        (Vec::new(), None)
    };
    Ok(Some(Row {
        dataset: dataset.to_vec(),
        key: key.to_vec(),
        value,
        file,
        version: winner.version,
        forked: !forks.is_empty(),
    }))
}

/// Describes one entry as a row version.
pub(super) fn row_version(state: &mut State, entry: &Pointer) -> Result<RowVersion> {
    let node = state
        .node(&entry.version)?
        .ok_or_else(|| Error::corrupt(format!("version {} is missing", entry.version)))?;
    let time = records::node_status(&mut state.kv, &entry.version)?.map_or(0, |s| s.modified);
    let (value, file) = match (entry.deleted, entry.file) {
        (true, _) => (Vec::new(), None),
        (false, true) => (Vec::new(), Some(FileRef::decode(&entry.value)?)),
        (false, false) => (entry.value.clone(), None),
    };
    Ok(RowVersion {
        version: entry.version.clone(),
        log: node.log,
        change: entry.change,
        time,
        deleted: entry.deleted,
        value,
        file,
    })
}

impl View {
    /// The versions this view reads: one for a checkout, every head at latest.
    pub fn heads(&self) -> Vec<String> {
        match &*self.lens {
            Lens::Empty => Vec::new(),
            Lens::One { version, .. } => vec![version.clone()],
            Lens::Many { heads, .. } => heads.iter().map(|(key, _)| key.clone()).collect(),
        }
    }

    /// The row at `key` in `dataset`, or `None` if it does not exist (or is deleted).
    pub fn get(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Option<Row>> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        let mut state = self.repo.graph.lock();
        match self.lens.resolve(&mut state.kv, dataset, key)? {
            Some(resolved) => row_of(dataset, key, resolved, true),
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
        let row = self.get(dataset, key)?.ok_or_else(|| {
            Error::NotFound(format!(
                "row {} in dataset {}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(dataset)
            ))
        })?;
        let file = row.file.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "row {} is not a file",
                String::from_utf8_lossy(key)
            ))
        })?;
        self.repo.blobs.open(&file)
    }

    /// Every distinct version of the row across the view's heads (one entry when the row
    /// is not forked; none if it never existed). Deletes are included, flagged.
    pub fn forks(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Vec<RowVersion>> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        let mut state = self.repo.graph.lock();
        let Some(resolved) = self.lens.resolve(&mut state.kv, dataset, key)? else {
            return Ok(Vec::new());
        };
        let entries = if resolved.forks.is_empty() {
            vec![resolved.winner]
        } else {
            resolved.forks
        };
        let mut versions = entries
            .iter()
            .map(|entry| row_version(&mut state, entry))
            .collect::<Result<Vec<_>>>()?;
        versions.sort_by(|a, b| (b.time, &b.version).cmp(&(a.time, &a.version)));
        Ok(versions)
    }

    /// Rows of `dataset` in key order, within `range`.
    pub fn range(&self, dataset: impl AsRef<[u8]>, range: Range) -> Rows {
        Rows {
            view: self.clone(),
            dataset: dataset.as_ref().to_vec(),
            cursor: range.start.clone(),
            range,
            page: Vec::new().into_iter(),
            emitted: 0,
            done: false,
        }
    }

    /// Datasets with at least one live row in this view, in byte order.
    pub fn datasets(&self) -> Result<Vec<Vec<u8>>> {
        let names: Vec<Vec<u8>> = {
            let mut state = self.repo.graph.lock();
            state
                .kv
                .scan_prefix(keys::META_DATASETS)?
                .map(|(key, _)| KeyReader::new(&key, keys::META_DATASETS)?.bytes())
                .collect::<Result<_>>()?
        };
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
    pub fn status(&self) -> Result<RepoStatus> {
        let heads = self.heads();
        let mut state = self.repo.graph.lock();
        let pending = super::index::pending_count(&mut state)?;
        let mut status = RepoStatus {
            heads: heads.len(),
            pending,
            ..RepoStatus::default()
        };
        let mut newest: Option<u64> = None;
        for head in &heads {
            let s = records::node_status(&mut state.kv, head)?
                .ok_or_else(|| Error::corrupt(format!("head {head} is not indexed")))?;
            (status.rows, status.files) = (s.rows, s.files);
            status.modified = status.modified.max(s.modified);
            if newest.is_none_or(|time| s.modified >= time) {
                newest = Some(s.modified);
                status.versions = s.versions;
                status.size = s.size;
            }
        }
        if let Lens::Many { base, .. } = &*self.lens {
            drop(state);
            (status.rows, status.files) = self.live_counts_at_latest(&heads, base)?;
        }
        Ok(status)
    }

    /// Live rows and files as latest (several heads) shows them: the common ancestor's,
    /// adjusted by every row any head touched since, as resolved at latest. Costs the
    /// changes since the ancestor; heads with no common ancestor are counted row by row.
    fn live_counts_at_latest(
        &self,
        heads: &[String],
        base_path: &[(u64, u64)],
    ) -> Result<(u64, u64)> {
        let mut state = self.repo.graph.lock();
        let Some(base) = self.repo.common_base(&mut state, heads)? else {
            drop(state);
            let (mut rows, mut files) = (0, 0);
            for dataset in self.datasets()? {
                for row in self.range(&dataset, Range::all().keys_only()) {
                    if row?.file.is_some() {
                        files += 1;
                    } else {
                        rows += 1;
                    }
                }
            }
            return Ok((rows, files));
        };
        let at_base = records::node_status(&mut state.kv, &base)?
            .ok_or_else(|| Error::corrupt(format!("common ancestor {base} is not indexed")))?;
        let mut counts = at_base;
        let mut touched = BTreeSet::new();
        for head in heads {
            for node in super::lineage::merge_base(&mut state, &base, head)?.only_b {
                super::lineage::touched(&mut state, &node, &mut touched)?;
            }
        }
        for (dataset, key) in touched {
            let before = super::read::lookup(&mut state.kv, base_path, &dataset, &key)?;
            let after = self.lens.resolve(&mut state.kv, &dataset, &key)?;
            super::index::count(
                &mut counts,
                before.as_ref(),
                after.as_ref().map(|r| &r.winner),
            );
        }
        Ok((counts.rows, counts.files))
    }
}

/// The rows of a range read, a page at a time; see [`View::range`].
pub struct Rows {
    view: View,
    dataset: Vec<u8>,
    range: Range,
    /// Where the next page starts.
    cursor: Bound<Vec<u8>>,
    page: std::vec::IntoIter<Row>,
    emitted: usize,
    done: bool,
}

impl Rows {
    /// Reads the next page of candidate keys from every layer the view reads and resolves
    /// them. Leaves `page` empty only when the range is exhausted.
    fn fill(&mut self) -> Result<()> {
        let mut state = self.view.repo.graph.lock();
        let layers = self.view.lens.layers();
        let mut candidates: BTreeSet<Vec<u8>> = BTreeSet::new();
        // The smallest last key of a layer whose page was full: beyond it, other layers'
        // keys may still be missing from this page.
        let mut horizon: Option<Vec<u8>> = None;
        for (layer, _) in layers {
            let prefix = keys::data_latest_dataset(layer, &self.dataset);
            let end = prefix_end(&prefix.clone().finish());
            let start = match &self.cursor {
                Bound::Unbounded => prefix.finish(),
                Bound::Included(key) | Bound::Excluded(key) => prefix.bytes(key).finish(),
            };
            let mut taken = 0;
            let mut last = None;
            for (entry, _) in state.kv.scan(&start, &end)? {
                let mut reader = KeyReader::new(&entry, keys::DATA_LATEST)?;
                reader.u64()?;
                reader.bytes()?;
                let key = reader.bytes()?;
                if let Bound::Excluded(cursor) = &self.cursor
                    && key == *cursor
                {
                    continue;
                }
                if !self.range.below_end(&key) {
                    break;
                }
                taken += 1;
                last = Some(key.clone());
                candidates.insert(key);
                if taken == PAGE {
                    break;
                }
            }
            if taken == PAGE
                && let Some(last) = last
                && horizon.as_ref().is_none_or(|h| last < *h)
            {
                horizon = Some(last);
            }
        }
        if let Some(horizon) = &horizon {
            candidates.retain(|key| key <= horizon);
        }
        // Resolve only as many rows as the caller's limit still wants; the next page
        // starts after the last key resolved.
        let wanted = self
            .range
            .limit
            .map(|limit| limit.saturating_sub(self.emitted));
        let mut rows = Vec::new();
        let mut stopped_at = None;
        for key in &candidates {
            if wanted.is_some_and(|wanted| rows.len() >= wanted) {
                stopped_at = Some(key);
                break;
            }
            if let Some(resolved) = self.view.lens.resolve(&mut state.kv, &self.dataset, key)?
                && let Some(row) = row_of(&self.dataset, key, resolved, !self.range.keys_only)?
            {
                rows.push(row);
            }
        }
        match (stopped_at, horizon) {
            (Some(next), _) => self.cursor = Bound::Included(next.clone()),
            (None, Some(horizon)) => self.cursor = Bound::Excluded(horizon),
            (None, None) => self.done = true,
        }
        self.page = rows.into_iter();
        Ok(())
    }
}

impl Iterator for Rows {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            if self.range.limit.is_some_and(|limit| self.emitted >= limit) {
                return None;
            }
            if let Some(row) = self.page.next() {
                self.emitted += 1;
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            if let Err(error) = self.fill() {
                self.done = true;
                return Some(Err(error));
            }
        }
    }
}
