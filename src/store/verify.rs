//! Table reads checked as they happen, so damage is an error rather than missing rows.
//!
//! rusty-leveldb verifies a block's checksum, but its iterators then skip the damaged block
//! quietly (a scan returns fewer rows, a compaction writes them away for good), and a
//! table whose footer is damaged panics it. Every read of a table file therefore passes
//! through [`Verified`], which checks what was read against the file's own checksums: a
//! footer must end in the table magic, a block must match its trailer. A failed check is
//! recorded in the store's [`Damage`] (which `kv.rs` turns into an error for every read
//! from then on, and which stops table files from being deleted, so `repair` still finds
//! every readable block) and the read fails.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::env::RandomAccess;
use rusty_leveldb::{Status, StatusCode};

use super::ldb;

/// The damage seen by this open of the database, first first.
#[derive(Clone, Default)]
pub(crate) struct Damage(Rc<RefCell<Vec<String>>>);

impl Damage {
    /// Records damage.
    pub(crate) fn record(&self, what: String) {
        self.0.borrow_mut().push(what);
    }

    /// The first damage seen, if any.
    pub(crate) fn first(&self) -> Option<String> {
        self.0.borrow().first().cloned()
    }

    /// All the damage seen.
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// Whether any damage was seen.
    pub(crate) fn seen(&self) -> bool {
        !self.0.borrow().is_empty()
    }
}

/// A table file whose reads are checked.
pub(crate) struct Verified {
    inner: Box<dyn RandomAccess>,
    path: PathBuf,
    size: usize,
    damage: Damage,
}

impl Verified {
    pub(crate) fn new(
        inner: Box<dyn RandomAccess>,
        path: &Path,
        size: usize,
        damage: Damage,
    ) -> Verified {
        Verified {
            inner,
            path: path.to_path_buf(),
            size,
            damage,
        }
    }

    /// Whether `read`, read at `offset`, is what the file says it should be: the footer, a
    /// block with its trailer, or a block without it (the engine reads filter blocks so)
    /// whose trailer follows in the file.
    fn intact(&self, offset: usize, read: &[u8]) -> bool {
        if offset + read.len() == self.size && read.len() == ldb::FOOTER {
            return ldb::is_footer(read);
        }
        if let Some(split) = read.len().checked_sub(ldb::TRAILER)
            && ldb::trailer_matches(&read[..split], &read[split..])
        {
            return true;
        }
        let mut trailer = [0u8; ldb::TRAILER];
        matches!(self.inner.read_at(offset + read.len(), &mut trailer), Ok(n) if n == ldb::TRAILER)
            && ldb::trailer_matches(read, &trailer)
    }
}

impl RandomAccess for Verified {
    fn read_at(&self, offset: usize, dst: &mut [u8]) -> rusty_leveldb::Result<usize> {
        let n = self.inner.read_at(offset, dst)?;
        let why = if n < dst.len() {
            "is shorter than its index says"
        } else if self.intact(offset, &dst[..n]) {
            return Ok(n);
        } else {
            "fails its checksum"
        };
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let what = format!(
            "table file {name} {why} at byte {offset} ({} bytes read)",
            dst.len()
        );
        self.damage.record(what.clone());
        Err(Status::new(StatusCode::Corruption, &what))
    }
}
