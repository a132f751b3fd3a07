//! The changes feed: every node in local change order, from any point, optionally live.
//!
//! Local change order is topological (a node's links always have smaller change numbers).
//! The feed reads a page of nodes per lock acquisition, so it holds no storage iterator
//! between calls, never blocks writers for long, and uses memory bounded by the page size.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Graph, Node};
use crate::error::{Error, Result};

/// How many nodes one page reads.
const PAGE: u64 = 256;

/// An iterator over nodes in change order; see [`Graph::changes`].
pub struct Changes {
    graph: Graph,
    /// The next change number to return.
    next: u64,
    /// Stop before this change number (exclusive), if set.
    until: Option<u64>,
    live: bool,
    timeout: Option<Duration>,
    page: VecDeque<Node>,
    failed: bool,
}

impl Changes {
    pub(super) fn new(graph: Graph, since: u64) -> Changes {
        Changes {
            graph,
            next: since.saturating_add(1),
            until: None,
            live: false,
            timeout: None,
            page: VecDeque::new(),
            failed: false,
        }
    }

    /// Keeps the feed open: at the end it waits for new nodes instead of ending.
    pub fn live(mut self) -> Changes {
        self.live = true;
        self
    }

    /// In live mode, ends the feed when no node arrives for `timeout`.
    pub fn idle_timeout(mut self, timeout: Duration) -> Changes {
        self.timeout = Some(timeout);
        self
    }

    /// Ends the feed before change `until` (exclusive).
    pub fn until(mut self, until: u64) -> Changes {
        self.until = Some(until);
        self
    }

    fn fill(&mut self) -> Result<()> {
        let mut last = self.next.saturating_add(PAGE);
        if let Some(until) = self.until {
            last = last.min(until);
        }
        if last <= self.next {
            return Ok(());
        }
        let mut tables = self.graph.store().lock();
        let limit = usize::try_from(last - self.next).unwrap_or(usize::MAX);
        for (change, node_key) in tables.keys_from(self.next, limit)? {
            let node = super::read_node(&mut tables, &node_key)?.ok_or_else(|| {
                Error::corrupt(format!("change {change} names missing node {node_key}"))
            })?;
            self.page.push_back(node);
            self.next = change + 1;
        }
        Ok(())
    }
}

impl Iterator for Changes {
    type Item = Result<Node>;

    fn next(&mut self) -> Option<Result<Node>> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(node) = self.page.pop_front() {
                return Some(Ok(node));
            }
            if self.until.is_some_and(|until| self.next >= until) {
                return None;
            }
            if let Err(error) = self.fill() {
                self.failed = true;
                return Some(Err(error));
            }
            if !self.page.is_empty() {
                continue;
            }
            if !self.live {
                return None;
            }
            let count = self.graph.wait_for_change(self.next - 1, self.timeout);
            if count < self.next {
                // Idle timeout: nothing new arrived.
                return None;
            }
        }
    }
}
