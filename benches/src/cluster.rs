//! `lpm replay` as a timely cluster: `cargo bench -p lpm-benches --bench cluster`.
//!
//! One dump (`LPM_BENCH_CLUSTER_PERSONS`, default 100000, no schemas, generated once and cached
//! like the throughput bench's; the testkit generator unless `LPM_BENCH_GEN=shared`) is replayed
//! by the release `lpm` binary as 1 process x 1 worker (the baseline), 1 x 2, 2 processes x 1
//! worker and 2 x 2, on loopback, each `LPM_BENCH_RUNS` times (default 2, alternating). The
//! figures are wall-clock records/s from the start of the processes to the exit of the last one
//! (so cluster formation is included), and the bytes the processes exchanged per input record,
//! as every process counts them on its sockets (`exchanged with the other processes` in its
//! summary: timely's message headers and serialized data, not TCP/IP headers). Process 0's
//! output must equal the single-process run's (checked, not timed). 2 x 2 runs four workers on a
//! 2-core machine: it oversubscribes the cores, which the table says.
//!
//! The section `## cluster` of `target/bench-results.md` is replaced (or appended).

mod dumps;
mod machine;
mod report;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use machine::{cpu_model, load_average};
use report::{cores, env_usize, f2, median, replace_section, workspace_and_target};

/// One run's result.
struct Run {
    seconds: f64,
    /// Bytes sent by all processes to the others (= received by all).
    exchanged: u64,
    views: Vec<u8>,
}

fn lpm_binary(target: &Path) -> Result<PathBuf, String> {
    let bin = std::env::var_os("LPM_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("release").join("lpm"));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build --release --bin lpm` (or set LPM_BENCH_BIN)",
            bin.display()
        ))
    }
}

/// Free loopback addresses for `n` processes.
fn peers(n: usize) -> Result<String, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("binding a free port: {e}"))?;
    let addrs = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(addrs.join(","))
}

/// `bytes sent` from a summary's cluster line.
fn bytes_sent(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.contains("cluster process"))
        .filter_map(|l| {
            let head = l.split(" bytes sent").next()?;
            head.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

fn replay(bin: &Path, dump: &Path, processes: usize, workers: usize) -> Result<Run, String> {
    let list = peers(processes)?;
    let started = Instant::now();
    let children = (0..processes)
        .map(|i| {
            let mut cmd = Command::new(bin);
            cmd.arg("replay")
                .arg(dump)
                .args(["--no-progress", "--workers", &workers.to_string()]);
            if processes > 1 {
                cmd.args(["--peers", &list, "--process", &i.to_string()]);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawning {}: {e}", bin.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut views = Vec::new();
    let mut exchanged = 0;
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("process {i} of {processes} failed: {stderr}"));
        }
        exchanged += bytes_sent(&stderr);
        if i == 0 {
            views = out.stdout;
        }
    }
    Ok(Run {
        seconds: started.elapsed().as_secs_f64(),
        exchanged,
        views,
    })
}

fn main() -> Result<(), String> {
    let (workspace, target) = workspace_and_target();
    let bin = lpm_binary(&target)?;
    let persons = env_usize("LPM_BENCH_CLUSTER_PERSONS", 100_000);
    let runs = env_usize("LPM_BENCH_RUNS", 2).max(1);
    let generator = match std::env::var("LPM_BENCH_GEN").as_deref() {
        Ok("shared") => dumps::Generator::pick(&workspace),
        _ => dumps::Generator::Testkit,
    };
    let dump = dumps::ensure(&target.join("bench-data"), &generator, persons, false)?;
    let configs: [(usize, usize, &str); 4] = [
        (1, 1, "baseline"),
        (1, 2, ""),
        (2, 1, ""),
        (2, 2, "4 workers on 2 cores: oversubscribed"),
    ];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut exchanged = vec![0u64; configs.len()];
    let mut reference: Option<Vec<u8>> = None;
    for round in 0..runs {
        for (k, &(p, w, _)) in configs.iter().enumerate() {
            let run = replay(&bin, &dump.path, p, w)?;
            eprintln!(
                "bench: round {round}: {p} x {w}: {:.2} s, {} bytes exchanged",
                run.seconds, run.exchanged
            );
            match &reference {
                None => reference = Some(run.views.clone()),
                Some(r) if *r != run.views => {
                    return Err(format!("{p} x {w}: the views differ from 1 x 1's"))
                }
                Some(_) => {}
            }
            seconds[k].push(run.seconds);
            exchanged[k] = run.exchanged;
        }
    }
    let records = dump.records as f64;
    let mut md = String::new();
    let _ = writeln!(md, "## cluster\n");
    let _ = writeln!(
        md,
        "`cargo bench -p lpm-benches --bench cluster` ({}; {} cores, {}; load average before: {}): \
         `lpm replay` of {} ({} records, {:.0} MB, {} generator) as 1 or 2 processes on loopback, \
         median of {runs} runs, wall clock from spawning the processes to the last exit \
         (cluster formation included). Bytes exchanged: what the processes wrote to each other's \
         sockets (timely's headers and serialized data; not TCP/IP headers), summed over processes. \
         Process 0's views equal the 1 x 1 run's in every run.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        cores(),
        cpu_model(),
        load_average(),
        dump.label(),
        dump.records,
        dump.bytes as f64 / 1e6,
        dump.generator,
    );
    let _ = writeln!(
        md,
        "| processes x workers | records/s | vs 1 x 1 | bytes exchanged per input record | note |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | --- |");
    let base = median(&seconds[0]).unwrap_or(f64::NAN);
    for (k, &(p, w, note)) in configs.iter().enumerate() {
        let s = median(&seconds[k]).unwrap_or(f64::NAN);
        let per_record = if p > 1 {
            f2(exchanged[k] as f64 / records)
        } else {
            "—".into()
        };
        let _ = writeln!(
            md,
            "| {p} x {w} | {:.0} | {} | {per_record} | {note} |",
            records / s,
            f2(base / s),
        );
    }
    print!("{md}");
    let results = target.join("bench-results.md");
    let old = std::fs::read_to_string(&results).unwrap_or_default();
    std::fs::write(&results, replace_section(&old, "cluster", &md))
        .map_err(|e| format!("writing {}: {e}", results.display()))?;
    Ok(())
}
