//! Finding and opening the repository a command works on, and the options for it.
//!
//! Reading commands open it read-only: no lock is taken, so they never wait for or fail
//! because of a process writing it; they read it as it was when they started. Writing
//! commands take the repository's lock, waiting for another writer to finish (up to
//! `--wait SECS`), and say once on stderr who they wait for. Every write the command line
//! acknowledges has been synced to disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata::{OpenOptions, Repository};

use crate::error::{CliError, CliResult};
use crate::output::note;

/// The environment variable that names the repository when `--repo` is not given.
pub const REPO_ENV: &str = "STRATA_REPO";

/// How long a writing command waits for another writer by default.
pub const DEFAULT_WAIT_SECS: u64 = 60;

/// `--repo PATH`, before the command or among its options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RepoPath {
    /// The repository: a folder containing `.strata`, or a `.strata` folder. Default: the
    /// environment variable STRATA_REPO, else the current folder or the nearest parent
    /// that has one.
    #[arg(long, value_name = "PATH", help_heading = "Repository")]
    pub repo: Option<PathBuf>,
}

impl RepoPath {
    /// The path given here, else before the command, else in `STRATA_REPO`.
    pub fn given(&self, top: &RepoPath) -> Option<PathBuf> {
        self.repo
            .clone()
            .or_else(|| top.repo.clone())
            .or_else(|| std::env::var_os(REPO_ENV).map(PathBuf::from))
            .filter(|path| !path.as_os_str().is_empty())
    }

    /// The storage folder of the repository this command works on.
    pub fn storage(&self, top: &RepoPath) -> CliResult<PathBuf> {
        match self.given(top) {
            Some(path) => Repository::storage_of(&path).ok_or_else(|| {
                CliError::NotFound(format!("no strata repository at {}", path.display()))
            }),
            None => {
                let here =
                    std::env::current_dir().map_err(CliError::io("finding the current folder"))?;
                Repository::discover(&here).ok_or_else(|| {
                    CliError::NotFound(format!(
                        "not in a strata repository (no .strata in {} or any parent); run `strata init` or pass --repo",
                        here.display()
                    ))
                })
            }
        }
    }

    /// Opens the repository for reading, beside any writer.
    pub fn read(&self, top: &RepoPath) -> CliResult<Repository> {
        let storage = self.storage(top)?;
        Ok(Repository::options()
            .read_only(true)
            .open_storage(&storage)?)
    }
}

/// The options of a command that writes: where, and how long to wait for another writer.
#[derive(Debug, Clone, clap::Args)]
pub struct WriteRepo {
    #[command(flatten)]
    pub path: RepoPath,

    /// Wait up to SECS seconds for another process writing the repository to finish
    /// (0: fail at once).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WAIT_SECS, help_heading = "Repository")]
    pub wait: u64,
}

/// The CLI writes durably: every acknowledged command survives a power loss.
pub fn write_options() -> OpenOptions {
    Repository::options().durability(strata::Durability::Synced)
}

impl WriteRepo {
    /// Opens the repository for writing, waiting for another writer if one holds it.
    pub fn open(&self, top: &RepoPath) -> CliResult<Repository> {
        let storage = self.path.storage(top)?;
        open_for_writing(&storage, Duration::from_secs(self.wait))
    }
}

/// Opens `storage` for writing; if another process holds it, says so once and waits up to
/// `wait` for it.
pub fn open_for_writing(storage: &Path, wait: Duration) -> CliResult<Repository> {
    let started = Instant::now();
    match write_options().open_storage(storage) {
        Err(strata::Error::Locked { holder, .. }) if !wait.is_zero() => {
            note(&format!(
                "waiting up to {} for {} to finish writing the repository (--wait SECS)",
                indicatif::HumanDuration(wait),
                holder.as_deref().unwrap_or("another process")
            ));
            let left = wait.saturating_sub(started.elapsed());
            write_options()
                .wait(left)
                .open_storage(storage)
                .map_err(|error| locked(error, wait))
        }
        other => other.map_err(|error| locked(error, wait)),
    }
}

/// A lock error says how long it waited and how to wait longer.
fn locked(error: strata::Error, wait: Duration) -> CliError {
    match error {
        locked @ strata::Error::Locked { .. } => CliError::Input(match wait.is_zero() {
            true => format!("{locked} (--wait SECS waits for it)"),
            false => format!(
                "{locked} (waited {}; --wait SECS waits longer)",
                indicatif::HumanDuration(wait)
            ),
        }),
        other => other.into(),
    }
}

/// `--quiet` / `--progress`, for the commands that show progress.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ProgressOptions {
    /// Show no progress bar, even on a terminal.
    #[arg(long, short, help_heading = "Progress")]
    pub quiet: bool,

    /// Show progress even when stderr is not a terminal (as plain lines, once a second).
    #[arg(long, conflicts_with = "quiet", help_heading = "Progress")]
    pub progress: bool,
}
