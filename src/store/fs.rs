//! The file systems a database can live on: rusty-leveldb's environment (`Env`) plus the
//! one thing it lacks, making written data durable.
//!
//! rusty-leveldb never fsyncs and its `Env` hands out plain writers, so durability is added
//! here: every file system says how to sync a file's data and a folder's entries, and the
//! store's environment (`env.rs`) decides when.

use std::fs::File;
use std::path::Path;

use rusty_leveldb::env::Env;
use rusty_leveldb::{MemEnv, PosixDiskEnv, Status, StatusCode};

/// A file system a database lives on.
pub(crate) trait FileSystem: Env {
    /// Makes the bytes written to `path` so far durable.
    fn sync(&self, path: &Path) -> rusty_leveldb::Result<()>;

    /// Makes the entries of folder `dir` (files created, renamed or deleted in it) durable.
    fn sync_folder(&self, dir: &Path) -> rusty_leveldb::Result<()>;
}

fn io_status(what: &str, path: &Path, error: std::io::Error) -> Status {
    Status::new(
        StatusCode::IOError,
        &format!("{what} {}: {error}", path.display()),
    )
}

/// The disk, through rusty-leveldb's own environment, with `fdatasync`.
pub(crate) struct Disk(pub(crate) PosixDiskEnv);

impl FileSystem for Disk {
    fn sync(&self, path: &Path) -> rusty_leveldb::Result<()> {
        // An fsync on any descriptor of a file syncs the file.
        File::open(path)
            .and_then(|file| file.sync_data())
            .map_err(|e| io_status("syncing", path, e))
    }

    fn sync_folder(&self, dir: &Path) -> rusty_leveldb::Result<()> {
        File::open(dir)
            .and_then(|folder| folder.sync_all())
            .map_err(|e| io_status("syncing", dir, e))
    }
}

/// Memory: nothing to make durable.
pub(crate) struct Memory(pub(crate) MemEnv);

impl FileSystem for Memory {
    fn sync(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }

    fn sync_folder(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
}

/// Forwards rusty-leveldb's environment to the wrapped one, method by method.
macro_rules! forward_env {
    ($field:tt) => {
        fn open_sequential_file(
            &self,
            p: &std::path::Path,
        ) -> rusty_leveldb::Result<Box<dyn std::io::Read>> {
            self.$field.open_sequential_file(p)
        }
        fn open_random_access_file(
            &self,
            p: &std::path::Path,
        ) -> rusty_leveldb::Result<Box<dyn rusty_leveldb::env::RandomAccess>> {
            self.$field.open_random_access_file(p)
        }
        fn open_writable_file(
            &self,
            p: &std::path::Path,
        ) -> rusty_leveldb::Result<Box<dyn std::io::Write>> {
            self.$field.open_writable_file(p)
        }
        fn open_appendable_file(
            &self,
            p: &std::path::Path,
        ) -> rusty_leveldb::Result<Box<dyn std::io::Write>> {
            self.$field.open_appendable_file(p)
        }
        fn exists(&self, p: &std::path::Path) -> rusty_leveldb::Result<bool> {
            self.$field.exists(p)
        }
        fn children(&self, p: &std::path::Path) -> rusty_leveldb::Result<Vec<std::path::PathBuf>> {
            self.$field.children(p)
        }
        fn size_of(&self, p: &std::path::Path) -> rusty_leveldb::Result<usize> {
            self.$field.size_of(p)
        }
        fn delete(&self, p: &std::path::Path) -> rusty_leveldb::Result<()> {
            self.$field.delete(p)
        }
        fn mkdir(&self, p: &std::path::Path) -> rusty_leveldb::Result<()> {
            self.$field.mkdir(p)
        }
        fn rmdir(&self, p: &std::path::Path) -> rusty_leveldb::Result<()> {
            self.$field.rmdir(p)
        }
        fn rename(
            &self,
            old: &std::path::Path,
            new: &std::path::Path,
        ) -> rusty_leveldb::Result<()> {
            self.$field.rename(old, new)
        }
        fn lock(&self, p: &std::path::Path) -> rusty_leveldb::Result<rusty_leveldb::env::FileLock> {
            self.$field.lock(p)
        }
        fn unlock(&self, l: rusty_leveldb::env::FileLock) -> rusty_leveldb::Result<()> {
            self.$field.unlock(l)
        }
        fn new_logger(
            &self,
            p: &std::path::Path,
        ) -> rusty_leveldb::Result<rusty_leveldb::env::Logger> {
            self.$field.new_logger(p)
        }
        fn micros(&self) -> u64 {
            self.$field.micros()
        }
        fn sleep_for(&self, micros: u32) {
            self.$field.sleep_for(micros)
        }
    };
}

impl Env for Disk {
    forward_env!(0);
}

impl Env for Memory {
    forward_env!(0);
}
