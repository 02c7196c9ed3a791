//! The command line's conventions: where `--demo` keeps its data and what it refuses, exit
//! statuses (1 for a failed run, 2 for a usage error), `--version` with the commit, completions,
//! the man page, `--log-format`, the renamed capture flags of `serve`, and the first-start hint.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// `lpm ARGS` run in `cwd` with `envs`, and nothing inherited that changes where data goes.
pub(crate) fn lpm_in(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lpm"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("LPM_DATA_DIR")
        .env_remove("LPM_DEMO")
        .env_remove("LPM_LOG")
        .env_remove("LPM_LOG_FORMAT")
        .env_remove("LPM_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run lpm")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// A `lpm serve` started in `cwd`: its stdout lines up to the address, and its stderr once it
/// has been killed.
pub(crate) struct Started {
    child: Child,
    pub(crate) banner: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Started {
    fn spawn(cwd: &Path, args: &[&str]) -> Started {
        Started::spawn_with(cwd, args, &[])
    }

    /// [`Started::spawn`] with environment variables `envs` set.
    pub(crate) fn spawn_with(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Started {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lpm"));
        child
            .current_dir(cwd)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "-w", "1"])
            .args(args)
            .env_remove("LPM_DATA_DIR")
            .env_remove("LPM_DEMO")
            .env_remove("LPM_LOG_FORMAT")
            .env_remove("LPM_CONFIG")
            .env("LPM_LOG", "warn");
        for (k, v) in envs {
            child.env(k, v);
        }
        let mut child = child
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lpm serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut started = Started {
            child,
            banner: Vec::new(),
            stderr: Some(stderr),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains("serving on http://");
                    started.banner.push(line);
                    if done {
                        return started;
                    }
                }
                Err(e) => {
                    let stderr = started.stop();
                    panic!(
                        "lpm serve did not print its address ({e}); stdout:\n{}\nstderr:\n{stderr}",
                        started.banner.join("\n")
                    )
                }
            }
        }
    }

    /// Kills the server (SIGKILL) and returns everything it wrote on stderr.
    pub(crate) fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_without_data_dir_uses_its_own_directory_and_json_logs_are_json() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut server = Started::spawn(
        cwd.path(),
        &[
            "--demo",
            "--demo-every-ms",
            "3600000",
            "--log-format",
            "json",
        ],
    );
    let stderr = server.stop();
    let banner = server.banner.join("\n");
    assert!(
        banner.contains("Demo data directory: ./data-demo"),
        "{banner}"
    );
    assert!(cwd.path().join("data-demo").join("auth.json").is_file());
    assert!(
        !cwd.path().join("data").exists(),
        "--demo must never write into ./data, a real server's default"
    );
    // every log line is one JSON object; the demo's warning is among them
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Demo users are enabled"))),
        "{stderr}"
    );
}

#[test]
fn demo_refuses_a_data_dir_with_real_users_and_writes_nothing() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let data = cwd.path().join("real");
    let data_arg = data.to_str().expect("utf-8 path");
    let out = lpm_in(
        cwd.path(),
        &[
            "user",
            "add",
            "ana",
            "--role",
            "admin",
            "--data-dir",
            data_arg,
        ],
        &[("LPM_PASSWORD", "correct-horse-battery")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    let before = listing(&data);
    let auth = std::fs::read(data.join("auth.json")).expect("auth.json");

    let out = lpm_in(
        cwd.path(),
        &[
            "serve",
            "--demo",
            "--data-dir",
            data_arg,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused start is a failed run: {stderr}"
    );
    assert!(
        stderr.contains("--demo refuses the data directory") && stderr.contains("ana"),
        "{stderr}"
    );
    assert_eq!(listing(&data), before, "nothing written beside auth.json");
    assert_eq!(
        std::fs::read(data.join("auth.json")).expect("auth.json"),
        auth,
        "no demo user added"
    );
}

#[test]
fn first_start_hint_names_the_data_dir_the_server_uses() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut server = Started::spawn(cwd.path(), &["--data-dir", "site data"]);
    server.stop();
    let banner = server.banner.join("\n");
    assert!(
        banner.contains("lpm user add --role admin --data-dir 'site data' <name>"),
        "{banner}"
    );
}

#[test]
fn runtime_errors_exit_1_and_usage_errors_exit_2() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let failed = lpm_in(cwd.path(), &["replay", "missing.jsonl"], &[]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(text(&failed.stderr).starts_with("lpm: error: "));
    let usage_errors: [&[&str]; 4] = [
        &["replay"],
        &["--no-such-flag"],
        &["serve", "--workers", "many"],
        &["completions", "tcsh"],
    ];
    for usage in usage_errors {
        let out = lpm_in(cwd.path(), usage, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "lpm {usage:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Read-only tokens may see coarser hot-spot cells, never finer ones: a finer reader resolution
/// is refused before anything starts, naming both flags.
#[test]
fn a_reader_resolution_finer_than_the_views_is_refused() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = lpm_in(
        cwd.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "d",
            "--hotspots-resolution",
            "6",
            "--hotspots-reader-resolution",
            "8",
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "--hotspots-reader-resolution (8) must not be finer than --hotspots-resolution (6)"
        ),
        "{err}"
    );
    assert!(!cwd.path().join("d").exists(), "nothing was written");
}

/// `lpm serve --peers` runs only on Kafka, read-only: anything else is refused at start, named,
/// before anything is written or any peer is awaited.
#[test]
fn a_serving_cluster_without_kafka_or_with_writes_is_refused() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let peers = ["--peers", "127.0.0.1:1,127.0.0.1:2", "--process", "0"];
    let base = ["serve", "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let cases: [(&[&str], &str); 3] = [
        (&[], "--peers needs --kafka"),
        (
            &["--kafka", "127.0.0.1:1", "--demo"],
            "--peers cannot be combined with --demo",
        ),
        (
            &[
                "--kafka",
                "127.0.0.1:1",
                "--mysql",
                "mysql://root@127.0.0.1:1/db",
            ],
            "--mysql cannot be combined with --peers",
        ),
    ];
    for (extra, want) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(peers);
        args.extend(extra);
        let out = lpm_in(cwd.path(), &args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !cwd.path().join("d").join("log").exists(),
            "{args:?}: nothing written"
        );
    }
}

#[test]
fn version_names_the_commit() {
    let out = lpm_in(Path::new(env!("CARGO_MANIFEST_DIR")), &["--version"], &[]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        version.trim(),
        format!("lpm {} ({head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn version_commit_is_unknown_without_git_or_without_a_repository() {
    // build.rs compiled and run alone, as cargo would run it in a tarball's copy or in the
    // Docker build context (no .git there)
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("build-script");
    let compiled = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--edition", "2021", "-o"])
        .arg(&script)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs"))
        .output()
        .expect("rustc runs");
    assert!(compiled.status.success(), "{}", text(&compiled.stderr));
    let run = |envs: &[(&str, &std::ffi::OsStr)]| {
        let mut cmd = Command::new(&script);
        cmd.current_dir(dir.path())
            // never look for a repository above the temp dir
            .env("GIT_CEILING_DIRECTORIES", dir.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("build script runs");
        assert!(out.status.success());
        text(&out.stdout)
    };
    let no_repo = run(&[]);
    assert!(
        no_repo.contains("cargo:rustc-env=LPM_GIT_COMMIT=unknown"),
        "{no_repo}"
    );
    let no_git = run(&[("PATH", std::ffi::OsStr::new("/nonexistent"))]);
    assert!(
        no_git.contains("cargo:rustc-env=LPM_GIT_COMMIT=unknown"),
        "{no_git}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let cwd = tempfile::tempdir().expect("tempdir");
    for (shell, marker) in [
        ("bash", "_lpm()"),
        ("zsh", "#compdef lpm"),
        ("fish", "complete -c lpm"),
    ] {
        let out = lpm_in(cwd.path(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script:.300}");
        assert!(script.contains("capture-prefix"), "{shell}: serve's flags");
    }
    let out = lpm_in(cwd.path(), &["man"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH lpm 1"), "{page:.300}");
    assert!(page.contains("serve"), "subcommands listed");

    let pages = cwd.path().join("man");
    let out = lpm_in(
        cwd.path(),
        &["man", "--out-dir", pages.to_str().expect("path")],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let serve = std::fs::read_to_string(pages.join("lpm-serve.1")).expect("lpm-serve.1");
    assert!(serve.contains("capture\\-prefix"), "{serve:.300}");
    assert!(pages.join("lpm.1").is_file());
}

/// A data dir whose `auth.json` others may read: the next CLI command on it logs a warning.
fn exposed_auth_file(cwd: &Path) -> String {
    let data = cwd.join("d");
    let arg = data.to_str().expect("path").to_string();
    let out = lpm_in(cwd, &["token", "create", "one", "--data-dir", &arg], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = Command::new("chmod")
        .arg("644")
        .arg(data.join("auth.json"))
        .status()
        .expect("chmod");
    assert!(status.success());
    arg
}

#[test]
fn log_format_json_is_one_object_a_line_and_text_has_no_colour_off_a_terminal() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let data = exposed_auth_file(cwd.path());
    let out = lpm_in(
        cwd.path(),
        &["token", "create", "two", "--data-dir", &data],
        &[("LPM_LOG_FORMAT", "json")],
    );
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let warning: Value = stderr
        .lines()
        .find(|l| l.contains("readable by other users"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(warning["fields"]["mode"], "644", "{warning}");

    let data = exposed_auth_file(cwd.path());
    let out = lpm_in(
        cwd.path(),
        &["token", "create", "three", "--data-dir", &data],
        &[],
    );
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("readable by other users"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes on a pipe: {stderr:?}"
    );
}

#[test]
fn serve_capture_flags_are_named_capture_and_the_old_names_still_parse() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let help = text(&lpm_in(cwd.path(), &["serve", "--help"], &[]).stdout);
    for (new, old) in [
        ("--capture-prefix", "--prefix"),
        ("--capture-database", "--database"),
        ("--capture-table", "--table"),
        ("--capture-server-id", "--server-id"),
        ("--capture-snapshot", "--snapshot"),
        ("--capture-resume-by", "--resume-by"),
        ("--capture-heartbeat-ms", "--heartbeat-ms"),
    ] {
        assert!(help.contains(new), "{new} in serve --help");
        assert!(
            help.contains(&format!("[alias: {old}]")),
            "{old} shown as an alias"
        );
        // parsing stops at --help, after the flag before it was accepted
        for flag in [new, old] {
            let value = if flag.ends_with("snapshot") {
                "never"
            } else if flag.ends_with("resume-by") {
                "gtid"
            } else {
                "7"
            };
            let out = lpm_in(cwd.path(), &["serve", flag, value, "--help"], &[]);
            assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out.stderr));
        }
    }
    // the check above can fail: an unknown flag is refused the same way
    let out = lpm_in(cwd.path(), &["serve", "--no-such-flag", "7", "--help"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // `lpm capture` keeps its short names
    let help = text(&lpm_in(cwd.path(), &["capture", "--help"], &[]).stdout);
    assert!(help.contains("--prefix <PREFIX>") && !help.contains("--capture-prefix"));
}
