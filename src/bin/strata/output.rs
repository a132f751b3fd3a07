//! The one output layer: every command hands what it prints to an [`Output`], which writes
//! it as text or as JSON (one document, or one NDJSON line per record of a list), on
//! stdout. Notes and warnings go to stderr. The JSON shapes shared by several commands
//! (values, times, row versions, file references) are made here, once.
//!
//! Conventions (docs/cli.md): names and keys print as text when they are UTF-8, else as
//! `0x<hex>` (JSON: `{"hex": …}`), the library's [`TextOrHex`]; times as RFC 3339.

use std::io::{self, BufWriter, StdoutLock, Write};
use std::time::Duration;

use serde_json::{Value, json};
use strata::{FileRef, RowVersion, TextOrHex, excerpt};

use crate::error::CliResult;

/// Something a command prints: one record, as JSON or as text lines.
pub trait Render {
    /// The record as JSON (one document, or one NDJSON line of a list).
    fn json(&self) -> Value;
    /// Writes the record as JSON; a record that may be large writes itself as it goes
    /// rather than building the whole document first.
    fn write_json(&self, out: &mut dyn Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self.json())
    }
    /// The record as text.
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Standard output in the form the command was asked for.
pub struct Output {
    json: bool,
    out: BufWriter<StdoutLock<'static>>,
}

impl Output {
    /// Text output, or JSON with `json`.
    pub fn new(json: bool) -> Output {
        Output {
            json,
            out: BufWriter::new(io::stdout().lock()),
        }
    }

    /// Whether records are written as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes one record: a JSON document (or NDJSON line) followed by a newline, or its
    /// text.
    pub fn show(&mut self, record: &dyn Render) -> CliResult {
        if self.json {
            record.write_json(&mut self.out)?;
            self.out.write_all(b"\n")?;
        } else {
            record.text(&mut self.out)?;
        }
        Ok(())
    }

    /// Writes a JSON value as one document (or NDJSON line), whatever the form.
    pub fn json_line(&mut self, value: &Value) -> CliResult {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// The bytes of stdout, for data written as it is (`get`, `export`).
    pub fn raw(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    /// Flushes everything written.
    pub fn finish(mut self) -> CliResult {
        self.out.flush()?;
        Ok(())
    }
}

/// A library report as a JSON object, with one more field `key: flag` (fsck's `ok`,
/// repair's `nothing_lost`).
pub fn report_json(report: &impl serde::Serialize, key: &str, flag: bool) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert(key.into(), flag.into());
    }
    value
}

/// A record made of text lines and a JSON value, for results too small for a type.
pub struct Record {
    pub json: Value,
    pub text: String,
}

impl Render for Record {
    fn json(&self) -> Value {
        self.json.clone()
    }

    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.text)
    }
}

/// Prints `strata: note: …` on stderr.
pub fn note(message: &str) {
    eprintln!("strata: note: {message}");
}

/// Prints `strata: warning: …` on stderr.
pub fn warning(message: &str) {
    eprintln!("strata: warning: {message}");
}

/// A dataset name or row key in a message: its printed form, cut to a short excerpt.
pub fn brief(bytes: &[u8]) -> String {
    excerpt(&TextOrHex(bytes).to_string()).into_owned()
}

/// A row value for JSON output: the parsed JSON when the value is JSON, else a string
/// (UTF-8) or `{"hex": ...}`.
pub fn value_json(value: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(value) {
        Ok(parsed) => parsed,
        Err(_) => json!(TextOrHex(value)),
    }
}

/// A time in ms since the epoch as RFC 3339 (UTC, whole seconds), for humans.
pub fn show_time(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A time as JSON's `time_iso`: RFC 3339, or `null` when unknown (0).
pub fn time_iso(ms: u64) -> Value {
    match ms {
        0 => Value::Null,
        ms => Value::String(show_time(ms)),
    }
}

/// A file reference as JSON (`null` for a row that is not a file).
pub fn file_json(file: Option<&FileRef>) -> Value {
    match file {
        Some(file) => json!({ "hash": file.hash, "size": file.size }),
        None => Value::Null,
    }
}

/// One version of a row as JSON (history, forks, diff sides).
pub fn version_json(version: &RowVersion) -> Value {
    let value = if version.deleted || version.file.is_some() {
        Value::Null
    } else {
        value_json(&version.value)
    };
    json!({
        "version": version.version,
        "log": version.log,
        "change": version.change,
        "time": version.time,
        "time_iso": time_iso(version.time),
        "deleted": version.deleted,
        "value": value,
        "file": file_json(version.file.as_ref()),
    })
}

/// A value on one line for humans: JSON and plain text as they are, anything else (binary,
/// control characters, text that would read as hex) as `0x<hex>`.
pub fn show_value(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.starts_with("0x") && !text.chars().any(char::is_control) => {
            text.to_string()
        }
        _ => format!("0x{}", hex::encode(value)),
    }
}

/// What a row holds, on one line: its value, `file <hash> (<size>)`, or `(deleted)`.
pub fn show_content(value: &[u8], file: Option<&FileRef>, deleted: bool) -> String {
    match (deleted, file) {
        (true, _) => "(deleted)".to_string(),
        (false, Some(file)) => format!("file {} ({} bytes)", file.hash, file.size),
        (false, None) => show_value(value),
    }
}

/// `1 put`, `2 puts`.
pub fn plural(n: u64, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{} {what}s", indicatif::HumanCount(n)),
    }
}

/// `n` rows in `d`: `0.21 s, 16,076 rows/s`.
pub fn rate(n: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return format!("{secs:.2} s");
    }
    // The cast saturates, so it cannot misbehave.
    let per_second = (n as f64 / secs).round() as u64;
    format!("{secs:.2} s, {} rows/s", indicatif::HumanCount(per_second))
}

/// A word as a POSIX shell needs it written (for command lines shown, or run by `ssh`).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=,@%+-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("airports"), "airports");
        assert_eq!(shell_word("FAA airports"), "'FAA airports'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
