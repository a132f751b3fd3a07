//! Graph nodes and log entries, and their byte-exact hyperlog encodings.
//!
//! A node is immutable content (`links`, `value`) named by its hash, plus where this
//! repository recorded it: the local `change` number and the `(log, seq)` it came from.
//! The stored bytes are exactly what hyperlog 4.12.1 stores and sends on the wire: the
//! `Node` message of `proto/hyperlog.proto` with fields in declaration order.

use crate::error::Result;
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};

/// One node of the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The node's key: the hash of its links and value (hex for the default hasher).
    pub key: String,
    /// Keys of the nodes this one links to, in the order they were given.
    pub links: Vec<String>,
    /// The node's content.
    pub value: Vec<u8>,
    /// The log (device) this repository recorded the node under.
    pub log: String,
    /// The node's position in that log, from 1.
    pub seq: u64,
    /// This repository's local change number for the node: 1, 2, 3, … with no gaps.
    pub change: u64,
    /// Who wrote the node (for signed logs); carried and stored unchanged.
    pub identity: Option<Vec<u8>>,
    /// The writer's signature; carried and stored unchanged.
    pub signature: Option<Vec<u8>>,
}

impl Node {
    /// The value as UTF-8 text, when it is.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// Encodes the node as hyperlog does: change, key, log, seq, identity, signature, value,
    /// links (declaration order, not tag order).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(
            self.value.len() + self.key.len() + self.log.len() + 70 * self.links.len() + 16,
        );
        put_varint(&mut buf, 1, self.change);
        put_bytes(&mut buf, 2, self.key.as_bytes());
        put_bytes(&mut buf, 3, self.log.as_bytes());
        put_varint(&mut buf, 4, self.seq);
        if let Some(identity) = &self.identity {
            put_bytes(&mut buf, 7, identity);
        }
        if let Some(signature) = &self.signature {
            put_bytes(&mut buf, 8, signature);
        }
        put_bytes(&mut buf, 5, &self.value);
        for link in &self.links {
            put_bytes(&mut buf, 6, link.as_bytes());
        }
        buf
    }

    /// Decodes a `Node` message, fields in any order. Required fields must be present;
    /// unknown fields and malformed bytes are errors.
    pub fn decode(bytes: &[u8]) -> Result<Node> {
        const WHAT: &str = "node";
        let mut reader = FieldReader::new(bytes, WHAT);
        let (mut change, mut key, mut log, mut seq, mut value) = (None, None, None, None, None);
        let (mut identity, mut signature, mut links) = (None, None, Vec::new());
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => change = Some(field.varint(&reader, number)?),
                2 => key = Some(field.string(&reader, number)?),
                3 => log = Some(field.string(&reader, number)?),
                4 => seq = Some(field.varint(&reader, number)?),
                5 => value = Some(field.bytes(&reader, number)?.to_vec()),
                6 => links.push(field.string(&reader, number)?),
                7 => identity = Some(field.bytes(&reader, number)?.to_vec()),
                8 => signature = Some(field.bytes(&reader, number)?.to_vec()),
                _ => return Err(reader.unexpected(number)),
            }
        }
        Ok(Node {
            change: required(change, WHAT, "change")?,
            key: required(key, WHAT, "key")?,
            log: required(log, WHAT, "log")?,
            seq: seq.unwrap_or(0),
            value: required(value, WHAT, "value")?,
            links,
            identity,
            signature,
        })
    }
}
