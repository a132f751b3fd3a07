//! Hooks for signed logs: a [`Signer`] signs the nodes this repository writes, a
//! [`Verifier`] checks the nodes it receives from other logs.
//!
//! No particular cryptography is built in; `identity` and `signature` are carried, stored
//! and replicated unchanged, so an ed25519 identity can be plugged in later without a
//! format change. Neither field is part of the node's hash.

use super::node::Node;

/// Signs nodes written locally.
pub trait Signer: Send + Sync {
    /// The identity recorded on nodes that do not name their own.
    fn identity(&self) -> Option<Vec<u8>>;

    /// Signs `node` (its key, links and value are final; its identity is the one given for
    /// this document, if any). An error rejects the write.
    fn sign(&self, node: &Node) -> Result<Vec<u8>, String>;

    /// The log this signer's nodes belong in, when its key is bound to one (a device key
    /// names its log). A repository whose own log is another one (created before it had a
    /// key) continues in this log from then on; its earlier log stays as history.
    fn log_id(&self) -> Option<String> {
        None
    }
}

/// How received nodes reached this repository: what a [`Verifier`] may take on trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// An authenticated session or a sealed sync file: the sender holds the project key.
    Secure,
    /// The plain hyperlog wire, a plain sync file, or nodes handed to
    /// [`Graph::ingest`](crate::Graph::ingest): anyone could have sent them.
    Plain,
}

/// Verifies nodes received from other logs.
pub trait Verifier: Send + Sync {
    /// Whether `node`'s signature is valid, given the channel it came through. `Ok(false)`
    /// or an error rejects the node.
    fn verify(&self, node: &Node, channel: Channel) -> Result<bool, String>;

    /// Verifies the new nodes of one received batch, in order (all came through
    /// `channel`): the index of the first one rejected and why. The default calls
    /// [`Verifier::verify`] on each; a verifier can do better by checking their
    /// signatures together.
    fn verify_all(&self, nodes: &[&Node], channel: Channel) -> Result<(), (usize, String)> {
        for (index, node) in nodes.iter().enumerate() {
            match self.verify(node, channel) {
                Ok(true) => {}
                Ok(false) => return Err((index, "invalid signature".into())),
                Err(reason) => return Err((index, reason)),
            }
        }
        Ok(())
    }

    /// The last entry of `log` this verifier can accept, when it accepts no later one (the
    /// log of a removed device): a session does not ask a peer for more.
    fn last_accepted(&self, log: &str) -> Option<u64> {
        let _ = log;
        None
    }
}
