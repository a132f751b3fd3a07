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
    /// Another process is writing the repository (and did not finish within the wait
    /// allowed).
    #[error("repository {} is locked by {}", path.display(), holder.as_deref().unwrap_or("another process"))]
    Locked {
        /// The repository's storage directory.
        path: PathBuf,
        /// Who holds it, as it recorded itself: `process <pid> (<command>)`.
        holder: Option<String>,
    },

    /// The repository was opened read-only (beside a process that writes it), so it cannot
    /// be changed through this handle.
    #[error("the repository is open read-only; open it for writing to change it")]
    ReadOnly,

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

    /// No repository exists at a path.
    #[error("no strata repository at {}", path.display())]
    RepositoryNotFound {
        /// Where one was looked for.
        path: PathBuf,
    },

    /// A name does not denote a version here: no commit has that key or prefix, or the
    /// commit is not visible yet (its payload or a parent has not arrived).
    #[error("unknown version {name}{}", if *.pending { " (it is stored, but its payload or a parent has not arrived yet)" } else { "" })]
    VersionNotFound {
        /// The name as given.
        name: String,
        /// True when the commit is stored but still pending.
        pending: bool,
    },

    /// A version prefix matches several versions.
    #[error("ambiguous version {prefix}: it matches {}", matches.join(", "))]
    AmbiguousVersion {
        /// The prefix as given.
        prefix: String,
        /// Some of the versions it matches (at least two).
        matches: Vec<String>,
    },

    /// A row does not exist (or is deleted) in the view read.
    #[error("row {} not found in dataset {}", crate::error::show(key), crate::error::show(dataset))]
    RowNotFound {
        /// The dataset.
        dataset: Vec<u8>,
        /// The row key.
        key: Vec<u8>,
    },

    /// A dataset has no live rows in the view read (or was never written).
    #[error("dataset {} not found", crate::error::show(dataset))]
    DatasetNotFound {
        /// The dataset name.
        dataset: Vec<u8>,
    },

    /// Something else named is not stored here: a graph node, a blob, a change number.
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
        "merge conflict on {} row(s): {}; settle them in the merge or choose a policy (ours, theirs, newest)",
        rows.len(),
        crate::error::first_rows(rows)
    )]
    Conflict {
        /// Every conflicting row, in (dataset, key) order.
        rows: Vec<ConflictRow>,
    },

    /// An argument is outside what the operation accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// One row a merge cannot settle on its own: the concurrent versions it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictRow {
    /// The dataset.
    pub dataset: Vec<u8>,
    /// The row key.
    pub key: Vec<u8>,
    /// The concurrent versions of the row (commit keys), newest first.
    pub versions: Vec<String>,
}

/// How many conflicting rows the one-line message names.
const ROWS_SHOWN: usize = 5;

fn first_rows(rows: &[ConflictRow]) -> String {
    let mut shown: Vec<String> = rows
        .iter()
        .take(ROWS_SHOWN)
        .map(|row| format!("{}/{}", show(&row.dataset), show(&row.key)))
        .collect();
    if rows.len() > ROWS_SHOWN {
        shown.push(format!("and {} more", rows.len() - ROWS_SHOWN));
    }
    shown.join(", ")
}

/// The longest piece of user data an error message quotes.
const QUOTED: usize = 200;

/// User bytes as they appear in a message: UTF-8 text as is, anything else as `0x…` hex,
/// cut to about 200 bytes with an ellipsis.
pub(crate) fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.len() <= QUOTED => text.to_string(),
        Ok(text) => {
            let mut end = QUOTED;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &text[..end])
        }
        Err(_) if bytes.len() <= QUOTED / 2 => format!("0x{}", hex::encode(bytes)),
        Err(_) => format!("0x{}…", hex::encode(&bytes[..QUOTED / 2])),
    }
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
