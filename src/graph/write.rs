//! The one write path of the graph: turning documents (local) or received nodes (remote)
//! into one atomic storage batch.
//!
//! Everything is checked before anything is written: hashes, links, log sequence numbers,
//! signatures. Change numbers and sequence numbers are assigned only to nodes that will be
//! written, so a failed batch leaves no gap.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::node::{Entry, Node};
use super::runs::{self, NewRuns};
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

    pub(super) fn links(&self) -> &[String] {
        &self.links
    }

    pub(super) fn value(&self) -> &[u8] {
        &self.value
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
    /// New nodes as `(key, log)`, for the memory of recent nodes.
    pub(super) stored: Vec<(String, String)>,
    /// The heads after the write, when it changes them.
    pub(super) heads: Option<BTreeSet<String>>,
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
        let mut runs = NewRuns::new(self.change_count + 1);
        let mut change = self.change_count;
        let mut linked: HashSet<String> = HashSet::new();

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
                Origin::Local => self.log_id.clone(),
                Origin::Remote { log, .. } => log.clone(),
            };

            // Resolve links, collecting the other logs they live in ("log links"). A node
            // linking to a node new in this batch, or to a current head, cannot exist
            // already (that node would not be new, or not a head).
            let mut cannot_exist = false;
            let mut log_links: Vec<String> = Vec::new();
            for link in &doc.links {
                let link_log = if let Some(&index) = staged.get(link) {
                    cannot_exist = true;
                    nodes[index].log.clone()
                } else if let Some(log) = self.recent.log_of(link) {
                    log.to_string()
                } else {
                    match self.kv.get(&keys::node(link))? {
                        Some(bytes) => stored_log(&bytes, link)?,
                        None => return Err(Error::MissingLink { link: link.clone() }),
                    }
                };
                cannot_exist |= self.heads.contains(link);
                if link_log != log && !log_links.contains(&link_log) {
                    log_links.push(link_log);
                }
            }

            let existing = match staged.get(&key) {
                Some(&index) => Some(nodes[index].clone()),
                None if !cannot_exist => self.node(&key)?,
                None => None,
            };
            if let Some(existing) = existing {
                if let Origin::Remote { log, seq, .. } = &doc.origin {
                    self.record_known(&mut runs, &existing, log, *seq, log_links)?;
                }
                nodes.push(existing);
                continue;
            }

            let seq = self.next_seq(&runs, &log)?;
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
                // Every node that comes from elsewhere is verified, whatever log it claims:
                // a peer must not be able to slip unverified nodes into our own log.
                Origin::Remote { .. } => {
                    if let Some(verifier) = &options.verifier {
                        let invalid = || Error::InvalidSignature {
                            key: node.key.clone(),
                        };
                        if !verifier.verify(&node).map_err(|_| invalid())? {
                            return Err(invalid());
                        }
                    }
                }
            }

            batch.put(&keys::node(&node.key), &node.encode());
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

        // Heads: the new set, written whole when the batch changes it.
        let mut heads = None;
        if !staged.is_empty() {
            let mut next = self.heads.clone();
            next.retain(|head| !linked.contains(head));
            next.extend(staged.keys().filter(|key| !linked.contains(*key)).cloned());
            let refs: Vec<&str> = next.iter().map(String::as_str).collect();
            batch.put(keys::HEADS, &runs::encode_keys(&refs));
            heads = Some(next);
        }
        runs.write_to(&mut batch);
        let stored = staged
            .iter()
            .map(|(key, &index)| (key.clone(), nodes[index].log.clone()))
            .collect();
        Ok(Prepared {
            batch,
            nodes,
            change_count: change,
            stored,
            heads,
        })
    }

    /// The next sequence number of `log`, counting what this write already assigned.
    fn next_seq(&mut self, runs: &NewRuns, log: &str) -> Result<u64> {
        let last = match runs.last_seq(log) {
            Some(seq) => seq,
            None => self.log_seq(log)?,
        };
        Ok(last + 1)
    }

    /// A received node this repository already has (learned through another log): record
    /// it in the log it was sent under, so that log stays dense and replication can compare
    /// heads. Receiving the same `(log, seq)` again is a no-op.
    fn record_known(
        &mut self,
        runs: &mut NewRuns,
        existing: &Node,
        log: &str,
        seq: u64,
        log_links: Vec<String>,
    ) -> Result<()> {
        let expected = self.next_seq(runs, log)?;
        if seq < expected {
            let recorded = match runs.entry(log, seq) {
                Some(entry) => Some(entry.node.clone()),
                None => runs::entry_at(&mut self.kv, log, seq)?.map(|entry| entry.node),
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
}
