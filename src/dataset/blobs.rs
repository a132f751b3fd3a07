//! The blob store: file contents, content-addressed by SHA-256, beside the repository.
//!
//! A blob lives at `blobs/<first 2 hex>/<remaining 62 hex>`. The path is derived from the
//! hash alone (validated hex), never from a row key, so no key can escape the folder.
//! Blobs are written and read as streams: written to a temporary file while hashing
//! (`tempfile::NamedTempFile`, removed if the write fails), synced, then renamed into place
//! (`persist`); read through a reader that checks the hash when it reaches the end.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::commit::FileRef;
use super::index::raw_hash;
use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) enum Blobs {
    Dir(PathBuf),
    /// For in-memory repositories (tests): blobs are held in memory.
    Memory(Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>),
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
        Blobs::Memory(Arc::default())
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
        let mut digest = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        match self {
            Blobs::Dir(dir) => {
                // Written to a temporary file beside the blobs (removed if anything fails),
                // synced, and renamed into place only once its hash is known.
                let tmp_dir = dir.join("tmp");
                let mut file = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_error(
                    format!("creating a file in {}", tmp_dir.display()),
                ))?;
                loop {
                    let n = reader
                        .read(&mut buf)
                        .map_err(io_error("reading the file to store".into()))?;
                    if n == 0 {
                        break;
                    }
                    digest.update(&buf[..n]);
                    file.write_all(&buf[..n])
                        .map_err(io_error(format!("writing {}", file.path().display())))?;
                    size += n as u64;
                }
                file.as_file()
                    .sync_all()
                    .map_err(io_error(format!("syncing {}", file.path().display())))?;
                let hash = hex::encode(digest.finalize_reset());
                let target = Blobs::path_of(dir, &hash)?;
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(io_error(format!("creating {}", parent.display())))?;
                }
                file.persist(&target)
                    .map_err(|e| Error::io(format!("storing {}", target.display()), e.error))?;
                if let Some(parent) = target.parent() {
                    File::open(parent)
                        .and_then(|d| d.sync_all())
                        .map_err(io_error(format!("syncing {}", parent.display())))?;
                }
                Ok(FileRef { hash, size })
            }
            Blobs::Memory(map) => {
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .map_err(io_error("reading the file to store".into()))?;
                digest.update(&bytes);
                let hash = hex::encode(digest.finalize());
                let size = bytes.len() as u64;
                map.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash.clone(), Arc::new(bytes));
                Ok(FileRef { hash, size })
            }
        }
    }

    pub(crate) fn contains(&self, hash: &str) -> Result<bool> {
        match self {
            Blobs::Dir(dir) => Ok(Blobs::path_of(dir, hash)?.is_file()),
            Blobs::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(hash)),
        }
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
            Blobs::Memory(map) => {
                let bytes = map
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
