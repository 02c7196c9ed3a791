//! Restart to ready: from a checkpoint vs a full replay of the embedded log, side by side in one
//! run, for each size in `LPM_BENCH_RESTART_PERSONS` (default `100000`) and each history factor
//! in `LPM_BENCH_RESTART_HISTORY` (default `1,2,4`: the demo history, then 2x and 4x as many
//! change events on the same persons). Each restart runs `LPM_BENCH_RESTART_REPEAT` times (3);
//! the table shows medians. Also the shutdown checkpoint's duration and size (from its
//! manifest) and the peak RSS of each start.
//!
//! **Ingest with checkpoints on vs off**: on the restored server, `LPM_BENCH_RESTART_WRITERS`
//! (16) keep-alive connections file `LPM_BENCH_RESTART_WRITE_RATE` (3000) new reports per second
//! for `LPM_BENCH_RESTART_WRITE_S` seconds (10), more than the server acknowledges on 2 cores,
//! so the writers run back to back (a write answers once the engine shows it), once with a
//! checkpoint every `LPM_BENCH_RESTART_CKPT_S` seconds (5) and once with `--no-checkpoints`:
//! acknowledged writes per second, both medians, and the cost in per cent (goal <= 5 %). How
//! many checkpoints the server took while writing is read from its `/metrics`
//! (`lpm_checkpoints_total{outcome="taken"}`). (The embedded log's start-up replay takes none: the
//! checkpoint thread starts once the log is replayed.)
//!
//! `cargo bench -p lpm-benches --bench restart` (the real `lpm` binary, see `lpm_process`). Data
//! sets are generated in-process once and cached under `<target>/bench-data/restart-*`.

mod lpm_process;
mod machine;
mod report;
mod serve_http;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::DecodeStats;
use lpm_engine::rng::SplitMix64;
use lpm_engine::{Feed, FeedItem, PushFeed};
use lpm_process::LpmProcess;
use lpm_service::demo::DemoSize;
use lpm_service::sor::ledger::{Command, NewAction};
use lpm_service::sor::EmbeddedSor;
use report::{dir_bytes, median, workspace_and_target};

/// One configuration's figures (seconds, bytes).
#[derive(Default)]
struct Row {
    persons: usize,
    history: usize,
    log_bytes: u64,
    replay_ready: Vec<f64>,
    replay_hwm: Vec<f64>,
    checkpoint_ms: Vec<f64>,
    checkpoint_bytes: u64,
    checkpoint_entries: u64,
    ckpt_ready: Vec<f64>,
    ckpt_hwm: Vec<f64>,
    /// Acknowledged writes per second with periodic checkpoints, and without.
    writes_on: Vec<f64>,
    writes_off: Vec<f64>,
    /// Checkpoints taken during the writes.
    write_checkpoints: Vec<f64>,
    /// Write errors (any is reported).
    write_errors: u64,
    error: Option<String>,
}

fn log(started: Instant, what: &str) {
    eprintln!(
        "[{:>7.1}s] bench restart: {what}",
        started.elapsed().as_secs_f64()
    );
}

/// Generates (or reuses) the log of `persons` persons with `history` times the demo history.
fn data_set(
    base: &Path,
    persons: usize,
    history: usize,
    started: Instant,
) -> Result<PathBuf, String> {
    let dir = base.join(format!("restart-{persons}-h{history}"));
    let done = dir.join("built");
    if done.is_file() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    log(
        started,
        &format!("generating {persons} persons, history x{history}"),
    );
    let feed = Arc::new(PushFeed::new(8));
    let stop = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (feed, stop) = (feed.clone(), stop.clone());
        std::thread::spawn(move || loop {
            match feed.next(0) {
                FeedItem::End => break,
                FeedItem::Idle { .. } if stop.load(Ordering::Relaxed) => break,
                FeedItem::Idle { .. } => std::thread::sleep(Duration::from_micros(200)),
                _ => {}
            }
        })
    };
    let (sor, _) = EmbeddedSor::open(
        &dir.join("log"),
        lpm_connectors::log::LogOptions::default(),
        feed.clone(),
        (
            Arc::new(DecodeStats::default()),
            Arc::new(lpm_connectors::dead_letter::Discard),
        ),
        lpm_service::sor::Resume::default(),
        |_| {},
    )
    .map_err(|e| format!("opening the log: {e}"))?;
    let now = chrono::Utc::now().timestamp_millis();
    let size = DemoSize {
        reports: persons,
        days: 60,
        responsibles: 50,
    };
    let commands = lpm_service::demo::load(&sor, size, now).map_err(|e| e.to_string())?;
    // more history on the same persons: notes and searches on random cases, in bulk records
    let ids: Vec<i64> = sor.with_ledger(|l| l.case_ids().collect());
    let mut rng = SplitMix64::new(0x4E57 + history as u64);
    let extra = commands * (history - 1);
    let mut batch = Vec::with_capacity(1000);
    for i in 0..extra {
        let id = ids[rng.below(ids.len() as u64) as usize];
        let action = NewAction {
            action_type: ["note", "search", "call"][i % 3].into(),
            notes: Some(format!("seguimiento {i}")),
            responsible_id: None,
        };
        batch.push((
            Command::LogAction {
                case_id: id,
                action,
            },
            now,
        ));
        if batch.len() == 1000 {
            sor.submit_many(std::mem::take(&mut batch))
                .map_err(|e| e.to_string())?;
        }
    }
    if !batch.is_empty() {
        sor.submit_many(batch).map_err(|e| e.to_string())?;
    }
    sor.close();
    drop(sor);
    stop.store(true, Ordering::Relaxed);
    let _ = drainer.join();
    std::fs::write(&done, b"ok").map_err(|e| e.to_string())?;
    log(
        started,
        &format!(
            "generated: {commands} + {extra} commands, log {} MiB",
            dir_bytes(&dir.join("log")) >> 20
        ),
    );
    Ok(dir)
}

fn copy_log(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    let (src, dst) = (from.join("log"), to.join("log"));
    std::fs::create_dir_all(&dst).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(&src).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        std::fs::copy(e.path(), dst.join(e.file_name())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The newest checkpoint manifest in `data`.
fn manifest(data: &Path) -> Result<serde_json::Value, String> {
    let dir = data.join("checkpoints");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let last = names.last().ok_or("no checkpoint manifest")?;
    let text = std::fs::read_to_string(dir.join(last)).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// `lpm_checkpoints_total{outcome="taken"}` of `lpm serve`'s `/metrics`.
fn checkpoints_taken(p: &LpmProcess) -> Result<f64, String> {
    let client = serve_http::Client::new(&p.base, ("x-lpm-bench", String::new()));
    let text = client.get("/metrics")?.body;
    let taken: String = text
        .lines()
        .filter(|l| l.contains("outcome=\"taken\""))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(serve_http::sum_series(&taken, "lpm_checkpoints_total").unwrap_or(0.0))
}

const ADMIN: (&str, &str) = ("bench-admin", "bench-admin-password-1");

/// Starts the server on `run` with `extra` flags, files new reports from
/// `LPM_BENCH_RESTART_WRITERS` connections as fast as they are acknowledged for
/// `LPM_BENCH_RESTART_WRITE_S` seconds, and stops it: acknowledged writes per second, and the
/// checkpoints taken meanwhile.
fn write_pass(
    row: &mut Row,
    bin: &Path,
    run: &Path,
    out: &Path,
    extra: &[&str],
) -> Result<(f64, f64), String> {
    let p = LpmProcess::start_with(bin, run, 2, out, extra)?;
    let cookie = serve_http::sign_in(&p.base, ADMIN.0, ADMIN.1)?;
    let taken_before = checkpoints_taken(&p)?;
    let writers = report::env_usize("LPM_BENCH_RESTART_WRITERS", 16).max(1);
    let seconds = report::env_usize("LPM_BENCH_RESTART_WRITE_S", 10).max(1) as f64;
    let rate = report::env_usize("LPM_BENCH_RESTART_WRITE_RATE", 3000).max(1) as f64;
    let mut owned = vec![Vec::new(); writers];
    let w = serve_http::write_load(
        &p.base,
        &cookie,
        rate,
        seconds,
        writers,
        &mut owned,
        Vec::new(),
        serve_http::SERVER_TZ,
    );
    let taken = checkpoints_taken(&p)? - taken_before;
    p.stop(Duration::from_secs(300));
    row.write_errors += w.errors + w.accepted_not_visible;
    if let Some(e) = w.first_error {
        eprintln!("bench restart: a write failed: {e}");
    }
    Ok((w.visible as f64 / w.wall_seconds.max(1e-9), taken))
}

fn measure(
    row: &mut Row,
    bin: &Path,
    pristine: &Path,
    run: &Path,
    repeat: usize,
) -> Result<(), String> {
    let out = run.join("lpm.out");
    for _ in 0..repeat {
        // full replay: no checkpoint in the directory, none taken
        copy_log(pristine, run)?;
        lpm_process::add_user(bin, run, ADMIN.0, "admin", ADMIN.1)?;
        let p = LpmProcess::start_with(bin, run, 2, &out, &["--no-checkpoints"])?;
        row.replay_ready.push(p.ready_seconds);
        row.replay_hwm.push(p.hwm() as f64);
        p.stop(Duration::from_secs(300));
        // the same start with checkpoints: its clean stop leaves one; the next start loads it
        let p = LpmProcess::start(bin, run, 2, &out)?;
        p.stop(Duration::from_secs(300));
        let m = manifest(run)?;
        row.checkpoint_ms
            .push(m["duration_ms"].as_f64().unwrap_or(f64::NAN));
        row.checkpoint_bytes = m["state_bytes"].as_u64().unwrap_or(0);
        row.checkpoint_entries = m["entries"]
            .as_object()
            .map(|o| o.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0);
        let p = LpmProcess::start(bin, run, 2, &out)?;
        row.ckpt_ready.push(p.ready_seconds);
        row.ckpt_hwm.push(p.hwm() as f64);
        p.stop(Duration::from_secs(300));
        // ingest: live writes with periodic checkpoints, then without
        let every = report::env_usize("LPM_BENCH_RESTART_CKPT_S", 5).to_string();
        let on = ["--checkpoint-interval-s", every.as_str()];
        let (rate, taken) = write_pass(row, bin, run, &out, &on)?;
        row.writes_on.push(rate);
        row.write_checkpoints.push(taken);
        let (rate, _) = write_pass(row, bin, run, &out, &["--no-checkpoints"])?;
        row.writes_off.push(rate);
        let _ = std::fs::remove_dir_all(run.join("checkpoints"));
    }
    Ok(())
}

fn med(v: &[f64]) -> f64 {
    median(v).unwrap_or(f64::NAN)
}

fn render(rows: &[Row], load: &str, took: Duration) -> String {
    let mut s = format!(
        "## restart\n\n`cargo bench -p lpm-benches --bench restart`: `lpm serve` restart to ready \
         (`/readyz` 200), 2 workers; medians of {} starts each. Machine: {} ({} cores), load \
         at start {load}; took {:.0} s.\n\n\
         | persons | history | log | full replay: ready | peak RSS | checkpoint at stop: time | size | keys | from checkpoint: ready | peak RSS | speed-up |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        report::env_usize("LPM_BENCH_RESTART_REPEAT", 3),
        machine::cpu_model(),
        report::cores(),
        took.as_secs_f64()
    );
    for r in rows {
        if let Some(e) = &r.error {
            s.push_str(&format!(
                "| {} | x{} | error: {e} |\n",
                r.persons, r.history
            ));
            continue;
        }
        let (full, ck) = (med(&r.replay_ready), med(&r.ckpt_ready));
        s.push_str(&format!(
            "| {} | x{} | {} MiB | {:.2} s | {} MiB | {:.0} ms | {} MiB | {} | {:.2} s | {} MiB | {:.1}x |\n",
            r.persons,
            r.history,
            r.log_bytes >> 20,
            full,
            (med(&r.replay_hwm) as u64) >> 20,
            med(&r.checkpoint_ms),
            r.checkpoint_bytes >> 20,
            r.checkpoint_entries,
            ck,
            (med(&r.ckpt_hwm) as u64) >> 20,
            full / ck
        ));
    }
    s.push_str(&format!(
        "\n**Ingest with checkpoints on vs off**: new reports from {} connections, offered at \
         {}/s for {} s per pass (more than is acknowledged, so the writers run back to back), \
         on the restored server; a checkpoint every {} s against `--no-checkpoints`; writes/s \
         is acknowledged (visible) writes over the pass's wall time:\n\n\
         | persons | history | checkpoints off: writes/s | on: writes/s | checkpoints taken | cost | write errors |\n\
         |---|---|---|---|---|---|---|\n",
        report::env_usize("LPM_BENCH_RESTART_WRITERS", 16),
        report::env_usize("LPM_BENCH_RESTART_WRITE_RATE", 3000),
        report::env_usize("LPM_BENCH_RESTART_WRITE_S", 10),
        report::env_usize("LPM_BENCH_RESTART_CKPT_S", 5),
    ));
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let (off, on) = (med(&r.writes_off), med(&r.writes_on));
        s.push_str(&format!(
            "| {} | x{} | {:.0} | {:.0} | {:.0} | {:+.1} % | {} |\n",
            r.persons,
            r.history,
            off,
            on,
            med(&r.write_checkpoints),
            (1.0 - on / off) * 100.0,
            r.write_errors
        ));
    }
    s
}

fn main() {
    let started = Instant::now();
    let (workspace, target) = workspace_and_target();
    let base = target.join("bench-data");
    let list = |var: &str, default: &str| -> Vec<usize> {
        std::env::var(var)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect()
    };
    let sizes = list("LPM_BENCH_RESTART_PERSONS", "100000");
    let histories = list("LPM_BENCH_RESTART_HISTORY", "1,2,4");
    let repeat = report::env_usize("LPM_BENCH_RESTART_REPEAT", 3).max(1);
    let load = machine::load_average();
    let bin = match lpm_process::binary(&workspace, &target) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench restart: {e}");
            std::process::exit(1);
        }
    };
    let mut rows = Vec::new();
    for &persons in &sizes {
        for &history in &histories {
            let mut row = Row {
                persons,
                history: history.max(1),
                ..Row::default()
            };
            let run = base.join(format!("restart-{persons}-h{history}-run"));
            let outcome = data_set(&base, persons, history.max(1), started).and_then(|pristine| {
                row.log_bytes = dir_bytes(&pristine.join("log"));
                log(started, &format!("{persons} persons x{history}: measuring"));
                measure(&mut row, &bin, &pristine, &run, repeat)
            });
            let _ = std::fs::remove_dir_all(&run);
            if let Err(e) = outcome {
                eprintln!("bench restart: {persons} x{history}: ERROR: {e}");
                row.error = Some(e);
            }
            rows.push(row);
        }
    }
    let report = render(&rows, &load, started.elapsed());
    println!("{report}");
}
