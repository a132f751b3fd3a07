//! `init` and `status`: creating a repository and describing it.

use std::io::{self, Write};
use std::path::PathBuf;

use indicatif::BinaryBytes;
use serde_json::{Value, json};
use strata::{RepoStatus, Version};

use crate::args::AtOption;
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, write_options};
use crate::output::{Output, Record, show_time, time_iso};

/// Create a repository (its storage goes in `<folder>/.strata`).
///
/// Example: `strata init` (in the current folder), `strata init ~/surveys`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to create the repository in (created if needed). Default: --repo, else
    /// the current folder.
    pub folder: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

/// Describe the repository: rows, files, versions, heads, forks, size, current checkout.
///
/// Example: `strata status`, `strata status --at HEAD~1 --json`
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: AtOption,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

impl Run for InitArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let folder = match self.folder.clone().or_else(|| self.repo.given(top)) {
            Some(folder) => folder,
            None => std::env::current_dir().map_err(CliError::io("finding the current folder"))?,
        };
        if let Some(storage) = strata::Repository::storage_of(&folder) {
            return Err(CliError::Input(format!(
                "a repository already exists at {}",
                storage.display()
            )));
        }
        // The device key and project key first: the repository's first open signs with
        // them and names its log after the device key.
        // (Not beside a file of that name: `init` says what is wrong with it.)
        if !folder.is_file() {
            strata::Identity::create(folder.join(strata::STORAGE_DIR))?;
        }
        let repo = write_options().init(&folder)?;
        let log_id = repo.graph().log_id();
        drop(repo);
        let folder = folder
            .canonicalize()
            .map_err(CliError::io(format!("resolving {}", folder.display())))?;
        let storage = folder.join(strata::STORAGE_DIR);
        let mut out = Output::new(self.json);
        out.show(&Record {
            json: json!({ "path": storage.display().to_string(), "log_id": log_id }),
            text: format!(
                "Initialized empty strata repository in {}",
                storage.display()
            ),
        })?;
        out.finish()
    }
}

/// What `status` prints.
struct Status {
    storage: PathBuf,
    log_id: String,
    checkout: Option<Version>,
    at: Option<Version>,
    nodes: u64,
    status: RepoStatus,
}

impl crate::output::Render for Status {
    fn json(&self) -> Value {
        let status = &self.status;
        json!({
            "path": self.storage.display().to_string(),
            "log_id": self.log_id,
            "checkout": self.checkout,
            "at": self.at,
            "rows": status.rows,
            "files": status.files,
            "versions": status.versions,
            "nodes": self.nodes,
            "heads": status.heads,
            "forked": status.heads > 1,
            "size": status.size,
            "modified": status.modified,
            "modified_iso": time_iso(status.modified),
            "pending": status.pending,
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let status = &self.status;
        let viewing = match (&self.at, &self.checkout) {
            (Some(at), _) => format!("version {at} (--at)"),
            (None, Some(checkout)) => format!("version {checkout} (checked out)"),
            (None, None) => "latest".to_string(),
        };
        let heads = match status.heads {
            0 => "0 (empty repository)".to_string(),
            1 => "1".to_string(),
            n => format!(
                "{n} (forked: concurrent versions exist; see `strata heads`, settle with `strata merge`)"
            ),
        };
        let modified = match status.modified {
            0 => "never".to_string(),
            ms => show_time(ms),
        };
        writeln!(out, "repository  {}", self.storage.display())?;
        writeln!(out, "device      {}", self.log_id)?;
        writeln!(out, "viewing     {viewing}")?;
        writeln!(out, "rows        {}", status.rows)?;
        writeln!(out, "files       {}", status.files)?;
        writeln!(out, "versions    {}", status.versions)?;
        writeln!(out, "heads       {heads}")?;
        writeln!(
            out,
            "size        {} ({} B)",
            BinaryBytes(status.size),
            status.size
        )?;
        writeln!(out, "modified    {modified}")?;
        writeln!(out, "pending     {}", status.pending)
    }
}

impl Run for StatusArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.storage(top)?;
        let repo = self.repo.read(top)?;
        let at = self.at.at.as_deref().map(|v| repo.resolve(v)).transpose()?;
        let status = match &at {
            Some(version) => repo.at(version)?.status(),
            None => repo.status()?,
        };
        let mut out = Output::new(self.json);
        out.show(&Status {
            storage: storage.canonicalize().unwrap_or(storage),
            log_id: repo.graph().log_id().to_string(),
            checkout: repo.checked_out()?,
            at,
            nodes: repo.graph().change_count(),
            status,
        })?;
        out.finish()
    }
}
