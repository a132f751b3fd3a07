//! `files put|get|ls`: file rows, streamed in and out of the blob store.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strata::{FileRef, Range, TextOrHex, Version};

use crate::args::{AtOption, Name, RowArgs, name_arg, require_dataset, row_not_found};
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::RepoPath;
use crate::output::{Output, Render, brief};
use crate::rows::{WriteOptions, Written};

/// File rows: content kept in the repository's blob store, named by its SHA-256.
///
/// Files are streamed in and out (any size, constant memory) and checked against their
/// hash as they are read.
///
/// Example: `strata files put photos s-17.jpg ./IMG_0042.jpg`, `strata files ls --json`
#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    Put(PutArgs),
    Get(GetArgs),
    Ls(LsArgs),
}

/// Store a file as a row; prints the new version id.
///
/// Example: `strata files put photos s-17.jpg ./IMG_0042.jpg`
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    row: RowArgs,
    /// The file to store (`-` for standard input).
    path: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    write: WriteOptions,
}

/// Write a file row's content to PATH, or to stdout when PATH is `-` or absent.
///
/// Example: `strata files get photos s-17.jpg out.jpg`
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    row: RowArgs,
    /// Where to write the content (`-` or absent: stdout). The file appears only once its
    /// content is verified.
    path: Option<PathBuf>,
    #[command(flatten)]
    at: AtOption,
    #[command(flatten)]
    repo: RepoPath,
}

/// List file rows (of one dataset, or of all).
///
/// Example: `strata files ls photos`
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only this dataset (its name as written). Default: every dataset.
    dataset: Option<String>,
    /// DATASET is given in hex, for a name that is not text.
    #[arg(long, requires = "dataset")]
    hex_dataset: bool,
    #[command(flatten)]
    at: AtOption,
    /// Print one JSON object per file (NDJSON).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    repo: RepoPath,
}

impl Run for FilesCommand {
    fn run(self, top: &RepoPath) -> CliResult {
        match self {
            FilesCommand::Put(args) => args.run(top),
            FilesCommand::Get(args) => args.run(top),
            FilesCommand::Ls(args) => args.run(top),
        }
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

impl Run for PutArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let (dataset, key) = self.row.parse()?;
        let mut input: Box<dyn Read> = match is_stdio(&self.path) {
            true => Box::new(io::stdin().lock()),
            false if self.path.is_file() => Box::new(
                File::open(&self.path)
                    .map_err(CliError::io(format!("opening {}", self.path.display())))?,
            ),
            false => {
                return Err(CliError::NotFound(format!(
                    "no such file: {}",
                    self.path.display()
                )));
            }
        };
        let repo = self.write.repo.open(top)?;
        let version = self.write.commit(&repo, |tx| {
            tx.put_file(&dataset, &key, &mut input)?;
            Ok(())
        })?;
        let file = repo
            .at(&version)?
            .get(&dataset, &key)?
            .and_then(|row| row.file)
            .ok_or_else(|| CliError::NotFound(format!("file row {} vanished", brief(&key))))?;
        let mut extra = serde_json::Map::new();
        extra.insert("hash".into(), json!(file.hash));
        extra.insert("size".into(), json!(file.size));
        Written {
            version,
            dataset,
            key,
            extra,
        }
        .print(self.json)
    }
}

/// Copies a verified blob to `out`; a read failure (a corrupt blob) is the blob's error,
/// not an output error.
fn copy(reader: &mut dyn Read, out: &mut dyn Write, what: &str) -> CliResult<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::io(format!("reading {what}"))(e)),
        };
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

impl Run for GetArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let (dataset, key) = self.row.parse()?;
        let repo = self.repo.read(top)?;
        let view = self.at.view(&repo)?;
        let row = view
            .get(&dataset, &key)?
            .ok_or_else(|| row_not_found(&dataset, &key))?;
        if row.file.is_none() {
            return Err(CliError::Input(format!(
                "row {} in dataset {} is not a file; read it with `strata get`",
                brief(&key),
                brief(&dataset)
            )));
        }
        let mut reader = view.open_file(&dataset, &key)?;
        let what = format!("file row {}", brief(&key));
        let Some(path) = self.path.filter(|p| !is_stdio(p)) else {
            let mut out = Output::new(false);
            copy(&mut reader, out.raw(), &what)?;
            return out.finish();
        };
        // Written beside the target and renamed into place only once verified, so a
        // corrupt blob never leaves a half-written or wrong file at PATH.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let failed = CliError::io(format!("writing {}", path.display()));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(CliError::io(format!(
            "creating a file in {}",
            dir.display()
        )))?;
        copy(&mut reader, temp.as_file_mut(), &what).map_err(|e| match e {
            CliError::Output(source) => CliError::io(format!("writing {}", path.display()))(source),
            other => other,
        })?;
        temp.as_file()
            .sync_all()
            .map_err(CliError::io(format!("writing {}", path.display())))?;
        temp.persist(&path).map_err(|e| failed(e.error))?;
        Ok(())
    }
}

/// A file row in `files ls`.
struct Listed {
    dataset: Vec<u8>,
    key: Vec<u8>,
    file: FileRef,
    version: Version,
}

impl Render for Listed {
    fn json(&self) -> Value {
        json!({
            "dataset": TextOrHex(&self.dataset),
            "key": TextOrHex(&self.key),
            "size": self.file.size,
            "hash": self.file.hash,
            "version": self.version,
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            TextOrHex(&self.dataset),
            TextOrHex(&self.key),
            self.file.size,
            self.file.hash,
            self.version
        )
    }
}

impl Run for LsArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let view = self.at.view(&repo)?;
        let datasets = match &self.dataset {
            Some(name) => {
                let name = name_arg(name, self.hex_dataset, Name::Dataset)?;
                require_dataset(&view, &name)?;
                vec![name]
            }
            None => view.datasets()?,
        };
        let mut out = Output::new(self.json);
        for dataset in datasets {
            for row in view.range(&dataset, Range::all()) {
                let row = row?;
                let Some(file) = row.file else { continue };
                out.show(&Listed {
                    dataset: dataset.clone(),
                    key: row.key,
                    file,
                    version: row.version,
                })?;
            }
        }
        out.finish()
    }
}
