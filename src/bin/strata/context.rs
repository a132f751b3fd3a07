//! What every command shares: finding and opening the repository, writing data to stdout
//! (text, JSON or NDJSON), progress on stderr, and the error type with its exit code.
//!
//! Conventions (docs/cli.md): data goes to stdout, progress and logs to stderr; version ids
//! print in full hex; a dataset name or row key argument is its text exactly as written, or
//! hex with `--hex-dataset` / `--hex`; names and keys print as text when they are UTF-8, else
//! as `0x<hex>` (JSON: `{"hex": …}`), the library's [`TextOrHex`]; `--json` prints one
//! JSON document, or one JSON object per line for streams.

use std::fmt;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata::excerpt;
use strata::{Repository, TextOrHex};

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

/// A dataset name or row key in a message: its printed form, cut to a short excerpt.
pub fn brief(bytes: &[u8]) -> String {
    excerpt(&TextOrHex(bytes).to_string()).into_owned()
}

/// Which name an argument gives, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Name {
    Dataset,
    Key,
}

/// Reads a dataset name or row key given on the command line: the text's bytes exactly as
/// written, or with `hex` the bytes its hex digits spell (a leading `0x` is allowed). The
/// empty name is refused, as the library refuses it.
pub fn name_arg(text: &str, hex: bool, name: Name) -> CliResult<Vec<u8>> {
    let bytes = if hex {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let (arg, what) = match name {
            Name::Dataset => ("DATASET", "dataset name's"),
            Name::Key => ("KEY", "key's"),
        };
        hex::decode(digits).map_err(|_| {
            strata::Error::InvalidArgument(format!(
                "{arg} {:?} is not hex (with --hex{}, write the {what} bytes as hex digits)",
                excerpt(text),
                match name {
                    Name::Dataset => "-dataset",
                    Name::Key => "",
                }
            ))
        })?
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err(match name {
            Name::Dataset => strata::Error::empty_dataset(),
            Name::Key => strata::Error::empty_key(),
        }
        .into());
    }
    Ok(bytes)
}

/// `--dataset NAME [--hex-dataset]`, as `import` and `export` take it.
#[derive(Debug, clap::Args)]
pub struct DatasetOption {
    /// The dataset: its name exactly as written (with --hex-dataset, in hex).
    #[arg(long, short)]
    pub dataset: String,

    /// DATASET is given in hex (for a name that is not text): `--hex-dataset ff00`.
    #[arg(long)]
    pub hex_dataset: bool,
}

impl DatasetOption {
    pub fn name(&self) -> CliResult<Vec<u8>> {
        name_arg(&self.dataset, self.hex_dataset, Name::Dataset)
    }
}

/// A row value for JSON output: the parsed JSON when the value is JSON, else a string
/// (UTF-8) or `{"hex": ...}`.
pub fn value_json(value: &[u8]) -> serde_json::Value {
    if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(value) {
        return parsed;
    }
    serde_json::json!(TextOrHex(value))
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
