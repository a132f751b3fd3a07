//! `diff`: the rows that differ between two versions.

use std::io::{self, Write};

use serde_json::{Value, json};
use strata::{DiffEntry, RowVersion, TextOrHex};

use crate::args::{Name, name_arg, require_dataset};
use crate::command::Run;
use crate::error::CliResult;
use crate::open::RepoPath;
use crate::output::{Output, Render, show_content, version_json};

/// The rows that differ between two versions, in (dataset, key) order.
///
/// Example: `strata diff HEAD~1 HEAD`, `strata diff 3f2a9c01 8b6e10d2 --dataset sites`
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old version (a prefix of 4+ characters, HEAD, HEAD~N, latest).
    pub a: String,
    /// The new version.
    pub b: String,

    /// Only rows of this dataset (its name as written).
    #[arg(long, short)]
    pub dataset: Option<String>,

    /// DATASET is given in hex, for a name that is not text.
    #[arg(long, requires = "dataset")]
    pub hex_dataset: bool,

    /// Print one JSON object per differing row (NDJSON).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

struct Change(DiffEntry);

impl Render for Change {
    fn json(&self) -> Value {
        let entry = &self.0;
        json!({
            "dataset": TextOrHex(&entry.dataset),
            "key": TextOrHex(&entry.key),
            "old": entry.old.as_ref().map(version_json),
            "new": entry.new.as_ref().map(version_json),
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let entry = &self.0;
        let live = |v: &Option<RowVersion>| v.as_ref().is_some_and(|v| !v.deleted);
        let mark = match (live(&entry.old), live(&entry.new)) {
            (false, true) => 'A',
            (true, false) => 'D',
            _ => 'M',
        };
        writeln!(
            out,
            "{mark} {} {}",
            TextOrHex(&entry.dataset),
            TextOrHex(&entry.key)
        )?;
        for (sign, side) in [('-', &entry.old), ('+', &entry.new)] {
            if let Some(v) = side {
                let content = show_content(&v.value, v.file.as_ref(), v.deleted);
                writeln!(out, "  {sign} {content}  ({})", v.version)?;
            }
        }
        Ok(())
    }
}

impl Run for DiffArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let (a, b) = (repo.resolve(&self.a)?, repo.resolve(&self.b)?);
        let mut diff = repo.diff(&a, &b)?;
        if let Some(dataset) = &self.dataset {
            let name = name_arg(dataset, self.hex_dataset, Name::Dataset)?;
            // A dataset on neither side is a typo, not "no differences".
            if require_dataset(&repo.at(&a)?, &name).is_err() {
                require_dataset(&repo.at(&b)?, &name)?;
            }
            diff = diff.dataset(name);
        }
        let mut out = Output::new(self.json);
        for entry in diff {
            out.show(&Change(entry?))?;
        }
        out.finish()
    }
}
