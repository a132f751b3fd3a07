//! Range reads: a dataset's rows in key order, as a view sees them.
//!
//! A dataset's row entries are stored by key, newest first within a row, so a range read
//! is one forward scan: a page of rows at a time, each resolved from the entries the scan
//! already holds (a row that was never written concurrently needs only its first entry).
//! Nothing is held between pages: memory stays bounded and writers are never blocked for
//! long.

use std::ops::Bound;

use super::index::{RowEntry, heads};
use super::view::{Row, View, row_of};
use crate::error::Result;

/// How many rows one page reads.
const PAGE: usize = 256;

/// How many entries of one row a page collects before leaving the rest to a seek.
const PER_ROW: usize = 8;

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
        let end = match &self.range.end {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(key) => Bound::Included(key.as_slice()),
            Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        };
        let start = match &self.cursor {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(key) => Bound::Included(key.as_slice()),
            Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        };
        let scanned = tables.rows_page(&self.dataset, start, end, PAGE, PER_ROW)?;
        let exhausted = scanned.len() < PAGE;
        let mut rows = Vec::new();
        let mut last = None;
        for scan in scanned {
            last = Some(scan.key.clone());
            let entries = scan
                .entries
                .into_iter()
                .map(|(iseq, bytes)| RowEntry::decode(iseq, &bytes))
                .collect::<Result<Vec<_>>>()?;
            // The collected entries decide the row when they reach one the view holds that
            // covers the older ones; otherwise the row's own entries are read with a seek.
            let decided = scan.complete
                || entries
                    .iter()
                    .any(|e| e.covers_older && ancestry.contains(e.iseq));
            let state = if decided {
                heads(&mut repo.index.lookup(&mut tables), entries, ancestry)?
            } else {
                repo.index
                    .row_state(&mut tables, &self.dataset, &scan.key, ancestry)?
            };
            if let Some(state) = state
                && let Some(row) = row_of(&self.dataset, &scan.key, state, !self.range.keys_only)?
            {
                rows.push(row);
                if rows.len() == wanted {
                    break;
                }
            }
        }
        match last {
            Some(key) if !exhausted || rows.len() == wanted => self.cursor = Bound::Excluded(key),
            _ => self.done = true,
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
