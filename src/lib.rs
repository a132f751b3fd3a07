//! # strata
//!
//! An embedded, versioned, forkable, replicating dataset store: the 2015 dat-core design on
//! a hyperlog-style graph, with Mapeo Core's fork semantics.
//!
//! The layers, bottom up (see `docs/architecture.md`):
//!
//! * [`kv`]: the only code that touches LevelDB (rusty-leveldb), exposing only operations
//!   verified correct, and durable commits;
//! * [`keys`]: every key family and its order-preserving byte encoding;
//! * [`graph`]: the content-addressed DAG of nodes with per-device changelogs (hyperlog);
//! * [`replicate`]: hyperlog's replication protocol, with payload, over any byte stream.
//!
//! ```
//! use strata::graph::{Graph, GraphOptions};
//!
//! let graph = Graph::in_memory(GraphOptions::default())?;
//! let hello = graph.add(&[], "hello")?;
//! assert_eq!(hello.key, "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
//! let world = graph.append("world")?;
//! assert_eq!(world.links, vec![hello.key.clone()]);
//! assert_eq!(graph.heads()?, vec![world]);
//! # Ok::<(), strata::Error>(())
//! ```

pub mod dataset;
pub mod error;
pub mod graph;
pub mod keys;
pub mod kv;
mod protobuf;
pub mod replicate;

/// Types generated from `proto/hyperlog.proto` (the wire and storage schema).
pub mod proto {
    /// hyperlog 4.12.1's messages.
    pub mod hyperlog {
        include!(concat!(env!("OUT_DIR"), "/hyperlog.rs"));
    }
    /// The dataset store's messages (dat-core's, extended).
    pub mod strata {
        include!(concat!(env!("OUT_DIR"), "/strata.rs"));
    }
}

pub use dataset::{MergePolicy, Range, Repository, Row, View};
pub use error::{Error, Result};
pub use graph::{Doc, Graph, GraphOptions, Node};
pub use kv::Durability;
pub use replicate::{Mode, Payload, Progress, Session, SyncReport};

/// The Rust examples in README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
