//! hyperlog 4.12.1 `test/hash.js` (spec §9.1 cases 28-32), ported to strata's graph with
//! replaceable node hashers, plus the framed SHA-256 worked examples of spec §1.3 and §2.2.

use std::sync::{Arc, Mutex};

use sha1::Sha1;
use sha2::{Digest, Sha256};
use strata::{FramedSha256, Graph, GraphEvent, GraphOptions, NodeHasher, framed_update};

/// The test suite's `sha1`: framed-hash('sha1') over each link, then the value.
struct FramedSha1;

impl NodeHasher for FramedSha1 {
    fn hash(&self, links: &[String], value: &[u8]) -> String {
        let mut digest = Sha1::new();
        for link in links {
            framed_update(&mut digest, link.as_bytes());
        }
        framed_update(&mut digest, value);
        hex::encode(digest.finalize())
    }
}

/// The test suite's `asyncSha2`: `prevalue = value.toString()`, then every link appended
/// with no separator; the key is base58(multihash(sha2-256, prevalue)), the multihash being
/// `0x12 0x20 ‖ sha256(prevalue)`. Not framed: the value comes first, and nothing marks where
/// it ends. (strata's hashers are synchronous; "async" made no difference to the keys.)
struct Multihash;

impl NodeHasher for Multihash {
    fn hash(&self, links: &[String], value: &[u8]) -> String {
        let mut prevalue = String::from_utf8_lossy(value).into_owned();
        for link in links {
            prevalue.push_str(link);
        }
        let mut multihash = vec![0x12, 0x20];
        multihash.extend_from_slice(&Sha256::digest(prevalue.as_bytes()));
        bs58::encode(multihash).into_string()
    }
}

fn graph_with(hasher: impl NodeHasher + 'static) -> Graph {
    Graph::in_memory(GraphOptions {
        hasher: Arc::new(hasher),
        ..GraphOptions::default()
    })
    .unwrap()
}

/// Case 28 `add node using sha1`.
#[test]
fn add_node_using_sha1() {
    let hyper = graph_with(FramedSha1);
    let node = hyper.add(&[], "hello world").unwrap();
    assert_eq!(node.key, "99cf70777a24b574b8fb5b3173cd4073f02098b0");
    assert_eq!(hyper.get(&node.key).unwrap(), node);
}

/// Case 29 `add node with links using sha1`.
#[test]
fn add_node_with_links_using_sha1() {
    let hyper = graph_with(FramedSha1);
    let node = hyper.add(&[], "hello").unwrap();
    assert_eq!(node.key, "445198669b880239a7e64247ed303066b398678b");
    let node2 = hyper.add(std::slice::from_ref(&node.key), "world").unwrap();
    assert_eq!(node2.key, "1d95837842db3995fb3e77ed070457eb4f9875bc");
    assert_eq!(hyper.heads().unwrap(), vec![node2]);
}

/// Case 30 `add node using async multihash`.
#[test]
fn add_node_using_async_multihash() {
    let hyper = graph_with(Multihash);
    let node = hyper.add(&[], "hello world").unwrap();
    assert_eq!(node.key, "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4");
    assert_eq!(hyper.get(&node.key).unwrap(), node);
}

/// Case 31 `add node with links using async multihash`.
#[test]
fn add_node_with_links_using_async_multihash() {
    let hyper = graph_with(Multihash);
    let node = hyper.add(&[], "hello").unwrap();
    assert_eq!(node.key, "QmRN6wdp1S2A5EtjW9A3M1vKSBuQQGcgvuhoMUoEz4iiT5");
    let node2 = hyper.add(std::slice::from_ref(&node.key), "world").unwrap();
    assert_eq!(node2.key, "QmVeZeqV6sbzeDyzhxFHwBLddaQzUELCxLjrQVzfBuDrt8");
    let node3 = hyper
        .add(&[node.key.clone(), node2.key.clone()], "!!!")
        .unwrap();
    assert_eq!(node3.key, "QmNs89mwydjboQGpvcK2F3hyKjSmdqQTqDWmRMsAQnL4ZU");
    assert_eq!(node3.links, vec![node.key, node2.key]);
}

/// Case 32 `preadd event with async hash`: at preadd the node has no key yet (hyperlog's
/// `prenode.key === null`; strata's `PreAdd` carries no key at all) and is not stored; the
/// final key matches case 30.
#[test]
fn preadd_event_with_async_hash() {
    let hyper = graph_with(Multihash);
    let expected = "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4";
    let prenodes = Arc::new(Mutex::new(Vec::new()));
    {
        let prenodes = prenodes.clone();
        let observer = hyper.clone();
        hyper.on_event(move |event| {
            if let GraphEvent::PreAdd { links, value } = event {
                let stored = observer.contains(expected).unwrap();
                prenodes
                    .lock()
                    .unwrap()
                    .push((links.to_vec(), value.to_vec(), stored));
            }
        });
    }
    let node = hyper.add(&[], "hello world").unwrap();
    assert_eq!(node.key, expected);
    assert_eq!(
        *prenodes.lock().unwrap(),
        vec![(vec![], b"hello world".to_vec(), false)]
    );
}

/// Spec §1.3: framed("hello") = sha256("5\nhello"), and the frame counts bytes, not chars.
#[test]
fn framed_update_frames_byte_length() {
    let mut digest = Sha256::new();
    framed_update(&mut digest, b"hello");
    assert_eq!(
        hex::encode(digest.finalize()),
        "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602"
    );
    let mut framed = Sha256::new();
    framed_update(&mut framed, "héllo".as_bytes());
    assert_eq!(
        framed.finalize(),
        Sha256::digest("6\nhéllo".as_bytes()),
        "é is 2 bytes"
    );
    // A multi-digit length.
    let long = vec![b'x'; 1234];
    let mut framed = Sha256::new();
    framed_update(&mut framed, &long);
    let mut plain = b"1234\n".to_vec();
    plain.extend_from_slice(&long);
    assert_eq!(framed.finalize(), Sha256::digest(&plain));
}

/// Spec §2.2, the worked examples of the default hasher.
#[test]
fn framed_sha256_worked_examples() {
    let hello = "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602";
    let world = "5f5e63be98841981a12b6041e4200677851714ec4305d13a3ee30197439ff193";
    let cases: [(&[&str], &str, &str); 5] = [
        (&[], "hello", hello),
        (&[hello], "world", world),
        (
            &[hello, world],
            "!!!",
            "188161979b7790c8bc16080a358109fe782e362e189d55bb2862ce19efae5926",
        ),
        (
            &[],
            "",
            "9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa",
        ),
        (
            &[],
            "hello world",
            "c44296d0fbdcaf1dca0082886a8913d961b04a2a85029e7e2d0420025af10192",
        ),
    ];
    let hyper = Graph::in_memory(GraphOptions::default()).unwrap();
    for (links, value, key) in cases {
        let links: Vec<String> = links.iter().map(|l| l.to_string()).collect();
        assert_eq!(FramedSha256.hash(&links, value.as_bytes()), key);
        assert_eq!(hyper.add(&links, value).unwrap().key, key);
    }
    // Links are hashed in the order given: swapping them changes the key.
    let swapped = [world.to_string(), hello.to_string()];
    assert_ne!(
        FramedSha256.hash(&swapped, b"!!!"),
        "188161979b7790c8bc16080a358109fe782e362e189d55bb2862ce19efae5926"
    );
}

/// The default hasher is the framed construction, whichever digest it frames: the SHA-1
/// hasher above differs from it only in the digest.
#[test]
fn framed_sha1_matches_manual_preimage() {
    let links = vec!["445198669b880239a7e64247ed303066b398678b".to_string()];
    let mut preimage = b"40\n445198669b880239a7e64247ed303066b398678b".to_vec();
    preimage.extend_from_slice(b"5\nworld");
    assert_eq!(
        FramedSha1.hash(&links, b"world"),
        hex::encode(Sha1::digest(&preimage))
    );
}
