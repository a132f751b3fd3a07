//! Listing: `ls` (alias `rows`), a dataset's rows in key order; `datasets`.

use std::io::{self, Write};

use serde_json::{Value, json};
use strata::{Range, Row, TextOrHex};

use crate::args::{AtOption, Name, name_arg, require_dataset};
use crate::command::Run;
use crate::error::CliResult;
use crate::open::RepoPath;
use crate::output::{Output, Render, show_content};
use crate::rows::row_json;

/// List a dataset's rows in key order: key and value, tab-separated.
///
/// A dataset with no rows is an error (exit code 1); a prefix that matches no row is not.
/// A forked row lists its newest version (`strata forks` lists every one).
///
/// Example: `strata ls sites`, `strata ls sites --prefix s-1 --limit 20 --json`
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// The dataset: its name exactly as written (with --hex-dataset, in hex).
    pub dataset: String,

    /// DATASET is given in hex, for a name that is not text.
    #[arg(long)]
    pub hex_dataset: bool,

    /// Only rows whose key starts with PREFIX (as written; with --hex, in hex).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// PREFIX is given in hex.
    #[arg(long, requires = "prefix")]
    pub hex: bool,

    /// At most N rows.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,

    /// Print keys only.
    #[arg(long, conflicts_with = "json")]
    pub keys: bool,

    #[command(flatten)]
    pub at: AtOption,

    /// Print one JSON object per row (NDJSON), as `get --json` prints a row.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// List the datasets that have live rows.
///
/// Example: `strata datasets`, `strata datasets --at HEAD~1`
#[derive(Debug, clap::Args)]
pub struct DatasetsArgs {
    #[command(flatten)]
    pub at: AtOption,

    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// A row in `ls`.
struct Listed {
    row: Row,
    keys_only: bool,
}

impl Render for Listed {
    fn json(&self) -> Value {
        row_json(&self.row)
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let row = &self.row;
        match self.keys_only {
            true => writeln!(out, "{}", TextOrHex(&row.key)),
            false => writeln!(
                out,
                "{}\t{}",
                TextOrHex(&row.key),
                show_content(&row.value, row.file.as_ref(), false)
            ),
        }
    }
}

impl Run for LsArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let dataset = name_arg(&self.dataset, self.hex_dataset, Name::Dataset)?;
        let mut range = match &self.prefix {
            Some(prefix) => Range::prefix(name_arg(prefix, self.hex, Name::Prefix)?),
            None => Range::all(),
        };
        if let Some(limit) = self.limit {
            range = range.limit(limit);
        }
        if self.keys {
            range = range.keys_only();
        }
        let repo = self.repo.read(top)?;
        let view = self.at.view(&repo)?;
        require_dataset(&view, &dataset)?;
        let mut out = Output::new(self.json);
        for row in view.range(&dataset, range) {
            out.show(&Listed {
                row: row?,
                keys_only: self.keys,
            })?;
        }
        out.finish()
    }
}

/// The dataset names, one per line, or a JSON array.
struct Names(Vec<Vec<u8>>);

impl Render for Names {
    fn json(&self) -> Value {
        json!(self.0.iter().map(|n| TextOrHex(&n[..])).collect::<Vec<_>>())
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for name in &self.0 {
            writeln!(out, "{}", TextOrHex(name))?;
        }
        Ok(())
    }
}

impl Run for DatasetsArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let names = self.at.view(&repo)?.datasets()?;
        let mut out = Output::new(self.json);
        out.show(&Names(names))?;
        out.finish()
    }
}
