//! Versions and views: naming a version, the heads, making views at latest or at one
//! version, and the persistent checkout.

use std::sync::Arc;

use super::Repository;
use super::index::{Counts, LatestCounters};
use super::version::{self, Version};
use super::view::{Lens, RepoStatus, View, status_of};
use crate::error::{Error, Result};
use crate::store::{Tables, WriteSet};

impl Repository {
    /// The version `name` denotes: a full key or an unambiguous prefix of at least 4
    /// characters (any case), `HEAD` (the checkout, else the head plain writes continue),
    /// `latest` (when there is one head), or any of these followed by `~N` (the N-th
    /// first-parent ancestor).
    pub fn resolve(&self, name: &str) -> Result<Version> {
        let mut tables = self.graph.store().lock();
        self.resolve_locked(&mut tables, name)
    }

    pub(super) fn resolve_locked(&self, tables: &mut Tables, name: &str) -> Result<Version> {
        version::resolve(&self.index, tables, name, |tables| self.head_locked(tables))
    }

    /// Where plain writes go: the persistent checkout if set, else this device's newest
    /// head (the newest head written by this repository's own log, else the newest head).
    pub fn head(&self) -> Result<Option<Version>> {
        self.head_locked(&mut self.graph.store().lock())
    }

    pub(super) fn head_locked(&self, tables: &mut Tables) -> Result<Option<Version>> {
        if let Some(checkout) = tables.checkout()? {
            return Ok(Some(Version::new(checkout)));
        }
        self.preferred_tip(tables)
    }

    /// This device's newest head, else the newest head.
    pub(super) fn preferred_tip(&self, tables: &mut Tables) -> Result<Option<Version>> {
        let own = self.graph.log_id();
        let mut best: Option<(bool, u64, String)> = None;
        let tips: Vec<String> = super::index::tips(tables)?.iter().cloned().collect();
        for tip in tips {
            let iseq = tables
                .iseq_of(&tip)?
                .ok_or_else(|| Error::corrupt(format!("head {tip} is not indexed")))?;
            let record = self.index.record(tables, iseq)?;
            let candidate = (record.inner.log == own, iseq, tip);
            if best.as_ref().is_none_or(|b| candidate > *b) {
                best = Some(candidate);
            }
        }
        Ok(best.map(|(_, _, tip)| Version::new(tip)))
    }

    /// The current heads of the version index, ordered by key.
    pub fn heads(&self) -> Result<Vec<Version>> {
        let mut tables = self.graph.store().lock();
        Ok(super::index::tips(&mut tables)?
            .iter()
            .cloned()
            .map(Version::new)
            .collect())
    }

    /// The view at latest: every current head (forks visible), ignoring any checkout.
    pub fn latest(&self) -> Result<View> {
        let mut tables = self.graph.store().lock();
        let ancestry = self.index.latest(&mut tables)?;
        let heads: Vec<Version> = super::index::tips(&mut tables)?
            .iter()
            .cloned()
            .map(Version::new)
            .collect();
        let counters = LatestCounters::read(&mut tables)?;
        let mut status = RepoStatus {
            rows: counters.counts.rows,
            files: counters.counts.files,
            heads: heads.len(),
            pending: counters.pending,
            ..RepoStatus::default()
        };
        // Versions and size follow the newest head's first-parent path.
        let mut newest: Option<(u64, u64)> = None;
        for head in &heads {
            let iseq = tables
                .iseq_of(head.as_str())?
                .ok_or_else(|| Error::corrupt(format!("head {head} is not indexed")))?;
            let record = self.index.record(&mut tables, iseq)?;
            let key = (record.inner.modified, iseq);
            if newest.is_none_or(|n| key > n) {
                newest = Some(key);
                status.versions = record.inner.versions;
                status.size = record.inner.size;
                status.modified = record.inner.modified;
            }
        }
        Ok(self.view_of(ancestry, heads, true, status))
    }

    /// The view at one version.
    pub fn at(&self, version: &Version) -> Result<View> {
        let mut tables = self.graph.store().lock();
        self.at_locked(&mut tables, version)
    }

    pub(super) fn at_locked(&self, tables: &mut Tables, version: &Version) -> Result<View> {
        let iseq = version::iseq(tables, version)?;
        let ancestry = self.index.ancestry(tables, iseq)?;
        let record = self.index.record(tables, iseq)?;
        let pending = LatestCounters::read(tables)?.pending;
        let counts = Counts {
            rows: record.inner.rows,
            files: record.inner.files,
        };
        let status = status_of(counts, &record, 1, pending, record.inner.modified);
        Ok(self.view_of(ancestry, vec![version.clone()], false, status))
    }

    fn view_of(
        &self,
        ancestry: super::index::Ancestry,
        heads: Vec<Version>,
        latest: bool,
        status: RepoStatus,
    ) -> View {
        View {
            repo: self.clone(),
            lens: Arc::new(Lens {
                ancestry,
                heads,
                latest,
                status,
            }),
        }
    }

    /// The view reads and writes use by default: the persistent checkout if set, else latest.
    pub fn view(&self) -> Result<View> {
        let mut tables = self.graph.store().lock();
        match tables.checkout()? {
            Some(version) => self.at_locked(&mut tables, &Version::new(version)),
            None => {
                drop(tables);
                self.latest()
            }
        }
    }

    /// The persistent checkout, if one is set.
    pub fn checked_out(&self) -> Result<Option<Version>> {
        Ok(self.graph.store().lock().checkout()?.map(Version::new))
    }

    /// Makes `version` the repository's current view, persistently: later opens read there,
    /// and a write there forks from it (the checkout then follows the new commit).
    pub fn checkout(&self, version: &Version) -> Result<()> {
        let mut tables = self.graph.store().lock();
        version::iseq(&mut tables, version)?;
        let mut write = WriteSet::default();
        write.set_checkout(Some(version.as_str()));
        tables.commit(write, crate::store::Durability::Synced)
    }

    /// Returns to latest (clears the persistent checkout).
    pub fn checkout_latest(&self) -> Result<()> {
        let mut write = WriteSet::default();
        write.set_checkout(None);
        self.graph
            .store()
            .lock()
            .commit(write, crate::store::Durability::Synced)
    }
}
