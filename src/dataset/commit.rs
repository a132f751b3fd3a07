//! Commits and operations: what a graph node means to the dataset store.
//!
//! A write is one commit: a graph node whose value is a `Commit` (type, message, time,
//! counters, and the content hash of its operations). The operations themselves (`put` or
//! `delete` of a row or file, in a dataset, at a key) are stored content-addressed beside
//! the graph, so the graph replicates fast and the payload can travel later or not at all.
//!
//! Both messages are dat-core 6.0.2's (`proto/strata.proto`), encoded byte for byte as the
//! JS original does: declaration order (an `Operation`'s `content` comes first) and
//! "write every field that is set, even 0". The operations hash is the framed SHA-256 of
//! each encoded operation in order.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::graph::framed_update;
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};

/// What a commit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitType {
    /// An ordinary write (one or many operations).
    Data,
    /// dat-core's empty root commit; read as a commit without operations.
    Init,
    /// dat-core's multi-node transactions; strata writes a transaction as one commit and
    /// reads these as ordinary commits.
    /// The start of a dat-core multi-node transaction.
    TransactionStart,
    /// A commit inside a dat-core multi-node transaction.
    TransactionData,
    /// The end of a dat-core multi-node transaction.
    TransactionEnd,
}

impl CommitType {
    fn code(self) -> u64 {
        match self {
            CommitType::Data => 1,
            CommitType::TransactionStart => 2,
            CommitType::TransactionData => 3,
            CommitType::TransactionEnd => 4,
            CommitType::Init => 5,
        }
    }

    fn from_code(code: u64) -> Result<CommitType> {
        Ok(match code {
            1 => CommitType::Data,
            2 => CommitType::TransactionStart,
            3 => CommitType::TransactionData,
            4 => CommitType::TransactionEnd,
            5 => CommitType::Init,
            other => {
                return Err(Error::malformed(
                    "commit",
                    format!("unknown commit type {other}"),
                ));
            }
        })
    }
}

/// The value of a commit node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// What the commit is.
    pub kind: CommitType,
    /// The commit's message.
    pub message: Option<String>,
    /// Milliseconds since the Unix epoch, by the writer's clock.
    pub modified: u64,
    /// How many row puts it carries.
    pub puts: u64,
    /// How many deletes it carries.
    pub deletes: u64,
    /// How many file puts it carries.
    pub files: u64,
    /// Hex framed SHA-256 of the operations; `None` for a commit without operations.
    pub operations: Option<String>,
}

impl Commit {
    /// The number of operations the commit carries.
    pub fn operation_count(&self) -> u64 {
        // The counts are a writer's claims (a peer's commit can say anything): their sum
        // saturates rather than overflow.
        self.puts
            .saturating_add(self.deletes)
            .saturating_add(self.files)
    }

    /// Counts `op` among the operations the commit carries.
    pub(crate) fn count(&mut self, op: &Operation) {
        let counter = match (op.kind, op.content) {
            (OpKind::Delete, _) => &mut self.deletes,
            (OpKind::Put, Content::Row) => &mut self.puts,
            (OpKind::Put, Content::File) => &mut self.files,
        };
        *counter += 1;
    }

    /// dat-core's encoding, byte for byte (declaration order).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(96);
        put_varint(&mut buf, 1, self.kind.code());
        if let Some(message) = &self.message {
            put_bytes(&mut buf, 2, message.as_bytes());
        }
        put_varint(&mut buf, 3, self.modified);
        put_varint(&mut buf, 4, self.puts);
        put_varint(&mut buf, 5, self.deletes);
        put_varint(&mut buf, 6, self.files);
        if let Some(operations) = &self.operations {
            put_bytes(&mut buf, 7, operations.as_bytes());
        }
        buf
    }

    /// Decodes a commit; fields in any order, unknown fields refused.
    pub fn decode(bytes: &[u8]) -> Result<Commit> {
        let mut reader = FieldReader::new(bytes, "commit");
        let mut commit = Commit {
            kind: CommitType::Data,
            message: None,
            modified: 0,
            puts: 0,
            deletes: 0,
            files: 0,
            operations: None,
        };
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => commit.kind = CommitType::from_code(field.varint(&reader, number)?)?,
                2 => commit.message = Some(field.string(&reader, number)?),
                3 => commit.modified = field.varint(&reader, number)?,
                4 => commit.puts = field.varint(&reader, number)?,
                5 => commit.deletes = field.varint(&reader, number)?,
                6 => commit.files = field.varint(&reader, number)?,
                7 => {
                    let hash = field.string(&reader, number)?;
                    // dat-core decodes an absent field as "" and means "no operations".
                    if !hash.is_empty() && !is_hash(&hash) {
                        return Err(Error::malformed(
                            "commit",
                            "the operations hash is not 64 lowercase hex characters",
                        ));
                    }
                    commit.operations = (!hash.is_empty()).then_some(hash);
                }
                _ => return Err(reader.unexpected(number)),
            }
        }
        if commit.operations.is_none() && commit.operation_count() > 0 {
            return Err(Error::malformed(
                "commit",
                "counts operations but names no operations hash",
            ));
        }
        Ok(commit)
    }
}

/// Whether an operation writes or deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Sets the row.
    Put,
    /// Deletes the row (a tombstone).
    Delete,
}

/// What an operation's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    /// The value is the row's bytes.
    Row,
    /// The value is an encoded [`FileRef`]: the row is a file in the blob store.
    File,
}

/// One change to one key of one dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Put or delete.
    pub kind: OpKind,
    /// Whether the value is the row's bytes or a file reference.
    pub content: Content,
    /// The dataset.
    pub dataset: Vec<u8>,
    /// The row key.
    pub key: Vec<u8>,
    /// The new value (`None` for a delete).
    pub value: Option<Vec<u8>>,
}

impl Operation {
    /// dat-core's encoding, byte for byte (`content` first, as declared).
    pub fn encode(&self) -> Vec<u8> {
        let value_len = self.value.as_ref().map_or(0, Vec::len);
        let mut buf = Vec::with_capacity(self.dataset.len() + self.key.len() + value_len + 16);
        if self.kind == OpKind::Put {
            put_varint(
                &mut buf,
                5,
                if self.content == Content::File { 2 } else { 1 },
            );
        }
        put_varint(&mut buf, 1, if self.kind == OpKind::Put { 1 } else { 2 });
        if !self.dataset.is_empty() {
            put_bytes(&mut buf, 2, &self.dataset);
        }
        put_bytes(&mut buf, 3, &self.key);
        if let Some(value) = &self.value {
            put_bytes(&mut buf, 4, value);
        }
        buf
    }

    /// Decodes an operation; fields in any order, unknown fields refused.
    pub fn decode(bytes: &[u8]) -> Result<Operation> {
        const WHAT: &str = "operation";
        let mut reader = FieldReader::new(bytes, WHAT);
        let (mut kind, mut content, mut dataset, mut key, mut value) =
            (None, Content::Row, Vec::new(), None, None);
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => {
                    kind = Some(match field.varint(&reader, number)? {
                        1 => OpKind::Put,
                        2 => OpKind::Delete,
                        other => {
                            return Err(Error::malformed(WHAT, format!("unknown type {other}")));
                        }
                    })
                }
                2 => dataset = field.bytes(&reader, number)?.to_vec(),
                3 => key = Some(field.bytes(&reader, number)?.to_vec()),
                4 => value = Some(field.bytes(&reader, number)?.to_vec()),
                5 => {
                    content = match field.varint(&reader, number)? {
                        1 => Content::Row,
                        2 => Content::File,
                        other => {
                            return Err(Error::malformed(WHAT, format!("unknown content {other}")));
                        }
                    }
                }
                _ => return Err(reader.unexpected(number)),
            }
        }
        let kind = required(kind, WHAT, "type")?;
        if kind == OpKind::Put && value.is_none() {
            // dat-core writes a put of an empty value without field 4.
            value = Some(Vec::new());
        }
        if kind == OpKind::Delete {
            // A delete has no value and no content (dat-core writes neither, nor does
            // `encode`): whatever the bytes say of them, it removes the row, file or not.
            value = None;
            content = Content::Row;
        }
        Ok(Operation {
            kind,
            content,
            dataset,
            key: required(key, WHAT, "key")?,
            value,
        })
    }
}

/// Whether `text` is a SHA-256 in lowercase hex.
fn is_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hex framed SHA-256 of a commit's encoded operations, in order.
pub fn operations_hash<'a>(encoded: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = OperationsHasher::default();
    for op in encoded {
        hasher.add(op);
    }
    hasher.finish()
}

/// [`operations_hash`] taken one operation at a time.
#[derive(Default)]
pub(crate) struct OperationsHasher(Sha256);

impl OperationsHasher {
    pub(crate) fn add(&mut self, encoded: &[u8]) {
        framed_update(&mut self.0, encoded);
    }

    pub(crate) fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A file row's value: the blob's SHA-256 (hex) and size.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileRef {
    /// The blob's SHA-256, lowercase hex.
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
}

impl FileRef {
    /// The file row's value: dat-core's `File` message.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(80);
        put_bytes(&mut buf, 1, self.hash.as_bytes());
        put_varint(&mut buf, 2, self.size);
        buf
    }

    /// Decodes a file row's value, checking the hash is 64 lowercase hex characters.
    pub fn decode(bytes: &[u8]) -> Result<FileRef> {
        const WHAT: &str = "file reference";
        let mut reader = FieldReader::new(bytes, WHAT);
        let (mut hash, mut size) = (None, 0);
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => hash = Some(field.string(&reader, number)?),
                2 => size = field.varint(&reader, number)?,
                _ => return Err(reader.unexpected(number)),
            }
        }
        let hash = required(hash, WHAT, "key")?;
        if !is_hash(&hash) {
            return Err(Error::malformed(
                WHAT,
                "blob hash is not 64 lowercase hex characters",
            ));
        }
        Ok(FileRef { hash, size })
    }
}
