//! `fsck`: verify the whole repository.

use std::io::{self, Write};

use serde_json::Value;
use strata::FsckReport;

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{ProgressOptions, RepoPath};
use crate::output::{Output, Render, plural};

/// Verify every node hash and link, the change index and changelogs, that the version index
/// matches the graph, and every payload and blob. Reports each problem; exits 1 on any.
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
        let mut value = serde_json::to_value(&self.0).unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.insert("ok".into(), self.0.is_ok().into());
        }
        value
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let report = &self.0;
        for problem in &report.problems {
            writeln!(out, "problem: {problem}")?;
        }
        writeln!(
            out,
            "checked {} nodes, {} log entries, {} payloads, {} blobs; {} pending; {}",
            report.nodes,
            report.entries,
            report.payloads,
            report.blobs,
            report.pending,
            match report.problems.len() {
                0 => "no problems".to_string(),
                n => plural(n as u64, "problem"),
            }
        )
    }
}

impl Run for FsckArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        // Read-only: a check runs beside a writer, on the repository as it was when it began.
        let repo = self.repo.read(top)?;
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
