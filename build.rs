//! Build script for the `lpm` binary: records the git commit for `lpm --version`.
//!
//! Why: an operator reporting a problem should be able to say exactly which code runs, and the
//! crate version alone does not change between commits. A tarball or `cargo install` from a copy
//! without `.git` (or a machine without git) still builds: the commit is then `unknown`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LPM_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: .git/HEAD changes on checkout, the ref file on commit. In a git
    // worktree `.git` is a file pointing elsewhere; ask git for the real paths.
    let mut watched = git_paths(&["HEAD", "packed-refs"]);
    if let Some(reference) = head_ref() {
        watched.extend(git_paths(&[reference.as_str()]));
    }
    // git failed (missing, or refusing the directory) but this is a checkout: still watch its
    // HEAD, or the `unknown` above would stick until build.rs changes
    let plain_head = std::path::Path::new(".git").join("HEAD");
    if watched.is_empty() && plain_head.is_file() {
        watched.push(plain_head.display().to_string());
    }
    for path in watched {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The absolute paths of files inside the git directory (`git rev-parse --git-path`), or none
/// when git is absent: cargo then reruns the script only when build.rs itself changes.
fn git_paths(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| {
            let out = Command::new("git")
                .args(["rev-parse", "--path-format=absolute", "--git-path", name])
                .output()
                .ok()
                .filter(|out| out.status.success())?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            std::path::Path::new(&path).exists().then_some(path)
        })
        .collect()
}

/// The branch HEAD points at (`refs/heads/issue17`), so a commit on it reruns the script.
fn head_ref() -> Option<String> {
    let out = Command::new("git")
        .args(["symbolic-ref", "-q", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let reference = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!reference.is_empty()).then_some(reference)
}
