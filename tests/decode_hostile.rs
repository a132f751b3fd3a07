//! `Node::decode` and `Entry::decode` read bytes from outside (peers, files): they never
//! panic, and they refuse truncated input, unknown fields, wrong wire types and missing
//! required fields with `Error::Malformed`. Fields may come in any order.

use proptest::prelude::*;
use strata::Error;
use strata::{Entry, Node};

fn h(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(' ', "")).unwrap()
}

/// A minimal valid node: change 1, key "k", log "L", value "" (seq absent).
const MINIMAL: &str = "0801 12016b 1a014c 2a00";

fn node_err(bytes: &[u8]) -> Error {
    match Node::decode(bytes) {
        Ok(node) => panic!("decoded {} into {node:?}", hex::encode(bytes)),
        Err(err) => err,
    }
}

fn entry_err(bytes: &[u8]) -> Error {
    match Entry::decode(bytes) {
        Ok(entry) => panic!("decoded {} into {entry:?}", hex::encode(bytes)),
        Err(err) => err,
    }
}

fn assert_node_malformed(hex: &str) {
    let err = node_err(&h(hex));
    assert!(
        matches!(err, Error::Malformed { what: "node", .. }),
        "{hex}: {err:?}"
    );
}

fn assert_entry_malformed(hex: &str) {
    let err = entry_err(&h(hex));
    assert!(
        matches!(
            err,
            Error::Malformed {
                what: "log entry",
                ..
            }
        ),
        "{hex}: {err:?}"
    );
}

#[test]
fn minimal_node_decodes() {
    let node = Node::decode(&h(MINIMAL)).unwrap();
    assert_eq!(
        node,
        Node {
            change: 1,
            key: "k".into(),
            log: "L".into(),
            seq: 0,
            identity: None,
            signature: None,
            value: vec![],
            links: vec![],
        }
    );
}

#[test]
fn truncated_node() {
    assert_node_malformed("");
    assert_node_malformed("08"); // a tag without its varint
    assert_node_malformed("0880"); // a varint cut short
    assert_node_malformed("0801 1205 6b"); // a string longer than what is left
    assert_node_malformed("0801 12016b 1a014c 2a"); // a tag without its length
    assert_node_malformed("0801 12016b 1a014c 2a05 6869"); // a value cut short
    assert_node_malformed("0801 12016b 1a014c"); // cut before the value
    assert_node_malformed("0801 12016b 1a014c 2a00 32"); // a link cut after its tag
    assert_node_malformed("0801 12016b 1a014c 2a00 3203 6162"); // a link cut short
    assert_node_malformed("0801 12ffffffffffffffffff01"); // a length that does not fit
    assert_node_malformed("08ffffffffffffffffffff01"); // an 11-byte varint
    // The full vector of spec Appendix A, cut at every byte.
    let full = h("0801120261611a014c20013a01494201532a0176320178320179");
    let node = Node::decode(&full).unwrap();
    for len in 0..full.len() {
        if let Ok(prefix) = Node::decode(&full[..len]) {
            // Only a cut that drops whole trailing links can decode, and never to the same node.
            assert!(len == full.len() - 3 || len == full.len() - 6, "{len}");
            assert_ne!(prefix, node);
        }
    }
}

#[test]
fn truncated_entry() {
    assert_entry_malformed("");
    assert_entry_malformed("08");
    assert_entry_malformed("0803 12");
    assert_entry_malformed("0803 1202 61");
    assert_entry_malformed("0803 120261611a");
    assert_entry_malformed("0803 120261611a02 70");
}

#[test]
fn unknown_fields() {
    // Field 9 (varint), 10 (bytes), 15, 16 (two-byte tag), 1000, and the invalid field 0.
    for extra in ["4801", "520178", "7801", "800101", "c03e01", "0001"] {
        assert_node_malformed(&format!("{MINIMAL} {extra}"));
        assert_node_malformed(&format!("{extra} {MINIMAL}"));
    }
    // Entry declares 1-5; 6 and up are unknown.
    for extra in ["3001", "3a0178", "4801"] {
        assert_entry_malformed(&format!("0803 12026161 {extra}"));
    }
}

#[test]
fn wrong_wire_types() {
    // A declared field with another wire type than the schema's.
    assert_node_malformed("0a0101 12016b 1a014c 2a00"); // change as bytes
    assert_node_malformed("0801 1005 1a014c 2a00"); // key as varint
    assert_node_malformed("0801 12016b 1801 2a00"); // log as varint
    assert_node_malformed("0801 12016b 1a014c 220101 2a00"); // seq as bytes
    assert_node_malformed("0801 12016b 1a014c 2801"); // value as varint
    assert_node_malformed("0801 12016b 1a014c 2a00 3001"); // link as varint
    assert_node_malformed("0801 12016b 1a014c 3801 2a00"); // identity as varint
    assert_node_malformed("0801 12016b 1a014c 4001 2a00"); // signature as varint
    // Wire types no field of these schemas uses: fixed64, group start/end, fixed32, and the
    // invalid 6 and 7.
    assert_node_malformed("09 0100000000000000 12016b 1a014c 2a00");
    assert_node_malformed("0b 12016b 1a014c 2a00");
    assert_node_malformed("0801 12016b 1a014c 2a00 0c");
    assert_node_malformed("0d 01000000 12016b 1a014c 2a00");
    assert_node_malformed("0e 01 12016b 1a014c 2a00");
    assert_node_malformed("0f 01 12016b 1a014c 2a00");
    // Entry.
    assert_entry_malformed("0a0103 12026161"); // change as bytes
    assert_entry_malformed("0803 1001"); // node as varint
    assert_entry_malformed("0803 12026161 1801"); // a log link as varint
    assert_entry_malformed("0803 12026161 2001"); // log as varint
    assert_entry_malformed("0803 12026161 2a0101"); // seq as bytes
    assert_entry_malformed("0d03000000 12026161"); // fixed32
}

#[test]
fn missing_required_fields() {
    assert_node_malformed("12016b 1a014c 2a00"); // change
    assert_node_malformed("0801 1a014c 2a00"); // key
    assert_node_malformed("0801 12016b 2a00"); // log
    assert_node_malformed("0801 12016b 1a014c 2001 3a0149 4201533201 78"); // value
    assert_entry_malformed("12026161 1a0170"); // change
    assert_entry_malformed("0803 1a0170"); // node
    // Optional fields may be missing.
    Node::decode(&h(MINIMAL)).unwrap();
    assert_eq!(
        Entry::decode(&h("0803 12026161")).unwrap(),
        Entry {
            change: 3,
            node: "aa".into(),
            links: vec![]
        }
    );
}

#[test]
fn strings_must_be_utf8() {
    assert_node_malformed("0801 1201ff 1a014c 2a00"); // key
    assert_node_malformed("0801 12016b 1a01ff 2a00"); // log
    assert_node_malformed("0801 12016b 1a014c 2a00 3201ff"); // a link
    assert_entry_malformed("0803 1201ff"); // node
    assert_entry_malformed("0803 12026161 1a01ff"); // a log link
    // The value, identity and signature are bytes: anything goes.
    Node::decode(&h("0801 12016b 1a014c 3a01ff 4201fe 2a01ff")).unwrap();
}

/// A later occurrence of a singular field replaces the earlier one (protobuf's rule);
/// repeated fields accumulate.
#[test]
fn repeated_singular_field_last_wins() {
    let node = Node::decode(&h("0801 0802 12016b 1a014c 2a0161 2a0162 320178 320179")).unwrap();
    assert_eq!(node.change, 2);
    assert_eq!(node.value, b"b");
    assert_eq!(node.links, vec!["x", "y"]);
}

/// Splits a valid message into its fields (tag, value bytes included).
fn split_fields(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    fn varint(bytes: &[u8], at: &mut usize) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = bytes[*at];
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut fields = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let tag = varint(bytes, &mut at);
        match tag & 7 {
            0 => {
                varint(bytes, &mut at);
            }
            2 => {
                let len = varint(bytes, &mut at) as usize;
                at += len;
            }
            other => panic!("unexpected wire type {other}"),
        }
        fields.push(((tag >> 3) as u32, bytes[start..at].to_vec()));
    }
    fields
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        (any::<u64>(), "[0-9a-f]{0,64}", "\\PC{0,20}", any::<u64>()),
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec("[0-9a-f]{0,64}", 0..5),
        ),
    )
        .prop_map(
            |((change, key, log, seq), (identity, signature, value, links))| Node {
                change,
                key,
                log,
                seq,
                identity,
                signature,
                value,
                links,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn node_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(node) = Node::decode(&bytes) {
            // Whatever decodes re-encodes to bytes that decode to the same node.
            prop_assert_eq!(Node::decode(&node.encode()).unwrap(), node);
        }
    }

    #[test]
    fn entry_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(entry) = Entry::decode(&bytes) {
            prop_assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
        }
    }

    /// Bytes that look like protobuf (valid tags of declared fields, plausible lengths).
    #[test]
    fn decode_never_panics_on_plausible_fields(
        fields in proptest::collection::vec(
            (1u8..=9, 0u8..8, proptest::collection::vec(any::<u8>(), 0..12)),
            0..10,
        )
    ) {
        let mut bytes = Vec::new();
        for (number, wire, body) in fields {
            bytes.push(number << 3 | wire);
            if wire == 2 {
                bytes.push(body.len() as u8);
            }
            bytes.extend_from_slice(&body);
        }
        let _ = Node::decode(&bytes);
        let _ = Entry::decode(&bytes);
    }

    /// A valid encoding with one byte changed, inserted or removed never panics.
    #[test]
    fn mutated_node_never_panics(
        node in arb_node(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0u8..3,
    ) {
        let mut bytes = node.encode();
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => { bytes.remove(i); }
        }
        if let Err(err) = Node::decode(&bytes) {
            prop_assert!(matches!(err, Error::Malformed { .. }), "{:?}", err);
        }
    }

    /// Every proper prefix of a valid encoding is refused, unless it ends between fields and
    /// only drops trailing links; then it is a different node.
    #[test]
    fn truncated_node_is_refused(node in arb_node()) {
        let bytes = node.encode();
        let fields = split_fields(&bytes);
        let mut boundaries = vec![0];
        for (_, field) in &fields {
            boundaries.push(boundaries.last().unwrap() + field.len());
        }
        for len in 0..bytes.len() {
            match Node::decode(&bytes[..len]) {
                Ok(prefix) => {
                    prop_assert!(boundaries.contains(&len), "decoded a cut inside a field");
                    prop_assert!(prefix.links.len() < node.links.len());
                    prop_assert_ne!(prefix, node.clone());
                }
                Err(err) => prop_assert!(matches!(err, Error::Malformed { .. }), "{:?}", err),
            }
        }
    }

    /// Fields decode in any order (links keep their relative order: it is part of the node).
    #[test]
    fn fields_in_any_order(node in arb_node(), order in proptest::collection::vec(any::<u32>(), 16)) {
        let fields = split_fields(&node.encode());
        let mut shuffled: Vec<(u32, usize, Vec<u8>)> = fields
            .iter()
            .enumerate()
            .map(|(i, (number, bytes))| (*number, i, bytes.clone()))
            .collect();
        shuffled.sort_by_key(|(_, i, _)| order[*i % order.len()] ^ (*i as u32));
        // Put the links back in their original order, in the slots links now occupy.
        let links: Vec<Vec<u8>> = fields
            .iter()
            .filter(|(n, _)| *n == 6)
            .map(|(_, b)| b.clone())
            .collect();
        let mut links = links.into_iter();
        let bytes: Vec<u8> = shuffled
            .into_iter()
            .flat_map(|(number, _, bytes)| if number == 6 { links.next().unwrap() } else { bytes })
            .collect();
        prop_assert_eq!(Node::decode(&bytes).unwrap(), node);
    }

    #[test]
    fn entry_fields_in_any_order(
        change in any::<u64>(),
        key in "[0-9a-f]{0,64}",
        links in proptest::collection::vec("\\PC{0,10}", 0..4),
        first in 0usize..3,
    ) {
        let entry = Entry { change, node: key, links };
        let fields = split_fields(&entry.encode());
        // Move the change or the node field to the end, or not at all.
        let mut reordered = fields.clone();
        if first < 2 {
            let field = reordered.remove(first);
            reordered.push(field);
        }
        let bytes: Vec<u8> = reordered.into_iter().flat_map(|(_, b)| b).collect();
        prop_assert_eq!(Entry::decode(&bytes).unwrap(), entry);
    }
}
