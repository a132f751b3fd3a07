//! Repairing a damaged repository: recover everything the graph still holds, rebuild every
//! derived record from it, and say exactly what was lost.
//!
//! The nodes and the commit payloads are the repository's primary records; everything else
//! (the change index, the changelogs, the heads, the whole version index) is derived from
//! them. A repair:
//!
//! 1. checks the storage files, and when they are damaged salvages every entry still
//!    readable into a new database (the damaged one is kept beside it; see `store::salvage`);
//! 2. notes every node the indexes name whose record is gone, stashes every node that
//!    decodes, in the order it was first stored, and deletes every payload that does not
//!    match its hash (the commits naming it wait for a peer to send it again, as commits
//!    received without their payload do);
//! 3. rewrites the database without any derived record (into a new one: deleting them in
//!    place would leave a tombstone that every later read steps over) and replays the
//!    stashed nodes through the same checks a node from a peer passes: a node that hashes
//!    wrong, links to a lost node, or leaves a gap in its log is lost, and said so (the
//!    database as it was is then kept beside the new one, unless a salvage kept a copy:
//!    the lost nodes' records are still there);
//! 4. lets the version index rebuild itself from the replayed graph, resets a checkout
//!    whose version is gone, and runs fsck to say what is still wrong (a damaged file,
//!    say, which only a peer can send again).

use std::collections::BTreeSet;
use std::time::Duration;

use super::commit::{Operation, operations_hash};
use super::repository::{OpenOptions, Repository};
use crate::error::{Error, Result};
use crate::graph::Node;
use crate::store::{Salvage, Store, Tables, WriteSet};

/// Nodes (or payloads) per step: each step is one turn of the lock and one write.
const STEP: usize = 512;

/// A node a repair could not keep.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LostNode {
    /// The node's key.
    pub key: String,
    /// Why it was lost (damaged, a parent lost, or a gap in its log before it).
    pub reason: String,
}

/// A device log that came back shorter from a repair.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShortLog {
    /// The log.
    pub log: String,
    /// Its length before the repair, as its changelog record said.
    pub before: u64,
    /// Its length after.
    pub after: u64,
}

/// What [`Repository::repair`] did, and what was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Problems found in the storage files (empty: the files were sound).
    pub storage_problems: Vec<String>,
    /// The salvage of the storage files, when they were damaged.
    pub salvage: Option<Salvage>,
    /// Nodes kept (replayed into the rebuilt graph).
    pub nodes: u64,
    /// Nodes lost, with why. A peer that has them sends them again at the next sync.
    pub lost_nodes: Vec<LostNode>,
    /// Logs that are shorter after the repair than the changelog said before it: entries
    /// lost, among them those that left no trace to name them by (their record and every
    /// index entry naming them were in the damaged part).
    pub short_logs: Vec<ShortLog>,
    /// Commit payloads lost (damaged), by hash. The commits naming them are pending until
    /// a peer sends the payload again.
    pub lost_payloads: Vec<String>,
    /// Versions after the rebuild.
    pub versions: u64,
    /// Commits pending after the rebuild (a payload or a parent missing).
    pub pending: u64,
    /// Where the database as it was before the repair is kept, when nodes were lost and no
    /// salvage kept a copy already (`salvage.kept_at`): the lost nodes' records are still
    /// there, for whoever can recover them. `None` when nothing was lost (it is removed).
    pub kept_at: Option<std::path::PathBuf>,
    /// Whether the checkout was reset to latest (its version was lost).
    pub checkout_reset: bool,
    /// What fsck still finds after the repair, one line each (damaged files, say).
    pub remaining: Vec<String>,
}

impl RepairReport {
    /// Whether nothing was lost and nothing is left wrong.
    pub fn nothing_lost(&self) -> bool {
        self.salvage.as_ref().is_none_or(|s| s.lost.is_empty())
            && self.lost_nodes.is_empty()
            && self.short_logs.is_empty()
            && self.lost_payloads.is_empty()
            && self.remaining.is_empty()
    }
}

impl OpenOptions {
    /// Repairs the repository at `path` (a project folder or a storage folder), which no
    /// process may have open; see [`Repository::repair`]. `progress(step, done)` is called
    /// as the repair goes on.
    pub fn repair(
        &self,
        path: impl AsRef<std::path::Path>,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<RepairReport> {
        let path = path.as_ref();
        let storage = Repository::storage_of(path).ok_or_else(|| Error::RepositoryNotFound {
            path: path.to_path_buf(),
        })?;
        let db = storage.join("db");
        let mut report = RepairReport {
            storage_problems: Store::check_files(&db)?,
            ..RepairReport::default()
        };
        if !report.storage_problems.is_empty() {
            progress("salvaging the storage files", 0);
            report.salvage = Some(Store::salvage(&db)?);
        }
        let store = Store::open(&db, Duration::ZERO)?;
        let lengths;
        {
            let mut tables = store.lock();
            // The log lengths as recorded (nothing, if that record is itself damaged), to
            // tell which logs come back shorter.
            lengths = tables.logs().unwrap_or_default();
            report.lost_nodes = vanished_nodes(&mut tables)?;
            stash_nodes(&mut tables, progress)?;
            report.lost_payloads = drop_damaged_payloads(&mut tables, progress)?;
        }
        drop(store);
        progress("setting the derived records aside", 0);
        let copy = Store::drop_derived(&db)?;
        let store = Store::open(&db, Duration::ZERO)?;
        let repo = self.on_open_store(store, &storage)?;
        replay(&repo, &mut report, progress)?;
        let after: std::collections::HashMap<String, u64> =
            repo.graph.store().lock().logs()?.into_iter().collect();
        for (log, before) in lengths {
            let now = after.get(&log).copied().unwrap_or(0);
            if now < before {
                report.short_logs.push(ShortLog {
                    log,
                    before,
                    after: now,
                });
            }
        }
        // A node can be named lost twice (its record gone, and a later node linking to it).
        let mut seen = BTreeSet::new();
        report
            .lost_nodes
            .retain(|lost| seen.insert(lost.key.clone()));
        // The copy from before the rebuild still holds the records of the nodes lost in it.
        let lost_any = !(report.lost_nodes.is_empty() && report.short_logs.is_empty());
        if report.salvage.is_none() && lost_any {
            report.kept_at = Some(copy);
        } else {
            std::fs::remove_dir_all(&copy)
                .map_err(|e| Error::io(format!("removing {}", copy.display()), e))?;
        }

        let mut tables = repo.graph.store().lock();
        if let Some(checkout) = tables.checkout()?
            && tables.iseq_of(&checkout)?.is_none()
        {
            let mut write = WriteSet::default();
            write.set_checkout(None);
            tables.commit(write, crate::Durability::Synced)?;
            report.checkout_reset = true;
        }
        report.versions = tables.last_iseq()?;
        drop(tables);
        progress("checking the result", 0);
        let check = repo.fsck(&mut |_, _| {})?;
        report.pending = check.pending;
        report.remaining = check.problems;
        Ok(report)
    }
}

impl Repository {
    /// Every problem with the storage files of the repository at `path`, found without
    /// opening it (so also for one that will not open), reading every block of every
    /// table: one line each naming the file.
    pub fn check_files(path: impl AsRef<std::path::Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let storage = Repository::storage_of(path).ok_or_else(|| Error::RepositoryNotFound {
            path: path.to_path_buf(),
        })?;
        Store::check_files(&storage.join("db"))
    }

    /// Repairs the repository at `path` with the default options (see
    /// [`OpenOptions::repair`] for a repository with a custom hasher): recovers every node
    /// and payload still readable, rebuilds everything derived from them, and reports
    /// exactly what was lost. No process may have the repository open.
    pub fn repair(path: impl AsRef<std::path::Path>) -> Result<RepairReport> {
        OpenOptions::new().repair(path, &mut |_, _| {})
    }
}

/// The nodes the heads, the change index or the version index name whose record is gone.
fn vanished_nodes(tables: &mut Tables) -> Result<Vec<LostNode>> {
    let mut gone = BTreeSet::new();
    // The heads record (if it can still be read) names nodes too.
    let heads: Vec<String> = crate::graph::heads(tables)
        .map(|heads| heads.iter().cloned().collect())
        .unwrap_or_default();
    for key in heads {
        if !tables.has_node(&key)? {
            gone.insert(key);
        }
    }
    let mut cursor = None;
    loop {
        let (named, next) = tables.named_nodes_page(cursor, STEP)?;
        for key in named {
            if !tables.has_node(&key)? {
                gone.insert(key);
            }
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(gone
        .into_iter()
        .map(|key| LostNode {
            key,
            reason: "its record is gone".into(),
        })
        .collect())
}

/// Stashes every node that decodes, keyed by the change number it was stored at (which
/// orders every node after the nodes it links to).
fn stash_nodes(tables: &mut Tables, progress: &mut dyn FnMut(&str, u64)) -> Result<()> {
    let mut after: Option<String> = None;
    let mut done = 0;
    loop {
        let page = tables.nodes_page(after.as_deref(), STEP)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        let mut write = WriteSet::default();
        for (key, bytes) in &page {
            // A node that does not decode is stashed at the end, so its replay reports it.
            let order = Node::decode(bytes).map_or(u64::MAX, |node| node.change);
            write.stash_node(order, key, bytes);
        }
        tables.commit(write, crate::Durability::Flushed)?;
        done += page.len() as u64;
        progress("stashing nodes", done);
    }
}

/// Deletes every payload whose operations do not decode or do not hash to its key.
fn drop_damaged_payloads(
    tables: &mut Tables,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Vec<String>> {
    let mut lost = Vec::new();
    let mut after = None;
    let mut done = 0;
    loop {
        let page = tables.payloads_page(after.as_ref(), STEP)?;
        let Some(last) = page.last() else {
            return Ok(lost);
        };
        after = Some(last.hash);
        let mut write = WriteSet::default();
        for payload in page {
            let hash = hex::encode(payload.hash);
            let intact = payload.ops.is_ok_and(|ops| {
                operations_hash(ops.iter().map(Vec::as_slice)) == hash
                    && ops.iter().all(|op| Operation::decode(op).is_ok())
            });
            if !intact {
                write.delete_ops(&payload.hash, payload.chunks);
                lost.push(hash);
            }
            done += 1;
        }
        tables.commit(write, crate::Durability::Flushed)?;
        progress("checking payloads", done);
    }
}

/// Replays the stashed nodes into the cleared graph, in stash order, through the checks a
/// node from a peer passes; then deletes the stash.
fn replay(
    repo: &Repository,
    report: &mut RepairReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<()> {
    let graph = repo.graph();
    let mut after = None;
    loop {
        let page = graph.store().lock().stash_page(after.as_ref(), STEP)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        let mut nodes = Vec::with_capacity(page.len());
        for ((_, key), bytes) in page {
            match Node::decode(&bytes) {
                Ok(node) if node.key == key => nodes.push(node),
                Ok(_) => report.lost_nodes.push(LostNode {
                    key,
                    reason: "its record names another key".into(),
                }),
                Err(error) => report.lost_nodes.push(LostNode {
                    key,
                    reason: format!("its record is damaged: {error}"),
                }),
            }
        }
        // One write per page; when a node is refused, the page goes again node by node so
        // that only the refused ones are lost.
        let count = nodes.len() as u64;
        if graph.ingest(nodes.clone()).is_err() {
            for node in nodes {
                let key = node.key.clone();
                if let Err(error) = graph.ingest(vec![node]) {
                    if let Error::MissingLink { link } = &error {
                        report.lost_nodes.push(LostNode {
                            key: link.clone(),
                            reason: "its record is gone (a later node links to it)".into(),
                        });
                    }
                    report.lost_nodes.push(LostNode {
                        key,
                        reason: lost_because(&error),
                    });
                } else {
                    report.nodes += 1;
                }
            }
        } else {
            report.nodes += count;
        }
        progress("replaying nodes", report.nodes);
    }
    let mut tables = graph.store().lock();
    tables.clear_stash()?;
    tables.compact()
}

/// Why a replayed node was refused, in a report's words.
fn lost_because(error: &Error) -> String {
    match error {
        Error::MissingLink { link } => format!("it links to {link}, which was lost"),
        Error::InvalidSeq { log, expected, .. } => {
            format!("log {log} lost seq {expected} before it")
        }
        Error::ChecksumMismatch { actual, .. } => {
            format!("it is damaged: its content hashes to {actual}")
        }
        other => other.to_string(),
    }
}
