//! Soak test: `cargo bench -p lpm-benches --bench soak -- --minutes 30`.
//!
//! A release `lpm serve` (the real binary, started by the bench: embedded log, a fresh data
//! directory under `target/bench-data/soak-run/`, a free loopback port, 2 engine workers) runs
//! for the given time under, all at once:
//!
//! - **writes** at a steady rate (`--rate`, default 100/s) through the REST API, signed in as a
//!   responder: 20% new reports, 20% status changes, 20% assignments, 40% actions, each writer
//!   changing only the cases it filed, so every acknowledged write's effect is known exactly
//!   (`soak_writes.rs`);
//! - **Grafana polling** like a dashboard wall: every panel of the two analyst dashboards
//!   (`/api/v1/rows/*` and `/grafana/query`) every 5 s with the read-only token
//!   (`dashboard_wall.rs`);
//! - **200 WebSocket clients** on `/api/v1/stream?topics=views` with the read-only token: 75%
//!   read and apply every diff (`serve_ws.rs`), 25% connect and never read (`ws_silent.rs`);
//! - **sampling** every 5 s: the server's `VmRSS` and CPU from `/proc/<pid>`, `/metrics`
//!   (WebSocket clients and resyncs, state rows), and the non-readers' TCP queues.
//!
//! At the end: the readers settle and must hold exactly `GET /api/v1/views` (lost diffs 0);
//! the non-readers are drained once and what happened to them is reported (closed by the
//! server or not, resynced or not: reported, never a failure); every acknowledged write is
//! read back through `GET /api/v1/cases/{id}`; the server is stopped with SIGTERM, started
//! again on the same data directory, and every write is read back again and the views
//! compared. Any missing or different write, any HTTP error (each kind counted), reader
//! divergence, unclean stop or changed views fails the run (exit code 1).
//!
//! Reported: RSS over time (first / last / max, and a least-squares slope over the second
//! half of the writes in MiB per hour, beside the state rows added), writes/s achieved, write
//! latency p50/p99, Grafana query p50/p99, WebSocket clients connected / dropped / resynced,
//! restart time. Output: a `## soak` section replaced in (or appended to)
//! `target/bench-results.md` and stdout; every sample in `target/bench-data/soak-samples.csv`
//! and every acknowledged write in `target/bench-data/soak-acks.csv`.
//!
//! Knobs (flags win over the environment): `--minutes` / `LPM_BENCH_SOAK_MINUTES` (30),
//! `--rate` / `LPM_BENCH_SOAK_RATE` (100), `--ws` / `LPM_BENCH_SOAK_WS` (200),
//! `--silent-percent` / `LPM_BENCH_SOAK_SILENT_PERCENT` (25), `LPM_BENCH_SOAK_WRITERS` (16),
//! `LPM_BENCH_SOAK_WS_THREADS` (1), `LPM_BENCH_SOAK_GRAFANA_EVERY` (5 s),
//! `LPM_BENCH_SOAK_SAMPLE_EVERY` (5 s), `LPM_BENCH_SOAK_WORKERS` (2),
//! `LPM_BENCH_SOAK_BIN` (an `lpm` binary to use instead of building `target/release/lpm`),
//! `LPM_BENCH_SOAK_KEEP=1` (keep the data directory and server log).

mod dashboard_wall;
mod lpm_process;
mod machine;
mod report;
mod serve_http;
mod serve_ws;
mod soak_writes;
mod ws_silent;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use lpm_process::{LpmProcess, Stopped};
use machine::{cpu_model, load_average};
use report::{
    cores, cpu_seconds, env_f64, env_usize, f2, replace_section, slope, workspace_and_target,
};
use serve_http::{lat, Client, Lat};
use serve_ws::{Fleet, WsResult};
use soak_writes::{Verified, WriteSetup, WriterOut, Writers, KINDS};
use ws_silent::{states, Drained, Silent, TcpView};

const RESPONDER: &str = "soak-responder";
const PASSWORD: &str = "soak-responder-password";
const RESPONSIBLES: usize = 12;
const SAMPLED_READERS: usize = 10;
const MIB: f64 = 1024.0 * 1024.0;

/// The run's settings.
#[derive(Clone, Debug, Default)]
struct Knobs {
    minutes: f64,
    rate: f64,
    ws: usize,
    silent_percent: f64,
    writers: usize,
    ws_threads: usize,
    grafana_every: f64,
    sample_every: f64,
    workers: usize,
    keep: bool,
}

impl Knobs {
    fn read() -> Result<Knobs, String> {
        let mut k = Knobs {
            minutes: env_f64("LPM_BENCH_SOAK_MINUTES", 30.0),
            rate: env_f64("LPM_BENCH_SOAK_RATE", 100.0),
            ws: env_usize("LPM_BENCH_SOAK_WS", 200),
            silent_percent: env_f64("LPM_BENCH_SOAK_SILENT_PERCENT", 25.0),
            writers: env_usize("LPM_BENCH_SOAK_WRITERS", 16).max(1),
            ws_threads: env_usize("LPM_BENCH_SOAK_WS_THREADS", 1).max(1),
            grafana_every: env_f64("LPM_BENCH_SOAK_GRAFANA_EVERY", 5.0),
            sample_every: env_f64("LPM_BENCH_SOAK_SAMPLE_EVERY", 5.0),
            workers: env_usize("LPM_BENCH_SOAK_WORKERS", 2).max(1),
            keep: std::env::var_os("LPM_BENCH_SOAK_KEEP").is_some(),
        };
        // `cargo bench` adds `--bench`; `--name value` and `--name=value` both work
        let mut args = std::env::args().skip(1).peekable();
        while let Some(a) = args.next() {
            if a == "--bench" {
                continue;
            }
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let num = |v: String| {
                v.parse::<f64>()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            };
            match name.as_str() {
                "--minutes" => k.minutes = num(value()?)?,
                "--rate" => k.rate = num(value()?)?,
                "--ws" => k.ws = num(value()?)? as usize,
                "--silent-percent" => k.silent_percent = num(value()?)?,
                _ => {
                    return Err(format!(
                        "unknown argument {a:?}; flags: --minutes N, --rate N, --ws N, --silent-percent N"
                    ))
                }
            }
        }
        if !(k.minutes > 0.0 && k.rate > 0.0 && k.grafana_every > 0.0 && k.sample_every > 0.0) {
            return Err("minutes, rate and the intervals must be positive".into());
        }
        Ok(k)
    }

    fn silent(&self) -> usize {
        ((self.ws as f64) * self.silent_percent.clamp(0.0, 100.0) / 100.0).round() as usize
    }

    fn seconds(&self) -> f64 {
        self.minutes * 60.0
    }
}

fn log(epoch: Instant, what: &str) {
    eprintln!(
        "bench soak [{:>7.1}s] {what}",
        epoch.elapsed().as_secs_f64()
    );
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / MIB)
}

fn main() {
    let knobs = match Knobs::read() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bench soak: {e}");
            std::process::exit(2);
        }
    };
    let (workspace, target) = workspace_and_target();
    let load_start = load_average();
    let started = Instant::now();
    let run_dir = target.join("bench-data").join("soak-run");
    let mut res = SoakResult {
        knobs: knobs.clone(),
        ..SoakResult::default()
    };
    if let Err(e) = soak(&knobs, &workspace, &target, &run_dir, &mut res) {
        eprintln!("bench soak: ERROR: {e}");
        res.fatal = Some(e);
    }
    let failures = res.failures();
    let report = render(&res, &load_start, started.elapsed());
    println!("{report}");
    let path = target.join("bench-results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    match std::fs::write(&path, replace_section(&old, "soak", &report)) {
        Ok(()) => eprintln!("bench: wrote the ## soak section of {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
    write_csvs(&res, &target.join("bench-data"));
    if knobs.keep || !failures.is_empty() {
        eprintln!(
            "bench soak: data directory and server log kept in {}",
            run_dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    if !failures.is_empty() {
        eprintln!("bench soak: FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// the run

/// One sample of the server and the clients.
#[derive(Clone, Debug, Default)]
struct Sample {
    at_s: f64,
    /// Taken while the writers ran.
    writing: bool,
    rss: u64,
    server_cpu: f64,
    ws_clients: Option<f64>,
    ws_resyncs: Option<f64>,
    state_rows: Option<f64>,
    arrangement_records: Option<f64>,
    tick: Option<f64>,
    /// Reading clients that ended (closed by the server, or an error), so far.
    readers_ended: usize,
    silent: TcpView,
}

/// Everything a run measured.
#[derive(Debug, Default)]
struct SoakResult {
    knobs: Knobs,
    fatal: Option<String>,
    binary: String,
    ready_seconds: f64,
    rss_ready: u64,
    samples: Vec<Sample>,
    writes: WriterOut,
    /// Seconds from the first scheduled write to the last answer.
    write_seconds: f64,
    polls: Vec<dashboard_wall::Poll>,
    panels: Vec<(String, String, &'static str)>,
    /// Non-HTTP-write errors by kind (Grafana, metrics, views, sign-in, ...).
    errors: BTreeMap<String, u64>,
    error_examples: Vec<String>,
    readers: usize,
    readers_connect_seconds: f64,
    ws: WsResult,
    /// Readers the server closed (or whose stream ended) before the end.
    readers_closed: usize,
    silent: usize,
    silent_connect_errors: Vec<String>,
    /// When the server side of a non-reader first left ESTABLISHED (seconds into the run).
    silent_first_closed_at: Option<f64>,
    silent_before_drain: TcpView,
    drained: Drained,
    /// `lpm_http_requests_total` by status class at the end of the run (the server's count).
    server_status_classes: BTreeMap<String, f64>,
    verify_running: Option<Verified>,
    stop: Option<Stopped>,
    restart_ready_seconds: f64,
    restart_rss: u64,
    verify_restarted: Option<Verified>,
    views_equal_after_restart: Option<bool>,
    final_stop: Option<Stopped>,
    bench_cores: f64,
    server_cores: f64,
    hwm: u64,
}

impl SoakResult {
    fn error(&mut self, kind: String, detail: String) {
        *self.errors.entry(kind).or_default() += 1;
        if self.error_examples.len() < 10 {
            self.error_examples.push(detail);
        }
    }

    /// Every HTTP error, by kind (writes, Grafana, reads, read-backs).
    fn all_errors(&self) -> BTreeMap<String, u64> {
        let mut all = self.errors.clone();
        for (k, n) in &self.writes.errors {
            *all.entry(k.clone()).or_default() += n;
        }
        for v in [&self.verify_running, &self.verify_restarted]
            .into_iter()
            .flatten()
        {
            for (k, n) in &v.errors {
                *all.entry(k.clone()).or_default() += n;
            }
        }
        all
    }

    /// Why the run failed (empty: it passed).
    fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if let Some(e) = &self.fatal {
            f.push(format!("the run stopped: {e}"));
        }
        let errors: u64 = self.all_errors().values().sum();
        if errors > 0 {
            f.push(format!("{errors} HTTP errors"));
        }
        if self.writes.anomalies > 0 {
            f.push(format!(
                "{} write answers contradicted earlier acknowledgements",
                self.writes.anomalies
            ));
        }
        for (when, v) in [
            ("running", &self.verify_running),
            ("after the restart", &self.verify_restarted),
        ] {
            match v {
                Some(v) if !v.as_acknowledged() => f.push(format!(
                    "{when}: {} cases missing, {} different from what was acknowledged",
                    v.missing, v.wrong
                )),
                None if self.fatal.is_none() => f.push(format!("{when}: not verified")),
                _ => {}
            }
        }
        if self.fatal.is_none() {
            let ws = &self.ws;
            if ws.lost > 0 {
                f.push(format!("reading clients lost {} diffs", ws.lost));
            }
            if ws.sampled_exact != ws.sampled || ws.fingerprint_equal != ws.clients {
                f.push(format!(
                    "reading clients' final state differs from GET /api/v1/views (exact {}/{}, equal {}/{})",
                    ws.sampled_exact, ws.sampled, ws.fingerprint_equal, ws.clients
                ));
            }
            if !self.stop.as_ref().is_some_and(|s| s.clean) {
                f.push("the server did not stop cleanly on SIGTERM".into());
            }
            if self.views_equal_after_restart != Some(true) {
                f.push("the views after the restart differ from those before".into());
            }
        }
        f
    }
}

fn get_json(client: &Client, path: &str) -> Result<Value, String> {
    let r = client.get(path)?;
    if r.status != 200 {
        return Err(format!("GET {path} answered {}", r.status));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("GET {path}: {e}"))
}

/// The responsibles the writers assign (a responder may create them).
fn create_responsibles(client: &Client) -> Result<Vec<i64>, String> {
    let agencies = ["DINASED", "ECU 911", "Cruz Roja", "Policía Nacional"];
    (0..RESPONSIBLES)
        .map(|i| {
            let body = json!({
                "full_name": format!("Responsable Soak {i}"),
                "agency": agencies[i % agencies.len()],
            });
            let r = client.send("POST", "/api/v1/responsibles", &body.to_string())?;
            if !(200..300).contains(&r.status) {
                return Err(format!(
                    "POST /api/v1/responsibles answered {}: {}",
                    r.status, r.body
                ));
            }
            serde_json::from_str::<Value>(&r.body)
                .ok()
                .and_then(|v| v["id"].as_i64())
                .ok_or_else(|| format!("no id in {}", r.body))
        })
        .collect()
}

fn soak(
    k: &Knobs,
    workspace: &Path,
    target: &Path,
    run_dir: &Path,
    res: &mut SoakResult,
) -> Result<(), String> {
    let bin = lpm_process::binary(workspace, target)?;
    let epoch = Instant::now();
    res.binary = bin.display().to_string();
    let _ = std::fs::remove_dir_all(run_dir);
    let data = run_dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let server_log = run_dir.join("lpm.log");
    let data_s = data.display().to_string();
    lpm_process::cli(
        &bin,
        &[
            "user",
            "add",
            RESPONDER,
            "--role",
            "responder",
            "--data-dir",
            &data_s,
        ],
        &[("LPM_PASSWORD", PASSWORD)],
    )?;
    let token = lpm_process::cli(
        &bin,
        &["token", "create", "soak-wall", "--data-dir", &data_s],
        &[],
    )?
    .trim()
    .to_string();
    log(
        epoch,
        &format!("starting {} serve on {}", bin.display(), data.display()),
    );
    let mut server = LpmProcess::start(&bin, &data, k.workers, &server_log)?;
    res.ready_seconds = server.ready_seconds;
    res.rss_ready = server.rss();
    let base = server.base.clone();
    log(
        epoch,
        &format!(
            "{base} ready after {:.2}s, RSS {}",
            server.ready_seconds,
            mib(res.rss_ready)
        ),
    );
    let cookie = serve_http::sign_in(&base, RESPONDER, PASSWORD)?;
    let writer_client = Client::new(&base, ("Cookie", cookie.clone()));
    let reader = Client::new(&base, ("Authorization", format!("Bearer {token}")));
    let responsibles = create_responsibles(&writer_client)?;

    // the WebSocket clients, before any write
    let ws_url = format!(
        "ws://{}/api/v1/stream?topics=views",
        &base["http://".len()..]
    );
    res.silent = k.silent();
    res.readers = k.ws.saturating_sub(res.silent);
    let t = Instant::now();
    let fleet = Fleet::start(
        res.readers,
        SAMPLED_READERS,
        k.ws_threads,
        ws_url.clone(),
        token.clone(),
    )
    .map_err(|e| format!("WebSocket runtime: {e}"))?;
    if !fleet.wait_ready(res.readers, Duration::from_secs(300)) {
        log(
            epoch,
            &format!(
                "WARNING: {} of {} reading clients ready, {} ended",
                fleet.progress.ready.load(Ordering::Relaxed),
                res.readers,
                fleet.progress.ended.load(Ordering::Relaxed)
            ),
        );
    }
    res.readers_connect_seconds = t.elapsed().as_secs_f64();
    let silent = Silent::connect(res.silent, &ws_url, &token)
        .map_err(|e| format!("WebSocket runtime: {e}"))?;
    res.silent_connect_errors = silent.connect_errors.clone();
    let silent_ports = silent.ports();
    log(
        epoch,
        &format!(
            "{} reading and {} non-reading WebSocket clients connected",
            fleet.progress.ready.load(Ordering::Relaxed),
            silent_ports.len()
        ),
    );

    // sampling
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let writing = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let sample_errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (stop, writing, samples, errors) = (
            stop_sampling.clone(),
            writing.clone(),
            samples.clone(),
            sample_errors.clone(),
        );
        let metrics = Client::new(&base, ("X-Bench", "soak".into()));
        let progress = fleet.progress.clone();
        let (pid_rss, pid_cpu) = server_probes(&server);
        let (ports, port) = (silent_ports.clone(), server.port);
        let every = Duration::from_secs_f64(k.sample_every);
        std::thread::Builder::new()
            .name("soak-sampler".into())
            .spawn(move || {
                let start = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let text = match metrics.get("/metrics") {
                        Ok(r) if r.status == 200 => r.body,
                        Ok(r) => {
                            lock(&errors).push(format!("metrics scrape: HTTP {}", r.status));
                            String::new()
                        }
                        Err(e) => {
                            lock(&errors).push(format!("metrics scrape: transport ({e})"));
                            String::new()
                        }
                    };
                    let s = Sample {
                        at_s: epoch.elapsed().as_secs_f64(),
                        writing: writing.load(Ordering::Relaxed),
                        rss: pid_rss(),
                        server_cpu: pid_cpu(),
                        ws_clients: serve_http::parse_scalar(&text, "lpm_ws_clients"),
                        ws_resyncs: serve_http::parse_scalar(&text, "lpm_ws_resyncs_total"),
                        state_rows: serve_http::sum_series(&text, "lpm_upsert_state_rows"),
                        arrangement_records: serve_http::sum_series(
                            &text,
                            "lpm_arrangement_records",
                        ),
                        tick: serve_http::parse_scalar(&text, "lpm_engine_tick"),
                        readers_ended: progress.ended.load(Ordering::Relaxed),
                        silent: ws_silent::tcp_view(&ports, port),
                    };
                    lock(&samples).push(s);
                    n += 1;
                    let next = start + every * n;
                    while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(
                            next.saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(100)),
                        );
                    }
                }
            })
            .map_err(|e| e.to_string())?
    };

    // the dashboard wall: one thread per dashboard
    let panels = dashboard_wall::load(&workspace.join("dashboards").join("analysts"))?;
    res.panels = panels
        .iter()
        .map(|(p, _)| (p.dashboard.clone(), p.title.clone(), p.kind()))
        .collect();
    let stop_wall = Arc::new(AtomicBool::new(false));
    let mut walls = Vec::new();
    let mut by_dashboard = Vec::new();
    for (i, p) in panels.into_iter().enumerate() {
        let same = by_dashboard
            .last()
            .and_then(|(_, v): &(usize, Vec<_>)| v.first())
            .is_some_and(|(q, _): &(dashboard_wall::Panel, _)| q.dashboard == p.0.dashboard);
        match by_dashboard.last_mut() {
            Some((_, v)) if same => v.push(p),
            _ => by_dashboard.push((i, vec![p])),
        }
    }
    for (offset, panels) in by_dashboard {
        let (client, stop) = (reader.clone(), stop_wall.clone());
        let every = Duration::from_secs_f64(k.grafana_every);
        walls.push(
            std::thread::Builder::new()
                .name("soak-wall".into())
                .spawn(move || dashboard_wall::run(client, panels, offset, every, stop, epoch))
                .map_err(|e| e.to_string())?,
        );
    }

    // the writes
    log(
        epoch,
        &format!(
            "writing {} /s for {:.1} min from {} connections; {} Grafana panels every {} s",
            k.rate,
            k.minutes,
            k.writers,
            res.panels.len(),
            k.grafana_every
        ),
    );
    let bench_cpu0 = cpu_seconds();
    let server_cpu0 = server.cpu_seconds();
    let t_writes = Instant::now();
    writing.store(true, Ordering::Relaxed);
    let writers = Writers::start(WriteSetup {
        base: base.clone(),
        cookie: cookie.clone(),
        rate: k.rate,
        seconds: k.seconds(),
        threads: k.writers,
        responsibles,
        tz: lpm_api::ApiConfig::default().tz,
        epoch,
    })
    .map_err(|e| format!("writer threads: {e}"))?;
    let mut last_log = Instant::now();
    let mut died = None;
    while !writers.done() {
        std::thread::sleep(Duration::from_millis(500));
        if !server.alive() {
            writers.stop();
            died = Some("the server died during the run".to_string());
        }
        if last_log.elapsed() >= Duration::from_secs(60) {
            last_log = Instant::now();
            let s = lock(&samples).last().cloned().unwrap_or_default();
            log(
                epoch,
                &format!(
                    "RSS {}, state rows {:.0}, tick {:.0}, WS clients (server) {:.0}, readers ended {}, non-readers server side: {}",
                    mib(s.rss),
                    s.state_rows.unwrap_or(f64::NAN),
                    s.tick.unwrap_or(f64::NAN),
                    s.ws_clients.unwrap_or(f64::NAN),
                    s.readers_ended,
                    states(&s.silent.server)
                ),
            );
        }
    }
    res.writes = writers.join();
    writing.store(false, Ordering::Relaxed);
    res.write_seconds = t_writes.elapsed().as_secs_f64();
    res.bench_cores = (cpu_seconds() - bench_cpu0) / res.write_seconds.max(1e-9);
    res.server_cores = (server.cpu_seconds() - server_cpu0) / res.write_seconds.max(1e-9);
    stop_wall.store(true, Ordering::Relaxed);
    for w in walls {
        if let Ok(p) = w.join() {
            res.polls.extend(p);
        }
    }
    res.polls.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    for p in &res.polls {
        if let Some(e) = &p.error {
            let (dash, title, kind) = &res.panels[p.panel];
            let kind_of = e.split(':').next().unwrap_or(e);
            let key = format!("{kind} ({title}): {kind_of}");
            let detail = format!("{dash} / {title}: {e}");
            *res.errors.entry(key).or_default() += 1;
            if res.error_examples.len() < 10 {
                res.error_examples.push(detail);
            }
        }
    }
    let acked = res.writes.acks.len();
    log(
        epoch,
        &format!(
            "writes done: {acked} acknowledged in {:.0} s, {} errors, {} anomalies",
            res.write_seconds,
            res.writes.errors.values().sum::<u64>(),
            res.writes.anomalies
        ),
    );
    if let Some(e) = died {
        return Err(e);
    }

    // the readers settle and must hold exactly the server's views
    let views = || get_json(&reader, "/api/v1/views").ok();
    let (views_at, settle) = fleet
        .settle(&views, Duration::from_secs(180))
        .ok_or("GET /api/v1/views failed while settling")?;
    res.readers_closed = fleet.progress.closed.load(Ordering::Relaxed);
    res.silent_before_drain = ws_silent::tcp_view(&silent_ports, server.port);
    let outs = fleet.finish();
    res.ws = serve_ws::verdict(&outs, &views_at["views"]);
    drop(outs);
    res.ws.settle_seconds = settle;
    res.ws.connect_seconds = res.readers_connect_seconds;
    res.ws.runtime_threads = k.ws_threads;
    log(
        epoch,
        &format!(
            "readers: {} connected, {} closed by the server, {} resyncs, lost {}, exact {}/{}, equal {}/{}; non-readers before draining: server side {}, client side {}",
            res.ws.connected,
            res.readers_closed,
            res.ws.resyncs,
            res.ws.lost,
            res.ws.sampled_exact,
            res.ws.sampled,
            res.ws.fingerprint_equal,
            res.ws.clients,
            states(&res.silent_before_drain.server),
            states(&res.silent_before_drain.client),
        ),
    );
    let t = Instant::now();
    res.drained = silent.drain(Duration::from_secs(2), Duration::from_secs(120));
    res.drained.seconds = t.elapsed().as_secs_f64();
    log(
        epoch,
        &format!(
            "non-readers drained: {:?}, {} resynced, {:.1} MB read",
            res.drained.ends, res.drained.resynced, res.drained.mbytes
        ),
    );
    std::thread::sleep(Duration::from_secs_f64(k.sample_every.min(5.0)));
    stop_sampling.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    res.samples = std::mem::take(&mut *lock(&samples));
    for e in lock(&sample_errors).drain(..) {
        let kind = e.split(" (").next().unwrap_or(&e).to_string();
        res.error(kind, e);
    }
    res.silent_first_closed_at = res
        .samples
        .iter()
        .find(|s| s.silent.server_closed() > 0)
        .map(|s| s.at_s);
    res.hwm = server.hwm();
    match Client::new(&base, ("X-Bench", "soak".into())).get("/metrics") {
        Ok(r) if r.status == 200 => res.server_status_classes = status_classes(&r.body),
        Ok(r) => res.error(
            "metrics scrape: HTTP".into(),
            format!("/metrics answered {}", r.status),
        ),
        Err(e) => res.error("metrics scrape: transport".into(), e),
    }

    // every acknowledged write, on the running server
    log(
        epoch,
        &format!("reading back {} cases", res.writes.cases.len()),
    );
    let v = soak_writes::verify(&writer_client, &res.writes.cases);
    log(
        epoch,
        &format!(
            "running server: {} of {} cases as acknowledged ({} missing, {} different, {} uncertain) in {:.1} s",
            v.ok, v.cases, v.missing, v.wrong, v.uncertain, v.seconds
        ),
    );
    res.verify_running = Some(v);
    let views_before = get_json(&reader, "/api/v1/views")?;

    // restart on the same data directory
    res.stop = Some(server.stop(Duration::from_secs(60)));
    log(epoch, &format!("stopped: {:?}", res.stop));
    let server = LpmProcess::start(&bin, &data, k.workers, &server_log)?;
    res.restart_ready_seconds = server.ready_seconds;
    res.restart_rss = server.rss();
    log(
        epoch,
        &format!(
            "restarted: ready after {:.2}s, RSS {}",
            server.ready_seconds,
            mib(res.restart_rss)
        ),
    );
    let writer_client = Client::new(
        &server.base,
        (
            "Cookie",
            serve_http::sign_in(&server.base, RESPONDER, PASSWORD)?,
        ),
    );
    let reader = Client::new(&server.base, ("Authorization", format!("Bearer {token}")));
    let v = soak_writes::verify(&writer_client, &res.writes.cases);
    log(
        epoch,
        &format!(
            "restarted server: {} of {} cases as acknowledged ({} missing, {} different)",
            v.ok, v.cases, v.missing, v.wrong
        ),
    );
    res.verify_restarted = Some(v);
    let views_after = get_json(&reader, "/api/v1/views")?;
    res.views_equal_after_restart = Some(views_before["views"] == views_after["views"]);
    res.final_stop = Some(server.stop(Duration::from_secs(60)));
    Ok(())
}

/// Readers of the server's RSS and CPU that outlive the borrow of `server`.
fn server_probes(
    server: &LpmProcess,
) -> (
    impl Fn() -> u64 + Send + 'static,
    impl Fn() -> f64 + Send + 'static,
) {
    let pid = server.pid_text();
    let pid2 = pid.clone();
    (
        move || report::proc_status(&pid, "VmRSS:"),
        move || report::process_cpu_seconds(&pid2),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `lpm_http_requests_total` summed by status class (`2xx`, `4xx`, ...).
fn status_classes(metrics: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("lpm_http_requests_total{") else {
            continue;
        };
        let class = rest
            .split("status=\"")
            .nth(1)
            .and_then(|s| s.chars().next())
            .map_or("?".to_string(), |c| match c {
                '1' => "1xx (WebSocket upgrades)".to_string(),
                c => format!("{c}xx"),
            });
        if let Some(v) = rest
            .rsplit_once("} ")
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        {
            *out.entry(class).or_default() += v;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// output

fn write_csvs(res: &SoakResult, dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    let mut s = String::from(
        "at_s,writing,rss_bytes,server_cpu_s,ws_clients,ws_resyncs_total,state_rows,arrangement_records,tick,readers_ended,silent_server_established,silent_client_unread_bytes,silent_server_queued_bytes\n",
    );
    let o = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
    for x in &res.samples {
        let _ = writeln!(
            s,
            "{:.1},{},{},{:.2},{},{},{},{},{},{},{},{},{}",
            x.at_s,
            u8::from(x.writing),
            x.rss,
            x.server_cpu,
            o(x.ws_clients),
            o(x.ws_resyncs),
            o(x.state_rows),
            o(x.arrangement_records),
            o(x.tick),
            x.readers_ended,
            x.silent.server.get("ESTABLISHED").copied().unwrap_or(0),
            x.silent.client_unread,
            x.silent.server_queued,
        );
    }
    write_file(&dir.join("soak-samples.csv"), &s);
    let mut a = String::from("at_s,kind,ms,lag_ms,visible,case_id,version,action_id\n");
    for x in &res.writes.acks {
        let _ = writeln!(
            a,
            "{:.3},{},{:.2},{:.2},{},{},{},{}",
            x.at_s,
            KINDS[x.kind as usize],
            x.ms,
            x.lag_ms,
            u8::from(x.visible),
            x.case_id,
            x.version.map_or(String::new(), |v| v.to_string()),
            x.action_id.map_or(String::new(), |v| v.to_string()),
        );
    }
    write_file(&dir.join("soak-acks.csv"), &a);
}

fn write_file(path: &PathBuf, text: &str) {
    match std::fs::write(path, text) {
        Ok(()) => eprintln!("bench: wrote {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
}

fn lat2(l: &Lat) -> String {
    if l.n == 0 {
        "—".into()
    } else {
        format!("{} / {}", f2(l.p50), f2(l.p99))
    }
}

fn lat3(l: &Lat) -> String {
    if l.n == 0 {
        "—".into()
    } else {
        format!("{} / {} / {}", f2(l.p50), f2(l.p99), f2(l.max))
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**FAILED**"
    }
}

/// RSS slope over the second half of the writes, MiB/h, and the state rows' slope, rows/h.
fn second_half_slopes(res: &SoakResult) -> (Option<f64>, Option<f64>) {
    let writing: Vec<&Sample> = res.samples.iter().filter(|s| s.writing).collect();
    let (Some(first), Some(last)) = (writing.first(), writing.last()) else {
        return (None, None);
    };
    let mid = (first.at_s + last.at_s) / 2.0;
    let half: Vec<&&Sample> = writing.iter().filter(|s| s.at_s >= mid).collect();
    let rss: Vec<(f64, f64)> = half
        .iter()
        .map(|s| (s.at_s / 3600.0, s.rss as f64 / MIB))
        .collect();
    let rows: Vec<(f64, f64)> = half
        .iter()
        .filter_map(|s| Some((s.at_s / 3600.0, s.state_rows?)))
        .collect();
    (slope(&rss), slope(&rows))
}

fn render(res: &SoakResult, load_start: &str, elapsed: Duration) -> String {
    let mut s = String::new();
    let k = &res.knobs;
    let failures = res.failures();
    let _ = writeln!(s, "## soak\n");
    let _ = writeln!(
        s,
        "`cargo bench -p lpm-benches --bench soak -- --minutes {} --rate {} --ws {}` ({}): the release `lpm serve` binary as a child process (embedded log, fresh data directory, 127.0.0.1, {} engine workers) for {} min: {} writes/s from {} responder connections, the {} panels of the analyst dashboards every {} s (read-only token), {} WebSocket clients on `/api/v1/stream?topics=views` ({} reading, {} never reading), `VmRSS` every {} s. **{}**\n",
        k.minutes,
        k.rate,
        k.ws,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        k.workers,
        k.minutes,
        k.rate,
        k.writers,
        res.panels.len(),
        k.grafana_every,
        k.ws,
        res.readers,
        res.silent,
        k.sample_every,
        if failures.is_empty() {
            "PASSED".to_string()
        } else {
            format!("FAILED: {}", failures.join("; "))
        }
    );

    // checks
    let _ = writeln!(s, "Checks:\n");
    if let Some(e) = &res.fatal {
        let _ = writeln!(s, "* **the run stopped**: {}", e.replace('\n', " "));
    }
    let acks = &res.writes.acks;
    let verified = |v: &Option<Verified>| match v {
        Some(v) => format!(
            "{} of {} cases as acknowledged ({} missing, {} different{}; read back in {:.1} s)",
            v.ok,
            v.cases,
            v.missing,
            v.wrong,
            if v.uncertain > 0 {
                format!(", {} skipped after an unanswered write", v.uncertain)
            } else {
                String::new()
            },
            v.seconds
        ),
        None => "not verified".into(),
    };
    let ok_v = |v: &Option<Verified>| v.as_ref().is_some_and(Verified::as_acknowledged);
    let _ = writeln!(
        s,
        "* every acknowledged write present ({} writes on {} cases: version, status, responsible, action count and every acknowledged action id): running: {}; after SIGTERM and a restart on the same data directory: {} — {}",
        acks.len(),
        res.writes.cases.len(),
        verified(&res.verify_running),
        verified(&res.verify_restarted),
        met(ok_v(&res.verify_running) && ok_v(&res.verify_restarted) && res.writes.anomalies == 0),
    );
    if res.writes.anomalies > 0 {
        let _ = writeln!(
            s,
            "  * {} write answers contradicted earlier acknowledgements, e.g. {}",
            res.writes.anomalies,
            res.writes.anomaly_examples.join("; ")
        );
    }
    for v in [&res.verify_running, &res.verify_restarted]
        .into_iter()
        .flatten()
    {
        if !v.examples.is_empty() {
            let _ = writeln!(s, "  * e.g. {}", v.examples.join("; "));
        }
    }
    let all_errors = res.all_errors();
    let n_errors: u64 = all_errors.values().sum();
    let _ = writeln!(
        s,
        "* no HTTP errors: {} — {}{}",
        if all_errors.is_empty() {
            "none".to_string()
        } else {
            all_errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        met(n_errors == 0),
        if res.server_status_classes.is_empty() {
            String::new()
        } else {
            format!(
                " (the server's `lpm_http_requests_total` by class: {})",
                res.server_status_classes
                    .iter()
                    .map(|(c, n)| format!("{c} {n:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let examples: Vec<&String> = res
        .writes
        .error_examples
        .iter()
        .chain(res.error_examples.iter())
        .take(5)
        .collect();
    if !examples.is_empty() {
        let _ = writeln!(
            s,
            "  * e.g. {}",
            examples
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let ws = &res.ws;
    let _ = writeln!(
        s,
        "* reading WebSocket clients: {} of {} connected ({:.1} s), {} closed by the server, {} resyncs on {} clients, {} diff messages; lost diffs {}, out of order {}; final state = `GET /api/v1/views`: exact {}/{} sampled, equal {}/{} (settled {:.1} s after the last write) — {}",
        ws.connected,
        res.readers,
        res.readers_connect_seconds,
        res.readers_closed,
        ws.resyncs,
        ws.clients_resynced,
        ws.diff_messages,
        ws.lost,
        ws.out_of_order,
        ws.sampled_exact,
        ws.sampled,
        ws.fingerprint_equal,
        ws.clients,
        ws.settle_seconds,
        met(ws.lost == 0 && ws.sampled_exact == ws.sampled && ws.fingerprint_equal == ws.clients && res.fatal.is_none()),
    );
    let _ = writeln!(
        s,
        "* restart: SIGTERM: {} after {:.2} s; ready again after {:.2} s (log replayed), RSS {}; views equal to those before the stop: {} — {}",
        res.stop.as_ref().map_or("—".into(), |x| x.status.clone()),
        res.stop.as_ref().map_or(f64::NAN, |x| x.seconds),
        res.restart_ready_seconds,
        mib(res.restart_rss),
        res.views_equal_after_restart.map_or("—".into(), |b| b.to_string()),
        met(res.stop.as_ref().is_some_and(|x| x.clean) && res.views_equal_after_restart == Some(true)),
    );
    // the non-readers: reported, never a failure
    let sb = &res.silent_before_drain;
    let d = &res.drained;
    let verdict = if res.silent == 0 {
        "no non-reading clients".to_string()
    } else if sb.server_closed() == 0 && d.ends.get("still open") == Some(&d.clients) {
        "**kept open**: the server neither dropped nor closed them (their queue is the socket buffers)".to_string()
    } else if sb.server_closed() == res.silent {
        format!(
            "**closed by the server** (every one; first seen {} s into the run)",
            res.silent_first_closed_at
                .map_or("—".into(), |t| format!("{t:.0}"))
        )
    } else {
        format!(
            "**partly closed**: {} of {} closed server-side (first seen {} s into the run)",
            sb.server_closed(),
            res.silent,
            res.silent_first_closed_at
                .map_or("—".into(), |t| format!("{t:.0}"))
        )
    };
    let _ = writeln!(
        s,
        "* non-reading WebSocket clients (reported, not a check): {} connected{}; {verdict}. At the end, before reading them: server-side sockets {}, client-side {}; {:.1} MiB sent but unread in the clients' receive queues, {:.1} MiB still queued in the server's send queues. Then drained once: {}; {} of them got a snapshot after their first (a resync; {} in all), {} diffs, {} heartbeats, {:.1} MB in {:.1} s.",
        res.silent - res.silent_connect_errors.len(),
        if res.silent_connect_errors.is_empty() {
            String::new()
        } else {
            format!(" ({} failed: {})", res.silent_connect_errors.len(), res.silent_connect_errors[0])
        },
        states(&sb.server),
        states(&sb.client),
        sb.client_unread as f64 / MIB,
        sb.server_queued as f64 / MIB,
        d.ends
            .iter()
            .map(|(e, n)| format!("{e}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        d.resynced,
        d.snapshots_after_first,
        d.diffs,
        d.heartbeats,
        d.mbytes,
        d.seconds,
    );
    let _ = writeln!(s);

    // figures
    let writing: Vec<&Sample> = res.samples.iter().filter(|x| x.writing).collect();
    let rss_first = writing.first().map_or(0, |x| x.rss);
    let rss_last = writing.last().map_or(0, |x| x.rss);
    let rss_max = writing.iter().map(|x| x.rss).max().unwrap_or(0);
    let (rss_slope, rows_slope) = second_half_slopes(res);
    let rows_first = writing.first().and_then(|x| x.state_rows);
    let rows_last = writing.last().and_then(|x| x.state_rows);
    let write_lat = lat(acks.iter().map(|a| a.ms as f64).collect());
    let lag = lat(acks.iter().map(|a| a.lag_ms as f64).collect());
    let accepted = acks.iter().filter(|a| !a.visible).count();
    let polls_of = |kind: &str| {
        lat(res
            .polls
            .iter()
            .filter(|p| p.error.is_none() && res.panels.get(p.panel).is_some_and(|x| x.2 == kind))
            .map(|p| p.ms)
            .collect())
    };
    let grafana_all = lat(res
        .polls
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| p.ms)
        .collect());
    let _ = writeln!(s, "| figure | value |");
    let _ = writeln!(s, "| --- | ---: |");
    let _ = writeln!(
        s,
        "| server RSS while writing: first / last / max | {} / {} / {} (ready, empty: {}; `VmHWM` {}) |",
        mib(rss_first),
        mib(rss_last),
        mib(rss_max),
        mib(res.rss_ready),
        mib(res.hwm)
    );
    let per_row = match (rss_slope, rows_slope) {
        (Some(r), Some(n)) if n > 0.0 => {
            format!("; ≈ {:.0} bytes per state row added", r * MIB / n)
        }
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "| RSS slope, least squares over the second half of the writes | {} MiB/h (state rows {} → {}, {} rows/h over that half{per_row}) |",
        rss_slope.map_or("—".into(), |x| format!("{x:+.1}")),
        rows_first.map_or("—".into(), |x| format!("{x:.0}")),
        rows_last.map_or("—".into(), |x| format!("{x:.0}")),
        rows_slope.map_or("—".into(), |x| format!("{x:+.0}")),
    );
    let _ = writeln!(
        s,
        "| writes/s achieved (target) | {:.1} ({}): {} acknowledged in {:.0} s, {} of them 202 (accepted, not yet visible) |",
        acks.len() as f64 / res.write_seconds.max(1e-9),
        k.rate,
        acks.len(),
        res.write_seconds,
        accepted
    );
    let _ = writeln!(
        s,
        "| write latency p50 / p99 / max, ms (send → answer; the answer waits until the engine shows the write) | {} |",
        lat3(&write_lat)
    );
    for (i, name) in KINDS.iter().enumerate() {
        let l = lat(acks
            .iter()
            .filter(|a| a.kind as usize == i)
            .map(|a| a.ms as f64)
            .collect());
        let _ = writeln!(s, "| &nbsp;&nbsp;{name} (n = {}) | {} |", l.n, lat3(&l));
    }
    let _ = writeln!(
        s,
        "| schedule lag p50 / p99 / max, ms (due → sent: > 0 when no writer was free) | {} |",
        lat3(&lag)
    );
    let _ = writeln!(
        s,
        "| Grafana p50 / p99 / max, ms ({} requests) | {} |",
        grafana_all.n,
        lat3(&grafana_all)
    );
    for kind in ["rows", "grafana/query"] {
        let l = polls_of(kind);
        let _ = writeln!(s, "| &nbsp;&nbsp;{kind} (n = {}) | {} |", l.n, lat3(&l));
    }
    let _ = writeln!(
        s,
        "| WebSocket readers: connected / closed by the server / resynced (clients; snapshots) | {} / {} / {} ({}) |",
        ws.connected, res.readers_closed, ws.clients_resynced, ws.resyncs
    );
    let resyncs_server = res.samples.iter().rev().find_map(|x| x.ws_resyncs);
    let clients_server: Vec<f64> = writing.iter().filter_map(|x| x.ws_clients).collect();
    let _ = writeln!(
        s,
        "| server view: `lpm_ws_clients` first / min / last while writing; `lpm_ws_resyncs_total` at the end | {} / {} / {}; {} |",
        clients_server.first().map_or("—".into(), |x| format!("{x:.0}")),
        clients_server.iter().copied().reduce(f64::min).map_or("—".into(), |x| format!("{x:.0}")),
        clients_server.last().map_or("—".into(), |x| format!("{x:.0}")),
        resyncs_server.map_or("—".into(), |x| format!("{x:.0}")),
    );
    let _ = writeln!(
        s,
        "| CPU cores while writing: server / bench (writers, clients, wall) | {:.2} / {:.2} |",
        res.server_cores, res.bench_cores
    );
    let _ = writeln!(s);

    // over time
    let secs = res.write_seconds.max(1.0);
    let windows = (k.minutes.round() as usize).clamp(1, 10);
    let w = secs / windows as f64;
    let start = acks
        .first()
        .map_or(0.0, |a| a.at_s as f64)
        .min(writing.first().map_or(f64::INFINITY, |x| x.at_s));
    let _ = writeln!(
        s,
        "| minutes | writes/s | write p50 / p99 ms | Grafana p50 / p99 ms | RSS at end | state rows | `lpm_ws_clients` | resyncs (server, total) | non-readers: server-side sockets | queued for non-readers (client unread + server send queue) |"
    );
    let _ = writeln!(
        s,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    );
    for i in 0..windows {
        let (a, b) = (start + w * i as f64, start + w * (i + 1) as f64);
        let inw = |t: f64| t >= a && (t < b || (i + 1 == windows && t <= b + 1.0));
        let wa: Vec<f64> = acks
            .iter()
            .filter(|x| inw(x.at_s as f64))
            .map(|x| x.ms as f64)
            .collect();
        let n = wa.len();
        let gp = lat(res
            .polls
            .iter()
            .filter(|p| p.error.is_none() && inw(p.at_s))
            .map(|p| p.ms)
            .collect());
        let last = res.samples.iter().rfind(|x| x.at_s <= b + 0.5);
        let _ = writeln!(
            s,
            "| {:.1}–{:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            (a - start) / 60.0,
            (b - start) / 60.0,
            n as f64 / w,
            lat2(&lat(wa)),
            lat2(&gp),
            last.map_or("—".into(), |x| mib(x.rss)),
            last.and_then(|x| x.state_rows)
                .map_or("—".into(), |x| format!("{x:.0}")),
            last.and_then(|x| x.ws_clients)
                .map_or("—".into(), |x| format!("{x:.0}")),
            last.and_then(|x| x.ws_resyncs)
                .map_or("—".into(), |x| format!("{x:.0}")),
            last.map_or("—".into(), |x| states(&x.silent.server)),
            last.map_or("—".into(), |x| format!(
                "{:.1} MiB",
                (x.silent.client_unread + x.silent.server_queued) as f64 / MIB
            )),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "* machine: {} cores, {}; load average {load_start} at start, {} at end; harness wall time {:.0} s; binary {}",
        cores(),
        cpu_model(),
        load_average(),
        elapsed.as_secs_f64(),
        res.binary
    );
    let _ = writeln!(
        s,
        "* server: ready after {:.2} s on the empty data directory; RSS at ready {}. Writers: {} keep-alive connections on an open schedule (write k due at start + k / rate). Readers: one tokio thread; {} of them keep full rows and are compared exactly, the others by row multiset. The non-readers complete the handshake and are never polled; their state comes from `/proc/net/tcp`.",
        res.ready_seconds,
        mib(res.rss_ready),
        k.writers,
        SAMPLED_READERS
    );
    s
}
