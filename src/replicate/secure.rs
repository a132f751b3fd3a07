//! Secure sessions: an authenticated, encrypted channel under the replication protocol,
//! through the Noise protocol framework (the `snow` crate), with the project key as the
//! pre-shared key, as CoMapeo does.
//!
//! The pattern is `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s` with the prologue
//! `"strata secure session v1"`: the initiator (the side that connects) sends its ephemeral
//! key with a first message already bound to the pre-shared key, the responder answers with
//! its own; each side then holds a key per direction. A peer without the project key cannot
//! complete the handshake: a responder that gets a first message it cannot decrypt says
//! nothing and ends the stream, so an outsider learns nothing, not even which logs exist.
//!
//! On the wire every Noise message is a 2-byte big-endian length and the message (at most
//! 65,535 bytes). After the handshake, the replication stream is cut into messages of at
//! most 65,519 bytes of plaintext, each sealed with ChaCha20-Poly1305 under the next
//! nonce of its direction (0, 1, 2, …, never sent): a message altered, dropped, replayed or
//! reordered fails to decrypt, and the session ends.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use snow::StatelessTransportState;

use crate::error::{Error, Result};
use crate::identity::ProjectKey;

const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"strata secure session v1";
/// The largest Noise message.
const MAX_MESSAGE: usize = 65535;
/// The authentication tag each message carries.
const TAG: usize = 16;
/// The most plaintext one message carries.
const MAX_PLAIN: usize = MAX_MESSAGE - TAG;
/// Each handshake message of this pattern (an ephemeral key and the tag of an empty
/// payload): anything else is not a strata peer's handshake, and is refused at once
/// rather than waited for.
const HANDSHAKE_MESSAGE: usize = 32 + TAG;

fn noise_error(e: snow::Error) -> Error {
    Error::Security(format!("the secure session failed to start: {e}"))
}

/// Runs the handshake over a transport's two halves, as the initiator (the side that
/// connected) or the responder, and returns the halves of the encrypted channel.
pub(crate) fn handshake<R: Read, W: Write>(
    mut reader: R,
    mut writer: W,
    project: &ProjectKey,
    initiator: bool,
) -> Result<(SecureReader<R>, SecureWriter<W>)> {
    let params = PATTERN
        .parse()
        .map_err(|e| Error::Security(format!("the Noise pattern: {e}")))?;
    let builder = snow::Builder::new(params)
        .prologue(PROLOGUE)
        .and_then(|b| b.psk(0, project.as_bytes()))
        .map_err(noise_error)?;
    let mut state = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(noise_error)?;
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut payload = vec![0u8; MAX_MESSAGE];
    while !state.is_handshake_finished() {
        if state.is_my_turn() {
            let length = state
                .write_message(&[], &mut message)
                .map_err(noise_error)?;
            write_message(&mut writer, &message[..length])
                .and_then(|()| writer.flush())
                .map_err(handshake_io)?;
        } else {
            let message = &mut message[..HANDSHAKE_MESSAGE];
            read_handshake_message(&mut reader, message)?;
            state
                .read_message(message, &mut payload)
                .map_err(|_| refused())?;
        }
    }
    let cipher = Arc::new(state.into_stateless_transport_mode().map_err(noise_error)?);
    Ok((
        SecureReader {
            inner: reader,
            cipher: cipher.clone(),
            nonce: 0,
            sealed: Vec::new(),
            plain: Vec::new(),
            at: 0,
        },
        SecureWriter {
            inner: writer,
            cipher,
            nonce: 0,
            plain: Vec::with_capacity(MAX_PLAIN),
            sealed: vec![0u8; 2 + MAX_MESSAGE],
        },
    ))
}

fn refused() -> Error {
    Error::Security("the peer did not prove it holds the project key".into())
}

/// The peer closed before its handshake message: a secure server does that to a peer
/// without its key, a busy one to a peer beyond its limit, and a plain one (whose own
/// handshake may be lost with the connection) to a secure peer; they look alike here.
fn closed() -> Error {
    Error::Security(
        "the peer closed the connection without a word: it does not hold this project \
         key, or it is serving as many peers as it takes (try again later), or it speaks \
         plain hyperlog (then use --plain on both sides)"
            .into(),
    )
}

fn plain_peer() -> Error {
    Error::Security(
        "the peer speaks plain hyperlog (an unauthenticated --plain session), and this side \
         requires a secure session: use --plain on both sides to talk plainly, or neither"
            .into(),
    )
}

/// An I/O failure during the handshake: a peer that hung up on us (a reset or a broken
/// pipe, as when a server closes on a peer it will not serve) says the same as one that
/// closed cleanly.
fn handshake_io(e: io::Error) -> Error {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            closed()
        }
        _ => Error::io("starting the secure session", e),
    }
}

/// Reads the peer's next handshake message into `buffer` (exactly its size), refusing at
/// its length prefix anything else: a plain hyperlog peer's first frame (a one-byte varint
/// length, then the Handshake type 0) gets an error that says so.
fn read_handshake_message(reader: &mut impl Read, buffer: &mut [u8]) -> Result<()> {
    let mut prefix = [0u8; 2];
    let got = read_up_to(reader, &mut prefix).map_err(handshake_io)?;
    if got == 0 {
        return Err(closed());
    }
    if got == 2 && usize::from(u16::from_be_bytes(prefix)) == buffer.len() {
        return reader.read_exact(buffer).map_err(handshake_io);
    }
    if prefix[0] > 0 && prefix[0] < 0x80 && (got < 2 || prefix[1] == 0) {
        return Err(plain_peer());
    }
    Err(refused())
}

/// Reads until `buffer` is full or the stream ends; returns how many bytes came.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match reader.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn write_message(writer: &mut impl Write, message: &[u8]) -> io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "a Noise message too long"))?;
    writer.write_all(&length.to_be_bytes())?;
    writer.write_all(message)
}

/// Reads one length-prefixed message into `buffer`; `None` when the stream ends cleanly
/// before it.
fn read_message(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<Option<usize>> {
    let mut prefix = [0u8; 2];
    match read_up_to(reader, &mut prefix)? {
        0 => return Ok(None),
        1 => return Err(ErrorKind::UnexpectedEof.into()),
        _ => {}
    }
    let length = usize::from(u16::from_be_bytes(prefix));
    let target = buffer
        .get_mut(..length)
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "a Noise message too long"))?;
    reader.read_exact(target)?;
    Ok(Some(length))
}

/// The reading half of a secure channel: yields the peer's plaintext, or fails on any
/// message that does not decrypt under the next nonce.
pub(crate) struct SecureReader<R> {
    inner: R,
    cipher: Arc<StatelessTransportState>,
    nonce: u64,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    at: usize,
}

impl<R: Read> Read for SecureReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.plain.len() {
            self.sealed.resize(MAX_MESSAGE, 0);
            let Some(length) = read_message(&mut self.inner, &mut self.sealed)? else {
                return Ok(0);
            };
            self.plain.resize(MAX_MESSAGE, 0);
            let plain = self
                .cipher
                .read_message(self.nonce, &self.sealed[..length], &mut self.plain)
                .map_err(|_| {
                    io::Error::new(
                        ErrorKind::InvalidData,
                        "an encrypted message did not authenticate (altered, replayed or \
                         out of order); the session is ended",
                    )
                })?;
            self.nonce += 1;
            self.plain.truncate(plain);
            self.at = 0;
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The writing half of a secure channel: gathers plaintext and seals a message when it is
/// full or flushed.
pub(crate) struct SecureWriter<W: Write> {
    inner: W,
    cipher: Arc<StatelessTransportState>,
    nonce: u64,
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

impl<W: Write> SecureWriter<W> {
    fn seal(&mut self) -> io::Result<()> {
        if self.plain.is_empty() {
            return Ok(());
        }
        let length = self
            .cipher
            .write_message(self.nonce, &self.plain, &mut self.sealed[2..])
            .map_err(|e| io::Error::other(format!("sealing a message: {e}")))?;
        self.nonce += 1;
        self.plain.clear();
        // `length` is at most MAX_MESSAGE (snow refuses more), so it fits in two bytes.
        self.sealed[..2].copy_from_slice(&(length as u16).to_be_bytes());
        self.inner.write_all(&self.sealed[..2 + length])
    }
}

impl<W: Write> Write for SecureWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(MAX_PLAIN - self.plain.len());
        self.plain.extend_from_slice(&buf[..n]);
        if self.plain.len() == MAX_PLAIN {
            self.seal()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.seal()?;
        self.inner.flush()
    }
}
