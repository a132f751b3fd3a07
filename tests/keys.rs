//! The key encodings of `strata::keys`: parts round-trip, encoded keys sort like the tuples
//! they encode, escaped parts are prefix-free, and the key helpers decode back.

use proptest::prelude::*;
use strata::internals::keys::{self, KeyBuf, KeyReader};

const F: &[u8] = b"!test!";

/// Byte strings biased towards the bytes the escaping treats specially.
fn part() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(0x00u8),
            Just(0x01u8),
            Just(0xffu8),
            Just(0xfeu8),
            Just(b'!'),
            any::<u8>(),
        ],
        0..12,
    )
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(255u64),
        Just(256u64),
        any::<u64>(),
    ]
}

fn bytes_u64(a: &[u8], n: u64) -> Vec<u8> {
    KeyBuf::new(F).bytes(a).u64(n).finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn bytes_u64_round_trips(a in part(), n in number()) {
        let key = bytes_u64(&a, n);
        prop_assert!(key.starts_with(F));
        let mut reader = KeyReader::new(&key, F).unwrap();
        prop_assert_eq!(reader.bytes().unwrap(), a);
        prop_assert_eq!(reader.u64().unwrap(), n);
        prop_assert!(reader.rest().is_empty());
    }

    #[test]
    fn bytes_u64_order_is_tuple_order(a in part(), n in number(), b in part(), m in number()) {
        let (ka, kb) = (bytes_u64(&a, n), bytes_u64(&b, m));
        prop_assert_eq!(ka.cmp(&kb), (&a, n).cmp(&(&b, m)));
    }

    #[test]
    fn bytes_is_prefix_free(a in part(), b in part()) {
        let ka = KeyBuf::new(F).bytes(&a).finish();
        let kb = KeyBuf::new(F).bytes(&b).finish();
        if a != b {
            prop_assert!(!kb.starts_with(&ka), "{:?} is a prefix of {:?}", ka, kb);
            prop_assert!(!ka.starts_with(&kb), "{:?} is a prefix of {:?}", kb, ka);
        } else {
            prop_assert_eq!(ka, kb);
        }
    }

    /// A key that continues after a part never falls inside another part's scan range.
    #[test]
    fn bytes_part_scan_range_is_exact(a in part(), b in part(), tail in part()) {
        let prefix = KeyBuf::new(F).bytes(&a).finish();
        let key = KeyBuf::new(F).bytes(&b).raw(&tail).finish();
        prop_assert_eq!(key.starts_with(&prefix), a == b);
    }

    #[test]
    fn u64_desc_sorts_descending(n in number(), m in number()) {
        let kn = KeyBuf::new(F).u64_desc(n).finish();
        let km = KeyBuf::new(F).u64_desc(m).finish();
        prop_assert_eq!(kn.cmp(&km), m.cmp(&n));
        let mut reader = KeyReader::new(&kn, F).unwrap();
        prop_assert_eq!(reader.u64_desc().unwrap(), n);
        prop_assert!(reader.rest().is_empty());
    }

    #[test]
    fn u64_sorts_ascending(n in number(), m in number()) {
        let kn = KeyBuf::new(F).u64(n).finish();
        let km = KeyBuf::new(F).u64(m).finish();
        prop_assert_eq!(kn.cmp(&km), n.cmp(&m));
    }

    #[test]
    fn composite_bytes_bytes_preserves_tuple_order(
        a1 in part(), a2 in part(), b1 in part(), b2 in part()
    ) {
        let ka = KeyBuf::new(F).bytes(&a1).bytes(&a2).finish();
        let kb = KeyBuf::new(F).bytes(&b1).bytes(&b2).finish();
        prop_assert_eq!(ka.cmp(&kb), (&a1, &a2).cmp(&(&b1, &b2)));
        let mut reader = KeyReader::new(&ka, F).unwrap();
        prop_assert_eq!(reader.bytes().unwrap(), a1);
        prop_assert_eq!(reader.bytes().unwrap(), a2);
        prop_assert!(reader.rest().is_empty());
    }

    #[test]
    fn composite_bytes_desc_raw_round_trips(a in part(), n in number(), raw in part()) {
        let key = KeyBuf::new(F).bytes(&a).u64_desc(n).raw(&raw).finish();
        let mut reader = KeyReader::new(&key, F).unwrap();
        prop_assert_eq!(reader.bytes().unwrap(), a);
        prop_assert_eq!(reader.u64_desc().unwrap(), n);
        prop_assert_eq!(reader.rest(), &raw[..]);
    }

    /// Reading arbitrary bytes as a key never panics.
    #[test]
    fn reader_never_panics(rest in proptest::collection::vec(any::<u8>(), 0..24)) {
        let mut key = F.to_vec();
        key.extend_from_slice(&rest);
        let mut reader = KeyReader::new(&key, F).unwrap();
        let _ = reader.bytes();
        let _ = reader.u64();
        let _ = reader.u64_desc();
        let _ = reader.rest();
    }

    #[test]
    fn helpers_decode_back(log in "\\PC{0,20}", key in "[0-9a-f]{0,64}", n in number()) {
        let node = keys::node(&key);
        prop_assert_eq!(KeyReader::new(&node, keys::NODES).unwrap().rest(), key.as_bytes());


        let change = keys::change(n);
        let mut reader = KeyReader::new(&change, keys::CHANGES).unwrap();
        prop_assert_eq!(reader.u64_desc().unwrap(), n);
        prop_assert!(reader.rest().is_empty());

        let entry = keys::log_entry(&log, n);
        let mut reader = KeyReader::new(&entry, keys::LOGS).unwrap();
        prop_assert_eq!(reader.bytes().unwrap(), log.as_bytes());
        prop_assert_eq!(reader.u64_desc().unwrap(), n);
        prop_assert!(reader.rest().is_empty());

        prop_assert_eq!(keys::decode_u64(&keys::encode_u64(n), "n").unwrap(), n);
    }

    /// Log runs sort by log, then newest run first, so one log's runs are one contiguous
    /// range and a forward seek to a seq lands on the run holding it.
    #[test]
    fn log_runs_sort_by_log_then_seq_descending(
        l1 in "[!a-z\\x00]{0,6}", s1 in number(), l2 in "[!a-z\\x00]{0,6}", s2 in number()
    ) {
        let (k1, k2) = (keys::log_entry(&l1, s1), keys::log_entry(&l2, s2));
        prop_assert_eq!(k1.cmp(&k2), (l1.as_bytes(), std::cmp::Reverse(s1)).cmp(&(l2.as_bytes(), std::cmp::Reverse(s2))));
    }
}

/// The escaping, byte by byte (docs/format.md).
#[test]
fn escaping_bytes() {
    assert_eq!(KeyBuf::new(b"").bytes(b"").finish(), vec![0x00, 0x01]);
    assert_eq!(
        KeyBuf::new(b"").bytes(&[0x00]).finish(),
        vec![0x00, 0xff, 0x00, 0x01]
    );
    assert_eq!(
        KeyBuf::new(b"F").bytes(b"a!\xff").u64(258).finish(),
        b"Fa!\xff\x00\x01\x00\x00\x00\x00\x00\x00\x01\x02".to_vec()
    );
    assert_eq!(
        KeyBuf::new(b"").u64_desc(0).finish(),
        vec![0xff; 8],
        "descending 0 sorts last"
    );
    assert_eq!(
        keys::change(1),
        b"!log!!changes!\xff\xff\xff\xff\xff\xff\xff\xfe".to_vec()
    );
    assert_eq!(keys::node("ab"), b"!log!!nodes!ab".to_vec());
    assert_eq!(
        keys::log_entry("L", 2),
        b"!log!!logs!L\x00\x01\xff\xff\xff\xff\xff\xff\xff\xfd".to_vec()
    );
}

/// Malformed keys are errors, not panics.
#[test]
fn malformed_keys() {
    assert!(KeyReader::new(b"!other!x", F).is_err(), "wrong family");
    let unterminated = [F, b"abc"].concat();
    assert!(KeyReader::new(&unterminated, F).unwrap().bytes().is_err());
    let bad_escape = [F, b"a\x00\x02"].concat();
    assert!(KeyReader::new(&bad_escape, F).unwrap().bytes().is_err());
    let dangling_escape = [F, b"a\x00"].concat();
    assert!(
        KeyReader::new(&dangling_escape, F)
            .unwrap()
            .bytes()
            .is_err()
    );
    let short = [F, &[0u8; 7][..]].concat();
    assert!(KeyReader::new(&short, F).unwrap().u64().is_err());
    assert!(keys::decode_u64(&[0; 7], "short").is_err());
    assert!(keys::decode_u64(&[0; 9], "long").is_err());
}
