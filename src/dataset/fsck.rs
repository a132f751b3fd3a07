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

impl Repository {
    /// Checks the whole repository. `progress(done, total)` is called as nodes are checked.
    /// Returns `Err` only when checking itself cannot proceed (an I/O error); damage is
    /// reported in [`FsckReport::problems`].
    pub fn fsck(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let hasher = self.graph.hasher();
        let total = self.graph.change_count();
        let mut unlinked: BTreeSet<String> = BTreeSet::new();
        let mut unlinked_indexed: BTreeSet<String> = BTreeSet::new();
        let mut blobs: BTreeSet<FileRef> = BTreeSet::new();
        let mut next = 1;
        while next <= total {
            let mut state = self.graph.lock();
            let page = state.keys_from(next, PAGE)?;
            if page.is_empty() {
                report.problems.push(format!(
                    "changes {next}..={total} are missing from the change index"
                ));
                break;
            }
            for (change, key) in page {
                if change != next {
                    report
                        .problems
                        .push(format!("change {next} is missing from the change index"));
                }
                next = change + 1;
                report.nodes += 1;
                let Some(node) = state.node(&key)? else {
                    report.problems.push(format!(
                        "change {change} names node {key}, which is not stored"
                    ));
                    continue;
                };
                if node.change != change {
                    report.problems.push(format!(
                        "node {key} is recorded as change {} but listed at change {change}",
                        node.change
                    ));
                }
                let actual = hasher.hash(&node.links, &node.value);
                if actual != key {
                    report
                        .problems
                        .push(format!("node {key} hashes to {actual}"));
                }
                for link in &node.links {
                    match state.node(link)? {
                        Some(parent) if parent.change < change => {}
                        Some(parent) => report.problems.push(format!(
                            "node {key} (change {change}) links to {link}, stored later (change {})",
                            parent.change
                        )),
                        None => report.problems.push(format!("node {key} links to missing node {link}")),
                    }
                    unlinked.remove(link);
                }
                unlinked.insert(key.clone());
                match state.log_entries_from(&node.log, node.seq, 1)?.pop() {
                    Some((_, entry)) if entry.node == key => {}
                    _ => report.problems.push(format!(
                        "node {key} claims log {} seq {}, which names another node",
                        node.log, node.seq
                    )),
                }

                // The dataset index.
                let status = records::node_status(&mut state.kv, &key)?;
                let pending = index::memory(&mut state)?.pending.contains_key(&change);
                match (&status, pending) {
                    (Some(_), true) => report
                        .problems
                        .push(format!("commit {key} is both indexed and pending")),
                    (None, false) => report
                        .problems
                        .push(format!("commit {key} is neither indexed nor pending")),
                    (None, true) => report.pending += 1,
                    (Some(status), false) => {
                        if status.change != change {
                            report.problems.push(format!(
                                "index records commit {key} at change {}, the graph at {change}",
                                status.change
                            ));
                        }
                        for link in &node.links {
                            unlinked_indexed.remove(link);
                        }
                        unlinked_indexed.insert(key.clone());
                    }
                }

                // The payload, and the index entries of an indexed commit's operations.
                let Ok(commit) = Commit::decode(&node.value) else {
                    continue;
                };
                let Some(hash) = commit.operations.as_deref() else {
                    continue;
                };
                let Some(raw) = records::hex32(hash) else {
                    report
                        .problems
                        .push(format!("commit {key} names a malformed operations hash"));
                    continue;
                };
                let prefix = keys::KeyBuf::new(keys::OPERATIONS).raw(&raw).finish();
                let stored: Vec<Vec<u8>> = state.kv.scan_prefix(&prefix)?.map(|(_, v)| v).collect();
                if stored.is_empty() && status.is_none() {
                    continue;
                }
                report.payloads += 1;
                let rehashed = super::commit::operations_hash(stored.iter().map(Vec::as_slice));
                if rehashed != hash || stored.len() as u64 != commit.operation_count() {
                    report.problems.push(format!(
                        "payload of commit {key} does not match: {} operations hash to {rehashed}",
                        stored.len()
                    ));
                    continue;
                }
                let ops: Vec<Operation> =
                    match stored.iter().map(|op| Operation::decode(op)).collect() {
                        Ok(ops) => ops,
                        Err(error) => {
                            report
                                .problems
                                .push(format!("payload of commit {key}: {error}"));
                            continue;
                        }
                    };
                for op in &ops {
                    if op.kind == OpKind::Put && op.content == Content::File {
                        match FileRef::decode(op.value.as_deref().unwrap_or_default()) {
                            Ok(file) => {
                                blobs.insert(file);
                            }
                            Err(error) => report.problems.push(format!("commit {key}: {error}")),
                        }
                    }
                }
                if let Some(status) = &status {
                    let path = [(status.layer, status.change)];
                    // The last operation on a row is the one indexed.
                    let mut seen = BTreeSet::new();
                    for (index, op) in ops.iter().enumerate().rev() {
                        if !seen.insert((op.dataset.clone(), op.key.clone())) {
                            continue;
                        }
                        let entry = lookup(&mut state.kv, &path, &op.dataset, &op.key)?;
                        let ok = entry.as_ref().is_some_and(|e| {
                            e.version == key && e.index == index as u64 && e.change == change
                        });
                        if !ok {
                            report.problems.push(format!(
                                "the version index lacks row {}/{} of commit {key}",
                                String::from_utf8_lossy(&op.dataset),
                                String::from_utf8_lossy(&op.key)
                            ));
                        }
                    }
                }
            }
            drop(state);
            progress(next - 1, total);
        }

        let mut state = self.graph.lock();
        let heads: BTreeSet<String> = state.heads_keys().into_iter().collect();
        if heads != unlinked {
            report.problems.push(format!(
                "the heads record lists {} heads; the graph has {}",
                heads.len(),
                unlinked.len()
            ));
        }
        let tips: BTreeSet<String> = index::tips(&mut state)?.into_iter().collect();
        if tips != unlinked_indexed {
            report.problems.push(format!(
                "the index lists {} heads; its indexed commits have {}",
                tips.len(),
                unlinked_indexed.len()
            ));
        }
        for tip in &tips {
            if let Err(error) = lineage::path_of(&mut state.kv, tip) {
                report
                    .problems
                    .push(format!("head {tip} has no readable path: {error}"));
            }
        }
        drop(state);

        // Every log's entries must be dense and name stored nodes.
        for (log, head) in self.graph.logs()? {
            let mut seq = 1;
            while seq <= head {
                let mut state = self.graph.lock();
                let entries = state.log_entries_from(&log, seq, PAGE)?;
                if entries.is_empty() {
                    report
                        .problems
                        .push(format!("log {log} is missing seqs {seq}..={head}"));
                    break;
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
            }
        }

        // Blobs: present, of the recorded size, and hashing to their name.
        for file in blobs {
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
}
