//! docs/configuration.md against the binary: every flag its tables list exists in that
//! command's `--help`, every flag `--help` shows is listed, no flag is listed twice for one
//! command, every command has a section, and every table is one table (a blank line inside a
//! table makes the rows after it plain text).
//!
//! Tables whose first column is `flag` belong to the command their `## `-heading names in
//! backticks (`lpm serve --kafka` is `serve`); tables whose first column is `command` name the
//! command in each row. `## Every command` lists the global flags. Also: docs/README.md links
//! every page in docs/, and the README links that index and the LICENSE.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn lpm_help(command: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lpm"))
        .args(command)
        .arg("--help")
        .env_remove("LPM_DATA_DIR")
        .output()
        .expect("run lpm --help");
    assert!(out.status.success(), "lpm {command:?} --help failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The `--long` names in `text` (aliases and values excluded by the callers' choice of text).
fn long_flags(text: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let tail = &rest[at + 2..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        if end > 0 {
            flags.push(format!("--{}", &tail[..end]));
        }
        rest = &tail[end..];
    }
    flags
}

/// The flags one `--help` shows (its option lines, not the descriptions; aliases are shown in
/// descriptions and are not counted), without `--help` and `--version`.
fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| {
            let indent = l.len() - l.trim_start().len();
            indent <= 6 && l.trim_start().starts_with('-')
        })
        .filter_map(|l| {
            l.split_whitespace()
                .take_while(|t| t.starts_with('-'))
                .map(|t| t.trim_end_matches(','))
                .find(|t| t.starts_with("--"))
                .map(str::to_string)
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The subcommand names listed under `Commands:` in a `--help`, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // a wrapped description is indented further than the names
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every leaf command (`["serve"]`, `["user", "add"]`, ...).
fn leaf_commands() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let subs = subcommands(&lpm_help(&path));
        if subs.is_empty() && !path.is_empty() {
            leaves.push(path);
            continue;
        }
        for sub in subs {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
    }
    leaves.sort();
    leaves
}

/// The command words of `lpm serve --kafka` / `lpm user add NAME ...`: the lowercase words
/// after `lpm`, up to the first that is not one.
fn command_words(code: &str) -> Option<Vec<String>> {
    let mut words = code.split_whitespace();
    (words.next()? == "lpm").then(|| {
        words
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .map(str::to_string)
            .collect()
    })
}

/// The first `` `code` `` span of `text`.
fn first_code(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// The first cell of a table row (`\|` inside it is text, not a column break).
fn first_cell(row: &str) -> &str {
    let body = row.trim().trim_start_matches('|');
    let bytes = body.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .unwrap_or(body.len());
    body[..end].trim()
}

/// What docs/configuration.md documents: command -> flags (in order, duplicates kept), and the
/// global flags.
struct Documented {
    by_command: BTreeMap<Vec<String>, Vec<String>>,
    global: Vec<String>,
}

fn documented(markdown: &str) -> Documented {
    let mut doc = Documented {
        by_command: BTreeMap::new(),
        global: Vec::new(),
    };
    let lines: Vec<&str> = markdown.lines().collect();
    let mut heading: Option<Vec<String>> = None;
    let mut global = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(title) = line.strip_prefix("## ") {
            global = title.trim() == "Every command";
            heading = first_code(title).and_then(command_words);
            i += 1;
            continue;
        }
        if !line.starts_with('|') {
            i += 1;
            continue;
        }
        let block: Vec<&str> = lines[i..]
            .iter()
            .take_while(|l| l.starts_with('|'))
            .copied()
            .collect();
        let separator = block.get(1).is_some_and(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .all(|c| !c.trim().is_empty() && c.trim().chars().all(|ch| ch == '-' || ch == ':'))
        });
        assert!(
            separator,
            "docs/configuration.md line {}: a table without its header (a blank line inside a \
             table cuts it): {line}",
            i + 1
        );
        let kind = first_cell(block[0]).to_string();
        for row in &block[2..] {
            let cell = first_cell(row);
            let (command, flags) = match kind.as_str() {
                "flag" if global => (None, long_flags(cell)),
                "flag" => (
                    Some(heading.clone().unwrap_or_else(|| {
                        panic!("a flag table under a heading that names no `lpm` command: {row}")
                    })),
                    long_flags(cell),
                ),
                "command" => {
                    let code = first_code(cell).unwrap_or_default();
                    let command = command_words(code).unwrap_or_else(|| {
                        panic!("a command row that names no `lpm` command: {row}")
                    });
                    (Some(command), long_flags(code))
                }
                _ => continue,
            };
            match command {
                Some(c) => doc.by_command.entry(c).or_default().extend(flags),
                None => doc.global.extend(flags),
            }
        }
        i += block.len();
    }
    doc
}

#[test]
fn configuration_md_lists_exactly_the_flags_of_every_command() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let markdown = std::fs::read_to_string(path).expect("docs/configuration.md");
    let doc = documented(&markdown);
    assert!(
        doc.global.contains(&"--log".to_string()) && doc.global.contains(&"--log-format".into()),
        "## Every command lists the global flags: {:?}",
        doc.global
    );
    let global: BTreeSet<String> = doc.global.iter().cloned().collect();
    let mut problems = Vec::new();
    let leaves = leaf_commands();
    assert!(
        leaves.contains(&vec!["serve".to_string()]) && leaves.len() >= 10,
        "{leaves:?}"
    );
    for command in &leaves {
        let name = format!("lpm {}", command.join(" "));
        let Some(listed) = doc.by_command.get(command) else {
            problems.push(format!("{name}: not documented"));
            continue;
        };
        let mut seen = BTreeSet::new();
        for flag in listed {
            if !seen.insert(flag.clone()) && !global.contains(flag) {
                problems.push(format!("{name}: {flag} listed twice"));
            }
        }
        let help = help_flags(&lpm_help(command));
        // `--help` on every command, `--version` on `lpm` itself: clap's, not listed by help_flags
        let clap_own = |f: &String| f == "--help" || f == "--version";
        for flag in seen.iter().chain(&global).filter(|f| !clap_own(f)) {
            if !help.contains(flag) {
                problems.push(format!("{name}: {flag} is documented but not in --help"));
            }
        }
        for flag in &help {
            if !seen.contains(flag) && !global.contains(flag) {
                problems.push(format!("{name}: {flag} is in --help but not documented"));
            }
        }
    }
    for command in doc.by_command.keys() {
        if !leaves.contains(command) {
            problems.push(format!(
                "lpm {}: documented, but no such command",
                command.join(" ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md and --help disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_parser_sees_what_a_reader_sees() {
    // the checks above can only fail if the parsing is right: pin it on small inputs
    assert_eq!(long_flags("`--workers`, `-w`"), ["--workers"]);
    assert_eq!(
        first_cell(r"| `lpm user add NAME --role admin\|responder` | x |"),
        r"`lpm user add NAME --role admin\|responder`"
    );
    assert_eq!(command_words("lpm serve --kafka").expect("lpm"), ["serve"]);
    assert_eq!(
        command_words("lpm user add NAME --role").expect("lpm"),
        ["user", "add"]
    );
    let help = "Options:\n      --data-dir <DATA_DIR>\n          Where [aliases: --old]\n  -w, --workers <WORKERS>\n          --not-a-flag in text\n  -h, --help\n";
    assert_eq!(
        help_flags(help).into_iter().collect::<Vec<_>>(),
        ["--data-dir", "--workers"]
    );
    let broken = "## `lpm replay FILE`\n\n| flag | meaning |\n|---|---|\n| `--tz` | zone |\n\n| `--workers` | threads |\n";
    let caught = std::panic::catch_unwind(|| documented(broken));
    assert!(caught.is_err(), "a table cut by a blank line is reported");
    let doc = documented("## `lpm serve --kafka`\n| flag | m |\n|---|---|\n| `--kafka` | b |\n");
    assert_eq!(doc.by_command[&vec!["serve".to_string()]], ["--kafka"]);
}

#[test]
fn docs_index_links_every_page_and_the_readme_links_the_index() {
    let root = env!("CARGO_MANIFEST_DIR");
    let index = std::fs::read_to_string(format!("{root}/docs/README.md")).expect("docs/README.md");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(format!("{root}/docs")).expect("docs/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if name.ends_with(".md") && name != "README.md" && !index.contains(&format!("]({name})")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/README.md does not link {missing:?}"
    );
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    assert!(readme.contains("](docs/README.md)"));
    assert!(readme.contains("](LICENSE)") && std::path::Path::new(root).join("LICENSE").is_file());
}
