//! Throughput of replication over TCP loopback (a measurement, not a check: run it with
//! `cargo test --release --test replicate_throughput -- --ignored --nocapture`).

use std::sync::Arc;
use std::time::Instant;

use strata::{Doc, Graph, GraphOptions, Repository};
use strata::{Session, tcp};

const NODES: usize = 100_000;

#[test]
#[ignore = "a measurement; run it explicitly"]
fn tcp_loopback_nodes_and_rows_per_second() {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    let mut prev: Vec<String> = Vec::new();
    for chunk in 0..NODES / 1000 {
        let docs: Vec<Doc> = (0..1000)
            .map(|i| {
                Doc::new(
                    Vec::new(),
                    format!(
                        "{{\"i\":{},\"pad\":\"{}\"}}",
                        chunk * 1000 + i,
                        "x".repeat(80)
                    ),
                )
            })
            .collect();
        let mut docs = docs;
        for doc in &mut docs {
            doc.links = prev.clone();
            let node = source.add_doc(doc.clone()).unwrap();
            prev = vec![node.key];
        }
    }
    let server =
        tcp::Server::start("127.0.0.1:0", Session::new(), &source, Arc::new(|_, _| {})).unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let started = Instant::now();
    let report = tcp::connect(server.local_addr(), &Session::new(), &target).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.progress.nodes_received, NODES as u64);
    println!(
        "graph only: {NODES} nodes in {seconds:.2} s = {:.0} nodes/s",
        NODES as f64 / seconds
    );
    server.stop();

    let repo = Repository::in_memory().unwrap();
    repo.import(
        "rows",
        (0..NODES as u32).map(|i| {
            Ok((
                format!("{i:08}").into_bytes(),
                format!("{{\"v\":{i},\"pad\":\"{}\"}}", "y".repeat(60)).into_bytes(),
            ))
        }),
        1000,
        None,
    )
    .unwrap();
    let server =
        tcp::Server::start("127.0.0.1:0", Session::new(), &repo, Arc::new(|_, _| {})).unwrap();
    let copy = Repository::in_memory().unwrap();
    let started = Instant::now();
    let report = tcp::connect(server.local_addr(), &Session::new(), &copy).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.progress.operations_received, NODES as u64);
    println!(
        "with payload: {NODES} rows in {seconds:.2} s = {:.0} rows/s",
        NODES as f64 / seconds
    );
    server.stop();
}
