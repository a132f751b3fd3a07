//! `strata repair`, and `strata fsck` on a repository that does not open, run through the
//! real binary on damaged repositories: the damage is named, the repair brings back every
//! row (read back and compared), and what cannot come back is said and exits 1.

mod cli_support;

use cli_support::{Repo, describe};
use serde_json::Value;

/// A repository with some rows over several commits; returns them as `ls` prints them.
fn filled() -> (Repo, String) {
    let repo = Repo::new();
    for i in 0..20 {
        repo.put("sites", &format!("s{i:02}"), &format!("{{\"n\":{i}}}"));
    }
    repo.put("other", "x", "\"y\"");
    let rows = repo.ok(&["ls", "sites"]) + &repo.ok(&["ls", "other"]);
    assert_eq!(rows.lines().count(), 21, "{rows}");
    (repo, rows)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn fsck_names_the_damage_of_a_repository_that_does_not_open_and_repair_brings_it_back() {
    let (repo, rows) = filled();
    let log_before = repo.ok(&["log"]);
    let current = repo.storage().join("db").join("CURRENT");
    std::fs::remove_file(&current).unwrap();

    // Opening fails; fsck says which file is damaged instead of only that.
    let output = repo.run(&["fsck"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe(&["fsck"], &output)
    );
    let text = stdout(&output);
    assert!(
        text.contains("problem: ") && text.contains("CURRENT"),
        "{text}"
    );
    assert!(text.contains("does not open"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("strata: check failed: fsck found"),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&repo.run(&["fsck", "--json"]).stdout).unwrap();
    assert_eq!(json["opens"], false);
    assert_eq!(json["ok"], false);
    assert!(
        json["problems"][0].as_str().unwrap().contains("CURRENT"),
        "{json}"
    );

    let report: Value = serde_json::from_slice(&repo.run(&["repair", "--json"]).stdout).unwrap();
    assert_eq!(report["nothing_lost"], true, "{report}");
    assert!(
        report["storage_problems"][0]
            .as_str()
            .unwrap()
            .contains("CURRENT"),
        "{report}"
    );
    assert!(report["salvage"]["keys"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["versions"], 21, "{report}");

    // Every row and every version is back, and fsck is clean.
    assert_eq!(repo.ok(&["ls", "sites"]) + &repo.ok(&["ls", "other"]), rows);
    assert_eq!(repo.ok(&["log"]), log_before);
    assert!(repo.ok(&["fsck"]).contains("no problems"));
    // A second repair of the sound repository finds nothing and changes nothing.
    let again = repo.ok(&["repair"]);
    assert!(
        again.contains("nothing lost") && !again.contains("damaged:"),
        "{again}"
    );
    assert_eq!(repo.ok(&["ls", "sites"]) + &repo.ok(&["ls", "other"]), rows);
}

#[test]
fn repair_says_what_it_cannot_bring_back_and_exits_1() {
    let (repo, rows) = filled();
    std::fs::write(repo.path().join("f.bin"), vec![7u8; 10_000]).unwrap();
    repo.ok(&["files", "put", "photos", "f.bin", "f.bin"]);
    let blobs = repo.storage().join("blobs");
    let blob = walk(&blobs)
        .into_iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 10_000))
        .expect("the stored file");
    std::fs::write(&blob, vec![8u8; 10_000]).unwrap();

    let output = repo.run(&["repair", "--progress"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe(&["repair"], &output)
    );
    let text = stdout(&output);
    assert!(text.contains("still wrong: blob "), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("repair lost data or left problems"),
        "{stderr}"
    );
    // The rows are untouched by a repair that could not fix a file.
    assert_eq!(repo.ok(&["ls", "sites"]) + &repo.ok(&["ls", "other"]), rows);
}

#[test]
fn fsck_on_a_sound_repository_that_is_missing_gives_the_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli_support::strata()
        .args(["--repo", dir.path().to_str().unwrap(), "fsck"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no strata repository"), "{stderr}");
    assert!(output.stdout.is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A repair puts its new database in place with two renames; a crash between them leaves
/// no `db`, the new one beside it and the old one aside. The repository is still found,
/// opens with every row (not empty), and the swap is completed by whichever command
/// comes first: a read, a write, fsck or repair.
#[test]
fn a_repair_cut_between_its_renames_is_completed_by_the_next_command() {
    for first in [
        &["ls", "sites"][..],
        &["put", "sites", "new", "1"],
        &["fsck"],
        &["repair"],
    ] {
        let (repo, rows) = filled();
        let storage = repo.storage();
        let db = storage.join("db");
        // The state between the renames: the old database aside, the new one beside.
        let aside = storage.join("db.before-repair-1764500000");
        let copy = std::process::Command::new("cp")
            .args(["-r", db.to_str().unwrap(), aside.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copy.success());
        std::fs::rename(&db, storage.join("db.rewritten")).unwrap();

        let output = repo.run(first);
        assert!(output.status.success(), "{}", describe(first, &output));
        assert!(db.is_dir(), "{first:?} put the database back in place");
        assert!(!storage.join("db.rewritten").exists());
        let now = repo.ok(&["ls", "sites"]) + &repo.ok(&["ls", "other"]);
        for line in rows.lines() {
            assert!(now.contains(line), "{first:?} lost {line}: {now}");
        }
        repo.ok(&["fsck"]);
    }
}
