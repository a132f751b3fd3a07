//! Identity and access: the device key that signs a repository's log, the project key that
//! opens its sessions, and who is in the project.
//!
//! A repository with an [`Identity`] keeps it in `identity/` beside its database (never in
//! the graph): `device.key` and `project.key` (hex, mode 0600, see `keys.rs`) and
//! `project.json` (membership state, see `members.rs`). Opening such a repository installs
//! the device's signer and the project's verifier on its graph (see `signing.rs`): every
//! node it writes is signed and lands in the log named by its public key, and every node it
//! receives is verified.
//!
//! **Upgrade.** A repository created before keys opens as before (unsigned, no verifier).
//! [`Identity::create`] on it (`strata project init`) gives it keys; from its next open it
//! writes into its new device log, its earlier log stays as unsigned history, and it keeps
//! accepting unsigned nodes from peers that have not upgraded yet, until
//! [`Identity::set_accept_unsigned`] turns that off. A repository created with keys
//! accepts only signed logs from the start.
//!
//! ```
//! use strata::{Identity, Repository};
//! let identity = Identity::in_memory(strata::ProjectKey::generate());
//! let repo = Repository::options().identity(identity.clone()).in_memory()?;
//! repo.put("sites", "A", "1")?;
//! assert_eq!(repo.graph().log_id(), identity.log_id());
//! # Ok::<(), strata::Error>(())
//! ```

mod keys;
mod members;
mod signing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use keys::{DeviceKey, ProjectKey, device_of_log};

use crate::dataset::Commit;
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Signer, Verifier};
use members::{Members, Record, now_ms};
use signing::{DeviceSigner, LogVerifier};

/// The folder, inside a repository's storage folder, that holds its identity.
pub const IDENTITY_DIR: &str = "identity";
const DEVICE_FILE: &str = "device.key";
const PROJECT_FILE: &str = "project.key";
const STATE_FILE: &str = "project.json";

/// A repository's identity: its device key, its project's key and the membership state.
/// Cloning is cheap; clones share the state.
#[derive(Clone, Debug)]
pub struct Identity {
    device: DeviceKey,
    project: ProjectKey,
    members: Arc<Members>,
}

/// A device of the project, as this repository knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its public key in hex: its log id.
    pub key: String,
    /// The name it gave itself, if that record has arrived here.
    pub name: Option<String>,
    /// How many entries of its log this repository holds.
    pub entries: u64,
    /// When it wrote its first entry held here (ms since the Unix epoch, its own clock).
    pub first_seen: Option<u64>,
    /// When it wrote its last entry held here (ms since the Unix epoch, its own clock).
    pub last_seen: Option<u64>,
    /// If it was removed: its last entry that stays accepted.
    pub removed_after: Option<u64>,
    /// Whether it is this repository's own device.
    pub this_device: bool,
}

impl Identity {
    /// A new identity that lives in memory only (for in-memory repositories and tests),
    /// in the project `project`.
    pub fn in_memory(project: ProjectKey) -> Identity {
        Identity {
            device: DeviceKey::generate(),
            project,
            members: Arc::new(Members::in_memory(false)),
        }
    }

    /// Creates an identity in the storage folder `storage`: a new device key and a new
    /// project key. Fails if it has one. A repository that already has a database (created
    /// before keys) keeps accepting unsigned nodes (see the module's upgrade notes).
    pub fn create(storage: impl AsRef<Path>) -> Result<Identity> {
        Identity::create_in(storage.as_ref(), ProjectKey::generate())
    }

    /// Joins the project `project`: creates the identity of `storage` if it has none (as
    /// [`Identity::create`] does), else replaces its project key. The device key stays.
    pub fn join(storage: impl AsRef<Path>, project: ProjectKey) -> Result<Identity> {
        let storage = storage.as_ref();
        match Identity::load(storage)? {
            None => Identity::create_in(storage, project),
            Some(identity) => {
                project.save(&Identity::dir(storage).join(PROJECT_FILE))?;
                Ok(Identity {
                    project,
                    ..identity
                })
            }
        }
    }

    /// The identity kept in the storage folder `storage`, if it has one.
    pub fn load(storage: impl AsRef<Path>) -> Result<Option<Identity>> {
        let dir = Identity::dir(storage.as_ref());
        if !dir.join(DEVICE_FILE).exists() {
            return Ok(None);
        }
        Ok(Some(Identity {
            device: DeviceKey::load(&dir.join(DEVICE_FILE))?,
            project: ProjectKey::load(&dir.join(PROJECT_FILE))?,
            members: Arc::new(Members::load(dir.join(STATE_FILE))?),
        }))
    }

    fn create_in(storage: &Path, project: ProjectKey) -> Result<Identity> {
        let dir = Identity::dir(storage);
        if dir.join(DEVICE_FILE).exists() {
            return Err(Error::InvalidArgument(format!(
                "{} already has an identity",
                storage.display()
            )));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let upgrading = storage.join("db").exists();
        let members = Members::create(dir.join(STATE_FILE), upgrading)?;
        project.save(&dir.join(PROJECT_FILE))?;
        // The device key goes last: its file is what marks the identity as complete.
        let device = DeviceKey::generate();
        device.save(&dir.join(DEVICE_FILE))?;
        Ok(Identity {
            device,
            project,
            members: Arc::new(members),
        })
    }

    fn dir(storage: &Path) -> PathBuf {
        storage.join(IDENTITY_DIR)
    }

    /// This device's key.
    pub fn device(&self) -> &DeviceKey {
        &self.device
    }

    /// The project key (what an invite shows).
    pub fn project_key(&self) -> &ProjectKey {
        &self.project
    }

    /// This device's log id (its public key in hex).
    pub fn log_id(&self) -> String {
        self.device.log_id()
    }

    /// The signer to open the repository's graph with.
    pub fn signer(&self) -> Arc<dyn Signer> {
        Arc::new(DeviceSigner(self.device.clone()))
    }

    /// The verifier to open the repository's graph with.
    pub fn verifier(&self) -> Arc<dyn Verifier> {
        Arc::new(LogVerifier(self.members.clone()))
    }

    /// Whether nodes outside device logs (unsigned: hyperlog's, or from repositories
    /// without keys) are accepted.
    pub fn accepts_unsigned(&self) -> bool {
        self.members.accepts_unsigned()
    }

    /// Sets whether nodes outside device logs are accepted (kept with the identity).
    pub fn set_accept_unsigned(&self, accept: bool) -> Result<()> {
        self.members.set_accept_unsigned(accept)
    }

    /// Writes this device's name into `graph` (the repository's graph, opened with this
    /// identity), so that it travels to every member.
    pub fn set_name(&self, graph: &Graph, name: &str) -> Result<Node> {
        self.record(
            graph,
            Record::Name {
                name: name.to_string(),
                at: now_ms(),
            },
        )
    }

    /// Removes the device whose log is `device` from the project: writes a signed removal
    /// into `graph`, after which every replica the removal reaches refuses that log's
    /// entries past the ones this replica holds now. Entries already copied stay, as
    /// history.
    pub fn remove(&self, graph: &Graph, device: &str) -> Result<Node> {
        if device_of_log(device).is_none() {
            return Err(Error::InvalidArgument(format!(
                "{device} is not a device key (64 hex digits, from `strata project devices`)"
            )));
        }
        let after = graph.log_head(device)?;
        self.record(
            graph,
            Record::Remove {
                device: device.to_string(),
                after,
                at: now_ms(),
            },
        )
    }

    fn record(&self, graph: &Graph, record: Record) -> Result<Node> {
        if graph.log_id() != self.log_id() {
            return Err(Error::InvalidArgument(
                "the graph was not opened with this identity".into(),
            ));
        }
        let node = graph.add(&[], record.encode()?)?;
        self.members.learn(&node)?;
        Ok(node)
    }

    /// The devices whose logs `graph` holds (and this one), with what this repository
    /// knows of them.
    pub fn devices(&self, graph: &Graph) -> Result<Vec<Device>> {
        let own = self.log_id();
        let mut logs = graph.logs()?;
        if !logs.iter().any(|(log, _)| *log == own) {
            logs.push((own.clone(), 0));
        }
        let mut devices = Vec::new();
        for (log, entries) in logs {
            if device_of_log(&log).is_none() {
                continue;
            }
            devices.push(Device {
                name: self.members.name_of(&log),
                entries,
                first_seen: written_at(graph, &log, 1)?,
                last_seen: written_at(graph, &log, entries)?,
                removed_after: self.members.removed_after(&log),
                this_device: log == own,
                key: log,
            });
        }
        Ok(devices)
    }
}

/// When entry `seq` of `log` was written, by its writer's clock, if it says.
fn written_at(graph: &Graph, log: &str, seq: u64) -> Result<Option<u64>> {
    let Some(entry) = graph.log_entry(log, seq)? else {
        return Ok(None);
    };
    let node = graph.get(&entry.node)?;
    Ok(match Commit::decode(&node.value) {
        Ok(commit) => Some(commit.modified),
        Err(_) => Record::parse(&node.value).map(|r| r.at()),
    })
}
