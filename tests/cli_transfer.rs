//! `strata import` and `strata export`, through the real binary: exact round trips in both
//! formats and at several versions, stdin, composite keys, and every error path.

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
    let exported = repo.export(&["--dataset", "sites", "--format", "csv"]);
    assert_eq!(exported, SITES_CSV);

    // Each row is a JSON object of strings in header order.
    let ndjson = repo.export(&["--dataset", "sites"]);
    let first = ndjson.lines().next().unwrap();
    assert_eq!(
        first,
        r#"{"zone":"north","id":"001","name":"Spring \"Ojo\" 1","depth":"4.50","note":"","code":"007"}"#
    );

    // Re-importing the export into another dataset exports identically.
    let again = repo.file("again.csv", &exported);
    repo.import(&again, &["--dataset", "copy", "--key", "id"]);
    assert_eq!(
        repo.export(&["--dataset", "copy", "--format", "csv"]),
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
    assert_eq!(
        repo.export(&["--dataset", "sites", "--format", "csv"]),
        v2_text
    );
    let at1 = repo.export(&["--dataset", "sites", "--format", "csv", "--at", &first[0]]);
    assert_eq!(at1, SITES_CSV);
    let at2 = repo.export(&["--dataset", "sites", "--format", "csv", "--at", &second[0]]);
    assert_eq!(at2, v2_text);

    // NDJSON exports at each version re-import to identical exports.
    for version in [&first[0], &second[0]] {
        let ndjson = repo.export(&["--dataset", "sites", "--at", version]);
        let file = repo.file("again.ndjson", &ndjson);
        let target = format!("copy-{}", &version[..8]);
        repo.import(&file, &["--dataset", &target, "--key", "id"]);
        assert_eq!(repo.export(&["--dataset", &target]), ndjson);
        assert_eq!(
            repo.export(&["--dataset", &target, "--format", "csv"]),
            repo.export(&["--dataset", "sites", "--format", "csv", "--at", version])
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
    let exported = repo.export(&["--dataset", "obs"]);
    assert_eq!(exported, observations);

    // White space outside strings (pretty spacing, blank lines, CRLF line ends) is
    // dropped; everything else is kept as written, escapes included.
    let loose =
        "\r\n{ \"id\" : \"b\",  \"v\" : \"\\u00e9\" }\r\n\n   \n{\"id\":\"a\",\"v\":[ 1 , 2 ]}";
    let file = repo.file("loose.jsonl", loose);
    repo.import(&file, &["--dataset", "loose", "--key", "id"]);
    let exported = repo.export(&["--dataset", "loose"]);
    assert_eq!(
        exported,
        "{\"id\":\"a\",\"v\":[1,2]}\n{\"id\":\"b\",\"v\":\"\\u00e9\"}\n"
    );
    let file = repo.file("loose2.ndjson", &exported);
    repo.import(&file, &["--dataset", "loose2", "--key", "id"]);
    assert_eq!(repo.export(&["--dataset", "loose2"]), exported);

    // NDJSON to CSV: non-string values as their JSON text, absent fields empty, columns in
    // first-seen order.
    let csv = repo.export(&["--dataset", "obs", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,big,dec,neg,exp,nested,none,text,zero,empty,list,obj,z_first"
    );
    assert_eq!(
        lines.next().unwrap(),
        r#"a1,12345678901234567890,1.10,-0.000,1E+400,"{""z"":[1,2,{""y"":null}],""a"":true}",null,"Zürich ""q"" \ "#
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
    let exported = repo.export(&["--dataset", "n", "--key-field", "_key"]);
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
    let csv = repo.export(&["--dataset", "k", "--format", "csv", "--key-field", "key"]);
    assert_eq!(
        csv,
        r#"key,a,b,v
"p\\,q",p\,q,3
"plain,1",plain,1,4
"x,y\,z",x,"y,z",2
"x\,y,z","x,y",z,1
"#
    );
    // `--key a --key b` is the same as `--key a,b`.
    repo.import(&file, &["--dataset", "k2", "--key", "a", "--key", "b"]);
    assert_eq!(
        repo.export(&["--dataset", "k2", "--format", "csv", "--key-field", "key"]),
        csv
    );
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
        repo.export(&["--dataset", "a"]),
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
        repo.export(&["--dataset", "b"]),
        "{\"id\":\"1\",\"x\":\"0\"}\n"
    );

    // A file without a known extension: sniffed. `--format` overrides the extension.
    let file = repo.file("data.txt", "{\"id\":\"n\"}\n");
    repo.import(&file, &["--dataset", "c", "--key", "id"]);
    assert_eq!(repo.export(&["--dataset", "c"]), "{\"id\":\"n\"}\n");
    let file = repo.file("looks.json", "id,x\n1,2\n");
    repo.import(&file, &["--dataset", "d", "--key", "id", "--format", "csv"]);
    assert_eq!(
        repo.export(&["--dataset", "d"]),
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
    assert_eq!(repo.export(&["--dataset", "pieces"]), "{\"id\":\"late\"}\n");

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
    // A dataset with no rows exports nothing.
    assert_eq!(repo.export(&["--dataset", "x"]), "");
    assert_eq!(repo.export(&["--dataset", "x", "--format", "csv"]), "");
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
            "strata: b.ndjson line 2: not valid JSON (column 12): key must be a string; nothing was imported",
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
            "strata: e.csv line 1: missing key field \"id\" (the header has \"name\", \"value\")",
        ),
        (
            "f.csv",
            "id,x,x\n1,2,3\n",
            "strata: f.csv line 1: the header has the field \"x\" twice",
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
    assert!(stderr.starts_with("strata: opening nope.csv: "), "{stderr}");

    // None of it was committed.
    assert_eq!(repo.export(&["--dataset", "bad"]), "");

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
        repo.export(&["--dataset", "bad"]),
        "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n"
    );

    // Usage errors exit 2.
    let output = repo.run(&["import", "x.csv", "--dataset", "d"]);
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
    let ndjson = repo.export(&["--dataset", "mixed"]);
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(lines[0], r#"{"x":1}"#);
    assert_eq!(lines[1], r#"{"key":"b","value":"plain text"}"#);
    assert_eq!(lines[2], r#"{"key":"c","value":[1,2]}"#);
    assert_eq!(lines[3], r#"{"key":"d","value":{"hex":"ff00"}}"#);
    assert_eq!(lines[4], r#"{"pretty":true}"#);
    assert!(
        lines[5].starts_with(r#"{"key":"f","file":{"hash":""#),
        "{}",
        lines[5]
    );
    assert_eq!(lines.len(), 6);

    // CSV needs objects: the error comes before any output.
    let output = repo.run(&["export", "--dataset", "mixed", "--format", "csv"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("strata: row b of dataset mixed is not a JSON object"),
        "{stderr}"
    );

    // An unknown version.
    let stderr = repo.fails(&["export", "--dataset", "mixed", "--at", "00000000"]);
    assert!(stderr.contains("unknown version 00000000"), "{stderr}");
}

#[test]
fn the_examples_dataset_round_trips_byte_for_byte() {
    let repo = Repo::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airports.csv");
    let versions = repo.import(&source, &["--dataset", "airports", "--key", "iata"]);
    assert_eq!(versions.len(), 1);
    let original = std::fs::read_to_string(&source).unwrap();
    assert_eq!(
        repo.export(&["--dataset", "airports", "--format", "csv"]),
        original
    );
    assert_eq!(
        repo.export(&["--dataset", "airports"]).lines().count(),
        3376
    );
}
