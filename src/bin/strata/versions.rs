//! Version commands: `log`, `heads`, `checkout`, `diff`, `merge`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strata::{CommitInfo, MergePolicy, Repository, TextOrHex, Version, excerpt};

use crate::context::{
    CliError, CliResult, Global, Name, existing_file, name_arg, show_time, stdout, write_json,
};
use crate::rows::{show_content, time_iso, version_json};

/// Commits, newest first, with forks and merges drawn as a graph.
///
/// Example: `strata log`, `strata log -n 20 --json`
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Show at most this many commits.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,

    /// One line per commit: the graph, version, time, marks and message.
    #[arg(long)]
    pub oneline: bool,

    /// Print one JSON object per commit (NDJSON), without the graph drawing.
    #[arg(long, conflicts_with = "oneline")]
    pub json: bool,
}

/// The current heads (more than one means the repository has forks).
///
/// Example: `strata heads`
#[derive(Debug, clap::Args)]
pub struct HeadsArgs {
    /// Print one JSON object per head (NDJSON).
    #[arg(long)]
    pub json: bool,
}

/// Make a version the repository's current view, persistently (later commands read there;
/// a write there forks), or go back to the latest.
///
/// Example: `strata checkout 3f2a9c01`, `strata checkout --latest`
#[derive(Debug, clap::Args)]
pub struct CheckoutArgs {
    /// The version: a full version id or a unique prefix of 8+ characters.
    #[arg(
        id = "target",
        value_name = "VERSION",
        required_unless_present = "latest"
    )]
    pub version: Option<String>,

    /// Return to the latest (every head, forks visible).
    #[arg(long, conflicts_with = "target")]
    pub latest: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The rows that differ between two versions, in (dataset, key) order.
///
/// Example: `strata diff 3f2a9c01 8b6e10d2 --dataset sites`
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old version (full id or unique prefix of 8+ characters).
    pub a: String,
    /// The new version.
    pub b: String,

    /// Only rows of this dataset (its name as written).
    #[arg(long, short)]
    pub dataset: Option<String>,

    /// DATASET is given in hex, for a name that is not text.
    #[arg(long, requires = "dataset")]
    pub hex_dataset: bool,

    /// Print one JSON object per differing row (NDJSON).
    #[arg(long)]
    pub json: bool,
}

/// Merge heads (all current heads by default) into one commit.
///
/// Rows changed differently on several sides are conflicts: settle them with a policy or a
/// resolution file, else the merge fails and nothing is written.
///
/// Example: `strata merge --newest`, `strata merge 3f2a9c01 8b6e10d2 --resolve fixes.ndjson`
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The heads to merge (the first is "ours"). Default: every current head.
    pub heads: Vec<String>,

    /// Settle conflicts with the first head's value.
    #[arg(long, group = "policy")]
    pub ours: bool,

    /// Settle conflicts with the other head's value.
    #[arg(long, group = "policy")]
    pub theirs: bool,

    /// Settle conflicts with the newest value.
    #[arg(long, group = "policy")]
    pub newest: bool,

    /// Resolutions: NDJSON lines `{"dataset": D, "key": K, "value": V}` or
    /// `{"dataset": D, "key": K, "deleted": true}`.
    #[arg(long, value_name = "FILE")]
    pub resolve: Option<PathBuf>,

    /// The commit message.
    #[arg(long, short)]
    pub message: Option<String>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

// ---- log ----

/// The lanes of `log`'s graph drawing, git style: each lane waits for the commit it will
/// reach next. Commits come newest first (reverse local change order, which is
/// topological), so a commit's children are always drawn above it.
#[derive(Default)]
struct Lanes {
    lanes: Vec<String>,
}

impl Lanes {
    /// Places `key`: returns the lines that bring every lane waiting for it into one (a
    /// fork point has several), its column, and whether it starts a new lane (a head).
    fn place(&mut self, key: &str) -> (Vec<String>, usize, bool) {
        let Some(col) = self.lanes.iter().position(|l| l == key) else {
            self.lanes.push(key.to_string());
            return (Vec::new(), self.lanes.len() - 1, true);
        };
        let mut lines = Vec::new();
        while let Some(j) = self.lanes[col + 1..]
            .iter()
            .position(|l| l == key)
            .map(|p| p + col + 1)
        {
            let mut chars = vec![' '; 2 * self.lanes.len()];
            for k in 0..j {
                chars[2 * k] = '|';
            }
            for k in col..j - 1 {
                chars[2 * k + 1] = '_';
            }
            chars[2 * j - 1] = '/';
            for k in j + 1..self.lanes.len() {
                chars[2 * k - 1] = '/';
            }
            lines.push(line(chars));
            self.lanes.remove(j);
        }
        (lines, col, false)
    }

    /// The commit's own row: `*` in its column, `|` in the others.
    fn row(&self, col: usize) -> String {
        let mut chars = vec![' '; 2 * self.lanes.len()];
        for k in 0..self.lanes.len() {
            chars[2 * k] = if k == col { '*' } else { '|' };
        }
        line(chars)
    }

    /// Replaces the commit in its lane by its parents; returns the lines that draw the
    /// change (a merge opens lanes, a root closes one).
    fn advance(&mut self, col: usize, parents: &[String]) -> Vec<String> {
        let Some((first, others)) = parents.split_first() else {
            let n = self.lanes.len();
            self.lanes.remove(col);
            if col + 1 == n {
                return Vec::new();
            }
            let mut chars = vec![' '; 2 * n];
            for k in 0..col {
                chars[2 * k] = '|';
            }
            for k in col + 1..n {
                chars[2 * k - 1] = '/';
            }
            return vec![line(chars)];
        };
        self.lanes[col] = first.clone();
        let mut lines = Vec::new();
        for parent in others.iter().rev() {
            let n = self.lanes.len();
            let mut chars = vec![' '; 2 * n + 2];
            for k in 0..=col {
                chars[2 * k] = '|';
            }
            chars[2 * col + 1] = '\\';
            for k in col + 1..n {
                chars[2 * k + 1] = '\\';
            }
            lines.push(line(chars));
            self.lanes.insert(col + 1, parent.clone());
        }
        lines
    }

    /// The prefix of a text line between rows: `|` for every lane.
    fn continuation(&self) -> String {
        line(
            (0..self.lanes.len())
                .flat_map(|_| ['|', ' '])
                .collect::<Vec<_>>(),
        )
    }
}

fn line(chars: Vec<char>) -> String {
    chars.into_iter().collect::<String>().trim_end().to_string()
}

/// What `log` shows of one commit.
struct LogEntry {
    info: CommitInfo,
    head: bool,
    checkout: bool,
}

impl LogEntry {
    fn time(&self) -> u64 {
        self.info.commit.as_ref().map_or(0, |c| c.modified)
    }

    fn json(&self) -> Value {
        let info = &self.info;
        let commit = info.commit.as_ref();
        let time = self.time();
        json!({
            "version": info.version,
            "change": info.change,
            "log": info.log,
            "seq": info.seq,
            "links": info.links,
            "time": commit.map(|c| c.modified),
            "time_iso": if commit.is_some() { time_iso(time) } else { Value::Null },
            "message": commit.and_then(|c| c.message.clone()),
            "puts": commit.map_or(0, |c| c.puts),
            "deletes": commit.map_or(0, |c| c.deletes),
            "files": commit.map_or(0, |c| c.files),
            "commit": commit.is_some(),
            "visible": info.visible,
            "head": self.head,
            "checkout": self.checkout,
        })
    }

    fn marks(&self) -> String {
        let mut marks = Vec::new();
        if self.head {
            marks.push("head");
        }
        if self.checkout {
            marks.push("checkout");
        }
        if !self.info.visible {
            marks.push("pending");
        }
        if marks.is_empty() {
            String::new()
        } else {
            format!(" ({})", marks.join(", "))
        }
    }

    /// The text lines after the header line.
    fn body(&self) -> Vec<String> {
        let info = &self.info;
        let mut lines = Vec::new();
        if info.links.len() > 1 {
            lines.push(format!("Merge:   {}", info.links.join(" ")));
        }
        match &info.commit {
            Some(commit) => {
                lines.push(format!("Date:    {}", show_time(commit.modified)));
                lines.push(format!(
                    "Device:  {} (seq {}, change {})",
                    info.log, info.seq, info.change
                ));
                lines.push(format!(
                    "Changes: {}, {}, {}",
                    plural(commit.puts, "put"),
                    plural(commit.deletes, "delete"),
                    plural(commit.files, "file")
                ));
                if !info.visible {
                    lines.push("Pending: its payload or a parent has not arrived yet".into());
                }
                if let Some(message) = &commit.message {
                    lines.push(String::new());
                    lines.extend(message.lines().map(|l| format!("    {l}")));
                }
            }
            None => {
                lines.push(format!(
                    "Device:  {} (seq {}, change {})",
                    info.log, info.seq, info.change
                ));
                lines.push("(a graph node that is not a commit)".into());
            }
        }
        lines
    }

    fn oneline(&self) -> String {
        let message = self
            .info
            .commit
            .as_ref()
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.lines().next())
            .unwrap_or("");
        let time = match self.time() {
            0 => "-".to_string(),
            ms => show_time(ms),
        };
        format!("{} {time}{} {message}", self.info.version, self.marks())
            .trim_end()
            .to_string()
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Writes `text` lines after graph prefixes, padded so the text lines up.
fn write_block(out: &mut impl Write, prefixes: &[String], text: &[String]) -> CliResult {
    let width = prefixes
        .iter()
        .zip(text)
        .filter(|(_, text)| !text.is_empty())
        .map(|(prefix, _)| prefix.len())
        .max()
        .unwrap_or(0);
    for (prefix, text) in prefixes.iter().zip(text) {
        let line = if text.is_empty() {
            prefix.clone()
        } else {
            format!("{prefix:width$} {text}")
        };
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn log(global: &Global, args: LogArgs) -> CliResult {
    let repo = global.open()?;
    let heads: BTreeSet<String> = repo.heads()?.into_iter().map(String::from).collect();
    let graph_heads: BTreeSet<String> = repo
        .graph()
        .heads()?
        .into_iter()
        .map(|node| node.key)
        .collect();
    let checkout = repo.checked_out()?;
    let total = repo.graph().change_count();
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut lanes = Lanes::default();
    let mut out = stdout();
    let mut shown = 0;
    let mut change = total;
    while change > 0 && shown < limit {
        let node = repo.graph().get_change(change)?;
        change -= 1;
        let entry = LogEntry {
            head: heads.contains(&node.key) || graph_heads.contains(&node.key),
            checkout: checkout.as_ref().is_some_and(|c| *c == node.key),
            info: repo.commit_info(node)?,
        };
        shown += 1;
        if args.json {
            write_json(&mut out, &entry.json())?;
            continue;
        }
        let (before, col, _) = lanes.place(entry.info.version.as_str());
        for line in before {
            writeln!(out, "{line}")?;
        }
        let row = lanes.row(col);
        let after = lanes.advance(col, &entry.info.links);
        if args.oneline {
            let mut prefixes = vec![row];
            let mut text = vec![entry.oneline()];
            for line in after {
                prefixes.push(line);
                text.push(String::new());
            }
            write_block(&mut out, &prefixes, &text)?;
            continue;
        }
        let mut text = vec![format!("{}{}", entry.info.version, entry.marks())];
        text.extend(entry.body());
        text.push(String::new());
        let continuation = lanes.continuation();
        let mut prefixes = vec![row];
        prefixes.extend(after.iter().cloned());
        while prefixes.len() < text.len() {
            prefixes.push(continuation.clone());
        }
        while text.len() < prefixes.len() {
            text.push(String::new());
        }
        write_block(&mut out, &prefixes, &text)?;
    }
    out.flush()?;
    Ok(())
}

// ---- heads, checkout ----

/// A head (or any version) described for `heads` and `checkout`.
fn describe(
    repo: &Repository,
    version: &Version,
    checkout: Option<&Version>,
) -> CliResult<LogEntry> {
    let node = repo.graph().get(version.as_str())?;
    Ok(LogEntry {
        head: true,
        checkout: checkout == Some(version),
        info: repo.commit_info(node)?,
    })
}

pub fn heads(global: &Global, args: HeadsArgs) -> CliResult {
    let repo = global.open()?;
    let checkout = repo.checked_out()?;
    let mut out = stdout();
    for head in repo.heads()? {
        let entry = describe(&repo, &head, checkout.as_ref())?;
        if args.json {
            write_json(&mut out, &entry.json())?;
        } else {
            writeln!(out, "{}", entry.oneline())?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn checkout(global: &Global, args: CheckoutArgs) -> CliResult {
    let repo = global.open()?;
    let checkout = match (&args.version, args.latest) {
        (Some(version), false) => {
            let version = repo.resolve(version)?;
            repo.checkout(&version)?;
            Some(version)
        }
        (None, true) => {
            repo.checkout_latest()?;
            None
        }
        _ => {
            return Err(CliError::Input(
                "give either a VERSION or --latest".to_string(),
            ));
        }
    };
    let heads = repo.heads()?;
    let mut out = stdout();
    if args.json {
        write_json(&mut out, &json!({ "checkout": checkout, "heads": heads }))?;
    } else {
        match &checkout {
            Some(version) => {
                writeln!(out, "{version}")?;
                if !heads.contains(version) {
                    eprintln!(
                        "strata: note: {version} is not a head; a write here starts a fork (`strata checkout --latest` goes back)"
                    );
                }
            }
            None => {
                writeln!(out, "latest")?;
                if heads.len() > 1 {
                    eprintln!(
                        "strata: note: {} heads (forked); reads show every head",
                        heads.len()
                    );
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

// ---- diff ----

pub fn diff(global: &Global, args: DiffArgs) -> CliResult {
    let repo = global.open()?;
    let mut diff = repo.diff(&repo.resolve(&args.a)?, &repo.resolve(&args.b)?)?;
    if let Some(dataset) = &args.dataset {
        diff = diff.dataset(name_arg(dataset, args.hex_dataset, Name::Dataset)?);
    }
    let mut out = stdout();
    for entry in diff {
        let entry = entry?;
        if args.json {
            write_json(
                &mut out,
                &json!({
                    "dataset": TextOrHex(&entry.dataset),
                    "key": TextOrHex(&entry.key),
                    "old": entry.old.as_ref().map(version_json),
                    "new": entry.new.as_ref().map(version_json),
                }),
            )?;
            continue;
        }
        let live = |v: &Option<strata::RowVersion>| v.as_ref().filter(|v| !v.deleted).is_some();
        let mark = match (live(&entry.old), live(&entry.new)) {
            (false, true) => 'A',
            (true, false) => 'D',
            _ => 'M',
        };
        writeln!(
            out,
            "{mark} {} {}",
            TextOrHex(&entry.dataset),
            TextOrHex(&entry.key)
        )?;
        for (sign, side) in [('-', &entry.old), ('+', &entry.new)] {
            if let Some(version) = side {
                writeln!(
                    out,
                    "  {sign} {}  ({})",
                    show_content(version),
                    version.version
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

// ---- merge ----

/// One line of a resolution file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolution {
    dataset: TextOrHex,
    key: TextOrHex,
    /// A JSON value, stored as compact JSON.
    #[serde(default)]
    value: Option<Value>,
    /// Text stored as given.
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    deleted: bool,
}

/// A row's settled content from a resolution file.
enum Settle {
    Put(Vec<u8>),
    Delete,
}

/// Settled rows: dataset, key and content.
type Resolutions = Vec<(Vec<u8>, Vec<u8>, Settle)>;

/// Reads a resolution file: one JSON object per line (blank lines are skipped).
fn read_resolutions(path: &Path) -> CliResult<Resolutions> {
    let file =
        std::fs::File::open(path).map_err(CliError::io(format!("opening {}", path.display())))?;
    let mut resolutions = Vec::new();
    for (index, text) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let bad = |why: String| CliError::Input(format!("{} line {number}: {why}", path.display()));
        let text = text.map_err(CliError::io(format!(
            "reading {} line {number}",
            path.display()
        )))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Resolution =
            serde_json::from_str(&text).map_err(|e| bad(excerpt(&e.to_string()).into_owned()))?;
        // `"value": null` deserializes as None; treat an explicit null as the JSON value null.
        let has_value = line.value.is_some()
            || serde_json::from_str::<serde_json::Map<String, Value>>(&text)
                .is_ok_and(|m| m.contains_key("value"));
        let settle = match (has_value, line.raw, line.deleted) {
            (true, None, false) => Settle::Put(
                serde_json::to_vec(&line.value.unwrap_or(Value::Null))
                    .map_err(|e| bad(e.to_string()))?,
            ),
            (false, Some(raw), false) => Settle::Put(raw.into_bytes()),
            (false, None, true) => Settle::Delete,
            _ => {
                return Err(bad(
                    "give exactly one of \"value\", \"raw\" or \"deleted\": true".to_string(),
                ));
            }
        };
        // Refused as the command line refuses them.
        if line.dataset.0.is_empty() {
            return Err(bad(strata::Error::empty_dataset().to_string()));
        }
        if line.key.0.is_empty() {
            return Err(bad(strata::Error::empty_key().to_string()));
        }
        resolutions.push((line.dataset.0, line.key.0, settle));
    }
    Ok(resolutions)
}

pub fn merge(global: &Global, args: MergeArgs) -> CliResult {
    let resolutions = match &args.resolve {
        Some(path) => read_resolutions(existing_file(path)?)?,
        None => Vec::new(),
    };
    let policy = if args.ours {
        Some(MergePolicy::Ours)
    } else if args.theirs {
        Some(MergePolicy::Theirs)
    } else if args.newest {
        Some(MergePolicy::Newest)
    } else {
        None
    };
    let repo = global.open()?;
    let heads = crate::rows::versions(&repo, &args.heads)?;
    let mut tx = repo.merge(&heads);
    for (dataset, key, settle) in &resolutions {
        match settle {
            Settle::Put(value) => tx.put(dataset, key, value),
            Settle::Delete => tx.delete(dataset, key),
        };
    }
    if let Some(policy) = policy {
        tx.policy(policy);
    }
    if let Some(message) = &args.message {
        tx.message(message.clone());
    }
    let version = tx.commit().map_err(|error| match error {
        conflict @ strata::Error::Conflict { .. } => CliError::Input(format!(
            "{conflict}; nothing was written. Settle them with --ours, --theirs or --newest, or list them in a --resolve FILE"
        )),
        other => other.into(),
    })?;
    let parents = repo.graph().get(version.as_str())?.links;
    let mut out = stdout();
    if args.json {
        write_json(&mut out, &json!({ "version": version, "parents": parents }))?;
    } else {
        writeln!(out, "{version}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    /// Draws a graph given newest first as `(key, parents)`, one line per commit.
    fn draw(commits: &[(&str, &[&str])]) -> String {
        let mut lanes = Lanes::default();
        let mut out = Vec::new();
        for (key, parents) in commits {
            let parents: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
            let (before, col, _) = lanes.place(key);
            out.extend(before);
            out.push(format!("{} {key}", lanes.row(col)));
            out.extend(lanes.advance(col, &parents));
        }
        out.join("\n")
    }

    #[test]
    fn a_fork_converges_and_a_merge_opens_lanes() {
        let graph = draw(&[
            ("m", &["a", "b"]),
            ("a", &["base"]),
            ("b", &["base"]),
            ("base", &[]),
        ]);
        assert_eq!(graph, "* m\n|\\\n* | a\n| * b\n|/\n* base");
    }

    #[test]
    fn lanes_far_apart_converge_across_the_lanes_between() {
        let graph = draw(&[
            ("x", &["base"]),
            ("y", &["other"]),
            ("z", &["base"]),
            ("base", &[]),
            ("other", &[]),
        ]);
        assert_eq!(graph, "* x\n| * y\n| | * z\n|_|/\n* | base\n /\n* other");
    }

    #[test]
    fn two_roots_and_an_octopus() {
        let graph = draw(&[("m", &["a", "b", "c"]), ("a", &[]), ("b", &[]), ("c", &[])]);
        assert_eq!(graph, "* m\n|\\\n|\\ \\\n* | | a\n / /\n* | b\n /\n* c");
    }
}
