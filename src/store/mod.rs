//! The storage seam: the repository's lock, its key-value handle, and a typed accessor for
//! every key family.
//!
//! Everything strata keeps lives in one LevelDB database (through [`kv`], the only code
//! that touches rusty-leveldb). Above this module nobody builds or slices key bytes: the
//! graph and the version index read through [`Tables`] and write through a [`WriteSet`],
//! whose methods name what is stored (a node, a changelog run, a row version, a version
//! record) rather than how its key is spelled. `docs/format.md` lists every family byte by
//! byte; [`keys`] is where each is defined.
//!
//! A [`Store`] is the lock: one `Mutex` around the [`Tables`] (the database plus the caches
//! derived from it), and a condition variable signalled when the graph grows. Every read
//! and write takes the lock for its duration and no longer, so callers that do long work
//! (an ingest, an import, a sync session) do it in bounded steps between which readers get
//! their turn.

mod checkpoint;
#[cfg(feature = "internals")]
pub(crate) mod crash;
mod damage;
mod env;
mod fs;
mod graph_tables;
mod index_tables;
pub mod keys;
pub mod kv;
mod ldb;
mod memo;
mod readonly;
mod rebuild_tables;
mod recent;
mod runs;
mod salvage;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use checkpoint::{Checkpointed, SetChange};
use graph_tables::GraphCounters;
pub(crate) use index_tables::{MergeMark, PayloadWriter, RowScan, Wait};
pub use kv::Durability;
pub(crate) use kv::{Kv, Snapshot};
pub use runs::Entry;
pub(crate) use runs::NewRuns;
// The decoders of changelog runs, for `internals::decoders` (the fuzz targets).
#[cfg(feature = "internals")]
pub use runs::{decode_entries, decode_keys, encode_entries, encode_keys, key_count};
pub use salvage::Salvage;

use crate::error::{Error, Result};

/// The file in the database folder where the process holding it names itself.
const OWNER: &str = "OWNER";

/// How often a waiting open retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// Who holds the database in `dir`, as it recorded itself.
pub(crate) fn holder(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(OWNER))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

/// The lock around a repository's storage, shared by every handle on it.
#[derive(Clone)]
pub(crate) struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    tables: Mutex<Tables>,
    read_only: bool,
    /// Signalled after every write that added graph nodes (live feeds wait on it).
    grown: Condvar,
    path: Option<PathBuf>,
}

/// The storage as seen under the lock: the database and what is cached from it.
pub(crate) struct Tables {
    kv: Kv,
    read_only: bool,
    graph: GraphCounters,
    /// Commits heads of the version index (indexed commits no indexed commit links to),
    /// loaded on first use (`dataset::index::tips`) and kept in step with every write.
    tips: Option<Checkpointed>,
    /// Records every commit reads and rewrites.
    memo: memo::Memo,
}

/// Everything one atomic write stores, with the caches it changes once it has landed.
#[derive(Default)]
pub(crate) struct WriteSet {
    batch: kv::Batch,
    /// How the write changes the graph's heads.
    heads: SetChange,
    /// The last change number after the write, when it stores nodes.
    change_count: Option<u64>,
    /// New nodes as `(key, log)`, for the memory of recent nodes.
    recent: Vec<(String, String)>,
    /// How the write changes the version index's heads.
    tips: SetChange,
    /// What the write changes in the memo of hot records.
    memo: memo::MemoWrites,
}

impl Store {
    /// Opens (creating if needed) the database in directory `dir`.
    /// Waits up to `wait` for a process holding it to let go, then fails with
    /// [`Error::Locked`] naming the holder. The process that opens it records itself as the
    /// holder (`OWNER`: its pid and command line).
    pub(crate) fn open(dir: &Path, wait: Duration) -> Result<Store> {
        let deadline = Instant::now() + wait;
        let kv = loop {
            match Kv::open(dir) {
                Ok(kv) => break kv,
                Err(Error::Locked { path, .. }) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Locked {
                            path,
                            holder: holder(dir),
                        });
                    }
                    std::thread::sleep(LOCK_POLL);
                }
                Err(other) => return Err(other),
            }
        };
        let owner = format!(
            "process {} ({})",
            std::process::id(),
            crate::error::show(std::env::args().collect::<Vec<_>>().join(" ").as_bytes())
        );
        // Only informative (the lock is the truth), so a failure to record it is no error.
        let _ = std::fs::write(dir.join(OWNER), owner);
        Ok(Store::around(kv, Some(dir.to_path_buf()), false))
    }

    /// Opens the existing database in `dir` for reading beside its writer (see
    /// `readonly`): only derived records may be written, and they stay in memory.
    pub(crate) fn open_read_only(dir: &Path) -> Result<Store> {
        let kv = Kv::open_read_only(dir)?;
        Ok(Store::around(kv, Some(dir.to_path_buf()), true))
    }

    /// Opens (creating if needed) the database in `dir` of a simulated file system that can
    /// lose power, with a small memtable so tables are written and compacted often.
    #[cfg(feature = "internals")]
    pub(crate) fn on_crash_fs(dir: &Path, fs: crash::CrashFs) -> Result<Store> {
        let kv = Kv::open_on(dir, std::rc::Rc::new(fs), 64 << 10)?;
        Ok(Store::around(kv, Some(dir.to_path_buf()), false))
    }

    /// Every problem with the files of the database in `dir` (not open anywhere), reading
    /// every block of every table: one line each.
    pub(crate) fn check_files(dir: &Path) -> Result<Vec<String>> {
        salvage::finish_install(dir)?;
        damage::diagnose(&rusty_leveldb::PosixDiskEnv::new(), dir, true)
    }

    /// Rewrites the database in `dir` (not open anywhere) without any record derived from
    /// the nodes (the nodes themselves included: stash them first); the database as it was
    /// is kept beside it, at the path returned.
    pub(crate) fn drop_derived(dir: &Path) -> Result<PathBuf> {
        salvage::rewrite(dir, |key| !rebuild_tables::is_derived(key))
    }

    /// Rebuilds the database in `dir` (not open anywhere) from every entry still readable
    /// in its files, keeping the damaged one beside it (see `salvage`).
    pub(crate) fn salvage(dir: &Path) -> Result<Salvage> {
        salvage::salvage(dir).map_err(|error| match error {
            Error::Locked { path, .. } => Error::Locked {
                holder: holder(&path),
                path,
            },
            other => other,
        })
    }

    /// Whether the database at `dir` is there, or waits beside it to be put in place (a
    /// repair or salvage cut between its two renames; the next open completes it).
    pub(crate) fn exists(dir: &Path) -> bool {
        dir.is_dir() || salvage::interrupted_install(dir).is_some()
    }

    /// Completes a repair's or salvage's install of a new database at `dir` if a crash cut
    /// it short; every open of a database on disk runs this first.
    pub(crate) fn finish_install(dir: &Path) -> Result<()> {
        salvage::finish_install(dir)
    }

    /// A fresh database that lives in memory only.
    pub(crate) fn in_memory() -> Result<Store> {
        Ok(Store::around(Kv::in_memory()?, None, false))
    }

    fn around(kv: Kv, path: Option<PathBuf>, read_only: bool) -> Store {
        Store {
            shared: Arc::new(Shared {
                tables: Mutex::new(Tables {
                    kv,
                    read_only,
                    graph: GraphCounters::default(),
                    tips: None,
                    memo: memo::Memo::default(),
                }),
                read_only,
                grown: Condvar::new(),
                path,
            }),
        }
    }

    /// Whether the store was opened read-only.
    pub(crate) fn read_only(&self) -> bool {
        self.shared.read_only
    }

    /// The directory the database lives in (`None` in memory).
    pub(crate) fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// Takes the lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every write is one atomic batch and the caches change only after it landed, so a
        // panic while the lock was held cannot have left storage or caches half-updated.
        self.shared.tables.lock().unwrap_or_else(|poisoned| {
            let mut tables = poisoned.into_inner();
            tables.kv.stop_reading_snapshots();
            tables
        })
    }

    /// Wakes everyone waiting in [`Store::wait_for_growth`].
    pub(crate) fn notify_grown(&self) {
        self.shared.grown.notify_all();
    }

    /// Blocks until the graph has more than `after` changes or `timeout` passes; returns the
    /// change count then.
    pub(crate) fn wait_for_growth(&self, after: u64, timeout: Option<Duration>) -> u64 {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut tables = self.lock();
        loop {
            let count = tables.known_change_count();
            if count > after {
                return count;
            }
            tables = match deadline {
                None => self
                    .shared
                    .grown
                    .wait(tables)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return count;
                    }
                    self.shared
                        .grown
                        .wait_timeout(tables, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }
}

impl Tables {
    /// Applies `write` atomically and, once it has landed, the cache changes it carries.
    /// Refused when the store is read-only.
    pub(crate) fn commit(&mut self, write: WriteSet, durability: Durability) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.commit_derived(write, durability)
    }

    /// Applies a write of derived records (the version index's), which a read-only store
    /// keeps in memory.
    pub(crate) fn commit_derived(&mut self, write: WriteSet, durability: Durability) -> Result<()> {
        let WriteSet {
            mut batch,
            heads,
            change_count,
            recent,
            tips,
            memo,
        } = write;
        // A set is loaded before a write changes it (the graph and the index read it
        // first), so a write past the checkpoint interval always stores a checkpoint.
        let heads_checkpoint = (self.graph.heads())
            .and_then(|loaded| loaded.checkpoint(&heads, &checkpoint::HEADS, &mut batch));
        let tips_checkpoint = (self.tips.as_ref())
            .and_then(|loaded| loaded.checkpoint(&tips, &checkpoint::TIPS, &mut batch));
        self.kv.write(batch, durability)?;
        self.graph
            .landed(heads, heads_checkpoint, change_count, recent);
        self.memo.landed(memo);
        if let Some(loaded) = &mut self.tips {
            loaded.land(tips, tips_checkpoint);
        }
        Ok(())
    }

    /// Every problem with the storage files, reading every block of every table, and the
    /// damage reads have met since the store was opened: one line each.
    pub(crate) fn storage_problems(&self) -> Result<Vec<String>> {
        self.kv.storage_problems()
    }

    /// Pins the storage's current state (see [`Kv::pin`]).
    pub(crate) fn pin(&mut self) -> Result<Snapshot> {
        self.kv.pin()
    }

    /// Compacts the whole database: merges its tables and drops what was overwritten.
    pub(crate) fn compact(&mut self) -> Result<()> {
        self.kv.compact()
    }

    /// Releases a pinned state.
    pub(crate) fn unpin(&mut self, snapshot: Snapshot) {
        self.kv.unpin(snapshot)
    }

    /// Runs `read` with every storage read seeing `snapshot`; writes are refused meanwhile.
    pub(crate) fn read_at<T>(
        &mut self,
        snapshot: Snapshot,
        read: impl FnOnce(&mut Tables) -> Result<T>,
    ) -> Result<T> {
        let outer = self.kv.begin_reading(snapshot)?;
        let result = read(self);
        self.kv.end_reading(outer);
        result
    }
}
