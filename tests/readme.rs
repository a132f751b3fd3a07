//! The README's "Five-minute tour", run as written.
//!
//! Every ```sh block of that section is a transcript: `$ strata …` lines are commands (run
//! with the real binary, in order, each of which must succeed), `$ cd DIR` changes folder,
//! and the other lines are the output the command before printed. Output is checked
//! loosely, because versions, times and device ids differ on every run: each shown line
//! must appear among the command's real output lines, in order, once every run of 8+ hex
//! characters and every number is normalized; `...` inside a line matches anything, and a
//! line that is only `...` marks lines left out. Versions the README shows are mapped to
//! the real ones as they are printed, so a later `--replaces e923798e` uses the version the
//! run really made.
//!
//! The run happens in a temporary folder laid out like this repository (`examples/` is
//! copied in), so the tour's relative paths work as they do for a reader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// One command of the tour and the output the README shows for it.
#[derive(Debug)]
struct Step {
    line: String,
    shown: Vec<String>,
}

/// The steps of the README section headed `## Five-minute tour`.
fn tour_steps(readme: &str) -> Vec<Step> {
    let start = readme
        .find("\n## Five-minute tour")
        .expect("README.md has a \"## Five-minute tour\" section");
    let section = &readme[start + 1..];
    let section = match section[3..].find("\n## ") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut in_sh = false;
    for line in section.lines() {
        if !in_sh {
            in_sh = line.trim_end() == "```sh";
            continue;
        }
        if line.trim_end() == "```" {
            in_sh = false;
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: command.to_string(),
                shown: Vec::new(),
            });
        } else {
            steps
                .last_mut()
                .expect("the tour's first sh line is a command")
                .shown
                .push(line.to_string());
        }
    }
    steps
}

/// Splits a command line as a POSIX shell would, for the quoting the tour uses: single
/// quotes, double quotes (with `\"` and `\\`), backslash escapes, `#` comments.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            w.push(chars.next().unwrap());
                        }
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(c) = chars.next() {
                    w.push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    words
}

/// Every maximal run of at least 8 lowercase hex characters, in order.
fn hex_runs(text: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let hex = c.is_ascii_digit() || ('a'..='f').contains(&c);
        match (hex, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= 8 {
                    runs.push(&text[s..i]);
                }
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// A line with what differs between runs taken out: runs of 8+ hex characters become `#`,
/// numbers (with `.` or `,` inside) become `0`, white space runs one space.
fn normalize(line: &str) -> String {
    let mut line = line.to_string();
    for run in hex_runs(&line.clone()) {
        line = line.replacen(run, "#", 1);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while let Some(&next) = chars.peek() {
                let continues = next.is_ascii_digit()
                    || ((next == '.' || next == ',')
                        && chars.clone().nth(1).is_some_and(|d| d.is_ascii_digit()));
                if !continues {
                    break;
                }
                chars.next();
            }
            out.push('0');
        } else if c.is_whitespace() {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.trim_end().to_string()
}

/// Whether `line` matches `pattern`, where `...` in the pattern matches anything.
fn glob(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    if !line.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Copies a folder's files (not recursive: `examples/` is flat).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn the_five_minute_tour_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = tour_steps(&readme);
    assert!(
        steps.len() >= 8,
        "the tour has only {} commands",
        steps.len()
    );

    let work = tempfile::tempdir().unwrap();
    copy_dir(&root.join("examples"), &work.path().join("examples"));
    let mut cwd: PathBuf = work.path().to_path_buf();
    // Versions as the README shows them → as this run made them.
    let mut versions: HashMap<String, String> = HashMap::new();
    let mut outputs: Vec<(String, String)> = Vec::new();

    for step in &steps {
        let mut words = shell_words(&step.line);
        assert!(!words.is_empty(), "empty command in the tour");
        if words[0] == "cd" {
            assert_eq!(words.len(), 2, "`{}`: cd takes one folder", step.line);
            cwd = cwd.join(&words[1]);
            assert!(cwd.is_dir(), "`{}`: no such folder", step.line);
            assert!(step.shown.is_empty());
            continue;
        }
        assert_eq!(
            words[0], "strata",
            "`{}`: the tour may only run strata and cd",
            step.line
        );
        let redirect = match words.iter().position(|w| w == ">") {
            Some(at) => {
                assert_eq!(at + 2, words.len(), "`{}`: `>` takes one file", step.line);
                let file = words.pop().unwrap();
                words.pop();
                Some(cwd.join(file))
            }
            None => None,
        };
        // A version the README shows, by prefix, becomes this run's.
        for word in words.iter_mut() {
            if word.len() >= 8 && hex_runs(word) == [word.as_str()] {
                let matches: Vec<&String> = versions
                    .keys()
                    .filter(|v| v.starts_with(word.as_str()))
                    .collect();
                assert!(
                    matches.len() == 1,
                    "`{}`: {word} names no version shown earlier in the tour",
                    step.line
                );
                *word = versions[matches[0]][..word.len()].to_string();
            }
        }
        // Commit times order forks: keep them apart by more than a millisecond.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let output = Command::new(BIN)
            .args(&words[1..])
            .current_dir(&cwd)
            .env_remove("STRATA_REPO")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "`{}` (run as {words:?}) failed: {}{}",
            step.line,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some(file) = &redirect {
            std::fs::write(file, &stdout).unwrap();
            assert!(step.shown.is_empty());
        }

        // The output shown must appear, in order.
        let real: Vec<String> = stdout.lines().map(normalize).collect();
        let mut at = 0;
        for shown in &step.shown {
            if shown.trim() == "..." {
                continue;
            }
            let pattern = normalize(shown);
            match real[at..].iter().position(|line| glob(&pattern, line)) {
                Some(found) => at += found + 1,
                None => panic!(
                    "`{}`: the README shows\n  {shown}\nbut the output (from line {}) was:\n{stdout}",
                    step.line,
                    at + 1
                ),
            }
        }
        // Learn the versions the output shows, when it is shown whole.
        if !step.shown.iter().any(|l| l.contains("...")) {
            let shown_text = step.shown.join("\n");
            let shown: Vec<&str> = hex_runs(&shown_text)
                .into_iter()
                .filter(|r| r.len() == 64)
                .collect();
            let made: Vec<&str> = hex_runs(&stdout)
                .into_iter()
                .filter(|r| r.len() == 64)
                .collect();
            for (shown, made) in shown.iter().zip(&made) {
                versions
                    .entry(shown.to_string())
                    .or_insert_with(|| made.to_string());
            }
        }
        outputs.push((step.line.clone(), stdout));
    }

    // A few results, checked exactly.
    let output_of = |prefix: &str| -> &str {
        &outputs
            .iter()
            .find(|(line, _)| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("the tour has no `{prefix}`"))
            .1
    };
    assert!(
        output_of("strata import").starts_with("imported 3,376 rows into airports in 1 commit")
    );
    assert!(output_of("strata forks airports SFO").lines().count() == 2);
    let merged = output_of("strata merge").trim();
    assert_eq!(merged.len(), 64);
    let diff = output_of("strata diff");
    assert!(diff.starts_with("M airports SFO\n"), "{diff}");
    assert_eq!(diff.lines().count(), 3, "{diff}");
    let old = output_of("strata get airports SFO --at");
    assert!(
        old.contains(r#""name":"San Francisco International","#),
        "{old}"
    );
    let exported = std::fs::read_to_string(cwd.join("airports.csv")).unwrap();
    assert_eq!(exported.lines().count(), 3377);
    assert!(exported.contains("\nSFO,San Francisco International Airport,San Francisco,"));
    // Apart from the merged row, the export is the original file.
    let original = std::fs::read_to_string(work.path().join("examples/airports.csv")).unwrap();
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(exported.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("SFO,"));
}

#[test]
fn shell_words_and_normalize() {
    assert_eq!(
        shell_words(r#"strata put a b '{"x":"y z"}' -m "it's \"ok\"" # note"#),
        [
            "strata",
            "put",
            "a",
            "b",
            r#"{"x":"y z"}"#,
            "-m",
            r#"it's "ok""#
        ]
    );
    assert_eq!(
        normalize("imported 3,376 rows (0.05 s, 67,105 rows/s)  e923798e55"),
        "imported 0 rows (0 s, 0 rows/s) #"
    );
    assert_eq!(
        normalize("| Date:    2026-11-22T03:25:15Z"),
        "| Date: 0-0-0T0:0:0Z"
    );
    assert!(glob("in .../tour/.strata", "in /tmp/x/tour/.strata"));
    assert!(!glob("in .../tour/.strata", "in /tmp/x/other/.strata"));
}

/// The README's first command: `strata demo` runs the tour and every check passes.
#[test]
fn the_demo_runs_and_checks_itself() {
    let output = Command::new(BIN)
        .args(["demo", "--keep"])
        .env_remove("STRATA_REPO")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("every check passed"), "{stdout}");
    for step in [
        "$ strata init",
        "$ strata import airports.csv --dataset airports --key iata",
        "$ strata del airports 00M",
        "--replaces ",
        "$ strata forks airports SFO",
        "$ strata merge ",
        "$ strata diff ",
        "$ strata get airports SFO --at ",
        "$ strata export --dataset airports --format csv --key iata --at ",
        "$ strata fsck",
    ] {
        assert!(stdout.contains(step), "the demo has no `{step}`:\n{stdout}");
    }
    // With --keep the folder stays, and the transcript can be continued there.
    let folder = stdout
        .lines()
        .find_map(|l| l.strip_prefix("$ cd "))
        .expect("the demo names its folder");
    let folder = Path::new(folder);
    assert!(folder.join(".strata").is_dir());
    let get = Command::new(BIN)
        .args(["get", "airports", "SFO"])
        .current_dir(folder)
        .env_remove("STRATA_REPO")
        .output()
        .unwrap();
    assert!(get.status.success());
    assert!(String::from_utf8_lossy(&get.stdout).contains("San Francisco International Airport"));
    std::fs::remove_dir_all(folder).unwrap();
}
