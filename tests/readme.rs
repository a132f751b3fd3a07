//! The README's "Five-minute tour", pasted into a shell as written.
//!
//! Every ```sh block of that section is a transcript: `$ ` lines are what a reader pastes,
//! the other lines the output the command before printed. The commands run, in order, in
//! one `sh` with `set -e` (each must succeed), from a temporary copy of this folder's
//! `examples/`, with the real binary first on PATH and TMPDIR pointing at a folder of the
//! test's own. Output is checked loosely, because versions, times and device ids differ on
//! every run: each shown line must appear among the command's real output lines, in order,
//! once every run of 8+ hex characters and every number is normalized; `...` inside a line
//! matches anything, and a line that is only `...` marks lines left out.

use std::path::Path;
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

/// Marks the start of each command's output in the shell's stdout.
const MARK: &str = "@@strata-readme-step@@";

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

    // A checkout as a reader has it (examples/ only), and a TMPDIR of the test's own.
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("checkout");
    copy_dir(&root.join("examples"), &checkout.join("examples"));
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut script = String::from("set -e\n");
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!("echo '{MARK} {i}'\n{}\n", step.line));
        // Commit times order forks: keep them apart by more than a millisecond.
        script.push_str("sleep 0.01\n");
    }
    script.push_str("echo \"$PWD\" > \"$TMPDIR/tour-folder\"\n");
    let bin = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&checkout)
        .env("PATH", path)
        .env("TMPDIR", &tmp)
        .env_remove("STRATA_REPO")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "the tour failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Each command's output, by step.
    let mut outputs: Vec<String> = vec![String::new(); steps.len()];
    let mut current = None;
    for line in stdout.lines() {
        if let Some(i) = line
            .strip_prefix(MARK)
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            current = Some(i);
            continue;
        }
        let i = current.expect("output before the first command");
        outputs[i].push_str(line);
        outputs[i].push('\n');
    }
    for (step, real) in steps.iter().zip(&outputs) {
        // The output shown must appear, in order.
        let lines: Vec<String> = real.lines().map(normalize).collect();
        let mut at = 0;
        for shown in &step.shown {
            if shown.trim() == "..." {
                continue;
            }
            let pattern = normalize(shown);
            match lines[at..].iter().position(|line| glob(&pattern, line)) {
                Some(found) => at += found + 1,
                None => panic!(
                    "`{}`: the README shows\n  {shown}\nbut the output (from line {}) was:\n{real}",
                    step.line,
                    at + 1
                ),
            }
        }
    }

    // It ran in a temporary folder and left nothing in the checkout.
    let folder = std::fs::read_to_string(tmp.join("tour-folder")).unwrap();
    assert!(Path::new(folder.trim()).starts_with(&tmp), "{folder}");
    let left: Vec<_> = std::fs::read_dir(&checkout)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["examples"]);

    // A few results, checked exactly.
    let output_of = |prefix: &str| -> &str {
        let at = steps
            .iter()
            .position(|step| step.line.starts_with(prefix))
            .unwrap_or_else(|| panic!("the tour has no `{prefix}`"));
        &outputs[at]
    };
    assert!(
        output_of("strata import").starts_with("imported 3,376 rows into airports in 1 commit")
    );
    assert_eq!(output_of("strata forks airports SFO").lines().count(), 2);
    let merged = output_of("strata merge \"$official\"").trim();
    assert_eq!(merged.len(), 64);
    let diff = output_of("strata diff");
    assert!(diff.starts_with("M airports SFO\n"), "{diff}");
    assert_eq!(diff.lines().count(), 3, "{diff}");
    let old = output_of("strata get airports SFO --at");
    assert!(
        old.contains(r#""name":"San Francisco International","#),
        "{old}"
    );
    let folder = Path::new(folder.trim());
    let exported = std::fs::read_to_string(folder.join("airports.csv")).unwrap();
    assert_eq!(exported.lines().count(), 3377);
    assert!(exported.contains("\nSFO,San Francisco International Airport,San Francisco,"));
    // Apart from the merged row, the export is the original file.
    let original = std::fs::read_to_string(checkout.join("examples/airports.csv")).unwrap();
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(exported.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("SFO,"));
}

#[test]
fn normalize_and_glob() {
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
        "$ strata serve --tcp 127.0.0.1:0 &",
        "$ strata clone tcp://127.0.0.1:",
        "tablet$ strata put airports SFO",
        "$ strata sync tcp://127.0.0.1:",
        "1 row is now forked",
        "$ strata bundle create survey.sync",
        "laptop$ strata bundle apply ../survey.sync",
        "tablet$ strata fsck",
        "laptop$ strata fsck",
        "office, tablet and laptop hold the same",
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
    // The office's SFO won the merge of the three-device part, and reached every device.
    for device in [
        folder.to_path_buf(),
        folder.join("tablet"),
        folder.join("laptop"),
    ] {
        let get = Command::new(BIN)
            .args(["get", "airports", "SFO"])
            .current_dir(&device)
            .env_remove("STRATA_REPO")
            .output()
            .unwrap();
        assert!(get.status.success(), "{}", device.display());
        assert!(
            String::from_utf8_lossy(&get.stdout).contains("San Francisco International (office)")
        );
    }
    std::fs::remove_dir_all(folder).unwrap();
}
