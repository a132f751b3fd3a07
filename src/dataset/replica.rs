//! The replication seam: what a sync session needs from a repository besides its graph.
//!
//! Nodes arrive through the graph (`Repository::graph().ingest`), which the version index
//! follows. Payloads (a commit's operations) and blobs arrive separately, each checked
//! against its content hash; a commit becomes a version the moment the last thing it
//! waits for is stored.

use super::commit::{self, Commit, Content, FileRef, OpKind, Operation};
use super::index::raw_hash;
use super::version::Version;
use super::{BlobReader, Repository};
use crate::error::{Error, Result};
use crate::store::{Wait, WriteSet};

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
