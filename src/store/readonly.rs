//! Reading a database that another process is writing: the engine sees the files as they
//! were when it opened them, and anything it writes (recovering the log into a table, a
//! new manifest) stays in memory.
//!
//! LevelDB lets one process hold a database. A read-only open takes no lock: it opens every
//! file of the database once, keeps the handles (on Unix an open file stays readable after
//! the writer deletes it), and gives rusty-leveldb an environment that serves reads from
//! those handles and keeps writes in memory.
//!
//! The open is consistent when `CURRENT` names the same manifest, of the same length,
//! before and after the files were opened, and the engine is shown the manifest only up
//! to that length. The writer appends an edit to the manifest after it wrote the tables the
//! edit names and before it deletes the tables the edit retires, so every table the edits
//! shown name existed before the listing and was not deleted until after it: all are held.
//! (Reading the manifest to its end instead showed the engine edits appended after the
//! listing, naming tables it did not hold: "missing live files".) The reader then sees the
//! database as of that moment, whatever the writer does next.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{MemEnv, Status, StatusCode};

use crate::error::{Error, Result};

/// How many times an open is retried when a compaction changed the files meanwhile.
const ATTEMPTS: u64 = 20;

/// The files of a database, opened at one moment.
struct Held {
    files: HashMap<OsString, Arc<File>>,
    /// The manifest, and its length at that moment: the engine reads no further.
    manifest: OsString,
    manifest_length: u64,
}

impl Held {
    /// Opens every file in `dir` while its manifest stays current and unchanged.
    fn open(dir: &Path) -> Result<Held> {
        for attempt in 0..ATTEMPTS {
            // A writer that just changed the files is likely to change them again at once
            // (a flush starts a compaction): give it a moment more at each retry.
            std::thread::sleep(std::time::Duration::from_millis(attempt));
            let before = read_current(dir)?;
            let manifest = OsString::from(String::from_utf8_lossy(&before).trim_end());
            let Some(length) = length_of(&dir.join(&manifest)) else {
                continue;
            };
            let mut files = HashMap::new();
            let entries = std::fs::read_dir(dir)
                .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                let name = entry.file_name();
                if name == "LOCK" {
                    continue;
                }
                match File::open(entry.path()) {
                    Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
                        files.insert(name, Arc::new(file));
                    }
                    // Deleted since the listing, or not a file: not part of the database.
                    _ => {}
                }
            }
            let unchanged = files
                .get(&manifest)
                .is_some_and(|file| file.metadata().is_ok_and(|m| m.len() == length));
            if unchanged && read_current(dir)? == before {
                return Ok(Held {
                    files,
                    manifest,
                    manifest_length: length,
                });
            }
        }
        Err(Error::Storage(format!(
            "{} kept changing while it was being opened for reading; try again",
            dir.display()
        )))
    }

    /// The held file called `name`, and how much of it the engine may read.
    fn get(&self, name: &OsStr) -> Option<(&Arc<File>, u64)> {
        let file = self.files.get(name)?;
        let end = if name == self.manifest {
            self.manifest_length
        } else {
            u64::MAX
        };
        Some((file, end))
    }
}

fn length_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn read_current(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join("CURRENT");
    std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

fn not_found(path: &Path) -> Status {
    Status::new(
        StatusCode::NotFound,
        &format!("{} is not part of the database", path.display()),
    )
}

/// Reads a held file at `offset`, no further than `end`.
fn read_held(file: &File, end: u64, dst: &mut [u8], offset: u64) -> io::Result<usize> {
    let room = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
    let len = dst.len().min(room);
    std::os::unix::fs::FileExt::read_at(file, &mut dst[..len], offset)
}

/// Reads a held file sequentially.
struct HeldReader {
    file: Arc<File>,
    end: u64,
    offset: u64,
}

impl Read for HeldReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_held(&self.file, self.end, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Reads a held file at any offset.
struct HeldRandom {
    file: Arc<File>,
    end: u64,
}

impl RandomAccess for HeldRandom {
    fn read_at(&self, off: usize, dst: &mut [u8]) -> rusty_leveldb::Result<usize> {
        Ok(read_held(&self.file, self.end, dst, off as u64)?)
    }
}

/// The environment of a read-only open: held files underneath, memory on top.
pub(crate) struct ReadOnlyEnv {
    held: Held,
    memory: MemEnv,
    /// Files deleted or renamed away (in memory only).
    gone: RefCell<HashSet<PathBuf>>,
}

impl ReadOnlyEnv {
    /// Opens the files of the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<ReadOnlyEnv> {
        Ok(ReadOnlyEnv {
            held: Held::open(dir)?,
            memory: MemEnv::new(),
            gone: RefCell::new(HashSet::new()),
        })
    }

    fn in_memory(&self, p: &Path) -> bool {
        self.memory.exists(p).unwrap_or(false)
    }

    fn held(&self, p: &Path) -> Option<(&Arc<File>, u64)> {
        if self.gone.borrow().contains(p) {
            return None;
        }
        p.file_name().and_then(|name| self.held.get(name))
    }

    /// Copies a held file into memory, so it can be changed there.
    fn lift(&self, p: &Path) -> rusty_leveldb::Result<()> {
        if self.in_memory(p) {
            return Ok(());
        }
        if let Some((file, end)) = self.held(p) {
            let mut bytes = Vec::new();
            HeldReader {
                file: file.clone(),
                end,
                offset: 0,
            }
            .read_to_end(&mut bytes)?;
            self.memory.open_writable_file(p)?.write_all(&bytes)?;
        }
        Ok(())
    }
}

impl super::fs::FileSystem for ReadOnlyEnv {
    // Nothing a read-only open writes reaches the disk.
    fn sync(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }

    fn sync_folder(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
}

impl Env for ReadOnlyEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        if self.in_memory(p) {
            return self.memory.open_sequential_file(p);
        }
        match self.held(p) {
            Some((file, end)) => Ok(Box::new(HeldReader {
                file: file.clone(),
                end,
                offset: 0,
            })),
            None => Err(not_found(p)),
        }
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        if self.in_memory(p) {
            return self.memory.open_random_access_file(p);
        }
        match self.held(p) {
            Some((file, end)) => Ok(Box::new(HeldRandom {
                file: file.clone(),
                end,
            })),
            None => Err(not_found(p)),
        }
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.gone.borrow_mut().insert(p.to_path_buf());
        self.memory.open_writable_file(p)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.lift(p)?;
        self.gone.borrow_mut().insert(p.to_path_buf());
        self.memory.open_appendable_file(p)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        Ok(self.in_memory(p) || self.held(p).is_some())
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        let mut names: Vec<PathBuf> = self
            .held
            .files
            .keys()
            .map(PathBuf::from)
            .filter(|name| !self.gone.borrow().contains(&p.join(name)))
            .collect();
        for name in self.memory.children(p).unwrap_or_default() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        if self.in_memory(p) {
            return self.memory.size_of(p);
        }
        match self.held(p) {
            Some((file, end)) => Ok(file.metadata()?.len().min(end) as usize),
            None => Err(not_found(p)),
        }
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        if self.in_memory(p) {
            self.memory.delete(p)?;
        }
        self.gone.borrow_mut().insert(p.to_path_buf());
        Ok(())
    }
    fn mkdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rmdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        self.lift(old)?;
        self.memory.rename(old, new)?;
        let mut gone = self.gone.borrow_mut();
        gone.insert(old.to_path_buf());
        gone.insert(new.to_path_buf());
        Ok(())
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        Ok(FileLock {
            id: p.to_string_lossy().into_owned(),
        })
    }
    fn unlock(&self, _: FileLock) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn new_logger(&self, _: &Path) -> rusty_leveldb::Result<Logger> {
        Ok(Logger::new(Box::new(io::sink())))
    }
    fn micros(&self) -> u64 {
        self.memory.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.memory.sleep_for(micros)
    }
}
