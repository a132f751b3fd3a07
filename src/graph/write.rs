//! The one write path of the graph: turning documents (local) or received nodes (remote)
//! into one atomic storage batch.
//!
//! Everything is checked before anything is written: hashes, links, log sequence numbers,
//! signatures. Change numbers and sequence numbers are assigned only to nodes that will be
//! written, so a failed batch leaves no gap.

use std::collections::{HashMap, HashSet};

use super::node::{Entry, Node};
use super::{Doc, GraphOptions, State};
use crate::error::{Error, Result};
use crate::keys;
use crate::kv::Batch;
use crate::protobuf::{Field, FieldReader};

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
    Remote { key: String, log: String, seq: u64 },
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

    pub(super) fn remote(node: Node) -> Incoming {
        Incoming {
            links: node.links,
            value: node.value,
            identity: node.identity,
            signature: node.signature,
            origin: Origin::Remote {
                key: node.key,
                log: node.log,
                seq: node.seq,
            },
        }
    }
}

/// A batch ready to be written, and what the graph will look like once it is.
pub(super) struct Prepared {
    pub(super) batch: Batch,
    /// One node per incoming document, in the caller's order.
    pub(super) nodes: Vec<Node>,
    pub(super) change_count: u64,
}

/// Reads only the `log` field of a stored node: link resolution needs nothing else.
fn stored_log(bytes: &[u8], key: &str) -> Result<String> {
    let mut reader = FieldReader::new(bytes, "node");
    while let Some((number, field)) = reader.next_field()? {
        if number == 3 {
            if let Field::Bytes(log) = field {
                return String::from_utf8(log.to_vec())
                    .map_err(|_| Error::corrupt(format!("node {key}: log is not UTF-8")));
            }
        }
    }
    Err(Error::corrupt(format!("node {key} has no log")))
}

impl State {
    pub(super) fn prepare(
        &mut self,
        options: &GraphOptions,
        incoming: Vec<Incoming>,
        mut batch: Batch,
    ) -> Result<Prepared> {
        let mut nodes: Vec<Node> = Vec::with_capacity(incoming.len());
        // Nodes new in this batch, by key → index in `nodes`.
        let mut staged: HashMap<String, usize> = HashMap::new();
        // Last seq per log as this batch leaves it.
        let mut seqs: HashMap<String, u64> = HashMap::new();
        let mut change = self.change_count;
        let mut linked: HashSet<String> = HashSet::new();

        for doc in incoming {
            let key = options.hasher.hash(&doc.links, &doc.value);
            if let Origin::Remote { key: claimed, .. } = &doc.origin {
                if *claimed != key {
                    return Err(Error::ChecksumMismatch {
                        claimed: claimed.clone(),
                        actual: key,
                    });
                }
            }
            let log = match &doc.origin {
                Origin::Local => self.log_id.clone(),
                Origin::Remote { log, .. } => log.clone(),
            };

            // Resolve links, collecting the other logs they live in ("log links").
            let mut links_new_node = false;
            let mut log_links: Vec<String> = Vec::new();
            for link in &doc.links {
                let link_log = if let Some(&index) = staged.get(link) {
                    links_new_node = true;
                    nodes[index].log.clone()
                } else {
                    match self.kv.get(&keys::node(link))? {
                        Some(bytes) => stored_log(&bytes, link)?,
                        None => return Err(Error::MissingLink { link: link.clone() }),
                    }
                };
                if link_log != log && !log_links.contains(&link_log) {
                    log_links.push(link_log);
                }
            }

            // An existing node: a node linking to one that is new in this batch cannot exist.
            let existing = match staged.get(&key) {
                Some(&index) => Some(nodes[index].clone()),
                None if !links_new_node => self.node(&key)?,
                None => None,
            };
            if let Some(existing) = existing {
                if let Origin::Remote { log, seq, .. } = &doc.origin {
                    self.record_known(&mut batch, &mut seqs, &existing, log, *seq, log_links)?;
                }
                nodes.push(existing);
                continue;
            }

            let seq = self.next_seq(&mut seqs, &log)?;
            if let Origin::Remote { seq: given, .. } = &doc.origin {
                if *given != seq {
                    return Err(Error::InvalidSeq {
                        log,
                        expected: seq,
                        got: *given,
                    });
                }
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
                Origin::Remote { .. } => {
                    if let Some(verifier) = &options.verifier {
                        if node.log != self.log_id {
                            let valid =
                                verifier
                                    .verify(&node)
                                    .map_err(|_| Error::InvalidSignature {
                                        key: node.key.clone(),
                                    })?;
                            if !valid {
                                return Err(Error::InvalidSignature { key: node.key });
                            }
                        }
                    }
                }
            }

            batch.put(&keys::node(&node.key), &node.encode());
            batch.put(&keys::change(change), node.key.as_bytes());
            let entry = Entry {
                change,
                node: node.key.clone(),
                links: log_links,
            };
            batch.put(&keys::log_entry(&node.log, seq), &entry.encode());
            seqs.insert(node.log.clone(), seq);
            linked.extend(node.links.iter().cloned());
            staged.insert(node.key.clone(), nodes.len());
            nodes.push(node);
        }

        // Heads: only the net effect of the batch is written.
        for link in &linked {
            if !staged.contains_key(link) {
                batch.delete(&keys::head(link));
            }
        }
        for key in staged.keys() {
            if !linked.contains(key) {
                batch.put(&keys::head(key), b"");
            }
        }
        for (log, seq) in &seqs {
            batch.put(&keys::log_seq(log), &keys::encode_u64(*seq));
        }
        if change != self.change_count {
            batch.put(keys::CHANGE_COUNT, &keys::encode_u64(change));
        }
        Ok(Prepared {
            batch,
            nodes,
            change_count: change,
        })
    }

    /// The next sequence number of `log`, counting what this batch already assigned.
    fn next_seq(&mut self, seqs: &mut HashMap<String, u64>, log: &str) -> Result<u64> {
        let last = match seqs.get(log) {
            Some(&seq) => seq,
            None => self.log_seq(log)?,
        };
        Ok(last + 1)
    }

    /// A received node this repository already has (learned through another log): record
    /// it in the log it was sent under, so that log stays dense and replication can compare
    /// heads. Receiving the same `(log, seq)` again is a no-op.
    fn record_known(
        &mut self,
        batch: &mut Batch,
        seqs: &mut HashMap<String, u64>,
        existing: &Node,
        log: &str,
        seq: u64,
        log_links: Vec<String>,
    ) -> Result<()> {
        let expected = self.next_seq(seqs, log)?;
        if seq < expected {
            let recorded = match self.kv.get(&keys::log_entry(log, seq))? {
                Some(bytes) => Entry::decode(&bytes)?.node,
                None => String::new(),
            };
            if recorded == existing.key {
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
        let entry = Entry {
            change: existing.change,
            node: existing.key.clone(),
            links: log_links,
        };
        batch.put(&keys::log_entry(log, seq), &entry.encode());
        seqs.insert(log.to_string(), seq);
        Ok(())
    }
}
