//! `strata import` and `strata export`, through the real binary: exact round trips in both
//! formats and at several versions, stdin, composite keys, keys carried by every export,
//! repeated keys, line endings, and every error path.
//!
//! Longer than 500 lines on purpose: it is the table contract of docs/cli.md, one test per
//! rule, all sharing the helper below; splitting it would split that contract.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// A repository in a fresh temporary folder.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        // Created through the library so these tests do not depend on `strata init`.
        drop(strata::Repository::init(dir.path()).unwrap());
        Repo { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to a file in the repository's folder; returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(BIN)
            .arg("--repo")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "strata {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must fail with exit code 1; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "strata {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// Imports `file` and returns the versions the summary lists.
    fn import(&self, file: &Path, args: &[&str]) -> Vec<String> {
        let mut all = vec!["import", file.to_str().unwrap()];
        all.extend_from_slice(args);
        all.push("--json");
        let summary: serde_json::Value = serde_json::from_str(&self.ok(&all)).unwrap();
        summary["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn export(&self, args: &[&str]) -> String {
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        self.ok(&all)
    }
}

/// A CSV in the form export writes (sorted by key, quoted only where needed), with what
/// tends to get lost: leading zeros, empty fields, unicode, quotes, commas, a line break
/// inside a field, a number-looking and a decimal-looking string, and columns in an order
/// that is not alphabetical.
const SITES_CSV: &str = "\
zone,id,name,depth,note,code
north,001,\"Spring \"\"Ojo\"\" 1\",4.50,,007
north,002,\"Well, old\",,\"two
lines\",0010
south,010,Källa ✓ 水,1.10,  padded  ,
south,100,,12345678901234567890,\"\"\"quoted\"\"\",-0
";

#[test]
fn csv_round_trip_is_exact() {
    let repo = Repo::new();
    let file = repo.file("sites.csv", SITES_CSV);
    let versions = repo.import(&file, &["--dataset", "sites", "--key", "id"]);
    assert_eq!(versions.len(), 1);
    let exported = repo.export(&["--dataset", "sites", "--format", "csv", "--key", "id"]);
    assert_eq!(exported, SITES_CSV);

    // Each row is a JSON object of strings in header order.
    let ndjson = repo.export(&["--dataset", "sites", "--key", "id"]);
    let first = ndjson.lines().next().unwrap();
    assert_eq!(
        first,
        r#"{"zone":"north","id":"001","name":"Spring \"Ojo\" 1","depth":"4.50","note":"","code":"007"}"#
    );

    // Re-importing the export into another dataset exports identically.
    let again = repo.file("again.csv", &exported);
    repo.import(&again, &["--dataset", "copy", "--key", "id"]);
    assert_eq!(
        repo.export(&["--dataset", "copy", "--format", "csv", "--key", "id"]),
        SITES_CSV
    );
}

#[test]
fn round_trips_at_several_versions() {
    let repo = Repo::new();
    let v1 = repo.file("v1.csv", SITES_CSV);
    let first = repo.import(&v1, &["--dataset", "sites", "--key", "id"]);

    // Version 2 changes a value, adds a row and a column.
    let v2_text = "\
zone,id,name,depth,note,code,extra
north,001,\"Spring \"\"Ojo\"\" 1\",4.75,,007,
north,002,\"Well, old\",,\"two
lines\",0010,
north,003,New,0.0,,,x
south,010,Källa ✓ 水,1.10,  padded  ,,
south,100,,12345678901234567890,\"\"\"quoted\"\"\",-0,
";
    let v2 = repo.file("v2.csv", v2_text);
    let second = repo.import(&v2, &["--dataset", "sites", "--key", "id"]);
    let csv = ["--dataset", "sites", "--format", "csv", "--key", "id"];
    assert_eq!(repo.export(&csv), v2_text);
    let at1 = repo.export(&[&csv[..], &["--at", &first[0]]].concat());
    assert_eq!(at1, SITES_CSV);
    let at2 = repo.export(&[&csv[..], &["--at", &second[0]]].concat());
    assert_eq!(at2, v2_text);

    // NDJSON exports at each version re-import to identical exports.
    for version in [&first[0], &second[0]] {
        let ndjson = repo.export(&["--dataset", "sites", "--key", "id", "--at", version]);
        let file = repo.file("again.ndjson", &ndjson);
        let target = format!("copy-{}", &version[..8]);
        repo.import(&file, &["--dataset", &target, "--key", "id"]);
        assert_eq!(repo.export(&["--dataset", &target, "--key", "id"]), ndjson);
        assert_eq!(
            repo.export(&["--dataset", &target, "--format", "csv", "--key", "id"]),
            repo.export(&[&csv[..], &["--at", version]].concat())
        );
    }
}

/// NDJSON as export writes it: compact, sorted by key.
const OBSERVATIONS: &str = r#"{"id":"a1","big":12345678901234567890,"dec":1.10,"neg":-0.000,"exp":1E+400,"nested":{"z":[1,2,{"y":null}],"a":true},"none":null,"text":"Zürich \"q\" \\ \n\t ✓ 𝄞"}
{"id":"b2","zero":7.5e0,"empty":"","list":[],"obj":{}}
{"z_first":1,"id":"c3"}
"#;

#[test]
fn ndjson_round_trip_is_exact() {
    let repo = Repo::new();
    let observations = OBSERVATIONS;
    let file = repo.file("obs.ndjson", observations);
    repo.import(&file, &["--dataset", "obs", "--key", "id"]);
    let exported = repo.export(&["--dataset", "obs", "--key", "id"]);
    assert_eq!(exported, observations);

    // White space outside strings (pretty spacing, blank lines, CRLF line ends) is
    // dropped; everything else is kept as written, escapes included.
    let loose =
        "\r\n{ \"id\" : \"b\",  \"v\" : \"\\u00e9\" }\r\n\n   \n{\"id\":\"a\",\"v\":[ 1 , 2 ]}";
    let file = repo.file("loose.jsonl", loose);
    repo.import(&file, &["--dataset", "loose", "--key", "id"]);
    let exported = repo.export(&["--dataset", "loose", "--key", "id"]);
    assert_eq!(
        exported,
        "{\"id\":\"a\",\"v\":[1,2]}\n{\"id\":\"b\",\"v\":\"\\u00e9\"}\n"
    );
    let file = repo.file("loose2.ndjson", &exported);
    repo.import(&file, &["--dataset", "loose2", "--key", "id"]);
    assert_eq!(
        repo.export(&["--dataset", "loose2", "--key", "id"]),
        exported
    );

    // NDJSON to CSV: CSV cells are strings, so rows whose values are not objects of
    // strings with the header's fields travel whole, as JSON text in the `_value` column;
    // the CSV re-imports to the very same rows.
    let csv = repo.export(&["--dataset", "obs", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "_key,_value");
    assert_eq!(
        lines.next().unwrap(),
        r#"a1,"{""id"":""a1"",""big"":12345678901234567890,""dec"":1.10,""neg"":-0.000,""exp"":1E+400,""nested"":{""z"":[1,2,{""y"":null}],""a"":true},""none"":null,""text"":""Zürich \""q\"" \\ \n\t ✓ 𝄞""}""#
    );
    let file = repo.file("obs.csv", &csv);
    repo.import(&file, &["--dataset", "obs-from-csv"]);
    assert_eq!(rows(&repo, "obs-from-csv"), rows(&repo, "obs"));
    // With --key, every row must be an object of strings: these are not.
    let stderr = repo.fails(&[
        "export",
        "--dataset",
        "obs",
        "--format",
        "csv",
        "--key",
        "id",
    ]);
    assert!(
        stderr.starts_with("strata: row a1: ") && stderr.contains("CSV"),
        "{stderr}"
    );
}

#[test]
fn numbers_and_booleans_are_keys_by_their_text() {
    let repo = Repo::new();
    let file = repo.file(
        "n.ndjson",
        "{\"n\":1.10,\"v\":1}\n{\"n\":12345678901234567890,\"v\":2}\n{\"n\":true,\"v\":3}\n",
    );
    repo.import(&file, &["--dataset", "n", "--key", "n"]);
    let exported = repo.export(&["--dataset", "n"]);
    assert_eq!(
        exported,
        "{\"_key\":\"1.10\",\"n\":1.10,\"v\":1}\n\
         {\"_key\":\"12345678901234567890\",\"n\":12345678901234567890,\"v\":2}\n\
         {\"_key\":\"true\",\"n\":true,\"v\":3}\n"
    );
}

#[test]
fn composite_keys_escape_commas_and_backslashes() {
    let repo = Repo::new();
    let file = repo.file(
        "k.csv",
        "a,b,v\n\"x,y\",z,1\nx,\"y,z\",2\n\"p\\\",q,3\nplain,1,4\n",
    );
    repo.import(&file, &["--dataset", "k", "--key", "a,b"]);
    let csv = repo.export(&["--dataset", "k", "--format", "csv"]);
    assert_eq!(
        csv,
        r#"_key,a,b,v
"p\\,q",p\,q,3
"plain,1",plain,1,4
"x,y\,z",x,"y,z",2
"x\,y,z","x,y",z,1
"#
    );
    // `--key a --key b` is the same as `--key a,b`.
    repo.import(&file, &["--dataset", "k2", "--key", "a", "--key", "b"]);
    assert_eq!(repo.export(&["--dataset", "k2", "--format", "csv"]), csv);
    // Exported with the same key fields, the rows come back as the file had them (in key
    // order), and each re-imports under its key.
    let by_fields = repo.export(&["--dataset", "k", "--format", "csv", "--key", "a,b"]);
    assert_eq!(
        by_fields,
        "a,b,v\np\\,q,3\nplain,1,4\nx,\"y,z\",2\n\"x,y\",z,1\n"
    );
    let again = repo.file("k-again.csv", &by_fields);
    repo.import(&again, &["--dataset", "k3", "--key", "a,b"]);
    assert_eq!(rows(&repo, "k3"), rows(&repo, "k"));
}

#[test]
fn stdin_and_format_detection() {
    let repo = Repo::new();
    // NDJSON from stdin, detected from its first byte (after white space).
    let output = repo.run_with_stdin(
        &["import", "-", "--dataset", "a", "--key", "id"],
        Some(b"\n  {\"id\":\"1\",\"x\":\"y\"}\n{\"id\":\"2\"}\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(
        summary.starts_with("imported 2 rows into a in 1 commit"),
        "{summary}"
    );
    assert_eq!(
        repo.export(&["--dataset", "a", "--key", "id"]),
        "{\"id\":\"1\",\"x\":\"y\"}\n{\"id\":\"2\"}\n"
    );

    // CSV from stdin, with a byte-order mark.
    let output = repo.run_with_stdin(
        &["import", "-", "--dataset", "b", "--key", "id"],
        Some("\u{feff}id,x\n1,0\n".as_bytes()),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        repo.export(&["--dataset", "b", "--key", "id"]),
        "{\"id\":\"1\",\"x\":\"0\"}\n"
    );

    // A file without a known extension: sniffed. `--format` overrides the extension.
    let file = repo.file("data.txt", "{\"id\":\"n\"}\n");
    repo.import(&file, &["--dataset", "c", "--key", "id"]);
    assert_eq!(
        repo.export(&["--dataset", "c", "--key", "id"]),
        "{\"id\":\"n\"}\n"
    );
    let file = repo.file("looks.json", "id,x\n1,2\n");
    repo.import(&file, &["--dataset", "d", "--key", "id", "--format", "csv"]);
    assert_eq!(
        repo.export(&["--dataset", "d", "--key", "id"]),
        "{\"id\":\"1\",\"x\":\"2\"}\n"
    );

    // Stdin that arrives in pieces, the first only white space: still sniffed right.
    let mut child = Command::new(BIN)
        .arg("--repo")
        .arg(repo.path())
        .args(["import", "-", "--dataset", "pieces", "--key", "id"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n   \n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    stdin.write_all(b"{\"id\":\"late\"}\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        repo.export(&["--dataset", "pieces"]),
        "{\"_key\":\"late\",\"id\":\"late\"}\n"
    );

    // Stdin errors name stdin.
    let output = repo.run_with_stdin(
        &["import", "-", "--dataset", "e", "--key", "id"],
        Some(b"{\"id\":\"1\"}\n{\"x\":1}\n"),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("strata: stdin line 2: missing key field \"id\""),
        "{stderr}"
    );
}

#[test]
fn summary_and_batches() {
    let repo = Repo::new();
    let mut text = String::from("id,n\n");
    for i in 0..25 {
        text.push_str(&format!("{i:03},{i}\n"));
    }
    let file = repo.file("rows.csv", &text);
    let output = repo.ok(&[
        "import",
        file.to_str().unwrap(),
        "--dataset",
        "rows",
        "--key",
        "id",
        "--batch",
        "10",
        "--message",
        "first load",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(summary["rows"], 25);
    assert_eq!(summary["commits"], 3);
    assert_eq!(summary["versions"].as_array().unwrap().len(), 3);
    assert_eq!(summary["dataset"], "rows");
    assert_eq!(summary["format"], "csv");

    // Text summary: one line, then one line per version.
    let text_summary = repo.ok(&[
        "import",
        file.to_str().unwrap(),
        "--dataset",
        "rows2",
        "--key",
        "id",
        "--batch",
        "10",
    ]);
    let lines: Vec<&str> = text_summary.lines().collect();
    assert!(
        lines[0].starts_with("imported 25 rows into rows2 in 3 commits ("),
        "{text_summary}"
    );
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.starts_with("version ") && l.len() == 8 + 64)
    );

    // Nothing on stderr on a pipe: no progress bar.
    let output = repo.run(&[
        "import",
        file.to_str().unwrap(),
        "--dataset",
        "r3",
        "--key",
        "id",
    ]);
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = repo.run(&["export", "--dataset", "r3"]);
    assert!(output.stderr.is_empty());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        25
    );

    // An empty file imports nothing and says so.
    let empty = repo.file("empty.ndjson", "\n\n");
    let said = repo.ok(&[
        "import",
        empty.to_str().unwrap(),
        "--dataset",
        "x",
        "--key",
        "id",
    ]);
    assert!(said.starts_with("imported 0 rows"), "{said}");
    // A dataset with no rows does not exist: exporting it is an error naming the datasets
    // that do (a typo must not pass for an empty export).
    for format in ["ndjson", "csv"] {
        let stderr = repo.fails(&["export", "--dataset", "x", "--format", format]);
        assert!(
            stderr.starts_with("strata: not found: dataset x (no rows at latest; datasets: "),
            "{stderr}"
        );
    }
}

/// Runs an import that must fail; returns the error line.
fn import_error(repo: &Repo, name: &str, text: &str, extra: &[&str]) -> String {
    // Relative to the folder the command runs in, so the message names it as given.
    repo.file(name, text);
    let mut args = vec!["import", name, "--dataset", "bad", "--key", "id"];
    args.extend_from_slice(extra);
    let stderr = repo.fails(&args);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr.trim_end().to_string()
}

#[test]
fn bad_lines_are_named_and_nothing_of_their_batch_is_committed() {
    let repo = Repo::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "sites.ndjson",
            "{\"id\":\"1\"}\n\n{\"name\":\"x\"}\n",
            "strata: sites.ndjson line 3: missing key field \"id\"; nothing was imported",
        ),
        (
            "a.ndjson",
            "{\"id\":\"1\"}\n[1,2]\n",
            "strata: a.ndjson line 2: not a JSON object (found an array); nothing was imported",
        ),
        (
            "b.ndjson",
            "{\"id\":\"1\"}\n{\"id\": \"2\",}\n",
            "strata: b.ndjson line 2: not valid JSON (column 12): trailing comma; nothing was imported",
        ),
        (
            "c.ndjson",
            "{\"id\":null}\n",
            "strata: c.ndjson line 1: key field \"id\" is null: a key must be a string, number or boolean; nothing was imported",
        ),
        (
            "d.ndjson",
            "{\"id\":\"\"}\n",
            "strata: d.ndjson line 1: key field \"id\" is empty; nothing was imported",
        ),
        (
            "sites.csv",
            "id,name\n1,a\n2,b,extra\n",
            "strata: sites.csv line 3: 3 fields where the header has 2; nothing was imported",
        ),
        (
            "e.csv",
            "name,value\na,1\n",
            "strata: e.csv line 1: missing key field \"id\" (the header has \"name\", \"value\"); nothing was imported",
        ),
        (
            "f.csv",
            "id,x,x\n1,2,3\n",
            "strata: f.csv line 1: the header has the field \"x\" twice; nothing was imported",
        ),
        (
            "g.csv",
            "id,x\n1,a\n,b\n",
            "strata: g.csv line 3: key field \"id\" is empty; nothing was imported",
        ),
    ];
    for (name, text, expected) in cases {
        assert_eq!(import_error(&repo, name, text, &[]), *expected, "{name}");
    }
    // Invalid UTF-8 in a CSV record.
    std::fs::write(repo.path().join("h.csv"), b"id,x\n1,\xff\n").unwrap();
    let stderr = repo.fails(&["import", "h.csv", "--dataset", "bad", "--key", "id"]);
    assert!(
        stderr.starts_with("strata: h.csv line 2: field 2 is not valid UTF-8"),
        "{stderr}"
    );
    // A missing file.
    let stderr = repo.fails(&["import", "nope.csv", "--dataset", "bad", "--key", "id"]);
    assert_eq!(stderr, "strata: no such file: nope.csv\n");

    // None of it was committed: the dataset does not exist.
    let stderr = repo.fails(&["export", "--dataset", "bad"]);
    assert!(
        stderr.starts_with("strata: not found: dataset bad "),
        "{stderr}"
    );

    // With batches of 2, a bad 6th line keeps the first two batches (4 rows).
    let mut text = String::new();
    for i in 1..=5 {
        text.push_str(&format!("{{\"id\":\"{i}\"}}\n"));
    }
    text.push_str("{\"id\":\"6\"\n{\"id\":\"7\"}\n");
    let error = import_error(&repo, "big.ndjson", &text, &["--batch", "2"]);
    assert!(
        error.starts_with(
            "strata: big.ndjson line 6: not valid JSON (column 9): EOF while parsing an object; \
             the 4 rows before it stay committed (2 commits, version "
        ),
        "{error}"
    );
    assert!(error.ends_with("); nothing of its batch was"), "{error}");
    assert_eq!(
        repo.export(&["--dataset", "bad", "--key", "id"]),
        "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n"
    );

    // Usage errors exit 2.
    let output = repo.run(&["import", "x.csv", "--key", "id"]);
    assert_eq!(output.status.code(), Some(2));
    let output = repo.run(&[
        "import",
        "x.csv",
        "--dataset",
        "d",
        "--key",
        "id",
        "--batch",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_csv_whose_columns_change_late_is_written_whole_and_notes_each_file_row_once() {
    let repo = Repo::new();
    {
        let lib = strata::Repository::open(repo.path()).unwrap();
        let mut tx = lib.transaction();
        tx.put("late", "a", br#"{"x":"1"}"#);
        tx.put("late", "b", br#"{"x":"2"}"#);
        // Sorted after the file row: the first row needing `_value` comes once rows were
        // written with the columns of "a", so the CSV takes its second pass.
        tx.put("late", "z", b"7");
        tx.commit().unwrap();
        lib.put_file("late", "f", &mut &b"file bytes"[..]).unwrap();
    }
    let output = repo.run(&["export", "--dataset", "late", "--format", "csv"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "_key,_value,x\na,,1\nb,,2\nz,7,\n"
    );
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "strata: note: skipped 1 file row (f): export it with `strata files get`\n"
    );
}

#[test]
fn a_csv_export_without_a_usable_temporary_folder_takes_its_two_passes() {
    let repo = Repo::new();
    {
        let lib = strata::Repository::open(repo.path()).unwrap();
        let mut tx = lib.transaction();
        tx.put("even", "a", br#"{"x":"1"}"#);
        tx.put("even", "b", br#"{"x":"2"}"#);
        tx.put("late", "a", br#"{"x":"1"}"#);
        tx.put("late", "z", b"7");
        tx.commit().unwrap();
    }
    for (dataset, expected) in [
        ("even", "_key,x\na,1\nb,2\n"),
        ("late", "_key,_value,x\na,,1\nz,7,\n"),
    ] {
        let args = ["export", "--dataset", dataset, "--format", "csv"];
        // The same table with the temporary file and without one.
        assert_eq!(repo.ok(&args), expected);
        let output = Command::new(BIN)
            .arg("--repo")
            .arg(repo.path())
            .args(args)
            .env("TMPDIR", repo.path().join("no such folder"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
    }
}

#[test]
fn export_of_rows_that_are_not_objects() {
    let repo = Repo::new();
    {
        let lib = strata::Repository::open(repo.path()).unwrap();
        let mut tx = lib.transaction();
        tx.put("mixed", "a", br#"{"x":1}"#);
        tx.put("mixed", "b", b"plain text");
        tx.put("mixed", "c", b"[1,2]");
        tx.put("mixed", "d", b"\xff\x00");
        tx.put("mixed", "e", b"{\n  \"pretty\": true\n}");
        tx.commit().unwrap();
        lib.put_file("mixed", "f", &mut &b"file bytes"[..]).unwrap();
    }
    // Every line carries its key; a value that is not compact JSON travels as `_raw`
    // bytes, so it comes back exactly. File rows are not table rows: skipped, with a note.
    let output = repo.run(&["export", "--dataset", "mixed"]);
    assert!(output.status.success());
    let ndjson = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"_key":"a","x":1}"#,
            r#"{"_key":"b","_raw":"plain text"}"#,
            r#"{"_key":"c","_value":[1,2]}"#,
            r#"{"_key":"d","_raw":{"hex":"ff00"}}"#,
            r#"{"_key":"e","_raw":"{\n  \"pretty\": true\n}"}"#,
        ]
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "strata: note: skipped 1 file row (f): export it with `strata files get`\n"
    );

    // CSV cells are text: a value that is not JSON is refused, before any output.
    let output = repo.run(&["export", "--dataset", "mixed", "--format", "csv"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("strata: row b: its value is not compact JSON"),
        "{stderr}"
    );

    // An unknown version.
    let stderr = repo.fails(&["export", "--dataset", "mixed", "--at", "00000000"]);
    assert!(stderr.contains("unknown version 00000000"), "{stderr}");
}

/// Every row of a dataset, read through the library: (key, value) in key order.
fn rows(repo: &Repo, dataset: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let lib = strata::Repository::open(repo.path()).unwrap();
    let view = lib.view().unwrap();
    view.range(dataset, strata::Range::all())
        .map(|row| {
            let row = row.unwrap();
            (row.key, row.value)
        })
        .collect()
}

#[test]
fn every_export_carries_its_keys_and_reimports_to_the_same_rows() {
    let repo = Repo::new();
    {
        let lib = strata::Repository::open(repo.path()).unwrap();
        let mut tx = lib.transaction();
        let data: &[(&str, &[u8], &[u8])] = &[
            // The value's own "id" is not the key: the key must still travel.
            ("mixed", b"k1", br#"{"id":"other","n":1.10}"#),
            ("mixed", b"k2", b"{}"),
            ("mixed", b"k3", br#"{"_key":"x","_value":2}"#),
            ("mixed", b"k4", br#"{"_value":1}"#),
            ("mixed", b"k5", br#"{"_raw":"r"}"#),
            ("mixed", b"n1", b"42"),
            ("mixed", b"n2", br#""text""#),
            ("mixed", b"n3", b"[1, 2]"),
            ("mixed", b"t1", b"plain text"),
            ("mixed", b"t2", b""),
            ("mixed", b"\xff\x00", b"\xfe binary"),
            ("mixed", b"0xABCD", br#"{"a":"b"}"#),
            ("mixed", b"line\nbreak \"q\"", b"{\n  \"pretty\": true\n}"),
            // Only JSON values, for CSV.
            ("json", b"k1", br#"{"id":"other","name":"a"}"#),
            ("json", b"k2", br#"{"id":"k2","name":"b,\"c\""}"#),
            ("json", b"k3", br#"{"id":"k3","n":1.10}"#),
            ("json", b"k4", b"[1,2]"),
            ("json", b"k5", br#"{"name":"c","id":"k5"}"#),
            ("json", b"k6", br#"{"id":"\u0041","name":""}"#),
            ("json", b"k7", br#"{"id":"k7"}"#),
            ("json", b"0x01", br#""0x01""#),
        ];
        for (dataset, key, value) in data {
            tx.put(dataset, key, value);
        }
        tx.commit().unwrap();
    }

    let ndjson = repo.export(&["--dataset", "mixed"]);
    assert!(
        ndjson.contains(r#"{"_key":"k1","id":"other","n":1.10}"#),
        "{ndjson}"
    );
    assert!(
        ndjson.contains(r#"{"_key":"k3","_value":{"_key":"x","_value":2}}"#),
        "{ndjson}"
    );
    assert!(ndjson.contains(r#"{"_key":{"hex":"ff00"},"_raw":{"hex":"fe2062696e617279"}}"#));
    let file = repo.file("mixed.ndjson", &ndjson);
    repo.import(&file, &["--dataset", "mixed-copy"]);
    assert_eq!(rows(&repo, "mixed-copy"), rows(&repo, "mixed"));
    assert_eq!(repo.export(&["--dataset", "mixed-copy"]), ndjson);

    // CSV: objects of strings with the header's fields are cells; any other JSON value
    // travels whole in `_value`.
    let csv = repo.export(&["--dataset", "json", "--format", "csv"]);
    assert_eq!(
        csv,
        r#"_key,_value,id,name
0x01,"""0x01""",,
k1,,other,a
k2,,k2,"b,""c"""
k3,"{""id"":""k3"",""n"":1.10}",,
k4,"[1,2]",,
k5,"{""name"":""c"",""id"":""k5""}",,
k6,"{""id"":""\u0041"",""name"":""""}",,
k7,"{""id"":""k7""}",,
"#
    );
    let file = repo.file("json.csv", &csv);
    repo.import(&file, &["--dataset", "json-copy"]);
    assert_eq!(rows(&repo, "json-copy"), rows(&repo, "json"));
    for dataset in ["json", "mixed"] {
        let ndjson = repo.export(&["--dataset", dataset, "--format", "ndjson"]);
        let file = repo.file("again.ndjson", &ndjson);
        let copy = format!("{dataset}-again");
        repo.import(&file, &["--dataset", &copy, "--format", "ndjson"]);
        assert_eq!(rows(&repo, &copy), rows(&repo, dataset));
    }
}

#[test]
fn export_with_key_fields_refuses_rows_those_fields_do_not_name() {
    let repo = Repo::new();
    repo.ok(&["put", "d", "k1", r#"{"id":"other"}"#]);
    for format in ["ndjson", "csv"] {
        let output = repo.run(&[
            "export",
            "--dataset",
            "d",
            "--key",
            "id",
            "--format",
            format,
        ]);
        assert_eq!(output.status.code(), Some(1), "{format}");
        assert!(output.stdout.is_empty(), "{format}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(
            stderr,
            "strata: row k1: its key field \"id\" gives the key other, not k1; export without --key to carry every key in the `_key` column\n",
            "{format}"
        );
    }
    repo.ok(&["put", "d", "k2", "7"]);
    repo.ok(&["del", "d", "k1"]);
    let stderr = repo.fails(&["export", "--dataset", "d", "--key", "id"]);
    assert!(
        stderr.starts_with("strata: row k2: its value is a number, not a JSON object"),
        "{stderr}"
    );
}

#[test]
fn repeated_keys_are_reported_and_strict_refuses_them() {
    let repo = Repo::new();
    let file = repo.file("dup.csv", "id,v\na,1\na,2\nb,1\na,3\nb,2\nc,1\n");
    let output = repo.run(&["import", "dup.csv", "--dataset", "d", "--key", "id"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("imported 6 rows into d in 1 commit"),
        "{stdout}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "strata: warning: 3 of 6 rows repeat the key of an earlier row; the last row with each key wins: a, b\n"
    );
    assert_eq!(
        repo.export(&["--dataset", "d", "--key", "id"]),
        "{\"id\":\"a\",\"v\":\"3\"}\n{\"id\":\"b\",\"v\":\"2\"}\n{\"id\":\"c\",\"v\":\"1\"}\n"
    );
    let summary: serde_json::Value = serde_json::from_str(&repo.ok(&[
        "import",
        "dup.csv",
        "--dataset",
        "d2",
        "--key",
        "id",
        "--json",
    ]))
    .unwrap();
    assert_eq!(summary["rows"], 6);
    assert_eq!(summary["repeated"], 3);
    assert_eq!(summary["repeated_keys"], serde_json::json!(["a", "b"]));

    // --strict: nothing is written, from a file or from stdin.
    let stderr = repo.fails(&[
        "import",
        "dup.csv",
        "--dataset",
        "s",
        "--key",
        "id",
        "--strict",
    ]);
    assert_eq!(
        stderr,
        "strata: dup.csv: 3 of 6 rows repeat the key of an earlier row: a, b; with --strict nothing was imported\n"
    );
    let bytes = std::fs::read(&file).unwrap();
    let output = repo.run_with_stdin(
        &["import", "-", "--dataset", "s", "--key", "id", "--strict"],
        Some(&bytes),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(rows(&repo, "s"), []);
    // Without repeats, --strict imports as usual (from stdin too).
    let output = repo.run_with_stdin(
        &[
            "import",
            "-",
            "--dataset",
            "s",
            "--key",
            "id",
            "--strict",
            "--batch",
            "1",
        ],
        Some(b"id,v\nx,1\ny,2\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty());
    assert_eq!(rows(&repo, "s").len(), 2);
}

#[test]
fn key_field_names_are_trimmed_and_must_not_be_empty() {
    let repo = Repo::new();
    let file = repo.file("k.csv", "a,b,v\n1,2,x\n");
    repo.import(&file, &["--dataset", "d", "-k", " a , b"]);
    assert_eq!(
        rows(&repo, "d"),
        [(b"1,2".to_vec(), br#"{"a":"1","b":"2","v":"x"}"#.to_vec())]
    );
    for keys in ["a,", " ", "a,  ,b"] {
        let stderr = repo.fails(&["import", "k.csv", "--dataset", "e", "-k", keys]);
        assert_eq!(
            stderr, "strata: --key: a key field name is empty\n",
            "{keys:?}"
        );
    }
}

#[test]
fn messages_quote_at_most_about_200_bytes_of_user_data() {
    let repo = Repo::new();
    // 5 MB on one line: no usable header.
    let big = "x".repeat(5 << 20);
    repo.file("big.csv", &big);
    let stderr = repo.fails(&["import", "big.csv", "--dataset", "d", "--key", "id"]);
    assert!(stderr.len() < 400, "{} bytes", stderr.len());
    assert!(
        stderr.starts_with("strata: big.csv line 1: missing key field \"id\""),
        "{stderr}"
    );
    assert!(stderr.contains("…"), "{stderr}");
    // A huge key field name; a multi-byte character at the cut.
    let name = "é".repeat(50_000);
    let stderr = repo.fails(&["import", "big.csv", "--dataset", "d", "--key", &name]);
    assert!(stderr.len() < 600, "{} bytes", stderr.len());
    // The row commands: a huge key that is not there.
    let key = "k".repeat(100_000);
    let stderr = repo.fails(&["get", "d", &key]);
    assert!(stderr.len() < 400, "{} bytes", stderr.len());
    assert!(stderr.starts_with("strata: not found: row kkk"), "{stderr}");
    // NDJSON: a huge line that is not an object, a huge duplicate header field.
    repo.file("big.ndjson", &format!("{{\"id\":[\"{big}\"]}}\n"));
    let stderr = repo.fails(&["import", "big.ndjson", "--dataset", "d", "--key", "id"]);
    assert!(stderr.len() < 400, "{} bytes", stderr.len());
    repo.file("twice.csv", &format!("id,{big},{big}\n"));
    let stderr = repo.fails(&["import", "twice.csv", "--dataset", "d", "--key", "id"]);
    assert!(stderr.len() < 400, "{} bytes", stderr.len());
}

#[test]
fn crlf_csv_keeps_its_data_and_comes_back_with_crlf() {
    let repo = Repo::new();
    // CRLF line ends, a CRLF and a lone CR inside quoted fields, a last line without one.
    let text = "id,note\r\n1,\"two\r\nlines\"\r\n2,\"cr\ronly\"\r\n3,plain";
    let file = repo.file("crlf.csv", text);
    repo.import(&file, &["--dataset", "d", "--key", "id"]);
    // The line breaks inside fields are data: kept exactly.
    assert_eq!(
        repo.ok(&["get", "d", "1"]),
        "{\"id\":\"1\",\"note\":\"two\\r\\nlines\"}\n"
    );
    assert_eq!(
        repo.ok(&["get", "d", "2"]),
        "{\"id\":\"2\",\"note\":\"cr\\ronly\"}\n"
    );
    // The line ends between records are not: export writes LF, or CRLF with --crlf
    // (and always ends the last record).
    let export = ["--dataset", "d", "--key", "id", "--format", "csv"];
    assert_eq!(
        repo.export(&export),
        "id,note\n1,\"two\r\nlines\"\n2,\"cr\ronly\"\n3,plain\n"
    );
    assert_eq!(
        repo.export(&[&export[..], &["--crlf"]].concat()),
        format!("{text}\r\n")
    );
    // NDJSON too.
    assert_eq!(
        repo.export(&["--dataset", "d", "--key", "id", "--crlf"])
            .matches("\r\n")
            .count(),
        3
    );
}

#[test]
fn empty_dataset_names_and_keys_are_refused() {
    let repo = Repo::new();
    repo.file("ok.csv", "id\n1\n");
    let stderr = repo.fails(&["import", "ok.csv", "--dataset", "", "--key", "id"]);
    assert_eq!(
        stderr,
        "strata: invalid argument: a dataset name cannot be empty\n"
    );
    let stderr = repo.fails(&["export", "--dataset", ""]);
    assert_eq!(
        stderr,
        "strata: invalid argument: a dataset name cannot be empty\n"
    );
    repo.file(
        "empty-key.ndjson",
        "{\"_key\":\"a\"}\n{\"_key\":\"\",\"v\":1}\n",
    );
    let stderr = repo.fails(&["import", "empty-key.ndjson", "--dataset", "d"]);
    assert_eq!(
        stderr,
        "strata: empty-key.ndjson line 2: a row key cannot be empty; nothing was imported\n"
    );
    repo.file("empty-key.csv", "_key,v\n,1\n");
    let stderr = repo.fails(&["import", "empty-key.csv", "--dataset", "d"]);
    assert_eq!(
        stderr,
        "strata: empty-key.csv line 2: a row key cannot be empty; nothing was imported\n"
    );
    assert_eq!(rows(&repo, "d"), []);
}

#[test]
fn the_examples_dataset_round_trips_byte_for_byte() {
    let repo = Repo::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airports.csv");
    let versions = repo.import(&source, &["--dataset", "airports", "--key", "iata"]);
    assert_eq!(versions.len(), 1);
    let original = std::fs::read_to_string(&source).unwrap();
    assert_eq!(
        repo.export(&["--dataset", "airports", "--format", "csv", "--key", "iata"]),
        original
    );
    assert_eq!(
        repo.export(&["--dataset", "airports"]).lines().count(),
        3376
    );
}
