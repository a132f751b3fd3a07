//! Helpers shared by the replication tests.
#![allow(dead_code)]

use std::io::{self, Read, Write};

use strata::{Range, Repository};

/// What every version of `repo` holds, row by row (dataset, key, value, file hash), by
/// version id: the same on every device once synced.
pub type Versions = Vec<(String, Vec<(Vec<u8>, Vec<u8>, Vec<u8>, Option<String>)>)>;

/// Every version of `repo` read whole (see [`Versions`]).
pub fn every_version(repo: &Repository) -> Versions {
    let mut keys: Vec<String> = repo
        .graph()
        .changes(0)
        .map(|node| node.expect("a stored node").key)
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let version = repo.resolve(&key).expect("a version");
            let view = repo.at(&version).expect("a view");
            let mut rows = Vec::new();
            for dataset in view.datasets().expect("datasets") {
                for row in view.range(&dataset, Range::all()) {
                    let row = row.expect("a row");
                    let file = row.file.map(|f| f.hash);
                    rows.push((dataset.clone(), row.key, row.value, file));
                }
            }
            (key, rows)
        })
        .collect()
}

/// The bytes of a file row in the current view.
pub fn file_bytes(repo: &Repository, dataset: &str, key: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    repo.open_file(dataset, key)
        .expect("the file row")
        .read_to_end(&mut bytes)
        .expect("the blob");
    bytes
}

/// A writer that fails after `left` bytes: the session is cut there.
pub struct Cut<W> {
    pub inner: Option<W>,
    pub left: usize,
}

impl<W: Write> Write for Cut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(inner) = &mut self.inner else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        if self.left == 0 {
            self.inner = None;
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = inner.write(&buf[..buf.len().min(self.left)])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().map_or(Ok(()), Write::flush)
    }
}
