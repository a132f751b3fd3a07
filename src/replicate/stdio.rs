//! The standard streams as a transport, as git uses them over ssh.
//!
//! [`Session::serve_stdio`] runs a session over this process's standard input and output
//! (what `strata serve --stdio` will do); [`Session::run_command`] starts a command (for
//! example `ssh host strata serve --stdio`) and runs a session over its standard streams.

use std::process::{Command, Stdio};

use super::{Replica, Session, SyncReport};
use crate::error::{Error, Result};

impl Session {
    /// Runs this session over standard input (from the peer) and standard output (to the
    /// peer). Nothing else may write to standard output meanwhile.
    pub fn serve_stdio(&self, replica: impl Into<Replica>) -> Result<SyncReport> {
        let session = self.clone().responder();
        let session = match &self.peer {
            Some(_) => session,
            None => session.peer_name("the peer on standard input"),
        };
        session.run(replica, std::io::stdin(), std::io::stdout())
    }

    /// Starts `command` with piped standard input and output, runs this session with
    /// whatever speaks on them, and waits for the command to exit. The command's standard
    /// error is left as is (an ssh password prompt or a remote error shows there). A
    /// command that fails is an error, even if the session succeeded, and its failure is
    /// the one reported.
    pub fn run_command(
        &self,
        command: &mut Command,
        replica: impl Into<Replica>,
    ) -> Result<SyncReport> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {:?}", command.get_program()), e))?;
        let streams = child.stdout.take().zip(child.stdin.take());
        let result = match streams {
            Some((from_child, to_child)) => {
                let name = format!("the command {:?}", command.get_program());
                let session = match &self.peer {
                    Some(_) => self.clone(),
                    None => self.clone().peer_name(name),
                };
                session.run(replica, from_child, to_child)
            }
            None => Err(Error::Replication(
                "the command's streams are not piped".into(),
            )),
        };
        if result.is_err() {
            // The session is over either way; a command that still waits for us (an ssh
            // connection, say) must not keep this call from returning.
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(|e| Error::io("waiting for the command", e))?;
        if !status.success() {
            // The command's failure explains the session's (a broken pipe, an early end).
            let session = result.err().map(|e| format!("; the session: {e}"));
            return Err(Error::Replication(format!(
                "the command {:?} failed: {status}{}",
                command.get_program(),
                session.unwrap_or_default()
            )));
        }
        result
    }
}
