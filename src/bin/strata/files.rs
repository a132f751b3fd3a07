//! `files put|get|ls`: file rows, streamed in and out of the blob store.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use strata::{Range, TextOrHex};

use crate::context::{
    CliError, CliResult, Global, Name, brief, existing_file, name_arg, stdout, write_json,
};
use crate::rows::{RowArgs, WriteOptions, print_write, row_not_found, view_at};

/// File rows: content kept in the repository's blob store, named by its SHA-256.
///
/// Files are streamed in and out (any size, constant memory) and checked against their
/// hash as they are read.
///
/// Example: `strata files put photos s-17.jpg ./IMG_0042.jpg`, `strata files ls --json`
#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    /// Store a file as a row.
    ///
    /// Example: `strata files put photos s-17.jpg ./IMG_0042.jpg`
    Put {
        #[command(flatten)]
        row: RowArgs,
        /// The file to store (`-` for standard input).
        path: PathBuf,
        #[command(flatten)]
        write: WriteOptions,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a file row's content to PATH, or to stdout when PATH is `-` or absent.
    ///
    /// Example: `strata files get photos s-17.jpg out.jpg`
    Get {
        #[command(flatten)]
        row: RowArgs,
        /// Where to write the content (`-` or absent: stdout). The file appears only once
        /// its content is verified.
        path: Option<PathBuf>,
        /// Read at this version instead of the current view.
        #[arg(long, value_name = "VERSION")]
        at: Option<String>,
    },
    /// List file rows (of one dataset, or of all).
    ///
    /// Example: `strata files ls photos`
    Ls {
        /// Only this dataset (its name as written). Default: every dataset.
        dataset: Option<String>,
        /// DATASET is given in hex, for a name that is not text.
        #[arg(long, requires = "dataset")]
        hex_dataset: bool,
        /// List them at this version instead of the current view.
        #[arg(long, value_name = "VERSION")]
        at: Option<String>,
        /// Print one JSON object per file (NDJSON).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &Global, command: FilesCommand) -> CliResult {
    match command {
        FilesCommand::Put {
            row,
            path,
            write,
            json,
        } => put(global, &row, &path, &write, json),
        FilesCommand::Get { row, path, at } => get(global, &row, path.as_deref(), at.as_deref()),
        FilesCommand::Ls {
            dataset,
            hex_dataset,
            at,
            json,
        } => {
            let dataset = dataset
                .map(|name| name_arg(&name, hex_dataset, Name::Dataset))
                .transpose()?;
            ls(global, dataset, at.as_deref(), json)
        }
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn put(global: &Global, row: &RowArgs, path: &Path, write: &WriteOptions, json: bool) -> CliResult {
    let (dataset, key) = row.parse()?;
    let repo = global.open()?;
    let mut tx = repo.transaction();
    if is_stdio(path) {
        tx.put_file(&dataset, &key, &mut io::stdin().lock())?;
    } else {
        let mut file = File::open(existing_file(path)?)
            .map_err(CliError::io(format!("opening {}", path.display())))?;
        tx.put_file(&dataset, &key, &mut file)?;
    }
    if let Some(message) = &write.message {
        tx.message(message);
    }
    tx.replaces(&crate::rows::versions(&repo, &write.replaces)?);
    let version = tx.commit()?;
    let file = repo
        .at(&version)?
        .get(&dataset, &key)?
        .and_then(|row| row.file)
        .ok_or_else(|| CliError::NotFound(format!("file row {} vanished", brief(&key))))?;
    let mut extra = serde_json::Map::new();
    extra.insert("hash".into(), json!(file.hash));
    extra.insert("size".into(), json!(file.size));
    print_write(&version, &dataset, &key, extra, json)
}

/// A reader of the file row `dataset/key` in the view `at` (or the current view), checked
/// against its hash as it is read.
fn open(global: &Global, dataset: &[u8], key: &[u8], at: Option<&str>) -> CliResult<Box<dyn Read>> {
    let repo = global.open()?;
    let view = view_at(&repo, at)?;
    let row = view
        .get(dataset, key)?
        .ok_or_else(|| row_not_found(dataset, key))?;
    if row.file.is_none() {
        return Err(CliError::Input(format!(
            "row {} in dataset {} is not a file; read it with `strata get`",
            brief(key),
            brief(dataset)
        )));
    }
    Ok(Box::new(view.open_file(dataset, key)?))
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

fn get(global: &Global, row: &RowArgs, path: Option<&Path>, at: Option<&str>) -> CliResult {
    let (dataset, key) = row.parse()?;
    let mut reader = open(global, &dataset, &key, at)?;
    let what = format!("file row {}", brief(&key));
    match path.filter(|p| !is_stdio(p)) {
        None => {
            let mut out = io::stdout().lock();
            copy(&mut reader, &mut out, &what)?;
            out.flush()?;
        }
        Some(path) => {
            // Written beside the target and renamed into place only once verified, so a
            // corrupt blob never leaves a half-written or wrong file at PATH.
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(CliError::io(format!(
                "creating a file in {}",
                dir.display()
            )))?;
            copy(&mut reader, temp.as_file_mut(), &what).map_err(|e| match e {
                CliError::Output(source) => {
                    CliError::io(format!("writing {}", path.display()))(source)
                }
                other => other,
            })?;
            temp.as_file()
                .sync_all()
                .map_err(CliError::io(format!("writing {}", path.display())))?;
            temp.persist(path)
                .map_err(|e| CliError::io(format!("writing {}", path.display()))(e.error))?;
        }
    }
    Ok(())
}

fn ls(global: &Global, dataset: Option<Vec<u8>>, at: Option<&str>, json: bool) -> CliResult {
    let repo = global.open()?;
    let view = view_at(&repo, at)?;
    let datasets = match dataset {
        Some(name) => vec![name],
        None => view.datasets()?,
    };
    let mut out = stdout();
    for dataset in datasets {
        for row in view.range(&dataset, Range::all()) {
            let row = row?;
            let Some(file) = &row.file else { continue };
            if json {
                write_json(
                    &mut out,
                    &json!({
                        "dataset": TextOrHex(&dataset),
                        "key": TextOrHex(&row.key),
                        "size": file.size,
                        "hash": file.hash,
                        "version": row.version,
                    }),
                )?;
            } else {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    TextOrHex(&dataset),
                    TextOrHex(&row.key),
                    file.size,
                    file.hash,
                    row.version
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
