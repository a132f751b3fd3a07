//! Sync through the binary: `serve`, `sync`, `pull`, `push`, `clone` and `bundle`, with the
//! three-device scenario of the Mapeo Core seed over TCP, over stdio through the
//! overridable ssh command, and by bundle files; interrupted sessions followed by one that
//! completes; bundles applied twice, truncated or altered; and every command's errors.
//! Every session and file is secured with the project key unless `--plain` is given: a
//! repository of another project is refused, and plain sessions still work when asked.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Repo, assert_clean_error, describe, strata};
use serde_json::Value;

const AIRPORTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/airports.csv");

/// A repository with the airports imported in commits of `batch` rows.
fn airports(batch: &str) -> Repo {
    let repo = Repo::new();
    repo.ok(&[
        "import",
        AIRPORTS,
        "--dataset",
        "airports",
        "--key",
        "iata",
        "--batch",
        batch,
    ]);
    repo
}

/// A `strata serve --tcp` on a free loopback port, stopped with Ctrl-C when dropped.
struct Server {
    child: Child,
    url: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(repo: &Repo) -> Server {
        Server::start_with(repo, &[])
    }

    /// With more options (`--plain`).
    fn start_with(repo: &Repo, options: &[&str]) -> Server {
        let mut args = vec!["serve", "--tcp", "127.0.0.1:0"];
        args.extend_from_slice(options);
        let mut child = repo.spawn(&args, Stdio::null());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut first = log.recv_timeout(Duration::from_secs(20)).unwrap();
        if first.contains("warning: plain session") {
            first = log.recv_timeout(Duration::from_secs(20)).unwrap();
        }
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("tcp://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Server { child, url, log }
    }

    /// The next log line (a session's, or the stop line).
    fn line(&self) -> String {
        self.log.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    /// Ctrl-C; returns the exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        signal(&self.child, "-INT");
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn heads(repo: &Repo) -> Vec<String> {
    repo.ndjson(&["heads", "--json"])
        .iter()
        .map(|h| h["version"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn get(repo: &Repo, key: &str) -> String {
    repo.ok(&["get", "airports", key]).trim().to_string()
}

/// The project key of `repo`, as `strata project invite` prints it.
fn project_key(repo: &Repo) -> String {
    repo.ok(&["project", "invite"]).trim().to_string()
}

/// A new repository joined to the project of `repo`.
fn member_of(repo: &Repo) -> Repo {
    let member = Repo::new();
    member.ok(&["project", "join", &project_key(repo)]);
    member
}

/// `strata clone TARGET --key KEY` into a new (empty) folder; the clone and its summary.
fn clone(target: &str, key: &str, env: &[(&str, &str)]) -> (Repo, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = strata();
    command
        .args(["clone", target])
        .arg(dir.path())
        .args(["--key", key, "--json"]);
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        describe(&["clone", target], &output)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    (Repo { dir }, summary)
}

/// The Mapeo three-device scenario, with `target(device)` naming the hub for the others
/// and `sync(device, target)` running one sync: the hub has the data; two devices clone it;
/// all three edit (two of them the same row); both sync with the hub, which then holds a
/// fork; the hub merges; both sync again; all three agree, on every version.
fn three_devices(hub: &Repo, sync: &dyn Fn(&Repo) -> Value, clone_it: &dyn Fn() -> (Repo, Value)) {
    let (b, cloned) = clone_it();
    assert_eq!(cloned["received"]["payloads"], 1, "{cloned}");
    assert_eq!(get(&b, "SFO"), get(hub, "SFO"));
    let (c, _) = clone_it();
    b.put("airports", "SFO", r#"{"name":"San Francisco Intl"}"#);
    c.put("airports", "SFO", r#"{"name":"SFO International"}"#);
    c.put("airports", "JFK", r#"{"name":"Kennedy"}"#);
    let first = sync(&b);
    assert!(first["sent"]["nodes"].as_u64().unwrap() >= 1, "{first}");
    assert_eq!(first["new_forks"], 0);
    let second = sync(&c);
    // c sees b's edit of SFO beside its own: one forked row, and the command to merge it.
    assert_eq!(second["received"]["nodes"], 1, "{second}");
    assert_eq!(second["new_forks"], 1, "{second}");
    assert_eq!(second["forked"][0]["key"], "SFO");
    assert!(
        second["merge_command"]
            .as_str()
            .unwrap()
            .starts_with("strata merge")
    );
    assert_eq!(second["heads"], 2);
    // c merges and syncs; b syncs and gets everything.
    c.ok(&["merge", "--ours", "--message", "keep ours"]);
    sync(&c);
    let last = sync(&b);
    assert_eq!(last["forked"].as_array().unwrap().len(), 0, "{last}");
    for device in [&b, &c] {
        assert_eq!(heads(device), heads(&c));
        assert_eq!(get(device, "SFO"), r#"{"name":"SFO International"}"#);
        assert_eq!(get(device, "JFK"), r#"{"name":"Kennedy"}"#);
        device.ok(&["fsck"]);
    }
    // Every version reads the same on both devices.
    for line in c.ndjson(&["log", "--json"]) {
        let version = line["version"].as_str().unwrap();
        let at = |d: &Repo| d.ok(&["export", "--dataset", "airports", "--at", version]);
        assert_eq!(at(&b), at(&c), "at {version}");
    }
}

#[test]
fn three_devices_over_tcp() {
    let hub = airports("5000");
    let server = Server::start(&hub);
    let url = server.url.clone();
    let sync = |device: &Repo| device.json(&["sync", &url, "--json"]);
    let key = project_key(&hub);
    let clone_it = || clone(&url, &key, &[]);
    three_devices(&hub, &sync, &clone_it);
    // One log line per session: 2 clones and 4 syncs.
    for _ in 0..6 {
        let line = server.line();
        assert!(line.starts_with("strata: serve: 127.0.0.1:"), "{line}");
        assert!(!line.contains("failed"), "{line}");
    }
    assert!(
        server.interrupt().success(),
        "Ctrl-C stops the server cleanly"
    );
    // The hub took every device's work.
    assert_eq!(get(&hub, "JFK"), r#"{"name":"Kennedy"}"#);
    hub.ok(&["fsck"]);
}

/// A stand-in for ssh that records its arguments and runs the remote command here.
fn fake_ssh(dir: &Path) -> (String, PathBuf) {
    let script = dir.join("fake-ssh");
    let args = dir.join("ssh-args");
    std::fs::write(
        &script,
        format!(
            "echo \"$@\" >> '{}'\n[ \"$1\" = -p ] && shift 2\nshift\nexec sh -c \"$1\"\n",
            args.display()
        ),
    )
    .unwrap();
    (format!("sh '{}'", script.display()), args)
}

#[test]
fn three_devices_over_ssh_through_the_ssh_command() {
    let hub = airports("5000");
    let tools = tempfile::tempdir().unwrap();
    let (ssh, args) = fake_ssh(tools.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_strata")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let url = format!("ssh://field@hub:2222{}", hub.path().display());
    let env = [
        ("STRATA_SSH_COMMAND", ssh.as_str()),
        ("PATH", path.as_str()),
    ];
    let sync = |device: &Repo| {
        let mut command = strata();
        command
            .args(["sync", &url, "--json"])
            .current_dir(device.path());
        command.envs(env);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            describe(&["sync", &url], &output)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let key = project_key(&hub);
    let clone_it = || clone(&url, &key, &env);
    three_devices(&hub, &sync, &clone_it);
    let recorded = std::fs::read_to_string(&args).unwrap();
    let first = recorded.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "-p 2222 field@hub strata serve --stdio --repo {}",
            hub.path().display()
        )
    );
    assert_eq!(get(&hub, "JFK"), r#"{"name":"Kennedy"}"#);
    // Plain on this side: the far side is asked for a plain session too, and they talk.
    let stranger = Repo::new();
    let mut command = strata();
    command
        .args(["pull", &url, "--plain"])
        .current_dir(stranger.path())
        .envs(env);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", describe(&["pull"], &output));
    assert_eq!(heads(&stranger), heads(&hub));
    let recorded = std::fs::read_to_string(&args).unwrap();
    assert_eq!(
        recorded.lines().last().unwrap(),
        format!(
            "-p 2222 field@hub strata serve --stdio --plain --repo {}",
            hub.path().display()
        )
    );
}

#[test]
fn three_devices_by_bundle_files() {
    let hub = airports("5000");
    let stick = tempfile::tempdir().unwrap();
    let file = stick.path().join("survey.sync");
    let file = file.to_str().unwrap();
    hub.ok(&["bundle", "create", file]);
    let key = project_key(&hub);
    let clone_it = || clone(file, &key, &[]);
    // Each device syncs with the file on the stick, and the hub does after each.
    let sync = |device: &Repo| {
        let summary = device.json(&["sync", file, "--json"]);
        hub.json(&["sync", file, "--json"]);
        summary
    };
    three_devices(&hub, &sync, &clone_it);
}

#[test]
fn a_bundle_applies_once_and_a_damaged_one_changes_nothing() {
    let a = airports("5000");
    let base = heads(&a)[0].clone();
    a.put("airports", "SFO", r#"{"name":"edited"}"#);
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.sync");
    let newer = dir.path().join("newer.sync");
    a.ok(&["bundle", "create", all.to_str().unwrap()]);
    let written = a.json(&[
        "bundle",
        "create",
        newer.to_str().unwrap(),
        "--since",
        &base,
        "--json",
    ]);
    assert_eq!(
        written["nodes"], 1,
        "--since leaves out what the recipient holds: {written}"
    );

    let b = member_of(&a);
    // The newer file alone does not fit an empty repository: refused, nothing stored.
    let refused = b.fail(&["bundle", "apply", newer.to_str().unwrap()]);
    assert!(refused.contains("apply an earlier file first"), "{refused}");
    assert!(heads(&b).is_empty());
    let first = b.json(&["bundle", "apply", all.to_str().unwrap(), "--json"]);
    assert_eq!(first["received"]["nodes"], 2);
    let again = b.json(&["bundle", "apply", all.to_str().unwrap(), "--json"]);
    assert_eq!(again["received"]["nodes"], 0, "applied twice: {again}");
    assert_eq!(again["new_heads"].as_array().unwrap().len(), 0);
    assert_eq!(heads(&b), heads(&a));

    // A truncated or altered file is refused whole; the repository is unchanged.
    a.put("airports", "ZZZ", r#"{"name":"Kennedy"}"#);
    let good = dir.path().join("good.sync");
    a.ok(&[
        "bundle",
        "create",
        good.to_str().unwrap(),
        "--since",
        &heads(&b)[0],
    ]);
    let bytes = std::fs::read(&good).unwrap();
    let before = heads(&b);
    for (name, damaged) in [
        ("truncated", bytes[..bytes.len() - 7].to_vec()),
        ("altered", {
            let mut altered = bytes.clone();
            let middle = altered.len() / 2;
            altered[middle] ^= 0x20;
            altered
        }),
    ] {
        let path = dir.path().join(format!("{name}.sync"));
        std::fs::write(&path, damaged).unwrap();
        b.fail(&["bundle", "apply", path.to_str().unwrap()]);
        assert_eq!(heads(&b), before, "a {name} file changed the repository");
        assert!(b.fail(&["get", "airports", "ZZZ"]).contains("not found"));
    }
    // Sealed with another project's key: refused, unchanged.
    let stranger = Repo::new();
    let theirs = dir.path().join("theirs.sync");
    stranger.ok(&["bundle", "create", theirs.to_str().unwrap()]);
    let stderr = b.fail(&["bundle", "apply", theirs.to_str().unwrap()]);
    assert!(stderr.contains("does not authenticate"), "{stderr}");
    assert_eq!(heads(&b), before);
    b.ok(&["bundle", "apply", good.to_str().unwrap()]);
    assert_eq!(get(&b, "ZZZ"), r#"{"name":"Kennedy"}"#);
    b.ok(&["fsck"]);
}

/// Starts `strata ARGS` in `repo` and kills it with `signal` after `after`.
fn cut(repo: &Repo, args: &[&str], after: Duration, how: &str) {
    let child = repo.spawn(args, Stdio::null());
    std::thread::sleep(after);
    let _ = Command::new("kill")
        .args([how, &child.id().to_string()])
        .status();
    let _ = child.wait_with_output();
}

#[test]
fn interrupted_syncs_lose_nothing_and_the_next_one_completes() {
    // Many small commits make a session long enough to cut.
    let hub = airports("5");
    for (round, delay) in [5u64, 20, 60].into_iter().enumerate() {
        let device = member_of(&hub);
        // Kill the server mid-session.
        let server = Server::start(&hub);
        let url = server.url.clone();
        let client = device.spawn(&["sync", &url], Stdio::null());
        std::thread::sleep(Duration::from_millis(delay));
        signal(&server.child, "-KILL");
        let _ = client.wait_with_output();
        drop(server);
        device.ok(&["fsck"]);
        // Kill the client mid-session.
        let server = Server::start(&hub);
        let url = server.url.clone();
        cut(
            &device,
            &["sync", &url],
            Duration::from_millis(delay),
            "-KILL",
        );
        device.ok(&["fsck"]);
        // Then a sync completes, and the device holds everything.
        let done = device.json(&["sync", &url, "--json"]);
        assert_eq!(heads(&device), heads(&hub), "round {round}: {done}");
        assert_eq!(
            device.ok(&["export", "--dataset", "airports"]),
            hub.ok(&["export", "--dataset", "airports"])
        );
        device.ok(&["fsck"]);
        drop(server);
    }
    hub.ok(&["fsck"]);
}

#[test]
fn pull_push_and_the_payload_options() {
    let a = airports("5000");
    let b = member_of(&a);
    let a_path = a.path().to_str().unwrap();
    let pulled = b.json(&["pull", a_path, "--graph-only", "--json"]);
    assert_eq!(pulled["received"]["payloads"], 0, "{pulled}");
    let status = b.json(&["status", "--json"]);
    assert_eq!(
        status["pending"], 1,
        "graph only: the commit waits for its rows"
    );
    let more = b.json(&["pull", a_path, "--dataset", "airports", "--json"]);
    assert_eq!(more["received"]["payloads"], 1, "{more}");
    assert_eq!(get(&b, "SFO"), get(&a, "SFO"));
    b.put("airports", "SFO", r#"{"name":"b"}"#);
    // A pull sends nothing; a push fetches nothing.
    let pull = a.json(&["pull", b.path().to_str().unwrap(), "--json"]);
    assert_eq!(
        (
            pull["sent"]["nodes"].clone(),
            pull["received"]["nodes"].clone()
        ),
        (0.into(), 1.into())
    );
    a.put("airports", "JFK", r#"{"name":"a"}"#);
    let push = a.json(&["push", b.path().to_str().unwrap(), "--json"]);
    assert_eq!(
        (
            push["sent"]["nodes"].clone(),
            push["received"]["nodes"].clone()
        ),
        (1.into(), 0.into())
    );
    assert_eq!(heads(&a), heads(&b));
    let text = a.ok(&["sync", b.path().to_str().unwrap()]);
    assert!(text.starts_with("synced with "), "{text}");
    assert!(text.contains("received 0 nodes"), "{text}");
}

#[test]
fn live_sync_forwards_new_work_until_interrupted() {
    let hub = airports("5000");
    let server = Server::start(&hub);
    let url = server.url.clone();
    let key = project_key(&hub);
    let (b, _) = clone(&url, &key, &[]);
    let (c, _) = clone(&url, &key, &[]);
    let live = b.spawn(&["sync", &url, "--live", "--json"], Stdio::null());
    std::thread::sleep(Duration::from_millis(300));
    c.put("airports", "SFO", r#"{"name":"from c"}"#);
    c.ok(&["push", &url]);
    // c's edit reaches b through the hub while b's live session runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let b_storage = b.path().to_path_buf();
    loop {
        let output = strata()
            .args(["get", "airports", "SFO"])
            .current_dir(&b_storage)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&output.stdout).contains("from c") {
            break;
        }
        assert!(Instant::now() < deadline, "the live sync forwarded nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&live, "-INT");
    let output = live.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        describe(&["sync", "--live"], &output)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["live"], true);
    assert!(
        summary["received"]["nodes"].as_u64().unwrap() >= 1,
        "{summary}"
    );
}

#[test]
fn errors_are_one_clear_line_and_change_nothing() {
    let a = airports("5000");
    let before = heads(&a);
    for (args, says) in [
        (vec!["sync", "ftp://host/x"], "bad target"),
        (vec!["sync", "tcp://localhost"], "tcp://HOST:PORT"),
        (vec!["pull", "ssh://host"], "no repository path"),
        (vec!["push", "ssh://host:port/x"], "port is not a number"),
        (
            vec!["sync", "/no/such/place"],
            "no strata repository or sync file",
        ),
        (
            vec!["sync", "tcp://127.0.0.1:1"],
            "cannot reach tcp://127.0.0.1:1",
        ),
        (vec!["sync", "."], "is this repository"),
        (vec!["bundle", "apply", "missing.sync"], "no sync file"),
        (
            vec!["bundle", "create", "/no/such/folder/x.sync"],
            "writing /no/such/folder/x.sync",
        ),
        (
            vec!["bundle", "create", "x.sync", "--since", "ffffffff"],
            "ffffffff",
        ),
        (
            vec!["serve", "--tcp", "256.0.0.1:80"],
            "cannot serve on 256.0.0.1:80",
        ),
        (
            vec!["clone", "/no/such/place", "new"],
            "no strata repository",
        ),
    ] {
        let stderr = a.fail(&args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(heads(&a), before);
    // A failing ssh command is reported as such.
    let output = strata()
        .args(["sync", "ssh://host/data"])
        .current_dir(a.path())
        .env("STRATA_SSH_COMMAND", "false")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = assert_clean_error(&["sync", "ssh"], &output);
    assert!(stderr.contains("failed"), "{stderr}");
    // Not in a repository at all.
    let nowhere = tempfile::tempdir().unwrap();
    let output = strata()
        .args(["sync", a.path().to_str().unwrap()])
        .current_dir(nowhere.path())
        .output()
        .unwrap();
    assert!(assert_clean_error(&["sync"], &output).contains("not in a strata repository"));
    // A clone into a folder that is not empty refuses; one that fails leaves nothing.
    let busy = tempfile::tempdir().unwrap();
    std::fs::write(busy.path().join("notes.txt"), "mine").unwrap();
    let stderr = a.fail(&["clone", ".", busy.path().to_str().unwrap()]);
    assert!(stderr.contains("not empty"), "{stderr}");
    let target = nowhere.path().join("fresh");
    let stderr = a.fail(&["clone", "tcp://127.0.0.1:1", target.to_str().unwrap()]);
    assert!(stderr.contains("strata project invite"), "{stderr}");
    assert!(!target.exists(), "a failed clone left its folder");
    let key = project_key(&a);
    a.fail(&[
        "clone",
        "tcp://127.0.0.1:1",
        target.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(!target.exists(), "a failed clone left its folder");
    // Usage errors: serve needs a transport; payload options exclude each other.
    a.usage_error(&["serve"]);
    a.usage_error(&["sync", ".", "--graph-only", "--rows-only"]);
}

#[test]
fn another_project_is_refused_and_plain_works_when_asked() {
    let hub = airports("5000");
    let stranger = Repo::new();
    stranger.put("airports", "SFO", r#"{"name":"stranger"}"#);
    let before = (heads(&hub), heads(&stranger));
    // From a local folder, and over TCP: refused, neither repository changed.
    let stderr = stranger.fail(&["sync", hub.path().to_str().unwrap()]);
    assert!(stderr.contains("project key"), "{stderr}");
    assert_eq!((heads(&hub), heads(&stranger)), before);
    let server = Server::start(&hub);
    let stderr = stranger.fail(&["sync", &server.url]);
    assert!(stderr.contains("project key"), "{stderr}");
    assert!(server.line().contains("failed"));
    drop(server);

    // Plain on both sides, asked for: any strata peer syncs, with the warning.
    let server = Server::start_with(&hub, &["--plain"]);
    let output = stranger.run(&["sync", &server.url, "--plain", "--json"]);
    assert!(output.status.success(), "{}", describe(&["sync"], &output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unauthenticated"), "{stderr}");
    assert_eq!(heads(&hub).len(), 2, "the stranger's work reached the hub");
    assert_eq!(heads(&hub), heads(&stranger));
    // A plain clone needs no key.
    let dir = tempfile::tempdir().unwrap();
    let clone_path = dir.path().join("plain");
    stranger.ok(&[
        "clone",
        &server.url,
        clone_path.to_str().unwrap(),
        "--plain",
    ]);
}

#[test]
fn a_plain_side_and_a_secure_side_fail_at_once_and_a_busy_server_says_so() {
    let hub = airports("5000");
    let other = Repo::new();
    let server = Server::start_with(&hub, &["--max-peers", "1"]);
    let started = std::time::Instant::now();
    let output = other.run(&["sync", &server.url, "--plain"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");
    assert!(
        stderr.contains("without a handshake") && stderr.contains("--plain"),
        "{stderr}"
    );
    let line = server.line();
    assert!(line.contains("speaks plain hyperlog"), "{line}");

    // One peer that never speaks fills the server; the next is told at once.
    let address = server.url.trim_start_matches("tcp://").to_string();
    let silent = std::net::TcpStream::connect(&address).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stderr = other.fail(&["sync", &server.url]);
    assert!(stderr.contains("as many peers as it takes"), "{stderr}");
    let line = server.line();
    assert!(
        line.contains("refused: already serving 1 peer(s)"),
        "{line}"
    );
    drop(silent);
    assert!(
        server.line().contains("failed"),
        "the silent peer's session ends"
    );
}
