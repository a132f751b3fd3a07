//! Ancestry: which commits a version is built on, as sets of index sequence numbers.
//!
//! Every indexed commit gets the next index sequence number (*iseq*) of this repository;
//! parents are indexed before their children, so a version's ancestors all have smaller
//! iseqs. A version's ancestry is therefore "every iseq up to my own, except these": the
//! excluded set, the commits indexed here before it that it does not descend from. For a
//! version written on top of everything (the usual case) the set is empty; it holds
//! something only while concurrent work exists, and then it is a few intervals (work that
//! arrived together has consecutive iseqs). Latest, which sees every commit, is the
//! ancestry with nothing excluded.
//!
//! An ancestry is a function of the graph below the version: which commits are excluded
//! depends on this repository's numbering, but the set of commits it denotes does not.

use std::sync::Arc;

/// A set of iseqs as sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seqs(Vec<(u64, u64)>);

impl Seqs {
    /// The set `[start, end]` (empty when `start > end`).
    pub(crate) fn range(start: u64, end: u64) -> Seqs {
        if start > end {
            Seqs::default()
        } else {
            Seqs(vec![(start, end)])
        }
    }

    /// Builds a set from `[start, end]` pairs as stored (any order, overlaps allowed).
    pub(crate) fn from_pairs(flat: &[u64]) -> Seqs {
        let mut set = Seqs::default();
        for pair in flat.chunks(2) {
            if let [start, end] = *pair {
                set.insert(start, end);
            }
        }
        set
    }

    /// The pairs as stored: `[start, end, start, end, …]`.
    pub(crate) fn to_pairs(&self) -> Vec<u64> {
        self.0.iter().flat_map(|&(a, b)| [a, b]).collect()
    }

    /// How many intervals the set has.
    pub(crate) fn intervals(&self) -> usize {
        self.0.len()
    }

    /// The intervals, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }

    pub(crate) fn contains(&self, n: u64) -> bool {
        let i = self.0.partition_point(|&(_, end)| end < n);
        self.0.get(i).is_some_and(|&(start, _)| start <= n)
    }

    /// Adds `[start, end]`.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start > end {
            return;
        }
        self.0.push((start, end));
        self.normalise();
    }

    fn normalise(&mut self) {
        self.0.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(start, end) in &self.0 {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.0 = merged;
    }

    pub(crate) fn union(&self, other: &Seqs) -> Seqs {
        let mut all = Seqs(self.0.iter().chain(&other.0).copied().collect());
        all.normalise();
        all
    }

    pub(crate) fn intersection(&self, other: &Seqs) -> Seqs {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            let start = a.0.max(b.0);
            let end = a.1.min(b.1);
            if start <= end {
                out.push((start, end));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Seqs(out)
    }

    /// The numbers of `[start, end]` not in this set.
    pub(crate) fn complement_within(&self, start: u64, end: u64) -> Seqs {
        let mut out = Vec::new();
        let mut next = start;
        for &(a, b) in &self.0 {
            if b < next {
                continue;
            }
            if a > end {
                break;
            }
            if a > next {
                out.push((next, a - 1));
            }
            next = b.saturating_add(1);
            if next > end {
                break;
            }
        }
        if next <= end && next >= start {
            out.push((next, end));
        }
        Seqs(out)
    }
}

/// The commits a view reads: every iseq up to `top` except the `excluded` ones.
#[derive(Clone, Debug)]
pub(crate) struct Ancestry {
    pub top: u64,
    pub excluded: Arc<Seqs>,
}

impl Ancestry {
    /// Everything indexed up to `top` (latest).
    pub(crate) fn everything(top: u64) -> Ancestry {
        Ancestry {
            top,
            excluded: Arc::default(),
        }
    }

    /// Whether the commit with iseq `n` is in this ancestry.
    pub(crate) fn contains(&self, n: u64) -> bool {
        n <= self.top && !self.excluded.contains(n)
    }

    /// The ancestry as a set of iseqs.
    pub(crate) fn to_seqs(&self) -> Seqs {
        self.excluded.complement_within(1, self.top)
    }
}

/// The excluded set of a new commit with iseq `own`, from its parents' ancestries: every
/// earlier iseq that no parent's ancestry holds. A root excludes everything before it.
pub(crate) fn excluded_for(own: u64, parents: &[Ancestry]) -> Seqs {
    let before = own.saturating_sub(1);
    let mut known = Seqs::default();
    for parent in parents {
        known = known.union(&parent.to_seqs());
    }
    known.complement_within(1, before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(set: &Seqs, max: u64) -> Vec<u64> {
        (0..=max).filter(|n| set.contains(*n)).collect()
    }

    #[test]
    fn set_operations_agree_with_membership() {
        let a = Seqs::from_pairs(&[1, 3, 7, 9, 12, 12]);
        let b = Seqs::from_pairs(&[2, 8, 11, 15]);
        let max = 20;
        let both: Vec<u64> = (0..=max)
            .filter(|n| a.contains(*n) && b.contains(*n))
            .collect();
        assert_eq!(naive(&a.intersection(&b), max), both);
        let either: Vec<u64> = (0..=max)
            .filter(|n| a.contains(*n) || b.contains(*n))
            .collect();
        assert_eq!(naive(&a.union(&b), max), either);
        let outside: Vec<u64> = (2..=14).filter(|n| !a.contains(*n)).collect();
        assert_eq!(naive(&a.complement_within(2, 14), max), outside);
        assert_eq!(a.union(&b).intervals(), 2, "10 is in neither");
    }

    #[test]
    fn adjacent_intervals_merge_and_empty_ranges_vanish() {
        let mut set = Seqs::range(5, 4);
        assert_eq!(set.intervals(), 0);
        set.insert(1, 2);
        set.insert(3, 4);
        assert_eq!(set.to_pairs(), vec![1, 4]);
        assert_eq!(Seqs::from_pairs(&[9, 9, 1, 2]).to_pairs(), vec![1, 2, 9, 9]);
    }

    #[test]
    fn a_root_excludes_everything_before_it_and_a_merge_what_no_parent_has() {
        assert_eq!(excluded_for(5, &[]).to_pairs(), vec![1, 4]);
        let p1 = Ancestry {
            top: 3,
            excluded: Arc::new(Seqs::range(2, 2)),
        };
        let p2 = Ancestry::everything(2);
        // Parents know 1, 3 and 1, 2: the merge at 6 excludes 4 and 5 only.
        assert_eq!(excluded_for(6, &[p1, p2]).to_pairs(), vec![4, 5]);
    }
}
