//! `import` and `export`: moving tables in and out as NDJSON or CSV, exactly.
//!
//! What is stored, and how it comes back out:
//!
//! * NDJSON: each non-blank line is one JSON object; the row's value is that line with the
//!   white space outside strings removed, and nothing else changed: keys keep their order,
//!   numbers their text (`1.10`, `12345678901234567890`, `1E+400`), strings their escapes.
//!   JSON is handled as text here (see `json`), so an export prints back what was stored.
//! * CSV (a header row is required; every record has as many fields as the header): each
//!   record is stored as a JSON object of strings in header order. Fields are never
//!   trimmed or converted: `007` stays `"007"`, an empty field stays `""`.
//! * The row key is the key field's value as text: a string's content, or the JSON text of
//!   a number or boolean. Several key fields are joined with `,`, with any `,` or `\`
//!   inside a field escaped by a `\` (`a,b` + `c` gives `a\,b,c`), so distinct field
//!   values always give distinct keys. A key field that is missing, null, empty, an
//!   object or an array is an error.
//!
//! Imports commit in batches through `Repository::import`: a bad line stops the import
//! with an error naming the file and line; the batches before it stay committed and
//! nothing of its own batch is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::IgnoredAny;
use strata::Importer;
use strata::{Range, Row, View};

use crate::context::{CliError, CliResult, Global, parse_bytes, show_bytes, stdout, write_json};

/// Table formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

/// Import rows from an NDJSON or CSV file (or `-` for stdin) into a dataset.
///
/// Each row becomes the value stored at the key made of its --key field(s). Rows are
/// committed in batches (one commit per batch); a bad line stops the import with an error
/// naming the file and line: the batches before it stay committed, and nothing of that
/// line's batch is.
///
/// NDJSON: every non-blank line must be a JSON object; it is stored with the white space
/// outside its strings removed and everything else exactly as written: key order, number
/// text (`1.10`, `12345678901234567890`, `1E+400`), string escapes. CSV: a header row is
/// required and every record must have as many fields as the header; each record is stored
/// as a JSON object of strings in header order, exactly as written (leading zeros and empty
/// fields are kept). A key that appears twice: the later row wins.
///
/// The row key is the key field's text: a string's content, or the JSON text of a number
/// or boolean. With several key fields, their texts are joined with `,`, and a `,` or `\`
/// inside a field is escaped with a `\` (fields `a,b` and `c` give the key `a\,b,c`). A key
/// field that is missing, null, empty, an object or an array is an error.
///
/// Example: `strata import sites.csv --dataset sites --key id`
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to read, or `-` for standard input.
    pub file: PathBuf,

    /// The dataset to import into.
    #[arg(long, short)]
    pub dataset: String,

    /// The field(s) whose value is the row key; several (comma-separated) are joined.
    #[arg(long, short, value_delimiter = ',', required = true)]
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

    /// Print a summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Export a dataset's rows, in key order, as NDJSON or CSV.
///
/// NDJSON: one line per row. A row whose value is a JSON object is printed as that object,
/// as stored (white space outside strings removed, if a `put --raw` stored any), so what
/// `import` read comes back byte for byte. Any other row is
/// printed as `{"key": KEY, "value": VALUE}`, VALUE being the parsed JSON when the value is
/// JSON, else a string (UTF-8) or `{"hex": ...}`; a file row as
/// `{"key": KEY, "file": {"hash": ..., "size": ...}}`.
///
/// CSV: the header is every field of the rows' objects, in the order first seen (the rows
/// are read twice: once for the header, once to write them). Strings are written as they
/// are; other JSON values (numbers, booleans, null, arrays, objects) as their JSON text; a
/// field a row lacks is left empty. Every row must be a JSON object (export others as
/// NDJSON). A CSV that `import` read comes back exactly, column order included.
///
/// A forked row exports its newest version (`strata forks` lists every version). Memory
/// stays bounded whatever the dataset's size: rows are read a page at a time.
///
/// Example: `strata export --dataset sites --format csv > sites.csv`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The dataset to export.
    #[arg(long, short)]
    pub dataset: String,

    /// Export as of this version instead of the current view.
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,

    /// Also write each row's key as the field NAME (first), in rows whose object has no
    /// such field: useful for rows written with `put`, whose key is not in their value.
    #[arg(long, value_name = "NAME")]
    pub key_field: Option<String>,
}

// ---- import ----

/// How often (in rows) the progress message is refreshed.
const PROGRESS_EVERY: u64 = 4096;

pub fn import(global: &Global, args: ImportArgs) -> CliResult {
    let dataset = parse_bytes(&args.dataset)?;
    let stdin = args.file.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    for field in &args.key {
        if field.is_empty() {
            return Err(CliError::Input(
                "--key: a key field name is empty".to_string(),
            ));
        }
    }
    let repo = global.open()?;

    // The input, with its size when known (for the progress bar).
    let (input, size): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file)
            .map_err(CliError::io(format!("opening {}", args.file.display())))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = import_bar(global, size, &name);
    let input: Box<dyn Read> = Box::new(bar.wrap_read(input));
    let (format, input) = match args.format.or_else(|| format_from_name(&args.file)) {
        Some(format) => (format, input),
        None => sniff(input).map_err(CliError::io(format!("reading {name}")))?,
    };
    let input = BufReader::with_capacity(256 * 1024, input);
    let mut source = match format {
        Format::Ndjson => Source::ndjson(input, name.clone(), args.key.clone()),
        Format::Csv => Source::csv(input, name.clone(), &args.key)?,
    };

    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let started = Instant::now();
    let mut importer = repo.importer(&dataset, batch, args.message.as_deref());
    let mut read = 0u64;
    let failure = loop {
        match source.next_row() {
            Ok(Some((key, value))) => {
                read += 1;
                if read.is_multiple_of(PROGRESS_EVERY) {
                    bar.set_message(format!("importing {name}: {} rows", count(read)));
                }
                if let Err(error) = importer.put(key, value) {
                    break Some(CliError::Strata(error));
                }
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    let result = match failure {
        Some(error) => Err(partial_failure(error, &importer)),
        None => importer.finish().map_err(CliError::Strata),
    };
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let versions = result?;
    let commits = versions.len();
    let mut out = stdout();
    if args.json {
        let summary = serde_json::json!({
            "dataset": show_bytes(&dataset),
            "format": match format { Format::Ndjson => "ndjson", Format::Csv => "csv" },
            "rows": read,
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
            show_bytes(&dataset),
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

/// The import's progress bar: bytes of the file when its size is known, else a count.
fn import_bar(global: &Global, size: Option<u64>, name: &str) -> ProgressBar {
    let bar = global.progress(size, &format!("importing {name}"));
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

/// Adds what stays committed to the error that stopped an import.
fn partial_failure(error: CliError, importer: &Importer) -> CliError {
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
    match error {
        CliError::Input(message) => CliError::Input(format!("{message}; {note}")),
        CliError::Io { context, source } => CliError::Io {
            context: format!("{context} ({note})"),
            source,
        },
        CliError::Strata(error) => CliError::Input(format!("{error}; {note}")),
        other => other,
    }
}

/// The format a file name implies.
fn format_from_name(path: &Path) -> Option<Format> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(Format::Csv),
        "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
        _ => None,
    }
}

/// The format from the first byte that is not a byte-order mark or white space: `{` is
/// NDJSON, anything else CSV. Returns the input with nothing consumed.
fn sniff(mut input: Box<dyn Read>) -> io::Result<(Format, Box<dyn Read>)> {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    // Past this much white space, give up looking: it is not NDJSON that anyone wrote.
    const LIMIT: usize = 1 << 20;
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 8192];
    let first = loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        prefix.extend_from_slice(&chunk[..n]);
        let partial_bom = prefix.len() < BOM.len() && BOM.starts_with(&prefix);
        let body = prefix.strip_prefix(BOM).unwrap_or(&prefix);
        let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if n == 0 || first.is_some() && !partial_bom || prefix.len() > LIMIT {
            break first;
        }
    };
    let format = match first {
        Some(b'{') => Format::Ndjson,
        _ => Format::Csv,
    };
    Ok((format, Box::new(io::Cursor::new(prefix).chain(input))))
}

/// Where rows come from.
enum Source {
    Ndjson {
        input: BufReader<Box<dyn Read>>,
        name: String,
        keys: Vec<String>,
        line: u64,
        buf: Vec<u8>,
    },
    Csv {
        reader: csv::Reader<BufReader<Box<dyn Read>>>,
        name: String,
        /// Each header name as a JSON string, ready to write.
        fields: Vec<Vec<u8>>,
        /// The position of each key field.
        key_columns: Vec<usize>,
        record: csv::StringRecord,
    },
}

impl Source {
    fn ndjson(input: BufReader<Box<dyn Read>>, name: String, keys: Vec<String>) -> Source {
        Source::Ndjson {
            input,
            name,
            keys,
            line: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    fn csv(input: BufReader<Box<dyn Read>>, name: String, keys: &[String]) -> CliResult<Source> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let header = match reader.headers() {
            Ok(header) => header.clone(),
            Err(error) => return Err(csv_error(&name, error)),
        };
        let mut fields = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            if header.iter().take(i).any(|f| f == field) {
                return Err(CliError::Input(format!(
                    "{name} line 1: the header has the field {field:?} twice"
                )));
            }
            fields.push(serde_json::to_vec(field).map_err(|e| CliError::Input(e.to_string()))?);
        }
        let mut key_columns = Vec::with_capacity(keys.len());
        for key in keys {
            match header.iter().position(|f| f == key) {
                Some(column) => key_columns.push(column),
                None if header.is_empty() => key_columns.push(0),
                None => {
                    return Err(CliError::Input(format!(
                        "{name} line 1: missing key field {key:?} (the header has {})",
                        header
                            .iter()
                            .map(|f| format!("{f:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(Source::Csv {
            reader,
            name,
            fields,
            key_columns,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row as (key, value), `None` at the end.
    fn next_row(&mut self) -> CliResult<Option<(Vec<u8>, Vec<u8>)>> {
        match self {
            Source::Ndjson {
                input,
                name,
                keys,
                line,
                buf,
            } => loop {
                buf.clear();
                let n = input
                    .read_until(b'\n', buf)
                    .map_err(CliError::io(format!("reading {name}")))?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let mut text: &[u8] = buf;
                if *line == 1 {
                    text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
                }
                while let [rest @ .., b'\n' | b'\r'] = text {
                    text = rest;
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let at =
                    |message: String| CliError::Input(format!("{name} line {line}: {message}"));
                serde_json::from_slice::<IgnoredAny>(text).map_err(|e| at(json_error(&e)))?;
                let value = json::minify(text).into_owned();
                let Some(members) = json::members(&value) else {
                    return Err(at(format!(
                        "not a JSON object (found {})",
                        json::kind(&value)
                    )));
                };
                let mut key = Vec::new();
                for (i, field) in keys.iter().enumerate() {
                    // As JSON readers do, the last of repeated names counts.
                    let Some((_, raw)) = members.iter().rev().find(|(name, _)| name == field)
                    else {
                        return Err(at(format!("missing key field {field:?}")));
                    };
                    let part = match raw.first() {
                        Some(b'"') => json::string(raw),
                        Some(b'-' | b'0'..=b'9' | b't' | b'f') => String::from_utf8_lossy(raw),
                        _ => {
                            return Err(at(format!(
                                "key field {field:?} is {}: a key must be a string, number or boolean",
                                json::kind(raw)
                            )));
                        }
                    };
                    if part.is_empty() {
                        return Err(at(format!("key field {field:?} is empty")));
                    }
                    push_key_part(&mut key, &part, i, keys.len());
                }
                return Ok(Some((key, value)));
            },
            Source::Csv {
                reader,
                name,
                fields,
                key_columns,
                record,
            } => {
                match reader.read_record(record) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(error) => return Err(csv_error(name, error)),
                }
                let line = record.position().map_or(0, |p| p.line());
                let mut key = Vec::new();
                for (i, &column) in key_columns.iter().enumerate() {
                    let part = record.get(column).unwrap_or_default();
                    if part.is_empty() {
                        let field = String::from_utf8_lossy(&fields[column]).into_owned();
                        return Err(CliError::Input(format!(
                            "{name} line {line}: key field {field} is empty"
                        )));
                    }
                    push_key_part(&mut key, part, i, key_columns.len());
                }
                let mut value = Vec::with_capacity(record.as_slice().len() + 8 * fields.len() + 2);
                value.push(b'{');
                for (i, (field, text)) in fields.iter().zip(record.iter()).enumerate() {
                    if i > 0 {
                        value.push(b',');
                    }
                    value.extend_from_slice(field);
                    value.push(b':');
                    serde_json::to_writer(&mut value, text)
                        .map_err(|e| CliError::Input(e.to_string()))?;
                }
                value.push(b'}');
                Ok(Some((key, value)))
            }
        }
    }
}

/// Appends one key field's text to a key being built, escaped (see the module docs).
fn push_key_part(key: &mut Vec<u8>, part: &str, index: usize, of: usize) {
    if of == 1 {
        key.extend_from_slice(part.as_bytes());
        return;
    }
    if index > 0 {
        key.push(b',');
    }
    for byte in part.bytes() {
        if byte == b',' || byte == b'\\' {
            key.push(b'\\');
        }
        key.push(byte);
    }
}

/// A JSON error within one line: serde_json's message, located by column only.
fn json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    format!("not valid JSON (column {}): {message}", error.column())
}

/// A CSV reading error, naming the file and line.
fn csv_error(name: &str, error: csv::Error) -> CliError {
    let line = error.position().map(|p| p.line());
    let at = match line {
        Some(line) => format!("{name} line {line}"),
        None => name.to_string(),
    };
    match error.into_kind() {
        csv::ErrorKind::Io(source) => CliError::Io {
            context: format!("reading {at}"),
            source,
        },
        csv::ErrorKind::Utf8 { err, .. } => CliError::Input(format!(
            "{at}: field {} is not valid UTF-8",
            err.field() + 1
        )),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => CliError::Input(format!(
            "{at}: {len} {} where the header has {expected_len}",
            if len == 1 { "field" } else { "fields" }
        )),
        other => CliError::Input(format!("{at}: {other:?}")),
    }
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
    let dataset = parse_bytes(&args.dataset)?;
    let repo = global.open()?;
    let view = match &args.at {
        Some(version) => repo.at(&repo.resolve(version)?)?,
        None => repo.view()?,
    };
    let key_field = args.key_field.as_deref();
    let bar = global.progress(None, "exporting");
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows in {elapsed}")
    {
        bar.set_style(style);
    }
    let result = match args.format {
        Format::Ndjson => export_ndjson(&view, &dataset, key_field, out, &bar),
        Format::Csv => export_csv(&view, &dataset, key_field, out, &bar),
    };
    bar.finish_and_clear();
    result?;
    Ok(bar.position())
}

/// Calls `f` with every row of the dataset in key order, a page at a time.
fn each_row(
    view: &View,
    dataset: &[u8],
    mut f: impl FnMut(Row) -> CliResult<ControlFlow<()>>,
) -> CliResult {
    for row in view.range(dataset, Range::all()) {
        if f(row?)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The row's value as compact JSON text when it is a JSON object (white space outside
/// strings removed, everything else as stored).
fn object_text(row: &Row) -> Option<Cow<'_, [u8]>> {
    if row.file.is_some() {
        return None;
    }
    let first = row.value.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') || serde_json::from_slice::<IgnoredAny>(&row.value).is_err() {
        return None;
    }
    Some(json::minify(&row.value))
}

fn export_ndjson(
    view: &View,
    dataset: &[u8],
    key_field: Option<&str>,
    out: &mut dyn Write,
    bar: &ProgressBar,
) -> CliResult {
    each_row(view, dataset, |row| {
        match object_text(&row) {
            Some(text) => {
                let members = json::members(&text).unwrap_or_default();
                match key_field {
                    Some(field) if !members.iter().any(|(name, _)| name == field) => {
                        // The key first, then the object's own members.
                        out.write_all(b"{")?;
                        serde_json::to_writer(&mut *out, field)
                            .map_err(|e| CliError::Output(e.into()))?;
                        out.write_all(b":")?;
                        serde_json::to_writer(&mut *out, &show_bytes(&row.key))
                            .map_err(|e| CliError::Output(e.into()))?;
                        if !members.is_empty() {
                            out.write_all(b",")?;
                        }
                        out.write_all(&text[1..])?;
                    }
                    _ => out.write_all(&text)?,
                }
                out.write_all(b"\n")?;
            }
            None => {
                let key = show_bytes(&row.key);
                let line = match &row.file {
                    Some(file) => serde_json::json!({
                        "key": key,
                        "file": { "hash": file.hash, "size": file.size },
                    }),
                    None => serde_json::json!({
                        "key": key,
                        "value": crate::context::value_json(&row.value),
                    }),
                };
                write_json(&mut &mut *out, &line)?;
            }
        }
        bar.inc(1);
        Ok(ControlFlow::Continue(()))
    })
}

fn export_csv(
    view: &View,
    dataset: &[u8],
    key_field: Option<&str>,
    out: &mut dyn Write,
    bar: &ProgressBar,
) -> CliResult {
    let not_object = |row: &Row| {
        CliError::Input(format!(
            "row {} of dataset {} is not a JSON object, so it has no CSV columns; export the dataset as NDJSON",
            show_bytes(&row.key),
            show_bytes(dataset)
        ))
    };
    // Pass 1: the header, the union of the objects' fields in first-seen order. Every row
    // must be an object; this pass finds one that is not before anything is written.
    let mut header = Header::default();
    if let Some(field) = key_field {
        header.insert(field);
    }
    each_row(view, dataset, |row| {
        let text = object_text(&row).ok_or_else(|| not_object(&row))?;
        for (name, _) in json::members(&text).unwrap_or_default() {
            header.insert(&name);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if header.names.is_empty() {
        return Ok(());
    }

    // Pass 2: the rows. The view is fixed, so they are the rows pass 1 saw.
    let mut writer = csv::WriterBuilder::new().from_writer(out);
    writer.write_record(&header.names).map_err(csv_output)?;
    let mut cells: Vec<String> = vec![String::new(); header.names.len()];
    each_row(view, dataset, |row| {
        let text = object_text(&row).ok_or_else(|| not_object(&row))?;
        cells.iter_mut().for_each(String::clear);
        // The key column; an object's own field of that name replaces it below.
        if key_field.is_some() {
            cells[0] = show_bytes(&row.key);
        }
        for (name, raw) in json::members(&text).unwrap_or_default() {
            let Some(&column) = header.columns.get(name.as_ref()) else {
                return Err(CliError::Input(format!(
                    "row {} changed during the export",
                    show_bytes(&row.key)
                )));
            };
            cells[column] = match raw.first() {
                Some(b'"') => json::string(raw).into_owned(),
                _ => String::from_utf8_lossy(raw).into_owned(),
            };
        }
        writer.write_record(&cells).map_err(csv_output)?;
        bar.inc(1);
        Ok(ControlFlow::Continue(()))
    })?;
    writer.flush().map_err(CliError::Output)?;
    Ok(())
}

/// CSV columns in first-seen order.
#[derive(Default)]
struct Header {
    names: Vec<String>,
    columns: HashMap<String, usize>,
}

impl Header {
    fn insert(&mut self, name: &str) {
        if !self.columns.contains_key(name) {
            self.columns.insert(name.to_string(), self.names.len());
            self.names.push(name.to_string());
        }
    }
}

/// A CSV writing error: the output failed.
fn csv_output(error: csv::Error) -> CliError {
    match error.into_kind() {
        csv::ErrorKind::Io(source) => CliError::Output(source),
        other => CliError::Output(io::Error::other(format!("{other:?}"))),
    }
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

/// JSON handled as text, so that what is stored is what was written: numbers keep their
/// exact text (`1.10`, `1E+400`), strings their escapes, objects their member order. Every
/// function here expects text that serde_json has already checked is valid JSON.
mod json {
    use std::borrow::Cow;

    fn is_space(byte: u8) -> bool {
        matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
    }

    /// The text without the white space outside strings.
    pub fn minify(text: &[u8]) -> Cow<'_, [u8]> {
        let mut in_string = false;
        let mut escaped = false;
        let mut out: Option<Vec<u8>> = None;
        for (i, &byte) in text.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else if byte == b'"' {
                in_string = true;
            } else if is_space(byte) {
                if out.is_none() {
                    out = Some(text[..i].to_vec());
                }
                continue;
            }
            if let Some(out) = &mut out {
                out.push(byte);
            }
        }
        match out {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(text),
        }
    }

    /// What kind of value minified text is, for messages.
    pub fn kind(text: &[u8]) -> &'static str {
        match text.first() {
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        }
    }

    /// The end (exclusive) of the string that starts at `start`.
    fn string_end(text: &[u8], start: usize) -> usize {
        let mut i = start + 1;
        while i < text.len() {
            match text[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        text.len()
    }

    /// The end (exclusive) of the value that starts at `start` in minified text.
    fn value_end(text: &[u8], start: usize) -> usize {
        let mut depth = 0usize;
        let mut i = start;
        while i < text.len() {
            match text[i] {
                b'"' => {
                    i = string_end(text, i);
                    if depth == 0 {
                        return i;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        return i;
                    }
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
            i += 1;
        }
        text.len()
    }

    /// The contents of a JSON string's raw text (quotes included), unescaped.
    pub fn string(raw: &[u8]) -> Cow<'_, str> {
        let inner = &raw[1..raw.len().saturating_sub(1).max(1)];
        if !inner.contains(&b'\\') {
            return String::from_utf8_lossy(inner);
        }
        match serde_json::from_slice::<String>(raw) {
            Ok(text) => Cow::Owned(text),
            Err(_) => String::from_utf8_lossy(inner),
        }
    }

    /// The members of minified object text, as (name, raw value text), in order; `None`
    /// when the text is not an object.
    pub fn members(text: &[u8]) -> Option<Vec<(Cow<'_, str>, &[u8])>> {
        if text.first() != Some(&b'{') {
            return None;
        }
        let mut members = Vec::new();
        let mut i = 1;
        while i < text.len() && text[i] == b'"' {
            let name_end = string_end(text, i);
            let name = string(&text[i..name_end]);
            // Skip the colon.
            let start = name_end + 1;
            let end = value_end(text, start).min(text.len());
            members.push((name, &text[start.min(end)..end]));
            // Skip the comma (or land on the closing brace).
            i = end + 1;
        }
        Some(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_everything_but_white_space() {
        let text = br#" { "a" : [ 1 , 2.50 ] ,	"b c" : "x \" y \\" , "n" : 1E+400 }
"#;
        assert_eq!(
            &*json::minify(text),
            br#"{"a":[1,2.50],"b c":"x \" y \\","n":1E+400}"#
        );
        assert!(matches!(json::minify(br#"{"a":1}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn members_split_at_the_top_level_only() {
        let text = br#"{"a":{"x":[1,{"y":"}"}]},"b\"q":"s,t","c":-1.10,"d":null,"e":[],"f":{}}"#;
        let members = json::members(text).unwrap();
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["a", "b\"q", "c", "d", "e", "f"]);
        let raws: Vec<&[u8]> = members.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            raws,
            [
                &br#"{"x":[1,{"y":"}"}]}"#[..],
                br#""s,t""#,
                b"-1.10",
                b"null",
                b"[]",
                b"{}"
            ]
        );
        assert_eq!(json::members(b"{}").unwrap().len(), 0);
        assert!(json::members(b"[1]").is_none());
        assert_eq!(json::string(br#""a\u00e9\n""#), "a\u{e9}\n");
    }

    #[test]
    fn composite_keys_are_unambiguous() {
        let key = |parts: &[&str]| {
            let mut key = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                push_key_part(&mut key, part, i, parts.len());
            }
            String::from_utf8(key).unwrap()
        };
        assert_eq!(key(&["a,b", "c"]), r"a\,b,c");
        assert_eq!(key(&["a", "b,c"]), r"a,b\,c");
        assert_eq!(key(&[r"a\", "b"]), r"a\\,b");
        assert_eq!(key(&["a,b"]), "a,b");
    }
}
