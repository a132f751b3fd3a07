//! `serve`, `sync`, `pull`, `push` and `clone`: replication between devices, over the
//! library's sessions. `remote.rs` turns a TARGET into a session; this file holds the
//! commands, their options, and the summary they end with (what moved, how fast, the new
//! heads, and which rows are now forked, with the command that merges them).
//!
//! About 670 lines: the sync commands share their options and their one summary; split by
//! command, they would repeat both.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, HumanCount};
use serde_json::{Value, json};
use strata::{
    ConflictRow, Identity, Limits, Mode, OnTcpSession, Payload, Progress, ProjectKey, Repository,
    Session, Stop, SyncReport, TcpServer, TextOrHex, Version,
};

use crate::args::{Name, name_arg};
use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::merge::ConflictJson;
use crate::open::{ProgressOptions, RepoPath, WriteRepo, write_options};
use crate::output::{Output, Render, plural, warning};
use crate::remote::{Exchange, PlainOption, Security, Target};

/// How many forked rows the text summary lists (`--json` lists them all).
const ROWS_SHOWN: usize = 10;

/// How long a stopped server waits for its sessions to end.
const DRAIN: Duration = Duration::from_secs(10);

/// Serve this repository to other devices: over TCP to any number of peers, or over
/// standard streams to one (what `ssh://` targets run on the far side).
///
/// Sessions are authenticated and encrypted with the project key: only devices holding
/// it (`strata project invite`) can sync. --plain serves the plain hyperlog wire instead,
/// to anyone who can reach it.
///
/// With --tcp, each peer's session runs as it connects (several at once are fine) and
/// ends with one line on stderr; Ctrl-C stops the server cleanly (sessions under way are
/// cancelled; everything they stored stays). The repository is open for writing while it
/// is served: other writing commands wait for it (reading commands do not).
///
/// Example: `strata serve --tcp 0.0.0.0:7070`, `strata serve --tcp 127.0.0.1:0` (any free
/// port; the address is printed), `strata serve --stdio`
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("transport").required(true).args(["tcp", "stdio"])))]
pub struct ServeArgs {
    /// Listen on ADDR (host:port; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,

    /// Run one session on standard input and output.
    #[arg(long)]
    pub stdio: bool,

    /// With --tcp: the most peers served at once; a connection beyond it is closed at
    /// once (it cannot tie up the server).
    #[arg(long, value_name = "N", conflicts_with = "stdio", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: u32,

    /// With --tcp: end a peer's session that takes longer than this (a peer sending
    /// frames that do nothing is otherwise only bounded by the idle timeout's reset);
    /// `0` for no limit (for long live sessions).
    #[arg(long, value_name = "DURATION", conflicts_with = "stdio", default_value = "1h", value_parser = humantime::parse_duration)]
    pub session_limit: Duration,

    #[command(flatten)]
    pub plain: PlainOption,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// Which payload goes with the version graph: rows and files (the default), rows only,
/// the commits touching some datasets, or none.
#[derive(Debug, clap::Args)]
pub struct PayloadOptions {
    /// Only the version graph, no rows or files: commits stay pending (not readable) until
    /// a later sync brings their rows.
    #[arg(long, group = "payload")]
    pub graph_only: bool,

    /// Rows but no file contents.
    #[arg(long, group = "payload")]
    pub rows_only: bool,

    /// Only the rows and files of commits touching this dataset (repeatable); other
    /// commits stay pending.
    #[arg(long, short, value_name = "DATASET", group = "payload")]
    pub dataset: Vec<String>,
}

impl PayloadOptions {
    pub fn payload(&self) -> CliResult<Payload> {
        Ok(if self.graph_only {
            Payload::GraphOnly
        } else if self.rows_only {
            Payload::RowsOnly
        } else if !self.dataset.is_empty() {
            Payload::Datasets(
                self.dataset
                    .iter()
                    .map(|d| name_arg(d, false, Name::Dataset))
                    .collect::<CliResult<_>>()?,
            )
        } else {
            Payload::Everything
        })
    }
}

/// What this side fetches and how the session runs: the options of sync, pull, push and
/// clone.
#[derive(Debug, clap::Args)]
pub struct SyncOptions {
    #[command(flatten)]
    pub payload: PayloadOptions,

    /// Keep syncing after the exchange, both ways, until interrupted (Ctrl-C).
    #[arg(long)]
    pub live: bool,

    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub progress: ProgressOptions,

    #[command(flatten)]
    pub plain: PlainOption,
}

impl SyncOptions {
    /// The exchange, with a progress bar and Ctrl-C stopping it.
    fn exchange(
        &self,
        mode: Mode,
        security: Security,
    ) -> CliResult<(Exchange, indicatif::ProgressBar)> {
        let stop = Stop::new();
        stop_on_interrupt(&stop, self.live);
        let bar = self.progress.items(None, "syncing");
        let shown = bar.clone();
        let exchange = Exchange {
            mode,
            payload: self.payload.payload()?,
            live: self.live,
            stop,
            progress: Some(Arc::new(move |p: &Progress| shown.set_message(moving(p)))),
            security,
        };
        Ok((exchange, bar))
    }
}

/// The progress line: nodes and bytes each way.
fn moving(p: &Progress) -> String {
    format!(
        "received {}/{} nodes, {}; sent {}/{} nodes, {}",
        HumanCount(p.nodes_received),
        HumanCount(p.nodes_to_receive),
        BinaryBytes(p.payload_bytes_received + p.file_bytes_received),
        HumanCount(p.nodes_sent),
        HumanCount(p.nodes_to_send),
        BinaryBytes(p.payload_bytes_sent + p.file_bytes_sent),
    )
}

/// Ctrl-C gives the stop signal: a live session ends cleanly, another is cancelled
/// (what it stored stays). A second Ctrl-C ends the process at once.
fn stop_on_interrupt(stop: &Stop, live: bool) {
    let stop = stop.clone();
    let installed = ctrlc::set_handler(move || {
        if stop.is_stopped() {
            eprintln!("strata: interrupted again: stopping now (what was stored stays)");
            std::process::exit(1);
        }
        stop.stop();
        if !live {
            eprintln!("strata: interrupted: stopping (Ctrl-C again stops at once)");
        }
    });
    if installed.is_err() {
        warning("cannot catch Ctrl-C here; Ctrl-C ends the process without a summary");
    }
}

/// Sync with another repository both ways: send what it lacks, fetch what this one lacks.
///
/// TARGET is tcp://HOST:PORT (a `strata serve --tcp`), ssh://[USER@]HOST[:PORT]/PATH
/// (runs `strata serve --stdio` there through ssh, or through the command in
/// STRATA_SSH_COMMAND), a repository folder, or a sync file (applied, then written again
/// with everything this repository holds: the file carried between offline sites). The
/// summary says what moved, the new heads, and which rows are now forked, with the command
/// that merges them.
///
/// Example: `strata sync tcp://192.168.1.20:7070`, `strata sync ssh://field@base/data/survey`,
/// `strata sync ../tablet`, `strata sync /media/usb/survey.sync`
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Where to sync with (see above).
    pub target: String,

    #[command(flatten)]
    pub options: SyncOptions,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// Fetch what another repository has that this one lacks; send nothing.
///
/// TARGET as for `sync`; a sync file is applied and left as it is.
///
/// Example: `strata pull tcp://192.168.1.20:7070 --rows-only`, `strata pull ../tablet`
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Where to pull from.
    pub target: String,

    #[command(flatten)]
    pub options: SyncOptions,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// Send another repository what it lacks; fetch nothing.
///
/// TARGET as for `sync`; a sync file is written again with everything this repository
/// holds (`strata bundle create` writes a new one).
///
/// Example: `strata push tcp://192.168.1.20:7070`, `strata push ssh://base/data/survey`
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Where to push to.
    pub target: String,

    #[command(flatten)]
    pub options: SyncOptions,

    #[command(flatten)]
    pub repo: WriteRepo,
}

/// Make a new repository at PATH holding everything TARGET holds.
///
/// The new repository is a device of its own (its own log, its own device key) in the
/// project of TARGET: its writes sync back to the one it was cloned from as concurrent
/// work. Cloning over tcp:// or ssh://, or from a sealed sync file, needs the project key
/// (--key, as `strata project invite` prints it on a member device); a clone of a local
/// folder takes that folder's project key. A clone that fails leaves nothing behind.
///
/// Example: `strata clone tcp://192.168.1.20:7070 survey --key 3f2a…` (64 hex digits),
/// `strata clone ../office tablet`, `strata clone /media/usb/survey.sync survey --key 3f2a…`
#[derive(Debug, clap::Args)]
pub struct CloneArgs {
    /// Where to clone from (as for `sync`).
    pub target: String,

    /// The folder of the new repository (created; must be empty if it exists).
    pub path: PathBuf,

    /// The project key (64 hex digits, from `strata project invite` on a member device).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    #[command(flatten)]
    pub options: SyncOptions,
}

impl Run for SyncArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        exchange(&self.target, Mode::Sync, &self.options, &self.repo, top)
    }
}

impl Run for PullArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        exchange(&self.target, Mode::Pull, &self.options, &self.repo, top)
    }
}

impl Run for PushArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        exchange(&self.target, Mode::Push, &self.options, &self.repo, top)
    }
}

/// Runs one exchange with `target` and prints its summary.
fn exchange(
    target: &str,
    mode: Mode,
    options: &SyncOptions,
    repo: &WriteRepo,
    top: &RepoPath,
) -> CliResult {
    let parsed = Target::parse(target)?;
    let wait = Duration::from_secs(repo.wait);
    let mine = repo.path.storage(top)?;
    if let Target::Local(storage) = &parsed
        && mine.canonicalize().ok() == storage.canonicalize().ok()
    {
        return Err(CliError::Input(format!(
            "{target} is this repository: sync with another one"
        )));
    }
    let security = options.plain.security(&mine)?;
    let repo = repo.open(top)?;
    let summary = run_exchange(target, &parsed, mode, options, security, &repo, wait)?;
    let mut out = Output::new(options.json);
    out.show(&summary)?;
    out.finish()
}

/// Runs the exchange and measures what it changed.
fn run_exchange(
    target: &str,
    parsed: &Target,
    mode: Mode,
    options: &SyncOptions,
    security: Security,
    repo: &Repository,
    wait: Duration,
) -> CliResult<Summary> {
    let (exchange, bar) = options.exchange(mode, security)?;
    summarize(target, mode, repo, || {
        let result = parsed.run(&exchange, repo, wait);
        bar.finish_and_clear();
        result
    })
}

/// Runs `exchange` (a session, or applying a file) on `repo` and says what it changed:
/// what moved, the new heads, and the rows now forked.
pub fn summarize(
    target: &str,
    mode: Mode,
    repo: &Repository,
    exchange: impl FnOnce() -> CliResult<SyncReport>,
) -> CliResult<Summary> {
    let heads_before = repo.heads()?;
    let forked_before = forked_rows(repo)?;
    let started = Instant::now();
    let report = exchange()?;
    let elapsed = started.elapsed();
    let heads = repo.heads()?;
    let forked = forked_rows(repo)?;
    let new_forks = forked
        .iter()
        .filter(|row| {
            !forked_before
                .iter()
                .any(|old| old.dataset == row.dataset && old.key == row.key)
        })
        .count();
    Ok(Summary {
        target: target.to_string(),
        mode,
        report,
        elapsed,
        new_heads: heads
            .iter()
            .filter(|h| !heads_before.contains(h))
            .cloned()
            .collect(),
        heads: heads.len(),
        forked,
        new_forks,
        cloned_into: None,
    })
}

/// The rows a merge of every head must settle: changed differently on several heads.
fn forked_rows(repo: &Repository) -> CliResult<Vec<ConflictRow>> {
    if repo.heads()?.len() < 2 {
        return Ok(Vec::new());
    }
    Ok(repo.merge(&[]).dry_run()?.conflicts)
}

impl Run for CloneArgs {
    fn run(self, _: &RepoPath) -> CliResult {
        let parsed = Target::parse(&self.target)?;
        if Repository::storage_of(&self.path).is_some() {
            return Err(CliError::Input(format!(
                "a repository already exists at {}",
                self.path.display()
            )));
        }
        let existed = self.path.exists();
        if existed {
            let empty = std::fs::read_dir(&self.path)
                .map_err(CliError::io(format!("reading {}", self.path.display())))?
                .next()
                .is_none();
            if !empty {
                return Err(CliError::Input(format!(
                    "{} exists and is not empty: clone into a new or empty folder",
                    self.path.display()
                )));
            }
        }
        let result = clone_into(&self, &parsed);
        if result.is_err() {
            // Nothing half-made stays: the folder as it was, or no folder.
            let _ = match existed {
                true => std::fs::remove_dir_all(self.path.join(strata::STORAGE_DIR)),
                false => std::fs::remove_dir_all(&self.path),
            };
        }
        let summary = result?;
        let mut out = Output::new(self.options.json);
        out.show(&summary)?;
        out.finish()
    }
}

/// Makes the clone: its keys first (the project's, a new device key), then the repository,
/// then the pull.
fn clone_into(args: &CloneArgs, parsed: &Target) -> CliResult<Summary> {
    let storage = args.path.join(strata::STORAGE_DIR);
    let source = match parsed {
        Target::Local(source) => Identity::load(source)?,
        _ => None,
    };
    match (&args.key, source) {
        (Some(key), _) => drop(Identity::join(&storage, ProjectKey::from_hex(key)?)?),
        (None, Some(source)) => drop(Identity::join(&storage, source.project_key().clone())?),
        (None, None) if args.options.plain.plain => drop(Identity::create(&storage)?),
        (None, None) => {
            return Err(CliError::Input(format!(
                "cloning {} needs the project key: run `strata project invite` on a device of the project and pass --key KEY (or --plain)",
                args.target
            )));
        }
    }
    let security = args.options.plain.security(&storage)?;
    let repo = write_options().init(&args.path)?;
    let mut summary = run_exchange(
        &args.target,
        parsed,
        Mode::Pull,
        &args.options,
        security,
        &repo,
        Duration::ZERO,
    )?;
    summary.cloned_into = Some(args.path.clone());
    Ok(summary)
}

/// What an exchange did, for the summary.
pub struct Summary {
    pub target: String,
    pub mode: Mode,
    pub report: SyncReport,
    pub elapsed: Duration,
    /// Heads that were not heads before.
    pub new_heads: Vec<Version>,
    /// How many heads there are now.
    pub heads: usize,
    /// Rows forked now (changed differently on several heads).
    pub forked: Vec<ConflictRow>,
    /// How many of them were not forked before.
    pub new_forks: usize,
    /// For a clone: the new repository's folder.
    pub cloned_into: Option<PathBuf>,
}

impl Summary {
    fn verb(&self) -> &'static str {
        match (self.cloned_into.is_some(), self.mode) {
            (true, _) => "cloned",
            (false, Mode::Sync) => "synced with",
            (false, Mode::Pull) => "pulled from",
            (false, Mode::Push) => "pushed to",
        }
    }

    /// The command that settles the forked rows, if any are.
    fn merge_command(&self) -> Option<String> {
        let repo = match &self.cloned_into {
            Some(path) => format!(
                " --repo {}",
                crate::output::shell_word(&path.display().to_string())
            ),
            None => String::new(),
        };
        (!self.forked.is_empty()).then(|| format!("strata merge{repo} --dry-run"))
    }

    fn bytes(&self) -> (u64, u64) {
        let p = &self.report.progress;
        (
            p.payload_bytes_received + p.file_bytes_received,
            p.payload_bytes_sent + p.file_bytes_sent,
        )
    }
}

impl Render for Summary {
    fn json(&self) -> Value {
        let p = &self.report.progress;
        let (received, sent) = self.bytes();
        let secs = self.elapsed.as_secs_f64();
        json!({
            "target": self.target,
            "direction": match self.mode {
                Mode::Sync => "sync",
                Mode::Pull => "pull",
                Mode::Push => "push",
            },
            "cloned_into": self.cloned_into,
            "peer": format!("{:?}", self.report.peer).to_lowercase(),
            "live": self.report.live,
            "received": {
                "nodes": p.nodes_received,
                "payloads": p.payloads_received,
                "payload_bytes": p.payload_bytes_received,
                "files": p.files_received,
                "file_bytes": p.file_bytes_received,
            },
            "sent": {
                "nodes": p.nodes_sent,
                "payloads": p.payloads_sent,
                "payload_bytes": p.payload_bytes_sent,
                "files": p.files_sent,
                "file_bytes": p.file_bytes_sent,
            },
            "seconds": secs,
            "bytes_per_second": if secs > 0.0 { ((received + sent) as f64 / secs).round() } else { 0.0 },
            "heads": self.heads,
            "new_heads": self.new_heads,
            "new_forks": self.new_forks,
            "forked": self.forked.iter().map(ConflictJson::of).collect::<Vec<_>>(),
            "merge_command": self.merge_command(),
        })
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let p = &self.report.progress;
        let (received, sent) = self.bytes();
        let secs = self.elapsed.as_secs_f64();
        let rate = match secs > 0.0 {
            true => format!(
                ", {}/s",
                BinaryBytes(((received + sent) as f64 / secs) as u64)
            ),
            false => String::new(),
        };
        match &self.cloned_into {
            Some(path) => writeln!(
                out,
                "cloned {} into {} in {secs:.2} s{rate}",
                self.target,
                path.display()
            )?,
            None => writeln!(out, "{} {} in {secs:.2} s{rate}", self.verb(), self.target)?,
        }
        writeln!(
            out,
            "  received {}, {} of rows, {} ({})",
            plural(p.nodes_received, "node"),
            BinaryBytes(p.payload_bytes_received),
            plural(p.files_received, "file"),
            BinaryBytes(p.file_bytes_received)
        )?;
        writeln!(
            out,
            "  sent     {}, {} of rows, {} ({})",
            plural(p.nodes_sent, "node"),
            BinaryBytes(p.payload_bytes_sent),
            plural(p.files_sent, "file"),
            BinaryBytes(p.file_bytes_sent)
        )?;
        writeln!(
            out,
            "  {} new, {} now; {} new",
            plural(self.new_heads.len() as u64, "head"),
            self.heads,
            plural(self.new_forks as u64, "forked row"),
        )?;
        if self.forked.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "{} now forked (changed on more than one device):",
            plural(self.forked.len() as u64, "row is").replace("rows is", "rows are")
        )?;
        for row in self.forked.iter().take(ROWS_SHOWN) {
            writeln!(
                out,
                "  {} {}  ({} versions)",
                TextOrHex(&row.dataset),
                TextOrHex(&row.key),
                row.versions.len()
            )?;
        }
        if self.forked.len() > ROWS_SHOWN {
            writeln!(
                out,
                "  … and {} more (--json lists every row)",
                self.forked.len() - ROWS_SHOWN
            )?;
        }
        writeln!(
            out,
            "merge them: `{}` shows the merge; then `strata merge` with --ours, --theirs, --newest or --resolve FILE",
            self.merge_command().unwrap_or_default()
        )
    }
}

impl Run for ServeArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let security = self.plain.security(&self.repo.path.storage(top)?)?;
        let repo = self.repo.open(top)?;
        match &self.tcp {
            Some(address) => {
                let limits = Limits {
                    max_sessions: self.max_peers as usize,
                    total_timeout: Some(self.session_limit).filter(|t| !t.is_zero()),
                    ..Limits::default()
                };
                serve_tcp(&repo, address, &security, limits)
            }
            None => {
                security.session(Session::new()).serve_stdio(&repo)?;
                Ok(())
            }
        }
    }
}

/// Serves `repo` on `address` until Ctrl-C.
fn serve_tcp(repo: &Repository, address: &str, security: &Security, limits: Limits) -> CliResult {
    let stop = Stop::new();
    let session = security.session(Session::new().stop_signal(stop.clone()).limits(limits));
    let on_session: OnTcpSession =
        Arc::new(|peer: SocketAddr, result: &strata::Result<SyncReport>| {
            eprintln!("strata: serve: {}", session_line(peer, result));
        });
    let server = TcpServer::start(address, session, repo, on_session)
        .map_err(|e| CliError::Input(format!("cannot serve on {address}: {e}")))?;
    stop_on_interrupt(&stop, true);
    eprintln!(
        "strata: serving {} on tcp://{} (Ctrl-C stops)",
        repo.path()
            .map_or_else(String::new, |p| p.display().to_string()),
        server.local_addr()
    );
    while !stop.is_stopped() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopping = Instant::now();
    while server.active_sessions() > 0 && stopping.elapsed() < DRAIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    eprintln!("strata: serve: stopped");
    Ok(())
}

/// One session's log line: the peer and what moved, or why it failed.
fn session_line(peer: SocketAddr, result: &strata::Result<SyncReport>) -> String {
    match result {
        Ok(report) => {
            let p = &report.progress;
            format!(
                "{peer}: received {} ({}), sent {} ({})",
                plural(p.nodes_received, "node"),
                BinaryBytes(p.payload_bytes_received + p.file_bytes_received),
                plural(p.nodes_sent, "node"),
                BinaryBytes(p.payload_bytes_sent + p.file_bytes_sent),
            )
        }
        Err(e) => format!("{peer}: failed: {e}"),
    }
}
