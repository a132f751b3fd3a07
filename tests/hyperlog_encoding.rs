//! hyperlog 4.12.1 `test/encoding.js` (spec §9.1 cases 15-25), ported to strata's graph.
//!
//! hyperlog's `valueEncoding: 'json'` stores `Buffer(JSON.stringify(v))` and `JSON.parse`s
//! it on the way out. strata's values are bytes, so the encoding is the caller's: each test
//! encodes with serde_json and asserts that the same JSON value comes back. hyperlog's
//! "with encoding option" variants (16, 18, 22, 24) set the same encoding per call instead of
//! per log; with values as bytes there is nothing to set, so they collapse into the same
//! assertion as their plain variant and are kept as separate tests only to name every case.
//!
//! Case 26 `live replication encoding` needs live replication between two logs; it belongs
//! to the replication work (like `test/replicate.js`, cases 33-38) and is not ported here.

use serde_json::{Value, json};
use strata::Error;
use strata::{Graph, GraphOptions, Node};

fn graph() -> Graph {
    Graph::in_memory(GraphOptions::default()).unwrap()
}

fn enc(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn dec(node: &Node) -> Value {
    serde_json::from_slice(&node.value).unwrap()
}

fn add_node(hyper: &Graph) {
    let node = hyper.add(&[], enc(&json!({"msg": "hello world"}))).unwrap();
    assert!(!node.key.is_empty(), "has key");
    assert_eq!(node.links, Vec::<String>::new());
    assert_eq!(dec(&node), json!({"msg": "hello world"}));
    // The stored bytes are JSON.stringify's: no whitespace.
    assert_eq!(node.value, br#"{"msg":"hello world"}"#);
}

/// Case 15 `add node`.
#[test]
fn add_node_json() {
    add_node(&graph());
}

/// Case 16 `add node with encoding option` (same assertion as case 15).
#[test]
fn add_node_with_encoding_option() {
    add_node(&graph());
}

fn append_node(hyper: &Graph) {
    let node = hyper.append(enc(&json!({"msg": "hello world"}))).unwrap();
    assert!(!node.key.is_empty(), "has key");
    assert_eq!(node.links, Vec::<String>::new());
    assert_eq!(dec(&node), json!({"msg": "hello world"}));
}

/// Case 17 `append node`.
#[test]
fn append_node_json() {
    append_node(&graph());
}

/// Case 18 `append node with encoding option` (same assertion as case 17).
#[test]
fn append_node_with_encoding_option() {
    append_node(&graph());
}

/// Case 19 `add node with links` (json).
#[test]
fn add_node_with_links_json() {
    let hyper = graph();
    let node = hyper.add(&[], enc(&json!({"msg": "hello"}))).unwrap();
    let node2 = hyper
        .add(
            std::slice::from_ref(&node.key),
            enc(&json!({"msg": "world"})),
        )
        .unwrap();
    assert!(!node2.key.is_empty(), "has key");
    assert_eq!(node2.links, vec![node.key], "has links");
    assert_eq!(dec(&node2), json!({"msg": "world"}));
}

/// Case 20 `cannot add node with bad links` (json).
#[test]
fn cannot_add_node_with_bad_links_json() {
    let hyper = graph();
    let err = hyper
        .add(
            &["i-do-not-exist".to_string()],
            enc(&json!({"msg": "hello world"})),
        )
        .unwrap_err();
    assert!(matches!(err, Error::MissingLink { ref link } if link == "i-do-not-exist"));
    assert_eq!(hyper.change_count(), 0);
}

fn heads(hyper: &Graph) {
    assert_eq!(hyper.heads().unwrap(), Vec::<Node>::new(), "no heads yet");
    let node = hyper.add(&[], enc(&json!("a"))).unwrap();
    assert_eq!(hyper.heads().unwrap(), vec![node.clone()], "has head");
    assert_eq!(dec(&hyper.heads().unwrap()[0]), json!("a"));
    let node2 = hyper
        .add(std::slice::from_ref(&node.key), enc(&json!("b")))
        .unwrap();
    assert_eq!(hyper.heads().unwrap(), vec![node2], "new heads");
    assert_eq!(dec(&hyper.heads().unwrap()[0]), json!("b"));
}

/// Case 21 `heads` (json).
#[test]
fn heads_json() {
    heads(&graph());
}

/// Case 22 `heads with encoding option` (same assertion as case 21).
#[test]
fn heads_with_encoding_option() {
    heads(&graph());
}

fn get(hyper: &Graph) {
    let node = hyper.add(&[], enc(&json!({"msg": "hello world"}))).unwrap();
    assert!(!node.key.is_empty(), "has key");
    assert_eq!(node.links, Vec::<String>::new());
    assert_eq!(dec(&node), json!({"msg": "hello world"}));
    let node2 = hyper.get(&node.key).unwrap();
    assert_eq!(dec(&node2), json!({"msg": "hello world"}));
}

/// Case 23 `get` (json).
#[test]
fn get_json() {
    get(&graph());
}

/// Case 24 `get with encoding option` (same assertion as case 23).
#[test]
fn get_with_encoding_option() {
    get(&graph());
}

/// Case 25 `deduplicates` (json).
#[test]
fn deduplicates_json() {
    let hyper = graph();
    hyper.add(&[], enc(&json!({"msg": "hello world"}))).unwrap();
    hyper.add(&[], enc(&json!({"msg": "hello world"}))).unwrap();
    let changes: Vec<Node> = hyper
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap();
    assert_eq!(changes.len(), 1, "only one change");
}

/// Values of every JSON shape (and non-UTF-8 bytes) come back unchanged.
#[test]
fn values_round_trip() {
    let hyper = graph();
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1.5),
        json!(9007199254740993u64),
        json!(""),
        json!("héllo \u{0} \u{1F600}"),
        json!([]),
        json!([1, "two", {"three": [3]}]),
        json!({"b": 1, "a": {"nested": [null, false]}}),
    ];
    for value in &values {
        let node = hyper.add(&[], enc(value)).unwrap();
        assert_eq!(dec(&node), *value);
        assert_eq!(dec(&hyper.get(&node.key).unwrap()), *value);
    }
    let binary = [0u8, 1, 0x7f, 0x80, 0xfe, 0xff, b'\n', b'\r'];
    let node = hyper.add(&[], binary).unwrap();
    assert_eq!(hyper.get(&node.key).unwrap().value, binary);
    assert_eq!(node.value_str(), None);
    let empty = hyper.add(&[], b"").unwrap();
    assert_eq!(hyper.get(&empty.key).unwrap().value, b"");
    assert_eq!(
        empty.key,
        "9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa"
    );
}
