//! Sealed sync files: a sync file encrypted and authenticated with the project key, so
//! that only members can read it and nobody can alter, cut or extend it unnoticed.
//!
//! A file has no handshake to agree on keys, so it is sealed with an AEAD directly (the
//! `chacha20poly1305` crate's XChaCha20-Poly1305 in the STREAM construction, whose last
//! chunk is marked, so a file cut at a chunk boundary is refused too), under a key derived
//! from the project key and a random salt with HKDF-SHA-256 (the `hkdf` crate):
//!
//! ```text
//! "STRATA-SEALED\0" 01 | salt (32 bytes) | nonce prefix (19 bytes)
//! then chunks of 65,536 bytes of the plain sync file, each sealed (+16 bytes), the last
//! one (possibly empty) shorter and sealed as the last; every chunk authenticates the
//! header as associated data.
//! ```
//!
//! Opening decrypts the whole file into a temporary file before anything is applied, so a
//! tampered file is refused before anything is stored.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload as Aad};
use chacha20poly1305::{Key, XChaCha20Poly1305};
use hkdf::Hkdf;
use sha2::Sha256;

use super::payload::read_full;
use super::{Replica, SyncFile, SyncFileReport, SyncReport};
use crate::error::{Error, Result};
use crate::graph::Channel;
use crate::identity::ProjectKey;

const MAGIC: &[u8] = b"STRATA-SEALED\0";
const VERSION: u8 = 1;
const SALT: usize = 32;
const NONCE: usize = 19;
const HEADER: usize = MAGIC.len() + 1 + SALT + NONCE;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

fn cipher(project: &ProjectKey, salt: &[u8]) -> Result<XChaCha20Poly1305> {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), project.as_bytes())
        .expand(b"strata sync file v1", &mut key)
        .map_err(|_| Error::Security("deriving the file key".into()))?;
    Ok(XChaCha20Poly1305::new(Key::from_slice(&key)))
}

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Whether `input` has nothing more.
fn at_end(input: &mut impl BufRead) -> std::io::Result<bool> {
    Ok(input.fill_buf()?.is_empty())
}

fn tampered() -> Error {
    Error::Security(
        "the sealed sync file does not authenticate under this project's key: it was \
         altered or cut, or it belongs to another project"
            .into(),
    )
}

impl SyncFile {
    /// Writes the file sealed with the project key (see [`SyncFile::apply_sealed`]).
    pub fn write_sealed(
        &self,
        replica: impl Into<Replica>,
        project: &ProjectKey,
        mut out: impl Write,
    ) -> Result<SyncFileReport> {
        let mut plain = tempfile::tempfile().map_err(io_error("creating a temporary file"))?;
        let mut report = self.write(replica, &mut plain)?;
        plain
            .seek(SeekFrom::Start(0))
            .map_err(io_error("reading the temporary file"))?;
        let mut plain = BufReader::with_capacity(CHUNK, plain);
        let (salt, nonce) = (rand::random::<[u8; SALT]>(), rand::random::<[u8; NONCE]>());
        let header = [MAGIC, &[VERSION], &salt, &nonce].concat();
        let mut sealer = EncryptorBE32::from_aead(cipher(project, &salt)?, (&nonce).into());
        let write = io_error("writing the sealed sync file");
        out.write_all(&header).map_err(&write)?;
        let mut written = header.len() as u64;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let read = io_error("reading the temporary file");
            let n = read_full(&mut plain, &mut chunk).map_err(&read)?;
            let message = Aad {
                msg: &chunk[..n],
                aad: &header,
            };
            if n < CHUNK || at_end(&mut plain).map_err(&read)? {
                let sealed = sealer.encrypt_last(message).map_err(|_| tampered())?;
                out.write_all(&sealed).map_err(&write)?;
                written += sealed.len() as u64;
                break;
            }
            let sealed = sealer.encrypt_next(message).map_err(|_| tampered())?;
            out.write_all(&sealed).map_err(&write)?;
            written += sealed.len() as u64;
        }
        out.flush().map_err(write)?;
        report.bytes = written;
        Ok(report)
    }

    /// Opens a file written by [`SyncFile::write_sealed`] with the project key, checking
    /// every chunk and its end before anything is applied, then applies it as
    /// [`SyncFile::apply`] does. A file from another project, or altered, cut or extended,
    /// is refused and nothing is stored.
    pub fn apply_sealed(
        &self,
        replica: impl Into<Replica>,
        project: &ProjectKey,
        file: impl Read,
    ) -> Result<SyncReport> {
        let mut file = BufReader::with_capacity(CHUNK + TAG, file);
        let mut header = [0u8; HEADER];
        let read = io_error("reading the sealed sync file");
        if read_full(&mut file, &mut header).map_err(&read)? < HEADER || !header.starts_with(MAGIC)
        {
            return Err(Error::Security("this is not a sealed sync file".into()));
        }
        if header[MAGIC.len()] != VERSION {
            return Err(Error::Security(format!(
                "sealed sync file version {} is not supported (this build reads {VERSION})",
                header[MAGIC.len()]
            )));
        }
        let salt = &header[MAGIC.len() + 1..MAGIC.len() + 1 + SALT];
        let nonce = &header[MAGIC.len() + 1 + SALT..];
        let mut opener = DecryptorBE32::from_aead(cipher(project, salt)?, nonce.into());
        let mut plain = tempfile::tempfile().map_err(io_error("creating a temporary file"))?;
        let write = io_error("writing the temporary file");
        let mut chunk = vec![0u8; CHUNK + TAG];
        loop {
            let n = read_full(&mut file, &mut chunk).map_err(&read)?;
            let message = Aad {
                msg: &chunk[..n],
                aad: &header,
            };
            if n < CHUNK + TAG || at_end(&mut file).map_err(&read)? {
                let opened = opener.decrypt_last(message).map_err(|_| tampered())?;
                plain.write_all(&opened).map_err(&write)?;
                break;
            }
            let opened = opener.decrypt_next(message).map_err(|_| tampered())?;
            plain.write_all(&opened).map_err(&write)?;
        }
        self.apply_via(replica.into(), plain, Channel::Secure)
            .map_err(|e| super::name_peer(e, "the sealed sync file"))
    }
}
