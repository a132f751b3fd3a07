//! `strata demo`: a real end-to-end run of the graph on an on-disk repository in a fresh
//! temporary folder, reporting what each step did and how long it took.
//!
//! Every line printed comes from the run itself (keys, change numbers, heads, timings), and
//! every step checks its result: a surprise fails the command with `strata: check failed:`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use strata::graph::{FramedSha256, NodeHasher};
use strata::{Doc, Durability, Graph, GraphOptions, Node};

use crate::context::CliError;

/// Options of `strata demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many nodes the atomic batch adds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    nodes: u64,

    /// How many nodes the appended chain has.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    chain: u64,

    /// Keep the repository folder when the demo ends (its path is printed).
    #[arg(long)]
    keep: bool,
}

/// Fails the demo with `message` unless `ok`.
fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), CliError> {
    if ok {
        Ok(())
    } else {
        Err(CliError::Check(message()))
    }
}

/// `1234567` → `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for humans: `0.42 ms`, `12.3 ms`, `1.52 s`.
fn took(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `n` items in `d` as a rate: `123,456 nodes/s`.
fn rate(n: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return "too fast to time".into();
    }
    // Rates are shown to the node; the cast saturates, so it cannot misbehave.
    format!("{} nodes/s", count((n as f64 / secs).round() as u64))
}

/// The first 12 characters of a node key: enough to tell nodes apart on screen.
fn short(key: &str) -> String {
    key.chars().take(12).collect()
}

/// One row of the report: step, what happened, and optionally how long it took and the
/// rate over `nodes`.
fn row(
    out: &mut impl Write,
    step: &str,
    what: &str,
    timing: Option<(Duration, u64)>,
) -> io::Result<()> {
    match timing {
        None => writeln!(out, "  {step:<8} {what}"),
        Some((time, 0)) => writeln!(out, "  {step:<8} {what:<62} {:>9}", took(time)),
        Some((time, nodes)) => writeln!(
            out,
            "  {step:<8} {what:<62} {:>9}  {}",
            took(time),
            rate(nodes, time)
        ),
    }
}

/// A roughly 100-byte JSON observation, different for every `i`.
fn observation(i: u64) -> String {
    let lat = -3.0 - (i % 9973) as f64 / 10_000.0;
    let lon = -62.0 - (i % 7919) as f64 / 10_000.0;
    format!(
        r#"{{"type":"observation","id":{i},"lat":{lat:.4},"lon":{lon:.4},"species":"Ceiba pentandra","ok":true}}"#
    )
}

/// Reads the changes feed after `since` to its end, checking that change numbers are dense.
fn read_changes(graph: &Graph, since: u64) -> Result<Vec<Node>, CliError> {
    let mut nodes = Vec::new();
    for node in graph.changes(since) {
        let node = node?;
        let expected = since + nodes.len() as u64 + 1;
        check(node.change == expected, || {
            format!(
                "changes feed returned change {} where {expected} was due",
                node.change
            )
        })?;
        nodes.push(node);
    }
    Ok(nodes)
}

pub fn run(args: Args) -> Result<(), CliError> {
    let started = Instant::now();
    let mut out = io::stdout().lock();

    let folder = tempfile::Builder::new()
        .prefix("strata-demo-")
        .tempdir()
        .map_err(|source| CliError::Io {
            context: "creating a temporary folder".into(),
            source,
        })?;
    // With --keep the folder outlives the run; otherwise it is removed when `_guard` drops,
    // on success and on failure alike.
    let (_guard, dir): (Option<tempfile::TempDir>, PathBuf) = if args.keep {
        (None, folder.keep())
    } else {
        let dir = folder.path().to_path_buf();
        (Some(folder), dir)
    };
    let repo = dir.join("graph");

    writeln!(
        out,
        "strata demo: a real graph session on a new on-disk repository"
    )?;

    // Open (create) the repository.
    let options = GraphOptions::default();
    let durability = match options.durability {
        Durability::Flushed => "Flushed: each write survives kill -9",
        Durability::Synced => "Synced: each write survives power loss",
    };
    let t = Instant::now();
    let graph = Graph::open(&repo, options)?;
    let opened = t.elapsed();
    let log_id = graph.log_id();
    check(graph.change_count() == 0, || {
        "a new repository is not empty".into()
    })?;
    row(&mut out, "folder", &repo.display().to_string(), None)?;
    row(
        &mut out,
        "",
        if args.keep {
            "(kept: --keep)"
        } else {
            "(removed at exit; --keep keeps it)"
        },
        None,
    )?;
    row(&mut out, "log id", &log_id, None)?;
    row(&mut out, "durable", durability, None)?;
    writeln!(out)?;
    row(
        &mut out,
        "open",
        "created the repository",
        Some((opened, 0)),
    )?;

    // A root: a node with no links.
    let root_value = r#"{"type":"root","name":"strata demo"}"#;
    let root = graph.add(&[], root_value)?;
    check(root.change == 1 && root.seq == 1, || {
        format!("the root got change {}, seq {}", root.change, root.seq)
    })?;
    let what = format!("add: change 1, key {}, no links", short(&root.key));
    row(&mut out, "root", &what, None)?;

    // A chain: each append links every head, which is the previous node.
    let t = Instant::now();
    let mut chain = Vec::with_capacity(args.chain as usize);
    let mut previous = root.key.clone();
    for n in 1..=args.chain {
        let node = graph.append(format!(r#"{{"type":"step","n":{n}}}"#))?;
        check(node.links == [previous.clone()], || {
            format!("append {n} did not link the previous head")
        })?;
        previous = node.key.clone();
        chain.push(node);
    }
    let appended = t.elapsed();
    let chain_end = graph.change_count();
    let what = format!(
        "{} appends, each linking the previous head (2..{})",
        count(args.chain),
        count(chain_end)
    );
    row(&mut out, "chain", &what, Some((appended, args.chain)))?;

    // One atomic batch, each document linking the one before it (keys are computed here,
    // with the same framed SHA-256 the graph uses, so a document can name an earlier one).
    let mut docs = Vec::with_capacity(args.nodes as usize);
    let mut value_bytes = 0u64;
    for i in 0..args.nodes {
        let links = vec![previous];
        let value = observation(i);
        previous = FramedSha256.hash(&links, value.as_bytes());
        value_bytes += value.len() as u64;
        docs.push(Doc::new(links, value));
    }
    let t = Instant::now();
    let batch = graph.batch(docs)?;
    let batched = t.elapsed();
    let tip = batch
        .last()
        .cloned()
        .ok_or_else(|| CliError::Check("the batch returned no nodes".into()))?;
    check(
        batch.len() as u64 == args.nodes && tip.key == previous,
        || "the batch did not return one node per document, in order".into(),
    )?;
    check(
        graph.change_count() == chain_end + args.nodes && batch[0].change == chain_end + 1,
        || "the batch's change numbers are not dense".into(),
    )?;
    let what = format!(
        "{} nodes of ~{} B JSON, one atomic batch ({}..{})",
        count(args.nodes),
        value_bytes / args.nodes,
        count(chain_end + 1),
        count(tip.change)
    );
    row(&mut out, "batch", &what, Some((batched, args.nodes)))?;

    // Atomicity: a batch with one bad document writes nothing at all.
    let before = graph.change_count();
    let good = Doc::new(
        vec![tip.key.clone()],
        r#"{"type":"note","text":"never stored"}"#,
    );
    let good_key = FramedSha256.hash(&good.links, &good.value);
    let missing = "0".repeat(64);
    let bad = Doc::new(
        vec![missing.clone()],
        r#"{"type":"note","text":"dangling"}"#,
    );
    match graph.batch(vec![good, bad]) {
        Err(strata::Error::MissingLink { link }) if link == missing => {}
        Err(other) => return Err(other.into()),
        Ok(_) => {
            return Err(CliError::Check(
                "a batch with a missing link was accepted".into(),
            ));
        }
    }
    check(
        graph.change_count() == before && !graph.contains(&good_key)?,
        || "a refused batch left something behind".into(),
    )?;
    let what = format!(
        "2-doc batch, 2nd links missing {}: refused, 0 written",
        short(&missing)
    );
    row(&mut out, "refuse", &what, None)?;

    // Deduplication: the same links and value are the same node.
    let again = graph.add(&[], root_value)?;
    check(again == root && graph.change_count() == before, || {
        "re-adding the root wrote something".into()
    })?;
    let what = format!(
        "re-adding the root returns stored change {}; nothing written",
        again.change
    );
    row(&mut out, "dedupe", &what, None)?;

    // A branch: a node linking an older node, so the graph has two heads.
    let older = &chain[chain.len() / 2];
    let branch = graph.add(
        std::slice::from_ref(&older.key),
        r#"{"type":"step","n":"branch","note":"written on an old version"}"#,
    )?;
    let heads = graph.heads()?;
    check(
        heads.len() == 2 && heads.contains(&tip) && heads.contains(&branch),
        || {
            format!(
                "expected 2 heads (batch tip and branch), found {}",
                heads.len()
            )
        },
    )?;
    let what = format!(
        "change {} links older change {}: now {} heads",
        count(branch.change),
        count(older.change),
        heads.len()
    );
    row(&mut out, "branch", &what, None)?;
    for head in &heads {
        let role = if head.key == branch.key {
            "the branch"
        } else {
            "tip of the batch"
        };
        let what = format!(
            "  head {}  change {}  ({role})",
            short(&head.key),
            count(head.change)
        );
        row(&mut out, "", &what, None)?;
    }

    // The changes feed, from the end of the chain.
    let t = Instant::now();
    let fed = read_changes(&graph, chain_end)?;
    let feed_time = t.elapsed();
    let fed_count = fed.len() as u64;
    check(fed_count == args.nodes + 1, || {
        format!(
            "the feed since change {chain_end} returned {fed_count} nodes, expected {}",
            args.nodes + 1
        )
    })?;
    check(fed.last() == Some(&branch), || {
        "the feed did not end with the branch".into()
    })?;
    let what = format!(
        "feed since change {}: {} nodes in order ({}..{})",
        count(chain_end),
        count(fed_count),
        count(chain_end + 1),
        count(branch.change)
    );
    row(&mut out, "changes", &what, Some((feed_time, fed_count)))?;
    drop(fed);

    // Merge: append links every head.
    let merge = graph.append(r#"{"type":"merge","note":"joins every head"}"#)?;
    let heads = graph.heads()?;
    check(merge.links.len() == 2 && heads == [merge.clone()], || {
        "the merge did not join both heads".into()
    })?;
    let what = format!(
        "append: change {} links both heads: 1 head, {}",
        count(merge.change),
        short(&merge.key)
    );
    row(&mut out, "merge", &what, None)?;

    // Close, reopen from disk, and compare.
    let changes = graph.change_count();
    drop(graph);
    let t = Instant::now();
    let graph = Graph::open(&repo, GraphOptions::default())?;
    let reopened = t.elapsed();
    let (log_after, changes_after, heads_after) =
        (graph.log_id(), graph.change_count(), graph.heads()?);
    check(log_after == log_id, || {
        format!("log id changed on reopen: {log_after}")
    })?;
    check(changes_after == changes, || {
        format!("{changes_after} changes after reopen, {changes} before")
    })?;
    check(heads_after == heads, || "heads changed on reopen".into())?;
    let what = format!(
        "reopened: same log id, {} changes, head {}",
        count(changes_after),
        short(&merge.key)
    );
    row(&mut out, "reopen", &what, Some((reopened, 0)))?;

    // Read everything back from disk.
    let t = Instant::now();
    let all = read_changes(&graph, 0)?;
    let read_all = t.elapsed();
    let seq = graph.log_head(&log_id)?;
    check(all.len() as u64 == changes && seq == changes, || {
        format!(
            "after reopen the feed has {} nodes and the log ends at seq {seq}; expected {changes}",
            all.len()
        )
    })?;
    let what = format!(
        "read all {} changes back; own log is dense, seq 1..{}",
        count(changes),
        count(seq)
    );
    row(&mut out, "verify", &what, Some((read_all, changes)))?;

    writeln!(out)?;
    writeln!(
        out,
        "done in {}: every check passed",
        took(started.elapsed())
    )?;
    out.flush()?;
    Ok(())
}
