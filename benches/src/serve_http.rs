//! The HTTP side of the serve and soak benches: a keep-alive client, latency statistics, the
//! paced writer and its request bodies, and reading Prometheus histograms from `/metrics`.
// each bench target compiles this module and uses a different subset of it
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::report::Quantiles;

// ---------------------------------------------------------------------------------------------
// statistics

/// Latency figures in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lat {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Percentiles of `samples` (milliseconds) from an HdrHistogram ([`Quantiles`]); `max` and
/// `mean` are exact.
pub fn lat(samples: Vec<f64>) -> Lat {
    let Some(q) = Quantiles::of(&samples) else {
        return Lat::default();
    };
    let finite = || samples.iter().copied().filter(|x| x.is_finite());
    let n = q.len();
    Lat {
        n,
        p50: q.at(0.50),
        p99: q.at(0.99),
        max: finite().fold(f64::NEG_INFINITY, f64::max),
        mean: finite().sum::<f64>() / n as f64,
    }
}

/// The zone `lpm serve` runs in when started without `--tz` (as the benches start it): the
/// writers' local times are in it.
pub const SERVER_TZ: chrono_tz::Tz = chrono_tz::America::Guayaquil;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// a client

/// One keep-alive connection (a ureq agent used from one thread) with fixed credentials.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: (&'static str, String),
}

/// A response: status and body text.
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Client {
    /// `auth` is a header name and value (`Authorization: Bearer …` or `Cookie: …`).
    pub fn new(base: &str, auth: (&'static str, String)) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Client {
            agent,
            base: base.to_string(),
            auth,
        }
    }

    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Resp, String> {
        let mut r = r.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok(Resp { status, body })
    }

    pub fn get(&self, path: &str) -> Result<Resp, String> {
        Self::finish(
            self.agent
                .get(format!("{}{path}", self.base))
                .header(self.auth.0, &self.auth.1)
                .call(),
        )
    }

    /// `method` is POST or PATCH; `body` is JSON text.
    pub fn send(&self, method: &str, path: &str, body: &str) -> Result<Resp, String> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "PATCH" => self.agent.patch(url),
            _ => self.agent.post(url),
        };
        Self::finish(
            req.header(self.auth.0, &self.auth.1)
                .header("Content-Type", "application/json")
                .send(body.as_bytes()),
        )
    }
}

/// Signs in and returns the `Cookie` header value.
pub fn sign_in(base: &str, user: &str, password: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{base}/api/v1/session"))
        .header("Content-Type", "application/json")
        .send(
            json!({"username": user, "password": password})
                .to_string()
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 200 {
        let body = r.body_mut().read_to_string().unwrap_or_default();
        return Err(format!("sign-in answered {}: {body}", r.status()));
    }
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lpm_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| "sign-in set no lpm_session cookie".to_string())
}

// ---------------------------------------------------------------------------------------------
// the read requests

/// One read request of the latency phase.
#[derive(Clone)]
pub struct Probe {
    pub name: &'static str,
    pub path: &'static str,
    /// POST body (GET when `None`).
    pub body: Option<String>,
    /// A check of the answer's body (also run on every answer of the warm-up).
    pub check: fn(&Value) -> Result<(), String>,
}

/// A simpod `POST /grafana/query` body as Grafana sends it, over `[from_ms, to_ms]`.
pub fn grafana_body(from_ms: i64, to_ms: i64, targets: Value) -> String {
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    json!({
        "app": "dashboard",
        "requestId": "Q100",
        "timezone": "browser",
        "range": {"from": iso(from_ms), "to": iso(to_ms), "raw": {"from": "now-7d", "to": "now"}},
        "rangeRaw": {"from": "now-7d", "to": "now"},
        "interval": "10m",
        "intervalMs": 600_000,
        "maxDataPoints": 1101,
        "targets": targets,
        "scopedVars": {"__interval": {"text": "10m", "value": "10m"}},
        "startTime": to_ms,
        "dashboardUID": "lpm-analysts",
        "panelId": 2,
        "filters": [],
        "liveStreaming": false
    })
    .to_string()
}

fn target(ref_id: &str, metric: &str, payload: Value) -> Value {
    json!({
        "refId": ref_id,
        "datasource": {"type": "simpod-json-datasource", "uid": "lpm-simpod"},
        "editorMode": "builder",
        "target": metric,
        "payload": payload,
        "hide": false
    })
}

fn check_any(_: &Value) -> Result<(), String> {
    Ok(())
}

fn check_views(v: &Value) -> Result<(), String> {
    if v["tick"].as_u64().is_none() || !v["views"]["kpi"].is_object() {
        return Err(format!("no tick or views: {}", trim(&v.to_string())));
    }
    Ok(())
}

fn check_two_series(v: &Value) -> Result<(), String> {
    let a = v.as_array().ok_or("not an array")?;
    if a.len() != 2 || a.iter().any(|e| e["datapoints"].as_array().is_none()) {
        return Err(format!("expected 2 series: {}", trim(&v.to_string())));
    }
    // 7 days hourly, whole periods
    let points = a[0]["datapoints"].as_array().map_or(0, Vec::len);
    if !(168..=170).contains(&points) {
        return Err(format!("expected 168 hourly points, got {points}"));
    }
    Ok(())
}

fn check_table(v: &Value) -> Result<(), String> {
    let a = v.as_array().ok_or("not an array")?;
    if a.len() != 1 || a[0]["type"] != "table" || a[0]["rows"].as_array().is_none() {
        return Err(format!("expected one table: {}", trim(&v.to_string())));
    }
    Ok(())
}

pub fn trim(s: &str) -> String {
    s.chars().take(300).collect()
}

/// The read requests: a trivial route (the HTTP floor), all views, and four Grafana panels
/// over the 7 days ending at `to_ms` (one of them another's series read the slow way: the
/// baseline).
pub fn probes(to_ms: i64) -> Vec<Probe> {
    let from_ms = to_ms - 7 * 86_400_000;
    let series = |payload: Value| {
        json!([
            target("A", "reports", payload.clone()),
            target("B", "cases_opened", payload)
        ])
    };
    vec![
        Probe {
            name: "GET /healthz (HTTP floor)",
            path: "/healthz",
            body: None,
            check: check_any,
        },
        Probe {
            name: "GET /api/v1/views",
            path: "/api/v1/views",
            body: None,
            check: check_views,
        },
        Probe {
            name: "POST /grafana/query: reports + cases_opened, 7 d hourly",
            path: "/grafana/query",
            body: Some(grafana_body(
                from_ms,
                to_ms,
                series(json!({"bucket": "hour"})),
            )),
            check: check_two_series,
        },
        Probe {
            name: "POST /grafana/query: same, gender = female",
            path: "/grafana/query",
            body: Some(grafana_body(
                from_ms,
                to_ms,
                series(json!({"bucket": "hour", "gender": ["female"]})),
            )),
            check: check_two_series,
        },
        Probe {
            // the same answer, read from the per-combination facts rather than the rollup (a
            // second dimension, restricted to all its values, takes a query off the rollup):
            // the baseline the rollup is measured against in the same run
            name: "POST /grafana/query: same, via the facts (baseline)",
            path: "/grafana/query",
            body: Some(grafana_body(
                from_ms,
                to_ms,
                series(json!({"bucket": "hour", "gender": ["female"],
                    "age_band": ["0-11", "12-17", "18-29", "30-44", "45-59", "60+", "unknown"]})),
            )),
            check: check_two_series,
        },
        Probe {
            name: "POST /grafana/query: table cases_by_status",
            path: "/grafana/query",
            body: Some(grafana_body(
                from_ms,
                to_ms,
                json!([target("A", "cases_by_status", json!({}))]),
            )),
            check: check_table,
        },
    ]
}

/// Sends one probe; returns the latency in ms.
pub fn fire(client: &Client, p: &Probe, check: bool) -> Result<f64, String> {
    let t = Instant::now();
    let r = match &p.body {
        Some(b) => client.send("POST", p.path, b)?,
        None => client.get(p.path)?,
    };
    let elapsed = ms(t.elapsed());
    if r.status != 200 {
        return Err(format!(
            "{} answered {}: {}",
            p.name,
            r.status,
            trim(&r.body)
        ));
    }
    if check {
        let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("{}: {e}", p.name))?;
        (p.check)(&v).map_err(|e| format!("{}: {e}", p.name))?;
    }
    Ok(elapsed)
}

/// `per_probe` requests of every probe, round-robin (so background noise hits all alike), after
/// `warmup` rounds. Returns per-probe latencies.
pub fn query_latency(
    client: &Client,
    probes: &[Probe],
    warmup: usize,
    per_probe: usize,
) -> Result<Vec<(String, Lat)>, String> {
    for _ in 0..warmup {
        for p in probes {
            fire(client, p, true)?;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(per_probe); probes.len()];
    for _ in 0..per_probe {
        for (i, p) in probes.iter().enumerate() {
            samples[i].push(fire(client, p, false)?);
        }
    }
    Ok(probes
        .iter()
        .zip(samples)
        .map(|(p, s)| (p.name.to_string(), lat(s)))
        .collect())
}

/// Reads at a fixed rate until `stop` (the reads-under-load probe).
pub fn paced_reads(
    client: Client,
    probes: Vec<Probe>,
    per_second: f64,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, Lat)>, u64) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); probes.len()];
    let mut errors = 0;
    let every = Duration::from_secs_f64(1.0 / per_second.max(0.1));
    let start = Instant::now();
    let mut k = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let due = start + every * k;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let i = k as usize % probes.len();
        match fire(&client, &probes[i], false) {
            Ok(ms) => samples[i].push(ms),
            Err(_) => errors += 1,
        }
        k += 1;
    }
    (
        probes
            .iter()
            .zip(samples)
            .map(|(p, s)| (p.name.to_string(), lat(s)))
            .collect(),
        errors,
    )
}

// ---------------------------------------------------------------------------------------------
// the writer

/// A case a writer thread owns (only that thread changes it, so versions never conflict).
#[derive(Clone, Debug)]
pub struct OwnedCase {
    pub id: i64,
    pub version: i64,
    pub status: String,
}

/// What the writers did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WriteResult {
    pub threads: usize,
    pub target_rate: f64,
    pub seconds: f64,
    /// Wall time from the first scheduled write to the last answer.
    pub wall_seconds: f64,
    pub sent: u64,
    /// 200/201: visible in the engine when answered.
    pub visible: u64,
    /// 202: not visible within the server's wait.
    pub accepted_not_visible: u64,
    pub conflicts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub achieved_rate: f64,
    /// Response time (send -> answer).
    pub latency: Lat,
    /// Response time from the write's scheduled time (includes waiting for a free writer).
    pub latency_from_schedule: Lat,
    pub by_kind: Vec<(String, Lat)>,
}

/// The writers' choices: seeded, so two runs send the same requests.
pub use lpm_engine::rng::SplitMix64 as Rng;

const NAMES: [&str; 8] = [
    "María Peña",
    "José Muñoz",
    "Ana Gómez",
    "Luis Zambrano",
    "Carmen Vélez",
    "Jorge Andrade",
    "Lucía Castillo",
    "Diego Chávez",
];
const PLACES: [(&str, f64, f64); 4] = [
    ("Quito, La Mariscal", -0.180653, -78.467834),
    ("Guayaquil, Malecón 2000", -2.1949, -79.8806),
    ("Cuenca, Parque Calderón", -2.8974, -79.0045),
    ("Manta, Playa Murciélago", -0.9427, -80.7301),
];

/// A new report: a random person last seen up to 36 h ago; 70% name a responsible (when there
/// are any), half carry a first action.
pub fn report_body(rng: &mut Rng, responsibles: &[i64], tz: chrono_tz::Tz) -> Value {
    let (place, lat, lon) = PLACES[rng.below(PLACES.len() as u64) as usize];
    let seen = chrono::Utc::now().with_timezone(&tz)
        - chrono::Duration::minutes(rng.below(36 * 60) as i64 + 5);
    let jitter = |rng: &mut Rng| (rng.below(20_000) as f64 - 10_000.0) / 1e6;
    let round6 = |x: f64| (x * 1e6).round() / 1e6;
    let gender = ["female", "male", "male", "female", "other"][rng.below(5) as usize];
    let priority = ["low", "medium", "medium", "high", "critical"][rng.below(5) as usize];
    let reporter = NAMES[rng.below(8) as usize];
    let mut body = json!({
        "full_name": format!("{} {}", NAMES[rng.below(8) as usize], rng.below(1_000_000)),
        "age": rng.below(85),
        "gender": gender,
        "last_seen_at": seen.format("%Y-%m-%dT%H:%M").to_string(),
        "last_seen_place": place,
        "latitude": round6(lat + jitter(rng)),
        "longitude": round6(lon + jitter(rng)),
        "description": "Visto por última vez con chaqueta azul y mochila.",
        "reporter_name": reporter,
        "reporter_phone": format!("+593 9{:08}", rng.below(100_000_000)),
        "priority": priority,
    });
    if !responsibles.is_empty() && rng.below(10) < 7 {
        body["responsible_id"] = json!(responsibles[rng.below(responsibles.len() as u64) as usize]);
    }
    if rng.below(2) == 0 {
        body["first_action"] =
            json!({"action_type": "note", "notes": "Denuncia recibida por el bench."});
    }
    body
}

/// A valid next status: open -> in_progress -> found_alive (70%) or back to open; a closed
/// case is reopened.
pub fn next_status(rng: &mut Rng, from: &str) -> &'static str {
    match from {
        "open" => "in_progress",
        "in_progress" if rng.below(10) < 7 => "found_alive",
        _ => "open",
    }
}

/// Updates an owned case from a write's answer (a `CaseDetailOut`).
fn learn(case: &mut OwnedCase, body: &str) {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(ver) = v["case"]["version"].as_i64() {
            case.version = ver;
        }
        if let Some(s) = v["case"]["status"].as_str() {
            case.status = s.to_string();
        }
    }
}

/// A fixed write rate shared by several threads: write `k` is due at `start + k / rate`, and a
/// free thread takes the next due write, so one slow answer delays no other write (an open
/// model: the offered rate does not drop when the server slows down).
pub struct Schedule {
    start: Instant,
    rate: f64,
    total: u64,
    next: AtomicU64,
}

impl Schedule {
    /// `rate * seconds` writes from 50 ms from now.
    pub fn new(rate: f64, seconds: f64) -> Schedule {
        Schedule {
            start: Instant::now() + Duration::from_millis(50),
            rate: rate.max(1e-3),
            total: (rate * seconds).round() as u64,
            next: AtomicU64::new(0),
        }
    }

    /// When the first write is due.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The next write's number and due time, once it is due (this sleeps until then); `None`
    /// when every write was taken or [`Schedule::stop`] was called.
    pub fn take(&self) -> Option<(u64, Instant)> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k >= self.total {
            return None;
        }
        let due = self.start + Duration::from_secs_f64(k as f64 / self.rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        Some((k, due))
    }

    /// No further writes are handed out (those under way finish).
    pub fn stop(&self) {
        self.next.store(self.total, Ordering::Relaxed);
    }
}

/// Writes at `rate` per second for `seconds` from `threads` keep-alive connections, paced by a
/// [`Schedule`]. The mix, by `k % 4`:
/// a new report (0, 2), a status change (1), an action (3). Status changes and actions go to
/// cases the thread owns (`owned[thread]`); their answers carry the new version.
#[allow(clippy::too_many_arguments)]
pub fn write_load(
    base: &str,
    cookie: &str,
    rate: f64,
    seconds: f64,
    threads: usize,
    owned: &mut Vec<Vec<OwnedCase>>,
    responsibles: Vec<i64>,
    tz: chrono_tz::Tz,
) -> WriteResult {
    let schedule = Arc::new(Schedule::new(rate, seconds));
    let start = schedule.start();
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let responsibles = Arc::new(responsibles);
    let mut handles = Vec::new();
    for (t, mut cases) in std::mem::take(owned).into_iter().enumerate().take(threads) {
        let client = Client::new(base, ("Cookie", cookie.to_string()));
        let schedule = schedule.clone();
        let first_error = first_error.clone();
        let responsibles = responsibles.clone();
        let h = std::thread::Builder::new()
            .name(format!("bench-writer-{t}"))
            .spawn(move || {
                let mut rng = Rng::new(0xBE4C_0000 + t as u64);
                // (kind, latency from send, latency from schedule)
                let mut out: Vec<(u8, f64, f64)> = Vec::new();
                let mut counts = [0u64; 4]; // visible, 202, 409, error
                let mut last_answer = start;
                while let Some((k, due)) = schedule.take() {
                    let mut kind = (k % 4) as u8;
                    if cases.is_empty() && kind % 2 == 1 {
                        kind = 0;
                    }
                    let pick = if cases.is_empty() {
                        0
                    } else {
                        rng.below(cases.len() as u64) as usize
                    };
                    let sent = Instant::now();
                    let r = match kind {
                        1 => {
                            let c = &cases[pick];
                            let to = next_status(&mut rng, &c.status);
                            client.send(
                                "PATCH",
                                &format!("/api/v1/cases/{}", c.id),
                                &json!({"version": c.version, "status": to}).to_string(),
                            )
                        }
                        3 => {
                            let c = &cases[pick];
                            let action =
                                ["search", "call", "sighting", "note"][rng.below(4) as usize];
                            client.send(
                                "POST",
                                &format!("/api/v1/cases/{}/actions", c.id),
                                &json!({"action_type": action,
                                        "notes": "Seguimiento en territorio (bench)."})
                                .to_string(),
                            )
                        }
                        _ => client.send(
                            "POST",
                            "/api/v1/reports",
                            &report_body(&mut rng, &responsibles, tz).to_string(),
                        ),
                    };
                    let now = Instant::now();
                    last_answer = now;
                    match r {
                        Ok(resp) => {
                            match resp.status {
                                200 | 201 => counts[0] += 1,
                                202 => counts[1] += 1,
                                409 => counts[2] += 1,
                                _ => {
                                    counts[3] += 1;
                                    let mut e = first_error.lock();
                                    e.get_or_insert_with(|| {
                                        format!("HTTP {}: {}", resp.status, trim(&resp.body))
                                    });
                                }
                            }
                            if matches!(resp.status, 200 | 201) && kind % 2 == 1 {
                                learn(&mut cases[pick], &resp.body);
                            }
                            if matches!(resp.status, 200..=202) {
                                out.push((
                                    kind,
                                    ms(now - sent),
                                    ms(now.saturating_duration_since(due)),
                                ));
                            }
                        }
                        Err(e) => {
                            counts[3] += 1;
                            let mut fe = first_error.lock();
                            fe.get_or_insert(e);
                        }
                    }
                }
                (out, counts, last_answer, cases)
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => eprintln!("bench: could not start a writer thread: {e}"),
        }
    }
    let mut all: Vec<(u8, f64, f64)> = Vec::new();
    let mut counts = [0u64; 4];
    let mut end = start;
    for h in handles {
        if let Ok((out, c, last, cases)) = h.join() {
            owned.push(cases);
            all.extend(out);
            for i in 0..4 {
                counts[i] += c[i];
            }
            end = end.max(last);
        }
    }
    let wall = end.saturating_duration_since(start).as_secs_f64();
    let sent = counts.iter().sum::<u64>();
    let by = |k: &[u8]| {
        lat(all
            .iter()
            .filter(|x| k.contains(&x.0))
            .map(|x| x.1)
            .collect())
    };
    let first_error = first_error.lock().clone();
    WriteResult {
        threads,
        target_rate: rate,
        seconds,
        wall_seconds: wall,
        sent,
        visible: counts[0],
        accepted_not_visible: counts[1],
        conflicts: counts[2],
        errors: counts[3],
        first_error,
        achieved_rate: (counts[0] + counts[1]) as f64 / wall.max(1e-9),
        latency: lat(all.iter().map(|x| x.1).collect()),
        latency_from_schedule: lat(all.iter().map(|x| x.2).collect()),
        by_kind: vec![
            ("new report".into(), by(&[0, 2])),
            ("status change".into(), by(&[1])),
            ("action".into(), by(&[3])),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// /metrics

/// A Prometheus histogram read from the text format: cumulative `(le, count)` buckets.
#[derive(Clone, Debug, Default)]
pub struct Hist {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

/// Quantiles of a histogram (seconds converted to ms).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HistQ {
    pub count: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Share of observations at or below 50 ms (an exact bucket boundary).
    pub share_le_50ms: f64,
    /// The bucket p99 falls into, e.g. "(25, 50] ms".
    pub p99_bucket: String,
}

/// Parses histogram `name` (no labels) from `/metrics` text.
pub fn parse_hist(text: &str, name: &str) -> Hist {
    let mut h = Hist::default();
    let bucket = format!("{name}_bucket{{le=\"");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            if let Some((le, v)) = rest.split_once("\"}") {
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                h.buckets.push((le, v.trim().parse().unwrap_or(0.0)));
            }
        } else if let Some(v) = line.strip_prefix(&format!("{name}_count ")) {
            h.count = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix(&format!("{name}_sum ")) {
            h.sum = v.trim().parse().unwrap_or(0.0);
        }
    }
    h
}

/// A counter or gauge without labels.
pub fn parse_scalar(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every series of `name` (any labels, or none); `None` when there is no series.
pub fn sum_series(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if rest.starts_with('{') {
            rest.rsplit_once("} ").map(|(_, v)| v)
        } else {
            rest.strip_prefix(' ')
        };
        if let Some(v) = value.and_then(|v| v.trim().parse::<f64>().ok()) {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

impl Hist {
    /// `self - before` (the observations between two scrapes).
    pub fn minus(&self, before: &Hist) -> Hist {
        let old: HashMap<u64, f64> = before
            .buckets
            .iter()
            .map(|(le, c)| (le.to_bits(), *c))
            .collect();
        Hist {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, c - old.get(&le.to_bits()).copied().unwrap_or(0.0)))
                .collect(),
            count: self.count - before.count,
            sum: self.sum - before.sum,
        }
    }

    /// `histogram_quantile`: linear interpolation inside the bucket holding rank `q * count`.
    fn quantile(&self, q: f64) -> (f64, String) {
        if self.count <= 0.0 {
            return (f64::NAN, "—".into());
        }
        let rank = q * self.count;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return (prev.0, format!("> {} ms", prev.0 * 1e3));
                }
                let frac = if c > prev.1 {
                    (rank - prev.1) / (c - prev.1)
                } else {
                    1.0
                };
                return (
                    prev.0 + (le - prev.0) * frac,
                    format!("({}, {}] ms", prev.0 * 1e3, le * 1e3),
                );
            }
            prev = (le, c);
        }
        (f64::NAN, "—".into())
    }

    pub fn summary(&self) -> HistQ {
        let (p50, _) = self.quantile(0.50);
        let (p99, p99_bucket) = self.quantile(0.99);
        let le50 = self
            .buckets
            .iter()
            .find(|(le, _)| (*le - 0.05).abs() < 1e-12)
            .map_or(f64::NAN, |(_, c)| *c);
        HistQ {
            count: self.count,
            p50_ms: p50 * 1e3,
            p99_ms: p99 * 1e3,
            mean_ms: if self.count > 0.0 {
                self.sum / self.count * 1e3
            } else {
                f64::NAN
            },
            share_le_50ms: le50 / self.count,
            p99_bucket,
        }
    }
}
