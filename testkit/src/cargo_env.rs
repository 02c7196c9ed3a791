//! Running cargo from inside a test or a benchmark that cargo started.

/// Whether cargo sets `name` for the binary it runs (a test, a bench), rather than the user.
///
/// Why it matters: a nested `cargo` that inherits these sees an environment its build scripts
/// were not run with, and build scripts that watch variables (`rerun-if-env-changed`, as the
/// `cc` crate's do for ring) run again; everything above them is then rebuilt, in the same
/// target directory, so the *next* outer build is stale too (minutes: ring, rustls, ureq,
/// lpm-service, lpm-api, lpm). Remove them from the nested command.
pub fn set_by_cargo(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// Removes from `cmd` every variable of this process that cargo set ([`set_by_cargo`]).
pub fn clear_cargo_set(cmd: &mut std::process::Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(set_by_cargo) {
            cmd.env_remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_cargo_sets_is_told_from_what_the_user_sets() {
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "OUT_DIR",
            "CARGO_BIN_EXE_lpm",
        ] {
            assert!(super::set_by_cargo(name), "{name}");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "PATH",
            "CARGO",
        ] {
            assert!(!super::set_by_cargo(name), "{name}");
        }
    }
}
