//! The one write path of the graph: turning documents (local) or received nodes (remote)
//! into one atomic storage batch.
//!
//! Everything is checked before anything is written: hashes, links, log sequence numbers,
//! signatures. Change numbers and sequence numbers are assigned only to nodes that will be
//! written, so a failed batch leaves no gap.

use std::collections::{HashMap, HashSet};

use super::node::Node;
use super::{Channel, Doc, GraphOptions};
use crate::error::{Error, Result};
use crate::protobuf::{Field, FieldReader};
use crate::store::{Entry, NewRuns, Tables, WriteSet};

/// A node to be written, and where it comes from.
pub(super) struct Incoming {
    links: Vec<String>,
    value: Vec<u8>,
    identity: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    origin: Origin,
}

enum Origin {
    /// Written here, into this repository's own log.
    Local,
    /// Received from another repository, under the key, log and seq it was sent with.
    Remote {
        key: String,
        log: String,
        seq: u64,
        channel: Channel,
    },
}

impl Incoming {
    pub(super) fn local(doc: Doc) -> Incoming {
        Incoming {
            links: doc.links,
            value: doc.value,
            identity: doc.identity,
            signature: None,
            origin: Origin::Local,
        }
    }

    pub(super) fn links(&self) -> &[String] {
        &self.links
    }

    pub(super) fn value(&self) -> &[u8] {
        &self.value
    }

    pub(super) fn remote(node: Node, channel: Channel) -> Incoming {
        Incoming {
            links: node.links,
            value: node.value,
            identity: node.identity,
            signature: node.signature,
            origin: Origin::Remote {
                key: node.key,
                log: node.log,
                seq: node.seq,
                channel,
            },
        }
    }
}

/// What a prepared write will store.
pub(super) struct Prepared {
    /// One node per incoming document, in the caller's order.
    pub(super) nodes: Vec<Node>,
    /// Whether the write stores any new node.
    pub(super) grew: bool,
}

/// Reads only the `log` field of a stored node: link resolution needs nothing else.
fn stored_log(bytes: &[u8], key: &str) -> Result<String> {
    let mut reader = FieldReader::new(bytes, "node");
    while let Some((number, field)) = reader.next_field()? {
        if number == 3
            && let Field::Bytes(log) = field
        {
            return String::from_utf8(log.to_vec())
                .map_err(|_| Error::corrupt(format!("node {key}: log is not UTF-8")));
        }
    }
    Err(Error::corrupt(format!("node {key} has no log")))
}

/// Checks `incoming` and adds to `write` everything storing it takes: node records, the
/// runs of new change numbers and log entries, and the new heads. Nothing is written if
/// any document fails a check.
pub(super) fn prepare(
    tables: &mut Tables,
    options: &GraphOptions,
    own_log: &str,
    incoming: Vec<Incoming>,
    write: &mut WriteSet,
) -> Result<Prepared> {
    let first_change = tables.change_count()? + 1;
    let mut nodes: Vec<Node> = Vec::with_capacity(incoming.len());
    // Nodes new in this batch, by key → index in `nodes`.
    let mut staged: HashMap<String, usize> = HashMap::new();
    let mut runs = NewRuns::new(first_change);
    let mut change = first_change - 1;
    let mut linked: HashSet<String> = HashSet::new();
    // New nodes from elsewhere (by index in `nodes`) and their channel, verified together
    // once the batch is assembled.
    let mut received: Vec<usize> = Vec::new();
    let mut received_via = Channel::Plain;

    for doc in incoming {
        let key = options.hasher.hash(&doc.links, &doc.value);
        if let Origin::Remote { key: claimed, .. } = &doc.origin
            && *claimed != key
        {
            return Err(Error::ChecksumMismatch {
                claimed: claimed.clone(),
                actual: key,
            });
        }
        let log = match &doc.origin {
            Origin::Local => own_log.to_string(),
            Origin::Remote { log, .. } => log.clone(),
        };

        // Resolve links, collecting the other logs they live in ("log links"). A node
        // linking to a node new in this batch, or to a current head, cannot exist already
        // (that node would not be new, or not a head).
        let mut cannot_exist = false;
        let mut log_links: Vec<String> = Vec::new();
        for link in &doc.links {
            let link_log = if let Some(&index) = staged.get(link) {
                cannot_exist = true;
                nodes[index].log.clone()
            } else if let Some(log) = tables.recent_log_of(link) {
                log.to_string()
            } else {
                match tables.node_bytes(link)? {
                    Some(bytes) => stored_log(&bytes, link)?,
                    None => return Err(Error::MissingLink { link: link.clone() }),
                }
            };
            cannot_exist |= super::heads::heads(tables)?.contains(link);
            if link_log != log && !log_links.contains(&link_log) {
                log_links.push(link_log);
            }
        }

        let existing = match staged.get(&key) {
            Some(&index) => Some(nodes[index].clone()),
            None if !cannot_exist => super::read_node(tables, &key)?,
            None => None,
        };
        if let Some(existing) = existing {
            if let Origin::Remote { log, seq, .. } = &doc.origin {
                record_known(tables, &mut runs, &existing, log, *seq, log_links)?;
            }
            nodes.push(existing);
            continue;
        }

        let seq = next_seq(tables, &runs, &log)?;
        if let Origin::Remote { seq: given, .. } = &doc.origin
            && *given != seq
        {
            return Err(Error::InvalidSeq {
                log,
                expected: seq,
                got: *given,
            });
        }
        change += 1;
        let mut node = Node {
            key,
            links: doc.links,
            value: doc.value,
            log,
            seq,
            change,
            identity: doc.identity,
            signature: doc.signature,
        };
        match &doc.origin {
            Origin::Local => {
                if let Some(signer) = &options.signer {
                    node.signature = Some(signer.sign(&node).map_err(Error::Sign)?);
                    if node.identity.is_none() {
                        node.identity = signer.identity();
                    }
                }
            }
            Origin::Remote { channel, .. } => {
                received.push(nodes.len());
                received_via = *channel;
            }
        }

        write.put_node(&node.key, &node.log, &node.encode());
        runs.add_change(&node.key);
        runs.add_entry(
            &node.log,
            seq,
            Entry {
                change,
                node: node.key.clone(),
                links: log_links,
            },
        );
        linked.extend(node.links.iter().cloned());
        staged.insert(node.key.clone(), nodes.len());
        nodes.push(node);
    }

    // Every node that comes from elsewhere is verified, whatever log it claims (a peer
    // must not be able to slip unverified nodes into our own log), before anything of the
    // batch is written, all at once: signatures are cheaper checked together.
    if let Some(verifier) = &options.verifier
        && !received.is_empty()
    {
        let batch: Vec<&Node> = received.iter().map(|&i| &nodes[i]).collect();
        if let Err((index, reason)) = verifier.verify_all(&batch, received_via) {
            let node = batch.get(index).copied().unwrap_or(batch[0]);
            return Err(Error::InvalidSignature {
                key: node.key.clone(),
                log: node.log.clone(),
                reason,
                peer: None,
            });
        }
    }

    if !staged.is_empty() {
        super::heads::record(tables, write, staged.keys().cloned(), linked, change)?;
    }
    write.put_runs(runs, change);
    Ok(Prepared {
        nodes,
        grew: !staged.is_empty(),
    })
}

/// The next sequence number of `log`, counting what this write already assigned.
fn next_seq(tables: &mut Tables, runs: &NewRuns, log: &str) -> Result<u64> {
    let last = match runs.last_seq(log) {
        Some(seq) => seq,
        None => tables.last_seq(log)?,
    };
    Ok(last + 1)
}

/// A received node this repository already has (learned through another log): record
/// it in the log it was sent under, so that log stays dense and replication can compare
/// heads. Receiving the same `(log, seq)` again is a no-op.
fn record_known(
    tables: &mut Tables,
    runs: &mut NewRuns,
    existing: &Node,
    log: &str,
    seq: u64,
    log_links: Vec<String>,
) -> Result<()> {
    let expected = next_seq(tables, runs, log)?;
    if seq < expected {
        let recorded = match runs.entry(log, seq) {
            Some(entry) => Some(entry.node.clone()),
            None => tables.log_entry(log, seq)?.map(|entry| entry.node),
        };
        if recorded.as_deref() == Some(existing.key.as_str()) {
            return Ok(());
        }
    }
    if seq != expected {
        return Err(Error::InvalidSeq {
            log: log.to_string(),
            expected,
            got: seq,
        });
    }
    runs.add_entry(
        log,
        seq,
        Entry {
            change: existing.change,
            node: existing.key.clone(),
            links: log_links,
        },
    );
    Ok(())
}
