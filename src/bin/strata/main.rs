//! `strata`, the command-line tool: a thin layer over the library's public API.
//!
//! One module per command group, each with clap `Args` structs and `run` functions. Data
//! goes to stdout, progress and errors to stderr (errors as one line `strata: <error>`).
//! Exit codes: 0 ok, 1 failure (including "not found"), 2 usage error. `docs/cli.md`
//! documents every command.

mod check;
mod context;
mod demo;
mod files;
mod plumbing;
mod repo;
mod rows;
mod transfer;
mod versions;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use context::{CliError, CliResult, Global};

/// strata: a versioned, forkable, replicating dataset store (git for datasets, for devices
/// that are offline most of the time).
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(repo::InitArgs),
    Status(repo::StatusArgs),
    Put(rows::PutArgs),
    Get(rows::GetArgs),
    Del(rows::DelArgs),
    History(rows::HistoryArgs),
    Forks(rows::ForksArgs),
    Datasets(rows::DatasetsArgs),
    Import(transfer::ImportArgs),
    Export(transfer::ExportArgs),
    Log(versions::LogArgs),
    Heads(versions::HeadsArgs),
    Checkout(versions::CheckoutArgs),
    Diff(versions::DiffArgs),
    Merge(versions::MergeArgs),
    #[command(subcommand)]
    Files(files::FilesCommand),
    Fsck(check::FsckArgs),
    #[command(subcommand)]
    Graph(plumbing::GraphCommand),
    Demo(demo::Args),
    Completions(CompletionsArgs),
}

/// Print a shell completion script to stdout.
///
/// Example: `strata completions bash > /etc/bash_completion.d/strata`
#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell to generate completions for.
    shell: clap_complete::Shell,
}

fn run(cli: Cli) -> CliResult {
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => repo::init(global, args),
        Command::Status(args) => repo::status(global, args),
        Command::Put(args) => rows::put(global, args),
        Command::Get(args) => rows::get(global, args),
        Command::Del(args) => rows::del(global, args),
        Command::History(args) => rows::history(global, args),
        Command::Forks(args) => rows::forks(global, args),
        Command::Datasets(args) => rows::datasets(global, args),
        Command::Import(args) => transfer::import(global, args),
        Command::Export(args) => transfer::export(global, args),
        Command::Log(args) => versions::log(global, args),
        Command::Heads(args) => versions::heads(global, args),
        Command::Checkout(args) => versions::checkout(global, args),
        Command::Diff(args) => versions::diff(global, args),
        Command::Merge(args) => versions::merge(global, args),
        Command::Files(command) => files::run(global, command),
        Command::Fsck(args) => check::fsck(global, args),
        Command::Graph(command) => plumbing::run(global, command),
        Command::Demo(args) => demo::run(args),
        Command::Completions(args) => {
            let mut out = io::stdout().lock();
            clap_complete::generate(args.shell, &mut Cli::command(), "strata", &mut out);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // On a usage error clap prints the usage and exits with code 2; `--help` and
    // `--version` exit with 0.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`strata export | head`): stop quietly.
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
