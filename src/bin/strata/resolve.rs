//! `merge --resolve FILE`: reading a resolution file, one NDJSON line per settled row.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;
use strata::{TextOrHex, Transaction, excerpt};

use crate::error::{CliError, CliResult};

/// One line of a resolution file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
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

/// A row's settled content.
enum Settle {
    Put(Vec<u8>),
    Delete,
}

/// The rows a resolution file settles: dataset, key and content.
pub struct Resolutions(Vec<(Vec<u8>, Vec<u8>, Settle)>);

impl Resolutions {
    /// Reads a resolution file: one JSON object per line (blank lines are skipped). A bad
    /// line is an error naming the file and line.
    pub fn read(path: &Path) -> CliResult<Resolutions> {
        if !path.is_file() {
            return Err(CliError::NotFound(format!(
                "no such file: {}",
                path.display()
            )));
        }
        let file = std::fs::File::open(path)
            .map_err(CliError::io(format!("opening {}", path.display())))?;
        let mut rows = Vec::new();
        for (index, text) in BufReader::new(file).lines().enumerate() {
            let place = format!("{} line {}", path.display(), index + 1);
            let text = text.map_err(CliError::io(format!("reading {place}")))?;
            if text.trim().is_empty() {
                continue;
            }
            let row = parse(&text).map_err(|why| CliError::Input(format!("{place}: {why}")))?;
            rows.push(row);
        }
        Ok(Resolutions(rows))
    }

    /// Adds the settled rows to a merge.
    pub fn apply(&self, tx: &mut Transaction<'_>) {
        for (dataset, key, settle) in &self.0 {
            match settle {
                Settle::Put(value) => tx.put(dataset, key, value),
                Settle::Delete => tx.delete(dataset, key),
            };
        }
    }
}

/// Why serde refused a line, without the line number it adds (the line is always 1: the
/// file's line is named instead): `unknown field `vaule` … (column 40)`.
fn reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let place = format!(" at line {} column {}", error.line(), error.column());
    let text = match text.strip_suffix(&place) {
        Some(reason) => format!("{reason} (column {})", error.column()),
        None => text,
    };
    excerpt(&text).into_owned()
}

/// One line of the file.
fn parse(text: &str) -> Result<(Vec<u8>, Vec<u8>, Settle), String> {
    let line: Line = serde_json::from_str(text).map_err(|e| reason(&e))?;
    // `"value": null` deserializes as None; an explicit null is the JSON value null.
    let has_value = line.value.is_some()
        || serde_json::from_str::<serde_json::Map<String, Value>>(text)
            .is_ok_and(|m| m.contains_key("value"));
    let settle = match (has_value, line.raw, line.deleted) {
        (true, None, false) => Settle::Put(
            serde_json::to_vec(&line.value.unwrap_or(Value::Null)).map_err(|e| reason(&e))?,
        ),
        (false, Some(raw), false) => Settle::Put(raw.into_bytes()),
        (false, None, true) => Settle::Delete,
        _ => return Err("give exactly one of \"value\", \"raw\" or \"deleted\": true".into()),
    };
    // Refused as the command line and the library refuse them.
    if line.dataset.0.is_empty() {
        return Err(strata::Error::empty_dataset().to_string());
    }
    if line.key.0.is_empty() {
        return Err(strata::Error::empty_key().to_string());
    }
    Ok((line.dataset.0, line.key.0, settle))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_bad_line_names_its_column_not_another_line() {
        let Err(why) = parse(r#"{"dataset":"d","key":"k","vaule":1}"#) else {
            panic!("a misspelt field is refused");
        };
        assert!(why.starts_with("unknown field `vaule`"), "{why}");
        assert!(!why.contains("line"), "{why}");
        assert!(why.ends_with("(column 32)"), "{why}");
    }
}
