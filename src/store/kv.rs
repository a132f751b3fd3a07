//! The storage layer: the only code in strata that touches rusty-leveldb.
//!
//! rusty-leveldb 4.0.2 has verified bugs (see `docs/architecture.md`, "Storage"): `DB::get`
//! can miss a live key when a tombstone of a larger key sits next to it in an overlapping
//! table, `prev` and reverse iteration return stale or deleted entries, `WriteBatch::clear`
//! corrupts the batch, and nothing is ever fsynced. This module exposes only what is
//! verified correct: forward seeks and scans, point gets built on a seek plus a key-equality
//! check, atomic writes of a fresh batch, and a durable commit that fsyncs the write-ahead
//! log (and any table, manifest or directory that changed) itself. Two more engine bugs are
//! avoided by configuration: table building panics with the default comparator's key
//! shortening (an empty key, or a key followed by itself plus `0x00`), and a reused log or
//! manifest that ends in a record torn by a crash loses or corrupts later writes.
//!
//! About 830 lines, 120 of them tests: every workaround of an engine bug, and every way of
//! walking the engine's iterator, sits beside the one handle it guards, so that no other
//! file touches rusty-leveldb.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use rusty_leveldb::compressor::{CompressorId, SnappyCompressor};
use rusty_leveldb::env::Env;
use rusty_leveldb::{
    DB, DBIterator, LdbIterator, MemEnv, Options, PosixDiskEnv, StatusCode, WriteBatch,
};

use super::damage;
use super::env::{Pins, StoreEnv};
use super::fs::{Disk, FileSystem, Memory};
use super::readonly::ReadOnlyEnv;
use super::verify::Damage;

use crate::error::{Error, Result};

/// How far a write must have travelled before the call that made it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Handed to the operating system: survives a crash of this process (`kill -9`), not a
    /// power loss or kernel crash.
    #[default]
    Flushed,
    /// fsynced to the disk: survives a power loss as well. Costs one `fdatasync` per commit.
    Synced,
}

/// A set of puts and deletes applied atomically by [`Kv::write`]. A fresh batch is built
/// for every write: rusty-leveldb's `WriteBatch::clear` corrupts the batch it clears.
#[derive(Default)]
pub struct Batch {
    inner: WriteBatch,
}

impl Batch {
    /// Adds a put of `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.inner.put(key, value);
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.inner.delete(key);
    }

    /// How many operations the batch holds.
    pub fn len(&self) -> usize {
        self.inner.count() as usize
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open LevelDB database, on disk or in memory.
pub struct Kv {
    db: DB,
    /// The database directory; `None` when nothing it writes can be made durable (in
    /// memory, or a read-only open).
    dir: Option<PathBuf>,
    /// One iterator serves every read until the next write: creating an iterator merges
    /// every table's iterator, which costs as much as the seek itself.
    reader: Option<DBIterator>,
    /// The write-ahead log last synced: when a newer one appears, the folder entry that
    /// names it is synced too.
    synced_log: Option<PathBuf>,
    /// Pinned snapshots: an iterator keeps the state of the database as of its creation.
    pinned: HashMap<u64, DBIterator>,
    next_pin: u64,
    /// While set, every read goes through this pinned snapshot (see `Kv::begin_reading`).
    reading_at: Option<u64>,
    /// Records read ahead by [`Kv::read_ahead`], by prefix, until the next write.
    ahead: HashMap<Vec<u8>, Ahead>,
    /// The engine's environment (its file system, made durable; see `env`), and the
    /// pinned snapshots it keeps table files for.
    env: StoreEnv,
    pins: Rc<RefCell<Pins>>,
}

/// A pinned snapshot of a [`Kv`]: the database as it was when [`Kv::pin`] was called,
/// readable through `Kv::begin_reading` however much is written afterwards, until unpinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot(u64);

fn engine_error(status: rusty_leveldb::Status) -> Error {
    Error::Storage(status.to_string())
}

/// Bytewise order, named like LevelDB's own comparator (so files stay compatible), whose
/// index separators are the keys themselves: rusty-leveldb's `DefaultCmp::find_shortest_sep`
/// panics on an empty key and returns `b` itself when `b == a + [0x00]`.
struct Bytewise;

impl rusty_leveldb::Cmp for Bytewise {
    fn cmp(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.cmp(b)
    }
    fn find_shortest_sep(&self, a: &[u8], _b: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
    fn find_short_succ(&self, a: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
    fn id(&self) -> &'static str {
        "leveldb.BytewiseComparator"
    }
}

/// The records stored under one prefix, as [`Kv::read_ahead`] found them.
pub(crate) struct Ahead {
    /// In key order: the first `per_prefix` records under the prefix.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether `records` are all of them.
    pub complete: bool,
}

/// How [`walk_to`] reached the entry it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    /// Where the walk was, or a few steps on.
    Walking,
    /// By a seek, the walk not being placed or not meant to step.
    Seeking,
    /// By a seek, after steps failed to reach it.
    SeekingAfterSteps,
}

/// Moves a walk through ascending keys to `key`: to the first entry at or after it, which
/// it returns. When `placed` (the iterator sits where this walk left it, past every earlier
/// key with nothing stored in between), the entry it sits on answers at once if it is at or
/// after `key` (a key in a gap of the data costs nothing), and up to `steps` steps forward
/// are tried; otherwise it seeks, which merges every table and loads a block from each
/// table and level, so for keys a few entries apart steps cost far less. (An exhausted or
/// fresh iterator is never placed: it would restart at the first key.)
fn walk_to(
    it: &mut DBIterator,
    key: &[u8],
    placed: bool,
    steps: usize,
) -> (Option<(Bytes, Bytes)>, Reached) {
    if placed {
        for taken in 0..=steps {
            match it.current() {
                Some((k, v)) if k.as_ref() >= key => return (Some((k, v)), Reached::Walking),
                Some(_) if taken < steps && it.advance() => {}
                _ => break,
            }
        }
    }
    it.seek(key);
    let reached = match placed && steps > 0 {
        true => Reached::SeekingAfterSteps,
        false => Reached::Seeking,
    };
    (it.current(), reached)
}

/// How many entries [`Kv::get_ascending`] steps over before it seeks instead.
pub(crate) const STEPS: usize = 16;

/// Blocks the engine's block cache holds. rusty-leveldb sizes its cache in blocks
/// (`block_cache_capacity_bytes / block_size`), not bytes, and a block ends only after a
/// whole record, so a cached block is up to `block_size` plus one record: the cache's
/// memory is bounded by this count times the largest records strata writes (payload
/// chunks stop near 4 KiB; a row entry holds its row's value, so large rows make large
/// blocks). At 8,192 blocks (32 MiB of 4 KiB blocks) and 120 KiB chunks, compactions
/// filled the cache with chunk blocks and a 10^7-row import passed 800 MB.
const CACHED_BLOCKS: usize = 4096;

/// The memtable's size before it is written out as a table.
pub(crate) const WRITE_BUFFER: usize = 32 << 20;

/// How much write-ahead log a writable database may leave behind when it closes. Every
/// open replays the log into memory, and a read-only open (every CLI read) cannot write
/// it out, so each paid for it again: `strata get` took 0.5 s and 63 MB after an import
/// had left 13 MB of log. Past this size the memtable is written out as a table at close,
/// once; a small log (a `strata put`) is left, since writing a table costs fsyncs.
const LOG_LEFT_AT_CLOSE: usize = 1 << 20;

/// A key below every stored key, so in no table's range: strata's keys start with `!`,
/// and the tests' with letters.
const NO_TABLE: &[u8] = &[0];

fn options(mut base: Options, env: &StoreEnv) -> Options {
    base.env = Rc::new(Box::new(env.clone()));
    base.cmp = std::rc::Rc::new(Box::new(Bytewise));
    // A reused log (or manifest) that ends in a torn record gets new records appended
    // after the tear, which the next recovery then drops or splices onto it.
    base.reuse_logs = false;
    base.reuse_manifest = false;
    base.compressor = SnappyCompressor::ID;
    base.create_if_missing = true;
    base.block_cache_capacity_bytes = CACHED_BLOCKS * base.block_size;
    base.max_file_size = 8 << 20;
    base.write_buffer_size = WRITE_BUFFER;
    base
}

impl Kv {
    /// Opens (creating if needed) the database in directory `dir`.
    pub fn open(dir: &Path) -> Result<Kv> {
        Kv::open_on(dir, Rc::new(Disk(PosixDiskEnv::new())), WRITE_BUFFER)
    }

    /// Opens (creating if needed) the database in directory `dir` of file system `fs`,
    /// writing a table out every `write_buffer` bytes (small in the power-loss tests, to
    /// crash in the middle of many table writes and compactions).
    pub(crate) fn open_on(dir: &Path, fs: Rc<dyn FileSystem>, write_buffer: usize) -> Result<Kv> {
        fs.mkdir(dir).map_err(engine_error)?;
        let (env, pins) = Kv::environment(fs);
        refuse_damaged_locked(&env, dir)?;
        let mut base = options(Options::default(), &env);
        base.write_buffer_size = write_buffer;
        base.max_file_size = base.max_file_size.min(write_buffer.max(1 << 16));
        let db = DB::open(dir, base).map_err(|status| {
            if status.code == StatusCode::LockError {
                Error::Locked {
                    path: dir.to_path_buf(),
                    holder: None,
                }
            } else {
                engine_error(status)
            }
        })?;
        let mut kv = Kv::around(db, Some(dir.to_path_buf()), env, pins);
        // A freshly created database must survive a power loss before its first commit.
        kv.sync_files()?;
        Ok(kv)
    }

    /// Opens the existing database in `dir` for reading, beside whatever process holds it:
    /// no lock is taken, the files are read as they are now, and nothing is written to
    /// disk (see `readonly`).
    pub fn open_read_only(dir: &Path) -> Result<Kv> {
        // The in-memory layer loses a table recovered from the log under a relative path
        // (`NotFound: db/000008.ldb is not part of the database`): work on an absolute one.
        let dir = &std::path::absolute(dir)
            .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
        let (env, pins) = Kv::environment(Rc::new(ReadOnlyEnv::open(dir)?));
        refuse_damaged(&env, dir)?;
        let mut base = options(Options::default(), &env);
        base.create_if_missing = false;
        let db = DB::open(dir, base).map_err(engine_error)?;
        Ok(Kv::around(db, None, env, pins))
    }

    /// Opens a fresh database that lives in memory only.
    pub fn in_memory() -> Result<Kv> {
        let (env, pins) = Kv::environment(Rc::new(Memory(MemEnv::new())));
        let db = DB::open("strata-mem", options(rusty_leveldb::in_memory(), &env))
            .map_err(engine_error)?;
        Ok(Kv::around(db, None, env, pins))
    }

    fn environment(fs: Rc<dyn FileSystem>) -> (StoreEnv, Rc<RefCell<Pins>>) {
        let pins = Rc::default();
        (StoreEnv::new(fs, Rc::clone(&pins)), pins)
    }

    fn around(db: DB, dir: Option<PathBuf>, env: StoreEnv, pins: Rc<RefCell<Pins>>) -> Kv {
        Kv {
            db,
            dir,
            reader: None,
            synced_log: None,
            pinned: HashMap::new(),
            next_pin: 0,
            reading_at: None,
            ahead: HashMap::new(),
            env,
            pins,
        }
    }

    fn reader(&mut self) -> Result<&mut DBIterator> {
        if let Some(id) = self.reading_at {
            return self
                .pinned
                .get_mut(&id)
                .ok_or_else(|| Error::InvalidArgument("reading an unpinned snapshot".into()));
        }
        if self.reader.is_none() {
            self.reader = Some(self.db.new_iter().map_err(engine_error)?);
        }
        Ok(self.reader.as_mut().expect("reader was just set"))
    }

    /// The value stored under exactly `key`.
    ///
    /// Implemented as a seek plus a key comparison, never with `DB::get` (which can return
    /// `None` for live keys).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let it = self.reader()?;
        it.seek(key);
        let found = match it.current() {
            Some((k, v)) if k.as_ref() == key => Some(v.to_vec()),
            _ => None,
        };
        self.intact()?;
        Ok(found)
    }

    /// The value stored under exactly each of `keys`, which must ascend: the answers
    /// [`Kv::get`] gives, in order, walking from one key to the next ([`walk_to`]). When
    /// `step` is set, each key is first looked for by stepping forward from the previous
    /// one, up to [`STEPS`] entries, and sought only past that (for a dense share of a key
    /// family).
    pub(crate) fn get_ascending(
        &mut self,
        keys: &[Vec<u8>],
        step: bool,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let it = self.reader()?;
        let mut found = Vec::with_capacity(keys.len());
        let steps = if step { STEPS } else { 0 };
        let mut placed = false;
        for key in keys {
            let (current, _) = walk_to(it, key, placed, steps);
            placed = current.is_some();
            found.push(match current {
                Some((k, v)) if k.as_ref() == key.as_slice() => Some(v.to_vec()),
                _ => None,
            });
        }
        self.intact()?;
        Ok(found)
    }

    /// Reads the first `per_prefix` records under each of `prefixes` (ascending) and keeps
    /// them, in place of what was read ahead before, for [`Kv::ahead`] until the next write;
    /// it stops once it holds `max_bytes` (the prefixes after are simply not read ahead).
    /// One iterator walks forward through them all ([`walk_to`]): a prefix that falls in a
    /// gap of the data, or past its end, costs no seek at all, and a prefix a few entries on
    /// is reached by stepping. Does nothing while reads go to a pinned snapshot, or when
    /// every prefix is already read ahead.
    pub(crate) fn read_ahead(
        &mut self,
        prefixes: &[Vec<u8>],
        per_prefix: usize,
        max_bytes: usize,
    ) -> Result<()> {
        if self.reading_at.is_some() || prefixes.iter().all(|p| self.ahead.contains_key(p)) {
            return Ok(());
        }
        self.ahead.clear();
        let mut ahead = HashMap::with_capacity(prefixes.len());
        let it = self.reader()?;
        let mut placed = false;
        // Steps are tried only while they pay: after stepping fails to reach a prefix
        // (the prefixes are sparse among the records), the next `skip` prefixes are sought
        // at once, `backoff` doubling with each failure.
        let (mut skip, mut backoff) = (0u32, 1u32);
        let mut held = 0;
        for prefix in prefixes {
            if held >= max_bytes {
                break;
            }
            let steps = if skip == 0 { STEPS } else { 0 };
            skip = skip.saturating_sub(1);
            let (mut at, reached) = walk_to(it, prefix, placed, steps);
            match reached {
                Reached::Walking => backoff = 1,
                Reached::Seeking => {}
                Reached::SeekingAfterSteps => {
                    skip = backoff;
                    backoff = backoff.saturating_mul(2).min(1024);
                }
            }
            placed = at.is_some();
            let mut records = Vec::new();
            let mut complete = true;
            while let Some((k, v)) = at.take() {
                if !k.starts_with(prefix) {
                    break;
                }
                if records.len() == per_prefix {
                    complete = false;
                    break;
                }
                held += k.len() + v.len();
                records.push((k.to_vec(), v.to_vec()));
                if it.advance() {
                    at = it.current();
                } else {
                    placed = false;
                }
            }
            ahead.insert(prefix.clone(), Ahead { records, complete });
        }
        self.intact()?;
        self.ahead = ahead;
        Ok(())
    }

    /// What [`Kv::read_ahead`] found under `prefix`, if it was read ahead and nothing has
    /// been written since (and reads go to the live state).
    pub(crate) fn ahead(&self, prefix: &[u8]) -> Option<&Ahead> {
        match self.reading_at {
            Some(_) => None,
            None => self.ahead.get(prefix),
        }
    }

    /// Whether reads go to the live state (not to a pinned snapshot).
    pub(crate) fn is_live(&self) -> bool {
        self.reading_at.is_none()
    }

    /// Whether `key` is stored.
    pub fn contains(&mut self, key: &[u8]) -> Result<bool> {
        let it = self.reader()?;
        it.seek(key);
        let found = matches!(it.current(), Some((k, _)) if k.as_ref() == key);
        self.intact()?;
        Ok(found)
    }

    /// Every problem with the database's files (reading every block of every table), and
    /// the damage reads have met since it was opened: one line each.
    pub(crate) fn storage_problems(&self) -> Result<Vec<String>> {
        let mut problems = match &self.dir {
            Some(dir) => damage::diagnose(&self.env, dir, true)?,
            None => Vec::new(),
        };
        problems.extend(self.env.damage().all());
        Ok(problems)
    }

    /// Fails once any read has met a damaged table: what the engine returned may lack the
    /// rows of the block it skipped.
    fn intact(&self) -> Result<()> {
        match self.env.damage().first() {
            None => Ok(()),
            Some(damage) => Err(damaged(damage)),
        }
    }

    /// A forward scan over keys `start <= key < end`, in bytewise order.
    pub fn scan(&mut self, start: &[u8], end: &[u8]) -> Result<Scan<'_>> {
        let damage = self.env.damage().clone();
        let it = self.reader()?;
        it.seek(start);
        Ok(Scan {
            it,
            damage,
            floor: start.to_vec(),
            end: end.to_vec(),
            started: false,
            done: false,
        })
    }

    /// A forward scan over every key that starts with `prefix`.
    pub fn scan_prefix(&mut self, prefix: &[u8]) -> Result<Scan<'_>> {
        let end = prefix_end(prefix);
        self.scan(prefix, &end)
    }

    /// Applies `batch` atomically: after a crash either all of it is there or none of it.
    pub fn write(&mut self, batch: Batch, durability: Durability) -> Result<()> {
        if self.reading_at.is_some() {
            return Err(Error::InvalidArgument(
                "cannot write while reading a snapshot".into(),
            ));
        }
        self.reader = None;
        self.ahead.clear();
        if batch.is_empty() {
            return Ok(());
        }
        // sync=true hands the log record to the OS; without it the record may sit in an
        // 8 KiB user-space buffer that a process crash loses.
        self.db.write(batch.inner, true).map_err(engine_error)?;
        if durability == Durability::Synced {
            self.sync_files()?;
        }
        Ok(())
    }

    /// Pins the database's current state: reads made while reading it see exactly this
    /// state until [`Kv::unpin`], whatever is written meanwhile. (A pinned snapshot keeps
    /// the table files it reads from; unpin it when done.)
    pub fn pin(&mut self) -> Result<Snapshot> {
        let iterator = self.db.new_iter().map_err(engine_error)?;
        self.next_pin += 1;
        self.pinned.insert(self.next_pin, iterator);
        self.pins.borrow_mut().pin();
        Ok(Snapshot(self.next_pin))
    }

    /// Releases a pinned snapshot; once none is left, the table files compactions made
    /// obsolete meanwhile are deleted.
    pub fn unpin(&mut self, snapshot: Snapshot) {
        if self.pinned.remove(&snapshot.0).is_none() {
            return;
        }
        let obsolete = self.pins.borrow_mut().unpin();
        for file in obsolete {
            // An obsolete table left behind is harmless: the next open removes it.
            let _ = self.env.delete(&file);
        }
    }

    /// Runs `read` with every read of this database seeing `snapshot`; writes are refused
    /// meanwhile. Reads go back to the live state afterwards, whatever `read` returns.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn read_at<T>(
        &mut self,
        snapshot: Snapshot,
        read: impl FnOnce(&mut Kv) -> Result<T>,
    ) -> Result<T> {
        let outer = self.begin_reading(snapshot)?;
        let result = read(self);
        self.end_reading(outer);
        result
    }

    /// Sends every read to `snapshot` until [`Kv::end_reading`] with the returned value
    /// (the store's `Tables::read_at` pairs the two, so it cannot forget to end).
    pub(crate) fn begin_reading(&mut self, snapshot: Snapshot) -> Result<Option<u64>> {
        if !self.pinned.contains_key(&snapshot.0) {
            return Err(Error::InvalidArgument(
                "reading an unpinned snapshot".into(),
            ));
        }
        Ok(self.reading_at.replace(snapshot.0))
    }

    pub(crate) fn end_reading(&mut self, outer: Option<u64>) {
        self.reading_at = outer;
    }

    /// Returns reads to the live state (after a panic interrupted a pinned read).
    pub(crate) fn stop_reading_snapshots(&mut self) {
        self.reading_at = None;
    }

    /// Compacts the whole key range.
    pub fn compact(&mut self) -> Result<()> {
        self.reader = None;
        self.db
            .compact_range(&[], &[0xff; 64])
            .map_err(engine_error)
    }

    /// Flushes buffers and releases the lock. Dropping a `Kv` does the same, ignoring errors.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn close(mut self) -> Result<()> {
        self.leave_log_short();
        // Nothing more is written once the lock is released (see `Drop`).
        self.dir = None;
        self.reader = None;
        self.db.close().map_err(engine_error)
    }

    /// Writes the memtable out as a table when the write-ahead log has grown past
    /// `LOG_LEFT_AT_CLOSE`, so that the next open need not replay it. Errors are ignored:
    /// the log still holds every write, and the next open recovers it as before.
    fn leave_log_short(&mut self) {
        if self.dir.is_none() || self.env.damage().seen() {
            return;
        }
        let Some(log) = self.env.current_log() else {
            return;
        };
        if self
            .env
            .size_of(&log)
            .is_ok_and(|size| size > LOG_LEFT_AT_CLOSE)
        {
            self.reader = None;
            // A range that holds no table writes the memtable out and compacts nothing
            // else. Not the empty range: the engine reads an empty bound as no bound, and
            // compacted every table.
            let _ = self.db.compact_range(NO_TABLE, NO_TABLE);
        }
    }

    /// Makes every write so far durable: syncs the newest write-ahead log and, when it is
    /// new since the last sync, the folder entry naming it. (Tables, manifests and
    /// `CURRENT` are made durable by the environment as the engine writes them.)
    fn sync_files(&mut self) -> Result<()> {
        let (Some(dir), Some(log)) = (self.dir.clone(), self.env.current_log()) else {
            return Ok(());
        };
        self.env.sync(&log).map_err(engine_error)?;
        if self.synced_log.as_ref() != Some(&log) {
            self.env.sync_folder(&dir).map_err(engine_error)?;
            self.synced_log = Some(log);
        }
        Ok(())
    }
}

impl Drop for Kv {
    fn drop(&mut self) {
        self.leave_log_short();
    }
}

/// The smallest key greater than every key that starts with `prefix`, or an empty vector
/// when there is none (a prefix of all `0xff` bytes): then the scan runs to the end.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    end
}

/// A forward range scan; see [`Kv::scan`]. An empty `end` means "to the last key".
pub struct Scan<'a> {
    it: &'a mut DBIterator,
    /// Checked after every step: a damaged block the engine skipped ends the scan with an
    /// error rather than a quiet gap.
    damage: Damage,
    /// The least key the scan may still return: `start`, then just past the last key
    /// returned. `seek` never goes below it.
    floor: Vec<u8>,
    end: Vec<u8>,
    started: bool,
    /// Set once the scan has ended: an exhausted rusty-leveldb iterator restarts at the
    /// first key on the next `advance`, so it must not be advanced again.
    done: bool,
}

impl Scan<'_> {
    /// Moves the scan forward to the first key `>= key` (never backwards: a key below the
    /// current position is passed over by the next `next`).
    pub fn seek(&mut self, key: &[u8]) {
        if key > self.floor.as_slice() {
            self.floor = key.to_vec();
        }
        self.it.seek(&self.floor);
        self.started = false;
        self.done = false;
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let advanced = !self.started || self.it.advance();
        if let Some(damage) = self.damage.first() {
            self.done = true;
            return Some(Err(damaged(damage)));
        }
        if !advanced {
            self.done = true;
            return None;
        }
        self.started = true;
        let Some((key, value)) = self.it.current() else {
            self.done = true;
            return None;
        };
        if !self.end.is_empty() && key.as_ref() >= self.end.as_slice() {
            self.done = true;
            return None;
        }
        self.floor.clear();
        self.floor.extend_from_slice(&key);
        self.floor.push(0);
        Some(Ok((key.to_vec(), value.to_vec())))
    }
}

/// `refuse_damaged` for a database another process may be writing: what looks like damage
/// may be that process's compaction caught half way (a table deleted after the manifest
/// was read), so it counts only when seen again under the engine's lock; while another
/// process holds that lock, the database is reported locked (and the open waits).
fn refuse_damaged_locked(env: &StoreEnv, dir: &Path) -> Result<()> {
    if damage::diagnose(env, dir, false)?.is_empty() {
        return Ok(());
    }
    let lock = env.lock(&dir.join("LOCK")).map_err(|_| Error::Locked {
        path: dir.to_path_buf(),
        holder: None,
    })?;
    let checked = refuse_damaged(env, dir);
    let _ = env.unlock(lock);
    checked
}

/// Refuses to let the engine open a damaged database (it would hide the damage and lose
/// what lies beyond it for good; see `damage`).
fn refuse_damaged(env: &StoreEnv, dir: &Path) -> Result<()> {
    let problems = damage::diagnose(env, dir, false)?;
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(Error::Corrupt(format!(
            "{first}{}; fsck lists all damage, repair recovers what is readable",
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems)", n - 1),
            }
        ))),
    }
}

fn damaged(damage: String) -> Error {
    Error::Corrupt(format!(
        "{damage}; fsck lists all damage, repair recovers what is readable"
    ))
}

// SAFETY: rusty-leveldb's `DB` is `Send` (the crate asserts it) on the condition that no
// `Rc`-sharing companion of it (an `Options` clone, a `Snapshot`, a `DBIterator`) is used
// on another thread at the same time. A `Kv` owns the `DB` and all such companions (the
// cached reader, the pinned snapshots' iterators, and the `Rc`s of the environment and its
// pin count, which only the `DB`'s options share); `Scan` borrows the `Kv` mutably, and
// a `Snapshot` handle is only a number, so no companion outlives or escapes it.
// All of them therefore move between threads together and are only touched through
// `&mut Kv`, which is exclusive.
unsafe impl Send for Kv {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `get_ascending` answers as `get` does for each key, stepping or not: for stored,
    /// missing, deleted and overwritten keys, past the last key, and across the memtable
    /// and tables (a compaction moves the first writes into tables).
    #[test]
    fn get_ascending_answers_as_get() {
        let mut kv = Kv::in_memory().expect("open");
        let key = |i: u32| format!("k{i:05}").into_bytes();
        for round in 0..3u32 {
            let mut batch = Batch::default();
            for i in (round..600).step_by(3) {
                batch.put(&key(i), format!("v{i}-{round}").as_bytes());
            }
            for i in (0..600).step_by(7) {
                batch.delete(&key(i + round));
            }
            kv.write(batch, Durability::Flushed).expect("write");
            if round == 0 {
                kv.compact().expect("compact");
            }
        }
        for stride in [1, 2, 5, 40] {
            let keys: Vec<Vec<u8>> = (0..650).step_by(stride).map(key).collect();
            let expected: Vec<Option<Vec<u8>>> =
                keys.iter().map(|k| kv.get(k).expect("get")).collect();
            for step in [false, true] {
                assert_eq!(kv.get_ascending(&keys, step).expect("read"), expected);
            }
        }
    }

    /// `read_ahead` finds under each prefix what a prefix scan finds (the first
    /// `per_prefix`, and whether that is all), for prefixes dense and sparse among the
    /// records, with none, one and many records, deleted ones, past the last record, and
    /// across the memtable and tables; what it read is forgotten at the next write.
    #[test]
    fn read_ahead_finds_what_scans_find_until_the_next_write() {
        let mut kv = Kv::in_memory().expect("open");
        let prefix = |i: u32| format!("p{i:05}/").into_bytes();
        for round in 0..3u32 {
            let mut batch = Batch::default();
            for i in (round..2000).step_by(3) {
                // Row i holds i % 23 records: none, one, or more than `per_prefix`.
                for n in 0..i % 23 {
                    let mut key = prefix(i);
                    key.extend_from_slice(format!("{n:02}").as_bytes());
                    batch.put(&key, format!("v{i}-{n}-{round}").as_bytes());
                }
            }
            for i in (0..2000).step_by(7) {
                let mut key = prefix(i + round);
                key.extend_from_slice(b"00");
                batch.delete(&key);
            }
            kv.write(batch, Durability::Flushed).expect("write");
            if round == 0 {
                kv.compact().expect("compact");
            }
        }
        let per_prefix = 8;
        // A write outside the prefixes makes each walk start afresh (what is read ahead is
        // kept for as long as nothing is written).
        let touch = |kv: &mut Kv| {
            let mut batch = Batch::default();
            batch.put(b"q", b"-");
            kv.write(batch, Durability::Flushed).expect("write");
        };
        for stride in [1, 2, 9, 150] {
            touch(&mut kv);
            let prefixes: Vec<Vec<u8>> = (0..2100).step_by(stride).map(prefix).collect();
            type Records = Vec<(Vec<u8>, Vec<u8>)>;
            let expected: Vec<(Records, bool)> = prefixes
                .iter()
                .map(|p| {
                    let all: Vec<(Vec<u8>, Vec<u8>)> = kv
                        .scan_prefix(p)
                        .expect("scan")
                        .collect::<Result<_>>()
                        .expect("records");
                    let complete = all.len() <= per_prefix;
                    (all.into_iter().take(per_prefix).collect(), complete)
                })
                .collect();
            kv.read_ahead(&prefixes, per_prefix, usize::MAX)
                .expect("read ahead");
            for (p, (records, complete)) in prefixes.iter().zip(&expected) {
                let ahead = kv.ahead(p).expect("read ahead");
                assert_eq!(&ahead.records, records, "{}", String::from_utf8_lossy(p));
                assert_eq!(ahead.complete, *complete);
            }
        }
        touch(&mut kv);
        let prefixes: Vec<Vec<u8>> = (0..2100).map(prefix).collect();
        kv.read_ahead(&prefixes, per_prefix, 1000)
            .expect("read ahead");
        let held: Vec<&Vec<u8>> = prefixes.iter().filter(|p| kv.ahead(p).is_some()).collect();
        assert!(
            held.len() < 100,
            "stops at the byte limit: {} prefixes",
            held.len()
        );
        assert_eq!(held, prefixes[..held.len()].iter().collect::<Vec<_>>());
        let mut batch = Batch::default();
        batch.put(b"p00001/99", b"new");
        kv.write(batch, Durability::Flushed).expect("write");
        assert!(
            kv.ahead(&prefix(1)).is_none(),
            "a write forgets what was read ahead"
        );
    }
}
