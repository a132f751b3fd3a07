//! Finding damage in a database's files, before the engine opens them and hides it.
//!
//! Opened as it is, a damaged database can look healthy and lose data for good: with no
//! `CURRENT` the engine starts a new, empty database (and deletes the old files as
//! obsolete); a log damaged in the middle is recovered up to the damage and then deleted,
//! with every write after it. So every open first checks what it can cheaply: `CURRENT`
//! names a manifest that exists and decodes, every table that manifest lists exists at its
//! recorded size, the log it names exists, and no log is damaged before its last whole
//! record (a torn tail is what a crash leaves, and is not damage). `fsck` also reads every
//! block of every table (`deep`). Each problem is one line naming the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusty_leveldb::env::Env;

use super::ldb;
use crate::error::{Error, Result};

/// What kind of database file a name is, with its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum File {
    Log(u64),
    Table(u64),
    Manifest(u64),
}

impl File {
    pub(crate) fn parse(name: &str) -> Option<File> {
        if let Some(n) = name.strip_prefix("MANIFEST-") {
            return n.parse().ok().map(File::Manifest);
        }
        let (number, extension) = name.split_once('.')?;
        let number = number.parse().ok()?;
        match extension {
            "log" => Some(File::Log(number)),
            "ldb" | "sst" => Some(File::Table(number)),
            _ => None,
        }
    }
}

/// The database files in `dir`, with their names.
pub(crate) fn files(env: &dyn Env, dir: &Path) -> Result<Vec<(File, PathBuf)>> {
    let names = env
        .children(dir)
        .map_err(|e| Error::Storage(format!("listing {}: {}", dir.display(), e.err)))?;
    let mut files: Vec<(File, PathBuf)> = names
        .into_iter()
        .filter_map(|name| {
            let file = File::parse(name.to_str()?)?;
            Some((file, dir.join(name)))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a whole file through the engine's environment.
pub(crate) fn read(env: &dyn Env, path: &Path) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    env.open_sequential_file(path)
        .map_err(|e| e.err)?
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The database's live state as its manifest records it, or `None` (with the reason in
/// `problems`, unless there is no database yet) when CURRENT or the manifest cannot say.
fn live_state(
    env: &dyn Env,
    dir: &Path,
    files: &[(File, PathBuf)],
    problems: &mut Vec<String>,
) -> Option<ldb::Manifest> {
    let current = dir.join("CURRENT");
    if !env.exists(&current).unwrap_or(false) {
        // A crash while the database was being created leaves a manifest, maybe an empty
        // log, and no CURRENT: nothing was written yet. Tables or logged writes mean a
        // database that lost its CURRENT.
        let holds_data = files.iter().any(|(file, path)| match file {
            File::Table(_) => true,
            File::Log(_) => env.size_of(path).map_or(true, |size| size > 0),
            File::Manifest(_) => false,
        });
        if holds_data {
            problems.push(
                "CURRENT is missing: the database files are there but nothing names its manifest"
                    .into(),
            );
        }
        return None;
    }
    let manifest = match read(env, &current) {
        Err(error) => {
            problems.push(format!("CURRENT cannot be read: {error}"));
            return None;
        }
        Ok(text) => match String::from_utf8(text)
            .ok()
            .and_then(|text| Some(text.strip_suffix('\n')?.to_string()))
            .filter(|name| matches!(File::parse(name), Some(File::Manifest(_))))
        {
            Some(name) => dir.join(name),
            None => {
                problems.push("CURRENT is damaged: it does not name a manifest".into());
                return None;
            }
        },
    };
    let bytes = match read(env, &manifest) {
        Ok(bytes) => bytes,
        Err(error) => {
            problems.push(format!(
                "{}, which CURRENT names, cannot be read: {error}",
                name(&manifest)
            ));
            return None;
        }
    };
    let scan = ldb::read_log(&bytes);
    if scan.records.is_empty() || scan.damaged_before_end() {
        let at = scan.bad.first().map_or(0, |(range, _)| range.start);
        problems.push(format!(
            "{} is damaged at byte {at}: {}",
            name(&manifest),
            scan.bad
                .first()
                .map_or("it holds no version", |(_, why)| why)
        ));
        return None;
    }
    match ldb::read_manifest(&scan.records) {
        Ok(state) => Some(state),
        Err(error) => {
            problems.push(format!("{} is damaged: {error}", name(&manifest)));
            None
        }
    }
}

/// The live files the manifest names that are not there, one line each.
fn missing(files: &[(File, PathBuf)], state: &ldb::Manifest) -> Vec<String> {
    let present = |wanted: File| files.iter().any(|(file, _)| *file == wanted);
    let mut lines: Vec<String> = state
        .tables
        .keys()
        .filter(|number| !present(File::Table(**number)))
        .map(|number| format!("table file {number:06}.ldb is missing"))
        .collect();
    if state.log_number > 0 && !present(File::Log(state.log_number)) {
        lines.push(format!(
            "the write-ahead log {:06}.log is missing: the writes since the last table are lost",
            state.log_number
        ));
    }
    lines
}

/// The live files of the database in `dir` that are missing (what a salvage cannot read,
/// and so reports lost). Empty when the manifest cannot say which files are live.
pub(crate) fn missing_files(env: &dyn Env, dir: &Path) -> Result<Vec<String>> {
    let files = files(env, dir)?;
    Ok(live_state(env, dir, &files, &mut Vec::new())
        .map(|state| missing(&files, &state))
        .unwrap_or_default())
}

/// Every problem with the database files in `dir`, one line each (empty: none found, or no
/// database there yet). `deep` also reads every block of every live table. Fails only when
/// the folder cannot be listed.
pub(crate) fn diagnose(env: &dyn Env, dir: &Path, deep: bool) -> Result<Vec<String>> {
    let files = files(env, dir)?;
    let mut problems = Vec::new();
    let Some(state) = live_state(env, dir, &files, &mut problems) else {
        return Ok(problems);
    };
    problems.extend(missing(&files, &state));
    for (number, size) in &state.tables {
        let path = files
            .iter()
            .find(|(file, _)| *file == File::Table(*number))
            .map(|(_, path)| path);
        let Some(path) = path else {
            continue;
        };
        match env.size_of(path) {
            Ok(actual) if actual as u64 == *size => {}
            Ok(actual) => problems.push(format!(
                "table file {} is {actual} bytes; the manifest says {size}",
                name(path)
            )),
            Err(error) => problems.push(format!(
                "table file {} cannot be read: {}",
                name(path),
                error.err
            )),
        }
        if deep {
            match read(env, path) {
                Ok(bytes) => {
                    for (range, why) in ldb::read_table(&bytes, &mut |_| {}).bad {
                        problems.push(format!(
                            "table file {}: bytes {}..{}: {why}",
                            name(path),
                            range.start,
                            range.end
                        ));
                    }
                }
                Err(error) => {
                    problems.push(format!("table file {} cannot be read: {error}", name(path)))
                }
            }
        }
    }

    let live_log = |n: u64| n >= state.log_number || n == state.prev_log_number;
    for (file, path) in &files {
        let File::Log(number) = file else { continue };
        if !live_log(*number) {
            continue;
        }
        match read(env, path) {
            Ok(bytes) => {
                let scan = ldb::read_log(&bytes);
                if scan.damaged_before_end() {
                    let (range, why) = &scan.bad[0];
                    let later = scan
                        .records
                        .iter()
                        .filter(|(at, _)| *at > range.start)
                        .count();
                    problems.push(format!(
                        "log {} is damaged at byte {}: {why}, with {later} writes after it",
                        name(path),
                        range.start
                    ));
                }
            }
            Err(error) => problems.push(format!("log {} cannot be read: {error}", name(path))),
        }
    }
    Ok(problems)
}
