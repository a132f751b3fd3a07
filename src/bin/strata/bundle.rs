//! `bundle create` and `bundle apply`: sync files, the USB-stick path between offline
//! sites. A bundle holds what a recipient may lack (everything, or what is newer than
//! versions it is known to have), checked whole before anything is stored.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::BinaryBytes;
use serde_json::{Value, json};
use strata::{Mode, Progress, SyncFile};

use crate::args::versions;
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, WriteRepo};
use crate::output::{Output, Render, plural};
use crate::remote::{PlainOption, write_sync_file};
use crate::sync::{PayloadOptions, summarize};

/// Write and apply sync files: what a device has, carried by hand to another. Files are
/// sealed with the project key (encrypted and authenticated: only devices of the project
/// can read or apply them) unless --plain.
#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    Create(CreateArgs),
    Apply(ApplyArgs),
}

impl Run for BundleCommand {
    fn run(self, top: &RepoPath) -> CliResult {
        match self {
            BundleCommand::Create(args) => args.run(top),
            BundleCommand::Apply(args) => args.run(top),
        }
    }
}

/// Write a sync file: every version this repository holds, or only what is newer than
/// the versions the recipient is known to have (--since).
///
/// The file is written whole or not at all. Apply it on the other device with `strata
/// bundle apply FILE` (or `strata sync FILE`, which also writes that device's work back
/// into it).
///
/// Example: `strata bundle create /media/usb/survey.sync`,
/// `strata bundle create week2.sync --since 3f2a9c01`
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The file to write (replaced if it exists).
    pub file: PathBuf,

    /// Leave out what the recipient holds: the history of these versions (repeatable).
    /// The recipient must hold them, or applying the file is refused.
    #[arg(long, value_name = "VERSION")]
    pub since: Vec<String>,

    #[command(flatten)]
    pub payload: PayloadOptions,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub plain: PlainOption,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// Apply a sync file: check all of it, then store what this repository lacks.
///
/// A truncated or altered file, or one sealed with another project's key, is refused
/// before anything is stored; applying a file twice stores nothing the second time. The summary is that of `strata pull`.
///
/// Example: `strata bundle apply /media/usb/survey.sync`
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The sync file.
    pub file: PathBuf,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub plain: PlainOption,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// What `bundle create` wrote.
struct Written {
    file: PathBuf,
    progress: Progress,
    bytes: u64,
    elapsed: Duration,
}

impl Render for Written {
    fn json(&self) -> Value {
        let p = &self.progress;
        json!({
            "file": self.file,
            "bytes": self.bytes,
            "nodes": p.nodes_sent,
            "payloads": p.payloads_sent,
            "payload_bytes": p.payload_bytes_sent,
            "files": p.files_sent,
            "file_bytes": p.file_bytes_sent,
            "seconds": self.elapsed.as_secs_f64(),
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let p = &self.progress;
        writeln!(
            out,
            "wrote {} ({}): {}, {} of rows, {} ({}) in {:.2} s",
            self.file.display(),
            BinaryBytes(self.bytes),
            plural(p.nodes_sent, "node"),
            BinaryBytes(p.payload_bytes_sent),
            plural(p.files_sent, "file"),
            BinaryBytes(p.file_bytes_sent),
            self.elapsed.as_secs_f64()
        )
    }
}

impl Run for CreateArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let security = self.plain.security(&self.repo.storage(top)?)?;
        let repo = self.repo.read(top)?;
        let since = versions(&repo, &self.since)?;
        let keys: Vec<&str> = since.iter().map(|v| v.as_str()).collect();
        let file = SyncFile::new()
            .since(repo.graph().log_heads_at(&keys)?)
            .payload(self.payload.payload()?);
        let started = Instant::now();
        let report = write_sync_file(&file, &security, &repo, &self.file)?;
        let mut out = Output::new(self.json);
        out.show(&Written {
            file: self.file,
            progress: report.progress,
            bytes: report.bytes,
            elapsed: started.elapsed(),
        })?;
        out.finish()
    }
}

impl Run for ApplyArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        if !self.file.is_file() {
            return Err(CliError::NotFound(format!(
                "no sync file at {}",
                self.file.display()
            )));
        }
        let security = self.plain.security(&self.repo.path.storage(top)?)?;
        let repo = self.repo.open(top)?;
        let target = self.file.display().to_string();
        let summary = summarize(&target, Mode::Pull, &repo, || {
            security.apply(&repo, &self.file)
        })?;
        let mut out = Output::new(self.json);
        out.show(&summary)?;
        out.finish()
    }
}
