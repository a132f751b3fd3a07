//! Records every commit reads and rewrites, kept in memory once read: the index's
//! checkpoint, the counters at latest, the checkout, the last index sequence number, the
//! newest versions' records, each log's last sequence number, and the run of the change
//! index last read (a run holds up to 1,024 node keys, 64 KiB, and readers that go change
//! by change, as the index waking pending commits does, read it once instead of each time).
//! A read of one is a seek, and a seek merges the memtable with every table that may hold
//! the key, so a one-row commit spent most of its time on them and more with every table
//! the repository grew (106 µs a commit after 10^4 commits, 327 µs after 10^5).
//!
//! A memo is filled by the first live read and then kept in step by every write that lands
//! (`WriteSet` carries what it changes); reads at a pinned snapshot never use it.

use std::collections::HashMap;
use std::sync::Arc;

/// How many of the newest versions' node keys, index sequence numbers and records are kept:
/// a commit reads those of the heads it builds on, which are nearly always this recent.
const RECENT_VERSIONS: usize = 256;

/// How many logs' last sequence numbers are kept (a repository has a log per device that
/// wrote to it; past this many, the memo starts again).
const LOGS: usize = 4096;

/// What the memo knows; `None` is "not read yet".
#[derive(Default)]
pub(crate) struct Memo {
    pub(crate) indexed: Option<u64>,
    pub(crate) latest: Option<Option<Vec<u8>>>,
    pub(crate) checkout: Option<Option<String>>,
    pub(crate) last_iseq: Option<u64>,
    versions: HashMap<String, u64>,
    records: HashMap<u64, Vec<u8>>,
    last_seqs: HashMap<String, u64>,
    /// A run of the change index: its first change, its key count and the record. Runs
    /// are written once and never change.
    run: Option<(u64, u64, Arc<Vec<u8>>)>,
}

/// What one write changes in the memo.
#[derive(Default)]
pub(crate) struct MemoWrites {
    pub(crate) indexed: Option<u64>,
    pub(crate) latest: Option<Vec<u8>>,
    pub(crate) checkout: Option<Option<String>>,
    pub(crate) versions: Vec<(String, u64, Vec<u8>)>,
    pub(crate) last_seqs: Vec<(String, u64)>,
}

impl Memo {
    /// The index sequence number of `node`, if it is among the newest versions.
    pub(crate) fn iseq_of(&self, node: &str) -> Option<u64> {
        self.versions.get(node).copied()
    }

    /// The record of version `iseq`, if it is among the newest versions.
    pub(crate) fn record(&self, iseq: u64) -> Option<&[u8]> {
        self.records.get(&iseq).map(Vec::as_slice)
    }

    /// The last sequence number of `log`, if it is known.
    pub(crate) fn last_seq(&self, log: &str) -> Option<u64> {
        self.last_seqs.get(log).copied()
    }

    /// Records the last sequence number of `log`, as read.
    pub(crate) fn set_last_seq(&mut self, log: &str, seq: u64) {
        if self.last_seqs.len() >= LOGS {
            self.last_seqs.clear();
        }
        self.last_seqs.insert(log.to_string(), seq);
    }

    /// The run of the change index holding `change`, if it is the one remembered.
    pub(crate) fn run_holding(&self, change: u64) -> Option<(u64, Arc<Vec<u8>>)> {
        match &self.run {
            Some((first, count, record)) if *first <= change && change - first < *count => {
                Some((*first, Arc::clone(record)))
            }
            _ => None,
        }
    }

    /// Remembers a run of the change index as read.
    pub(crate) fn set_run(&mut self, first: u64, count: u64, record: Arc<Vec<u8>>) {
        self.run = Some((first, count, record));
    }

    /// Applies a write that has landed.
    pub(crate) fn landed(&mut self, writes: MemoWrites) {
        let MemoWrites {
            indexed,
            latest,
            checkout,
            versions,
            last_seqs,
        } = writes;
        if indexed.is_some() {
            self.indexed = indexed;
        }
        if latest.is_some() {
            self.latest = Some(latest);
        }
        if checkout.is_some() {
            self.checkout = checkout;
        }
        for (node, iseq, record) in versions {
            if self.versions.len() >= RECENT_VERSIONS {
                // Forgetting all at once keeps this simple and bounded; the next commit
                // reads the few it needs again.
                self.versions.clear();
                self.records.clear();
            }
            if let Some(last) = &mut self.last_iseq {
                *last = (*last).max(iseq);
            }
            self.versions.insert(node, iseq);
            self.records.insert(iseq, record);
        }
        for (log, seq) in last_seqs {
            self.set_last_seq(&log, seq);
        }
    }
}
