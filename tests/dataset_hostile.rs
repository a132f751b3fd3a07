//! Hostile input for the dataset store's decoders and its replication seam: commits,
//! operations and file references come from peers, so malformed bytes must be refused with
//! an error (never a panic) and must leave the repository unchanged.

use proptest::prelude::*;
use strata::Error;
use strata::{Commit, Content, FileRef, OpKind, Operation, Repository};

fn repo() -> Repository {
    Repository::in_memory().expect("in-memory repository")
}

fn op(key: &str, value: &str) -> Operation {
    Operation {
        kind: OpKind::Put,
        content: Content::Row,
        dataset: b"d".to_vec(),
        key: key.as_bytes().to_vec(),
        value: Some(value.as_bytes().to_vec()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Commit::decode(&bytes);
        let _ = Operation::decode(&bytes);
        let _ = FileRef::decode(&bytes);
    }

    #[test]
    fn mutated_operations_never_panic(index in 0usize..40, byte in any::<u8>(), cut in 0usize..40) {
        let mut bytes = op("key", "some value").encode();
        let at = index % bytes.len();
        bytes[at] = byte;
        let _ = Operation::decode(&bytes);
        bytes.truncate(cut.min(bytes.len()));
        let _ = Operation::decode(&bytes);
    }

    #[test]
    fn operations_round_trip(key in proptest::collection::vec(any::<u8>(), 0..20),
                             dataset in proptest::collection::vec(any::<u8>(), 0..20),
                             value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50))) {
        let op = Operation {
            kind: if value.is_some() { OpKind::Put } else { OpKind::Delete },
            content: Content::Row,
            dataset,
            key,
            value,
        };
        prop_assert_eq!(Operation::decode(&op.encode()).unwrap(), op);
    }
}

#[test]
fn malformed_commits_are_refused() {
    for (bytes, what) in [
        (vec![0x08, 0x09], "unknown commit type"),
        (
            vec![0x20, 0x01],
            "counts an operation without an operations hash",
        ),
        (vec![0x3a, 0x05, b'a'], "truncated operations hash"),
        (vec![0x48, 0x01], "unknown field 9"),
        (vec![0x0d, 0, 0, 0, 0], "wire type fixed32"),
    ] {
        let err = Commit::decode(&bytes).expect_err(what);
        assert!(
            matches!(err, Error::Malformed { what: "commit", .. }),
            "{what}: {err}"
        );
    }
}

#[test]
fn malformed_operations_and_file_references_are_refused() {
    for (bytes, what) in [
        (vec![0x1a, 0x01, b'k'], "no type"),
        (vec![0x08, 0x07, 0x1a, 0x01, b'k'], "unknown type"),
        (vec![0x08, 0x01], "no key"),
        (
            vec![0x28, 0x09, 0x08, 0x01, 0x1a, 0x01, b'k'],
            "unknown content",
        ),
        (vec![0x08, 0x01, 0x1a, 0x05, b'k'], "key runs past the end"),
    ] {
        let err = Operation::decode(&bytes).expect_err(what);
        assert!(
            matches!(
                err,
                Error::Malformed {
                    what: "operation",
                    ..
                }
            ),
            "{what}: {err}"
        );
    }
    let not_hex = FileRef {
        hash: "../../etc/passwd".into(),
        size: 1,
    }
    .encode();
    assert!(matches!(
        FileRef::decode(&not_hex),
        Err(Error::Malformed { .. })
    ));
    let upper = FileRef {
        hash: "AB".repeat(32),
        size: 1,
    }
    .encode();
    assert!(matches!(
        FileRef::decode(&upper),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn a_payload_of_garbage_is_refused_and_stores_nothing() {
    let repo = repo();
    let err = repo
        .add_payload(&[op("a", "1").encode(), vec![0xff, 0xff, 0xff]])
        .expect_err("garbage operation");
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let hash_of_good_part = repo.add_payload(&[op("a", "1").encode()]).unwrap();
    // Only what was explicitly stored is there.
    assert_eq!(repo.payload(&hash_of_good_part).unwrap().unwrap().len(), 1);
    assert!(matches!(
        repo.payload("not-a-hash"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_payload_that_does_not_match_its_commit_never_makes_it_visible() {
    let a = repo();
    a.put("d", "k", "real value").unwrap();
    let node = a.graph().changes(0).next().unwrap().unwrap();
    let b = repo();
    b.graph().ingest(vec![node]).unwrap();
    // A forged payload hashes to another name, so it cannot satisfy the commit.
    b.add_payload(&[op("k", "forged value").encode()]).unwrap();
    assert!(b.get("d", "k").unwrap().is_none());
    assert_eq!(b.status().unwrap().pending, 1);
    assert!(b.fsck(&mut |_, _| {}).unwrap().is_ok());
}

#[test]
fn a_commit_node_with_a_wrong_key_is_refused_and_nothing_is_stored() {
    let a = repo();
    a.put("d", "k", "v").unwrap();
    let mut node = a.graph().changes(0).next().unwrap().unwrap();
    node.value.push(0);
    let b = repo();
    let err = b.graph().ingest(vec![node]).expect_err("tampered value");
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert_eq!(b.graph().change_count(), 0);
}

#[test]
fn a_commit_naming_a_malformed_operations_hash_cannot_wedge_the_indexer() {
    // Commit{type DATA, modified 1, puts 1, operations "zz…"}: commit-shaped, but its
    // operations hash is not a hash. It is stored as a plain node; writes go on.
    let mut value = vec![0x08, 0x01, 0x18, 0x01, 0x20, 0x01, 0x3a, 0x40];
    value.extend_from_slice(&[b'z'; 64]);
    assert!(matches!(
        Commit::decode(&value),
        Err(Error::Malformed { .. })
    ));
    let a = repo();
    let node = a.graph().add(&[], &value).unwrap();
    let b = repo();
    b.graph().ingest(vec![node]).unwrap();
    b.put("d", "after", "1").unwrap();
    assert_eq!(b.get("d", "after").unwrap().unwrap().value, b"1");
    assert!(b.fsck(&mut |_, _| {}).unwrap().is_ok());
}

#[test]
fn a_payload_with_a_file_row_that_names_no_blob_is_refused() {
    let bad_file = Operation {
        kind: OpKind::Put,
        content: Content::File,
        dataset: b"f".to_vec(),
        key: b"x".to_vec(),
        value: Some(b"not a file reference".to_vec()),
    };
    let err = repo()
        .add_payload(&[bad_file.encode()])
        .expect_err("bad file row");
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}
