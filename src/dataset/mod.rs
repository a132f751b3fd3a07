//! The dataset store: dat-core's data model on the graph, with Mapeo's fork semantics and
//! versions decided by causality.
//!
//! A [`Repository`] holds datasets (namespaces of rows: any bytes as key and value, or a
//! file). Every write is one commit node in the graph; the version index turns commits
//! into versions, so any version can be read (`at`), latest shows every current head with
//! forks visible, and versions can be merged and diffed. `docs/data-model.md` defines what
//! a version reads; each concern has its own file:
//!
//! * `repository`: the handle and opening; `checkout`: naming versions, views, checkout;
//! * `transaction` and `importer`: the write path; `parents`: what a commit links to;
//!   `merge`: what a merge must settle; `paged_merge`: a merge too large for one write;
//! * `view` and `range`: reads; `read`: shortcuts and history; `diff`; `feed`;
//! * `replica`: the replication seam; `fsck`: verification; `repair`: recovery;
//! * `index`: the version index; `commit`: commits and operations; `blobs`: files.

mod blobs;
mod checkout;
pub(crate) mod commit;
mod diff;
mod feed;
mod fsck;
mod importer;
mod index;
mod merge;
mod paged_merge;
mod parents;
mod range;
mod read;
mod repair;
mod replica;
mod repository;
mod transaction;
mod version;
mod view;

pub use blobs::BlobReader;
pub use commit::{Commit, CommitType, Content, FileRef, OpKind, Operation, operations_hash};
pub use diff::{Diff, DiffEntry};
pub use feed::{CommitFeed, CommitInfo};
pub use fsck::FsckReport;
pub use importer::Importer;
#[cfg(feature = "internals")]
pub use index::{IndexRecord, IndexRowEntry};
pub use merge::MergePolicy;
pub use range::{Range, Rows};
pub use repair::{LostNode, RepairReport, ShortLog};
pub(crate) use replica::WantedBlob;
pub use repository::{OpenOptions, Repository, STORAGE_DIR};
pub use transaction::{DryRun, Preview, Transaction};
pub use version::Version;
pub use view::{RepoStatus, Row, RowVersion, View};
