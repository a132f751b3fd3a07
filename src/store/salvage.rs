//! Salvaging a damaged database: every entry that can still be read from its table files
//! and write-ahead logs goes into a new database, the newest version of each key winning,
//! as LevelDB's own `RepairDB` does (rusty-leveldb has none).
//!
//! Every table file in the folder is read, live or not (an older file may still hold what
//! a damaged block of a newer one held), and every log. Entries are sorted through a
//! scratch database keyed by (key, descending sequence number), so memory stays bounded
//! whatever the size; then the newest entry of each key that is not a deletion is written
//! to the new database. The damaged folder is kept beside the new one, renamed, for
//! whoever wants to look at it.
//!
//! A new database goes in place by two renames (the old one aside, the new one in). A
//! crash between them leaves no database at its path, the complete new one beside it and
//! the old one aside: [`finish_install`] (run by every open) completes the swap, so such a
//! crash never leaves a repository that does not open, nor one that opens empty.

use std::path::{Path, PathBuf};

use rusty_leveldb::PosixDiskEnv;
use rusty_leveldb::env::Env;

use super::damage::{self, File};
use super::keys::{KeyBuf, KeyReader};
use super::kv::{Batch, Durability, Kv};
use super::ldb;
use crate::error::{Error, Result};

/// Entries per write while sorting and copying.
const BATCH: usize = 4096;

/// What a salvage read and lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Salvage {
    /// Table files read.
    pub tables: u64,
    /// Log files read.
    pub logs: u64,
    /// Entries read (every version of every key).
    pub entries: u64,
    /// Keys in the new database.
    pub keys: u64,
    /// What could not be read, one line each (the file, the byte range, why).
    pub lost: Vec<String>,
    /// Where the damaged database was moved.
    pub kept_at: PathBuf,
}

fn io(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), error)
}

/// A sibling of `dir` named `dir` plus `suffix`.
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Salvages the database in `dir` (on disk, not open anywhere): builds a new one from
/// every readable entry and puts it in `dir`'s place. Holds the engine's lock meanwhile,
/// so that no process opens the database; fails with [`Error::Locked`] if one has.
pub(crate) fn salvage(dir: &Path) -> Result<Salvage> {
    let env = PosixDiskEnv::new();
    let lock = env.lock(&dir.join("LOCK")).map_err(|_| Error::Locked {
        path: dir.to_path_buf(),
        holder: None,
    })?;
    let salvaged = salvage_locked(dir);
    let _ = env.unlock(lock);
    salvaged
}

fn salvage_locked(dir: &Path) -> Result<Salvage> {
    let sort_dir = beside(dir, ".salvage-sort");
    let new_dir = beside(dir, NEW[0].0);
    for scratch in [&sort_dir, &new_dir] {
        if scratch.exists() {
            std::fs::remove_dir_all(scratch).map_err(|e| io("removing", scratch, e))?;
        }
    }
    // What the manifest names that is not there is lost before anything is read.
    let mut report = Salvage {
        lost: damage::missing_files(&PosixDiskEnv::new(), dir)?,
        ..Salvage::default()
    };
    {
        let mut sorted = Kv::open(&sort_dir)?;
        sort_entries(dir, &mut sorted, &mut report)?;
        let mut new = Kv::open(&new_dir)?;
        copy_newest(&mut sorted, &mut new, &mut report)?;
        new.write(Batch::default(), Durability::Synced)?;
        new.close()?;
    }
    std::fs::remove_dir_all(&sort_dir).map_err(|e| io("removing", &sort_dir, e))?;

    report.kept_at = beside(dir, &format!("{}{}", NEW[0].1, stamp()));
    install(dir, &new_dir, &report.kept_at)?;
    Ok(report)
}

/// Seconds since the epoch, to name a database kept aside.
fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where salvage and rewrite build their new database, and the prefixes of the names the
/// old one is kept under.
const NEW: [(&str, &str); 2] = [
    (".salvaged", ".damaged-"),
    (".rewritten", ".before-repair-"),
];

/// The new database waiting beside `dir` when an install was cut between its renames:
/// `dir` is missing, and a new database is there with its old one moved aside.
pub(crate) fn interrupted_install(dir: &Path) -> Option<PathBuf> {
    if dir.exists() {
        return None;
    }
    let parent = dir.parent()?;
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let aside = |prefix: &str| {
        std::fs::read_dir(parent).ok().is_some_and(|entries| {
            entries.filter_map(|entry| entry.ok()).any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}{prefix}"))
            })
        })
    };
    NEW.iter()
        .map(|(new, old)| (beside(dir, new), *old))
        .find(|(new, old)| new.is_dir() && aside(old))
        .map(|(new, _)| new)
}

/// Completes an install cut between its renames (see the module's notes); does nothing
/// otherwise. Another process finishing it at the same moment is no error.
pub(crate) fn finish_install(dir: &Path) -> Result<()> {
    let Some(new_dir) = interrupted_install(dir) else {
        return Ok(());
    };
    match std::fs::rename(&new_dir, dir) {
        Err(_) if dir.exists() => return Ok(()),
        Err(e) => return Err(io("installing", &new_dir, e)),
        Ok(()) => {}
    }
    sync_parent(dir)
}

fn sync_parent(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)
            .and_then(|folder| folder.sync_all())
            .map_err(|e| io("syncing", parent, e))?;
    }
    Ok(())
}

/// Puts the database in `new_dir` in `dir`'s place, moving the old one to `aside`.
fn install(dir: &Path, new_dir: &Path, aside: &Path) -> Result<()> {
    std::fs::rename(dir, aside).map_err(|e| io("moving aside", dir, e))?;
    std::fs::rename(new_dir, dir).map_err(|e| io("installing", new_dir, e))?;
    sync_parent(dir)
}

/// Rewrites the database in `dir` (not open anywhere) into a new one holding only the
/// entries whose key `keep` accepts, and puts it in `dir`'s place; the old one is kept
/// beside it, and its new path returned (the caller removes it when it is not needed).
/// Deleting most of a database in place would leave a tombstone for every entry,
/// which the engine's compaction does not reliably drop (a file moved down a level keeps
/// them) and which every later seek would step over; a new database has none.
pub(crate) fn rewrite(dir: &Path, keep: impl Fn(&[u8]) -> bool) -> Result<PathBuf> {
    let new_dir = beside(dir, NEW[1].0);
    let old_dir = beside(dir, &format!("{}{}", NEW[1].1, stamp()));
    for scratch in [&new_dir, &old_dir] {
        if scratch.exists() {
            std::fs::remove_dir_all(scratch).map_err(|e| io("removing", scratch, e))?;
        }
    }
    {
        let mut old = Kv::open(dir)?;
        let mut new = Kv::open(&new_dir)?;
        let mut from = Vec::new();
        loop {
            let page: Vec<(Vec<u8>, Vec<u8>)> =
                old.scan(&from, &[])?.take(BATCH).collect::<Result<_>>()?;
            let Some((final_key, _)) = page.last() else {
                break;
            };
            from = final_key.clone();
            from.push(0);
            let mut batch = Batch::default();
            for (key, value) in page.iter().filter(|(key, _)| keep(key)) {
                batch.put(key, value);
            }
            new.write(batch, Durability::Flushed)?;
        }
        new.write(Batch::default(), Durability::Synced)?;
        new.close()?;
        old.close()?;
    }
    install(dir, &new_dir, &old_dir)?;
    Ok(old_dir)
}

/// Writes every readable entry of `dir`'s tables and logs into `sorted`, keyed so that a
/// key's versions are adjacent, newest first.
fn sort_entries(dir: &Path, sorted: &mut Kv, report: &mut Salvage) -> Result<()> {
    let env = PosixDiskEnv::new();
    let mut batch = Batch::default();
    let mut pending = 0;
    for (file, path) in damage::files(&env, dir)? {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&path).map_err(|e| io("reading", &path, e))?;
        let mut add = |entry: ldb::Entry<'_>| {
            let key = KeyBuf::new(b"")
                .bytes(entry.key)
                .u64_desc(entry.seq)
                .finish();
            let mut value = vec![u8::from(entry.value.is_some())];
            value.extend_from_slice(entry.value.unwrap_or_default());
            batch.put(&key, &value);
            pending += 1;
        };
        match file {
            File::Table(_) => {
                report.tables += 1;
                let scan = ldb::read_table(&bytes, &mut add);
                report.entries += scan.entries;
                for (range, why) in scan.bad {
                    report.lost.push(format!(
                        "{name} bytes {}..{}: {why}",
                        range.start, range.end
                    ));
                }
            }
            File::Log(_) => {
                report.logs += 1;
                let scan = ldb::read_log(&bytes);
                for (at, record) in &scan.records {
                    let mut count = 0;
                    let decoded = ldb::read_batch(record, &mut |entry| {
                        count += 1;
                        add(entry);
                    });
                    report.entries += count;
                    if decoded.is_none() {
                        report
                            .lost
                            .push(format!("{name} byte {at}: a write that cannot be decoded"));
                    }
                }
                for (range, why) in scan.bad {
                    report.lost.push(format!(
                        "{name} bytes {}..{}: {why}",
                        range.start, range.end
                    ));
                }
            }
            File::Manifest(_) => continue,
        }
        if pending >= BATCH {
            sorted.write(std::mem::take(&mut batch), Durability::Flushed)?;
            pending = 0;
        }
    }
    sorted.write(batch, Durability::Flushed)
}

/// Copies the newest version of each key from `sorted` into `new`, leaving out deletions.
fn copy_newest(sorted: &mut Kv, new: &mut Kv, report: &mut Salvage) -> Result<()> {
    let mut batch = Batch::default();
    let mut pending = 0;
    let mut last: Option<Vec<u8>> = None;
    let mut from = Vec::new();
    loop {
        let page: Vec<(Vec<u8>, Vec<u8>)> = sorted
            .scan(&from, &[])?
            .take(BATCH)
            .collect::<Result<_>>()?;
        let Some((final_key, _)) = page.last() else {
            break;
        };
        from = final_key.clone();
        from.push(0);
        for (sort_key, value) in &page {
            let key = KeyReader::new(sort_key, b"")?.bytes()?;
            if last.as_ref() == Some(&key) {
                continue;
            }
            if let Some((&1, value)) = value.split_first() {
                batch.put(&key, value);
                pending += 1;
                report.keys += 1;
            }
            last = Some(key);
        }
        if pending >= BATCH {
            new.write(std::mem::take(&mut batch), Durability::Flushed)?;
            pending = 0;
        }
    }
    new.write(batch, Durability::Flushed)
}
