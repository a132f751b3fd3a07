//! A new commit's parents: the checkout or this device's newest head for a plain write,
//! the heads holding the versions a write replaces, or the heads a merge joins (never an
//! ancestor of another, never a version that is not a head).

use std::collections::BTreeSet;

use super::Repository;
use super::commit::Operation;
use super::transaction::Parents;
use super::version::{self, Version};
use crate::error::{Error, Result};
use crate::store::Tables;

impl Repository {
    /// The parents of a new commit.
    pub(super) fn choose_links(
        &self,
        tables: &mut Tables,
        ops: &[Operation],
        parents: &Parents,
    ) -> Result<Vec<Version>> {
        match parents {
            Parents::Auto => Ok(self.head_locked(tables)?.into_iter().collect()),
            Parents::Replaces(versions) => self.holders(tables, ops, versions),
            Parents::Merge(heads) => self.merge_parents(tables, heads),
        }
    }

    /// A write replacing `versions`: one version is its parent; several make it a merge of
    /// the heads where those versions are the row's current versions (a named version no
    /// head holds is linked itself).
    fn holders(
        &self,
        tables: &mut Tables,
        ops: &[Operation],
        versions: &[Version],
    ) -> Result<Vec<Version>> {
        for named in versions {
            version::iseq(tables, named)?;
        }
        if let [one] = versions {
            return Ok(vec![one.clone()]);
        }
        let rows: BTreeSet<(&[u8], &[u8])> = ops
            .iter()
            .map(|op| (op.dataset.as_slice(), op.key.as_slice()))
            .collect();
        let tips: Vec<String> = super::index::tips(tables)?.iter().cloned().collect();
        let mut links: Vec<Version> = Vec::new();
        for version in versions {
            let mut held = false;
            for tip in &tips {
                let iseq = tables
                    .iseq_of(tip)?
                    .ok_or_else(|| Error::corrupt(format!("head {tip} is not indexed")))?;
                let view = self.index.ancestry(tables, iseq)?;
                let mut holds = false;
                for (dataset, key) in &rows {
                    if let Some(state) = self.index.row_state(tables, dataset, key, &view)?
                        && state
                            .heads
                            .iter()
                            .any(|head| head.version == version.as_str())
                    {
                        holds = true;
                        break;
                    }
                }
                if holds {
                    held = true;
                    let tip = Version::new(tip.clone());
                    if !links.contains(&tip) {
                        links.push(tip);
                    }
                }
            }
            if !held && !links.contains(version) {
                links.push(version.clone());
            }
        }
        Ok(links)
    }

    /// The heads a merge joins: the named ones (all heads when none are named), each a head,
    /// none an ancestor of another; this device's head first when merging all.
    fn merge_parents(&self, tables: &mut Tables, named: &[Version]) -> Result<Vec<Version>> {
        let tips: BTreeSet<String> = super::index::tips(tables)?.clone();
        let mut links: Vec<Version> = Vec::new();
        if named.is_empty() {
            links.extend(tips.iter().cloned().map(Version::new));
            if let Some(preferred) = self.preferred_tip(tables)?
                && let Some(pos) = links.iter().position(|l| *l == preferred)
            {
                links.swap(0, pos);
            }
        } else {
            for named in named {
                if !links.contains(named) {
                    links.push(named.clone());
                }
            }
            // A named version another one descends from is already part of that one.
            let mut views = Vec::with_capacity(links.len());
            for link in &links {
                let iseq = version::iseq(tables, link)?;
                views.push((iseq, self.index.ancestry(tables, iseq)?));
            }
            let mut kept = Vec::new();
            let mut covered: Option<(usize, usize)> = None;
            for (i, link) in links.iter().enumerate() {
                let (iseq, _) = views[i];
                let by = (0..views.len()).find(|&j| j != i && views[j].1.contains(iseq));
                if let Some(j) = by {
                    covered.get_or_insert((i, j));
                    continue;
                }
                kept.push(link.clone());
            }
            if kept.len() < 2
                && let Some((i, j)) = covered
            {
                return Err(Error::InvalidArgument(format!(
                    "nothing to merge: {} is already part of {}",
                    links[i], links[j]
                )));
            }
            if let Some(link) = kept.iter().find(|link| !tips.contains(link.as_str())) {
                return Err(Error::InvalidArgument(format!(
                    "{link} is not a head, so merging it would fork the repository; merge heads (strata heads lists them)"
                )));
            }
            links = kept;
        }
        if links.len() < 2 {
            return Err(Error::InvalidArgument(
                "a merge needs at least two heads; there is nothing to merge".into(),
            ));
        }
        Ok(links)
    }
}
