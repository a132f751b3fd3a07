//! The graph's heads: the nodes no other node links to.
//!
//! A write's new nodes become heads, and the heads they link to stop being heads. Storing
//! the whole set at every write made a write's cost grow with the number of heads (with
//! 1,000 heads, 33 KB written and compacted per node). The set is kept in memory instead,
//! changed by each write, and stored as a checkpoint every [`CHECKPOINT_EVERY`] changes.
//! Loading it replays the changes after the checkpoint in change order: a node's links are
//! stored before it, so each replayed node was a head when it was written, and the nodes
//! it links to stopped being heads then.

use std::collections::{BTreeSet, HashSet};

use super::read::read_node;
use crate::error::{Error, Result};
use crate::store::{Tables, WriteSet};

/// How many changes may follow the stored checkpoint before a write stores a new one: the
/// most node reads loading the heads costs (about a millisecond), against a checkpoint's
/// bytes shared by that many writes.
pub(crate) const CHECKPOINT_EVERY: u64 = 256;

/// Change numbers read per step of the replay.
const PAGE: usize = 1024;

/// The graph's current heads, loaded on first use.
pub(crate) fn heads(tables: &mut Tables) -> Result<&BTreeSet<String>> {
    if tables.loaded_heads().is_none() {
        let (mut heads, as_of) = tables.heads_checkpoint()?;
        let last = tables.change_count()?;
        let mut next = as_of + 1;
        while next <= last {
            let page = tables.keys_from(next, PAGE)?;
            if page.first().is_none_or(|(change, _)| *change != next) {
                return Err(Error::corrupt(format!(
                    "the change index has no change {next} (it goes to {last})"
                )));
            }
            for (change, key) in page.into_iter().take_while(|(change, _)| *change <= last) {
                let node = read_node(tables, &key)?.ok_or_else(|| {
                    Error::corrupt(format!("change {change} names missing node {key}"))
                })?;
                for link in &node.links {
                    heads.remove(link);
                }
                heads.insert(key);
                next = change + 1;
            }
        }
        tables.keep_heads(heads, as_of);
    }
    tables
        .loaded_heads()
        .map(|(heads, _)| heads)
        .ok_or_else(|| Error::corrupt("the heads were not loaded"))
}

/// Adds to `write` how storing `new` nodes, which link to `linked`, changes the heads, and a
/// checkpoint when the write's last change, `last_change`, is far enough past the last one.
pub(super) fn record(
    tables: &mut Tables,
    write: &mut WriteSet,
    new: impl Iterator<Item = String>,
    linked: HashSet<String>,
    last_change: u64,
) -> Result<()> {
    let added: Vec<String> = new.filter(|key| !linked.contains(key)).collect();
    let current = heads(tables)?;
    let removed: HashSet<String> = linked
        .into_iter()
        .filter(|link| current.contains(link))
        .collect();
    let as_of = tables.loaded_heads().map_or(0, |(_, as_of)| as_of);
    if last_change.saturating_sub(as_of) >= CHECKPOINT_EVERY {
        let mut next = heads(tables)?.clone();
        for head in &removed {
            next.remove(head);
        }
        next.extend(added.iter().cloned());
        write.checkpoint_heads(&next, last_change);
    }
    write.change_heads(removed, added);
    Ok(())
}
