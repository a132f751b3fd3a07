//! The graph's heads: the nodes no other node links to.
//!
//! A write's new nodes become heads, and the heads they link to stop being heads. The set
//! lives in memory, changed by each write, and is stored as a checkpoint every so many
//! changes (see `store::checkpoint`). Loading it replays the changes after the checkpoint
//! in change order: a node's links are stored before it, so each replayed node was a head
//! when it was written, and the nodes it links to stopped being heads then.

use std::collections::{BTreeSet, HashSet};

use super::read::read_node;
use crate::error::{Error, Result};
use crate::store::{Tables, WriteSet};

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
        .ok_or_else(|| Error::corrupt("the graph's heads were not loaded"))
}

/// Adds to `write` how storing `new` nodes, which link to `linked`, changes the heads; the
/// write's last change is `last_change`.
pub(super) fn record(
    tables: &mut Tables,
    write: &mut WriteSet,
    new: impl Iterator<Item = String>,
    linked: HashSet<String>,
    last_change: u64,
) -> Result<()> {
    let current = heads(tables)?;
    for link in linked.iter().filter(|link| current.contains(*link)) {
        write.remove_head(link);
    }
    for key in new.filter(|key| !linked.contains(key)) {
        write.add_head(&key, last_change);
    }
    Ok(())
}
