//! Repeated keys in a table being read: how many rows repeat an earlier row's key, and
//! the first few such keys, found in about 8 bytes of memory per distinct key.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// How many of a table's rows repeat the key of an earlier row, and the first few such
/// keys. It remembers 8 bytes per distinct key (see [`Seen`]): a fingerprint under a
/// per-reader random key, so no input can make two keys collide on purpose. By chance,
/// two of n distinct keys share one with probability about n² / 2⁶⁵ (3 in a million at
/// 10⁷ keys), which would report one repeat too many.
#[derive(Debug, Default)]
pub struct Duplicates {
    seen: Seen,
    hasher: RandomState,
    count: u64,
    first: Vec<Vec<u8>>,
    more: bool,
}

impl Duplicates {
    /// How many of the keys listed by [`keys`](Duplicates::keys) are kept.
    const SHOWN: usize = 5;

    /// Notes the key of the next row read.
    pub(super) fn add(&mut self, key: &[u8]) {
        if self.seen.insert(self.hasher.hash_one(key)) {
            return;
        }
        self.count += 1;
        if !self.first.iter().any(|k| k == key) {
            if self.first.len() < Self::SHOWN {
                self.first.push(key.to_vec());
            } else {
                self.more = true;
            }
        }
    }

    /// How many rows repeated the key of an earlier row.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first repeated keys (at most five), each once, in the order they repeated.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.first
    }

    /// Whether more keys repeated than [`keys`](Duplicates::keys) lists.
    pub fn more_keys(&self) -> bool {
        self.more
    }
}

/// A set of fingerprints in about 8 bytes each, however many: the newest in a hash set,
/// merged every [`Seen::RECENT`] into one sorted array (in place, from its end). A hash set
/// of them all took 17 to 36 bytes each, and both tables while it grew: 430 MB at 10⁷.
#[derive(Debug, Default)]
struct Seen {
    recent: HashSet<u64>,
    sorted: Vec<u64>,
}

impl Seen {
    const RECENT: usize = 1 << 18;

    /// Adds `fingerprint`; false when it was there already.
    fn insert(&mut self, fingerprint: u64) -> bool {
        if self.recent.contains(&fingerprint) || self.in_sorted(fingerprint) {
            return false;
        }
        self.recent.insert(fingerprint);
        if self.recent.len() == Self::RECENT {
            self.merge();
        }
        true
    }

    /// Fingerprints are uniform, so one sits near its share of the array: the search
    /// starts there and widens until the window must hold it, touching a few pages
    /// instead of a binary search's ~23 scattered ones at 10⁷.
    fn in_sorted(&self, fingerprint: u64) -> bool {
        let sorted = &self.sorted;
        let n = sorted.len();
        if n == 0 {
            return false;
        }
        let guess = ((u128::from(fingerprint) * n as u128) >> 64) as usize;
        let mut reach = 64;
        loop {
            let low = guess.saturating_sub(reach);
            let high = guess.saturating_add(reach).min(n);
            let low_ok = low == 0 || sorted[low] <= fingerprint;
            let high_ok = high == n || sorted[high - 1] >= fingerprint;
            if low_ok && high_ok {
                return sorted[low..high].binary_search(&fingerprint).is_ok();
            }
            reach = reach.saturating_mul(4);
        }
    }

    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        let old = self.sorted.len();
        // Exactly: the array is most of the reader's memory (a large one is remapped to
        // grow, not copied).
        self.sorted.reserve_exact(recent.len());
        self.sorted.resize(old + recent.len(), 0);
        let (mut i, mut j) = (old, recent.len());
        for at in (0..old + recent.len()).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.sorted[i - 1] > recent[j - 1] {
                self.sorted[at] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[at] = recent[j - 1];
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints are found again however many merges they went through, and only they
    /// are: checked against a plain set, with values clustered, spread and repeated.
    #[test]
    fn seen_fingerprints_are_found_across_merges() {
        let mut seen = Seen::default();
        let mut model = HashSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..(3 * Seen::RECENT as u64 + 1000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let fingerprint = match i % 5 {
                0 => i / 2,                 // small and clustered, often repeated
                1 => u64::MAX - (i % 4096), // at the top end, repeated
                _ => x,
            };
            assert_eq!(seen.insert(fingerprint), model.insert(fingerprint), "{i}");
        }
        assert!(seen.sorted.len() >= 2 * Seen::RECENT, "two merges at least");
        for probe in [0, 1, u64::MAX, u64::MAX / 2, 12345] {
            assert_eq!(
                seen.recent.contains(&probe) || seen.in_sorted(probe),
                model.contains(&probe)
            );
        }
    }
}
