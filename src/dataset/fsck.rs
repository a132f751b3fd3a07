//! Verification of a whole repository: every node, changelog, version record, row entry,
//! payload and blob is checked against what it claims, and every problem is reported (not
//! just the first).
//!
//! The check reads one pinned snapshot of the storage, a page at a time, so writes made
//! while it runs are not mistaken for damage. State kept across pages is the set of nodes
//! not yet linked to (the heads of what has been read so far): memory is bounded by the
//! graph's width, not its size. A commit's payload is read a chunk at a time, twice (a
//! merge may hold millions of operations).
//!
//! About 630 lines: one pass checks every record family against the graph, and its checks
//! share that pass's pages and pinned snapshot.

use std::collections::{BTreeMap, BTreeSet};

use super::Repository;
use fastbloom::BloomFilter;

use super::commit::{Commit, Content, FileRef, OpKind, Operation, OperationsHasher};
use super::index::{Ancestry, LatestCounters, RowEntry, excluded_for, heads, raw_hash};
use crate::error::{Error, Result};
use crate::graph::{Node, read_node};
use crate::store::{Snapshot, Tables};

/// The most operations a payload's Bloom filter of rows is sized for (about 20 MB): a
/// commit announcing more, truthfully or not, gets more false positives, never a wrong
/// answer.
const MOST_FILTERED: u64 = 1 << 24;

/// What [`Repository::fsck`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsckReport {
    /// Nodes checked.
    pub nodes: u64,
    /// Changelog entries checked.
    pub entries: u64,
    /// Versions (indexed commits) checked.
    pub versions: u64,
    /// Row entries checked.
    pub rows: u64,
    /// Commit payloads re-hashed.
    pub payloads: u64,
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Commits in the graph whose payload or parent has not arrived (not a problem).
    pub pending: u64,
    /// Files that rows received from a peer name and that have not arrived yet (recorded as
    /// wanted, so the next sync asks for them; not a problem).
    pub wanted_files: u64,
    /// Every problem, one line each.
    pub problems: Vec<String>,
}

impl FsckReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const PAGE: usize = 256;

/// The storage state a check reads: a pinned snapshot, and the counters and sets the store
/// held in memory when it was pinned.
struct Pinned {
    snapshot: Snapshot,
    changes: u64,
    versions: u64,
    /// Both sets of heads as loaded (from their checkpoints and what came after), or why
    /// they could not be: damage to report, not a reason to stop checking.
    heads: std::result::Result<BTreeSet<String>, String>,
    tips: std::result::Result<BTreeSet<String>, String>,
    /// The iseq of a merge being written in pages (by another process, or cut short and
    /// not yet undone by an open for writing): its entries are not indexed yet.
    merging: Option<u64>,
}

fn loaded(set: Result<&BTreeSet<String>>) -> std::result::Result<BTreeSet<String>, String> {
    set.cloned().map_err(|error| error.to_string())
}

/// What a check carries from one node to the next.
struct Checker<'a> {
    repo: &'a Repository,
    report: FsckReport,
    /// Nodes not linked to by any node read so far.
    unlinked: BTreeSet<String>,
    /// The same, among indexed commits only.
    unlinked_versions: BTreeSet<String>,
    /// Every blob a file row names.
    blobs: BTreeSet<FileRef>,
    /// Per indexed commit: the row entries its operations call for, as a count and an
    /// order-free digest, and the same for the entries the scan of the rows finds.
    expected: BTreeMap<u64, Digest>,
    found: BTreeMap<u64, Digest>,
}

/// The operations of a commit that the index holds: the last one on each row.
fn last_ops(ops: &[Operation]) -> BTreeMap<(&[u8], &[u8]), &Operation> {
    ops.iter()
        .map(|op| ((op.dataset.as_slice(), op.key.as_slice()), op))
        .collect()
}

/// A count and a wrapping sum of hashes: the same for the same multiset of rows, in any
/// order, so a commit's rows and the index's entries can be compared without holding either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: u64,
}

impl Digest {
    /// Adds the row entry `op` calls for.
    fn add_op(&mut self, op: &Operation) {
        let deleted = op.kind == OpKind::Delete;
        let value = op.value.as_deref().unwrap_or_default();
        self.add(&op.dataset, &op.key, deleted, value);
    }

    fn add(&mut self, dataset: &[u8], row: &[u8], deleted: bool, value: &[u8]) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (dataset, row, deleted, if deleted { &[][..] } else { value }).hash(&mut hasher);
        self.count += 1;
        self.sum = self.sum.wrapping_add(hasher.finish());
    }
}

impl Repository {
    /// Checks the whole repository. `progress(done, total)` is called as nodes are checked.
    /// Returns `Err` only when checking itself cannot proceed (an I/O error); damage is
    /// reported in [`FsckReport::problems`].
    pub fn fsck(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<FsckReport> {
        // The snapshot, and what the store keeps in memory about it, taken under one lock.
        let (storage_problems, pinned) = {
            let mut tables = self.graph.store().lock();
            let storage_problems = tables.storage_problems()?;
            let snapshot = tables.pin()?;
            let pinned = (|| {
                Ok(Pinned {
                    snapshot,
                    changes: tables.change_count()?,
                    versions: tables.last_iseq()?,
                    heads: loaded(crate::graph::heads(&mut tables)),
                    tips: loaded(super::index::tips(&mut tables)),
                    merging: tables.merging()?.map(|mark| mark.iseq),
                })
            })();
            if pinned.is_err() {
                tables.unpin(snapshot);
            }
            (storage_problems, pinned?)
        };
        let snapshot = pinned.snapshot;
        let mut checker = Checker {
            repo: self,
            report: FsckReport {
                problems: storage_problems,
                ..FsckReport::default()
            },
            unlinked: BTreeSet::new(),
            unlinked_versions: BTreeSet::new(),
            blobs: BTreeSet::new(),
            expected: BTreeMap::new(),
            found: BTreeMap::new(),
        };
        let result = checker.check(&pinned, progress);
        self.graph.store().lock().unpin(snapshot);
        result?;
        let mut report = checker.report;
        // Blobs: present, of the recorded size, and hashing to their name.
        for file in checker.blobs {
            // A file still on its way from a peer (a rows-only sync, or one cut short).
            if !self.blobs.contains(&file.hash)? && self.blobs.is_wanted(&file.hash)? {
                report.wanted_files += 1;
                continue;
            }
            report.blobs += 1;
            let result = self.blobs.open(&file).and_then(|mut reader| {
                std::io::copy(&mut reader, &mut std::io::sink())
                    .map_err(|e| Error::io(format!("reading blob {}", file.hash), e))
            });
            if let Err(error) = result {
                report.problems.push(format!("blob {}: {error}", file.hash));
            }
        }
        Ok(report)
    }
}

impl Checker<'_> {
    /// Runs `read` on the pinned snapshot under the lock.
    fn at<T>(
        &mut self,
        snapshot: Snapshot,
        read: impl FnOnce(&mut Self, &mut Tables) -> Result<T>,
    ) -> Result<T> {
        let store = self.repo.graph.store().clone();
        let mut tables = store.lock();
        tables.read_at(snapshot, |tables| read(self, tables))
    }

    fn problem(&mut self, text: String) {
        self.report.problems.push(text);
    }

    fn check(&mut self, pinned: &Pinned, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let (snapshot, total, versions) = (pinned.snapshot, pinned.changes, pinned.versions);
        let mut next = 1;
        while next <= total {
            let advanced = self.at(snapshot, |checker, tables| {
                let page = tables.keys_from(next, PAGE)?;
                for (change, key) in &page {
                    if *change != next {
                        checker.problem(format!("change {next} is missing from the change index"));
                    }
                    next = change + 1;
                    checker.check_node(tables, *change, key)?;
                }
                Ok(!page.is_empty())
            })?;
            if !advanced {
                self.problem(format!(
                    "changes {next}..={total} are missing from the change index"
                ));
                break;
            }
            progress(next - 1, total);
        }
        match &pinned.heads {
            Ok(heads) if *heads != self.unlinked => self.problem(format!(
                "the heads record lists {} heads; the graph has {}",
                heads.len(),
                self.unlinked.len()
            )),
            Err(error) => self.problem(format!("the graph's heads cannot be loaded: {error}")),
            Ok(_) => {}
        }
        match &pinned.tips {
            Ok(tips) if *tips != self.unlinked_versions => self.problem(format!(
                "the index lists {} heads; its versions have {}",
                tips.len(),
                self.unlinked_versions.len()
            )),
            Err(error) => self.problem(format!("the index's heads cannot be loaded: {error}")),
            Ok(_) => {}
        }
        self.at(snapshot, |checker, tables| {
            checker.check_records(tables, versions)?;
            checker.check_logs(tables)
        })?;
        self.check_rows(snapshot, versions, pinned.merging)
    }

    /// One node: its hash, links, changelog entry, and what the index made of it.
    fn check_node(&mut self, tables: &mut Tables, change: u64, key: &str) -> Result<()> {
        self.report.nodes += 1;
        let Some(node) = read_node(tables, key)? else {
            self.problem(format!(
                "change {change} names node {key}, which is not stored"
            ));
            return Ok(());
        };
        if node.change != change {
            self.problem(format!(
                "node {key} is recorded as change {} but listed at change {change}",
                node.change
            ));
        }
        let actual = self.repo.graph.hasher().hash(&node.links, &node.value);
        if actual != key {
            self.problem(format!("node {key} hashes to {actual}"));
        }
        for link in &node.links {
            match read_node(tables, link)? {
                Some(parent) if parent.change < change => {}
                Some(parent) => self.problem(format!(
                    "node {key} (change {change}) links to {link}, stored later (change {})",
                    parent.change
                )),
                None => self.problem(format!("node {key} links to missing node {link}")),
            }
            self.unlinked.remove(link);
        }
        self.unlinked.insert(key.to_string());
        match tables.log_entry(&node.log, node.seq)? {
            Some(entry) if entry.node == key => {}
            _ => self.problem(format!(
                "node {key} claims log {} seq {}, which names another node",
                node.log, node.seq
            )),
        }
        let indexed = tables.iseq_of(key)?;
        let pending = tables.is_pending(change)?;
        let Ok(commit) = Commit::decode(&node.value) else {
            if indexed.is_some() || pending {
                self.problem(format!("node {key} is not a commit but the index holds it"));
            }
            return Ok(());
        };
        match (indexed, pending) {
            (Some(_), true) => self.problem(format!("commit {key} is both indexed and pending")),
            (None, false) => self.problem(format!("commit {key} is neither indexed nor pending")),
            (None, true) => self.report.pending += 1,
            (Some(iseq), false) => self.check_version(tables, &node, &commit, iseq)?,
        }
        Ok(())
    }

    /// An indexed commit: its record, parents, ancestry, payload and row entries.
    fn check_version(
        &mut self,
        tables: &mut Tables,
        node: &Node,
        commit: &Commit,
        iseq: u64,
    ) -> Result<()> {
        let key = &node.key;
        let index = &self.repo.index;
        let record = index.record(tables, iseq)?;
        if record.inner.node != *key || record.inner.change != node.change {
            self.problem(format!(
                "the record of version {iseq} does not describe commit {key}"
            ));
            return Ok(());
        }
        let mut parents = Vec::new();
        let mut views = Vec::new();
        for link in &node.links {
            let is_commit =
                read_node(tables, link)?.is_some_and(|n| Commit::decode(&n.value).is_ok());
            match tables.iseq_of(link)? {
                Some(p) if !parents.contains(&p) => {
                    parents.push(p);
                    views.push(index.ancestry(tables, p)?);
                }
                Some(_) => {}
                None if is_commit => self.problem(format!(
                    "version {key} is indexed but its parent {link} is not"
                )),
                None => {}
            }
            self.unlinked_versions.remove(link);
        }
        self.unlinked_versions.insert(key.clone());
        if parents != record.inner.parents {
            self.problem(format!("the record of version {key} names other parents"));
        }
        let expected = excluded_for(iseq, &views);
        if *index.ancestry(tables, iseq)?.excluded != expected {
            self.problem(format!(
                "the ancestry of version {key} does not follow from its parents"
            ));
        }
        self.report.versions += 1;

        let Some(hash) = commit.operations.as_deref() else {
            return Ok(());
        };
        let Some(raw) = raw_hash(hash) else {
            self.problem(format!("commit {key} names a malformed operations hash"));
            return Ok(());
        };
        let announced = commit.operation_count();
        if let Err(problem) = self.check_payload(tables, iseq, &raw, hash, announced) {
            self.problem(format!("payload of commit {key}: {problem}"));
        }
        Ok(())
    }

    /// Checks a commit's payload a chunk at a time (a merge may hold millions of
    /// operations): it is here, hashes to `hash`, decodes; notes the blobs its file rows
    /// name and the row entries it calls for (the last operation on each row). Rows written
    /// more than once are found with a Bloom filter in the first pass (sized by the count
    /// the commit announces), so the second keeps only those rows' operations.
    fn check_payload(
        &mut self,
        tables: &mut Tables,
        iseq: u64,
        raw: &[u8; 32],
        hash: &str,
        announced: u64,
    ) -> std::result::Result<(), String> {
        let each_op =
            |tables: &mut Tables, visit: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<u64> {
                for number in 0.. {
                    match tables.ops_chunk(raw, number)? {
                        Some(chunk) => chunk.iter().try_for_each(|op| visit(op))?,
                        None => return Ok(number),
                    }
                }
                Ok(0)
            };
        let mut hasher = OperationsHasher::default();
        let mut count = 0u64;
        let expected = usize::try_from(announced.clamp(1, MOST_FILTERED)).unwrap_or(1);
        let mut seen = BloomFilter::with_false_pos(0.01).expected_items(expected);
        let mut repeated: BTreeSet<(Vec<u8>, Vec<u8>)> = BTreeSet::new();
        let mut blobs = Vec::new();
        let chunks = each_op(tables, &mut |encoded| {
            hasher.add(encoded);
            count += 1;
            let op = Operation::decode(encoded)?;
            if op.kind == OpKind::Put && op.content == Content::File {
                blobs.push(FileRef::decode(op.value.as_deref().unwrap_or_default())?);
            }
            if seen.insert(&(&op.dataset, &op.key)) {
                repeated.insert((op.dataset, op.key));
            }
            Ok(())
        })
        .map_err(|error| error.to_string())?;
        if chunks == 0 {
            return Err("missing, though the version is indexed".into());
        }
        self.report.payloads += 1;
        let rehashed = hasher.finish();
        if rehashed != hash {
            return Err(format!("{count} operations hash to {rehashed}"));
        }
        self.blobs.extend(blobs);
        let digest = self.expected.entry(iseq).or_default();
        let mut last: BTreeMap<(Vec<u8>, Vec<u8>), Operation> = BTreeMap::new();
        each_op(tables, &mut |encoded| {
            let op = Operation::decode(encoded)?;
            if !repeated.is_empty() && repeated.contains(&(op.dataset.clone(), op.key.clone())) {
                last.insert((op.dataset.clone(), op.key.clone()), op);
            } else {
                digest.add_op(&op);
            }
            Ok(())
        })
        .map_err(|error| error.to_string())?;
        last.values().for_each(|op| digest.add_op(op));
        Ok(())
    }

    /// A commit whose row entries differ from its operations: names each row whose entry
    /// is missing or wrong (one point read per row; only for such a commit); returns how
    /// many it named.
    fn name_missing_entries(&mut self, tables: &mut Tables, iseq: u64) -> Result<usize> {
        let record = self.repo.index.record(tables, iseq)?;
        let key = record.inner.node.clone();
        let ops = self.repo.index.operations_of(tables, &record)?;
        let mut named = 0;
        for ((dataset, row), op) in last_ops(&ops) {
            let entry = tables
                .row_entry(dataset, row, iseq)?
                .and_then(|bytes| RowEntry::decode_owned(iseq, bytes).ok());
            let matches = entry.is_some_and(|e| {
                e.version == key
                    && e.deleted == (op.kind == OpKind::Delete)
                    && (e.deleted || e.value.as_slice() == op.value.as_deref().unwrap_or_default())
            });
            if !matches {
                named += 1;
                self.problem(format!(
                    "the version index lacks row {}/{} of commit {key}",
                    crate::error::show(dataset),
                    crate::error::show(row)
                ));
            }
        }
        Ok(named)
    }

    /// Version records are dense and each maps back from its node.
    fn check_records(&mut self, tables: &mut Tables, versions: u64) -> Result<()> {
        for iseq in 1..=versions {
            match tables.version_record(iseq)? {
                None => self.problem(format!("version {iseq} has no record")),
                Some(_) => {
                    let node = self.repo.index.record(tables, iseq)?.inner.node.clone();
                    if tables.iseq_of(&node)? != Some(iseq) {
                        self.problem(format!(
                            "version {iseq} ({node}) does not map back to itself"
                        ));
                    }
                }
            }
        }
        let counters = LatestCounters::read(tables)?;
        let pending = tables.pending_changes()?.len() as u64;
        if counters.pending != pending {
            self.problem(format!(
                "latest counts {} pending commits; {pending} are pending",
                counters.pending
            ));
        }
        Ok(())
    }

    /// Every log's entries are dense and name stored nodes at their change.
    fn check_logs(&mut self, tables: &mut Tables) -> Result<()> {
        for (log, head) in tables.logs()? {
            let mut seq = 1;
            while seq <= head {
                let entries = tables.log_entries_from(&log, seq, PAGE)?;
                if entries.is_empty() {
                    self.problem(format!("log {log} is missing seqs {seq}..={head}"));
                    break;
                }
                for (at, entry) in entries {
                    self.report.entries += 1;
                    match read_node(tables, &entry.node)? {
                        Some(node) if node.change == entry.change => {}
                        Some(_) => self.problem(format!(
                            "log {log} seq {at} records node {} at the wrong change {}",
                            entry.node, entry.change
                        )),
                        None => self.problem(format!(
                            "log {log} seq {at} names missing node {}",
                            entry.node
                        )),
                    }
                    seq = at + 1;
                }
            }
        }
        Ok(())
    }

    /// Every row entry belongs to a version, and the rows and files live at latest are
    /// what the counters say.
    fn check_rows(
        &mut self,
        snapshot: Snapshot,
        versions: u64,
        merging: Option<u64>,
    ) -> Result<()> {
        let latest = Ancestry::everything(versions);
        let datasets = self.at(snapshot, |_, tables| tables.datasets())?;
        let mut live = super::index::Counts::default();
        for dataset in datasets {
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let done = self.at(snapshot, |checker, tables| {
                    let start = match &cursor {
                        Some(key) => std::ops::Bound::Excluded(key.as_slice()),
                        None => std::ops::Bound::Unbounded,
                    };
                    let page = tables.rows_page(
                        &dataset,
                        start,
                        std::ops::Bound::Unbounded,
                        PAGE,
                        usize::MAX,
                    )?;
                    let done = page.len() < PAGE;
                    for scan in page {
                        let mut entries = Vec::with_capacity(scan.entries.len());
                        for (iseq, bytes) in &scan.entries {
                            checker.report.rows += 1;
                            let entry = match RowEntry::decode(*iseq, bytes) {
                                Ok(entry) => entry,
                                Err(error) => {
                                    checker.problem(error.to_string());
                                    continue;
                                }
                            };
                            if Some(*iseq) == merging && *iseq > versions {
                                continue;
                            }
                            let known = *iseq >= 1
                                && *iseq <= versions
                                && checker.repo.index.record(tables, *iseq)?.inner.node
                                    == entry.version;
                            if !known {
                                checker.problem(format!(
                                    "row {}/{} has an entry of unknown version {}",
                                    crate::error::show(&dataset),
                                    crate::error::show(&scan.key),
                                    entry.version
                                ));
                                continue;
                            }
                            checker.found.entry(*iseq).or_default().add(
                                &dataset,
                                &scan.key,
                                entry.deleted,
                                &entry.value,
                            );
                            entries.push(entry);
                        }
                        let mut lookup = checker.repo.index.lookup(tables);
                        if let Some(state) = heads(&mut lookup, entries, &latest)? {
                            live.apply(None, Some(state.winner()));
                        }
                        cursor = Some(scan.key);
                    }
                    Ok(done)
                })?;
                if done {
                    break;
                }
            }
        }
        let differing: Vec<(u64, Digest, Digest)> = std::mem::take(&mut self.expected)
            .into_iter()
            .filter_map(|(iseq, expected)| {
                let found = self.found.get(&iseq).copied().unwrap_or_default();
                (found != expected).then_some((iseq, expected, found))
            })
            .collect();
        for (iseq, expected, found) in differing {
            self.at(snapshot, |checker, tables| {
                let named = checker.name_missing_entries(tables, iseq)?;
                if named == 0 {
                    // Every row it wrote is right: the index holds entries it did not write.
                    let key = checker.repo.index.record(tables, iseq)?.inner.node.clone();
                    checker.problem(format!(
                        "the version index holds {} row entries of commit {key}, which wrote {}",
                        found.count, expected.count
                    ));
                }
                Ok(())
            })?;
        }
        let counters = self.at(snapshot, |_, tables| LatestCounters::read(tables))?;
        if counters.counts != live {
            self.problem(format!(
                "latest counts {} rows and {} files; {} rows and {} files are live",
                counters.counts.rows, counters.counts.files, live.rows, live.files
            ));
        }
        Ok(())
    }
}
