//! The fuzz targets' checks (`fuzz/src/lib.rs`), run by the ordinary test suite on a stable
//! toolchain: every committed seed (`fuzz/seeds/<target>/`) through its target's check, and
//! every finding of a fuzzing run as a named test that replays the input that found it
//! (`docs/fuzzing.md` lists them).
//!
//! The seeds are written by `write_seeds` below (ignored; run it after changing an encoding:
//! `cargo test --release --test fuzz_regressions -- --ignored write_seeds`) from the captured
//! hyperlog sessions and vectors in `tests/fixtures/`, from values strata encodes itself,
//! and from small hand-written tables.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

#[test]
fn every_seed_passes_its_target() {
    let mut failures = Vec::new();
    for (target, check) in checks::TARGETS {
        let mut files: Vec<PathBuf> = fs::read_dir(seeds_dir().join(target))
            .unwrap_or_else(|e| panic!("fuzz/seeds/{target}: {e}"))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "fuzz/seeds/{target} is empty");
        for file in files {
            let data = fs::read(&file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seeds failing their check: {failures:?}"
    );
}

/// Every target has a seeds folder and a fuzz target of its name.
#[test]
fn every_target_is_declared() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    for (target, _) in checks::TARGETS {
        assert!(
            manifest.contains(&format!(
                "name = \"{target}\"\npath = \"fuzz_targets/{target}.rs\""
            )),
            "fuzz/Cargo.toml lacks the target {target}"
        );
        assert!(seeds_dir().join(target).is_dir(), "no fuzz/seeds/{target}");
    }
}

// ---------------------------------------------------------------------------------------
// Seeds.

/// A seed set being written: one folder per target.
struct Seeds {
    root: PathBuf,
    count: usize,
}

impl Seeds {
    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
        self.count += 1;
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The body of a captured frame (its hex has the varint length prefix).
fn frame_body(frame: &[u8]) -> Vec<u8> {
    let mut rest = frame;
    let len = prost::encoding::decode_varint(&mut rest).unwrap();
    assert_eq!(len as usize, rest.len());
    rest.to_vec()
}

fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for message in messages {
        strata::internals::decoders::encode_frame(message, &mut wire);
    }
    wire
}

/// Rewrites `fuzz/seeds/` (files of the same name are replaced; others, such as a
/// finding's input, are kept).
#[test]
#[ignore = "writes fuzz/seeds; run by hand after an encoding changes"]
fn write_seeds() {
    use strata::internals::decoders::*;
    use strata::internals::keys::{self, KeyBuf};
    use strata::proto::strata::VersionRecord;
    use strata::{Commit, CommitType, Content, Entry, FileRef, OpKind, Operation, Payload};

    let mut seeds = Seeds {
        root: seeds_dir(),
        count: 0,
    };

    // The captured hyperlog sessions: each direction as one stream (frame), and each
    // distinct message (message, node).
    let sessions = fixture("hyperlog-sessions.json");
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for session in sessions["sessions"].as_array().unwrap() {
        let name = session["name"].as_str().unwrap();
        for dir in ["a_to_b", "b_to_a"] {
            let stream: Vec<u8> = session["frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["dir"] == dir)
                .flat_map(|f| unhex(f["hex"].as_str().unwrap()))
                .collect();
            seeds.add("frame", &format!("session-{name}-{dir}"), &stream);
        }
        for frame in session["frames"].as_array().unwrap() {
            let body = frame_body(&unhex(frame["hex"].as_str().unwrap()));
            if !messages.contains(&body) {
                messages.push(body);
            }
        }
    }
    for (i, body) in messages.iter().enumerate() {
        seeds.add("message", &format!("hyperlog-{i:02}-type{}", body[0]), body);
        if body[0] == 3 {
            seeds.add("node", &format!("wire-{i:02}"), &body[1..]);
        }
    }

    // The captured vectors: stored nodes, stored log entries and hyperlog's keys.
    let vectors = fixture("hyperlog-vectors.json");
    for node in vectors["nodes"].as_array().unwrap() {
        let name = node["name"].as_str().unwrap();
        seeds.add(
            "node",
            &format!("stored-{name}"),
            &unhex(node["stored_value_hex"].as_str().unwrap()),
        );
    }
    let mut entries = Vec::new();
    for (dump, rows) in vectors["db_dumps"].as_object().unwrap() {
        for (i, row) in rows.as_array().unwrap().iter().enumerate() {
            let key = row["key"].as_str().unwrap();
            let value = unhex(row["value_hex"].as_str().unwrap());
            if i < 3 {
                seeds.add("keys", &format!("hyperlog-{dump}-{i}"), key.as_bytes());
            }
            if key.starts_with("!logs!") {
                seeds.add("runs", &format!("hyperlog-entry-{dump}-{i:02}"), &value);
                entries.push(Entry::decode(&value).unwrap());
            }
        }
    }

    // strata's extension messages, and a strata session's opening in one stream.
    let hash = "ab".repeat(32);
    let operation = Operation {
        kind: OpKind::Put,
        content: Content::Row,
        dataset: b"sites".to_vec(),
        key: b"A".to_vec(),
        value: Some(br#"{"depth":3}"#.to_vec()),
    };
    let file = FileRef {
        hash: "cd".repeat(32),
        size: 1234,
    };
    let file_op = Operation {
        kind: OpKind::Put,
        content: Content::File,
        dataset: b"photos".to_vec(),
        key: b"img\x00\xff".to_vec(),
        value: Some(file.encode()),
    };
    let delete = Operation {
        kind: OpKind::Delete,
        content: Content::Row,
        dataset: Vec::new(),
        key: b"gone".to_vec(),
        value: None,
    };
    let hellos = [
        Hello {
            payload: Payload::Everything,
            repository: true,
        },
        Hello {
            payload: Payload::RowsOnly,
            repository: true,
        },
        Hello {
            payload: Payload::Datasets(vec![b"sites".to_vec(), Vec::new(), b"\xff!".to_vec()]),
            repository: false,
        },
        Hello {
            payload: Payload::GraphOnly,
            repository: false,
        },
    ];
    for (i, hello) in hellos.iter().enumerate() {
        seeds.add("hello", &format!("hello-{i}"), &hello.encode());
    }
    seeds.add("hello", "plain-metadata", b"m");
    let extension = [
        Message::Handshake(Handshake {
            version: 1,
            mode: Some("pull".into()),
            metadata: Some(hellos[0].encode()),
            live: true,
        }),
        Message::WantsDone,
        Message::WantPayload { hash: hash.clone() },
        Message::Payload {
            hash: hash.clone(),
            operations: vec![operation.encode(), file_op.encode(), delete.encode()],
            last: true,
        },
        Message::NoPayload { hash: hash.clone() },
        Message::WantFile {
            version: "ef".repeat(32),
            dataset: b"photos".to_vec(),
            key: b"img".to_vec(),
            hash: file.hash.clone(),
        },
        Message::FileData {
            hash: file.hash.clone(),
            data: vec![7; 40],
            last: false,
        },
        Message::NoFile {
            hash: file.hash.clone(),
        },
        Message::PayloadDone,
        Message::Unknown(99),
    ];
    let encoded: Vec<Vec<u8>> = extension.iter().map(Message::encode).collect();
    for (i, body) in encoded.iter().enumerate() {
        seeds.add("message", &format!("strata-{i:02}-type{}", body[0]), body);
    }
    seeds.add("frame", "strata-extensions", &framed(&encoded));
    // Prefixes at and past the limit, and a varint that never ends.
    seeds.add("frame", "over-the-limit", &[0xe9, 0x07, 1, 2, 3]);
    seeds.add("frame", "gigabytes", &[0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
    seeds.add("frame", "endless-varint", &[0x80; 12]);

    // Commits, operations and file references.
    let commits = [
        Commit {
            kind: CommitType::Data,
            message: Some("import sites.csv".into()),
            modified: 1_700_000_000_000,
            puts: 2,
            deletes: 1,
            files: 1,
            operations: Some(hash.clone()),
        },
        Commit {
            kind: CommitType::Init,
            message: None,
            modified: 0,
            puts: 0,
            deletes: 0,
            files: 0,
            operations: None,
        },
        Commit {
            kind: CommitType::TransactionEnd,
            message: Some(String::new()),
            modified: u64::MAX,
            puts: 1,
            deletes: 0,
            files: 0,
            operations: Some("0".repeat(64)),
        },
    ];
    for (i, commit) in commits.iter().enumerate() {
        seeds.add("commit", &format!("commit-{i}"), &commit.encode());
    }
    for (name, op) in [("put", &operation), ("file", &file_op), ("delete", &delete)] {
        seeds.add("operation", &format!("operation-{name}"), &op.encode());
    }
    seeds.add("operation", "file-ref", &file.encode());

    // The version index's values.
    let row_entries = [
        IndexRowEntry {
            iseq: 7,
            deleted: false,
            file: false,
            covers_older: true,
            version: "12".repeat(32),
            value: br#"{"depth":3}"#.to_vec(),
        },
        IndexRowEntry {
            iseq: 7,
            deleted: true,
            file: false,
            covers_older: false,
            version: "not-a-hash".into(),
            value: Vec::new(),
        },
        IndexRowEntry {
            iseq: 7,
            deleted: false,
            file: true,
            covers_older: true,
            version: "34".repeat(32),
            value: file.encode(),
        },
    ];
    for (i, entry) in row_entries.iter().enumerate() {
        seeds.add("index", &format!("row-entry-{i}"), &entry.encode());
    }
    let record = IndexRecord {
        iseq: 7,
        inner: VersionRecord {
            node: "56".repeat(32),
            change: 12,
            log: "0123456789abcdef0123456789abcdef".into(),
            modified: 1_700_000_000_000,
            operations: Some(hash.clone()),
            parents: vec![5, 6],
            rows: 100,
            files: 2,
            versions: 9,
            size: 4096,
            excluded_base: Some(3),
            excluded: vec![1, 2, 4, 4],
        },
    };
    seeds.add("index", "version-record", &record.encode());

    // Changelog runs.
    let node_keys: Vec<String> = vectors["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect();
    let refs: Vec<&str> = node_keys.iter().map(String::as_str).collect();
    seeds.add("runs", "keys-fixed-width", &encode_keys(&refs));
    seeds.add(
        "runs",
        "keys-variable-width",
        &encode_keys(&["a", "bc", &node_keys[0]]),
    );
    seeds.add("runs", "entries", &encode_entries(&entries));

    // Index keys of every family, with the bytes that need escaping.
    let keys = [
        (
            "rows",
            KeyBuf::new(keys::ROWS)
                .bytes(b"sites")
                .bytes(b"a\x00b\xff!")
                .u64_desc(7),
        ),
        (
            "logs",
            KeyBuf::new(keys::LOGS).bytes(b"0123abcd").u64_desc(1),
        ),
        ("changes", KeyBuf::new(keys::CHANGES).u64_desc(1024)),
        ("versions", KeyBuf::new(keys::VERSIONS).u64_desc(3)),
        ("pending", KeyBuf::new(keys::PENDING).u64(9)),
        (
            "waits",
            KeyBuf::new(keys::WAITS)
                .raw(&[1])
                .bytes(hash.as_bytes())
                .u64(9),
        ),
        ("datasets", KeyBuf::new(keys::DATASETS).bytes(b"")),
        (
            "parts",
            KeyBuf::new(b"")
                .bytes(b"\x00")
                .bytes(b"\x00\x01")
                .bytes(b"z"),
        ),
    ];
    for (name, key) in keys {
        seeds.add("keys", &format!("strata-{name}"), &key.finish());
    }

    // Tables: the documented rules' cases.
    let ndjson: &[(&str, &str)] = &[
        (
            "column",
            "{\"_key\":\"k1\",\"id\":\"other\"}\n{\"_key\":\"k2\",\"_value\":42}\n",
        ),
        (
            "column-raw-and-hex",
            "{\"_key\":{\"hex\":\"00ff\"},\"_raw\":\"a b\"}\r\n{ \"_key\" : \"k\" , \"_value\" : [ 1 ] }\n",
        ),
        (
            "fields",
            "\u{feff}{\"id\":\"007\",\"n\":1.10,\"x\":1E+400}\n\n{\"id\":7,\"n\":true}\n",
        ),
        (
            "escapes",
            "{\"id\":\"a,b\\\\\",\"n\":\"c\",\"s\":\"\\u00e9\\n\"}\n{\"id\":\"x\",\"id\":\"y\",\"n\":\"z\"}\n",
        ),
        ("errors", "{\"id\":null}\n[1]\n{\"_key\":\"\"}\n"),
    ];
    for (name, text) in ndjson {
        seeds.add("ndjson", name, text.as_bytes());
    }
    let csv: &[(&str, &str)] = &[
        (
            "fields",
            "id,n,name\n007,1,Spring\n008,2,\"a, \"\"quoted\"\" name\"\n",
        ),
        ("column", "_key,_value,a\r\nk1,,x\r\nk2,\"[1, 2]\",\r\n"),
        (
            "multiline",
            "\u{feff}id,n,text\n1,2,\"line one\r\nline two\"\n",
        ),
        ("composite", "n,id\n\"a,b\",c\\d\n"),
        ("errors", "id,id\n1,2\n"),
        ("ragged", "id,n\n1\n2,3,4\n"),
    ];
    for (name, text) in csv {
        seeds.add("csv", name, text.as_bytes());
    }

    // Sync files: rows and a file of two devices, the whole history and the part after
    // the first commit.
    let a = strata::Repository::in_memory().unwrap();
    a.put("sites", "A", "1").unwrap();
    a.put_file("photos", "p.jpg", &mut &b"jpeg"[..]).unwrap();
    let b = strata::Repository::in_memory().unwrap();
    strata::sync_in_memory(&a, &b).unwrap();
    b.put("sites", "B", "2").unwrap();
    let mut whole = Vec::new();
    strata::SyncFile::new().write(&b, &mut whole).unwrap();
    seeds.add("sync_file", "whole", &whole);
    let since: Vec<(String, u64)> = a.graph().logs().unwrap();
    let mut part = Vec::new();
    strata::SyncFile::new()
        .since(since)
        .write(&b, &mut part)
        .unwrap();
    seeds.add("sync_file", "since", &part);
    println!(
        "{} seeds written under {}",
        seeds.count,
        seeds.root.display()
    );
}

// ---------------------------------------------------------------------------------------
// Findings: each input as the fuzzer found it (minimised), through its target's check and
// the fixed behaviour it found wrong. docs/fuzzing.md lists them.

/// `operation`: a delete whose bytes name file content (`28 02`) decoded as a delete of
/// file content, but encodes (as dat-core does) without content, so it read back as a
/// row delete. Fixed in src/dataset/commit.rs: a delete's content is always `Row`.
#[test]
fn finding_delete_naming_file_content_round_trips() {
    let input = unhex("1a00 2802 0802");
    checks::operation(&input);
    let op = strata::Operation::decode(&input).unwrap();
    assert_eq!(
        (op.kind, op.content),
        (strata::OpKind::Delete, strata::Content::Row)
    );
}

/// `runs`: a variable-width run of two empty node keys decoded, but two empty keys encode
/// as the run of no keys. Fixed in src/store/runs.rs: node keys are never empty, so a run
/// holding one is damage.
#[test]
fn finding_run_of_empty_node_keys_is_refused() {
    let input = [1, 0, 0];
    checks::runs(&input);
    assert!(strata::internals::decoders::decode_keys(&input, 0).is_err());
}

/// `message`: a `WantFile` whose dataset field (3) came twice and whose key field (4) was
/// missing was read as dataset and key, in arrival order; with the fields in the other
/// order the dataset was taken for the key. Fixed in src/replicate/message.rs: each field
/// by its number, the last of a repeated one counting, as protobuf reads them.
#[test]
fn finding_want_file_reads_dataset_and_key_by_field_number() {
    use strata::internals::decoders::Message;

    let input = unhex("14 0a0100 1200 1a00 1a00");
    checks::message(&input);
    assert!(Message::decode(&input).is_err(), "no key field");

    // hash "h", version "v", key (4) "K" before dataset (3) "D".
    let swapped = unhex("14 0a0168 120176 22014b 1a0144");
    checks::message(&swapped);
    assert_eq!(
        Message::decode(&swapped).unwrap(),
        Message::WantFile {
            version: "v".into(),
            dataset: b"D".to_vec(),
            key: b"K".to_vec(),
            hash: "h".into(),
        }
    );
}

/// `commit`: a commit counting `u64::MAX` files and one put overflowed the sum of its
/// counts (a panic with overflow checks; without them the sum wrapped to 0, and a commit
/// that counts operations but names none was accepted). Fixed in src/dataset/commit.rs: the
/// sum saturates (and so does the payload exchange's count of operations to receive).
#[test]
fn finding_commit_counts_that_overflow_are_refused_without_a_hash() {
    let input = unhex("30 ffffffffffffffffff01 2001");
    checks::commit(&input);
    assert!(strata::Commit::decode(&input).is_err());
    let commit = strata::Commit::decode(&unhex(&format!(
        "30 ffffffffffffffffff01 2001 3a40{}",
        hex::encode("ab".repeat(32))
    )))
    .unwrap();
    assert_eq!(commit.operation_count(), u64::MAX);
}
