//! `lpm serve`'s configuration file through the real binary: the default ./lpm.toml is read,
//! `--config` and `LPM_CONFIG` name another, flags beat the environment which beats the file,
//! and a bad file is a usage error (exit 2) naming the file and the key. The data directory is
//! what the servers here are told apart by: the first-start hint prints it.

use std::path::Path;

use super::cli::{lpm_in, text, Started};

/// The `--data-dir` the first-start hint of a `lpm serve` started in `cwd` names.
fn data_dir_used(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut server = Started::spawn_with(cwd, args, envs);
    server.stop();
    let banner = server.banner.join("\n");
    let hint = banner
        .lines()
        .find(|l| l.contains("lpm user add --role admin --data-dir "))
        .unwrap_or_else(|| panic!("no first-start hint: {banner}"));
    let after = hint
        .split("--data-dir ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default();
    after.to_string()
}

#[test]
fn flags_beat_environment_beats_file_beats_defaults() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = cwd.path();
    assert_eq!(
        data_dir_used(dir, &[], &[]),
        "./data",
        "no file: the default"
    );
    std::fs::write(dir.join("lpm.toml"), "data_dir = \"from-default-file\"\n").expect("write");
    assert_eq!(data_dir_used(dir, &[], &[]), "from-default-file");
    std::fs::write(dir.join("site.toml"), "data_dir = \"from-named-file\"\n").expect("write");
    assert_eq!(
        data_dir_used(dir, &["--config", "site.toml"], &[]),
        "from-named-file",
        "--config replaces ./lpm.toml"
    );
    assert_eq!(
        data_dir_used(dir, &[], &[("LPM_CONFIG", "site.toml")]),
        "from-named-file"
    );
    assert_eq!(
        data_dir_used(dir, &[], &[("LPM_DATA_DIR", "from-env")]),
        "from-env"
    );
    assert_eq!(
        data_dir_used(
            dir,
            &["--data-dir", "from-flag"],
            &[("LPM_DATA_DIR", "from-env")]
        ),
        "from-flag"
    );
}

#[test]
fn a_boolean_from_the_file_is_overridden_by_the_environment() {
    let cwd = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        cwd.path().join("lpm.toml"),
        "demo = true\ndemo_every_ms = 3600000\n",
    )
    .expect("write");
    let mut demo = Started::spawn_with(cwd.path(), &[], &[]);
    demo.stop();
    let banner = demo.banner.join("\n");
    assert!(
        banner.contains("Demo data directory: ./data-demo"),
        "{banner}"
    );
    assert_eq!(
        data_dir_used(cwd.path(), &[], &[("LPM_DEMO", "false")]),
        "./data",
        "LPM_DEMO=false turns the file's demo off"
    );
}

#[test]
fn a_bad_file_is_a_usage_error_naming_the_file_and_the_key() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = cwd.path();
    let cases = [
        ("no_such_setting = 1\n", "unknown key `no_such_setting`"),
        ("workers = \"many\"\n", "key `workers`"),
        (
            "secure_cookies = \"yes\"\n",
            "key `secure_cookies`: expected true or false",
        ),
        ("listen = \n", "TOML parse error"),
    ];
    for (file, expected) in cases {
        std::fs::write(dir.join("lpm.toml"), file).expect("write");
        let out = lpm_in(dir, &["serve"], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("lpm.toml") && stderr.contains(expected),
            "{file}: {stderr}"
        );
    }
    // the file is `serve`'s only: other commands do not read it
    let out = lpm_in(dir, &["completions", "bash"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // a file named explicitly must exist, whether by flag or environment
    std::fs::remove_file(dir.join("lpm.toml")).expect("rm");
    let out = lpm_in(dir, &["serve", "--config", "missing.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("missing.toml"));
    let out = lpm_in(dir, &["serve"], &[("LPM_CONFIG", "gone.toml")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("gone.toml"));
}
