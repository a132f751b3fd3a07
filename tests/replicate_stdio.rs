//! A session with a child process over its standard streams, as `ssh host strata serve
//! --stdio` will run: this test binary starts itself again as the far side, which serves a
//! repository on its standard input and output with `Session::serve_stdio`.
//!
//! The file has no test harness (`harness = false` in Cargo.toml): libtest writes to
//! standard output, which is the protocol stream here.

use std::process::{Command, ExitCode};

use strata::{Payload, Repository, Session};

/// Set in the child: the repository folder it serves.
const SERVE: &str = "STRATA_TEST_SERVE_STDIO";

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(SERVE) {
        let repo = Repository::open(&path).expect("the child opens its repository");
        return match Session::new().serve_stdio(&repo) {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("stdio peer: {error}");
                ExitCode::FAILURE
            }
        };
    }
    a_child_process_serves_a_repository_on_its_standard_streams();
    a_failing_command_is_an_error();
    println!("test result: ok. 2 passed; 0 failed");
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
