//! Versions: the names of commits, and how a name a user types becomes one.
//!
//! A version is the key of an indexed commit (64 lowercase hex characters with the default
//! hash). Users may name one by any unambiguous prefix (upper or lower case), by `HEAD`
//! (where the repository is: its checkout, else the head this device writes on), by
//! `latest` when there is one head, and by `NAME~N`, the N-th first-parent ancestor.
//! Only commits are versions: a graph node that is not a commit never resolves.

use std::fmt;

use super::index::VersionIndex;
use crate::error::{Error, Result, excerpt};
use crate::graph::read_node;
use crate::store::Tables;

/// A version: the key of a commit that is visible in this repository.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(String);

impl Version {
    pub(crate) fn new(key: String) -> Version {
        Version(key)
    }

    /// The full key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, as `log --oneline` shows it.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.short())
    }
}

impl std::ops::Deref for Version {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<Version> for String {
    fn eq(&self, other: &Version) -> bool {
        *self == other.0
    }
}

impl PartialEq<Version> for &str {
    fn eq(&self, other: &Version) -> bool {
        *self == other.0
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Version> for String {
    fn from(version: Version) -> String {
        version.0
    }
}

impl PartialEq<str> for Version {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Version {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Version {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The index sequence number of `version`, which must be a version here (one that is
/// stored but waits for a parent or its payload is reported as pending).
pub(crate) fn iseq(tables: &mut Tables, version: &Version) -> Result<u64> {
    match tables.iseq_of(version.as_str())? {
        Some(iseq) => Ok(iseq),
        None => Err(Error::VersionNotFound {
            name: version.to_string(),
            pending: is_waiting_commit(tables, version.as_str())?,
        }),
    }
}

/// Whether `key` is a stored commit node that is not (yet) a version.
fn is_waiting_commit(tables: &mut Tables, key: &str) -> Result<bool> {
    Ok(read_node(tables, key)?
        .is_some_and(|node| crate::dataset::commit::Commit::decode(&node.value).is_ok()))
}

/// The shortest prefix a version may be named by.
const MIN_PREFIX: usize = 4;

/// How many matching node keys a prefix lookup examines (only commits count).
const PREFIX_SCAN: usize = 4096;

/// Resolves a version name under the lock. `head` is what `HEAD` means.
pub(crate) fn resolve(
    index: &VersionIndex,
    tables: &mut Tables,
    name: &str,
    head: impl FnOnce(&mut Tables) -> Result<Option<Version>>,
) -> Result<Version> {
    let (base, steps) = match name.rsplit_once('~') {
        Some((base, steps)) => {
            let steps = if steps.is_empty() {
                1
            } else {
                steps.parse::<u64>().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "{:?}: what follows ~ must be a number",
                        excerpt(name)
                    ))
                })?
            };
            (base, steps)
        }
        None => (name, 0),
    };
    let not_found = |pending| Error::VersionNotFound {
        name: excerpt(name).into_owned(),
        pending,
    };
    let mut version = match base {
        "HEAD" | "head" => head(tables)?.ok_or_else(|| not_found(false))?,
        "latest" => {
            let tips: Vec<String> = super::index::tips(tables)?.iter().cloned().collect();
            match tips.as_slice() {
                [] => return Err(not_found(false)),
                [one] => Version(one.clone()),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "latest has {} heads, so it is not one version: name one of them (strata heads)",
                        tips.len()
                    )));
                }
            }
        }
        prefix => by_prefix(tables, prefix, not_found)?,
    };
    for _ in 0..steps {
        let iseq = tables
            .iseq_of(version.as_str())?
            .ok_or_else(|| not_found(false))?;
        let record = index.record(tables, iseq)?;
        let parent = record.first_parent().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{:?} goes back past the first commit of its history",
                excerpt(name)
            ))
        })?;
        version = Version(index.record(tables, parent)?.inner.node.clone());
    }
    Ok(version)
}

fn by_prefix(
    tables: &mut Tables,
    prefix: &str,
    not_found: impl Fn(bool) -> Error,
) -> Result<Version> {
    if prefix.len() < MIN_PREFIX {
        return Err(Error::InvalidArgument(format!(
            "version {prefix:?} is too short: give at least {MIN_PREFIX} characters"
        )));
    }
    let lower = prefix.to_ascii_lowercase();
    let mut versions = Vec::new();
    let mut pending = false;
    for key in tables.node_keys_with_prefix(&lower, PREFIX_SCAN)? {
        if tables.iseq_of(&key)?.is_some() {
            if key == lower {
                return Ok(Version(key));
            }
            versions.push(key);
        } else if is_waiting_commit(tables, &key)? {
            pending = true;
        }
    }
    match versions.len() {
        0 => Err(not_found(pending)),
        1 => Ok(Version(versions.remove(0))),
        _ => Err(Error::AmbiguousVersion {
            prefix: excerpt(prefix).into_owned(),
            matches: versions.into_iter().take(5).collect(),
        }),
    }
}
