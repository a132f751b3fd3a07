//! The commit feed: commits in local change order from any point, optionally live.
//!
//! Local change order is the order this repository stored commits in (its own writes and
//! what it received); it is topological. Each item says whether the commit is visible in
//! the dataset view yet (a received commit whose payload has not arrived is not).

use std::time::Duration;

use super::Repository;
use super::commit::Commit;
use super::version::Version;
use crate::error::Result;
use crate::graph::{Changes, Node};

/// A description of one commit, as the feed reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit's key: its version id.
    pub version: Version,
    /// This repository's change number for it.
    pub change: u64,
    /// The device (log) it was recorded under.
    pub log: String,
    /// Its position in that log.
    pub seq: u64,
    /// Its parents.
    pub links: Vec<String>,
    /// The commit, or `None` for a graph node that is not a commit.
    pub commit: Option<Commit>,
    /// Whether the commit is visible in the dataset view (indexed).
    pub visible: bool,
}

/// Commits after a change number; see [`Repository::changes`].
pub struct CommitFeed {
    repo: Repository,
    nodes: Changes,
}

impl CommitFeed {
    /// Keeps the feed open: at the end it waits for new commits instead of ending.
    pub fn live(mut self) -> CommitFeed {
        self.nodes = self.nodes.live();
        self
    }

    /// In live mode, ends the feed when nothing arrives for `timeout`.
    pub fn idle_timeout(mut self, timeout: Duration) -> CommitFeed {
        self.nodes = self.nodes.idle_timeout(timeout);
        self
    }
}

impl Repository {
    /// Commits (and other graph nodes) stored after local change `since` (0 for all), in
    /// the order they were stored.
    pub fn changes(&self, since: u64) -> CommitFeed {
        CommitFeed {
            repo: self.clone(),
            nodes: self.graph.changes(since),
        }
    }

    /// Describes one graph node as a commit.
    pub fn commit_info(&self, node: Node) -> Result<CommitInfo> {
        let visible = self.graph.store().lock().iseq_of(&node.key)?.is_some();
        Ok(CommitInfo {
            commit: Commit::decode(&node.value).ok(),
            version: Version::new(node.key),
            change: node.change,
            log: node.log,
            seq: node.seq,
            links: node.links,
            visible,
        })
    }
}

impl Iterator for CommitFeed {
    type Item = Result<CommitInfo>;

    fn next(&mut self) -> Option<Result<CommitInfo>> {
        let node = self.nodes.next()?;
        Some(node.and_then(|node| self.repo.commit_info(node)))
    }
}
