//! The environment the storage engine runs in: a file system (`fs.rs`), made durable where
//! rusty-leveldb never is, and keeping obsolete table files while a pinned snapshot may
//! still read them.
//!
//! **Durability.** rusty-leveldb never fsyncs. Here a table file is synced when the engine
//! finishes it (its one flush), then the folder (making its entry durable); a manifest is
//! synced after every record the engine flushes to it, the folder first; `CURRENT` is
//! replaced by syncing the new file, renaming it and syncing the folder. So a compaction's
//! output is durable before the manifest record that installs it is even written, at every
//! durability level, and a power loss can never leave a manifest naming a table that is
//! not on disk (the power-loss tests, `tests/power_loss.rs`, cut runs at every stage). The write-ahead log is synced by the store only for
//! `Durability::Synced` writes (`kv.rs`).
//!
//! **Damage.** Every read of a table file is checked (`verify.rs`); once damage is seen,
//! no table file is deleted any more.
//!
//! **Pinned snapshots.** rusty-leveldb deletes every table file that is not in the current
//! version when a compaction finishes, and its iterators open table files lazily and end
//! quietly when one is gone, so an iterator pinned before a compaction would silently read
//! fewer rows after it. Table files are immutable and never reused (their numbers only
//! grow), so keeping a deleted one a little longer is always safe: their deletion waits
//! while any snapshot is pinned and happens when the last is released. A crash meanwhile
//! leaves them behind, and LevelDB removes obsolete files at the next open.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};

use super::fs::FileSystem;
use super::verify::{Damage, Verified};

/// Pinned snapshots and the table files waiting for them to be released.
#[derive(Default)]
pub(crate) struct Pins {
    active: usize,
    deferred: Vec<PathBuf>,
}

impl Pins {
    /// Counts one more pinned snapshot.
    pub(crate) fn pin(&mut self) {
        self.active += 1;
    }

    /// Counts one pinned snapshot fewer; returns the files to delete now that none is left.
    pub(crate) fn unpin(&mut self) -> Vec<PathBuf> {
        self.active = self.active.saturating_sub(1);
        if self.active == 0 {
            std::mem::take(&mut self.deferred)
        } else {
            Vec::new()
        }
    }
}

/// The store's environment over a file system.
#[derive(Clone)]
pub(crate) struct StoreEnv {
    fs: Rc<dyn FileSystem>,
    pins: Rc<RefCell<Pins>>,
    damage: Damage,
    /// The newest write-ahead log the engine has opened for writing (by its number), so a
    /// `Synced` write syncs it without listing the folder to find it.
    log: Rc<RefCell<Option<(u64, PathBuf)>>>,
}

/// What kind of database file a path is, for deciding when to sync it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Manifest,
    Current,
    Other,
}

fn kind(path: &Path) -> Kind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.ends_with(".ldb") || name.ends_with(".sst") {
        Kind::Table
    } else if name.starts_with("MANIFEST-") {
        Kind::Manifest
    } else if name == "CURRENT" {
        Kind::Current
    } else {
        Kind::Other
    }
}

fn io_error(status: rusty_leveldb::Status) -> io::Error {
    io::Error::other(status.to_string())
}

/// A table or manifest being written: every flush makes what was written durable, and the
/// folder entries too, in the order that keeps every manifest record's files on disk.
struct Durable {
    inner: Box<dyn Write>,
    fs: Rc<dyn FileSystem>,
    path: PathBuf,
    kind: Kind,
}

impl Durable {
    fn sync_folder(&self) -> io::Result<()> {
        match self.path.parent() {
            Some(dir) => self.fs.sync_folder(dir).map_err(io_error),
            None => Ok(()),
        }
    }
}

impl Write for Durable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        if self.kind == Kind::Manifest {
            // The folder first (the entries of the manifest itself and of new logs), so the
            // record never becomes durable while a file it names is not.
            self.sync_folder()?;
        }
        self.fs.sync(&self.path).map_err(io_error)?;
        if self.kind == Kind::Table {
            // A finished table's entry is durable before any manifest record names it (even
            // one whose bytes reach the disk unsynced).
            self.sync_folder()?;
        }
        Ok(())
    }
}

impl StoreEnv {
    pub(crate) fn new(fs: Rc<dyn FileSystem>, pins: Rc<RefCell<Pins>>) -> StoreEnv {
        StoreEnv {
            fs,
            pins,
            damage: Damage::default(),
            log: Rc::default(),
        }
    }

    /// The write-ahead log the engine writes to now, once it has opened one.
    pub(crate) fn current_log(&self) -> Option<PathBuf> {
        self.log.borrow().as_ref().map(|(_, path)| path.clone())
    }

    /// Remembers `path` if it is a write-ahead log newer than the one remembered.
    fn note_log(&self, path: &Path) {
        let number = path
            .file_name()
            .and_then(|name| name.to_str()?.strip_suffix(".log")?.parse::<u64>().ok());
        let mut log = self.log.borrow_mut();
        if let Some(number) = number
            && log.as_ref().is_none_or(|(newest, _)| number > *newest)
        {
            *log = Some((number, path.to_path_buf()));
        }
    }

    /// The damage the engine's reads have run into (see `verify`).
    pub(crate) fn damage(&self) -> &Damage {
        &self.damage
    }

    /// Makes the bytes written to `path` durable.
    pub(crate) fn sync(&self, path: &Path) -> rusty_leveldb::Result<()> {
        self.fs.sync(path)
    }

    /// Makes the entries of folder `dir` durable.
    pub(crate) fn sync_folder(&self, dir: &Path) -> rusty_leveldb::Result<()> {
        self.fs.sync_folder(dir)
    }

    fn durable(&self, path: &Path, inner: Box<dyn Write>) -> Box<dyn Write> {
        match kind(path) {
            kind @ (Kind::Table | Kind::Manifest) => Box::new(Durable {
                inner,
                fs: self.fs.clone(),
                path: path.to_path_buf(),
                kind,
            }),
            Kind::Current | Kind::Other => inner,
        }
    }
}

impl Env for StoreEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        self.fs.open_sequential_file(p)
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        let file = self.fs.open_random_access_file(p)?;
        if kind(p) != Kind::Table {
            return Ok(file);
        }
        let size = self.fs.size_of(p)?;
        Ok(Box::new(Verified::new(file, p, size, self.damage.clone())))
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        let file = self.fs.open_writable_file(p)?;
        self.note_log(p);
        Ok(self.durable(p, file))
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        let file = self.fs.open_appendable_file(p)?;
        self.note_log(p);
        Ok(self.durable(p, file))
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.fs.exists(p)
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.fs.children(p)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        self.fs.size_of(p)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        // Once damage is seen, a compaction may have written around a damaged block: every
        // table stays for `repair` to read what it can.
        if self.damage.seen() && kind(p) == Kind::Table {
            return Ok(());
        }
        let mut pins = self.pins.borrow_mut();
        if pins.active > 0 && kind(p) == Kind::Table {
            pins.deferred.push(p.to_path_buf());
            return Ok(());
        }
        drop(pins);
        self.fs.delete(p)
    }
    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.fs.mkdir(p)
    }
    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.fs.rmdir(p)
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        if kind(new) != Kind::Current {
            return self.fs.rename(old, new);
        }
        // The new CURRENT must be whole on disk before it replaces the old one, and the
        // replacement durable before the engine goes on.
        self.fs.sync(old)?;
        self.fs.rename(old, new)?;
        match new.parent() {
            Some(dir) => self.fs.sync_folder(dir),
            None => Ok(()),
        }
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        self.fs.lock(p)
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.fs.unlock(l)
    }
    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.fs.new_logger(p)
    }
    fn micros(&self) -> u64 {
        self.fs.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.fs.sleep_for(micros)
    }
}
