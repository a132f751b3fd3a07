//! Sync files: a session's messages written to a file, carried by hand (a USB stick, an
//! email), and played back into another replica.
//!
//! A file holds what a recipient may lack: every log entry after the log heads it is known
//! to have ([`SyncFile::since`]; by default, everything), in causal order, each commit
//! followed by its operations and the blobs its file rows name, as far as the writer has
//! them and the payload choice takes them. The format (`docs/protocol.md`, "Sync files"):
//!
//! ```text
//! "STRATA-SYNC\0" 0x01                     magic and format version
//! frames, framed exactly as on the wire:
//!   Handshake  {version 1, metadata: strata hello (payload choice, repository)}
//!   Want {log, since} Have {log, last}     per log, in log order: the file holds the
//!                                          entries since+1..=last of that log
//!   Node | Payload | FileData              in causal order
//!   End (24) {1: frames before it, 2: SHA-256 of every byte before it}
//! ```
//!
//! [`SyncFile::apply`] reads the whole file first: every frame must decode, the count and
//! the SHA-256 must match and nothing may follow the end, and every log must continue what
//! the recipient holds. A truncated or altered file is refused before anything is stored.
//! Then the messages go through the receive path of a session: nodes into atomic batches
//! with every hash, link, sequence and signature checked (`incoming.rs`), operations
//! checked against their hash, blobs against their size and SHA-256. Applying a file twice
//! stores nothing the second time. Memory is bounded as in a session: a page of entries
//! per log while writing, one frame and one batch while applying.
//!
//! About 640 lines: a sync file's writer and its verifying reader are one format, kept in
//! one file so they cannot drift apart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use super::frame;
use super::incoming::Incoming;
use super::message::{Handshake, LogHead, Message, VERSION};
use super::outgoing::Outgoing;
use super::payload::{
    BlobSink, Hello, PIECE, Pieces, covers_files, read_full, store_operations, touches,
};
use super::{Limits, Payload, Peer, Progress, Replica, SyncReport};
use crate::dataset::{Commit, Content, FileRef, OpKind, Operation, Repository};
use crate::error::{Error, Result};
use crate::graph::Channel;
use crate::protobuf::{FieldReader, put_bytes, put_varint, required};

/// What a sync file starts with.
const MAGIC: &[u8] = b"STRATA-SYNC\0";
/// The format version after the magic.
const FORMAT: u8 = 1;
/// The type byte of the final frame (a file's own; never sent on the wire).
const END: u8 = 24;

/// How a sync file is written and applied: which entries it holds, which payload, and the
/// limits that bound applying it. See the module docs for the format.
///
/// ```
/// use strata::{Repository, SyncFile};
///
/// let a = Repository::in_memory()?;
/// let b = Repository::in_memory()?;
/// a.put("sites", "A", "1")?;
/// let mut file = std::io::Cursor::new(Vec::new());
/// // Everything `b` lacks: the entries after the log heads it holds.
/// SyncFile::new().since(b.graph().logs()?).write(&a, &mut file)?;
/// SyncFile::new().apply(&b, file)?;
/// assert_eq!(b.get("sites", "A")?.unwrap().value, b"1");
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SyncFile {
    since: BTreeMap<String, u64>,
    payload: Payload,
    limits: Limits,
}

/// What writing a sync file put in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncFileReport {
    /// Nodes, operations and files written (the `*_sent` counts).
    pub progress: Progress,
    /// The size of the file.
    pub bytes: u64,
}

impl SyncFile {
    /// Everything, with the payload, default limits.
    pub fn new() -> SyncFile {
        SyncFile::default()
    }

    /// Writes only the entries after these log heads: what the recipient already holds,
    /// for example its `Graph::logs()`. Logs not named are written whole.
    pub fn since(mut self, heads: impl IntoIterator<Item = (String, u64)>) -> SyncFile {
        self.since = heads.into_iter().collect();
        self
    }

    /// Which payload to write with the nodes (everything by default).
    pub fn payload(mut self, payload: Payload) -> SyncFile {
        self.payload = payload;
        self
    }

    /// The limits applying a file keeps to (frame size, out-of-order nodes, payload size).
    pub fn limits(mut self, limits: Limits) -> SyncFile {
        self.limits = limits;
        self
    }

    /// Writes the file to `out`.
    pub fn write(&self, replica: impl Into<Replica>, out: impl Write) -> Result<SyncFileReport> {
        let replica = replica.into();
        let mut writer = FileWriter {
            out: BufWriter::with_capacity(256 * 1024, out),
            digest: Sha256::new(),
            frames: 0,
            bytes: 0,
            scratch: Vec::new(),
        };
        writer.raw(MAGIC)?;
        writer.raw(&[FORMAT])?;
        let repo = replica
            .repo
            .as_ref()
            .filter(|_| self.payload != Payload::GraphOnly);
        writer.message(&Message::Handshake(Handshake {
            version: VERSION,
            mode: Some("push".into()),
            metadata: Some(Hello::new(&self.payload, repo.is_some()).encode()),
            live: false,
        }))?;
        let logs = replica.graph.logs()?;
        let mut outgoing =
            Outgoing::new(replica.graph.clone(), logs.iter().cloned().collect()).reading_in_line();
        let mut report = SyncFileReport::default();
        for (log, last) in &logs {
            let since = self.since.get(log).copied().unwrap_or(0);
            if *last <= since {
                continue;
            }
            writer.message(&Message::Want(LogHead {
                log: log.clone(),
                seq: since,
            }))?;
            writer.message(&Message::Have(LogHead {
                log: log.clone(),
                seq: *last,
            }))?;
            report.progress.nodes_to_send += last - since;
            if let Some(entry) = outgoing.entry(log, since + 1)? {
                outgoing.enqueue(log, since + 1, entry);
            }
        }
        // Every log is queued before the first node goes out, so the merge by local change
        // is causal (see `outgoing.rs`).
        let mut blobs_written = HashSet::new();
        while let Some(node) = outgoing.pop()? {
            if let Some(entry) = outgoing.entry(&node.log, node.seq + 1)? {
                outgoing.enqueue(&node.log, node.seq + 1, entry);
            }
            let commit = repo.and_then(|_| Commit::decode(&node.value).ok());
            writer.message(&Message::Node(node))?;
            report.progress.nodes_sent += 1;
            if let (Some(repo), Some(commit)) = (repo, commit) {
                self.write_payload(repo, &commit, &mut writer, &mut blobs_written, &mut report)?;
            }
        }
        writer.finish()?;
        report.bytes = writer.bytes;
        Ok(report)
    }

    /// Writes a commit's operations and the blobs its file rows name, as far as this
    /// replica has them and the payload choice takes them.
    fn write_payload(
        &self,
        repo: &Repository,
        commit: &Commit,
        writer: &mut FileWriter<impl Write>,
        blobs_written: &mut HashSet<String>,
        report: &mut SyncFileReport,
    ) -> Result<()> {
        let Some(hash) = &commit.operations else {
            return Ok(());
        };
        let Some(operations) = repo.payload(hash)? else {
            return Ok(());
        };
        if !touches(&self.payload, &operations)? {
            return Ok(());
        }
        let mut rest = operations.as_slice();
        loop {
            let mut size = 0;
            let count = rest
                .iter()
                .enumerate()
                .take_while(|(i, op)| {
                    size += op.len();
                    *i == 0 || size <= PIECE
                })
                .count();
            let (piece, tail) = rest.split_at(count);
            report.progress.payload_bytes_sent +=
                piece.iter().map(|op| op.len() as u64).sum::<u64>();
            writer.message(&Message::Payload {
                hash: hash.clone(),
                operations: piece.to_vec(),
                last: tail.is_empty(),
            })?;
            rest = tail;
            if rest.is_empty() {
                break;
            }
        }
        report.progress.payloads_sent += 1;
        for op in &operations {
            let op = Operation::decode(op)?;
            if op.kind != OpKind::Put
                || op.content != Content::File
                || !covers_files(&self.payload, &op.dataset)
            {
                continue;
            }
            let file = FileRef::decode(op.value.as_deref().unwrap_or_default())?;
            if blobs_written.contains(&file.hash) || !repo.has_blob(&file.hash)? {
                continue;
            }
            let mut reader = repo.open_blob(&file)?;
            let mut data = vec![0u8; PIECE];
            loop {
                let n = read_full(&mut reader, &mut data)
                    .map_err(|e| Error::io("reading a file to send", e))?;
                report.progress.file_bytes_sent += n as u64;
                writer.message(&Message::FileData {
                    hash: file.hash.clone(),
                    data: data[..n].to_vec(),
                    last: n < PIECE,
                })?;
                if n < PIECE {
                    break;
                }
            }
            report.progress.files_sent += 1;
            blobs_written.insert(file.hash);
        }
        Ok(())
    }

    /// Applies the file read from `file` (from its start) to `replica`: checks the whole
    /// file, then stores what the replica lacks with every check a session makes. A
    /// repository takes the payload too; a bare graph only the nodes.
    pub fn apply(&self, replica: impl Into<Replica>, file: impl Read + Seek) -> Result<SyncReport> {
        self.apply_via(replica.into(), file, Channel::Plain)
    }

    /// [`SyncFile::apply`], for a file that came through `channel` (sealed: secure).
    pub(super) fn apply_via(
        &self,
        replica: Replica,
        file: impl Read + Seek,
        channel: Channel,
    ) -> Result<SyncReport> {
        let mut reader = FileReader::new(file, self.limits.max_frame);
        reader.rewind()?;
        let logs = reader.verify(self.limits.max_logs)?;
        let mut incoming = Incoming::new(replica.graph.clone(), channel, self.limits.max_waiting);
        let mut progress = Progress::default();
        for (log, (since, last)) in &logs {
            let head = incoming.head(log)?;
            if head < *since {
                return Err(Error::Replication(format!(
                    "the sync file continues log {log} after entry {since}, but this \
                     replica holds only {head} of it: apply an earlier file first"
                )));
            }
            progress.nodes_to_receive += last.saturating_sub(head);
        }
        reader.rewind()?;
        let mut apply = Apply {
            repo: replica.repo.clone(),
            incoming,
            progress,
            max_payload: self.limits.max_payload,
            last_commit: None,
            operations: None,
            named_files: HashMap::new(),
            blob: None,
        };
        while let Some(frame) = reader.next_frame()? {
            apply.message(Message::decode(&frame)?)?;
        }
        apply.finish()?;
        Ok(SyncReport {
            progress: apply.progress,
            peer: Peer::Strata,
            live: false,
        })
    }
}

/// Writes frames, counting them and hashing every byte.
struct FileWriter<W: Write> {
    out: BufWriter<W>,
    digest: Sha256,
    frames: u64,
    bytes: u64,
    scratch: Vec<u8>,
}

impl<W: Write> FileWriter<W> {
    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.digest.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("writing the sync file", e))
    }

    fn message(&mut self, message: &Message) -> Result<()> {
        let mut framed = std::mem::take(&mut self.scratch);
        framed.clear();
        frame::encode(&message.encode(), &mut framed);
        self.raw(&framed)?;
        self.scratch = framed;
        self.frames += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let digest = std::mem::take(&mut self.digest).finalize();
        let mut end = vec![END];
        put_varint(&mut end, 1, self.frames);
        put_bytes(&mut end, 2, &digest);
        let mut framed = Vec::new();
        frame::encode(&end, &mut framed);
        self.bytes += framed.len() as u64;
        self.out
            .write_all(&framed)
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("writing the sync file", e))
    }
}

fn bad_file(why: impl std::fmt::Display) -> Error {
    Error::Replication(format!("not a valid sync file: {why}"))
}

/// Reads a sync file frame by frame.
struct FileReader<R: Read + Seek> {
    input: BufReader<R>,
    max_frame: usize,
}

impl<R: Read + Seek> FileReader<R> {
    fn new(input: R, max_frame: usize) -> FileReader<R> {
        FileReader {
            input: BufReader::with_capacity(256 * 1024, input),
            max_frame,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => bad_file("it is truncated"),
            _ => Error::io("reading the sync file", e),
        })
    }

    /// Checks the magic and version; leaves the reader at the first frame.
    fn header(&mut self) -> Result<()> {
        let mut header = vec![0u8; MAGIC.len() + 1];
        self.read_exact(&mut header)?;
        if !header.starts_with(MAGIC) {
            return Err(bad_file("it does not start as one"));
        }
        if header[MAGIC.len()] != FORMAT {
            return Err(bad_file(format!(
                "format version {} (this build reads {FORMAT})",
                header[MAGIC.len()]
            )));
        }
        Ok(())
    }

    /// The next frame's length prefix and bytes; `None` at the end of the input.
    fn raw_frame(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut prefix = Vec::with_capacity(4);
        let mut len: u64 = 0;
        loop {
            let mut byte = [0u8];
            match self.input.read(&mut byte) {
                Ok(0) if prefix.is_empty() => return Ok(None),
                Ok(0) => return Err(bad_file("it is truncated")),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading the sync file", e)),
            }
            if prefix.len() == 9 && byte[0] > 1 {
                return Err(bad_file("a length prefix is not a valid varint"));
            }
            len |= u64::from(byte[0] & 0x7f) << (7 * prefix.len());
            prefix.push(byte[0]);
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len > 0 && len <= self.max_frame)
            .ok_or_else(|| {
                bad_file(format!(
                    "a frame of {len} bytes (the limit is {})",
                    self.max_frame
                ))
            })?;
        let mut body = vec![0u8; len];
        self.read_exact(&mut body)?;
        Ok(Some((prefix, body)))
    }

    /// Reads the whole file from the first frame on: checks that every frame decodes, the
    /// count and hash in the end frame, and that nothing follows it. Returns each log the
    /// file holds, with the entries it holds of it: `(since, last)`. A file naming more than
    /// `max_logs` logs is refused (as a peer naming that many is), so it cannot make the
    /// reader hold an unbounded map.
    fn verify(&mut self, max_logs: usize) -> Result<BTreeMap<String, (u64, u64)>> {
        let mut digest = Sha256::new();
        digest.update(MAGIC);
        digest.update([FORMAT]);
        let mut frames = 0u64;
        let mut logs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        loop {
            let Some((prefix, body)) = self.raw_frame()? else {
                return Err(bad_file("it is truncated (it has no end)"));
            };
            if body[0] == END {
                let (count, sha256) = decode_end(&body[1..])?;
                if count != frames || sha256 != digest.finalize().as_slice() {
                    return Err(bad_file("its checksum does not match (it was altered)"));
                }
                let mut rest = [0u8];
                return match self.input.read(&mut rest) {
                    Ok(0) => Ok(logs),
                    Ok(_) => Err(bad_file("bytes follow its end")),
                    Err(e) => Err(Error::io("reading the sync file", e)),
                };
            }
            digest.update(&prefix);
            digest.update(&body);
            let message = Message::decode(&body)?;
            match (frames, message) {
                (0, Message::Handshake(handshake)) => {
                    let hello = handshake.metadata.as_deref().map(Hello::decode);
                    if !matches!(hello, Some(Ok(Some(_)))) {
                        return Err(bad_file("it does not name what it holds"));
                    }
                }
                (0, _) => return Err(bad_file("it does not name what it holds")),
                (_, Message::Want(head)) => {
                    logs.entry(head.log).or_insert((head.seq, head.seq)).0 = head.seq;
                }
                (_, Message::Have(head)) => {
                    logs.entry(head.log).or_insert((0, head.seq)).1 = head.seq;
                }
                _ => {}
            }
            if logs.len() > max_logs {
                return Err(bad_file(format!(
                    "it names more than {max_logs} logs (the limit)"
                )));
            }
            frames += 1;
        }
    }

    /// Goes to the first frame, checking the header on the way.
    fn rewind(&mut self) -> Result<()> {
        self.input
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("reading the sync file", e))?;
        self.header()
    }

    /// The next message frame (the end frame ends the iteration).
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .raw_frame()?
            .map(|(_, body)| body)
            .filter(|body| body[0] != END))
    }
}

fn decode_end(body: &[u8]) -> Result<(u64, Vec<u8>)> {
    const WHAT: &str = "sync file end";
    let mut reader = FieldReader::new(body, WHAT);
    let (mut frames, mut sha256) = (None, None);
    while let Some((number, field)) = reader.next_field()? {
        match number {
            1 => frames = Some(field.varint(&reader, number)?),
            2 => sha256 = Some(field.bytes(&reader, number)?.to_vec()),
            _ => return Err(reader.unexpected(number)),
        }
    }
    Ok((
        required(frames, WHAT, "frames")?,
        required(sha256, WHAT, "sha256")?,
    ))
}

/// Applying a verified file: the receive path of a session, fed from the file.
struct Apply {
    repo: Option<Repository>,
    incoming: Incoming,
    progress: Progress,
    max_payload: usize,
    /// The last commit node read: `(operations hash, key)`; its payload follows it.
    last_commit: Option<(String, String)>,
    /// The operations being read, and their hash.
    operations: Option<(String, Pieces)>,
    /// The file rows the last operations name, by blob hash.
    named_files: HashMap<String, FileRef>,
    /// The blob being written, if it is not here already.
    blob: Option<BlobSink>,
}

impl Apply {
    fn message(&mut self, message: Message) -> Result<()> {
        if !matches!(message, Message::FileData { .. }) && self.blob.is_some() {
            return Err(bad_file("a file ends without its last piece"));
        }
        match message {
            Message::Node(node) => {
                if self.repo.is_some() {
                    self.last_commit = Commit::decode(&node.value)
                        .ok()
                        .and_then(|c| c.operations)
                        .map(|hash| (hash, node.key.clone()));
                }
                self.incoming.receive(node)?;
                if self.incoming.batch_full() {
                    self.store()?;
                }
                Ok(())
            }
            Message::Payload {
                hash,
                operations,
                last,
            } => self.operations(hash, operations, last),
            Message::FileData { hash, data, last } => self.file(hash, data, last),
            Message::Handshake(_) | Message::Want(_) | Message::Have(_) => Ok(()),
            other => Err(bad_file(format!(
                "it holds a message a file cannot: {other:?}"
            ))),
        }
    }

    fn store(&mut self) -> Result<()> {
        self.progress.nodes_received += self.incoming.flush()?.new.len() as u64;
        Ok(())
    }

    fn operations(&mut self, hash: String, operations: Vec<Vec<u8>>, last: bool) -> Result<()> {
        let Some(repo) = &self.repo else {
            return Ok(()); // a bare graph takes nodes only
        };
        let (named, pieces) = self
            .operations
            .get_or_insert_with(|| (hash.clone(), Pieces::default()));
        if *named != hash {
            return Err(bad_file("the pieces of two payloads are interleaved"));
        }
        pieces.add(&hash, operations, self.max_payload)?;
        if !last {
            return Ok(());
        }
        let Some((_, Pieces { operations, bytes })) = self.operations.take() else {
            return Ok(());
        };
        let version = match &self.last_commit {
            Some((named, key)) if *named == hash => key.clone(),
            _ => return Err(bad_file("a payload does not follow its commit")),
        };
        self.named_files.clear();
        // Operations already here (a file applied again) are not stored again, but their
        // file rows still name the blobs that follow.
        let new = repo.payload(&hash)?.is_none();
        if new {
            store_operations(repo, &hash, &operations, &version)?;
        }
        for op in &operations {
            let op = Operation::decode(op)?;
            if op.kind == OpKind::Put && op.content == Content::File {
                let file = FileRef::decode(op.value.as_deref().unwrap_or_default())?;
                self.named_files.insert(file.hash.clone(), file);
            }
        }
        if new {
            self.progress.payloads_received += 1;
            self.progress.payload_bytes_received += bytes as u64;
            self.progress.operations_received += operations.len() as u64;
        }
        Ok(())
    }

    fn file(&mut self, hash: String, data: Vec<u8>, last: bool) -> Result<()> {
        let Some(repo) = &self.repo else {
            return Ok(());
        };
        let Some(file) = self.named_files.get(&hash) else {
            return Err(bad_file(
                "it holds a blob that the commit before it does not name",
            ));
        };
        if self
            .blob
            .as_ref()
            .is_some_and(|sink| sink.file.hash != hash)
        {
            return Err(bad_file("the pieces of two blobs are interleaved"));
        }
        if self.blob.is_none() && !repo.has_blob(&hash)? {
            self.progress.file_bytes_to_receive += file.size;
            self.blob = Some(BlobSink::start(repo, file.clone())?);
        }
        if let Some(sink) = &self.blob {
            self.progress.file_bytes_received += data.len() as u64;
            if !sink.write(data) || last {
                if let Some(sink) = self.blob.take() {
                    sink.finish()?;
                }
                self.progress.files_received += 1;
            }
        }
        Ok(())
    }

    /// Stores the last batch; every node must have found its place.
    fn finish(&mut self) -> Result<()> {
        if self.blob.is_some() || self.operations.is_some() {
            return Err(bad_file("it ends inside a payload or a blob"));
        }
        self.store()?;
        match self.incoming.stranded() {
            Some(stranded) => Err(Error::Replication(format!(
                "the sync file lacks history its nodes need: {stranded}"
            ))),
            None => Ok(()),
        }
    }
}
