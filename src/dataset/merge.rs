//! Merging heads: three-way, keeping every non-conflicting change from every side.
//!
//! Before a merge commit is written, the rows changed on both sides since the common
//! ancestor are compared. A row changed to different values on two sides is a conflict; it
//! must be settled by the merge's own operations or by a policy, which writes the chosen
//! side's value into the merge commit. An unsettled conflict is an error and nothing is
//! written. Everything else is taken from whichever side changed it, by the indexer.

use std::collections::BTreeSet;

use super::commit::{Content, OpKind, Operation};
use super::lineage::{self, Path, RowId};
use super::read::{lookup, newest, same, same_content};
use super::records::Pointer;
use crate::error::{Error, Result};
use crate::graph::State;

/// How a merge settles a row changed differently on several sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// Keep the first head's value (this device's own head, when it is merged).
    Ours,
    /// Take the other head's value.
    Theirs,
    /// Take the newest value (commit time, ties broken by version id).
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

/// Checks a merge of `links` (first = ours) for conflicts, settles them with `policy`, and
/// returns the merge's operations: `ops` plus one per conflict settled by the policy.
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
    let ours_path = lineage::path_of(&mut state.kv, &links[0])?;
    let mut unsettled: Vec<RowId> = Vec::new();
    let mut settled: BTreeSet<RowId> = BTreeSet::new();
    for other in &links[1..] {
        let walk = lineage::merge_base(state, &links[0], other)?;
        let base_path: Path = match &walk.base {
            Some(base) => lineage::path_of(&mut state.kv, base)?,
            None => Path::new(),
        };
        let theirs_path = lineage::path_of(&mut state.kv, other)?;
        let (mut ours_rows, mut theirs_rows) = (BTreeSet::new(), BTreeSet::new());
        for key in &walk.only_a {
            lineage::touched(state, key, &mut ours_rows)?;
        }
        for key in &walk.only_b {
            lineage::touched(state, key, &mut theirs_rows)?;
        }
        for row in ours_rows.intersection(&theirs_rows) {
            if own.contains(row) || settled.contains(row) {
                continue;
            }
            let kv = &mut state.kv;
            let base = lookup(kv, &base_path, &row.0, &row.1)?;
            let ours = lookup(kv, &ours_path, &row.0, &row.1)?;
            let theirs = lookup(kv, &theirs_path, &row.0, &row.1)?;
            if same(ours.as_ref(), base.as_ref())
                || same(theirs.as_ref(), base.as_ref())
                || same_content(ours.as_ref(), theirs.as_ref())
            {
                continue;
            }
            let chosen = match policy {
                None => {
                    unsettled.push(row.clone());
                    continue;
                }
                Some(MergePolicy::Ours) => ours.clone(),
                Some(MergePolicy::Theirs) => theirs.clone(),
                Some(MergePolicy::Newest) => {
                    let candidates: Vec<&Pointer> = ours.iter().chain(theirs.iter()).collect();
                    newest(kv, &candidates)?.cloned()
                }
            };
            ops.push(copy_of(row, chosen.as_ref()));
            settled.insert(row.clone());
        }
    }
    if !unsettled.is_empty() {
        let names: Vec<String> = unsettled
            .iter()
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
            count: unsettled.len(),
            rows: names.join(", "),
        });
    }
    Ok(ops)
}
