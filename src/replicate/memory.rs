//! In-process transport: two replicas in one program, for embedders and tests.
//!
//! [`duplex`] makes a pair of connected stream ends over bounded in-memory pipes (a
//! capacity of a few bytes is allowed, to test that nothing depends on buffering);
//! [`sync_in_memory`] and [`Session::run_in_memory`] run two sessions against each other
//! over one, each on its own thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use super::{Replica, Session, SyncReport};
use crate::error::{Error, Result};

struct Pipe {
    state: Mutex<PipeState>,
    signal: Condvar,
    capacity: usize,
}

struct PipeState {
    bytes: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, PipeState>) -> MutexGuard<'a, PipeState> {
        self.signal.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

/// The reading end of an in-memory pipe: reads block until bytes arrive or the writer is
/// dropped (then the stream ends).
pub struct PipeReader(Arc<Pipe>);

/// The writing end of an in-memory pipe: writes block while the pipe is full, and fail
/// once the reader is dropped.
pub struct PipeWriter(Arc<Pipe>);

/// A one-way pipe holding at most `capacity` bytes (at least 1).
fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let pipe = Arc::new(Pipe {
        state: Mutex::new(PipeState {
            bytes: VecDeque::new(),
            writer_closed: false,
            reader_closed: false,
        }),
        signal: Condvar::new(),
        capacity: capacity.max(1),
    });
    (PipeWriter(pipe.clone()), PipeReader(pipe))
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        while state.bytes.is_empty() && !state.writer_closed {
            state = self.0.wait(state);
        }
        let n = buf.len().min(state.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(state.bytes.drain(..n)) {
            *slot = byte;
        }
        drop(state);
        self.0.signal.notify_all();
        Ok(n)
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.lock().reader_closed = true;
        self.0.signal.notify_all();
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        loop {
            if state.reader_closed {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let room = self.0.capacity - state.bytes.len();
            if room > 0 || buf.is_empty() {
                let n = room.min(buf.len());
                state.bytes.extend(&buf[..n]);
                drop(state);
                self.0.signal.notify_all();
                return Ok(n);
            }
            state = self.0.wait(state);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.lock().writer_closed = true;
        self.0.signal.notify_all();
    }
}

/// One end of a [`duplex`]: what it reads and where it writes.
pub struct DuplexEnd {
    /// What the other end writes.
    pub reader: PipeReader,
    /// What the other end reads.
    pub writer: PipeWriter,
}

/// Two connected ends; each direction buffers at most `capacity` bytes.
pub fn duplex(capacity: usize) -> (DuplexEnd, DuplexEnd) {
    let (a_writer, b_reader) = pipe(capacity);
    let (b_writer, a_reader) = pipe(capacity);
    (
        DuplexEnd {
            reader: a_reader,
            writer: a_writer,
        },
        DuplexEnd {
            reader: b_reader,
            writer: b_writer,
        },
    )
}

/// Syncs two replicas in one program, with default sessions (both ways, everything):
/// the simplest way for an embedder to bring two repositories level. Returns both
/// reports, `a`'s first.
///
/// ```
/// let a = strata::Repository::in_memory()?;
/// let b = strata::Repository::in_memory()?;
/// a.put("sites", "A", "1")?;
/// strata::sync_in_memory(&a, &b)?;
/// assert_eq!(b.get("sites", "A")?.unwrap().value, b"1");
/// # Ok::<(), strata::Error>(())
/// ```
pub fn sync_in_memory(
    a: impl Into<Replica>,
    b: impl Into<Replica>,
) -> Result<(SyncReport, SyncReport)> {
    Session::new().run_in_memory(a, &Session::new(), b)
}

/// How many bytes each direction of [`Session::run_in_memory`]'s pipes holds.
const PIPE: usize = 64 * 1024;

impl Session {
    /// Runs this session on `replica` against `peer` on `peer_replica`, in this program:
    /// the two run on their own threads over an in-memory duplex. Returns both reports,
    /// this side's first; either side's error is returned (this side's first).
    pub fn run_in_memory(
        &self,
        replica: impl Into<Replica>,
        peer: &Session,
        peer_replica: impl Into<Replica>,
    ) -> Result<(SyncReport, SyncReport)> {
        let (ours, theirs) = duplex(PIPE);
        let (peer, peer_replica) = (peer.clone().responder(), peer_replica.into());
        let other = thread::Builder::new()
            .name("strata-peer".into())
            .spawn(move || peer.run(peer_replica, theirs.reader, theirs.writer))
            .map_err(|e| Error::io("starting the second session", e))?;
        let ours = self.run(replica, ours.reader, ours.writer);
        let theirs = other
            .join()
            .map_err(|_| Error::Replication("the second session panicked".into()))?;
        Ok((ours?, theirs?))
    }
}
