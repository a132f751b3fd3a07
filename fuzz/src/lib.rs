//! The checks behind strata's fuzz targets, one function per target.
//!
//! A fuzz target (`fuzz_targets/<name>.rs`) hands its input to the function of the same
//! name here; `tests/fuzz_regressions.rs` in the main crate includes this file and replays
//! every committed seed (`seeds/<name>/`) and every past finding through the same
//! function, so the ordinary test suite re-checks them on a stable toolchain without
//! cargo-fuzz.
//!
//! Each function decodes bytes that come from outside (a peer, a file, a damaged disk) and
//! panics (a finding) when a decoder breaks a property it promises:
//!
//! * it never panics, and refuses bad input with a `strata::Error`;
//! * what it accepts survives a round trip: decode, encode, decode gives the same value,
//!   and the encoding of a decoded value is canonical (encoding it again changes nothing);
//! * what it accepts means what an independent reader (prost, with the schema written out
//!   below) finds in the same bytes: a decoder never takes one field for another;
//! * a length it reads is checked against the bytes that are there before anything is
//!   allocated for it (the CI run caps every allocation with `-malloc_limit_mb`).
//!
//! The table readers are checked against the promise of `src/table/rules.md`: whatever
//! rows a reader yields, a writer of the same format and keys writes, and reading that
//! back yields the same rows, byte for byte.

use strata::internals::decoders::{
    FrameDecoder, Hello, IndexRecord, IndexRowEntry, Message, decode_entries, decode_keys,
    encode_entries, encode_frame, encode_keys, key_count,
};
use strata::internals::keys::{self, KeyBuf, KeyReader};
use strata::{Commit, Entry, FileRef, KeyFields, Node, Operation, TableFormat, TableKeys};
use strata::{OpKind, TableReader, TableWriter};

/// A target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every target: its name (the fuzz target's and its seeds folder's) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("frame", frame),
    ("message", message),
    ("hello", hello),
    ("node", node),
    ("commit", commit),
    ("operation", operation),
    ("index", index),
    ("runs", runs),
    ("keys", key_parts),
    ("ndjson", ndjson),
    ("csv", csv),
    ("sync_file", sync_file),
];

/// The frame limit the `frame` target decodes with: small, so that inputs of a few bytes
/// reach both sides of it.
const MAX_FRAME: usize = 1000;

/// What a frame decoder made of a stream.
#[derive(Debug, PartialEq)]
struct Frames {
    frames: Vec<Vec<u8>>,
    error: Option<String>,
    /// The stream ended inside a frame.
    partial: bool,
}

/// Feeds `pieces` to a frame decoder, taking every frame after each piece.
fn read_frames<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Frames {
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME, "a frame over the limit");
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(
                        matches!(error, strata::Error::Malformed { .. }),
                        "{error:?}"
                    );
                    return Frames {
                        frames,
                        error: Some(error.to_string()),
                        partial: decoder.has_partial(),
                    };
                }
            }
        }
    }
    Frames {
        frames,
        error: None,
        partial: decoder.has_partial(),
    }
}

/// The replication stream's framing (varint length prefixes): the same frames, the same
/// error and the same leftover whatever pieces the transport cuts the stream into, and the
/// frames read re-encode to a stream that reads back to them.
pub fn frame(data: &[u8]) {
    let whole = read_frames([data]);
    for size in [1, 7] {
        assert_eq!(
            read_frames(data.chunks(size)),
            whole,
            "pieces of {size} bytes"
        );
    }
    let mut wire = Vec::new();
    for frame in &whole.frames {
        encode_frame(frame, &mut wire);
    }
    let again = read_frames([&wire[..]]);
    assert_eq!(again.frames, whole.frames);
    assert_eq!((again.error, again.partial), (None, false));
}

/// The reference reading of the messages' bodies: prost with the schemas written out from
/// `proto/hyperlog.proto` and `docs/protocol.md`, numbers as u64 (strata's width).
mod reference {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Handshake {
        #[prost(uint64, required, tag = "1")]
        pub version: u64,
        #[prost(string, optional, tag = "2")]
        pub mode: Option<String>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub metadata: Option<Vec<u8>>,
        #[prost(bool, optional, tag = "4")]
        pub live: Option<bool>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Log {
        #[prost(string, required, tag = "1")]
        pub log: String,
        #[prost(uint64, required, tag = "2")]
        pub seq: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(uint64, required, tag = "1")]
        pub change: u64,
        #[prost(string, required, tag = "2")]
        pub key: String,
        #[prost(string, required, tag = "3")]
        pub log: String,
        #[prost(uint64, optional, tag = "4")]
        pub seq: Option<u64>,
        #[prost(bytes = "vec", required, tag = "5")]
        pub value: Vec<u8>,
        #[prost(string, repeated, tag = "6")]
        pub links: Vec<String>,
        #[prost(bytes = "vec", optional, tag = "7")]
        pub identity: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "8")]
        pub signature: Option<Vec<u8>>,
    }

    /// Every strata extension message: field 1 is the hash; 2, 3 and 4 depend on the type.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Extension {
        #[prost(string, required, tag = "1")]
        pub hash: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Payload {
        #[prost(string, required, tag = "1")]
        pub hash: String,
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub operations: Vec<Vec<u8>>,
        #[prost(bool, optional, tag = "3")]
        pub last: Option<bool>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WantFile {
        #[prost(string, required, tag = "1")]
        pub hash: String,
        #[prost(string, optional, tag = "2")]
        pub version: Option<String>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub dataset: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub key: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileData {
        #[prost(string, required, tag = "1")]
        pub hash: String,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub data: Option<Vec<u8>>,
        #[prost(bool, optional, tag = "3")]
        pub last: Option<bool>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Commit {
        #[prost(uint64, optional, tag = "1")]
        pub kind: Option<u64>,
        #[prost(string, optional, tag = "2")]
        pub message: Option<String>,
        #[prost(uint64, optional, tag = "3")]
        pub modified: Option<u64>,
        #[prost(uint64, optional, tag = "4")]
        pub puts: Option<u64>,
        #[prost(uint64, optional, tag = "5")]
        pub deletes: Option<u64>,
        #[prost(uint64, optional, tag = "6")]
        pub files: Option<u64>,
        #[prost(string, optional, tag = "7")]
        pub operations: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        #[prost(uint64, required, tag = "1")]
        pub kind: u64,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub dataset: Option<Vec<u8>>,
        #[prost(bytes = "vec", required, tag = "3")]
        pub key: Vec<u8>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub value: Option<Vec<u8>>,
        #[prost(uint64, optional, tag = "5")]
        pub content: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct File {
        #[prost(string, required, tag = "1")]
        pub key: String,
        #[prost(uint64, optional, tag = "2")]
        pub size: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(uint64, required, tag = "1")]
        pub change: u64,
        #[prost(string, required, tag = "2")]
        pub node: String,
        #[prost(string, repeated, tag = "3")]
        pub links: Vec<String>,
        #[prost(string, optional, tag = "4")]
        pub log: Option<String>,
        #[prost(uint64, optional, tag = "5")]
        pub seq: Option<u64>,
    }
}

/// The reference reading of `bytes`, which strata accepted, so it must exist.
fn reference<T: prost::Message + Default>(bytes: &[u8]) -> T {
    T::decode(bytes).unwrap_or_else(|e| panic!("strata accepted what prost refuses: {e}"))
}

/// Checks that a decoded value survives a round trip and encodes canonically.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> strata::Result<T>,
) {
    let encoded = encode(value);
    let again = decode(&encoded).unwrap_or_else(|e| panic!("its own encoding refused: {e}"));
    assert_eq!(&again, value, "decode(encode(x)) != x");
    assert_eq!(encode(&again), encoded, "the encoding is not canonical");
}

/// One replication message (a frame's bytes): hyperlog's and strata's extensions.
pub fn message(data: &[u8]) {
    let Ok(decoded) = Message::decode(data) else {
        return;
    };
    round_trip(&decoded, Message::encode, Message::decode);
    let body = &data[1..];
    match &decoded {
        Message::Handshake(h) => {
            let r: reference::Handshake = reference(body);
            assert_eq!(
                (r.version, &r.mode, &r.metadata, r.live.unwrap_or(false)),
                (h.version, &h.mode, &h.metadata, h.live)
            );
        }
        Message::Have(head) | Message::Want(head) => {
            let r: reference::Log = reference(body);
            assert_eq!((&r.log, r.seq), (&head.log, head.seq));
        }
        Message::Node(node) => same_node(node, body),
        Message::WantPayload { hash } | Message::NoPayload { hash } | Message::NoFile { hash } => {
            assert_eq!(&reference::<reference::Extension>(body).hash, hash);
        }
        Message::Payload {
            hash,
            operations,
            last,
        } => {
            let r: reference::Payload = reference(body);
            assert_eq!(
                (&r.hash, &r.operations, r.last.unwrap_or(false)),
                (hash, operations, *last)
            );
        }
        Message::WantFile {
            version,
            dataset,
            key,
            hash,
        } => {
            let r: reference::WantFile = reference(body);
            assert_eq!(
                (
                    &r.hash,
                    r.version.as_ref(),
                    r.dataset.as_ref(),
                    r.key.as_ref()
                ),
                (hash, Some(version), Some(dataset), Some(key))
            );
        }
        Message::FileData { hash, data, last } => {
            let r: reference::FileData = reference(body);
            assert_eq!(
                (&r.hash, r.data.unwrap_or_default(), r.last.unwrap_or(false)),
                (hash, data.clone(), *last)
            );
        }
        Message::SentHeads
        | Message::SentWants
        | Message::WantsDone
        | Message::PayloadDone
        | Message::Unknown(_) => {}
    }
}

/// What the reference reads in `bytes` is `node`.
fn same_node(node: &Node, bytes: &[u8]) {
    let r: reference::Node = reference(bytes);
    assert_eq!(
        (r.change, &r.key, &r.log, r.seq.unwrap_or(0), &r.value),
        (node.change, &node.key, &node.log, node.seq, &node.value)
    );
    assert_eq!(
        (&r.links, &r.identity, &r.signature),
        (&node.links, &node.identity, &node.signature)
    );
}

/// The strata hello in a handshake's metadata.
pub fn hello(data: &[u8]) {
    // What every hello starts with (payload.rs's MAGIC).
    const MAGIC: &[u8] = b"strata\0";
    match Hello::decode(data) {
        Ok(None) => assert!(!data.starts_with(MAGIC), "a hello taken for other metadata"),
        Ok(Some(hello)) => {
            assert!(data.starts_with(MAGIC));
            let encode =
                |hello: &Option<Hello>| hello.as_ref().map(Hello::encode).unwrap_or_default();
            round_trip(&Some(hello), encode, Hello::decode);
        }
        Err(_) => assert!(data.starts_with(MAGIC), "other metadata refused"),
    }
}

/// A graph node as stored and sent (hyperlog's `Node`).
pub fn node(data: &[u8]) {
    if let Ok(decoded) = Node::decode(data) {
        round_trip(&decoded, Node::encode, Node::decode);
        same_node(&decoded, data);
    }
}

/// A commit node's value (dat-core's `Commit`).
pub fn commit(data: &[u8]) {
    let Ok(decoded) = Commit::decode(data) else {
        return;
    };
    round_trip(&decoded, Commit::encode, Commit::decode);
    let r: reference::Commit = reference(data);
    assert_eq!(
        (
            r.message.as_ref(),
            r.modified.unwrap_or(0),
            r.puts.unwrap_or(0),
            r.deletes.unwrap_or(0),
            r.files.unwrap_or(0)
        ),
        (
            decoded.message.as_ref(),
            decoded.modified,
            decoded.puts,
            decoded.deletes,
            decoded.files
        )
    );
    // dat-core writes "" for no operations.
    let hash = r.operations.filter(|h| !h.is_empty());
    assert_eq!(hash, decoded.operations);
    match &decoded.operations {
        Some(hash) => assert!(
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "operations hash {hash:?}"
        ),
        None => assert_eq!(
            (decoded.puts, decoded.deletes, decoded.files),
            (0, 0, 0),
            "a commit counts operations it does not name"
        ),
    }
}

/// An operation (dat-core's `Operation`) and a file row's value (`File`), from the same
/// bytes: a file reference travels as an operation's value.
pub fn operation(data: &[u8]) {
    if let Ok(decoded) = Operation::decode(data) {
        round_trip(&decoded, Operation::encode, Operation::decode);
        let r: reference::Operation = reference(data);
        let kind = match decoded.kind {
            OpKind::Put => 1,
            OpKind::Delete => 2,
        };
        assert_eq!(
            (r.kind, r.dataset.unwrap_or_default(), &r.key),
            (kind, decoded.dataset.clone(), &decoded.key)
        );
        // A put without a value puts the empty value; a delete has none.
        let value = match decoded.kind {
            OpKind::Put => Some(r.value.unwrap_or_default()),
            OpKind::Delete => None,
        };
        assert_eq!(value, decoded.value);
    }
    if let Ok(file) = FileRef::decode(data) {
        round_trip(&file, FileRef::encode, FileRef::decode);
        let r: reference::File = reference(data);
        assert_eq!((r.key, r.size.unwrap_or(0)), (file.hash, file.size));
    }
}

/// The version index's stored values: a row entry and a version record, from the same
/// bytes (both are read back from disk, where damage can leave anything).
pub fn index(data: &[u8]) {
    const ISEQ: u64 = 7;
    if let Ok(entry) = IndexRowEntry::decode(ISEQ, data) {
        round_trip(&entry, IndexRowEntry::encode, |b| {
            IndexRowEntry::decode(ISEQ, b)
        });
    }
    if let Ok(record) = IndexRecord::decode(ISEQ, data) {
        round_trip(&record, IndexRecord::encode, |b| {
            IndexRecord::decode(ISEQ, b)
        });
    }
}

/// Changelog runs: a run of node keys, a run of log entries, and one log entry, from the
/// same bytes.
pub fn runs(data: &[u8]) {
    if let Ok(keys) = decode_keys(data, 0) {
        assert_eq!(key_count(data).ok(), Some(keys.len() as u64), "key_count");
        for from in [1, keys.len() / 2, keys.len(), keys.len() + 1] {
            let tail = decode_keys(data, from).expect("a run decodes from any position");
            assert_eq!(
                tail,
                keys.get(from..).unwrap_or_default(),
                "keys from {from}"
            );
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let encoded = encode_keys(&refs);
        assert_eq!(decode_keys(&encoded, 0).ok(), Some(keys), "keys round trip");
    }
    if let Ok(entries) = decode_entries(data) {
        let encoded = encode_entries(&entries);
        assert_eq!(
            decode_entries(&encoded).ok(),
            Some(entries),
            "entries round trip"
        );
    }
    if let Ok(entry) = Entry::decode(data) {
        round_trip(&entry, Entry::encode, Entry::decode);
        let r: reference::Entry = reference(data);
        assert_eq!(
            (r.change, r.node, r.links),
            (entry.change, entry.node, entry.links)
        );
    }
}

/// One part of a key, as `store/keys.rs` writes it.
#[derive(Clone, Copy)]
enum Part {
    Bytes,
    Number,
    NumberDesc,
}

/// The key families whose keys are read back part by part, with their parts, as
/// `store/index_tables.rs`, `graph_tables.rs` and `runs.rs` read them.
fn families() -> Vec<(Vec<u8>, &'static [Part])> {
    let waits = |kind: u8| [keys::WAITS, &[kind]].concat();
    vec![
        (
            keys::ROWS.to_vec(),
            &[Part::Bytes, Part::Bytes, Part::NumberDesc],
        ),
        (keys::LOGS.to_vec(), &[Part::Bytes, Part::NumberDesc]),
        (keys::CHANGES.to_vec(), &[Part::NumberDesc]),
        (keys::VERSIONS.to_vec(), &[Part::NumberDesc]),
        (keys::PENDING.to_vec(), &[Part::Number]),
        // `!waits!<kind>`: 0 waits for a parent, 1 for a payload.
        (waits(0), &[Part::Bytes, Part::Number]),
        (waits(1), &[Part::Bytes, Part::Number]),
        (keys::DATASETS.to_vec(), &[Part::Bytes]),
    ]
}

/// A decoded part.
#[derive(Debug)]
enum Value {
    Bytes(Vec<u8>),
    Number(u64),
}

/// Reads `parts` off `reader`.
fn read_parts(reader: &mut KeyReader<'_>, parts: &[Part]) -> strata::Result<Vec<Value>> {
    parts
        .iter()
        .map(|part| {
            Ok(match part {
                Part::Bytes => Value::Bytes(reader.bytes()?),
                Part::Number => Value::Number(reader.u64()?),
                Part::NumberDesc => Value::Number(reader.u64_desc()?),
            })
        })
        .collect()
}

/// The key bytes of `values` under `family`.
fn write_parts(family: &[u8], parts: &[Part], values: &[Value]) -> Vec<u8> {
    let mut key = KeyBuf::new(family);
    for (part, value) in parts.iter().zip(values) {
        key = match (part, value) {
            (Part::Bytes, Value::Bytes(bytes)) => key.bytes(bytes),
            (Part::Number, Value::Number(n)) => key.u64(*n),
            (Part::NumberDesc, Value::Number(n)) => key.u64_desc(*n),
            _ => panic!("a value read as another part"),
        };
    }
    key.finish()
}

/// Escaped parts back to back at the front of `bytes`, as far as they go, and how many
/// bytes are left after them.
fn escaped_parts(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut reader = KeyReader::new(bytes, b"").expect("every key has the empty prefix");
    let mut parts = Vec::new();
    while let Ok(part) = reader.bytes() {
        parts.push(part);
    }
    (parts, reader.rest().len())
}

/// Index keys: every family's keys read back to the parts that write the same bytes, and
/// escaped parts keep their order (keys sort as their parts do).
pub fn key_parts(data: &[u8]) {
    let (parts, rest) = escaped_parts(data);
    let mut key = KeyBuf::new(b"");
    for part in &parts {
        key = key.bytes(part);
    }
    let mut written = key.finish();
    written.extend_from_slice(&data[data.len() - rest..]);
    assert_eq!(written, data, "escaped parts written again");

    let (a, b) = data.split_at(data.len() / 2);
    if let ((pa, 0), (pb, 0)) = (escaped_parts(a), escaped_parts(b)) {
        assert_eq!(a.cmp(b), pa.cmp(&pb), "order of {pa:?} and {pb:?}");
    }

    for (family, parts) in families() {
        // The input as a key of the family, and as what follows the family's prefix.
        for bytes in [data.to_vec(), [&family[..], data].concat()] {
            let Ok(mut reader) = KeyReader::new(&bytes, &family) else {
                continue;
            };
            let Ok(values) = read_parts(&mut reader, parts) else {
                continue;
            };
            let rest = reader.rest().len();
            let mut written = write_parts(&family, parts, &values);
            written.extend_from_slice(&bytes[bytes.len() - rest..]);
            assert_eq!(
                written,
                bytes,
                "a key of {}",
                String::from_utf8_lossy(&family)
            );
        }
    }

    if let Ok(n) = keys::decode_u64(data, "counter") {
        assert_eq!(keys::encode_u64(n)[..], data[..]);
    }
}

/// The key layouts the table targets read every input with.
fn table_keys() -> [TableKeys; 3] {
    let fields = |names: &[&str]| TableKeys::Fields(KeyFields::new(names).expect("named"));
    [TableKeys::Column, fields(&["id"]), fields(&["id", "n"])]
}

/// Rows as a table reader yields them, up to the first error.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads `text` as a table; the rows, and the error that ended them if one did.
fn read_table(text: &[u8], format: Option<TableFormat>, keys: &TableKeys) -> (Rows, bool) {
    let reader = match TableReader::new(text, format, keys.clone(), "fuzz") {
        Ok(reader) => reader,
        Err(_) => return (Vec::new(), true),
    };
    let mut rows = Vec::new();
    for row in reader {
        match row {
            Ok(row) => rows.push(row),
            Err(_) => return (rows, true),
        }
    }
    (rows, false)
}

/// A table read in `format`, each way keys can be: the rows written in the same format
/// and keys read back to the same rows, and a reader that sniffs the format reads what one
/// told the format does when the sniffing rule (the first byte past white space and a
/// byte-order mark is `{`) picks that format.
fn table(data: &[u8], format: TableFormat) {
    let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let sniffed = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => TableFormat::Ndjson,
        _ => TableFormat::Csv,
    };
    for keys in table_keys() {
        let (rows, failed) = read_table(data, Some(format), &keys);
        if sniffed == format {
            assert_eq!(
                read_table(data, None, &keys),
                (rows.clone(), failed),
                "sniffed"
            );
        }
        let mut writer = TableWriter::new(Vec::new(), format, keys.clone(), false);
        if writer.needs_scan() {
            for (key, value) in &rows {
                writer
                    .scan(key, value)
                    .unwrap_or_else(|e| panic!("a row read refused by the writer: {e}"));
            }
        }
        for (key, value) in &rows {
            writer
                .write(key, value)
                .unwrap_or_else(|e| panic!("a row read refused by the writer: {e}"));
        }
        let text = writer.finish().expect("writing to memory");
        let (back, failed) = read_table(&text, Some(format), &keys);
        assert!(!failed, "the written table does not read back");
        assert_eq!(back, rows, "rows written and read back");
    }
}

/// NDJSON tables.
pub fn ndjson(data: &[u8]) {
    table(data, TableFormat::Ndjson);
}

/// CSV tables.
pub fn csv(data: &[u8]) {
    table(data, TableFormat::Csv);
}

/// `sync_file`: a sync file (`strata bundle apply`) applied to an empty repository is
/// refused whole, with an error and never a panic, or applied, leaving a repository that
/// passes fsck. Few logs are allowed, so that an input naming many cannot reach the
/// allocation limit the way a real one naming millions would be refused.
pub fn sync_file(data: &[u8]) {
    let repo = strata::Repository::in_memory().expect("an in-memory repository");
    let limits = strata::Limits {
        max_logs: 100,
        ..strata::Limits::default()
    };
    let applied = strata::SyncFile::new()
        .limits(limits)
        .apply(&repo, std::io::Cursor::new(data));
    if applied.is_ok() {
        let check = repo.fsck(&mut |_, _| {}).expect("fsck runs");
        assert!(
            check.is_ok(),
            "an applied sync file left problems: {:?}",
            check.problems
        );
    }
}
