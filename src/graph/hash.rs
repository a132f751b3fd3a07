//! Node keys: the framed SHA-256 of a node's links and value (hyperlog's `framed-hash`).
//!
//! Each chunk is fed to the digest as its decimal byte length, a newline, then its bytes:
//! first every link (the link key's text), then the value. `log`, `seq`, `change`,
//! `identity` and `signature` are not hashed. The hash function can be replaced (the
//! hyperlog test suite uses framed SHA-1 and a multihash), but every repository that
//! exchanges nodes must use the same one.

use std::io::Write;

use sha2::{Digest, Sha256};

/// Computes the key of a node from its links and value.
pub trait NodeHasher: Send + Sync {
    /// The key of a node with these links and this value.
    fn hash(&self, links: &[String], value: &[u8]) -> String;
}

/// Feeds one framed chunk (`"<len>\n" ‖ bytes`) into any digest.
pub fn framed_update<D: Digest>(digest: &mut D, chunk: &[u8]) {
    let mut frame = [0u8; 24];
    let mut cursor = &mut frame[..];
    // A usize has at most 20 decimal digits, so this always fits.
    let _ = writeln!(cursor, "{}", chunk.len());
    let used = 24 - cursor.len();
    digest.update(&frame[..used]);
    digest.update(chunk);
}

/// hyperlog's default: framed SHA-256, lowercase hex.
#[derive(Clone, Copy, Debug, Default)]
pub struct FramedSha256;

impl NodeHasher for FramedSha256 {
    fn hash(&self, links: &[String], value: &[u8]) -> String {
        let mut digest = Sha256::new();
        for link in links {
            framed_update(&mut digest, link.as_bytes());
        }
        framed_update(&mut digest, value);
        lower_hex(&digest.finalize())
    }
}

/// `bytes` as lowercase hex. Hashes are turned into text for every node written and every
/// row entry read; `hex::encode` builds the text a char at a time, which was a tenth of a
/// range read's time.
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut text = vec![0; bytes.len() * 2];
    // `text` is exactly twice as long as `bytes`, as `encode_to_slice` requires, and hex
    // digits are ASCII: neither fallback is ever taken.
    match hex::encode_to_slice(bytes, &mut text) {
        Ok(()) => String::from_utf8(text).unwrap_or_default(),
        Err(_) => String::new(),
    }
}
