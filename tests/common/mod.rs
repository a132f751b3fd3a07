//! Helpers shared by the dataset tests: the dat-core ports, the scenarios, the key tests
//! and the model test.
#![allow(dead_code)]

use strata::GraphOptions;
use strata::dataset::{Commit, Range, Repository, Row};

/// A fresh in-memory repository.
pub fn repo() -> Repository {
    Repository::in_memory(GraphOptions::default()).expect("in-memory repository")
}

/// The value of a row in the repository's current view, as text.
pub fn value(repo: &Repository, dataset: &str, key: &str) -> Option<String> {
    repo.get(dataset, key)
        .expect("get")
        .map(|row| String::from_utf8(row.value).expect("utf-8"))
}

/// The rows of `dataset` in `view`, all of them.
pub fn rows(view: &strata::View, dataset: impl AsRef<[u8]>, range: Range) -> Vec<Row> {
    view.range(dataset, range)
        .collect::<strata::Result<Vec<_>>>()
        .expect("range")
}

/// The keys of `dataset` in `view` within `range`, as text.
pub fn keys(view: &strata::View, dataset: impl AsRef<[u8]>, range: Range) -> Vec<String> {
    rows(view, dataset, range)
        .into_iter()
        .map(|row| String::from_utf8(row.key).expect("utf-8 key"))
        .collect()
}

/// Copies every node (and payload) `from` has that `to` lacks: a stand-in for replication
/// until the replication protocol exists. Nodes go in `from`'s change order (causal), each
/// under its own log, renumbered as the receiver's log sequence expects; payloads first.
/// Returns how many nodes were copied.
pub fn sync(from: &Repository, to: &Repository) -> usize {
    let mut nodes = Vec::new();
    for node in from.graph().changes(0) {
        let node = node.expect("node");
        if !to.graph().contains(&node.key).expect("contains") {
            nodes.push(node);
        }
    }
    for node in &nodes {
        if let Ok(commit) = Commit::decode(&node.value)
            && let Some(hash) = commit.operations
        {
            let payload = from.payload(&hash).expect("payload").expect("stored");
            to.add_payload(&payload).expect("add payload");
        }
    }
    let count = nodes.len();
    for mut node in nodes {
        let head = to.graph().log_head(&node.log).expect("log head");
        node.seq = head + 1;
        to.apply_remote(vec![node]).expect("apply");
    }
    count
}

/// The commit time (ms) of a version, read from its graph node.
pub fn commit_time(repo: &Repository, version: &str) -> u64 {
    let node = repo.graph().get(version).expect("node");
    Commit::decode(&node.value).expect("commit").modified
}

/// Sleeps until the clock has moved past the commit time of `version`, so that the next
/// commit is strictly newer (for tests that rely on "newest").
pub fn after(repo: &Repository, version: &str) {
    let time = commit_time(repo, version);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        if now > time {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Writes one row on top of `replaces` (an older version, so usually a fork); returns the
/// new version.
pub fn put_replacing(
    repo: &Repository,
    replaces: &str,
    dataset: impl AsRef<[u8]>,
    key: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
) -> String {
    let mut tx = repo.transaction();
    tx.put(dataset, key, value)
        .replaces(&[replaces.to_string()]);
    tx.commit().expect("commit")
}
