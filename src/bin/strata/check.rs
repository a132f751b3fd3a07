//! `fsck`: verify the whole repository; one that will not open has its storage files
//! checked instead, so the damage is named.

use std::io::{self, Write};

use serde_json::Value;
use strata::FsckReport;

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{ProgressOptions, RepoPath};
use crate::output::{Output, Render, plural, report_json};

/// Verify every node hash and link, the change index and changelogs, that the version index
/// matches the graph, and every payload and blob. Reports each problem; exits 1 on any. A
/// repository that will not open has its storage files checked block by block instead,
/// and each damaged file is named (`strata repair` then rebuilds it).
///
/// Example: `strata fsck`
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub progress: ProgressOptions,

    #[command(flatten)]
    pub repo: RepoPath,
}

struct Report(FsckReport);

impl Render for Report {
    fn json(&self) -> Value {
        report_json(&self.0, "ok", self.0.is_ok())
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let report = &self.0;
        for problem in &report.problems {
            writeln!(out, "problem: {problem}")?;
        }
        writeln!(
            out,
            "checked {} nodes, {} log entries, {} payloads, {} blobs; {} pending{}; {}",
            report.nodes,
            report.entries,
            report.payloads,
            report.blobs,
            report.pending,
            match report.wanted_files {
                0 => String::new(),
                n => format!(", {} on the way from a peer", plural(n, "file")),
            },
            match report.problems.len() {
                0 => "no problems".to_string(),
                n => plural(n as u64, "problem"),
            }
        )
    }
}

/// The storage files' problems, for a repository that does not open.
struct Unopenable {
    error: String,
    problems: Vec<String>,
}

impl Render for Unopenable {
    fn json(&self) -> Value {
        serde_json::json!({
            "opens": false,
            "error": self.error,
            "problems": self.problems,
            "ok": false,
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for problem in &self.problems {
            writeln!(out, "problem: {problem}")?;
        }
        writeln!(
            out,
            "the repository does not open ({}); its storage files have {}; `strata repair` rebuilds it",
            self.error,
            plural(self.problems.len() as u64, "problem")
        )
    }
}

impl FsckArgs {
    /// Checks the storage files of a repository that failed to open with `error`; when
    /// they show nothing, the open's own error is the answer.
    fn unopenable(&self, top: &RepoPath, error: strata::Error) -> CliResult {
        if matches!(
            error,
            strata::Error::RepositoryNotFound { .. } | strata::Error::Locked { .. }
        ) {
            return Err(error.into());
        }
        let storage = self.repo.storage(top)?;
        let problems = strata::Repository::check_files(&storage)?;
        if problems.is_empty() {
            return Err(error.into());
        }
        let count = problems.len() as u64;
        let mut out = Output::new(self.json);
        out.show(&Unopenable {
            error: error.to_string(),
            problems,
        })?;
        out.finish()?;
        Err(CliError::Check(format!(
            "fsck found {} in the storage files of a repository that does not open",
            plural(count, "problem")
        )))
    }
}

impl Run for FsckArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        // Read-only: a check runs beside a writer, on the repository as it was when it began.
        let repo = match self.repo.read(top) {
            Ok(repo) => repo,
            Err(CliError::Strata(error)) => return self.unopenable(top, error),
            Err(other) => return Err(other),
        };
        let bar = self
            .progress
            .items(Some(repo.graph().change_count()), "checking");
        let report = repo.fsck(&mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        let report = Report(report?);
        let mut out = Output::new(self.json);
        out.show(&report)?;
        out.finish()?;
        match report.0.problems.len() {
            0 => Ok(()),
            n => Err(CliError::Check(format!(
                "fsck found {} in the repository",
                plural(n as u64, "problem")
            ))),
        }
    }
}
