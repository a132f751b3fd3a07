//! LevelDB's file formats, read without the engine: write-ahead logs and manifests (record
//! logs), version edits, write batches and table files.
//!
//! The engine hides damage: its log recovery stops quietly at the first bad record, its
//! table iterators skip a block that fails its checksum, and it panics on a table whose
//! footer is damaged. Reading the files here, independently, lets the store find and name
//! damage before the engine hides it (`damage.rs`, `verify.rs`) and salvage every readable
//! entry when the engine cannot open a database at all (`salvage.rs`).
//!
//! Formats (as LevelDB's `doc/log_format.md` and `doc/table_format.md` describe them):
//! a record log is 32 KiB blocks of records `[masked crc32c: 4][length: 2][type: 1][data]`,
//! a record split across blocks as First/Middle/Last fragments; a table is blocks of
//! prefix-compressed entries, each block followed by `[compression: 1][masked crc32c: 4]`,
//! an index block of block handles, and a 48-byte footer ending in a magic number.

use std::ops::Range;

use prost::encoding::decode_varint;

/// Log block size.
const BLOCK: usize = 32 * 1024;
/// Log record header: checksum, length, type.
const HEADER: usize = 7;
/// Table block trailer: compression type, checksum.
pub(crate) const TRAILER: usize = 5;
/// Table footer: two block handles padded to 40 bytes, then the magic number.
pub(crate) const FOOTER: usize = 48;
const MAGIC: [u8; 8] = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb];

/// LevelDB's masked crc32c (a crc of data containing crcs is masked so it stays strong).
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let crc = parts
        .iter()
        .fold(0, |crc, part| crc32c::crc32c_append(crc, part));
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    decode_varint(input).ok()
}

fn take<'a>(input: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok()?;
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn length_prefixed<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = varint(input)?;
    take(input, n)
}

/// What reading a record log found.
#[derive(Debug, Default)]
pub(crate) struct LogScan {
    /// Every whole record, with the offset it starts at.
    pub records: Vec<(usize, Vec<u8>)>,
    /// Byte ranges that could not be read (bad checksums, impossible lengths, fragments
    /// out of order), with why.
    pub bad: Vec<(Range<usize>, &'static str)>,
}

impl LogScan {
    /// Whether damage lies before a whole record: more than a write torn by a crash (which
    /// can only damage the end of the newest log).
    pub fn damaged_before_end(&self) -> bool {
        let last_good = self.records.last().map_or(0, |(at, _)| *at);
        self.bad.iter().any(|(range, _)| range.start < last_good)
    }
}

/// Reads every record of a record log, going on past damage (to the next block) as
/// LevelDB's own reader does when it is told to report rather than stop.
pub(crate) fn read_log(bytes: &[u8]) -> LogScan {
    let mut scan = LogScan::default();
    let mut pending: Option<(usize, Vec<u8>)> = None;
    let mut at = 0;
    while at < bytes.len() {
        let in_block = BLOCK - at % BLOCK;
        if in_block < HEADER {
            // A block's last few bytes are padding.
            at += in_block;
            continue;
        }
        let header = &bytes[at..bytes.len().min(at + HEADER)];
        if header.len() < HEADER {
            scan.bad
                .push((at..bytes.len(), "a record header cut short"));
            break;
        }
        let length = usize::from(u16::from_le_bytes([header[4], header[5]]));
        let kind = header[6];
        if kind == 0 && length == 0 {
            // Zeroes: space preallocated but never written; the rest of the block is empty.
            at += in_block;
            continue;
        }
        let end = at + HEADER + length;
        if HEADER + length > in_block || end > bytes.len() {
            let why = if end > bytes.len() {
                "a record cut short"
            } else {
                "a record length past its block"
            };
            scan.bad.push((at..(at + in_block).min(bytes.len()), why));
            pending = None;
            at += in_block;
            continue;
        }
        let data = &bytes[at + HEADER..end];
        if u32_at(header, 0) != Some(masked_crc(&[&[kind], data])) {
            scan.bad
                .push((at..(at + in_block).min(bytes.len()), "a bad checksum"));
            pending = None;
            at += in_block;
            continue;
        }
        match (kind, pending.take()) {
            (1, None) => scan.records.push((at, data.to_vec())),
            (2, None) => pending = Some((at, data.to_vec())),
            (3, Some((start, mut record))) => {
                record.extend_from_slice(data);
                pending = Some((start, record));
            }
            (4, Some((start, mut record))) => {
                record.extend_from_slice(data);
                scan.records.push((start, record));
            }
            (_, Some((start, _))) => scan.bad.push((start..at, "a record missing its end")),
            (_, None) => scan.bad.push((at..end, "a fragment without its start")),
        }
        at = end;
    }
    if let Some((start, _)) = pending {
        scan.bad.push((start..bytes.len(), "a record cut short"));
    }
    scan
}

/// The state a manifest describes: its version edits applied in order.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    /// The table files live in the current version: number → size in bytes.
    pub tables: std::collections::BTreeMap<u64, u64>,
    /// Logs numbered at or above this one hold writes not yet in tables.
    pub log_number: u64,
    /// An older log still to recover (0: none).
    pub prev_log_number: u64,
}

/// Applies the version edits of a manifest. Fails naming the first edit that cannot be
/// decoded.
pub(crate) fn read_manifest(records: &[(usize, Vec<u8>)]) -> Result<Manifest, String> {
    let mut manifest = Manifest::default();
    for (offset, record) in records {
        apply_edit(&mut manifest, record)
            .ok_or_else(|| format!("the version edit at byte {offset} cannot be decoded"))?;
    }
    Ok(manifest)
}

fn apply_edit(manifest: &mut Manifest, mut edit: &[u8]) -> Option<()> {
    let input = &mut edit;
    while !input.is_empty() {
        match varint(input)? {
            // Comparator name.
            1 => {
                length_prefixed(input)?;
            }
            2 => manifest.log_number = varint(input)?,
            // Next file number, last sequence.
            3 | 4 => {
                varint(input)?;
            }
            // Compaction pointer: level, key.
            5 => {
                varint(input)?;
                length_prefixed(input)?;
            }
            // Deleted file: level, number.
            6 => {
                varint(input)?;
                let number = varint(input)?;
                manifest.tables.remove(&number);
            }
            // New file: level, number, size, smallest key, largest key.
            7 => {
                varint(input)?;
                let number = varint(input)?;
                let size = varint(input)?;
                length_prefixed(input)?;
                length_prefixed(input)?;
                manifest.tables.insert(number, size);
            }
            9 => manifest.prev_log_number = varint(input)?,
            _ => return None,
        }
    }
    Some(())
}

/// One entry of a table or write batch: a user key at a sequence number, with its value
/// (`None`: a deletion).
pub(crate) struct Entry<'a> {
    pub key: &'a [u8],
    pub seq: u64,
    pub value: Option<&'a [u8]>,
}

/// Calls `each` with every entry of a write batch (a log record). Fails if the batch
/// cannot be decoded.
pub(crate) fn read_batch(record: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> Option<()> {
    let seq = u64::from_le_bytes(record.get(..8)?.try_into().ok()?);
    let count = u32_at(record, 8)?;
    let mut input = record.get(12..)?;
    for i in 0..u64::from(count) {
        let kind = *input.first()?;
        input = &input[1..];
        let key = length_prefixed(&mut input)?;
        let value = match kind {
            1 => Some(length_prefixed(&mut input)?),
            0 => None,
            _ => return None,
        };
        each(Entry {
            key,
            seq: seq + i,
            value,
        });
    }
    input.is_empty().then_some(())
}

/// Whether `bytes` is a table footer.
pub(crate) fn is_footer(bytes: &[u8]) -> bool {
    bytes.len() == FOOTER && bytes[FOOTER - MAGIC.len()..] == MAGIC
}

/// Whether `trailer` (compression type, masked crc) is right for block contents `data`.
pub(crate) fn trailer_matches(data: &[u8], trailer: &[u8]) -> bool {
    trailer.len() == TRAILER && u32_at(trailer, 1) == Some(masked_crc(&[data, &trailer[..1]]))
}

/// What reading a table file found.
#[derive(Debug, Default)]
pub(crate) struct TableScan {
    /// Data blocks read whole.
    pub blocks: u64,
    /// Entries read.
    pub entries: u64,
    /// What could not be read: the byte range (of the file) and why.
    pub bad: Vec<(Range<usize>, String)>,
}

/// Reads a table file, calling `each` with every entry of every block that reads whole;
/// a damaged block is recorded and skipped. A damaged footer or index block leaves nothing
/// readable: the whole file is recorded as bad.
pub(crate) fn read_table(bytes: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> TableScan {
    let mut scan = TableScan::default();
    let whole = 0..bytes.len();
    if bytes.len() < FOOTER || !is_footer(&bytes[bytes.len() - FOOTER..]) {
        scan.bad.push((whole, "its footer is damaged".into()));
        return scan;
    }
    let mut footer = &bytes[bytes.len() - FOOTER..];
    let index = handle(&mut footer).and_then(|_| handle(&mut footer));
    let Some(index) = index.and_then(|h| block(bytes, &h).ok()) else {
        scan.bad.push((whole, "its index block is damaged".into()));
        return scan;
    };
    let mut handles = Vec::new();
    if entries(&index, &mut |_, mut value| {
        handles.push(handle(&mut value));
    })
    .is_none()
    {
        scan.bad.push((whole, "its index block is damaged".into()));
        return scan;
    }
    for handle in handles {
        let Some(handle) = handle else {
            scan.bad
                .push((whole.clone(), "its index names a block badly".into()));
            continue;
        };
        let contents = match block(bytes, &handle) {
            Ok(contents) => contents,
            Err(why) => {
                scan.bad.push((handle, why.into()));
                continue;
            }
        };
        let mut count = 0;
        let read = entries(&contents, &mut |key, value| {
            let Some(split) = key.len().checked_sub(8) else {
                return;
            };
            let tag = u64::from_le_bytes(key[split..].try_into().unwrap_or_default());
            count += 1;
            each(Entry {
                key: &key[..split],
                seq: tag >> 8,
                value: (tag & 0xff == 1).then_some(value),
            });
        });
        scan.entries += count;
        match read {
            Some(()) => scan.blocks += 1,
            None => scan
                .bad
                .push((handle, "its entries cannot be decoded".into())),
        }
    }
    scan
}

fn handle(input: &mut &[u8]) -> Option<Range<usize>> {
    let offset = usize::try_from(varint(input)?).ok()?;
    let size = usize::try_from(varint(input)?).ok()?;
    Some(offset..offset.checked_add(size)?)
}

/// A table block's contents, checked and decompressed.
fn block(bytes: &[u8], at: &Range<usize>) -> Result<Vec<u8>, &'static str> {
    let data = bytes
        .get(at.clone())
        .ok_or("it lies past the end of the file")?;
    let trailer = bytes
        .get(at.end..at.end + TRAILER)
        .ok_or("it lies past the end of the file")?;
    if !trailer_matches(data, trailer) {
        return Err("it fails its checksum");
    }
    match trailer[0] {
        0 => Ok(data.to_vec()),
        1 => snap::raw::Decoder::new()
            .decompress_vec(data)
            .map_err(|_| "it cannot be decompressed"),
        _ => Err("it names an unknown compression"),
    }
}

/// Calls `each` with every (key, value) of a block; `None` if the block is malformed.
fn entries(block: &[u8], each: &mut dyn FnMut(&[u8], &[u8])) -> Option<()> {
    let restarts = usize::try_from(u32_at(block, block.len().checked_sub(4)?)?).ok()?;
    let end = block.len().checked_sub(4 + restarts.checked_mul(4)?)?;
    let mut input = &block[..end];
    let mut key = Vec::new();
    while !input.is_empty() {
        let shared = usize::try_from(varint(&mut input)?).ok()?;
        let unshared = varint(&mut input)?;
        let value_len = varint(&mut input)?;
        if shared > key.len() {
            return None;
        }
        key.truncate(shared);
        key.extend_from_slice(take(&mut input, unshared)?);
        let value = take(&mut input, value_len)?;
        each(&key, value);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = masked_crc(&[&[kind], data]).to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.push(kind);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn a_log_reads_whole_records_and_names_damage() {
        let mut log = record(1, b"first");
        log.extend(record(1, b"second"));
        assert_eq!(read_log(&log).records.len(), 2);
        // A torn tail: the last record cut short is damage at the end only.
        let torn = read_log(&log[..log.len() - 2]);
        assert_eq!(torn.records.len(), 1);
        assert!(!torn.damaged_before_end());
        // A flipped byte in the first record, with a whole one after it (in a later block).
        let mut damaged = record(1, b"first");
        damaged[HEADER] ^= 1;
        damaged.resize(BLOCK, 0);
        damaged.extend(record(1, b"later"));
        let scan = read_log(&damaged);
        assert_eq!(scan.records.len(), 1);
        assert!(scan.damaged_before_end());
        assert_eq!(scan.bad[0].1, "a bad checksum");
    }

    #[test]
    fn fragments_join_across_blocks() {
        let data = vec![7u8; BLOCK];
        let first = BLOCK - HEADER;
        let mut log = record(2, &data[..first]);
        log.extend(record(4, &data[first..]));
        let scan = read_log(&log);
        assert!(scan.bad.is_empty(), "{:?}", scan.bad);
        assert_eq!(scan.records, vec![(0, data)]);
    }

    #[test]
    fn garbage_is_damage_not_a_panic() {
        for garbage in [&b""[..], b"\xff", &[0xffu8; 100], &[1u8; 40_000]] {
            let scan = read_log(garbage);
            assert!(scan.records.is_empty());
            let table = read_table(garbage, &mut |_| {});
            assert_eq!(table.entries, 0);
            assert!(read_manifest(&[(0, garbage.to_vec())]).is_err() || garbage.is_empty());
            assert!(read_batch(garbage, &mut |_| {}).is_none());
        }
    }
}
