//! # strata
//!
//! An embedded, versioned, forkable, replicating dataset store: the 2015 dat-core design on
//! a hyperlog-style graph, with Mapeo Core's fork semantics.
//!
//! A [`Repository`] holds datasets of rows. Every write is a commit, a node in a
//! content-addressed graph; every commit is a [`Version`] that can be read later, on every
//! device, with the same rows. Concurrent writes (on two devices, or on an old version)
//! become forks that reads can see and merges can settle.
//!
//! ```
//! use strata::Repository;
//!
//! let repo = Repository::in_memory()?;
//! let v1 = repo.put("sites", "A", r#"{"depth":3}"#)?;
//! repo.put("sites", "A", r#"{"depth":4}"#)?;
//! assert_eq!(repo.get("sites", "A")?.unwrap().value, br#"{"depth":4}"#);
//! assert_eq!(repo.at(&v1)?.get("sites", "A")?.unwrap().value, br#"{"depth":3}"#);
//! # Ok::<(), strata::Error>(())
//! ```
//!
//! The layers, top down (see `docs/architecture.md`): the dataset store ([`Repository`],
//! [`View`], the version index), the graph ([`Graph`]: hyperlog's DAG of nodes with
//! per-device changelogs), and the storage seam (one LevelDB database through
//! rusty-leveldb). Beside them, tables ([`TableReader`], [`TableWriter`]) move a dataset's
//! rows in and out as NDJSON or CSV text, exactly: whatever a writer writes, a reader with
//! the same [`TableKeys`] reads back to the same rows, byte for byte.
//!
#![doc = include_str!("table/rules.md")]
#![deny(missing_docs)]

mod dataset;
mod error;
mod graph;
mod identity;
mod protobuf;
mod replicate;
mod store;
mod table;

/// Types generated from `proto/` (the wire and storage schemas) by prost-build, checked in
/// as `src/proto/*.rs` so that building strata compiles no protobuf compiler;
/// `tests/proto_generated.rs` fails when they no longer match `proto/*.proto` and says how
/// to regenerate them.
#[doc(hidden)]
pub mod proto {
    /// hyperlog 4.12.1's messages.
    #[allow(missing_docs)]
    pub mod hyperlog {
        include!("proto/hyperlog.rs");
    }
    /// The dataset store's messages (dat-core's, extended).
    #[allow(missing_docs)]
    pub mod strata {
        include!("proto/strata.rs");
    }
}

pub use dataset::{
    BlobReader, Commit, CommitFeed, CommitInfo, CommitType, Content, Diff, DiffEntry, DryRun,
    FileRef, FsckReport, Importer, LostNode, MergePolicy, OpKind, OpenOptions, Operation, Preview,
    Range, RepairReport, RepoStatus, Repository, Row, RowVersion, Rows, STORAGE_DIR, ShortLog,
    Transaction, Version, View, operations_hash,
};
pub use error::{ConflictRow, EXCERPT_BYTES, Error, Result, excerpt};
pub use graph::{
    Changes, Channel, Doc, FramedSha256, Graph, GraphEvent, GraphOptions, Node, NodeHasher, Signer,
    Verifier, framed_update,
};
pub use identity::{Device, DeviceKey, IDENTITY_DIR, Identity, ProjectKey, device_of_log};
pub use replicate::{
    DuplexEnd, Limits, Mode, OnTcpSession, Payload, Peer, PipeReader, PipeWriter, Progress,
    Replica, Session, Stop, SyncFile, SyncFileReport, SyncReport, TcpServer, duplex,
    sync_in_memory,
};
pub use store::{Durability, Entry, Salvage};

/// The crate's internals, for the project's own tests and fuzz targets only.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::store::crash::CrashFs;
    pub use crate::store::keys;
    pub use crate::store::kv;

    /// Every decoder of bytes from outside (a peer, a file, a damaged disk) that the public
    /// API does not already expose, for the fuzz targets in `fuzz/` and their replay in
    /// `tests/fuzz_regressions.rs`.
    pub mod decoders {
        pub use crate::dataset::{IndexRecord, IndexRowEntry};
        pub use crate::replicate::{
            FrameDecoder, Handshake, Hello, LogHead, Message, encode_frame,
        };
        pub use crate::store::{
            decode_entries, decode_keys, encode_entries, encode_keys, key_count,
        };
    }
}
pub use table::{
    Duplicates, KeyFields, ReadAhead, TableFormat, TableKeys, TableReader, TableWriter, TextOrHex,
    compact_json,
};

/// The Rust examples in README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

// Every handle is shareable across threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Repository>();
    shareable::<View>();
    shareable::<Graph>();
    shareable::<Version>();
    shareable::<Error>();
};
