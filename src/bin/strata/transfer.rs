//! `import` and `export`: flags, progress and printing around the library's tables
//! (`strata::TableReader` and `strata::TableWriter`, whose docs hold every rule).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use strata::Importer;
use strata::{KeyFields, Range, TableFormat, TableKeys, TableReader, TableWriter, TextOrHex};

use crate::context::{CliError, CliResult, DatasetOption, Global, brief, stdout, write_json};
use crate::rows::view_at;

/// Table formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

impl From<Format> for TableFormat {
    fn from(format: Format) -> TableFormat {
        match format {
            Format::Ndjson => TableFormat::Ndjson,
            Format::Csv => TableFormat::Csv,
        }
    }
}

/// Import rows from an NDJSON or CSV file (or `-` for stdin) into a dataset.
///
/// With --key, each row's key is made of those fields of the row (and the row is the
/// value); without it, each row carries its key in a `_key` column, as `export` writes by
/// default. Whatever `export` writes, `import` with the same --key reads back to the same
/// rows. Rows are committed in batches; a bad line stops the import with an error naming
/// the file and line: the batches before it stay committed, nothing of its own batch is.
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
    pub file: std::path::PathBuf,

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

    /// Print a summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Export a dataset's rows, in key order, as NDJSON or CSV.
///
/// Every row carries its key: by default in a `_key` column (first), the value being the
/// rest: a JSON object as its members, any other JSON value in `_value`, and (NDJSON only)
/// anything else as `_raw` bytes. With --key, the key must be those fields of each row's
/// value (a row whose fields give another key is refused), and rows are written as they are,
/// so a table `import --key` read comes back byte for byte. `import` with the same --key
/// reads any export back to the same rows.
///
/// CSV cells are text: a row is written as cells only when reading them gives its value
/// back (a JSON object of strings with the header's fields, the header being the fields of
/// the first such row); other JSON values go whole in a `_value` column (refused with
/// --key), and a value that is not JSON is refused (export NDJSON). The rows are read twice
/// for CSV: once for the header, once to write them.
///
/// A forked row exports its newest version (`strata forks` lists every version); file rows
/// are skipped with a note. Memory stays bounded: rows are read a page at a time.
///
/// Example: `strata export --dataset sites --format csv --key id > sites.csv`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dataset: DatasetOption,

    /// Export as of this version instead of the current view.
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,

    /// The field(s) of each row that hold its key, as given to `import --key`. Without it,
    /// each row's key is written in a `_key` column.
    #[arg(long, short, value_delimiter = ',')]
    pub key: Vec<String>,

    /// End lines with CRLF instead of LF.
    #[arg(long)]
    pub crlf: bool,
}

/// Where the rows' keys are, from `--key`.
fn table_keys(fields: &[String]) -> CliResult<TableKeys> {
    if fields.is_empty() {
        return Ok(TableKeys::Column);
    }
    KeyFields::new(fields)
        .map(TableKeys::Fields)
        .map_err(|error| match error {
            strata::Error::InvalidArgument(reason) => CliError::Input(format!("--key: {reason}")),
            other => other.into(),
        })
}

// ---- import ----

/// How often (in rows) the progress message is refreshed.
const PROGRESS_EVERY: u64 = 4096;

pub fn import(global: &Global, args: ImportArgs) -> CliResult {
    let dataset = args.dataset.name()?;
    let keys = table_keys(&args.key)?;
    let stdin = args.file.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    let format = args
        .format
        .map(TableFormat::from)
        .or_else(|| TableFormat::from_path(&args.file));
    let repo = global.open()?;

    // With --strict, a first pass reads everything and writes nothing; standard input is
    // kept in a temporary file for the second.
    let (input, size) = match args.strict {
        true => {
            let spool = check(global, &args.file, &name, format, &keys)?;
            match spool {
                Some(file) => {
                    let size = file.metadata().ok().map(|m| m.len());
                    (Box::new(file) as Box<dyn Read>, size)
                }
                None => open_input(&args.file)?,
            }
        }
        false => open_input(&args.file)?,
    };
    let bar = read_bar(global, size, &format!("importing {name}"));
    let mut reader = TableReader::new(bar.wrap_read(input), format, keys, name.as_str())
        .map_err(|e| with_note(e.into(), "nothing was imported"))?;

    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let started = Instant::now();
    let mut importer = repo.importer(&dataset, batch, args.message.as_deref());
    let mut failure = None;
    while let Some(row) = reader.next() {
        let stored = row.and_then(|(key, value)| importer.put(key, value));
        if let Err(error) = stored {
            failure = Some(error);
            break;
        }
        let read = reader.rows();
        if read.is_multiple_of(PROGRESS_EVERY) {
            bar.set_message(format!("importing {name}: {} rows", count(read)));
        }
    }
    let result = match failure {
        Some(error) => Err(partial_failure(error, &importer)),
        None => importer.finish().map_err(CliError::Strata),
    };
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let versions = result?;
    let read = reader.rows();
    let repeated = reader.duplicates();
    if repeated.count() > 0 {
        eprintln!(
            "strata: warning: {}; the last row with each key wins: {}",
            repeats(repeated.count(), read),
            repeated_keys(repeated)
        );
    }
    let commits = versions.len();
    let mut out = stdout();
    if args.json {
        let keys: Vec<TextOrHex<&[u8]>> =
            repeated.keys().iter().map(|k| TextOrHex(&k[..])).collect();
        let summary = json!({
            "dataset": TextOrHex(&dataset),
            "format": reader.format().name(),
            "rows": read,
            "repeated": repeated.count(),
            "repeated_keys": keys,
            "commits": commits,
            "versions": versions,
            "seconds": elapsed.as_secs_f64(),
        });
        write_json(&mut out, &summary)?;
    } else if read == 0 {
        writeln!(out, "imported 0 rows from {name}: nothing to commit")?;
    } else {
        writeln!(
            out,
            "imported {} rows into {} in {} {} ({})",
            count(read),
            TextOrHex(&dataset),
            commits,
            if commits == 1 { "commit" } else { "commits" },
            rate(read, elapsed),
        )?;
        for version in &versions {
            writeln!(out, "version {version}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The table's bytes, with their size when known (for the progress bar).
fn open_input(path: &Path) -> CliResult<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let file = File::open(path).map_err(CliError::io(format!("opening {}", path.display())))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), size))
}

/// `--strict`'s first pass: reads the whole table, writing nothing, and refuses it when a
/// line is bad or a key repeats. Returns the copy of standard input to import from.
fn check(
    global: &Global,
    path: &Path,
    name: &str,
    format: Option<TableFormat>,
    keys: &TableKeys,
) -> CliResult<Option<File>> {
    let (input, size) = open_input(path)?;
    let spool = match path.as_os_str() == "-" {
        true => Some(tempfile::tempfile().map_err(CliError::io("creating a temporary file"))?),
        false => None,
    };
    let input: Box<dyn Read + '_> = match &spool {
        Some(copy) => Box::new(Tee { input, copy }),
        None => input,
    };
    let nothing = |error: strata::Error| with_note(error.into(), "nothing was imported");
    let bar = read_bar(global, size, &format!("checking {name}"));
    let mut reader =
        TableReader::new(bar.wrap_read(input), format, keys.clone(), name).map_err(nothing)?;
    for row in reader.by_ref() {
        row.map_err(nothing)?;
    }
    bar.finish_and_clear();
    let repeated = reader.duplicates();
    if repeated.count() > 0 {
        return Err(CliError::Input(format!(
            "{name}: {}: {}; with --strict nothing was imported",
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
        "{} of {} rows {} the key of an earlier row",
        count(repeated),
        count(rows),
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

/// A progress bar over bytes read: of the file when its size is known, else a count.
fn read_bar(global: &Global, size: Option<u64>, what: &str) -> ProgressBar {
    let bar = global.progress(size, what);
    let template = match size {
        Some(_) => {
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
        }
        None => "{spinner} {msg} {binary_bytes} read, {binary_bytes_per_sec}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// An error with what it left behind added: `…; nothing was imported`.
fn with_note(error: CliError, note: &str) -> CliError {
    match error {
        CliError::Io { context, source } => CliError::Io {
            context: format!("{context} ({note})"),
            source,
        },
        CliError::Strata(strata::Error::Io { context, source }) => CliError::Io {
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
            "the {} rows before it stay committed ({} {}, version {newest}); nothing of its batch was",
            count(importer.rows_committed()),
            committed.len(),
            if committed.len() == 1 {
                "commit"
            } else {
                "commits"
            },
        ),
    };
    with_note(error.into(), &note)
}

// ---- export ----

pub fn export(global: &Global, args: ExportArgs) -> CliResult {
    let mut out = stdout();
    export_to(global, args, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `export`, writing to `out`; returns how many rows it wrote.
pub fn export_to(global: &Global, args: ExportArgs, out: &mut dyn Write) -> CliResult<u64> {
    let dataset = args.dataset.name()?;
    let keys = table_keys(&args.key)?;
    let by_fields = matches!(keys, TableKeys::Fields(_));
    let repo = global.open()?;
    let view = view_at(&repo, args.at.as_deref())?;
    let bar = global.progress(None, "exporting");
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows in {elapsed}")
    {
        bar.set_style(style);
    }
    let mut writer = TableWriter::new(out, args.format.into(), keys, args.crlf);
    let mut files = Vec::new();
    let result = (|| {
        // CSV reads the rows twice: the first pass chooses the columns and refuses a row it
        // cannot hold before anything is written. The view is fixed: both see the same rows.
        if writer.needs_scan() {
            for row in view.range(&dataset, Range::all()) {
                let row = row?;
                if row.file.is_none() {
                    writer.scan(&row.key, &row.value)?;
                }
            }
        }
        for row in view.range(&dataset, Range::all()) {
            let row = row?;
            if row.file.is_some() {
                files.push(row.key);
                continue;
            }
            writer.write(&row.key, &row.value)?;
            bar.inc(1);
        }
        writer.finish().map(drop)
    })();
    bar.finish_and_clear();
    result.map_err(|error| match error {
        strata::Error::Table { place, reason } if by_fields => CliError::Input(format!(
            "{place}: {reason}; export without --key to carry every key in the `_key` column"
        )),
        other => other.into(),
    })?;
    if !files.is_empty() {
        let mut shown: Vec<String> = files.iter().take(5).map(|k| brief(k)).collect();
        if files.len() > shown.len() {
            shown.push("…".to_string());
        }
        eprintln!(
            "strata: note: skipped {} file {} ({}): export {} with `strata files get`",
            files.len(),
            if files.len() == 1 { "row" } else { "rows" },
            shown.join(", "),
            if files.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(bar.position())
}

// ---- formatting ----

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` rows in `d`: `0.21 s, 16,076 rows/s`.
pub fn rate(n: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return format!("{secs:.2} s");
    }
    // The cast saturates, so it cannot misbehave.
    format!(
        "{secs:.2} s, {} rows/s",
        count((n as f64 / secs).round() as u64)
    )
}
