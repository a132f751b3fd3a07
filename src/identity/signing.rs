//! Signed logs: the graph's [`Signer`] and [`Verifier`] hooks with ed25519 device keys.
//!
//! A device signs, for every node it writes, the bytes `"strata-node-v1\0"`, the log's
//! length (u64 big-endian) and the log, the seq (u64 big-endian) and the node's key: so a
//! signature vouches for the content (the key is its hash) and for its place in the log,
//! and cannot be moved to another entry. The signature and the public key travel in the
//! node's `signature` and `identity` fields, outside its hash, so node keys stay
//! hyperlog's.
//!
//! A received node in a device log (a log named by a public key) must carry a signature
//! that verifies under that key, must not name another key, and must not come after the
//! device's removal. A node in any other log (hyperlog's, or a log from before keys) is
//! unsigned by nature: it is accepted only from a plain channel (the plain hyperlog wire,
//! a plain sync file), and only when the repository accepts unsigned nodes. A secure
//! session carries signed entries only, so membership of the project is never a way to
//! slip in entries nobody signed.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::{Signature, Signer as _, VerifyingKey};

use super::keys::{DeviceKey, device_of_log};
use super::members::Members;
use crate::graph::{Channel, Node, Signer, Verifier};

/// The bytes a device signs for `node`.
fn signed_bytes(node: &Node) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(40 + node.log.len() + node.key.len());
    bytes.extend_from_slice(b"strata-node-v1\0");
    bytes.extend_from_slice(&(node.log.len() as u64).to_be_bytes());
    bytes.extend_from_slice(node.log.as_bytes());
    bytes.extend_from_slice(&node.seq.to_be_bytes());
    bytes.extend_from_slice(node.key.as_bytes());
    bytes
}

/// Signs this device's nodes, and binds its repository's log to its key.
pub(super) struct DeviceSigner(pub(super) DeviceKey);

impl Signer for DeviceSigner {
    fn identity(&self) -> Option<Vec<u8>> {
        Some(self.0.public().as_bytes().to_vec())
    }

    fn sign(&self, node: &Node) -> Result<Vec<u8>, String> {
        if node.log != self.0.log_id() {
            return Err(format!(
                "device {} signs only its own log, not {}",
                self.0.log_id(),
                node.log
            ));
        }
        Ok(self
            .0
            .signing()
            .sign(&signed_bytes(node))
            .to_bytes()
            .to_vec())
    }

    fn log_id(&self) -> Option<String> {
        Some(self.0.log_id())
    }
}

/// Verifies received nodes against their log's key and the project's removals.
pub(super) struct LogVerifier(pub(super) Arc<Members>);

/// Signatures in a batch below which a second thread is not worth starting.
const PER_THREAD: usize = 128;

/// Whether every signature verifies, as ed25519 batch verifications of parts of the batch
/// on the machine's cores (the receiving session's thread does one part).
fn verify_in_parallel(messages: &[&[u8]], signatures: &[Signature], keys: &[VerifyingKey]) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let parts = cores.min(messages.len() / PER_THREAD).max(1);
    let size = messages.len().div_ceil(parts);
    let verify = |part: usize| {
        let range = part * size..((part + 1) * size).min(messages.len());
        ed25519_dalek::verify_batch(
            &messages[range.clone()],
            &signatures[range.clone()],
            &keys[range],
        )
        .is_ok()
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..parts)
            .map(|part| scope.spawn(move || verify(part)))
            .collect();
        let first = verify(0);
        // Every part is joined; a panicked part counts as failed (and the caller then
        // checks each signature alone).
        others
            .into_iter()
            .fold(first, |all, other| other.join().unwrap_or(false) && all)
    })
}

/// How a node's signature is checked.
#[derive(Clone, Copy)]
enum Crypto {
    /// On its own, strictly.
    Alone,
    /// Already, with the rest of its batch.
    Checked,
}

impl LogVerifier {
    /// Every check of one node, in order; `public` is its log's key, if a device's.
    fn check(
        &self,
        node: &Node,
        public: Option<&VerifyingKey>,
        channel: Channel,
        crypto: Crypto,
    ) -> Result<(), String> {
        let Some(public) = public else {
            return match channel {
                Channel::Plain if self.0.accepts_unsigned() => Ok(()),
                Channel::Plain => Err("the log is not a device's (no key signs it), and this repository accepts only signed logs".into()),
                Channel::Secure => Err("the log is not a device's (no key signs it), and a secure session carries only signed logs (unsigned history travels over --plain, where the repository allows it)".into()),
            };
        };
        let Some(signature) = &node.signature else {
            return Err("the node is unsigned".into());
        };
        if node
            .identity
            .as_deref()
            .is_some_and(|id| id != public.as_bytes())
        {
            return Err("the node names another device than the one its log belongs to".into());
        }
        let signature = Signature::from_slice(signature)
            .map_err(|_| "the signature is not an ed25519 signature".to_string())?;
        let verified = match crypto {
            Crypto::Alone => public
                .verify_strict(&signed_bytes(node), &signature)
                .is_ok(),
            // A batch check is not strict about weak keys: refuse them here.
            Crypto::Checked => !public.is_weak(),
        };
        if !verified {
            return Err("the signature does not verify under the log's key".into());
        }
        if let Some(last) = self.0.removed_after(&node.log)
            && node.seq > last
        {
            return Err(format!(
                "the device was removed from the project after its entry {last}"
            ));
        }
        self.0.learn(node).map_err(|e| e.to_string())
    }
}

impl Verifier for LogVerifier {
    fn verify(&self, node: &Node, channel: Channel) -> Result<bool, String> {
        let public = device_of_log(&node.log);
        self.check(node, public.as_ref(), channel, Crypto::Alone)
            .map(|()| true)
    }

    /// Checks every signature of the batch in one ed25519 batch verification (several
    /// times cheaper than one check each here, with the log's key decoded once), then the
    /// rest node by node in order. When the batch check fails, each node is checked
    /// alone, which names the first bad one.
    fn verify_all(&self, nodes: &[&Node], channel: Channel) -> Result<(), (usize, String)> {
        let mut keys: HashMap<&str, Option<VerifyingKey>> = HashMap::new();
        let publics: Vec<Option<VerifyingKey>> = nodes
            .iter()
            .map(|node| {
                *keys
                    .entry(&node.log)
                    .or_insert_with(|| device_of_log(&node.log))
            })
            .collect();
        let (mut messages, mut signatures, mut signers) = (Vec::new(), Vec::new(), Vec::new());
        for (node, public) in nodes.iter().zip(&publics) {
            let signature = node.signature.as_deref().map(Signature::from_slice);
            if let (Some(public), Some(Ok(signature))) = (public, signature) {
                messages.push(signed_bytes(node));
                signatures.push(signature);
                signers.push(*public);
            }
        }
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let crypto = if signers.len() > 1 && verify_in_parallel(&messages, &signatures, &signers) {
            Crypto::Checked
        } else {
            Crypto::Alone
        };
        for (index, (node, public)) in nodes.iter().zip(&publics).enumerate() {
            self.check(node, public.as_ref(), channel, crypto)
                .map_err(|reason| (index, reason))?;
        }
        Ok(())
    }

    fn last_accepted(&self, log: &str) -> Option<u64> {
        self.0.removed_after(log)
    }
}
