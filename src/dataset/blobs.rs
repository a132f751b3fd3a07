//! The blob store: file contents, content-addressed by SHA-256, beside the repository.
//!
//! A blob lives at `blobs/<first 2 hex>/<remaining 62 hex>`. The path is derived from the
//! hash alone (validated hex), never from a row key, so no key can escape the folder.
//! Blobs are written and read as streams: written to a temporary file while hashing
//! (`tempfile::NamedTempFile`, removed if the write fails), synced, then renamed into place
//! (`persist`) and the folder synced; read through a reader that checks the hash when it reaches the end.
//! A blob received from elsewhere is written with the hash and size it must have
//! ([`Blobs::write_checked`]): bytes that do not match never reach the store.
//!
//! Replication also keeps a list of *wanted* blobs: those that file rows received without
//! their contents name (a rows-only sync, say), so that a later sync asks for exactly those
//! without scanning the history. Each is a small record under `wanted/`, written like a
//! blob (temporary file, sync, rename, folder sync) and removed when the blob arrives.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::commit::FileRef;
use super::index::raw_hash;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) enum Blobs {
    Dir(PathBuf),
    /// For in-memory repositories (tests): blobs, and wanted blobs, are held in memory.
    Memory {
        blobs: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
        wanted: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    },
}

/// What a write of a blob must produce, if anything in particular.
#[derive(Clone, Copy)]
enum Expect<'a> {
    Anything,
    Exactly(&'a FileRef),
}

impl Expect<'_> {
    /// Fails once more bytes than expected have arrived: a peer cannot fill the disk.
    fn check_size(self, size: u64) -> Result<()> {
        match self {
            Expect::Exactly(file) if size > file.size => Err(mismatch(file, "more bytes")),
            _ => Ok(()),
        }
    }

    fn check(self, actual: &FileRef) -> Result<()> {
        match self {
            Expect::Exactly(file) if file.hash != actual.hash => {
                Err(mismatch(file, &format!("bytes hashing to {}", actual.hash)))
            }
            Expect::Exactly(file) if file.size != actual.size => {
                Err(mismatch(file, &format!("{} bytes", actual.size)))
            }
            _ => Ok(()),
        }
    }
}

/// Reads `reader` to the end into `sink`, hashing as it goes; fails as soon as the bytes
/// cannot be what `expect` says, and at the end unless they are.
fn copy(
    reader: &mut dyn Read,
    expect: Expect,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<FileRef> {
    let mut digest = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(io_error("reading the file to store".into()))?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        size += n as u64;
        expect.check_size(size)?;
        sink(&buf[..n])?;
    }
    let stored = FileRef {
        hash: hex::encode(digest.finalize()),
        size,
    };
    expect.check(&stored)?;
    Ok(stored)
}

/// Renames the written temporary `file` to `target` durably: its content is synced before
/// the rename and the folder after, so that after a power loss `target` is whole or absent.
/// (Blobs live beside the database, outside the storage engine's file system seam,
/// `store::fs`, so they are synced here.)
fn persist_synced(file: tempfile::NamedTempFile, target: &Path, doing: &str) -> Result<()> {
    file.as_file()
        .sync_all()
        .map_err(io_error(format!("syncing {}", file.path().display())))?;
    file.persist(target)
        .map_err(|e| Error::io(format!("{doing} {}", target.display()), e.error))?;
    if let Some(parent) = target.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error(format!("syncing {}", parent.display())))?;
    }
    Ok(())
}

fn mismatch(file: &FileRef, got: &str) -> Error {
    Error::Replication(format!(
        "file checksum mismatch: blob {} ({} bytes) arrived as {got}",
        file.hash, file.size
    ))
}

fn io_error(context: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::io(context, source)
}

impl Blobs {
    pub(crate) fn in_dir(dir: PathBuf) -> Result<Blobs> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
        Ok(Blobs::Dir(dir))
    }

    /// The blob store in `dir`, for reading only (nothing is created).
    pub(crate) fn read_only(dir: PathBuf) -> Blobs {
        Blobs::Dir(dir)
    }

    pub(crate) fn in_memory() -> Blobs {
        Blobs::Memory {
            blobs: Arc::default(),
            wanted: Arc::default(),
        }
    }

    fn path_of(dir: &std::path::Path, hash: &str) -> Result<PathBuf> {
        if raw_hash(hash).is_none() {
            return Err(Error::malformed(
                "blob hash",
                format!("{hash:?} is not 64 lowercase hex characters"),
            ));
        }
        Ok(dir.join(&hash[..2]).join(&hash[2..]))
    }

    /// Streams `reader` into the store; returns the blob's hash and size.
    pub(crate) fn write(&self, reader: &mut dyn Read) -> Result<FileRef> {
        self.write_expecting(reader, Expect::Anything)
    }

    /// Streams `reader` into the store only if it holds exactly the blob `file` names:
    /// the bytes go to a temporary file (or buffer) first and are moved into place once
    /// their size and hash match. A blob that was wanted is no longer.
    pub(crate) fn write_checked(&self, reader: &mut dyn Read, file: &FileRef) -> Result<()> {
        self.write_expecting(reader, Expect::Exactly(file))?;
        self.unwant(&file.hash)
    }

    fn write_expecting(&self, reader: &mut dyn Read, expect: Expect) -> Result<FileRef> {
        match self {
            Blobs::Dir(dir) => {
                // Written to a temporary file beside the blobs (removed if anything fails),
                // synced, and renamed into place only once its hash is known.
                let tmp_dir = dir.join("tmp");
                let mut file = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_error(
                    format!("creating a file in {}", tmp_dir.display()),
                ))?;
                let FileRef { hash, size } = copy(reader, expect, |bytes| {
                    file.write_all(bytes)
                        .map_err(io_error(format!("writing {}", file.path().display())))
                })?;
                let target = Blobs::path_of(dir, &hash)?;
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(io_error(format!("creating {}", parent.display())))?;
                }
                persist_synced(file, &target, "storing")?;
                Ok(FileRef { hash, size })
            }
            Blobs::Memory { blobs, .. } => {
                let mut bytes = Vec::new();
                let stored = copy(reader, expect, |piece| {
                    bytes.extend_from_slice(piece);
                    Ok(())
                })?;
                blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(stored.hash.clone(), Arc::new(bytes));
                Ok(stored)
            }
        }
    }

    pub(crate) fn contains(&self, hash: &str) -> Result<bool> {
        match self {
            Blobs::Dir(dir) => Ok(Blobs::path_of(dir, hash)?.is_file()),
            Blobs::Memory { blobs, .. } => Ok(blobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(hash)),
        }
    }

    /// The size of the stored blob `hash`, if it is stored.
    pub(crate) fn size(&self, hash: &str) -> Result<Option<u64>> {
        match self {
            Blobs::Dir(dir) => {
                let path = Blobs::path_of(dir, hash)?;
                match fs::metadata(&path) {
                    Ok(meta) => Ok(Some(meta.len())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
                }
            }
            Blobs::Memory { blobs, .. } => Ok(blobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(hash)
                .map(|bytes| bytes.len() as u64)),
        }
    }

    /// Records that the blob `hash` is wanted, with `record` (what asking for it takes).
    pub(crate) fn want(&self, hash: &str, record: &[u8]) -> Result<()> {
        match self {
            Blobs::Dir(dir) => {
                let path = Blobs::wanted_path(dir, hash)?;
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(io_error(format!("creating {}", parent.display())))?;
                }
                // Written whole or not at all: a record cut short by a crash would stop every
                // later sync that reads the wanted blobs (found by tests/sync_kill.rs); and
                // synced like a blob, so that a power loss keeps it too.
                let folder = path.parent().unwrap_or(dir);
                let mut file = tempfile::NamedTempFile::new_in(folder)
                    .map_err(io_error(format!("writing {}", path.display())))?;
                file.write_all(record)
                    .map_err(io_error(format!("writing {}", path.display())))?;
                persist_synced(file, &path, "writing")
            }
            Blobs::Memory { wanted, .. } => {
                wanted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash.to_string(), record.to_vec());
                Ok(())
            }
        }
    }

    /// Whether the blob `hash` is recorded as wanted.
    pub(crate) fn is_wanted(&self, hash: &str) -> Result<bool> {
        match self {
            Blobs::Dir(dir) => Ok(Blobs::wanted_path(dir, hash)?.is_file()),
            Blobs::Memory { wanted, .. } => Ok(wanted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(hash)),
        }
    }

    fn unwant(&self, hash: &str) -> Result<()> {
        match self {
            Blobs::Dir(dir) => match fs::remove_file(Blobs::wanted_path(dir, hash)?) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(Error::io(format!("removing the want of blob {hash}"), e))
                }
                _ => Ok(()),
            },
            Blobs::Memory { wanted, .. } => {
                wanted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(hash);
                Ok(())
            }
        }
    }

    /// Up to `limit` wanted blobs, `(hash, record)`, in hash order. Costs one directory
    /// listing: O(wanted blobs), whatever the history.
    pub(crate) fn wanted(&self, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        match self {
            Blobs::Dir(dir) => {
                let folder = dir.join("wanted");
                let entries = match fs::read_dir(&folder) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(Error::io(format!("listing {}", folder.display()), e)),
                };
                let mut hashes = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(io_error(format!("listing {}", folder.display())))?;
                    // Anything but a hash-named record (an editor's backup, say) is not ours.
                    if let Some(name) = entry.file_name().to_str()
                        && raw_hash(name).is_some()
                    {
                        hashes.push(name.to_string());
                    }
                }
                hashes.sort();
                hashes.truncate(limit);
                hashes
                    .into_iter()
                    .map(|hash| {
                        let path = folder.join(&hash);
                        let record = fs::read(&path)
                            .map_err(io_error(format!("reading {}", path.display())))?;
                        Ok((hash, record))
                    })
                    .collect()
            }
            Blobs::Memory { wanted, .. } => Ok(wanted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .take(limit)
                .map(|(hash, record)| (hash.clone(), record.clone()))
                .collect()),
        }
    }

    fn wanted_path(dir: &std::path::Path, hash: &str) -> Result<PathBuf> {
        Blobs::path_of(dir, hash)?;
        Ok(dir.join("wanted").join(hash))
    }

    /// A reader of the blob, which fails at the end if the bytes do not hash to `file.hash`.
    pub(crate) fn open(&self, file: &FileRef) -> Result<BlobReader> {
        let inner: Box<dyn Read + Send> = match self {
            Blobs::Dir(dir) => {
                let path = Blobs::path_of(dir, &file.hash)?;
                match File::open(&path) {
                    Ok(f) => Box::new(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Error::NotFound(format!(
                            "blob {} is not stored here",
                            file.hash
                        )));
                    }
                    Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
                }
            }
            Blobs::Memory { blobs, .. } => {
                let bytes = blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&file.hash)
                    .cloned()
                    .ok_or_else(|| {
                        Error::NotFound(format!("blob {} is not stored here", file.hash))
                    })?;
                Box::new(io::Cursor::new(ArcBytes(bytes)))
            }
        };
        Ok(BlobReader {
            inner,
            digest: Sha256::new(),
            expected: file.hash.clone(),
            size: file.size,
            read: 0,
            checked: false,
        })
    }
}

struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads a blob, verifying its hash and size at the end; see [`crate::dataset::Repository::open_file`].
pub struct BlobReader {
    inner: Box<dyn Read + Send>,
    digest: Sha256,
    expected: String,
    /// The size the file row records.
    pub size: u64,
    read: u64,
    checked: bool,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.digest.update(&buf[..n]);
            self.read += n as u64;
        } else if !buf.is_empty() && !self.checked {
            self.checked = true;
            let actual = hex::encode(self.digest.finalize_reset());
            if actual != self.expected || self.read != self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is corrupt: its content hashes to {actual}",
                        self.expected
                    ),
                ));
            }
        }
        Ok(n)
    }
}
