//! The replication seam: what a sync session needs from a repository besides its graph.
//!
//! Nodes arrive through the graph (`Repository::graph().ingest`), which the version index
//! follows. Payloads (a commit's operations) and blobs arrive separately, each checked
//! against its content hash; a commit becomes a version the moment the last thing it
//! waits for is stored. File rows whose blob was not fetched with them (a rows-only sync)
//! are remembered as wanted blobs, so a later sync asks for them without reading history.

use super::commit::{self, Commit, Content, FileRef, OpKind, Operation};
use super::index::raw_hash;
use super::version::Version;
use super::{BlobReader, Repository};
use crate::error::{Error, Result};
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};
use crate::store::{Wait, WriteSet};

/// A blob that a file row received here names and that this repository lacks: what it
/// takes to ask a peer for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WantedBlob {
    pub file: FileRef,
    /// The commit whose operations name the row, when known.
    pub version: String,
    pub dataset: Vec<u8>,
    pub key: Vec<u8>,
}

impl WantedBlob {
    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        put_bytes(&mut buf, 1, self.version.as_bytes());
        put_bytes(&mut buf, 2, &self.dataset);
        put_bytes(&mut buf, 3, &self.key);
        put_varint(&mut buf, 4, self.file.size);
        buf
    }

    fn decode(hash: String, bytes: &[u8]) -> Result<WantedBlob> {
        const WHAT: &str = "wanted blob";
        let mut reader = FieldReader::new(bytes, WHAT);
        let (mut version, mut dataset, mut key, mut size) = (None, None, None, None);
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => version = Some(field.string(&reader, number)?),
                2 => dataset = Some(field.bytes(&reader, number)?.to_vec()),
                3 => key = Some(field.bytes(&reader, number)?.to_vec()),
                4 => size = Some(field.varint(&reader, number)?),
                _ => return Err(reader.unexpected(number)),
            }
        }
        Ok(WantedBlob {
            file: FileRef {
                hash,
                size: required(size, WHAT, "size")?,
            },
            version: required(version, WHAT, "version")?,
            dataset: required(dataset, WHAT, "dataset")?,
            key: required(key, WHAT, "key")?,
        })
    }
}

/// How many missing payloads one call lists at most.
const MISSING_PAGE: usize = 4096;

impl Repository {
    /// Stores a commit's payload (its encoded operations, in order), content-checked: it is
    /// stored under the hash of what was given, so it can only satisfy a commit that names
    /// exactly these operations. Commits waiting for it become visible. Returns the hash.
    pub fn add_payload(&self, operations: &[Vec<u8>]) -> Result<String> {
        for op in operations {
            let op = Operation::decode(op)?;
            // A file row's value must name a blob: checked now, not when someone reads it.
            if op.kind == OpKind::Put && op.content == Content::File {
                FileRef::decode(op.value.as_deref().unwrap_or_default())?;
            }
        }
        if operations.is_empty() {
            return Err(Error::InvalidArgument(
                "a payload holds at least one operation".into(),
            ));
        }
        let hash = commit::operations_hash(operations.iter().map(Vec::as_slice));
        let raw = raw_hash(&hash).ok_or_else(|| Error::corrupt("operations hash is not hex"))?;
        let mut tables = self.graph.store().lock();
        if !tables.has_ops(&raw)? {
            let mut write = WriteSet::default();
            write.put_ops(&raw, operations);
            tables.commit(write, self.graph.durability())?;
        }
        self.index.wake(&mut tables, Wait::Payload, &hash)?;
        Ok(hash)
    }

    /// The payload of a commit by its operations hash, if stored here.
    pub fn payload(&self, hash: &str) -> Result<Option<Vec<Vec<u8>>>> {
        let raw = raw_hash(hash)
            .ok_or_else(|| Error::InvalidArgument(format!("{hash} is not an operations hash")))?;
        self.graph.store().lock().ops(&raw)
    }

    /// Operations hashes that pending commits wait for (at most 4,096 per call).
    pub fn missing_payloads(&self) -> Result<Vec<String>> {
        self.graph
            .store()
            .lock()
            .waited_for(Wait::Payload, MISSING_PAGE)
    }

    /// Whether the blob with SHA-256 `hash` (hex) is stored here.
    pub fn has_blob(&self, hash: &str) -> Result<bool> {
        self.blobs.contains(hash)
    }

    /// A stream of the blob with SHA-256 `hash`, checked against it as it is read.
    pub fn open_blob(&self, file: &FileRef) -> Result<BlobReader> {
        self.blobs.open(file)
    }

    /// Stores a blob from a stream; returns its hash and size.
    pub fn add_blob(&self, reader: &mut dyn std::io::Read) -> Result<FileRef> {
        self.blobs.write(reader)
    }

    /// Stores a blob received from elsewhere only if the stream holds exactly the blob
    /// `file` names: the bytes are written aside, and moved into the store once their size
    /// and SHA-256 match (a stream longer than `file.size` fails as soon as it is). Bytes
    /// that do not match are never left in the store.
    pub fn add_blob_checked(&self, reader: &mut dyn std::io::Read, file: &FileRef) -> Result<()> {
        self.blobs.write_checked(reader, file)
    }

    /// A stream of the stored blob `hash` (checked against it as it is read), if stored.
    pub(crate) fn open_stored_blob(&self, hash: &str) -> Result<Option<BlobReader>> {
        match self.blobs.size(hash)? {
            Some(size) => self
                .blobs
                .open(&FileRef {
                    hash: hash.to_string(),
                    size,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    /// Remembers that `blob`, named by a file row received here, is missing (until
    /// [`Repository::add_blob_checked`] stores it). Nothing is recorded for a blob that is
    /// here.
    pub(crate) fn want_blob(&self, blob: &WantedBlob) -> Result<()> {
        if self.blobs.contains(&blob.file.hash)? {
            return Ok(());
        }
        self.blobs.want(&blob.file.hash, &blob.encode())
    }

    /// Up to `limit` blobs that file rows received here name and this repository lacks.
    pub(crate) fn wanted_blobs(&self, limit: usize) -> Result<Vec<WantedBlob>> {
        self.blobs
            .wanted(limit)?
            .into_iter()
            .map(|(hash, record)| WantedBlob::decode(hash, &record))
            .collect()
    }

    /// The operations a version's commit carries, in order (what `strata show` lists).
    pub fn operations(&self, version: &Version) -> Result<Vec<Operation>> {
        let node = self.graph.get(version.as_str())?;
        let Some(hash) = Commit::decode(&node.value)?.operations else {
            return Ok(Vec::new());
        };
        self.payload(&hash)?
            .ok_or_else(|| Error::NotFound(format!("the payload of {version}")))?
            .iter()
            .map(|op| Operation::decode(op))
            .collect()
    }

    /// How many operations a version's commit carries.
    pub(super) fn operation_count(&self, version: &Version) -> Result<u64> {
        let node = self.graph.get(version.as_str())?;
        Ok(Commit::decode(&node.value)?.operation_count())
    }
}
