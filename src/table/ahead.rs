//! Reading a table on its own thread, a few chunks of rows ahead of the caller.
//!
//! Parsing the text and counting repeated keys is about a sixth of an import's time, and
//! the storage engine writes (and compacts) in the importing thread, so the second core
//! of a small machine would otherwise sit idle. The reader thread hands rows over in
//! chunks through a bounded channel: memory stays bounded by a few chunks, and rows come
//! out in file order, an error after the rows before it.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use super::TableReader;
use crate::error::{Error, Result};

/// Rows per chunk handed over.
const CHUNK: usize = 1024;
/// Chunks read ahead of the caller.
const DEPTH: usize = 16;

type Row = Result<(Vec<u8>, Vec<u8>)>;

/// A [`TableReader`] running on its own thread: the same rows, in the same order, read up
/// to a few thousand ahead while the caller works on the ones before.
///
/// [`ReadAhead::stop`] asks it to stop reading: the rows already read still come out, then
/// the iterator ends, so a caller that takes everything it yields has taken every row the
/// reader read, and [`ReadAhead::finish`] hands back the reader with counts that match.
///
/// ```
/// use strata::{KeyFields, ReadAhead, TableKeys, TableReader};
///
/// let keys = TableKeys::Fields(KeyFields::new(["id"])?);
/// let reader = TableReader::new("id\n1\n2\n1\n".as_bytes(), None, keys, "ids.csv")?;
/// let mut rows = ReadAhead::spawn(reader)?;
/// let keys: Vec<Vec<u8>> = rows.by_ref().map(|row| row.map(|(key, _)| key)).collect::<Result<_, _>>()?;
/// assert_eq!(keys, [b"1".to_vec(), b"2".to_vec(), b"1".to_vec()]);
/// let reader = rows.finish()?;
/// assert_eq!((reader.rows(), reader.duplicates().count()), (3, 1));
/// # Ok::<(), strata::Error>(())
/// ```
pub struct ReadAhead<R: Read + Send + 'static> {
    chunks: Receiver<Vec<Row>>,
    current: std::vec::IntoIter<Row>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<TableReader<R>>,
}

impl<R: Read + Send + 'static> ReadAhead<R> {
    /// Starts reading `reader` on a new thread.
    pub fn spawn(reader: TableReader<R>) -> Result<ReadAhead<R>> {
        let (sender, chunks) = mpsc::sync_channel(DEPTH);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::Builder::new()
            .name("strata-table-reader".into())
            .spawn(move || read(reader, &sender, &stopped))
            .map_err(|e| Error::io("starting the table reader thread", e))?;
        Ok(ReadAhead {
            chunks,
            current: Vec::new().into_iter(),
            stop,
            thread,
        })
    }

    /// Asks the reader to stop: the rows it has read still come out, then nothing more.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the reader and returns it (its counts include every row it read, yielded or
    /// not: after [`ReadAhead::stop`] and the iterator's end, that is every row yielded).
    pub fn finish(self) -> Result<TableReader<R>> {
        self.stop();
        // Dropping the receiver wakes a reader blocked on a full channel.
        drop(self.chunks);
        self.thread.join().map_err(|_| {
            Error::io(
                "reading the table",
                std::io::Error::other("the reader thread panicked"),
            )
        })
    }
}

/// The reader thread: chunks of rows until the input ends (a reader ends after an error),
/// a stop, or a caller gone.
fn read<R: Read>(
    mut reader: TableReader<R>,
    sender: &SyncSender<Vec<Row>>,
    stop: &AtomicBool,
) -> TableReader<R> {
    loop {
        let chunk: Vec<Row> = reader.by_ref().take(CHUNK).collect();
        let ended = chunk.len() < CHUNK;
        if (!chunk.is_empty() && sender.send(chunk).is_err())
            || ended
            || stop.load(Ordering::SeqCst)
        {
            return reader;
        }
    }
}

impl<R: Read + Send + 'static> Iterator for ReadAhead<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            // The sender is gone once the reader has ended (or stopped) and every chunk
            // it sent has been taken.
            self.current = self.chunks.recv().ok()?.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{KeyFields, TableKeys};

    fn ndjson(rows: usize, bad_at: Option<usize>) -> Vec<u8> {
        let mut text = String::new();
        for i in 0..rows {
            match bad_at == Some(i) {
                true => text.push_str("{\"id\":\n"),
                false => text.push_str(&format!("{{\"id\":\"{}\"}}\n", i % 1000)),
            }
        }
        text.into_bytes()
    }

    fn reader(text: Vec<u8>) -> TableReader<std::io::Cursor<Vec<u8>>> {
        let keys = TableKeys::Fields(KeyFields::new(["id"]).unwrap());
        TableReader::new(std::io::Cursor::new(text), None, keys, "t.ndjson").unwrap()
    }

    /// The rows a plain reader yields, keys only, and where it fails.
    fn direct(text: Vec<u8>) -> (Vec<Vec<u8>>, Option<String>) {
        let mut keys = Vec::new();
        for row in reader(text) {
            match row {
                Ok((key, _)) => keys.push(key),
                Err(error) => return (keys, Some(error.to_string())),
            }
        }
        (keys, None)
    }

    #[test]
    fn yields_the_readers_rows_in_order_and_an_error_after_the_rows_before_it() {
        for (rows, bad_at) in [
            (0, None),
            (1, None),
            (CHUNK, None),
            (CHUNK * (DEPTH + 3) + 7, None),
            (CHUNK * 2 + 5, Some(CHUNK + 3)),
            (CHUNK, Some(CHUNK - 1)),
        ] {
            let (expected, failure) = direct(ndjson(rows, bad_at));
            let mut ahead = ReadAhead::spawn(reader(ndjson(rows, bad_at))).unwrap();
            let mut keys = Vec::new();
            let mut error = None;
            for row in ahead.by_ref() {
                match row {
                    Ok((key, _)) => keys.push(key),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            assert_eq!(keys, expected, "{rows} rows, bad at {bad_at:?}");
            assert_eq!(error, failure);
            assert!(ahead.next().is_none(), "nothing after the end or an error");
            let reader = ahead.finish().unwrap();
            if failure.is_none() {
                assert_eq!(reader.rows(), rows as u64);
                assert_eq!(
                    reader.duplicates().count(),
                    rows.saturating_sub(1000) as u64
                );
            }
        }
    }

    #[test]
    fn after_a_stop_every_row_read_still_comes_out_and_the_counts_match_them() {
        // Stopped at several points, some while the reader is mid-chunk and some while it
        // waits on a full channel.
        let rows = CHUNK * (DEPTH + 10);
        for (taken, pause) in [(1, 0), (1, 20), (CHUNK, 0), (CHUNK * 3 + 5, 0), (7, 5)] {
            let mut ahead = ReadAhead::spawn(reader(ndjson(rows, None))).unwrap();
            for _ in 0..taken {
                assert!(ahead.next().unwrap().is_ok());
            }
            std::thread::sleep(std::time::Duration::from_millis(pause));
            ahead.stop();
            let yielded = taken + ahead.by_ref().filter(|row| row.is_ok()).count();
            assert!(yielded < rows, "it stopped reading ({yielded} of {rows})");
            let reader = ahead.finish().unwrap();
            assert_eq!(reader.rows(), yielded as u64, "stopped after {taken}");
            assert_eq!(
                reader.duplicates().count(),
                yielded.saturating_sub(1000) as u64
            );
        }
    }

    #[test]
    fn finishing_early_stops_a_reader_blocked_on_a_full_channel() {
        let ahead = ReadAhead::spawn(reader(ndjson(CHUNK * (DEPTH + 10), None))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let reader = ahead.finish().unwrap();
        assert!(reader.rows() <= (CHUNK * (DEPTH + 2)) as u64);
    }
}
