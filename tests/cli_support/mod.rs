//! Shared by the `tests/cli_*.rs` suites: runs the real `strata` binary on a temporary
//! repository and checks exit codes, stdout and stderr.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The `strata` binary, isolated from the caller's environment.
pub fn strata() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command.env_remove("STRATA_REPO").env("RUST_BACKTRACE", "1");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes a finished command for assertion messages.
pub fn describe(args: &[&str], output: &Output) -> String {
    format!(
        "strata {}\nexit: {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Asserts that a failed command printed one clear error line and no panic.
pub fn assert_clean_error(args: &[&str], output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{}",
        describe(args, output)
    );
    assert!(
        stderr.starts_with("strata: ") && stderr.trim_end().lines().count() == 1,
        "expected one `strata: ` error line\n{}",
        describe(args, output)
    );
    stderr
}

/// A temporary folder with a repository in it.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// A fresh repository, created with `strata init`.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let output = strata()
            .arg("init")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", describe(&["init"], &output));
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join(".strata")
    }

    /// Runs `strata ARGS` in the repository's folder.
    pub fn run(&self, args: &[&str]) -> Output {
        strata()
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `strata ARGS` in the repository's folder, its output piped.
    pub fn spawn(&self, args: &[&str], stdin: Stdio) -> Child {
        strata()
            .args(args)
            .current_dir(self.path())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `strata ARGS` with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self.spawn(args, Stdio::piped());
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout as bytes.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let output = self.run(args);
        assert!(output.status.success(), "{}", describe(args, &output));
        output.stdout
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        text(&self.ok_bytes(args))
    }

    /// Runs a command that must fail with exit code 1 and one error line; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(output.status.code(), Some(1), "{}", describe(args, &output));
        assert_clean_error(args, &output)
    }

    /// Runs a command that must be refused as a usage error (exit code 2).
    pub fn usage_error(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(output.status.code(), Some(2), "{}", describe(args, &output));
        text(&output.stderr)
    }

    /// Runs a command that must succeed and print one JSON document.
    pub fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Runs a command that must succeed and print NDJSON.
    pub fn ndjson(&self, args: &[&str]) -> Vec<Value> {
        self.ok(args)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// `strata put` (JSON value); returns the new version.
    pub fn put(&self, dataset: &str, key: &str, value: &str) -> String {
        let version = self.ok(&["put", dataset, key, value]).trim().to_string();
        assert_eq!(version.len(), 64, "{version}");
        version
    }
}
