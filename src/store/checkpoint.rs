//! Sets of node keys kept in memory and stored as checkpoints: the graph's heads (as of a
//! change number) and the version index's heads (as of an index sequence number).
//!
//! Each write changes such a set by a few keys. Storing the whole set at every write made
//! a write's cost grow with the set (with 1,000 heads, 33 KB written and compacted per
//! write). Instead the set lives in memory, each landed write applies its change to it, and
//! the first write that ends [`CHECKPOINT_EVERY`] or more numbers past the stored
//! checkpoint stores the whole set with the number it is as of, in the same atomic batch.
//! Loading a set (the layer that owns it does that: `graph::heads`, `dataset::index::tips`)
//! reads the checkpoint and replays what was written after it.

use std::collections::{BTreeSet, HashSet};

use super::keys;
use super::kv::{Batch, Kv};
use super::runs;
use crate::error::Result;

/// How many numbers may follow a stored checkpoint before a write stores a new one: the
/// most records loading the set replays (both sets together, about a millisecond: every
/// CLI read at latest pays it), against a checkpoint's bytes shared by that many writes
/// (with 1,000 heads, 33 KB per 64 writes).
pub(crate) const CHECKPOINT_EVERY: u64 = 64;

/// Where a set and the number its checkpoint is as of are stored.
pub(crate) struct SetKeys {
    set: &'static [u8],
    as_of: &'static [u8],
}

/// The graph's heads, as of a change number.
pub(crate) const HEADS: SetKeys = SetKeys {
    set: keys::HEADS,
    as_of: keys::HEADS_AS_OF,
};

/// The version index's heads, as of an index sequence number.
pub(crate) const TIPS: SetKeys = SetKeys {
    set: keys::TIPS,
    as_of: keys::TIPS_AS_OF,
};

impl SetKeys {
    /// The stored checkpoint: the set as of a number, and that number. With no checkpoint
    /// (a repository being rebuilt, or one whose checkpoint was lost), the empty set as of
    /// 0: the set follows from everything written.
    pub(crate) fn read(&self, kv: &mut Kv) -> Result<(BTreeSet<String>, u64)> {
        match kv.get(self.as_of)? {
            Some(bytes) => Ok((
                runs::read_key_set(kv, self.set)?,
                keys::decode_u64(&bytes, "checkpoint number")?,
            )),
            None => Ok((BTreeSet::new(), 0)),
        }
    }

    /// Adds a checkpoint of `set` as of `number` to `batch`.
    pub(crate) fn write(&self, batch: &mut Batch, set: &BTreeSet<String>, number: u64) {
        batch.put(self.set, &runs::encode_key_set(set));
        batch.put(self.as_of, &keys::encode_u64(number));
    }
}

/// A loaded set: current as of the last landed write, with the number its stored
/// checkpoint is as of.
pub(crate) struct Checkpointed {
    set: BTreeSet<String>,
    as_of: u64,
}

/// How one write changes a set, in the order of its steps. Both sides are hash sets: a
/// write that indexes n commits takes n steps, each O(1).
#[derive(Default)]
pub(crate) struct SetChange {
    removed: HashSet<String>,
    added: HashSet<String>,
    /// The write's last number (change or iseq), when it changes the set.
    last: Option<u64>,
}

impl SetChange {
    /// `key` leaves the set.
    pub(crate) fn remove(&mut self, key: &str) {
        self.added.remove(key);
        self.removed.insert(key.to_string());
    }

    /// `key` joins the set, at number `number`.
    pub(crate) fn add(&mut self, key: &str, number: u64) {
        self.removed.remove(key);
        self.added.insert(key.to_string());
        self.last = Some(number);
    }
}

impl Checkpointed {
    pub(crate) fn new(set: BTreeSet<String>, as_of: u64) -> Checkpointed {
        Checkpointed { set, as_of }
    }

    pub(crate) fn set(&self) -> &BTreeSet<String> {
        &self.set
    }

    /// Adds to `batch` a checkpoint of the set after `change`, when the write ends far
    /// enough past the last checkpoint; returns the number it is as of.
    pub(crate) fn checkpoint(
        &self,
        change: &SetChange,
        keys: &SetKeys,
        batch: &mut Batch,
    ) -> Option<u64> {
        let last = change.last?;
        if last.saturating_sub(self.as_of) < CHECKPOINT_EVERY {
            return None;
        }
        let mut next = self.set.clone();
        for key in &change.removed {
            next.remove(key);
        }
        next.extend(change.added.iter().cloned());
        keys.write(batch, &next, last);
        Some(last)
    }

    /// Applies a landed write's change, and the checkpoint it stored.
    pub(crate) fn land(&mut self, change: SetChange, checkpoint: Option<u64>) {
        for key in &change.removed {
            self.set.remove(key);
        }
        self.set.extend(change.added);
        if let Some(number) = checkpoint {
            self.as_of = number;
        }
    }
}
