//! Tests of the storage layer, `strata::kv`.
//!
//! Two kinds of test live here:
//!
//! * regressions for rusty-leveldb 4.0.2 bugs that `Kv` works around. Each builds the
//!   failing situation with the raw `rusty_leveldb::DB`, asserts the raw engine really does
//!   give the wrong answer (so the test proves the situation is real), then opens the same
//!   directory with `Kv` and asserts the right answer;
//! * model tests: random operations applied both to a `Kv` and to a `BTreeMap`, compared
//!   through every read `Kv` offers;
//! * what opening, closing and pinning leave on disk (logs, tables).
//!
//! The lock and crash tests re-execute this test binary as a child process; the child side
//! is an `#[ignore]`d test that does nothing unless its environment variable is set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusty_leveldb::compressor::{CompressorId, SnappyCompressor};
use rusty_leveldb::{BloomPolicy, DB, FilterPolicy, LdbIterator, Options, WriteBatch};
use strata::internals::kv::{Batch, Kv, prefix_end};
use strata::{Durability, Error};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Every entry of `kv`, by a forward scan.
fn kv_entries(kv: &mut Kv) -> Entries {
    kv.scan(&[], &[])
        .expect("scan")
        .collect::<strata::Result<_>>()
        .expect("scan")
}

fn model_entries(model: &Model) -> Entries {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The model's answer to `Kv::scan(start, end)`: `start <= key < end`, empty `end` = no end.
fn model_range(model: &Model, start: &[u8], end: &[u8]) -> Entries {
    if !end.is_empty() && start >= end {
        return Vec::new();
    }
    let upper = if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end)
    };
    model
        .range::<[u8], _>((Bound::Included(start), upper))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn model_prefix(model: &Model, prefix: &[u8]) -> Entries {
    model
        .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Options like the ones `Kv` uses (snappy, default Bloom filter), for writing fixtures with
/// the raw engine. `reuse_logs = false` makes every reopen turn the log into a level-0 table,
/// which is how the fixtures place data in tables of their choosing.
fn raw_options() -> Options {
    Options {
        compressor: SnappyCompressor::ID,
        create_if_missing: true,
        reuse_logs: false,
        ..Options::default()
    }
}

fn raw_open(dir: &Path, opt: Options) -> DB {
    DB::open(dir, opt).expect("raw DB::open")
}

/// Every entry of a raw database, by a forward scan (which is correct in rusty-leveldb).
fn raw_entries(db: &mut DB) -> Entries {
    let mut it = db.new_iter().expect("new_iter");
    it.seek_to_first();
    let mut out = Vec::new();
    while it.valid() {
        let (k, v) = it.current().expect("valid iterator has an entry");
        out.push((k.to_vec(), v.to_vec()));
        it.advance();
    }
    out
}

/// Names of the table files in `dir`, sorted.
fn table_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".ldb") || n.ends_with(".sst"))
        .collect();
    names.sort();
    names
}

/// A filter policy that stores no filter, so every table lookup reads the data block. C++
/// LevelDB (and so `leveldown`, which dat-core used) writes tables without any filter by
/// default; this makes rusty-leveldb write tables that behave like those.
struct NoFilter;

impl FilterPolicy for NoFilter {
    fn name(&self) -> &'static str {
        "strata.test.NoFilter"
    }
    fn create_filter(&self, _keys: &[u8], _key_offsets: &[usize]) -> Vec<u8> {
        // Not empty: rusty-leveldb asserts that every filter has at least one byte.
        vec![0]
    }
    fn key_may_match(&self, _key: &[u8], _filter: &[u8]) -> bool {
        true
    }
}

/// Kills the child process when dropped, so a failing assertion never leaves one running.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command that re-runs this test binary, running only the ignored test `test_name`.
fn child_command(test_name: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test_name, "--ignored", "--nocapture"]);
    cmd
}

// ---------------------------------------------------------------------------------------
// 1. DB::get misses live keys (rusty-leveldb issue #58)
// ---------------------------------------------------------------------------------------

const TOMBSTONES: usize = 100;

fn tombstone_key(i: usize) -> Vec<u8> {
    format!("t/{i:03}").into_bytes()
}

fn gap_key(i: usize, n: usize) -> Vec<u8> {
    format!("t/{i:03}/{n:05}").into_bytes()
}

fn gap_value(key: &[u8]) -> Vec<u8> {
    let mut v = b"value of ".to_vec();
    v.extend_from_slice(key);
    v
}

/// Writes, with the raw engine, two level-0 tables into `dir`:
///
/// * the older one holds live values for `t/000`..`t/099` and for every key in `gap_keys`
///   (each `t/NNN/xxxxx`, so it sorts between `t/NNN` and `t/NNN+1`);
/// * the newer one holds only tombstones, deleting `t/000`..`t/099`.
///
/// A lookup of a gap key in the newer table lands on the next entry, the tombstone of a
/// *different*, larger key, and rusty-leveldb's `Version::get` stops there with `None`.
/// Returns the model of the live data.
fn write_tombstone_fixture(dir: &Path, opt: impl Fn() -> Options, gap_keys: &[Vec<u8>]) -> Model {
    let mut model = Model::new();
    {
        let mut db = raw_open(dir, opt());
        let mut wb = WriteBatch::default();
        for i in 0..TOMBSTONES {
            wb.put(&tombstone_key(i), b"soon deleted");
        }
        for k in gap_keys {
            wb.put(k, &gap_value(k));
            model.insert(k.clone(), gap_value(k));
        }
        db.write(wb, true).expect("write");
        db.close().expect("close");
    }
    {
        // Reopening turns the log into the older level-0 table.
        let mut db = raw_open(dir, opt());
        let mut wb = WriteBatch::default();
        for i in 0..TOMBSTONES {
            wb.delete(&tombstone_key(i));
        }
        db.write(wb, true).expect("write");
        db.close().expect("close");
    }
    // The next open turns the tombstones into the newer level-0 table.
    model
}

/// Checks the fixture with the raw engine: the scan shows every gap key, and returns the
/// gap keys that `DB::get` nevertheless reports as absent, and the fixture's table files.
fn raw_get_misses(dir: &Path, opt: Options, model: &Model) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut db = raw_open(dir, opt);
    let tables = table_files(dir);
    assert_eq!(tables.len(), 2, "fixture must be two tables");
    assert_eq!(
        raw_entries(&mut db),
        model_entries(model),
        "raw forward scan"
    );
    let mut misses = Vec::new();
    for (k, v) in model {
        match db.get(k) {
            Some(found) => assert_eq!(found.as_ref(), v.as_slice()),
            None => misses.push(k.clone()),
        }
    }
    db.close().expect("close");
    (misses, tables)
}

/// `Kv` reads the very same tables correctly.
fn assert_kv_reads_fixture(dir: &Path, model: &Model) {
    let mut kv = Kv::open(dir).expect("Kv::open");
    for (k, v) in model {
        assert_eq!(
            kv.get(k).unwrap().as_deref(),
            Some(v.as_slice()),
            "Kv::get {k:?}"
        );
        assert!(kv.contains(k).unwrap(), "Kv::contains {k:?}");
    }
    for i in 0..TOMBSTONES {
        assert_eq!(kv.get(&tombstone_key(i)).unwrap(), None);
        assert!(!kv.contains(&tombstone_key(i)).unwrap());
    }
    assert_eq!(kv_entries(&mut kv), model_entries(model));
    assert_eq!(
        kv.scan_prefix(b"t/")
            .unwrap()
            .collect::<strata::Result<Entries>>()
            .unwrap(),
        model_entries(model)
    );
    kv.close().expect("close");
}

/// With `Kv`'s own options (snappy, default 10-bit Bloom filter) the bug needs a Bloom
/// false positive. The filter is deterministic, so the fixture picks gap keys that are
/// false positives of the newer table's filter: the test recomputes that filter with the
/// public `BloomPolicy` (the table's only data block holds exactly the 100 tombstones, and
/// the table filters on user keys). Every such key is then unreadable through `DB::get`.
#[test]
fn db_get_bug_58_with_bloom_filter_kv_get_is_right() {
    let bloom = BloomPolicy::new(10);
    let mut user_keys = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..TOMBSTONES {
        offsets.push(user_keys.len());
        user_keys.extend_from_slice(&tombstone_key(i));
    }
    let filter = bloom.create_filter(&user_keys, &offsets);
    let mut gap_keys = Vec::new();
    'search: for i in 0..TOMBSTONES - 1 {
        for n in 0..2_000 {
            let k = gap_key(i, n);
            if bloom.key_may_match(&k, &filter) {
                gap_keys.push(k);
                if gap_keys.len() == 40 {
                    break 'search;
                }
            }
        }
    }
    assert_eq!(gap_keys.len(), 40, "not enough Bloom false positives found");

    let dir = tempfile::tempdir().unwrap();
    let model = write_tombstone_fixture(dir.path(), raw_options, &gap_keys);
    let (misses, tables) = raw_get_misses(dir.path(), raw_options(), &model);
    // Each of these keys is live (the scan above returned it), yet DB::get says None.
    println!(
        "raw DB::get missed {} of {} live keys",
        misses.len(),
        model.len()
    );
    assert_eq!(
        misses.len(),
        gap_keys.len(),
        "raw DB::get misses: {misses:?}"
    );
    // Kv reads the same tables, untouched by the raw reads.
    assert_eq!(table_files(dir.path()), tables);
    assert_kv_reads_fixture(dir.path(), &model);
}

/// The same bug on tables without a filter, like the ones C++ LevelDB writes by default:
/// every live key that sorts just before a newer tombstone is unreadable through `DB::get`.
#[test]
fn db_get_bug_58_without_filter_kv_get_is_right() {
    let opt = || {
        let mut o = raw_options();
        o.filter_policy = Rc::new(Box::new(NoFilter) as Box<dyn FilterPolicy>);
        o
    };
    let gap_keys: Vec<Vec<u8>> = (0..TOMBSTONES - 1)
        .flat_map(|i| (0..5).map(move |n| gap_key(i, n)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let model = write_tombstone_fixture(dir.path(), opt, &gap_keys);
    let (misses, tables) = raw_get_misses(dir.path(), opt(), &model);
    assert_eq!(
        misses.len(),
        gap_keys.len(),
        "raw DB::get misses: {misses:?}"
    );
    assert_eq!(table_files(dir.path()), tables);
    assert_kv_reads_fixture(dir.path(), &model);
}

// ---------------------------------------------------------------------------------------
// 2. Reverse iteration is wrong in rusty-leveldb; Kv only scans forward
// ---------------------------------------------------------------------------------------

fn seq_key(i: usize) -> Vec<u8> {
    format!("{i:032}").into_bytes()
}

fn seq_value(i: usize) -> Vec<u8> {
    let mut v = format!("{:050}", i.wrapping_mul(2_654_435_761)).into_bytes();
    v.extend_from_slice(&[b'v'; 50]);
    v
}

/// A sequential 100k fill, reopened: a reverse walk (`seek` to the last key, then `prev`)
/// stops early, at the boundary between the reused log (memtable) and the tables. `Kv`'s
/// forward scans over the same directory return every key.
#[test]
fn reverse_walk_stops_early_kv_forward_scan_is_complete() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let opt = || Options {
        compressor: SnappyCompressor::ID,
        ..Options::default()
    };
    {
        let mut db = raw_open(dir.path(), opt());
        for chunk in (0..N).collect::<Vec<_>>().chunks(1_000) {
            let mut wb = WriteBatch::default();
            for &i in chunk {
                wb.put(&seq_key(i), &seq_value(i));
            }
            db.write(wb, false).expect("write");
        }
        db.close().expect("close");
    }
    let walked = {
        let mut db = raw_open(dir.path(), opt());
        let mut it = db.new_iter().expect("new_iter");
        it.seek(&seq_key(N - 1));
        assert!(it.valid());
        let mut walked = Vec::new();
        loop {
            let (k, _) = it.current().expect("valid iterator has an entry");
            walked.push(k.to_vec());
            if !it.prev() || !it.valid() {
                break;
            }
        }
        drop(it);
        db.close().expect("close");
        walked
    };
    println!(
        "reverse walk from the last of {N} keys stopped after {}",
        walked.len()
    );
    let expected: Vec<Vec<u8>> = (0..N).rev().map(seq_key).collect();
    assert!(
        walked.len() < N,
        "rusty-leveldb's reverse walk is expected to stop early"
    );
    assert_eq!(
        walked[..],
        expected[..walked.len()],
        "the walk it did is right"
    );

    let mut kv = Kv::open(dir.path()).expect("Kv::open");
    let mut count = 0;
    for (i, (k, v)) in kv.scan(&[], &[]).unwrap().map(Result::unwrap).enumerate() {
        assert_eq!(k, seq_key(i));
        assert_eq!(v, seq_value(i));
        count += 1;
    }
    assert_eq!(count, N);
    // Around the place where the reverse walk stopped.
    let stop = N - walked.len();
    let lo = stop.saturating_sub(50);
    let hi = (stop + 50).min(N);
    let got: Vec<Vec<u8>> = kv
        .scan(&seq_key(lo), &seq_key(hi))
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect();
    assert_eq!(got, (lo..hi).map(seq_key).collect::<Vec<_>>());
    kv.close().unwrap();
}

fn rev_key(i: u32) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

/// Random puts, overwrites and deletes spread over the memtable and many tables (64 KiB
/// write buffer): `seek(t)` then `prev()` returns deleted, stale or wrong entries for some
/// targets. `Kv`'s forward reads of the same directory match the model exactly.
///
/// The seed is fixed; it was checked to produce wrong `prev()` answers with rusty-leveldb
/// 4.0.2 (the test asserts it does).
#[test]
fn prev_returns_wrong_entries_kv_forward_scans_match_model() {
    const SEED: u64 = 0x5eed_0002;
    const KEYS: u32 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let opt = || Options {
        compressor: SnappyCompressor::ID,
        write_buffer_size: 64 << 10,
        ..Options::default()
    };
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut model = Model::new();
    let mut db = raw_open(dir.path(), opt());
    for round in 0..300 {
        let mut wb = WriteBatch::default();
        for _ in 0..100 {
            let k = rev_key(rng.random_range(0..KEYS));
            if rng.random_range(0..10) < 3 {
                wb.delete(&k);
                model.remove(&k);
            } else {
                let v = format!("{round}-{:090}", rng.random::<u64>()).into_bytes();
                wb.put(&k, &v);
                model.insert(k, v);
            }
        }
        db.write(wb, false).expect("write");
    }
    assert_eq!(
        raw_entries(&mut db),
        model_entries(&model),
        "raw forward scan"
    );

    let mut it = db.new_iter().expect("new_iter");
    let mut checked = 0;
    let mut wrong = 0;
    for _ in 0..3_000 {
        let t = rev_key(rng.random_range(0..KEYS));
        it.seek(&t);
        if !it.valid() {
            continue;
        }
        let (at, _) = it.current().unwrap();
        let at = at.to_vec();
        let expected = model
            .range::<[u8], _>((Bound::Unbounded, Bound::Excluded(at.as_slice())))
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone()));
        it.prev();
        let got = if it.valid() {
            it.current().map(|(k, v)| (k.to_vec(), v.to_vec()))
        } else {
            None
        };
        checked += 1;
        if got != expected {
            wrong += 1;
        }
    }
    drop(it);
    db.close().expect("close");
    println!("seek+prev: {wrong} wrong answers out of {checked}");
    assert!(checked > 2_000);
    assert!(
        wrong > 0,
        "rusty-leveldb's prev() was expected to give wrong answers for seed {SEED:#x}"
    );

    let mut kv = Kv::open(dir.path()).expect("Kv::open");
    assert_eq!(kv_entries(&mut kv), model_entries(&model));
    for _ in 0..200 {
        let a = rev_key(rng.random_range(0..KEYS));
        let b = rev_key(rng.random_range(0..KEYS));
        let (start, end) = if a <= b { (a, b) } else { (b, a) };
        let got: Entries = kv
            .scan(&start, &end)
            .unwrap()
            .collect::<strata::Result<_>>()
            .unwrap();
        assert_eq!(got, model_range(&model, &start, &end));
        assert_eq!(kv.get(&start).unwrap(), model.get(&start).cloned());
    }
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. A fresh batch per write
// ---------------------------------------------------------------------------------------

fn small_key(rng: &mut StdRng) -> Vec<u8> {
    vec![b'k', rng.random_range(0..64u8)]
}

fn check_fresh_batches(kv: &mut Kv, seed: u64, writes: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::new();
    let mut ops_total = 0;
    for w in 0..writes {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        let mut touched: Vec<Vec<u8>> = Vec::new();
        let n = rng.random_range(1..=12);
        for op in 0..n {
            let k = if op > 0 && rng.random_bool(0.3) {
                // The same key again inside this batch: the later operation wins.
                touched[rng.random_range(0..touched.len())].clone()
            } else {
                small_key(&mut rng)
            };
            if rng.random_bool(0.4) {
                batch.delete(&k);
                model.remove(&k);
            } else {
                let v = format!("w{w}-op{op}").into_bytes();
                batch.put(&k, &v);
                model.insert(k.clone(), v);
            }
            touched.push(k);
        }
        assert_eq!(batch.len(), n);
        ops_total += n;
        kv.write(batch, Durability::Flushed).expect("write");
        for k in &touched {
            assert_eq!(
                kv.get(k).unwrap(),
                model.get(k).cloned(),
                "write {w}, key {k:?}"
            );
        }
        if w % 50 == 0 {
            assert_eq!(kv_entries(kv), model_entries(&model), "after write {w}");
        }
    }
    // An empty batch is accepted and changes nothing.
    kv.write(Batch::default(), Durability::Flushed).unwrap();
    assert_eq!(kv_entries(kv), model_entries(&model));
    assert!(ops_total > writes);
}

#[test]
fn consecutive_fresh_batches_match_model_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    check_fresh_batches(&mut kv, 3, 3_000);
    let expected = kv_entries(&mut kv);
    kv.close().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(kv_entries(&mut kv), expected, "after reopen");
}

#[test]
fn consecutive_fresh_batches_match_model_in_memory() {
    let mut kv = Kv::in_memory().unwrap();
    check_fresh_batches(&mut kv, 4, 2_000);
}

// ---------------------------------------------------------------------------------------
// 4. The model test
// ---------------------------------------------------------------------------------------

const ALPHABET: [u8; 5] = [0x00, 0x01, b'a', 0xfe, 0xff];

/// Which keys a model test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeySpace {
    /// Keys with 0x00 and 0xff anywhere but at the end, no empty key: never a pair `k`,
    /// `k + [0x00]`. Avoids the two rusty-leveldb table-builder panics (see
    /// `empty_key_at_end_of_block_survives_memtable_flush` and
    /// `key_and_its_nul_successor_survive_compaction`).
    NoEmptyOrNulEnding,
    /// Every byte string, including the empty key and keys ending in 0x00.
    Full,
}

/// A key from a small space (about 800 keys): 1 to 4 bytes over an alphabet with 0x00 and
/// 0xff, a few long keys at both ends of the order and, in the full key space, the empty
/// key.
fn model_key(rng: &mut StdRng, space: KeySpace) -> Vec<u8> {
    let full = space == KeySpace::Full;
    match rng.random_range(0..200) {
        0 if full => Vec::new(),
        0 => vec![0x00, 0xff],
        1 => vec![0xff; 70],
        2 if full => vec![0x00; 70],
        2 => {
            let mut k = vec![0x00; 69];
            k.push(0x01);
            k
        }
        3 => vec![0xff; 64],
        4 => {
            let mut k = vec![0xff; 64];
            k.push(if full { 0x00 } else { 0x01 });
            k
        }
        _ => {
            let len = rng.random_range(1..=4);
            let mut k: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect();
            if !full && k[len - 1] == 0x00 {
                k[len - 1] = 0x01;
            }
            k
        }
    }
}

/// Mostly small values, sometimes ones larger than a 4 KiB table block.
fn model_value(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.random_range(0..100) {
        0..=2 => 0,
        3..=91 => rng.random_range(1..32),
        92..=98 => rng.random_range(100..1_500),
        _ => rng.random_range(4_100..9_000),
    };
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Keys of the "flood" range, after every model key, never ending in 0x00.
fn flood_key(n: u8) -> Vec<u8> {
    let mut k = vec![0xff; 71];
    k.push(n + 1);
    k
}

/// Writes 1 MiB values under flood keys until the memtable has been written out as a table
/// (a new table file appears in `dir`), then deletes them all. Whatever the write buffer
/// size, this leaves a fresh level-0 table overlapping older tables, and a run of hidden
/// entries for reads to skip. Returns the number of values written.
fn flood_until_flush(kv: &mut Kv, dir: &Path) -> u8 {
    let before = table_files(dir);
    let mut written = 0u8;
    while table_files(dir) == before {
        assert!(written < 250, "no memtable flush after {written} MiB");
        let mut batch = Batch::default();
        batch.put(&flood_key(written), &vec![written; 1 << 20]);
        kv.write(batch, Durability::Flushed).unwrap();
        written += 1;
    }
    let mut batch = Batch::default();
    for n in 0..written {
        batch.delete(&flood_key(n));
    }
    kv.write(batch, Durability::Flushed).unwrap();
    written
}

/// A key present in the model (if any), picked near a random key.
fn present_key(rng: &mut StdRng, model: &Model, space: KeySpace) -> Option<Vec<u8>> {
    let probe = model_key(rng, space);
    model
        .range(probe..)
        .next()
        .or_else(|| model.iter().next())
        .map(|(k, _)| k.clone())
}

/// A key absent from the model, if one is found in a few tries.
fn absent_key(rng: &mut StdRng, model: &Model, space: KeySpace) -> Option<Vec<u8>> {
    (0..20)
        .map(|_| model_key(rng, space))
        .find(|k| !model.contains_key(k))
}

#[derive(Default, Debug)]
struct ModelStats {
    ops: usize,
    puts: usize,
    deletes: usize,
    batches: usize,
    multi_op_batches: usize,
    synced_writes: usize,
    reopens: usize,
    compactions: usize,
    floods: usize,
    present_gets: usize,
    absent_gets: usize,
    range_scans: usize,
    prefix_scans: usize,
    seek_jumps: usize,
    full_compares: usize,
    max_model_len: usize,
}

/// Compares every read of `kv` with the model on a random sample.
fn check_reads(
    kv: &mut Kv,
    model: &Model,
    rng: &mut StdRng,
    space: KeySpace,
    stats: &mut ModelStats,
) {
    for _ in 0..30 {
        if let Some(k) = present_key(rng, model, space) {
            assert_eq!(kv.get(&k).unwrap().as_ref(), model.get(&k), "get {k:?}");
            assert!(kv.contains(&k).unwrap(), "contains {k:?}");
            stats.present_gets += 1;
        }
        if let Some(k) = absent_key(rng, model, space) {
            assert_eq!(kv.get(&k).unwrap(), None, "get absent {k:?}");
            assert!(!kv.contains(&k).unwrap(), "contains absent {k:?}");
            stats.absent_gets += 1;
        }
    }
    for _ in 0..5 {
        let start = model_key(rng, space);
        let end = if rng.random_bool(0.2) {
            Vec::new()
        } else {
            model_key(rng, space)
        };
        let got: Entries = kv
            .scan(&start, &end)
            .unwrap()
            .collect::<strata::Result<_>>()
            .unwrap();
        assert_eq!(
            got,
            model_range(model, &start, &end),
            "scan {start:?}..{end:?}"
        );
        stats.range_scans += 1;
    }
    for _ in 0..4 {
        let mut prefix = model_key(rng, space);
        let len = if rng.random_bool(0.1) {
            0
        } else {
            rng.random_range(1..=2)
        };
        prefix.truncate(len);
        let got: Entries = kv
            .scan_prefix(&prefix)
            .unwrap()
            .collect::<strata::Result<_>>()
            .unwrap();
        assert_eq!(got, model_prefix(model, &prefix), "scan_prefix {prefix:?}");
        stats.prefix_scans += 1;
    }
    for _ in 0..4 {
        // A scan that jumps forward with `seek` a few times.
        let start = model_key(rng, space);
        let end = if rng.random_bool(0.3) {
            Vec::new()
        } else {
            model_key(rng, space)
        };
        let mut expected = model_range(model, &start, &end).into_iter();
        let mut scan = kv.scan(&start, &end).unwrap();
        // The least key the scan may return next.
        let mut floor = start.clone();
        for _ in 0..4 {
            for _ in 0..rng.random_range(0..4) {
                let got = scan.next().transpose().unwrap();
                assert_eq!(got, expected.next(), "scan {start:?}..{end:?} before seek");
                if let Some((mut k, _)) = got {
                    k.push(0x00);
                    floor = k;
                }
            }
            let target = model_key(rng, space);
            if target < floor {
                // Only forward jumps here (see `scan_seek_never_moves_backwards`).
                continue;
            }
            scan.seek(&target);
            expected = model_range(model, &target, &end).into_iter();
            floor = target;
            stats.seek_jumps += 1;
        }
        let rest: Entries = scan.collect::<strata::Result<_>>().unwrap();
        assert_eq!(
            rest,
            expected.collect::<Entries>(),
            "scan {start:?}..{end:?} after seeks"
        );
    }
}

/// Applies `total_ops` random operations to a `Kv` (on disk in `dir`, reopened now and then,
/// or in memory) and to a model, comparing them after every block of operations.
fn run_model(dir: Option<&Path>, seed: u64, total_ops: usize, space: KeySpace) -> ModelStats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kv = match dir {
        Some(d) => Kv::open(d).unwrap(),
        None => Kv::in_memory().unwrap(),
    };
    let mut model = Model::new();
    let mut stats = ModelStats::default();
    let mut next_check = 0;
    let mut blocks = 0usize;
    let mut next_flood = 25_000;
    while stats.ops < total_ops {
        let choice = rng.random_range(0..1_000);
        match choice {
            0..=1 if dir.is_some() => {
                kv.close().unwrap();
                kv = Kv::open(dir.unwrap()).unwrap();
                stats.reopens += 1;
                stats.ops += 1;
                assert_eq!(kv_entries(&mut kv), model_entries(&model), "after reopen");
                stats.full_compares += 1;
            }
            2..=6 => {
                kv.compact().unwrap();
                stats.compactions += 1;
                stats.ops += 1;
            }
            _ => {
                let mut batch = Batch::default();
                let mut touched: Vec<Vec<u8>> = Vec::new();
                let n = if choice < 650 {
                    1
                } else {
                    rng.random_range(2..=24)
                };
                for _ in 0..n {
                    let delete = rng.random_bool(0.4);
                    // Deletes mostly hit present keys, puts mostly add keys (about a third
                    // of the key space is present at any time).
                    let k = if !touched.is_empty() && rng.random_bool(0.2) {
                        touched[rng.random_range(0..touched.len())].clone()
                    } else if rng.random_bool(if delete { 0.5 } else { 0.3 }) {
                        present_key(&mut rng, &model, space)
                            .unwrap_or_else(|| model_key(&mut rng, space))
                    } else {
                        model_key(&mut rng, space)
                    };
                    if delete {
                        batch.delete(&k);
                        model.remove(&k);
                        stats.deletes += 1;
                    } else {
                        let v = model_value(&mut rng);
                        batch.put(&k, &v);
                        model.insert(k.clone(), v);
                        stats.puts += 1;
                    }
                    touched.push(k);
                }
                let durability = if rng.random_range(0..500) == 0 {
                    stats.synced_writes += 1;
                    Durability::Synced
                } else {
                    Durability::Flushed
                };
                kv.write(batch, durability).unwrap();
                stats.ops += n;
                stats.batches += 1;
                if n > 1 {
                    stats.multi_op_batches += 1;
                }
                if rng.random_bool(0.1) {
                    // Read-your-writes right after the write.
                    let k = &touched[rng.random_range(0..touched.len())];
                    assert_eq!(kv.get(k).unwrap().as_ref(), model.get(k), "get after write");
                }
            }
        }
        if let Some(d) = dir
            && stats.ops >= next_flood
        {
            next_flood += 25_000;
            let written = flood_until_flush(&mut kv, d);
            stats.floods += 1;
            stats.ops += usize::from(written) + 1;
        }
        stats.max_model_len = stats.max_model_len.max(model.len());
        if stats.ops >= next_check {
            next_check = stats.ops + 1_500;
            check_reads(&mut kv, &model, &mut rng, space, &mut stats);
            blocks += 1;
            if blocks.is_multiple_of(4) {
                assert_eq!(kv_entries(&mut kv), model_entries(&model), "full compare");
                stats.full_compares += 1;
            }
        }
    }
    assert_eq!(kv_entries(&mut kv), model_entries(&model), "final compare");
    check_reads(&mut kv, &model, &mut rng, space, &mut stats);
    if let Some(d) = dir {
        kv.close().unwrap();
        let mut kv = Kv::open(d).unwrap();
        assert_eq!(
            kv_entries(&mut kv),
            model_entries(&model),
            "after final reopen"
        );
        check_reads(&mut kv, &model, &mut rng, space, &mut stats);
    }
    stats
}

fn check_model_stats(stats: &ModelStats, total_ops: usize, on_disk: bool) {
    assert!(stats.ops >= total_ops, "{stats:?}");
    assert!(stats.compactions >= total_ops / 5_000, "{stats:?}");
    assert!(stats.multi_op_batches >= total_ops / 100, "{stats:?}");
    assert!(stats.deletes >= total_ops / 4, "{stats:?}");
    assert!(stats.present_gets >= total_ops / 100, "{stats:?}");
    assert!(stats.absent_gets >= total_ops / 100, "{stats:?}");
    assert!(stats.seek_jumps >= total_ops / 400, "{stats:?}");
    assert!(stats.max_model_len >= 100, "{stats:?}");
    if on_disk {
        assert!(stats.reopens >= total_ops / 10_000, "{stats:?}");
        assert!(stats.floods >= total_ops / 25_000 - 1, "{stats:?}");
        assert!(stats.synced_writes >= total_ops / 10_000, "{stats:?}");
    }
}

/// 100,000 random puts, deletes, overwrites and multi-op batches, with reopens, compactions
/// and memtable flushes, compared with a `BTreeMap` through every read.
#[test]
fn model_test_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stats = run_model(
        Some(dir.path()),
        0x5747_a7a0,
        100_000,
        KeySpace::NoEmptyOrNulEnding,
    );
    println!("model_test_on_disk: {stats:?} in {:?}", started.elapsed());
    check_model_stats(&stats, 100_000, true);
}

/// The same over every byte string, including the empty key and pairs `k`, `k + [0x00]`.
#[test]
fn model_test_on_disk_full_key_space() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stats = run_model(Some(dir.path()), 0x5747_a7a1, 100_000, KeySpace::Full);
    println!(
        "model_test_on_disk_full_key_space: {stats:?} in {:?}",
        started.elapsed()
    );
    check_model_stats(&stats, 100_000, true);
}

// ---------------------------------------------------------------------------------------
// 5. Locking
// ---------------------------------------------------------------------------------------

const LOCK_DIR_ENV: &str = "STRATA_KV_TEST_LOCK_DIR";
const LOCKED_MARKER: &str = "STRATA-CHILD: locked";
const OPENED_MARKER: &str = "STRATA-CHILD: opened";
const CHILD_LOCKED_EXIT: i32 = 42;
const CHILD_OPENED_EXIT: i32 = 43;
const CHILD_ERROR_EXIT: i32 = 44;

#[test]
fn second_open_in_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Kv::open(dir.path()).unwrap();
    let mut batch = Batch::default();
    batch.put(b"k", b"v");
    first.write(batch, Durability::Flushed).unwrap();

    let err = Kv::open(dir.path()).err().expect("second open must fail");
    assert!(
        matches!(&err, Error::Locked { path, .. } if path == dir.path()),
        "unexpected error: {err:?}"
    );
    assert!(err.to_string().contains("locked"), "{err}");
    // The failed open did not disturb the first handle.
    assert_eq!(first.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));

    drop(first);
    let mut second = Kv::open(dir.path()).expect("open after drop");
    assert_eq!(second.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    let err = Kv::open(dir.path()).err().expect("locked again");
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    second.close().unwrap();
    let third = Kv::open(dir.path()).expect("open after close");
    third.close().unwrap();
}

/// Child side of `second_open_in_another_process_is_locked`.
#[test]
#[ignore = "child process of second_open_in_another_process_is_locked"]
fn child_lock_probe() {
    let Some(dir) = std::env::var_os(LOCK_DIR_ENV) else {
        return;
    };
    let code = match Kv::open(Path::new(&dir)) {
        Err(Error::Locked { .. }) => {
            println!("{LOCKED_MARKER}");
            CHILD_LOCKED_EXIT
        }
        Ok(kv) => {
            println!("{OPENED_MARKER}");
            kv.close().unwrap();
            CHILD_OPENED_EXIT
        }
        Err(e) => {
            println!("STRATA-CHILD: error {e}");
            CHILD_ERROR_EXIT
        }
    };
    std::io::stdout().flush().unwrap();
    std::process::exit(code);
}

fn run_lock_probe(dir: &Path) -> (Option<i32>, String) {
    let out = child_command("child_lock_probe")
        .env(LOCK_DIR_ENV, dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run child");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn second_open_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Kv::open(dir.path()).unwrap();
    let (code, stdout) = run_lock_probe(dir.path());
    assert_eq!(code, Some(CHILD_LOCKED_EXIT), "child stdout: {stdout}");
    assert!(stdout.lines().any(|l| l == LOCKED_MARKER), "{stdout}");

    kv.close().unwrap();
    let (code, stdout) = run_lock_probe(dir.path());
    assert_eq!(code, Some(CHILD_OPENED_EXIT), "child stdout: {stdout}");
    assert!(stdout.lines().any(|l| l == OPENED_MARKER), "{stdout}");
}

// ---------------------------------------------------------------------------------------
// 6. Durability and crashes
// ---------------------------------------------------------------------------------------

const CRASH_DIR_ENV: &str = "STRATA_KV_TEST_CRASH_DIR";
const CRASH_SYNCED_ENV: &str = "STRATA_KV_TEST_CRASH_SYNCED";
const CRASH_LARGE_ENV: &str = "STRATA_KV_TEST_CRASH_LARGE";
const CRASH_MAX_BATCHES: u64 = 20_000;

/// Batch sizes for the crash tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchSize {
    /// About 5 KB per batch.
    Small,
    /// About 10 KB per batch: a log record that often spans a 32 KiB log block boundary.
    Large,
}

/// The operations of crash-test batch `i`: new keys, deletes of half of the keys of batch
/// `i - 3`, an overwrite of one of 7 shared keys, and the `counter` key, which tells how
/// many batches the database holds.
fn crash_batch(i: u64, size: BatchSize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let (entries, value_len) = match size {
        BatchSize::Small => (8u64, 600),
        BatchSize::Large => (16, 600),
    };
    let mut ops = Vec::new();
    for j in 0..entries {
        let key = format!("b/{i:08}/{j:02}").into_bytes();
        let mut value = format!("batch {i} entry {j} ").into_bytes();
        value.resize(value_len, b'a' + ((i * 16 + j) % 26) as u8);
        ops.push((key, Some(value)));
    }
    if i >= 3 {
        for j in (1..entries).step_by(2) {
            ops.push((format!("b/{:08}/{j:02}", i - 3).into_bytes(), None));
        }
    }
    ops.push((
        format!("shared/{}", i % 7).into_bytes(),
        Some(i.to_string().into_bytes()),
    ));
    ops.push((b"counter".to_vec(), Some(i.to_be_bytes().to_vec())));
    ops
}

fn crash_batch_for_kv(i: u64, size: BatchSize) -> Batch {
    let mut batch = Batch::default();
    for (k, v) in crash_batch(i, size) {
        match v {
            Some(v) => batch.put(&k, &v),
            None => batch.delete(&k),
        }
    }
    batch
}

fn apply_crash_batch(model: &mut Model, i: u64, size: BatchSize) {
    for (k, v) in crash_batch(i, size) {
        match v {
            Some(v) => model.insert(k, v),
            None => model.remove(&k),
        };
    }
}

/// How many crash-test batches the database holds, by its `counter` key.
fn batches_present(kv: &mut Kv) -> u64 {
    match kv.get(b"counter").unwrap() {
        Some(v) => u64::from_be_bytes(v.as_slice().try_into().expect("8-byte counter")) + 1,
        None => 0,
    }
}

/// Child side of the `killed_writer_*` tests: continues the batch sequence where the
/// database stands, printing `ACK i` once batch `i` is written.
#[test]
#[ignore = "child process of the killed_writer_* tests"]
fn child_crash_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let durability = if std::env::var_os(CRASH_SYNCED_ENV).is_some() {
        Durability::Synced
    } else {
        Durability::Flushed
    };
    let size = if std::env::var_os(CRASH_LARGE_ENV).is_some() {
        BatchSize::Large
    } else {
        BatchSize::Small
    };
    let mut kv = Kv::open(Path::new(&dir)).unwrap();
    let first = batches_present(&mut kv);
    let mut out = std::io::stdout().lock();
    writeln!(out, "START {first}").unwrap();
    out.flush().unwrap();
    for i in first..first + CRASH_MAX_BATCHES {
        kv.write(crash_batch_for_kv(i, size), durability).unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "DONE").unwrap();
    out.flush().unwrap();
    std::process::exit(0);
}

/// One run of the crash writer.
struct CrashRound {
    synced: bool,
    /// Count acknowledgements only once a table file exists in the directory, so the kill
    /// lands after a memtable flush.
    after_table: bool,
    kill_after: u64,
}

/// Runs the crash writer on `dir` and kills it with SIGKILL once it has acknowledged
/// `round.kill_after` batches. Returns (first batch it wrote, last batch it acknowledged).
fn run_and_kill_writer(dir: &Path, size: BatchSize, round: &CrashRound) -> (u64, u64) {
    let mut cmd = child_command("child_crash_writer");
    cmd.env(CRASH_DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (var, set) in [
        (CRASH_SYNCED_ENV, round.synced),
        (CRASH_LARGE_ENV, size == BatchSize::Large),
    ] {
        if set {
            cmd.env(var, "1");
        } else {
            cmd.env_remove(var);
        }
    }
    let mut child = ChildGuard(cmd.spawn().expect("spawn child"));
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut first = None;
    let mut last_ack = None;
    let mut acks = 0;
    let mut counting = !round.after_table;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child stdout");
        if let Some(n) = line.strip_prefix("START ") {
            first = Some(n.parse::<u64>().unwrap());
        } else if let Some(n) = line.strip_prefix("ACK ") {
            let n: u64 = n.parse().unwrap();
            let expected = last_ack.map_or(first.expect("START before ACK"), |l| l + 1);
            assert_eq!(n, expected, "acks must be consecutive");
            last_ack = Some(n);
            counting = counting || !table_files(dir).is_empty();
            if counting {
                acks += 1;
            }
            if acks == round.kill_after {
                child.0.kill().expect("SIGKILL the child");
                break;
            }
        } else if line == "DONE" {
            panic!("the writer finished before it was killed");
        }
    }
    let status = child.0.wait().expect("wait for child");
    assert!(
        !status.success(),
        "the child must have been killed: {status:?}"
    );
    (
        first.expect("child started"),
        last_ack.expect("child acknowledged"),
    )
}

/// Runs the crash writer in `rounds`, each killed with SIGKILL mid-stream, on one directory
/// (each round recovering the previous crash) or each in a fresh directory. After each
/// kill: every acknowledged batch is there, and the database is exactly the state after
/// some whole number of batches (no batch partially applied, nothing else lost).
///
/// A SIGKILL can cut even a single `write(2)` at a page boundary, so the log can end in a
/// torn record; the writes that were acknowledged are whole records before it.
fn check_killed_writer(size: BatchSize, rounds: &[CrashRound], same_dir: bool) {
    let mut dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut applied = 0u64;
    for (n, round) in rounds.iter().enumerate() {
        if !same_dir && n > 0 {
            dir = tempfile::tempdir().unwrap();
            model.clear();
            applied = 0;
        }
        let (first, last_ack) = run_and_kill_writer(dir.path(), size, round);
        assert_eq!(
            first, applied,
            "round {n}: the child saw the recovered state"
        );

        let mut kv = Kv::open(dir.path()).expect("reopen after SIGKILL");
        let present = batches_present(&mut kv);
        assert!(
            present > last_ack,
            "round {n}: batch {last_ack} was acknowledged but only batches 0..{present} \
             are present (this round started at batch {first})"
        );
        while applied < present {
            apply_crash_batch(&mut model, applied, size);
            applied += 1;
        }
        assert_eq!(
            kv_entries(&mut kv),
            model_entries(&model),
            "round {n}: the database must be exactly the first {present} batches"
        );
        kv.close().unwrap();
    }
}

/// Three writers killed with SIGKILL mid-stream, each on a fresh directory: one killed
/// after a memtable flush, one writing `Synced`, one early. (One crash per directory: a
/// second session writing after a crash hits the bug shown by
/// `killed_writer_repeatedly_loses_no_acknowledged_batch`.)
#[test]
fn killed_writer_loses_no_acknowledged_batch() {
    let rounds = [
        CrashRound {
            synced: false,
            after_table: true,
            kill_after: 100,
        },
        CrashRound {
            synced: true,
            after_table: false,
            kill_after: 60,
        },
        CrashRound {
            synced: false,
            after_table: false,
            kill_after: 250,
        },
    ];
    check_killed_writer(BatchSize::Small, &rounds, false);
}

/// Ten writers killed one after the other on the same directory, each recovering the
/// previous crash and writing on. Fails intermittently (2 to 9 runs out of 10 here,
/// depending on load) with lost acknowledged batches, a batch made of parts of two records,
/// or a panic inside `Kv::open`, for the reason shown deterministically by
/// `write_after_recovering_a_torn_log_survives_reopen`. Passes 15 runs out of 15 with
/// `reuse_logs = false`.
#[test]
fn killed_writer_repeatedly_loses_no_acknowledged_batch() {
    let mut rounds = vec![CrashRound {
        synced: false,
        after_table: true,
        kill_after: 20,
    }];
    for n in 0..9 {
        rounds.push(CrashRound {
            synced: n % 2 == 0,
            after_table: false,
            kill_after: 20 + 7 * n,
        });
    }
    check_killed_writer(BatchSize::Large, &rounds, true);
}

/// Synced writes succeed, including around compactions and memtable flushes (which add and
/// remove table files that the sync must handle), and their data survives close and reopen.
#[test]
fn synced_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut kv = Kv::open(dir.path()).unwrap();
    let mut i = 0u64;
    for phase in 0..4 {
        for _ in 0..20 {
            apply_crash_batch(&mut model, i, BatchSize::Small);
            kv.write(crash_batch_for_kv(i, BatchSize::Small), Durability::Synced)
                .unwrap();
            i += 1;
        }
        match phase {
            0 => kv.compact().unwrap(),
            1 => {
                flood_until_flush(&mut kv, dir.path());
            }
            _ => {}
        }
    }
    assert!(!table_files(dir.path()).is_empty());
    assert_eq!(kv_entries(&mut kv), model_entries(&model));
    kv.close().unwrap();

    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(
        kv_entries(&mut kv),
        model_entries(&model),
        "after close and reopen"
    );
    // And after a drop without close.
    let mut batch = Batch::default();
    batch.put(b"last", b"synced");
    model.insert(b"last".to_vec(), b"synced".to_vec());
    kv.write(batch, Durability::Synced).unwrap();
    drop(kv);
    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(
        kv_entries(&mut kv),
        model_entries(&model),
        "after drop and reopen"
    );
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// 7. prefix_end, unbounded scans, exhausted scans
// ---------------------------------------------------------------------------------------

#[test]
fn prefix_end_edge_cases() {
    assert_eq!(prefix_end(b""), b"");
    assert_eq!(prefix_end(&[0xff]), b"");
    assert_eq!(prefix_end(&[0xff; 5]), b"");
    assert_eq!(prefix_end(b"ab"), b"ac");
    assert_eq!(prefix_end(&[0x00]), [0x01]);
    assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
    assert_eq!(prefix_end(&[b'a', 0xff, 0xff]), b"b");
    assert_eq!(prefix_end(&[0x01, 0xfe, 0xff]), [0x01, 0xff]);
    assert_eq!(prefix_end(&[0xfe]), [0xff]);
}

fn edge_keys() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        b"a".to_vec(),
        vec![b'a', 0x00],
        vec![b'a', 0xff],
        vec![b'a', 0xff, 0xff],
        b"b".to_vec(),
        vec![0xfe],
        vec![0xfe, 0xff],
        vec![0xff],
        vec![0xff, 0x00],
        vec![0xff, 0xff],
        vec![0xff; 70],
    ]
}

fn fill_edge_keys(kv: &mut Kv) -> Model {
    let mut model = Model::new();
    let mut batch = Batch::default();
    for (i, k) in edge_keys().into_iter().enumerate() {
        let v = format!("value {i}").into_bytes();
        batch.put(&k, &v);
        model.insert(k, v);
    }
    kv.write(batch, Durability::Flushed).unwrap();
    model
}

fn keys_of(entries: Entries) -> Vec<Vec<u8>> {
    entries.into_iter().map(|(k, _)| k).collect()
}

fn check_edge_scans(kv: &mut Kv, model: &Model) {
    // Prefix scans, including the empty prefix and all-0xff prefixes (no upper bound).
    for prefix in [
        &b""[..],
        &[0xff],
        &[0xff, 0xff],
        &[0xff, 0xff, 0xff],
        b"a",
        &[b'a', 0xff],
        &[0x00],
        &[0xfe],
        b"c",
    ] {
        let got: Entries = kv
            .scan_prefix(prefix)
            .unwrap()
            .collect::<strata::Result<_>>()
            .unwrap();
        assert_eq!(got, model_prefix(model, prefix), "scan_prefix {prefix:?}");
    }
    assert_eq!(
        keys_of(
            kv.scan_prefix(&[0xff])
                .unwrap()
                .collect::<strata::Result<_>>()
                .unwrap()
        ),
        vec![
            vec![0xff],
            vec![0xff, 0x00],
            vec![0xff, 0xff],
            vec![0xff; 70]
        ]
    );
    assert_eq!(kv.scan_prefix(b"").unwrap().count(), model.len());

    // An empty end runs to the last key.
    for start in edge_keys() {
        let got: Entries = kv
            .scan(&start, &[])
            .unwrap()
            .collect::<strata::Result<_>>()
            .unwrap();
        assert_eq!(got, model_range(model, &start, &[]), "scan {start:?}..");
        assert_eq!(got.last().map(|(k, _)| k.clone()), Some(vec![0xff; 70]));
    }
    // start >= end (non-empty end) is empty.
    assert_eq!(kv.scan(b"b", b"a").unwrap().count(), 0);
    assert_eq!(kv.scan(b"a", b"a").unwrap().count(), 0);
    // end is exclusive, start inclusive.
    assert_eq!(
        keys_of(
            kv.scan(b"a", b"b")
                .unwrap()
                .collect::<strata::Result<_>>()
                .unwrap()
        ),
        vec![
            b"a".to_vec(),
            vec![b'a', 0x00],
            vec![b'a', 0xff],
            vec![b'a', 0xff, 0xff]
        ]
    );
    // The empty key is a key like any other.
    assert_eq!(kv.get(b"").unwrap(), model.get(&b""[..]).cloned());
    assert_eq!(kv.scan(&[], &[0x00]).unwrap().count(), 1);
}

#[test]
fn edge_keys_and_unbounded_scans() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    let mut model = fill_edge_keys(&mut kv);
    check_edge_scans(&mut kv, &model);
    kv.compact().unwrap();
    check_edge_scans(&mut kv, &model);

    // Deleting the empty key: `get` of it must not return its successor, [0x00].
    let mut batch = Batch::default();
    batch.delete(b"");
    model.remove(&b""[..]);
    kv.write(batch, Durability::Flushed).unwrap();
    assert_eq!(kv.get(b"").unwrap(), None);
    assert!(!kv.contains(b"").unwrap());
    assert!(kv.contains(&[0x00]).unwrap());
    assert_eq!(kv.scan(&[], &[0x00]).unwrap().count(), 0);
    // A key past the last one.
    assert_eq!(kv.get(&[0xff; 71]).unwrap(), None);
    assert_eq!(kv.scan(&[0xff; 71], &[]).unwrap().count(), 0);

    kv.close().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(kv_entries(&mut kv), model_entries(&model));
}

/// The raw engine's iterator restarts at the first key when advanced after its end, which
/// is why `Scan` must remember that it ended.
#[test]
fn raw_iterator_restarts_after_exhaustion() {
    let mut db = DB::open("raw-restart", rusty_leveldb::in_memory()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"2").unwrap();
    let mut it = db.new_iter().unwrap();
    it.seek(b"b");
    assert!(it.valid());
    assert!(!it.advance(), "past the last key");
    assert!(it.advance(), "advancing again restarts");
    assert_eq!(it.current().map(|(k, _)| k.to_vec()), Some(b"a".to_vec()));
}

fn assert_scan_stays_exhausted(kv: &mut Kv, start: &[u8], end: &[u8], expected: usize) {
    let mut scan = kv.scan(start, end).unwrap();
    for n in 0..expected {
        assert!(scan.next().is_some(), "entry {n} of {start:?}..{end:?}");
    }
    for n in 0..5 {
        assert_eq!(
            scan.next().transpose().unwrap(),
            None,
            "call {n} after the end of {start:?}..{end:?}"
        );
    }
}

#[test]
fn exhausted_scan_keeps_returning_none() {
    let mut kv = Kv::in_memory().unwrap();
    let model = fill_edge_keys(&mut kv);
    let n = model.len();
    // Ended by running off the last key.
    assert_scan_stays_exhausted(&mut kv, &[], &[], n);
    assert_scan_stays_exhausted(&mut kv, &[0xff, 0xff], &[], 2);
    // Ended by the end bound.
    assert_scan_stays_exhausted(&mut kv, b"a", b"b", 4);
    // Started past the last key.
    assert_scan_stays_exhausted(&mut kv, &[0xff; 71], &[], 0);
    // Empty range.
    assert_scan_stays_exhausted(&mut kv, b"b", b"a", 0);
    // A prefix scan with no upper bound.
    let mut scan = kv.scan_prefix(&[0xff]).unwrap();
    assert_eq!(scan.by_ref().count(), 4);
    for _ in 0..5 {
        assert!(scan.next().is_none());
    }
    // A forward `seek` on an exhausted scan does not restart it either.
    scan.seek(&[0xff; 71]);
    assert!(scan.next().is_none());
    assert!(scan.next().is_none());
    // A scan ended by its end bound, then moved forward by `seek` within the range.
    let mut scan = kv.scan(&[], b"b").unwrap();
    assert_eq!(
        keys_of(
            scan.by_ref()
                .take(2)
                .collect::<strata::Result<_>>()
                .unwrap()
        ),
        [vec![], vec![0x00]]
    );
    scan.seek(&[b'a', 0x00]);
    assert_eq!(
        keys_of(scan.by_ref().collect::<strata::Result<_>>().unwrap()),
        [vec![b'a', 0x00], vec![b'a', 0xff], vec![b'a', 0xff, 0xff]]
    );
    assert!(scan.next().is_none());
    assert!(scan.next().is_none());
    // Seeking past the end bound yields nothing.
    let mut scan = kv.scan(b"a", b"b").unwrap();
    scan.seek(b"b");
    assert!(scan.next().is_none());
    assert!(scan.next().is_none());
    drop(scan);
    // The shared reader is still usable afterwards.
    assert_eq!(kv.get(b"a").unwrap(), model.get(&b"a"[..]).cloned());
    assert_eq!(kv_entries(&mut kv), model_entries(&model));
}

// ---------------------------------------------------------------------------------------
// 8. In memory
// ---------------------------------------------------------------------------------------

#[test]
fn model_test_in_memory() {
    let started = Instant::now();
    let stats = run_model(None, 0x11e_0001, 40_000, KeySpace::NoEmptyOrNulEnding);
    println!("model_test_in_memory: {stats:?} in {:?}", started.elapsed());
    check_model_stats(&stats, 40_000, false);
    assert_eq!(stats.reopens, 0);
}

#[test]
fn in_memory_databases_are_independent() {
    let mut a = Kv::in_memory().unwrap();
    let mut b = Kv::in_memory().unwrap();
    let mut batch = Batch::default();
    batch.put(b"only in a", b"1");
    a.write(batch, Durability::Synced).unwrap();
    assert_eq!(a.get(b"only in a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(b.get(b"only in a").unwrap(), None);
    assert_eq!(kv_entries(&mut b), Vec::new());
    a.compact().unwrap();
    assert_eq!(a.get(b"only in a").unwrap().as_deref(), Some(&b"1"[..]));
    a.close().unwrap();
    b.close().unwrap();
    // A new in-memory database starts empty.
    let mut c = Kv::in_memory().unwrap();
    assert_eq!(kv_entries(&mut c), Vec::new());
}

// ---------------------------------------------------------------------------------------
// Bugs found while writing these tests (ignored until src/kv.rs is fixed)
// ---------------------------------------------------------------------------------------

/// rusty-leveldb bug: when a table block is cut, `DefaultCmp::find_shortest_sep(a, b)`
/// computes `a.len() - 1` for the block's last user key `a`. If that key is the empty key
/// (the first key of a table, with a value larger than the 4 KiB block size) this underflows
/// and panics (`attempt to subtract with overflow` with overflow checks, an index out of
/// bounds without). It happens whenever the memtable is written out: here on the write
/// that fills the memtable, so a plain `Kv::write` panics; `Kv::compact` panics the same way.
/// The panic strikes again on every later flush, as the data is still in the log.
#[test]
fn empty_key_at_end_of_block_survives_memtable_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    let mut batch = Batch::default();
    batch.put(b"", &[7; 5_000]);
    batch.put(b"a", b"1");
    kv.write(batch, Durability::Flushed).unwrap();
    flood_until_flush(&mut kv, dir.path());
    kv.compact().unwrap();
    assert_eq!(kv.get(b"").unwrap(), Some(vec![7; 5_000]));
    assert_eq!(kv.get(b"a").unwrap(), Some(b"1".to_vec()));
    kv.close().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(
        kv_entries(&mut kv),
        vec![(vec![], vec![7; 5_000]), (b"a".to_vec(), b"1".to_vec())]
    );
}

/// rusty-leveldb bug: `DefaultCmp::find_shortest_sep(a, b)` falls back to `a + [0x00]`,
/// which is `b` itself when `b == a + [0x00]`, so the index entry of the block ending in `a`
/// is not below the next block's first entry. When that next block holds newer and older
/// versions of `b`, the index keys go out of order and the table builder's
/// `assert!(last_key < key)` panics (in release builds too): any flush or compaction of such
/// data fails.
#[test]
fn key_and_its_nul_successor_survive_compaction() {
    let mut kv = Kv::in_memory().unwrap();
    // Three writes, each value larger than a table block: k\0, then k, then k\0 again.
    for (key, fill) in [(&b"k\0"[..], 1u8), (b"k", 2), (b"k\0", 3)] {
        let mut batch = Batch::default();
        batch.put(key, &[fill; 5_000]);
        kv.write(batch, Durability::Flushed).unwrap();
    }
    kv.compact().unwrap();
    assert_eq!(
        kv_entries(&mut kv),
        vec![
            (b"k".to_vec(), vec![2; 5_000]),
            (b"k\0".to_vec(), vec![3; 5_000])
        ]
    );
}

/// `Scan::seek` is documented as "moves the scan forward to the first key >= key (never
/// backwards: a key below the current position is passed over by the next `next`)", and a
/// scan yields only `start <= key < end`. But `seek` repositions the engine's iterator
/// unconditionally: seeking below the current position yields entries again, and seeking
/// below `start` yields keys outside the range.
#[test]
fn scan_seek_never_moves_backwards() {
    let mut kv = Kv::in_memory().unwrap();
    let mut batch = Batch::default();
    for k in [b"a", b"b", b"c", b"d", b"e", b"f"] {
        batch.put(k, b"v");
    }
    kv.write(batch, Durability::Flushed).unwrap();

    let mut scan = kv.scan(b"b", b"f").unwrap();
    assert_eq!(
        keys_of(
            scan.by_ref()
                .take(3)
                .collect::<strata::Result<_>>()
                .unwrap()
        ),
        [b"b", b"c", b"d"]
    );
    scan.seek(b"c");
    // Found: c, d, e (c and d a second time).
    assert_eq!(
        keys_of(scan.collect::<strata::Result<_>>().unwrap()),
        [b"e"]
    );

    let mut scan = kv.scan(b"c", b"f").unwrap();
    scan.seek(b"a");
    // Found: a, b, c, d, e (a and b are below start).
    assert_eq!(
        keys_of(scan.collect::<strata::Result<_>>().unwrap()),
        [b"c", b"d", b"e"]
    );
}

/// Writes `a`, then a batch `b` with a `b_len`-byte value, closes, truncates the newest
/// log to `cut(len)` bytes (a crash that tore `b`'s record), reopens (recovering `a`),
/// writes `c` with `Durability::Synced`, closes and reopens again. Returns the entries then
/// present, with value lengths; panics if the last open panics.
fn torn_log_then_write(b_len: usize, cut: impl Fn(u64) -> u64) -> Vec<(Vec<u8>, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = Kv::open(dir.path()).unwrap();
    let mut batch = Batch::default();
    batch.put(b"a", b"before the crash");
    kv.write(batch, Durability::Synced).unwrap();
    let mut batch = Batch::default();
    batch.put(b"b", &vec![9; b_len]);
    kv.write(batch, Durability::Synced).unwrap();
    kv.close().unwrap();

    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let log = logs.last().expect("a log file");
    let len = std::fs::metadata(log).unwrap().len();
    assert!(len > b_len as u64);
    std::fs::OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(cut(len))
        .unwrap();

    let mut kv = Kv::open(dir.path()).unwrap();
    assert_eq!(kv.get(b"a").unwrap(), Some(b"before the crash".to_vec()));
    assert_eq!(kv.get(b"b").unwrap(), None, "the torn batch is not applied");
    let mut batch = Batch::default();
    batch.put(b"c", b"after the crash");
    kv.write(batch, Durability::Synced).unwrap();
    assert_eq!(kv.get(b"c").unwrap(), Some(b"after the crash".to_vec()));
    kv.close().unwrap();

    let mut kv = Kv::open(dir.path()).unwrap();
    kv_entries(&mut kv)
        .into_iter()
        .map(|(k, v)| (k, v.len()))
        .collect()
}

const AFTER_TORN_LOG: [(&[u8], usize); 2] = [(b"a", 16), (b"c", 15)];

/// A crash can leave a torn record at the end of the write-ahead log: SIGKILL cuts a
/// `write(2)` at a page boundary, and a record longer than rusty-leveldb's 8 KiB write
/// buffer takes several `write(2)`s anyway (a power loss tears it too). `Kv::open` leaves
/// rusty-leveldb's `reuse_logs` at its default, `true`: recovery stops at the torn record,
/// then new records are appended after it, and the next recovery stops at the same place,
/// dropping every write made since, `Synced` or not. (With `reuse_logs = false`, recovery
/// writes what it read to a table and starts a new log; this test then passes.)
#[test]
fn write_after_recovering_a_torn_log_survives_reopen() {
    // `b`'s record (20 KB, inside the first 32 KiB log block) loses its last 8,000 bytes.
    let entries = torn_log_then_write(20_000, |len| len - 8_000);
    let expected: Vec<(Vec<u8>, usize)> = AFTER_TORN_LOG
        .iter()
        .map(|(k, n)| (k.to_vec(), *n))
        .collect();
    assert_eq!(
        entries, expected,
        "a Synced write acknowledged after recovery was lost"
    );
}

/// The same when the tear falls on the 32 KiB log block boundary inside a record that spans
/// two blocks (the first fragment whole, the last one missing): the next record, appended
/// after recovery, is read back as the continuation of the torn one, and `Kv::open` panics
/// decoding the spliced batch (`range end index ... out of range`), on every later open.
#[test]
fn open_after_writing_on_a_torn_log_does_not_panic() {
    let entries = torn_log_then_write(40_000, |_| 32_768);
    let expected: Vec<(Vec<u8>, usize)> = AFTER_TORN_LOG
        .iter()
        .map(|(k, n)| (k.to_vec(), *n))
        .collect();
    assert_eq!(entries, expected);
}

/// A pinned snapshot keeps reading the state it was pinned at while writes go on; reads
/// inside it refuse writes; an unpinned snapshot cannot be read.
#[test]
fn pinned_snapshots_read_their_own_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut kv = Kv::open(dir.path()).expect("open");
    let mut batch = Batch::default();
    batch.put(b"a", b"1");
    batch.put(b"b", b"1");
    kv.write(batch, Durability::Flushed).expect("write");
    let snapshot = kv.pin().expect("pin");
    let mut batch = Batch::default();
    batch.put(b"a", b"2");
    batch.delete(b"b");
    batch.put(b"c", b"2");
    kv.write(batch, Durability::Flushed).expect("write");
    kv.compact().expect("compact");

    let then = kv
        .read_at(snapshot, |kv| {
            let scanned: Vec<_> = kv.scan_prefix(b"")?.collect::<strata::Result<_>>()?;
            let refused = kv.write(Batch::default(), Durability::Flushed);
            assert!(
                matches!(refused, Err(Error::InvalidArgument(_))),
                "writes are refused"
            );
            Ok((kv.get(b"a")?, scanned))
        })
        .expect("read at the snapshot");
    assert_eq!(then.0.as_deref(), Some(&b"1"[..]));
    assert_eq!(
        then.1,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"1".to_vec())
        ]
    );
    // The live state is back after read_at.
    assert_eq!(kv.get(b"a").expect("get").as_deref(), Some(&b"2"[..]));
    assert!(kv.get(b"b").expect("get").is_none());
    kv.unpin(snapshot);
    assert!(matches!(
        kv.read_at(snapshot, |kv| kv.get(b"a")),
        Err(Error::InvalidArgument(_))
    ));
}

/// Rewrites every key with `value` and compacts.
fn rewrite_and_compact(kv: &mut Kv, value: &[u8]) {
    let mut batch = Batch::default();
    for i in 0..200u32 {
        batch.put(format!("key{i:04}").as_bytes(), value);
    }
    kv.write(batch, Durability::Flushed).expect("write");
    kv.compact().expect("compact");
}

/// Once a read has seen damage, no table is deleted: a compaction may have written around
/// the damaged block, and `repair` must still find every entry the old tables hold.
#[test]
fn tables_stay_once_damage_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tables =
        || -> std::collections::BTreeSet<String> { table_files(dir.path()).into_iter().collect() };
    let mut kv = Kv::open(dir.path()).expect("open");
    rewrite_and_compact(&mut kv, b"1");
    let damaged = tables();
    assert!(!damaged.is_empty(), "the compaction wrote tables");
    for name in &damaged {
        let path = dir.path().join(name);
        let mut bytes = std::fs::read(&path).expect("read table");
        bytes[20] ^= 0xff; // inside the first data block
        std::fs::write(&path, bytes).expect("write table");
    }
    // The next compaction reads the damaged tables; whether it fails or writes around the
    // damage, they stay.
    let mut batch = Batch::default();
    for i in 0..200u32 {
        batch.put(format!("key{i:04}").as_bytes(), b"2");
    }
    kv.write(batch, Durability::Flushed).expect("write");
    let _ = kv.compact();
    let _ = kv.get(b"key0000");
    assert!(
        tables().is_superset(&damaged),
        "{damaged:?} must stay, found {:?}",
        tables()
    );
}

/// Disk space is given back: the tables a compaction replaced are deleted at once, or,
/// while snapshots are pinned, when the last of them is released (never before: a pinned
/// snapshot still reads them).
#[test]
fn replaced_tables_are_deleted_once_no_snapshot_needs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tables =
        || -> std::collections::BTreeSet<String> { table_files(dir.path()).into_iter().collect() };
    let mut kv = Kv::open(dir.path()).expect("open");
    rewrite_and_compact(&mut kv, b"1");
    let first = tables();
    assert!(!first.is_empty(), "the compaction wrote tables");
    rewrite_and_compact(&mut kv, b"2");
    let second = tables();
    assert!(
        second.is_disjoint(&first),
        "{first:?} replaced by {second:?}"
    );

    let (one, two) = (kv.pin().expect("pin"), kv.pin().expect("pin"));
    rewrite_and_compact(&mut kv, b"3");
    assert!(tables().is_superset(&second), "kept for the snapshots");
    kv.unpin(one);
    assert!(tables().is_superset(&second), "kept for one snapshot");
    let read = kv.read_at(two, |kv| kv.get(b"key0000")).expect("read_at");
    assert_eq!(read.as_deref(), Some(&b"2"[..]));
    kv.unpin(two);
    let third = tables();
    assert!(
        third.is_disjoint(&second),
        "{second:?} replaced by {third:?}"
    );
    assert!(!third.is_empty());
    assert_eq!(kv.get(b"key0199").expect("get").as_deref(), Some(&b"3"[..]));
}

/// The size of the database's newest write-ahead log.
fn log_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let number: u64 = name.strip_suffix(".log")?.parse().ok()?;
            Some((number, entry.metadata().ok()?.len()))
        })
        .max()
        .map_or(0, |(_, size)| size)
}

/// Puts `rows` rows (`row000000` on) of 1,000 bytes each, 100 a write.
fn put_rows(kv: &mut Kv, rows: u32) {
    let value = vec![b'v'; 1000];
    for chunk in (0..rows).collect::<Vec<_>>().chunks(100) {
        let mut batch = Batch::default();
        for i in chunk {
            batch.put(format!("row{i:06}").as_bytes(), &value);
        }
        kv.write(batch, Durability::Flushed).expect("write");
    }
}

/// The table files in `dir`.
fn tables_in(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".ldb"))
        .collect()
}

/// Writing the memtable out at close writes one table and rewrites none: a close that
/// compacted the whole key range rewrote every table a large import had written (a fifth
/// of a 10^6-row import's time, all of a 10^7-row database).
#[test]
fn closing_writes_out_the_memtable_and_compacts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut before = std::collections::BTreeSet::new();
    for round in 0..3 {
        let mut kv = Kv::open(dir.path()).expect("open");
        // The same keys every round: tables that overlap, which a compaction merges.
        put_rows(&mut kv, 3_000);
        kv.close().expect("close");
        let after = tables_in(dir.path());
        assert!(
            before.is_subset(&after),
            "round {round}: the close rewrote {:?}",
            before.difference(&after).collect::<Vec<_>>()
        );
        assert_eq!(
            after.len(),
            before.len() + 1,
            "round {round}: one table written"
        );
        before = after;
    }
}

/// Closing (or dropping) a database whose log has grown past a megabyte writes the memtable
/// out, so that the next open, a read-only one above all (every CLI read), does not replay
/// it; a small log is left as it is (writing a table costs fsyncs). Either way everything
/// written reads back, read-only too.
#[test]
fn a_big_log_is_written_out_at_close_and_a_small_one_left() {
    let value = vec![b'v'; 1000];
    for (rows, closed_explicitly) in [(3_000u32, true), (3_000, false), (10, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut kv = Kv::open(dir.path()).expect("open");
        put_rows(&mut kv, rows);
        let written = log_size(dir.path());
        if closed_explicitly {
            kv.close().expect("close");
        } else {
            drop(kv);
        }
        let left = log_size(dir.path());
        if rows > 1_000 {
            assert!(written > 1 << 20, "{written} bytes of log written");
            assert!(left < 1 << 20, "{left} bytes of log left at close");
        } else {
            assert_eq!(left, written, "a small log is left alone");
        }
        let mut reader = Kv::open_read_only(dir.path()).expect("read-only open");
        let mut kv = Kv::open(dir.path()).expect("reopen");
        for i in [0, rows / 2, rows - 1] {
            let key = format!("row{i:06}");
            assert_eq!(
                reader.get(key.as_bytes()).expect("get"),
                Some(value.clone())
            );
            assert_eq!(kv.get(key.as_bytes()).expect("get"), Some(value.clone()));
        }
    }
}

/// A read-only open beside a writer that keeps flushing and compacting always opens, and
/// always sees what was written before it: the manifest it reads names only files it holds.
/// (It used to read the manifest to its end when the engine opened, and an edit appended
/// after the files were listed named a table it did not hold: "missing live files".)
#[test]
fn read_only_opens_beside_a_compacting_writer_always_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    {
        let mut kv = Kv::open(&path).expect("open");
        kv.write(
            {
                let mut batch = Batch::default();
                batch.put(b"probe", b"here");
                batch
            },
            Durability::Synced,
        )
        .expect("write");
        kv.close().expect("close");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut kv = Kv::open(&path).expect("writer open");
            let value = vec![b'w'; 4000];
            let mut round = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut batch = Batch::default();
                for i in 0..200u32 {
                    batch.put(format!("w{:04}{i:04}", round % 50).as_bytes(), &value);
                }
                kv.write(batch, Durability::Flushed).expect("writer write");
                round += 1;
                if round.is_multiple_of(10) {
                    kv.compact().expect("writer compact");
                }
            }
            round
        })
    };
    let started = Instant::now();
    let mut opens = 0;
    while started.elapsed().as_secs_f64() < 3.0 {
        let mut reader = Kv::open_read_only(&path)
            .unwrap_or_else(|e| panic!("read-only open {opens} failed: {e}"));
        assert_eq!(
            reader.get(b"probe").expect("get"),
            Some(b"here".to_vec()),
            "open {opens}"
        );
        opens += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = writer.join().expect("writer");
    eprintln!("{opens} read-only opens beside {rounds} writer rounds, all consistent");
}
