//! How a commit is described: by `log`, `heads`, `show` and `checkout`, as text lines or
//! the JSON object docs/cli.md documents under `log`.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use strata::{CommitInfo, Repository, Version};

use crate::error::CliResult;
use crate::output::{plural, show_time, time_iso};

/// One commit with its marks (head, checkout, pending).
pub struct Described {
    pub info: CommitInfo,
    pub head: bool,
    pub checkout: bool,
}

/// What marks a commit: the heads and the checkout, read once per command.
pub struct Marks {
    heads: BTreeSet<String>,
    checkout: Option<Version>,
}

impl Marks {
    /// The repository's heads (the dataset view's and the graph's) and its checkout.
    pub fn of(repo: &Repository) -> CliResult<Marks> {
        let mut heads: BTreeSet<String> = repo.heads()?.into_iter().map(String::from).collect();
        heads.extend(repo.graph().heads()?.into_iter().map(|node| node.key));
        Ok(Marks {
            heads,
            checkout: repo.checked_out()?,
        })
    }

    /// Describes the commit `info`.
    pub fn describe(&self, info: CommitInfo) -> Described {
        Described {
            head: self.heads.contains(info.version.as_str()),
            checkout: self.checkout.as_ref() == Some(&info.version),
            info,
        }
    }

    /// Describes the commit `version`.
    pub fn version(&self, repo: &Repository, version: &Version) -> CliResult<Described> {
        let node = repo.graph().get(version.as_str())?;
        Ok(self.describe(repo.commit_info(node)?))
    }
}

impl Described {
    fn time(&self) -> u64 {
        self.info.commit.as_ref().map_or(0, |c| c.modified)
    }

    /// The JSON object of `log`, `heads` and `show`.
    pub fn json(&self) -> Value {
        let info = &self.info;
        let commit = info.commit.as_ref();
        json!({
            "version": info.version,
            "change": info.change,
            "log": info.log,
            "seq": info.seq,
            "links": info.links,
            "time": commit.map(|c| c.modified),
            "time_iso": if commit.is_some() { time_iso(self.time()) } else { Value::Null },
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

    /// ` (head, checkout, pending)`, or nothing.
    pub fn marks(&self) -> String {
        let marks: Vec<&str> = [
            (self.head, "head"),
            (self.checkout, "checkout"),
            (!self.info.visible, "pending"),
        ]
        .into_iter()
        .filter_map(|(on, mark)| on.then_some(mark))
        .collect();
        match marks.is_empty() {
            true => String::new(),
            false => format!(" ({})", marks.join(", ")),
        }
    }

    /// The full description: the version with its marks, then the body lines.
    pub fn lines(&self) -> Vec<String> {
        let info = &self.info;
        let mut lines = vec![format!("{}{}", info.version, self.marks())];
        if info.links.len() > 1 {
            lines.push(format!("Merge:   {}", info.links.join(" ")));
        }
        let device = format!(
            "Device:  {} (seq {}, change {})",
            info.log, info.seq, info.change
        );
        match &info.commit {
            Some(commit) => {
                lines.push(format!("Date:    {}", show_time(commit.modified)));
                lines.push(device);
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
                lines.push(device);
                lines.push("(a graph node that is not a commit)".into());
            }
        }
        lines
    }

    /// One line: the version (abbreviated to 12 characters with `short`), time, marks and
    /// the message's first line.
    pub fn oneline(&self, short: bool) -> String {
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
        let version = match short {
            true => self.info.version.short(),
            false => self.info.version.as_str(),
        };
        format!("{version} {time}{} {message}", self.marks())
            .trim_end()
            .to_string()
    }
}
