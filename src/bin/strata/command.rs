//! What every command is: arguments parsed by clap that run against the options given
//! before the command name. `main.rs` lists the commands; each command group is one file.

use crate::error::CliResult;
use crate::open::RepoPath;

/// A command, run with the `--repo` given before the command name (if any).
pub trait Run {
    fn run(self, top: &RepoPath) -> CliResult;
}
