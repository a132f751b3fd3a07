//! Records every commit reads and rewrites, kept in memory once read: the index's
//! checkpoint, the counters at latest, the checkout, the last index sequence number, the
//! newest versions' records, each log's last sequence number, the run of the change
//! index last read (a run holds up to 1,024 node keys, 64 KiB, and readers that go change
//! by change, as the index waking pending commits does, read it once instead of each time),
//! and the pending commits' waits while there are few enough of them.
//! A read of one is a seek, and a seek merges the memtable with every table that may hold
//! the key, so a one-row commit spent most of its time on them and more with every table
//! the repository grew (106 µs a commit after 10^4 commits, 327 µs after 10^5).
//!
//! A memo is filled by the first live read and then kept in step by every write that lands
//! (`WriteSet` carries what it changes); reads at a pinned snapshot never use it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// How many of the newest versions' node keys, index sequence numbers and records are kept:
/// a commit reads those of the heads it builds on, which are nearly always this recent.
const RECENT_VERSIONS: usize = 256;

/// How many logs' last sequence numbers are kept (a repository has a log per device that
/// wrote to it; past this many, the memo starts again).
const LOGS: usize = 4096;

/// How many waits (a pending commit waiting for a parent or for its payload) the memo
/// holds; past this many they are read from the database. A sync of one-row commits
/// deletes two waits a commit, and a read of the waits for one target then steps over the
/// deletion markers of others until compaction drops them: 17 % of a sync of 2·10^4
/// one-row commits. About 60 bytes a wait in memory: 16 MB at most.
pub(crate) const WAITS: usize = 1 << 18;

/// One wait: its kind (the index of a `Wait`), its target (a node key or an operations
/// hash, 64 lowercase hex digits, as bytes) and the change number of the commit waiting.
pub(crate) type WaitKey = (usize, [u8; 32], u64);

/// A wait target as bytes, if it is 64 lowercase hex digits (every node key and operations
/// hash strata makes; a target that is not is never held, and the database answers).
pub(crate) fn raw_target(target: &str) -> Option<[u8; 32]> {
    let mut raw = [0u8; 32];
    let lower = target
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (lower && hex::decode_to_slice(target, &mut raw).is_ok()).then_some(raw)
}

/// What the memo knows of the waits.
#[derive(Default)]
enum Waits {
    /// Not read yet.
    #[default]
    Unread,
    /// Every wait.
    Held(BTreeSet<WaitKey>),
    /// More than [`WAITS`], or a target that is not hex: the database answers.
    Unheld,
}

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
    waits: Waits,
}

/// What one write changes in the memo.
#[derive(Default)]
pub(crate) struct MemoWrites {
    pub(crate) indexed: Option<u64>,
    pub(crate) latest: Option<Vec<u8>>,
    pub(crate) checkout: Option<Option<String>>,
    pub(crate) versions: Vec<(String, u64, Vec<u8>)>,
    pub(crate) last_seqs: Vec<(String, u64)>,
    /// Waits added (`true`) and removed; `None` for a target the memo cannot hold.
    pub(crate) waits: Vec<(bool, Option<WaitKey>)>,
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

    /// Whether the waits are still to be read (see [`Memo::set_waits`]).
    pub(crate) fn waits_unread(&self) -> bool {
        matches!(self.waits, Waits::Unread)
    }

    /// Remembers every wait, as read; `None` when they cannot all be held.
    pub(crate) fn set_waits(&mut self, all: Option<BTreeSet<WaitKey>>) {
        self.waits = match all {
            Some(all) if all.len() <= WAITS => Waits::Held(all),
            _ => Waits::Unheld,
        };
    }

    /// The commits waiting for `target` (a wait of kind `kind`), in change order, if the
    /// memo holds the waits.
    pub(crate) fn waiters(&self, kind: usize, target: &str) -> Option<Vec<u64>> {
        let Waits::Held(all) = &self.waits else {
            return None;
        };
        let raw = raw_target(target)?;
        let found = all.range((kind, raw, 0)..=(kind, raw, u64::MAX));
        Some(found.map(|(_, _, change)| *change).collect())
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
            waits,
        } = writes;
        if let Waits::Held(all) = &mut self.waits {
            for (added, wait) in waits {
                match wait {
                    Some(wait) if added => {
                        all.insert(wait);
                    }
                    Some(wait) => {
                        all.remove(&wait);
                    }
                    // Never held, so never to be removed.
                    None if !added => {}
                    None => {
                        self.waits = Waits::Unheld;
                        break;
                    }
                }
            }
        }
        if matches!(&self.waits, Waits::Held(all) if all.len() > WAITS) {
            self.waits = Waits::Unheld;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: usize = 0;
    const PAYLOAD: usize = 1;

    fn target(n: u8) -> String {
        hex::encode([n; 32])
    }

    fn landed(memo: &mut Memo, waits: &[(bool, usize, &str, u64)]) {
        memo.landed(MemoWrites {
            waits: waits
                .iter()
                .map(|&(added, kind, target, change)| {
                    (added, raw_target(target).map(|raw| (kind, raw, change)))
                })
                .collect(),
            ..MemoWrites::default()
        });
    }

    #[test]
    fn held_waits_follow_every_write_that_lands() {
        let (a, b) = (target(1), target(2));
        let mut memo = Memo::default();
        // Not read yet: the database answers, and writes before the read are in it.
        landed(&mut memo, &[(true, PAYLOAD, &a, 9)]);
        assert_eq!(memo.waiters(PAYLOAD, &a), None);
        memo.set_waits(Some(BTreeSet::from([(PAYLOAD, [1; 32], 9)])));
        landed(
            &mut memo,
            &[
                (true, PAYLOAD, &a, 5),
                (true, PARENT, &a, 7),
                (true, PAYLOAD, &b, 6),
                (false, PAYLOAD, &a, 9),
            ],
        );
        assert_eq!(memo.waiters(PAYLOAD, &a), Some(vec![5]));
        assert_eq!(memo.waiters(PARENT, &a), Some(vec![7]));
        assert_eq!(memo.waiters(PAYLOAD, &b), Some(vec![6]));
        assert_eq!(memo.waiters(PARENT, &b), Some(vec![]));
        // Removing what is not held changes nothing.
        landed(
            &mut memo,
            &[(false, PARENT, &b, 1), (false, PAYLOAD, "not hex", 2)],
        );
        assert_eq!(memo.waiters(PAYLOAD, &b), Some(vec![6]));
    }

    #[test]
    fn a_target_that_is_not_lowercase_hex_hands_the_waits_back_to_the_database() {
        let mut memo = Memo::default();
        memo.set_waits(Some(BTreeSet::new()));
        // Upper case names another target: it must not share the lower-case one's waits.
        assert_eq!(memo.waiters(PAYLOAD, &target(0xab).to_uppercase()), None);
        landed(&mut memo, &[(true, PAYLOAD, "a peer's odd hash", 3)]);
        assert_eq!(memo.waiters(PAYLOAD, &target(1)), None);
        assert!(!memo.waits_unread(), "the waits are not read again");
    }

    #[test]
    fn past_the_limit_the_database_answers() {
        let mut memo = Memo::default();
        let all: BTreeSet<WaitKey> = (0..WAITS as u64).map(|n| (PAYLOAD, [1; 32], n)).collect();
        memo.set_waits(Some(all));
        assert_eq!(
            memo.waiters(PAYLOAD, &target(1)).map(|w| w.len()),
            Some(WAITS)
        );
        landed(&mut memo, &[(true, PARENT, &target(2), 1)]);
        assert_eq!(memo.waiters(PAYLOAD, &target(1)), None);
        let mut memo = Memo::default();
        memo.set_waits(None);
        assert_eq!(memo.waiters(PAYLOAD, &target(1)), None);
    }
}
