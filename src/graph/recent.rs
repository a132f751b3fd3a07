//! A bounded memory of recently written nodes: their log, and whether each is still a head.
//!
//! Checking a link and checking whether a new node already exists each cost a storage seek,
//! which dominates appends. Most links point at recent nodes, usually heads, and a node that
//! links to a current head cannot already exist (if it did, that head would not be a head).
//! So a write consults this memory first and seeks only on a miss. Only successful writes
//! update it, and every write goes through the graph's lock, so what it holds is exact; it
//! forgets the oldest entries beyond its capacity, keeping memory bounded.

use std::collections::{HashMap, VecDeque};

/// How many nodes are remembered.
const CAPACITY: usize = 1 << 16;

#[derive(Default)]
pub(crate) struct Recent {
    nodes: HashMap<String, RecentNode>,
    order: VecDeque<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct RecentNode {
    pub log: String,
    pub head: bool,
}

impl Recent {
    pub fn get(&self, key: &str) -> Option<&RecentNode> {
        self.nodes.get(key)
    }

    /// Records what a successful write stored: its new nodes, and the nodes they link to
    /// (which are heads no longer).
    pub fn record<'a>(
        &mut self,
        new: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
        linked: impl IntoIterator<Item = &'a str>,
    ) {
        for key in linked {
            if let Some(node) = self.nodes.get_mut(key) {
                node.head = false;
            }
        }
        for (key, log, head) in new {
            if self
                .nodes
                .insert(
                    key.to_string(),
                    RecentNode {
                        log: log.to_string(),
                        head,
                    },
                )
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
