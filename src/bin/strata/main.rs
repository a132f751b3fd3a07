//! `strata`, the command-line tool: a thin layer over the library's public API.
//!
//! One module per command group; each exposes an `Args` struct (clap derive) and a
//! `run(args) -> Result<(), CliError>`. Data goes to stdout, errors to stderr as one line
//! `strata: <error>`. Exit codes: 0 ok, 1 failure, 2 usage error (clap's own).

mod demo;

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// strata: a versioned, forkable, replicating dataset store (git for datasets, for devices
/// that are offline most of the time).
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every command. More arrive with the dataset store and replication.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a real end-to-end graph session on a temporary on-disk repository and report
    /// what happened, with timings.
    Demo(demo::Args),
}

/// Why a command failed. `Display` is one line, printed after `strata: `.
#[derive(Debug)]
pub enum CliError {
    /// The library refused or failed.
    Strata(strata::Error),
    /// An operating-system error outside the library, with what was being done.
    Io { context: String, source: io::Error },
    /// Writing to stdout failed.
    Output(io::Error),
    /// A result was not what the command expected (a check of the demo failed).
    Check(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Strata(error) => write!(f, "{error}"),
            CliError::Io { context, source } => write!(f, "{context}: {source}"),
            CliError::Output(source) => write!(f, "writing output: {source}"),
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

fn main() -> ExitCode {
    // On a usage error clap prints the usage and exits with code 2; `--help` and
    // `--version` exit with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`strata demo | head`): stop quietly.
        Err(CliError::Output(source)) if source.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(io::stderr().lock(), "strata: {error}");
            ExitCode::FAILURE
        }
    }
}
