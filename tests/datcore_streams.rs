//! dat-core 6.0.2 `test/streams.js` (spec §9.2, cases 15–20), ported: a read stream is
//! `view.range(dataset, Range)` (sorted by key; `limit`, `keys_only`, gt/gte/lt/lte), a
//! write stream is `repo.import(dataset, rows, batch_size, message)`. Plus the fixes of D1
//! (keys containing `!` are listed) and D2 (keys starting with bytes ≥ 0xC4 or with
//! `\xff` are listed: the original's `'\xff'` upper bound hid them).

mod common;

use common::{keys, repo, rows};
use strata::Range;

/// §9.2 case 15, `read-stream`: one row, with its content kind, version, key and value.
#[test]
fn read_stream() {
    let repo = repo();
    let version = repo.put("d", "hello", "world").unwrap();
    let got = rows(&repo.latest().unwrap(), "d", Range::all());
    assert_eq!(got.len(), 1);
    let row = &got[0];
    assert_eq!(
        (row.key.as_slice(), row.value.as_slice()),
        (&b"hello"[..], &b"world"[..])
    );
    assert_eq!(row.version, version);
    assert_eq!(row.file, None);
    assert_eq!(row.dataset, b"d");
    assert!(!row.forked);
}

/// §9.2 case 16, `read-stream more than one value`: rows sorted by key.
#[test]
fn read_stream_more_than_one_value() {
    let repo = repo();
    repo.put("d", "hello", "world").unwrap();
    repo.put("d", "hej", "verden").unwrap();
    let got: Vec<(String, String)> = rows(&repo.latest().unwrap(), "d", Range::all())
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key).unwrap(),
                String::from_utf8(r.value).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("hej".into(), "verden".into()),
            ("hello".into(), "world".into())
        ]
    );
}

/// §9.2 case 17, `read-stream keys are sorted`: puts c, a, b give keys a, b, c.
#[test]
fn read_stream_keys_are_sorted() {
    let repo = repo();
    for key in ["c", "a", "b"] {
        repo.put("d", key, key).unwrap();
    }
    let latest = repo.latest().unwrap();
    assert_eq!(keys(&latest, "d", Range::all()), vec!["a", "b", "c"]);
    // keys_only leaves values empty but keeps versions.
    let only = rows(&latest, "d", Range::all().keys_only());
    assert!(
        only.iter()
            .all(|r| r.value.is_empty() && r.version.len() == 64)
    );
    assert_eq!(only.len(), 3);
}

/// §9.2 case 18, `read-stream with a limit`: limit 2 gives a, b.
#[test]
fn read_stream_with_a_limit() {
    let repo = repo();
    for key in ["c", "a", "b"] {
        repo.put("d", key, key).unwrap();
    }
    let latest = repo.latest().unwrap();
    assert_eq!(keys(&latest, "d", Range::all().limit(2)), vec!["a", "b"]);
    assert!(keys(&latest, "d", Range::all().limit(0)).is_empty());
    assert_eq!(
        keys(&latest, "d", Range::all().limit(10)),
        vec!["a", "b", "c"]
    );
    // The limit applies after deleted rows are filtered out.
    repo.delete("d", "a").unwrap();
    assert_eq!(
        keys(&repo.latest().unwrap(), "d", Range::all().limit(2)),
        vec!["b", "c"]
    );
}

/// §9.2 case 19, `write-stream`: a, b, c written through a write stream read back.
#[test]
fn write_stream() {
    let repo = repo();
    let versions = repo
        .import(
            "d",
            ["a", "b", "c"].map(|k| Ok((k.as_bytes().to_vec(), k.as_bytes().to_vec()))),
            100,
            Some("import abc"),
        )
        .unwrap();
    assert_eq!(versions.len(), 1, "one batch, one commit");
    assert_eq!(
        keys(&repo.latest().unwrap(), "d", Range::all()),
        vec!["a", "b", "c"]
    );
    let commit = repo.changes(0).next().unwrap().unwrap().commit.unwrap();
    assert_eq!(commit.message.as_deref(), Some("import abc"));
    assert_eq!(commit.puts, 3);
}

/// §9.2 case 20, `write-stream two batches`: batch size 2 gives two commits, the same rows.
/// A row that fails stops the import; the batches before it stay committed.
#[test]
fn write_stream_two_batches() {
    let repo = repo();
    let versions = repo
        .import(
            "d",
            ["a", "b", "c"].map(|k| Ok((k.as_bytes().to_vec(), k.as_bytes().to_vec()))),
            2,
            None,
        )
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        keys(&repo.latest().unwrap(), "d", Range::all()),
        vec!["a", "b", "c"]
    );
    assert_eq!(
        keys(&repo.at(&versions[0]).unwrap(), "d", Range::all()),
        vec!["a", "b"]
    );
    let commits: Vec<_> = repo.changes(0).map(|c| c.unwrap()).collect();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[1].links, vec![versions[0].clone()]);
    // An error in the third row: the first batch (d, e) is committed, f is not.
    let failing = vec![
        Ok((b"d".to_vec(), b"d".to_vec())),
        Ok((b"e".to_vec(), b"e".to_vec())),
        Ok((b"f".to_vec(), b"f".to_vec())),
        Err(strata::Error::InvalidArgument("bad row".into())),
    ];
    assert!(repo.import("x", failing, 2, None).is_err());
    assert_eq!(
        keys(&repo.latest().unwrap(), "x", Range::all()),
        vec!["d", "e"]
    );
}

/// Range bounds: gt, gte, lt, lte, combined, and with a limit.
#[test]
fn read_stream_bounds() {
    let repo = repo();
    let mut tx = repo.transaction();
    for key in ["a", "b", "ba", "c", "d"] {
        tx.put("d", key, key);
    }
    tx.commit().unwrap();
    let latest = repo.latest().unwrap();
    let k = |range: Range| keys(&latest, "d", range);
    assert_eq!(k(Range::all().gt("b")), vec!["ba", "c", "d"]);
    assert_eq!(k(Range::all().gte("b")), vec!["b", "ba", "c", "d"]);
    assert_eq!(k(Range::all().lt("c")), vec!["a", "b", "ba"]);
    assert_eq!(k(Range::all().lte("c")), vec!["a", "b", "ba", "c"]);
    assert_eq!(k(Range::all().gt("a").lt("d")), vec!["b", "ba", "c"]);
    assert_eq!(k(Range::all().gte("bb").lte("bb")), Vec::<String>::new());
    assert_eq!(k(Range::all().gte("ba").lte("ba")), vec!["ba"]);
    assert_eq!(k(Range::all().gt("a").limit(2)), vec!["b", "ba"]);
    assert_eq!(k(Range::all().gt("d")), Vec::<String>::new());
    assert_eq!(k(Range::all().gt("c").lt("b")), Vec::<String>::new());
}

/// Reading many rows (more than a page), across a fork, in order and each once.
#[test]
fn read_stream_long_and_forked() {
    let repo = repo();
    let base = repo
        .import(
            "d",
            (0..700u32).map(|i| Ok((format!("{:04}", i * 2).into_bytes(), b"base".to_vec()))),
            1000,
            None,
        )
        .unwrap();
    repo.import(
        "d",
        (0..300u32).map(|i| Ok((format!("{:04}", i * 4 + 1).into_bytes(), b"main".to_vec()))),
        1000,
        None,
    )
    .unwrap();
    let mut tx = repo.transaction();
    for i in 0..300u32 {
        tx.put("d", format!("{:04}", i * 4 + 3), "fork");
    }
    tx.delete("d", "0000").replaces(&base);
    tx.commit().unwrap();
    let got = keys(&repo.latest().unwrap(), "d", Range::all());
    let mut expected: Vec<String> = (0..700u32).map(|i| format!("{:04}", i * 2)).collect();
    expected.extend((0..300u32).map(|i| format!("{:04}", i * 4 + 1)));
    expected.extend((0..300u32).map(|i| format!("{:04}", i * 4 + 3)));
    expected.retain(|k| k != "0000");
    expected.sort();
    assert_eq!(got, expected);
    let from = keys(
        &repo.latest().unwrap(),
        "d",
        Range::all().gt("0600").limit(5),
    );
    assert_eq!(from, vec!["0601", "0602", "0603", "0604", "0605"]);
}

/// D1: keys containing `!` are listed by read streams (the original dropped `e!x`), and
/// sort and bound like any other key.
#[test]
fn keys_with_bang_are_listed() {
    let repo = repo();
    for key in ["e!x", "e", "!", "!!", "a!", "e!"] {
        repo.put("d", key, key).unwrap();
    }
    repo.put("e", "x", "other dataset").unwrap();
    let latest = repo.latest().unwrap();
    assert_eq!(
        keys(&latest, "d", Range::all()),
        vec!["!", "!!", "a!", "e", "e!", "e!x"]
    );
    assert_eq!(keys(&latest, "d", Range::all().gt("e")), vec!["e!", "e!x"]);
    assert_eq!(
        keys(&latest, "d", Range::all().gte("e!").lt("e!y")),
        vec!["e!", "e!x"]
    );
    assert_eq!(repo.get("d", "e!x").unwrap().unwrap().value, b"e!x");
    assert_eq!(keys(&latest, "e", Range::all()), vec!["x"]);
}

/// D2: keys whose first byte is ≥ 0xC4, or that start with `\xff` / `ÿ` (C3 BF), are
/// listed (the original's `'\xff'` bound hid them), and bounds around them are exact.
#[test]
fn high_byte_keys_are_listed() {
    let repo = repo();
    let keys_in: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        "ÿ".as_bytes().to_vec(),
        "ÿz".as_bytes().to_vec(),
        vec![0xc4],
        "Ĥello".as_bytes().to_vec(),
        "日本".as_bytes().to_vec(),
        vec![0xff],
        vec![0xff, 0xff],
        vec![0xff, 0x00],
    ];
    let mut tx = repo.transaction();
    for key in &keys_in {
        tx.put("d", key, key);
    }
    tx.commit().unwrap();
    let latest = repo.latest().unwrap();
    let all: Vec<Vec<u8>> = rows(&latest, "d", Range::all())
        .into_iter()
        .map(|r| r.key)
        .collect();
    let mut sorted = keys_in.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let above: Vec<Vec<u8>> = rows(&latest, "d", Range::all().gte(vec![0xc4]))
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        above,
        sorted
            .iter()
            .filter(|k| k.as_slice() >= &[0xc4][..])
            .cloned()
            .collect::<Vec<_>>()
    );
    let ff: Vec<Vec<u8>> = rows(&latest, "d", Range::all().gte(vec![0xff]))
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(ff, vec![vec![0xff], vec![0xff, 0x00], vec![0xff, 0xff]]);
    let below_ff: Vec<Vec<u8>> = rows(&latest, "d", Range::all().gt(vec![0xc4]).lt(vec![0xff]))
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        below_ff,
        vec!["Ĥello".as_bytes().to_vec(), "日本".as_bytes().to_vec()]
    );
    for key in &keys_in {
        assert_eq!(&repo.get("d", key).unwrap().unwrap().value, key);
    }
}
