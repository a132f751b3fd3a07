//! Randomized replication: several repositories make random writes, forks, merges and
//! file rows, and sync pairwise over random transports (in-memory pipes of random size,
//! TCP, sync files) with random payload choices and random interruptions. After a full
//! round of syncs every repository holds the same nodes and heads, every version reads
//! the same rows everywhere, and fsck is clean.
//!
//! Seeded and bounded for CI. `STRATA_RANDOM_SEEDS=200 STRATA_RANDOM_STEPS=400` runs many
//! more (each seed is printed when it fails; `STRATA_RANDOM_SEED=n` runs only that one).

mod replicate_support;

use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replicate_support::{Cut, every_version};
use strata::{Limits, MergePolicy, Payload, Repository, Session, SyncFile, duplex};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn session(payload: Payload) -> Session {
    Session::new().payload(payload).limits(Limits {
        idle_timeout: Some(Duration::from_secs(20)),
        ..Limits::default()
    })
}

fn random_payload(rng: &mut StdRng) -> Payload {
    match rng.random_range(0..6) {
        0 => Payload::RowsOnly,
        1 => Payload::GraphOnly,
        2 => Payload::Datasets(vec![b"d0".to_vec()]),
        _ => Payload::Everything,
    }
}

/// One random write on `repo`: a put, a delete, a file row, a fork (a write on an older
/// version of a row), or a merge of every head.
fn write(rng: &mut StdRng, repo: &Repository, step: usize) {
    let dataset = format!("d{}", rng.random_range(0..2));
    let key = format!("k{}", rng.random_range(0..6));
    match rng.random_range(0..10) {
        0..=2 => {
            repo.put(&dataset, &key, format!("v{step}")).unwrap();
        }
        3 => {
            if repo.get(&dataset, &key).unwrap().is_some() {
                repo.delete(&dataset, &key).unwrap();
            }
        }
        4 => {
            let size = rng.random_range(0..3) * 40_000 + rng.random_range(0..100);
            let bytes: Vec<u8> = (0..size).map(|i| (i * step) as u8).collect();
            repo.put_file(&dataset, &key, &mut &bytes[..]).unwrap();
        }
        5 | 6 => {
            let history = repo.history(&dataset, &key).unwrap();
            if let Some(old) = history.get(rng.random_range(0..history.len().max(1))) {
                repo.transaction()
                    .replaces(std::slice::from_ref(&old.version))
                    .put(&dataset, &key, format!("fork {step}"))
                    .commit()
                    .unwrap();
            }
        }
        _ => {
            if repo.heads().unwrap().len() > 1 {
                repo.merge(&[])
                    .policy(MergePolicy::Newest)
                    .message(format!("merge {step}"))
                    .commit()
                    .unwrap();
            } else {
                repo.put(&dataset, &key, format!("w{step}")).unwrap();
            }
        }
    }
}

/// Runs `a` against `b` over in-memory pipes of `capacity` bytes, the first side's writes
/// cut after `cut` bytes if given. Returns whether both sides succeeded.
fn over_pipes(
    a: (&Session, &Repository),
    b: (&Session, &Repository),
    capacity: usize,
    cut: Option<usize>,
) -> bool {
    let (ours, theirs) = duplex(capacity);
    let (b_session, b_repo) = (b.0.clone(), b.1.clone());
    let other = thread::spawn(move || b_session.run(&b_repo, theirs.reader, theirs.writer));
    let first = match cut {
        Some(left) => {
            let writer = Cut {
                inner: Some(ours.writer),
                left,
            };
            a.0.run(a.1, ours.reader, writer)
        }
        None => a.0.run(a.1, ours.reader, ours.writer),
    };
    let second = other.join().unwrap();
    first.is_ok() && second.is_ok()
}

fn over_tcp(a: (&Session, &Repository), b: (&Session, &Repository)) -> bool {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (b_session, b_repo) = (b.0.clone(), b.1.clone());
    let other = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        b_session.run_tcp(stream, &b_repo)
    });
    let first = a.0.connect_tcp(address, a.1);
    let second = other.join().unwrap();
    first.is_ok() && second.is_ok()
}

/// Writes a sync file from `a` for `b` and applies it, cut short at a random byte
/// sometimes (then it must be refused and change nothing).
fn by_file(rng: &mut StdRng, a: &Repository, b: &Repository, payload: Payload) {
    let mut bytes = Vec::new();
    SyncFile::new()
        .since(b.graph().logs().unwrap())
        .payload(payload)
        .write(a, &mut bytes)
        .unwrap();
    if rng.random_bool(0.2) {
        let before = (b.graph().change_count(), b.heads().unwrap());
        let cut = rng.random_range(0..bytes.len());
        let refused = SyncFile::new().apply(b, io::Cursor::new(bytes[..cut].to_vec()));
        assert!(refused.is_err(), "a sync file cut at {cut} was applied");
        assert_eq!((b.graph().change_count(), b.heads().unwrap()), before);
        return;
    }
    SyncFile::new().apply(b, io::Cursor::new(bytes)).unwrap();
}

/// One random sync between `a` and `b`.
fn sync(rng: &mut StdRng, a: &Repository, b: &Repository) {
    let (sa, sb) = (session(random_payload(rng)), session(random_payload(rng)));
    match rng.random_range(0..10) {
        0..=3 => {
            let capacity = [1, 7, 300, 64 * 1024][rng.random_range(0..4)];
            assert!(over_pipes((&sa, a), (&sb, b), capacity, None));
        }
        4 | 5 => {
            // Interrupted: whatever arrived whole stays; the next sync completes it.
            let cut = rng.random_range(0..20_000);
            over_pipes((&sa, a), (&sb, b), 4096, Some(cut));
        }
        6 | 7 => assert!(over_tcp((&sa, a), (&sb, b))),
        _ => {
            let payload = random_payload(rng);
            by_file(rng, a, b, payload);
        }
    }
}

fn run(seed: u64, repos: usize, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let repos: Vec<Repository> = (0..repos)
        .map(|i| {
            Repository::options()
                .log_id(format!("device-{i}"))
                .in_memory()
                .unwrap()
        })
        .collect();
    for step in 0..steps {
        let a = rng.random_range(0..repos.len());
        if rng.random_bool(0.7) {
            write(&mut rng, &repos[a], step);
        } else {
            let b = (a + rng.random_range(1..repos.len())) % repos.len();
            sync(&mut rng, &repos[a], &repos[b]);
        }
    }
    // A full round: everything into the first repository, then out to every other.
    let everything = session(Payload::Everything);
    for round in 0..2 {
        for other in &repos[1..] {
            let ok = over_pipes(
                (&everything, &repos[0]),
                (&everything, other),
                64 * 1024,
                None,
            );
            assert!(ok, "seed {seed}: full round {round}");
        }
    }
    let expected = every_version(&repos[0]);
    let heads = repos[0].heads().unwrap();
    let logs = repos[0].graph().logs().unwrap();
    for (i, repo) in repos.iter().enumerate() {
        assert_eq!(
            repo.graph().logs().unwrap(),
            logs,
            "seed {seed}: logs of {i}"
        );
        assert_eq!(repo.heads().unwrap(), heads, "seed {seed}: heads of {i}");
        assert_eq!(
            repo.status().unwrap().pending,
            0,
            "seed {seed}: pending in {i}"
        );
        assert_eq!(
            every_version(repo),
            expected,
            "seed {seed}: versions of {i}"
        );
        let fsck = repo.fsck(&mut |_, _| {}).unwrap();
        assert!(
            fsck.is_ok(),
            "seed {seed}: fsck of {i}: {:?}",
            fsck.problems
        );
    }
}

#[test]
fn random_writes_forks_merges_and_interrupted_syncs_converge() {
    let steps = env("STRATA_RANDOM_STEPS", 60) as usize;
    let seeds = match std::env::var("STRATA_RANDOM_SEED") {
        Ok(seed) => vec![seed.parse().expect("a seed number")],
        Err(_) => (0..env("STRATA_RANDOM_SEEDS", 4)).collect::<Vec<u64>>(),
    };
    for seed in seeds {
        run(seed, 4, steps);
    }
}
