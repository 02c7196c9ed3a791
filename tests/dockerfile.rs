//! The image's build, checked without Docker: the files the Dockerfile's builder stage copies
//! from the build context (after `.dockerignore`) are laid out as the stage would hold them, and
//! the stage's own `cargo build …` command runs there as `cargo check … --offline`.
//!
//! What this proves: every workspace member, every file read by `include_str!`/`include_bytes!`
//! or a build script, and the lock file reach the builder, so `docker build` cannot fail on a
//! file the Dockerfile forgot. What it cannot prove: the apt packages and the final link (no
//! Docker engine runs where the tests run).
//!
//! Why `cargo check`: it expands every macro (so every `include_*!` file is read) and runs every
//! build script, which is all a missing file can break, at a fraction of a release build. The
//! check uses the suite's own target dir (`CARGO_TARGET_DIR`), where `cargo clippy --release`
//! has already checked every dependency; only the workspace's own crates are checked again
//! (cargo sees new packages, their path differs). A check uplifts nothing, so
//! `<target>/release/lpm`, which other tests run, is never touched. The copy sits outside the
//! repo (no `.cargo/config.toml` or stray file above it that the image would not have), at a
//! path fixed per target dir and with the sources' mtimes, so an unchanged tree is checked again
//! in about a second. Profile overrides on the Dockerfile's command line
//! (`CARGO_PROFILE_RELEASE_STRIP=…`) change code generation, not which files are read, so the
//! check runs with the workspace's own profile and reuses its artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::compose::{dockerfile_instructions, read, root};
use crate::support::target_dir;

/// One `.dockerignore` line: a `/`-separated pattern, `!` for an exception.
struct Rule {
    negated: bool,
    parts: Vec<Vec<char>>,
}

/// `.dockerignore` as BuildKit applies it: patterns are relative to the context root, `*` and
/// `?` match within one path component, `**` spans any number of them, a pattern that matches a
/// directory leaves out everything below it, and the last matching line decides.
pub(crate) struct DockerIgnore(Vec<Rule>);

impl DockerIgnore {
    pub(crate) fn parse(text: &str) -> DockerIgnore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (negated, pattern) = match line.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, line),
                };
                assert!(
                    !pattern.contains('['),
                    ".dockerignore {line:?}: character classes are not handled by this test"
                );
                let parts = pattern
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(|c| c.chars().collect())
                    .collect();
                Rule { negated, parts }
            })
            .collect();
        DockerIgnore(rules)
    }

    /// Whether the context-relative path `rel` is left out of the build context.
    pub(crate) fn excludes(&self, rel: &str) -> bool {
        let path: Vec<Vec<char>> = rel
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| c.chars().collect())
            .collect();
        let mut excluded = false;
        for rule in &self.0 {
            // the path itself or one of its parent directories
            if (1..=path.len()).any(|n| path_matches(&rule.parts, &path[..n])) {
                excluded = !rule.negated;
            }
        }
        excluded
    }

    /// Whether an exception could bring back something below an excluded directory.
    fn has_exceptions(&self) -> bool {
        self.0.iter().any(|r| r.negated)
    }
}

fn path_matches(pattern: &[Vec<char>], path: &[Vec<char>]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p[..] == ['*', '*'] => {
            (0..=path.len()).any(|k| path_matches(rest, &path[k..]))
        }
        Some((p, rest)) => path
            .split_first()
            .is_some_and(|(c, tail)| glob(p, c) && path_matches(rest, tail)),
    }
}

/// One component against one pattern component (Go's `filepath.Match` without classes).
fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|k| glob(rest, &s[k..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some(('\\', [c, rest @ ..])) => s.first() == Some(c) && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[test]
fn dockerignore_matches_like_buildkit() {
    let ignore = DockerIgnore::parse("# c\n**/target/\n/docs\n*.md\n!README.md\nd?ta/\n");
    for (path, out) in [
        ("target", true),
        ("target/release/lpm", true),
        ("engine/target/x", true),
        ("docs/api.md", true),
        ("engine/docs/x.rs", false),
        ("CHANGES.md", true),
        ("README.md", false),
        ("engine/README.md", false),
        ("data/x", true),
        ("src/main.rs", false),
    ] {
        assert_eq!(ignore.excludes(path), out, "{path}");
    }
}

/// A `COPY` from the build context: `(sources, destination)`; `None` for `--from=` copies.
fn context_copy(args: &str) -> Option<(Vec<String>, String)> {
    let mut rest = args.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        if word.starts_with("from=") {
            return None;
        }
        rest = tail.trim_start();
    }
    let mut words: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).unwrap_or_else(|e| panic!("COPY {args}: {e}"))
    } else {
        rest.split_whitespace().map(String::from).collect()
    };
    let dest = words.pop().unwrap_or_default();
    assert!(!words.is_empty(), "COPY {args} has no source");
    Some((words, dest))
}

/// `path` (absolute, or relative to `workdir`) inside `image`, the directory standing for `/`.
fn image_path(image: &Path, workdir: &str, path: &str) -> PathBuf {
    let abs = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{workdir}/{path}")
    };
    abs.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .fold(image.to_path_buf(), |p, c| p.join(c))
}

/// Copies a file with its mtime, so cargo's fingerprints see an unchanged copy as unchanged.
fn copy_file(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("create dir");
    }
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    let mtime = std::fs::metadata(from)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::File::options()
        .write(true)
        .open(to)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
}

/// Copies the context directory `rel` into `to`, leaving out what `.dockerignore` excludes.
fn copy_tree(ctx: &Path, ignore: &DockerIgnore, rel: &str, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    let mut entries: Vec<_> = std::fs::read_dir(ctx.join(rel))
        .expect("read dir")
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = entry.path().is_dir();
        if ignore.excludes(&child) && !(is_dir && ignore.has_exceptions()) {
            continue;
        }
        if is_dir {
            copy_tree(ctx, ignore, &child, &to.join(&name));
        } else if !ignore.excludes(&child) {
            copy_file(&entry.path(), &to.join(&name));
        }
    }
}

/// Lays out what the builder stage's `COPY` lines take from `ctx` under `image`; returns the
/// `WORKDIR` and the words after `cargo build` of the stage's build command.
fn lay_out_builder_stage(ctx: &Path, dockerfile: &str, image: &Path) -> (String, Vec<String>) {
    let ins = dockerfile_instructions(dockerfile);
    let run = ins
        .iter()
        .position(|(op, args)| op == "RUN" && args.contains("cargo build"))
        .expect("a RUN with cargo build");
    let start = ins[..run]
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("the build's stage starts with FROM");
    let ignore = DockerIgnore::parse(
        &std::fs::read_to_string(ctx.join(".dockerignore")).unwrap_or_default(),
    );
    let mut workdir = "/".to_string();
    for (op, args) in &ins[start..run] {
        match op.as_str() {
            "WORKDIR" => {
                let dir = image_path(Path::new("/"), &workdir, args);
                workdir = dir.display().to_string();
            }
            "ADD" => panic!("ADD in the builder stage is not handled by this test: ADD {args}"),
            "COPY" => {
                let Some((sources, dest)) = context_copy(args) else {
                    continue;
                };
                let to = image_path(image, &workdir, &dest);
                let into_dir = dest.ends_with('/') || sources.len() > 1 || to.is_dir();
                for src in &sources {
                    assert!(
                        !src.contains(['*', '?', '[']),
                        "COPY {src}: wildcards are not handled by this test"
                    );
                    let rel = image_path(Path::new(""), "", src).display().to_string();
                    let from = ctx.join(&rel);
                    assert!(from.exists(), "COPY source {src} does not exist");
                    if from.is_dir() {
                        copy_tree(ctx, &ignore, &rel, &to);
                    } else {
                        // docker fails such a COPY: the file is not in the context
                        assert!(
                            !ignore.excludes(&rel),
                            "COPY source {src} is excluded by .dockerignore"
                        );
                        let name = from.file_name().expect("file name");
                        let target = if into_dir { to.join(name) } else { to.clone() };
                        copy_file(&from, &target);
                    }
                }
            }
            _ => {}
        }
    }
    let command = &ins[run].1;
    let words = command
        .split("cargo build")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .take_while(|w| !["&&", "||", ";", "|"].contains(w))
        .map(String::from)
        .collect();
    (workdir, words)
}

#[test]
fn the_layout_follows_copy_and_dockerignore() {
    let ctx = tempfile::tempdir().expect("tempdir");
    for (path, text) in [
        ("Cargo.toml", "[workspace]"),
        ("Cargo.lock", ""),
        ("core/src/lib.rs", "//"),
        ("core/target/junk", "x"),
        ("core/notes.md", "x"),
        ("core/KEEP.md", "x"),
        ("data/schema.sql", "x"),
        ("docs/guide.md", "x"),
    ] {
        let p = ctx.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    std::fs::write(
        ctx.path().join(".dockerignore"),
        "**/target/\ndocs/\n**/*.md\n!core/KEEP.md\n",
    )
    .expect("write");
    let dockerfile = "FROM rust AS builder\nWORKDIR /w\nCOPY Cargo.toml Cargo.lock ./\n\
        COPY core ./core\nCOPY [\"data/schema.sql\", \"sql/\"]\nCOPY --from=builder /x /y\n\
        RUN --mount=type=cache,target=/w/target \\\n  cargo build --release --bin app && cp a b\n\
        FROM debian\nCOPY docs /docs\n";
    let image = tempfile::tempdir().expect("tempdir");
    let (workdir, args) = lay_out_builder_stage(ctx.path(), dockerfile, image.path());
    assert_eq!(workdir, "/w");
    assert_eq!(args, ["--release", "--bin", "app"]);
    let mut laid_out = vec![];
    let mut stack = vec![image.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(image.path()).expect("inside");
                laid_out.push(rel.display().to_string());
            }
        }
    }
    laid_out.sort();
    assert_eq!(
        laid_out,
        [
            "w/Cargo.lock",
            "w/Cargo.toml",
            "w/core/KEEP.md",
            "w/core/src/lib.rs",
            "w/sql/schema.sql"
        ]
    );
}

#[test]
fn the_builder_stage_builds_from_exactly_what_it_copies() {
    let target = target_dir();
    let image = std::env::temp_dir().join(format!(
        "lpm-dockerfile-builder{}",
        target.display().to_string().replace(['/', '\\', ':'], "_")
    ));
    if image.exists() {
        std::fs::remove_dir_all(&image).expect("remove the previous copy");
    }
    let (workdir, args) = lay_out_builder_stage(&root(), &read("Dockerfile"), &image);
    assert!(
        args.iter().any(|a| a == "--release") && args.iter().any(|a| a == "--locked"),
        "the image builds with --release --locked: {args:?}"
    );
    let dir = image_path(&image, "/", &workdir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let mut check = Command::new(cargo);
    // the variables cargo set for this test would make the shared target dir's build scripts
    // run again and the next outer build rebuild lpm and half its dependencies
    lpm_testkit::cargo_env::clear_cargo_set(&mut check);
    let out = check
        .arg("check")
        .args(&args)
        .args(["--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "dockerfile: cargo check {} in the builder's copy took {:.1} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the builder stage cannot build from what the Dockerfile copies:\n{stderr}"
    );
}
