//! A file system in memory that can lose power, for the power-loss tests (as LevelDB's own
//! fault-injection test does): it remembers what was synced and, at a simulated power loss,
//! keeps only that.
//!
//! Files are written to a "page cache" (their current bytes). Syncing a file makes its
//! current bytes durable; syncing a folder makes its current entries durable (files
//! created, renamed and deleted in it). After [`CrashFs::lose_power`], every file holds its
//! last synced bytes and every folder its last synced entries: unsynced writes, unsynced new
//! files and unsynced renames and deletions are gone. A countdown makes the power go at
//! any chosen operation: from then on every operation fails, as if the process had died
//! there (or, as a glitch, only that one operation fails). A harsher power loss also keeps random parts of what was not synced (torn tails,
//! half-applied folder changes), which a real disk may do.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{Status, StatusCode};

use super::fs::FileSystem;

#[derive(Default)]
struct Data {
    current: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Default)]
struct State {
    files: HashMap<u64, Data>,
    /// Every file's path, as the page cache has them.
    names: BTreeMap<PathBuf, u64>,
    /// The paths as the disk has them (as of each folder's last sync).
    durable: BTreeMap<PathBuf, u64>,
    next_id: u64,
    /// Operations left before the power goes; `None`: never.
    budget: Option<u64>,
    down: bool,
    /// The countdown ends in one failed operation, not a power loss.
    glitch: bool,
    /// Operations done since the last power loss.
    operations: u64,
    locks: HashSet<PathBuf>,
}

/// A file system in memory that can lose power; see the module docs.
#[derive(Clone, Default)]
pub struct CrashFs(Arc<Mutex<State>>);

fn power_lost() -> Status {
    Status::new(StatusCode::IOError, "simulated power loss")
}

fn missing(path: &Path) -> Status {
    Status::new(
        StatusCode::NotFound,
        &format!("{} does not exist", path.display()),
    )
}

impl CrashFs {
    /// An empty file system with power that never fails.
    pub fn new() -> CrashFs {
        CrashFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the power go after `operations` more file operations (writes, syncs, creations,
    /// renames, deletions).
    pub fn fail_after(&self, operations: u64) {
        let mut state = self.state();
        state.budget = Some(operations);
        state.down = operations == 0;
        state.glitch = false;
    }

    /// Makes the operation after `operations` more fail with an I/O error, once, with the
    /// power staying on (a transient fault: a full disk, a flaky device).
    pub fn glitch_after(&self, operations: u64) {
        let mut state = self.state();
        state.budget = Some(operations);
        state.glitch = true;
    }

    /// How many operations were done since the last power loss (to choose crash points).
    pub fn operations(&self) -> u64 {
        self.state().operations
    }

    /// Loses power: every file goes back to its last synced bytes, every folder to its last
    /// synced entries, and the power comes back (with no countdown).
    pub fn lose_power(&self) {
        self.restart(None);
    }

    /// Loses power as a real disk may: besides what was synced, some of what was not made it
    /// to the disk before the power went. Each file keeps its synced bytes plus a random
    /// part of the bytes appended after them (a torn tail), and each folder entry changed
    /// since the folder's last sync (a file created, deleted or replaced) has either its old
    /// or its new state, chosen at random from `seed`.
    pub fn lose_power_tearing(&self, seed: u64) {
        self.restart(Some(StdRng::seed_from_u64(seed)));
    }

    fn restart(&self, mut tear: Option<StdRng>) {
        let mut state = self.state();
        let paths: BTreeSet<PathBuf> = state
            .names
            .keys()
            .chain(state.durable.keys())
            .cloned()
            .collect();
        let mut names = BTreeMap::new();
        for path in paths {
            let old = state.durable.get(&path).copied();
            let new = state.names.get(&path).copied();
            let take_new = old != new && tear.as_mut().is_some_and(|rng| rng.random_bool(0.5));
            let chosen = if take_new { new } else { old };
            if let Some(id) = chosen {
                names.insert(path, id);
            }
        }
        let mut files = HashMap::new();
        for id in names.values() {
            let Some(data) = state.files.get(id) else {
                continue;
            };
            let mut kept = data.synced.clone();
            if let Some(rng) = &mut tear
                && data.current.starts_with(&data.synced)
            {
                let tail = &data.current[data.synced.len()..];
                kept.extend_from_slice(&tail[..rng.random_range(0..=tail.len())]);
            }
            files.insert(
                *id,
                Data {
                    current: kept.clone(),
                    synced: kept,
                },
            );
        }
        state.files = files;
        state.durable = names.clone();
        state.names = names;
        state.locks.clear();
        state.budget = None;
        state.down = false;
        state.glitch = false;
        state.operations = 0;
    }

    /// Counts one operation; fails once the power is gone.
    fn spend(&self, state: &mut State) -> rusty_leveldb::Result<()> {
        if state.down {
            return Err(power_lost());
        }
        state.operations += 1;
        if let Some(budget) = &mut state.budget {
            if *budget == 0 {
                if std::mem::take(&mut state.glitch) {
                    state.budget = None;
                    return Err(Status::new(StatusCode::IOError, "simulated glitch"));
                }
                state.down = true;
                return Err(power_lost());
            }
            *budget -= 1;
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> rusty_leveldb::Result<u64> {
        let mut state = self.state();
        self.spend(&mut state)?;
        state.next_id += 1;
        let id = state.next_id;
        state.files.insert(id, Data::default());
        state.names.insert(path.to_path_buf(), id);
        Ok(id)
    }

    fn id(&self, path: &Path) -> rusty_leveldb::Result<u64> {
        let state = self.state();
        if state.down {
            return Err(power_lost());
        }
        state.names.get(path).copied().ok_or_else(|| missing(path))
    }

    fn read_at(&self, id: u64, offset: usize, buf: &mut [u8]) -> io::Result<usize> {
        let state = self.state();
        if state.down {
            return Err(io::Error::other("simulated power loss"));
        }
        let Some(data) = state.files.get(&id) else {
            return Ok(0);
        };
        let bytes = data.current.get(offset..).unwrap_or_default();
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

struct Reader {
    fs: CrashFs,
    id: u64,
    offset: usize,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fs.read_at(self.id, self.offset, buf)?;
        self.offset += n;
        Ok(n)
    }
}

struct Random {
    fs: CrashFs,
    id: u64,
}

impl RandomAccess for Random {
    fn read_at(&self, off: usize, dst: &mut [u8]) -> rusty_leveldb::Result<usize> {
        Ok(self.fs.read_at(self.id, off, dst)?)
    }
}

struct Writer {
    fs: CrashFs,
    id: u64,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.fs.state();
        self.fs
            .spend(&mut state)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(data) = state.files.get_mut(&self.id) {
            data.current.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Env for CrashFs {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        Ok(Box::new(Reader {
            fs: self.clone(),
            id: self.id(p)?,
            offset: 0,
        }))
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        Ok(Box::new(Random {
            fs: self.clone(),
            id: self.id(p)?,
        }))
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        Ok(Box::new(Writer {
            fs: self.clone(),
            id: self.create(p)?,
        }))
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        let id = match self.id(p) {
            Ok(id) => id,
            Err(_) => self.create(p)?,
        };
        Ok(Box::new(Writer {
            fs: self.clone(),
            id,
        }))
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        Ok(self.id(p).is_ok())
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        let state = self.state();
        if state.down {
            return Err(power_lost());
        }
        Ok(state
            .names
            .keys()
            .filter(|path| path.parent() == Some(p))
            .filter_map(|path| path.file_name().map(PathBuf::from))
            .collect())
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        let id = self.id(p)?;
        Ok(self.state().files.get(&id).map_or(0, |d| d.current.len()))
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        let mut state = self.state();
        self.spend(&mut state)?;
        state.names.remove(p).map(|_| ()).ok_or_else(|| missing(p))
    }
    fn mkdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rmdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        let mut state = self.state();
        self.spend(&mut state)?;
        let id = state.names.remove(old).ok_or_else(|| missing(old))?;
        state.names.insert(new.to_path_buf(), id);
        Ok(())
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        let mut state = self.state();
        if !state.locks.insert(p.to_path_buf()) {
            return Err(Status::new(StatusCode::LockError, "locked"));
        }
        Ok(FileLock {
            id: p.to_string_lossy().into_owned(),
        })
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.state().locks.remove(Path::new(&l.id));
        Ok(())
    }
    fn new_logger(&self, _: &Path) -> rusty_leveldb::Result<Logger> {
        Ok(Logger::new(Box::new(io::sink())))
    }
    fn micros(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
    fn sleep_for(&self, micros: u32) {
        std::thread::sleep(std::time::Duration::from_micros(micros.into()));
    }
}

impl FileSystem for CrashFs {
    fn sync(&self, path: &Path) -> rusty_leveldb::Result<()> {
        let mut state = self.state();
        self.spend(&mut state)?;
        let id = *state.names.get(path).ok_or_else(|| missing(path))?;
        if let Some(data) = state.files.get_mut(&id) {
            data.synced = data.current.clone();
        }
        Ok(())
    }

    fn sync_folder(&self, dir: &Path) -> rusty_leveldb::Result<()> {
        let mut state = self.state();
        self.spend(&mut state)?;
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        let current: Vec<(PathBuf, u64)> = state
            .names
            .iter()
            .filter(|(path, _)| in_dir(path))
            .map(|(path, id)| (path.clone(), *id))
            .collect();
        state.durable.retain(|path, _| !in_dir(path));
        state.durable.extend(current);
        Ok(())
    }
}
