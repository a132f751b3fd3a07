//! dat-core 6.0.2 `test/basic.js` (spec §9.2, cases 1–5), ported to strata's API, plus the
//! fixes of D6 (reads around deletes never fail) and D14 (file rows never derive a path
//! from the row key).
//!
//! The original's `create()` is `dat(memdb(), {valueEncoding: 'utf-8'})`; here it is an
//! in-memory repository, and values are the raw bytes (no JSON quoting: strata stores
//! bytes as given).

mod common;

use common::{repo, value};
use strata::{Repository, RowVersion};

fn is_version(v: &str) -> bool {
    v.len() == 64
        && v.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// §9.2 case 1, `opens`: the original waits for a `ready` event. Opening is synchronous
/// here: a fresh repository (in memory and on disk) is usable at once and empty.
#[test]
fn opens() {
    let repo = repo();
    assert!(repo.heads().unwrap().is_empty());
    assert_eq!(repo.get("d", "hello").unwrap(), None);
    assert!(repo.latest().unwrap().datasets().unwrap().is_empty());
    assert_eq!(repo.status().unwrap().rows, 0);

    let dir = tempfile::tempdir().unwrap();
    let on_disk = Repository::init(dir.path()).unwrap();
    assert!(on_disk.heads().unwrap().is_empty());
    assert_eq!(on_disk.get("d", "hello").unwrap(), None);
    drop(on_disk);
    // A second init of the same folder is refused; opening it works.
    assert!(matches!(
        Repository::init(dir.path()),
        Err(strata::Error::InvalidArgument(_))
    ));
    Repository::open(dir.path()).unwrap();
}

/// §9.2 case 2, `put and get`: the row carries its content kind (row, not file), its
/// version, its key and its value.
#[test]
fn put_and_get() {
    let repo = repo();
    let version = repo.put("d", "hello", "world").unwrap();
    assert!(is_version(&version), "{version}");
    let row = repo.get("d", "hello").unwrap().expect("the row");
    assert_eq!(row.key, b"hello");
    assert_eq!(row.dataset, b"d");
    assert_eq!(row.value, b"world");
    assert_eq!(row.file, None, "content is 'row', not 'file'");
    assert_eq!(row.version, version);
    assert!(!row.forked);
    assert_eq!(repo.heads().unwrap(), vec![version]);
}

/// §9.2 case 3, `put, put and get`: the second put wins.
#[test]
fn put_put_and_get() {
    let repo = repo();
    let first = repo.put("d", "hello", "world").unwrap();
    let second = repo.put("d", "hello", "verden").unwrap();
    assert_ne!(first, second);
    let row = repo.get("d", "hello").unwrap().unwrap();
    assert_eq!(row.value, b"verden");
    assert_eq!(row.version, second);
    // The second write continues the first: one head, linked to the first.
    assert_eq!(repo.heads().unwrap(), vec![second.clone()]);
    assert_eq!(repo.graph().get(&second).unwrap().links, vec![first]);
}

/// §9.2 case 4, `put and del`. Fixed semantics: the original's `get` fails with a NotFound
/// error after the delete; strata's `get` returns `Ok(None)` for a deleted (or never
/// written) row. The delete is a tombstone: history keeps both versions (D6: the original
/// crashed formatting a delete with the utf-8/json codec).
#[test]
fn put_and_del() {
    let repo = repo();
    let put = repo.put("d", "hello", "world").unwrap();
    let del = repo.delete("d", "hello").unwrap();
    assert_eq!(repo.get("d", "hello").unwrap(), None);
    assert_eq!(repo.get("d", "never-written").unwrap(), None);
    // The old version still reads the row.
    assert_eq!(
        repo.at(&put)
            .unwrap()
            .get("d", "hello")
            .unwrap()
            .unwrap()
            .value,
        b"world"
    );
    assert_eq!(repo.at(&del).unwrap().get("d", "hello").unwrap(), None);
    let history = repo.history("d", "hello").unwrap();
    let summary: Vec<(&str, bool, &[u8])> = history
        .iter()
        .map(|v: &RowVersion| (v.version.as_str(), v.deleted, v.value.as_slice()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (del.as_str(), true, &b""[..]),
            (put.as_str(), false, &b"world"[..])
        ]
    );
    // Deleting a row that never existed is refused and writes nothing; a transaction's
    // delete of it is accepted (a tombstone) and reads as absent.
    let changes = repo.graph().change_count();
    assert!(matches!(
        repo.delete("d", "ghost"),
        Err(strata::Error::RowNotFound { dataset, key }) if dataset == b"d" && key == b"ghost"
    ));
    assert_eq!(repo.graph().change_count(), changes);
    repo.transaction().delete("d", "ghost").commit().unwrap();
    assert_eq!(repo.get("d", "ghost").unwrap(), None);
    assert!(repo.history("d", "ghost").unwrap()[0].deleted);
    // forks of a deleted row: the tombstone, flagged.
    let forks = repo.forks("d", "hello").unwrap();
    assert_eq!(forks.len(), 1);
    assert!(forks[0].deleted);
    // Putting it back works.
    repo.put("d", "hello", "again").unwrap();
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("again"));
}

/// §9.2 case 5, `batch and get`: a batch of two puts is one commit; both rows read back.
#[test]
fn batch_and_get() {
    let repo = repo();
    let mut tx = repo.transaction();
    tx.put("d", "hello", "world").put("d", "hej", "verden");
    let version = tx.commit().unwrap();
    assert_eq!(value(&repo, "d", "hello").as_deref(), Some("world"));
    assert_eq!(value(&repo, "d", "hej").as_deref(), Some("verden"));
    for key in ["hello", "hej"] {
        assert_eq!(repo.get("d", key).unwrap().unwrap().version, version);
    }
    let commits: Vec<_> = repo.changes(0).map(|c| c.unwrap()).collect();
    assert_eq!(commits.len(), 1, "one batch is one commit");
    let commit = commits[0].commit.as_ref().unwrap();
    assert_eq!((commit.puts, commit.deletes, commit.files), (2, 0, 0));
    // An empty transaction writes nothing.
    assert!(matches!(
        repo.transaction().commit(),
        Err(strata::Error::InvalidArgument(_))
    ));
    assert_eq!(repo.graph().change_count(), 1);
}

/// D14: a file row's content lives only in the content-addressed blob store. No path is
/// derived from the row key (the original wrote a working copy to `<dir>/<row key>`, so
/// `../x` escaped the folder).
#[test]
fn file_rows_keep_content_in_the_blob_store() {
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let repo = Repository::init(&project).unwrap();
    let data = b"file content that must not land at a path named by the key".to_vec();
    let absolute = outer.path().join("absolute").to_str().unwrap().to_string();
    for key in ["../escape.txt", absolute.as_str(), "sub/dir/file", "plain"] {
        repo.put_file("files", key, &mut data.as_slice()).unwrap();
        let row = repo.get("files", key).unwrap().unwrap();
        let file = row.file.clone().expect("a file row");
        assert!(row.value.is_empty());
        assert_eq!(file.size, data.len() as u64);
        // The blob is addressed by the plain SHA-256 of its content.
        use sha2::Digest;
        assert_eq!(file.hash, hex::encode(sha2::Sha256::digest(&data)));
        assert!(repo.has_blob(&file.hash).unwrap());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut repo.open_file("files", key).unwrap(), &mut back).unwrap();
        assert_eq!(back, data);
    }
    // Nothing was written outside the storage folder: not next to the project, not in it.
    assert!(!outer.path().join("escape.txt").exists());
    let entries: Vec<_> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from(".strata")]);
    let outer_entries: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outer_entries, vec![std::ffi::OsString::from("project")]);
    // A row that is not a file cannot be opened as one; a missing one is RowNotFound.
    repo.put("files", "not-a-file", "bytes").unwrap();
    assert!(matches!(
        repo.open_file("files", "not-a-file"),
        Err(strata::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        repo.open_file("files", "missing"),
        Err(strata::Error::RowNotFound { .. })
    ));
    // Status counts live files apart from rows.
    let status = repo.status().unwrap();
    assert_eq!((status.rows, status.files), (1, 4));
}
