//! `repair`: rebuild a damaged repository from what its graph still holds, and say exactly
//! what was lost.

use std::io::{self, Write};

use serde_json::Value;
use strata::RepairReport;

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{ProgressOptions, RepoPath, write_options};
use crate::output::{Output, Render, plural, report_json};

/// Repair a damaged repository: salvage every readable entry of damaged storage files (the
/// damaged database is kept beside the new one), rebuild every index from the graph, and
/// report what was lost. Exits 1 when anything was lost or is still wrong. No other
/// process may have the repository open.
///
/// Example: `strata repair`
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub progress: ProgressOptions,

    #[command(flatten)]
    pub repo: RepoPath,
}

struct Report(RepairReport);

impl Render for Report {
    fn json(&self) -> Value {
        report_json(&self.0, "nothing_lost", self.0.nothing_lost())
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let report = &self.0;
        for problem in &report.storage_problems {
            writeln!(out, "damaged: {problem}")?;
        }
        if let Some(salvage) = &report.salvage {
            writeln!(
                out,
                "salvaged {} entries ({} keys) from {} tables and {} logs; the damaged database is kept at {}",
                salvage.entries,
                salvage.keys,
                salvage.tables,
                salvage.logs,
                salvage.kept_at.display()
            )?;
            for lost in &salvage.lost {
                writeln!(out, "unreadable: {lost}")?;
            }
        }
        for lost in &report.lost_nodes {
            writeln!(out, "lost node: {} ({})", lost.key, lost.reason)?;
        }
        for log in &report.short_logs {
            writeln!(
                out,
                "short log: {} had {} entries, now {}",
                log.log, log.before, log.after
            )?;
        }
        for payload in &report.lost_payloads {
            writeln!(
                out,
                "lost payload: {payload} (its commits wait for a peer to send it)"
            )?;
        }
        if report.checkout_reset {
            writeln!(out, "checkout: its version was lost; reset to latest")?;
        }
        for problem in &report.remaining {
            writeln!(out, "still wrong: {problem}")?;
        }
        writeln!(
            out,
            "kept {}, {}; {} pending; {}",
            plural(report.nodes, "node"),
            plural(report.versions, "version"),
            report.pending,
            match report.nothing_lost() {
                true => "nothing lost".to_string(),
                false => format!(
                    "lost {}, {}",
                    plural(report.lost_nodes.len() as u64, "node"),
                    plural(report.lost_payloads.len() as u64, "payload")
                ),
            }
        )
    }
}

impl Run for RepairArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.storage(top)?;
        let bar = self.progress.items(None, "repairing");
        let report = write_options().repair(&storage, &mut |step, done| {
            bar.set_message(step.to_string());
            bar.set_position(done);
        });
        bar.finish_and_clear();
        let report = Report(report?);
        let mut out = Output::new(self.json);
        out.show(&report)?;
        out.finish()?;
        match report.0.nothing_lost() {
            true => Ok(()),
            false => Err(CliError::Check(
                "repair lost data or left problems (listed above); a peer that has them sends them again at the next sync".into(),
            )),
        }
    }
}
