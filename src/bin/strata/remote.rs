//! Where `sync`, `pull`, `push` and `clone` go: a TARGET on the command line, and the one
//! place that turns it into a session run against this repository.
//!
//! A TARGET is `tcp://host:port` (a `strata serve --tcp`), `ssh://[user@]host[:port]/path`
//! (runs `strata serve --stdio --repo path` on the host through `ssh`, or through the
//! command in `STRATA_SSH_COMMAND`, as git's `GIT_SSH_COMMAND`), a folder holding a
//! repository (synced in this process), or an existing sync file (applied; `sync` and
//! `push` then write it again with everything this repository holds). Every transport is
//! set up here and nowhere else.
//!
//! Secure by default: sessions run over Noise with the project key and sync files are
//! sealed with it (`docs/security.md`); `--plain` asks for the plain hyperlog wire and the
//! plain sync file format, with a warning. A local folder is synced in this process
//! through the same secure session, each side with its own project key, so a repository of
//! another project is refused as a network peer would be; either way every received node's
//! signature is checked by the graph.

use std::fs::File;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::sync::Arc;

use strata::{
    Identity, Mode, Payload, Peer, Progress, ProjectKey, Repository, Session, Stop, SyncFile,
    SyncFileReport, SyncReport,
};

use crate::error::{CliError, CliResult};
use crate::open::open_for_writing;
use crate::output::{shell_word, warning};

/// The environment variable holding the command that replaces `ssh` (run by `sh`, with
/// the ssh arguments after it), as git's `GIT_SSH_COMMAND`.
pub const SSH_ENV: &str = "STRATA_SSH_COMMAND";

/// How long connecting to a TCP peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Told the counts of a session as they change.
pub type OnProgress = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The `--plain` option of the commands that sync.
#[derive(Debug, Clone, clap::Args)]
pub struct PlainOption {
    /// Plain: no authentication and no encryption (the hyperlog wire, or a plain sync
    /// file): anyone who can reach the session or read the file can read and write the
    /// repository. Without it, sessions and sync files are secured with the project key.
    #[arg(long)]
    pub plain: bool,
}

impl PlainOption {
    /// The security of the repository in `storage`: its project key, or plain (with the
    /// warning) when asked.
    pub fn security(&self, storage: &Path) -> CliResult<Security> {
        if self.plain {
            warning(
                "plain session: unauthenticated and unencrypted; anyone who can reach it can read and write",
            );
            return Ok(Security::Plain);
        }
        Security::of(storage)
    }
}

/// How sessions and sync files are protected.
#[derive(Clone)]
pub enum Security {
    /// Noise sessions and sealed sync files with this project key.
    Secure(ProjectKey),
    /// The plain hyperlog wire and plain sync files.
    Plain,
}

impl Security {
    /// The project key of the repository in `storage`, or an error saying how to get one.
    fn of(storage: &Path) -> CliResult<Security> {
        match Identity::load(storage)? {
            Some(identity) => Ok(Security::Secure(identity.project_key().clone())),
            None => Err(CliError::Input(format!(
                "{} has no keys: run `strata project init` there, or pass --plain",
                storage.display()
            ))),
        }
    }

    /// `session`, secured with the project key unless plain.
    pub fn session(&self, session: Session) -> Session {
        match self {
            Security::Secure(key) => session.secure(key),
            Security::Plain => session,
        }
    }

    /// Writes the sync file `file` of `repo` to `out`, sealed unless plain.
    fn write(
        &self,
        file: &SyncFile,
        repo: &Repository,
        out: impl Write,
    ) -> CliResult<SyncFileReport> {
        Ok(match self {
            Security::Secure(key) => file.write_sealed(repo, key, out)?,
            Security::Plain => file.write(repo, out)?,
        })
    }

    /// Checks the sync file at `path` whole, then applies it to `repo`: a sealed file
    /// unless plain. An altered file, or one sealed with another key, stores nothing.
    pub fn apply(&self, repo: &Repository, path: &Path) -> CliResult<SyncReport> {
        let file = File::open(path).map_err(CliError::io(format!("opening {}", path.display())))?;
        let file = BufReader::new(file);
        Ok(match self {
            Security::Secure(key) => SyncFile::new().apply_sealed(repo, key, file)?,
            Security::Plain => SyncFile::new().apply(repo, file)?,
        })
    }
}

/// What one exchange does: which way, what payload this side fetches, whether it stays
/// live, and who hears of its progress.
#[derive(Clone)]
pub struct Exchange {
    pub mode: Mode,
    pub payload: Payload,
    pub live: bool,
    pub stop: Stop,
    pub progress: Option<OnProgress>,
    pub security: Security,
}

impl Exchange {
    /// The library session for it.
    fn session(&self) -> Session {
        let mut session = Session::new()
            .mode(self.mode)
            .payload(self.payload.clone())
            .live(self.live)
            .stop_signal(self.stop.clone());
        if let Some(progress) = &self.progress {
            let progress = progress.clone();
            session = session.on_progress(move |p| progress(p));
        }
        self.security.session(session)
    }
}

/// A parsed TARGET.
#[derive(Debug, Clone)]
pub enum Target {
    /// `tcp://host:port`: the `host:port` part.
    Tcp(String),
    /// `ssh://[user@]host[:port]/path`.
    Ssh {
        host: String,
        port: Option<u16>,
        path: String,
    },
    /// A folder holding a repository: its storage folder.
    Local(PathBuf),
    /// An existing sync file.
    File(PathBuf),
}

impl Target {
    /// Reads a TARGET as given on the command line.
    pub fn parse(text: &str) -> CliResult<Target> {
        if let Some(rest) = text.strip_prefix("tcp://") {
            let address = rest.strip_suffix('/').unwrap_or(rest);
            let port_ok = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(CliError::Input(format!(
                    "bad target {text:?}: write tcp://HOST:PORT, e.g. tcp://192.168.1.20:7070"
                )));
            }
            return Ok(Target::Tcp(address.to_string()));
        }
        if let Some(rest) = text.strip_prefix("ssh://") {
            return parse_ssh(text, rest);
        }
        if text.contains("://") {
            return Err(CliError::Input(format!(
                "bad target {text:?}: a target is tcp://HOST:PORT, ssh://[USER@]HOST[:PORT]/PATH, a repository folder or a sync file"
            )));
        }
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Target::File(path.to_path_buf()));
        }
        match Repository::storage_of(path) {
            Some(storage) => Ok(Target::Local(storage)),
            None => Err(CliError::NotFound(format!(
                "no strata repository or sync file at {text} (a remote target is tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]/PATH)"
            ))),
        }
    }

    /// Runs `exchange` on `repo` against this target, and returns this side's report.
    /// `wait` bounds how long a local target repository may be waited for when it is
    /// written.
    pub fn run(
        &self,
        exchange: &Exchange,
        repo: &Repository,
        wait: Duration,
    ) -> CliResult<SyncReport> {
        let session = exchange.session();
        match self {
            Target::Tcp(address) => {
                let stream = connect(address)?;
                Ok(session.run_tcp(stream, repo)?)
            }
            Target::Ssh { host, port, path } => {
                let plain = matches!(exchange.security, Security::Plain);
                let mut command = ssh_command(host, *port, path, plain);
                Ok(session.run_command(&mut command, repo)?)
            }
            Target::Local(storage) => {
                let other_security = match exchange.security {
                    Security::Plain => Security::Plain,
                    Security::Secure(_) => Security::of(storage)?,
                };
                // The other side only sends when this side pulls: it is read, not written.
                let (peer, other) = match exchange.mode {
                    Mode::Pull => (
                        Repository::options()
                            .read_only(true)
                            .open_storage(storage)?,
                        Session::new().mode(Mode::Push).payload(Payload::GraphOnly),
                    ),
                    _ => (open_for_writing(storage, wait)?, Session::new()),
                };
                let other = other_security.session(other);
                let (mine, _) = session.run_in_memory(repo, &other, &peer)?;
                Ok(mine)
            }
            Target::File(path) => run_file(exchange, repo, path),
        }
    }
}

fn parse_ssh(text: &str, rest: &str) -> CliResult<Target> {
    let bad = |why: &str| {
        CliError::Input(format!(
            "bad target {text:?}: {why} (write ssh://[USER@]HOST[:PORT]/PATH)"
        ))
    };
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| bad("no repository path"))?;
    // `ssh://host/~/data` is `~/data` on the host, as with git; else the path is absolute.
    let path = match path.strip_prefix('~') {
        Some(_) => path.to_string(),
        None => format!("/{path}"),
    };
    if path == "/" {
        return Err(bad("no repository path"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            Some(
                port.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
        ),
        None => (authority, None),
    };
    if host.is_empty() || host.ends_with('@') || host.starts_with('-') {
        return Err(bad("no host"));
    }
    Ok(Target::Ssh {
        host: host.to_string(),
        port,
        path,
    })
}

/// Connects to `address` (`host:port`), trying each address the host resolves to.
fn connect(address: &str) -> CliResult<TcpStream> {
    let addresses = address
        .to_socket_addrs()
        .map_err(CliError::io(format!("cannot resolve {address}")))?;
    let mut last = None;
    for socket in addresses {
        match TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => CliError::Io {
            context: format!(
                "cannot reach tcp://{address} (is `strata serve --tcp` running there?)"
            ),
            source: e,
        },
        None => CliError::Input(format!("{address} resolves to no address")),
    })
}

/// The command that runs `strata serve --stdio` for the repository at `path` on `host`,
/// with `--plain` when this side is plain.
fn ssh_command(host: &str, port: Option<u16>, path: &str, plain: bool) -> Command {
    // `~/x` must reach the remote shell unquoted for it to expand `~`.
    let path = match path.strip_prefix("~/") {
        Some(rest) => format!("~/{}", shell_word(rest)),
        None => shell_word(path),
    };
    let plain = if plain { " --plain" } else { "" };
    let remote = format!("strata serve --stdio{plain} --repo {path}");
    let mut command = match std::env::var(SSH_ENV) {
        Ok(ssh) if !ssh.trim().is_empty() => {
            let mut command = Command::new("sh");
            command.arg("-c").arg(format!("{ssh} \"$@\"")).arg(SSH_ENV);
            command
        }
        _ => Command::new("ssh"),
    };
    if let Some(port) = port {
        command.arg("-p").arg(port.to_string());
    }
    command.arg(host).arg(remote);
    command
}

/// A sync file as the other side: `pull` applies it; `push` writes it again with
/// everything this repository holds; `sync` does both.
fn run_file(exchange: &Exchange, repo: &Repository, path: &Path) -> CliResult<SyncReport> {
    let mode = exchange.mode;
    let mut report = SyncReport {
        progress: Progress::default(),
        peer: Peer::Strata,
        live: false,
    };
    if mode != Mode::Push {
        report = exchange.security.apply(repo, path)?;
    }
    if mode != Mode::Pull {
        let written = write_sync_file(
            &SyncFile::new().payload(exchange.payload.clone()),
            &exchange.security,
            repo,
            path,
        )?;
        let sent = written.progress;
        let progress = &mut report.progress;
        progress.nodes_sent = sent.nodes_sent;
        progress.payloads_sent = sent.payloads_sent;
        progress.payload_bytes_sent = sent.payload_bytes_sent;
        progress.files_sent = sent.files_sent;
        progress.file_bytes_sent = sent.file_bytes_sent;
    }
    Ok(report)
}

/// Writes a sync file at `path` (sealed unless `security` is plain) whole or not at all:
/// into a temporary file beside it, synced, then renamed over it.
pub fn write_sync_file(
    file: &SyncFile,
    security: &Security,
    repo: &Repository,
    path: &Path,
) -> CliResult<strata::SyncFileReport> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let context = || format!("writing {}", path.display());
    let mut temporary = tempfile::Builder::new()
        .prefix(".strata-sync-")
        .tempfile_in(folder)
        .map_err(CliError::io(context()))?;
    let report = security.write(file, repo, temporary.as_file_mut())?;
    temporary
        .as_file()
        .sync_all()
        .map_err(CliError::io(context()))?;
    temporary
        .persist(path)
        .map_err(|e| CliError::io(context())(e.error))?;
    Ok(report)
}
