//! The write path: a transaction's operations become one commit, chosen parents, payload
//! and index records, in one atomic write.
//!
//! Under the repository's lock: the index catches up, the commit's parents are chosen (the
//! checkout, this device's head, the heads holding the versions it replaces, or the heads
//! it merges), a merge is settled, and then the commit node, its operations, its index
//! records and the moved checkout are written in one batch. A commit is readable the
//! moment its write returns, and a crash leaves either all of it or none. The one
//! exception is a merge too large for one write (its sides wrote more rows than a diff
//! collects): `paged_merge` writes it in several, invisible until the last, and undoes
//! them after a crash.
//!
//! About 600 lines: the builder, its previews and the write path all go through one plan
//! (`Repository::plan`), which the previews run without writing.

use std::io::Read;
use std::sync::MutexGuard;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Repository;
use super::commit::{self, Commit, CommitType, Content, OpKind, Operation};
use super::diff::COLLECT;
use super::index::{Ancestry, Indexable, LatestCounters, ROWS_AHEAD, raw_hash};
use super::merge::{self, MergePolicy};
use super::paged_merge::{PagedMerge, ROWS_PER_WRITE};
use super::version::{self, Version};
use crate::error::{Error, Result};
use crate::graph::{Doc, Follower};
use crate::store::{Tables, Wait};

/// What a commit's parents are.
#[derive(Clone, Debug)]
pub(super) enum Parents {
    /// The persistent checkout if there is one, else this device's newest head.
    Auto,
    /// The versions a write replaces (Mapeo's versioned updates).
    Replaces(Vec<Version>),
    /// A merge of these heads (all current heads when empty).
    Merge(Vec<Version>),
}

/// Rows a caller knows have no entry anywhere yet (an import into a new dataset): valid as
/// long as the last indexed commit is still `after`.
pub(super) struct Fresh<'a> {
    pub after: u64,
    pub is_fresh: &'a dyn Fn(&[u8], &[u8]) -> bool,
}

/// A data commit made now, of no operations yet (counted in with [`Commit::count`]).
pub(super) fn new_commit(message: Option<String>) -> Commit {
    Commit {
        kind: CommitType::Data,
        message,
        modified: now_ms(),
        puts: 0,
        deletes: 0,
        files: 0,
        operations: None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A commit being built: operations, a message, and what it replaces or merges. Builder
/// methods chain: `repo.transaction().put("d", "k", "v").message("m").commit()`.
pub struct Transaction<'a> {
    repo: &'a Repository,
    ops: Vec<Operation>,
    message: Option<String>,
    parents: Parents,
    policy: Option<MergePolicy>,
    pages: Option<usize>,
}

/// What a transaction would write; see [`Transaction::preview`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    /// The commit's parents (several for a merge).
    pub parents: Vec<Version>,
    /// The operations it would carry: its own, and those settling rows a merge must settle.
    pub operations: Vec<Operation>,
    /// Rows a merge cannot settle without a policy or an operation of its own (then
    /// committing fails with [`Error::Conflict`]).
    pub conflicts: Vec<crate::ConflictRow>,
}

/// What a transaction would write, counted; see [`Transaction::dry_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRun {
    /// The commit's parents (several for a merge).
    pub parents: Vec<Version>,
    /// How many operations it would carry (its own, when it conflicts).
    pub operations: u64,
    /// Rows a merge cannot settle without a policy or an operation of its own (then
    /// committing fails with [`Error::Conflict`]).
    pub conflicts: Vec<crate::ConflictRow>,
}

/// What [`Repository::commit_parts`] writes.
pub(super) struct Parts<'a> {
    pub ops: Vec<Operation>,
    pub message: Option<String>,
    pub parents: Parents,
    pub policy: Option<MergePolicy>,
    /// Leave out operations that would not change their row (re-runnable imports).
    pub skip_unchanged: bool,
    pub fresh: Option<Fresh<'a>>,
    /// Write a merge in pages of this many rows, whatever its size.
    pub pages: Option<usize>,
}

/// How a commit is written: its parents and operations in one write, or a merge too
/// large for one write, in pages.
enum Plan {
    Whole(Vec<Version>, Vec<Operation>),
    Paged(PagedMerge),
}

impl<'a> Transaction<'a> {
    pub(super) fn new(repo: &'a Repository, parents: Parents) -> Transaction<'a> {
        Transaction {
            repo,
            ops: Vec::new(),
            message: None,
            parents,
            policy: None,
            pages: None,
        }
    }

    /// Sets a row.
    pub fn put(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.ops.push(Operation {
            kind: OpKind::Put,
            content: Content::Row,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: Some(value.as_ref().to_vec()),
        });
        self
    }

    /// Puts a file row: streams `reader` into the blob store now (the blob is kept even if
    /// the commit is never made; it is content-addressed, so nothing refers to it then).
    pub fn put_file(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        reader: &mut dyn Read,
    ) -> Result<&mut Self> {
        let file = self.repo.blobs.write(reader)?;
        self.ops.push(Operation {
            kind: OpKind::Put,
            content: Content::File,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: Some(file.encode()),
        });
        Ok(self)
    }

    /// Puts a value serialized as JSON.
    pub fn put_json<T: serde::Serialize>(
        &mut self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<&mut Self> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(self.put(dataset, key, bytes))
    }

    /// Deletes a row (a tombstone: its history is kept).
    pub fn delete(&mut self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(Operation {
            kind: OpKind::Delete,
            content: Content::Row,
            dataset: dataset.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
            value: None,
        });
        self
    }

    /// The commit's message.
    pub fn message(&mut self, message: impl Into<String>) -> &mut Self {
        self.message = Some(message.into());
        self
    }

    /// Names the version(s) this write replaces. One version makes it a write on that
    /// version (a fork when it is not a head); several make it a merge of the heads holding
    /// them, which resolves that fork.
    pub fn replaces(&mut self, versions: &[Version]) -> &mut Self {
        if !versions.is_empty() {
            self.parents = Parents::Replaces(versions.to_vec());
        }
        self
    }

    /// For a merge (or a write replacing several versions, which merges their heads): how
    /// to settle rows the heads changed concurrently to different contents that this
    /// commit's own operations do not set. Without a policy such a conflict is an error.
    pub fn policy(&mut self, policy: MergePolicy) -> &mut Self {
        self.policy = Some(policy);
        self
    }

    /// For a merge: writes it in pages of `rows` rows, as a merge too large for one write
    /// is, whatever its size (for the project's tests of that path).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn in_pages(&mut self, rows: usize) -> &mut Self {
        self.pages = Some(rows.max(1));
        self
    }

    /// How many operations the transaction holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the transaction holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// What committing would do, without writing anything: the parents, and the operations
    /// the commit would carry (its own and, for a merge, those settling rows with several
    /// concurrent versions); or, for a merge that cannot be settled, every conflicting row.
    /// It holds every operation: for a merge of millions of rows, [`Transaction::dry_run`]
    /// counts them instead.
    pub fn preview(&self) -> Result<Preview> {
        let mut operations = Vec::new();
        Ok(match self.previewed(&mut |op| operations.push(op))? {
            (parents, None) => Preview {
                parents,
                operations,
                conflicts: Vec::new(),
            },
            (parents, Some(conflicts)) => Preview {
                parents,
                operations: self.ops.clone(),
                conflicts,
            },
        })
    }

    /// What committing would do, as [`Transaction::preview`], with the operations counted
    /// rather than held: memory bounded whatever the size of a merge (but for the
    /// conflicts it names).
    pub fn dry_run(&self) -> Result<DryRun> {
        let mut operations = 0u64;
        Ok(match self.previewed(&mut |_| operations += 1)? {
            (parents, None) => DryRun {
                parents,
                operations,
                conflicts: Vec::new(),
            },
            (parents, Some(conflicts)) => DryRun {
                parents,
                operations: self.ops.len() as u64,
                conflicts,
            },
        })
    }

    /// Plans the commit without writing it: passes each operation it would carry to
    /// `operation`; returns its parents, and the conflicts that stop it (then the
    /// operations passed are not what it would write).
    fn previewed(
        &self,
        operation: &mut dyn FnMut(Operation),
    ) -> Result<(Vec<Version>, Option<Vec<crate::ConflictRow>>)> {
        for op in &self.ops {
            check_row(&op.dataset, &op.key)?;
        }
        let repo = self.repo;
        let mut tables = repo.lock_caught_up()?;
        let never: &dyn Fn(&[u8], &[u8]) -> bool = &|_, _| false;
        let plan = repo
            .plan(
                &mut tables,
                self.ops.clone(),
                &self.parents,
                self.policy,
                false,
                never,
                self.pages,
            )
            .and_then(|plan| match plan {
                Plan::Whole(parents, operations) => {
                    operations.into_iter().for_each(&mut *operation);
                    Ok(parents)
                }
                Plan::Paged(merge) => {
                    merge.ops.iter().cloned().for_each(&mut *operation);
                    merge.decide(repo, &mut tables, None, operation)?;
                    Ok(merge.links)
                }
            });
        match plan {
            Ok(parents) => Ok((parents, None)),
            Err(Error::Conflict { rows }) => {
                let parents = repo.choose_links(&mut tables, &self.ops, &self.parents)?;
                Ok((parents, Some(rows)))
            }
            Err(other) => Err(other),
        }
    }

    /// The versions the commit would link, in order (a merge's first is "ours"), as
    /// [`Transaction::commit`] chooses them now.
    pub fn parents(&self) -> Result<Vec<Version>> {
        let mut tables = self.repo.lock_caught_up()?;
        self.repo
            .choose_links(&mut tables, &self.ops, &self.parents)
    }

    /// Writes the commit atomically and returns its version. The transaction is empty
    /// afterwards (and can be filled again).
    pub fn commit(&mut self) -> Result<Version> {
        let parts = Parts {
            ops: std::mem::take(&mut self.ops),
            message: self.message.take(),
            parents: std::mem::replace(&mut self.parents, Parents::Auto),
            policy: self.policy.take(),
            skip_unchanged: false,
            fresh: None,
            pages: self.pages,
        };
        self.repo
            .commit_parts(parts)?
            .ok_or_else(|| Error::InvalidArgument("nothing to commit".into()))
    }
}

impl Repository {
    /// Starts a commit: add operations, then [`Transaction::commit`].
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self, Parents::Auto)
    }

    /// Starts a merge of `heads` (all current heads when empty): add resolutions, choose a
    /// policy for conflicts, then [`Transaction::commit`].
    pub fn merge(&self, heads: &[Version]) -> Transaction<'_> {
        Transaction::new(self, Parents::Merge(heads.to_vec()))
    }

    /// Writes one row; returns the new version.
    pub fn put(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Version> {
        self.transaction().put(dataset, key, value).commit()
    }

    /// Deletes one row (a tombstone: its history is kept); returns the new version. A row
    /// that does not exist in the current view is [`Error::RowNotFound`].
    pub fn delete(&self, dataset: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Version> {
        let (dataset, key) = (dataset.as_ref(), key.as_ref());
        check_row(dataset, key)?;
        if self.get(dataset, key)?.is_none() {
            return Err(Error::RowNotFound {
                dataset: dataset.to_vec(),
                key: key.to_vec(),
            });
        }
        self.transaction().delete(dataset, key).commit()
    }

    /// Writes `reader`'s bytes as a file row (streamed into the blob store).
    pub fn put_file(
        &self,
        dataset: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        reader: &mut dyn Read,
    ) -> Result<Version> {
        self.transaction().put_file(dataset, key, reader)?.commit()
    }

    /// The repository's lock, once the index has followed everything stored (a commit is
    /// indexed in the same write as its node, and parents are chosen from the index).
    fn lock_caught_up(&self) -> Result<MutexGuard<'_, Tables>> {
        let mut tables = self.graph.store().lock();
        while !self
            .index
            .catch_up(&mut tables, crate::graph::FOLLOW_STEP)?
        {}
        Ok(tables)
    }

    /// Writes one commit; `None` when `skip_unchanged` left nothing to write.
    pub(super) fn commit_parts(&self, parts: Parts) -> Result<Option<Version>> {
        for op in &parts.ops {
            check_row(&op.dataset, &op.key)?;
        }
        let mut tables = self.lock_caught_up()?;
        let fresh_valid = match &parts.fresh {
            Some(fresh) => tables.last_iseq()? == fresh.after,
            None => false,
        };
        let never: &dyn Fn(&[u8], &[u8]) -> bool = &|_, _| false;
        let fresh = match &parts.fresh {
            Some(fresh) if fresh_valid => fresh.is_fresh,
            _ => never,
        };
        let plan = self.plan(
            &mut tables,
            parts.ops,
            &parts.parents,
            parts.policy,
            parts.skip_unchanged,
            fresh,
            parts.pages,
        )?;
        let (links, ops) = match plan {
            Plan::Whole(links, ops) => (links, ops),
            Plan::Paged(merge) => {
                let version = merge.commit(self, &mut tables, parts.message)?;
                drop(tables);
                self.graph.notify_grown();
                return Ok(Some(version));
            }
        };
        if ops.is_empty() && links.len() < 2 {
            return Ok(None);
        }
        let encoded: Vec<Vec<u8>> = ops.iter().map(Operation::encode).collect();
        let operations = (!encoded.is_empty())
            .then(|| commit::operations_hash(encoded.iter().map(Vec::as_slice)));
        let mut commit = new_commit(parts.message);
        commit.operations = operations.clone();
        for op in &ops {
            commit.count(op);
        }
        let sized: Vec<(Operation, usize)> =
            ops.into_iter().zip(encoded.iter().map(Vec::len)).collect();
        let checkout = tables.checkout()?;
        let link_keys: Vec<String> = links.iter().map(|l| l.to_string()).collect();
        let doc = Doc::new(link_keys.clone(), commit.encode());
        let node = self
            .graph
            .write_local(&mut tables, doc, |tables, node, write| {
                if let Some(hash) = &operations {
                    let raw = raw_hash(hash)
                        .ok_or_else(|| Error::corrupt("operations hash is not hex"))?;
                    write.put_ops(&raw, &encoded);
                }
                let mut latest = LatestCounters::read(tables)?;
                self.index.index(
                    tables,
                    Indexable {
                        node,
                        commit: &commit,
                        ops: &sized,
                        fresh,
                        new: true,
                    },
                    &mut latest,
                    write,
                )?;
                latest.write(write);
                write.put_indexed_change(node.change);
                if let Some(checkout) = &checkout
                    && link_keys.contains(checkout)
                {
                    // Commit and checkout move together: a crash cannot leave the checkout
                    // behind, which would make the next write fork.
                    write.set_checkout(Some(&node.key));
                }
                Ok(())
            })?;
        // Received commits that carry the same operations were waiting for this payload.
        if let Some(hash) = &operations {
            self.index.wake(&mut tables, Wait::Payload, hash)?;
        }
        drop(tables);
        self.graph.notify_grown();
        Ok(Some(Version::new(node.key)))
    }

    /// A commit's parents and final operations: its own, less those that would change
    /// nothing (when asked), plus what a merge must settle; or, for a merge of sides that
    /// wrote more rows than a diff collects (or when `pages` asks), a merge in pages.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        tables: &mut Tables,
        mut ops: Vec<Operation>,
        parents: &Parents,
        policy: Option<MergePolicy>,
        skip_unchanged: bool,
        fresh: &dyn Fn(&[u8], &[u8]) -> bool,
        pages: Option<usize>,
    ) -> Result<Plan> {
        let links = self.choose_links(tables, &ops, parents)?;
        let parent_views = links
            .iter()
            .map(|link| {
                let iseq = version::iseq(tables, link)?;
                self.index.ancestry(tables, iseq)
            })
            .collect::<Result<Vec<Ancestry>>>()?;
        if skip_unchanged && let [parent] = parent_views.as_slice() {
            ops = self.without_unchanged(tables, parent, ops, fresh)?;
        }
        if links.len() > 1 {
            let collect = if pages.is_some() { 0 } else { COLLECT };
            let written = merge::rows_to_settle(&self.index, tables, &parent_views, collect)?;
            match written.rows {
                Some(rows) => {
                    ops = merge::settle(&self.index, tables, &parent_views, rows, ops, policy)?;
                }
                None => {
                    return Ok(Plan::Paged(PagedMerge {
                        links,
                        parents: parent_views,
                        datasets: written.datasets,
                        ops,
                        policy,
                        rows_per_write: pages.unwrap_or(ROWS_PER_WRITE),
                    }));
                }
            }
        }
        Ok(Plan::Whole(links, ops))
    }

    /// `ops` without the ones that would leave their row as `parent` has it.
    fn without_unchanged(
        &self,
        tables: &mut Tables,
        parent: &Ancestry,
        ops: Vec<Operation>,
        fresh: &dyn Fn(&[u8], &[u8]) -> bool,
    ) -> Result<Vec<Operation>> {
        let mut kept = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter();
        loop {
            // Each op's freshness is asked once: for an import it takes a lock and Bloom
            // filters.
            let window: Vec<(bool, Operation)> = ops
                .by_ref()
                .take(ROWS_AHEAD)
                .map(|op| (fresh(&op.dataset, &op.key), op))
                .collect();
            if window.is_empty() {
                break;
            }
            // The window's rows are read in one walk in key order, and kept for the index,
            // which reads them again before anything is written.
            tables.read_rows_ahead(
                window
                    .iter()
                    .filter(|(is_fresh, _)| !is_fresh)
                    .map(|(_, op)| (op.dataset.as_slice(), op.key.as_slice())),
            )?;
            for (is_fresh, op) in window {
                if is_fresh {
                    kept.push(op);
                    continue;
                }
                let state = self.index.row_state(tables, &op.dataset, &op.key, parent)?;
                let unchanged = match state {
                    Some(state) if !state.forked() => {
                        let winner = state.winner();
                        match op.kind {
                            OpKind::Delete => winner.deleted,
                            OpKind::Put => {
                                !winner.deleted
                                    && winner.file == (op.content == Content::File)
                                    && Some(&winner.value) == op.value.as_ref()
                            }
                        }
                    }
                    Some(_) => false,
                    None => op.kind == OpKind::Delete,
                };
                if !unchanged {
                    kept.push(op);
                }
            }
        }
        Ok(kept)
    }
}

/// Dataset names and row keys must not be empty.
pub(crate) fn check_row(dataset: &[u8], key: &[u8]) -> Result<()> {
    if dataset.is_empty() {
        return Err(Error::empty_dataset());
    }
    if key.is_empty() {
        return Err(Error::empty_key());
    }
    Ok(())
}
