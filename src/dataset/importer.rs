//! Streaming imports: rows in one at a time, a commit per batch, re-runnable.
//!
//! An import leaves out rows whose value is already what it would write, so running the
//! same import again writes nothing, and an interrupted import can simply be run again to
//! finish it. Into a dataset that had no row at all when the import started, the importer
//! knows which rows are new (it remembers, in a Bloom filter, the keys it has written), so
//! the index reads nothing for them: importing into a new dataset costs no storage read
//! per row, however large the dataset grows.

use std::sync::{Arc, Mutex};

use fastbloom::BloomFilter;

use super::Repository;
use super::commit::{Content, OpKind, Operation};
use super::transaction::{Fresh, Parents, Parts};
use super::version::Version;
use crate::error::Result;

/// Keys one Bloom filter is sized for; a larger import adds another.
const KEYS_PER_FILTER: usize = 1 << 20;
const FALSE_POSITIVES: f64 = 0.01;

/// The keys an import has written, for knowing which rows are new.
struct Written {
    filters: Vec<BloomFilter>,
    in_last: usize,
}

impl Written {
    fn new() -> Written {
        Written {
            filters: Vec::new(),
            in_last: KEYS_PER_FILTER,
        }
    }

    fn insert(&mut self, key: &[u8]) {
        if self.in_last == KEYS_PER_FILTER {
            self.filters
                .push(BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(KEYS_PER_FILTER));
            self.in_last = 0;
        }
        if let Some(filter) = self.filters.last_mut() {
            filter.insert(key);
            self.in_last += 1;
        }
    }

    fn may_contain(&self, key: &[u8]) -> bool {
        self.filters.iter().any(|filter| filter.contains(key))
    }
}

/// What the importer knows about the dataset it fills.
struct Knowledge {
    /// The dataset had no entry at all when the import started.
    started_empty: bool,
    /// The last commit indexed when this knowledge was last true (the import's own).
    after: u64,
    written: Written,
}

/// A streaming import; see [`Repository::importer`].
pub struct Importer<'a> {
    repo: &'a Repository,
    dataset: Vec<u8>,
    batch_size: usize,
    message: Option<String>,
    force: bool,
    pending: Vec<Operation>,
    committed: Vec<Version>,
    /// Rows in committed batches that changed their row.
    rows_written: u64,
    /// Rows given to the importer that are in committed batches.
    rows_done: u64,
    knowledge: Option<Arc<Mutex<Knowledge>>>,
}

impl Repository {
    /// Imports rows into `dataset`, one commit per `batch_size` rows, leaving out rows that
    /// already hold the value given. A row that fails (the iterator yields an error) stops
    /// the import: the batches before it stay committed, nothing of its own batch is.
    /// Returns the versions committed.
    pub fn import<I>(
        &self,
        dataset: impl AsRef<[u8]>,
        rows: I,
        batch_size: usize,
        message: Option<&str>,
    ) -> Result<Vec<Version>>
    where
        I: IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    {
        let mut importer = self.importer(dataset, batch_size, message);
        for row in rows {
            let (key, value) = row?;
            importer.put(key, value)?;
        }
        importer.finish()
    }

    /// Starts a streaming import into `dataset`: rows go in one at a time and are committed
    /// every `batch_size` rows; the importer can always say what it has committed.
    pub fn importer(
        &self,
        dataset: impl AsRef<[u8]>,
        batch_size: usize,
        message: Option<&str>,
    ) -> Importer<'_> {
        Importer {
            repo: self,
            dataset: dataset.as_ref().to_vec(),
            batch_size: batch_size.max(1),
            message: message.map(str::to_string),
            force: false,
            pending: Vec::new(),
            committed: Vec::new(),
            rows_written: 0,
            rows_done: 0,
            knowledge: None,
        }
    }
}

impl Importer<'_> {
    /// Writes every row, even one whose value is already what it would write.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Adds a row; commits the batch when it is full.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.pending.push(Operation {
            kind: OpKind::Put,
            content: Content::Row,
            dataset: self.dataset.clone(),
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
        });
        if self.pending.len() >= self.batch_size {
            self.commit_batch()?;
        }
        Ok(())
    }

    fn knowledge(&mut self) -> Result<Arc<Mutex<Knowledge>>> {
        if let Some(knowledge) = &self.knowledge {
            return Ok(knowledge.clone());
        }
        let mut tables = self.repo.graph.store().lock();
        let knowledge = Arc::new(Mutex::new(Knowledge {
            started_empty: !tables.dataset_has_entries(&self.dataset)?,
            after: tables.last_iseq()?,
            written: Written::new(),
        }));
        self.knowledge = Some(knowledge.clone());
        Ok(knowledge)
    }

    fn commit_batch(&mut self) -> Result<()> {
        let ops = std::mem::take(&mut self.pending);
        let given = ops.len() as u64;
        let keys: Vec<Vec<u8>> = ops.iter().map(|op| op.key.clone()).collect();
        let knowledge = self.knowledge()?;
        let (after, started_empty) = {
            let k = knowledge.lock().unwrap_or_else(|p| p.into_inner());
            (k.after, k.started_empty)
        };
        let dataset = self.dataset.clone();
        let is_fresh = |d: &[u8], key: &[u8]| {
            started_empty
                && d == dataset.as_slice()
                && !knowledge
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .written
                    .may_contain(key)
        };
        let parts = Parts {
            ops,
            message: self.message.clone(),
            parents: Parents::Auto,
            policy: None,
            skip_unchanged: !self.force,
            fresh: Some(Fresh {
                after,
                is_fresh: &is_fresh,
            }),
            pages: None,
        };
        let committed = self.repo.commit_parts(parts)?;
        let mut k = knowledge.lock().unwrap_or_else(|p| p.into_inner());
        for key in &keys {
            k.written.insert(key);
        }
        if let Some(version) = committed {
            let mut tables = self.repo.graph.store().lock();
            let iseq = tables.iseq_of(version.as_str())?.unwrap_or(0);
            // Another writer may have written in between: then nothing is known any more.
            k.started_empty &= iseq == after + 1;
            k.after = iseq;
            drop(tables);
            let changed = self.repo.operation_count(&version)?;
            self.rows_written += changed;
            self.committed.push(version);
        }
        self.rows_done += given;
        Ok(())
    }

    /// The versions committed so far, oldest first.
    pub fn committed(&self) -> &[Version] {
        &self.committed
    }

    /// How many rows given to the importer are in committed batches.
    pub fn rows_committed(&self) -> u64 {
        self.rows_done
    }

    /// How many of those changed their row (the others already held their value).
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// Commits the last, partial batch; returns every version committed.
    pub fn finish(mut self) -> Result<Vec<Version>> {
        if !self.pending.is_empty() {
            self.commit_batch()?;
        }
        Ok(self.committed)
    }
}
