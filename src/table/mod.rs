//! Tables: a dataset's rows as NDJSON or CSV text, read and written exactly, so that a
//! table written by [`TableWriter`] reads back through [`TableReader`] (with the same
//! [`TableKeys`]) to the very same rows, keys and values byte for byte.
//!
#![doc = include_str!("rules.md")]

mod ahead;
mod duplicates;
mod json;
mod read;
mod text;
mod write;

use std::borrow::Cow;
use std::path::Path;

pub use ahead::ReadAhead;
pub use duplicates::Duplicates;
pub use json::compact_json;
pub use read::TableReader;
pub use text::TextOrHex;
pub use write::TableWriter;

use crate::error::{Error, Result, excerpt};

/// The reserved column of [`TableKeys::Column`] that holds the row key.
const KEY: &str = "_key";
/// The reserved member that holds a whole JSON value.
const VALUE: &str = "_value";
/// The reserved member that holds a value's bytes.
const RAW: &str = "_raw";

/// A table's text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

impl TableFormat {
    /// The format a file name says: `.csv`, or `.ndjson`, `.jsonl` and `.json` (any case).
    pub fn from_path(path: &Path) -> Option<TableFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(TableFormat::Csv),
            "ndjson" | "jsonl" | "json" => Some(TableFormat::Ndjson),
            _ => None,
        }
    }

    /// Its lower-case name: `ndjson` or `csv`.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Ndjson => "ndjson",
            TableFormat::Csv => "csv",
        }
    }
}

/// Where a table keeps its rows' keys (see the [crate docs](crate#tables)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKeys {
    /// In the reserved `_key` column; the value is the rest of the row.
    Column,
    /// In these fields of the row's value.
    Fields(KeyFields),
}

/// The field(s) of a row's value whose text is its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFields(Vec<String>);

impl KeyFields {
    /// The key fields `names`, in order, each trimmed of white space. Refuses an empty list
    /// and a name that is empty once trimmed ([`Error::InvalidArgument`]).
    ///
    /// ```
    /// let fields = strata::KeyFields::new("site, date".split(','))?;
    /// assert_eq!(fields.names(), ["site", "date"]);
    /// assert!(strata::KeyFields::new(["a", " "]).is_err());
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn new<I>(names: I) -> Result<KeyFields>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut fields = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                return Err(Error::InvalidArgument(
                    "a key field name is empty".to_string(),
                ));
            }
            fields.push(name.to_string());
        }
        if fields.is_empty() {
            return Err(Error::InvalidArgument("no key field is named".to_string()));
        }
        Ok(KeyFields(fields))
    }

    /// The field names, in order.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The key made of each field's text; `part(i, name)` gives field `i`'s text.
    fn compose<'a>(
        &self,
        mut part: impl FnMut(usize, &str) -> Result<Cow<'a, str>, String>,
    ) -> Result<Vec<u8>, String> {
        let mut key = Vec::new();
        let several = self.0.len() > 1;
        for (i, name) in self.0.iter().enumerate() {
            let text = part(i, name)?;
            if text.is_empty() {
                return Err(format!("key field {:?} is empty", excerpt(name)));
            }
            if !several {
                key.extend_from_slice(text.as_bytes());
                continue;
            }
            if i > 0 {
                key.push(b',');
            }
            for byte in text.bytes() {
                if byte == b',' || byte == b'\\' {
                    key.push(b'\\');
                }
                key.push(byte);
            }
        }
        Ok(key)
    }

    /// The key of a JSON object, from `member(name)`, the value text of its member `name`
    /// (as JSON readers do, the last of repeated names counts).
    fn key_of<'a>(&self, member: impl Fn(&str) -> Option<&'a str>) -> Result<Vec<u8>, String> {
        self.compose(|_, name| {
            let Some(raw) = member(name) else {
                return Err(format!("missing key field {:?}", excerpt(name)));
            };
            match raw.as_bytes().first() {
                Some(b'"') => json::string(raw).map_err(|e| e.to_string()),
                Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(Cow::Owned(raw.to_string())),
                _ => Err(format!(
                    "key field {:?} is {}: a key must be a string, number or boolean",
                    excerpt(name),
                    json::kind(raw.as_bytes())
                )),
            }
        })
    }
}

/// A JSON object of strings, exactly as a CSV record with the fields `names` (each a JSON
/// string, ready to write) and the text `cells` is stored.
fn record_value<'a>(names: &[String], cells: impl Iterator<Item = &'a str>) -> Result<Vec<u8>> {
    let mut value = Vec::with_capacity(2 + names.iter().map(|n| n.len() + 8).sum::<usize>());
    value.push(b'{');
    for (i, (name, cell)) in names.iter().zip(cells).enumerate() {
        if i > 0 {
            value.push(b',');
        }
        value.extend_from_slice(name.as_bytes());
        value.push(b':');
        serde_json::to_writer(&mut value, cell).map_err(|e| Error::malformed("CSV field", e))?;
    }
    value.push(b'}');
    Ok(value)
}

/// A name as a JSON string.
fn json_string(name: &str) -> Result<String> {
    serde_json::to_string(name).map_err(|e| Error::malformed("CSV field name", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_are_unambiguous() {
        let key = |parts: &[&str]| {
            let fields =
                KeyFields::new(parts.iter().enumerate().map(|(i, _)| format!("f{i}"))).unwrap();
            String::from_utf8(fields.compose(|i, _| Ok(Cow::Borrowed(parts[i]))).unwrap()).unwrap()
        };
        assert_eq!(key(&["a,b", "c"]), r"a\,b,c");
        assert_eq!(key(&["a", "b,c"]), r"a,b\,c");
        assert_eq!(key(&[r"a\", "b"]), r"a\\,b");
        assert_eq!(key(&["a,b"]), "a,b");
    }

    #[test]
    fn key_field_names_are_trimmed_and_never_empty() {
        let fields = KeyFields::new([" a ", "b\t"]).unwrap();
        assert_eq!(fields.names(), ["a", "b"]);
        for bad in [&["a", ""][..], &["  "], &[]] {
            assert!(matches!(
                KeyFields::new(bad.iter()),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}
