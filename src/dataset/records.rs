//! The values stored in the version index: pointers to operations, and the per-node and
//! per-layer records.
//!
//! A pointer says which operation set a row at some version: the commit node that wrote it
//! (the row's *version id*), that node's local change number, the operations hash and index,
//! whether it is a delete or a file, and the value itself, so that reading a row is one
//! seek (the operation store serves only payload transfer). Pointers are binary; node and
//! layer records are protobuf (`proto/strata.proto`).

use prost::Message;

use crate::error::{Error, Result};
use crate::keys;
use crate::kv::Kv;
use crate::proto::strata::{Layer, Status};

const DELETED: u8 = 1;
const FILE: u8 = 2;
const VERSION_HEX: u8 = 0;
const VERSION_TEXT: u8 = 1;

/// Where a row's value at some version lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub deleted: bool,
    pub file: bool,
    /// The key of the commit node that wrote the operation (the row's version id).
    pub version: String,
    /// That node's local change number.
    pub change: u64,
    /// The commit's operations hash.
    pub ops: [u8; 32],
    /// The operation's index in the commit.
    pub index: u64,
    /// The row's bytes (a put of a row), or the encoded file reference (a put of a file);
    /// empty for a delete.
    pub value: Vec<u8>,
}

impl Pointer {
    /// Whether two pointers name the same operation (the same version of the row).
    pub fn same_op(&self, other: &Pointer) -> bool {
        self.index == other.index && self.version == other.version
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(80 + self.value.len());
        buf.push((u8::from(self.deleted) * DELETED) | (u8::from(self.file) * FILE));
        prost::encoding::encode_varint(self.change, &mut buf);
        prost::encoding::encode_varint(self.index, &mut buf);
        prost::encoding::encode_varint(self.value.len() as u64, &mut buf);
        buf.extend_from_slice(&self.value);
        buf.extend_from_slice(&self.ops);
        match hex32(&self.version) {
            Some(raw) => {
                buf.push(VERSION_HEX);
                buf.extend_from_slice(&raw);
            }
            None => {
                buf.push(VERSION_TEXT);
                buf.extend_from_slice(self.version.as_bytes());
            }
        }
        buf
    }

    pub fn decode(bytes: &[u8]) -> Result<Pointer> {
        let bad = |reason: &str| Error::corrupt(format!("version index pointer: {reason}"));
        let (&flags, mut rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        let change = prost::encoding::decode_varint(&mut rest).map_err(|_| bad("bad change"))?;
        let index = prost::encoding::decode_varint(&mut rest).map_err(|_| bad("bad index"))?;
        let len = prost::encoding::decode_varint(&mut rest).map_err(|_| bad("bad value length"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= rest.len())
            .ok_or_else(|| bad("value runs past the end"))?;
        let (value, rest) = rest.split_at(len);
        let (ops, rest) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("short hash"))?;
        let version = match rest.split_first() {
            Some((&VERSION_HEX, raw)) if raw.len() == 32 => hex::encode(raw),
            Some((&VERSION_TEXT, text)) => {
                String::from_utf8(text.to_vec()).map_err(|_| bad("version is not UTF-8"))?
            }
            _ => return Err(bad("bad version")),
        };
        Ok(Pointer {
            deleted: flags & DELETED != 0,
            file: flags & FILE != 0,
            version,
            change,
            ops: *ops,
            index,
            value: value.to_vec(),
        })
    }
}

/// The 32 raw bytes of a 64-character lowercase hex string.
pub(crate) fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut raw = [0u8; 32];
    hex::decode_to_slice(text, &mut raw).ok()?;
    Some(raw)
}

/// The index record of node `key`, if the node is indexed.
pub(crate) fn node_status(kv: &mut Kv, key: &str) -> Result<Option<Status>> {
    match kv.get(&keys::node_layer(key))? {
        Some(bytes) => Status::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| Error::corrupt(format!("status of {key}: {e}"))),
        None => Ok(None),
    }
}

/// The record of layer `layer`.
pub(crate) fn layer(kv: &mut Kv, layer: u64) -> Result<Layer> {
    let bytes = kv
        .get(&keys::layer_head(layer))?
        .ok_or_else(|| Error::corrupt(format!("layer {layer} has no record")))?;
    Layer::decode(bytes.as_slice()).map_err(|e| Error::corrupt(format!("layer {layer}: {e}")))
}
