//! `export`: a dataset's rows as NDJSON or CSV, through the library's `TableWriter` (whose
//! docs hold every rule); and what `import` shares with it (formats, key fields).

use std::cell::RefCell;
use std::io::Write;

use strata::{KeyFields, Range, TableFormat, TableKeys, TableWriter, View};

use crate::args::{AtOption, DatasetOption, require_dataset};
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{ProgressOptions, RepoPath};
use crate::output::{Output, brief, note, plural};

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

/// Where the rows' keys are, from `--key` (field names are trimmed: `-k 'a, b'` names
/// `a` and `b`).
pub fn table_keys(fields: &[String]) -> CliResult<TableKeys> {
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
/// --key), and a value that is not JSON is refused (export NDJSON). A CSV is written to a
/// temporary file first (its header depends on every row), in one pass when the first rows'
/// columns hold for every row, else in two.
///
/// A dataset with no rows is an error (exit code 1). A forked row exports its newest
/// version (`strata forks` lists every version); file rows are skipped with a note. Memory
/// stays bounded: rows are read a page at a time.
///
/// Example: `strata export --dataset sites --format csv --key id > sites.csv`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dataset: DatasetOption,

    #[command(flatten)]
    pub at: AtOption,

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

    #[command(flatten)]
    pub progress: ProgressOptions,

    #[command(flatten)]
    pub repo: RepoPath,
}

impl Run for ExportArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let dataset = self.dataset.name()?;
        let keys = table_keys(&self.key)?;
        let repo = self.repo.read(top)?;
        let view = self.at.view(&repo)?;
        require_dataset(&view, &dataset)?;
        let mut out = Output::new(false);
        let by_fields = matches!(keys, TableKeys::Fields(_));
        let writer = TableWriter::new(out.raw(), self.format.into(), keys, self.crlf);
        let bar = self.progress.items(None, "exporting");
        let result = write_rows(&view, &dataset, writer, &|| bar.inc(1));
        bar.finish_and_clear();
        let files = result.map_err(|error| match error {
            strata::Error::Table { place, reason } if by_fields => CliError::Input(format!(
                "{place}: {reason}; export without --key to carry every key in the `_key` column"
            )),
            other => other.into(),
        })?;
        out.finish()?;
        if !files.is_empty() {
            let mut shown: Vec<String> = files.iter().take(5).map(|k| brief(k)).collect();
            if files.len() > shown.len() {
                shown.push("…".to_string());
            }
            note(&format!(
                "skipped {} ({}): export {} with `strata files get`",
                plural(files.len() as u64, "file row"),
                shown.join(", "),
                if files.len() == 1 { "it" } else { "them" },
            ));
        }
        Ok(())
    }
}

/// Writes the dataset's table rows; returns the keys of the file rows it skipped.
fn write_rows(
    view: &View,
    dataset: &[u8],
    writer: TableWriter<&mut dyn Write>,
    written: &dyn Fn(),
) -> strata::Result<Vec<Vec<u8>>> {
    // A CSV may read the rows twice (see `write_all`); the view is fixed, so both passes
    // see the same rows, and the file rows are noted once.
    let files = RefCell::new(Vec::new());
    let mut passes = 0;
    let rows = || {
        passes += 1;
        let first = passes == 1;
        let files = &files;
        view.range(dataset, Range::all())
            .filter_map(move |row| match row {
                Ok(row) if row.file.is_some() => {
                    if first {
                        files.borrow_mut().push(row.key);
                    }
                    None
                }
                Ok(row) => Some(Ok((row.key, row.value))),
                Err(error) => Some(Err(error)),
            })
    };
    writer.write_all(rows, written)?;
    Ok(files.into_inner())
}
