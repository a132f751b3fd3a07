//! hyperlog 4.12.1 `test/events.js` (spec §9.1 case 27), plus the event counts of case 7
//! (`preadd` − `add` − `reject` returns to 0) for every kind of write.
//!
//! strata's events differ from hyperlog's on purpose (bug H9): `PreAdd` carries the links
//! and value but no key (hyperlog's README promises a key, its code sends `null`); a batch
//! that fails rejects every document of the batch, since nothing of it was written.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use strata::Error;
use strata::{Doc, FramedSha256, Graph, GraphEvent, GraphOptions, Node, NodeHasher};

fn graph() -> Graph {
    Graph::in_memory(GraphOptions::default()).unwrap()
}

/// Records every event as a line of text, with what the graph held when it fired.
fn record(hyper: &Graph) -> Arc<Mutex<Vec<String>>> {
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = order.clone();
    let observer = hyper.clone();
    hyper.on_event(move |event| {
        let line = match event {
            GraphEvent::PreAdd { links, value } => {
                // The node is not in the database yet (hyperlog: get → notFound).
                let key = FramedSha256.hash(links, value);
                let stored = !matches!(observer.get(&key), Err(Error::NotFound(_)));
                format!("preadd {} stored={stored}", String::from_utf8_lossy(value))
            }
            GraphEvent::Add(node) => {
                // At this point the node has already been added.
                let stored = observer.get(&node.key).unwrap() == **node;
                format!("add {} stored={stored}", node.value_str().unwrap())
            }
            GraphEvent::Reject { error } => format!("reject {error}"),
        };
        log.lock().unwrap().push(line);
    });
    order
}

fn take(order: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *order.lock().unwrap())
}

/// Case 27 `add and preadd events`.
#[test]
fn add_and_preadd_events() {
    let hyper = graph();
    let order = record(&hyper);
    let node = hyper.add(&[], "hello").unwrap();
    assert_eq!(
        take(&order),
        vec!["preadd hello stored=false", "add hello stored=true"]
    );
    let node2 = hyper.add(std::slice::from_ref(&node.key), "world").unwrap();
    assert!(!node2.key.is_empty(), "has key");
    assert_eq!(node2.links, vec![node.key.clone()], "has links");
    assert_eq!(node2.value, b"world");
    assert_eq!(
        take(&order),
        vec!["preadd world stored=false", "add world stored=true"],
        "order"
    );
}

/// preadd fires synchronously, before the write: in hyperlog, in the caller's tick; in
/// strata, on the caller's thread before `add` takes the lock, so an observer can see the
/// graph as it was.
#[test]
fn preadd_fires_before_the_write() {
    let hyper = graph();
    let counts = Arc::new(Mutex::new(Vec::new()));
    {
        let counts = counts.clone();
        let observer = hyper.clone();
        let caller = std::thread::current().id();
        hyper.on_event(move |event| {
            assert_eq!(std::thread::current().id(), caller);
            let what = match event {
                GraphEvent::PreAdd { .. } => "preadd",
                GraphEvent::Add(_) => "add",
                GraphEvent::Reject { .. } => "reject",
            };
            counts.lock().unwrap().push((what, observer.change_count()));
        });
    }
    hyper.add(&[], "a").unwrap();
    hyper
        .batch(vec![Doc::new(vec![], "b"), Doc::new(vec![], "c")])
        .unwrap();
    assert_eq!(
        *counts.lock().unwrap(),
        vec![
            ("preadd", 0),
            ("add", 1),
            ("preadd", 1),
            ("preadd", 1),
            ("add", 3),
            ("add", 3),
        ]
    );
}

/// A batch reports one preadd per document before anything, then one add per document in
/// the caller's order (an existing node included), carrying the returned nodes.
#[test]
fn batch_events_in_caller_order() {
    let hyper = graph();
    let a = hyper.add(&[], "a").unwrap();
    let order = record(&hyper);
    let added = Arc::new(Mutex::new(Vec::<Node>::new()));
    {
        let added = added.clone();
        hyper.on_event(move |event| {
            if let GraphEvent::Add(node) = event {
                added.lock().unwrap().push((*node).clone());
            }
        });
    }
    let nodes = hyper
        .batch(vec![
            Doc::new(vec![a.key.clone()], "b"),
            Doc::new(vec![], "a"),
            Doc::new(vec![], "c"),
        ])
        .unwrap();
    assert_eq!(
        take(&order),
        vec![
            "preadd b stored=false",
            "preadd a stored=true",
            "preadd c stored=false",
            "add b stored=true",
            "add a stored=true",
            "add c stored=true",
        ]
    );
    assert_eq!(*added.lock().unwrap(), nodes);
}

/// A failed write reports one reject per document and no add.
#[test]
fn failed_batch_rejects_every_document() {
    let hyper = graph();
    let order = record(&hyper);
    hyper
        .batch(vec![Doc::new(vec![], "a"), Doc::new(vec!["x".into()], "b")])
        .unwrap_err();
    assert_eq!(
        take(&order),
        vec![
            "preadd a stored=false",
            "preadd b stored=false",
            "reject missing link: node x does not exist",
            "reject missing link: node x does not exist",
        ]
    );
}

/// Case 7's counter (preadd +1, add −1, reject −1) is 0 after every kind of write.
#[test]
fn preadd_add_reject_counter_returns_to_zero_for_every_write() {
    let hyper = graph();
    let pending = Arc::new(AtomicI64::new(0));
    let events = Arc::new(AtomicI64::new(0));
    {
        let pending = pending.clone();
        let events = events.clone();
        hyper.on_event(move |event| {
            events.fetch_add(1, Ordering::SeqCst);
            let delta = match event {
                GraphEvent::PreAdd { .. } => 1,
                GraphEvent::Add(_) | GraphEvent::Reject { .. } => -1,
            };
            pending.fetch_add(delta, Ordering::SeqCst);
        });
    }
    let check = |what: &str, expected_events: i64| {
        assert_eq!(pending.load(Ordering::SeqCst), 0, "{what}");
        assert_eq!(events.swap(0, Ordering::SeqCst), expected_events, "{what}");
    };
    let a = hyper.add(&[], "a").unwrap();
    check("add", 2);
    hyper.add(&[], "a").unwrap();
    check("re-add", 2);
    hyper.add(&["123".into()], "hello").unwrap_err();
    check("bad link", 2);
    hyper.append("b").unwrap();
    check("append", 2);
    hyper
        .batch(vec![
            Doc::new(vec![a.key.clone()], "c"),
            Doc::new(vec![], "d"),
            Doc::new(vec![], "d"),
        ])
        .unwrap();
    check("batch", 6);
    hyper
        .batch(vec![
            Doc::new(vec![], "e"),
            Doc::new(vec!["nope".into()], "f"),
        ])
        .unwrap_err();
    check("failed batch", 4);
    hyper.batch(vec![]).unwrap();
    check("empty batch", 0);
}

/// The counter also balances for nodes received through `ingest` (in hyperlog, replicated
/// nodes go through `batch`, which emits preadd for each).
#[test]
fn ingest_keeps_event_counter_balanced() {
    let hyper = graph();
    let pending = Arc::new(AtomicI64::new(0));
    {
        let pending = pending.clone();
        hyper.on_event(move |event| {
            let delta = match event {
                GraphEvent::PreAdd { .. } => 1,
                GraphEvent::Add(_) | GraphEvent::Reject { .. } => -1,
            };
            pending.fetch_add(delta, Ordering::SeqCst);
        });
    }
    let other = graph();
    let node = other.add(&[], "remote").unwrap();
    hyper.ingest(vec![node.clone()]).unwrap();
    assert_eq!(pending.load(Ordering::SeqCst), 0, "after ingest");
    let mut tampered = node;
    tampered.value = b"tampered".to_vec();
    tampered.seq = 2;
    hyper.ingest(vec![tampered]).unwrap_err();
    assert_eq!(pending.load(Ordering::SeqCst), 0, "after a rejected ingest");
}

/// `append` reports the links its node will have (hyperlog's append goes through `add` with
/// the heads as links, so its preadd carries them).
#[test]
fn append_preadd_carries_head_links() {
    let hyper = graph();
    let a = hyper.add(&[], "a").unwrap();
    let b = hyper.add(&[], "b").unwrap();
    let preadds = Arc::new(Mutex::new(Vec::new()));
    {
        let preadds = preadds.clone();
        hyper.on_event(move |event| {
            if let GraphEvent::PreAdd { links, .. } = event {
                preadds.lock().unwrap().push(links.to_vec());
            }
        });
    }
    let tip = hyper.append("tip").unwrap();
    let mut heads = vec![a.key, b.key];
    heads.sort();
    assert_eq!(tip.links, heads);
    assert_eq!(*preadds.lock().unwrap(), vec![heads]);
}

/// `PreAdd` names the links of each document about to be written, whatever the write:
/// `add`, a batch, or nodes ingested from a peer.
#[test]
fn preadd_carries_the_links_of_add_batch_and_ingest() {
    let hyper = graph();
    let preadds = Arc::new(Mutex::new(Vec::new()));
    {
        let preadds = preadds.clone();
        hyper.on_event(move |event| {
            if let GraphEvent::PreAdd { links, value } = event {
                preadds
                    .lock()
                    .unwrap()
                    .push((links.to_vec(), String::from_utf8_lossy(value).into_owned()));
            }
        });
    }
    let root = hyper.add(&[], "root").unwrap();
    let one = vec![root.key.clone()];
    hyper.add(&one, "child").unwrap();
    hyper
        .batch(vec![Doc::new(one.clone(), "in a batch")])
        .unwrap();
    let peer = graph();
    let theirs = peer.add(&[], "root").unwrap();
    let from_peer = peer
        .add(std::slice::from_ref(&theirs.key), "from a peer")
        .unwrap();
    hyper.ingest(vec![theirs, from_peer]).unwrap();
    let expected = [
        (vec![], "root"),
        (one.clone(), "child"),
        (one.clone(), "in a batch"),
        (vec![], "root"),
        (one, "from a peer"),
    ];
    let expected: Vec<(Vec<String>, String)> = expected
        .into_iter()
        .map(|(links, value)| (links, value.to_string()))
        .collect();
    assert_eq!(*preadds.lock().unwrap(), expected);
}
