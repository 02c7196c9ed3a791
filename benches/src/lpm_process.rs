//! A release `lpm serve` as a child process (the soak bench): the real binary, with its own
//! allocator, runtime and signal handling, so `/proc/<pid>/status` is the server's alone and a
//! restart is a real stop (SIGTERM) and start on the same data directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::report::{proc_status, process_cpu_seconds};
use crate::serve_http::Client;

/// The `lpm` binary: `LPM_BENCH_SOAK_BIN`, else `<workspace>/target/release/lpm` after
/// `cargo build --release --bin lpm` (a no-op when it is current), so the bench never runs a
/// stale server.
pub fn binary(workspace: &Path, target: &Path) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("LPM_BENCH_SOAK_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "LPM_BENCH_SOAK_BIN={} is not a file",
                bin.display()
            ))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "lpm"])
        .current_dir(workspace)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("running cargo build --release --bin lpm: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build --release --bin lpm exited with {status}"
        ));
    }
    Ok(target.join("release").join("lpm"))
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

/// A running `lpm serve`.
pub struct LpmProcess {
    child: Child,
    /// Its process id, as text for `/proc/<pid>/...`.
    pid: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
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
            ready_seconds: 0.0,
        };
        let probe = Client::new(&p.base, ("X-Bench", "soak".into()));
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
