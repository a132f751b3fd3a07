//! Payload on the same stream: the operations and files of commits, between strata peers.
//!
//! Each side says in its hello what it wants (everything, rows only, chosen datasets, or
//! the graph only) and whether it has a repository to serve from. When both do, every
//! commit node a side stores is followed by a request for its operations (unless they are
//! here already); the operations arrive in pieces, are checked against the commit's hash
//! as a whole and stored (the commit becomes readable then); each file row among them that
//! the choice covers is then requested, streamed, and checked by its SHA-256 as it is
//! written. The sender filters by the receiver's choice: operations of a commit that
//! touches none of the chosen datasets are refused (`NoPayload`), so the commit stays
//! pending. A side that will ask for nothing more says `PayloadDone`; the session ends when
//! both have, and every request was answered.
//!
//! About 640 lines: both sides of one set of extension messages (requests, answers, their
//! checks), which must agree message by message.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::message::Message;
use super::{Payload, Progress};
use crate::dataset::{
    Commit, Content, FileRef, OpKind, Operation, Repository, WantedBlob, operations_hash,
};
use crate::error::{Error, Result};
use crate::graph::Node;
use crate::protobuf::{FieldReader, put_bytes, put_varint};

/// What starts a strata hello inside the handshake's metadata.
const MAGIC: &[u8] = b"strata\0";
/// The version of strata's extensions.
const HELLO_VERSION: u64 = 1;
/// The largest piece of operations or file bytes sent in one message.
pub(crate) const PIECE: usize = 64 * 1024;
/// How many wanted blobs one session asks for (the rest wait for the next session).
const PENDING_FILES: usize = 4096;

/// A strata peer's introduction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// What the peer wants to receive.
    pub payload: Payload,
    /// Whether the peer has a repository (and so takes part in the payload exchange).
    pub repository: bool,
}

impl Hello {
    pub(crate) fn new(payload: &Payload, repository: bool) -> Hello {
        Hello {
            payload: payload.clone(),
            repository,
        }
    }

    /// The handshake metadata that introduces a strata peer.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        put_varint(&mut buf, 1, HELLO_VERSION);
        let (kind, datasets): (u64, &[Vec<u8>]) = match &self.payload {
            Payload::Everything => (0, &[]),
            Payload::RowsOnly => (1, &[]),
            Payload::Datasets(datasets) => (2, datasets),
            Payload::GraphOnly => (3, &[]),
        };
        put_varint(&mut buf, 2, kind);
        for dataset in datasets {
            put_bytes(&mut buf, 3, dataset);
        }
        put_varint(&mut buf, 4, u64::from(self.repository));
        buf
    }

    /// The hello in a handshake's metadata, or `None` for other metadata (a plain
    /// hyperlog peer's).
    pub fn decode(metadata: &[u8]) -> Result<Option<Hello>> {
        const WHAT: &str = "strata hello";
        let Some(body) = metadata.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        let mut reader = FieldReader::new(body, WHAT);
        let (mut version, mut kind, mut datasets, mut repository) = (None, 0, Vec::new(), false);
        while let Some((number, field)) = reader.next_field()? {
            match number {
                1 => version = Some(field.varint(&reader, number)?),
                2 => kind = field.varint(&reader, number)?,
                3 => datasets.push(field.bytes(&reader, number)?.to_vec()),
                4 => repository = field.varint(&reader, number)? != 0,
                _ => return Err(reader.unexpected(number)),
            }
        }
        if version != Some(HELLO_VERSION) {
            return Err(Error::malformed(WHAT, "unsupported extension version"));
        }
        let payload = match kind {
            0 => Payload::Everything,
            1 => Payload::RowsOnly,
            2 => Payload::Datasets(datasets),
            3 => Payload::GraphOnly,
            other => {
                return Err(Error::malformed(
                    WHAT,
                    format!("unknown payload choice {other}"),
                ));
            }
        };
        Ok(Some(Hello {
            payload,
            repository,
        }))
    }
}

/// Whether a choice takes the payload of a commit touching `dataset`.
fn covers(choice: &Payload, dataset: &[u8]) -> bool {
    match choice {
        Payload::Everything | Payload::RowsOnly => true,
        Payload::Datasets(chosen) => chosen.iter().any(|d| d == dataset),
        Payload::GraphOnly => false,
    }
}

/// Whether a choice takes the files of `dataset`.
pub(crate) fn covers_files(choice: &Payload, dataset: &[u8]) -> bool {
    !matches!(choice, Payload::RowsOnly) && covers(choice, dataset)
}

/// Whether a choice takes the payload of a commit with these operations.
pub(crate) fn touches(choice: &Payload, operations: &[Vec<u8>]) -> Result<bool> {
    match choice {
        Payload::Datasets(_) => {
            for op in operations {
                if covers(choice, &Operation::decode(op)?.dataset) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        choice => Ok(*choice != Payload::GraphOnly),
    }
}

/// A request from the peer, waiting to be answered.
enum Request {
    Operations(String),
    /// A blob by hash, for a row of `dataset` (what the peer's choice is checked against).
    File {
        dataset: Vec<u8>,
        hash: String,
    },
}

/// An answer being streamed.
enum Answer {
    Operations {
        hash: String,
        operations: VecDeque<Vec<u8>>,
    },
    File {
        hash: String,
        reader: Box<dyn Read + Send>,
    },
}

/// A blob being received in pieces: the pieces go to a thread that streams them into the
/// blob store with [`Repository::add_blob_checked`], so nothing is stored unless the whole
/// blob is exactly the one expected. Sessions and sync files share it.
pub(crate) struct BlobSink {
    pub file: FileRef,
    chunks: SyncSender<Vec<u8>>,
    writer: JoinHandle<Result<()>>,
}

impl BlobSink {
    pub(crate) fn start(repo: &Repository, file: FileRef) -> Result<BlobSink> {
        let (chunks, from) = sync_channel(8);
        let (repo, expected) = (repo.clone(), file.clone());
        let writer = std::thread::Builder::new()
            .name("strata-file".into())
            .spawn(move || {
                let mut reader = Chunks {
                    from,
                    current: Vec::new(),
                    at: 0,
                };
                repo.add_blob_checked(&mut reader, &expected)
            })
            .map_err(|e| Error::io("starting a file writer", e))?;
        Ok(BlobSink {
            file,
            chunks,
            writer,
        })
    }

    /// Passes on a piece. `false` means the writer has stopped early (too many bytes, or a
    /// storage error): [`BlobSink::finish`] says why.
    pub(crate) fn write(&self, data: Vec<u8>) -> bool {
        data.is_empty() || self.chunks.send(data).is_ok()
    }

    /// Ends the blob: stored if it is exactly the one expected, an error otherwise.
    pub(crate) fn finish(self) -> Result<()> {
        drop(self.chunks);
        self.writer
            .join()
            .map_err(|_| Error::Replication("the file writer panicked".into()))?
    }
}

/// Reads the chunks a [`BlobSink`] forwards.
struct Chunks {
    from: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.from.recv() {
                Ok(chunk) => (self.current, self.at) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Operations arriving in pieces, held until the last one so they can be checked whole.
#[derive(Default)]
pub(crate) struct Pieces {
    pub operations: Vec<Vec<u8>>,
    pub bytes: usize,
}

impl Pieces {
    /// Adds a piece of the operations `hash`; fails past `max` bytes in all.
    pub(crate) fn add(&mut self, hash: &str, operations: Vec<Vec<u8>>, max: usize) -> Result<()> {
        self.bytes += operations.iter().map(Vec::len).sum::<usize>();
        if self.bytes > max {
            return Err(Error::Replication(format!(
                "the operations {hash} are larger than the limit of {max} bytes"
            )));
        }
        self.operations.extend(operations);
        Ok(())
    }
}

/// Operations asked for: the commit that names them (empty when not known), and the
/// pieces received so far.
#[derive(Default)]
struct Asked {
    version: String,
    pieces: Pieces,
}

/// One session's payload exchange.
pub(crate) struct PayloadExchange {
    repo: Repository,
    /// What this side wants.
    choice: Payload,
    /// What the peer wants: what this side may send it.
    remote_choice: Payload,
    max_payload: usize,
    out: VecDeque<Message>,
    /// Operations asked for, by hash.
    asked: HashMap<String, Asked>,
    /// Files asked for, by hash: what each must be.
    files_asked: HashMap<String, FileRef>,
    file_in: Option<BlobSink>,
    requests: VecDeque<Request>,
    answer: Option<Answer>,
    graph_done: bool,
    done_sent: bool,
    remote_done: bool,
}

impl PayloadExchange {
    pub(crate) fn new(
        repo: Repository,
        choice: Payload,
        remote_choice: Payload,
        max_payload: usize,
    ) -> PayloadExchange {
        PayloadExchange {
            repo,
            choice,
            remote_choice,
            max_payload,
            out: VecDeque::new(),
            asked: HashMap::new(),
            files_asked: HashMap::new(),
            file_in: None,
            requests: VecDeque::new(),
            answer: None,
            graph_done: false,
            done_sent: false,
            remote_done: false,
        }
    }

    /// Asks for the operations of newly stored commits that lack them.
    pub(crate) fn nodes_stored(&mut self, nodes: &[Node], progress: &mut Progress) -> Result<()> {
        if self.choice == Payload::GraphOnly {
            return Ok(());
        }
        for node in nodes {
            let Ok(commit) = Commit::decode(&node.value) else {
                continue; // not a commit: graph plumbing or a plain hyperlog node
            };
            let Some(hash) = commit.operations.clone() else {
                continue;
            };
            if self.asked.contains_key(&hash) || self.repo.payload(&hash)?.is_some() {
                continue;
            }
            progress.operations_to_receive = progress
                .operations_to_receive
                .saturating_add(commit.operation_count());
            let asked = Asked {
                version: node.key.clone(),
                ..Asked::default()
            };
            self.asked.insert(hash.clone(), asked);
            self.out.push_back(Message::WantPayload { hash });
        }
        Ok(())
    }

    /// Asks for what earlier sessions left out, so a later session completes an earlier
    /// partial one: the operations pending commits wait for, and the blobs that file rows
    /// received without their contents name. Both come from lists the repository keeps
    /// (`Repository::missing_payloads`, the wanted blobs), never from reading history; each
    /// session takes up to a page of each.
    pub(crate) fn ask_pending(&mut self, progress: &mut Progress) -> Result<()> {
        if self.choice == Payload::GraphOnly {
            return Ok(());
        }
        for hash in self.repo.missing_payloads()? {
            if !self.asked.contains_key(&hash) {
                self.asked.insert(hash.clone(), Asked::default());
                self.out.push_back(Message::WantPayload { hash });
            }
        }
        for wanted in self.repo.wanted_blobs(PENDING_FILES)? {
            self.ask_file(wanted, progress);
        }
        Ok(())
    }

    /// Asks for the blob of a file row if this side's choice takes it and it is not asked
    /// for already.
    fn ask_file(&mut self, wanted: WantedBlob, progress: &mut Progress) {
        if !covers_files(&self.choice, &wanted.dataset)
            || self.files_asked.contains_key(&wanted.file.hash)
        {
            return;
        }
        progress.file_bytes_to_receive += wanted.file.size;
        self.files_asked
            .insert(wanted.file.hash.clone(), wanted.file.clone());
        self.out.push_back(Message::WantFile {
            version: wanted.version,
            dataset: wanted.dataset,
            key: wanted.key,
            hash: wanted.file.hash,
        });
    }

    /// The graph exchange is over: no more commits will arrive.
    pub(crate) fn graph_done(&mut self) {
        self.graph_done = true;
    }

    /// Whether both sides have everything they asked for and will ask for nothing more.
    pub(crate) fn finished(&self) -> bool {
        self.done_sent && self.remote_done && self.requests.is_empty() && self.answer.is_none()
    }

    pub(crate) fn receive(&mut self, message: Message, progress: &mut Progress) -> Result<()> {
        match message {
            Message::WantPayload { hash } => self.requests.push_back(Request::Operations(hash)),
            Message::WantFile { dataset, hash, .. } => {
                self.requests.push_back(Request::File { dataset, hash })
            }
            Message::PayloadDone => self.remote_done = true,
            Message::Payload {
                hash,
                operations,
                last,
            } => self.operations_piece(hash, operations, last, progress)?,
            Message::NoPayload { hash } => {
                self.asked
                    .remove(&hash)
                    .ok_or_else(|| unasked("operations", &hash))?;
            }
            Message::FileData { hash, data, last } => {
                self.file_piece(hash, data, last, progress)?
            }
            Message::NoFile { hash } if self.files_asked.remove(&hash).is_none() => {
                return Err(unasked("file", &hash));
            }
            _ => {}
        }
        Ok(())
    }

    fn operations_piece(
        &mut self,
        hash: String,
        operations: Vec<Vec<u8>>,
        last: bool,
        progress: &mut Progress,
    ) -> Result<()> {
        self.asked
            .get_mut(&hash)
            .ok_or_else(|| unasked("operations", &hash))?
            .pieces
            .add(&hash, operations, self.max_payload)?;
        if !last {
            return Ok(());
        }
        let Asked {
            version,
            pieces: Pieces { operations, bytes },
        } = self.asked.remove(&hash).unwrap_or_default();
        let missing = store_operations(&self.repo, &hash, &operations, &version)?;
        progress.payloads_received += 1;
        progress.payload_bytes_received += bytes as u64;
        progress.operations_received += operations.len() as u64;
        for wanted in missing {
            self.ask_file(wanted, progress);
        }
        Ok(())
    }

    fn file_piece(
        &mut self,
        hash: String,
        data: Vec<u8>,
        last: bool,
        progress: &mut Progress,
    ) -> Result<()> {
        let Some(file) = self.files_asked.get(&hash) else {
            return Err(unasked("file", &hash));
        };
        if self.file_in.as_ref().is_some_and(|f| f.file.hash != hash) {
            return Err(Error::Replication("the peer interleaved two files".into()));
        }
        if self.file_in.is_none() {
            self.file_in = Some(BlobSink::start(&self.repo, file.clone())?);
        }
        progress.file_bytes_received += data.len() as u64;
        if let Some(sink) = &self.file_in
            && !sink.write(data)
        {
            // The writer stopped early: its result says why.
            return self.finish_file(progress);
        }
        if last {
            self.finish_file(progress)?;
        }
        Ok(())
    }

    fn finish_file(&mut self, progress: &mut Progress) -> Result<()> {
        let Some(sink) = self.file_in.take() else {
            return Ok(());
        };
        let hash = sink.file.hash.clone();
        sink.finish()?;
        self.files_asked.remove(&hash);
        progress.files_received += 1;
        Ok(())
    }

    /// The next request or answer to send.
    pub(crate) fn next_output(&mut self, progress: &mut Progress) -> Result<Option<Message>> {
        if let Some(message) = self.out.pop_front() {
            return Ok(Some(message));
        }
        if self.answer.is_none()
            && let Some(request) = self.requests.pop_front()
        {
            return self.start_answer(request, progress).map(Some);
        }
        if let Some(message) = self.continue_answer(progress)? {
            return Ok(Some(message));
        }
        if self.graph_done
            && !self.done_sent
            && self.asked.is_empty()
            && self.files_asked.is_empty()
        {
            self.done_sent = true;
            return Ok(Some(Message::PayloadDone));
        }
        Ok(None)
    }

    fn start_answer(&mut self, request: Request, progress: &mut Progress) -> Result<Message> {
        match request {
            Request::Operations(hash) => {
                let operations = match self.repo.payload(&hash)? {
                    Some(ops) if touches(&self.remote_choice, &ops)? => ops,
                    _ => return Ok(Message::NoPayload { hash }),
                };
                progress.payloads_sent += 1;
                self.answer = Some(Answer::Operations {
                    hash: hash.clone(),
                    operations: operations.into(),
                });
                Ok(self
                    .continue_answer(progress)?
                    .unwrap_or(Message::NoPayload { hash }))
            }
            Request::File { dataset, hash } => {
                if !covers_files(&self.remote_choice, &dataset) {
                    return Ok(Message::NoFile { hash });
                }
                let Some(reader) = self.repo.open_stored_blob(&hash)? else {
                    return Ok(Message::NoFile { hash });
                };
                progress.files_sent += 1;
                self.answer = Some(Answer::File {
                    hash: hash.clone(),
                    reader: Box::new(reader),
                });
                Ok(self
                    .continue_answer(progress)?
                    .unwrap_or(Message::NoFile { hash }))
            }
        }
    }

    fn continue_answer(&mut self, progress: &mut Progress) -> Result<Option<Message>> {
        let Some(answer) = &mut self.answer else {
            return Ok(None);
        };
        let message = match answer {
            Answer::Operations { hash, operations } => {
                let mut piece = Vec::new();
                let mut size = 0;
                while let Some(op) = operations.front() {
                    if !piece.is_empty() && size + op.len() > PIECE {
                        break;
                    }
                    size += op.len();
                    piece.extend(operations.pop_front());
                }
                progress.payload_bytes_sent += size as u64;
                Message::Payload {
                    hash: hash.clone(),
                    operations: piece,
                    last: operations.is_empty(),
                }
            }
            Answer::File { hash, reader } => {
                let mut data = vec![0u8; PIECE];
                let n = read_full(reader.as_mut(), &mut data)
                    .map_err(|e| Error::io("reading a file to send", e))?;
                data.truncate(n);
                progress.file_bytes_sent += n as u64;
                Message::FileData {
                    hash: hash.clone(),
                    data,
                    last: n < PIECE,
                }
            }
        };
        if matches!(
            message,
            Message::Payload { last: true, .. } | Message::FileData { last: true, .. }
        ) {
            self.answer = None;
        }
        Ok(Some(message))
    }
}

/// Stores received operations that claim to be `hash`, named by commit `version` (empty
/// when not known), after checking that they are: records the blobs their file rows name
/// that are not here first (so a crash cannot lose the record), then stores the
/// operations. Returns those missing blobs. Sessions and sync files share this.
pub(crate) fn store_operations(
    repo: &Repository,
    hash: &str,
    operations: &[Vec<u8>],
    version: &str,
) -> Result<Vec<WantedBlob>> {
    let actual = operations_hash(operations.iter().map(Vec::as_slice));
    if actual != hash {
        return Err(Error::Replication(format!(
            "operations checksum mismatch: expected {hash}, received bytes hashing to {actual}"
        )));
    }
    let mut missing = Vec::new();
    for op in operations {
        let op = Operation::decode(op)?;
        if op.kind != OpKind::Put || op.content != Content::File {
            continue;
        }
        let file = FileRef::decode(op.value.as_deref().unwrap_or_default())?;
        if repo.has_blob(&file.hash)? {
            continue;
        }
        let wanted = WantedBlob {
            file,
            version: version.to_string(),
            dataset: op.dataset,
            key: op.key,
        };
        repo.want_blob(&wanted)?;
        missing.push(wanted);
    }
    repo.add_payload(operations)?;
    Ok(missing)
}

/// Reads until `buf` is full or the reader ends; returns how much was read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn unasked(what: &str, hash: &str) -> Error {
    Error::Replication(format!(
        "the peer sent {what} {hash} that were not asked for"
    ))
}
