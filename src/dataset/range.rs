//! Range reads: a dataset's rows in key order, as a view sees them.
//!
//! A dataset's row entries are stored by key, newest first within a row, so a range read
//! is one forward scan: a page of rows at a time, each resolved from the entries the scan
//! already holds (a row that was never written concurrently needs only its first entry).
//! Nothing but a cursor is held between pages: memory stays bounded and writers are never
//! blocked for long.
//!
//! At an old version of a dataset that grew afterwards the scan would step over every row
//! written since. So where a scanned page finds fewer than one row in `SPARSE` in the view,
//! the read collects, once, the keys in its range that the view's own history wrote (from
//! the versions' payloads, at most `HISTORY_KEYS` of them) and reads just those rows, a
//! seek each; a view whose history wrote more goes on scanning.

use std::collections::{BTreeSet, VecDeque};
use std::ops::{Bound, RangeBounds};

use super::Repository;
use super::index::{Ancestry, RowEntry, RowState, heads, read_record};
use super::view::{Row, View, row_of};
use crate::error::Result;
use crate::store::{RowScan, Tables};

/// How many rows one page reads.
pub(super) const PAGE: usize = 256;

/// How many entries of one row a page collects before leaving the rest to a seek.
pub(super) const PER_ROW: usize = 8;

/// A scanned page whose rows the view holds fewer than one in `SPARSE` of makes the read
/// try the view's history: a row found by a seek costs about as much as 13 rows stepped
/// over (22 µs and 1.7 µs at 10^5 rows on disk, `docs/performance.md`).
const SPARSE: usize = 16;

/// The most keys a range read collects from a view's history (a few MB). Looking for them
/// it reads at most four times as many operations, a version record counting as
/// `VERSION_COST` operations (a record read costs about as much as decoding that many):
/// a failed attempt costs a bounded tenth of a second or so, once per read.
const HISTORY_KEYS: usize = 1 << 16;
const VERSION_COST: usize = 16;

/// Where a range read's next page comes from.
enum Source {
    /// A scan of the dataset's entries; `tried` once the history was found too large.
    Scan { tried: bool },
    /// The keys the view's history wrote from the cursor on, each read with a seek.
    History(VecDeque<Vec<u8>>),
}

/// A row read by a scan: its key, its first entries (newest first), and whether they are
/// all it has.
pub(super) struct Scanned {
    pub(super) key: Vec<u8>,
    entries: Vec<RowEntry>,
    complete: bool,
}

impl Scanned {
    /// Decodes what a page scan read.
    pub(super) fn decode(scan: RowScan) -> Result<Scanned> {
        Ok(Scanned {
            entries: scan
                .entries
                .into_iter()
                .map(|(iseq, bytes)| RowEntry::decode_owned(iseq, bytes))
                .collect::<Result<Vec<_>>>()?,
            key: scan.key,
            complete: scan.complete,
        })
    }

    /// The row's state at `ancestry`. The scanned entries decide it when they reach one
    /// the view holds that covers the older ones; otherwise the row's own entries are
    /// read with a seek.
    pub(super) fn state(
        &self,
        repo: &Repository,
        tables: &mut Tables,
        dataset: &[u8],
        ancestry: &Ancestry,
    ) -> Result<Option<RowState>> {
        if self.decided(ancestry) {
            heads(
                &mut repo.index.lookup(tables),
                self.entries.iter().cloned(),
                ancestry,
            )
        } else {
            repo.index.row_state(tables, dataset, &self.key, ancestry)
        }
    }

    /// [`state`](Scanned::state), consuming the scan so that its entries are not copied;
    /// with the row's key.
    pub(super) fn into_state(
        mut self,
        repo: &Repository,
        tables: &mut Tables,
        dataset: &[u8],
        ancestry: &Ancestry,
    ) -> Result<(Vec<u8>, Option<RowState>)> {
        let state = if self.decided(ancestry) {
            let entries = std::mem::take(&mut self.entries);
            heads(&mut repo.index.lookup(tables), entries, ancestry)?
        } else {
            self.state(repo, tables, dataset, ancestry)?
        };
        Ok((self.key, state))
    }

    /// Whether the scanned entries decide the row at `ancestry`: they are all it has, or
    /// one the view holds covers the older ones.
    fn decided(&self, ancestry: &Ancestry) -> bool {
        self.complete
            || self
                .entries
                .iter()
                .any(|e| e.covers_older && ancestry.contains(e.iseq))
    }
}

/// Bounds and shape of a range read over one dataset's rows.
#[derive(Clone, Debug)]
pub struct Range {
    /// Where the range starts.
    pub start: Bound<Vec<u8>>,
    /// Where it ends.
    pub end: Bound<Vec<u8>>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// Read keys only: values are left empty.
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

    /// Rows whose key starts with `prefix`.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Range {
        let prefix = prefix.into();
        let end = crate::store::kv::prefix_end(&prefix);
        Range {
            start: Bound::Included(prefix),
            end: if end.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(end)
            },
            ..Range::default()
        }
    }

    /// Keys greater than `key`.
    pub fn gt(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.start = Bound::Excluded(key.into());
        self
    }

    /// Keys greater than or equal to `key`.
    pub fn gte(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.start = Bound::Included(key.into());
        self
    }

    /// Keys less than `key`.
    pub fn lt(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.end = Bound::Excluded(key.into());
        self
    }

    /// Keys less than or equal to `key`.
    pub fn lte(mut self, key: impl Into<Vec<u8>>) -> Range {
        self.end = Bound::Included(key.into());
        self
    }

    /// At most `limit` rows.
    pub fn limit(mut self, limit: usize) -> Range {
        self.limit = Some(limit);
        self
    }

    /// Keys only: values are not returned.
    pub fn keys_only(mut self) -> Range {
        self.keys_only = true;
        self
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
    source: Source,
}

impl Rows {
    pub(super) fn new(view: View, dataset: Vec<u8>, range: Range) -> Rows {
        Rows {
            view,
            dataset,
            cursor: range.start.clone(),
            range,
            page: Vec::new().into_iter(),
            emitted: 0,
            done: false,
            source: Source::Scan { tried: false },
        }
    }

    /// Reads and resolves the next page of rows. Leaves `page` empty only when the range is
    /// exhausted.
    fn fill(&mut self) -> Result<()> {
        let repo = self.view.repo.clone();
        let mut tables = repo.graph.store().lock();
        let ancestry = &self.view.lens.ancestry;
        let wanted = self
            .range
            .limit
            .map_or(PAGE, |limit| limit.saturating_sub(self.emitted).min(PAGE));
        let end = self.range.end.as_ref().map(Vec::as_slice);
        let start = self.cursor.as_ref().map(Vec::as_slice);
        let (scanned, exhausted) = match &mut self.source {
            Source::Scan { .. } => {
                let scanned = tables.rows_page(&self.dataset, start, end, PAGE, PER_ROW)?;
                let exhausted = scanned.len() < PAGE;
                (scanned, exhausted)
            }
            Source::History(keys) => {
                let page: Vec<RowScan> = (keys.drain(..keys.len().min(PAGE)))
                    .map(|key| RowScan {
                        key,
                        entries: Vec::new(),
                        complete: false,
                    })
                    .collect();
                (page, keys.is_empty())
            }
        };
        // The next page starts after the page's last row, or after the row that filled
        // this one (whose key is then the last row's).
        let mut last = scanned.last().map(|scan| scan.key.clone());
        let mut rows: Vec<Row> = Vec::new();
        let mut examined = 0;
        for scan in scanned {
            examined += 1;
            let scan = Scanned::decode(scan)?;
            let (key, state) = scan.into_state(&repo, &mut tables, &self.dataset, ancestry)?;
            if let Some(state) = state
                && let Some(row) = row_of(&self.dataset, key, state, !self.range.keys_only)?
            {
                rows.push(row);
                if rows.len() == wanted {
                    last = rows.last().map(|row| row.key.clone());
                    break;
                }
            }
        }
        match last {
            Some(key) if !exhausted || rows.len() == wanted => self.cursor = Bound::Excluded(key),
            _ => self.done = true,
        }
        let sparse = examined == PAGE && rows.len() * SPARSE < examined;
        if matches!(self.source, Source::Scan { tried: false }) && sparse && !self.done {
            let start = self.cursor.as_ref().map(Vec::as_slice);
            self.source =
                match history_keys(&repo, &mut tables, ancestry, &self.dataset, (start, end))? {
                    Some(keys) => Source::History(keys.into_iter().collect()),
                    None => Source::Scan { tried: true },
                };
        }
        self.page = rows.into_iter();
        Ok(())
    }
}

/// The keys of `dataset` within `bounds` that the versions `view` holds wrote, sorted:
/// every row the view can hold there. `None` when there are more than [`HISTORY_KEYS`], or
/// when finding them would read more than four times that many operations (see
/// [`VERSION_COST`]).
fn history_keys(
    repo: &Repository,
    tables: &mut Tables,
    view: &Ancestry,
    dataset: &[u8],
    bounds: (Bound<&[u8]>, Bound<&[u8]>),
) -> Result<Option<BTreeSet<Vec<u8>>>> {
    let mut budget = HISTORY_KEYS * 4;
    let mut keys = BTreeSet::new();
    for (first, last) in view.to_seqs().iter() {
        for iseq in first..=last {
            budget = match budget.checked_sub(VERSION_COST) {
                Some(left) => left,
                None => return Ok(None),
            };
            // Read past the index's cache: up to 16,384 old records would evict the hot
            // ones every write and read at latest uses.
            let record = read_record(tables, iseq)?;
            let Some(ops) = repo.index.operations_up_to(tables, &record, budget)? else {
                return Ok(None);
            };
            budget -= ops.len();
            for op in ops {
                if op.dataset == dataset
                    && RangeBounds::<[u8]>::contains(&bounds, op.key.as_slice())
                {
                    keys.insert(op.key);
                    if keys.len() > HISTORY_KEYS {
                        return Ok(None);
                    }
                }
            }
        }
    }
    Ok(Some(keys))
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
