//! Model-based test of the version model: random histories on 2–4 devices, read on every
//! device at every version and compared with an independent model that decides by
//! causality alone.
//!
//! The model keeps every commit's parents, time and writes. A version's content is computed
//! from scratch: its ancestors (a plain graph walk), for each row the writers among them,
//! the heads (writers that are not ancestors of another writer), and the winner (the
//! newest head by time, ties by version id). Latest on a device is the same over every
//! commit the device can read. A merge is predicted the same way: the rows written on the
//! sides being merged that have several heads in the union must be settled by the merge
//! (agreeing heads by their content; differing ones by the merge's own operation or the
//! policy), or the merge fails listing exactly those rows. Nothing in the model knows
//! about iseqs, ancestry intervals, entry flags or storage.
//!
//! Histories mix: writes through the API (on a device's head, its checkout, or an old
//! version), writes by devices with clocks minutes fast or slow and merges that settle
//! nothing (through the graph, as another program would), merges of two, three and more
//! heads (and merges of merges, criss-crossing between devices), versioned updates that
//! replace several versions, files, a row with more than 64 versions, syncs in random
//! directions through the receiver's real checks, graph-only syncs whose payload comes
//! later (pending commits), refused merges, checkouts and reopens. After every step the
//! device that changed is checked at latest and at its newest versions; at the end every
//! device is checked at every version it holds, and diffs between random versions.
//!
//! `STRATA_MODEL_CASES` sets how many histories run (default 120, of which an eighth on
//! disk); the end of the run asserts minimum rates of every interesting shape, so the
//! generator cannot quietly degenerate. `STRATA_MODEL_SEED` replays one history.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::{Commit, Error, MergePolicy, Range, Repository, Version};

const DATASETS: [&[u8]; 2] = [b"d", b"d\x00!"];
const KEYS: [&[u8]; 6] = [b"a", b"a!", b"\x00", b"\xff", b"b\x00", b"c"];
const HOT: &[u8] = b"hot";
const MINUTE: u64 = 60_000;
const T0: u64 = 1_800_000_000_000;

type Row = (Vec<u8>, Vec<u8>);

/// Rows a merge cannot settle, with their concurrent heads.
type Conflicts = Vec<(Row, Vec<Version>)>;

/// What a commit did to a row.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Put(Vec<u8>),
    /// A file row: the blob's hash.
    File(String),
    Del,
}

impl Val {
    fn live(&self) -> bool {
        !matches!(self, Val::Del)
    }
}

struct MCommit {
    parents: Vec<Version>,
    time: u64,
    writes: BTreeMap<Row, Val>,
    /// Its operations hash: payloads are stored by it, so commits with the same
    /// operations share one.
    ops: Option<String>,
}

/// The independent model: every commit ever made, and reads computed from the graph.
#[derive(Default)]
struct Model {
    commits: HashMap<Version, MCommit>,
    writers: HashMap<Row, Vec<Version>>,
    ancestors: RefCell<HashMap<Version, Rc<HashSet<Version>>>>,
}

/// A row as the model reads it: heads newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MRow {
    heads: Vec<Version>,
    winner: Val,
}

impl Model {
    fn add(&mut self, version: Version, commit: MCommit) {
        for row in commit.writes.keys() {
            self.writers
                .entry(row.clone())
                .or_default()
                .push(version.clone());
        }
        self.commits.insert(version, commit);
    }

    fn ancestors(&self, version: &Version) -> Rc<HashSet<Version>> {
        if let Some(set) = self.ancestors.borrow().get(version) {
            return set.clone();
        }
        let mut set = HashSet::from([version.clone()]);
        for parent in &self.commits[version].parents {
            set.extend(self.ancestors(parent).iter().cloned());
        }
        let set = Rc::new(set);
        self.ancestors
            .borrow_mut()
            .insert(version.clone(), set.clone());
        set
    }

    /// The union of the ancestors of `versions`.
    fn union(&self, versions: &[Version]) -> HashSet<Version> {
        let mut all = HashSet::new();
        for version in versions {
            all.extend(self.ancestors(version).iter().cloned());
        }
        all
    }

    fn newest_first(&self, versions: &mut [Version]) {
        versions.sort_by(|a, b| {
            (self.commits[b].time, b.as_str()).cmp(&(self.commits[a].time, a.as_str()))
        });
    }

    /// A row's heads and winner among the commits of `view`.
    fn read(&self, view: &HashSet<Version>, row: &Row) -> Option<MRow> {
        let writers: Vec<&Version> = self
            .writers
            .get(row)
            .map(|w| w.iter().filter(|v| view.contains(*v)).collect())
            .unwrap_or_default();
        let mut heads: Vec<Version> = writers
            .iter()
            .filter(|w| {
                !writers
                    .iter()
                    .any(|o| o != *w && self.ancestors(o).contains(**w))
            })
            .map(|w| (*w).clone())
            .collect();
        if heads.is_empty() {
            return None;
        }
        self.newest_first(&mut heads);
        let winner = self.commits[&heads[0]].writes[row].clone();
        Some(MRow { heads, winner })
    }

    fn val(&self, version: &Version, row: &Row) -> Val {
        self.commits[version].writes[row].clone()
    }

    /// Every row the commits of `view` wrote.
    fn rows(&self, view: &HashSet<Version>) -> BTreeSet<Row> {
        view.iter()
            .flat_map(|v| self.commits[v].writes.keys().cloned())
            .collect()
    }

    /// What a merge of `parents` (first = ours) must settle beyond `own`: the rows written
    /// on the sides being merged with several heads in the union. `Ok` holds the settling
    /// writes; `Err` the conflicting rows with their heads.
    fn settle(
        &self,
        parents: &[Version],
        own: &BTreeMap<Row, Val>,
        policy: Option<MergePolicy>,
    ) -> Result<BTreeMap<Row, Val>, Conflicts> {
        let union = self.union(parents);
        let mut common: Option<HashSet<Version>> = None;
        for parent in parents {
            let set = self.ancestors(parent);
            common = Some(match common {
                Some(c) => c.intersection(&set).cloned().collect(),
                None => (*set).clone(),
            });
        }
        let common = common.unwrap_or_default();
        let divergent: HashSet<Version> = union.difference(&common).cloned().collect();
        let ours = self.ancestors(&parents[0]);
        let mut settled = BTreeMap::new();
        let mut conflicts = Vec::new();
        for row in self.rows(&divergent) {
            if own.contains_key(&row) {
                continue;
            }
            let Some(state) = self.read(&union, &row) else {
                continue;
            };
            if state.heads.len() < 2 {
                continue;
            }
            let vals: Vec<Val> = state.heads.iter().map(|h| self.val(h, &row)).collect();
            let agree = vals.iter().all(|v| same_content(v, &vals[0]));
            let chosen = if agree {
                Some(state.heads[0].clone())
            } else {
                match policy {
                    None => None,
                    Some(MergePolicy::Newest) => Some(state.heads[0].clone()),
                    Some(MergePolicy::Ours) => state
                        .heads
                        .iter()
                        .find(|h| ours.contains(*h))
                        .or(state.heads.first())
                        .cloned(),
                    Some(MergePolicy::Theirs) => state
                        .heads
                        .iter()
                        .find(|h| !ours.contains(*h))
                        .or(state.heads.first())
                        .cloned(),
                }
            };
            match chosen {
                Some(head) => {
                    settled.insert(row.clone(), self.val(&head, &row));
                }
                None => conflicts.push((row, state.heads)),
            }
        }
        if conflicts.is_empty() {
            Ok(settled)
        } else {
            Err(conflicts)
        }
    }
}

fn same_content(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Del, Val::Del) => true,
        _ => a == b,
    }
}

struct Device {
    repo: Option<Repository>,
    dir: Option<tempfile::TempDir>,
    /// Commits whose node this device holds.
    nodes: HashSet<Version>,
    /// The payloads (operations hashes) this device holds.
    payloads: HashSet<String>,
    checkout: Option<Version>,
    /// This device's clock offset, for writes made with a chosen time.
    skew: i64,
    /// Whether it has written its burst of versions of the hot row.
    hot: bool,
}

impl Device {
    fn repo(&self) -> &Repository {
        self.repo.as_ref().expect("open")
    }
}

/// Declares the shape counters, and how two tallies add up.
macro_rules! stats {
    ($($field:ident),* $(,)?) => {
        /// How often each interesting shape occurred, over all histories.
        #[derive(Default, Debug)]
        struct Stats {
            $($field: usize,)*
        }

        impl Stats {
            fn add(&mut self, other: &Stats) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

stats!(
    cases,
    steps,
    merges,
    merges_of_three_or_more,
    paged_merges,
    criss_cross_merges,
    merges_of_merges,
    conflicts_reported,
    unsettled_foreign_merges,
    writes_on_old_versions_after_merges,
    skewed_writes,
    pending_seen,
    payloads_delivered_late,
    files,
    multi_version_replaces,
    refused_merges,
    hot_rows_over_64_forked,
    forked_reads,
    versions_checked,
);

struct History {
    rng: StdRng,
    model: Model,
    devices: Vec<Device>,
    stats: Stats,
    log: Vec<String>,
    clock: u64,
}

fn row(dataset: &[u8], key: &[u8]) -> Row {
    (dataset.to_vec(), key.to_vec())
}

impl History {
    fn new(seed: u64, on_disk: bool) -> History {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = rng.random_range(2..=4);
        let devices = (0..count)
            .map(|i| {
                let dir = on_disk.then(|| tempfile::tempdir().expect("tempdir"));
                let repo = match &dir {
                    Some(dir) => Repository::init(dir.path()).expect("init"),
                    None => Repository::in_memory().expect("memory"),
                };
                let skew = [0i64, 5, -5, 30, -90][i % 5] * MINUTE as i64;
                Device {
                    repo: Some(repo),
                    dir,
                    nodes: HashSet::new(),
                    payloads: HashSet::new(),
                    checkout: None,
                    skew,
                    hot: false,
                }
            })
            .collect();
        History {
            rng,
            model: Model::default(),
            devices,
            stats: Stats::default(),
            log: Vec::new(),
            clock: T0,
        }
    }

    /// The commits device `d` can read: node, payload and every parent readable.
    fn visible(&self, d: usize) -> HashSet<Version> {
        let device = &self.devices[d];
        let mut order: Vec<&Version> = device.nodes.iter().collect();
        order.sort_by_key(|v| self.model.ancestors(v).len());
        let mut visible = HashSet::new();
        for version in order {
            let commit = &self.model.commits[version];
            let payload = commit
                .ops
                .as_ref()
                .is_none_or(|hash| device.payloads.contains(hash));
            if payload && commit.parents.iter().all(|p| visible.contains(p)) {
                visible.insert(version.clone());
            }
        }
        visible
    }

    fn tips(&self, d: usize) -> Vec<Version> {
        let visible = self.visible(d);
        let mut tips: Vec<Version> = visible
            .iter()
            .filter(|v| {
                !visible
                    .iter()
                    .any(|o| self.model.commits[o].parents.contains(v))
            })
            .cloned()
            .collect();
        tips.sort();
        tips
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.rng.random_range(0..items.len())])
        }
    }

    fn random_row(&mut self) -> Row {
        let dataset = DATASETS[self.rng.random_range(0..DATASETS.len())];
        let key = KEYS[self.rng.random_range(0..KEYS.len())];
        row(dataset, key)
    }

    /// Random operations for a transaction (and what the model records for them).
    fn random_ops(&mut self, d: usize, tx: &mut strata::Transaction<'_>) -> BTreeMap<Row, Val> {
        let mut writes = BTreeMap::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let (dataset, key) = self.random_row();
            let choice = self.rng.random_range(0..10);
            let val = if choice < 6 {
                let value = format!("v{}", self.rng.random_range(0..4)).into_bytes();
                tx.put(&dataset, &key, &value);
                Val::Put(value)
            } else if choice < 9 {
                tx.delete(&dataset, &key);
                Val::Del
            } else {
                let content = format!("file {}", self.rng.random_range(0..3)).into_bytes();
                tx.put_file(&dataset, &key, &mut content.as_slice())
                    .expect("file");
                self.stats.files += 1;
                let _ = d;
                Val::File(sha256_hex(&content))
            };
            writes.insert((dataset, key), val);
        }
        writes
    }

    /// Records a commit made on device `d`. A commit written through the API moves the
    /// checkout along when it was written on it.
    fn record(&mut self, d: usize, version: &Version, writes: BTreeMap<Row, Val>, raw: bool) {
        let node = self.devices[d].repo().graph().get(version).expect("node");
        let commit = Commit::decode(&node.value).expect("commit");
        let parents: Vec<Version> = node
            .links
            .iter()
            .map(|l| {
                self.devices[d]
                    .repo()
                    .resolve(l)
                    .expect("parent is a version")
            })
            .collect();
        let ops = commit.operations.clone();
        if !self.model.commits.contains_key(version) {
            self.model.add(
                version.clone(),
                MCommit {
                    parents,
                    time: commit.modified,
                    writes,
                    ops: ops.clone(),
                },
            );
        }
        self.devices[d].nodes.insert(version.clone());
        self.devices[d].payloads.extend(ops);
        let on_checkout = self.devices[d]
            .checkout
            .as_ref()
            .is_some_and(|c| self.model.commits[version].parents.contains(c));
        if on_checkout && !raw {
            self.devices[d].checkout = Some(version.clone());
        }
    }

    fn step(&mut self) {
        self.stats.steps += 1;
        let d = self.rng.random_range(0..self.devices.len());
        match self.rng.random_range(0..100) {
            0..20 => self.write(d),
            20..28 => self.write_on_old(d),
            28..38 => self.foreign_write(d),
            38..56 => self.merge(d),
            56..60 => self.replace_several(d),
            60..82 => {
                let to = self.rng.random_range(0..self.devices.len());
                if to != d {
                    let graph_only = self.rng.random_bool(0.25);
                    self.sync(d, to, graph_only);
                }
            }
            82..86 => self.refused_merge(d),
            86..90 => self.checkout(d),
            90..92 if d < 2 => self.hot_row(d),
            92..95 => self.reopen(d),
            _ => self.deliver_payloads(d),
        }
    }

    fn write(&mut self, d: usize) {
        let repo = self.devices[d].repo().clone();
        let expected_parent = match &self.devices[d].checkout {
            Some(checkout) => vec![checkout.clone()],
            None => self.tips(d),
        };
        let mut tx = repo.transaction();
        let writes = self.random_ops(d, &mut tx);
        let version = tx.commit().expect("write");
        self.log.push(format!("write on {d}: {}", version.short()));
        self.record(d, &version, writes, false);
        let parents = &self.model.commits[&version].parents;
        assert!(parents.len() <= 1);
        if let Some(parent) = parents.first() {
            assert!(
                expected_parent.contains(parent),
                "a plain write continues a head or the checkout"
            );
        }
        self.check_device(d, &[version]);
    }

    fn write_on_old(&mut self, d: usize) {
        let mut visible: Vec<Version> = self.visible(d).into_iter().collect();
        visible.sort();
        let Some(base) = self.pick(&visible).cloned() else {
            return;
        };
        if self
            .model
            .union(std::slice::from_ref(&base))
            .iter()
            .any(|v| self.model.commits[v].parents.len() > 1)
        {
            self.stats.writes_on_old_versions_after_merges += 1;
        }
        let repo = self.devices[d].repo().clone();
        let mut tx = repo.transaction();
        let writes = self.random_ops(d, &mut tx);
        tx.replaces(std::slice::from_ref(&base));
        let version = tx.commit().expect("write on an old version");
        self.log.push(format!(
            "write on {d} replacing {}: {}",
            base.short(),
            version.short()
        ));
        self.record(d, &version, writes, false);
        assert_eq!(self.model.commits[&version].parents, vec![base]);
        self.check_device(d, &[version]);
    }

    /// A commit written through the graph with a chosen time and parents: a device whose
    /// clock is off, or another program (a merge of several parents that settles nothing).
    fn foreign_write(&mut self, d: usize) {
        let mut visible: Vec<Version> = self.visible(d).into_iter().collect();
        visible.sort();
        let mut parents: Vec<Version> = Vec::new();
        for _ in 0..self.rng.random_range(0..=3) {
            if let Some(p) = self.pick(&visible).cloned()
                && !parents.contains(&p)
            {
                parents.push(p);
            }
        }
        self.clock += self.rng.random_range(1..MINUTE);
        let time = (self.clock as i64 + self.devices[d].skew) as u64;
        let mut writes = BTreeMap::new();
        let mut rows = Vec::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let (dataset, key) = self.random_row();
            let value = self
                .rng
                .random_bool(0.8)
                .then(|| format!("f{}", self.rng.random_range(0..3)));
            writes.insert(
                (dataset.clone(), key.clone()),
                match &value {
                    Some(v) => Val::Put(v.clone().into_bytes()),
                    None => Val::Del,
                },
            );
            rows.push((dataset, key, value));
        }
        if parents.len() > 1 {
            self.stats.unsettled_foreign_merges += 1;
        }
        if self.devices[d].skew != 0 {
            self.stats.skewed_writes += 1;
        }
        let repo = self.devices[d].repo().clone();
        let version = write_raw(&repo, &parents, time, &rows);
        self.log.push(format!(
            "foreign write on {d} at {time}: {}",
            version.short()
        ));
        self.record(d, &version, writes, true);
        self.check_device(d, &[version]);
    }

    fn merge(&mut self, d: usize) {
        let tips = self.tips(d);
        if tips.len() < 2 {
            return;
        }
        let all = self.rng.random_bool(0.5);
        let named: Vec<Version> = if all {
            Vec::new()
        } else {
            let mut chosen: Vec<Version> = tips.clone();
            // A random subset of at least two heads, in random order.
            for i in (1..chosen.len()).rev() {
                let j = self.rng.random_range(0..=i);
                chosen.swap(i, j);
            }
            chosen.truncate(self.rng.random_range(2..=tips.len()));
            chosen
        };
        let policy = match self.rng.random_range(0..5) {
            0 => Some(MergePolicy::Ours),
            1 => Some(MergePolicy::Theirs),
            2 => Some(MergePolicy::Newest),
            _ => None,
        };
        let repo = self.devices[d].repo().clone();
        let mut tx = repo.merge(&named);
        let mut own = BTreeMap::new();
        if self.rng.random_bool(0.3) {
            let (dataset, key) = self.random_row();
            tx.put(&dataset, &key, b"settled");
            own.insert((dataset, key), Val::Put(b"settled".to_vec()));
        }
        if let Some(policy) = policy {
            tx.policy(policy);
        }
        // Half the merges are written as a merge too large for one write is: in pages, here
        // of one to three rows, so that the pages end inside the payload's chunks.
        let paged = self.rng.random_bool(0.5);
        if paged {
            tx.in_pages(self.rng.random_range(1..4));
        }
        let before = repo.graph().change_count();
        match tx.commit() {
            Ok(version) => {
                let node = repo.graph().get(&version).expect("node");
                let parents: Vec<Version> = node
                    .links
                    .iter()
                    .map(|l| repo.resolve(l).expect("parent"))
                    .collect();
                let expected: BTreeSet<&Version> = if named.is_empty() {
                    tips.iter().collect()
                } else {
                    named.iter().collect()
                };
                assert_eq!(
                    parents.iter().collect::<BTreeSet<_>>(),
                    expected,
                    "a merge links the heads it joins"
                );
                if !named.is_empty() {
                    assert_eq!(parents, named, "named heads keep their order");
                }
                let settled = self
                    .model
                    .settle(&parents, &own, policy)
                    .unwrap_or_else(|c| {
                        panic!("the model expected conflicts {c:?}; the merge succeeded")
                    });
                self.note_merge(&parents);
                if paged {
                    self.stats.paged_merges += 1;
                }
                let mut writes = own;
                writes.extend(settled);
                self.log.push(format!(
                    "merge on {d} of {}: {}",
                    parents.len(),
                    version.short()
                ));
                self.record(d, &version, writes, false);
                self.check_device(d, &[version]);
            }
            Err(Error::Conflict { rows }) => {
                assert_eq!(
                    repo.graph().change_count(),
                    before,
                    "a refused merge writes nothing"
                );
                // Which heads are "ours" does not matter for what conflicts.
                let parents = if named.is_empty() {
                    tips.clone()
                } else {
                    named.clone()
                };
                let expected = self
                    .model
                    .settle(&parents, &own, policy)
                    .expect_err("the merge reported conflicts the model does not see");
                let got: Vec<(Row, Vec<String>)> = rows
                    .into_iter()
                    .map(|r| ((r.dataset, r.key), r.versions))
                    .collect();
                let want: Vec<(Row, Vec<String>)> = expected
                    .into_iter()
                    .map(|(row, heads)| (row, heads.iter().map(|h| h.to_string()).collect()))
                    .collect();
                assert_eq!(got, want, "conflicting rows and their versions");
                self.stats.conflicts_reported += 1;
            }
            Err(other) => panic!("merge failed: {other}"),
        }
    }

    fn note_merge(&mut self, parents: &[Version]) {
        self.stats.merges += 1;
        if parents.len() >= 3 {
            self.stats.merges_of_three_or_more += 1;
        }
        if parents
            .iter()
            .any(|p| self.model.commits[p].parents.len() > 1)
        {
            self.stats.merges_of_merges += 1;
        }
        // Criss-cross: the parents' common ancestors have several maximal elements.
        let a = self.model.ancestors(&parents[0]);
        let b = self.model.ancestors(&parents[1]);
        let common: Vec<&Version> = a.intersection(&b).collect();
        let maximal = common
            .iter()
            .filter(|c| {
                !common
                    .iter()
                    .any(|o| o != *c && self.model.ancestors(o).contains(**c))
            })
            .count();
        if maximal > 1 {
            self.stats.criss_cross_merges += 1;
        }
    }

    /// A versioned update naming every version of a forked row: a merge of the heads that
    /// hold them.
    fn replace_several(&mut self, d: usize) {
        let visible = self.visible(d);
        let forked: Vec<(Row, MRow)> = self
            .model
            .rows(&visible)
            .into_iter()
            .filter_map(|row| {
                self.model
                    .read(&visible, &row)
                    .filter(|s| s.heads.len() > 1)
                    .map(|s| (row, s))
            })
            .collect();
        let Some((row, state)) = self.pick(&forked).cloned() else {
            return;
        };
        let repo = self.devices[d].repo().clone();
        let policy = Some(MergePolicy::Newest);
        let mut tx = repo.transaction();
        tx.put(&row.0, &row.1, b"replaced")
            .replaces(&state.heads)
            .policy(MergePolicy::Newest);
        let version = tx.commit().expect("replace several versions");
        let node = repo.graph().get(&version).expect("node");
        let parents: Vec<Version> = node
            .links
            .iter()
            .map(|l| repo.resolve(l).expect("parent"))
            .collect();
        // The heads whose state of the row has one of the named versions.
        let mut expected: BTreeSet<Version> = BTreeSet::new();
        for tip in self.tips(d) {
            let view = self.model.ancestors(&tip);
            if self
                .model
                .read(&view, &row)
                .is_some_and(|s| s.heads.iter().any(|h| state.heads.contains(h)))
            {
                expected.insert(tip);
            }
        }
        assert_eq!(
            parents.iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "replacing several versions links the heads holding them"
        );
        let own = BTreeMap::from([(row.clone(), Val::Put(b"replaced".to_vec()))]);
        let mut writes = own.clone();
        if parents.len() > 1 {
            writes.extend(
                self.model
                    .settle(&parents, &own, policy)
                    .expect("newest settles everything"),
            );
            self.note_merge(&parents);
        }
        self.stats.multi_version_replaces += 1;
        self.log.push(format!(
            "replace {} versions on {d}: {}",
            state.heads.len(),
            version.short()
        ));
        self.record(d, &version, writes, false);
        self.check_device(d, &[version]);
    }

    /// Merges a device must refuse, writing nothing: an ancestor with its descendant, or a
    /// version that is not a head.
    fn refused_merge(&mut self, d: usize) {
        let visible: Vec<Version> = {
            let mut v: Vec<Version> = self.visible(d).into_iter().collect();
            v.sort();
            v
        };
        let tips = self.tips(d);
        let candidates: Vec<(Version, Version)> = visible
            .iter()
            .flat_map(|a| visible.iter().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| {
                a != b
                    && (self.model.ancestors(b).contains(a)
                        || !tips.contains(a)
                        || !tips.contains(b))
            })
            .take(50)
            .collect();
        let Some((a, b)) = self.pick(&candidates).cloned() else {
            return;
        };
        let repo = self.devices[d].repo().clone();
        let before = repo.graph().change_count();
        let result = repo.merge(&[a, b]).policy(MergePolicy::Newest).commit();
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
        assert_eq!(repo.graph().change_count(), before);
        assert_eq!(repo.heads().expect("heads"), tips);
        self.stats.refused_merges += 1;
    }

    fn checkout(&mut self, d: usize) {
        let repo = self.devices[d].repo().clone();
        if self.devices[d].checkout.is_some() && self.rng.random_bool(0.5) {
            repo.checkout_latest().expect("latest");
            self.devices[d].checkout = None;
            return;
        }
        let mut visible: Vec<Version> = self.visible(d).into_iter().collect();
        visible.sort();
        if let Some(version) = self.pick(&visible).cloned() {
            repo.checkout(&version).expect("checkout");
            self.devices[d].checkout = Some(version);
        }
    }

    /// A row written more than 64 times, on the device's own line.
    fn hot_row(&mut self, d: usize) {
        if self.devices[d].hot {
            return;
        }
        self.devices[d].hot = true;
        let repo = self.devices[d].repo().clone();
        let mut last = None;
        for i in 0..70 {
            let value = format!("hot {i}").into_bytes();
            let version = repo.put(DATASETS[0], HOT, &value).expect("hot write");
            self.record(
                d,
                &version,
                BTreeMap::from([(row(DATASETS[0], HOT), Val::Put(value))]),
                false,
            );
            last = Some(version);
        }
        self.check_device(d, &last.into_iter().collect::<Vec<_>>());
    }

    fn reopen(&mut self, d: usize) {
        let device = &mut self.devices[d];
        let Some(dir) = &device.dir else {
            return;
        };
        device.repo = None;
        device.repo = Some(Repository::open(dir.path()).expect("reopen"));
        self.check_device(d, &[]);
    }

    /// Sends every node `from` has that `to` lacks, through the receiver's checks; with
    /// `graph_only`, without payloads (the commits stay pending until they arrive).
    fn sync(&mut self, from: usize, to: usize, graph_only: bool) {
        let (source, target) = (
            self.devices[from].repo().clone(),
            self.devices[to].repo().clone(),
        );
        if graph_only {
            common::sync_graph(&source, &target);
        } else {
            common::sync(&source, &target);
        }
        let nodes: Vec<Version> = self.devices[from].nodes.iter().cloned().collect();
        self.devices[to].nodes.extend(nodes);
        if !graph_only {
            // The payloads of every commit the receiver now holds, that the sender has.
            let wanted: Vec<String> = self.devices[to]
                .nodes
                .iter()
                .filter_map(|v| self.model.commits[v].ops.clone())
                .filter(|hash| self.devices[from].payloads.contains(hash))
                .collect();
            self.devices[to].payloads.extend(wanted);
        }
        let visible = self.visible(to);
        let mut nodes: Vec<&Version> = self.devices[to].nodes.iter().collect();
        nodes.sort_by_key(|v| self.model.ancestors(v).len());
        for version in nodes {
            let readable = target.resolve(version).is_ok();
            if readable != visible.contains(version) {
                let commit = &self.model.commits[version];
                let parents: Vec<(String, bool, bool)> = commit
                    .parents
                    .iter()
                    .map(|p| {
                        (
                            p.short().to_string(),
                            target.resolve(p).is_ok(),
                            visible.contains(p),
                        )
                    })
                    .collect();
                let payload = commit.ops.as_ref().map(|h| {
                    (
                        target.payload(h).unwrap().is_some(),
                        self.devices[to].payloads.contains(h),
                    )
                });
                panic!(
                    "{} readable on {to}: impl {readable}; parents {parents:?}; payload {payload:?}; pending {:?}\n{}",
                    version.short(),
                    target.missing_payloads().unwrap(),
                    self.log.join("\n")
                );
            }
        }
        let pending = self.devices[to].nodes.len() - visible.len();
        if pending > 0 {
            self.stats.pending_seen += 1;
            let report = target.fsck(&mut |_, _| {}).expect("fsck");
            assert!(
                report.is_ok(),
                "{:?}\n{}",
                report.problems,
                self.log.join("\n")
            );
            assert_eq!(
                target.status().expect("status").pending as usize,
                pending,
                "pending on {to}\n{}",
                self.log.join("\n")
            );
        }
        self.log.push(format!(
            "sync {from} -> {to}{}",
            if graph_only { " (graph only)" } else { "" }
        ));
        self.check_device(to, &[]);
    }

    /// Payloads a device lacks arrive from any device that has them.
    fn deliver_payloads(&mut self, d: usize) {
        let missing: BTreeSet<String> = self.devices[d]
            .nodes
            .iter()
            .filter_map(|v| self.model.commits[v].ops.clone())
            .filter(|hash| !self.devices[d].payloads.contains(hash))
            .collect();
        if missing.is_empty() {
            return;
        }
        let target = self.devices[d].repo().clone();
        for hash in &missing {
            let source = self
                .devices
                .iter()
                .find(|dev| dev.payloads.contains(hash))
                .expect("someone has it")
                .repo()
                .clone();
            common::send_payload(&source, &target, hash);
            self.devices[d].payloads.insert(hash.clone());
        }
        self.stats.payloads_delivered_late += 1;
        self.log.push(format!("payloads to {d}"));
        self.check_device(d, &[]);
    }

    /// Checks device `d` at latest, at `versions`, and that it sees what the model says.
    fn check_device(&mut self, d: usize, versions: &[Version]) {
        let repo = self.devices[d].repo().clone();
        let visible = self.visible(d);
        let mut expected_heads = self.tips(d);
        expected_heads.sort();
        assert_eq!(
            repo.heads().expect("heads"),
            expected_heads,
            "heads on device {d}"
        );
        if std::env::var("STRATA_MODEL_FSCK").is_ok() {
            let report = repo.fsck(&mut |_, _| {}).expect("fsck");
            assert!(
                report.is_ok(),
                "{:?}\n{}",
                report.problems,
                self.log.join("\n")
            );
        }
        self.check_view(&repo, repo.latest().expect("latest"), &visible, true);
        for version in versions {
            if visible.contains(version) {
                let view = self.model.ancestors(version);
                self.check_view(&repo, repo.at(version).expect("at"), &view, false);
            }
        }
        assert_eq!(
            repo.checked_out().expect("checkout"),
            self.devices[d].checkout
        );
    }

    fn check_view(
        &mut self,
        repo: &Repository,
        view: strata::View,
        commits: &HashSet<Version>,
        latest: bool,
    ) {
        self.stats.versions_checked += 1;
        let mut live = 0u64;
        let mut files = 0u64;
        for dataset in DATASETS {
            let rows: Vec<strata::Row> = view
                .range(dataset, Range::all())
                .collect::<strata::Result<_>>()
                .expect("range");
            let mut got: Vec<(Vec<u8>, Val, bool)> = Vec::new();
            for r in rows {
                let val = match &r.file {
                    Some(file) => Val::File(file.hash.clone()),
                    None => Val::Put(r.value.clone()),
                };
                got.push((r.key.clone(), val, r.forked));
            }
            let mut want = Vec::new();
            let keys: BTreeSet<Vec<u8>> = self
                .model
                .rows(commits)
                .into_iter()
                .filter(|(d, _)| d == dataset)
                .map(|(_, k)| k)
                .collect();
            for key in keys {
                let Some(state) = self.model.read(commits, &row(dataset, &key)) else {
                    continue;
                };
                if state.heads.len() > 1 {
                    self.stats.forked_reads += 1;
                    if key == HOT {
                        self.stats.hot_rows_over_64_forked += 1;
                    }
                    // Every concurrent version, newest first.
                    let forks: Vec<Version> = view
                        .forks(dataset, &key)
                        .expect("forks")
                        .into_iter()
                        .map(|f| f.version)
                        .collect();
                    assert_eq!(forks, state.heads, "forks of {key:?}");
                }
                // A get agrees with the range read.
                let one = view.get(dataset, &key).expect("get");
                assert_eq!(one.is_some(), state.winner.live(), "get {key:?}");
                if state.winner.live() {
                    if matches!(state.winner, Val::File(_)) {
                        files += 1;
                    } else {
                        live += 1;
                    }
                    want.push((key.clone(), state.winner.clone(), state.heads.len() > 1));
                }
            }
            assert_eq!(
                got,
                want,
                "rows of {dataset:?} (latest: {latest})\n{}",
                self.log.join("\n")
            );
            // A bounded read returns the full read's rows within its bounds, up to its limit.
            if got.len() >= 3 {
                let (low, high) = (&got[1].0, &got[got.len() - 2].0);
                let limit = got.len() / 2;
                let window: Vec<Vec<u8>> = view
                    .range(
                        dataset,
                        Range::all().gt(low.clone()).lte(high.clone()).limit(limit),
                    )
                    .map(|row| row.expect("range").key)
                    .collect();
                let cut: Vec<Vec<u8>> = got
                    .iter()
                    .map(|(key, _, _)| key.clone())
                    .filter(|key| key > low && key <= high)
                    .take(limit)
                    .collect();
                assert_eq!(
                    window, cut,
                    "bounded rows of {dataset:?} (latest: {latest})"
                );
            }
        }
        let status = view.status();
        assert_eq!(
            (status.rows, status.files),
            (live, files),
            "status counts (latest: {latest})"
        );
        let _ = repo;
    }

    /// The end: every device at every version it holds, and diffs.
    fn check_everything(&mut self) {
        for d in 0..self.devices.len() {
            let repo = self.devices[d].repo().clone();
            let mut visible: Vec<Version> = self.visible(d).into_iter().collect();
            visible.sort();
            for version in &visible {
                let view = self.model.ancestors(version);
                self.check_view(&repo, repo.at(version).expect("at"), &view, false);
            }
            for _ in 0..4 {
                let (Some(a), Some(b)) =
                    (self.pick(&visible).cloned(), self.pick(&visible).cloned())
                else {
                    break;
                };
                self.check_diff(&repo, &a, &b);
            }
            // History lists every version of a row this device holds.
            let everything: HashSet<Version> = visible.iter().cloned().collect();
            for (dataset, key) in self.model.rows(&everything) {
                let mut got: Vec<Version> = repo
                    .history(&dataset, &key)
                    .expect("history")
                    .into_iter()
                    .map(|v| v.version)
                    .collect();
                got.sort();
                let mut want: Vec<Version> = self.model.writers[&(dataset.clone(), key.clone())]
                    .iter()
                    .filter(|v| everything.contains(*v))
                    .cloned()
                    .collect();
                want.sort();
                assert_eq!(got, want, "history of {key:?}");
            }
        }
    }

    fn check_diff(&mut self, repo: &Repository, a: &Version, b: &Version) {
        let (va, vb) = (self.model.ancestors(a), self.model.ancestors(b));
        let mut want = Vec::new();
        let rows: BTreeSet<Row> = self
            .model
            .rows(&va)
            .union(&self.model.rows(&vb))
            .cloned()
            .collect();
        for row in rows {
            let old = self
                .model
                .read(&va, &row)
                .map(|s| s.winner)
                .filter(Val::live);
            let new = self
                .model
                .read(&vb, &row)
                .map(|s| s.winner)
                .filter(Val::live);
            if old != new {
                want.push(row);
            }
        }
        let entries = |diff: strata::Result<strata::Diff>| -> Vec<strata::DiffEntry> {
            diff.expect("diff").map(|e| e.expect("entry")).collect()
        };
        // A big change is diffed by scanning the touched datasets: the same entries.
        let collected = entries(repo.diff(a, b));
        let scanned = entries(repo.diff_scanning(a, b));
        assert_eq!(
            scanned,
            collected,
            "diff {} {} by scan",
            a.short(),
            b.short()
        );
        let got: Vec<Row> = collected.into_iter().map(|e| (e.dataset, e.key)).collect();
        assert_eq!(got, want, "diff {} {}", a.short(), b.short());
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Writes a commit through the graph, with its payload: as a device with another clock, or
/// another program, would.
fn write_raw(
    repo: &Repository,
    parents: &[Version],
    time: u64,
    rows: &[(Vec<u8>, Vec<u8>, Option<String>)],
) -> Version {
    let ops: Vec<strata::Operation> = rows
        .iter()
        .map(|(dataset, key, value)| strata::Operation {
            kind: if value.is_some() {
                strata::OpKind::Put
            } else {
                strata::OpKind::Delete
            },
            content: strata::Content::Row,
            dataset: dataset.clone(),
            key: key.clone(),
            value: value.as_ref().map(|v| v.as_bytes().to_vec()),
        })
        .collect();
    let encoded: Vec<Vec<u8>> = ops.iter().map(strata::Operation::encode).collect();
    let operations = (!encoded.is_empty()).then(|| repo.add_payload(&encoded).expect("payload"));
    let commit = Commit {
        kind: strata::CommitType::Data,
        message: None,
        modified: time,
        puts: ops.iter().filter(|o| o.kind == strata::OpKind::Put).count() as u64,
        deletes: ops
            .iter()
            .filter(|o| o.kind == strata::OpKind::Delete)
            .count() as u64,
        files: 0,
        operations,
    };
    let links: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
    let node = repo.graph().add(&links, commit.encode()).expect("add");
    repo.resolve(&node.key).expect("indexed")
}

fn run(seed: u64, on_disk: bool, steps: usize, stats: &mut Stats) {
    let mut history = History::new(seed, on_disk);
    for _ in 0..steps {
        history.step();
    }
    // A full round of syncs: every device ends with everything, and reads it all alike.
    for from in 0..history.devices.len() {
        for to in 0..history.devices.len() {
            if from != to {
                history.sync(from, to, false);
            }
        }
    }
    history.check_everything();
    history.stats.cases = 1;
    stats.add(&history.stats);
}

#[test]
fn every_version_reads_the_same_on_every_device_and_as_the_model_says() {
    let cases: u64 = std::env::var("STRATA_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120);
    let mut stats = Stats::default();
    if let Some(seed) = std::env::var("STRATA_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed, false, 60, &mut stats);
        return;
    }
    for seed in 0..cases {
        let on_disk = seed % 8 == 7;
        let result = std::panic::catch_unwind(|| {
            let mut local = Stats::default();
            run(seed, on_disk, 60, &mut local);
            local
        });
        match result {
            Ok(local) => stats.add(&local),
            Err(panic) => {
                eprintln!("history {seed} failed (replay with STRATA_MODEL_SEED={seed})");
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!("model test: {stats:#?}");
    // The generator must keep producing every shape it exists to produce: a minimum per
    // history for each.
    let per_case = |n: usize| n as f64 / stats.cases as f64;
    for (shape, count, minimum) in [
        ("merges", stats.merges, 1.0),
        ("criss-cross merges", stats.criss_cross_merges, 0.1),
        ("merges of 3+ heads", stats.merges_of_three_or_more, 0.1),
        ("merges written in pages", stats.paged_merges, 0.5),
        ("merges of merges", stats.merges_of_merges, 0.3),
        ("conflicts reported", stats.conflicts_reported, 0.2),
        (
            "merges settling nothing",
            stats.unsettled_foreign_merges,
            0.3,
        ),
        (
            "old writes after merges",
            stats.writes_on_old_versions_after_merges,
            0.3,
        ),
        ("writes with a skewed clock", stats.skewed_writes, 1.0),
        ("pending commits", stats.pending_seen, 0.3),
        (
            "payloads delivered late",
            stats.payloads_delivered_late,
            0.15,
        ),
        ("files", stats.files, 0.5),
        ("multi-version replaces", stats.multi_version_replaces, 0.2),
        ("refused merges", stats.refused_merges, 0.5),
    ] {
        assert!(
            per_case(count) >= minimum,
            "{shape}: {count} in {} histories",
            stats.cases
        );
    }
    assert!(
        stats.hot_rows_over_64_forked >= 1,
        "a row with more than 64 versions read forked: {stats:?}"
    );
}
