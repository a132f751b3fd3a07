//! Row commands: `put`, `get`, `del`, `history`, `forks`.

use std::io::{self, Write};

use serde_json::{Value, json};
use strata::{Repository, Row, RowVersion, TextOrHex, Transaction, Version};

use crate::args::{AtOption, RowArgs, encode_value, row_not_found, versions};
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, WriteRepo};
use crate::output::{
    Output, Render, brief, file_json, note, show_content, show_time, value_json, version_json,
};

/// Options of every write.
#[derive(Debug, clap::Args)]
pub struct WriteOptions {
    /// The commit message.
    #[arg(long, short)]
    pub message: Option<String>,

    /// The version this write replaces (Mapeo-style versioned update); repeat it, or
    /// separate versions with commas, to name several. One version that is no longer the
    /// newest makes the write a fork; several make it a merge of the heads holding them,
    /// which resolves that fork.
    #[arg(long, value_name = "VERSION", value_delimiter = ',')]
    pub replaces: Vec<String>,

    #[command(flatten)]
    pub repo: WriteRepo,
}

impl WriteOptions {
    /// Commits one write; returns the new version.
    pub fn commit(
        &self,
        repo: &Repository,
        add: impl FnOnce(&mut Transaction<'_>) -> CliResult,
    ) -> CliResult<Version> {
        let replaces = versions(repo, &self.replaces)?;
        let mut tx = repo.transaction();
        add(&mut tx)?;
        if let Some(message) = &self.message {
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
}

/// Write one row; prints the new version id.
///
/// VALUE is JSON (stored as compact JSON, keeping key order and number text) unless --raw
/// is given (stored as given).
///
/// Example: `strata put sites s-17 '{"name":"Spring 17","depth":4.5}'`,
/// `strata put --replaces 3f2a9c01 sites s-17 '{"depth":5}'`
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

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub write: WriteOptions,
}

/// Read one row and print its value.
///
/// A JSON value is printed as stored, followed by a newline; any other value is written byte
/// for byte. A row that does not exist is an error (exit code 1).
///
/// Example: `strata get sites s-17`, `strata get sites s-17 --at HEAD~1`
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub row: RowArgs,

    #[command(flatten)]
    pub at: AtOption,

    /// Write the value's bytes exactly, without the newline otherwise added after a JSON
    /// value.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Print the row with its version and fork flag as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// Delete one row (a tombstone: its history is kept); prints the new version id.
///
/// Deleting a row that does not exist is an error, unless --replaces names the version.
///
/// Example: `strata del sites s-17`, `strata del sites s-17 --replaces 3f2a9c01`
#[derive(Debug, clap::Args)]
pub struct DelArgs {
    #[command(flatten)]
    pub row: RowArgs,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub write: WriteOptions,
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

    #[command(flatten)]
    pub repo: RepoPath,
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

    #[command(flatten)]
    pub repo: RepoPath,
}

/// What a write prints: the new version id, or JSON with the row and `extra` fields.
pub struct Written {
    pub version: Version,
    pub dataset: Vec<u8>,
    pub key: Vec<u8>,
    pub extra: serde_json::Map<String, Value>,
}

impl Render for Written {
    fn json(&self) -> Value {
        let mut document = serde_json::Map::new();
        document.insert("version".into(), json!(self.version.as_str()));
        document.insert("dataset".into(), json!(TextOrHex(&self.dataset)));
        document.insert("key".into(), json!(TextOrHex(&self.key)));
        document.extend(self.extra.clone());
        Value::Object(document)
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.version)
    }
}

impl Written {
    pub fn print(self, json: bool) -> CliResult {
        let mut out = Output::new(json);
        out.show(&self)?;
        out.finish()
    }
}

impl Run for PutArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let (dataset, key) = self.row.parse()?;
        let value = encode_value(&self.value, self.raw, "VALUE")?;
        let repo = self.write.repo.open(top)?;
        write_row(&self.write, &repo, (dataset, key), self.json, |tx, d, k| {
            tx.put(d, k, &value);
        })
    }
}

/// A row as `get --json` prints it.
pub fn row_json(row: &Row) -> Value {
    let value = match row.file {
        Some(_) => Value::Null,
        None => value_json(&row.value),
    };
    json!({
        "dataset": TextOrHex(&row.dataset),
        "key": TextOrHex(&row.key),
        "value": value,
        "version": row.version,
        "forked": row.forked,
        "file": file_json(row.file.as_ref()),
    })
}

impl Run for GetArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let (dataset, key) = self.row.parse()?;
        let repo = self.repo.read(top)?;
        let row = self
            .at
            .view(&repo)?
            .get(&dataset, &key)?
            .ok_or_else(|| row_not_found(&dataset, &key))?;
        let mut out = Output::new(self.json);
        if out.is_json() {
            out.json_line(&row_json(&row))?;
        } else if let Some(file) = &row.file {
            return Err(CliError::Input(format!(
                "row {} in dataset {} is a file ({} bytes, sha256 {}); read it with `strata files get {}`",
                brief(&key),
                brief(&dataset),
                file.size,
                file.hash,
                self.row.words()
            )));
        } else {
            out.raw().write_all(&row.value)?;
            let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&row.value).is_ok();
            if is_json && !self.raw {
                out.raw().write_all(b"\n")?;
            }
        }
        out.finish()?;
        if row.forked && !self.json {
            note(&format!(
                "row {} has several versions across the current heads (a fork); this is the newest. See `strata forks {}`",
                brief(&key),
                self.row.words()
            ));
        }
        Ok(())
    }
}

impl Run for DelArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let (dataset, key) = self.row.parse()?;
        let repo = self.write.repo.open(top)?;
        // Deleting a row that is not there is almost always a mistake (a typo in the key);
        // naming the version it replaces says the user means it.
        if self.write.replaces.is_empty() && repo.get(&dataset, &key)?.is_none() {
            return Err(row_not_found(&dataset, &key));
        }
        write_row(&self.write, &repo, (dataset, key), self.json, |tx, d, k| {
            tx.delete(d, k);
        })
    }
}

/// Commits one write of the row `dataset/key` and prints the new version.
fn write_row(
    write: &WriteOptions,
    repo: &Repository,
    (dataset, key): (Vec<u8>, Vec<u8>),
    json: bool,
    add: impl FnOnce(&mut Transaction<'_>, &[u8], &[u8]),
) -> CliResult {
    let version = write.commit(repo, |tx| {
        add(tx, &dataset, &key);
        Ok(())
    })?;
    Written {
        version,
        dataset,
        key,
        extra: Default::default(),
    }
    .print(json)
}

/// One version of a row: `VERSION  TIME  LOG  CONTENT`.
struct Listed<'a>(&'a RowVersion);

impl Render for Listed<'_> {
    fn json(&self) -> Value {
        version_json(self.0)
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let v = self.0;
        writeln!(
            out,
            "{}  {}  {}  {}",
            v.version,
            show_time(v.time),
            v.log,
            show_content(&v.value, v.file.as_ref(), v.deleted)
        )
    }
}

/// Prints the versions `read` lists for one row; none at all means the row does not exist.
fn print_row_versions(
    repo: &RepoPath,
    top: &RepoPath,
    row: &RowArgs,
    json: bool,
    read: impl FnOnce(&Repository, &[u8], &[u8]) -> strata::Result<Vec<RowVersion>>,
) -> CliResult {
    let (dataset, key) = row.parse()?;
    let repo = repo.read(top)?;
    let versions = read(&repo, &dataset, &key)?;
    if versions.is_empty() {
        return Err(row_not_found(&dataset, &key));
    }
    let mut out = Output::new(json);
    for version in &versions {
        out.show(&Listed(version))?;
    }
    out.finish()
}

impl Run for HistoryArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        print_row_versions(&self.repo, top, &self.row, self.json, |repo, d, k| {
            repo.history(d, k)
        })
    }
}

impl Run for ForksArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        print_row_versions(&self.repo, top, &self.row, self.json, |repo, d, k| {
            repo.forks(d, k)
        })
    }
}
