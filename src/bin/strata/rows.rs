//! Row commands: `put`, `get`, `del`, `history`, `forks`, `datasets`.
//!
//! A dataset name or row key is taken as its text exactly as written (`0xff` is the text
//! `0xff`); `--hex-dataset` and `--hex` give bytes that are not text in hex.

use std::io::Write;

use serde_json::{Value, json};
use strata::{FileRef, Repository, RowVersion, TextOrHex, Transaction, Version, View};

use crate::context::{
    CliError, CliResult, Global, Name, brief, name_arg, show_time, stdout, value_json, write_json,
};

/// A dataset name and row key, as every row command takes them.
#[derive(Debug, clap::Args)]
pub struct RowArgs {
    /// The dataset: its name exactly as written (with --hex-dataset, in hex).
    pub dataset: String,
    /// The row key: its text exactly as written, `0x…` included (with --hex, in hex).
    pub key: String,

    /// KEY is given in hex, for a key that is not text: `--hex ff00` (or `0xff00`).
    #[arg(long)]
    pub hex: bool,

    /// DATASET is given in hex, for a name that is not text.
    #[arg(long)]
    pub hex_dataset: bool,
}

impl RowArgs {
    /// The dataset name and row key as bytes.
    pub fn parse(&self) -> CliResult<(Vec<u8>, Vec<u8>)> {
        Ok((
            name_arg(&self.dataset, self.hex_dataset, Name::Dataset)?,
            name_arg(&self.key, self.hex, Name::Key)?,
        ))
    }

    /// The arguments as given, for a hint naming another command.
    pub fn words(&self) -> String {
        let flag = |on: bool, flag: &'static str| if on { flag } else { "" };
        format!(
            "{}{} {}{}",
            flag(self.hex_dataset, "--hex-dataset "),
            self.dataset,
            flag(self.hex, "--hex "),
            self.key
        )
    }
}

/// Options of every write.
#[derive(Debug, clap::Args)]
pub struct WriteOptions {
    /// The commit message.
    #[arg(long, short)]
    pub message: Option<String>,

    /// The version(s) this write replaces (Mapeo-style versioned update). One version that
    /// is no longer the newest makes the write a fork; several make it a merge of the
    /// heads holding them, which resolves that fork.
    #[arg(long, value_name = "VERSION", num_args = 1..)]
    pub replaces: Vec<String>,
}

/// Write one row; prints the new version id.
///
/// VALUE is JSON (stored as compact JSON, keeping key order and number text) unless --raw
/// is given (stored as given). Put --replaces last, or repeat it: `--replaces A --replaces B`.
///
/// Example: `strata put sites s-17 '{"name":"Spring 17","depth":4.5}'`
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub row: RowArgs,
    /// The value: JSON (e.g. `'{"a":1}'`, `42`, `'"text"'`), or any text with --raw.
    #[arg(allow_hyphen_values = true)]
    pub value: String,

    /// Store VALUE's bytes as given instead of parsing it as JSON.
    #[arg(long)]
    pub raw: bool,

    #[command(flatten)]
    pub write: WriteOptions,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Read one row and print its value.
///
/// A JSON value is printed as stored, followed by a newline; any other value is written byte
/// for byte. A row that does not exist is an error (exit code 1).
///
/// Example: `strata get sites s-17`, `strata get sites s-17 --at 3f2a9c01`
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub row: RowArgs,

    /// Read at this version instead of the current view.
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,

    /// Write the value's bytes exactly, without the newline otherwise added after a JSON
    /// value.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Print the row with its version and fork flag as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Delete one row (a tombstone: its history is kept); prints the new version id.
///
/// Deleting a row that does not exist is an error, unless --replaces names the version.
///
/// Example: `strata del sites s-17 --replaces 3f2a9c01`
#[derive(Debug, clap::Args)]
pub struct DelArgs {
    #[command(flatten)]
    pub row: RowArgs,

    #[command(flatten)]
    pub write: WriteOptions,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Every version of one row, on any fork, newest first.
///
/// Example: `strata history sites s-17`
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub row: RowArgs,

    /// Print one JSON object per version (NDJSON).
    #[arg(long)]
    pub json: bool,
}

/// Every distinct version of one row across the current heads (a fork has several).
///
/// Example: `strata forks sites s-17`
#[derive(Debug, clap::Args)]
pub struct ForksArgs {
    #[command(flatten)]
    pub row: RowArgs,

    /// Print one JSON object per version (NDJSON).
    #[arg(long)]
    pub json: bool,
}

/// List the datasets that have live rows.
///
/// Example: `strata datasets`, `strata datasets --at 3f2a9c01`
#[derive(Debug, clap::Args)]
pub struct DatasetsArgs {
    /// List them at this version instead of the current view.
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,

    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

// ---- shared by the command modules ----

/// The view a read uses: `--at VERSION` when given, else the current view (the persistent
/// checkout, or latest).
pub(crate) fn view_at(repo: &Repository, at: Option<&str>) -> CliResult<View> {
    Ok(match at {
        Some(version) => repo.at(&repo.resolve(version)?)?,
        None => repo.view()?,
    })
}

/// The versions named on the command line (prefixes, `HEAD`, `HEAD~N`, …).
pub(crate) fn versions(repo: &Repository, names: &[String]) -> CliResult<Vec<Version>> {
    Ok(names
        .iter()
        .map(|name| repo.resolve(name))
        .collect::<strata::Result<_>>()?)
}

/// The error for a row that does not exist (exit code 1).
pub(crate) fn row_not_found(dataset: &[u8], key: &[u8]) -> CliError {
    // Keys used to be given as `0x<hex>`: say how that is written now.
    let looks_hex = key
        .strip_prefix(b"0x")
        .is_some_and(|digits| hex::decode(digits).is_ok_and(|bytes| !bytes.is_empty()));
    CliError::NotFound(format!(
        "not found: row {} in dataset {}{}",
        brief(key),
        brief(dataset),
        if looks_hex {
            " (keys are taken as written; to give a key's bytes in hex, pass --hex)"
        } else {
            ""
        }
    ))
}

/// A file reference as JSON (`null` for a row that is not a file).
pub(crate) fn file_json(file: Option<&FileRef>) -> Value {
    match file {
        Some(file) => json!({ "hash": file.hash, "size": file.size }),
        None => Value::Null,
    }
}

/// A time as JSON: `time` (ms since the epoch) and `time_iso` (RFC 3339), both `null` when
/// unknown (0).
pub(crate) fn time_iso(ms: u64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        Value::String(show_time(ms))
    }
}

/// One version of a row as JSON (history, forks, diff sides).
pub(crate) fn version_json(version: &RowVersion) -> Value {
    let value = if version.deleted || version.file.is_some() {
        Value::Null
    } else {
        value_json(&version.value)
    };
    json!({
        "version": version.version,
        "log": version.log,
        "change": version.change,
        "time": version.time,
        "time_iso": time_iso(version.time),
        "deleted": version.deleted,
        "value": value,
        "file": file_json(version.file.as_ref()),
    })
}

/// A value on one line for humans: JSON and plain text as they are, anything else (binary,
/// control characters) as `0x<hex>`.
pub(crate) fn show_value(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.starts_with("0x") && !text.chars().any(char::is_control) => {
            text.to_string()
        }
        _ => format!("0x{}", hex::encode(value)),
    }
}

/// What a row version holds, on one line: its value, `file <hash> (<size> bytes)`, or
/// `(deleted)`.
pub(crate) fn show_content(version: &RowVersion) -> String {
    if version.deleted {
        "(deleted)".to_string()
    } else if let Some(file) = &version.file {
        format!("file {} ({} bytes)", file.hash, file.size)
    } else {
        show_value(&version.value)
    }
}

/// One row version as a text line: version, time, device, content.
fn version_line(version: &RowVersion) -> String {
    format!(
        "{}  {}  {}  {}",
        version.version,
        show_time(version.time),
        version.log,
        show_content(version)
    )
}

/// Parses a row value given on the command line: JSON (stored compact, with key order and
/// number text kept) unless `raw`.
pub(crate) fn encode_value(value: &str, raw: bool, what: &str) -> CliResult<Vec<u8>> {
    if raw {
        return Ok(value.as_bytes().to_vec());
    }
    match strata::compact_json(value.as_bytes()) {
        Ok(json) => Ok(json.into_owned()),
        Err(strata::Error::Malformed { reason, .. }) => Err(CliError::Input(format!(
            "{what} is not valid JSON ({reason}); pass --raw to store the text as given"
        ))),
        Err(other) => Err(other.into()),
    }
}

/// Commits one write with the common write options; returns the new version.
fn commit_write(
    repo: &Repository,
    write: WriteOptions,
    add: impl FnOnce(&mut Transaction<'_>),
) -> CliResult<Version> {
    let replaces = versions(repo, &write.replaces)?;
    let mut tx = repo.transaction();
    add(&mut tx);
    if let Some(message) = write.message {
        tx.message(message);
    }
    tx.replaces(&replaces);
    tx.commit().map_err(|error| match error {
        conflict @ strata::Error::Conflict { .. } => CliError::Input(format!(
            "replacing several versions merges their heads, and they conflict elsewhere ({conflict}); nothing was written. Merge the heads first with `strata merge`"
        )),
        other => other.into(),
    })
}

/// Prints the result of a write: the version id, or JSON (with `extra` fields added).
pub(crate) fn print_write(
    version: &Version,
    dataset: &[u8],
    key: &[u8],
    extra: serde_json::Map<String, Value>,
    json: bool,
) -> CliResult {
    let mut out = stdout();
    if json {
        let mut document = serde_json::Map::new();
        document.insert("version".into(), json!(version.as_str()));
        document.insert("dataset".into(), json!(TextOrHex(dataset)));
        document.insert("key".into(), json!(TextOrHex(key)));
        document.extend(extra);
        write_json(&mut out, &Value::Object(document))?;
    } else {
        writeln!(out, "{version}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn put(global: &Global, args: PutArgs) -> CliResult {
    let (dataset, key) = args.row.parse()?;
    let value = encode_value(&args.value, args.raw, "VALUE")?;
    let repo = global.open()?;
    let version = commit_write(&repo, args.write, |tx| {
        tx.put(&dataset, &key, &value);
    })?;
    print_write(&version, &dataset, &key, serde_json::Map::new(), args.json)
}

pub fn get(global: &Global, args: GetArgs) -> CliResult {
    let (dataset, key) = args.row.parse()?;
    let repo = global.open()?;
    let view = view_at(&repo, args.at.as_deref())?;
    let row = view
        .get(&dataset, &key)?
        .ok_or_else(|| row_not_found(&dataset, &key))?;
    let mut out = stdout();
    if args.json {
        let value = if row.file.is_some() {
            Value::Null
        } else {
            value_json(&row.value)
        };
        write_json(
            &mut out,
            &json!({
                "dataset": TextOrHex(&dataset),
                "key": TextOrHex(&key),
                "value": value,
                "version": row.version,
                "forked": row.forked,
                "file": file_json(row.file.as_ref()),
            }),
        )?;
    } else {
        if let Some(file) = &row.file {
            return Err(CliError::Input(format!(
                "row {} in dataset {} is a file ({} bytes, sha256 {}); read it with `strata files get {}`",
                brief(&key),
                brief(&dataset),
                file.size,
                file.hash,
                args.row.words()
            )));
        }
        out.write_all(&row.value)?;
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&row.value).is_ok();
        if is_json && !args.raw {
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    if row.forked && !args.json {
        eprintln!(
            "strata: note: row {} has several versions across the current heads (a fork); this is the newest. See `strata forks {}`",
            brief(&key),
            args.row.words()
        );
    }
    Ok(())
}

pub fn del(global: &Global, args: DelArgs) -> CliResult {
    let (dataset, key) = args.row.parse()?;
    let repo = global.open()?;
    // Deleting a row that is not there is almost always a mistake (a typo in the key);
    // naming the version it replaces says the user means it.
    if args.write.replaces.is_empty() && repo.get(&dataset, &key)?.is_none() {
        return Err(row_not_found(&dataset, &key));
    }
    let version = commit_write(&repo, args.write, |tx| {
        tx.delete(&dataset, &key);
    })?;
    print_write(&version, &dataset, &key, serde_json::Map::new(), args.json)
}

/// Prints row versions as text lines or NDJSON.
fn print_versions(versions: &[RowVersion], json: bool) -> CliResult {
    let mut out = stdout();
    for version in versions {
        if json {
            write_json(&mut out, &version_json(version))?;
        } else {
            writeln!(out, "{}", version_line(version))?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn history(global: &Global, args: HistoryArgs) -> CliResult {
    print_row_versions(global, &args.row, args.json, |repo, d, k| {
        repo.history(d, k)
    })
}

pub fn forks(global: &Global, args: ForksArgs) -> CliResult {
    print_row_versions(global, &args.row, args.json, |repo, d, k| repo.forks(d, k))
}

/// Prints the versions `read` lists for one row; none at all means the row does not exist.
fn print_row_versions(
    global: &Global,
    row: &RowArgs,
    json: bool,
    read: impl FnOnce(&Repository, &[u8], &[u8]) -> strata::Result<Vec<RowVersion>>,
) -> CliResult {
    let (dataset, key) = row.parse()?;
    let repo = global.open()?;
    let versions = read(&repo, &dataset, &key)?;
    if versions.is_empty() {
        return Err(row_not_found(&dataset, &key));
    }
    print_versions(&versions, json)
}

pub fn datasets(global: &Global, args: DatasetsArgs) -> CliResult {
    let repo = global.open()?;
    let names = view_at(&repo, args.at.as_deref())?.datasets()?;
    let mut out = stdout();
    if args.json {
        let names: Vec<TextOrHex<&[u8]>> = names.iter().map(|n| TextOrHex(&n[..])).collect();
        write_json(&mut out, &json!(names))?;
    } else {
        for name in &names {
            writeln!(out, "{}", TextOrHex(name))?;
        }
    }
    out.flush()?;
    Ok(())
}
