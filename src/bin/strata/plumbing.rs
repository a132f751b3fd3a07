//! `graph ...`: plumbing over the hyperlog graph, for scripts and tests.

use std::io::Write;

use serde_json::{Value, json};
use strata::{Node, TextOrHex};

use crate::context::{CliResult, Global, stdout, write_json};

/// Low-level access to the graph (hyperlog-compatible nodes).
///
/// Nodes are `{links, value}` named by the framed SHA-256 of both; these commands add and
/// read them directly, below the dataset layer (a node that is not a commit shows in `log`
/// as such and carries no rows).
///
/// Example: `strata graph add hello`, `strata graph changes --since 10 --json`
#[derive(Debug, clap::Subcommand)]
pub enum GraphCommand {
    /// Add a node with VALUE (text) and the given links; prints its key.
    ///
    /// Example: `strata graph add hello` prints
    /// 8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602
    Add {
        /// The node's value (its UTF-8 bytes).
        value: String,
        /// The full key of a node this one links to (repeatable).
        #[arg(long = "link", value_name = "KEY")]
        links: Vec<String>,
        /// Print the node as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one node.
    ///
    /// Example: `strata graph get 8c7efb22`
    Get {
        /// The node's key, or a unique prefix of 8+ characters of it.
        key: String,
        /// Print the node as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the graph's heads (nodes no other node links to), ordered by key.
    ///
    /// Unlike `strata heads`, this includes nodes whose payload has not arrived yet.
    ///
    /// Example: `strata graph heads --json`
    Heads {
        /// Print one JSON object per head (NDJSON).
        #[arg(long)]
        json: bool,
    },
    /// Print nodes in local change order after change N.
    ///
    /// Example: `strata graph changes --since 10`
    Changes {
        /// Start after this change number (0: from the first node).
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Print one JSON object per node (NDJSON).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &Global, command: GraphCommand) -> CliResult {
    let repo = global.open()?;
    let graph = repo.graph();
    let mut out = stdout();
    match command {
        GraphCommand::Add { value, links, json } => {
            let node = graph.add(&links, value.as_bytes())?;
            if json {
                write_json(&mut out, &node_json(&node))?;
            } else {
                writeln!(out, "{}", node.key)?;
            }
        }
        GraphCommand::Get { key, json } => {
            // A full key, or a unique prefix of 4+ characters.
            let node = graph.find(&key)?;
            if json {
                write_json(&mut out, &node_json(&node))?;
            } else {
                writeln!(out, "key       {}", node.key)?;
                writeln!(out, "change    {}", node.change)?;
                writeln!(out, "log       {} (seq {})", node.log, node.seq)?;
                for link in &node.links {
                    writeln!(out, "link      {link}")?;
                }
                writeln!(out, "value     {}", TextOrHex(&node.value))?;
            }
        }
        GraphCommand::Heads { json } => {
            for node in graph.heads()? {
                if json {
                    write_json(&mut out, &node_json(&node))?;
                } else {
                    writeln!(out, "{}", node.key)?;
                }
            }
        }
        GraphCommand::Changes { since, json } => {
            for node in graph.changes(since) {
                let node = node?;
                if json {
                    write_json(&mut out, &node_json(&node))?;
                } else {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        node.change, node.key, node.log, node.seq
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// A node as JSON: its key, links, value (text, or `{"hex": …}`), and where it is recorded.
fn node_json(node: &Node) -> Value {
    json!({
        "key": node.key,
        "links": node.links,
        "value": TextOrHex(&node.value),
        "change": node.change,
        "log": node.log,
        "seq": node.seq,
        "identity": node.identity.as_ref().map(hex::encode),
        "signature": node.signature.as_ref().map(hex::encode),
    })
}
