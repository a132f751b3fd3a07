//! The one error type of the public API.
//!
//! Every fallible public function returns `Result<_, strata::Error>`. Variants carry the
//! names a user needs to act (the missing link, the locked path, the malformed field), and
//! `Display` is one line so the CLI can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong in strata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process (or another handle in this one) has the repository open.
    #[error("repository is locked by another process: {}", path.display())]
    Locked {
        /// The repository's storage directory.
        path: PathBuf,
    },

    /// An operating-system error, with what strata was doing at the time.
    #[error("{context}: {source}")]
    Io {
        /// What strata was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The storage engine reported an error.
    #[error("storage engine: {0}")]
    Storage(String),

    /// Stored data could not be decoded: the repository is damaged. `strata fsck` reports
    /// every such place.
    #[error("corrupt repository: {0}")]
    Corrupt(String),

    /// Bytes from outside (a file, a peer, an argument) are not what they claim to be.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A node, version or key does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// A node links to a node this repository does not have. Nothing was written.
    #[error("missing link: node {link} does not exist")]
    MissingLink {
        /// The key that was linked to.
        link: String,
    },

    /// A received node's key does not match the hash of its links and value.
    #[error("checksum mismatch: node claims key {claimed} but hashes to {actual}")]
    ChecksumMismatch {
        /// The key the node was sent with.
        claimed: String,
        /// The key its content hashes to.
        actual: String,
    },

    /// A received node does not continue its log: it would leave a gap or rewrite an entry.
    #[error("invalid log sequence for log {log}: expected seq {expected}, got {got}")]
    InvalidSeq {
        /// The log the node was sent under.
        log: String,
        /// The next sequence number this repository expects in that log.
        expected: u64,
        /// The sequence number it came with.
        got: u64,
    },

    /// The signer hook refused to sign a node.
    #[error("signing failed: {0}")]
    Sign(String),

    /// The verifier hook rejected a node's signature.
    #[error("invalid signature on node {key}")]
    InvalidSignature {
        /// The node whose signature was rejected.
        key: String,
    },

    /// A merge found rows changed differently on several sides that neither its own
    /// operations nor a policy settle. Nothing was written.
    #[error(
        "merge conflict on {count} row(s): {rows}; settle them in the merge or choose a policy (ours, theirs, newest)"
    )]
    Conflict {
        /// How many rows conflict.
        count: usize,
        /// The first few, as `dataset/key`.
        rows: String,
    },

    /// A replication session failed: the peer broke the protocol, exceeded a limit, went
    /// silent or hung up early. Everything verified before the failure is kept.
    #[error("replication: {0}")]
    Replication(String),

    /// An argument is outside what the operation accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Error::Corrupt(what.to_string())
    }
}
