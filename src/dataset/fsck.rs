//! Verification of a whole repository: every node, changelog, index record, payload and
//! blob is checked against what it claims, and every problem is reported (not just the
//! first).
//!
//! The graph is read in change order, a page at a time; the only state kept across pages
//! is the set of nodes not yet linked to (the heads of what has been read so far), so memory
//! is bounded by the graph's width, not its size.

use std::collections::BTreeSet;

use super::commit::{Commit, Content, FileRef, OpKind, Operation};
use super::read::lookup;
use super::{Repository, index, lineage, records};
use crate::error::Result;
use crate::graph::State;
use crate::keys;

/// What [`Repository::fsck`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsckReport {
    /// Nodes checked.
    pub nodes: u64,
    /// Changelog entries checked.
    pub entries: u64,
    /// Commit payloads re-hashed.
    pub payloads: u64,
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Commits in the graph whose payload or parent has not arrived (not a problem).
    pub pending: u64,
    /// Every problem, one line each.
    pub problems: Vec<String>,
}

impl FsckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const PAGE: usize = 256;

/// What a check carries from one node to the next.
struct Checker {
    report: FsckReport,
    hasher: std::sync::Arc<dyn crate::graph::NodeHasher>,
    /// Nodes not linked to by any node read so far (the heads of what has been read).
    unlinked: BTreeSet<String>,
    /// The same, among indexed commits only.
    unlinked_indexed: BTreeSet<String>,
    /// Pending commits, as the index held them when the check began.
    pending: BTreeSet<u64>,
    /// Every blob a file row names.
    blobs: BTreeSet<FileRef>,
}

impl Repository {
    /// Checks the whole repository. `progress(done, total)` is called as nodes are checked.
    /// Returns `Err` only when checking itself cannot proceed (an I/O error); damage is
    /// reported in [`FsckReport::problems`].
    ///
    /// The check reads one pinned snapshot of the storage (with the heads and pending
    /// commits the repository held at that moment), so writes made while it runs do not
    /// show up as problems.
    pub fn fsck(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<FsckReport> {
        let (snapshot, total, heads, tips, pending) = {
            let mut state = self.graph.lock();
            let snapshot = state.kv.pin()?;
            let heads: BTreeSet<String> = state.heads_keys().into_iter().collect();
            let tips: BTreeSet<String> = index::tips(&mut state)?.into_iter().collect();
            let pending: BTreeSet<u64> =
                index::memory(&mut state)?.pending.keys().copied().collect();
            (snapshot, state.change_count, heads, tips, pending)
        };
        let mut checker = Checker {
            report: FsckReport::default(),
            hasher: self.graph.hasher(),
            unlinked: BTreeSet::new(),
            unlinked_indexed: BTreeSet::new(),
            pending,
            blobs: BTreeSet::new(),
        };
        let result = self.check_at(snapshot, total, &heads, &tips, &mut checker, progress);
        self.graph.lock().kv.unpin(snapshot);
        result?;
        let mut report = checker.report;
        // Blobs: present, of the recorded size, and hashing to their name.
        for file in checker.blobs {
            report.blobs += 1;
            let result = self.blobs.open(&file).and_then(|mut reader| {
                std::io::copy(&mut reader, &mut std::io::sink())
                    .map_err(|e| crate::Error::io(format!("reading blob {}", file.hash), e))
            });
            if let Err(error) = result {
                report.problems.push(format!("blob {}: {error}", file.hash));
            }
        }
        Ok(report)
    }

    fn check_at(
        &self,
        snapshot: crate::kv::Snapshot,
        total: u64,
        heads: &BTreeSet<String>,
        tips: &BTreeSet<String>,
        checker: &mut Checker,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let mut next = 1;
        while next <= total {
            let advanced = self.graph.lock().read_at(snapshot, |state| {
                let page = state.keys_from(next, PAGE)?;
                for (change, key) in &page {
                    if *change != next {
                        checker
                            .report
                            .problems
                            .push(format!("change {next} is missing from the change index"));
                    }
                    next = change + 1;
                    checker.check_node(state, *change, key)?;
                }
                Ok(!page.is_empty())
            })?;
            if !advanced {
                checker.report.problems.push(format!(
                    "changes {next}..={total} are missing from the change index"
                ));
                break;
            }
            progress(next - 1, total);
        }
        let report = &mut checker.report;
        if *heads != checker.unlinked {
            report.problems.push(format!(
                "the heads record lists {} heads; the graph has {}",
                heads.len(),
                checker.unlinked.len()
            ));
        }
        if *tips != checker.unlinked_indexed {
            report.problems.push(format!(
                "the index lists {} heads; its indexed commits have {}",
                tips.len(),
                checker.unlinked_indexed.len()
            ));
        }
        let logs = self.graph.lock().read_at(snapshot, |state| {
            for tip in tips {
                if let Err(error) = lineage::path_of(&mut state.kv, tip) {
                    report
                        .problems
                        .push(format!("head {tip} has no readable path: {error}"));
                }
            }
            state.logs()
        })?;

        // Every log's entries must be dense and name stored nodes.
        for (log, head) in logs {
            let mut seq = 1;
            while seq <= head {
                let read = self.graph.lock().read_at(snapshot, |state| {
                    let entries = state.log_entries_from(&log, seq, PAGE)?;
                    if entries.is_empty() {
                        report
                            .problems
                            .push(format!("log {log} is missing seqs {seq}..={head}"));
                        return Ok(false);
                    }
                    for (at, entry) in entries {
                        report.entries += 1;
                        match state.node(&entry.node)? {
                            Some(node) if node.change == entry.change => {}
                            Some(_) => report.problems.push(format!(
                                "log {log} seq {at} records node {} at the wrong change {}",
                                entry.node, entry.change
                            )),
                            None => report.problems.push(format!(
                                "log {log} seq {at} names missing node {}",
                                entry.node
                            )),
                        }
                        seq = at + 1;
                    }
                    Ok(true)
                })?;
                if !read {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Checker {
    /// Checks one node: its hash, links, changelog entry, index record, payload and the
    /// version-index entries of its rows.
    fn check_node(&mut self, state: &mut State, change: u64, key: &str) -> Result<()> {
        let key = key.to_string();
        self.report.nodes += 1;
        let Some(node) = state.node(&key)? else {
            self.report.problems.push(format!(
                "change {change} names node {key}, which is not stored"
            ));
            return Ok(());
        };
        if node.change != change {
            self.report.problems.push(format!(
                "node {key} is recorded as change {} but listed at change {change}",
                node.change
            ));
        }
        let actual = self.hasher.hash(&node.links, &node.value);
        if actual != key {
            self.report
                .problems
                .push(format!("node {key} hashes to {actual}"));
        }
        for link in &node.links {
            match state.node(link)? {
                Some(parent) if parent.change < change => {}
                Some(parent) => self.report.problems.push(format!(
                    "node {key} (change {change}) links to {link}, stored later (change {})",
                    parent.change
                )),
                None => self
                    .report
                    .problems
                    .push(format!("node {key} links to missing node {link}")),
            }
            self.unlinked.remove(link);
        }
        self.unlinked.insert(key.clone());
        match state.log_entries_from(&node.log, node.seq, 1)?.pop() {
            Some((_, entry)) if entry.node == key => {}
            _ => self.report.problems.push(format!(
                "node {key} claims log {} seq {}, which names another node",
                node.log, node.seq
            )),
        }

        // The dataset index.
        let status = records::node_status(&mut state.kv, &key)?;
        let pending = self.pending.contains(&change);
        match (&status, pending) {
            (Some(_), true) => self
                .report
                .problems
                .push(format!("commit {key} is both indexed and pending")),
            (None, false) => self
                .report
                .problems
                .push(format!("commit {key} is neither indexed nor pending")),
            (None, true) => self.report.pending += 1,
            (Some(status), false) => {
                if status.change != change {
                    self.report.problems.push(format!(
                        "index records commit {key} at change {}, the graph at {change}",
                        status.change
                    ));
                }
                for link in &node.links {
                    self.unlinked_indexed.remove(link);
                }
                self.unlinked_indexed.insert(key.clone());
            }
        }

        // The payload, and the index entries of an indexed commit's operations.
        let Ok(commit) = Commit::decode(&node.value) else {
            return Ok(());
        };
        let Some(hash) = commit.operations.as_deref() else {
            return Ok(());
        };
        let Some(raw) = records::hex32(hash) else {
            self.report
                .problems
                .push(format!("commit {key} names a malformed operations hash"));
            return Ok(());
        };
        let prefix = keys::KeyBuf::new(keys::OPERATIONS).raw(&raw).finish();
        let stored: Vec<Vec<u8>> = state.kv.scan_prefix(&prefix)?.map(|(_, v)| v).collect();
        if stored.is_empty() && status.is_none() {
            return Ok(());
        }
        self.report.payloads += 1;
        let rehashed = super::commit::operations_hash(stored.iter().map(Vec::as_slice));
        if rehashed != hash || stored.len() as u64 != commit.operation_count() {
            self.report.problems.push(format!(
                "payload of commit {key} does not match: {} operations hash to {rehashed}",
                stored.len()
            ));
            return Ok(());
        }
        let ops: Vec<Operation> = match stored.iter().map(|op| Operation::decode(op)).collect() {
            Ok(ops) => ops,
            Err(error) => {
                self.report
                    .problems
                    .push(format!("payload of commit {key}: {error}"));
                return Ok(());
            }
        };
        for op in &ops {
            if op.kind == OpKind::Put && op.content == Content::File {
                match FileRef::decode(op.value.as_deref().unwrap_or_default()) {
                    Ok(file) => {
                        self.blobs.insert(file);
                    }
                    Err(error) => self.report.problems.push(format!("commit {key}: {error}")),
                }
            }
        }
        if let Some(status) = &status {
            let path = [(status.layer, status.change)];
            // The last operation on a row is the one indexed.
            let mut seen = BTreeSet::new();
            for (index, op) in ops.iter().enumerate().rev() {
                if !seen.insert((op.dataset.clone(), op.key.clone())) {
                    return Ok(());
                }
                let entry = lookup(&mut state.kv, &path, &op.dataset, &op.key)?;
                let ok = entry.as_ref().is_some_and(|e| {
                    e.version == key && e.index == index as u64 && e.change == change
                });
                if !ok {
                    self.report.problems.push(format!(
                        "the version index lacks row {}/{} of commit {key}",
                        String::from_utf8_lossy(&op.dataset),
                        String::from_utf8_lossy(&op.key)
                    ));
                }
            }
        }
        Ok(())
    }
}
