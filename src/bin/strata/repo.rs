//! `init` and `status`: creating a repository and describing it.

use std::path::PathBuf;

use std::io::Write;

use serde_json::json;
use strata::Repository;

use crate::context::{CliError, CliResult, Global, cli_options, show_time, stdout, write_json};
use crate::rows::time_iso;

/// Create a repository (its storage goes in `<folder>/.strata`).
///
/// Example: `strata init` (in the current folder), `strata init ~/surveys`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to create the repository in. Default: the current folder.
    pub folder: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Describe the repository: rows, files, versions, heads, forks, size, current checkout.
///
/// Example: `strata status`, `strata status --at 3f2a9c01 --json`
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Describe this version instead of the current view.
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn init(global: &Global, args: InitArgs) -> CliResult {
    let folder = match args.folder.or_else(|| global.repo.clone()) {
        Some(folder) => folder,
        None => std::env::current_dir().map_err(CliError::io("finding the current folder"))?,
    };
    if let Some(storage) = Repository::storage_of(&folder) {
        return Err(CliError::Input(format!(
            "a repository already exists at {}",
            storage.display()
        )));
    }
    std::fs::create_dir_all(&folder)
        .map_err(CliError::io(format!("creating {}", folder.display())))?;
    let folder = folder
        .canonicalize()
        .map_err(CliError::io(format!("resolving {}", folder.display())))?;
    let repo = Repository::init(&folder)?;
    let log_id = repo.graph().log_id();
    drop(repo);
    let storage = folder.join(strata::STORAGE_DIR);
    let mut out = stdout();
    if args.json {
        write_json(
            &mut out,
            &json!({ "path": storage.display().to_string(), "log_id": log_id }),
        )?;
    } else {
        writeln!(
            out,
            "Initialized empty strata repository in {}",
            storage.display()
        )?;
    }
    out.flush()?;
    Ok(())
}

pub fn status(global: &Global, args: StatusArgs) -> CliResult {
    let storage = global.storage()?;
    let repo = cli_options().open_storage(&storage)?;
    let checkout = repo.checked_out()?;
    let at = args.at.as_deref().map(|v| repo.resolve(v)).transpose()?;
    let status = match &at {
        Some(version) => repo.at(version)?.status(),
        None => repo.status()?,
    };
    let log_id = repo.graph().log_id();
    let nodes = repo.graph().change_count();
    let storage = storage.canonicalize().unwrap_or(storage);
    let forked = status.heads > 1;
    let mut out = stdout();
    if args.json {
        write_json(
            &mut out,
            &json!({
                "path": storage.display().to_string(),
                "log_id": log_id,
                "checkout": checkout,
                "at": at,
                "rows": status.rows,
                "files": status.files,
                "versions": status.versions,
                "nodes": nodes,
                "heads": status.heads,
                "forked": forked,
                "size": status.size,
                "modified": status.modified,
                "modified_iso": time_iso(status.modified),
                "pending": status.pending,
            }),
        )?;
    } else {
        let viewing = match (&at, &checkout) {
            (Some(at), _) => format!("version {at} (--at)"),
            (None, Some(checkout)) => format!("version {checkout} (checked out)"),
            (None, None) => "latest".to_string(),
        };
        let heads = match (status.heads, forked) {
            (0, _) => "0 (empty repository)".to_string(),
            (n, true) => format!(
                "{n} (forked: concurrent versions exist; see `strata heads`, settle with `strata merge`)"
            ),
            (n, false) => n.to_string(),
        };
        let modified = match status.modified {
            0 => "never".to_string(),
            ms => show_time(ms),
        };
        writeln!(out, "repository  {}", storage.display())?;
        writeln!(out, "device      {log_id}")?;
        writeln!(out, "viewing     {viewing}")?;
        writeln!(out, "rows        {}", status.rows)?;
        writeln!(out, "files       {}", status.files)?;
        writeln!(out, "versions    {}", status.versions)?;
        writeln!(out, "heads       {heads}")?;
        writeln!(out, "size        {}", show_size(status.size))?;
        writeln!(out, "modified    {modified}")?;
        writeln!(out, "pending     {}", status.pending)?;
    }
    out.flush()?;
    Ok(())
}

/// A byte count for humans: `512 B`, `12.3 KiB (12595 B)`.
fn show_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {} ({bytes} B)", UNITS[unit])
}
