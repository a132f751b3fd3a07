//! Version commands: `log`, `heads`, `show`, `checkout`.

use std::io::{self, Write};

use serde_json::{Value, json};
use strata::{Content, OpKind, Operation, TextOrHex};

use crate::command::Run;
use crate::commits::{Described, Marks};
use crate::error::{CliError, CliResult};
use crate::lanes::Lanes;
use crate::open::{RepoPath, WriteRepo};
use crate::output::{Output, Record, Render, file_json, note, show_content, value_json};

/// Commits, newest first, with forks and merges drawn as a graph.
///
/// Example: `strata log`, `strata log --oneline -n 20`, `strata log --json`
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Show at most this many commits.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,

    /// One line per commit: the graph, the version (12 characters), time, marks and message.
    #[arg(long)]
    pub oneline: bool,

    /// Print one JSON object per commit (NDJSON), without the graph drawing.
    #[arg(long, conflicts_with = "oneline")]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// The current heads (more than one means the repository has forks).
///
/// Example: `strata heads`
#[derive(Debug, clap::Args)]
pub struct HeadsArgs {
    /// Print one JSON object per head (NDJSON).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// One commit and its changes: the operations it wrote.
///
/// Example: `strata show HEAD`, `strata show 3f2a9c01 --json`
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The version (a prefix of 4+ characters, HEAD, HEAD~N, latest). Default: HEAD.
    #[arg(default_value = "HEAD")]
    pub version: String,

    /// Print the commit with its operations as one JSON document.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// Make a version the repository's current view, persistently (later commands read there;
/// a write there forks), or go back to the latest.
///
/// Example: `strata checkout HEAD~2`, `strata checkout --latest`
#[derive(Debug, clap::Args)]
pub struct CheckoutArgs {
    /// The version (a prefix of 4+ characters, HEAD~N, latest).
    #[arg(
        id = "target",
        value_name = "VERSION",
        required_unless_present = "latest"
    )]
    pub version: Option<String>,

    /// Return to the latest (every head, forks visible).
    #[arg(long, conflicts_with = "target")]
    pub latest: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// A commit in `log`: its description, drawn beside the lanes in text.
struct LogLine<'a> {
    entry: Described,
    lanes: &'a mut Lanes,
    oneline: bool,
}

impl Run for LogArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let marks = Marks::of(&repo)?;
        let mut lanes = Lanes::default();
        let mut out = Output::new(self.json);
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut change = repo.graph().change_count();
        let mut shown = 0;
        while change > 0 && shown < limit {
            let node = repo.graph().get_change(change)?;
            change -= 1;
            shown += 1;
            let entry = marks.describe(repo.commit_info(node)?);
            if out.is_json() {
                out.show(&entry)?;
            } else {
                let mut line = LogLine {
                    entry,
                    lanes: &mut lanes,
                    oneline: self.oneline,
                };
                line.draw(out.raw())?;
            }
        }
        out.finish()
    }
}

impl LogLine<'_> {
    fn draw(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let text = match self.oneline {
            true => vec![self.entry.oneline(true)],
            false => {
                let mut lines = self.entry.lines();
                lines.push(String::new());
                lines
            }
        };
        let info = &self.entry.info;
        self.lanes
            .draw(out, info.version.as_str(), &info.links, text)
    }
}

impl Render for Described {
    fn json(&self) -> Value {
        Described::json(self)
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.oneline(false))
    }
}

impl Run for HeadsArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let marks = Marks::of(&repo)?;
        let mut out = Output::new(self.json);
        for head in repo.heads()? {
            out.show(&marks.version(&repo, &head)?)?;
        }
        out.finish()
    }
}

/// A commit with its operations, for `show`.
struct Shown {
    entry: Described,
    operations: Vec<Operation>,
}

/// The file a put of a file row stores.
fn op_file(op: &Operation) -> Option<strata::FileRef> {
    match op.content {
        Content::File => op
            .value
            .as_deref()
            .and_then(|v| strata::FileRef::decode(v).ok()),
        Content::Row => None,
    }
}

/// One operation as `show` prints it.
fn operation_json(op: &Operation) -> Value {
    let file = op_file(op);
    let value = match (&op.kind, &file, &op.value) {
        (OpKind::Put, None, Some(value)) => value_json(value),
        _ => Value::Null,
    };
    json!({
        "op": match op.kind { OpKind::Put => "put", OpKind::Delete => "del" },
        "dataset": TextOrHex(&op.dataset),
        "key": TextOrHex(&op.key),
        "value": value,
        "file": file_json(file.as_ref()),
    })
}

impl Render for Shown {
    fn json(&self) -> Value {
        let mut document = self.entry.json();
        if let Some(object) = document.as_object_mut() {
            let operations = self.operations.iter().map(operation_json).collect();
            object.insert("operations".into(), Value::Array(operations));
        }
        document
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.entry.lines() {
            writeln!(out, "{line}")?;
        }
        if !self.operations.is_empty() {
            writeln!(out)?;
        }
        for op in &self.operations {
            let file = op_file(op);
            let (word, content) = match op.kind {
                OpKind::Put => (
                    "put",
                    show_content(op.value.as_deref().unwrap_or(&[]), file.as_ref(), false),
                ),
                OpKind::Delete => ("del", String::new()),
            };
            let line = format!(
                "{word} {} {} {content}",
                TextOrHex(&op.dataset),
                TextOrHex(&op.key)
            );
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

impl Run for ShowArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.read(top)?;
        let version = repo.resolve(&self.version)?;
        let entry = Marks::of(&repo)?.version(&repo, &version)?;
        let operations = repo.operations(&version)?;
        let mut out = Output::new(self.json);
        out.show(&Shown { entry, operations })?;
        out.finish()
    }
}

impl Run for CheckoutArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let repo = self.repo.open(top)?;
        let checkout = match (&self.version, self.latest) {
            (Some(version), false) => {
                let version = repo.resolve(version)?;
                repo.checkout(&version)?;
                Some(version)
            }
            (None, true) => {
                repo.checkout_latest()?;
                None
            }
            _ => return Err(CliError::Input("give either a VERSION or --latest".into())),
        };
        let heads = repo.heads()?;
        let mut out = Output::new(self.json);
        out.show(&Record {
            json: json!({ "checkout": checkout, "heads": heads }),
            text: checkout.as_ref().map_or("latest".into(), |v| v.to_string()),
        })?;
        out.finish()?;
        match &checkout {
            Some(version) if !heads.contains(version) => note(&format!(
                "{version} is not a head; a write here starts a fork (`strata checkout --latest` goes back)"
            )),
            None if heads.len() > 1 => note(&format!(
                "{} heads (forked); reads show every head",
                heads.len()
            )),
            _ => {}
        }
        Ok(())
    }
}
