//! A session with a child process over its standard streams, as `ssh host strata serve
//! --stdio` will run: this test binary starts itself again as the far side, which serves a
//! repository on its standard input and output with `Session::serve_stdio`.
//!
//! The file has no test harness (`harness = false` in Cargo.toml): libtest writes to
//! standard output, which is the protocol stream here.

use std::process::{Command, ExitCode};

use strata::{
    FramedSha256, Graph, GraphOptions, Identity, Node, NodeHasher, Payload, ProjectKey, Repository,
    Session,
};

/// Set in the child: the repository folder it serves.
const SERVE: &str = "STRATA_TEST_SERVE_STDIO";
/// Set in the child for a secure session: the project key.
const KEY: &str = "STRATA_TEST_PROJECT_KEY";
/// Set in the child to serve a bare graph (no checks) instead of a repository.
const BARE: &str = "STRATA_TEST_BARE_GRAPH";

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(SERVE) {
        let session = match std::env::var(KEY) {
            Ok(key) => Session::new().secure(&ProjectKey::from_hex(&key).expect("a key")),
            Err(_) => Session::new(),
        };
        let served = if std::env::var(BARE).is_ok() {
            let graph = Graph::open(&path, GraphOptions::default()).expect("the child's graph");
            session.serve_stdio(&graph)
        } else {
            let repo = Repository::open(&path).expect("the child opens its repository");
            session.serve_stdio(&repo)
        };
        return match served {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("stdio peer: {error}");
                ExitCode::FAILURE
            }
        };
    }
    a_child_process_serves_a_repository_on_its_standard_streams();
    a_failing_command_is_an_error();
    secure_sessions_over_standard_streams();
    println!("test result: ok. 3 passed; 0 failed");
    ExitCode::SUCCESS
}

fn child(path: &std::path::Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test's own binary"));
    command.env(SERVE, path);
    command
}

fn a_child_process_serves_a_repository_on_its_standard_streams() {
    let dir = tempfile::tempdir().unwrap();
    let far = Repository::init(dir.path().join("far")).unwrap();
    far.put("sites", "far", "from the child").unwrap();
    far.put_file("photos", "p.jpg", &mut &[3u8; 100_000][..])
        .unwrap();
    // The child opens the repository itself: one process per repository at a time.
    drop(far);
    let near = Repository::in_memory().unwrap();
    near.put("sites", "near", "from the parent").unwrap();

    let report = Session::new()
        .run_command(&mut child(&dir.path().join("far")), &near)
        .unwrap();
    assert_eq!(report.progress.nodes_received, 2);
    assert_eq!(report.progress.nodes_sent, 1);
    assert_eq!(report.progress.files_received, 1);
    assert_eq!(
        near.get("sites", "far").unwrap().unwrap().value,
        b"from the child"
    );

    let far = Repository::open(dir.path().join("far")).unwrap();
    assert_eq!(
        far.get("sites", "near").unwrap().unwrap().value,
        b"from the parent"
    );
    assert_eq!(far.heads().unwrap(), near.heads().unwrap());
    drop(far);

    // A second session over a fresh child finds nothing to do.
    let again = Session::new()
        .payload(Payload::RowsOnly)
        .run_command(&mut child(&dir.path().join("far")), &near)
        .unwrap();
    assert_eq!(again.progress.nodes_received + again.progress.nodes_sent, 0);
    println!("test a_child_process_serves_a_repository_on_its_standard_streams ... ok");
}

fn a_failing_command_is_an_error() {
    let near = Repository::in_memory().unwrap();
    let mut command = Command::new("sh");
    command.args(["-c", "echo 'no such repository' >&2; exit 3"]);
    let error = Session::new().run_command(&mut command, &near).unwrap_err();
    // Exit status 3, or the kill that follows a session the command cut short.
    assert!(
        error.to_string().contains("the command \"sh\" failed"),
        "{error}"
    );
    println!("test a_failing_command_is_an_error ... ok");
}

/// A secure session with a child (as over ssh): members sync; another project's key is
/// refused; a forged entry the child serves is rejected, naming the command and the log.
fn secure_sessions_over_standard_streams() {
    let dir = tempfile::tempdir().unwrap();
    let project = ProjectKey::generate();
    let far_path = dir.path().join("far");
    Identity::join(far_path.join(strata::STORAGE_DIR), project.clone()).unwrap();
    let far = Repository::init(&far_path).unwrap();
    far.put("sites", "far", "signed by the child").unwrap();
    drop(far);
    let member = |project: &ProjectKey| {
        let identity = Identity::in_memory(project.clone());
        Repository::options()
            .identity(identity)
            .in_memory()
            .unwrap()
    };
    let near = member(&project);
    let secure = Session::new().secure(&project);
    let mut command = child(&far_path);
    command.env(KEY, project.to_hex());
    secure.run_command(&mut command, &near).unwrap();
    assert_eq!(
        near.get("sites", "far").unwrap().unwrap().value,
        b"signed by the child"
    );

    let outsider = member(&ProjectKey::generate());
    let mut command = child(&far_path);
    command.env(KEY, project.to_hex());
    let wrong = Session::new().secure(&ProjectKey::generate());
    assert!(wrong.run_command(&mut command, &outsider).is_err());
    assert_eq!(outsider.get("sites", "far").unwrap(), None);

    // A forger's graph on disk: `near`'s log, and one more entry it never signed.
    let forged_path = dir.path().join("forged");
    let forger = Graph::open(&forged_path, GraphOptions::default()).unwrap();
    secure
        .run_in_memory(&near, &Session::new().secure(&project), &forger)
        .unwrap();
    let log = near.graph().log_id();
    let value = b"forged".to_vec();
    forger
        .ingest(vec![Node {
            key: FramedSha256.hash(&[], &value),
            links: Vec::new(),
            value,
            seq: forger.log_head(&log).unwrap() + 1,
            change: 0,
            identity: Some(hex::decode(&log).unwrap()),
            signature: Some(vec![1; 64]),
            log: log.clone(),
        }])
        .unwrap();
    drop(forger);
    let target = member(&project);
    let mut command = child(&forged_path);
    command.env(KEY, project.to_hex()).env(BARE, "1");
    let error = secure.run_command(&mut command, &target).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("rejected node") && message.contains(&log) && message.contains("command"),
        "{message}"
    );
    assert_eq!(target.graph().log_head(&log).unwrap(), 0);
    println!("test secure_sessions_over_standard_streams ... ok");
}
