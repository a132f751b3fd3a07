//! Messages: one type byte, then a protobuf body (spec §3.1).
//!
//! Types 0–5 are hyperlog's, byte for byte. strata's own messages (payload transfer and
//! the ends of a peer's wants and payload requests) use types 16–23, which hyperlog 4.12.1 ignores, and are only
//! sent to a peer that introduced itself as strata in its handshake. Any other type is
//! ignored, as hyperlog does. Bodies are decoded strictly: a missing required field, an
//! unknown field, a wrong wire type, trailing bytes after an empty message or bytes past
//! the end are errors, never panics.

use crate::error::{Error, Result};
use crate::graph::Node;
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};

/// The protocol version hyperlog 4.12.1 speaks and strata sends.
pub(crate) const VERSION: u64 = 1;

/// The type bytes.
mod kind {
    pub const HANDSHAKE: u8 = 0;
    pub const HAVE: u8 = 1;
    pub const WANT: u8 = 2;
    pub const NODE: u8 = 3;
    pub const SENT_HEADS: u8 = 4;
    pub const SENT_WANTS: u8 = 5;
    pub const WANTS_DONE: u8 = 16;
    pub const WANT_PAYLOAD: u8 = 17;
    pub const PAYLOAD: u8 = 18;
    pub const NO_PAYLOAD: u8 = 19;
    pub const WANT_FILE: u8 = 20;
    pub const FILE_DATA: u8 = 21;
    pub const NO_FILE: u8 = 22;
    pub const PAYLOAD_DONE: u8 = 23;
}

/// The first message each side sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The protocol version (1).
    pub version: u64,
    /// `sync`, `push` or `pull`; hyperlog omits it for sync.
    pub mode: Option<String>,
    /// Free bytes; strata puts its hello here.
    pub metadata: Option<Vec<u8>>,
    /// Whether the sender stays connected for new nodes after the exchange.
    pub live: bool,
}

/// "I have log `log` up to `seq`" (Have) or "send me log `log` after `seq`" (Want).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHead {
    /// The log id.
    pub log: String,
    /// A sequence number in that log.
    pub seq: u64,
}

/// One message of either protocol.
// The extension messages' fields are the ones their variant's text names; docs/protocol.md
// gives each byte by byte.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// hyperlog: the first message.
    Handshake(Handshake),
    /// hyperlog: "I have this log up to this seq".
    Have(LogHead),
    /// hyperlog: "send me this log after this seq".
    Want(LogHead),
    /// hyperlog: one node.
    Node(Node),
    /// hyperlog: "I have sent a Have for each of my heads".
    SentHeads,
    /// hyperlog: "I have received everything I wanted".
    SentWants,
    /// strata: "I have sent every Want your Haves called for".
    WantsDone,
    /// strata: "send me the operations with this hash".
    WantPayload { hash: String },
    /// strata: a piece of the operations with this hash; `last` on the final piece.
    Payload {
        hash: String,
        operations: Vec<Vec<u8>>,
        last: bool,
    },
    /// strata: "you will not get these operations from me" (not here, or not chosen).
    NoPayload { hash: String },
    /// strata: "send me the blob of this file row of commit `version`".
    WantFile {
        version: String,
        dataset: Vec<u8>,
        key: Vec<u8>,
        hash: String,
    },
    /// strata: a piece of the blob with this SHA-256; `last` on the final piece.
    FileData {
        hash: String,
        data: Vec<u8>,
        last: bool,
    },
    /// strata: "you will not get this blob from me".
    NoFile { hash: String },
    /// strata: "I will ask for no more payload".
    PayloadDone,
    /// A type neither protocol defines: ignored.
    Unknown(u8),
}

impl Message {
    /// The type byte and protobuf body, ready to be framed.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        match self {
            Message::Handshake(h) => {
                buf.push(kind::HANDSHAKE);
                put_varint(&mut buf, 1, h.version);
                if let Some(mode) = &h.mode {
                    put_bytes(&mut buf, 2, mode.as_bytes());
                }
                if let Some(metadata) = &h.metadata {
                    put_bytes(&mut buf, 3, metadata);
                }
                if h.live {
                    put_varint(&mut buf, 4, 1);
                }
            }
            Message::Have(head) => encode_log(&mut buf, kind::HAVE, head),
            Message::Want(head) => encode_log(&mut buf, kind::WANT, head),
            Message::Node(node) => {
                buf.push(kind::NODE);
                buf.extend_from_slice(&node.encode());
            }
            Message::SentHeads => buf.push(kind::SENT_HEADS),
            Message::SentWants => buf.push(kind::SENT_WANTS),
            Message::WantsDone => buf.push(kind::WANTS_DONE),
            Message::WantPayload { hash } => encode_hash(&mut buf, kind::WANT_PAYLOAD, hash),
            Message::Payload {
                hash,
                operations,
                last,
            } => {
                encode_hash(&mut buf, kind::PAYLOAD, hash);
                for op in operations {
                    put_bytes(&mut buf, 2, op);
                }
                put_varint(&mut buf, 3, u64::from(*last));
            }
            Message::NoPayload { hash } => encode_hash(&mut buf, kind::NO_PAYLOAD, hash),
            Message::WantFile {
                version,
                dataset,
                key,
                hash,
            } => {
                encode_hash(&mut buf, kind::WANT_FILE, hash);
                put_bytes(&mut buf, 2, version.as_bytes());
                put_bytes(&mut buf, 3, dataset);
                put_bytes(&mut buf, 4, key);
            }
            Message::FileData { hash, data, last } => {
                encode_hash(&mut buf, kind::FILE_DATA, hash);
                put_bytes(&mut buf, 2, data);
                put_varint(&mut buf, 3, u64::from(*last));
            }
            Message::NoFile { hash } => encode_hash(&mut buf, kind::NO_FILE, hash),
            Message::PayloadDone => buf.push(kind::PAYLOAD_DONE),
            Message::Unknown(kind) => buf.push(*kind),
        }
        buf
    }

    /// Decodes one frame. An empty frame has no type byte and is an error.
    pub fn decode(frame: &[u8]) -> Result<Message> {
        let (&kind, body) = frame
            .split_first()
            .ok_or_else(|| Error::malformed("message", "an empty frame has no type byte"))?;
        Ok(match kind {
            kind::HANDSHAKE => Message::Handshake(decode_handshake(body)?),
            kind::HAVE => Message::Have(decode_log(body, "Have")?),
            kind::WANT => Message::Want(decode_log(body, "Want")?),
            kind::NODE => Message::Node(Node::decode(body)?),
            kind::SENT_HEADS => empty(body, "SentHeads", Message::SentHeads)?,
            kind::SENT_WANTS => empty(body, "SentWants", Message::SentWants)?,
            kind::WANTS_DONE => empty(body, "WantsDone", Message::WantsDone)?,
            kind::PAYLOAD_DONE => empty(body, "PayloadDone", Message::PayloadDone)?,
            kind::WANT_PAYLOAD => Message::WantPayload {
                hash: decode_hash_only(body, "WantPayload")?,
            },
            kind::NO_PAYLOAD => Message::NoPayload {
                hash: decode_hash_only(body, "NoPayload")?,
            },
            kind::NO_FILE => Message::NoFile {
                hash: decode_hash_only(body, "NoFile")?,
            },
            kind::PAYLOAD => decode_payload(body)?,
            kind::WANT_FILE => decode_want_file(body)?,
            kind::FILE_DATA => decode_file_data(body)?,
            other => Message::Unknown(other),
        })
    }
}

fn encode_log(buf: &mut Vec<u8>, kind: u8, head: &LogHead) {
    buf.push(kind);
    put_bytes(buf, 1, head.log.as_bytes());
    put_varint(buf, 2, head.seq);
}

fn encode_hash(buf: &mut Vec<u8>, kind: u8, hash: &str) {
    buf.push(kind);
    put_bytes(buf, 1, hash.as_bytes());
}

fn empty(body: &[u8], what: &'static str, message: Message) -> Result<Message> {
    if body.is_empty() {
        Ok(message)
    } else {
        Err(Error::malformed(what, "this message has no body"))
    }
}

fn decode_handshake(body: &[u8]) -> Result<Handshake> {
    const WHAT: &str = "Handshake";
    let mut reader = FieldReader::new(body, WHAT);
    let mut version = None;
    let mut handshake = Handshake::default();
    while let Some((number, field)) = reader.next_field()? {
        match number {
            1 => version = Some(field.varint(&reader, number)?),
            2 => handshake.mode = Some(field.string(&reader, number)?),
            3 => handshake.metadata = Some(field.bytes(&reader, number)?.to_vec()),
            4 => handshake.live = field.varint(&reader, number)? != 0,
            _ => return Err(reader.unexpected(number)),
        }
    }
    handshake.version = required(version, WHAT, "version")?;
    Ok(handshake)
}

fn decode_log(body: &[u8], what: &'static str) -> Result<LogHead> {
    let mut reader = FieldReader::new(body, what);
    let (mut log, mut seq) = (None, None);
    while let Some((number, field)) = reader.next_field()? {
        match number {
            1 => log = Some(field.string(&reader, number)?),
            2 => seq = Some(field.varint(&reader, number)?),
            _ => return Err(reader.unexpected(number)),
        }
    }
    Ok(LogHead {
        log: required(log, what, "log")?,
        seq: required(seq, what, "seq")?,
    })
}

/// The fields of a strata extension message: the hash (field 1) is always required.
#[derive(Default)]
struct ExtFields {
    hash: Option<String>,
    text: Option<String>,
    /// The bytes fields, each with its field number, in the order they came.
    bytes: Vec<(u32, Vec<u8>)>,
    last: bool,
}

impl ExtFields {
    /// The values of bytes field `number`, in order.
    fn all(&self, number: u32) -> impl Iterator<Item = &Vec<u8>> {
        self.bytes
            .iter()
            .filter(move |(n, _)| *n == number)
            .map(|(_, bytes)| bytes)
    }
}

/// Reads an extension body: 1 = hash, 2 = text or bytes (repeated for `Payload`), 3 and 4 =
/// bytes or the `last` flag, depending on the message.
fn decode_ext(body: &[u8], what: &'static str, allowed: &[u32]) -> Result<ExtFields> {
    let mut reader = FieldReader::new(body, what);
    let mut fields = ExtFields::default();
    while let Some((number, field)) = reader.next_field()? {
        if !allowed.contains(&number) {
            return Err(reader.unexpected(number));
        }
        match (what, number) {
            (_, 1) => fields.hash = Some(field.string(&reader, number)?),
            ("WantFile", 2) => fields.text = Some(field.string(&reader, number)?),
            (_, 3) if what != "WantFile" => fields.last = field.varint(&reader, number)? != 0,
            _ => fields
                .bytes
                .push((number, field.bytes(&reader, number)?.to_vec())),
        }
    }
    if required(fields.hash.as_ref(), what, "hash")?.is_empty() {
        return Err(Error::malformed(what, "the hash is empty"));
    }
    Ok(fields)
}

fn decode_hash_only(body: &[u8], what: &'static str) -> Result<String> {
    let fields = decode_ext(body, what, &[1])?;
    Ok(fields.hash.unwrap_or_default())
}

fn decode_payload(body: &[u8]) -> Result<Message> {
    let fields = decode_ext(body, "Payload", &[1, 2, 3])?;
    let operations = fields.all(2).cloned().collect();
    Ok(Message::Payload {
        hash: fields.hash.unwrap_or_default(),
        operations,
        last: fields.last,
    })
}

fn decode_want_file(body: &[u8]) -> Result<Message> {
    const WHAT: &str = "WantFile";
    let fields = decode_ext(body, WHAT, &[1, 2, 3, 4])?;
    // Fields may come in any order; of a repeated one the last counts, as in protobuf.
    let dataset = required(fields.all(3).last(), WHAT, "dataset")?.clone();
    let key = required(fields.all(4).last(), WHAT, "key")?.clone();
    Ok(Message::WantFile {
        version: required(fields.text, WHAT, "version")?,
        dataset,
        key,
        hash: fields.hash.unwrap_or_default(),
    })
}

fn decode_file_data(body: &[u8]) -> Result<Message> {
    let fields = decode_ext(body, "FileData", &[1, 2, 3])?;
    if fields.bytes.len() > 1 {
        return Err(Error::malformed("FileData", "more than one data field"));
    }
    let data = fields.all(2).next().cloned().unwrap_or_default();
    Ok(Message::FileData {
        hash: fields.hash.unwrap_or_default(),
        data,
        last: fields.last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    #[test]
    fn hyperlog_bytes() {
        // Spec §3.1 and Appendix A.
        let handshake = Message::Handshake(Handshake {
            version: 1,
            ..Handshake::default()
        });
        assert_eq!(hex(&handshake.encode()), "000801");
        let full = Message::Handshake(Handshake {
            version: 1,
            mode: Some("push".into()),
            metadata: Some(b"m".to_vec()),
            live: true,
        });
        assert_eq!(hex(&full.encode()), "0008011204707573681a016d2001");
        let have = Message::Have(LogHead {
            log: "B".into(),
            seq: 1,
        });
        assert_eq!(hex(&have.encode()), "010a01421001");
        assert_eq!(hex(&Message::SentHeads.encode()), "04");
        assert_eq!(hex(&Message::SentWants.encode()), "05");
    }

    #[test]
    fn every_message_round_trips() {
        let messages = vec![
            Message::Handshake(Handshake {
                version: 1,
                mode: Some("pull".into()),
                metadata: None,
                live: false,
            }),
            Message::Want(LogHead {
                log: "A".into(),
                seq: 0,
            }),
            Message::WantsDone,
            Message::WantPayload { hash: "h".into() },
            Message::Payload {
                hash: "h".into(),
                operations: vec![vec![1, 2], vec![]],
                last: true,
            },
            Message::NoPayload { hash: "h".into() },
            Message::WantFile {
                version: "v".into(),
                dataset: vec![],
                key: b"k".to_vec(),
                hash: "h".into(),
            },
            Message::FileData {
                hash: "h".into(),
                data: vec![9; 10],
                last: false,
            },
            Message::NoFile { hash: "h".into() },
            Message::PayloadDone,
            Message::Unknown(200),
        ];
        for message in messages {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for frame in [
            &[][..],
            &[0],          // a handshake without its version
            &[1, 0x0a],    // a Have cut inside a field
            &[1, 0x08, 1], // a Have whose log is a varint
            &[4, 0],       // SentHeads with a body
            &[3, 0xff, 0xff],
            &[17, 0x0a, 0],       // WantPayload with an empty hash
            &[20, 0x0a, 1, b'h'], // WantFile without dataset and key
        ] {
            assert!(Message::decode(frame).is_err(), "{frame:?}");
        }
    }
}
