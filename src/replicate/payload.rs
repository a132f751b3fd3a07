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

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::message::Message;
use super::{Payload, Progress};
use crate::dataset::{Commit, Content, FileRef, OpKind, Operation, Repository};
use crate::error::{Error, Result};
use crate::graph::{Node, framed_update};
use crate::protobuf::{FieldReader, put_bytes, put_varint};

/// What starts a strata hello inside the handshake's metadata.
const MAGIC: &[u8] = b"strata\0";
/// The version of strata's extensions.
const HELLO_VERSION: u64 = 1;
/// The largest piece of operations or file bytes sent in one message.
const PIECE: usize = 64 * 1024;

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

/// The framed SHA-256 of operations, as a commit names them.
fn operations_hash(operations: &[Vec<u8>]) -> String {
    let mut digest = Sha256::new();
    for op in operations {
        framed_update(&mut digest, op);
    }
    hex::encode(digest.finalize())
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
fn covers_files(choice: &Payload, dataset: &[u8]) -> bool {
    !matches!(choice, Payload::RowsOnly) && covers(choice, dataset)
}

/// A request from the peer, waiting to be answered.
enum Request {
    Operations(String),
    File {
        version: String,
        dataset: Vec<u8>,
        key: Vec<u8>,
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

/// A blob being received: its bytes go to a thread that streams them into the blob store.
struct FileIn {
    hash: String,
    chunks: SyncSender<Vec<u8>>,
    writer: JoinHandle<Result<()>>,
}

/// Reads the chunks a [`FileIn`] forwards.
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

/// Operations asked for: the commit that names them, and the pieces received so far.
#[derive(Default)]
struct Asked {
    version: String,
    operations: Vec<Vec<u8>>,
    bytes: usize,
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
    files_asked: HashSet<String>,
    file_in: Option<FileIn>,
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
            files_asked: HashSet::new(),
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

    /// Asks for the operations of commits stored before this session without them, so a
    /// later session completes an earlier partial one. Finding them reads the whole graph,
    /// so this runs only when the repository reports pending commits.
    pub(crate) fn ask_pending(&mut self, progress: &mut Progress) -> Result<()> {
        if self.choice == Payload::GraphOnly || self.repo.status()?.pending == 0 {
            return Ok(());
        }
        for node in self.repo.graph().changes(0) {
            self.nodes_stored(std::slice::from_ref(&node?), progress)?;
        }
        Ok(())
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
            Message::WantFile {
                version,
                dataset,
                key,
                hash,
            } => self.requests.push_back(Request::File {
                version,
                dataset,
                key,
                hash,
            }),
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
            Message::NoFile { hash } if !self.files_asked.remove(&hash) => {
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
        let asked = self
            .asked
            .get_mut(&hash)
            .ok_or_else(|| unasked("operations", &hash))?;
        asked.bytes += operations.iter().map(Vec::len).sum::<usize>();
        if asked.bytes > self.max_payload {
            return Err(Error::Replication(format!(
                "the operations {hash} are larger than the limit of {} bytes",
                self.max_payload
            )));
        }
        asked.operations.extend(operations);
        if !last {
            return Ok(());
        }
        let Asked {
            version,
            operations,
            bytes,
        } = self.asked.remove(&hash).unwrap_or_default();
        let actual = operations_hash(&operations);
        if actual != hash {
            return Err(Error::Replication(format!(
                "operations checksum mismatch: asked for {hash}, received bytes hashing to {actual}"
            )));
        }
        self.repo.add_payload(&operations)?;
        progress.payloads_received += 1;
        progress.payload_bytes_received += bytes as u64;
        progress.operations_received += operations.len() as u64;
        for op in &operations {
            let op = Operation::decode(op)?;
            if op.kind != OpKind::Put
                || op.content != Content::File
                || !covers_files(&self.choice, &op.dataset)
            {
                continue;
            }
            let file = FileRef::decode(op.value.as_deref().unwrap_or_default())?;
            if self.repo.has_blob(&file.hash)? || !self.files_asked.insert(file.hash.clone()) {
                continue;
            }
            progress.file_bytes_to_receive += file.size;
            self.out.push_back(Message::WantFile {
                version: version.clone(),
                dataset: op.dataset,
                key: op.key,
                hash: file.hash,
            });
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
        if !self.files_asked.contains(&hash) {
            return Err(unasked("file", &hash));
        }
        if self.file_in.as_ref().is_some_and(|f| f.hash != hash) {
            return Err(Error::Replication("the peer interleaved two files".into()));
        }
        if self.file_in.is_none() {
            self.file_in = Some(self.start_file(hash.clone())?);
        }
        progress.file_bytes_received += data.len() as u64;
        if let Some(file_in) = &self.file_in
            && !data.is_empty()
            && file_in.chunks.send(data).is_err()
        {
            // The writer stopped early: its result says why.
            return self.finish_file(progress);
        }
        if last {
            self.finish_file(progress)?;
        }
        Ok(())
    }

    fn start_file(&self, hash: String) -> Result<FileIn> {
        let (chunks, from) = sync_channel(8);
        let repo = self.repo.clone();
        let writer = std::thread::Builder::new()
            .name("strata-file".into())
            .spawn(move || {
                let mut reader = Chunks {
                    from,
                    current: Vec::new(),
                    at: 0,
                };
                // A transaction that is never committed stores the blob alone.
                repo.transaction().put_file("", "", &mut reader).map(|_| ())
            })
            .map_err(|e| Error::io("starting a file writer", e))?;
        Ok(FileIn {
            hash,
            chunks,
            writer,
        })
    }

    fn finish_file(&mut self, progress: &mut Progress) -> Result<()> {
        let Some(FileIn {
            hash,
            chunks,
            writer,
        }) = self.file_in.take()
        else {
            return Ok(());
        };
        drop(chunks);
        writer
            .join()
            .map_err(|_| Error::Replication("the file writer panicked".into()))??;
        if !self.repo.has_blob(&hash)? {
            return Err(Error::Replication(format!(
                "file checksum mismatch: the bytes received for {hash} hash to something else"
            )));
        }
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
                    Some(ops) if self.touches_chosen(&ops)? => ops,
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
            Request::File {
                version,
                dataset,
                key,
                hash,
            } => {
                if !covers_files(&self.remote_choice, &dataset) {
                    return Ok(Message::NoFile { hash });
                }
                let Ok(reader) = self.open_file(&version, &dataset, &key, &hash) else {
                    return Ok(Message::NoFile { hash });
                };
                progress.files_sent += 1;
                self.answer = Some(Answer::File {
                    hash: hash.clone(),
                    reader,
                });
                Ok(self
                    .continue_answer(progress)?
                    .unwrap_or(Message::NoFile { hash }))
            }
        }
    }

    /// Whether operations touch a dataset the peer chose.
    fn touches_chosen(&self, operations: &[Vec<u8>]) -> Result<bool> {
        match &self.remote_choice {
            Payload::Datasets(_) => {
                for op in operations {
                    if covers(&self.remote_choice, &Operation::decode(op)?.dataset) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            choice => Ok(*choice != Payload::GraphOnly),
        }
    }

    fn open_file(
        &self,
        version: &str,
        dataset: &[u8],
        key: &[u8],
        hash: &str,
    ) -> Result<Box<dyn Read + Send>> {
        let view = self.repo.at(&self.repo.resolve(version)?)?;
        let named = view.get(dataset, key)?.and_then(|row| row.file);
        if named.is_none_or(|file| file.hash != hash) {
            return Err(Error::NotFound(format!("file {hash}")));
        }
        Ok(Box::new(view.open_file(dataset, key)?))
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
                let n = read_full(reader.as_mut(), &mut data)?;
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

/// Reads until `buf` is full or the reader ends.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading a file to send", e)),
        }
    }
    Ok(filled)
}

fn unasked(what: &str, hash: &str) -> Error {
    Error::Replication(format!(
        "the peer sent {what} {hash} that were not asked for"
    ))
}
