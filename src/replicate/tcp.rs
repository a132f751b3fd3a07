//! TCP transport: a server that takes many peers, one session each, and a client.
//!
//! Every connection a [`TcpServer`] accepts runs its own session on its own thread, with
//! the server's session options (a clone per peer), so the idle and total timeouts of its
//! [`Limits`](super::Limits) apply to each peer, and at most `max_sessions` run at once. [`TcpServer::stop`] stops accepting and
//! ends live sessions. [`Session::connect_tcp`] is the client; [`Session::run_tcp`] runs a
//! session over a socket connected some other way.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Replica, Session, SyncReport};
use crate::error::{Error, Result};

/// The write half of a socket: dropping it tells the peer this side is done writing.
struct WriteHalf(TcpStream);

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

impl Session {
    /// Runs this session over a connected socket, then closes it (which also ends the
    /// session's reader thread).
    pub fn run_tcp(&self, stream: TcpStream, replica: impl Into<Replica>) -> Result<SyncReport> {
        let context = |e| Error::io("setting up the connection", e);
        stream.set_nodelay(true).map_err(context)?;
        // A peer that never finishes the secure handshake is dropped after the idle
        // timeout; the bound is lifted for the session, which keeps its own.
        let handshake = self.limits.idle_timeout.filter(|_| self.is_secure());
        stream.set_read_timeout(handshake).map_err(context)?;
        let reader = stream.try_clone().map_err(context)?;
        let writer = WriteHalf(stream.try_clone().map_err(context)?);
        let result = self.run_secured(replica.into(), reader, writer, || {
            let _ = stream.set_read_timeout(None);
        });
        let _ = stream.shutdown(Shutdown::Both);
        result
    }

    /// Connects to a server (a [`TcpServer`], or hyperlog) at `address` and runs this
    /// session with it.
    pub fn connect_tcp(
        &self,
        address: impl ToSocketAddrs,
        replica: impl Into<Replica>,
    ) -> Result<SyncReport> {
        let stream = TcpStream::connect(address).map_err(|e| Error::io("connecting", e))?;
        match (&self.peer, stream.peer_addr()) {
            (None, Ok(peer)) => self
                .clone()
                .peer_name(peer.to_string())
                .run_tcp(stream, replica),
            _ => self.run_tcp(stream, replica),
        }
    }
}

/// What a [`TcpServer`] is told about each finished peer session: the peer's address and
/// how the session ended.
pub type OnTcpSession = Arc<dyn Fn(SocketAddr, &Result<SyncReport>) + Send + Sync>;

/// A server accepting peers on a background thread, one session each.
pub struct TcpServer {
    address: SocketAddr,
    session: Session,
    accepting: Option<JoinHandle<()>>,
    active: Arc<AtomicUsize>,
}

impl TcpServer {
    /// Listens on `address` (port 0 picks a free port) and serves `replica` to every peer
    /// that connects, each with a clone of `session`; `on_session` is told how each one
    /// ended.
    pub fn start(
        address: impl ToSocketAddrs,
        session: Session,
        replica: impl Into<Replica>,
        on_session: OnTcpSession,
    ) -> Result<TcpServer> {
        let listener = TcpListener::bind(address).map_err(|e| Error::io("listening", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e))?;
        // Accept polls so that `stop` is noticed without a connection arriving.
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("listening", e))?;
        let replica = replica.into();
        let active = Arc::new(AtomicUsize::new(0));
        let (template, counter) = (session.clone(), active.clone());
        let accepting = thread::Builder::new()
            .name("strata-accept".into())
            .spawn(move || accept_loop(&listener, &template, &replica, &counter, &on_session))
            .map_err(|e| Error::io("starting the server", e))?;
        Ok(TcpServer {
            address: local,
            session,
            accepting: Some(accepting),
            active,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// How many peer sessions are running now.
    pub fn active_sessions(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Stops accepting, ends live sessions, and waits for the accept loop to finish.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.session.stopper().stop();
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn accept_loop(
    listener: &TcpListener,
    session: &Session,
    replica: &Replica,
    active: &Arc<AtomicUsize>,
    on_session: &OnTcpSession,
) {
    let stop = session.stopper();
    while !stop.is_stopped() {
        match listener.accept() {
            Ok((stream, peer)) => {
                let limit = session.limits.max_sessions;
                if active.load(Ordering::SeqCst) >= limit {
                    drop(stream);
                    on_session(
                        peer,
                        &Err(Error::Replication(format!(
                            "refused: already serving {limit} peer(s), the limit"
                        ))),
                    );
                    continue;
                }
                // Sockets inherit non-blocking mode on some systems; sessions block.
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                let (session, replica) = (session.clone(), replica.clone());
                let (running, on_session) = (active.clone(), on_session.clone());
                active.fetch_add(1, Ordering::SeqCst);
                let spawned = thread::Builder::new()
                    .name("strata-peer".into())
                    .spawn(move || {
                        let session = session.responder().peer_name(peer.to_string());
                        let result = session.run_tcp(stream, replica);
                        running.fetch_sub(1, Ordering::SeqCst);
                        on_session(peer, &result);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}
