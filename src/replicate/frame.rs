//! Framing: every message travels as an unsigned LEB128 varint of its length followed by
//! that many bytes (hyperlog's `length-prefixed-stream`).
//!
//! The [`Decoder`] is incremental: it takes bytes in whatever pieces the transport delivers
//! (a prefix and its message may arrive apart, or many frames in one read) and hands out
//! whole frames. A length prefix larger than the configured maximum is refused as soon as
//! the prefix itself is read, before anything is buffered for it, so a peer cannot make us
//! allocate by announcing a gigantic frame.

use crate::error::{Error, Result};

/// The largest varint a length prefix may take (a `u64` needs at most 10 bytes).
const MAX_VARINT_BYTES: usize = 10;

/// Appends `payload` to `out` as one frame.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Turns a byte stream into frames.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the unconsumed bytes of `buf` start.
    start: usize,
    max_frame: usize,
}

/// The result of reading a length prefix at the front of some bytes.
enum Prefix {
    /// The prefix is not complete yet.
    Partial,
    /// `(frame length, prefix length)`.
    Complete(usize, usize),
}

impl Decoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_frame,
        }
    }

    /// Adds bytes received from the transport.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished frame are buffered: at the end of the stream, that
    /// means the stream was cut inside a frame.
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next whole frame, if one is buffered. Fails on an invalid varint or a frame
    /// longer than the maximum.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let rest = &self.buf[self.start..];
        let (len, prefix) = match self.prefix(rest)? {
            Prefix::Partial => return Ok(None),
            Prefix::Complete(len, prefix) => (len, prefix),
        };
        if rest.len() - prefix < len {
            // Keep the buffer from growing by what was consumed before this frame.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            return Ok(None);
        }
        let frame = rest[prefix..prefix + len].to_vec();
        self.start += prefix + len;
        Ok(Some(frame))
    }

    fn prefix(&self, bytes: &[u8]) -> Result<Prefix> {
        let mut value: u64 = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if index == MAX_VARINT_BYTES {
                break;
            }
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if index == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(invalid_varint());
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                let len = usize::try_from(value)
                    .ok()
                    .filter(|&len| len <= self.max_frame)
                    .ok_or_else(|| {
                        Error::malformed(
                            "frame",
                            format!(
                                "length {value} is over the limit of {} bytes",
                                self.max_frame
                            ),
                        )
                    })?;
                return Ok(Prefix::Complete(len, index + 1));
            }
        }
        if bytes.len() >= MAX_VARINT_BYTES {
            return Err(invalid_varint());
        }
        Ok(Prefix::Partial)
    }
}

fn invalid_varint() -> Error {
    Error::malformed("frame", "the length prefix is not a valid varint")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut Decoder) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| decoder.next_frame().unwrap()).collect()
    }

    #[test]
    fn frames_survive_any_split() {
        let mut wire = Vec::new();
        let payloads: Vec<Vec<u8>> = vec![vec![0, 8, 1], vec![], vec![7; 300], vec![4]];
        for payload in &payloads {
            encode(payload, &mut wire);
        }
        for piece in [1, 2, 3, 7, wire.len()] {
            let mut decoder = Decoder::new(1024);
            let mut out = Vec::new();
            for chunk in wire.chunks(piece) {
                decoder.push(chunk);
                out.extend(frames(&mut decoder));
            }
            assert_eq!(out, payloads, "pieces of {piece} bytes");
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn a_cut_frame_is_partial() {
        let mut decoder = Decoder::new(1024);
        decoder.push(&[5, 1, 2]);
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert!(decoder.has_partial());
    }

    #[test]
    fn gigantic_and_invalid_prefixes_are_refused_at_once() {
        let mut decoder = Decoder::new(1 << 20);
        decoder.push(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let error = decoder.next_frame().unwrap_err().to_string();
        assert!(error.contains("over the limit"), "{error}");

        let mut decoder = Decoder::new(1 << 20);
        decoder.push(&[0x80; 11]);
        let error = decoder.next_frame().unwrap_err().to_string();
        assert!(error.contains("not a valid varint"), "{error}");

        let mut decoder = Decoder::new(usize::MAX);
        decoder.push(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(decoder.next_frame().is_err());
    }
}
