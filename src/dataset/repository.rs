//! The repository handle and how one is opened.
//!
//! A repository is a folder (`.strata` inside a project folder, like git's `.git`) holding
//! the LevelDB database (`db/`) and the blob store (`blobs/`), or an in-memory store for
//! tests and embedders. Opening one opens the graph with the version index as its
//! follower, which catches up with anything a crash left unindexed before `open` returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::blobs::Blobs;
use super::index::VersionIndex;
use crate::error::{Error, Result};
use crate::graph::{Follower, Graph, GraphOptions, NodeHasher, Signer, Verifier, WeakGraph};
use crate::identity::Identity;
use crate::store::{Durability, Store};

/// The repositories open in this process, by database folder: opening one again (while a
/// handle, a view or a feed still keeps it open) gives another handle on the same one.
static OPEN: Mutex<Option<HashMap<PathBuf, Opened>>> = Mutex::new(None);

/// What the registry keeps of an open repository: enough to hand out another handle, and
/// nothing that keeps it open.
type Opened = (WeakGraph, Arc<VersionIndex>, Blobs);

/// The name of the folder a repository keeps inside a project folder.
pub const STORAGE_DIR: &str = ".strata";

/// An open repository. Cloning is cheap; clones share it, from any thread.
#[derive(Clone)]
pub struct Repository {
    pub(super) graph: Graph,
    pub(super) index: Arc<VersionIndex>,
    pub(super) blobs: Blobs,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("path", &self.graph.path())
            .finish_non_exhaustive()
    }
}

/// How a repository is opened: durability, the graph's hash and signing hooks, and where.
///
/// ```
/// use strata::{Durability, Repository};
/// let repo = Repository::options().durability(Durability::Synced).in_memory()?;
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    graph: GraphOptions,
    wait: Duration,
    read_only: bool,
    identity: Option<Identity>,
}

impl OpenOptions {
    /// The defaults: flushed writes, framed SHA-256 node keys, no signing.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// How far each write travels before it returns (default [`Durability::Flushed`]).
    pub fn durability(mut self, durability: Durability) -> OpenOptions {
        self.graph.durability = durability;
        self
    }

    /// The function node keys are computed with (every repository that exchanges nodes
    /// must use the same one).
    pub fn hasher(mut self, hasher: Arc<dyn NodeHasher>) -> OpenOptions {
        self.graph.hasher = hasher;
        self
    }

    /// Signs the nodes this repository writes.
    pub fn signer(mut self, signer: Arc<dyn Signer>) -> OpenOptions {
        self.graph.signer = Some(signer);
        self
    }

    /// Verifies the nodes this repository receives.
    pub fn verifier(mut self, verifier: Arc<dyn Verifier>) -> OpenOptions {
        self.graph.verifier = Some(verifier);
        self
    }

    /// The log id a newly created repository gets (default: 16 random bytes in hex).
    pub fn log_id(mut self, log_id: impl Into<String>) -> OpenOptions {
        self.graph.log_id = Some(log_id.into());
        self
    }

    /// Signs with this identity's device key and verifies with its project's rules
    /// (instead of the identity kept in the storage folder, or for an in-memory one).
    pub fn identity(mut self, identity: Identity) -> OpenOptions {
        self.identity = Some(identity);
        self
    }

    /// The graph options with the identity's hooks, if there is one.
    fn with_identity(&self, identity: Option<Identity>) -> GraphOptions {
        let mut graph = self.graph.clone();
        if let Some(identity) = identity.or_else(|| self.identity.clone()) {
            graph.signer = Some(identity.signer());
            graph.verifier = Some(identity.verifier());
        }
        graph
    }

    /// How long to wait for another process that is writing the repository to finish
    /// (default: not at all; then [`crate::Error::Locked`] names who holds it).
    pub fn wait(mut self, wait: Duration) -> OpenOptions {
        self.wait = wait;
        self
    }

    /// Opens for reading only, beside a process that may be writing: no lock is taken or
    /// waited for, the repository is read as it was at the moment of opening, and every
    /// change is refused with [`crate::Error::ReadOnly`].
    pub fn read_only(mut self, read_only: bool) -> OpenOptions {
        self.read_only = read_only;
        self
    }

    /// Opens the existing repository at `path`: a project folder (with `.strata` inside)
    /// or a storage folder itself.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Repository> {
        let path = path.as_ref();
        let storage = Repository::storage_of(path).ok_or_else(|| Error::RepositoryNotFound {
            path: path.to_path_buf(),
        })?;
        self.open_storage(&storage)
    }

    /// Creates a repository in the project folder `folder` (its storage goes in
    /// `folder/.strata`); fails if one exists there.
    pub fn init(&self, folder: impl AsRef<Path>) -> Result<Repository> {
        let folder = folder.as_ref();
        if folder.exists() && !folder.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a folder",
                folder.display()
            )));
        }
        let storage = folder.join(STORAGE_DIR);
        if Store::exists(&storage.join("db")) {
            return Err(Error::InvalidArgument(format!(
                "a repository already exists at {}",
                storage.display()
            )));
        }
        self.open_storage(&storage)
    }

    /// Opens the storage folder `storage`, creating it if needed (for embedders that choose
    /// their own layout).
    pub fn open_storage(&self, storage: impl AsRef<Path>) -> Result<Repository> {
        let storage = storage.as_ref();
        let db = storage.join("db");
        Store::finish_install(&db)?;
        if self.read_only {
            let store = Store::open_read_only(&db)?;
            return Repository::on_store(
                store,
                Blobs::read_only(storage.join("blobs")),
                &self.graph,
            );
        }
        std::fs::create_dir_all(&db)
            .map_err(|e| Error::io(format!("creating {}", db.display()), e))?;
        let key = db
            .canonicalize()
            .map_err(|e| Error::io(format!("finding {}", db.display()), e))?;
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let registry = open.get_or_insert_with(HashMap::new);
        if let Some((graph, index, blobs)) = registry.get(&key)
            && let Some(graph) = graph.upgrade()
        {
            return Ok(Repository {
                graph,
                index: index.clone(),
                blobs: blobs.clone(),
            });
        }
        let store = Store::open(&db, self.wait)?;
        let repo = self.on_open_store(store, storage)?;
        registry.retain(|_, (graph, _, _)| graph.upgrade().is_some());
        registry.insert(
            key,
            (
                repo.graph.downgrade(),
                repo.index.clone(),
                repo.blobs.clone(),
            ),
        );
        Ok(repo)
    }

    /// Opens (creating if needed) a repository on a simulated file system that can lose
    /// power (files are kept in memory, apart from it): for the power-loss tests only.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn on_crash_fs(&self, fs: &crate::internals::CrashFs) -> Result<Repository> {
        let store = Store::on_crash_fs(Path::new("/strata/db"), fs.clone())?;
        Repository::on_store(store, Blobs::in_memory(), &self.graph)
    }

    /// The repository on `store`, opened from storage folder `storage`.
    /// The identity kept in `storage` signs and verifies, unless one was given.
    pub(super) fn on_open_store(&self, store: Store, storage: &Path) -> Result<Repository> {
        let identity = match &self.identity {
            Some(_) => None,
            None => Identity::load(storage)?,
        };
        Repository::on_store(
            store,
            Blobs::in_dir(storage.join("blobs"))?,
            &self.with_identity(identity),
        )
    }

    /// A fresh repository that lives in memory only (files included).
    pub fn in_memory(&self) -> Result<Repository> {
        Repository::on_store(
            Store::in_memory()?,
            Blobs::in_memory(),
            &self.with_identity(None),
        )
    }
}

impl Repository {
    /// Opens the existing repository at `path` (a project folder or a storage folder).
    pub fn open(path: impl AsRef<Path>) -> Result<Repository> {
        OpenOptions::new().open(path)
    }

    /// Creates a repository in `folder` (its storage goes in `folder/.strata`).
    pub fn init(folder: impl AsRef<Path>) -> Result<Repository> {
        OpenOptions::new().init(folder)
    }

    /// A fresh repository that lives in memory only.
    pub fn in_memory() -> Result<Repository> {
        OpenOptions::new().in_memory()
    }

    /// Options for opening a repository another way.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    fn on_store(store: Store, blobs: Blobs, options: &GraphOptions) -> Result<Repository> {
        if !store.read_only() {
            super::paged_merge::recover(&store)?;
        }
        let index = Arc::new(VersionIndex::new());
        let follower: Arc<dyn Follower> = index.clone();
        let graph = Graph::on_store(store, options.clone(), Some(follower))?;
        Ok(Repository {
            graph,
            index,
            blobs,
        })
    }

    /// The storage folder of the repository at `path` (a project folder or the storage
    /// folder itself), if there is one.
    pub fn storage_of(path: &Path) -> Option<PathBuf> {
        if Store::exists(&path.join(STORAGE_DIR).join("db")) {
            Some(path.join(STORAGE_DIR))
        } else if Store::exists(&path.join("db")) {
            Some(path.to_path_buf())
        } else {
            None
        }
    }

    /// Finds the repository containing `start`, looking upward like git.
    pub fn discover(start: &Path) -> Option<PathBuf> {
        start.ancestors().find_map(|dir| {
            let storage = dir.join(STORAGE_DIR);
            Store::exists(&storage.join("db")).then_some(storage)
        })
    }

    /// The graph underneath (plumbing: nodes, heads, changelogs).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Compacts the storage now: merges its tables and reclaims the space of what was
    /// overwritten. LevelDB also does this on its own as data is written; this does all of
    /// it at once (before a backup, say). Readers and pinned checks are not disturbed.
    pub fn compact(&self) -> Result<()> {
        self.graph.store().lock().compact()
    }

    /// The database folder (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.graph.path()
    }
}
