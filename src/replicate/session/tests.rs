//! The four sessions captured from hyperlog 4.12.1 (`tests/fixtures/hyperlog-sessions.json`),
//! replayed between two strata engines in plain mode: both directions, byte for byte, in
//! the order the original peers sent their frames.

use serde_json::Value;

use super::{Engine, Settings};
use crate::graph::{Channel, Doc, Graph, GraphOptions};
use crate::replicate::{Mode, Payload, frame};

const SESSIONS: &str = include_str!("../../../tests/fixtures/hyperlog-sessions.json");
const VECTORS: &str = include_str!("../../../tests/fixtures/hyperlog-vectors.json");

fn graph(log: &str) -> Graph {
    Graph::in_memory(GraphOptions {
        log_id: Some(log.into()),
        ..GraphOptions::default()
    })
    .unwrap()
}

fn engine(graph: &Graph, mode: Mode) -> Engine {
    let settings = Settings {
        mode,
        live: false,
        payload: Payload::GraphOnly,
        hello: false,
        repository: false,
        max_logs: 1000,
        max_waiting: 1 << 20,
        max_payload: 1 << 20,
        channel: Channel::Plain,
    };
    Engine::new(graph.into(), settings).unwrap()
}

fn session(name: &str) -> Value {
    let all: Value = serde_json::from_str(SESSIONS).unwrap();
    all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
        .clone()
}

/// Replays `name`: whenever the capture has a peer send a frame, that engine must produce
/// exactly those bytes next; the other engine then receives it.
fn replay(name: &str, a: &mut Engine, b: &mut Engine) {
    let session = session(name);
    for (index, step) in session["frames"].as_array().unwrap().iter().enumerate() {
        let (from, to) = if step["dir"] == "a_to_b" {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        let message = from
            .next_output()
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: step {index}: nothing to send"));
        let mut framed = Vec::new();
        frame::encode(&message, &mut framed);
        assert_eq!(
            hex::encode(&framed),
            step["hex"].as_str().unwrap(),
            "{name}: step {index} ({} {})",
            step["dir"],
            step["type"]
        );
        to.receive(&message).unwrap();
        to.idle().unwrap();
    }
    for (side, engine) in [("a", a), ("b", b)] {
        assert!(engine.is_finished(), "{name}: {side} is not finished");
        assert!(
            engine.next_output().unwrap().is_none(),
            "{name}: {side} says more"
        );
    }
}

/// Head keys (change numbers are local, so whole nodes differ between replicas).
fn heads(graph: &Graph) -> Vec<String> {
    graph.heads().unwrap().into_iter().map(|n| n.key).collect()
}

fn chain(graph: &Graph, values: &[&str]) {
    for value in values {
        graph.append(value).unwrap();
    }
}

#[test]
fn vectors_log_to_empty_peer() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let a = graph(vectors["ids"]["vectors"].as_str().unwrap());
    for node in vectors["nodes"].as_array().unwrap().iter().take(7) {
        let links = node["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let value = hex::decode(node["value_hex"].as_str().unwrap()).unwrap();
        let stored = a.add_doc(Doc::new(links, value)).unwrap();
        assert_eq!(stored.key, node["key"].as_str().unwrap());
    }
    let b = graph(vectors["ids"]["B"].as_str().unwrap());
    replay(
        "vectors_log_to_empty_peer",
        &mut engine(&a, Mode::Sync),
        &mut engine(&b, Mode::Sync),
    );
    assert_eq!(heads(&a), heads(&b));
    assert_eq!(b.change_count(), 7);
}

#[test]
fn two_rounds_then_push_to_an_empty_puller() {
    let ids: Value = serde_json::from_str::<Value>(SESSIONS).unwrap()["ids"].clone();
    let a = graph(ids["A"].as_str().unwrap());
    let b = graph(ids["B"].as_str().unwrap());
    chain(&a, &["a1", "a2", "a3"]);
    chain(&b, &["b1", "b2"]);
    replay(
        "A3_B2_sync",
        &mut engine(&a, Mode::Sync),
        &mut engine(&b, Mode::Sync),
    );

    // Round two: b3 merges b2 and a3 (a cross-log link), a4 extends a3.
    let a3 = a.get_change(3).unwrap().key;
    let b2 = b.get_change(2).unwrap().key;
    b.add(&[b2, a3.clone()], "b3 merge").unwrap();
    a.add(&[a3], "a4").unwrap();
    replay(
        "second_round_cross_log_merge",
        &mut engine(&a, Mode::Sync),
        &mut engine(&b, Mode::Sync),
    );
    assert_eq!(heads(&a), heads(&b));

    let empty = graph("empty");
    replay(
        "push_to_pull_empty",
        &mut engine(&a, Mode::Push),
        &mut engine(&empty, Mode::Pull),
    );
    assert_eq!(heads(&empty), heads(&a));
    assert_eq!(empty.change_count(), 7);
}
