//! `fsck`: verify the whole repository.

use std::io::Write;

use crate::context::{CliError, CliResult, Global, stdout, write_json};

/// Verify every node hash and link, the change index and changelogs, that the version index
/// matches the graph, and every payload and blob. Reports each problem; exits 1 on any.
///
/// Example: `strata fsck`
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn fsck(global: &Global, args: FsckArgs) -> CliResult {
    let repo = global.open()?;
    let bar = global.progress(Some(repo.graph().change_count()), "checking");
    let report = repo.fsck(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    let mut out = stdout();
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(|e| CliError::Output(e.into()))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("ok".into(), report.is_ok().into());
        }
        write_json(&mut out, &value)?;
    } else {
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
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        )?;
    }
    out.flush()?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError::Check(format!(
            "fsck found {} problem(s) in the repository",
            report.problems.len()
        )))
    }
}
