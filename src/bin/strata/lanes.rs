//! The graph drawing of `log`, git style: one lane per line of history, `*` for a commit,
//! `|\\` where a merge opens lanes to its other parents, `|/` where lanes join at a fork
//! point, `_` carrying a joining lane across others.

use std::io::{self, Write};

/// The lanes of `log`'s graph drawing, git style: each lane waits for the commit it will
/// reach next. Commits come newest first (reverse local change order, which is
/// topological), so a commit's children are always drawn above it.
#[derive(Default)]
pub struct Lanes {
    lanes: Vec<String>,
}

impl Lanes {
    /// Places `key`: returns the lines that bring every lane waiting for it into one (a
    /// fork point has several), its column, and whether it starts a new lane (a head).
    pub fn place(&mut self, key: &str) -> (Vec<String>, usize, bool) {
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
    pub fn row(&self, col: usize) -> String {
        let mut chars = vec![' '; 2 * self.lanes.len()];
        for k in 0..self.lanes.len() {
            chars[2 * k] = if k == col { '*' } else { '|' };
        }
        line(chars)
    }

    /// Replaces the commit in its lane by its parents; returns the lines that draw the
    /// change (a merge opens lanes, a root closes one).
    pub fn advance(&mut self, col: usize, parents: &[String]) -> Vec<String> {
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

    /// Draws one commit: the lines joining the lanes that wait for it, then `text` beside
    /// its row and the lines that follow it (a merge opening lanes, a root closing one),
    /// the lanes continuing beside the rest of `text`.
    pub fn draw(
        &mut self,
        out: &mut dyn Write,
        key: &str,
        parents: &[String],
        mut text: Vec<String>,
    ) -> io::Result<()> {
        let (before, col, _) = self.place(key);
        for line in before {
            writeln!(out, "{line}")?;
        }
        let mut prefixes = vec![self.row(col)];
        prefixes.extend(self.advance(col, parents));
        let continuation = self.continuation();
        while prefixes.len() < text.len() {
            prefixes.push(continuation.clone());
        }
        text.resize(prefixes.len(), String::new());
        write_block(out, &prefixes, &text)
    }

    /// The prefix of a text line between rows: `|` for every lane.
    pub fn continuation(&self) -> String {
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

/// Writes `text` lines after graph prefixes, padded so the text lines up.
pub fn write_block(out: &mut dyn Write, prefixes: &[String], text: &[String]) -> io::Result<()> {
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
