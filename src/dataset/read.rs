//! Reading one row at a version, and at "latest" when there are several heads.
//!
//! At one version a row is found by walking its path: per layer, one forward seek to "the
//! newest entry of this row at or below the layer's bound"; the first hit wins.
//!
//! "Latest" means every current head (Mapeo's semantics). A row changed since the heads'
//! common ancestor on only one head reads as that head's value; a row changed on several
//! heads to different values is a fork, and reads as the newest of them (commit time, ties
//! broken by version id, so every replica picks the same), flagged as forked.

use super::lineage::Path;
use super::records::{self, Pointer};
use crate::error::{Error, Result};
use crate::keys;
use crate::kv::{Kv, prefix_end};

/// The entry for a row at a version: the newest one at or below the bound of the nearest
/// layer on the path that has one.
pub(crate) fn lookup(
    kv: &mut Kv,
    path: &[(u64, u64)],
    dataset: &[u8],
    key: &[u8],
) -> Result<Option<Pointer>> {
    match path {
        [] => Ok(None),
        [single] => lookup_in_layer(kv, *single, dataset, key),
        _ => Ok(lookup_paths(kv, &[path], dataset, key)?.pop().flatten()),
    }
}

/// The newest entry of a row in one layer at or below `bound`: one forward seek.
fn lookup_in_layer(
    kv: &mut Kv,
    (layer, bound): (u64, u64),
    dataset: &[u8],
    key: &[u8],
) -> Result<Option<Pointer>> {
    let layer_prefix = keys::data_changes_row(dataset, key).u64(layer);
    let end = prefix_end(&layer_prefix.clone().finish());
    let start = layer_prefix.u64_desc(bound).finish();
    match kv.scan(&start, &end)?.next() {
        Some((_, value)) => Pointer::decode(&value).map(Some),
        None => Ok(None),
    }
}

/// How many entries of one row a multi-path lookup reads before it falls back to a seek
/// per layer (a row with very many versions).
const ROW_SCAN_LIMIT: usize = 64;

/// [`lookup`] at several paths at once. All entries of a row are adjacent in the version
/// index (grouped by layer, newest first), so one seek and a short scan of that row's
/// entries answer every path, however many layers each has; a row with more than
/// [`ROW_SCAN_LIMIT`] entries is looked up path by path instead.
pub(crate) fn lookup_paths(
    kv: &mut Kv,
    paths: &[&[(u64, u64)]],
    dataset: &[u8],
    key: &[u8],
) -> Result<Vec<Option<Pointer>>> {
    if let [path] = paths
        && path.len() <= 1
    {
        return Ok(vec![lookup(kv, path, dataset, key)?]);
    }
    let prefix = keys::data_changes_row(dataset, key).finish();
    let mut entries: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    let mut complete = true;
    for (entry, value) in kv.scan_prefix(&prefix)? {
        if entries.len() == ROW_SCAN_LIMIT {
            complete = false;
            break;
        }
        let mut reader = keys::KeyReader::new(&entry[prefix.len()..], b"")?;
        let layer = reader.u64()?;
        let change = reader.u64_desc()?;
        entries.push((layer, change, value));
    }
    if !complete {
        return paths
            .iter()
            .map(|path| {
                for &layer in path.iter() {
                    if let Some(found) = lookup_in_layer(kv, layer, dataset, key)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            })
            .collect();
    }
    paths
        .iter()
        .map(|path| {
            // Per layer on the path, the newest entry at or below its bound; the nearest
            // layer that has one wins.
            for &(layer, bound) in path.iter() {
                let hit = entries
                    .iter()
                    .find(|(l, change, _)| *l == layer && *change <= bound);
                if let Some((_, _, value)) = hit {
                    return Pointer::decode(value).map(Some);
                }
            }
            Ok(None)
        })
        .collect()
}

/// How many entries a sorted lookup steps over before it seeks instead.
const STEPS_BEFORE_SEEK: usize = 8;

/// [`lookup`] for many rows of one dataset at once, `keys` sorted ascending: one forward
/// pass per layer that steps from row to row and seeks only across gaps. Importing into an
/// empty or sequential range costs no seek per row.
pub(crate) fn lookup_sorted(
    kv: &mut Kv,
    path: &[(u64, u64)],
    dataset: &[u8],
    keys: &[&[u8]],
) -> Result<Vec<Option<Pointer>>> {
    let mut found: Vec<Option<Pointer>> = vec![None; keys.len()];
    let family = keys::KeyBuf::new(keys::DATA_CHANGES)
        .bytes(dataset)
        .finish();
    let family_end = prefix_end(&family);
    for &(layer, bound) in path {
        let Some(first) = keys.first() else { break };
        let start = keys::data_changes_row(dataset, first)
            .u64(layer)
            .u64_desc(bound)
            .finish();
        let mut scan = kv.scan(&start, &family_end)?;
        let mut current = scan.next();
        for (i, key) in keys.iter().enumerate() {
            if found[i].is_some() {
                continue;
            }
            let layer_prefix = keys::data_changes_row(dataset, key).u64(layer);
            let target = layer_prefix.clone().u64_desc(bound).finish();
            let mut steps = 0;
            while current.as_ref().is_some_and(|(k, _)| *k < target) {
                if steps == STEPS_BEFORE_SEEK {
                    scan.seek(&target);
                }
                current = scan.next();
                steps += 1;
            }
            if let Some((k, v)) = &current
                && k.starts_with(&layer_prefix.finish())
            {
                found[i] = Some(Pointer::decode(v)?);
            }
        }
    }
    Ok(found)
}

/// Whether two optional entries are the same version of a row.
pub(crate) fn same(a: Option<&Pointer>, b: Option<&Pointer>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_op(b),
        _ => false,
    }
}

/// Whether two entries leave the row with the same content (both absent or deleted, or
/// the same bytes).
pub(crate) fn same_content(a: Option<&Pointer>, b: Option<&Pointer>) -> bool {
    let live = |p: Option<&Pointer>| p.is_some_and(|p| !p.deleted);
    match (a, b) {
        _ if same(a, b) => true,
        (a, b) if !live(a) && !live(b) => true,
        (Some(a), Some(b)) if live(Some(a)) && live(Some(b)) => {
            a.file == b.file && a.value == b.value
        }
        _ => false,
    }
}

/// The commit time of an indexed version (ms since the epoch).
pub(crate) fn version_time(kv: &mut Kv, version: &str) -> Result<u64> {
    Ok(records::node_status(kv, version)?
        .ok_or_else(|| Error::corrupt(format!("version {version} is not indexed")))?
        .modified)
}

/// The fork winner among entries: the newest by commit time, ties broken by version id.
pub(crate) fn newest<'a>(kv: &mut Kv, entries: &[&'a Pointer]) -> Result<Option<&'a Pointer>> {
    let mut best: Option<(u64, &Pointer)> = None;
    for &entry in entries {
        let time = version_time(kv, &entry.version)?;
        let better = match best {
            None => true,
            Some((best_time, best_entry)) => {
                (time, &entry.version, entry.index)
                    > (best_time, &best_entry.version, best_entry.index)
            }
        };
        if better {
            best = Some((time, entry));
        }
    }
    Ok(best.map(|(_, entry)| entry))
}

/// What a view reads through.
#[derive(Clone, Debug)]
pub(crate) enum Lens {
    /// Nothing has been written.
    Empty,
    /// One version.
    One { version: String, path: Path },
    /// Several heads: their common ancestor's path (empty when they share no history)
    /// and each head's path.
    Many {
        base: Path,
        heads: Vec<(String, Path)>,
    },
}

/// A row as a lens sees it: the winning entry, and every distinct entry when forked.
pub(crate) struct Resolved {
    pub winner: Pointer,
    /// Distinct entries across heads when the row is forked (more than one), else empty.
    pub forks: Vec<Pointer>,
}

impl Lens {
    /// Every layer any path of the lens reads, each once.
    pub(crate) fn layers(&self) -> Vec<(u64, u64)> {
        let mut layers: Vec<(u64, u64)> = Vec::new();
        let mut add = |path: &Path| {
            for &(layer, bound) in path {
                match layers.iter_mut().find(|(l, _)| *l == layer) {
                    Some(entry) => entry.1 = entry.1.max(bound),
                    None => layers.push((layer, bound)),
                }
            }
        };
        match self {
            Lens::Empty => {}
            Lens::One { path, .. } => add(path),
            Lens::Many { base, heads } => {
                add(base);
                heads.iter().for_each(|(_, path)| add(path));
            }
        }
        layers
    }

    /// The row's entry through this lens (deletes included), or `None` if it never existed.
    pub(crate) fn resolve(
        &self,
        kv: &mut Kv,
        dataset: &[u8],
        key: &[u8],
    ) -> Result<Option<Resolved>> {
        match self {
            Lens::Empty => Ok(None),
            Lens::One { path, .. } => Ok(lookup(kv, path, dataset, key)?.map(|winner| Resolved {
                winner,
                forks: Vec::new(),
            })),
            Lens::Many { base, heads } => {
                let mut paths: Vec<&[(u64, u64)]> = vec![base];
                paths.extend(heads.iter().map(|(_, path)| path.as_slice()));
                let mut found = lookup_paths(kv, &paths, dataset, key)?.into_iter();
                let at_base = found.next().flatten();
                let mut changed: Vec<Pointer> = Vec::new();
                for at_head in found {
                    if same(at_head.as_ref(), at_base.as_ref()) {
                        continue;
                    }
                    if let Some(entry) = at_head
                        && !changed.iter().any(|c| c.same_op(&entry))
                    {
                        changed.push(entry);
                    }
                }
                match changed.len() {
                    0 => Ok(at_base.map(|winner| Resolved {
                        winner,
                        forks: Vec::new(),
                    })),
                    1 => Ok(changed.pop().map(|winner| Resolved {
                        winner,
                        forks: Vec::new(),
                    })),
                    _ => {
                        let refs: Vec<&Pointer> = changed.iter().collect();
                        let winner = newest(kv, &refs)?.cloned();
                        Ok(winner.map(|winner| Resolved {
                            winner,
                            forks: changed,
                        }))
                    }
                }
            }
        }
    }
}
