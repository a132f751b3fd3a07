//! The demo's second part: three devices. The repository of the first part is the
//! "office"; a "tablet" clones it over TCP on loopback, both edit (one row on both sides),
//! they sync, the office sees the fork, merges, and syncs the merge back; a "laptop" with
//! no network gets everything by a sync file. Then an older version is read and diffed,
//! every repository is checked with fsck, and all three must agree on every version.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use strata::{Range, Repository};

use super::{Tour, check, only_head};
use crate::error::{CliError, CliResult};

const SFO_TABLET: &str = r#"{"iata":"SFO","name":"San Francisco International (tablet)","city":"San Francisco","state":"CA","country":"USA","latitude":"37.61900194","longitude":"-122.3748433"}"#;
const SFO_OFFICE: &str = r#"{"iata":"SFO","name":"San Francisco International (office)","city":"San Francisco","state":"CA","country":"USA","latitude":"37.61900194","longitude":"-122.3748433"}"#;
const OAK_TABLET: &str = r#"{"iata":"OAK","name":"Oakland International","city":"Oakland","state":"CA","country":"USA","latitude":"37.72129083","longitude":"-122.2207167"}"#;

/// A `strata serve --tcp` running in the background for the demo.
struct Server {
    child: Child,
    stderr: BufReader<std::process::ChildStderr>,
    url: String,
}

impl Tour {
    /// Opens the repository of `device` (`None`: the office) read-only, for checks.
    fn device(&self, device: Option<&str>) -> CliResult<Repository> {
        let folder = match device {
            Some(device) => self.dir.join(device),
            None => self.dir.clone(),
        };
        Ok(Repository::options().read_only(true).open(folder)?)
    }

    /// Runs the next commands in `device`'s folder (`None`: the office's).
    fn on(&mut self, device: Option<&str>) {
        self.here = device.map(str::to_string);
    }

    /// Starts `strata serve --tcp 127.0.0.1:0` in the current folder and reads the address
    /// it prints.
    fn serve(&mut self) -> CliResult<Server> {
        let prompt = self.here.as_deref().unwrap_or("").to_string();
        self.say(&format!("{prompt}$ strata serve --tcp 127.0.0.1:0 &"))?;
        let mut child = Command::new(&self.binary)
            .args(["serve", "--tcp", "127.0.0.1:0"])
            .current_dir(self.folder())
            .env_remove(crate::open::REPO_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(CliError::io("starting strata serve"))?;
        let mut stderr = match child.stderr.take() {
            Some(stderr) => BufReader::new(stderr),
            None => return Err(CliError::Check("strata serve has no stderr".into())),
        };
        let mut first = String::new();
        stderr
            .read_line(&mut first)
            .map_err(CliError::io("reading strata serve's address"))?;
        self.say(first.trim_end())?;
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("tcp://"))
            .map(str::to_string)
            .ok_or_else(|| CliError::Check(format!("strata serve printed no address: {first}")))?;
        Ok(Server { child, stderr, url })
    }

    /// Stops a server with Ctrl-C (SIGINT) and prints what it logged.
    fn stop(&mut self, mut server: Server) -> CliResult {
        self.say("$ kill -INT %1")?;
        let interrupted = Command::new("kill")
            .args(["-INT", &server.child.id().to_string()])
            .status()
            .map_err(CliError::io("stopping strata serve"))?;
        if !interrupted.success() {
            let _ = server.child.kill();
        }
        let mut log = String::new();
        server
            .stderr
            .read_to_string(&mut log)
            .map_err(CliError::io("reading strata serve's log"))?;
        let status = server
            .child
            .wait()
            .map_err(CliError::io("waiting for strata serve"))?;
        self.say(log.trim_end())?;
        check(status.success() && !log.contains("failed"), || {
            format!("strata serve did not stop cleanly ({status}): {log}")
        })
    }
}

/// The heads of `repo`, sorted.
fn heads(repo: &Repository) -> CliResult<Vec<String>> {
    let mut heads: Vec<String> = repo.heads()?.into_iter().map(String::from).collect();
    heads.sort();
    Ok(heads)
}

/// A row as the devices must agree on it: dataset, key, value.
type Row = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Every version `repo` holds, with every row of every dataset at it: what all devices
/// must agree on.
fn every_version(repo: &Repository) -> CliResult<Vec<(String, Vec<Row>)>> {
    let mut versions = Vec::new();
    for node in repo.graph().changes(0) {
        let node = node?;
        let view = repo.at(&repo.resolve(&node.key)?)?;
        let mut rows = Vec::new();
        for dataset in view.datasets()? {
            for row in view.range(&dataset, Range::all()) {
                let row = row?;
                rows.push((dataset.clone(), row.key, row.value));
            }
        }
        versions.push((node.key, rows));
    }
    versions.sort();
    Ok(versions)
}

/// The project key in the output of `strata project invite --json` saved at `path`.
fn project_key(path: &std::path::Path) -> CliResult<String> {
    let text = std::fs::read(path).map_err(CliError::io(format!("reading {}", path.display())))?;
    let invite: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        CliError::Check(format!(
            "`strata project invite --json` printed no JSON: {e}"
        ))
    })?;
    invite["project_key"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Check("`strata project invite --json` has no project_key".into()))
}

/// The devices part of the tour; `merged` is the office's version at the end of the first.
pub(crate) fn tour_devices(tour: &mut Tour, merged: &str) -> CliResult {
    tour.say("")?;
    tour.say("# Three devices. This repository is the office; a tablet clones it over TCP,")?;
    tour.say("# with the project key: sessions and sync files are secured with it.")?;
    tour.command(&["project", "invite", "--json"], Some("invite.json"))?;
    let key = project_key(&tour.dir.join("invite.json"))?;
    let server = tour.serve()?;
    let url = server.url.clone();
    tour.run(&["clone", &url, "tablet", "--key", &key])?;
    tour.stop(server)?;
    let office = tour.device(None)?;
    let tablet = tour.device(Some("tablet"))?;
    check(heads(&tablet)? == heads(&office)?, || {
        "the clone does not have the office's heads".into()
    })?;
    check(tablet.status()?.rows == office.status()?.rows, || {
        "the clone does not have the office's rows".into()
    })?;
    drop((office, tablet));

    tour.say("")?;
    tour.say("# Offline, both edit SFO; the tablet also renames OAK. Then the tablet serves")?;
    tour.say("# and the office syncs with it: the sync says SFO is now forked.")?;
    tour.on(Some("tablet"));
    tour.run(&[
        "put",
        "airports",
        "SFO",
        SFO_TABLET,
        "--message",
        "tablet: SFO",
    ])?;
    tour.run(&[
        "put",
        "airports",
        "OAK",
        OAK_TABLET,
        "--message",
        "tablet: OAK",
    ])?;
    tour.on(None);
    tour.run(&[
        "put",
        "airports",
        "SFO",
        SFO_OFFICE,
        "--message",
        "office: SFO",
    ])?;
    tour.on(Some("tablet"));
    let server = tour.serve()?;
    tour.on(None);
    let url = server.url.clone();
    tour.run(&["sync", &url])?;
    let office = tour.device(None)?;
    check(office.heads()?.len() == 2, || {
        "after the sync the office does not have two heads".into()
    })?;
    check(office.forks("airports", "SFO")?.len() == 2, || {
        "SFO is not forked after the sync".into()
    })?;
    drop(office);
    tour.run(&["forks", "airports", "SFO"])?;

    tour.say("")?;
    tour.say("# The office merges (keeping its SFO) and syncs the merge back to the tablet.")?;
    tour.run(&["merge", "--ours", "--message", "merge the tablet's work"])?;
    tour.run(&["sync", &url])?;
    tour.stop(server)?;
    let office = tour.device(None)?;
    let tablet = tour.device(Some("tablet"))?;
    let merge = only_head(heads(&office)?, "the merge on the office")?;
    check(heads(&tablet)? == vec![merge.clone()], || {
        "the tablet did not get the merge".into()
    })?;
    for repo in [&office, &tablet] {
        let sfo = repo.get("airports", "SFO")?.map(|r| r.value);
        let oak = repo.get("airports", "OAK")?.map(|r| r.value);
        check(
            sfo.as_deref() == Some(SFO_OFFICE.as_bytes())
                && oak.as_deref() == Some(OAK_TABLET.as_bytes()),
            || "a device lost a change in the merge".into(),
        )?;
    }
    drop((office, tablet));

    tour.say("")?;
    tour.say("# A laptop with no network: everything goes by sync file (a USB stick).")?;
    tour.run(&["bundle", "create", "survey.sync"])?;
    tour.run(&["init", "laptop"])?;
    tour.on(Some("laptop"));
    tour.run(&["project", "join", &key])?;
    tour.run(&["bundle", "apply", "../survey.sync"])?;
    tour.run(&["bundle", "apply", "../survey.sync"])?;
    tour.say("(applied twice: the second time there was nothing new)")?;

    tour.say("")?;
    tour.say(
        "# On the laptop: SFO as it was at the office's earlier merge, and what changed since.",
    )?;
    tour.run(&["get", "airports", "SFO", "--at", &merged[..8]])?;
    tour.run(&["diff", &merged[..8], &merge[..8]])?;
    let laptop = tour.device(Some("laptop"))?;
    let then = laptop
        .at(&laptop.resolve(merged)?)?
        .get("airports", "SFO")?;
    check(
        then.map(|row| row.value).as_deref() == Some(super::SFO_OFFICIAL.as_bytes()),
        || "the laptop does not read SFO at the older version".into(),
    )?;
    let changed = laptop
        .diff(&laptop.resolve(merged)?, &laptop.resolve(&merge)?)?
        .count();
    check(changed == 2, || {
        format!("the diff lists {changed} rows, expected 2 (SFO, OAK)")
    })?;
    drop(laptop);

    tour.say("")?;
    tour.say("# Every device verifies, and all three agree on every version.")?;
    for device in [Some("tablet"), Some("laptop")] {
        tour.on(device);
        tour.run(&["fsck"])?;
    }
    tour.on(None);
    let all: Vec<Repository> = [None, Some("tablet"), Some("laptop")]
        .into_iter()
        .map(|device| tour.device(device))
        .collect::<CliResult<_>>()?;
    let office = every_version(&all[0])?;
    for (repo, name) in all[1..].iter().zip(["tablet", "laptop"]) {
        check(every_version(repo)? == office, || {
            format!("the {name} and the office differ at some version")
        })?;
    }
    tour.say(&format!(
        "(office, tablet and laptop hold the same {} versions, each with the same rows)",
        office.len()
    ))?;
    Ok(())
}
