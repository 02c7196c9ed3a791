//! What a soak run measured, its checks, and the report: the `## soak` section of
//! `target/bench-results.md` and the CSV files of samples and acknowledged writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dashboard_wall::Poll;
use crate::lpm_process::Stopped;
use crate::machine::{cpu_model, load_average};
use crate::report::{cores, f2, slope};
use crate::serve_http::{lat, Lat};
use crate::serve_ws::WsResult;
use crate::soak_sampler::Sample;
use crate::soak_writes::{Verified, WriterOut, KINDS};
use crate::ws_silent::{states, Drained, TcpView};

/// Reading clients that keep full rows and are compared exactly (the others by row multiset).
pub const SAMPLED_READERS: usize = 10;
pub const MIB: f64 = 1024.0 * 1024.0;

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / MIB)
}

/// The run's settings.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    pub minutes: f64,
    pub rate: f64,
    pub ws: usize,
    pub silent_percent: f64,
    pub writers: usize,
    pub ws_threads: usize,
    pub grafana_every: f64,
    pub sample_every: f64,
    pub workers: usize,
    pub keep: bool,
}

impl Knobs {
    pub fn silent(&self) -> usize {
        ((self.ws as f64) * self.silent_percent.clamp(0.0, 100.0) / 100.0).round() as usize
    }

    pub fn seconds(&self) -> f64 {
        self.minutes * 60.0
    }
}

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct SoakResult {
    pub knobs: Knobs,
    pub fatal: Option<String>,
    pub binary: String,
    pub ready_seconds: f64,
    pub rss_ready: u64,
    pub samples: Vec<Sample>,
    pub writes: WriterOut,
    /// Seconds from the first scheduled write to the last answer.
    pub write_seconds: f64,
    pub polls: Vec<Poll>,
    pub panels: Vec<(String, String, &'static str)>,
    /// Non-HTTP-write errors by kind (Grafana, metrics, views, sign-in, ...).
    pub errors: BTreeMap<String, u64>,
    pub error_examples: Vec<String>,
    pub readers: usize,
    pub readers_connect_seconds: f64,
    pub ws: WsResult,
    /// Readers that received their first snapshot.
    pub readers_connected: usize,
    /// Readers that got a snapshot after their first, and how many such snapshots in all.
    pub readers_resynced: usize,
    pub readers_resyncs: u64,
    /// Readers that ended because of the server (close frame, reset, end of stream); the
    /// final-state comparison covers the others.
    pub readers_dropped: usize,
    pub readers_dropped_example: Option<String>,
    pub silent: usize,
    pub silent_connect_errors: Vec<String>,
    /// When the server side of a non-reader first left ESTABLISHED (seconds into the run).
    pub silent_first_closed_at: Option<f64>,
    pub silent_before_drain: TcpView,
    pub drained: Drained,
    /// `lpm_http_requests_total` by status class at the end of the run (the server's count).
    pub server_status_classes: BTreeMap<String, f64>,
    pub verify_running: Option<Verified>,
    pub stop: Option<Stopped>,
    pub restart_ready_seconds: f64,
    pub restart_rss: u64,
    pub verify_restarted: Option<Verified>,
    pub views_equal_after_restart: Option<bool>,
    pub final_stop: Option<Stopped>,
    pub bench_cores: f64,
    pub server_cores: f64,
    pub hwm: u64,
}

impl SoakResult {
    pub fn error(&mut self, kind: String, detail: String) {
        *self.errors.entry(kind).or_default() += 1;
        if self.error_examples.len() < 10 {
            self.error_examples.push(detail);
        }
    }

    /// Every HTTP error, by kind (writes, Grafana, reads, read-backs).
    pub fn all_errors(&self) -> BTreeMap<String, u64> {
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
    pub fn failures(&self) -> Vec<String> {
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
            if self.readers_connected < self.readers {
                f.push(format!(
                    "only {} of {} reading clients connected",
                    self.readers_connected, self.readers
                ));
            }
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

pub fn write_csvs(res: &SoakResult, dir: &Path) {
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

/// Least-squares fits over the second half of the writes.
#[derive(Default)]
struct HalfFit {
    /// MiB per hour.
    rss: Option<f64>,
    /// State rows per hour.
    rows: Option<f64>,
    /// State rows at the start and the end of the half.
    rows_from: Option<f64>,
    rows_to: Option<f64>,
}

/// RSS slope over the second half of the writes, MiB/h, beside the state rows' slope, rows/h
/// (the data grows: nothing is ever deleted, so some RSS growth is expected).
fn second_half_slopes(res: &SoakResult) -> HalfFit {
    let writing: Vec<&Sample> = res.samples.iter().filter(|s| s.writing).collect();
    let (Some(first), Some(last)) = (writing.first(), writing.last()) else {
        return HalfFit::default();
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
    HalfFit {
        rss: slope(&rss),
        rows: slope(&rows),
        rows_from: rows.first().map(|r| r.1),
        rows_to: rows.last().map(|r| r.1),
    }
}

pub fn render(res: &SoakResult, load_start: &str, elapsed: Duration) -> String {
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
        "* reading WebSocket clients: {} of {} connected ({:.1} s), {} dropped by the server{}, {} resyncs on {} clients, {} diff messages; lost diffs {}, out of order {}; final state = `GET /api/v1/views` (of those still connected): exact {}/{} sampled, equal {}/{} (settled {:.1} s after the last write) — {}",
        res.readers_connected,
        res.readers,
        res.readers_connect_seconds,
        res.readers_dropped,
        res.readers_dropped_example
            .as_ref()
            .map_or(String::new(), |e| format!(" (e.g. {e})")),
        res.readers_resyncs,
        res.readers_resynced,
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
        "* non-reading WebSocket clients (reported, not a check): {} connected{}; {verdict}. At the end, before reading them: server-side sockets {}, client-side {}; {:.1} MiB sent but unread in the clients' receive queues, {:.1} MiB still queued in the server's send queues; `lpm_ws_resyncs_total` when the writes ended: {} (the readers got {} resyncs). Then drained once (they start reading): {}; {} of them got a snapshot after their first (a resync; {} in all), {} diffs, {} heartbeats, {:.1} MB in {:.1} s.",
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
        res.samples
            .iter()
            .rfind(|x| x.writing)
            .and_then(|x| x.ws_resyncs)
            .map_or("—".into(), |x| format!("{x:.0}")),
        res.ws.resyncs,
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
    let fit = second_half_slopes(res);
    let (rss_slope, rows_slope) = (fit.rss, fit.rows);
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
        "| RSS slope, least squares over the second half of the writes | {} MiB/h (state rows {} → {} over that half, {} rows/h{per_row}) |",
        rss_slope.map_or("—".into(), |x| format!("{x:+.1}")),
        fit.rows_from.map_or("—".into(), |x| format!("{x:.0}")),
        fit.rows_to.map_or("—".into(), |x| format!("{x:.0}")),
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
        "| WebSocket readers: connected / dropped by the server / resynced (clients; snapshots) | {} / {} / {} ({}) |",
        res.readers_connected, res.readers_dropped, res.readers_resynced, res.readers_resyncs
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
        "| minutes | writes/s | write p50 / p99 ms | Grafana p50 / p99 ms | RSS min / max | state rows at end | `lpm_ws_clients` | resyncs (server, total) | non-readers: server-side sockets | queued for non-readers (client unread + server send queue) |"
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
        let rss_in: Vec<u64> = res
            .samples
            .iter()
            .filter(|x| x.writing && inw(x.at_s))
            .map(|x| x.rss)
            .collect();
        let rss_range = match (rss_in.iter().min(), rss_in.iter().max()) {
            (Some(lo), Some(hi)) => format!("{} / {}", mib(*lo), mib(*hi)),
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {:.1}–{:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            (a - start) / 60.0,
            (b - start) / 60.0,
            n as f64 / w,
            lat2(&lat(wa)),
            lat2(&gp),
            rss_range,
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
