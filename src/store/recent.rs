//! A bounded memory of recently written nodes and the log each belongs to.
//!
//! Checking a link costs a storage seek, which would dominate appends; most links point at
//! recent nodes. So a write consults this memory first and seeks only on a miss. Only
//! successful writes update it, and every write goes through the graph's lock, so what it
//! holds is exact; it forgets the oldest entries beyond its capacity, keeping memory
//! bounded.

use std::collections::{HashMap, VecDeque};

/// How many nodes are remembered.
const CAPACITY: usize = 1 << 16;

#[derive(Default)]
pub(crate) struct Recent {
    /// Node key → log.
    nodes: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Recent {
    /// The log of node `key`, if it is remembered.
    pub fn log_of(&self, key: &str) -> Option<&str> {
        self.nodes.get(key).map(String::as_str)
    }

    /// Records the `(key, log)` of the nodes a successful write stored.
    pub fn record<'a>(&mut self, new: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (key, log) in new {
            if self
                .nodes
                .insert(key.to_string(), log.to_string())
                .is_none()
            {
                self.order.push_back(key.to_string());
            }
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.nodes.remove(&old);
            }
        }
    }
}
