//! hyperlog 4.12.1 `test/basic.js` (spec §9.1 cases 1-7), ported to strata's graph, plus a
//! persistence test (a graph reopened from disk is the graph that was closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use strata::Error;
use strata::{Doc, FramedSha256, Graph, GraphEvent, GraphOptions, Node, NodeHasher};

fn graph() -> Graph {
    Graph::in_memory(GraphOptions::default()).unwrap()
}

fn all_changes(graph: &Graph) -> Vec<Node> {
    graph
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap()
}

/// Case 1 `add node`.
#[test]
fn add_node() {
    let hyper = graph();
    let node = hyper.add(&[], "hello world").unwrap();
    assert!(!node.key.is_empty(), "has key");
    assert_eq!(
        node.key,
        "c44296d0fbdcaf1dca0082886a8913d961b04a2a85029e7e2d0420025af10192"
    );
    assert_eq!(node.links, Vec::<String>::new());
    assert_eq!(node.value, b"hello world");
    assert_eq!(node.value_str(), Some("hello world"));
    assert_eq!((node.change, node.seq), (1, 1));
    assert_eq!(node.log, hyper.log_id());
    assert_eq!(
        (node.identity.clone(), node.signature.clone()),
        (None, None)
    );
    // What add returns is what is stored.
    assert_eq!(hyper.get(&node.key).unwrap(), node);
    assert!(hyper.contains(&node.key).unwrap());
}

/// Case 2 `add node with links`.
#[test]
fn add_node_with_links() {
    let hyper = graph();
    let node = hyper.add(&[], "hello").unwrap();
    let node2 = hyper.add(std::slice::from_ref(&node.key), "world").unwrap();
    assert!(!node2.key.is_empty(), "has key");
    assert_eq!(node2.links, vec![node.key.clone()], "has links");
    assert_eq!(node2.value, b"world");
    assert_eq!(
        node2.key,
        "5f5e63be98841981a12b6041e4200677851714ec4305d13a3ee30197439ff193"
    );
    assert_eq!((node2.change, node2.seq), (2, 2));
}

/// Case 3 `cannot add node with bad links`: hyperlog answers `err.notFound`; strata answers
/// `Error::MissingLink` naming the link, and writes nothing.
#[test]
fn cannot_add_node_with_bad_links() {
    let hyper = graph();
    let err = hyper
        .add(&["i-do-not-exist".to_string()], "hello world")
        .unwrap_err();
    match &err {
        Error::MissingLink { link } => assert_eq!(link, "i-do-not-exist"),
        other => panic!("expected MissingLink, got {other:?}"),
    }
    assert!(err.to_string().contains("i-do-not-exist"), "{err}");
    assert_eq!(hyper.change_count(), 0);
    assert!(all_changes(&hyper).is_empty());
    assert!(hyper.heads().unwrap().is_empty());
    assert_eq!(hyper.log_head(&hyper.log_id()).unwrap(), 0);
    // The next add is change 1, seq 1: the failed add left no gap.
    let node = hyper.add(&[], "hello world").unwrap();
    assert_eq!((node.change, node.seq), (1, 1));
}

/// Case 4 `heads`.
#[test]
fn heads() {
    let hyper = graph();
    assert_eq!(hyper.heads().unwrap(), Vec::<Node>::new(), "no heads yet");
    let node = hyper.add(&[], "a").unwrap();
    assert_eq!(hyper.heads().unwrap(), vec![node.clone()], "has head");
    let node2 = hyper.add(std::slice::from_ref(&node.key), "b").unwrap();
    assert_eq!(hyper.heads().unwrap(), vec![node2], "new heads");
}

/// Heads are sorted by key (hyperlog streams `!heads!` in key order), and a node linking
/// several heads replaces all of them.
#[test]
fn heads_sorted_by_key_and_merged() {
    let hyper = graph();
    let mut roots: Vec<Node> = ["x", "y", "z", "w"]
        .iter()
        .map(|v| hyper.add(&[], v).unwrap())
        .collect();
    roots.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(hyper.heads().unwrap(), roots);
    let links: Vec<String> = roots.iter().map(|n| n.key.clone()).collect();
    let merge = hyper.add(&links[..3], "merge").unwrap();
    let mut expected = vec![merge, roots[3].clone()];
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(hyper.heads().unwrap(), expected);
    // append links every head, in key order.
    let appended = hyper.append("tip").unwrap();
    assert_eq!(
        appended.links,
        expected.iter().map(|n| n.key.clone()).collect::<Vec<_>>()
    );
    assert_eq!(hyper.heads().unwrap(), vec![appended]);
}

/// Case 5 `deduplicates`.
#[test]
fn deduplicates() {
    let hyper = graph();
    let first = hyper.add(&[], "hello world").unwrap();
    let second = hyper.add(&[], "hello world").unwrap();
    assert_eq!(second, first, "the stored node is returned");
    assert_eq!(all_changes(&hyper).len(), 1, "only one change");
    assert_eq!(hyper.change_count(), 1);
    // strata writes nothing for a re-add (hyperlog appends a second log entry for it).
    assert_eq!(hyper.log_head(&hyper.log_id()).unwrap(), 1);
}

/// Case 6 `deduplicates -- same batch`.
#[test]
fn deduplicates_same_batch() {
    let hyper = graph();
    let doc = Doc::new(vec![], "hello world");
    let nodes = hyper.batch(vec![doc.clone(), doc]).unwrap();
    assert_eq!(all_changes(&hyper).len(), 1, "only one change");
    assert_eq!(hyper.change_count(), 1, "only one change");
    // One returned node per document; both are the one stored node.
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0], nodes[1]);
    assert_eq!(nodes[0].change, 1);
    assert_eq!(hyper.log_head(&hyper.log_id()).unwrap(), 1);
}

fn count_pending(hyper: &Graph) -> Arc<AtomicI64> {
    let pending = Arc::new(AtomicI64::new(0));
    let counter = pending.clone();
    hyper.on_event(move |event| {
        let delta = match event {
            GraphEvent::PreAdd { .. } => 1,
            GraphEvent::Add(_) | GraphEvent::Reject { .. } => -1,
        };
        counter.fetch_add(delta, Ordering::SeqCst);
    });
    pending
}

/// Case 7 `bug repro: bad insert links results in correct preadd/add/reject counts`.
#[test]
fn bug_repro_bad_insert_links_results_in_correct_preadd_add_reject_counts() {
    let hyper = graph();
    let pending = count_pending(&hyper);
    let err = hyper.add(&["123".to_string()], "hello").unwrap_err();
    assert!(matches!(err, Error::MissingLink { ref link } if link == "123"));
    assert_eq!(pending.load(Ordering::SeqCst), 0);
}

/// The counter of case 7 also returns to 0 for successful adds, re-adds, appends, multi-doc
/// batches that succeed, and multi-doc batches that fail.
#[test]
fn preadd_add_reject_counter_returns_to_zero() {
    let hyper = graph();
    let pending = count_pending(&hyper);
    let a = hyper.add(&[], "a").unwrap();
    assert_eq!(pending.load(Ordering::SeqCst), 0);
    hyper.add(&[], "a").unwrap();
    assert_eq!(pending.load(Ordering::SeqCst), 0);
    hyper.append("b").unwrap();
    assert_eq!(pending.load(Ordering::SeqCst), 0);
    hyper
        .batch(vec![
            Doc::new(vec![a.key.clone()], "c"),
            Doc::new(vec![], "a"),
            Doc::new(vec![], "d"),
        ])
        .unwrap();
    assert_eq!(pending.load(Ordering::SeqCst), 0);
    hyper
        .batch(vec![
            Doc::new(vec![], "e"),
            Doc::new(vec!["nope".into()], "f"),
            Doc::new(vec![], "g"),
        ])
        .unwrap_err();
    assert_eq!(pending.load(Ordering::SeqCst), 0);
}

/// A graph reopened from its directory is the graph that was closed: same log id, change
/// count, heads, nodes and log entries; new adds continue the dense numbering.
#[test]
fn persistence_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (log_id, count, heads, nodes, entries) = {
        let g = Graph::open(dir.path(), GraphOptions::default()).unwrap();
        assert_eq!(g.path(), Some(dir.path()));
        let a = g.add(&[], "a").unwrap();
        let b = g.add(std::slice::from_ref(&a.key), "b").unwrap();
        // A batch whose documents link to earlier documents of the same batch.
        let c_key = FramedSha256.hash(std::slice::from_ref(&b.key), b"c");
        let batch = g
            .batch(vec![
                Doc::new(vec![b.key.clone()], "c"),
                Doc::new(vec![c_key.clone()], "d"),
                Doc::new(vec![], "other root"),
            ])
            .unwrap();
        assert_eq!(batch[0].key, c_key);
        assert_eq!(
            batch.iter().map(|n| n.change).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        let log_id = g.log_id();
        let nodes = all_changes(&g);
        let entries: Vec<_> = (1..=5)
            .map(|seq| g.log_entry(&log_id, seq).unwrap().unwrap())
            .collect();
        (log_id, g.change_count(), g.heads().unwrap(), nodes, entries)
    };
    assert_eq!(count, 5);
    assert_eq!(heads.len(), 2);

    let g = Graph::open(dir.path(), GraphOptions::default()).unwrap();
    assert_eq!(g.log_id(), log_id);
    assert_eq!(g.change_count(), count);
    assert_eq!(g.heads().unwrap(), heads);
    assert_eq!(all_changes(&g), nodes);
    for node in &nodes {
        assert_eq!(g.get(&node.key).unwrap(), *node);
        assert_eq!(g.get_change(node.change).unwrap(), *node);
    }
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            g.log_entry(&log_id, i as u64 + 1).unwrap().as_ref(),
            Some(entry)
        );
    }
    assert_eq!(g.log_entry(&log_id, 6).unwrap(), None);
    assert_eq!(g.log_head(&log_id).unwrap(), 5);
    assert_eq!(g.logs().unwrap(), vec![(log_id.clone(), 5)]);

    let e = g.append("e").unwrap();
    assert_eq!((e.change, e.seq), (6, 6));
    assert_eq!(g.change_count(), 6);
    drop(g);

    // A log id given for an existing repository is ignored: it keeps its own.
    let options = GraphOptions {
        log_id: Some("another-id".into()),
        ..GraphOptions::default()
    };
    let g = Graph::open(dir.path(), options).unwrap();
    assert_eq!(g.log_id(), log_id);
    assert_eq!(g.change_count(), 6);
    assert_eq!(g.heads().unwrap(), vec![e]);
}

/// A second handle on an open repository is refused with `Error::Locked`.
#[test]
fn open_twice_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let g = Graph::open(dir.path(), GraphOptions::default()).unwrap();
    match Graph::open(dir.path(), GraphOptions::default()) {
        Err(Error::Locked { .. }) => {}
        Err(other) => panic!("expected Locked, got {other:?}"),
        Ok(_) => panic!("a second handle opened a locked repository"),
    }
    drop(g);
    Graph::open(dir.path(), GraphOptions::default()).unwrap();
}

/// `get` of an unknown key and `get_change` of an unused number are `NotFound`.
#[test]
fn get_missing_is_not_found() {
    let hyper = graph();
    assert!(matches!(hyper.get("nope"), Err(Error::NotFound(_))));
    assert!(!hyper.contains("nope").unwrap());
    assert!(matches!(hyper.get_change(1), Err(Error::NotFound(_))));
    hyper.add(&[], "a").unwrap();
    assert!(hyper.get_change(1).is_ok());
    assert!(matches!(hyper.get_change(2), Err(Error::NotFound(_))));
    assert!(matches!(hyper.get_change(0), Err(Error::NotFound(_))));
}

/// An empty log id is refused; a given one is used.
#[test]
fn log_id_option() {
    let options = GraphOptions {
        log_id: Some(String::new()),
        ..GraphOptions::default()
    };
    assert!(matches!(
        Graph::in_memory(options),
        Err(Error::InvalidArgument(_))
    ));
    let options = GraphOptions {
        log_id: Some("my-log".into()),
        ..GraphOptions::default()
    };
    let g = Graph::in_memory(options).unwrap();
    assert_eq!(g.log_id(), "my-log");
    assert_eq!(g.add(&[], "x").unwrap().log, "my-log");
    // The default is 16 random bytes in hex.
    let id = graph().log_id();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(id, graph().log_id());
}

/// Log ids are escaped in keys: `!`, NUL, `\u{ff}` and ids that are prefixes of each other
/// keep their logs apart (hyperlog's level-logs breaks on `!`).
#[test]
fn unusual_log_ids() {
    let ids = ["a", "a!", "a\0", "a\0b", "!", "\u{ff}", "ab"];
    let target = graph();
    let mut expected = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let source = Graph::in_memory(GraphOptions {
            log_id: Some(id.to_string()),
            ..GraphOptions::default()
        })
        .unwrap();
        let nodes: Vec<Node> = (0..=i)
            .map(|n| source.add(&[], format!("{id} {n}")).unwrap())
            .collect();
        target.ingest(nodes.clone()).unwrap();
        for node in &nodes {
            let entry = target.log_entry(id, node.seq).unwrap().unwrap();
            assert_eq!(entry.node, node.key);
        }
        assert_eq!(target.log_entry(id, i as u64 + 2).unwrap(), None);
        expected.push((id.to_string(), i as u64 + 1));
    }
    expected.sort();
    assert_eq!(target.logs().unwrap(), expected);
    for (id, seq) in &expected {
        assert_eq!(target.log_head(id).unwrap(), *seq);
    }
    assert_eq!(target.log_head("a\0b\0").unwrap(), 0);
}

/// A large value survives a reopen.
#[test]
fn large_value_persists() {
    let dir = tempfile::tempdir().unwrap();
    let value: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let key = {
        let g = Graph::open(dir.path(), GraphOptions::default()).unwrap();
        g.add(&[], &value).unwrap().key
    };
    let g = Graph::open(dir.path(), GraphOptions::default()).unwrap();
    assert_eq!(g.get(&key).unwrap().value, value);
    assert_eq!(key, FramedSha256.hash(&[], &value));
}
