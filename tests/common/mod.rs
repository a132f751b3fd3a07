//! Helpers shared by the dataset tests: the dat-core ports, the scenarios, the key tests
//! and the model test.
#![allow(dead_code)]

use strata::{Commit, Range, Repository, Row, Version, View};

/// A fresh in-memory repository.
pub fn repo() -> Repository {
    Repository::in_memory().expect("in-memory repository")
}

/// The value of a row in the repository's current view, as text.
pub fn value(repo: &Repository, dataset: &str, key: &str) -> Option<String> {
    repo.get(dataset, key)
        .expect("get")
        .map(|row| String::from_utf8(row.value).expect("utf-8"))
}

/// The value of a row in a view, as text.
pub fn value_in(view: &View, dataset: &str, key: &str) -> Option<String> {
    view.get(dataset, key)
        .expect("get")
        .map(|row| String::from_utf8(row.value).expect("utf-8"))
}

/// The rows of `dataset` in `view`, all of them.
pub fn rows(view: &View, dataset: impl AsRef<[u8]>, range: Range) -> Vec<Row> {
    view.range(dataset, range)
        .collect::<strata::Result<Vec<_>>>()
        .expect("range")
}

/// The keys of `dataset` in `view` within `range`, as text.
pub fn keys(view: &View, dataset: impl AsRef<[u8]>, range: Range) -> Vec<String> {
    rows(view, dataset, range)
        .into_iter()
        .map(|row| String::from_utf8(row.key).expect("utf-8 key"))
        .collect()
}

/// Copies every node (and payload) `from` has that `to` lacks, through the receiver's real
/// checks: each log's missing entries in seq order, under the log and seq they have in
/// `from`, in `from`'s change order (causal), payloads first; then the payloads the
/// receiver's pending commits still wait for. Returns how many log entries were sent.
pub fn sync(from: &Repository, to: &Repository) -> usize {
    sync_with(from, to, true)
}

/// [`sync`] without payloads: the commits received stay pending until theirs arrive.
pub fn sync_graph(from: &Repository, to: &Repository) -> usize {
    sync_with(from, to, false)
}

fn sync_with(from: &Repository, to: &Repository, payloads: bool) -> usize {
    let mut missing: Vec<(u64, String, u64, String)> = Vec::new();
    for (log, head) in from.graph().logs().expect("logs") {
        let have = to.graph().log_head(&log).expect("log head");
        if have >= head {
            continue;
        }
        for (seq, entry) in from
            .graph()
            .log_entries(&log, have + 1, usize::MAX)
            .expect("entries")
        {
            missing.push((entry.change, log.clone(), seq, entry.node));
        }
    }
    missing.sort();
    for (_, _, _, key) in missing.iter().filter(|_| payloads) {
        let node = from.graph().get(key).expect("node");
        if let Ok(commit) = Commit::decode(&node.value)
            && let Some(hash) = commit.operations
        {
            send_payload(from, to, &hash);
        }
    }
    let count = missing.len();
    // In change order, but each log strictly in seq order and each node after its links:
    // entries `from` recorded for nodes it already had (learned through another log) carry
    // those nodes' older change numbers, so change order alone can put a log's seq 2 first.
    let mut pending = missing;
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(_, log, seq, key)| {
            if to.graph().log_head(log).expect("log head") + 1 != *seq {
                return true;
            }
            let mut node = from.graph().get(key).expect("node");
            node.log = log.clone();
            node.seq = *seq;
            match to.graph().ingest(vec![node]) {
                Ok(_) => false,
                Err(strata::Error::MissingLink { .. }) => true,
                Err(error) => panic!("ingest: {error:?}"),
            }
        });
        assert!(pending.len() < before, "sync made no progress: {pending:?}");
    }
    if payloads {
        // Commits the receiver already held but could not read yet get their payload too.
        for hash in to.missing_payloads().expect("missing payloads") {
            send_payload(from, to, &hash);
        }
    }
    count
}

/// Copies a payload and the blobs its file rows name, blobs first.
pub fn send_payload(from: &Repository, to: &Repository, hash: &str) {
    let Some(payload) = from.payload(hash).expect("payload") else {
        return;
    };
    for op in &payload {
        let op = strata::Operation::decode(op).expect("operation");
        if op.content == strata::Content::File && op.kind == strata::OpKind::Put {
            let file =
                strata::FileRef::decode(op.value.as_deref().unwrap_or_default()).expect("file");
            if !to.has_blob(&file.hash).expect("has blob") {
                let mut reader = from.open_blob(&file).expect("blob");
                to.add_blob(&mut reader).expect("add blob");
            }
        }
    }
    to.add_payload(&payload).expect("add payload");
}

/// Syncs both ways.
pub fn sync_both(a: &Repository, b: &Repository) {
    sync(a, b);
    sync(b, a);
}

/// The commit time (ms) of a version, read from its graph node.
pub fn commit_time(repo: &Repository, version: &Version) -> u64 {
    let node = repo.graph().get(version.as_str()).expect("node");
    Commit::decode(&node.value).expect("commit").modified
}

/// Sleeps until the clock has moved past the commit time of `version`, so that the next
/// commit is strictly newer (for tests that rely on "newest").
pub fn after(repo: &Repository, version: &Version) {
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
    replaces: &Version,
    dataset: impl AsRef<[u8]>,
    key: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
) -> Version {
    repo.transaction()
        .put(dataset, key, value)
        .replaces(std::slice::from_ref(replaces))
        .commit()
        .expect("commit")
}

/// Writes a commit node by hand: any parents, any commit time, any rows; with its payload.
/// This is how a device with a skewed clock, or an unusual peer, writes.
pub fn commit_at(
    repo: &Repository,
    links: &[&Version],
    modified: u64,
    rows: &[(&str, &str, Option<&str>)],
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
            dataset: dataset.as_bytes().to_vec(),
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        })
        .collect();
    let encoded: Vec<Vec<u8>> = ops.iter().map(strata::Operation::encode).collect();
    let operations = (!encoded.is_empty()).then(|| repo.add_payload(&encoded).expect("payload"));
    let commit = Commit {
        kind: strata::CommitType::Data,
        message: None,
        modified,
        puts: ops.iter().filter(|o| o.kind == strata::OpKind::Put).count() as u64,
        deletes: ops
            .iter()
            .filter(|o| o.kind == strata::OpKind::Delete)
            .count() as u64,
        files: 0,
        operations,
    };
    let links: Vec<String> = links.iter().map(|l| l.to_string()).collect();
    let node = repo.graph().add(&links, commit.encode()).expect("add");
    repo.resolve(&node.key).expect("indexed")
}
