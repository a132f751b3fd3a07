//! `merge`: a merge commit linking heads, its conflicts settled by a policy or a resolution
//! file; `--dry-run` says what it would write, or every row that conflicts.

use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use strata::{Commit, ConflictRow, DryRun, MergePolicy, TextOrHex, Version};

use crate::args::versions;
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, WriteRepo};
use crate::output::{Output, Render, note, plural};
use crate::resolve::Resolutions;

/// How many conflicting rows the text output lists (`--json` lists them all).
const ROWS_SHOWN: usize = 10;

/// Merge heads (all current heads by default) into one commit.
///
/// Rows changed differently on several sides are conflicts: settle them with a policy or a
/// resolution file, else the merge fails and nothing is written. --dry-run writes nothing
/// and says what the merge would do: its parents, how many rows it writes, and every
/// conflict it cannot settle (exit code 0 either way: the report is the answer).
///
/// Example: `strata merge --newest`, `strata merge --dry-run --json`,
/// `strata merge 3f2a9c01 8b6e10d2 --resolve fixes.ndjson`
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The heads to merge (the first is "ours"). Default: every current head, this
    /// device's newest first.
    pub heads: Vec<String>,

    /// Settle conflicts with the first head's value.
    #[arg(long, group = "policy")]
    pub ours: bool,

    /// Settle conflicts with the other head's value.
    #[arg(long, group = "policy")]
    pub theirs: bool,

    /// Settle conflicts with the newest value (by commit time, ties by version id).
    #[arg(long, group = "policy")]
    pub newest: bool,

    /// Resolutions: NDJSON lines `{"dataset": D, "key": K, "value": V}`,
    /// `{"dataset": D, "key": K, "raw": "text"}` or `{"dataset": D, "key": K, "deleted": true}`.
    #[arg(long, value_name = "FILE")]
    pub resolve: Option<PathBuf>,

    /// The commit message.
    #[arg(long, short)]
    pub message: Option<String>,

    /// Write nothing: show the parents, the rows the merge would write, and every conflict.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON (with every conflicting row).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// What a merge did, or would do.
struct Outcome {
    version: Option<Version>,
    parents: Vec<String>,
    operations: u64,
    conflicts: Vec<ConflictRow>,
}

impl Outcome {
    fn of(dry_run: DryRun) -> Outcome {
        Outcome {
            version: None,
            parents: dry_run.parents.into_iter().map(String::from).collect(),
            operations: dry_run.operations,
            conflicts: dry_run.conflicts,
        }
    }

    /// The refusal: how many rows conflict and the first few, and how to settle them.
    fn refusal(&self) -> CliError {
        let conflict = strata::Error::Conflict {
            rows: self.conflicts.clone(),
        };
        CliError::Input(format!(
            "{conflict}; nothing was written. Settle them with --ours, --theirs or --newest, or list them in a --resolve FILE (`strata merge --dry-run --json` lists every row)"
        ))
    }
}

/// A conflicting (forked) row as JSON.
#[derive(Serialize)]
pub struct ConflictJson<'a> {
    dataset: TextOrHex<&'a [u8]>,
    key: TextOrHex<&'a [u8]>,
    versions: &'a [String],
}

impl ConflictJson<'_> {
    pub fn of(row: &ConflictRow) -> ConflictJson<'_> {
        ConflictJson {
            dataset: TextOrHex(&row.dataset),
            key: TextOrHex(&row.key),
            versions: &row.versions,
        }
    }
}

/// Conflicting rows as a JSON array, written a row at a time (a merge may list millions).
struct ConflictsJson<'a>(&'a [ConflictRow]);

impl Serialize for ConflictsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ConflictJson::of))
    }
}

/// An outcome as JSON.
#[derive(Serialize)]
struct OutcomeJson<'a> {
    version: Option<&'a Version>,
    parents: &'a [String],
    operations: u64,
    conflicts: ConflictsJson<'a>,
}

impl Outcome {
    fn document(&self) -> OutcomeJson<'_> {
        OutcomeJson {
            version: self.version.as_ref(),
            parents: &self.parents,
            operations: self.operations,
            conflicts: ConflictsJson(&self.conflicts),
        }
    }
}

impl Render for Outcome {
    fn json(&self) -> Value {
        json!(self.document())
    }

    fn write_json(&self, out: &mut dyn Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self.document())
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(version) = &self.version {
            return writeln!(out, "{version}");
        }
        let short: Vec<&str> = self
            .parents
            .iter()
            .map(|p| p.get(..12).unwrap_or(p))
            .collect();
        writeln!(out, "merge of {} heads: {}", short.len(), short.join(", "))?;
        writeln!(out, "would write {}", plural(self.operations, "row"))?;
        if self.conflicts.is_empty() {
            return writeln!(out, "no conflicts");
        }
        writeln!(
            out,
            "{} that no policy or resolution settles:",
            plural(self.conflicts.len() as u64, "conflicting row")
        )?;
        for row in self.conflicts.iter().take(ROWS_SHOWN) {
            let versions: Vec<&str> = row
                .versions
                .iter()
                .map(|v| v.get(..12).unwrap_or(v))
                .collect();
            writeln!(
                out,
                "  {} {}  ({})",
                TextOrHex(&row.dataset),
                TextOrHex(&row.key),
                versions.join(", ")
            )?;
        }
        if self.conflicts.len() > ROWS_SHOWN {
            writeln!(
                out,
                "  … and {} more (--json lists every row)",
                self.conflicts.len() - ROWS_SHOWN
            )?;
        }
        Ok(())
    }
}

impl MergeArgs {
    fn policy(&self) -> Option<MergePolicy> {
        [
            (self.ours, MergePolicy::Ours),
            (self.theirs, MergePolicy::Theirs),
            (self.newest, MergePolicy::Newest),
        ]
        .into_iter()
        .find_map(|(on, policy)| on.then_some(policy))
    }
}

impl Run for MergeArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let resolutions = match &self.resolve {
            Some(path) => Some(Resolutions::read(path)?),
            None => None,
        };
        let repo = match self.dry_run {
            true => self.repo.path.read(top)?,
            false => self.repo.open(top)?,
        };
        let heads = versions(&repo, &self.heads)?;
        let mut tx = repo.merge(&heads);
        if let Some(resolutions) = &resolutions {
            resolutions.apply(&mut tx);
        }
        if let Some(policy) = self.policy() {
            tx.policy(policy);
        }
        if let Some(message) = &self.message {
            tx.message(message.clone());
        }
        let mut out = Output::new(self.json);
        if self.dry_run {
            let outcome = Outcome::of(tx.dry_run()?);
            out.show(&outcome)?;
            out.finish()?;
            if !outcome.conflicts.is_empty() {
                note(&format!(
                    "the merge would fail on {}: settle them with --ours, --theirs or --newest, or list them in a --resolve FILE",
                    plural(outcome.conflicts.len() as u64, "conflicting row")
                ));
            }
            return Ok(());
        }
        // Committed directly: a merge of millions of rows is written in pages, in bounded
        // memory, and needs no dry run first.
        let parents: Vec<String> = tx.parents()?.into_iter().map(String::from).collect();
        let resolutions = tx.len() as u64;
        let version = match tx.commit() {
            Ok(version) => version,
            Err(strata::Error::Conflict { rows }) => {
                // Nothing was written: with --json, every conflicting row goes to stdout.
                let outcome = Outcome {
                    version: None,
                    parents,
                    operations: resolutions,
                    conflicts: rows,
                };
                if out.is_json() {
                    out.show(&outcome)?;
                }
                out.finish()?;
                return Err(outcome.refusal());
            }
            Err(other) => return Err(other.into()),
        };
        let node = repo.graph().get(version.as_str())?;
        let operations = Commit::decode(&node.value)?.operation_count();
        out.show(&Outcome {
            version: Some(version),
            parents: node.links,
            operations,
            conflicts: Vec::new(),
        })?;
        out.finish()
    }
}
