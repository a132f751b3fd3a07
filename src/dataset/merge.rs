//! Merging heads: three-way, keeping every non-conflicting change from every side.
//!
//! Before a merge commit is written, the rows changed on both sides since the common
//! ancestor are compared. A row changed to different values on two sides is a conflict; it
//! must be settled by the merge's own operations or by a policy, which writes the chosen
//! side's value into the merge commit. An unsettled conflict is an error and nothing is
//! written. Everything else is taken from whichever side changed it, by the indexer.

use std::collections::{BTreeMap, BTreeSet};

use super::commit::{Content, OpKind, Operation};
use super::lineage::{self, Path, RowId};
use super::read::{lookup, newest, same, same_content};
use super::records::Pointer;
use crate::error::{Error, Result};
use crate::graph::State;

/// How a merge settles a row changed differently on several sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// Keep the first head's value (this device's own head, when it is merged). When the
    /// first head did not change the row, the newest of the changes is taken.
    Ours,
    /// Take the other head's value (with three or more heads, the newest among the other
    /// heads that changed the row).
    Theirs,
    /// Take the newest of the values the heads changed the row to (commit time, ties
    /// broken by version id).
    Newest,
}

/// The operation that sets a row to what `entry` says.
fn copy_of(row: &RowId, entry: Option<&Pointer>) -> Operation {
    let (kind, content, value) = match entry.filter(|e| !e.deleted) {
        Some(entry) => (
            OpKind::Put,
            if entry.file {
                Content::File
            } else {
                Content::Row
            },
            Some(entry.value.clone()),
        ),
        None => (OpKind::Delete, Content::Row, None),
    };
    Operation {
        kind,
        content,
        dataset: row.0.clone(),
        key: row.1.clone(),
        value,
    }
}

/// Checks a merge of `links` (first = ours) for conflicts between every pair of heads,
/// settles them with `policy`, and returns the merge's operations: `ops` plus one per
/// conflict settled by the policy. A row is a conflict when two heads changed it since
/// their common ancestor to different contents, and the merge's own operations do not set
/// it.
pub(crate) fn resolve_conflicts(
    state: &mut State,
    links: &[String],
    mut ops: Vec<Operation>,
    policy: Option<MergePolicy>,
) -> Result<Vec<Operation>> {
    let own: BTreeSet<RowId> = ops
        .iter()
        .map(|op| (op.dataset.clone(), op.key.clone()))
        .collect();
    let paths: Vec<Path> = links
        .iter()
        .map(|link| lineage::path_of(&mut state.kv, link))
        .collect::<Result<_>>()?;
    // Conflicting rows, with the heads that changed them in a conflicting way.
    let mut conflicts: BTreeMap<RowId, BTreeSet<usize>> = BTreeMap::new();
    for i in 0..links.len() {
        for j in i + 1..links.len() {
            let walk = lineage::merge_base(state, &links[i], &links[j])?;
            let base_path: Path = match &walk.base {
                Some(base) => lineage::path_of(&mut state.kv, base)?,
                None => Path::new(),
            };
            let (mut rows_i, mut rows_j) = (BTreeSet::new(), BTreeSet::new());
            for key in &walk.only_a {
                lineage::touched(state, key, &mut rows_i)?;
            }
            for key in &walk.only_b {
                lineage::touched(state, key, &mut rows_j)?;
            }
            for row in rows_i.intersection(&rows_j) {
                if own.contains(row) {
                    continue;
                }
                let kv = &mut state.kv;
                let base = lookup(kv, &base_path, &row.0, &row.1)?;
                let at_i = lookup(kv, &paths[i], &row.0, &row.1)?;
                let at_j = lookup(kv, &paths[j], &row.0, &row.1)?;
                if !same(at_i.as_ref(), base.as_ref())
                    && !same(at_j.as_ref(), base.as_ref())
                    && !same_content(at_i.as_ref(), at_j.as_ref())
                {
                    conflicts.entry(row.clone()).or_default().extend([i, j]);
                }
            }
        }
    }
    let Some(policy) = policy else {
        if conflicts.is_empty() {
            return Ok(ops);
        }
        let names: Vec<String> = conflicts
            .keys()
            .take(5)
            .map(|(d, k)| {
                format!(
                    "{}/{}",
                    String::from_utf8_lossy(d),
                    String::from_utf8_lossy(k)
                )
            })
            .collect();
        return Err(Error::Conflict {
            count: conflicts.len(),
            rows: names.join(", "),
        });
    };
    for (row, heads) in &conflicts {
        let kv = &mut state.kv;
        let mut values: Vec<(usize, Option<Pointer>)> = Vec::new();
        for &head in heads {
            values.push((head, lookup(kv, &paths[head], &row.0, &row.1)?));
        }
        // Only the heads that changed the row compete; "ours" wins if it is one of them.
        let ours = values.iter().find(|(head, _)| *head == 0);
        let chosen = match (policy, ours) {
            (MergePolicy::Ours, Some((_, value))) => value.clone(),
            (MergePolicy::Theirs, _) => {
                let others: Vec<&Pointer> = values
                    .iter()
                    .filter(|(head, _)| *head != 0)
                    .filter_map(|(_, value)| value.as_ref())
                    .collect();
                newest(kv, &others)?.cloned()
            }
            (MergePolicy::Newest, _) | (MergePolicy::Ours, None) => {
                let all: Vec<&Pointer> = values.iter().filter_map(|(_, v)| v.as_ref()).collect();
                newest(kv, &all)?.cloned()
            }
        };
        ops.push(copy_of(row, chosen.as_ref()));
    }
    Ok(ops)
}
