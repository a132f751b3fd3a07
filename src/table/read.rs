//! Reading a table: NDJSON or CSV text in, `(key, value)` rows out, one at a time.
//!
//! About 530 lines, 90 of them tests: the NDJSON and CSV readers share key composition and
//! line-by-line error reporting (repeated keys are counted in `duplicates.rs`).

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use super::duplicates::Duplicates;
use super::json::{self, Member};
use super::{
    KEY, KeyFields, RAW, TableFormat, TableKeys, TextOrHex, VALUE, json_string, record_value,
};
use crate::error::{Error, Result, excerpt};

/// The input after format sniffing: the bytes looked at, then the rest.
type Input<R> = Chain<Cursor<Vec<u8>>, R>;

/// How much input is buffered.
const BUFFER: usize = 256 * 1024;

/// A streaming reader of a table's rows: an iterator of `(key, value)` from any [`Read`],
/// in file order, memory bounded by the longest line (plus [`Duplicates`]). The rules are
/// in the [crate docs](crate#tables). An error names the file and line; the iterator ends after
/// it.
///
/// ```
/// use strata::{KeyFields, TableFormat, TableKeys, TableReader};
///
/// let csv = "id,name\n007,Spring\n";
/// let keys = TableKeys::Fields(KeyFields::new(["id"])?);
/// let mut rows = TableReader::new(csv.as_bytes(), Some(TableFormat::Csv), keys, "sites.csv")?;
/// let (key, value) = rows.next().unwrap()?;
/// assert_eq!((&key[..], &value[..]), (&b"007"[..], &br#"{"id":"007","name":"Spring"}"#[..]));
/// assert!(rows.next().is_none());
///
/// // Into a repository: the reader is the importer's row iterator.
/// let repo = strata::Repository::in_memory()?;
/// let keys = TableKeys::Fields(KeyFields::new(["id"])?);
/// let rows = TableReader::new("id\n1\n2\n".as_bytes(), None, keys, "ids.csv")?;
/// assert_eq!(repo.import("ids", rows, 10_000, None)?.len(), 1);
/// assert_eq!(repo.get("ids", "2")?.unwrap().value, br#"{"id":"2"}"#);
/// # Ok::<(), strata::Error>(())
/// ```
pub struct TableReader<R: Read> {
    name: String,
    format: TableFormat,
    rows: Rows<R>,
    duplicates: Duplicates,
    read: u64,
    failed: bool,
}

enum Rows<R: Read> {
    Ndjson {
        input: BufReader<Input<R>>,
        keys: TableKeys,
        line: u64,
        buf: Vec<u8>,
    },
    Csv {
        reader: csv::Reader<Input<R>>,
        layout: CsvLayout,
        record: csv::StringRecord,
    },
}

/// Which CSV columns make the key and the value.
struct CsvLayout {
    key: CsvKey,
    /// The columns whose cells make the value's members, and their names as JSON strings.
    value_columns: Vec<usize>,
    value_names: Vec<String>,
}

enum CsvKey {
    Fields {
        fields: KeyFields,
        columns: Vec<usize>,
    },
    /// The `_key` column, and the `_value` column if there is one.
    Column { key: usize, value: Option<usize> },
}

impl<R: Read> TableReader<R> {
    /// Reads `input` as a table named `name` in errors (a file name, `stdin`). `format`
    /// `None` means: from the first byte that is not white space or a byte-order mark, `{`
    /// being NDJSON and anything else CSV. A CSV header is read here, so its errors (a
    /// missing key field, a field named twice) come from here.
    pub fn new(
        input: R,
        format: Option<TableFormat>,
        keys: TableKeys,
        name: impl Into<String>,
    ) -> Result<TableReader<R>> {
        let name = name.into();
        let (format, input) = match format {
            Some(format) => (format, Cursor::new(Vec::new()).chain(input)),
            None => sniff(input).map_err(|e| Error::io(format!("reading {name}"), e))?,
        };
        let rows = match format {
            TableFormat::Ndjson => Rows::Ndjson {
                input: BufReader::with_capacity(BUFFER, input),
                keys,
                line: 0,
                buf: Vec::with_capacity(4096),
            },
            TableFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .buffer_capacity(BUFFER)
                    .from_reader(input);
                let header = reader.headers().map_err(|e| csv_error(&name, e))?.clone();
                let layout = CsvLayout::new(&header, keys).map_err(|reason| Error::Table {
                    place: format!("{name} line 1"),
                    reason,
                })?;
                Rows::Csv {
                    reader,
                    layout,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(TableReader {
            name,
            format,
            rows,
            duplicates: Duplicates::default(),
            read: 0,
            failed: false,
        })
    }

    /// The table's format (as given, or as sniffed).
    pub fn format(&self) -> TableFormat {
        self.format
    }

    /// How many rows have been read so far.
    pub fn rows(&self) -> u64 {
        self.read
    }

    /// The rows so far whose key an earlier row had.
    pub fn duplicates(&self) -> &Duplicates {
        &self.duplicates
    }

    fn next_row(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let name = &self.name;
        let (row, line) = match &mut self.rows {
            Rows::Ndjson {
                input,
                keys,
                line,
                buf,
            } => loop {
                buf.clear();
                let n = input
                    .read_until(b'\n', buf)
                    .map_err(|e| Error::io(format!("reading {name}"), e))?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let mut text: &[u8] = buf;
                if *line == 1 {
                    text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
                }
                while let [rest @ .., b'\n' | b'\r'] = text {
                    text = rest;
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let row = ndjson_row(text, keys).map_err(|reason| Error::Table {
                    place: format!("{name} line {line}"),
                    reason,
                })?;
                break (row, *line);
            },
            Rows::Csv {
                reader,
                layout,
                record,
            } => {
                if !reader.read_record(record).map_err(|e| csv_error(name, e))? {
                    return Ok(None);
                }
                let line = record.position().map_or(0, |p| p.line());
                let row = layout.row(record).map_err(|reason| Error::Table {
                    place: format!("{name} line {line}"),
                    reason,
                })?;
                (row, line)
            }
        };
        // Only the `_key` column can hold an empty key: key fields refuse empty text.
        if row.0.is_empty() {
            return Err(Error::empty_key_at(format!("{name} line {line}")));
        }
        self.read += 1;
        self.duplicates.add(&row.0);
        Ok(Some(row))
    }
}

impl<R: Read> Iterator for TableReader<R> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let row = self.next_row().transpose();
        self.failed = matches!(row, Some(Err(_)));
        row
    }
}

/// One NDJSON line (without its line end) as a row; the error is the reason alone.
fn ndjson_row(text: &[u8], keys: &TableKeys) -> Result<(Vec<u8>, Vec<u8>), String> {
    let not_object = || {
        let trimmed = text.trim_ascii_start();
        format!("not a JSON object (found {})", json::kind(trimmed))
    };
    match keys {
        TableKeys::Fields(fields) => {
            // Only the key fields are needed: one parse that keeps nothing else.
            let picked = json::pick(text, fields.names())
                .map_err(|error| json_error(&error))?
                .ok_or_else(not_object)?;
            let key = fields.key_of(|name| picked.get(name))?;
            Ok((key, json::minify(text).into_owned()))
        }
        TableKeys::Column => match json::members(text) {
            Ok(Some(members)) => column_row(text, &members),
            Ok(None) => Err(not_object()),
            Err(error) => Err(json_error(&error)),
        },
    }
}

/// A row whose key is in the `_key` member (see the module docs).
fn column_row(text: &[u8], members: &[Member<'_>]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut keys = members.iter().enumerate().filter(|(_, m)| m.name == KEY);
    let Some((index, key_member)) = keys.next() else {
        return Err(format!(
            "no {KEY:?} member, which holds the row key when no key fields are named"
        ));
    };
    if keys.next().is_some() {
        return Err(format!("{KEY:?} appears twice"));
    }
    let key = bytes_member(key_member)?;
    let rest: Vec<&Member<'_>> = members.iter().filter(|m| m.name != KEY).collect();
    let value = match rest.as_slice() {
        [only] if only.name == VALUE => json::minify(only.value.as_bytes()).into_owned(),
        [only] if only.name == RAW => bytes_member(only)?,
        _ => {
            if let Some(reserved) = rest.iter().find(|m| m.name == VALUE || m.name == RAW) {
                return Err(format!(
                    "{:?} must be the only member beside {KEY:?}",
                    reserved.name
                ));
            }
            // The object without its `_key` member, cut out of the text as written.
            let name_start = |i: usize| {
                let from = if i == 0 { 0 } else { members[i - 1].end() };
                text[from..]
                    .iter()
                    .position(|&b| b == b'"')
                    .map_or(from, |p| from + p)
            };
            let cut = match (index + 1 < members.len(), index > 0) {
                (true, _) => name_start(index)..name_start(index + 1),
                (false, true) => members[index - 1].end()..key_member.end(),
                (false, false) => name_start(index)..key_member.end(),
            };
            let mut object = Vec::with_capacity(text.len());
            object.extend_from_slice(&text[..cut.start]);
            object.extend_from_slice(&text[cut.end..]);
            json::minify(&object).into_owned()
        }
    };
    Ok((key, value))
}

/// The bytes a `_key` or `_raw` member holds ([`TextOrHex`]'s JSON form).
fn bytes_member(member: &Member<'_>) -> Result<Vec<u8>, String> {
    serde_json::from_str::<TextOrHex>(member.value)
        .map(|bytes| bytes.0)
        .map_err(|e| {
            format!(
                "{:?} must be a string, or {{\"hex\": \"…\"}} for bytes that are not text ({})",
                member.name,
                json_reason(&e)
            )
        })
}

/// serde_json's message without its position (the caller names the line).
fn json_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .unwrap_or(&message)
        .to_string()
}

/// A JSON error within one line, located by column.
fn json_error(error: &serde_json::Error) -> String {
    format!(
        "not valid JSON (column {}): {}",
        error.column(),
        excerpt(&json_reason(error))
    )
}

impl CsvLayout {
    fn new(header: &csv::StringRecord, keys: TableKeys) -> Result<CsvLayout, String> {
        for (i, field) in header.iter().enumerate() {
            if header.iter().take(i).any(|f| f == field) {
                return Err(format!(
                    "the header has the field {:?} twice",
                    excerpt(field)
                ));
            }
        }
        let column = |name: &str| header.iter().position(|f| f == name);
        let listed: Vec<String> = header.iter().map(|f| format!("{f:?}")).collect();
        let listed = excerpt(&listed.join(", ")).into_owned();
        let key = match keys {
            TableKeys::Fields(fields) => {
                let mut columns = Vec::with_capacity(fields.names().len());
                for name in fields.names() {
                    match column(name) {
                        Some(i) => columns.push(i),
                        // No header at all: an empty file, which has no rows either.
                        None if header.is_empty() => columns.push(0),
                        None => {
                            return Err(format!(
                                "missing key field {:?} (the header has {listed})",
                                excerpt(name)
                            ));
                        }
                    }
                }
                CsvKey::Fields { fields, columns }
            }
            TableKeys::Column => match column(KEY) {
                Some(key) => CsvKey::Column {
                    key,
                    value: column(VALUE),
                },
                None if header.is_empty() => CsvKey::Column {
                    key: 0,
                    value: None,
                },
                None => {
                    return Err(format!(
                        "no {KEY:?} column, which holds the row key when no key fields are named (the header has {listed})"
                    ));
                }
            },
        };
        let value_columns: Vec<usize> = match &key {
            CsvKey::Fields { .. } => (0..header.len()).collect(),
            CsvKey::Column { key, value } => (0..header.len())
                .filter(|i| i != key && Some(*i) != *value)
                .collect(),
        };
        let mut value_names = Vec::with_capacity(value_columns.len());
        for &i in &value_columns {
            value_names.push(json_string(&header[i]).map_err(|e| e.to_string())?);
        }
        Ok(CsvLayout {
            key,
            value_columns,
            value_names,
        })
    }

    /// A record as a row.
    fn row(&self, record: &csv::StringRecord) -> Result<(Vec<u8>, Vec<u8>), String> {
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let cells = || self.value_columns.iter().map(|&i| cell(i));
        let key = match &self.key {
            CsvKey::Fields { fields, columns } => {
                fields.compose(|i, _| Ok(Cow::Borrowed(cell(columns[i]))))?
            }
            CsvKey::Column { key, value } => {
                let key = cell(*key).as_bytes().to_vec();
                if let Some(whole) = value.map(cell).filter(|c| !c.is_empty()) {
                    if cells().any(|c| !c.is_empty()) {
                        return Err(format!(
                            "a record with a {VALUE:?} must leave its other fields empty"
                        ));
                    }
                    let value = json::compact_json(whole.as_bytes()).map_err(|e| {
                        format!("{VALUE:?} is not valid JSON: {}", excerpt(&e.to_string()))
                    })?;
                    return Ok((key, value.into_owned()));
                }
                key
            }
        };
        let value = record_value(&self.value_names, cells()).map_err(|e| e.to_string())?;
        Ok((key, value))
    }
}

/// A CSV reading error, naming the file and line.
fn csv_error(name: &str, error: csv::Error) -> Error {
    let place = match error.position() {
        Some(position) => format!("{name} line {}", position.line()),
        None => name.to_string(),
    };
    let reason = match error.into_kind() {
        csv::ErrorKind::Io(source) => return Error::io(format!("reading {place}"), source),
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} {} where the header has {expected_len}",
            if len == 1 { "field" } else { "fields" }
        ),
        other => excerpt(&format!("{other:?}")).into_owned(),
    };
    Error::Table { place, reason }
}

/// The format from the first byte that is not a byte-order mark or white space: `{` is
/// NDJSON, anything else CSV. Returns the input with nothing consumed.
fn sniff<R: Read>(mut input: R) -> io::Result<(TableFormat, Input<R>)> {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    // Past this much white space, give up looking: it is not NDJSON that anyone wrote.
    const LIMIT: usize = 1 << 20;
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 8192];
    let first = loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        prefix.extend_from_slice(&chunk[..n]);
        let partial_bom = prefix.len() < BOM.len() && BOM.starts_with(&prefix);
        let body = prefix.strip_prefix(BOM).unwrap_or(&prefix);
        let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if n == 0 || first.is_some() && !partial_bom || prefix.len() > LIMIT {
            break first;
        }
    };
    let format = match first {
        Some(b'{') => TableFormat::Ndjson,
        _ => TableFormat::Csv,
    };
    Ok((format, Cursor::new(prefix).chain(input)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: TableFormat, keys: TableKeys) -> Result<Vec<(String, String)>> {
        TableReader::new(text.as_bytes(), Some(format), keys, "t")?
            .map(|row| {
                let (key, value) = row?;
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    String::from_utf8(value).unwrap(),
                ))
            })
            .collect()
    }

    #[test]
    fn the_key_column_is_cut_out_of_the_object_as_written() {
        let lines = [
            (r#"{"_key":"k","a":1}"#, r#"{"a":1}"#),
            (r#"{ "a" : 1 , "_key" : "k" }"#, r#"{"a":1}"#),
            (r#"{"a":1,"_key":"k","b":[1, 2]}"#, r#"{"a":1,"b":[1,2]}"#),
            (r#"{"_key":"k"}"#, "{}"),
            (r#"{ "_key" : "k" , "_value" : [ 1 ] }"#, "[1]"),
            (r#"{"_key":"k","_raw":"a b"}"#, "a b"),
        ];
        for (line, value) in lines {
            let rows = read(line, TableFormat::Ndjson, TableKeys::Column).unwrap();
            assert_eq!(rows, [("k".to_string(), value.to_string())], "{line}");
        }
        for (line, reason) in [
            (r#"{"a":1}"#, "no \"_key\" member"),
            (r#"{"_key":"a","_key":"b"}"#, "\"_key\" appears twice"),
            (r#"{"_key":1}"#, "\"_key\" must be a string"),
            (
                r#"{"_key":"k","_value":1,"a":2}"#,
                "\"_value\" must be the only member",
            ),
            (r#"{"_key":""}"#, "a row key cannot be empty"),
        ] {
            let error = read(line, TableFormat::Ndjson, TableKeys::Column).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with("t line 1: "), "{message}");
            assert!(message.contains(reason), "{line}: {message}");
        }
    }

    #[test]
    fn repeated_keys_are_counted() {
        let keys = TableKeys::Fields(KeyFields::new(["id"]).unwrap());
        let mut reader =
            TableReader::new("id\na\nb\na\na\nc\nb\n".as_bytes(), None, keys, "t").unwrap();
        assert_eq!(reader.format(), TableFormat::Csv);
        assert_eq!(reader.by_ref().count(), 6);
        assert_eq!(reader.rows(), 6);
        assert_eq!(reader.duplicates().count(), 3);
        assert_eq!(reader.duplicates().keys(), [b"a".to_vec(), b"b".to_vec()]);
        assert!(!reader.duplicates().more_keys());
        let text: String = (0..7).map(|i| format!("{i}\n{i}\n")).collect();
        let text = format!("id\n{text}");
        let keys = TableKeys::Fields(KeyFields::new(["id"]).unwrap());
        let mut reader = TableReader::new(text.as_bytes(), None, keys, "t").unwrap();
        assert_eq!(reader.by_ref().count(), 14);
        assert_eq!(reader.duplicates().count(), 7);
        assert_eq!(reader.duplicates().keys().len(), 5);
        assert!(reader.duplicates().more_keys());
    }
}
