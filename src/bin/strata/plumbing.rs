//! `graph ...`: plumbing over the hyperlog graph, for scripts and tests.

use std::io::{self, Write};

use serde_json::{Value, json};
use strata::{Node, TextOrHex, excerpt};

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, WriteRepo};
use crate::output::{Output, Render};

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
        #[command(flatten)]
        repo: WriteRepo,
    },
    /// Print one node.
    ///
    /// Example: `strata graph get 8c7efb22`
    Get {
        /// The node's key, or a unique prefix of 4+ characters of it.
        key: String,
        /// Print the node as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        repo: RepoPath,
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
        #[command(flatten)]
        repo: RepoPath,
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
        #[command(flatten)]
        repo: RepoPath,
    },
}

/// The longest node key: a SHA-512 in hex (strata's own are SHA-256, 64 characters).
const MAX_KEY: usize = 128;

/// How a node is printed as text.
#[derive(Clone, Copy)]
enum Style {
    /// Its key.
    Key,
    /// Every field, one per line.
    Full,
    /// `CHANGE KEY LOG SEQ`, tab-separated.
    Change,
}

struct Shown(Node, Style);

impl Render for Shown {
    /// A node as JSON: its key, links, value (text, or `{"hex": …}`), and where it is
    /// recorded.
    fn json(&self) -> Value {
        let node = &self.0;
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

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let node = &self.0;
        match self.1 {
            Style::Key => writeln!(out, "{}", node.key),
            Style::Change => writeln!(
                out,
                "{}\t{}\t{}\t{}",
                node.change, node.key, node.log, node.seq
            ),
            Style::Full => {
                writeln!(out, "key       {}", node.key)?;
                writeln!(out, "change    {}", node.change)?;
                writeln!(out, "log       {} (seq {})", node.log, node.seq)?;
                for link in &node.links {
                    writeln!(out, "link      {link}")?;
                }
                writeln!(out, "value     {}", TextOrHex(&node.value))
            }
        }
    }
}

impl Run for GraphCommand {
    fn run(self, top: &RepoPath) -> CliResult {
        match self {
            GraphCommand::Add {
                value,
                links,
                json,
                repo,
            } => {
                let node = repo.open(top)?.graph().add(&links, value.as_bytes())?;
                let mut out = Output::new(json);
                out.show(&Shown(node, Style::Key))?;
                out.finish()
            }
            GraphCommand::Get { key, json, repo } => {
                // No node key is longer than a hash; do not quote a long name back whole.
                if key.len() > MAX_KEY {
                    return Err(CliError::NotFound(format!(
                        "not found: node {}",
                        excerpt(&key)
                    )));
                }
                let node = repo.read(top)?.graph().find(&key)?;
                let mut out = Output::new(json);
                out.show(&Shown(node, Style::Full))?;
                out.finish()
            }
            GraphCommand::Heads { json, repo } => {
                let mut out = Output::new(json);
                for node in repo.read(top)?.graph().heads()? {
                    out.show(&Shown(node, Style::Key))?;
                }
                out.finish()
            }
            GraphCommand::Changes { since, json, repo } => {
                let mut out = Output::new(json);
                for node in repo.read(top)?.graph().changes(since) {
                    out.show(&Shown(node?, Style::Change))?;
                }
                out.finish()
            }
        }
    }
}
