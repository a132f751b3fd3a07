//! The one error type of the public API.
//!
//! Every fallible public function returns `Result<_, strata::Error>`. Variants carry the
//! names a user needs to act (the missing link, the locked path, the malformed field), and
//! `Display` is one line so the CLI can print it as is.

use std::borrow::Cow;
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
    #[error(
        "row {} not found in dataset {}",
        crate::error::show(key),
        crate::error::show(dataset)
    )]
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

    /// The verifier hook rejected a node: its signature, or its log's key, or the removal
    /// of the device that wrote it. The whole batch holding it was refused.
    #[error("rejected node {key} in log {log}{}: {reason}", peer.as_ref().map(|p| format!(" from {p}")).unwrap_or_default())]
    InvalidSignature {
        /// The node whose signature was rejected.
        key: String,
        /// The log it was sent under.
        log: String,
        /// Why the verifier rejected it.
        reason: String,
        /// The peer it came from, when it came through a session or a sync file.
        peer: Option<String>,
    },

    /// Keys, encryption or membership: a key file that cannot be used, a peer that does not
    /// hold the project key, an encrypted stream or file that was altered.
    #[error("security: {0}")]
    Security(String),

    /// A merge found rows changed differently on several sides that neither its own
    /// operations nor a policy settle. Nothing was written.
    #[error(
        "merge conflict on {} row(s): {}",
        rows.len(),
        crate::error::first_rows(rows)
    )]
    Conflict {
        /// Every conflicting row, in (dataset, key) order.
        rows: Vec<ConflictRow>,
    },

    /// A replication session failed: the peer broke the protocol, exceeded a limit, went
    /// silent or hung up early. Everything verified before the failure is kept.
    #[error("replication: {0}")]
    Replication(String),

    /// An argument is outside what the operation accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A table (NDJSON or CSV) cannot be read or written exactly: a line that is not a row,
    /// or a row that the format cannot hold.
    #[error("{place}: {reason}")]
    Table {
        /// Where: `sites.csv line 17`, or `row s-17` when writing.
        place: String,
        /// Why.
        reason: String,
    },
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

/// User bytes as a message quotes them: UTF-8 text as is, anything else as `0x…` hex, cut
/// by [`excerpt`].
pub(crate) fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => excerpt(text).into_owned(),
        Err(_) => excerpt(&format!("0x{}", hex::encode(bytes))).into_owned(),
    }
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most bytes of user data (a key, a field name, a header) that a message quotes.
pub const EXCERPT_BYTES: usize = 200;

/// `text` as a message quotes it: whole when it is at most [`EXCERPT_BYTES`] long, else cut
/// on a character boundary to at most that many bytes with `…` added, so that a 5 MB line
/// never makes a 5 MB message. Every message that quotes user data goes through this.
///
/// ```
/// let long = "é".repeat(1000);
/// let quoted = strata::excerpt(&long);
/// assert!(quoted.len() <= strata::EXCERPT_BYTES + "…".len());
/// assert!(quoted.ends_with("é…"));
/// assert_eq!(strata::excerpt("short"), "short");
/// ```
pub fn excerpt(text: &str) -> Cow<'_, str> {
    if text.len() <= EXCERPT_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Why an empty row key is refused, wherever it comes from.
const EMPTY_KEY: &str = "a row key cannot be empty";

impl Error {
    /// The refusal of an empty dataset name: no operation accepts one.
    pub fn empty_dataset() -> Error {
        Error::InvalidArgument("a dataset name cannot be empty".into())
    }

    /// The refusal of an empty row key: no operation accepts one.
    pub fn empty_key() -> Error {
        Error::InvalidArgument(EMPTY_KEY.into())
    }

    /// The same refusal for a row of a table, at `place` (`sites.csv line 3`).
    pub(crate) fn empty_key_at(place: String) -> Error {
        Error::Table {
            place,
            reason: EMPTY_KEY.into(),
        }
    }

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
