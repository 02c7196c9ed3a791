//! A release `lpm serve` as a child process (the serve, capture and soak benches): the real
//! binary, with its own allocator, runtime and signal handling, so `/proc/<pid>/status` is the
//! server's alone and a restart is a real stop (SIGTERM) and start on the same data directory.
//! The benches set up users and tokens with the binary too (`lpm user add`, `lpm token create`),
//! so they depend on no server crate.
// each bench target compiles this module and uses a different subset of it
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::report::{proc_status, process_cpu_seconds};
use crate::serve_http::Client;

/// The `lpm` binary: `LPM_BENCH_BIN` (or the older `LPM_BENCH_SOAK_BIN`) when set, else
/// `<target>/release/lpm`, built with `cargo build --release --bin lpm` only when it is missing.
/// Not rebuilt when present: a bare `--bin lpm` build resolves features for the root package
/// alone and would rebuild (and evict) the workspace build's crates on a shared machine. The
/// binary's age is printed, so a stale server shows in the log; rebuild it with the command
/// above after changing the server.
pub fn binary(workspace: &Path, target: &Path) -> Result<PathBuf, String> {
    for var in ["LPM_BENCH_BIN", "LPM_BENCH_SOAK_BIN"] {
        if let Some(bin) = std::env::var_os(var) {
            let bin = PathBuf::from(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!("{var}={} is not a file", bin.display()))
            };
        }
    }
    let bin = target.join("release").join("lpm");
    if !bin.is_file() {
        build(workspace)?;
    }
    let age = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or_else(
            || "age unknown".to_string(),
            |d| format!("built {} min ago", d.as_secs() / 60),
        );
    eprintln!("bench: server binary {} ({age})", bin.display());
    Ok(bin)
}

fn build(workspace: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    lpm_testkit::cargo_env::clear_cargo_set(&mut cmd);
    let status = cmd
        .args(["build", "--release", "--bin", "lpm"])
        .current_dir(workspace)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("running cargo build --release --bin lpm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build --release --bin lpm exited with {status}"
        ))
    }
}

/// Runs `lpm <args>` to completion (`user add`, `token create`) and returns its stdout.
pub fn cli(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running lpm {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "lpm {} exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `lpm user add <name> --role <role>` on `data_dir`, the password through `LPM_PASSWORD`.
pub fn add_user(
    bin: &Path,
    data_dir: &Path,
    name: &str,
    role: &str,
    password: &str,
) -> Result<(), String> {
    let data = data_dir.display().to_string();
    let args = ["user", "add", name, "--role", role, "--data-dir", &data];
    cli(bin, &args, &[("LPM_PASSWORD", password)])
        .map(drop)
        .map_err(|e| format!("adding {role} {name}: {e}"))
}

/// `lpm token create <label>` on `data_dir`: a read-only API token.
pub fn create_token(bin: &Path, data_dir: &Path, label: &str) -> Result<String, String> {
    let data = data_dir.display().to_string();
    let args = ["token", "create", label, "--data-dir", &data];
    Ok(cli(bin, &args, &[])?.trim().to_string())
}

/// A running `lpm serve`.
pub struct LpmProcess {
    child: Child,
    /// Its process id, as text for `/proc/<pid>/...`.
    pid: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
    /// Start -> the "serving on" line (the port is bound).
    pub listening_seconds: f64,
    /// Its `VmRSS` at that moment, bytes.
    pub rss_listening: u64,
    /// Start -> `/readyz` answered 200 (the log replayed).
    pub ready_seconds: f64,
}

/// How a stop went.
#[derive(Clone, Debug)]
pub struct Stopped {
    pub seconds: f64,
    pub status: String,
    pub clean: bool,
}

impl LpmProcess {
    /// Starts `lpm serve` on a free loopback port over `data_dir` (output appended to `log`),
    /// and waits for `/readyz`.
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        workers: usize,
        log: &Path,
    ) -> Result<LpmProcess, String> {
        LpmProcess::start_with(bin, data_dir, workers, log, &[])
    }

    /// [`LpmProcess::start`] with more `lpm serve` flags (`--capture URL`, ...).
    pub fn start_with(
        bin: &Path,
        data_dir: &Path,
        workers: usize,
        log: &Path,
        extra: &[&str],
    ) -> Result<LpmProcess, String> {
        let t0 = Instant::now();
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let offset = std::fs::metadata(log).map_or(0, |m| m.len()) as usize;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--workers", &workers.to_string()])
            .args(extra)
            .env("LPM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {} serve: {e}", bin.display()))?;
        let pid = child.id().to_string();
        // `lpm serve` prints "lpm is serving on http://127.0.0.1:PORT/ (...)" once it listens
        let base = loop {
            let text = std::fs::read(log).unwrap_or_default();
            let text = String::from_utf8_lossy(text.get(offset..).unwrap_or_default());
            if let Some(addr) = text
                .split("lpm is serving on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
            {
                break format!("http://{addr}");
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!(
                    "lpm serve exited with {st} before listening (see {})",
                    log.display()
                ));
            }
            if t0.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                return Err("lpm serve did not listen within 10 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let listening_seconds = t0.elapsed().as_secs_f64();
        let rss_listening = proc_status(&pid, "VmRSS:");
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {base}"))?;
        let mut p = LpmProcess {
            child,
            pid,
            base,
            port,
            listening_seconds,
            rss_listening,
            ready_seconds: 0.0,
        };
        let probe = Client::new(&p.base, ("X-Bench", "1".into()));
        loop {
            if probe.get("/readyz").is_ok_and(|r| r.status == 200) {
                break;
            }
            if !p.alive() {
                return Err(format!(
                    "lpm serve died while starting (see {})",
                    log.display()
                ));
            }
            if t0.elapsed() > Duration::from_secs(3600) {
                return Err("lpm serve was not ready within an hour".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        p.ready_seconds = t0.elapsed().as_secs_f64();
        Ok(p)
    }

    /// The process id, as text for `/proc/<pid>/...`.
    pub fn pid_text(&self) -> String {
        self.pid.clone()
    }

    /// Resident memory now (`VmRSS`), bytes; 0 when the process is gone.
    pub fn rss(&self) -> u64 {
        proc_status(&self.pid, "VmRSS:")
    }

    /// Peak resident memory (`VmHWM`), bytes.
    pub fn hwm(&self) -> u64 {
        proc_status(&self.pid, "VmHWM:")
    }

    /// CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.pid)
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (the graceful path `lpm serve` takes on Ctrl-C or a container stop), then waits
    /// up to `timeout` before killing it.
    pub fn stop(mut self, timeout: Duration) -> Stopped {
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid])
            .stdin(Stdio::null())
            .status();
        let status: Option<ExitStatus> = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if t.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
                _ => break None,
            }
        };
        let seconds = t.elapsed().as_secs_f64();
        match status {
            Some(st) => Stopped {
                seconds,
                status: st.to_string(),
                clean: st.success(),
            },
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Stopped {
                    seconds,
                    status: format!("still running after {} s: killed", timeout.as_secs()),
                    clean: false,
                }
            }
        }
    }
}

impl Drop for LpmProcess {
    /// A bench that fails half-way must not leave a server behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
