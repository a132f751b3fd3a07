//! SIGKILL during replication: a child process (this test binary started again) runs one
//! side of a sync over TCP (the client, or the server), a clone into a new repository, a
//! stdio server, or a sync file apply, and kills itself with SIGKILL after a random delay
//! (seeded). After each kill both repositories open and pass fsck, every row written
//! before the sync reads back on its own side, and the next sync completes and leaves both
//! with the same rows at every version (compared row by row).
//!
//! No test harness (`harness = false`): the stdio server's standard output is the protocol
//! stream. `STRATA_SYNC_KILLS` sets the number of kill points (default 50),
//! `STRATA_SYNC_KILL_SEED` the seed (default 12; the seed is printed), and
//! `STRATA_SYNC_KILL_ROLES` which roles take turns (comma-separated; default all five).

mod replicate_support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replicate_support::every_version;
use strata::{Mode, Repository, Session, SyncFile, TcpServer, sync_in_memory};

/// Set in a child: what it does (`client PORT`, `serve`, `clone PORT`, `stdio`, `apply
/// FILE`), on the repository at `REPO`, killing itself after `AFTER_US` microseconds.
const ROLE: &str = "STRATA_KILL_ROLE";
const REPO: &str = "STRATA_KILL_REPO";
const AFTER_US: &str = "STRATA_KILL_AFTER_US";

/// Kills this process with SIGKILL after `delay`, from another thread.
fn die_after(delay: Duration) {
    thread::spawn(move || {
        thread::sleep(delay);
        let _ = Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // `kill` is there on every machine the tests run on; if not, die anyway.
        std::process::abort();
    });
}

fn child_main(role: &str) -> ExitCode {
    let after: u64 = std::env::var(AFTER_US)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    die_after(Duration::from_micros(after));
    let path = PathBuf::from(std::env::var(REPO).expect("a repository"));
    let result = match role.split_once(' ').unwrap_or((role, "")) {
        ("client", port) => Repository::open(&path).and_then(|repo| {
            Session::new()
                .connect_tcp(("127.0.0.1", port.parse::<u16>().expect("port")), &repo)
                .map(drop)
        }),
        ("clone", port) => Repository::init(&path).and_then(|repo| {
            Session::new()
                .mode(Mode::Pull)
                .connect_tcp(("127.0.0.1", port.parse::<u16>().expect("port")), &repo)
                .map(drop)
        }),
        ("serve", _) => Repository::open(&path).and_then(|repo| {
            let server = TcpServer::start(
                "127.0.0.1:0",
                Session::new(),
                &repo,
                Arc::new(|_, _| println!("served")),
            )?;
            println!("port {}", server.local_addr().port());
            // Serves until killed.
            loop {
                thread::sleep(Duration::from_secs(1));
            }
        }),
        ("stdio", _) => {
            Repository::open(&path).and_then(|repo| Session::new().serve_stdio(&repo).map(drop))
        }
        ("apply", file) => Repository::open(&path).and_then(|repo| {
            let file = std::fs::File::open(file).expect("the sync file");
            SyncFile::new().apply(&repo, file).map(drop)
        }),
        _ => panic!("unknown role {role}"),
    };
    match result {
        Ok(()) => {
            eprintln!("done");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        return child_main(&role);
    }
    let kills: usize = std::env::var("STRATA_SYNC_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("STRATA_SYNC_KILL_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let started = Instant::now();
    let counts = run(kills, seed);
    println!(
        "sync kills: {} kill points (seed {seed}): {} mid-operation, {} after it finished; \
         every time both repositories opened, fsck was clean and the next sync converged \
         ({:.1} s)",
        kills,
        counts.0,
        counts.1,
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed");
    ExitCode::SUCCESS
}

fn this_binary(role: &str, repo: &Path, after: Duration) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test's binary"));
    command
        .env(ROLE, role)
        .env(REPO, repo)
        .env(AFTER_US, after.as_micros().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A server in this process for a child to sync with.
fn serve(repo: &Repository) -> TcpServer {
    TcpServer::start("127.0.0.1:0", Session::new(), repo, Arc::new(|_, _| {})).expect("server")
}

/// Stops a server once the session with a killed child has ended (its thread still holds
/// the repository until then).
fn settle(server: TcpServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.active_sessions() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    server.stop();
}

/// Waits for a child; returns whether it finished its work before it was killed.
fn finished(child: Child) -> bool {
    let output = child.wait_with_output().expect("the child ends");
    String::from_utf8_lossy(&output.stderr).contains("done")
}

/// Every row written on each side so far: (dataset, key, value), checked after each kill.
#[derive(Default)]
struct Written {
    a: Vec<(String, String, String)>,
    b: Vec<(String, String, String)>,
}

fn write_round(
    path: &Path,
    side: &str,
    round: usize,
    rng: &mut StdRng,
) -> Vec<(String, String, String)> {
    let repo = Repository::open(path).expect("open to write");
    let mut rows = Vec::new();
    for commit in 0..2 {
        let count = rng.random_range(5..40);
        let mut batch = repo.transaction();
        for i in 0..count {
            let (dataset, key) = (format!("{side}-data"), format!("r{round}-{commit}-{i}"));
            let value = format!(
                "{{\"round\":{round},\"i\":{i},\"pad\":\"{}\"}}",
                "x".repeat(i % 50)
            );
            batch.put(&dataset, &key, &value);
            rows.push((dataset, key, value));
        }
        batch.commit().expect("commit");
    }
    let file: Vec<u8> = (0..rng.random_range(5_000..60_000))
        .map(|i| (i % 251) as u8)
        .collect();
    repo.put_file(format!("{side}-files"), format!("f{round}"), &mut &file[..])
        .expect("put_file");
    rows
}

fn check_rows(repo: &Repository, rows: &[(String, String, String)]) {
    for (dataset, key, value) in rows {
        let row = repo
            .get(dataset, key)
            .expect("get")
            .unwrap_or_else(|| panic!("row {dataset}/{key} is gone"));
        assert_eq!(row.value, value.as_bytes(), "{dataset}/{key}");
    }
}

fn open_checked(path: &Path, what: &str) -> Repository {
    let repo = Repository::open(path).unwrap_or_else(|e| panic!("{what} does not open: {e}"));
    let check = repo.fsck(&mut |_, _| {}).expect("fsck");
    assert!(check.is_ok(), "{what}: {:?}", check.problems);
    repo
}

/// Opens both, checks them, syncs them to completion, checks every row written on either
/// side on both, and (with `whole`) compares every version row by row.
fn converge(a: &Path, b: &Path, written: &Written, point: &str, whole: bool) {
    let ra = open_checked(a, "a");
    let rb = open_checked(b, "b");
    check_rows(&ra, &written.a);
    check_rows(&rb, &written.b);
    sync_in_memory(&ra, &rb).unwrap_or_else(|e| panic!("{point}: the next sync fails: {e}"));
    assert_eq!(
        ra.heads().expect("heads"),
        rb.heads().expect("heads"),
        "{point}"
    );
    if whole {
        assert_eq!(every_version(&ra), every_version(&rb), "{point}");
    }
    check_rows(&rb, &written.a);
    check_rows(&ra, &written.b);
}

/// Returns how many kills came mid-operation, and how many after it finished.
fn run(kills: usize, seed: u64) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    drop(Repository::init(&a).expect("init a"));
    drop(Repository::init(&b).expect("init b"));
    let mut written = Written::default();
    let (mut mid, mut after) = (0, 0);
    let chosen = std::env::var("STRATA_SYNC_KILL_ROLES").unwrap_or_default();
    let roles: Vec<&str> = ["client", "serve", "clone", "stdio", "apply"]
        .into_iter()
        .filter(|role| chosen.is_empty() || chosen.split(',').any(|c| c == *role))
        .collect();
    for point in 0..kills {
        written.a.extend(write_round(&a, "a", point, &mut rng));
        written.b.extend(write_round(&b, "b", point, &mut rng));
        let delay = Duration::from_micros(rng.random_range(0..150_000));
        let role = roles[point % roles.len()];
        let name = format!("point {point}: kill the {role} after {delay:?}");
        let done = match role {
            // The child syncs b with a server (this process) holding a.
            "client" => {
                let repo = Repository::open(&a).expect("open a");
                let server = serve(&repo);
                let role = format!("client {}", server.local_addr().port());
                let done = finished(this_binary(&role, &b, delay).spawn().expect("child"));
                settle(server);
                done
            }
            // The child serves a over TCP; this process syncs b with it.
            "serve" => {
                let mut child = this_binary("serve", &a, delay)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("child");
                let mut port = String::new();
                let stdout = child.stdout.take().expect("stdout");
                let mut lines = BufReader::new(stdout);
                let listening = lines.read_line(&mut port).is_ok_and(|n| n > 0);
                let mut done = false;
                if let Some(port) = port.strip_prefix("port ").filter(|_| listening) {
                    let repo = Repository::open(&b).expect("open b");
                    let port: u16 = port.trim().parse().expect("port");
                    done = TcpStream::connect(("127.0.0.1", port))
                        .map_err(|e| strata::Error::Replication(e.to_string()))
                        .and_then(|stream| Session::new().run_tcp(stream, &repo))
                        .is_ok();
                }
                let _ = child.wait();
                done
            }
            // The child clones a (served by this process) into a new repository c.
            "clone" => {
                let c = dir.path().join(format!("c{point}"));
                let repo = Repository::open(&a).expect("open a");
                let server = serve(&repo);
                let role = format!("clone {}", server.local_addr().port());
                let done = finished(this_binary(&role, &c, delay).spawn().expect("child"));
                settle(server);
                drop(repo);
                // A clone cut short is a repository that opens (or none at all), and the
                // next sync completes it.
                let clone = match Repository::storage_of(&c) {
                    Some(_) => open_checked(&c, "the clone"),
                    None => Repository::init(&c).expect("init the clone again"),
                };
                let source = open_checked(&a, "a");
                // (A wanted-blob record cut short by the kill used to fail every later
                // sync of the clone: such records are now written whole or not at all.)
                sync_in_memory(&source, &clone)
                    .unwrap_or_else(|e| panic!("{name}: the clone does not complete: {e}"));
                assert_eq!(
                    source.heads().expect("heads"),
                    clone.heads().expect("heads")
                );
                check_rows(&clone, &written.a);
                drop(clone);
                let _ = std::fs::remove_dir_all(&c);
                done
            }
            // This process syncs b with a child serving a on its standard streams.
            "stdio" => {
                let repo = Repository::open(&b).expect("open b");
                let mut command = this_binary("stdio", &a, delay);
                command.stderr(Stdio::null());
                Session::new().run_command(&mut command, &repo).is_ok()
            }
            // The child applies to b a sync file of everything a has.
            _ => {
                let file = dir.path().join("a.sync");
                {
                    // What b lacks, as a file is written for a recipient.
                    let recipient = Repository::open(&b).expect("open b");
                    let since = recipient.graph().logs().expect("logs");
                    drop(recipient);
                    let repo = Repository::open(&a).expect("open a");
                    let out = std::fs::File::create(&file).expect("create");
                    SyncFile::new()
                        .since(since)
                        .write(&repo, out)
                        .expect("write the file");
                }
                let role = format!("apply {}", file.display());
                finished(this_binary(&role, &b, delay).spawn().expect("child"))
            }
        };
        if done {
            after += 1;
        } else {
            mid += 1;
        }
        // Every version compared every tenth point and at the end (it reads all history).
        converge(
            &a,
            &b,
            &written,
            &name,
            point % 10 == 9 || point + 1 == kills,
        );
    }
    (mid, after)
}
