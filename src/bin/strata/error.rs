//! Why a command failed. `Display` is one line, printed after `strata: `; every failure
//! exits with code 1 (clap's usage errors exit with 2 before a command runs).

use std::io;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused or failed.
    #[error(transparent)]
    Strata(#[from] strata::Error),
    /// An operating-system error outside the library, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Writing to stdout failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    /// Input the command cannot use (a malformed file line, a bad argument value), or an
    /// outcome it must not report as success (a conflict, an interrupted import).
    #[error("{0}")]
    Input(String),
    /// The thing asked for does not exist (a missing row, dataset, file or version).
    #[error("{0}")]
    NotFound(String),
    /// A check failed (fsck found problems; a demo check did not hold).
    #[error("check failed: {0}")]
    Check(String),
}

impl CliError {
    /// Maps an I/O error to [`CliError::Io`] with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }
}

impl CliError {
    /// Whether writing to stdout failed because its reader went away (`strata ls | head`),
    /// directly or inside the library's table writer.
    pub fn is_broken_pipe(&self) -> bool {
        let source = match self {
            CliError::Output(source) | CliError::Strata(strata::Error::Io { source, .. }) => source,
            _ => return false,
        };
        source.kind() == io::ErrorKind::BrokenPipe
    }
}

impl From<serde_json::Error> for CliError {
    /// Serializing to stdout fails only when stdout does.
    fn from(error: serde_json::Error) -> Self {
        CliError::Output(error.into())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
