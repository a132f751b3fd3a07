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

use std::sync::Arc;

use ed25519_dalek::{Signature, Signer as _};

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

impl Verifier for LogVerifier {
    fn verify(&self, node: &Node, channel: Channel) -> Result<bool, String> {
        let Some(public) = device_of_log(&node.log) else {
            return match channel {
                Channel::Plain if self.0.accepts_unsigned() => Ok(true),
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
        public
            .verify_strict(&signed_bytes(node), &signature)
            .map_err(|_| "the signature does not verify under the log's key".to_string())?;
        if let Some(last) = self.0.removed_after(&node.log)
            && node.seq > last
        {
            return Err(format!(
                "the device was removed from the project after its entry {last}"
            ));
        }
        self.0.learn(node).map_err(|e| e.to_string())?;
        Ok(true)
    }

    fn last_accepted(&self, log: &str) -> Option<u64> {
        self.0.removed_after(log)
    }
}
