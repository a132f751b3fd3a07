//! The graph's heads against a model: after any history, they are the nodes no node links
//! to.
//!
//! The graph keeps its heads in memory and stores them as a checkpoint every so many
//! changes; opening replays the changes after the checkpoint. Random histories here cross
//! many checkpoints, with single adds, batches whose documents link one another, appends,
//! nodes received from another device, and reopens at any point between checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::{Doc, Graph, GraphOptions};

/// Every node written so far, with its links.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, Vec<String>>,
    keys: Vec<String>,
}

impl Model {
    fn add(&mut self, key: &str, links: &[String]) {
        if self.nodes.insert(key.to_string(), links.to_vec()).is_none() {
            self.keys.push(key.to_string());
        }
    }

    /// The nodes no node links to.
    fn heads(&self) -> Vec<String> {
        let linked: BTreeSet<&String> = self.nodes.values().flatten().collect();
        self.nodes
            .keys()
            .filter(|key| !linked.contains(key))
            .cloned()
            .collect()
    }

    /// Up to `most` distinct nodes, heads or not.
    fn some_links(&self, rng: &mut StdRng, most: usize) -> Vec<String> {
        let mut links = BTreeSet::new();
        for _ in 0..rng.random_range(0..=most) {
            if !self.keys.is_empty() {
                links.insert(self.keys[rng.random_range(0..self.keys.len())].clone());
            }
        }
        links.into_iter().collect()
    }
}

fn heads_of(graph: &Graph) -> Vec<String> {
    graph
        .heads()
        .expect("heads")
        .into_iter()
        .map(|node| node.key)
        .collect()
}

fn open(dir: &Path) -> Graph {
    Graph::open(dir, GraphOptions::default()).expect("open")
}

fn run(seed: u64, steps: usize) -> (u64, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut graph = open(dir.path());
    // Another device, whose nodes arrive now and then, in its change order.
    let peer = Graph::in_memory(GraphOptions::default()).expect("peer");
    let mut peer_sent = 0;
    let mut model = Model::default();
    let mut reopens = 0;
    let hasher = GraphOptions::default().hasher;
    for step in 0..steps {
        let value = format!("{seed}-{step}");
        match rng.random_range(0..100) {
            0..35 => {
                let links = model.some_links(&mut rng, 3);
                let node = graph.add(&links, &value).expect("add");
                model.add(&node.key, &links);
            }
            35..55 => {
                // Documents may link to nodes stored before and to documents before them
                // in the batch (their keys are known ahead: a key is a hash).
                let mut docs = Vec::new();
                let mut batch_keys: Vec<String> = Vec::new();
                for i in 0..rng.random_range(1..20) {
                    let mut links = model.some_links(&mut rng, 2);
                    if !batch_keys.is_empty() && rng.random_bool(0.6) {
                        links.push(batch_keys[rng.random_range(0..batch_keys.len())].clone());
                        links.sort();
                        links.dedup();
                    }
                    let value = format!("{value}-{i}");
                    batch_keys.push(hasher.hash(&links, value.as_bytes()));
                    docs.push((links, value));
                }
                let nodes = graph
                    .batch(
                        docs.iter()
                            .map(|(links, value)| Doc::new(links.clone(), value.clone()))
                            .collect(),
                    )
                    .expect("batch");
                for ((links, _), node) in docs.iter().zip(&nodes) {
                    model.add(&node.key, links);
                }
            }
            55..65 => {
                let node = graph.append(&value).expect("append");
                model.add(&node.key, &node.links);
            }
            65..80 => {
                for i in 0..rng.random_range(1..30) {
                    peer.append(format!("peer-{value}-{i}"))
                        .expect("peer append");
                }
            }
            80..90 => {
                let nodes: Vec<_> = peer
                    .changes(peer_sent)
                    .map(|node| node.expect("peer change"))
                    .collect();
                peer_sent = peer.change_count();
                for node in &nodes {
                    model.add(&node.key, &node.links);
                }
                graph.ingest(nodes).expect("ingest");
            }
            _ => {
                drop(graph);
                graph = open(dir.path());
                reopens += 1;
            }
        }
        assert_eq!(heads_of(&graph), model.heads(), "seed {seed}, step {step}");
    }
    drop(graph);
    let graph = open(dir.path());
    assert_eq!(heads_of(&graph), model.heads(), "seed {seed}, at the end");
    (graph.change_count(), reopens)
}

#[test]
fn heads_are_the_unlinked_nodes_through_checkpoints_reopens_and_ingests() {
    for seed in 0..4 {
        let (changes, reopens) = run(seed, 600);
        // Enough changes to cross the checkpoint many times (every 256 changes).
        assert!(changes > 2_000, "seed {seed}: only {changes} changes");
        eprintln!("seed {seed}: {changes} changes, {reopens} reopens, heads right at each step");
    }
}
