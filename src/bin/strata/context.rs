//! What every command shares: finding and opening the repository, writing data to stdout
//! (text, JSON or NDJSON), progress on stderr, and the error type with its exit code.
//!
//! Conventions (docs/cli.md): data goes to stdout, progress and logs to stderr; version ids
//! print in full hex; dataset names and row keys print as text when they are UTF-8 and as
//! `0x<hex>` otherwise (and such arguments are accepted back in that form); `--json` prints
//! one JSON document, or one JSON object per line for streams.

use std::fmt;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata::Repository;

/// Why a command failed. `Display` is one line, printed after `strata: `.
#[derive(Debug)]
pub enum CliError {
    /// The library refused or failed.
    Strata(strata::Error),
    /// An operating-system error outside the library, with what was being done.
    Io { context: String, source: io::Error },
    /// Writing to stdout failed.
    Output(io::Error),
    /// Input the command cannot use (a malformed file line, a bad argument value).
    Input(String),
    /// The thing asked for does not exist (a missing row, file or version).
    NotFound(String),
    /// A check failed (fsck found problems; a demo check did not hold).
    Check(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Strata(error) => write!(f, "{error}"),
            CliError::Io { context, source } => write!(f, "{context}: {source}"),
            CliError::Output(source) => write!(f, "writing output: {source}"),
            CliError::Input(message) | CliError::NotFound(message) => write!(f, "{message}"),
            CliError::Check(message) => write!(f, "check failed: {message}"),
        }
    }
}

impl From<strata::Error> for CliError {
    fn from(error: strata::Error) -> Self {
        CliError::Strata(error)
    }
}

/// Failing to write to stdout.
impl From<io::Error> for CliError {
    fn from(source: io::Error) -> Self {
        CliError::Output(source)
    }
}

impl CliError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The repository: a folder containing `.strata`, or a `.strata` folder. Default: the
    /// current folder or the nearest parent that has one.
    #[arg(long, global = true, value_name = "PATH", env = "STRATA_REPO")]
    pub repo: Option<PathBuf>,

    /// Show no progress bars, even on a terminal.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Show progress even when stderr is not a terminal (as plain lines, once a second).
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub progress: bool,
}

impl Global {
    /// The storage folder of the repository this command works on.
    pub fn storage(&self) -> CliResult<PathBuf> {
        match &self.repo {
            Some(path) => Repository::storage_of(path).ok_or_else(|| {
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

    /// Opens the repository this command works on.
    pub fn open(&self) -> CliResult<Repository> {
        let storage = self.storage()?;
        Ok(cli_options().open_storage(&storage)?)
    }

    /// A progress bar on stderr for `total` items (`None`: unknown), shown only on a
    /// terminal (or with `--progress`), never with `--quiet`.
    pub fn progress(&self, total: Option<u64>, what: &str) -> ProgressBar {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {human_pos} {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(what.to_string());
        if self.quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else if io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
        } else if self.progress {
            // Asked for on a pipe or in a log: one plain line per second, no escape codes.
            bar.set_draw_target(ProgressDrawTarget::term_like_with_hz(Box::new(LogLines), 1));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar
    }
}

/// Progress for a log: every redraw becomes a new line on stderr; cursor moves are ignored.
#[derive(Debug)]
struct LogLines;

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        writeln!(io::stderr().lock(), "{line}")
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        if text.trim().is_empty() {
            return Ok(());
        }
        writeln!(io::stderr().lock(), "{text}")
    }

    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The CLI writes durably: every acknowledged command survives a power loss.
pub fn cli_options() -> strata::OpenOptions {
    strata::Repository::options().durability(strata::Durability::Synced)
}

/// Buffered stdout, locked once.
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::new(io::stdout().lock())
}

/// Writes one JSON document (or one NDJSON line) followed by a newline.
pub fn write_json(out: &mut impl Write, value: &serde_json::Value) -> CliResult {
    serde_json::to_writer(&mut *out, value).map_err(|e| CliError::Output(e.into()))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Bytes as a user sees them: UTF-8 text as is, anything else as `0x<hex>`. Text that
/// itself starts with `0x` is shown in hex too, so the form always reads back the same.
pub fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.starts_with("0x") => text.to_string(),
        _ => format!("0x{}", hex::encode(bytes)),
    }
}

/// Reads a dataset name or row key given on the command line: `0x<hex>` is hex-decoded,
/// anything else is taken as its UTF-8 bytes.
pub fn parse_bytes(arg: &str) -> CliResult<Vec<u8>> {
    match arg.strip_prefix("0x") {
        Some(digits) => hex::decode(digits).map_err(|_| {
            CliError::Input(format!(
                "{arg:?} starts with 0x but is not hex (write the bytes as 0x<hex>)"
            ))
        }),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// A row value for JSON output: the parsed JSON when the value is JSON, else a string
/// (UTF-8) or `{"hex": ...}`.
pub fn value_json(value: &[u8]) -> serde_json::Value {
    if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(value) {
        return parsed;
    }
    match std::str::from_utf8(value) {
        Ok(text) => serde_json::Value::String(text.to_string()),
        Err(_) => serde_json::json!({ "hex": hex::encode(value) }),
    }
}

/// A time in ms since the epoch as RFC 3339 (UTC, whole seconds), for humans.
pub fn show_time(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The path given, or an error naming it when it does not exist.
pub fn existing_file(path: &Path) -> CliResult<&Path> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::NotFound(format!(
            "no such file: {}",
            path.display()
        )))
    }
}
