//! hyperlog 4.12.1 `test/changes.js` (spec §9.1 cases 11-14), ported to strata's graph, plus
//! tests of the feed's options and of dense change numbers (bug H1: hyperlog can leave gaps
//! that break its live read stream; strata never does).

use std::thread;
use std::time::{Duration, Instant};

use strata::{Doc, Graph, GraphOptions, Node};

fn graph() -> Graph {
    Graph::in_memory(GraphOptions::default()).unwrap()
}

fn collect(feed: strata::Changes) -> Vec<Node> {
    feed.collect::<strata::Result<Vec<_>>>().unwrap()
}

/// Case 11 `changes`.
#[test]
fn changes() {
    let hyper = graph();
    let a = hyper.add(&[], "a").unwrap();
    let b = hyper.add(&[], "b").unwrap();
    let c = hyper.add(&[], "c").unwrap();
    assert_eq!(collect(hyper.changes(0)), vec![a, b, c], "has 3 changes");
}

/// Case 12 `changes since`.
#[test]
fn changes_since() {
    let hyper = graph();
    hyper.add(&[], "a").unwrap();
    hyper.add(&[], "b").unwrap();
    let c = hyper.add(&[], "c").unwrap();
    assert_eq!(collect(hyper.changes(2)), vec![c], "has 1 change");
    assert!(collect(hyper.changes(3)).is_empty());
    assert!(collect(hyper.changes(100)).is_empty());
    assert!(collect(hyper.changes(u64::MAX)).is_empty());
}

/// Case 13 `live changes`: a live feed started before the adds sees a, b, c in order.
#[test]
fn live_changes() {
    let hyper = graph();
    let feed = hyper
        .changes(0)
        .live()
        .idle_timeout(Duration::from_secs(10));
    let reader = thread::spawn(move || {
        feed.take(3)
            .map(|n| n.unwrap().value_str().unwrap().to_string())
            .collect::<Vec<_>>()
    });
    for value in ["a", "b", "c"] {
        thread::sleep(Duration::from_millis(20));
        hyper.add(&[], value).unwrap();
    }
    assert_eq!(reader.join().unwrap(), vec!["a", "b", "c"]);
}

/// Case 14 `parallel add orders changes`: concurrent adds get changes 1, 2, 3 and every
/// value is present.
#[test]
fn parallel_add_orders_changes() {
    let hyper = graph();
    let writers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|value| {
            let hyper = hyper.clone();
            thread::spawn(move || hyper.add(&[], value).unwrap())
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let changes = collect(hyper.changes(0));
    let mut values = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c.change, i as u64 + 1, "correct change number");
        assert_eq!(c.seq, c.change);
        values.push(c.value_str().unwrap().to_string());
    }
    values.sort();
    assert_eq!(values, vec!["a", "b", "c"], "contains all values");
}

/// Many writers at once, mixing adds and batches: the changes stay dense, every writer's
/// nodes are there, and the order is topological.
#[test]
fn parallel_batches_stay_dense() {
    let hyper = graph();
    let root = hyper.add(&[], "root").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let hyper = hyper.clone();
            let root = root.key.clone();
            thread::spawn(move || {
                for i in 0..10 {
                    if i % 2 == 0 {
                        hyper
                            .add(std::slice::from_ref(&root), format!("{w}-{i}"))
                            .unwrap();
                    } else {
                        hyper
                            .batch(vec![
                                Doc::new(vec![root.clone()], format!("{w}-{i}-x")),
                                Doc::new(vec![], format!("{w}-{i}-y")),
                            ])
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let expected = 1 + 8 * (5 + 5 * 2);
    assert_eq!(hyper.change_count(), expected);
    let changes = collect(hyper.changes(0));
    assert_eq!(changes.len() as u64, expected);
    let mut position = std::collections::HashMap::new();
    for (i, node) in changes.iter().enumerate() {
        assert_eq!(node.change, i as u64 + 1);
        assert_eq!(node.seq, node.change);
        for link in &node.links {
            assert!(position[link] < node.change, "links come first");
        }
        position.insert(node.key.clone(), node.change);
    }
}

/// A live feed keeps going across a failed write: the numbers it reads have no gap.
#[test]
fn live_feed_across_failed_write() {
    let hyper = graph();
    let feed = hyper
        .changes(0)
        .live()
        .idle_timeout(Duration::from_secs(10));
    let reader = thread::spawn(move || {
        feed.take(3)
            .map(|n| {
                let n = n.unwrap();
                (n.change, n.value_str().unwrap().to_string())
            })
            .collect::<Vec<_>>()
    });
    let a = hyper.add(&[], "a").unwrap();
    hyper
        .batch(vec![
            Doc::new(vec![a.key.clone()], "dropped"),
            Doc::new(vec!["missing".into()], "bad"),
        ])
        .unwrap_err();
    hyper.add(&["missing".into()], "bad").unwrap_err();
    hyper.add(&[], "b").unwrap();
    hyper.append("c").unwrap();
    assert_eq!(
        reader.join().unwrap(),
        vec![(1, "a".into()), (2, "b".into()), (3, "c".into())]
    );
}

/// A live feed with an idle timeout ends when nothing arrives.
#[test]
fn live_feed_idle_timeout_ends() {
    let hyper = graph();
    hyper.add(&[], "a").unwrap();
    let start = Instant::now();
    let nodes = collect(
        hyper
            .changes(0)
            .live()
            .idle_timeout(Duration::from_millis(100)),
    );
    assert_eq!(nodes.len(), 1);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

/// `until` is exclusive, like hyperlog's `until`; `since` is exclusive too.
#[test]
fn changes_until() {
    let hyper = graph();
    let nodes: Vec<Node> = (0..5)
        .map(|i| hyper.add(&[], format!("{i}")).unwrap())
        .collect();
    assert_eq!(collect(hyper.changes(0).until(3)), nodes[..2].to_vec());
    assert_eq!(collect(hyper.changes(1).until(4)), nodes[1..3].to_vec());
    assert!(collect(hyper.changes(2).until(3)).is_empty());
    assert!(collect(hyper.changes(3).until(2)).is_empty());
    assert_eq!(collect(hyper.changes(0).until(100)), nodes);
    // A live feed with `until` ends there without waiting.
    assert_eq!(collect(hyper.changes(0).live().until(6)), nodes);
}

/// `wait_for_change` returns at once when the graph is past `after`, waits for a write
/// otherwise, and gives up after its timeout.
#[test]
fn wait_for_change() {
    let hyper = graph();
    hyper.add(&[], "a").unwrap();
    assert_eq!(hyper.wait_for_change(0, None), 1);
    let start = Instant::now();
    assert_eq!(hyper.wait_for_change(1, Some(Duration::from_millis(50))), 1);
    assert!(start.elapsed() >= Duration::from_millis(50));
    let writer = {
        let hyper = hyper.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            hyper.add(&[], "b").unwrap();
        })
    };
    assert_eq!(hyper.wait_for_change(1, Some(Duration::from_secs(10))), 2);
    writer.join().unwrap();
    // A re-add is no change.
    let start = Instant::now();
    let writer = {
        let hyper = hyper.clone();
        thread::spawn(move || hyper.add(&[], "b").unwrap())
    };
    assert_eq!(
        hyper.wait_for_change(2, Some(Duration::from_millis(100))),
        2
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    writer.join().unwrap();
}

/// Changes come in topological order: every link of a node has a smaller change number.
#[test]
fn changes_are_topological() {
    let hyper = graph();
    for i in 0..40 {
        if i % 3 == 0 {
            hyper.add(&[], format!("root {i}")).unwrap();
        } else {
            hyper.append(format!("tip {i}")).unwrap();
        }
    }
    let mut seen = std::collections::HashSet::new();
    for node in collect(hyper.changes(0)) {
        assert!(node.links.iter().all(|l| seen.contains(l)));
        seen.insert(node.key);
    }
    assert_eq!(seen.len(), 40);
}
