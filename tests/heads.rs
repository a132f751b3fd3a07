//! Both sets of heads against models, after random histories.
//!
//! * The graph's heads are the nodes no node links to.
//! * The version index's heads are the indexed commits no indexed commit links to; a
//!   commit is indexed once its payload and all its parents are.
//!
//! Both are kept in memory and stored as a checkpoint every so many changes (or index
//! sequence numbers); opening replays what came after the checkpoint. The histories here
//! cross many checkpoints, with single adds, batches whose documents link one another,
//! appends, forks, merges, nodes and commits received from another device (some without
//! their payloads, indexed later), and reopens at any point between checkpoints.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::{Doc, Graph, GraphOptions, Repository, Version};

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
        // Enough changes to cross the checkpoint many times (every 64 changes).
        assert!(changes > 2_000, "seed {seed}: only {changes} changes");
        eprintln!("seed {seed}: {changes} changes, {reopens} reopens, heads right at each step");
    }
}

/// One device of the version-heads history.
struct Device {
    dir: tempfile::TempDir,
    repo: Repository,
    /// Commits this device holds, and those whose payload it holds.
    commits: BTreeSet<String>,
    payloads: BTreeSet<String>,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        Device {
            dir,
            repo,
            commits: BTreeSet::new(),
            payloads: BTreeSet::new(),
        }
    }

    /// The model's indexed commits: those whose payload and parents are all indexed.
    fn indexed(&self, parents: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
        let mut indexed = BTreeSet::new();
        loop {
            let before = indexed.len();
            for commit in &self.commits {
                if !indexed.contains(commit)
                    && self.payloads.contains(commit)
                    && parents[commit].iter().all(|p| indexed.contains(p))
                {
                    indexed.insert(commit.clone());
                }
            }
            if indexed.len() == before {
                return indexed;
            }
        }
    }

    /// The model's heads: indexed commits no indexed commit links to.
    fn heads(&self, parents: &BTreeMap<String, Vec<String>>) -> Vec<String> {
        let indexed = self.indexed(parents);
        let linked: BTreeSet<&String> = indexed.iter().flat_map(|c| &parents[c]).collect();
        indexed
            .iter()
            .filter(|c| !linked.contains(c))
            .cloned()
            .collect()
    }

    /// A commit just written here: its parents are the commits its node links to.
    fn wrote(&mut self, version: &Version, parents: &mut BTreeMap<String, Vec<String>>) {
        let node = self.repo.graph().get(version.as_str()).expect("node");
        let links = node
            .links
            .into_iter()
            .filter(|link| parents.contains_key(link))
            .collect();
        parents.insert(version.as_str().to_string(), links);
        self.commits.insert(version.as_str().to_string());
        self.payloads.insert(version.as_str().to_string());
    }
}

#[test]
fn version_heads_are_the_unlinked_indexed_commits_through_checkpoints_and_syncs() {
    for seed in 0..2u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut devices = [Device::new(), Device::new()];
        let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut most = 0;
        for step in 0..1100 {
            let d = rng.random_range(0..2);
            // A value of its own: commits with the same operations share a payload.
            let value = format!(r#"{{"seed":{seed},"step":{step}}}"#);
            match rng.random_range(0..100) {
                // A commit on a random version this device reads: a fork, mostly.
                0..50 => {
                    let indexed: Vec<String> = devices[d].indexed(&parents).into_iter().collect();
                    let base = match indexed.is_empty() {
                        true => None,
                        false => {
                            let name = &indexed[rng.random_range(0..indexed.len())];
                            Some(devices[d].repo.resolve(name).expect("resolve"))
                        }
                    };
                    let mut transaction = devices[d].repo.transaction();
                    transaction.put("d", format!("k{}", step % 97), &value);
                    if let Some(base) = &base {
                        transaction.replaces(std::slice::from_ref(base));
                    }
                    let version = transaction.commit().expect("commit");
                    devices[d].wrote(&version, &mut parents);
                }
                // A commit at latest, which merges the heads.
                50..62 => {
                    let version = devices[d]
                        .repo
                        .put("d", format!("k{}", step % 89), &value)
                        .expect("put");
                    devices[d].wrote(&version, &mut parents);
                }
                // The other device's commits arrive, with or without their payloads.
                62..85 => {
                    let (to, from) = if d == 0 { (0, 1) } else { (1, 0) };
                    let commits = devices[from].commits.clone();
                    let with_payloads = rng.random_bool(0.6);
                    if with_payloads {
                        common::sync(&devices[from].repo, &devices[to].repo);
                        let payloads = devices[from].payloads.clone();
                        devices[to].payloads.extend(payloads);
                    } else {
                        common::sync_graph(&devices[from].repo, &devices[to].repo);
                    }
                    devices[to].commits.extend(commits);
                }
                _ => {
                    // Closed first: a repository still open in this process would be
                    // handed back as it is.
                    let device = &mut devices[d];
                    let placeholder = Repository::in_memory().expect("placeholder");
                    drop(std::mem::replace(&mut device.repo, placeholder));
                    device.repo = Repository::open(device.dir.path()).expect("reopen");
                }
            }
            for (n, device) in devices.iter().enumerate() {
                let heads: Vec<String> = device
                    .repo
                    .heads()
                    .expect("heads")
                    .iter()
                    .map(|v| v.as_str().to_string())
                    .collect();
                assert_eq!(
                    heads,
                    device.heads(&parents),
                    "seed {seed}, step {step}, device {n}"
                );
                most = most.max(heads.len());
            }
        }
        let indexed = devices[0].indexed(&parents).len();
        // Enough commits to cross the checkpoint (every 64 index sequence numbers) often.
        assert!(indexed > 600, "seed {seed}: only {indexed} commits indexed");
        eprintln!("seed {seed}: {indexed} commits indexed on device 0, up to {most} heads");
    }
}
