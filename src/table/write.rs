//! Writing a table: `(key, value)` rows in, NDJSON or CSV text out.
//!
//! About 750 lines, 200 of them tests (three property tests against slower models): the
//! NDJSON and CSV writers share the row checks (compact JSON objects, key fields,
//! reserved names) that make a table read back byte for byte, and `write_all`'s one pass
//! through a temporary file needs the CSV writer's column state.

use std::borrow::Cow;
use std::io::{Seek, SeekFrom, Write};

use super::json::{self, Member};
use super::{
    KEY, KeyFields, RAW, TableFormat, TableKeys, TextOrHex, VALUE, json_string, record_value,
};
use crate::error::{Error, Result, excerpt};

/// Writes rows as a table that [`TableReader`](super::TableReader) reads back, with the
/// same [`TableKeys`], to the same rows byte for byte; a row the table cannot carry exactly
/// is refused (see the [crate docs](crate#tables)).
///
/// A CSV's columns depend on its rows, and a bad row must be refused before anything is
/// written: [`write_all`](TableWriter::write_all) takes care of that (one pass through a
/// temporary file when the first rows' columns hold for every row, else two). Row by row,
/// a CSV needs every row twice: once through [`scan`](TableWriter::scan), then through
/// [`write`](TableWriter::write). NDJSON needs one pass ([`needs_scan`] is false).
///
/// [`needs_scan`]: TableWriter::needs_scan
///
/// ```
/// use strata::{TableFormat, TableKeys, TableWriter};
///
/// let rows: [(&[u8], &[u8]); 2] = [(b"k1", br#"{"id":"other"}"#), (b"k2", b"42")];
/// let mut writer = TableWriter::new(Vec::new(), TableFormat::Ndjson, TableKeys::Column, false);
/// for (key, value) in rows {
///     writer.write(key, value)?;
/// }
/// let text = writer.finish()?;
/// assert_eq!(
///     String::from_utf8(text).unwrap(),
///     "{\"_key\":\"k1\",\"id\":\"other\"}\n{\"_key\":\"k2\",\"_value\":42}\n"
/// );
/// # Ok::<(), strata::Error>(())
/// ```
pub struct TableWriter<W: Write> {
    keys: TableKeys,
    out: Out<W>,
}

enum Out<W: Write> {
    Ndjson {
        out: W,
        line_end: &'static [u8],
        line: Vec<u8>,
    },
    Csv {
        // Boxed: the CSV writer holds its buffer inline.
        writer: Box<csv::Writer<W>>,
        columns: Columns,
        crlf: bool,
    },
}

/// The CSV columns, as scanning found them.
#[derive(Default)]
struct Columns {
    /// The fields of the first row that can be cells (names, and as JSON strings).
    fields: Option<(Vec<String>, Vec<String>)>,
    /// Some row travels whole in `_value` (with the `_key` column only).
    value: bool,
    header_written: bool,
}

/// How one row goes into a CSV.
enum CsvRow<'a> {
    /// As cells under the header's fields.
    Cells(Vec<Cow<'a, str>>),
    /// Whole, as JSON text in `_value`.
    Whole,
}

/// A row the table cannot carry, named by its key.
fn refuse(key: &[u8], reason: impl Into<String>) -> Error {
    Error::Table {
        place: format!("row {}", excerpt(&TextOrHex(key).to_string())),
        reason: reason.into(),
    }
}

/// The names a row object's members must not have for its members to sit beside `_key`.
const RESERVED: [&str; 3] = [KEY, VALUE, RAW];

/// The members of `value` when it is a compact JSON object; else why not, for a table
/// whose rows must be objects.
fn object(value: &[u8]) -> Result<Vec<Member<'_>>, String> {
    row_object(value, json::members(value))
}

/// What parsing `value` found (`found`, from [`json::members`] or [`json::pick`]) when
/// `value` is a compact JSON object; else why it is not one.
fn row_object<T>(value: &[u8], found: Result<Option<T>, serde_json::Error>) -> Result<T, String> {
    match found {
        Err(_) => Err("its value is not compact JSON".to_string()),
        Ok(_) if !json::is_minified(value) => {
            Err("its value is JSON with white space, which a table cannot keep exactly".to_string())
        }
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(format!(
            "its value is {}, not a JSON object",
            json::kind(value)
        )),
    }
}

/// Checks that the key fields of an object give `key`; `member(name)` is the value text of
/// its member `name`.
fn check_key<'a>(
    fields: &KeyFields,
    member: impl Fn(&str) -> Option<&'a str>,
    key: &[u8],
) -> Result<(), String> {
    let found = fields.key_of(member)?;
    if found == key {
        return Ok(());
    }
    let names: Vec<String> = fields.names().iter().map(|n| format!("{n:?}")).collect();
    let (noun, verb) = if names.len() == 1 {
        ("field", "gives")
    } else {
        ("fields", "give")
    };
    Err(format!(
        "its key {noun} {} {verb} the key {}, not {}",
        excerpt(&names.join(", ")),
        excerpt(&TextOrHex(&found).to_string()),
        excerpt(&TextOrHex(key).to_string())
    ))
}

/// Field names and their cells, in order.
type NamedCells<'a> = (Vec<Cow<'a, str>>, Vec<Cow<'a, str>>);

/// The cells of a value that a CSV record can hold exactly: a compact JSON object (whose
/// `members` these are) of strings with distinct names (and, with `reserved`, none of the
/// reserved names) whose record, read back, is the value byte for byte. Returns the names
/// and the cells.
fn cells<'a>(value: &[u8], members: Vec<Member<'a>>, reserved: bool) -> Option<NamedCells<'a>> {
    let mut names = Vec::with_capacity(members.len());
    let mut cells = Vec::with_capacity(members.len());
    let mut escapes = false;
    for member in members {
        let is_reserved = RESERVED.contains(&member.name.as_ref());
        if !member.value.starts_with('"') || reserved && is_reserved || names.contains(&member.name)
        {
            return None;
        }
        // A name that was unescaped is owned (one that was not may be too: then the record
        // is rebuilt below, which is only slower).
        escapes |= member.value.contains('\\') || matches!(member.name, Cow::Owned(_));
        cells.push(json::string(member.value).ok()?);
        names.push(member.name);
    }
    // Without escapes, a compact object of strings is its record already: serde_json
    // escapes only `"`, `\` and control characters, none of which JSON text holds
    // unescaped. Checked against the rebuilt record by `csv_cells_skip_the_rebuild_only_without_escapes`.
    if !escapes {
        return Some((names, cells));
    }
    let json_names: Vec<String> = names
        .iter()
        .map(|n| json_string(n))
        .collect::<Result<_>>()
        .ok()?;
    let rebuilt = record_value(&json_names, cells.iter().map(|c| c.as_ref())).ok()?;
    (rebuilt == value).then_some((names, cells))
}

impl<W: Write> TableWriter<W> {
    /// A writer of `format` to `out`, with keys where `keys` says; `crlf` ends lines with
    /// CRLF instead of LF.
    pub fn new(out: W, format: TableFormat, keys: TableKeys, crlf: bool) -> TableWriter<W> {
        let out = match format {
            TableFormat::Ndjson => Out::Ndjson {
                out,
                line_end: if crlf { b"\r\n" } else { b"\n" },
                line: Vec::new(),
            },
            TableFormat::Csv => Out::Csv {
                writer: Box::new(csv_writer(out, crlf)),
                columns: Columns::default(),
                crlf,
            },
        };
        TableWriter { keys, out }
    }

    /// Whether every row must go through [`scan`](TableWriter::scan) before the first
    /// [`write`](TableWriter::write): true for CSV, whose header depends on the rows.
    pub fn needs_scan(&self) -> bool {
        matches!(self.out, Out::Csv { .. })
    }

    /// The first pass: takes note of a row (for CSV, its columns) and refuses it now if the
    /// table cannot carry it exactly. Writes nothing.
    pub fn scan(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        match &mut self.out {
            Out::Ndjson { line, .. } => {
                line.clear();
                ndjson_line(&self.keys, key, value, line)
            }
            Out::Csv { columns, .. } => columns.row(&self.keys, key, value).map(drop),
        }
    }

    /// Writes a row (for CSV, after every row was scanned).
    pub fn write(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        match &mut self.out {
            Out::Ndjson {
                out,
                line_end,
                line,
            } => {
                line.clear();
                ndjson_line(&self.keys, key, value, line)?;
                line.extend_from_slice(line_end);
                out.write_all(line)
                    .map_err(|e| Error::io("writing the table", e))
            }
            Out::Csv {
                writer, columns, ..
            } => {
                let row = columns.row(&self.keys, key, value)?;
                if let CsvRow::Whole = row
                    && !columns.value
                {
                    return Err(refuse(
                        key,
                        "it needs the \"_value\" column, which no scanned row did: scan every row before writing a CSV",
                    ));
                }
                csv_record(writer, columns, &self.keys, key, value, &row)
            }
        }
    }

    /// Writes every row `rows()` yields, then finishes the table ([`finish`]), calling
    /// `written` for each row written. NDJSON takes one pass. A CSV's columns depend on
    /// every row, and nothing may be written before every row is known to fit: its rows
    /// go to a temporary file first (in the system's temporary folder, `TMPDIR`), in one
    /// pass as long as the columns the first rows chose hold for the rest (the usual
    /// table), and then into the output. When a later row changes the columns, or the
    /// temporary file cannot be written, the rest are only scanned and `rows()` is called
    /// again to write them all. `rows` must yield the same rows each time.
    ///
    /// [`finish`]: TableWriter::finish
    pub fn write_all<I>(
        mut self,
        mut rows: impl FnMut() -> I,
        mut written: impl FnMut(),
    ) -> Result<W>
    where
        I: Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    {
        let crlf = match &self.out {
            Out::Csv { crlf, .. } => *crlf,
            Out::Ndjson { .. } => {
                for row in rows() {
                    let (key, value) = row?;
                    self.write(&key, &value)?;
                    written();
                }
                return self.finish();
            }
        };
        let mut first = rows();
        let (spooled, count) = spool(&self.keys, crlf, &mut first, &mut written)?;
        let found = match spooled {
            Spooled::Whole(mut file) => {
                let mut out = self.finish()?;
                std::io::copy(&mut file, &mut out)
                    .and_then(|_| out.flush())
                    .map_err(|e| Error::io("writing the table", e))?;
                return Ok(out);
            }
            Spooled::Partial(found) => found,
            Spooled::Nothing => Columns::default(),
        };
        // The columns of the rows read so far, then of the rest; then every row again.
        if let Out::Csv { columns, .. } = &mut self.out {
            *columns = Columns {
                header_written: false,
                ..found
            };
        }
        for row in first {
            let (key, value) = row?;
            self.scan(&key, &value)?;
        }
        for (at, row) in rows().enumerate() {
            let (key, value) = row?;
            self.write(&key, &value)?;
            if at as u64 >= count {
                written();
            }
        }
        self.finish()
    }

    /// Flushes the table and returns the output.
    pub fn finish(self) -> Result<W> {
        match self.out {
            Out::Ndjson { mut out, .. } => {
                out.flush().map_err(|e| Error::io("writing the table", e))?;
                Ok(out)
            }
            Out::Csv { writer, .. } => writer
                .into_inner()
                .map_err(|e| Error::io("writing the table", e.into_error())),
        }
    }
}

/// What writing a CSV's rows to a temporary file came to (see [`TableWriter::write_all`]).
enum Spooled {
    /// Every row fitted the columns the first rows chose: the CSV, ready to be read.
    Whole(std::fs::File),
    /// A row changed the columns after rows were written, or the temporary file failed:
    /// the columns of the rows read so far (that row included).
    Partial(Columns),
    /// No temporary file could be made; no row was read.
    Nothing,
}

/// Writes `rows` as a CSV to a temporary file while the columns the first rows chose hold
/// for each, calling `written` for each row written; returns how it ended and how many
/// rows it wrote. A row the CSV cannot hold is refused as it comes.
fn spool<I>(
    keys: &TableKeys,
    crlf: bool,
    rows: &mut I,
    written: &mut impl FnMut(),
) -> Result<(Spooled, u64)>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
{
    let Ok(file) = tempfile::tempfile() else {
        return Ok((Spooled::Nothing, 0));
    };
    let mut writer = csv_writer(std::io::BufWriter::new(file), crlf);
    let mut columns = Columns::default();
    let mut count = 0;
    for item in rows {
        let (key, value) = item?;
        let before = (columns.fields.is_some(), columns.value);
        let row = columns.row(keys, &key, &value)?;
        let changed = columns.header_written && (columns.fields.is_some(), columns.value) != before;
        if changed || csv_record(&mut writer, &mut columns, keys, &key, &value, &row).is_err() {
            return Ok((Spooled::Partial(columns), count));
        }
        count += 1;
        written();
    }
    let file = writer
        .into_inner()
        .ok()
        .and_then(|buffered| buffered.into_inner().ok())
        .and_then(|mut file| file.seek(SeekFrom::Start(0)).ok().map(|_| file));
    // A file that cannot be read back leaves the columns of every row: one more pass.
    Ok((
        file.map_or(Spooled::Partial(columns), Spooled::Whole),
        count,
    ))
}

/// A CSV writer of `out`, ending lines with CRLF or LF.
fn csv_writer<W: Write>(out: W, crlf: bool) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(out)
}

/// Writes a CSV row (after the header, written first with the columns `columns` chose).
fn csv_record<W: Write>(
    writer: &mut csv::Writer<W>,
    columns: &mut Columns,
    keys: &TableKeys,
    key: &[u8],
    value: &[u8],
    row: &CsvRow<'_>,
) -> Result<()> {
    let fields = columns.fields.as_ref().map_or(&[][..], |f| &f.0[..]);
    let column_keys = matches!(keys, TableKeys::Column);
    if !columns.header_written {
        let mut header: Vec<&str> = Vec::new();
        if column_keys {
            header.push(KEY);
            if columns.value {
                header.push(VALUE);
            }
        }
        header.extend(fields.iter().map(String::as_str));
        writer.write_record(&header).map_err(csv_error)?;
        columns.header_written = true;
    }
    let mut record: Vec<&[u8]> = Vec::with_capacity(fields.len() + 2);
    if column_keys {
        record.push(key);
        if columns.value {
            record.push(if let CsvRow::Whole = row { value } else { b"" });
        }
    }
    match row {
        CsvRow::Cells(cells) => record.extend(cells.iter().map(|c| c.as_bytes())),
        CsvRow::Whole => record.extend(fields.iter().map(|_| &b""[..])),
    }
    writer.write_record(&record).map_err(csv_error)
}

/// A CSV writing error: the output failed.
fn csv_error(error: csv::Error) -> Error {
    match error.into_kind() {
        csv::ErrorKind::Io(source) => Error::io("writing the table", source),
        other => Error::io(
            "writing the table",
            std::io::Error::other(format!("{other:?}")),
        ),
    }
}

/// The NDJSON line (without its end) for a row.
fn ndjson_line(keys: &TableKeys, key: &[u8], value: &[u8], line: &mut Vec<u8>) -> Result<()> {
    let to_json = |line: &mut Vec<u8>, bytes: &[u8]| {
        serde_json::to_writer(line, &TextOrHex(bytes))
            .map_err(|e| Error::io("writing the table", e.into()))
    };
    match keys {
        TableKeys::Fields(fields) => {
            // One parse that keeps only the key fields: the row is written as it is.
            let picked = row_object(value, json::pick(value, fields.names()))
                .map_err(|reason| refuse(key, reason))?;
            check_key(fields, |name| picked.get(name), key)
                .map_err(|reason| refuse(key, reason))?;
            line.extend_from_slice(value);
        }
        TableKeys::Column => {
            line.extend_from_slice(b"{\"_key\":");
            to_json(line, key)?;
            // One parse: it checks the text and looks for the reserved names.
            let parsed = json::pick(value, &RESERVED).ok();
            let compact = parsed.is_some() && json::is_minified(value);
            match parsed.flatten().filter(|_| compact) {
                Some(object) if object.count == 0 => line.push(b'}'),
                // An object whose members cannot be mistaken for the reserved ones: its
                // members follow the key.
                Some(object) if !object.any() => {
                    line.push(b',');
                    line.extend_from_slice(&value[1..]);
                }
                _ if compact => {
                    line.extend_from_slice(b",\"_value\":");
                    line.extend_from_slice(value);
                    line.push(b'}');
                }
                _ => {
                    line.extend_from_slice(b",\"_raw\":");
                    to_json(line, value)?;
                    line.push(b'}');
                }
            }
        }
    }
    Ok(())
}

impl Columns {
    /// How a row goes into the CSV, noting what it needs; refuses what a CSV cannot hold.
    fn row<'a>(&mut self, keys: &TableKeys, key: &[u8], value: &'a [u8]) -> Result<CsvRow<'a>> {
        let fail = |reason: String| refuse(key, reason);
        match keys {
            TableKeys::Fields(fields) => {
                let members = object(value).map_err(fail)?;
                let last = |name: &str| members.iter().rev().find(|m| m.name == name);
                check_key(fields, |name| last(name).map(|m| m.value), key).map_err(fail)?;
                let Some((names, cells)) = cells(value, members, false) else {
                    return Err(fail(
                        "a CSV keyed by fields holds only JSON objects of strings, read back exactly, and its value is not one".to_string(),
                    ));
                };
                let header = self.header(&names)?;
                if header != names {
                    return Err(fail(format!(
                        "its fields are not the header's ({}): a CSV keyed by fields needs the same fields in every row",
                        excerpt(&header.join(", "))
                    )));
                }
                Ok(CsvRow::Cells(cells))
            }
            TableKeys::Column => {
                if std::str::from_utf8(key).is_err() {
                    return Err(fail(
                        "its key is not UTF-8 text, which a CSV cell cannot hold; write NDJSON"
                            .to_string(),
                    ));
                }
                // A compact object is compact JSON: one parse decides both.
                let compact = match object(value) {
                    Ok(members) => {
                        if let Some((names, cells)) = cells(value, members, true)
                            && self.header(&names)? == names
                        {
                            return Ok(CsvRow::Cells(cells));
                        }
                        true
                    }
                    Err(_) => json::is_compact(value),
                };
                if !compact {
                    return Err(fail(
                        "its value is not compact JSON, which a CSV cell cannot hold exactly; write NDJSON"
                            .to_string(),
                    ));
                }
                self.value = true;
                Ok(CsvRow::Whole)
            }
        }
    }

    /// The header's fields, set from `names` if this is the first row that has cells.
    fn header(&mut self, names: &[Cow<'_, str>]) -> Result<&[String]> {
        if self.fields.is_none() {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let json = names
                .iter()
                .map(|n| json_string(n))
                .collect::<Result<_>>()?;
            self.fields = Some((names, json));
        }
        Ok(self.fields.as_ref().map_or(&[][..], |f| &f.0[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableReader;

    /// Writes rows, reads them back; both sides with `keys`.
    fn round_trip(format: TableFormat, keys: TableKeys, rows: &[(&[u8], &[u8])]) -> Result<String> {
        let mut writer = TableWriter::new(Vec::new(), format, keys.clone(), false);
        for (key, value) in rows {
            writer.scan(key, value)?;
        }
        for (key, value) in rows {
            writer.write(key, value)?;
        }
        let text = writer.finish()?;
        let back: Vec<(Vec<u8>, Vec<u8>)> =
            TableReader::new(&text[..], Some(format), keys, "t")?.collect::<Result<_>>()?;
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            rows.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(back, expected);
        Ok(String::from_utf8(text).unwrap())
    }

    #[test]
    fn every_row_reads_back_with_the_key_column() {
        let rows: &[(&[u8], &[u8])] = &[
            (b"a", br#"{"id":"other","n":1.10}"#),
            (b"b", b"{}"),
            (b"c", br#"{"_raw":"x"}"#),
            (b"d", b"[1, 2]"),
            (b"e", b""),
            (b"\xff", b"\xfe"),
            (b"g", br#""s""#),
        ];
        round_trip(TableFormat::Ndjson, TableKeys::Column, rows).unwrap();
        let json_rows: &[(&[u8], &[u8])] = &[
            (b"a", br#"{"x":"1","y":"2"}"#),
            (b"b", br#"{"y":"2","x":"1"}"#),
            (b"c", br#"{"x":"1","y":"\u0032"}"#),
            (b"d", b"7"),
            (b"e", br#"{"x":"","y":""}"#),
        ];
        let csv = round_trip(TableFormat::Csv, TableKeys::Column, json_rows).unwrap();
        assert!(csv.starts_with("_key,_value,x,y\n"), "{csv}");
        let csv = round_trip(TableFormat::Csv, TableKeys::Column, &json_rows[..1]).unwrap();
        assert_eq!(csv, "_key,x,y\na,1,2\n");
        assert_eq!(
            round_trip(TableFormat::Csv, TableKeys::Column, &[]).unwrap(),
            ""
        );
    }

    /// The record `cells` promises, rebuilt the slow way: a compact object of distinct
    /// string members (none reserved, with `reserved`) whose record is the value exactly.
    fn cells_model(value: &[u8], reserved: bool) -> Option<Vec<(String, String)>> {
        let members = object(value).ok()?;
        let mut names: Vec<String> = Vec::new();
        let mut cells = Vec::new();
        for member in &members {
            if !member.value.starts_with('"')
                || reserved && RESERVED.contains(&member.name.as_ref())
                || names.iter().any(|n| *n == member.name)
            {
                return None;
            }
            names.push(member.name.to_string());
            cells.push(serde_json::from_str::<String>(member.value).ok()?);
        }
        let json_names: Vec<String> = names.iter().map(|n| json_string(n).unwrap()).collect();
        let record = record_value(&json_names, cells.iter().map(String::as_str)).ok()?;
        (record == value).then(|| names.into_iter().zip(cells).collect())
    }

    /// A table written the way `write_all` replaced: every row scanned, then written.
    fn two_passes(
        rows: &[(Vec<u8>, Vec<u8>)],
        format: TableFormat,
        keys: &TableKeys,
        crlf: bool,
    ) -> Result<Vec<u8>> {
        let mut writer = TableWriter::new(Vec::new(), format, keys.clone(), crlf);
        if writer.needs_scan() {
            for (key, value) in rows {
                writer.scan(key, value)?;
            }
        }
        for (key, value) in rows {
            writer.write(key, value)?;
        }
        writer.finish()
    }

    proptest::proptest! {
        /// `write_all` (one pass through a spool file while the columns hold, else two)
        /// writes what scanning every row and then writing them writes, byte for byte,
        /// and refuses what it refuses, whatever order the kinds of rows come in.
        #[test]
        fn write_all_writes_what_two_passes_write(
            picks in proptest::collection::vec((0..11usize, 0..4usize), 0..12),
            csv: bool,
            by_field: bool,
            crlf: bool,
        ) {
            const VALUES: [&str; 11] = [
                r#"{"x":"1","y":"2"}"#, r#"{"y":"2","x":"1"}"#, r#"{"x":"a"}"#, r#"{"x":"1","y":"3"}"#,
                "7", r#""s""#, "[1]", r#"{"x":"1","y":2}"#, "not json", r#"{"x": "1"}"#, "{}",
            ];
            const KEYS: [&[u8]; 4] = [b"1", b"a", b"k", b"\xff"];
            let rows: Vec<(Vec<u8>, Vec<u8>)> = picks
                .iter()
                .map(|&(v, k)| (KEYS[k].to_vec(), VALUES[v].as_bytes().to_vec()))
                .collect();
            let format = if csv { TableFormat::Csv } else { TableFormat::Ndjson };
            let keys = match by_field {
                true => TableKeys::Fields(KeyFields::new(["x"]).unwrap()),
                false => TableKeys::Column,
            };
            let expected = two_passes(&rows, format, &keys, crlf).map_err(|e| e.to_string());
            let mut written = 0;
            let mut out = Vec::new();
            let found = TableWriter::new(&mut out, format, keys, crlf)
                .write_all(|| rows.iter().cloned().map(Ok), || written += 1)
                .map(|_| ())
                .map_err(|e| e.to_string());
            match found {
                Ok(()) => proptest::prop_assert_eq!(written, rows.len()),
                // A CSV refuses a row before anything is written.
                Err(_) if csv => proptest::prop_assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out)),
                Err(_) => {}
            }
            proptest::prop_assert_eq!(found.map(|()| out), expected);
        }
    }

    proptest::proptest! {
        /// Names and cells with quotes, backslashes, slashes, control characters and
        /// non-ASCII, written with serde_json's escapes or with others (`\u0041`, `\/`):
        /// `cells` skips the rebuild only where it would change nothing.
        #[test]
        fn csv_cells_skip_the_rebuild_only_without_escapes(
            members in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::sample::select(vec!['a', '"', '\\', '/', 'é', '\n', '\u{1}', '_']), 0..4),
                    proptest::collection::vec(proptest::sample::select(vec!['A', '"', '\\', '/', 'ß', '\t', ',']), 0..4),
                    0..3u8,
                ),
                0..4,
            ),
            reserved: bool,
        ) {
            let escape = |text: &str, style: u8| match style {
                0 => serde_json::to_string(text).unwrap(),
                1 => format!("\"{}\"", text.chars().map(|c| format!("\\u{:04x}", c as u32)).collect::<String>()),
                _ => serde_json::to_string(text).unwrap().replace('/', "\\/"),
            };
            let parts: Vec<String> = members
                .iter()
                .map(|(name, cell, style)| {
                    let (name, cell): (String, String) = (name.iter().collect(), cell.iter().collect());
                    format!("{}:{}", escape(&name, *style), escape(&cell, 2 - style))
                })
                .collect();
            let value = format!("{{{}}}", parts.join(","));
            let found = object(value.as_bytes())
                .ok()
                .and_then(|members| cells(value.as_bytes(), members, reserved))
                .map(|(names, cells)| {
                    names.into_iter().map(String::from).zip(cells.into_iter().map(String::from)).collect()
                });
            proptest::prop_assert_eq!(found, cells_model(value.as_bytes(), reserved), "{}", value);
        }
    }

    #[test]
    fn key_fields_must_give_the_key() {
        let keys = TableKeys::Fields(KeyFields::new(["id"]).unwrap());
        let good: &[(&[u8], &[u8])] = &[(b"1", br#"{"id":"1"}"#), (b"2", br#"{"id":2}"#)];
        round_trip(TableFormat::Ndjson, keys.clone(), good).unwrap();
        for (key, value, reason) in [
            (
                &b"k"[..],
                &br#"{"id":"x"}"#[..],
                r#"its key field "id" gives the key x, not k"#,
            ),
            (b"k", b"[1]", "its value is an array, not a JSON object"),
            (
                b"k",
                b"{ }",
                "its value is JSON with white space, which a table cannot keep exactly",
            ),
            (b"k", br#"{"a":1}"#, r#"missing key field "id""#),
        ] {
            let error = round_trip(TableFormat::Ndjson, keys.clone(), &[(key, value)]).unwrap_err();
            assert_eq!(error.to_string(), format!("row k: {reason}"));
        }
        let error = round_trip(TableFormat::Csv, keys, good).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("row 2: a CSV keyed by fields"),
            "{error}"
        );
    }
}
