//! A framed connection over any byte transport split into a read half and a write half.
//!
//! Each half has its own thread, so reading and writing never wait on each other: the
//! reader thread keeps taking frames off the wire into a bounded inbox while the writer
//! thread drains a bounded outbox. The session never blocks on a full outbox; it handles
//! incoming messages instead, and only generates more nodes when the outbox has room. So
//! two peers that both send a lot at once cannot deadlock, whatever the transport's buffer
//! sizes: each side's reader keeps reading while its session keeps consuming. Memory stays
//! bounded by the two limits (plus one frame).
//!
//! The threads are detached: a reader blocked on a silent peer cannot keep a session from
//! returning. They stop when the transport ends or fails, or at their next frame once the
//! connection is dropped.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

use super::frame::Decoder;
use crate::error::{Error, Result};

/// How many bytes one read of the transport asks for.
const READ_CHUNK: usize = 64 * 1024;

/// The sizes that bound a connection's memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buffers {
    /// The largest frame accepted from the peer.
    pub max_frame: usize,
    /// Received bytes queued before the reader stops reading (one frame may exceed it).
    pub inbox: usize,
    /// Bytes queued for sending above which the session stops producing nodes.
    pub outbox: usize,
}

/// How a half of the transport ended.
enum End {
    Open,
    Done,
    Failed(Option<Error>),
}

struct Mail {
    inbox: VecDeque<Vec<u8>>,
    inbox_bytes: usize,
    read: End,
    outbox: VecDeque<Vec<u8>>,
    outbox_bytes: usize,
    /// The session has nothing more to send: the writer ends the write half once the
    /// outbox is empty.
    closing: bool,
    write: End,
    /// The connection was dropped: both threads stop.
    dropped: bool,
    /// Something outside the connection (a live feed) has news for the session.
    poked: bool,
}

struct Shared {
    mail: Mutex<Mail>,
    signal: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        // The mailbox holds plain queues; a panicking thread cannot leave it inconsistent.
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Mail>) -> MutexGuard<'a, Mail> {
        self.signal.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

/// What the session is woken for.
pub(crate) enum Event {
    /// A frame arrived.
    Frame(Vec<u8>),
    /// The outbox has room again.
    Room,
    /// [`Poke::poke`] was called.
    Poked,
    /// The peer ended its half of the stream cleanly.
    Eof,
    /// The deadline passed.
    Timeout,
}

/// The session's end of a framed connection.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    buffers: Buffers,
}

/// Wakes a session waiting on its connection (used by the live feed's watcher).
#[derive(Clone)]
pub(crate) struct Poke(Arc<Shared>);

impl Poke {
    pub(crate) fn poke(&self) {
        self.0.lock().poked = true;
        self.0.signal.notify_all();
    }
}

impl Connection {
    /// Starts the reader and writer threads over the two halves of a transport.
    pub(crate) fn new<R, W>(reader: R, writer: W, buffers: Buffers) -> Result<Connection>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let shared = Arc::new(Shared {
            mail: Mutex::new(Mail {
                inbox: VecDeque::new(),
                inbox_bytes: 0,
                read: End::Open,
                outbox: VecDeque::new(),
                outbox_bytes: 0,
                closing: false,
                write: End::Open,
                dropped: false,
                poked: false,
            }),
            signal: Condvar::new(),
        });
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .map(drop)
                .map_err(|e| Error::io("starting a replication thread", e))
        };
        let for_reader = shared.clone();
        spawn(
            "strata-read",
            Box::new(move || read_loop(reader, &for_reader, buffers)),
        )?;
        let for_writer = shared.clone();
        spawn(
            "strata-write",
            Box::new(move || write_loop(writer, &for_writer)),
        )?;
        Ok(Connection { shared, buffers })
    }

    /// A handle that wakes this connection's session.
    pub(crate) fn poke_handle(&self) -> Poke {
        Poke(self.shared.clone())
    }

    /// Queues bytes holding whole frames, back to back, for sending. Sessions gather many
    /// messages into one call: one lock and one wake-up of the writer for all of them.
    pub(crate) fn send_framed(&self, framed: Vec<u8>) -> Result<()> {
        if framed.is_empty() {
            return Ok(());
        }
        let mut mail = self.shared.lock();
        check_write(&mut mail)?;
        mail.outbox_bytes += framed.len();
        mail.outbox.push_back(framed);
        drop(mail);
        self.shared.signal.notify_all();
        Ok(())
    }

    /// How many more bytes the outbox takes before the session should stop producing.
    pub(crate) fn room(&self) -> usize {
        self.buffers
            .outbox
            .saturating_sub(self.shared.lock().outbox_bytes)
    }

    /// Moves up to `max` frames that have already arrived into `into`, without waiting.
    pub(crate) fn take_frames(&self, into: &mut VecDeque<Vec<u8>>, max: usize) {
        let mut mail = self.shared.lock();
        let was_full = mail.inbox_bytes >= self.buffers.inbox;
        for _ in 0..max {
            let Some(frame) = mail.inbox.pop_front() else {
                break;
            };
            mail.inbox_bytes -= frame.len();
            into.push_back(frame);
        }
        drop(mail);
        // Only a reader stopped by a full inbox waits for room; waking it otherwise costs
        // a system call per frame for nothing.
        if was_full {
            self.shared.signal.notify_all();
        }
    }

    /// Waits for the next thing the session must react to: a frame (first), then, when
    /// `want_room`, room in the outbox, a poke, the end of the peer's stream, or the
    /// deadline. A failed transport is an error.
    pub(crate) fn next_event(&self, want_room: bool, deadline: Option<Instant>) -> Result<Event> {
        let mut mail = self.shared.lock();
        loop {
            let was_full = mail.inbox_bytes >= self.buffers.inbox;
            if let Some(frame) = mail.inbox.pop_front() {
                mail.inbox_bytes -= frame.len();
                drop(mail);
                if was_full {
                    self.shared.signal.notify_all();
                }
                return Ok(Event::Frame(frame));
            }
            check_write(&mut mail)?;
            match &mut mail.read {
                End::Open => {}
                End::Done => return Ok(Event::Eof),
                End::Failed(error) => return Err(take(error, "reading from the peer")),
            }
            if want_room && mail.outbox_bytes < self.buffers.outbox {
                return Ok(Event::Room);
            }
            if std::mem::take(&mut mail.poked) {
                return Ok(Event::Poked);
            }
            mail = match deadline {
                None => self.shared.wait(mail),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(Event::Timeout);
                    }
                    self.shared
                        .signal
                        .wait_timeout(mail, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Ends the write half once everything queued is sent, and waits (until `deadline`)
    /// for that to happen.
    pub(crate) fn finish(&self, deadline: Option<Instant>) -> Result<()> {
        let mut mail = self.shared.lock();
        mail.closing = true;
        self.shared.signal.notify_all();
        loop {
            match &mut mail.write {
                End::Open => {}
                End::Done => return Ok(()),
                End::Failed(error) => return Err(take(error, "writing to the peer")),
            }
            mail = match deadline {
                None => self.shared.wait(mail),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::io(
                            "sending the last messages",
                            ErrorKind::TimedOut.into(),
                        ));
                    }
                    self.shared
                        .signal
                        .wait_timeout(mail, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.signal.notify_all();
    }
}

/// Takes a transport error out of the mailbox (the first caller gets it; later ones get a
/// plain description).
fn take(error: &mut Option<Error>, context: &str) -> Error {
    error
        .take()
        .unwrap_or_else(|| Error::io(context, ErrorKind::BrokenPipe.into()))
}

fn check_write(mail: &mut Mail) -> Result<()> {
    match &mut mail.write {
        End::Failed(error) => Err(take(error, "writing to the peer")),
        _ => Ok(()),
    }
}

fn read_loop(mut reader: impl Read, shared: &Shared, buffers: Buffers) {
    let mut decoder = Decoder::new(buffers.max_frame);
    let mut chunk = vec![0u8; READ_CHUNK];
    let end = loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break End::Failed(Some(Error::io("reading from the peer", e))),
        };
        if n == 0 {
            break if decoder.has_partial() {
                End::Failed(Some(Error::malformed(
                    "stream",
                    "the peer's stream ended inside a frame",
                )))
            } else {
                End::Done
            };
        }
        decoder.push(&chunk[..n]);
        let mut delivered = false;
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    let mut mail = shared.lock();
                    mail.read = End::Failed(Some(error));
                    drop(mail);
                    shared.signal.notify_all();
                    return;
                }
            };
            let mut mail = shared.lock();
            while !mail.dropped && !mail.inbox.is_empty() && mail.inbox_bytes >= buffers.inbox {
                if delivered {
                    shared.signal.notify_all();
                    delivered = false;
                }
                mail = shared.wait(mail);
            }
            if mail.dropped {
                return;
            }
            mail.inbox_bytes += frame.len();
            mail.inbox.push_back(frame);
            delivered = true;
        }
        if delivered {
            shared.signal.notify_all();
        }
    };
    shared.lock().read = end;
    shared.signal.notify_all();
}

fn write_loop(mut writer: impl Write, shared: &Shared) {
    let mut batch = Vec::new();
    let end = loop {
        let mut mail = shared.lock();
        while mail.outbox.is_empty() && !mail.closing && !mail.dropped {
            mail = shared.wait(mail);
        }
        if mail.outbox.is_empty() {
            break match writer.flush() {
                Ok(()) => End::Done,
                Err(e) => End::Failed(Some(Error::io("writing to the peer", e))),
            };
        }
        batch.clear();
        while let Some(frame) = mail.outbox.pop_front() {
            batch.extend_from_slice(&frame);
            if batch.len() >= READ_CHUNK {
                break;
            }
        }
        let more = !mail.outbox.is_empty();
        drop(mail);
        let written = writer
            .write_all(&batch)
            .and_then(|()| if more { Ok(()) } else { writer.flush() });
        if let Err(e) = written {
            break End::Failed(Some(Error::io("writing to the peer", e)));
        }
        shared.lock().outbox_bytes -= batch.len();
        shared.signal.notify_all();
    };
    // Dropping the writer closes the write half (a pipe, a child's stdin, a socket wrapper).
    drop(writer);
    shared.lock().write = end;
    shared.signal.notify_all();
}
