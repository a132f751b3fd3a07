//! When each row was first written: one small record per row, filed by *epoch* (the bit
//! length of the index sequence number of the row's first entry), so that a range read at
//! an old version reads only the rows that existed by then.
//!
//! Row entries are ordered by key, so a read at an old version that scanned them would
//! step over every row written after that version: a read of 1,000 rows at the first
//! version of a dataset that grew to 10^6 rows stepped over about 10^5. A version with top
//! iseq `t` holds only rows first written at or below `t`, and those are filed under the
//! epochs `1..=epoch(t)`: about log2(t) key-ordered scans merged, of which the last also
//! holds rows first written in `(t, 2^epoch(t))`, stepped over in these small records
//! (their value is the exact iseq). A row's first entry is written once, so a row costs
//! one record in all, however often it changes afterwards.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::keys::{self, KeyBuf, KeyReader};
use super::kv::{Durability, prefix_end};
use super::{Tables, WriteSet};
use crate::error::{Error, Result};

/// Born records written per batch while a format 4 repository is upgraded.
const UPGRADE_STEP: usize = 65_536;

/// The epoch of index sequence number `iseq`: its bit length (1 for iseq 1, 2 for 2 and 3,
/// 3 for 4 to 7, …).
fn epoch(iseq: u64) -> u8 {
    // At most 64: the cast cannot truncate.
    (u64::BITS - iseq.leading_zeros()) as u8
}

/// `!born!<dataset><epoch>`: the rows of one dataset first written in one epoch.
fn epoch_prefix(dataset: &[u8], epoch: u8) -> Vec<u8> {
    KeyBuf::new(keys::BORN)
        .bytes(dataset)
        .raw(&[epoch])
        .finish()
}

fn born_key(dataset: &[u8], epoch: u8, key: &[u8]) -> Vec<u8> {
    KeyBuf::new(keys::BORN)
        .bytes(dataset)
        .raw(&[epoch])
        .bytes(key)
        .finish()
}

/// A born record as `fsck` checks it.
pub(crate) struct Born {
    /// The row's key.
    pub(crate) key: Vec<u8>,
    /// The index sequence number of its first entry, as recorded.
    pub(crate) iseq: u64,
    /// Whether it is filed under that number's epoch (reads would miss it otherwise).
    pub(crate) filed_right: bool,
}

/// Where a page of [`Tables::born_records`] ends (opaque to callers).
pub(crate) struct BornCursor(Vec<u8>);

impl WriteSet {
    /// Records that the row `dataset`/`key` got its first entry at index sequence `iseq`.
    pub(crate) fn put_born(&mut self, dataset: &[u8], key: &[u8], iseq: u64) {
        self.batch.put(
            &born_key(dataset, epoch(iseq), key),
            &keys::encode_u64(iseq),
        );
    }
}

impl Tables {
    /// Whether born records can be read: false only for a format 4 repository opened
    /// read-only, which has none and cannot write them.
    pub(crate) fn born_ready(&self) -> bool {
        self.born_ready
    }

    /// Marks the born records as absent (a format 4 repository opened read-only).
    pub(crate) fn go_without_born(&mut self) {
        self.born_ready = false;
    }

    /// Keys of the rows of `dataset` first written at or below index sequence `top`, in
    /// key order within `start..end`: at most `limit` of them. One scan per epoch up to
    /// `top`'s; once `limit` keys are found, each later epoch is read only below the
    /// largest of them.
    pub(crate) fn born_page(
        &mut self,
        dataset: &[u8],
        top: u64,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let mut found: BTreeSet<Vec<u8>> = BTreeSet::new();
        for e in (1..=epoch(top)).rev() {
            let prefix = epoch_prefix(dataset, e);
            let first = match start {
                Bound::Unbounded => prefix.clone(),
                Bound::Included(key) => born_key(dataset, e, key),
                Bound::Excluded(key) => prefix_end(&born_key(dataset, e, key)),
            };
            let mut last = match end {
                Bound::Unbounded => prefix_end(&prefix),
                Bound::Included(key) => prefix_end(&born_key(dataset, e, key)),
                Bound::Excluded(key) => born_key(dataset, e, key),
            };
            if found.len() == limit
                && let Some(largest) = found.last()
            {
                last = last.min(born_key(dataset, e, largest));
            }
            let mut taken = 0;
            for item in self.kv.scan(&first, &last)? {
                let (record, value) = item?;
                if keys::decode_u64(&value, "a born record")? > top {
                    continue;
                }
                found.insert(KeyReader::new(&record, &prefix)?.bytes()?);
                taken += 1;
                if taken == limit {
                    break;
                }
            }
            while found.len() > limit {
                found.pop_last();
            }
        }
        Ok(found.into_iter().collect())
    }

    /// A page of `dataset`'s born records in stored order (epoch, then key), from `after`:
    /// at most `limit`, and where the next page starts (`None` at the end).
    pub(crate) fn born_records(
        &mut self,
        dataset: &[u8],
        after: Option<BornCursor>,
        limit: usize,
    ) -> Result<(Vec<Born>, Option<BornCursor>)> {
        let family = KeyBuf::new(keys::BORN).bytes(dataset).finish();
        let first = after.map_or_else(|| family.clone(), |cursor| cursor.0);
        let mut out = Vec::new();
        for item in self.kv.scan(&first, &prefix_end(&family))? {
            let (record, value) = item?;
            if out.len() == limit {
                return Ok((out, Some(BornCursor(record))));
            }
            // The epoch byte the record is filed under, then the row's key.
            let Some((&filed, key)) = KeyReader::new(&record, &family)?.rest().split_first() else {
                return Err(Error::corrupt("a born record has no epoch"));
            };
            let key = KeyReader::new(key, b"")?.bytes()?;
            let iseq = keys::decode_u64(&value, "a born record")?;
            out.push(Born {
                key,
                iseq,
                filed_right: filed == epoch(iseq),
            });
        }
        Ok((out, None))
    }

    /// Upgrades a format 4 repository to `format`: writes the born record of every row
    /// (from its oldest entry) in batches, then the format. An upgrade cut short by a crash
    /// leaves format 4 and starts over at the next open; rewriting a record is harmless.
    pub(crate) fn upgrade_from_format_4(&mut self, format: u64) -> Result<()> {
        let family_end = prefix_end(keys::ROWS);
        let mut from = keys::ROWS.to_vec();
        loop {
            let mut write = WriteSet::default();
            let mut written = 0;
            // The row being read: dataset, key, and its oldest entry so far.
            let mut row: Option<(Vec<u8>, Vec<u8>, u64)> = None;
            let mut next = None;
            for item in self.kv.scan(&from, &family_end)? {
                let (entry, _) = item?;
                let mut reader = KeyReader::new(&entry, keys::ROWS)?;
                let (dataset, key, iseq) = (reader.bytes()?, reader.bytes()?, reader.u64_desc()?);
                match &mut row {
                    // Entries of a row are newest first: the last one read is its first.
                    Some((d, k, oldest)) if *d == dataset && *k == key => *oldest = iseq,
                    _ => {
                        if let Some((d, k, oldest)) = row.take() {
                            write.put_born(&d, &k, oldest);
                            written += 1;
                        }
                        if written == UPGRADE_STEP {
                            next = Some(KeyBuf::new(keys::ROWS).bytes(&dataset).bytes(&key));
                            break;
                        }
                        row = Some((dataset, key, iseq));
                    }
                }
            }
            if let Some((d, k, oldest)) = row {
                write.put_born(&d, &k, oldest);
            }
            self.commit_derived(write, Durability::Flushed)?;
            match next {
                Some(key) => from = key.finish(),
                None => break,
            }
        }
        let mut write = WriteSet::default();
        write
            .batch
            .put(keys::META_FORMAT, &keys::encode_u64(format));
        self.commit_derived(write, Durability::Synced)
    }
}
