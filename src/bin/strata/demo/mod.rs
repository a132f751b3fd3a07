//! `strata demo`: a tour of the command line on a real dataset, in a fresh repository in a
//! temporary folder.
//!
//! Every step is a real `strata` command line, run by this very binary as a child process
//! in that folder, exactly as if it were typed there. Each is printed as `$ strata …`
//! before its output, so the output doubles as a tutorial that can be replayed by hand in
//! the folder (`--keep` keeps it). After each step the demo checks the result through the
//! library; a surprise fails the command with `strata: check failed:`.
//!
//! About 500 lines because the tour is one script: its steps, their checks, the example
//! rows it writes and its summary read top to bottom here.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::HumanCount;
use strata::Repository;

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::RepoPath;
use crate::output::{rate, shell_word};

mod devices;

/// The example dataset: 3,376 US airports (FAA data, public domain; examples/README.md).
const AIRPORTS_CSV: &[u8] = include_bytes!("../../../../examples/airports.csv");
const AIRPORTS_ROWS: u64 = 3376;

const SFO: &str = r#"{"iata":"SFO","name":"San Francisco International","city":"San Francisco","state":"CA","country":"USA","latitude":"37.61900194","longitude":"-122.3748433"}"#;
const SFO_OFFICIAL: &str = r#"{"iata":"SFO","name":"San Francisco International Airport","city":"San Francisco","state":"CA","country":"USA","latitude":"37.61900194","longitude":"-122.3748433"}"#;
const SFO_SHORT: &str = r#"{"iata":"SFO","name":"San Francisco Intl","city":"San Francisco","state":"CA","country":"USA","latitude":"37.61900194","longitude":"-122.3748433"}"#;
const JFK_FULL: &str = r#"{"iata":"JFK","name":"John F. Kennedy International","city":"New York","state":"NY","country":"USA","latitude":"40.63975111","longitude":"-73.77892556"}"#;

/// Run a tour of the command line on real data (3,376 US airports): one repository, then
/// three devices syncing.
///
/// Each step is printed as the `strata` command it runs, followed by that command's
/// output. First one repository: init, import, get, put and del, a fork (a write on an
/// older version with --replaces), forks, merge, log, diff, get --at, history, export
/// (checked byte for byte against the imported file) and fsck. Then three devices: a
/// tablet clones the repository over TCP on loopback with the project key (`project
/// invite`, `serve`, `clone --key`; every session and file is secured with it), both edit
/// (SFO on both), they sync and SFO is forked, the office merges and syncs the merge back,
/// a laptop joins the project and gets everything by a sealed sync file (`project join`,
/// `bundle create`, `bundle apply`, twice), reads an
/// older version and diffs; every repository passes fsck and all three must agree on every
/// version. Every step's result is checked. It takes about 4 s on a loaded 2-core machine;
/// the summary says how long each kind of step took.
///
/// Example: `strata demo`, `strata demo --keep --rows 100000`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the repository folder when the demo ends (its path is printed), to replay or
    /// continue the tour by hand.
    #[arg(long)]
    keep: bool,

    /// Also import and export this many generated rows (NDJSON, ~150 bytes each) to
    /// measure throughput, e.g. `--rows 100000`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    rows: u64,
}

/// Fails the demo with `message` unless `ok`.
pub(crate) fn check(ok: bool, message: impl FnOnce() -> String) -> CliResult {
    if ok {
        Ok(())
    } else {
        Err(CliError::Check(message()))
    }
}

/// The demo's state: where it runs, and what each step took.
pub(crate) struct Tour {
    pub(crate) binary: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) timings: Vec<(String, Duration)>,
    /// The device folder (under `dir`) commands run in; `None`: `dir` itself.
    pub(crate) here: Option<String>,
    /// With --rows: the generated rows' import and export times.
    throughput: Option<(Duration, Duration)>,
}

impl Tour {
    /// Prints narration or a transcript line, flushed so that it comes out in order with
    /// the commands' own output.
    pub(crate) fn say(&self, text: &str) -> CliResult {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    /// Runs `strata <words>` in the folder, printing the command line and then its output;
    /// `to` redirects its standard output to a file of the folder instead. Returns how long
    /// it took.
    pub(crate) fn command(&mut self, words: &[&str], to: Option<&str>) -> CliResult<Duration> {
        let mut line = words
            .iter()
            .map(|w| shell_word(w))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(file) = to {
            line = format!("{line} > {file}");
        }
        let prompt = self.here.as_deref().unwrap_or("");
        self.say(&format!("{prompt}$ strata {line}"))?;
        let mut command = Command::new(&self.binary);
        command
            .args(words)
            .current_dir(self.folder())
            .env_remove(crate::open::REPO_ENV)
            .stdin(Stdio::null());
        if let Some(file) = to {
            let file = File::create(self.dir.join(file))
                .map_err(CliError::io(format!("creating {file}")))?;
            command.stdout(file);
        }
        let started = Instant::now();
        let output = command
            .output()
            .map_err(CliError::io(format!("running strata {line}")))?;
        let elapsed = started.elapsed();
        io::stdout().write_all(&output.stdout)?;
        io::stdout().flush()?;
        io::stderr().write_all(&output.stderr)?;
        if !output.status.success() {
            return Err(CliError::Check(format!(
                "`strata {line}` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        self.timings.push((words[0].to_string(), elapsed));
        Ok(elapsed)
    }

    /// The folder commands run in now.
    pub(crate) fn folder(&self) -> PathBuf {
        match &self.here {
            Some(device) => self.dir.join(device),
            None => self.dir.clone(),
        }
    }

    pub(crate) fn run(&mut self, words: &[&str]) -> CliResult<Duration> {
        self.command(words, None)
    }

    /// The repository through the library, for checks (read-only, beside nothing).
    fn repo(&self) -> CliResult<Repository> {
        Ok(Repository::options().read_only(true).open(&self.dir)?)
    }

    fn heads(&self) -> CliResult<Vec<String>> {
        Ok(self
            .repo()?
            .heads()?
            .into_iter()
            .map(String::from)
            .collect())
    }

    fn value(&self, version: Option<&str>, key: &str) -> CliResult<Option<String>> {
        let repo = self.repo()?;
        let view = match version {
            Some(version) => repo.at(&repo.resolve(version)?)?,
            None => repo.latest()?,
        };
        Ok(view
            .get("airports", key)?
            .map(|row| String::from_utf8_lossy(&row.value).into_owned()))
    }
}

/// The single head, or a failed check.
pub(crate) fn only_head(heads: Vec<String>, after: &str) -> CliResult<String> {
    match <[String; 1]>::try_from(heads) {
        Ok([head]) => Ok(head),
        Err(heads) => Err(CliError::Check(format!(
            "after {after} there are {} heads, expected 1",
            heads.len()
        ))),
    }
}

/// A generated observation row, different for every `i`.
fn observation(i: u64) -> String {
    let lat = -3.0 - (i % 9973) as f64 / 10_000.0;
    let lon = -62.0 - (i % 7919) as f64 / 10_000.0;
    format!(
        r#"{{"id":"obs-{i:08}","lat":{lat:.4},"lon":{lon:.4},"species":"Ceiba pentandra","count":{},"observer":"team-{}","ok":true}}"#,
        i % 37,
        i % 11
    )
}

impl Run for DemoArgs {
    fn run(self, _: &RepoPath) -> CliResult {
        let started = Instant::now();
        let binary = std::env::current_exe().map_err(CliError::io("finding the strata binary"))?;
        let folder = tempfile::Builder::new()
            .prefix("strata-demo-")
            .tempdir()
            .map_err(CliError::io("creating a temporary folder"))?;
        // With --keep the folder outlives the run; otherwise it is removed when `_guard`
        // drops, on success and on failure alike.
        let (_guard, dir): (Option<tempfile::TempDir>, PathBuf) = match self.keep {
            true => (None, folder.keep()),
            false => {
                let dir = folder.path().to_path_buf();
                (Some(folder), dir)
            }
        };
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut tour = Tour {
            binary,
            dir: dir.clone(),
            timings: Vec::new(),
            here: None,
            throughput: None,
        };
        tour_steps(&mut tour, &self)?;
        summary(&tour, &self, started.elapsed(), &dir)
    }
}

/// The summary: how long the whole demo and its main steps took.
fn summary(tour: &Tour, args: &DemoArgs, total: Duration, dir: &Path) -> CliResult {
    let time_of = |name: &str| -> Duration {
        tour.timings
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, d)| *d)
            .sum()
    };
    let writes: Vec<Duration> = tour
        .timings
        .iter()
        .filter(|(n, _)| n == "put" || n == "del")
        .map(|(_, d)| *d)
        .collect();
    tour.say("")?;
    tour.say(&format!(
        "Summary: {} commands in {:.2?}; every check passed.",
        tour.timings.len(),
        total
    ))?;
    let line = |step: &str, what: String, how: String| format!("  {step:<8} {what:<34} {how}");
    if let Some((_, import)) = tour.timings.iter().find(|(n, _)| n == "import") {
        tour.say(&line(
            "import",
            format!("{} airports, one commit", HumanCount(AIRPORTS_ROWS)),
            rate(AIRPORTS_ROWS, *import),
        ))?;
    }
    if !writes.is_empty() {
        let mean = writes.iter().sum::<Duration>() / writes.len() as u32;
        tour.say(&line(
            "put/del",
            format!("{} single-row commits", writes.len()),
            format!("{mean:.2?} each, process start to fsynced commit"),
        ))?;
    }
    if let Some((import, export)) = tour.throughput {
        let what = format!("{} generated rows", HumanCount(args.rows));
        tour.say(&line("import", what.clone(), rate(args.rows, import)))?;
        tour.say(&line("export", what, rate(args.rows, export)))?;
    }
    for name in ["merge", "diff", "fsck", "clone", "sync", "bundle"] {
        tour.say(&line(name, String::new(), format!("{:.2?}", time_of(name))))?;
    }
    tour.say(&format!(
        "  folder   {} ({})",
        dir.display(),
        match args.keep {
            true => "kept: `cd` there to continue the tour by hand",
            false => "removed now; --keep keeps it",
        }
    ))
}

fn tour_steps(tour: &mut Tour, args: &DemoArgs) -> CliResult {
    tour.say("strata demo: the command line on real data, in a new repository.")?;
    tour.say(
        "Each `$ strata ...` line below is run, in this process, by the same code as the command.",
    )?;
    tour.say("")?;
    tour.say(&format!(
        "$ cd {}",
        shell_word(&tour.dir.display().to_string())
    ))?;
    tour.run(&["init"])?;
    check(Repository::storage_of(&tour.dir).is_some(), || {
        "init made no repository".into()
    })?;

    // Import.
    tour.say("")?;
    tour.say("# 3,376 US airports (FAA data, public domain; see examples/README.md).")?;
    std::fs::write(tour.dir.join("airports.csv"), AIRPORTS_CSV)
        .map_err(CliError::io("writing airports.csv"))?;
    tour.run(&[
        "import",
        "airports.csv",
        "--dataset",
        "airports",
        "--key",
        "iata",
        "--message",
        "FAA airports",
    ])?;
    let imported = only_head(tour.heads()?, "the import")?;
    let status = tour.repo()?.status()?;
    check(status.rows == AIRPORTS_ROWS, || {
        format!(
            "the import left {} rows, expected {AIRPORTS_ROWS}",
            status.rows
        )
    })?;
    let v1 = &imported[..8];
    tour.run(&["get", "airports", "SFO"])?;
    check(tour.value(None, "SFO")?.as_deref() == Some(SFO), || {
        "SFO does not read back as imported".into()
    })?;

    // Edits.
    tour.say("")?;
    tour.say("# Edit two rows and delete one: each write is a new version.")?;
    tour.run(&[
        "put",
        "airports",
        "SFO",
        SFO_OFFICIAL,
        "--message",
        "official name",
    ])?;
    tour.run(&["put", "airports", "JFK", JFK_FULL, "--message", "full name"])?;
    tour.run(&["del", "airports", "00M", "--message", "closed"])?;
    let mine = only_head(tour.heads()?, "the edits")?;
    check(tour.value(None, "00M")?.is_none(), || {
        "00M is still there after del".into()
    })?;

    // A fork.
    tour.say("")?;
    tour.say(&format!(
        "# A colleague edited SFO offline, starting from the import ({v1}). Their write arrives"
    ))?;
    tour.say("# here as a write on that older version: the repository now has two heads.")?;
    tour.run(&[
        "put",
        "airports",
        "SFO",
        SFO_SHORT,
        "--replaces",
        v1,
        "--message",
        "shorter name",
    ])?;
    let heads = tour.heads()?;
    check(heads.len() == 2 && heads.contains(&mine), || {
        format!("after the fork there are {} heads, expected 2", heads.len())
    })?;
    let theirs = heads
        .iter()
        .find(|h| **h != mine)
        .cloned()
        .unwrap_or_default();
    tour.run(&["heads"])?;
    tour.run(&["forks", "airports", "SFO"])?;
    check(tour.repo()?.forks("airports", "SFO")?.len() == 2, || {
        "SFO does not show two forks".into()
    })?;
    tour.say("")?;
    tour.say(
        "# At latest, each head's changes are visible; a forked row reads as its newest version.",
    )?;
    tour.run(&["get", "airports", "SFO"])?;
    tour.run(&["get", "airports", "JFK"])?;

    // The merge.
    tour.say("")?;
    tour.say("# Merge the heads. SFO changed on both: keep ours (the first head named).")?;
    tour.run(&[
        "merge",
        &mine[..8],
        &theirs[..8],
        "--ours",
        "--message",
        "keep the official name",
    ])?;
    let merged = only_head(tour.heads()?, "the merge")?;
    check(
        tour.value(None, "SFO")?.as_deref() == Some(SFO_OFFICIAL)
            && tour.value(None, "JFK")?.as_deref() == Some(JFK_FULL)
            && tour.value(None, "00M")?.is_none(),
        || "the merge lost a change".into(),
    )?;
    tour.run(&["log", "-n", "3"])?;

    // Looking back.
    tour.say("")?;
    tour.say("# What changed between the import and the merge, and SFO as it was.")?;
    tour.run(&["diff", v1, &merged[..8]])?;
    let changed = {
        let repo = tour.repo()?;
        repo.diff(&repo.resolve(&imported)?, &repo.resolve(&merged)?)?
            .count()
    };
    check(changed == 3, || {
        format!("the diff lists {changed} rows, expected 3 (SFO, JFK, 00M)")
    })?;
    tour.run(&["get", "airports", "SFO", "--at", v1])?;
    check(
        tour.value(Some(&imported), "SFO")?.as_deref() == Some(SFO),
        || "SFO at the import version is not the imported row".into(),
    )?;
    tour.run(&["history", "airports", "SFO"])?;

    // Export.
    tour.say("")?;
    tour.say("# Export the import version: the very file that was imported, byte for byte.")?;
    tour.command(
        &[
            "export",
            "--dataset",
            "airports",
            "--format",
            "csv",
            "--key",
            "iata",
            "--at",
            v1,
        ],
        Some("airports-then.csv"),
    )?;
    let then = std::fs::read(tour.dir.join("airports-then.csv"))
        .map_err(CliError::io("reading airports-then.csv"))?;
    let rows = then.iter().filter(|&&b| b == b'\n').count() as u64 - 1;
    check(then == AIRPORTS_CSV, || {
        "the export at the import version differs from the imported file".into()
    })?;
    tour.say(&format!(
        "(wrote {} rows, identical to airports.csv)",
        HumanCount(rows)
    ))?;

    // Optional throughput run.
    if args.rows > 0 {
        generated_rows(tour, args.rows)?;
    }

    // fsck.
    tour.say("")?;
    tour.run(&["fsck"])?;

    devices::tour_devices(tour, &merged)
}

/// Imports and exports `n` generated rows, timing both.
fn generated_rows(tour: &mut Tour, n: u64) -> CliResult {
    tour.say("")?;
    tour.say(&format!(
        "# Throughput: {} generated observation rows.",
        HumanCount(n)
    ))?;
    let path = tour.dir.join("observations.ndjson");
    {
        let file =
            std::fs::File::create(&path).map_err(CliError::io("creating observations.ndjson"))?;
        let mut file = io::BufWriter::new(file);
        for i in 0..n {
            writeln!(file, "{}", observation(i)).map_err(CliError::io("writing observations"))?;
        }
        file.flush().map_err(CliError::io("writing observations"))?;
    }
    let imported = tour.run(&[
        "import",
        "observations.ndjson",
        "--dataset",
        "observations",
        "--key",
        "id",
    ])?;
    let elapsed = tour.command(
        &["export", "--dataset", "observations", "--key", "id"],
        Some("observations-out.ndjson"),
    )?;
    let exported = std::fs::read(tour.dir.join("observations-out.ndjson")).ok();
    let rows = exported
        .as_ref()
        .map_or(0, |e| e.iter().filter(|&&b| b == b'\n').count() as u64);
    check(rows == n, || format!("exported {rows} rows, expected {n}"))?;
    let same = std::fs::read(&path).ok() == exported;
    check(same, || {
        "the exported observations differ from the import".into()
    })?;
    tour.say(&format!(
        "(exported {} rows in {}, identical to the imported file)",
        HumanCount(rows),
        rate(rows, elapsed)
    ))?;
    tour.throughput = Some((imported, elapsed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_dataset_is_the_examples_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airports.csv");
        assert_eq!(std::fs::read(path).unwrap(), AIRPORTS_CSV);
        assert_eq!(
            AIRPORTS_CSV.iter().filter(|&&b| b == b'\n').count() as u64,
            AIRPORTS_ROWS + 1
        );
    }
}
