//! Model-based property test of the dataset store: random histories across 2–3 devices
//! (separate repositories, in memory or on disk), checked read by read against a simple,
//! independent model.
//!
//! Environment:
//! * `STRATA_MODEL_CASES` — how many random histories to run in memory (default 2000),
//!   plus a quarter of that (at least 8) on disk. The default takes 14–28 s of wall time
//!   in `cargo test --release --test model` on a 2-core machine (the in-memory and the
//!   on-disk histories run in parallel; measured idle and under a concurrent build). For
//!   a long run:
//!   `STRATA_MODEL_CASES=20000 cargo test --release --test model`.
//! * `STRATA_MODEL_STATS=1` — print, per history, how many versions, merges, conflicts,
//!   forked rows and skipped (ambiguous) merges it produced.
//! * `STRATA_MODEL_NWAY=0` — merge only two heads at a time (by default a merge of all
//!   heads takes all of them).
//!
//! Steps: put/delete of rows (6 keys × 2 datasets, the empty dataset included, odd bytes in
//! names) on a device; a write on an old version of the device (`tx.replaces(&[v])`, a
//! fork); sync device A → B (`common::sync`); merge heads (policy ours/theirs/newest, an
//! explicit resolution, or none); persistent checkout and back to latest; reopen.
//!
//! The model keeps, for every version, its parents, its commit time and the full map
//! (dataset, key) → entry (the version that wrote the row, and its value or a delete),
//! and for every device the versions it has in arrival order, the ones it wrote, and its
//! checkout. Merges and reads at latest are computed in the model from the common
//! ancestor it finds in its own parent graph. Where the common ancestor is ambiguous (a
//! criss-cross: several maximal common ancestors), the expected result depends on which
//! one an implementation picks, so the model skips that merge (the step is a no-op) and
//! the checks at latest for that state. The same holds for a merge of 3+ heads whose
//! pairwise common ancestors differ from the common ancestor of all of them.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use strata::{MergePolicy, Range, Repository};
use strata::{Error, GraphOptions};

const DATASETS: [&[u8]; 2] = [b"", b"d\x00"];
const KEYS: [&[u8]; 6] = [b"a", b"a!", b"", b"\xff", b"b\x00", b"c"];

type RowId = (Vec<u8>, Vec<u8>);

/// A row's state at a version: who wrote it, and its value (`None`: deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    writer: String,
    value: Option<Vec<u8>>,
}

type Map = BTreeMap<RowId, Entry>;

#[derive(Clone, Debug)]
struct Version {
    parents: Vec<String>,
    time: u64,
    map: Map,
    /// The rows this commit's own operations wrote, with the value (`None`: delete).
    writes: BTreeMap<RowId, Option<Vec<u8>>>,
}

struct Device {
    repo: Option<Repository>,
    dir: Option<tempfile::TempDir>,
    /// Versions this device has, in arrival order (its local change order).
    known: Vec<String>,
    known_set: HashSet<String>,
    /// Versions this device wrote (its own log).
    own: HashSet<String>,
    checkout: Option<String>,
}

impl Device {
    fn repo(&self) -> &Repository {
        self.repo.as_ref().expect("open repository")
    }

    fn receive(&mut self, version: &str) {
        if self.known_set.insert(version.to_string()) {
            self.known.push(version.to_string());
        }
    }
}

#[derive(Default)]
struct Stats {
    merges: usize,
    skipped_merges: usize,
    conflicts: usize,
    ambiguous_latest: usize,
    forked_rows: usize,
}

struct Model {
    versions: HashMap<String, Version>,
    devices: Vec<Device>,
    nway: bool,
    stats: Stats,
}

/// How a merge settles conflicts.
#[derive(Clone, Copy, Debug)]
enum How {
    Ours,
    Theirs,
    Newest,
    /// The merge writes its own value (or delete) for every conflicting row.
    Resolve(u8),
    /// No policy: a conflict must be refused.
    Plain,
}

#[derive(Clone, Debug)]
enum Step {
    /// Operations `(dataset, key, value or delete)`; on an old version when `old` is set.
    Write {
        dev: usize,
        ops: Vec<(usize, usize, Option<u8>)>,
        old: Option<usize>,
    },
    Sync {
        from: usize,
        to: usize,
    },
    /// Merge all heads (`None`) or two chosen heads.
    Merge {
        dev: usize,
        pair: Option<(usize, usize)>,
        how: How,
    },
    Checkout {
        dev: usize,
        pick: usize,
    },
    CheckoutLatest {
        dev: usize,
    },
    Reopen {
        dev: usize,
    },
}

/// A small deterministic generator for the sampling of checks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn row(dataset: usize, key: usize) -> RowId {
    (DATASETS[dataset].to_vec(), KEYS[key].to_vec())
}

fn all_rows() -> Vec<RowId> {
    let mut rows: Vec<RowId> = (0..DATASETS.len())
        .flat_map(|d| (0..KEYS.len()).map(move |k| row(d, k)))
        .collect();
    rows.sort();
    rows
}

fn value_bytes(v: u8) -> Vec<u8> {
    format!("v{v}").into_bytes()
}

/// Content of an entry: `None` when absent or deleted.
fn content(entry: Option<&Entry>) -> Option<&[u8]> {
    entry.and_then(|e| e.value.as_deref())
}

fn same_entry(a: Option<&Entry>, b: Option<&Entry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.writer == b.writer,
        _ => false,
    }
}

impl Model {
    fn new(devices: usize, disk: bool, nway: bool) -> Model {
        let devices = (0..devices)
            .map(|_| {
                let (repo, dir) = if disk {
                    let dir = tempfile::tempdir().expect("tempdir");
                    (Repository::init(dir.path()).expect("init"), Some(dir))
                } else {
                    (
                        Repository::in_memory().expect("repo"),
                        None,
                    )
                };
                Device {
                    repo: Some(repo),
                    dir,
                    known: Vec::new(),
                    known_set: HashSet::new(),
                    own: HashSet::new(),
                    checkout: None,
                }
            })
            .collect();
        Model {
            versions: HashMap::new(),
            devices,
            nway,
            stats: Stats::default(),
        }
    }

    fn time(&self, version: &str) -> u64 {
        self.versions[version].time
    }

    /// Every ancestor of `version`, itself included.
    fn ancestors(&self, version: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![version.to_string()];
        while let Some(v) = stack.pop() {
            if seen.insert(v.clone()) {
                stack.extend(self.versions[&v].parents.iter().cloned());
            }
        }
        seen
    }

    /// The maximal common ancestors of `a` and `b`.
    fn lcas(&self, a: &str, b: &str) -> Vec<String> {
        let (aa, bb) = (self.ancestors(a), self.ancestors(b));
        let common: HashSet<&String> = aa.intersection(&bb).collect();
        // A common ancestor is maximal when no other common ancestor descends from it.
        let mut below: HashSet<String> = HashSet::new();
        for c in &common {
            for p in &self.versions[c.as_str()].parents {
                below.extend(self.ancestors(p));
            }
        }
        let mut max: Vec<String> = common
            .into_iter()
            .filter(|c| !below.contains(c.as_str()))
            .cloned()
            .collect();
        max.sort();
        max
    }

    /// The common ancestor of `heads` (folding pairwise, in the given order): `Ok(None)`
    /// when they share no history, `Err(())` when it is ambiguous.
    fn base(&self, heads: &[String]) -> Result<Option<String>, ()> {
        let mut base = heads[0].clone();
        for head in &heads[1..] {
            let lcas = self.lcas(&base, head);
            match lcas.len() {
                0 => return Ok(None),
                1 => base = lcas[0].clone(),
                _ => return Err(()),
            }
        }
        Ok(Some(base))
    }

    fn map_of(&self, version: Option<&String>) -> Map {
        version.map_or_else(Map::new, |v| self.versions[v].map.clone())
    }

    /// The newest of some entries: commit time, ties broken by version id.
    fn newest<'a>(&self, entries: &[&'a Entry]) -> &'a Entry {
        entries
            .iter()
            .copied()
            .max_by(|a, b| {
                (self.time(&a.writer), &a.writer).cmp(&(self.time(&b.writer), &b.writer))
            })
            .expect("entries")
    }

    /// The distinct entries (by writer) of a row that differ from the base, in head order.
    fn changed<'a>(&self, base: &Map, maps: &'a [&'a Map], row: &RowId) -> Vec<&'a Entry> {
        let at_base = base.get(row);
        let mut changed: Vec<&Entry> = Vec::new();
        for map in maps {
            if let Some(entry) = map.get(row)
                && !same_entry(Some(entry), at_base)
                && !changed.iter().any(|c| c.writer == entry.writer)
            {
                changed.push(entry);
            }
        }
        changed
    }

    /// Expected latest view of a device: per row, (winner or None, forks sorted newest
    /// first when forked). `None` when the heads' common ancestor is ambiguous.
    #[allow(clippy::type_complexity)]
    fn latest(&self, dev: usize) -> Option<BTreeMap<RowId, (Option<Entry>, Vec<Entry>)>> {
        let heads = self.heads(dev);
        let mut out = BTreeMap::new();
        if heads.len() <= 1 {
            let map = self.map_of(heads.first());
            for r in all_rows() {
                out.insert(r.clone(), (map.get(&r).cloned(), Vec::new()));
            }
            return Some(out);
        }
        let base = self.base(&heads).ok()?;
        let base = self.map_of(base.as_ref());
        let maps: Vec<&Map> = heads.iter().map(|h| &self.versions[h].map).collect();
        for r in all_rows() {
            let changed = self.changed(&base, &maps, &r);
            let result = match changed.len() {
                0 => (base.get(&r).cloned(), Vec::new()),
                1 => (Some(changed[0].clone()), Vec::new()),
                _ => {
                    let winner = self.newest(&changed).clone();
                    let mut forks: Vec<Entry> = changed.into_iter().cloned().collect();
                    forks.sort_by(|a, b| {
                        (self.time(&b.writer), &b.writer).cmp(&(self.time(&a.writer), &a.writer))
                    });
                    (Some(winner), forks)
                }
            };
            out.insert(r, result);
        }
        Some(out)
    }

    /// The device's heads: versions it has that none of its versions link to, by key.
    fn heads(&self, dev: usize) -> Vec<String> {
        let device = &self.devices[dev];
        let linked: HashSet<&String> = device
            .known
            .iter()
            .flat_map(|v| self.versions[v].parents.iter())
            .collect();
        let mut heads: Vec<String> = device
            .known
            .iter()
            .filter(|v| !linked.contains(v))
            .cloned()
            .collect();
        heads.sort();
        heads
    }

    /// The head a plain write continues: the device's own newest head, else the newest.
    fn preferred(&self, dev: usize) -> Option<String> {
        let device = &self.devices[dev];
        let heads = self.heads(dev);
        heads.into_iter().max_by_key(|h| {
            let arrival = device.known.iter().position(|k| k == h).expect("known");
            (device.own.contains(h), arrival)
        })
    }

    /// Records a version the device just wrote.
    fn record(
        &mut self,
        dev: usize,
        version: &str,
        parents: Vec<String>,
        map: Map,
        writes: BTreeMap<RowId, Option<Vec<u8>>>,
    ) {
        let repo = self.devices[dev].repo().clone();
        let links = repo.graph().get(version).expect("node").links;
        assert_eq!(links, parents, "parents of {version}");
        let time = common::commit_time(&repo, version);
        let record = Version {
            parents,
            time,
            map,
            writes,
        };
        if let Some(existing) = self.versions.get(version) {
            // The same node written twice (same parents, operations and millisecond).
            assert_eq!(existing.map, record.map);
        } else {
            self.versions.insert(version.to_string(), record);
        }
        let device = &mut self.devices[dev];
        device.receive(version);
        device.own.insert(version.to_string());
        if let Some(checkout) = &device.checkout
            && self.versions[version].parents.contains(checkout)
        {
            device.checkout = Some(version.to_string());
        }
    }

    fn write(&mut self, dev: usize, ops: &[(usize, usize, Option<u8>)], old: Option<usize>) {
        let device = &self.devices[dev];
        let old = old
            .filter(|_| !device.known.is_empty())
            .map(|pick| device.known[pick % device.known.len()].clone());
        let parents: Vec<String> = match (&old, &device.checkout) {
            (Some(old), _) => vec![old.clone()],
            (None, Some(checkout)) => vec![checkout.clone()],
            (None, None) => self.preferred(dev).into_iter().collect(),
        };
        let repo = device.repo().clone();
        let mut tx = repo.transaction();
        let mut writes = BTreeMap::new();
        for &(d, k, v) in ops {
            match v {
                Some(v) => tx.put(DATASETS[d], KEYS[k], value_bytes(v)),
                None => tx.delete(DATASETS[d], KEYS[k]),
            };
            writes.insert(row(d, k), v.map(value_bytes));
        }
        if let Some(old) = &old {
            tx.replaces(std::slice::from_ref(old));
        }
        let version = tx.commit().expect("write");
        let mut map = self.map_of(parents.first());
        for (r, value) in &writes {
            map.insert(
                r.clone(),
                Entry {
                    writer: version.clone(),
                    value: value.clone(),
                },
            );
        }
        self.record(dev, &version, parents, map, writes);
    }

    fn sync(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let (a, b) = (
            self.devices[from].repo().clone(),
            self.devices[to].repo().clone(),
        );
        common::sync(&a, &b);
        let known = self.devices[from].known.clone();
        for v in &known {
            self.devices[to].receive(v);
        }
    }

    fn merge(&mut self, dev: usize, pair: Option<(usize, usize)>, how: How) {
        let heads = self.heads(dev);
        let repo = self.devices[dev].repo().clone();
        let nway = self.nway;
        let links: Vec<String> = match pair {
            None if heads.len() < 2 => {
                let result = repo.merge(&[]).commit();
                assert!(
                    matches!(result, Err(Error::InvalidArgument(_))),
                    "{result:?}"
                );
                return;
            }
            None if heads.len() == 2 || nway => {
                // All heads, by key, with this device's preferred head first.
                let preferred = self.preferred(dev).expect("a head");
                let mut links = heads.clone();
                let pos = links.iter().position(|h| *h == preferred).expect("head");
                links.swap(0, pos);
                links
            }
            None => {
                let preferred = self.preferred(dev).expect("a head");
                let other = heads
                    .iter()
                    .find(|h| **h != preferred)
                    .expect("another head");
                vec![preferred, other.clone()]
            }
            Some((i, j)) => {
                if heads.len() < 2 {
                    return;
                }
                let (i, j) = (i % heads.len(), j % heads.len());
                let j = if i == j { (j + 1) % heads.len() } else { j };
                vec![heads[i].clone(), heads[j].clone()]
            }
        };
        let base = match self.base(&links) {
            Ok(base) => base,
            Err(()) => {
                self.stats.skipped_merges += 1;
                return;
            }
        };
        // With 3+ heads, "changed since the common ancestor" depends on which ancestor:
        // that of all heads, or that of each pair. The model merges only where every
        // pair's common ancestor is the one of all heads, so the two readings agree.
        let expected_base: Vec<String> = base.iter().cloned().collect();
        let pairs_agree = links.iter().enumerate().all(|(i, a)| {
            links[i + 1..]
                .iter()
                .all(|b| self.lcas(a, b) == expected_base)
        });
        if links.len() > 2 && !pairs_agree {
            self.stats.skipped_merges += 1;
            return;
        }
        let base_map = self.map_of(base.as_ref());
        let maps: Vec<&Map> = links.iter().map(|l| &self.versions[l].map).collect();
        // Per row: the result before the merge's own operations, or a conflict.
        let mut merged = Map::new();
        let mut conflicts: Vec<(RowId, Vec<Entry>)> = Vec::new();
        for r in all_rows() {
            let changed = self.changed(&base_map, &maps, &r);
            let contents: BTreeSet<Option<&[u8]>> =
                changed.iter().map(|e| content(Some(e))).collect();
            if changed.is_empty() {
                if let Some(entry) = base_map.get(&r) {
                    merged.insert(r.clone(), entry.clone());
                }
            } else if contents.len() == 1 {
                // One change, or the same content on every side: the first side's entry.
                merged.insert(r.clone(), changed[0].clone());
            } else {
                conflicts.push((r.clone(), changed.into_iter().cloned().collect()));
            }
        }
        // All heads through `merge(&[])` when that is what `links` are; else named heads.
        let mut tx = if pair.is_none() && links.len() == heads.len() {
            repo.merge(&[])
        } else {
            repo.merge(&links)
        };
        // What the merge writes itself: explicit resolutions, or the policy's choice.
        let mut own: BTreeMap<RowId, Option<Vec<u8>>> = BTreeMap::new();
        let mut seed = match how {
            How::Resolve(seed) => Rng(u64::from(seed) * 0x9e37_79b9 + 1),
            _ => Rng(1),
        };
        for (r, changed) in &conflicts {
            let chosen: Option<Vec<u8>> = match how {
                How::Plain => continue,
                How::Resolve(_) => match seed.below(3) {
                    0 => None,
                    n => Some(format!("resolved{n}").into_bytes()),
                },
                How::Newest => {
                    let refs: Vec<&Entry> = changed.iter().collect();
                    self.newest(&refs).value.clone()
                }
                // The first head's value if the first head changed the row, else the
                // newest of the changes.
                How::Ours => match maps[0].get(r) {
                    Some(ours) if !same_entry(Some(ours), base_map.get(r)) => ours.value.clone(),
                    _ => {
                        let refs: Vec<&Entry> = changed.iter().collect();
                        self.newest(&refs).value.clone()
                    }
                },
                // The newest of the changes made by the other heads.
                How::Theirs => {
                    let others: Vec<&Entry> = maps[1..]
                        .iter()
                        .filter_map(|m| m.get(r))
                        .filter(|e| !same_entry(Some(e), base_map.get(r)))
                        .collect();
                    self.newest(&others).value.clone()
                }
            };
            own.insert(r.clone(), chosen);
        }
        if let How::Resolve(_) = how {
            for (r, value) in &own {
                match value {
                    Some(value) => tx.put(&r.0, &r.1, value),
                    None => tx.delete(&r.0, &r.1),
                };
            }
        }
        match how {
            How::Ours => {
                tx.policy(MergePolicy::Ours);
            }
            How::Theirs => {
                tx.policy(MergePolicy::Theirs);
            }
            How::Newest => {
                tx.policy(MergePolicy::Newest);
            }
            How::Resolve(_) | How::Plain => {}
        }
        self.stats.conflicts += conflicts.len();
        let before = repo.graph().change_count().unwrap();
        let result = tx.commit();
        if matches!(how, How::Plain) && !conflicts.is_empty() {
            match result {
                Err(Error::Conflict { count, .. }) => assert_eq!(count, conflicts.len()),
                other => panic!(
                    "merge of {links:?} with {} conflict(s) and no policy: {other:?}",
                    conflicts.len()
                ),
            }
            assert_eq!(
                repo.graph().change_count().unwrap(),
                before,
                "a refused merge writes nothing"
            );
            return;
        }
        let version = result.unwrap_or_else(|e| panic!("merge of {links:?} ({how:?}): {e}"));
        for (r, value) in &own {
            merged.insert(
                r.clone(),
                Entry {
                    writer: version.clone(),
                    value: value.clone(),
                },
            );
        }
        self.stats.merges += 1;
        self.record(dev, &version, links, merged, own);
    }

    fn checkout(&mut self, dev: usize, pick: usize) {
        let device = &mut self.devices[dev];
        if device.known.is_empty() {
            assert!(device.repo().checkout("0123456789").is_err());
            return;
        }
        let version = device.known[pick % device.known.len()].clone();
        let prefix = &version[..8 + pick % 20];
        assert_eq!(device.repo().checkout(prefix).expect("checkout"), version);
        device.checkout = Some(version);
    }

    fn checkout_latest(&mut self, dev: usize) {
        let device = &mut self.devices[dev];
        device.repo().checkout_latest().expect("checkout latest");
        device.checkout = None;
    }

    fn reopen(&mut self, dev: usize) {
        let device = &mut self.devices[dev];
        let Some(dir) = &device.dir else { return };
        device.repo = None;
        device.repo = Some(Repository::open(dir.path()).expect("reopen"));
    }

    fn apply(&mut self, step: &Step) {
        let n = self.devices.len();
        match *step {
            Step::Write { dev, ref ops, old } => self.write(dev % n, ops, old),
            Step::Sync { from, to } => self.sync(from % n, to % n),
            Step::Merge { dev, pair, how } => self.merge(dev % n, pair, how),
            Step::Checkout { dev, pick } => self.checkout(dev % n, pick),
            Step::CheckoutLatest { dev } => self.checkout_latest(dev % n),
            Step::Reopen { dev } => self.reopen(dev % n),
        }
    }

    // ---- checks ----

    /// Checks one version's view, read by read, against the model's map.
    fn check_version(&self, repo: &Repository, version: &str) {
        let map = &self.versions[version].map;
        let view = repo.at(version).expect("at");
        assert_eq!(view.heads(), vec![version.to_string()]);
        for r in all_rows() {
            let got = view.get(&r.0, &r.1).expect("get");
            let expected = map.get(&r).filter(|e| e.value.is_some());
            match (got, expected) {
                (None, None) => {}
                (Some(row), Some(entry)) => {
                    assert_eq!(Some(&row.value), entry.value.as_ref(), "{r:?} at {version}");
                    assert_eq!(row.version, entry.writer, "{r:?} at {version}");
                    assert!(!row.forked);
                }
                (got, expected) => panic!("{r:?} at {version}: got {got:?}, expected {expected:?}"),
            }
        }
        let mut live_datasets = Vec::new();
        for dataset in DATASETS {
            let expected: Vec<(Vec<u8>, Vec<u8>, String)> = map
                .iter()
                .filter(|((d, _), e)| d == dataset && e.value.is_some())
                .map(|((_, k), e)| {
                    (
                        k.clone(),
                        e.value.clone().unwrap_or_default(),
                        e.writer.clone(),
                    )
                })
                .collect();
            let got: Vec<(Vec<u8>, Vec<u8>, String)> = common::rows(&view, dataset, Range::all())
                .into_iter()
                .map(|row| (row.key, row.value, row.version))
                .collect();
            assert_eq!(got, expected, "range of {dataset:?} at {version}");
            if !expected.is_empty() {
                live_datasets.push(dataset.to_vec());
            }
        }
        live_datasets.sort();
        assert_eq!(
            view.datasets().expect("datasets"),
            live_datasets,
            "datasets at {version}"
        );
        let live = map.values().filter(|e| e.value.is_some()).count() as u64;
        assert_eq!(
            view.status().expect("status").rows,
            live,
            "status rows at {version}"
        );
    }

    /// Checks the device's latest view (all heads, forks) against the model.
    fn check_latest(&mut self, dev: usize) {
        let repo = self.devices[dev].repo().clone();
        let Some(expected) = self.latest(dev) else {
            self.stats.ambiguous_latest += 1;
            return;
        };
        let latest = repo.latest().expect("latest");
        for (r, (winner, forks)) in &expected {
            let got = latest.get(&r.0, &r.1).expect("get");
            let live = winner.as_ref().filter(|e| e.value.is_some());
            match (&got, live) {
                (None, None) => {}
                (Some(row), Some(entry)) => {
                    assert_eq!(Some(&row.value), entry.value.as_ref(), "{r:?} at latest");
                    assert_eq!(row.version, entry.writer, "{r:?} at latest");
                    assert_eq!(row.forked, !forks.is_empty(), "{r:?} forked at latest");
                }
                _ => panic!("{r:?} at latest: got {got:?}, expected {winner:?} (forks {forks:?})"),
            }
            let got_forks: Vec<(String, bool)> = latest
                .forks(&r.0, &r.1)
                .expect("forks")
                .into_iter()
                .map(|f| (f.version, f.deleted))
                .collect();
            let expected_forks: Vec<(String, bool)> = if forks.is_empty() {
                winner
                    .iter()
                    .map(|e| (e.writer.clone(), e.value.is_none()))
                    .collect()
            } else {
                self.stats.forked_rows += 1;
                forks
                    .iter()
                    .map(|e| (e.writer.clone(), e.value.is_none()))
                    .collect()
            };
            assert_eq!(got_forks, expected_forks, "forks of {r:?}");
        }
        for dataset in DATASETS {
            let want: Vec<(Vec<u8>, Vec<u8>)> = expected
                .iter()
                .filter(|((d, _), (w, _))| {
                    d == dataset && w.as_ref().is_some_and(|e| e.value.is_some())
                })
                .map(|((_, k), (w, _))| {
                    (
                        k.clone(),
                        w.as_ref().and_then(|e| e.value.clone()).unwrap_or_default(),
                    )
                })
                .collect();
            let got: Vec<(Vec<u8>, Vec<u8>)> = common::rows(&latest, dataset, Range::all())
                .into_iter()
                .map(|row| (row.key, row.value))
                .collect();
            assert_eq!(got, want, "range of {dataset:?} at latest");
        }
        if self.heads(dev).len() == 1 {
            let live = expected
                .values()
                .filter(|(w, _)| w.as_ref().is_some_and(|e| e.value.is_some()))
                .count();
            assert_eq!(latest.status().expect("status").rows, live as u64);
        }
    }

    fn check(&mut self, dev: usize, seed: u64) {
        let mut rng = Rng(seed | 1);
        let repo = self.devices[dev].repo().clone();
        let device = &self.devices[dev];
        assert_eq!(
            repo.heads().expect("heads"),
            self.heads(dev),
            "heads of device {dev}"
        );
        assert_eq!(repo.checked_out().expect("checked out"), device.checkout);
        if device.known.is_empty() {
            assert!(repo.get(DATASETS[0], KEYS[0]).expect("get").is_none());
            return;
        }
        // Some versions, read by read; always the newest one.
        let mut sample: BTreeSet<String> = BTreeSet::new();
        sample.insert(device.known[device.known.len() - 1].clone());
        for _ in 0..2 {
            sample.insert(device.known[rng.below(device.known.len())].clone());
        }
        for version in &sample {
            self.check_version(&repo, version);
        }
        self.check_latest(dev);
        let device = &self.devices[dev];
        // The default view follows the checkout.
        if let Some(checkout) = &device.checkout {
            let map = &self.versions[checkout].map;
            for r in all_rows() {
                let got = repo.get(&r.0, &r.1).expect("get").map(|row| row.value);
                assert_eq!(got.as_ref(), map.get(&r).and_then(|e| e.value.as_ref()));
            }
        }
        // History of some rows: exactly the versions that wrote them, newest first.
        for _ in 0..2 {
            let r = row(rng.below(DATASETS.len()), rng.below(KEYS.len()));
            let expected: Vec<(String, Option<Vec<u8>>)> = device
                .known
                .iter()
                .rev()
                .filter_map(|v| {
                    self.versions[v]
                        .writes
                        .get(&r)
                        .map(|value| (v.clone(), value.clone()))
                })
                .collect();
            let got: Vec<(String, Option<Vec<u8>>)> = repo
                .history(&r.0, &r.1)
                .expect("history")
                .into_iter()
                .map(|h| {
                    let value = (!h.deleted).then_some(h.value);
                    (h.version, value)
                })
                .collect();
            assert_eq!(got, expected, "history of {r:?}");
        }
        // A diff of two versions: the rows whose content differs.
        let a = &device.known[rng.below(device.known.len())];
        let b = &device.known[rng.below(device.known.len())];
        let (ma, mb) = (&self.versions[a].map, &self.versions[b].map);
        let summary = |e: Option<&Entry>| e.map(|e| (e.writer.clone(), e.value.clone()));
        let expected: Vec<(RowId, _, _)> = all_rows()
            .into_iter()
            .filter(|r| content(ma.get(r)) != content(mb.get(r)))
            .map(|r| {
                let (old, new) = (summary(ma.get(&r)), summary(mb.get(&r)));
                (r, old, new)
            })
            .collect();
        let got: Vec<(RowId, _, _)> = repo
            .diff(a, b)
            .expect("diff")
            .map(|e| {
                let e = e.expect("diff entry");
                let side = |v: Option<strata::RowVersion>| {
                    v.map(|v| (v.version, (!v.deleted).then_some(v.value)))
                };
                ((e.dataset, e.key), side(e.old), side(e.new))
            })
            .collect();
        assert_eq!(got, expected, "diff {a} {b}");
    }
}

fn step() -> impl Strategy<Value = Step> {
    let dev = 0usize..3;
    let op = (
        0..DATASETS.len(),
        0..KEYS.len(),
        prop::option::weighted(0.8, 0u8..3),
    );
    let how = prop_oneof![
        Just(How::Ours),
        Just(How::Theirs),
        Just(How::Newest),
        any::<u8>().prop_map(How::Resolve),
        Just(How::Plain),
    ];
    prop_oneof![
        8 => (dev.clone(), prop::collection::vec(op, 1..4), prop::option::weighted(0.25, any::<usize>()))
            .prop_map(|(dev, ops, old)| Step::Write { dev, ops, old }),
        4 => (dev.clone(), dev.clone()).prop_map(|(from, to)| Step::Sync { from, to }),
        3 => (dev.clone(), prop::option::weighted(0.3, (0usize..4, 0usize..4)), how)
            .prop_map(|(dev, pair, how)| Step::Merge { dev, pair, how }),
        1 => (dev.clone(), any::<usize>()).prop_map(|(dev, pick)| Step::Checkout { dev, pick }),
        1 => dev.clone().prop_map(|dev| Step::CheckoutLatest { dev }),
        1 => dev.prop_map(|dev| Step::Reopen { dev }),
    ]
}

fn history() -> impl Strategy<Value = (usize, Vec<(Step, u64)>)> {
    (
        2usize..=3,
        prop::collection::vec((step(), any::<u64>()), 5..=30),
    )
}

fn run(devices: usize, steps: &[(Step, u64)], disk: bool) -> Stats {
    let nway = std::env::var("STRATA_MODEL_NWAY").map_or(true, |v| v != "0");
    let mut model = Model::new(devices, disk, nway);
    for (step, seed) in steps {
        model.apply(step);
        // Check the devices the step touched.
        let touched: Vec<usize> = match *step {
            Step::Write { dev, .. }
            | Step::Merge { dev, .. }
            | Step::Checkout { dev, .. }
            | Step::CheckoutLatest { dev }
            | Step::Reopen { dev } => vec![dev % devices],
            Step::Sync { to, .. } => vec![to % devices],
        };
        for dev in touched {
            model.check(dev, *seed);
        }
    }
    // At the end, every device in full (reopened first, when on disk).
    for dev in 0..devices {
        model.reopen(dev);
        model.check(dev, 7);
        let known = model.devices[dev].known.clone();
        let repo = model.devices[dev].repo().clone();
        for version in &known {
            model.check_version(&repo, version);
        }
    }
    if std::env::var("STRATA_MODEL_STATS").is_ok() {
        let s = &model.stats;
        eprintln!(
            "model: devices {devices} disk {disk} steps {} versions {} merges {} skipped {} conflicts {} forked rows {} ambiguous latest {}",
            steps.len(),
            model.versions.len(),
            s.merges,
            s.skipped_merges,
            s.conflicts,
            s.forked_rows,
            s.ambiguous_latest
        );
    }
    model.stats
}

fn cases() -> u32 {
    std::env::var("STRATA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Histories on in-memory devices.
    #[test]
    fn model_in_memory((devices, steps) in history()) {
        run(devices, &steps, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: (cases() / 4).max(8), ..ProptestConfig::default() })]

    /// Histories on on-disk devices, with reopens.
    #[test]
    fn model_on_disk((devices, steps) in history()) {
        run(devices, &steps, true);
    }
}

/// A fixed history that exercises every kind of step, with the model's statistics, so a
/// change that makes the random runs degenerate (no forks, no conflicts) is noticed.
#[test]
fn model_fixed_history_covers_forks_conflicts_and_merges() {
    use Step::*;
    let steps = vec![
        Write {
            dev: 0,
            ops: vec![(0, 0, Some(0)), (1, 1, Some(0))],
            old: None,
        },
        Sync { from: 0, to: 1 },
        Write {
            dev: 0,
            ops: vec![(0, 0, Some(1)), (0, 2, Some(1))],
            old: None,
        },
        Write {
            dev: 1,
            ops: vec![(0, 0, Some(2)), (1, 3, None)],
            old: None,
        },
        Write {
            dev: 1,
            ops: vec![(1, 1, Some(2))],
            old: Some(0),
        },
        Sync { from: 1, to: 0 },
        Reopen { dev: 0 },
        Merge {
            dev: 0,
            pair: Some((0, 1)),
            how: How::Plain,
        },
        Merge {
            dev: 0,
            pair: Some((0, 1)),
            how: How::Newest,
        },
        Checkout { dev: 1, pick: 0 },
        Write {
            dev: 1,
            ops: vec![(0, 5, Some(0))],
            old: None,
        },
        CheckoutLatest { dev: 1 },
        Sync { from: 0, to: 1 },
        Merge {
            dev: 1,
            pair: None,
            how: How::Resolve(3),
        },
        Merge {
            dev: 1,
            pair: None,
            how: How::Ours,
        },
        Sync { from: 1, to: 0 },
        Reopen { dev: 1 },
    ];
    let steps: Vec<(Step, u64)> = steps.into_iter().zip(1u64..).collect();
    for disk in [false, true] {
        let stats = run(2, &steps, disk);
        assert!(stats.merges >= 2, "merges {}", stats.merges);
        assert!(stats.conflicts >= 1, "conflicts {}", stats.conflicts);
        assert!(stats.forked_rows >= 1, "forked rows {}", stats.forked_rows);
    }
}
