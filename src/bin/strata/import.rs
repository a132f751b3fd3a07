//! `import`: a table (NDJSON or CSV) into a dataset, through the library's `TableReader`
//! and `Importer` (whose docs hold every rule), with progress, a summary, and a clean stop
//! on Ctrl-C.
//!
//! An import is re-runnable: rows that already hold the value they would get are left out,
//! so running the same import again writes nothing, and an interrupted one is continued by
//! running it again. Ctrl-C stops reading, commits the rows already read (a commit
//! boundary), and says what is committed; a second Ctrl-C stops at once (what is committed
//! stays, as after a crash).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::HumanCount;
use serde_json::{Value, json};
use strata::{Importer, ReadAhead, TableFormat, TableKeys, TableReader, TextOrHex, Version};

use crate::args::DatasetOption;
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::export::{Format, table_keys};
use crate::open::{ProgressOptions, RepoPath, WriteRepo, open_for_writing};
use crate::output::{Output, Render, brief, plural, rate, warning};

/// Import rows from an NDJSON or CSV file (or `-` for stdin) into a dataset.
///
/// With --key, each row's key is made of those fields of the row (and the row is the
/// value); without it, each row carries its key in a `_key` column, as `export` writes by
/// default. Whatever `export` writes, `import` with the same --key reads back to the same
/// rows. Rows are committed in batches; a bad line stops the import with an error naming
/// the file and line: the batches before it stay committed, nothing of its own batch is.
///
/// Re-runnable: a row that already holds the value it would get is left out (--force
/// writes it anyway), so running the same import again writes nothing. Ctrl-C stops at a
/// commit boundary and says what was committed; run the same command again to continue.
///
/// NDJSON: every non-blank line is a JSON object, stored with the white space outside its
/// strings removed and everything else as written (key order, number text, escapes). CSV: a
/// header row naming each field once; every record is stored as a JSON object of strings in
/// header order, exactly as written. A key several rows share: the last row wins, and the
/// repeats are reported (--strict refuses them).
///
/// Key fields: a string's content, or the JSON text of a number or boolean; several are
/// joined with `,`, a `,` or `\` inside a field escaped with `\` (`a,b` and `c` give
/// `a\,b,c`). A key field that is missing, null, empty, an object or an array is an error.
///
/// Example: `strata import sites.csv --dataset sites --key id`
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to read, or `-` for standard input.
    pub file: PathBuf,

    #[command(flatten)]
    pub dataset: DatasetOption,

    /// The field(s) whose value is the row key; several (comma-separated) are joined.
    /// Without it, the key is each row's `_key` column.
    #[arg(long, short, value_delimiter = ',')]
    pub key: Vec<String>,

    /// The file's format. Default: from the file name (.csv or .ndjson/.jsonl/.json), else
    /// from its first byte (`{` means NDJSON, anything else CSV).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Rows per commit.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,

    /// The commit message.
    #[arg(long, short)]
    pub message: Option<String>,

    /// Read the whole file first and import nothing if a key repeats or a line is bad.
    #[arg(long)]
    pub strict: bool,

    /// Write every row, even one that already holds the value it would get.
    #[arg(long)]
    pub force: bool,

    /// Print a summary as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub progress: ProgressOptions,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// How often (in rows) the progress message is refreshed.
const PROGRESS_EVERY: u64 = 4096;

/// What an import did.
struct Summary {
    dataset: Vec<u8>,
    source: String,
    format: TableFormat,
    /// Rows read (and committed, or found unchanged).
    rows: u64,
    /// Rows that changed their row.
    written: u64,
    repeated: u64,
    repeated_keys: Vec<Vec<u8>>,
    versions: Vec<Version>,
    elapsed: Duration,
    /// False when Ctrl-C stopped it.
    complete: bool,
}

impl Render for Summary {
    fn json(&self) -> Value {
        let keys: Vec<TextOrHex<&[u8]>> = self
            .repeated_keys
            .iter()
            .map(|k| TextOrHex(&k[..]))
            .collect();
        json!({
            "dataset": TextOrHex(&self.dataset),
            "format": self.format.name(),
            "rows": self.rows,
            "written": self.written,
            "unchanged": self.rows - self.written.min(self.rows),
            "repeated": self.repeated,
            "repeated_keys": keys,
            "commits": self.versions.len(),
            "versions": self.versions,
            "seconds": self.elapsed.as_secs_f64(),
            "complete": self.complete,
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let dataset = TextOrHex(&self.dataset);
        let unchanged = self.rows - self.written.min(self.rows);
        if self.rows == 0 {
            writeln!(
                out,
                "imported 0 rows from {}: nothing to commit",
                self.source
            )?;
        } else if self.written == 0 {
            writeln!(
                out,
                "nothing to import: all {} of {} already hold these values in {dataset} (--force writes them anyway)",
                plural(self.rows, "row"),
                self.source
            )?;
        } else {
            let commits = self.versions.len() as u64;
            let left_out = match unchanged {
                0 => String::new(),
                n => format!("; {} already held these values", plural(n, "row")),
            };
            let repeats = match self.repeated {
                0 => String::new(),
                n => format!("; {n} repeated an earlier row's key (the last one wins)"),
            };
            writeln!(
                out,
                "imported {} into {dataset} in {} ({}){left_out}{repeats}",
                plural(self.written, "row"),
                plural(commits, "commit"),
                rate(self.rows, self.elapsed),
            )?;
        }
        for version in &self.versions {
            writeln!(out, "version {version}")?;
        }
        Ok(())
    }
}

/// Ctrl-C: the first asks the import to stop at a commit boundary, a second stops at once.
fn stop_on_interrupt() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("strata: interrupted again: stopping now (committed batches stay)");
            std::process::exit(1);
        }
        eprintln!(
            "strata: interrupted: committing the rows read so far (Ctrl-C again stops at once)"
        );
    });
    if installed.is_err() {
        // Without a handler Ctrl-C ends the process as before: still safe (every commit
        // is atomic), only without the report.
        warning("cannot catch Ctrl-C here; an interrupted import reports nothing");
    }
    stop
}

impl Run for ImportArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let dataset = self.dataset.name()?;
        let keys = table_keys(&self.key)?;
        let source = match self.file.as_os_str() == "-" {
            true => "stdin".to_string(),
            false => self.file.display().to_string(),
        };
        let format = self
            .format
            .map(TableFormat::from)
            .or_else(|| TableFormat::from_path(&self.file));
        let storage = self.repo.path.storage(top)?;

        // With --strict, a first pass reads everything and writes nothing (and takes no
        // lock); standard input is kept in a temporary file for the second.
        let (input, size) = match self.strict {
            true => match self.check(&source, format, &keys)? {
                Some(file) => {
                    let size = file.metadata().ok().map(|m| m.len());
                    (Box::new(file) as Box<dyn Read + Send>, size)
                }
                None => open_input(&self.file)?,
            },
            false => open_input(&self.file)?,
        };
        let repo = open_for_writing(&storage, Duration::from_secs(self.repo.wait))?;
        // Only now: until the import writes, Ctrl-C simply ends the process (nothing to
        // report, nothing written).
        let stop = stop_on_interrupt();
        let bar = self.progress.bytes(size, &format!("importing {source}"));
        let reader = TableReader::new(bar.wrap_read(input), format, keys, source.as_str())
            .map_err(|e| with_note(e.into(), "nothing was imported"))?;
        // Parsing runs on its own thread, ahead of the commits.
        let mut rows = ReadAhead::spawn(reader)?;

        let batch = usize::try_from(self.batch).unwrap_or(usize::MAX);
        let started = Instant::now();
        let mut importer = repo
            .importer(&dataset, batch, self.message.as_deref())
            .force(self.force);
        let mut failure = None;
        let mut complete = true;
        let mut read = 0u64;
        while let Some(row) = rows.next() {
            if let Err(error) = row.and_then(|(key, value)| importer.put(key, value)) {
                failure = Some(error);
                break;
            }
            read += 1;
            if read.is_multiple_of(PROGRESS_EVERY) {
                bar.set_message(format!("importing {source}: {} rows", HumanCount(read)));
            }
            if complete && stop.load(Ordering::SeqCst) {
                // The rows the reader has already read (at most 17,408) still come and
                // are committed, so the rows and repeats reported are exactly those of the
                // rows committed.
                complete = false;
                rows.stop();
            }
        }
        if let Some(error) = failure {
            bar.finish_and_clear();
            return Err(partial_failure(error, &importer));
        }
        let versions = importer.finish();
        let reader = rows.finish();
        bar.finish_and_clear();
        let (versions, reader) = (versions?, reader?);
        let written = rows_written(&repo, &versions)?;
        let repeated = reader.duplicates();
        if repeated.count() > 0 {
            warning(&format!(
                "{}; the last row with each key wins: {}",
                repeats(repeated.count(), reader.rows()),
                repeated_keys(repeated)
            ));
        }
        let summary = Summary {
            dataset,
            source,
            format: reader.format(),
            rows: reader.rows(),
            written,
            repeated: repeated.count(),
            repeated_keys: repeated.keys().to_vec(),
            versions,
            elapsed: started.elapsed(),
            complete,
        };
        let mut out = Output::new(self.json);
        out.show(&summary)?;
        out.finish()?;
        match complete {
            true => Ok(()),
            false => Err(CliError::Input(format!(
                "interrupted: {} of {} committed ({}); run the same command again to continue: rows already imported are skipped",
                plural(summary.rows, "row"),
                summary.source,
                match summary.versions.last() {
                    Some(last) => format!(
                        "{}, last version {last}",
                        plural(summary.versions.len() as u64, "commit")
                    ),
                    None => "no new commit".to_string(),
                }
            ))),
        }
    }
}

/// How many rows the import's commits wrote (each commit counts its own puts).
fn rows_written(repo: &strata::Repository, versions: &[Version]) -> CliResult<u64> {
    let mut written = 0;
    for version in versions {
        let info = repo.commit_info(repo.graph().get(version.as_str())?)?;
        written += info.commit.map_or(0, |c| c.operation_count());
    }
    Ok(written)
}

impl ImportArgs {
    /// `--strict`'s first pass: reads the whole table, writing nothing, and refuses it when
    /// a line is bad or a key repeats. Returns the copy of standard input to import from.
    fn check(
        &self,
        source: &str,
        format: Option<TableFormat>,
        keys: &TableKeys,
    ) -> CliResult<Option<File>> {
        let (input, size) = open_input(&self.file)?;
        let spool = match self.file.as_os_str() == "-" {
            true => Some(tempfile::tempfile().map_err(CliError::io("creating a temporary file"))?),
            false => None,
        };
        let input: Box<dyn Read + '_> = match &spool {
            Some(copy) => Box::new(Tee { input, copy }),
            None => input,
        };
        let nothing = |error: strata::Error| with_note(error.into(), "nothing was imported");
        let bar = self.progress.bytes(size, &format!("checking {source}"));
        let mut reader = TableReader::new(bar.wrap_read(input), format, keys.clone(), source)
            .map_err(nothing)?;
        for row in reader.by_ref() {
            row.map_err(nothing)?;
        }
        bar.finish_and_clear();
        let repeated = reader.duplicates();
        if repeated.count() > 0 {
            return Err(CliError::Input(format!(
                "{source}: {}: {}; with --strict nothing was imported",
                repeats(repeated.count(), reader.rows()),
                repeated_keys(repeated)
            )));
        }
        drop(reader);
        match spool {
            Some(mut copy) => {
                copy.rewind()
                    .map_err(CliError::io("reading the temporary file"))?;
                Ok(Some(copy))
            }
            None => Ok(None),
        }
    }
}

/// The table's bytes, with their size when known (for the progress bar).
fn open_input(path: &Path) -> CliResult<(Box<dyn Read + Send>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(io::stdin()), None));
    }
    if !path.is_file() {
        return Err(CliError::NotFound(format!(
            "no such file: {}",
            path.display()
        )));
    }
    let file = File::open(path).map_err(CliError::io(format!("opening {}", path.display())))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), size))
}

/// Reads `input`, keeping a copy of every byte read in `copy`.
struct Tee<'a, R> {
    input: R,
    copy: &'a File,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// `3 of 6 rows repeat the key of an earlier row`.
fn repeats(repeated: u64, rows: u64) -> String {
    format!(
        "{} of {} {} the key of an earlier row",
        HumanCount(repeated),
        plural(rows, "row"),
        if repeated == 1 { "repeats" } else { "repeat" }
    )
}

/// The first repeated keys, `a, b`, with `, …` when there may be more.
fn repeated_keys(repeated: &strata::Duplicates) -> String {
    let mut keys: Vec<String> = repeated.keys().iter().map(|k| brief(k)).collect();
    if repeated.more_keys() {
        keys.push("…".to_string());
    }
    keys.join(", ")
}

/// An error with what it left behind added: `…; nothing was imported`.
fn with_note(error: CliError, note: &str) -> CliError {
    match error {
        CliError::Io { context, source }
        | CliError::Strata(strata::Error::Io { context, source }) => CliError::Io {
            context: format!("{context} ({note})"),
            source,
        },
        CliError::Input(message) => CliError::Input(format!("{message}; {note}")),
        CliError::Strata(error) => CliError::Input(format!("{error}; {note}")),
        other => other,
    }
}

/// Adds what stays committed to the error that stopped an import.
fn partial_failure(error: strata::Error, importer: &Importer) -> CliError {
    let committed = importer.committed();
    let note = match committed.last() {
        None => "nothing was imported".to_string(),
        Some(newest) => format!(
            "the {} before it stay committed ({}, version {newest}); nothing of its batch was",
            plural(importer.rows_committed(), "row"),
            plural(committed.len() as u64, "commit"),
        ),
    };
    with_note(error.into(), &note)
}
