//! The file system as the storage engine sees it: rusty-leveldb's own environment (disk or
//! memory), with obsolete table files kept while a pinned snapshot may still read them.
//!
//! rusty-leveldb deletes every table file that is not in the current version when a
//! compaction finishes, and its iterators open table files lazily and end quietly when one
//! is gone, so an iterator pinned before a compaction would silently read fewer rows after
//! it. Table files are immutable and never reused (their numbers only grow), so keeping a
//! deleted one a little longer is always safe: this environment postpones the deletion of
//! table files while any snapshot is pinned and carries it out when the last is released.
//! A crash meanwhile leaves them behind, and LevelDB removes obsolete files at the next
//! open.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};

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

/// An environment that postpones deleting table files while snapshots are pinned.
pub(crate) struct StoreEnv {
    inner: Box<dyn Env>,
    pins: Rc<RefCell<Pins>>,
}

impl StoreEnv {
    pub(crate) fn new(inner: Box<dyn Env>, pins: Rc<RefCell<Pins>>) -> StoreEnv {
        StoreEnv { inner, pins }
    }
}

fn is_table(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "ldb" || ext == "sst")
}

impl Env for StoreEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        self.inner.open_sequential_file(p)
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        self.inner.open_random_access_file(p)
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.inner.open_writable_file(p)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.inner.open_appendable_file(p)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.inner.exists(p)
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.inner.children(p)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        self.inner.size_of(p)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        let mut pins = self.pins.borrow_mut();
        if pins.active > 0 && is_table(p) {
            pins.deferred.push(p.to_path_buf());
            return Ok(());
        }
        drop(pins);
        self.inner.delete(p)
    }
    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.mkdir(p)
    }
    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.rmdir(p)
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        self.inner.rename(old, new)
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        self.inner.lock(p)
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.inner.unlock(l)
    }
    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.inner.new_logger(p)
    }
    fn micros(&self) -> u64 {
        self.inner.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.inner.sleep_for(micros)
    }
}
