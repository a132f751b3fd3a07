//! A minimal protobuf field reader and writer, for the messages whose bytes matter.
//!
//! prost writes fields in tag order; the JS originals write them in declaration order, and
//! node keys hash those bytes, so byte-exact messages are written field by field here. The
//! reader is strict where prost is lenient: it rejects unknown fields, wire types our
//! schemas never use, truncated input and missing required fields, and never panics.

use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

use crate::error::{Error, Result};

/// One field as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Iterates over the fields of one message.
pub struct FieldReader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> FieldReader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        FieldReader { rest: bytes, what }
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let what = self.what;
        let (number, wire_type) =
            decode_key(&mut self.rest).map_err(|e| Error::malformed(what, e))?;
        let value = match wire_type {
            WireType::Varint => {
                Field::Varint(decode_varint(&mut self.rest).map_err(|e| Error::malformed(what, e))?)
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut self.rest).map_err(|e| Error::malformed(what, e))?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&len| len <= self.rest.len())
                    .ok_or_else(|| {
                        Error::malformed(what, format!("field {number} runs past the end"))
                    })?;
                let (bytes, rest) = self.rest.split_at(len);
                self.rest = rest;
                Field::Bytes(bytes)
            }
            other => {
                return Err(Error::malformed(
                    what,
                    format!("field {number} has unsupported wire type {other:?}"),
                ));
            }
        };
        Ok(Some((number, value)))
    }

    /// The error for a field this message does not declare, or declares with another type.
    pub fn unexpected(&self, number: u32) -> Error {
        Error::malformed(self.what, format!("unexpected field {number}"))
    }

    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl<'a> Field<'a> {
    pub fn varint(self, reader: &FieldReader, number: u32) -> Result<u64> {
        match self {
            Field::Varint(v) => Ok(v),
            Field::Bytes(_) => Err(reader.unexpected(number)),
        }
    }

    pub fn bytes(self, reader: &FieldReader, number: u32) -> Result<&'a [u8]> {
        match self {
            Field::Bytes(b) => Ok(b),
            Field::Varint(_) => Err(reader.unexpected(number)),
        }
    }

    pub fn string(self, reader: &FieldReader, number: u32) -> Result<String> {
        let bytes = self.bytes(reader, number)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::malformed(reader.what(), format!("field {number} is not UTF-8")))
    }
}

/// Fails with "missing field" when a required field was absent.
pub fn required<T>(value: Option<T>, what: &'static str, name: &str) -> Result<T> {
    value.ok_or_else(|| Error::malformed(what, format!("required field {name} is missing")))
}

pub fn put_varint(buf: &mut Vec<u8>, number: u32, value: u64) {
    encode_key(number, WireType::Varint, buf);
    encode_varint(value, buf);
}

pub fn put_bytes(buf: &mut Vec<u8>, number: u32, value: &[u8]) {
    encode_key(number, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value);
}
