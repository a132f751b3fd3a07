//! hyperlog 4.12.1 `test/batch.js` (spec §9.1 cases 8-10), ported to strata's graph, plus the
//! tests of what strata fixes (spec §10, bugs H1 and H9): a batch is atomic, keeps the
//! caller's order, may link to earlier documents of the same batch, rejects a missing link
//! with an error naming it and writes nothing, and never leaves a gap in change or sequence
//! numbers.

use std::sync::{Arc, Mutex};

use strata::Error;
use strata::{Doc, FramedSha256, Graph, GraphEvent, GraphOptions, Node, NodeHasher};

fn graph() -> Graph {
    Graph::in_memory(GraphOptions::default()).unwrap()
}

fn key_of(links: &[String], value: &str) -> String {
    FramedSha256.hash(links, value.as_bytes())
}

fn changes(nodes: &[Node]) -> Vec<u64> {
    nodes.iter().map(|n| n.change).collect()
}

fn values(nodes: &[Node]) -> Vec<&str> {
    nodes.iter().map(|n| n.value_str().unwrap()).collect()
}

fn all_changes(graph: &Graph) -> Vec<Node> {
    graph
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap()
}

/// Everything observable about a graph's state, to show that a failed write changed nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    count: u64,
    heads: Vec<Node>,
    changes: Vec<Node>,
    logs: Vec<(String, u64)>,
}

fn snapshot(graph: &Graph) -> Snapshot {
    Snapshot {
        count: graph.change_count(),
        heads: graph.heads().unwrap(),
        changes: all_changes(graph),
        logs: graph.logs().unwrap(),
    }
}

/// Case 8 `batch`.
#[test]
fn batch() {
    let log = graph();
    let node = log.add(&[], "A").unwrap();
    let ops = ["B", "C", "D"]
        .iter()
        .map(|v| Doc::new(vec![node.key.clone()], *v))
        .collect();
    let nodes = log.batch(ops).unwrap();
    assert_eq!(log.get(&node.key).unwrap().value, b"A");
    assert_eq!(log.get(&nodes[0].key).unwrap().value, b"B");
    assert_eq!(log.get(&nodes[1].key).unwrap().value, b"C");
    assert_eq!(log.get(&nodes[2].key).unwrap().value, b"D");
    // strata: the caller's order, dense change and seq numbers.
    assert_eq!(changes(&nodes), vec![2, 3, 4]);
    assert_eq!(
        nodes.iter().map(|n| n.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let mut heads = nodes.clone();
    heads.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(log.heads().unwrap(), heads);
}

/// Case 9 `batch dedupe`.
#[test]
fn batch_dedupe() {
    let doc1 = Doc::new(vec![], "hello world");
    let doc2 = Doc::new(vec![], "hello world 2");
    let hyper = graph();
    hyper.batch(vec![doc1.clone()]).unwrap();
    hyper.batch(vec![doc2]).unwrap();
    let nodes = hyper.batch(vec![doc1]).unwrap();
    assert_eq!(hyper.change_count(), 2);
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].change, 1);
}

/// Case 10 `batch dedupe 2`.
#[test]
fn batch_dedupe_2() {
    let doc1 = Doc::new(vec![], "hello world");
    let doc2 = Doc::new(vec![], "hello world 2");
    let hyper = graph();
    hyper.batch(vec![doc1.clone()]).unwrap();
    hyper.batch(vec![doc2.clone()]).unwrap();
    let nodes = hyper.batch(vec![doc2.clone(), doc1, doc2]).unwrap();
    assert_eq!(hyper.change_count(), 2);
    // One returned node per document, each the stored node.
    assert_eq!(changes(&nodes), vec![2, 1, 2]);
    assert_eq!(nodes[0], nodes[2]);
    // strata writes nothing for re-added nodes (hyperlog appends log entries for them).
    assert_eq!(hyper.log_head(&hyper.log_id()).unwrap(), 2);
}

/// H1: hyperlog returns `[C:2, B:3, D:4]` (I/O completion order); strata keeps the caller's
/// order and numbers changes in it.
#[test]
fn batch_keeps_caller_order() {
    let log = graph();
    let a = log.add(&[], "A").unwrap();
    let nodes = log
        .batch(vec![
            Doc::new(vec![a.key.clone()], "B"),
            Doc::new(vec![], "C"),
            Doc::new(vec![a.key.clone()], "D"),
        ])
        .unwrap();
    assert_eq!(values(&nodes), vec!["B", "C", "D"]);
    assert_eq!(changes(&nodes), vec![2, 3, 4]);
    let feed = all_changes(&log);
    assert_eq!(values(&feed), vec!["A", "B", "C", "D"]);
    assert_eq!(changes(&feed), vec![1, 2, 3, 4]);
    for node in &nodes {
        assert_eq!(log.get_change(node.change).unwrap(), *node);
    }
}

/// H1: hyperlog silently drops a document linking to an earlier one of the same batch;
/// strata stores it.
#[test]
fn batch_allows_in_batch_links() {
    let log = graph();
    let x = key_of(&[], "X");
    let y = key_of(std::slice::from_ref(&x), "Y");
    let z = key_of(&[x.clone(), y.clone()], "Z");
    let nodes = log
        .batch(vec![
            Doc::new(vec![], "X"),
            Doc::new(vec![x.clone()], "Y"),
            Doc::new(vec![x.clone(), y.clone()], "Z"),
        ])
        .unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.key.clone()).collect::<Vec<_>>(),
        vec![x.clone(), y.clone(), z.clone()]
    );
    assert_eq!(changes(&nodes), vec![1, 2, 3]);
    assert_eq!(nodes[2].links, vec![x, y]);
    // Only the net effect on heads: Z, linking everything else.
    assert_eq!(log.heads().unwrap(), vec![nodes[2].clone()]);
    // Every log entry is there; none names another log.
    for node in &nodes {
        let entry = log.log_entry(&log.log_id(), node.seq).unwrap().unwrap();
        assert_eq!(
            (entry.change, entry.node.as_str()),
            (node.change, node.key.as_str())
        );
        assert!(entry.links.is_empty());
    }
}

/// A document may only link to earlier documents: a link to a later one is missing.
#[test]
fn batch_link_to_later_document_is_missing() {
    let log = graph();
    let later = key_of(&[], "later");
    let err = log
        .batch(vec![
            Doc::new(vec![later.clone()], "early"),
            Doc::new(vec![], "later"),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::MissingLink { ref link } if *link == later));
    assert_eq!(log.change_count(), 0);
}

/// H1: hyperlog drops nodes with missing links from a multi-document batch and stores the
/// rest; strata fails the whole batch with an error naming the link, writes nothing, and the
/// next add gets the next dense change number.
#[test]
fn batch_with_missing_link_writes_nothing() {
    let log = graph();
    let a = log.add(&[], "A").unwrap();
    let before = snapshot(&log);
    let missing = "f".repeat(64);
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let seen = rejected.clone();
    log.on_event(move |event| {
        if let GraphEvent::Reject { error } = event {
            seen.lock().unwrap().push(error.to_string());
        }
    });
    let docs = vec![
        Doc::new(vec![a.key.clone()], "B"),
        Doc::new(vec![], "C"),
        Doc::new(vec![a.key.clone(), missing.clone()], "D"),
        Doc::new(vec![], "E"),
    ];
    let err = log.batch(docs.clone()).unwrap_err();
    match &err {
        Error::MissingLink { link } => assert_eq!(*link, missing),
        other => panic!("expected MissingLink, got {other:?}"),
    }
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(snapshot(&log), before);
    for doc in &docs {
        let key = FramedSha256.hash(&doc.links, &doc.value);
        assert!(!log.contains(&key).unwrap());
    }
    assert_eq!(log.log_entry(&log.log_id(), 2).unwrap(), None);
    // Every document of the batch is rejected, with the error naming the link.
    let rejected = rejected.lock().unwrap().clone();
    assert_eq!(rejected.len(), docs.len());
    assert!(rejected.iter().all(|e| e.contains(&missing)));

    // No gap: the next add is change 2, seq 2, and the feed stays dense.
    let b = log.add(std::slice::from_ref(&a.key), "B").unwrap();
    assert_eq!((b.change, b.seq), (2, 2));
    assert_eq!(changes(&all_changes(&log)), vec![1, 2]);
    let batch = log.batch(docs[..2].to_vec()).unwrap();
    assert_eq!(changes(&batch), vec![2, 3]);
    assert_eq!(log.change_count(), 3);
}

/// A batch that re-adds existing nodes alongside new ones numbers only the new ones.
#[test]
fn batch_mixing_existing_and_new_nodes() {
    let log = graph();
    let a = log.add(&[], "A").unwrap();
    let nodes = log
        .batch(vec![
            Doc::new(vec![], "N1"),
            Doc::new(vec![], "A"),
            Doc::new(vec![a.key.clone()], "N2"),
            Doc::new(vec![], "N1"),
        ])
        .unwrap();
    assert_eq!(changes(&nodes), vec![2, 1, 3, 2]);
    assert_eq!(nodes[1], a);
    assert_eq!(nodes[0], nodes[3]);
    assert_eq!(log.change_count(), 3);
    assert_eq!(log.log_head(&log.log_id()).unwrap(), 3);
}

/// A new node linking to a node that is new in the same batch and also re-added: its
/// links resolve either way.
#[test]
fn batch_duplicate_then_link() {
    let log = graph();
    let x = key_of(&[], "X");
    let nodes = log
        .batch(vec![
            Doc::new(vec![], "X"),
            Doc::new(vec![], "X"),
            Doc::new(vec![x.clone(), x.clone()], "Y"),
        ])
        .unwrap();
    assert_eq!(changes(&nodes), vec![1, 1, 2]);
    // Links are kept as given, duplicates included, and hashed as given.
    assert_eq!(nodes[2].links, vec![x.clone(), x.clone()]);
    assert_eq!(nodes[2].key, key_of(&[x.clone(), x], "Y"));
    assert_eq!(log.heads().unwrap(), vec![nodes[2].clone()]);
}

#[test]
fn empty_batch() {
    let log = graph();
    assert_eq!(log.batch(vec![]).unwrap(), Vec::<Node>::new());
    assert_eq!(log.change_count(), 0);
}

/// Batch returns the same nodes that `get` and the feed later return.
#[test]
fn batch_nodes_are_stored_nodes() {
    let log = graph();
    let docs: Vec<Doc> = (0..300)
        .map(|i| Doc::new(vec![], format!("value {i}")))
        .collect();
    let nodes = log.batch(docs).unwrap();
    assert_eq!(changes(&nodes), (1..=300).collect::<Vec<_>>());
    // 300 is more than one page of the changes feed.
    assert_eq!(all_changes(&log), nodes);
    assert_eq!(log.heads().unwrap().len(), 300);
}
