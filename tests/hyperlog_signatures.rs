//! hyperlog 4.12.1 `test/signatures.js` (spec §9.1 cases 39-44), ported to strata's graph.
//!
//! Cases 41-44 replicate a signed log into another one. The replication protocol is not part
//! of this work, so replication is simulated through its seam: every node of the source, in
//! change order, is handed to the receiver's `ingest`, which runs the receiver's verifier.
//! The other checks of `ingest` (hash, links, sequence) are tested at the end.

use std::sync::{Arc, Mutex};

use strata::Error;
use strata::{Channel, Doc, Graph, GraphEvent, GraphOptions, Node, Signer, Verifier};

const SIGNATURE: &[u8] = b"i-am-a-signature";
const PUBLIC_KEY: &[u8] = b"i-am-a-public-key";

/// Signs every node with `i-am-a-signature`, recording what it was asked to sign.
struct TestSigner {
    identity: Option<Vec<u8>>,
    fail: Option<String>,
    seen: Mutex<Vec<Node>>,
}

impl TestSigner {
    fn new(identity: Option<&[u8]>) -> Arc<TestSigner> {
        Arc::new(TestSigner {
            identity: identity.map(<[u8]>::to_vec),
            fail: None,
            seen: Mutex::new(Vec::new()),
        })
    }
}

impl Signer for TestSigner {
    fn identity(&self) -> Option<Vec<u8>> {
        self.identity.clone()
    }

    fn sign(&self, node: &Node) -> Result<Vec<u8>, String> {
        self.seen.lock().unwrap().push(node.clone());
        match &self.fail {
            Some(message) => Err(message.clone()),
            None => Ok(SIGNATURE.to_vec()),
        }
    }
}

/// What a verifier saw of a node: its signature and identity.
type Seen = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Answers `accept`, recording `(signature, identity)` of every node it verifies.
struct TestVerifier {
    accept: bool,
    seen: Mutex<Vec<Seen>>,
}

impl TestVerifier {
    fn new(accept: bool) -> Arc<TestVerifier> {
        Arc::new(TestVerifier {
            accept,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Verifier for TestVerifier {
    fn verify(&self, node: &Node, _: Channel) -> Result<bool, String> {
        self.seen
            .lock()
            .unwrap()
            .push((node.signature.clone(), node.identity.clone()));
        Ok(self.accept)
    }
}

fn signed(signer: Arc<TestSigner>) -> Graph {
    Graph::in_memory(GraphOptions {
        signer: Some(signer),
        ..GraphOptions::default()
    })
    .unwrap()
}

fn verifying(verifier: Arc<TestVerifier>) -> Graph {
    Graph::in_memory(GraphOptions {
        verifier: Some(verifier),
        ..GraphOptions::default()
    })
    .unwrap()
}

fn all_changes(graph: &Graph) -> Vec<Node> {
    graph
        .changes(0)
        .collect::<strata::Result<Vec<_>>>()
        .unwrap()
}

/// Replication, simulated: `to` receives every node of `from`, in `from`'s change order.
fn replicate(from: &Graph, to: &Graph) -> strata::Result<Vec<Node>> {
    to.ingest(all_changes(from))
}

fn some(bytes: &[u8]) -> Option<Vec<u8>> {
    Some(bytes.to_vec())
}

/// Case 39 `sign`.
#[test]
fn sign() {
    let signer = TestSigner::new(Some(PUBLIC_KEY));
    let log = signed(signer.clone());
    let node = log.add(&[], "hello").unwrap();
    let seen = signer.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "sign is called");
    assert_eq!(seen[0].value, b"hello", "sign is called");
    // What is signed is final: key, links, value, log, seq, change. As in hyperlog (H8),
    // the default identity is filled in after signing.
    assert_eq!(seen[0].key, node.key);
    assert_eq!((seen[0].change, seen[0].seq), (1, 1));
    assert_eq!(seen[0].identity, None);
    assert_eq!(node.signature, some(SIGNATURE), "has signature");
    assert_eq!(node.identity, some(PUBLIC_KEY), "has public key");
    assert_eq!(log.get(&node.key).unwrap(), node);
    // Neither is part of the key.
    assert_eq!(
        node.key,
        Graph::in_memory(GraphOptions::default())
            .unwrap()
            .add(&[], "hello")
            .unwrap()
            .key
    );
}

/// Case 40 `sign fails`: the add fails with the signer's message, `reject` is emitted, and
/// nothing is written.
#[test]
fn sign_fails() {
    let signer = Arc::new(TestSigner {
        identity: Some(PUBLIC_KEY.to_vec()),
        fail: Some("lol".into()),
        seen: Mutex::new(Vec::new()),
    });
    let log = signed(signer);
    let rejects = Arc::new(Mutex::new(Vec::new()));
    {
        let rejects = rejects.clone();
        log.on_event(move |event| {
            if let GraphEvent::Reject { error } = event {
                rejects.lock().unwrap().push(error.to_string());
            }
        });
    }
    let err = log.add(&[], "hello").unwrap_err();
    assert!(
        matches!(err, Error::Sign(ref message) if message == "lol"),
        "{err:?}"
    );
    assert_eq!(*rejects.lock().unwrap(), vec![err.to_string()]);
    assert_eq!(log.change_count(), 0);
    assert!(log.heads().unwrap().is_empty());
    assert_eq!(log.log_head(&log.log_id()).unwrap(), 0);
}

/// A signer that fails on one document of a batch fails the whole batch.
#[test]
fn sign_fails_in_batch_writes_nothing() {
    struct PickySigner;
    impl Signer for PickySigner {
        fn identity(&self) -> Option<Vec<u8>> {
            None
        }
        fn sign(&self, node: &Node) -> Result<Vec<u8>, String> {
            if node.value == b"bad" {
                Err("refused".into())
            } else {
                Ok(SIGNATURE.to_vec())
            }
        }
    }
    let log = Graph::in_memory(GraphOptions {
        signer: Some(Arc::new(PickySigner)),
        ..GraphOptions::default()
    })
    .unwrap();
    let err = log
        .batch(vec![Doc::new(vec![], "good"), Doc::new(vec![], "bad")])
        .unwrap_err();
    assert!(matches!(err, Error::Sign(ref m) if m == "refused"));
    assert_eq!(log.change_count(), 0);
    let good = log.add(&[], "good").unwrap();
    assert_eq!((good.change, good.seq), (1, 1));
}

/// Case 41 `verify`: the receiver's verifier sees the signature and identity.
#[test]
fn verify() {
    let log1 = signed(TestSigner::new(Some(PUBLIC_KEY)));
    let verifier = TestVerifier::new(true);
    let log2 = verifying(verifier.clone());
    let node = log1.add(&[], "hello").unwrap();
    let received = replicate(&log1, &log2).unwrap();
    assert_eq!(
        verifier.seen(),
        vec![(some(SIGNATURE), some(PUBLIC_KEY))],
        "verify called with signature and public key"
    );
    // Stored unchanged: same log, seq, signature and identity, and (being log2's first
    // node) the same change number, so the same bytes.
    assert_eq!(received, vec![node.clone()]);
    assert_eq!(log2.get(&node.key).unwrap().encode(), node.encode());
    assert_eq!(log2.log_head(&log1.log_id()).unwrap(), 1);
    assert_eq!(log2.log_head(&log2.log_id()).unwrap(), 0);
}

/// Case 42 `verify fails`: hyperlog's stream errors with `Invalid signature`; `ingest`
/// fails with `Error::InvalidSignature` and stores nothing.
#[test]
fn verify_fails() {
    let log1 = signed(TestSigner::new(Some(PUBLIC_KEY)));
    let log2 = verifying(TestVerifier::new(false));
    let node = log1.add(&[], "hello").unwrap();
    let err = replicate(&log1, &log2).unwrap_err();
    assert!(
        matches!(err, Error::InvalidSignature { ref key, .. } if *key == node.key),
        "{err:?}"
    );
    assert!(err.to_string().contains("invalid signature"), "{err}");
    assert_eq!(log2.change_count(), 0);
    assert!(!log2.contains(&node.key).unwrap());
    assert_eq!(log2.log_head(&log1.log_id()).unwrap(), 0);
}

/// A verifier that errors rejects the node like one that answers false.
#[test]
fn verify_errors() {
    struct Broken;
    impl Verifier for Broken {
        fn verify(&self, _: &Node, _: Channel) -> Result<bool, String> {
            Err("no key".into())
        }
    }
    let log1 = signed(TestSigner::new(Some(PUBLIC_KEY)));
    let log2 = Graph::in_memory(GraphOptions {
        verifier: Some(Arc::new(Broken)),
        ..GraphOptions::default()
    })
    .unwrap();
    log1.add(&[], "hello").unwrap();
    let err = replicate(&log1, &log2).unwrap_err();
    assert!(matches!(err, Error::InvalidSignature { .. }), "{err:?}");
    assert_eq!(log2.change_count(), 0);
}

/// A verify failure in the middle of a received batch stores nothing of it.
#[test]
fn verify_fails_midway_stores_nothing() {
    struct RejectSecond;
    impl Verifier for RejectSecond {
        fn verify(&self, node: &Node, _: Channel) -> Result<bool, String> {
            Ok(node.value != b"second")
        }
    }
    let log1 = signed(TestSigner::new(Some(PUBLIC_KEY)));
    log1.append("first").unwrap();
    log1.append("second").unwrap();
    log1.append("third").unwrap();
    let log2 = Graph::in_memory(GraphOptions {
        verifier: Some(Arc::new(RejectSecond)),
        ..GraphOptions::default()
    })
    .unwrap();
    let err = replicate(&log1, &log2).unwrap_err();
    assert!(matches!(err, Error::InvalidSignature { .. }));
    assert_eq!(log2.change_count(), 0);
    assert_eq!(log2.logs().unwrap(), vec![]);
    // The first node alone is accepted.
    log2.ingest(all_changes(&log1)[..1].to_vec()).unwrap();
    assert_eq!(log2.change_count(), 1);
}

/// Case 43 `per-document identity (add)`: with a signer that has no identity, the
/// identity given to one add reaches the receiver's verifier.
#[test]
fn per_document_identity_add() {
    let signer = TestSigner::new(None);
    let log1 = signed(signer.clone());
    let verifier = TestVerifier::new(true);
    let log2 = verifying(verifier.clone());
    let mut doc = Doc::new(vec![], "hello");
    doc.identity = some(PUBLIC_KEY);
    let node = log1.add_doc(doc).unwrap();
    assert_eq!(node.identity, some(PUBLIC_KEY));
    // A per-document identity is there when signing.
    assert_eq!(signer.seen.lock().unwrap()[0].identity, some(PUBLIC_KEY));
    replicate(&log1, &log2).unwrap();
    assert_eq!(verifier.seen(), vec![(some(SIGNATURE), some(PUBLIC_KEY))]);
}

/// Case 44 `per-document identity (batch)`: each document's identity reaches the verifier,
/// in order.
#[test]
fn per_document_identity_batch() {
    let log1 = signed(TestSigner::new(None));
    let verifier = TestVerifier::new(true);
    let log2 = verifying(verifier.clone());
    let mut hello = Doc::new(vec![], "hello");
    hello.identity = some(b"hello id");
    let mut whatever = Doc::new(vec![], "whatever");
    whatever.identity = some(b"whatever id");
    log1.batch(vec![hello, whatever]).unwrap();
    replicate(&log1, &log2).unwrap();
    assert_eq!(
        verifier.seen(),
        vec![
            (some(SIGNATURE), some(b"hello id")),
            (some(SIGNATURE), some(b"whatever id")),
        ]
    );
}

/// A per-document identity wins over the signer's; without either there is none.
#[test]
fn identity_precedence() {
    let log = signed(TestSigner::new(Some(PUBLIC_KEY)));
    let mut doc = Doc::new(vec![], "mine");
    doc.identity = some(b"mine");
    assert_eq!(log.add_doc(doc).unwrap().identity, some(b"mine"));
    assert_eq!(log.add(&[], "default").unwrap().identity, some(PUBLIC_KEY));
    let unsigned = Graph::in_memory(GraphOptions::default()).unwrap();
    let node = unsigned.add(&[], "x").unwrap();
    assert_eq!((node.identity, node.signature), (None, None));
    let mut doc = Doc::new(vec![], "y");
    doc.identity = some(b"id");
    let node = unsigned.add_doc(doc).unwrap();
    assert_eq!((node.identity, node.signature), (some(b"id"), None));
}

/// The verifier checks nodes of other logs only: a node of the receiver's own log that comes
/// back is not verified.
#[test]
fn own_log_is_not_verified() {
    let verifier = TestVerifier::new(false);
    let log2 = verifying(verifier.clone());
    let own = log2.add(&[], "mine").unwrap();
    let other = Graph::in_memory(GraphOptions::default()).unwrap();
    other.ingest(vec![own.clone()]).unwrap();
    // Sent back: already known, same (log, seq); nothing to verify, nothing written.
    log2.ingest(all_changes(&other)).unwrap();
    assert!(verifier.seen().is_empty());
    assert_eq!(log2.change_count(), 1);
}

// The checks `ingest` makes besides the signature (the replication seam).

/// A node whose key is not the hash of its links and value is refused.
#[test]
fn ingest_checksum_mismatch() {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    let node = source.add(&[], "hello").unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let mut tampered = node.clone();
    tampered.value = b"HELLO".to_vec();
    match target.ingest(vec![tampered]).unwrap_err() {
        Error::ChecksumMismatch { claimed, actual } => {
            assert_eq!(claimed, node.key);
            assert_ne!(actual, node.key);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert_eq!(target.change_count(), 0);
    // Signature and identity are not hashed: changing them is not a checksum error.
    let mut resigned = node.clone();
    resigned.signature = some(b"forged");
    target.ingest(vec![resigned.clone()]).unwrap();
    assert_eq!(target.get(&node.key).unwrap().signature, some(b"forged"));
}

/// A node whose links this repository lacks (and that the same call does not bring first)
/// is refused, naming the link.
#[test]
fn ingest_missing_link() {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    let a = source.add(&[], "a").unwrap();
    let b = source.append("b").unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let err = target.ingest(vec![b.clone()]).unwrap_err();
    assert!(
        matches!(err, Error::MissingLink { ref link } if *link == a.key),
        "{err:?}"
    );
    assert_eq!(target.change_count(), 0);
    // Out of order within one call is also missing.
    let err = target.ingest(vec![b.clone(), a.clone()]).unwrap_err();
    assert!(matches!(err, Error::MissingLink { .. }));
    assert_eq!(target.change_count(), 0);
    // In order, it works.
    let stored = target.ingest(vec![a, b]).unwrap();
    assert_eq!(
        stored.iter().map(|n| n.change).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

/// A node must continue its log: no gap, no rewrite of an existing slot.
#[test]
fn ingest_invalid_seq() {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    let a = source.add(&[], "a").unwrap();
    let b = source.add(&[], "b").unwrap();
    let c = source.add(&[], "c").unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    // A gap: seq 2 before seq 1.
    match target.ingest(vec![b.clone()]).unwrap_err() {
        Error::InvalidSeq { log, expected, got } => {
            assert_eq!((log, expected, got), (source.log_id(), 1, 2));
        }
        other => panic!("expected InvalidSeq, got {other:?}"),
    }
    assert_eq!(target.change_count(), 0);
    target.ingest(vec![a.clone()]).unwrap();
    // Receiving the same (log, seq) again is a no-op.
    assert_eq!(target.ingest(vec![a.clone()]).unwrap(), vec![a.clone()]);
    assert_eq!(target.change_count(), 1);
    // A different node claiming an existing slot is refused.
    let mut impostor = c.clone();
    impostor.seq = 1;
    assert!(matches!(
        target.ingest(vec![impostor]).unwrap_err(),
        Error::InvalidSeq {
            expected: 2,
            got: 1,
            ..
        }
    ));
    // A gap inside one call fails the whole call.
    let mut skip = c.clone();
    skip.seq = 4;
    assert!(matches!(
        target.ingest(vec![b.clone(), skip]).unwrap_err(),
        Error::InvalidSeq {
            expected: 3,
            got: 4,
            ..
        }
    ));
    assert_eq!(target.change_count(), 1);
    target.ingest(vec![b, c]).unwrap();
    assert_eq!(target.log_head(&source.log_id()).unwrap(), 3);
    assert_eq!(target.change_count(), 3);
}

/// The same node twice in one call: the second copy names the slot the first one just
/// filled, which is the no-op that receiving it again in a later call is.
#[test]
fn ingest_same_node_twice_in_one_call() {
    let source = Graph::in_memory(GraphOptions::default()).unwrap();
    let a = source.add(&[], "a").unwrap();
    let target = Graph::in_memory(GraphOptions::default()).unwrap();
    let stored = target.ingest(vec![a.clone(), a.clone()]).unwrap();
    assert_eq!(stored, vec![a.clone(), a]);
    assert_eq!(target.change_count(), 1);
    assert_eq!(target.log_head(&source.log_id()).unwrap(), 1);
}

/// A received node that is new here but claims this repository's own log is not exempt
/// from verification (hyperlog verifies every node it did not sign itself): otherwise any
/// peer could write unverified nodes into our own log.
#[test]
fn forged_node_in_own_log_is_verified() {
    let verifier = TestVerifier::new(false);
    let victim = verifying(verifier.clone());
    // A peer forges a node under the victim's log id, seq 1.
    let forger = graph_with_log(&victim.log_id());
    let forged = forger.add(&[], "forged").unwrap();
    assert_eq!(
        (forged.log.as_str(), forged.seq),
        (victim.log_id().as_str(), 1)
    );
    let result = victim.ingest(vec![forged.clone()]);
    assert!(
        matches!(result, Err(Error::InvalidSignature { .. })),
        "{result:?}"
    );
    assert!(!victim.contains(&forged.key).unwrap());
    assert_eq!(victim.log_head(&victim.log_id()).unwrap(), 0);
}

fn graph_with_log(log_id: &str) -> Graph {
    Graph::in_memory(GraphOptions {
        log_id: Some(log_id.to_string()),
        ..GraphOptions::default()
    })
    .unwrap()
}
