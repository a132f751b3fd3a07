//! Byte-exact compatibility with hyperlog 4.12.1, checked against vectors captured from the
//! JS original (`tests/fixtures/hyperlog-vectors.json`, a trimmed copy of the reference
//! capture) and the collected vectors of spec Appendix A.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};
use strata::proto::hyperlog as proto;
use strata::{Doc, Entry, FramedSha256, Graph, GraphOptions, Node, NodeHasher, Signer};

const FIXTURE: &str = include_str!("fixtures/hyperlog-vectors.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(s(v)).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| s(l).to_string())
        .collect()
}

fn graph(log_id: &str) -> Graph {
    Graph::in_memory(GraphOptions {
        log_id: Some(log_id.to_string()),
        ..GraphOptions::default()
    })
    .unwrap()
}

/// The framed preimage: every link, then the value, each as `"<len>\n" ‖ bytes`.
fn preimage(links: &[String], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in links.iter().map(|l| l.as_bytes()).chain([value]) {
        out.extend_from_slice(format!("{}\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn all_changes(graph: &Graph) -> Vec<Node> {
    graph
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap()
}

/// Every node of the captured `vectors` log: key from links and value, stored bytes, change
/// and seq, and the stored bytes decode back to the same node.
#[test]
fn nodes_reproduce() {
    let fx = fixture();
    let log_id = s(&fx["ids"]["vectors"]);
    let g = graph(log_id);
    let vectors: Vec<&Value> = fx["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| s(&n["log"]) == log_id)
        .collect();
    assert_eq!(vectors.len(), 7);
    for v in vectors {
        let name = s(&v["name"]);
        let links = strings(&v["links"]);
        let value = unhex(&v["value_hex"]);
        assert_eq!(
            hex::encode(preimage(&links, &value)),
            s(&v["hash_preimage_hex"]),
            "{name}"
        );
        assert_eq!(FramedSha256.hash(&links, &value), s(&v["key"]), "{name}");
        let node = g.add(&links, &value).unwrap();
        assert_eq!(node.key, s(&v["key"]), "{name}: key");
        assert_eq!(node.change, v["change"].as_u64().unwrap(), "{name}: change");
        assert_eq!(node.seq, v["seq"].as_u64().unwrap(), "{name}: seq");
        assert_eq!(node.log, log_id, "{name}: log");
        let stored = unhex(&v["stored_value_hex"]);
        assert_eq!(
            hex::encode(node.encode()),
            s(&v["stored_value_hex"]),
            "{name}: stored bytes"
        );
        assert_eq!(Node::decode(&stored).unwrap(), node, "{name}: decode");
        assert_eq!(g.get(&node.key).unwrap().encode(), stored, "{name}: get");
    }
}

/// The captured log's entries (`!logs!<log>!<seq>`) and heads.
#[test]
fn log_entries_and_heads_reproduce() {
    let fx = fixture();
    let log_id = s(&fx["ids"]["vectors"]);
    let g = graph(log_id);
    for v in fx["nodes"].as_array().unwrap() {
        if s(&v["log"]) == log_id {
            g.add(&strings(&v["links"]), unhex(&v["value_hex"]))
                .unwrap();
        }
    }
    check_dump(&g, &fx["db_dumps"]["vectors_log"]);
}

/// Parses hyperlog's `lexhex(seq)` for the small numbers the captures hold.
fn lexhex(hex: &str) -> u64 {
    let bytes = hex::decode(hex).unwrap();
    assert!(bytes.len() == 1 && bytes[0] < 251, "lexhex {hex}");
    u64::from(bytes[0])
}

/// Checks a graph against the `!nodes!`, `!logs!` and `!heads!` rows of a captured LevelDB
/// dump: every node and log entry byte for byte, and nothing more.
fn check_dump(g: &Graph, rows: &Value) {
    let mut heads = Vec::new();
    let mut nodes = 0;
    let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows.as_array().unwrap() {
        let key = s(&row["key"]);
        let value = s(&row["value_hex"]);
        if let Some(node_key) = key.strip_prefix("!nodes!") {
            nodes += 1;
            assert_eq!(
                hex::encode(g.get(node_key).unwrap().encode()),
                value,
                "{key}"
            );
        } else if let Some(rest) = key.strip_prefix("!logs!") {
            let (log, seq) = rest.rsplit_once('!').unwrap();
            let seq = lexhex(seq);
            let entry = g.log_entry(log, seq).unwrap().unwrap();
            assert_eq!(hex::encode(entry.encode()), value, "{key}");
            assert_eq!(Entry::decode(&hex::decode(value).unwrap()).unwrap(), entry);
            let last = seqs.entry(log.to_string()).or_default();
            *last = (*last).max(seq);
        } else if let Some(head) = key.strip_prefix("!heads!") {
            heads.push(head.to_string());
        }
    }
    heads.sort();
    let ours: Vec<String> = g.heads().unwrap().into_iter().map(|n| n.key).collect();
    assert_eq!(ours, heads, "heads");
    if nodes > 0 {
        assert_eq!(g.change_count(), nodes, "node count");
    }
    assert_eq!(
        g.logs().unwrap(),
        seqs.into_iter().collect::<Vec<_>>(),
        "logs"
    );
}

/// The captured signature stand-in: identity fixed, signature = sha256(utf8 key).
struct VectorSigner {
    identity: Vec<u8>,
}

impl Signer for VectorSigner {
    fn identity(&self) -> Option<Vec<u8>> {
        Some(self.identity.clone())
    }

    fn sign(&self, node: &Node) -> Result<Vec<u8>, String> {
        Ok(Sha256::digest(node.key.as_bytes()).to_vec())
    }
}

/// The `signed_identity` node: identity and signature are stored (in declaration order,
/// before the value) byte for byte as hyperlog stores them.
#[test]
fn signed_identity_reproduces() {
    let fx = fixture();
    let v = fx["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| s(&n["name"]) == "signed_identity")
        .unwrap();
    assert_eq!(s(&v["signature_rule"]), "sha256(utf8 key) (test stand-in)");
    let identity = unhex(&v["identity_hex"]);
    assert_eq!(unhex(&v["stored_identity_hex"]), identity);
    let g = Graph::in_memory(GraphOptions {
        signer: Some(Arc::new(VectorSigner {
            identity: identity.clone(),
        })),
        log_id: Some(s(&v["log"]).to_string()),
        ..GraphOptions::default()
    })
    .unwrap();
    let node = g
        .add(&strings(&v["links"]), unhex(&v["value_hex"]))
        .unwrap();
    assert_eq!(node.key, s(&v["key"]));
    assert_eq!(node.identity, Some(identity));
    assert_eq!(node.signature, Some(unhex(&v["stored_signature_hex"])));
    assert_eq!(hex::encode(node.encode()), s(&v["stored_value_hex"]));
    assert_eq!(Node::decode(&unhex(&v["stored_value_hex"])).unwrap(), node);
    // The same through a per-document identity and a signer without one.
    struct NoIdentity;
    impl Signer for NoIdentity {
        fn identity(&self) -> Option<Vec<u8>> {
            None
        }
        fn sign(&self, node: &Node) -> Result<Vec<u8>, String> {
            Ok(Sha256::digest(node.key.as_bytes()).to_vec())
        }
    }
    let g = Graph::in_memory(GraphOptions {
        signer: Some(Arc::new(NoIdentity)),
        log_id: Some(s(&v["log"]).to_string()),
        ..GraphOptions::default()
    })
    .unwrap();
    let mut doc = Doc::new(strings(&v["links"]), unhex(&v["value_hex"]));
    doc.identity = Some(unhex(&v["identity_hex"]));
    let node = g.add_doc(doc).unwrap();
    assert_eq!(hex::encode(node.encode()), s(&v["stored_value_hex"]));
}

/// The capture's hash example: the preimage of a two-link node, and its key.
#[test]
fn hash_example_preimage() {
    let fx = fixture();
    let ex = &fx["hash_example"];
    let links = strings(&ex["links"]);
    let value = unhex(&ex["value_hex"]);
    let pre = preimage(&links, &value);
    assert_eq!(hex::encode(&pre), s(&ex["preimage_hex"]));
    assert_eq!(hex::encode(Sha256::digest(&pre)), s(&ex["key"]));
    assert_eq!(FramedSha256.hash(&links, &value), s(&ex["key"]));
}

/// Two logs replicate in both directions (A: a1←a2←a3, B: b1←b2), then B merges across logs
/// (b3 links b2 and a3) while A adds a4, and they replicate again. Replication is simulated
/// through `ingest`: each side receives the nodes it lacks in the sender's change order. The
/// result is hyperlog's, byte for byte: every stored node (sender's log and seq, receiver's
/// change), every log entry (with the "log links" of the cross-log merge), and the heads.
#[test]
fn cross_log_replication_reproduces() {
    let fx = fixture();
    let (id_a, id_b) = (s(&fx["ids"]["A"]), s(&fx["ids"]["B"]));
    let a = graph(id_a);
    let b = graph(id_b);
    let a1 = a.add(&[], "a1").unwrap();
    let a2 = a.add(std::slice::from_ref(&a1.key), "a2").unwrap();
    let a3 = a.add(std::slice::from_ref(&a2.key), "a3").unwrap();
    let b1 = b.add(&[], "b1").unwrap();
    let b2 = b.add(std::slice::from_ref(&b1.key), "b2").unwrap();

    // Round 1.
    let (from_a, from_b) = (all_changes(&a), all_changes(&b));
    let received = a.ingest(from_b).unwrap();
    assert_eq!(
        received.iter().map(|n| n.change).collect::<Vec<_>>(),
        vec![4, 5]
    );
    b.ingest(from_a).unwrap();
    assert_eq!(b.get(&a3.key).unwrap().change, 5);

    // Round 2.
    let (since_a, since_b) = (a.change_count(), b.change_count());
    let b3 = b
        .add(&[b2.key.clone(), a3.key.clone()], "b3 merge")
        .unwrap();
    a.add(std::slice::from_ref(&a3.key), "a4").unwrap();
    let (new_a, new_b) = (
        a.changes(since_a)
            .collect::<strata::Result<Vec<_>>>()
            .unwrap(),
        b.changes(since_b)
            .collect::<strata::Result<Vec<_>>>()
            .unwrap(),
    );
    a.ingest(new_b).unwrap();
    b.ingest(new_a).unwrap();
    assert_eq!(
        b.log_entry(id_b, 3).unwrap().unwrap().links,
        vec![id_a.to_string()],
        "log links of the merge"
    );
    assert_eq!(a.get(&b3.key).unwrap().change, 7);

    check_dump(&a, &fx["db_dumps"]["A_after_round2"]);
    check_dump(&b, &fx["db_dumps"]["B_after_round2"]);

    // Replicating again changes nothing: every node is known under the same (log, seq).
    let (count_a, count_b) = (a.change_count(), b.change_count());
    a.ingest(all_changes(&b)).unwrap();
    b.ingest(all_changes(&a)).unwrap();
    assert_eq!((a.change_count(), b.change_count()), (count_a, count_b));
    check_dump(&a, &fx["db_dumps"]["A_after_round2"]);
    check_dump(&b, &fx["db_dumps"]["B_after_round2"]);
}

/// Spec Appendix A: `Entry {change:3, node:"aa", links:["p"]}`.
#[test]
fn appendix_a_entry() {
    let entry = Entry {
        change: 3,
        node: "aa".into(),
        links: vec!["p".into()],
    };
    let bytes = hex::decode("0803120261611a0170").unwrap();
    assert_eq!(entry.encode(), bytes);
    assert_eq!(Entry::decode(&bytes).unwrap(), entry);
    // Entry's declaration order is its tag order, so prost agrees.
    let message = proto::Entry {
        change: 3,
        node: "aa".into(),
        links: vec!["p".into()],
        log: None,
        seq: None,
    };
    assert_eq!(message.encode_to_vec(), bytes);
    assert_eq!(proto::Entry::decode(&bytes[..]).unwrap(), message);
    // hyperlog declares log and seq but never stores them; they are accepted and dropped.
    let with_log = proto::Entry {
        log: Some("L".into()),
        seq: Some(7),
        ..message
    };
    assert_eq!(Entry::decode(&with_log.encode_to_vec()).unwrap(), entry);
}

/// Spec Appendix A: `Node {1,"aa","L",seq 1,identity "I",signature "S","v",[x,y]}`, in
/// declaration order (identity and signature before value and links).
#[test]
fn appendix_a_node() {
    let node = Node {
        change: 1,
        key: "aa".into(),
        log: "L".into(),
        seq: 1,
        identity: Some(b"I".to_vec()),
        signature: Some(b"S".to_vec()),
        value: b"v".to_vec(),
        links: vec!["x".into(), "y".into()],
    };
    let bytes = hex::decode("0801120261611a014c20013a01494201532a0176320178320179").unwrap();
    assert_eq!(node.encode(), bytes);
    assert_eq!(Node::decode(&bytes).unwrap(), node);
    // prost writes tag order, so its bytes differ, but they decode to the same node.
    let message = to_proto(&node);
    let tag_order = message.encode_to_vec();
    assert_ne!(tag_order, bytes);
    assert_eq!(Node::decode(&tag_order).unwrap(), node);
    assert_eq!(proto::Node::decode(&bytes[..]).unwrap(), message);
}

/// Spec Appendix A: `Log {log:"L", seq:2}`.
#[test]
fn appendix_a_log() {
    let message = proto::Log {
        log: "L".into(),
        seq: 2,
    };
    let bytes = hex::decode("0a014c1002").unwrap();
    assert_eq!(message.encode_to_vec(), bytes);
    assert_eq!(proto::Log::decode(&bytes[..]).unwrap(), message);
}

/// Spec Appendix A: `Handshake {version:1}` is `0801`, and decodes with mode "sync", live
/// false and no metadata.
#[test]
fn appendix_a_handshake() {
    let message = proto::Handshake {
        version: 1,
        ..Default::default()
    };
    let bytes = hex::decode("0801").unwrap();
    assert_eq!(message.encode_to_vec(), bytes);
    let decoded = proto::Handshake::decode(&bytes[..]).unwrap();
    assert_eq!(decoded.version, 1);
    assert_eq!(decoded.mode(), "sync");
    assert!(!decoded.live());
    assert_eq!(decoded.metadata, None);
    // Optional fields that are set are written even when they hold the default (spec §1.4
    // rule 2, "write defined zeros").
    let full = proto::Handshake {
        version: 1,
        mode: Some("sync".into()),
        metadata: Some(vec![]),
        live: Some(false),
    };
    assert_eq!(
        hex::encode(full.encode_to_vec()),
        "0801120473796e631a002000"
    );
}

fn to_proto(node: &Node) -> proto::Node {
    proto::Node {
        change: u32::try_from(node.change).unwrap(),
        key: node.key.clone(),
        log: node.log.clone(),
        seq: Some(u32::try_from(node.seq).unwrap()),
        identity: node.identity.clone(),
        signature: node.signature.clone(),
        value: node.value.clone(),
        links: node.links.clone(),
    }
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        (any::<u32>(), "[0-9a-f]{0,64}", "\\PC{0,30}", any::<u32>()),
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70)),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec("\\PC{0,70}", 0..5),
        ),
    )
        .prop_map(
            |((change, key, log, seq), (identity, signature, value, links))| Node {
                change: change.into(),
                key,
                log,
                seq: seq.into(),
                identity,
                signature,
                value,
                links,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The hand-written encoder agrees with the schema: prost decodes its bytes into the same
    /// fields, our decoder reads prost's (tag-order) bytes back, and both round-trip.
    #[test]
    fn node_encoding_matches_schema(node in arb_node()) {
        let bytes = node.encode();
        let message = proto::Node::decode(&bytes[..]).unwrap();
        prop_assert_eq!(&message, &to_proto(&node));
        prop_assert_eq!(Node::decode(&bytes).unwrap(), node.clone());
        prop_assert_eq!(Node::decode(&message.encode_to_vec()).unwrap(), node.clone());
        // Without identity and signature, declaration order is tag order: same bytes.
        if node.identity.is_none() && node.signature.is_none() {
            prop_assert_eq!(message.encode_to_vec(), bytes);
        }
    }

    #[test]
    fn entry_encoding_matches_schema(
        change in any::<u32>(),
        node in "[0-9a-f]{0,64}",
        links in proptest::collection::vec("\\PC{0,30}", 0..4),
    ) {
        let entry = Entry { change: change.into(), node, links };
        let bytes = entry.encode();
        let message = proto::Entry::decode(&bytes[..]).unwrap();
        prop_assert_eq!(message.change, change);
        prop_assert_eq!(&message.node, &entry.node);
        prop_assert_eq!(&message.links, &entry.links);
        prop_assert_eq!((message.log.clone(), message.seq), (None, None));
        prop_assert_eq!(message.encode_to_vec(), bytes.clone());
        prop_assert_eq!(Entry::decode(&bytes).unwrap(), entry);
    }
}
