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
//!   (WebSocket clients and resyncs, state rows), and the non-readers' TCP queues
//!   (`soak_sampler.rs`).
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
//! restart time (`soak_report.rs`). Output: a `## soak` section replaced in (or appended to)
//! `target/bench-results.md` and stdout; every sample in `target/bench-data/soak-samples.csv`
//! and every acknowledged write in `target/bench-data/soak-acks.csv`.
//!
//! Knobs (flags win over the environment): `--minutes` / `LPM_BENCH_SOAK_MINUTES` (30),
//! `--rate` / `LPM_BENCH_SOAK_RATE` (100), `--ws` / `LPM_BENCH_SOAK_WS` (200),
//! `--silent-percent` / `LPM_BENCH_SOAK_SILENT_PERCENT` (25), `LPM_BENCH_SOAK_WRITERS` (16),
//! `LPM_BENCH_SOAK_WS_THREADS` (1), `LPM_BENCH_SOAK_GRAFANA_EVERY` (5 s),
//! `LPM_BENCH_SOAK_SAMPLE_EVERY` (5 s), `LPM_BENCH_SOAK_WORKERS` (2),
//! `LPM_BENCH_BIN` or `LPM_BENCH_SOAK_BIN` (an `lpm` binary to use instead of
//! `target/release/lpm`, which is built only when missing),
//! `LPM_BENCH_SOAK_KEEP=1` (keep the data directory and server log).

mod dashboard_wall;
mod lpm_process;
mod machine;
mod report;
mod serve_http;
mod serve_ws;
mod soak_report;
mod soak_sampler;
mod soak_writes;
mod ws_silent;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use dashboard_wall::Wall;
use lpm_process::LpmProcess;
use machine::load_average;
use report::{cpu_seconds, env_f64, env_usize, replace_section, workspace_and_target};
use serve_http::Client;
use serve_ws::Fleet;
use soak_report::{mib, render, write_csvs, Knobs, SoakResult, SAMPLED_READERS};
use soak_sampler::{Sampler, Targets};
use soak_writes::{WriteSetup, Writers};
use ws_silent::{states, Silent};

const RESPONDER: &str = "soak-responder";
const PASSWORD: &str = "soak-responder-password";
const RESPONSIBLES: usize = 12;

/// The knobs from the environment, then the flags.
fn read_knobs() -> Result<Knobs, String> {
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

fn log(epoch: Instant, what: &str) {
    eprintln!(
        "bench soak [{:>7.1}s] {what}",
        epoch.elapsed().as_secs_f64()
    );
}

fn main() {
    let knobs = match read_knobs() {
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

/// The binary and the data directory of a run, with its credentials.
struct Setup {
    bin: PathBuf,
    data: PathBuf,
    server_log: PathBuf,
    /// The read-only token (the dashboard wall and the WebSocket clients).
    token: String,
}

/// Builds (or finds) the binary, makes a fresh data directory with a responder and a token.
fn prepare(workspace: &Path, target: &Path, run_dir: &Path) -> Result<Setup, String> {
    let bin = lpm_process::binary(workspace, target)?;
    let _ = std::fs::remove_dir_all(run_dir);
    let data = run_dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    lpm_process::add_user(&bin, &data, RESPONDER, "responder", PASSWORD)?;
    let token = lpm_process::create_token(&bin, &data, "soak-wall")?;
    Ok(Setup {
        bin,
        data,
        server_log: run_dir.join("lpm.log"),
        token,
    })
}

fn soak(
    k: &Knobs,
    workspace: &Path,
    target: &Path,
    run_dir: &Path,
    res: &mut SoakResult,
) -> Result<(), String> {
    let setup = prepare(workspace, target, run_dir)?;
    res.binary = setup.bin.display().to_string();
    let epoch = Instant::now();
    log(
        epoch,
        &format!("starting {} serve on {}", res.binary, setup.data.display()),
    );
    let mut server = LpmProcess::start(&setup.bin, &setup.data, k.workers, &setup.server_log)?;
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
    let reader = Client::new(&base, ("Authorization", format!("Bearer {}", setup.token)));
    let responsibles = create_responsibles(&writer_client)?;

    let (fleet, silent) = connect_clients(k, &base, &setup.token, res, epoch)?;
    let sampler = Sampler::start(
        Targets {
            base: base.clone(),
            pid: server.pid_text(),
            readers: fleet.progress.clone(),
            silent_ports: silent.ports(),
            server_port: server.port,
        },
        Duration::from_secs_f64(k.sample_every),
        epoch,
    )
    .map_err(|e| format!("sampler thread: {e}"))?;
    let panels = dashboard_wall::load(&workspace.join("dashboards").join("analysts"))?;
    res.panels = panels
        .iter()
        .map(|(p, _)| (p.dashboard.clone(), p.title.clone(), p.kind()))
        .collect();
    let wall = Wall::start(
        &reader,
        panels,
        Duration::from_secs_f64(k.grafana_every),
        epoch,
    )
    .map_err(|e| format!("dashboard wall threads: {e}"))?;

    let died = write_phase(k, &mut server, &sampler, &cookie, responsibles, res, epoch)?;
    res.polls = wall.stop();
    count_wall_errors(res);
    if let Some(e) = died {
        let _ = sampler.stop();
        return Err(e);
    }

    finish_clients(fleet, silent, &reader, server.port, res, epoch)?;
    // one more sample after the drain, then the sampler's figures
    std::thread::sleep(Duration::from_secs_f64(k.sample_every.min(5.0)));
    let (samples, scrape_errors) = sampler.stop();
    res.samples = samples;
    for e in scrape_errors {
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

    verify_and_restart(k, &setup, server, &writer_client, &reader, res, epoch)
}

/// The reading fleet and the non-readers, connected before any write.
fn connect_clients(
    k: &Knobs,
    base: &str,
    token: &str,
    res: &mut SoakResult,
    epoch: Instant,
) -> Result<(Fleet, Silent), String> {
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
        token.to_string(),
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
    let silent = Silent::connect(res.silent, &ws_url, token)
        .map_err(|e| format!("WebSocket runtime: {e}"))?;
    res.silent_connect_errors = silent.connect_errors.clone();
    log(
        epoch,
        &format!(
            "{} reading and {} non-reading WebSocket clients connected",
            fleet.progress.ready.load(Ordering::Relaxed),
            silent.ports().len()
        ),
    );
    Ok((fleet, silent))
}

/// The writes, with a progress line a minute; `Ok(Some(why))` when the server died.
fn write_phase(
    k: &Knobs,
    server: &mut LpmProcess,
    sampler: &Sampler,
    cookie: &str,
    responsibles: Vec<i64>,
    res: &mut SoakResult,
    epoch: Instant,
) -> Result<Option<String>, String> {
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
    let t = Instant::now();
    sampler.writing.store(true, Ordering::Relaxed);
    let writers = Writers::start(WriteSetup {
        base: server.base.clone(),
        cookie: cookie.to_string(),
        rate: k.rate,
        seconds: k.seconds(),
        threads: k.writers,
        responsibles,
        tz: serve_http::SERVER_TZ,
        epoch,
    })
    .map_err(|e| format!("writer threads: {e}"))?;
    let mut last_log = Instant::now();
    let mut died = None;
    while !writers.done() {
        std::thread::sleep(Duration::from_millis(500));
        if died.is_none() && !server.alive() {
            writers.stop();
            died = Some("the server died during the run".to_string());
        }
        if last_log.elapsed() >= Duration::from_secs(60) {
            last_log = Instant::now();
            let s = sampler.latest().unwrap_or_default();
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
    sampler.writing.store(false, Ordering::Relaxed);
    res.write_seconds = t.elapsed().as_secs_f64();
    res.bench_cores = (cpu_seconds() - bench_cpu0) / res.write_seconds.max(1e-9);
    res.server_cores = (server.cpu_seconds() - server_cpu0) / res.write_seconds.max(1e-9);
    log(
        epoch,
        &format!(
            "writes done: {} acknowledged in {:.0} s, {} errors, {} anomalies",
            res.writes.acks.len(),
            res.write_seconds,
            res.writes.errors.values().sum::<u64>(),
            res.writes.anomalies
        ),
    );
    Ok(died)
}

/// Failed dashboard requests, by panel kind, panel and error kind.
fn count_wall_errors(res: &mut SoakResult) {
    let failed: Vec<(String, String)> = res
        .polls
        .iter()
        .filter_map(|p| {
            let e = p.error.as_ref()?;
            let (dash, title, kind) = res.panels.get(p.panel)?;
            let kind_of = e.split(':').next().unwrap_or(e);
            Some((
                format!("{kind} ({title}): {kind_of}"),
                format!("{dash} / {title}: {e}"),
            ))
        })
        .collect();
    for (kind, detail) in failed {
        res.error(kind, detail);
    }
}

/// The readers settle and are compared with `GET /api/v1/views`; the non-readers' sockets are
/// read from the kernel, then they are drained once.
fn finish_clients(
    fleet: Fleet,
    silent: Silent,
    reader: &Client,
    server_port: u16,
    res: &mut SoakResult,
    epoch: Instant,
) -> Result<(), String> {
    let views = || get_json(reader, "/api/v1/views").ok();
    let (views_at, settle) = fleet
        .settle(&views, Duration::from_secs(180))
        .ok_or("GET /api/v1/views failed while settling")?;
    res.silent_before_drain = ws_silent::tcp_view(&silent.ports(), server_port);
    let outs = fleet.finish();
    res.readers_connected = outs.iter().filter(|o| o.snapshots > 0).count();
    res.readers_resynced = outs.iter().filter(|o| o.snapshots > 1).count();
    res.readers_resyncs = outs.iter().map(|o| o.snapshots.saturating_sub(1)).sum();
    // readers the server dropped hold an old state: they are counted, the others compared
    let (outs, dropped): (Vec<_>, Vec<_>) = outs.into_iter().partition(|o| !o.dropped);
    res.readers_dropped = dropped.len();
    res.readers_dropped_example = dropped.iter().find_map(|o| o.error.clone());
    res.ws = serve_ws::verdict(&outs, &views_at["views"]);
    res.ws.lost += dropped.iter().map(|o| o.lost).sum::<u64>();
    drop((outs, dropped));
    res.ws.settle_seconds = settle;
    res.ws.connect_seconds = res.readers_connect_seconds;
    log(
        epoch,
        &format!(
            "readers: {} connected, {} dropped by the server, {} resyncs, lost {}, exact {}/{}, equal {}/{}; non-readers before draining: server side {}, client side {}",
            res.readers_connected,
            res.readers_dropped,
            res.readers_resyncs,
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
    Ok(())
}

/// Every acknowledged write is read back on the running server; the server is stopped with
/// SIGTERM and started again on the same data directory; every write is read back again and
/// the views compared with those before the stop.
fn verify_and_restart(
    k: &Knobs,
    setup: &Setup,
    server: LpmProcess,
    writer_client: &Client,
    reader: &Client,
    res: &mut SoakResult,
    epoch: Instant,
) -> Result<(), String> {
    log(
        epoch,
        &format!("reading back {} cases", res.writes.cases.len()),
    );
    let v = soak_writes::verify(writer_client, &res.writes.cases);
    log(
        epoch,
        &format!(
            "running server: {} of {} cases as acknowledged ({} missing, {} different, {} uncertain) in {:.1} s",
            v.ok, v.cases, v.missing, v.wrong, v.uncertain, v.seconds
        ),
    );
    res.verify_running = Some(v);
    // the check must be able to fail: a case with a version and an action never acknowledged
    if let Some(c) = res.writes.cases.iter().find(|c| !c.uncertain) {
        let mut off = c.clone();
        off.version += 1;
        off.action_ids.push(i64::MAX);
        if soak_writes::verify(writer_client, &[off]).wrong != 1 {
            return Err(
                "the read-back did not notice a case that differs from what was acknowledged"
                    .into(),
            );
        }
    }
    let views_before = get_json(reader, "/api/v1/views")?;

    res.stop = Some(server.stop(Duration::from_secs(60)));
    log(epoch, &format!("stopped: {:?}", res.stop));
    let server = LpmProcess::start(&setup.bin, &setup.data, k.workers, &setup.server_log)?;
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
    let cookie = serve_http::sign_in(&server.base, RESPONDER, PASSWORD)?;
    let writer_client = Client::new(&server.base, ("Cookie", cookie));
    let reader = Client::new(
        &server.base,
        ("Authorization", format!("Bearer {}", setup.token)),
    );
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
