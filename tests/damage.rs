//! Damaged repositories: one test per kind of damage, each injected into a copy of one real
//! repository on disk (several tables, a write-ahead log of many blocks, a file).
//!
//! For every kind: opening either works (damage the engine recovers from by design, such
//! as a log cut short, which is exactly what a crash leaves) or fails with one clear line
//! naming the damaged file; `fsck` (or `Repository::check_files`, for a repository that
//! will not open) names the damage; and `repair` brings back a repository that opens and
//! passes fsck, in which every version that was there before either reads exactly as
//! before or is accounted for: reported lost, or pending until a peer sends its payload.
//!
//! `cargo test --release --test damage -- --nocapture` prints one line per kind: how the
//! damage was detected and what repair recovered (the figures in docs/reliability.md).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use strata::internals::keys;
use strata::internals::kv::{Batch, Kv};
use strata::{Durability, Error, Range, Repository, Version};

/// A digest of every row of every dataset of one version.
type Content = [u8; 32];

const DATASETS: [&str; 4] = ["big", "more", "small", "files"];

/// How many versions get their content compared (spread over the history); the others
/// are checked for presence only.
const SAMPLED: usize = 8;

/// The repository every test damages a copy of, and what it held.
struct Template {
    dir: tempfile::TempDir,
    /// Every version, oldest first, with its content for the sampled ones.
    versions: Vec<(Version, Option<Content>)>,
}

fn content(repo: &Repository, version: &Version) -> strata::Result<Content> {
    use sha2::{Digest, Sha256};
    let view = repo.at(version)?;
    let mut digest = Sha256::new();
    for dataset in DATASETS {
        for row in view.range(dataset, Range::all()) {
            let row = match row {
                Ok(row) => row,
                Err(Error::DatasetNotFound { .. }) => break,
                Err(other) => return Err(other),
            };
            for part in [dataset.as_bytes(), &row.key, &row.value] {
                digest.update((part.len() as u64).to_be_bytes());
                digest.update(part);
            }
        }
    }
    Ok(digest.finalize().into())
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repository::options()
            .durability(Durability::Flushed)
            .init(dir.path())
            .expect("init");
        // Enough rows for a table of several megabytes once compacted.
        let rows = (0..60_000u32).map(|i| {
            Ok((
                format!("r{i:06}").into_bytes(),
                format!(
                    "{{\"i\":{i},\"pad\":\"{}\"}}",
                    "x".repeat(150 + (i % 50) as usize)
                )
                .into_bytes(),
            ))
        });
        repo.import("big", rows, 5_000, None).expect("import");
        repo.compact().expect("compact");
        // More than the engine's 32 MiB write buffer holds, so that a second table is
        // written beside the compacted one.
        let more = (0..12_000u32).map(|i| {
            Ok((
                format!("m{i:05}").into_bytes(),
                "z".repeat(3_000).into_bytes(),
            ))
        });
        repo.import("more", more, 3_000, None).expect("import");
        // Then writes that stay in the write-ahead log: many blocks of it.
        for i in 0..40 {
            repo.put("small", format!("k{}", i % 10), "y".repeat(3_000 + i))
                .expect("put");
        }
        repo.put_file("files", "photo", &mut &vec![7u8; 10_000][..])
            .expect("put file");
        let all: Vec<Version> = repo
            .changes(0)
            .map(|info| info.expect("feed").version)
            .collect();
        let step = all.len().div_ceil(SAMPLED);
        let versions = all
            .iter()
            .enumerate()
            .map(|(i, version)| {
                let sampled = i % step == 0 || i + 1 == all.len();
                let rows = sampled.then(|| content(&repo, version).expect("content"));
                (version.clone(), rows)
            })
            .collect();
        drop(repo);
        Template { dir, versions }
    })
}

/// A fresh copy of the template repository.
fn copy() -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("temp dir");
    copy_dir(template().dir.path(), to.path());
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn db(dir: &Path) -> PathBuf {
    dir.join(".strata").join("db")
}

/// The database files whose name ends in `suffix`, largest number last.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(db(dir))
        .expect("read db")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

fn cut(path: &Path, keep: usize) {
    let bytes = std::fs::read(path).expect("read");
    std::fs::write(path, &bytes[..keep]).expect("write");
}

/// What happened to one kind of damage.
struct Outcome {
    open_error: Option<String>,
    detected: Vec<String>,
}

/// Opens the damaged copy and runs fsck (or checks the files when it will not open).
fn detect(dir: &Path) -> Outcome {
    match Repository::open(dir) {
        Ok(repo) => {
            let detected = match repo.fsck(&mut |_, _| {}) {
                Ok(report) => report.problems,
                Err(error) => vec![error.to_string()],
            };
            Outcome {
                open_error: None,
                detected,
            }
        }
        Err(error) => {
            let text = error.to_string();
            assert!(!text.contains('\n'), "one line: {text}");
            let detected = Repository::check_files(dir).expect("check files");
            Outcome {
                open_error: Some(text),
                detected,
            }
        }
    }
}

/// Repairs the copy and checks the result; returns (versions intact, lost, pending).
///
/// Every version of the template must read exactly as before, be pending, be named lost,
/// or be one of the entries the report counts as gone from a log that came back shorter
/// (entries whose every trace was in the damaged part: nothing is left to name them by).
/// `expected` leaves out versions the damage took away the way a crash does, before any
/// repair (a log cut short).
fn repair(dir: &Path, kind: &str) -> (usize, usize, usize) {
    repair_expecting(dir, kind, &template().versions)
}

fn repair_expecting(
    dir: &Path,
    kind: &str,
    expected: &[(Version, Option<Content>)],
) -> (usize, usize, usize) {
    let report = Repository::repair(dir).unwrap_or_else(|e| panic!("{kind}: repair: {e}"));
    let repo = Repository::open(dir).unwrap_or_else(|e| panic!("{kind}: open after repair: {e}"));
    let check = repo.fsck(&mut |_, _| {}).expect("fsck");
    let blob_problems = check.problems.iter().all(|p| p.starts_with("blob "));
    assert!(
        blob_problems,
        "{kind}: fsck after repair: {:?}",
        check.problems
    );
    let lost: std::collections::BTreeSet<&str> =
        report.lost_nodes.iter().map(|n| n.key.as_str()).collect();
    let (mut intact, mut gone, mut pending, mut untraced) = (0, 0, 0, 0);
    for (version, before) in expected {
        let read = match before {
            Some(_) => content(&repo, version).map(Some),
            None => repo.at(version).map(|_| None),
        };
        match read {
            Ok(after) => {
                assert_eq!(&after, before, "{kind}: version {version} reads as before");
                intact += 1;
            }
            Err(Error::VersionNotFound { pending: true, .. }) => pending += 1,
            Err(Error::VersionNotFound { .. }) => {
                if !lost.contains(version.as_str()) {
                    untraced += 1;
                }
                gone += 1;
            }
            Err(other) => panic!("{kind}: reading {version} after repair: {other}"),
        }
    }
    assert_eq!(report.pending, check.pending, "{kind}: pending as reported");
    let shortened: u64 = report.short_logs.iter().map(|s| s.before - s.after).sum();
    // Versions whose every trace was in the damaged part cannot be named; the report must
    // then count them among a shortened log's lost entries, or at least say which file
    // part was lost (a missing log, a region no table can be read in).
    let damage_named = report.salvage.as_ref().is_some_and(|s| !s.lost.is_empty())
        || report.storage_problems.iter().any(|p| p.contains("log"));
    assert!(
        untraced as u64 <= shortened || damage_named,
        "{kind}: {untraced} versions vanished unnamed, but the report counts only {shortened} \
         entries gone from shortened logs: {report:?}"
    );
    if untraced > 0 {
        assert!(!report.nothing_lost(), "{kind}: losses are reported");
    }
    // Nodes lost without a salvage's copy: the database from before the repair is kept, and
    // still holds their records.
    let lost_any = !report.lost_nodes.is_empty() || !report.short_logs.is_empty();
    match (&report.salvage, &report.kept_at) {
        (None, Some(kept)) => {
            assert!(
                lost_any,
                "{kind}: a copy is kept only when something was lost"
            );
            let mut kv = Kv::open(kept).expect("the kept copy opens");
            let held = report
                .lost_nodes
                .iter()
                .filter(|n| kv.get(&keys::node(&n.key)).expect("get").is_some())
                .count();
            assert!(
                held > 0,
                "{kind}: the kept copy holds the lost nodes' records"
            );
        }
        (None, None) => assert!(!lost_any, "{kind}: lost nodes without a kept copy"),
        (Some(_), kept) => assert_eq!(kept, &None, "{kind}: the salvage keeps the copy"),
    }
    println!(
        "{kind}: repair kept {intact} of {} versions, {gone} lost, {pending} pending; {} nodes lost, \
         {} payloads lost; salvage: {}",
        template().versions.len(),
        report.lost_nodes.len(),
        report.lost_payloads.len(),
        report
            .salvage
            .as_ref()
            .map_or("not needed".to_string(), |s| format!(
                "{} lost regions",
                s.lost.len()
            ))
    );
    (intact, gone, pending)
}

/// Injects damage, checks it is detected as `expect` says, repairs, and checks the result.
fn case(kind: &str, damage: impl FnOnce(&Path), expect: Expect) -> (usize, usize, usize) {
    let dir = copy();
    damage(dir.path());
    let outcome = detect(dir.path());
    match expect {
        Expect::OpenFails(words) => {
            let error = outcome
                .open_error
                .unwrap_or_else(|| panic!("{kind}: opening should fail"));
            assert!(error.contains(words), "{kind}: {error}");
            assert!(
                outcome.detected.iter().any(|p| p.contains(words)),
                "{kind}: check_files: {:?}",
                outcome.detected
            );
            println!("{kind}: open refused: {error}");
        }
        Expect::FsckFinds(words) => {
            assert_eq!(outcome.open_error, None, "{kind}: opens");
            assert!(
                outcome.detected.iter().any(|p| p.contains(words)),
                "{kind}: fsck: {:?}",
                outcome.detected
            );
            println!("{kind}: fsck found: {}", outcome.detected[0]);
        }
        Expect::Recovered => {
            assert_eq!(outcome.open_error, None, "{kind}: opens");
            assert_eq!(outcome.detected, Vec::<String>::new(), "{kind}: fsck clean");
            println!("{kind}: opens and passes fsck (recovered like a crash)");
        }
    }
    match expect {
        Expect::Recovered => {
            // What the damaged copy opened with is what a repair must keep.
            let repo = Repository::open(dir.path()).expect("opens");
            let there: Vec<_> = template()
                .versions
                .iter()
                .filter(|(version, _)| repo.at(version).is_ok())
                .cloned()
                .collect();
            drop(repo);
            repair_expecting(dir.path(), kind, &there)
        }
        _ => repair(dir.path(), kind),
    }
}

#[derive(Clone, Copy)]
enum Expect {
    /// Opening fails naming the damage, and `check_files` names it too.
    OpenFails(&'static str),
    /// Opening works and fsck names the damage.
    FsckFinds(&'static str),
    /// The damage is what a crash leaves: the repository opens and passes fsck.
    Recovered,
}

fn everything_back((intact, gone, pending): (usize, usize, usize)) {
    assert_eq!((intact, gone, pending), (template().versions.len(), 0, 0));
}

#[test]
fn a_missing_current_is_named_and_rebuilt() {
    let result = case(
        "missing CURRENT",
        |dir| std::fs::remove_file(db(dir).join("CURRENT")).expect("remove"),
        Expect::OpenFails("CURRENT is missing"),
    );
    everything_back(result);
}

#[test]
fn a_garbled_current_is_named_and_rebuilt() {
    let result = case(
        "corrupt CURRENT",
        |dir| std::fs::write(db(dir).join("CURRENT"), b"\x00garbage").expect("write"),
        Expect::OpenFails("CURRENT is damaged"),
    );
    everything_back(result);
}

#[test]
fn a_missing_manifest_is_named_and_rebuilt() {
    let result = case(
        "missing MANIFEST",
        |dir| {
            for manifest in files(dir, "") {
                if manifest.to_string_lossy().contains("MANIFEST-") {
                    std::fs::remove_file(manifest).expect("remove");
                }
            }
        },
        Expect::OpenFails("which CURRENT names, cannot be read"),
    );
    everything_back(result);
}

#[test]
fn a_corrupt_manifest_is_named_and_rebuilt() {
    let result = case(
        "corrupt MANIFEST",
        |dir| {
            let manifest = files(dir, "")
                .into_iter()
                .find(|p| p.to_string_lossy().contains("MANIFEST-"))
                .expect("a manifest");
            flip(&manifest, 10);
        },
        Expect::OpenFails("is damaged at byte"),
    );
    everything_back(result);
}

#[test]
fn a_missing_table_is_named_and_what_it_held_is_reported() {
    let (intact, gone, pending) = case(
        "missing table",
        |dir| {
            let tables = files(dir, ".ldb");
            assert!(tables.len() >= 2, "the template has several tables");
            std::fs::remove_file(&tables[0]).expect("remove");
        },
        Expect::OpenFails("is missing"),
    );
    // The history is one line, and the table held its root: whatever other files hold,
    // a node whose ancestor is lost cannot be checked, so it is lost too (and named).
    assert!(gone + pending > 0 && intact < template().versions.len());
}

#[test]
fn a_truncated_table_is_named_and_repaired() {
    let (intact, _, _) = case(
        "truncated table",
        |dir| {
            let table = &files(dir, ".ldb")[0];
            let size = std::fs::metadata(table).expect("size").len() as usize;
            cut(table, size / 2);
        },
        Expect::OpenFails("the manifest says"),
    );
    assert!(
        intact < template().versions.len(),
        "what the cut half held is lost"
    );
}

#[test]
fn a_flipped_byte_in_a_table_is_found_by_fsck_and_repaired() {
    let (intact, _, _) = case(
        "flipped byte in a table",
        |dir| {
            let table = &files(dir, ".ldb")[0];
            let size = std::fs::metadata(table).expect("size").len() as usize;
            flip(table, size / 3);
        },
        Expect::FsckFinds("fails its checksum"),
    );
    assert!(intact > 0);
}

#[test]
fn reads_over_a_damaged_block_fail_instead_of_skipping_rows() {
    let dir = copy();
    // A byte in the middle of every table, so that some block of rows is damaged.
    for table in files(dir.path(), ".ldb") {
        let size = std::fs::metadata(&table).expect("size").len() as usize;
        flip(&table, size / 2);
    }
    let repo = Repository::open(dir.path()).expect("opens: the damage is inside a table");
    let (last, _) = template().versions.last().expect("versions");
    let read = content(&repo, last);
    let error = read
        .expect_err("a read over the damaged block fails")
        .to_string();
    assert!(error.contains("fails its checksum"), "{error}");
}

#[test]
fn a_missing_log_is_named_and_repaired() {
    let (intact, _, _) = case(
        "missing log",
        |dir| {
            for log in files(dir, ".log") {
                std::fs::remove_file(log).expect("remove");
            }
        },
        Expect::OpenFails("write-ahead log"),
    );
    // What was compacted into tables survives; the log's writes are gone.
    assert!(intact > 0 && intact < template().versions.len());
}

#[test]
fn a_log_damaged_in_the_middle_is_named_and_the_rest_recovered() {
    let (intact, _, _) = case(
        "damaged log",
        |dir| {
            let log = files(dir, ".log").pop().expect("a log");
            flip(&log, 100);
        },
        Expect::OpenFails("with"),
    );
    assert!(intact > 0);
}

#[test]
fn a_log_cut_short_recovers_like_a_crash() {
    let (intact, _, _) = case(
        "truncated log",
        |dir| {
            let log = files(dir, ".log").pop().expect("a log");
            let size = std::fs::metadata(&log).expect("size").len() as usize;
            cut(&log, size - 500);
        },
        Expect::Recovered,
    );
    assert!(intact > 0);
}

#[test]
fn a_damaged_blob_is_named_by_fsck_and_by_repair() {
    let dir = copy();
    let blobs = dir.path().join(".strata").join("blobs");
    let shard = std::fs::read_dir(&blobs)
        .expect("blobs")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.file_name().is_some_and(|name| name.len() == 2))
        .expect("a shard");
    let blob = std::fs::read_dir(shard)
        .expect("shard")
        .next()
        .expect("a blob")
        .expect("blob")
        .path();
    flip(&blob, 5);
    let outcome = detect(dir.path());
    assert!(
        outcome.detected.iter().any(|p| p.starts_with("blob ")),
        "{:?}",
        outcome.detected
    );
    let report = Repository::repair(dir.path()).expect("repair");
    assert!(report.remaining.iter().any(|p| p.starts_with("blob ")));
    assert!(!report.nothing_lost());
    println!("damaged blob: fsck found: {}", outcome.detected[0]);
}

/// Damages the copy's database through the engine itself (as a bug or a bad disk could).
fn with_kv(dir: &Path, change: impl FnOnce(&mut Kv)) {
    let mut kv = Kv::open(&db(dir)).expect("open kv");
    change(&mut kv);
    kv.close().expect("close");
}

/// A heads checkpoint that no longer decodes (the graph's), and one that names a version
/// that does not exist (the index's): fsck reports both as problems and goes on checking,
/// and repair rebuilds them from the nodes.
#[test]
fn damaged_heads_checkpoints_are_found_and_rebuilt_with_nothing_lost() {
    let damage = |dir: &Path| {
        with_kv(dir, |kv| {
            let mut batch = Batch::default();
            batch.put(keys::HEADS, b"\x07 not a key run");
            batch.put(keys::HEADS_AS_OF, &1u64.to_be_bytes());
            let stranger = "f".repeat(64);
            let bogus = strata::internals::decoders::encode_keys(&[stranger.as_str()]);
            batch.put(keys::TIPS, &bogus);
            batch.put(keys::TIPS_AS_OF, &1u64.to_be_bytes());
            kv.write(batch, Durability::Synced).expect("write");
        })
    };
    let dir = copy();
    damage(dir.path());
    let report = Repository::open(dir.path())
        .expect("opens")
        .fsck(&mut |_, _| {})
        .expect("fsck reports damage as problems, not as an error");
    let named = |words: &str| report.problems.iter().any(|p| p.contains(words));
    assert!(
        named("the graph's heads cannot be loaded") && named("the index lists"),
        "{:?}",
        report.problems
    );
    let result = case(
        "damaged heads checkpoints",
        damage,
        Expect::FsckFinds("heads"),
    );
    everything_back(result);
}

#[test]
fn a_missing_derived_index_is_found_and_rebuilt_with_nothing_lost() {
    let result = case(
        "missing version index",
        |dir| {
            with_kv(dir, |kv| {
                let keys: Vec<Vec<u8>> = kv
                    .scan_prefix(keys::VERSIONS)
                    .expect("scan")
                    .map(|item| item.expect("item").0)
                    .collect();
                let mut batch = Batch::default();
                for key in &keys {
                    batch.delete(key);
                }
                kv.write(batch, Durability::Synced).expect("delete");
            })
        },
        Expect::FsckFinds("has no record"),
    );
    everything_back(result);
}

#[test]
fn a_damaged_node_is_found_and_reported_lost_with_its_descendants() {
    let (intact, gone, _) = case(
        "damaged node",
        |dir| {
            with_kv(dir, |kv| {
                // The 5th version's node: its record keeps decoding, but no longer hashes.
                let (version, _) = &template().versions[4];
                let key = [keys::NODES, version.as_bytes()].concat();
                let stored = kv.get(&key).expect("get").expect("stored");
                let mut node = strata::Node::decode(&stored).expect("decode");
                node.value.push(b' ');
                let mut batch = Batch::default();
                batch.put(&key, &node.encode());
                kv.write(batch, Durability::Synced).expect("write");
            })
        },
        Expect::FsckFinds("hashes to"),
    );
    assert_eq!(intact, 4, "the versions before it survive");
    assert_eq!(
        gone,
        template().versions.len() - 4,
        "it and every later one are lost"
    );
}

#[test]
fn a_damaged_payload_is_found_and_its_commit_waits_for_a_peer() {
    let (intact, gone, pending) = case(
        "damaged payload",
        |dir| {
            with_kv(dir, |kv| {
                let (key, mut chunk) = kv
                    .scan_prefix(keys::OPS)
                    .expect("scan")
                    .next()
                    .expect("a payload")
                    .expect("item");
                chunk[3] ^= 1;
                let mut batch = Batch::default();
                batch.put(&key, &chunk);
                kv.write(batch, Durability::Synced).expect("write");
            })
        },
        Expect::FsckFinds("payload of commit"),
    );
    assert_eq!(gone, 0);
    assert!(pending >= 1, "the commit waits for its payload");
    assert!(intact > 0);
}
