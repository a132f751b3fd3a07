//! `strata`, the command-line tool: a thin layer over the library's public API.
//!
//! One file per command group, each with clap `Args` structs that implement [`Run`]; one
//! output layer (`output`: text or JSON); opening the repository in one place (`open`:
//! read-only for reads, waiting for the lock for writes). Data goes to stdout, progress and
//! errors to stderr (errors as one line `strata: <error>`). Exit codes: 0 ok, 1 failure
//! (including "not found"), 2 usage error. `docs/cli.md` documents every command.
//!
//! Adding a command group: one file with its `Args` and their `Run`, one line in
//! `commands!` below.

mod args;
mod bundle;
mod check;
mod command;
mod commits;
mod compare;
mod demo;
mod error;
mod export;
mod files;
mod import;
mod lanes;
mod ls;
mod merge;
mod open;
mod output;
mod plumbing;
mod progress;
mod project;
mod remote;
mod repair;
mod repo;
mod resolve;
mod rows;
mod sync;
mod versions;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use command::Run;
use error::CliResult;
use open::RepoPath;

/// strata: a versioned, forkable, replicating dataset store (git for datasets, for devices
/// that are offline most of the time).
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    top: RepoPath,

    #[command(subcommand)]
    command: Command,
}

/// Declares the commands: each variant's arguments run themselves.
macro_rules! commands {
    ($($(#[$meta:meta])* $name:ident($args:ty),)*) => {
        #[derive(Debug, clap::Subcommand)]
        enum Command {
            $($(#[$meta])* $name($args),)*
        }

        impl Run for Command {
            fn run(self, top: &RepoPath) -> CliResult {
                match self {
                    $(Command::$name(args) => args.run(top),)*
                }
            }
        }
    };
}

commands! {
    Init(repo::InitArgs),
    Status(repo::StatusArgs),
    Put(rows::PutArgs),
    Get(rows::GetArgs),
    Del(rows::DelArgs),
    #[command(visible_alias = "rows")]
    Ls(ls::LsArgs),
    History(rows::HistoryArgs),
    Forks(rows::ForksArgs),
    Datasets(ls::DatasetsArgs),
    Import(import::ImportArgs),
    Export(export::ExportArgs),
    Log(versions::LogArgs),
    Heads(versions::HeadsArgs),
    Show(versions::ShowArgs),
    Checkout(versions::CheckoutArgs),
    Diff(compare::DiffArgs),
    Merge(merge::MergeArgs),
    #[command(subcommand)]
    Files(files::FilesCommand),
    Fsck(check::FsckArgs),
    Serve(sync::ServeArgs),
    Sync(sync::SyncArgs),
    Pull(sync::PullArgs),
    Push(sync::PushArgs),
    Clone(sync::CloneArgs),
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    Repair(repair::RepairArgs),
    #[command(subcommand)]
    Graph(plumbing::GraphCommand),
    #[command(subcommand)]
    Project(project::ProjectCommand),
    Demo(demo::DemoArgs),
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

impl Run for CompletionsArgs {
    fn run(self, _: &RepoPath) -> CliResult {
        let mut out = io::stdout().lock();
        clap_complete::generate(self.shell, &mut Cli::command(), "strata", &mut out);
        out.flush()?;
        Ok(())
    }
}

fn main() -> ExitCode {
    // On a usage error clap prints the usage and exits with code 2; `--help` and
    // `--version` exit with 0.
    let cli = Cli::parse();
    if cli.top.repo.is_some() && matches!(cli.command, Command::Demo(_) | Command::Completions(_)) {
        let mut usage = Cli::command();
        usage
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "`demo` and `completions` work on no repository: leave out --repo",
            )
            .exit();
    }
    match cli.command.run(&cli.top) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`strata export | head`): stop quietly.
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = writeln!(io::stderr().lock(), "strata: {error}");
            ExitCode::FAILURE
        }
    }
}
