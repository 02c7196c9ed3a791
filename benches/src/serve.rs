//! Serving benchmark: `cargo bench -p lpm-benches --bench serve`.
//!
//! For each size (`LPM_BENCH_SERVE_PERSONS`, comma-separated, default `10000,1000000`):
//!
//! 1. **Data set.** A child process bulk-loads `N` reports with `lpm_service::demo::load`
//!    (60 days, 50 responsibles; follow-up actions, assignments and status changes as in
//!    `--demo`) into an embedded log, through `EmbeddedSor::submit_many` with a thread draining
//!    the engine feed (no engine: generating is timed apart from rebuilding). Cached under
//!    `target/bench-data/serve-<N>/` (`LPM_BENCH_SERVE_REBUILD=1` regenerates); each run works
//!    on a fresh copy.
//! 2. **Server.** The release `lpm` binary (`${CARGO_TARGET_DIR:-target}/release/lpm`, built
//!    with `cargo build --release --bin lpm` when missing; `LPM_BENCH_BIN` overrides) gets an
//!    admin (`lpm user add`) and a read-only token (`lpm token create`), then runs as
//!    `lpm serve --listen 127.0.0.1:0 --workers 2` in its own process (no `--demo`, its
//!    mimalloc allocator); it replays the log at start. Timed: start -> listening -> `/readyz`
//!    200. Its `VmRSS` / `VmHWM` / CPU are read from `/proc/<pid>`, so they are the server's
//!    alone (the harness and the load clients below run in other processes). Stopped with
//!    SIGTERM, as a container stop does.
//! 3. **Read latency**, idle server: one keep-alive client sends `LPM_BENCH_SERVE_QUERIES`
//!    (default 2000) of each request round-robin, after a warm-up: `GET /healthz` (the HTTP
//!    floor), `GET /api/v1/views`, and four Grafana `POST /grafana/query` panels over the 7
//!    days ending at the data set's "now" (reports + cases_opened hourly; the same filtered to
//!    gender = female; that again with a second dimension that filters nothing, which takes it
//!    off the rollup onto the facts: the baseline; the `cases_by_status` table). p50/p99/max
//!    per request and size.
//! 4. **Writes, then writes with WebSocket clients** (a third process, on the same cores).
//!    `LPM_BENCH_SERVE_WRITERS` (32) keep-alive connections signed in as an admin write at
//!    `LPM_BENCH_SERVE_RATE` (1000/s) for `LPM_BENCH_SERVE_SECONDS` (10): 50% new reports, 25%
//!    status changes, 25% actions (after an unmeasured warm-up). A write answers once the
//!    engine shows it, so its response time is commit -> visible plus HTTP; the server's
//!    `lpm_freshness_seconds` histogram is read too (delta of two `/metrics` scrapes). Then
//!    `LPM_BENCH_SERVE_WS` (500) clients subscribe to `/api/v1/stream?topics=views` with a
//!    read-only token, on one small tokio runtime (`LPM_BENCH_SERVE_WS_THREADS`, default 1
//!    thread), rebuild the views from the snapshot and diffs, and the same writes run again.
//!    During both passes a probe reads views and a Grafana panel 20 times a second. When the
//!    writes stop and the streams are quiet, every client's rows must equal
//!    `GET /api/v1/views`: 20 clients are compared exactly, the others by their row multiset;
//!    lost diffs (a removal of a row the client does not hold, outside announced resyncs) must
//!    be 0. The server's RSS is sampled throughout.
//!
//! Output: a `## serve` section replaced in (or appended to) `target/bench-results.md`, and
//! stdout; the headline figures also go to `target/bench-data/figures/serve.json` for the
//! `headline` bench (see [`figures`]). There are no timing assertions; the goals (read p99 <= 5 ms and flat in row count,
//! freshness p99 <= 50 ms, no lost diffs, bounded RSS) are checked in the report's text.
//! Other knobs: `LPM_BENCH_SERVE_WORKERS` (engine workers, 2), `LPM_BENCH_SERVE_WARMUP`
//! (seconds of unmeasured writes first, 2), `LPM_BENCH_SERVE_SOLO=0` (skip the write pass
//! without clients), `LPM_BENCH_SERVE_WS=0` (no clients). Every combination reports what it
//! measured: the child processes hand their results over in postcard, where a figure that was
//! not measured (NaN) survives; it prints as `—`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod machine;
mod report;
use report::{cores, cpu_seconds, dir_bytes, env_usize, f2, replace_section, workspace_and_target};
mod serve_http;
use machine::{cpu_model, load_average};
mod lpm_process;
mod serve_ws;
use lpm_process::LpmProcess;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_benches::figures::Figures;
use lpm_connectors::DecodeStats;
use lpm_engine::{Feed, FeedItem, PushFeed};
use lpm_service::demo::DemoSize;
use lpm_service::sor::EmbeddedSor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use serve_http::{Client, HistQ, Lat, OwnedCase, WriteResult};
use serve_ws::{Fleet, WsResult};

const ROLE: &str = "LPM_BENCH_SERVE_ROLE";
const ADMIN: &str = "bench-admin";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const SAMPLED_CLIENTS: usize = 20;

fn env_path(name: &str) -> Result<PathBuf, String> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{name} is not set"))
}

/// `VmRSS` / `VmHWM` of this process, in bytes.
fn proc_status(field: &str) -> u64 {
    report::proc_status("self", field)
}

/// A `(when, cpu_seconds)` reading.
type Reading = Option<(Instant, f64)>;

/// Cores used between two readings.
fn cores_between(a: Reading, b: Reading) -> f64 {
    match (a, b) {
        (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => (c1 - c0) / (t1 - t0).as_secs_f64(),
        _ => f64::NAN,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// [`mib`] of a reading taken in a phase that may have been skipped (0: not read): a dash.
fn mib_read(bytes: u64) -> String {
    if bytes == 0 {
        "—".into()
    } else {
        mib(bytes)
    }
}

fn log(started: Instant, what: &str) {
    eprintln!(
        "bench serve [{:>6.1}s] {what}",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let code = match std::env::var(ROLE).as_deref() {
        Ok("build") => match build_child() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bench serve: build failed: {e}");
                1
            }
        },
        Ok("run") => run_child(),
        Ok("load") => load_child(),
        _ => {
            parent();
            0
        }
    };
    std::process::exit(code);
}

// ---------------------------------------------------------------------------------------------
// 1. the data set (child process)

/// What generating a data set produced (`built.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct BuildInfo {
    persons: usize,
    days: i64,
    /// Commands `demo::load` applied (reports, actions, assignments, status changes).
    commands: usize,
    cases: usize,
    /// Change events the log decodes to.
    change_events: u64,
    log_bytes: u64,
    generate_seconds: f64,
    peak_rss: u64,
    /// The data set's "now" (its history ends there).
    now_ms: i64,
    responsibles: Vec<i64>,
}

fn build_child() -> Result<(), String> {
    let dir = env_path("LPM_BENCH_SERVE_DIR")?;
    let persons = env_usize("LPM_BENCH_SERVE_N", 10_000);
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let log_dir = dir.join("log");
    let feed = Arc::new(PushFeed::new(8));
    let drained = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let drainer = {
        let (feed, drained) = (feed.clone(), drained.clone());
        std::thread::spawn(move || loop {
            match feed.next(0) {
                FeedItem::Batch { changes, .. } => {
                    drained.fetch_add(changes.len() as u64, Ordering::Relaxed);
                }
                FeedItem::Control { .. } => {}
                FeedItem::Idle { .. } => std::thread::sleep(Duration::from_micros(200)),
                FeedItem::End => break,
            }
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let (done, drained, log_dir) = (done.clone(), drained.clone(), log_dir.clone());
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if last.elapsed() >= Duration::from_secs(15) {
                    last = Instant::now();
                    let bytes = dir_bytes(&log_dir);
                    log(
                        started,
                        &format!(
                            "generating {persons} persons: {} change events, log {}",
                            drained.load(Ordering::Relaxed),
                            mib(bytes)
                        ),
                    );
                }
            }
        })
    };
    let stats = Arc::new(DecodeStats::default());
    let (sor, _opened) = EmbeddedSor::open(
        &log_dir,
        lpm_connectors::log::LogOptions::default(),
        feed.clone(),
        (
            stats.clone(),
            Arc::new(lpm_connectors::dead_letter::Discard),
        ),
        lpm_service::sor::Resume::default(),
        |_| {},
    )
    .map_err(|e| format!("opening the log: {e}"))?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let days = 60;
    let commands = lpm_service::demo::load(
        &sor,
        DemoSize {
            reports: persons,
            days,
            responsibles: 50,
        },
        now_ms,
    )
    .map_err(|e| format!("demo::load: {e}"))?;
    let generate_seconds = started.elapsed().as_secs_f64();
    // every case's version and status, for the writers' status changes
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(dir.join("cases.txt")).map_err(|e| e.to_string())?,
    );
    let (cases, responsibles) = sor.with_ledger(|l| {
        let mut n = 0;
        let mut ids: Vec<i64> = l.case_ids().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(c) = l.case(id) {
                let _ = writeln!(out, "{} {} {}", c.id, c.version, c.status.as_str());
                n += 1;
            }
        }
        (n, l.active_responsibles())
    });
    out.flush().map_err(|e| e.to_string())?;
    sor.close();
    drop(sor);
    let _ = drainer.join();
    done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let errors = stats.errors_total();
    if errors > 0 {
        return Err(format!("{errors} log events failed to decode"));
    }
    let info = BuildInfo {
        persons,
        days,
        commands,
        cases,
        change_events: drained.load(Ordering::Relaxed),
        log_bytes: dir_bytes(&log_dir),
        generate_seconds,
        peak_rss: proc_status("VmHWM:"),
        now_ms,
        responsibles,
    };
    let json = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("built.json"), json).map_err(|e| e.to_string())?;
    log(
        started,
        &format!(
            "generated {persons} persons: {commands} commands, {} change events, log {}",
            info.change_events,
            mib(info.log_bytes)
        ),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2-4. one size against a running server (child process)

/// Everything measured for one size.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SizeResult {
    persons: usize,
    build: BuildInfo,
    build_cached: bool,
    engine_workers: usize,
    listening_seconds: f64,
    ready_seconds: f64,
    /// Server RSS when it started listening (before replaying the log).
    rss_listening: u64,
    rss_ready: u64,
    rss_after_queries: u64,
    queries: Vec<(String, Lat)>,
    load: Option<LoadResult>,
    shutdown_seconds: f64,
    hwm: u64,
    error: Option<String>,
    wall_seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LoadResult {
    /// The write passes: without WebSocket clients, then with them.
    passes: Vec<Pass>,
    ws: WsResult,
    rss_before_ws: u64,
    rss_ws_connected: u64,
    /// Server RSS max while writing without clients.
    rss_solo_max: u64,
    /// Cores the server process used while writing without, then with, the clients.
    server_cores: Vec<f64>,
    rss_load_max: u64,
    rss_after_load: u64,
    rss_after_disconnect: u64,
    /// Server tick before and after the clients were compared (equal: nothing moved).
    tick_compared: (u64, u64),
    /// Server RSS at 25, 50, 75 and 100% of the write phase.
    rss_writing_quartiles: Vec<u64>,
    /// Peak RSS of the load process (clients).
    clients_hwm: u64,
}

/// Writes what a child process measured for its parent. Postcard, not JSON: a figure that was
/// not measured is NaN (a pass that was skipped, a counter never scraped), which JSON turns into
/// `null` and then refuses to read back as a number, losing the whole run's report.
fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let bytes = postcard::to_stdvec(value).map_err(|e| e.to_string())?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads what [`save`] wrote.
fn load_saved<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    postcard::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn run_child() -> i32 {
    let started = Instant::now();
    let mut res = SizeResult::default();
    let outcome = run_size(&mut res, started);
    if let Err(e) = outcome {
        eprintln!("bench serve: ERROR: {e}");
        res.error = Some(e);
    }
    res.wall_seconds = started.elapsed().as_secs_f64();
    let out = match env_path("LPM_BENCH_SERVE_OUT") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench serve: {e}");
            return 2;
        }
    };
    match save(&out, &res) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench serve: writing {}: {e}", out.display());
            2
        }
    }
}

/// The owned cases of each writer thread: up to 2048 per thread, spread over every case.
fn owned_cases(path: &Path, threads: usize) -> Result<Vec<Vec<OwnedCase>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total = text.lines().count();
    let step = (total / (threads * 2048)).max(1);
    let mut owned = vec![Vec::new(); threads];
    for (i, line) in text.lines().step_by(step).enumerate() {
        let mut f = line.split(' ');
        let (Some(id), Some(v), Some(s)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(id), Ok(version)) = (id.parse(), v.parse()) else {
            continue;
        };
        owned[i % threads].push(OwnedCase {
            id,
            version,
            status: s.to_string(),
        });
    }
    Ok(owned)
}

fn get_json(client: &Client, path: &str) -> Result<Value, String> {
    let r = client.get(path)?;
    if r.status != 200 {
        return Err(format!(
            "GET {path} answered {}: {}",
            r.status,
            serve_http::trim(&r.body)
        ));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("GET {path}: {e}"))
}

fn run_size(res: &mut SizeResult, started: Instant) -> Result<(), String> {
    let dir = env_path("LPM_BENCH_SERVE_DIR")?;
    let pristine = env_path("LPM_BENCH_SERVE_PRISTINE")?;
    res.build_cached = std::env::var_os("LPM_BENCH_SERVE_CACHED").is_some();
    let built = std::fs::read_to_string(pristine.join("built.json"))
        .map_err(|e| format!("built.json: {e}"))?;
    res.build = serde_json::from_str(&built).map_err(|e| format!("built.json: {e}"))?;
    res.persons = res.build.persons;
    let queries = env_usize("LPM_BENCH_SERVE_QUERIES", 2000);
    res.engine_workers = env_usize("LPM_BENCH_SERVE_WORKERS", 2).max(1);
    // the admin the writers sign in as, and the read-only token of the readers, made by the
    // binary itself (as an operator would)
    let (workspace, target) = workspace_and_target();
    let bin = lpm_process::binary(&workspace, &target)?;
    lpm_process::add_user(&bin, &dir, ADMIN, "admin", ADMIN_PASSWORD)?;
    let token = lpm_process::create_token(&bin, &dir, "bench")?;

    log(
        started,
        &format!("{} persons: starting the server", res.persons),
    );
    let server = LpmProcess::start(&bin, &dir, res.engine_workers, &dir.join("lpm.log"))?;
    res.listening_seconds = server.listening_seconds;
    res.rss_listening = server.rss_listening;
    res.ready_seconds = server.ready_seconds;
    res.rss_ready = server.rss();
    log(
        started,
        &format!(
            "ready after {:.2}s (listening after {:.2}s), RSS {}",
            res.ready_seconds,
            res.listening_seconds,
            mib(res.rss_ready)
        ),
    );

    let outcome = measure(res, &server, &token, Knobs { queries }, started);

    res.hwm = server.hwm();
    let stopped = server.stop(Duration::from_secs(120));
    if !stopped.clean {
        eprintln!("bench serve: the server ended with: {}", stopped.status);
    }
    res.shutdown_seconds = stopped.seconds;
    outcome
}

struct Knobs {
    queries: usize,
}

fn measure(
    res: &mut SizeResult,
    server: &LpmProcess,
    token: &str,
    k: Knobs,
    started: Instant,
) -> Result<(), String> {
    let base = server.base.as_str();
    let reader = Client::new(base, ("Authorization", format!("Bearer {token}")));
    let probes = serve_http::probes(res.build.now_ms);

    // 3. read latency on the idle server
    log(
        started,
        &format!("read latency: {} x {} requests", k.queries, probes.len()),
    );
    res.queries = serve_http::query_latency(&reader, &probes, 100.min(k.queries), k.queries)?;
    res.rss_after_queries = server.rss();
    for (name, l) in &res.queries {
        log(
            started,
            &format!("  {name}: p50 {:.3} ms, p99 {:.3} ms", l.p50, l.p99),
        );
    }

    // 4. the load clients in their own process (so this process's RSS is the server's)
    let dir = env_path("LPM_BENCH_SERVE_DIR")?;
    let phase_file = dir.join("bench-phase");
    let out = dir.join("bench-load.postcard");
    let _ = std::fs::write(&phase_file, "starting");
    let mut load = LoadResult {
        rss_before_ws: server.rss(),
        ..LoadResult::default()
    };
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut kid = Command::new(exe)
        .env(ROLE, "load")
        .env("LPM_BENCH_SERVE_BASE", base)
        .env("LPM_BENCH_SERVE_TOKEN", token)
        .env("LPM_BENCH_SERVE_PHASE", &phase_file)
        .env("LPM_BENCH_SERVE_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the load process: {e}"))?;
    // sample RSS by the load process's phase
    let mut writing: Vec<u64> = Vec::new();
    // CPU: first and last reading in each write phase
    let mut cpu: std::collections::HashMap<String, (Reading, Reading)> =
        std::collections::HashMap::new();
    let status = loop {
        if let Ok(Some(st)) = kid.try_wait() {
            break st;
        }
        let phase = std::fs::read_to_string(&phase_file).unwrap_or_default();
        let now = server.rss();
        let reading = Some((Instant::now(), server.cpu_seconds()));
        let e = cpu.entry(phase.trim().to_string()).or_default();
        e.0 = e.0.or(reading);
        e.1 = reading;
        match phase.trim() {
            "writing-solo" => load.rss_solo_max = load.rss_solo_max.max(now),
            "before-clients" => load.rss_before_ws = now,
            "connecting" => load.rss_ws_connected = now,
            "writing" => writing.push(now),
            "settling" | "comparing" => load.rss_after_load = now,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(format!("the load process exited with {status}"));
    }
    load.rss_load_max = writing.iter().copied().max().unwrap_or(0);
    let cores = |p: &str| cpu.get(p).map_or(f64::NAN, |(a, b)| cores_between(*a, *b));
    load.server_cores = vec![cores("writing-solo"), cores("writing")];
    load.rss_writing_quartiles = [1, 2, 3, 4]
        .iter()
        .map(|q| {
            writing
                .get((writing.len() * q / 4).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000)); // closed sockets, the metrics loop
    load.rss_after_disconnect = server.rss();
    let kid: LoadOut = load_saved(&out).map_err(|e| format!("the load process's result: {e}"))?;
    load.passes = kid.passes;
    load.ws = kid.ws;
    load.tick_compared = kid.tick_compared;
    load.clients_hwm = kid.hwm;
    log(
        started,
        &format!(
            "server RSS: {} max writing without clients, {} before the clients, {} connected, {} max while writing, {} after",
            mib_read(load.rss_solo_max),
            mib(load.rss_before_ws),
            mib_read(load.rss_ws_connected),
            mib(load.rss_load_max),
            mib(load.rss_after_disconnect),
        ),
    );
    res.load = Some(load);
    Ok(())
}

/// One write pass.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Pass {
    /// The pass without clients (`LPM_BENCH_SERVE_SOLO`), apart from the pass with
    /// `LPM_BENCH_SERVE_WS` clients, which may be 0.
    solo: bool,
    /// WebSocket clients connected during the pass.
    clients: usize,
    writes: WriteResult,
    /// `lpm_freshness_seconds` over the pass.
    freshness: HistQ,
    /// `lpm_engine_tick_duration_seconds` over the pass.
    tick_duration: HistQ,
    reads_under_load: Vec<(String, Lat)>,
    read_errors: u64,
    /// Cores the load process (writers, clients, probe) used during the pass.
    load_cores: f64,
}

/// What the load process reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LoadOut {
    passes: Vec<Pass>,
    ws: WsResult,
    tick_compared: (u64, u64),
    hwm: u64,
}

fn load_child() -> i32 {
    let started = Instant::now();
    match load_run(started) {
        Ok(out) => {
            let written = env_path("LPM_BENCH_SERVE_OUT").and_then(|p| save(&p, &out));
            match written {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("bench serve: load: {e}");
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("bench serve: load: ERROR: {e}");
            1
        }
    }
}

fn scrape(client: &Client) -> Result<String, String> {
    let r = client.get("/metrics")?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(format!("/metrics answered {}", r.status))
    }
}

/// Writes for one pass with the reads-under-load probe running; freshness from `/metrics`.
#[allow(clippy::too_many_arguments)]
fn write_pass(
    base: &str,
    cookie: &str,
    reader: &Client,
    probes: &[serve_http::Probe],
    owned: &mut Vec<Vec<OwnedCase>>,
    built: &BuildInfo,
    clients: usize,
    started: Instant,
    settle: &dyn Fn(),
) -> Result<Pass, String> {
    let writers = env_usize("LPM_BENCH_SERVE_WRITERS", 32).max(1);
    let rate = env_usize("LPM_BENCH_SERVE_RATE", 1000) as f64;
    let seconds = env_usize("LPM_BENCH_SERVE_SECONDS", 10) as f64;
    let metrics = Client::new(base, ("X-Bench", "1".into()));
    let before = scrape(&metrics)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reads = {
        let (stop, client) = (stop.clone(), reader.clone());
        let probes = vec![probes[1].clone(), probes[2].clone()];
        std::thread::spawn(move || serve_http::paced_reads(client, probes, 20.0, stop))
    };
    log(
        started,
        &format!(
            "writing {rate} /s for {seconds} s from {writers} connections, {clients} WebSocket clients"
        ),
    );
    let cpu0 = Some((Instant::now(), cpu_seconds()));
    let writes = serve_http::write_load(
        base,
        cookie,
        rate,
        seconds,
        writers,
        owned,
        built.responsibles.clone(),
        serve_http::SERVER_TZ,
    );
    let load_cores = cores_between(cpu0, Some((Instant::now(), cpu_seconds())));
    stop.store(true, Ordering::Relaxed);
    let (reads_under_load, read_errors) = reads.join().unwrap_or_default();
    settle();
    // the server's metrics loop observes visible ticks every 250 ms
    std::thread::sleep(Duration::from_millis(600));
    let after = scrape(&metrics)?;
    let freshness = serve_http::parse_hist(&after, "lpm_freshness_seconds")
        .minus(&serve_http::parse_hist(&before, "lpm_freshness_seconds"))
        .summary();
    let tick_duration = serve_http::parse_hist(&after, "lpm_engine_tick_duration_seconds")
        .minus(&serve_http::parse_hist(
            &before,
            "lpm_engine_tick_duration_seconds",
        ))
        .summary();
    log(
        started,
        &format!(
            "writes: {} sent, {:.0}/s achieved, p50 {:.2} ms, p99 {:.2} ms, 202 {}, 409 {}, errors {} {}; lpm_freshness_seconds p50 {:.1} ms p99 {:.1} ms",
            writes.sent,
            writes.achieved_rate,
            writes.latency.p50,
            writes.latency.p99,
            writes.accepted_not_visible,
            writes.conflicts,
            writes.errors,
            writes.first_error.as_deref().unwrap_or(""),
            freshness.p50_ms,
            freshness.p99_ms,
        ),
    );
    Ok(Pass {
        solo: false,
        clients,
        load_cores,
        writes,
        freshness,
        tick_duration,
        reads_under_load,
        read_errors,
    })
}

fn load_run(started: Instant) -> Result<LoadOut, String> {
    let base = std::env::var("LPM_BENCH_SERVE_BASE").map_err(|e| e.to_string())?;
    let token = std::env::var("LPM_BENCH_SERVE_TOKEN").map_err(|e| e.to_string())?;
    let pristine = env_path("LPM_BENCH_SERVE_PRISTINE")?;
    let phase_file = env_path("LPM_BENCH_SERVE_PHASE")?;
    let phase = |p: &str| {
        let _ = std::fs::write(&phase_file, p);
    };
    let built: BuildInfo = std::fs::read_to_string(pristine.join("built.json"))
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))?;
    let ws_n = env_usize("LPM_BENCH_SERVE_WS", 500);
    let ws_threads = env_usize("LPM_BENCH_SERVE_WS_THREADS", 1);
    let writers = env_usize("LPM_BENCH_SERVE_WRITERS", 32).max(1);
    let solo = env_usize("LPM_BENCH_SERVE_SOLO", 1) != 0;
    let reader = Client::new(&base, ("Authorization", format!("Bearer {token}")));
    let probes = serve_http::probes(built.now_ms);
    let cookie = serve_http::sign_in(&base, ADMIN, ADMIN_PASSWORD)?;
    let mut owned = owned_cases(&pristine.join("cases.txt"), writers)?;
    let mut passes = Vec::new();

    // warm-up (not measured): connections, the server's blocking threads, the allocator
    let warmup = env_usize("LPM_BENCH_SERVE_WARMUP", 2) as f64;
    if warmup > 0.0 {
        phase("warm-up");
        let rate = env_usize("LPM_BENCH_SERVE_RATE", 1000) as f64;
        log(started, &format!("warm-up: {rate} writes/s for {warmup} s"));
        let w = serve_http::write_load(
            &base,
            &cookie,
            rate,
            warmup,
            writers,
            &mut owned,
            built.responsibles.clone(),
            serve_http::SERVER_TZ,
        );
        if w.errors > 0 {
            return Err(format!(
                "warm-up writes failed: {}",
                w.first_error.unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // pass 1: the writes alone
    if solo {
        phase("writing-solo");
        let alone = write_pass(
            &base,
            &cookie,
            &reader,
            &probes,
            &mut owned,
            &built,
            0,
            started,
            &|| phase("after-solo"),
        )?;
        passes.push(Pass {
            solo: true,
            ..alone
        });
        phase("before-clients");
        std::thread::sleep(Duration::from_millis(300));
    }

    // pass 2: the same with the WebSocket clients
    phase("connecting");
    log(
        started,
        &format!("connecting {ws_n} WebSocket clients ({ws_threads} runtime thread(s))"),
    );
    let ws_url = format!(
        "ws://{}/api/v1/stream?topics=views",
        &base["http://".len()..]
    );
    let t = Instant::now();
    let fleet = Fleet::start(ws_n, SAMPLED_CLIENTS, ws_threads, ws_url, token.clone())
        .map_err(|e| format!("WebSocket runtime: {e}"))?;
    let all_ready = fleet.wait_ready(ws_n, Duration::from_secs(300));
    let connect_seconds = t.elapsed().as_secs_f64();
    if !all_ready {
        eprintln!(
            "bench serve: WARNING: {} of {ws_n} clients ready, {} ended",
            fleet.progress.ready.load(Ordering::Relaxed),
            fleet.progress.ended.load(Ordering::Relaxed)
        );
    }
    log(
        started,
        &format!(
            "{} clients ready in {connect_seconds:.2}s",
            fleet.progress.ready.load(Ordering::Relaxed)
        ),
    );
    let metrics = Client::new(&base, ("X-Bench", "1".into()));
    let resyncs_before = serve_http::parse_scalar(&scrape(&metrics)?, "lpm_ws_resyncs_total");
    phase("writing");
    // settle: the streams quiet, every client at the newest tick, the server tick unchanged
    let settled: std::cell::RefCell<Option<(Value, f64)>> = std::cell::RefCell::new(None);
    let settle = || {
        phase("settling");
        let views = || get_json(&reader, "/api/v1/views").ok();
        *settled.borrow_mut() = fleet.settle(&views, Duration::from_secs(180));
    };
    passes.push(write_pass(
        &base, &cookie, &reader, &probes, &mut owned, &built, ws_n, started, &settle,
    )?);
    let (views_at, settle_seconds) = settled
        .into_inner()
        .ok_or_else(|| "the streams were not settled".to_string())?;
    phase("comparing");
    let outs = fleet.finish();
    let after_views = get_json(&reader, "/api/v1/views")?;
    let tick_compared = (
        views_at["tick"].as_u64().unwrap_or(0),
        after_views["tick"].as_u64().unwrap_or(0),
    );
    let mut ws = serve_ws::verdict(&outs, &views_at["views"]);
    drop(outs);
    ws.connect_seconds = connect_seconds;
    ws.runtime_threads = ws_threads;
    ws.settle_seconds = settle_seconds;
    ws.views_tick = tick_compared.0;
    ws.server_resyncs = serve_http::parse_scalar(&scrape(&metrics)?, "lpm_ws_resyncs_total")
        .unwrap_or(0.0)
        - resyncs_before.unwrap_or(0.0);
    log(
        started,
        &format!(
            "WebSocket: {} connected, {} resyncs, {} diffs, lost {}, errors {}, exact {}/{}, equal {}/{}, last ticks {}..{} vs {}",
            ws.connected,
            ws.resyncs,
            ws.diff_messages,
            ws.lost,
            ws.errors,
            ws.sampled_exact,
            ws.sampled,
            ws.fingerprint_equal,
            ws.clients,
            ws.last_tick_min,
            ws.last_tick_max,
            ws.views_tick
        ),
    );
    if let Some(e) = &ws.first_error {
        log(started, &format!("first client error: {e}"));
    }
    phase("done");
    Ok(LoadOut {
        passes,
        ws,
        tick_compared,
        hwm: proc_status("VmHWM:"),
    })
}

// ---------------------------------------------------------------------------------------------
// the parent: data sets, children, report

fn child(role: &str, envs: &[(&str, String)]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("starting a child: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the {role} child exited with {status}"))
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        if e.file_type().map_err(|e| e.to_string())?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))
                .map_err(|err| format!("copying {}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

fn run_one(data: &Path, persons: usize) -> SizeResult {
    let started = Instant::now();
    let pristine = data.join(format!("serve-{persons}"));
    let mut cached = pristine.join("built.json").is_file();
    if std::env::var_os("LPM_BENCH_SERVE_REBUILD").is_some() || !cached {
        cached = false;
        log(
            started,
            &format!("generating the {persons}-person data set (cached afterwards)"),
        );
        if let Err(e) = child(
            "build",
            &[
                ("LPM_BENCH_SERVE_DIR", pristine.display().to_string()),
                ("LPM_BENCH_SERVE_N", persons.to_string()),
            ],
        ) {
            return SizeResult {
                persons,
                error: Some(e),
                ..SizeResult::default()
            };
        }
    }
    let run_dir = data.join(format!("serve-{persons}-run"));
    let out = data.join(format!("serve-{persons}-result.postcard"));
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = std::fs::remove_file(&out);
    if let Err(e) = copy_dir(&pristine.join("log"), &run_dir.join("log")) {
        return SizeResult {
            persons,
            error: Some(e),
            ..SizeResult::default()
        };
    }
    let mut envs = vec![
        ("LPM_BENCH_SERVE_DIR", run_dir.display().to_string()),
        ("LPM_BENCH_SERVE_PRISTINE", pristine.display().to_string()),
        ("LPM_BENCH_SERVE_OUT", out.display().to_string()),
    ];
    if cached {
        envs.push(("LPM_BENCH_SERVE_CACHED", "1".into()));
    }
    let ran = child("run", &envs);
    let result = load_saved::<SizeResult>(&out);
    let _ = std::fs::remove_dir_all(&run_dir);
    match (ran, result) {
        (_, Ok(r)) => r,
        (Err(e), Err(_)) | (Ok(()), Err(e)) => SizeResult {
            persons,
            error: Some(e),
            ..SizeResult::default()
        },
    }
}

fn parent() {
    let (_, target) = workspace_and_target();
    let data = target.join("bench-data");
    let sizes: Vec<usize> = std::env::var("LPM_BENCH_SERVE_PERSONS")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    let load_start = load_average();
    let started = Instant::now();
    let mut results = Vec::new();
    for n in sizes {
        let r = run_one(&data, n);
        if let Some(e) = &r.error {
            eprintln!("bench serve: {n} persons: ERROR: {e}");
        }
        results.push(r);
    }
    match figures(&results).write(&target, "serve") {
        Ok(p) => eprintln!("bench: wrote {}", p.display()),
        Err(e) => eprintln!("bench: ERROR: writing the figures: {e}"),
    }
    let report = render(&results, &load_start, started.elapsed());
    println!("{report}");
    let path = target.join("bench-results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    match std::fs::write(&path, replace_section(&old, "serve", &report)) {
        Ok(()) => eprintln!("bench: wrote the ## serve section of {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
}

/// The figures the `headline` bench reads, per size `<persons>/`: `healthz`, `views`,
/// `grafana_hourly` (the 7-day hourly panel) and `grafana_facts` (the same answer from the facts:
/// the baseline) as `<probe>/p50` and `/p99` in ms; `ready_s` (start to `/readyz`, replaying the
/// log: the restart), `rss_ready` and `hwm` in bytes; for each write pass (`writes_solo`, without
/// clients, and `writes_ws`) `clients`, `rate` (achieved writes/s), `target_rate` and
/// `freshness_p99` (ms), and `writes_ws/client_errors` (clients whose stream ended in an error).
/// A figure that was not measured is absent; a failed size says why.
fn figures(results: &[SizeResult]) -> Figures {
    let mut f = Figures::default();
    for r in results {
        let p = r.persons;
        if let Some(e) = &r.error {
            f.miss(format!("{p}/"), e.replace('\n', " "));
        }
        for (name, l) in &r.queries {
            let key = if name.contains("/healthz") {
                "healthz"
            } else if name.contains("/api/v1/views") {
                "views"
            } else if name.contains("7 d hourly") {
                "grafana_hourly"
            } else if name.contains("via the facts") {
                "grafana_facts"
            } else {
                continue;
            };
            if l.n > 0 {
                f.set(format!("{p}/{key}/p50"), l.p50);
                f.set(format!("{p}/{key}/p99"), l.p99);
            }
        }
        // 0: not reached (the defaults of a size that failed early)
        let positive = |x: f64| if x > 0.0 { x } else { f64::NAN };
        f.set(format!("{p}/ready_s"), positive(r.ready_seconds));
        f.set(format!("{p}/rss_ready"), positive(r.rss_ready as f64));
        f.set(format!("{p}/hwm"), positive(r.hwm as f64));
        match &r.load {
            Some(l) => {
                for pass in &l.passes {
                    let k = if pass.solo {
                        "writes_solo"
                    } else {
                        "writes_ws"
                    };
                    f.set(format!("{p}/{k}/clients"), pass.clients as f64);
                    f.set(format!("{p}/{k}/rate"), pass.writes.achieved_rate);
                    f.set(format!("{p}/{k}/target_rate"), pass.writes.target_rate);
                    f.set(format!("{p}/{k}/freshness_p99"), pass.freshness.p99_ms);
                }
                // clients whose stream ended in an error (the server closing a slow one):
                // the pass "with N clients" had fewer for part of it
                f.set(format!("{p}/writes_ws/client_errors"), l.ws.errors as f64);
                if !l.passes.iter().any(|x| x.solo) {
                    f.miss(
                        format!("{p}/writes_solo/"),
                        "no pass without clients (LPM_BENCH_SERVE_SOLO=0)",
                    );
                }
            }
            None => {
                for k in ["writes_solo", "writes_ws"] {
                    f.miss(
                        format!("{p}/{k}/"),
                        "no write passes (the size failed before them)",
                    );
                }
            }
        }
    }
    f
}

// ---------------------------------------------------------------------------------------------
// rendering

fn lat3(l: &Lat) -> String {
    if l.n == 0 {
        "—".into()
    } else {
        format!("{} / {} / {}", f2(l.p50), f2(l.p99), f2(l.max))
    }
}

fn secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.0} s ({:.1} min)", s, s / 60.0)
    } else {
        format!("{s:.2} s")
    }
}

fn render(results: &[SizeResult], load_start: &str, elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## serve\n");
    let _ = writeln!(
        s,
        "`cargo bench -p lpm-benches --bench serve` ({}): the release `lpm serve` binary on 127.0.0.1 (no `--demo`), `--workers {}`, mimalloc; data sets from `demo::load` (60 days, 50 responsibles). One run per size; percentiles are over the requests of that run. Times in ms: p50 / p99 / max.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        results.first().map_or(2, |r| r.engine_workers.max(1)),
    );

    // startup
    let _ = writeln!(
        s,
        "| persons | cases | change events in log | log size | generate (`demo::load`) | restart: listening | restart: ready (replayed) | RSS ready |"
    );
    let _ = writeln!(
        s,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in results {
        let b = &r.build;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} |",
            report::size_label(r.persons),
            b.cases,
            b.change_events,
            mib(b.log_bytes),
            secs(b.generate_seconds),
            if r.build_cached { " (cached)" } else { "" },
            secs(r.listening_seconds),
            secs(r.ready_seconds),
            mib(r.rss_ready)
        );
    }
    let _ = writeln!(s);

    // reads
    let names: Vec<String> = results
        .iter()
        .find(|r| !r.queries.is_empty())
        .map(|r| r.queries.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    if !names.is_empty() {
        let n = results
            .iter()
            .flat_map(|r| r.queries.first())
            .map(|(_, l)| l.n)
            .next()
            .unwrap_or(0);
        let _ = write!(s, "| read ({n} each, idle server, 1 keep-alive client) |");
        for r in results {
            let _ = write!(s, " {} |", report::size_label(r.persons));
        }
        let _ = writeln!(
            s,
            " p99 {} ÷ p99 {} |",
            report::size_label(results.last().map_or(0, |r| r.persons)),
            report::size_label(results[0].persons)
        );
        let _ = write!(s, "| --- |");
        for _ in results {
            let _ = write!(s, " ---: |");
        }
        let _ = writeln!(s, " ---: |");
        for name in &names {
            let _ = write!(s, "| {name} |");
            let mut p99s = Vec::new();
            for r in results {
                let l = r.queries.iter().find(|(n, _)| n == name).map(|(_, l)| l);
                let _ = write!(s, " {} |", l.map_or("—".into(), lat3));
                p99s.push(l.map(|l| l.p99));
            }
            let ratio = match (p99s.first(), p99s.last()) {
                (Some(Some(a)), Some(Some(b))) if results.len() > 1 && *a > 0.0 => {
                    format!("{:.2}×", b / a)
                }
                _ => "—".into(),
            };
            let _ = writeln!(s, " {ratio} |");
        }
        let _ = writeln!(s);
    }

    // writes + freshness
    let loads: Vec<(&SizeResult, &LoadResult)> = results
        .iter()
        .filter_map(|r| r.load.as_ref().map(|l| (r, l)))
        .collect();
    let first_pass = loads.iter().flat_map(|(_, l)| l.passes.first()).next();
    if let Some(p0) = first_pass {
        let _ = writeln!(
            s,
            "| writes: {:.0}/s for {:.0} s from {} connections | WebSocket clients | achieved writes/s | write response (commit → visible + HTTP) | from scheduled time | `lpm_freshness_seconds` p50 / p99 | ≤ 50 ms | `lpm_engine_tick_duration_seconds` p50 / p99 | 202 / 409 / errors | reads meanwhile: views; grafana 7 d | CPU cores: server / load process |",
            p0.writes.target_rate, p0.writes.seconds, p0.writes.threads
        );
        let _ = writeln!(
            s,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (r, l) in &loads {
            for p in &l.passes {
                // the server's readings are by phase: without clients first, then with
                let server = if p.solo {
                    l.server_cores.first()
                } else {
                    l.server_cores.get(1)
                }
                .copied()
                .unwrap_or(f64::NAN);
                let w = &p.writes;
                let ru = |i: usize| {
                    p.reads_under_load.get(i).map_or("—".into(), |(_, x)| {
                        format!("{} / {}", f2(x.p50), f2(x.p99))
                    })
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} ({} of {}) | {} | {} | {} / {} (p99 in {}) | {:.1}% of {:.0} | {} / {} | {} / {} / {} | {}; {} | {} / {} |",
                    report::size_label(r.persons),
                    p.clients,
                    w.achieved_rate,
                    w.visible + w.accepted_not_visible,
                    (w.target_rate * w.seconds).round(),
                    lat3(&w.latency),
                    lat3(&w.latency_from_schedule),
                    f2(p.freshness.p50_ms),
                    f2(p.freshness.p99_ms),
                    p.freshness.p99_bucket,
                    p.freshness.share_le_50ms * 100.0,
                    p.freshness.count,
                    f2(p.tick_duration.p50_ms),
                    f2(p.tick_duration.p99_ms),
                    w.accepted_not_visible,
                    w.conflicts,
                    w.errors,
                    ru(0),
                    ru(1),
                    f2(server),
                    f2(p.load_cores),
                );
            }
        }
        let _ = writeln!(s);

        // WebSocket
        let _ = writeln!(
            s,
            "| WebSocket clients | connected (connect time) | resyncs: snapshots after the first (clients; server counter) | diff messages / row changes | lost diffs | out-of-order | errors | exact = GET views (sample) | equal rows (all) | last tick min / max vs views tick | server RSS: before WS / connected / max while writing / settled / clients closed | server VmHWM |"
        );
        let _ = writeln!(
            s,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (r, l) in &loads {
            let ws = &l.ws;
            let _ = writeln!(
                s,
                "| {} | {} of {} ({:.1} s) | {} ({}; {:.0}) | {} / {} | {} | {} | {} | {} / {} | {} / {} | {} / {} vs {} | {} / {} / {} / {} / {} | {} |",
                report::size_label(r.persons),
                ws.connected,
                ws.clients,
                ws.connect_seconds,
                ws.resyncs,
                ws.clients_resynced,
                ws.server_resyncs,
                ws.diff_messages,
                ws.row_changes,
                ws.lost,
                ws.out_of_order,
                ws.errors,
                ws.sampled_exact,
                ws.sampled,
                ws.fingerprint_equal,
                ws.clients,
                ws.last_tick_min,
                ws.last_tick_max,
                ws.views_tick,
                mib(l.rss_before_ws),
                mib_read(l.rss_ws_connected),
                mib(l.rss_load_max),
                mib(l.rss_after_load),
                mib(l.rss_after_disconnect),
                mib(r.hwm),
            );
        }
        let _ = writeln!(s);
    }

    // goals
    let _ = writeln!(s, "Goals:\n");
    for r in results {
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "* **{} persons: ERROR**: {}",
                report::size_label(r.persons),
                e.replace('\n', " ")
            );
        }
    }
    let reads: Vec<(&SizeResult, &(String, Lat))> = results
        .iter()
        .flat_map(|r| r.queries.iter().skip(1).map(move |q| (r, q)))
        .collect();
    if !reads.is_empty() {
        let over: Vec<String> = reads
            .iter()
            .filter(|(_, (_, l))| l.p99 > 5.0)
            .map(|(r, (n, l))| format!("{} {n} {:.2} ms", report::size_label(r.persons), l.p99))
            .collect();
        let worst = reads.iter().map(|(_, (_, l))| l.p99).fold(0.0f64, f64::max);
        let _ = writeln!(
            s,
            "* read p99 ≤ 5 ms (idle server): {} (worst p99 {:.2} ms{})",
            if over.is_empty() { "met" } else { "**missed**" },
            worst,
            if over.is_empty() {
                String::new()
            } else {
                format!("; over: {}", over.join(", "))
            }
        );
    }
    if results.len() > 1 {
        let (a, b) = (&results[0], &results[results.len() - 1]);
        let ratios: Vec<String> = a
            .queries
            .iter()
            .skip(1)
            .filter_map(|(n, la)| {
                let lb = b.queries.iter().find(|(m, _)| m == n)?.1.clone();
                Some(format!(
                    "{} {:.2}×",
                    n.split(':').next_back().unwrap_or(n).trim(),
                    lb.p99 / la.p99.max(1e-9)
                ))
            })
            .collect();
        let floor = a.queries.first().and_then(|(_, la)| {
            let lb = &b.queries.first()?.1;
            Some(lb.p99 / la.p99.max(1e-9))
        });
        let _ = writeln!(
            s,
            "* flat in row count (p99 at {} ÷ p99 at {}): {}{}",
            report::size_label(b.persons),
            report::size_label(a.persons),
            if ratios.is_empty() {
                "—".into()
            } else {
                ratios.join(", ")
            },
            floor.map_or(String::new(), |f| format!(
                " (the HTTP floor /healthz: {f:.2}×)"
            ))
        );
    }
    for (r, l) in &loads {
        for p in &l.passes {
            let ok_fresh = p.freshness.p99_ms <= 50.0;
            let ok_write = p.writes.latency.p99 <= 50.0;
            let _ = writeln!(
                s,
                "* {}, {} WebSocket clients: freshness p99 ≤ 50 ms at {:.0} writes/s: {} by write response time (p99 {:.1} ms), {} by `lpm_freshness_seconds` (p99 {:.1} ms); rate {} ({:.0}/s)",
                report::size_label(r.persons),
                p.clients,
                p.writes.target_rate,
                if ok_write { "met" } else { "**missed**" },
                p.writes.latency.p99,
                if ok_fresh { "met" } else { "**missed**" },
                p.freshness.p99_ms,
                if p.writes.achieved_rate >= 0.95 * p.writes.target_rate {
                    "sustained"
                } else {
                    "**not sustained**"
                },
                p.writes.achieved_rate,
            );
        }
        let ws = &l.ws;
        let exact = ws.sampled_exact == ws.sampled && ws.fingerprint_equal == ws.clients;
        let _ = writeln!(
            s,
            "* {}: {} WebSocket clients: lost diffs {}, {} announced resyncs, final state {} (exact {}/{}, equal {}/{}){}; server RSS {} before the clients, {} max while writing, {} after",
            report::size_label(r.persons),
            ws.clients,
            if ws.lost == 0 {
                "0 (met)".to_string()
            } else {
                format!("**{}**", ws.lost)
            },
            ws.resyncs,
            if exact { "correct" } else { "**WRONG**" },
            ws.sampled_exact,
            ws.sampled,
            ws.fingerprint_equal,
            ws.clients,
            ws.first_error.as_ref().map_or(String::new(), |e| format!(
                "; {} client errors, first: {e}",
                ws.errors
            )),
            mib(l.rss_before_ws),
            mib(l.rss_load_max),
            mib(l.rss_after_disconnect),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "* machine: {} cores, {}; load average {load_start} at start, {} at end; harness wall time {:.0}s",
        cores(),
        cpu_model(),
        load_average(),
        elapsed.as_secs_f64()
    );
    for r in results {
        let _ = writeln!(
            s,
            "* {}: generating peak RSS {} (separate process); server process: RSS {} when listening (before the replay), {} after the read phase, shutdown (SIGTERM) {:.2} s, size wall time {:.0} s",
            report::size_label(r.persons),
            mib(r.build.peak_rss),
            mib(r.rss_listening),
            mib(r.rss_after_queries),
            r.shutdown_seconds,
            r.wall_seconds
        );
        if let Some(l) = &r.load {
            for p in &l.passes {
                let w = &p.writes;
                let kinds: Vec<String> = w
                    .by_kind
                    .iter()
                    .map(|(k, x)| format!("{k} {} (n={})", lat3(x), x.n))
                    .collect();
                let _ = writeln!(
                    s,
                    "* {}, {} clients: writes by kind: {}; first write error: {}",
                    report::size_label(r.persons),
                    p.clients,
                    kinds.join("; "),
                    w.first_error.as_deref().unwrap_or("none"),
                );
            }
            let q: Vec<String> = l.rss_writing_quartiles.iter().map(|b| mib(*b)).collect();
            let _ = writeln!(
                s,
                "* {}: server RSS max {} while writing without clients; at 25/50/75/100% of the write phase with clients: {}; streams settled {:.1} s after the last write; views tick {} before and {} after the comparison; load process (clients) peak RSS {} (their row state ≈ {:.1} MiB); {:.0} MB of WebSocket messages received in all{}",
                report::size_label(r.persons),
                mib_read(l.rss_solo_max),
                q.join(" / "),
                l.ws.settle_seconds,
                l.tick_compared.0,
                l.tick_compared.1,
                mib(l.clients_hwm),
                l.ws.client_state_mib,
                l.ws.mbytes_received,
                l.ws.first_error.as_ref().map_or(String::new(), |e| format!(
                    "; first client error: {e}"
                )),
            );
        }
    }
    let _ = writeln!(
        s,
        "* processes: the server is the release `lpm serve` binary in its own process (its RSS is the server's alone), driven by a harness child that runs the read-latency client; the writers, the WebSocket clients (one tokio thread) and the reads-meanwhile probe (20/s) run in another child process on the same cores. After a warm-up of `LPM_BENCH_SERVE_WARMUP` (2) s of writes, the write pass without clients runs, then the clients connect and the same writes run again. `lpm_freshness_seconds` p50/p99 are interpolated inside its buckets (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms ...); the ≤ 50 ms share is exact (a bucket boundary). A write's response time is measured from its send; \"from scheduled time\" adds the wait for a free connection (coordinated omission)."
    );
    s
}
