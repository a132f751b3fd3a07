//! Who is in the project: device names and removals, carried as signed records in the
//! graph so they travel with every sync, and kept in `identity/project.json` so checking a
//! node never reads the history.
//!
//! A record is a node whose value is `"STRATA-MEMBER\0"` followed by JSON: `{"op":
//! "name", "name", "at"}` (a device names itself) or `{"op": "remove", "device", "after",
//! "at"}` (a member removes `device` after its entry `after`: later entries of that log
//! are refused). A record links to nothing, so it never joins a dataset's history, and its
//! value never decodes as a commit. Records are learned when they are written here or when
//! a received one verifies; a removal only ever tightens (the earliest cutoff wins).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::keys::device_of_log;
use crate::error::{Error, Result};
use crate::graph::Node;

/// What starts a membership record's value.
const RECORD: &[u8] = b"STRATA-MEMBER\0";

/// A membership record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum Record {
    /// The writing device's name.
    Name {
        /// The name.
        name: String,
        /// When, in milliseconds since the Unix epoch (the writer's clock).
        at: u64,
    },
    /// A device removed from the project.
    Remove {
        /// The removed device's log (its public key in hex).
        device: String,
        /// Its last entry that stays accepted.
        after: u64,
        /// When, in milliseconds since the Unix epoch (the writer's clock).
        at: u64,
    },
}

impl Record {
    /// The record in `value`, if it is one.
    pub(super) fn parse(value: &[u8]) -> Option<Record> {
        serde_json::from_slice(value.strip_prefix(RECORD)?).ok()
    }

    /// The node value holding this record.
    pub(super) fn encode(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::corrupt(format!("encoding a membership record: {e}")))?;
        Ok([RECORD, &json].concat())
    }

    /// When it was written.
    pub(super) fn at(&self) -> u64 {
        match self {
            Record::Name { at, .. } | Record::Remove { at, .. } => *at,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What `project.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    /// Whether nodes outside device logs (unsigned) are accepted.
    accept_unsigned: bool,
    /// Device names, by log.
    names: BTreeMap<String, String>,
    /// Removed devices, by log: the last entry that stays accepted.
    removed: BTreeMap<String, u64>,
}

/// The membership state of one repository (shared by its verifier and its API).
#[derive(Debug)]
pub(super) struct Members {
    /// Where it is kept (`None` in memory).
    path: Option<PathBuf>,
    state: RwLock<State>,
}

impl Members {
    /// A new state kept in memory only.
    pub(super) fn in_memory(accept_unsigned: bool) -> Members {
        Members {
            path: None,
            state: RwLock::new(State {
                accept_unsigned,
                ..State::default()
            }),
        }
    }

    /// A new state, saved at `path`.
    pub(super) fn create(path: PathBuf, accept_unsigned: bool) -> Result<Members> {
        let members = Members {
            path: Some(path),
            ..Members::in_memory(accept_unsigned)
        };
        members.save(&members.read())?;
        Ok(members)
    }

    /// The state kept at `path`.
    pub(super) fn load(path: PathBuf) -> Result<Members> {
        let context = |e| Error::io(format!("reading {}", path.display()), e);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Security(format!("{} is not a project state: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(context(e)),
        };
        Ok(Members {
            path: Some(path),
            state: RwLock::new(state),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state and saves it.
    fn update(&self, change: impl FnOnce(&mut State) -> bool) -> Result<()> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if change(&mut state) {
            self.save(&state)?;
        }
        Ok(())
    }

    fn save(&self, state: &State) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let context = |e| Error::io(format!("writing {}", path.display()), e);
        let dir = path
            .parent()
            .ok_or_else(|| Error::corrupt("no identity folder"))?;
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::corrupt(format!("encoding the project state: {e}")))?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(context)?;
        std::io::Write::write_all(&mut file, &json).map_err(context)?;
        file.as_file().sync_all().map_err(context)?;
        file.persist(path).map_err(|e| context(e.error))?;
        Ok(())
    }

    /// Whether nodes outside device logs are accepted.
    pub(super) fn accepts_unsigned(&self) -> bool {
        self.read().accept_unsigned
    }

    /// Sets whether nodes outside device logs are accepted.
    pub(super) fn set_accept_unsigned(&self, accept: bool) -> Result<()> {
        self.update(|state| std::mem::replace(&mut state.accept_unsigned, accept) != accept)
    }

    /// The last accepted entry of `log`, if its device was removed.
    pub(super) fn removed_after(&self, log: &str) -> Option<u64> {
        self.read().removed.get(log).copied()
    }

    /// The name `log`'s device gave itself.
    pub(super) fn name_of(&self, log: &str) -> Option<String> {
        self.read().names.get(log).cloned()
    }

    /// Takes in the record `node` holds, if any (`node` is in a device log and verified,
    /// or written here).
    pub(super) fn learn(&self, node: &Node) -> Result<()> {
        match Record::parse(&node.value) {
            Some(Record::Name { name, .. }) => self.update(|state| {
                state.names.insert(node.log.clone(), name.clone()).as_ref() != Some(&name)
            }),
            Some(Record::Remove { device, after, .. }) if device_of_log(&device).is_some() => self
                .update(|state| match state.removed.get(&device) {
                    Some(&cutoff) if cutoff <= after => false,
                    _ => {
                        state.removed.insert(device, after);
                        true
                    }
                }),
            _ => Ok(()),
        }
    }
}
