//! `lpm serve` over real sockets.
//!
//! A server on `127.0.0.1:0` in a temp dir takes reports and case changes over HTTP from a few
//! threads while a WebSocket client folds the view diffs it receives. The folded views must
//! equal the REST views at the same tick (sampled all along the run), `lpm replay` of the
//! embedded log exported as a kcat dump, and `oracle.py` (when `../shared` is present). Then
//! the server is killed with SIGKILL during a burst of writes and restarted: every write
//! acknowledged with a 2xx must still be there, and the views must still equal the replay and
//! the oracle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lpm_api::stream::{from_wire, ServerMessage, WireRow};
use lpm_engine::rng::SplitMix64 as Rng;
use lpm_engine::views::Views;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::support;

pub(crate) const TZ: &str = "America/Guayaquil";
pub(crate) const ADMIN: &str = "ana";
pub(crate) const PASSWORD: &str = "correct-horse-battery";

/// Polls `f` every 20 ms until it answers `Ok`, panicking with its last error after `timeout`.
pub(crate) fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the server process

/// A running `lpm serve`; killed (SIGKILL) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    /// What it printed before its address (the demo credentials with `--demo`).
    pub(crate) banner: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// `lpm serve` with `extra` flags (`--capture`, `--mysql`, ...).
    pub(crate) fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_workers(data_dir, 2, extra)
    }

    /// [`Server::start_with`] on `workers` workers.
    pub(crate) fn start_workers(data_dir: &Path, workers: usize, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lpm"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--listen",
                "127.0.0.1:0",
                "-w",
                &workers.to_string(),
                "--tz",
                TZ,
            ])
            .args(extra)
            .env("LPM_LOG", "warn")
            .env_remove("LPM_DEMO")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lpm serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        // keeps draining stdout after the address line (the receiver may be gone by then)
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut b = sink.lock();
                b.push_str(&line);
                b.push('\n');
                if b.len() > 64 * 1024 {
                    let cut = b.len() - 32 * 1024;
                    let cut = (cut..b.len()).find(|&i| b.is_char_boundary(i)).unwrap_or(0);
                    b.drain(..cut);
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            banner: Vec::new(),
            stderr: log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut printed = Vec::new();
        while server.addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("serving on http://").nth(1) {
                        server.addr = rest.split('/').next().unwrap_or_default().to_string();
                    }
                    printed.push(line);
                }
                Err(e) => panic!(
                    "lpm serve did not print its address ({e}); stdout:\n{}\nstderr:\n{}",
                    printed.join("\n"),
                    server.stderr()
                ),
            }
        }
        server.banner = printed;
        let http = Http::new(&server.addr, Auth::None);
        wait_until("GET /readyz = 200", Duration::from_secs(30), || match http
            .call("GET", "/readyz", None)
        {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("status {}: {}", r.status, r.body)),
            Err(e) => Err(e),
        });
        server
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// SIGKILL (what `Child::kill` sends on unix), and reap.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().expect("kill -9 lpm serve");
        self.child.wait().expect("reap lpm serve");
    }

    /// SIGTERM, and the exit it must make cleanly (the shutdown checkpoint included).
    pub(crate) fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("reap lpm serve");
        assert!(
            status.success(),
            "lpm serve did not exit cleanly ({status}):\n{}",
            self.stderr()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `lpm ARGS` with `envs`, asserting success; stdout and stderr.
pub(crate) fn lpm_ok(args: &[&str], envs: &[(&str, &str)]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lpm"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run lpm");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "lpm {args:?} failed ({}): {stderr}",
        out.status
    );
    (stdout, stderr)
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Cookie(String),
    Bearer(String),
}

#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    base: String,
    auth: Auth,
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<String>,
}

impl Http {
    pub(crate) fn new(addr: &str, auth: Auth) -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{addr}"),
            auth,
        }
    }

    pub(crate) fn with_auth(&self, auth: Auth) -> Http {
        Http {
            auth,
            ..self.clone()
        }
    }

    /// One request; `Err` only for transport failures (any HTTP status is `Ok`).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        b = match &self.auth {
            Auth::None => b,
            Auth::Cookie(c) => b.header("cookie", c.as_str()),
            Auth::Bearer(t) => b.header("authorization", format!("Bearer {t}")),
        };
        let sent = match body {
            Some(v) => {
                let req = b
                    .header("content-type", "application/json")
                    .body(v.to_string())
                    .map_err(|e| e.to_string())?;
                self.agent.run(req)
            }
            None => self.agent.run(b.body(()).map_err(|e| e.to_string())?),
        };
        let mut resp = sent.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Resp {
            status,
            body,
            location,
            retry_after,
        })
    }

    /// A request that must succeed with `want`.
    pub(crate) fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Value {
        let r = self
            .call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.status, want,
            "{method} {path}: expected {want}, got {}: {}",
            r.status, r.body
        );
        r.body
    }

    /// Signs in as the admin; the `lpm_session` cookie as a `Cookie` header value.
    pub(crate) fn sign_in(&self) -> String {
        self.sign_in_as(ADMIN, PASSWORD)
    }

    /// Signs `user` in; the `lpm_session` cookie as a `Cookie` header value.
    pub(crate) fn sign_in_as(&self, user: &str, password: &str) -> String {
        let body = json!({"username": user, "password": password});
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/api/v1/session", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .expect("request");
        let resp = self.agent.run(req).expect("POST /api/v1/session");
        assert_eq!(resp.status().as_u16(), 200, "sign-in of {user} failed");
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let pair = c.split(';').next()?.trim();
                pair.starts_with("lpm_session=").then(|| pair.to_string())
            })
            .expect("an lpm_session cookie")
    }

    /// `GET /api/v1/views`: tick, log position and views.
    pub(crate) fn views(&self) -> (u64, u64, Value) {
        let b = self.expect("GET", "/api/v1/views", None, 200);
        let tick = b["tick"].as_u64().expect("views at a tick");
        let seq = b["positions"][0]["log_seq"].as_u64().unwrap_or(0);
        (tick, seq, b["views"].clone())
    }
}

// ---------------------------------------------------------------------------------------------
// JSON comparison

fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => json_diff(u, v, &p, out),
                    (Some(u), None) => out.push(format!("{p}: {u} | (absent)")),
                    (None, Some(v)) => out.push(format!("{p}: (absent) | {v}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                json_diff(u, v, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} | {b}")),
        _ => {}
    }
}

pub fn assert_same_views(what: &str, left: (&str, &Value), right: (&str, &Value)) {
    if left.1 == right.1 {
        return;
    }
    let mut diffs = Vec::new();
    json_diff(left.1, right.1, "", &mut diffs);
    let shown: Vec<&String> = diffs.iter().take(40).collect();
    panic!(
        "{what}: {} and {} differ in {} places (path: {} | {}):\n{}",
        left.0,
        right.0,
        diffs.len(),
        left.0,
        right.0,
        shown
            .iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// the WebSocket client

struct Entry {
    tick: u64,
    /// A snapshot after the first: the diffs between the previous entry and this one are
    /// unknown to the client.
    resync: bool,
    views: Value,
}

/// What the client folded from the stream.
#[derive(Default)]
pub(crate) struct Folded {
    rows: BTreeMap<(String, String, String), i64>,
    pub(crate) tick: Option<u64>,
    history: Vec<Entry>,
    snapshots: usize,
    diffs: usize,
    heartbeats: usize,
    /// Case id -> the last tick it was announced at.
    pub(crate) cases: BTreeMap<i64, u64>,
    /// Ticks of `cases` messages that arrived while the client's views were at an earlier tick.
    cases_ahead: BTreeSet<u64>,
    /// `cases` messages at tick t that arrived before the `diff` of tick t.
    pub(crate) cases_before_their_diff: Vec<u64>,
    pub(crate) errors: Vec<String>,
    pub(crate) ended: Option<String>,
}

fn row_key(r: &WireRow) -> (String, String, String) {
    (r.view.clone(), r.key.clone(), r.value.to_string())
}

impl Folded {
    fn apply(&mut self, m: ServerMessage) {
        match m {
            ServerMessage::Snapshot { tick, rows } => {
                self.rows.clear();
                for r in &rows {
                    *self.rows.entry(row_key(r)).or_default() += 1;
                }
                self.snapshots += 1;
                let resync = self.snapshots > 1;
                self.record(tick, resync);
            }
            ServerMessage::Diff { tick, changes } => {
                match self.tick {
                    None => self
                        .errors
                        .push(format!("diff at tick {tick} before a snapshot")),
                    Some(t) if tick <= t => self.errors.push(format!(
                        "diff at tick {tick} after tick {t} (not increasing)"
                    )),
                    _ => {}
                }
                for c in &changes {
                    let k = row_key(&c.row);
                    match c.diff {
                        1 => *self.rows.entry(k).or_default() += 1,
                        -1 => match self.rows.get_mut(&k) {
                            Some(n) => {
                                *n -= 1;
                                if *n == 0 {
                                    self.rows.remove(&k);
                                }
                            }
                            None => self
                                .errors
                                .push(format!("tick {tick}: removes a row it never had: {k:?}")),
                        },
                        d => self.errors.push(format!("tick {tick}: diff {d} for {k:?}")),
                    }
                }
                self.diffs += 1;
                if self.cases_ahead.remove(&tick) {
                    self.cases_before_their_diff.push(tick);
                }
                self.cases_ahead = self.cases_ahead.split_off(&tick);
                self.record(tick, false);
            }
            ServerMessage::Cases { tick, changed } => {
                if self.tick.is_some_and(|t| tick > t) {
                    self.cases_ahead.insert(tick);
                }
                for id in changed {
                    self.cases.insert(id, tick);
                }
            }
            ServerMessage::Heartbeat { .. } => self.heartbeats += 1,
        }
    }

    fn record(&mut self, tick: u64, resync: bool) {
        self.tick = Some(tick);
        match views_of(&self.rows) {
            Ok(views) => self.history.push(Entry {
                tick,
                resync,
                views,
            }),
            Err(e) => self.errors.push(format!("tick {tick}: {e}")),
        }
    }

    /// The views the client holds now (`None` before its first snapshot).
    pub(crate) fn current(&self) -> Option<&Value> {
        self.history.last().map(|e| &e.views)
    }

    /// The views the client held at `tick` (`None` when it cannot know: before its first
    /// snapshot, or inside the gap a resync skipped).
    fn at(&self, tick: u64) -> Option<&Entry> {
        let i = self
            .history
            .partition_point(|e| e.tick <= tick)
            .checked_sub(1)?;
        let e = &self.history[i];
        if e.tick != tick && self.history.get(i + 1).is_some_and(|n| n.resync) {
            return None;
        }
        Some(e)
    }
}

/// The client's rows as `Views` JSON, via `from_wire` and `Views::from_rows`.
fn views_of(rows: &BTreeMap<(String, String, String), i64>) -> Result<Value, String> {
    let mut out = Vec::new();
    let mut keys = BTreeSet::new();
    for ((view, key, value), n) in rows {
        if *n != 1 {
            return Err(format!("row ({view}, {key}, {value}) held {n} times"));
        }
        if !keys.insert((view.clone(), key.clone())) {
            return Err(format!("two rows for ({view}, {key})"));
        }
        let w = WireRow {
            view: view.clone(),
            key: key.clone(),
            value: serde_json::from_str(value).map_err(|e| e.to_string())?,
        };
        out.push(from_wire(&w).ok_or_else(|| format!("from_wire refused {w:?}"))?);
    }
    serde_json::to_value(Views::from_rows(&out)).map_err(|e| e.to_string())
}

pub(crate) struct WsClient {
    state: Arc<Mutex<Folded>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl WsClient {
    pub(crate) fn connect(addr: &str, token: &str) -> WsClient {
        let state = Arc::new(Mutex::new(Folded::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let url = format!("ws://{addr}/api/v1/stream?topics=views,cases");
        let bearer = format!("Bearer {token}");
        let (st, halt) = (state.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let mut req = url.into_client_request().expect("ws request");
                req.headers_mut().insert(
                    "authorization",
                    HeaderValue::from_str(&bearer).expect("header"),
                );
                let mut ws = match tokio_tungstenite::connect_async(req).await {
                    Ok((ws, _)) => {
                        let _ = ready_tx.send(Ok(()));
                        ws
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                while !halt.load(Ordering::SeqCst) {
                    let next = tokio::time::timeout(Duration::from_millis(50), ws.next()).await;
                    let msg = match next {
                        Err(_) => continue,
                        Ok(None) => {
                            st.lock().ended = Some("the stream ended".into());
                            return;
                        }
                        Ok(Some(Err(e))) => {
                            st.lock().ended = Some(format!("error: {e}"));
                            return;
                        }
                        Ok(Some(Ok(m))) => m,
                    };
                    match msg {
                        Message::Text(t) => {
                            let mut s = st.lock();
                            match serde_json::from_str::<ServerMessage>(t.as_str()) {
                                Ok(m) => s.apply(m),
                                Err(e) => s.errors.push(format!("bad message {e}: {t}")),
                            }
                        }
                        Message::Close(f) => {
                            st.lock().ended = Some(format!("closed by the server: {f:?}"));
                            return;
                        }
                        _ => {}
                    }
                }
                let _ = ws.close(None).await;
                let _ = ws.flush().await;
            });
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("WebSocket connect failed: {e}"),
            Err(e) => panic!("WebSocket connect did not finish: {e}"),
        }
        WsClient {
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, Folded> {
        self.state.lock()
    }

    /// Waits until the client holds views at tick `tick` or later.
    fn wait_tick(&self, tick: u64, timeout: Duration) {
        wait_until(
            &format!("the WebSocket client to reach tick {tick}"),
            timeout,
            || {
                let s = self.state();
                if let Some(e) = &s.ended {
                    panic!("the WebSocket stream ended early: {e}");
                }
                match s.tick {
                    Some(t) if t >= tick => Ok(()),
                    t => Err(format!(
                        "client at tick {t:?} ({} snapshots, {} diffs)",
                        s.snapshots, s.diffs
                    )),
                }
            },
        );
    }

    pub(crate) fn close(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// writers

/// A write answered with a 2xx.
#[derive(Clone, Debug)]
enum Ack {
    Report { case_id: i64, name: String },
    Update { case_id: i64, version: i64 },
    Assign { case_id: i64, version: i64 },
    Action { case_id: i64, notes: String },
    Sighting { case_id: i64, place: String },
}

impl Ack {
    fn case_id(&self) -> i64 {
        match self {
            Ack::Report { case_id, .. }
            | Ack::Update { case_id, .. }
            | Ack::Assign { case_id, .. }
            | Ack::Action { case_id, .. }
            | Ack::Sighting { case_id, .. } => *case_id,
        }
    }
}

#[derive(Clone, Debug)]
struct CaseState {
    version: i64,
    status: String,
    responsible: Option<i64>,
}

/// What the writers know and did.
#[derive(Default)]
struct Book {
    cases: Mutex<BTreeMap<i64, CaseState>>,
    acks: Mutex<Vec<Ack>>,
    acked: AtomicUsize,
    stop: AtomicBool,
    counts: Mutex<BTreeMap<String, usize>>,
    unexpected: Mutex<Vec<String>>,
    /// The highest tick a 2xx answer reported.
    max_tick: Mutex<u64>,
}

const CLOSED: [&str; 3] = ["found_alive", "found_deceased", "closed"];

impl Book {
    fn count(&self, what: String) {
        *self.counts.lock().entry(what).or_default() += 1;
    }

    fn ack(&self, a: Ack) {
        self.acks.lock().push(a);
        self.acked.fetch_add(1, Ordering::SeqCst);
    }

    fn pick_case(&self, rng: &mut Rng) -> Option<(i64, CaseState)> {
        let cases = self.cases.lock();
        if cases.is_empty() {
            return None;
        }
        let i = rng.below(cases.len() as u64) as usize;
        cases.iter().nth(i).map(|(k, v)| (*k, v.clone()))
    }

    /// Learns from a 2xx body (a case detail, or a 202's `{id, version, tick}`).
    fn observe(&self, case_id: i64, r: &Resp) {
        let tick = r.body["tick"].as_u64().unwrap_or(0);
        {
            let mut m = self.max_tick.lock();
            *m = (*m).max(tick);
        }
        let mut cases = self.cases.lock();
        let c = &r.body["case"];
        if let Some(version) = c["version"].as_i64() {
            let st = CaseState {
                version,
                status: c["status"].as_str().unwrap_or("open").to_string(),
                responsible: c["responsible"]["id"].as_i64(),
            };
            let e = cases.entry(case_id).or_insert(st.clone());
            if e.version <= version {
                *e = st;
            }
        } else if let Some(version) = r.body["version"].as_i64() {
            let e = cases.entry(case_id).or_insert(CaseState {
                version,
                status: "open".into(),
                responsible: None,
            });
            e.version = e.version.max(version);
        }
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().push(what);
    }
}

pub(crate) fn case_id_of(r: &Resp) -> Option<i64> {
    r.location
        .as_deref()
        .and_then(|l| l.rsplit('/').next())
        .and_then(|s| s.parse().ok())
        .or_else(|| r.body["case"]["id"].as_i64())
}

pub(crate) fn version_of(r: &Resp) -> Option<i64> {
    r.body["case"]["version"]
        .as_i64()
        .or_else(|| r.body["version"].as_i64())
}

/// Re-reads a case after a 409.
fn refresh(http: &Http, book: &Book, id: i64) -> Result<(), String> {
    let r = http.call("GET", &format!("/api/v1/cases/{id}"), None)?;
    if r.status == 200 {
        let mut cases = book.cases.lock();
        let c = &r.body["case"];
        if let Some(version) = c["version"].as_i64() {
            cases.insert(
                id,
                CaseState {
                    version,
                    status: c["status"].as_str().unwrap_or("open").to_string(),
                    responsible: c["responsible"]["id"].as_i64(),
                },
            );
        }
    }
    Ok(())
}

fn report(
    http: &Http,
    book: &Book,
    rng: &mut Rng,
    responsibles: &[i64],
    tag: &str,
) -> Result<(), String> {
    let genders = ["female", "male", "other", "unknown", " Female ", "MALE"];
    let ages = [
        None,
        Some(0),
        Some(7),
        Some(11),
        Some(12),
        Some(17),
        Some(18),
        Some(33),
        Some(47),
        Some(61),
        Some(121),
    ];
    let name = format!("Persona {tag}");
    let mut body = json!({
        "full_name": name,
        "gender": rng.pick(&genders),
        "last_seen_at": format!("2026-03-{:02}T{:02}:{:02}", 1 + rng.below(28), rng.below(24), rng.below(60)),
        "last_seen_place": "Quito, La Mariscal",
    });
    if let Some(age) = rng.pick(&ages) {
        body["age"] = json!(age);
    }
    if rng.below(4) > 0 {
        body["priority"] = json!(rng.pick(&["low", "medium", "high", "critical"]));
    }
    if rng.below(3) == 0 {
        body["responsible_id"] = json!(rng.pick(responsibles));
    }
    if rng.below(4) == 0 {
        body["first_action"] = json!({"action_type": "call", "notes": format!("first {tag}")});
    }
    if rng.below(5) == 0 {
        body["latitude"] = json!(-0.180653);
        body["longitude"] = json!(-78.467834);
    }
    let r = http.call("POST", "/api/v1/reports", Some(&body))?;
    book.count(format!("report {}", r.status));
    match (r.status, case_id_of(&r)) {
        (200..=299, Some(case_id)) => {
            book.observe(case_id, &r);
            book.ack(Ack::Report { case_id, name });
        }
        _ => book.unexpected(format!("POST /api/v1/reports: {} {}", r.status, r.body)),
    }
    Ok(())
}

fn patch(http: &Http, book: &Book, rng: &mut Rng, id: i64) -> Result<(), String> {
    for _ in 0..4 {
        let Some(st) = book.cases.lock().get(&id).cloned() else {
            return Ok(());
        };
        let mut body = json!({"version": st.version});
        if rng.below(4) == 0 {
            body["priority"] = json!(rng.pick(&["low", "medium", "high", "critical"]));
        } else {
            let to = if CLOSED.contains(&st.status.as_str()) {
                "open"
            } else {
                rng.pick(&[
                    "open",
                    "in_progress",
                    "in_progress",
                    "found_alive",
                    "found_deceased",
                    "closed",
                ])
            };
            body["status"] = json!(to);
            if rng.below(3) == 0 {
                body["priority"] = json!(rng.pick(&["low", "medium", "high", "critical"]));
            }
        }
        let path = format!("/api/v1/cases/{id}");
        let r = http.call("PATCH", &path, Some(&body))?;
        book.count(format!("patch {}", r.status));
        match r.status {
            200..=299 => {
                book.observe(id, &r);
                match version_of(&r) {
                    Some(version) => book.ack(Ack::Update {
                        case_id: id,
                        version,
                    }),
                    None => book.unexpected(format!("PATCH {path}: no version in {}", r.body)),
                }
                return Ok(());
            }
            409 => refresh(http, book, id)?,
            422 => return Ok(()),
            s => {
                book.unexpected(format!("PATCH {path} {body}: {s} {}", r.body));
                return Ok(());
            }
        }
    }
    Ok(())
}

fn assign(
    http: &Http,
    book: &Book,
    rng: &mut Rng,
    responsibles: &[i64],
    id: i64,
    tag: &str,
) -> Result<(), String> {
    for _ in 0..4 {
        let Some(st) = book.cases.lock().get(&id).cloned() else {
            return Ok(());
        };
        if CLOSED.contains(&st.status.as_str()) {
            // a closed case cannot be assigned: log an action on it instead
            return action(http, book, rng, id, tag);
        }
        let choices: Vec<i64> = responsibles
            .iter()
            .copied()
            .filter(|r| Some(*r) != st.responsible)
            .collect();
        let to = *rng.pick(&choices);
        let body = json!({"version": st.version, "responsible_id": to});
        let path = format!("/api/v1/cases/{id}/assignment");
        let r = http.call("POST", &path, Some(&body))?;
        book.count(format!("assign {}", r.status));
        match r.status {
            200..=299 => {
                book.observe(id, &r);
                match version_of(&r) {
                    Some(version) => book.ack(Ack::Assign {
                        case_id: id,
                        version,
                    }),
                    None => book.unexpected(format!("POST {path}: no version in {}", r.body)),
                }
                return Ok(());
            }
            409 => refresh(http, book, id)?,
            422 => return Ok(()),
            s => {
                book.unexpected(format!("POST {path} {body}: {s} {}", r.body));
                return Ok(());
            }
        }
    }
    Ok(())
}

fn action(http: &Http, book: &Book, rng: &mut Rng, id: i64, tag: &str) -> Result<(), String> {
    let notes = format!("note {tag}");
    let body =
        json!({"action_type": rng.pick(&["note", "search", "call", "sighting"]), "notes": notes});
    let path = format!("/api/v1/cases/{id}/actions");
    let r = http.call("POST", &path, Some(&body))?;
    book.count(format!("action {}", r.status));
    match r.status {
        200..=299 => {
            book.observe(id, &r);
            book.ack(Ack::Action { case_id: id, notes });
        }
        s => book.unexpected(format!("POST {path}: {s} {}", r.body)),
    }
    Ok(())
}

/// A sighting (any case status), half of them with coordinates and a reporter. They ride the
/// same log, checkpoints, export and replay as every other write, and must move no view.
fn sighting(http: &Http, book: &Book, rng: &mut Rng, id: i64, tag: &str) -> Result<(), String> {
    let place = format!("Sitio {tag}");
    let mut body = json!({
        "seen_at": format!("2026-03-{:02}T{:02}:{:02}", 1 + rng.below(28), rng.below(24), rng.below(60)),
        "place": place,
    });
    if rng.below(2) == 0 {
        body["latitude"] = json!(-0.2);
        body["longitude"] = json!(-78.5);
        body["reporter_name"] = json!(format!("Testigo {tag}"));
    }
    let path = format!("/api/v1/cases/{id}/sightings");
    let r = http.call("POST", &path, Some(&body))?;
    book.count(format!("sighting {}", r.status));
    match r.status {
        200..=299 => {
            book.observe(id, &r);
            book.ack(Ack::Sighting { case_id: id, place });
        }
        s => book.unexpected(format!("POST {path}: {s} {}", r.body)),
    }
    Ok(())
}

/// Up to `ops` writes (reports, status/priority changes, assignments, actions, sightings) until
/// `book.stop`; `Err` on the first transport failure.
fn write_loop(
    http: &Http,
    book: &Book,
    responsibles: &[i64],
    seed: u64,
    ops: usize,
    tag: &str,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    for i in 0..ops {
        if book.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let tag = format!("{tag}-{i}");
        let roll = rng.below(100);
        match (roll, book.pick_case(&mut rng)) {
            (0..=39, _) | (_, None) => report(http, book, &mut rng, responsibles, &tag)?,
            (40..=64, Some((id, _))) => patch(http, book, &mut rng, id)?,
            (65..=79, Some((id, _))) => assign(http, book, &mut rng, responsibles, id, &tag)?,
            (80..=91, Some((id, _))) => action(http, book, &mut rng, id, &tag)?,
            (_, Some((id, _))) => sighting(http, book, &mut rng, id, &tag)?,
        }
    }
    Ok(())
}

/// Every acknowledged write is in the server's state.
fn check_acks(http: &Http, acks: &[Ack]) {
    let mut by_case: BTreeMap<i64, Vec<&Ack>> = BTreeMap::new();
    for a in acks {
        by_case.entry(a.case_id()).or_default().push(a);
    }
    let mut missing = Vec::new();
    for (id, acks) in &by_case {
        let r = http
            .call("GET", &format!("/api/v1/cases/{id}"), None)
            .unwrap_or_else(|e| panic!("{e}"));
        if r.status != 200 {
            missing.push(format!(
                "case {id}: GET answered {} ({} acknowledged writes)",
                r.status,
                acks.len()
            ));
            continue;
        }
        let version = r.body["case"]["version"].as_i64().unwrap_or(0);
        let notes: BTreeSet<&str> = r.body["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["notes"].as_str())
            .collect();
        let places: BTreeSet<&str> = r.body["sightings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["place"].as_str())
            .collect();
        for a in acks {
            match a {
                Ack::Report { name, .. } => {
                    let got = r.body["case"]["person"]["full_name"].as_str();
                    if got != Some(name.as_str()) {
                        missing.push(format!("case {id}: person {got:?}, acknowledged {name}"));
                    }
                }
                Ack::Update { version: v, .. } | Ack::Assign { version: v, .. } => {
                    if version < *v {
                        missing.push(format!(
                            "case {id}: version {version} < acknowledged {v} ({a:?})"
                        ));
                    }
                }
                Ack::Action { notes: n, .. } => {
                    if !notes.contains(n.as_str()) {
                        missing.push(format!("case {id}: acknowledged action {n:?} missing"));
                    }
                }
                Ack::Sighting { place, .. } => {
                    if !places.contains(place.as_str()) {
                        missing.push(format!(
                            "case {id}: acknowledged sighting {place:?} missing"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes are missing:\n{}",
        missing.len(),
        acks.len(),
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// export, replay, oracle

/// Exports the log (`lpm log export`, fine while serving) and returns the dump and the number
/// of records exported.
fn export(data_dir: &Path, out: &Path) -> u64 {
    let (_, stderr) = lpm_ok(
        &[
            "log",
            "export",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    stderr
        .split("exported ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count in the export summary: {stderr}"))
}

/// The REST views must equal `lpm replay` of `dump`, and `oracle.py` on it when available.
fn check_against_replay(what: &str, rest: &Value, dump: &Path, oracle: Option<&Path>) {
    let (replayed, _) = support::replay(&[dump.to_str().expect("utf-8 path"), "--tz", TZ]);
    assert_same_views(
        what,
        ("REST views", rest),
        ("lpm replay of the export", &replayed),
    );
    if let Some(script) = oracle {
        let out = Command::new("python3")
            .arg(script)
            .arg(dump)
            .args(["--tz", TZ])
            .output()
            .expect("run oracle.py");
        assert!(
            out.status.success(),
            "oracle.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let o: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
        assert_same_views(what, ("REST views", rest), ("oracle.py on the export", &o));
    }
}

// ---------------------------------------------------------------------------------------------
// the tests

/// An admin (`lpm user add`) and a reader token (`lpm token create`) in `data`; the token.
pub(crate) fn init_data_dir(data: &Path) -> String {
    let data = data.to_str().expect("utf-8 path");
    lpm_ok(
        &["user", "add", ADMIN, "--role", "admin", "--data-dir", data],
        &[("LPM_PASSWORD", PASSWORD)],
    );
    let (token, _) = lpm_ok(&["token", "create", "ws-test", "--data-dir", data], &[]);
    let token = token.trim().to_string();
    assert!(!token.is_empty(), "lpm token create printed no token");
    token
}

/// `lpm serve --demo` plus `extra` on `data`, with the test's admin ([`ADMIN`]) and a read-only
/// token made through the API by the demo admin, as someone trying the demo would. (`--demo`
/// refuses a data dir holding users it did not make, such as [`init_data_dir`]'s `lpm user
/// add`.) Returns the server and the token.
pub(crate) fn start_demo(data: &Path, extra: &[&str]) -> (Server, String) {
    let mut args = vec!["--demo"];
    args.extend_from_slice(extra);
    let server = Server::start_with(data, &args);
    let anon = Http::new(&server.addr, Auth::None);
    let demo_admin = anon.with_auth(Auth::Cookie(anon.sign_in_as(
        lpm_api::auth::DEMO_ADMIN,
        lpm_api::auth::DEMO_ADMIN_PASSWORD,
    )));
    demo_admin.expect(
        "POST",
        "/api/v1/users",
        Some(&json!({"username": ADMIN, "password": PASSWORD, "role": "admin"})),
        201,
    );
    let token = demo_admin.expect(
        "POST",
        "/api/v1/tokens",
        Some(&json!({"label": "ws-test"})),
        201,
    )["token"]
        .as_str()
        .expect("a token")
        .to_string();
    (server, token)
}

/// The signed-in admin (session cookie) and the reader (Bearer token).
pub(crate) fn clients(server: &Server, token: &str) -> (Http, Http) {
    let anon = Http::new(&server.addr, Auth::None);
    let admin = anon.with_auth(Auth::Cookie(anon.sign_in()));
    let reader = anon.with_auth(Auth::Bearer(token.to_string()));
    (admin, reader)
}

pub(crate) fn create_responsibles(admin: &Http) -> Vec<i64> {
    (1..=3)
        .map(|i| {
            let b = admin.expect(
                "POST",
                "/api/v1/responsibles",
                Some(&json!({"full_name": format!("Responsable {i}"), "agency": "ECU 911"})),
                201,
            );
            b["id"].as_i64().expect("responsible id")
        })
        .collect()
}

#[test]
fn serve_ws_diffs_equal_rest_replay_and_oracle_and_survive_kill_9() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let oracle = support::oracle_script();

    let mut server = Server::start(&data);
    let (admin, reader) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);

    let ws = WsClient::connect(&server.addr, &token);
    let (t0, _, _) = reader.views();
    ws.wait_tick(t0, Duration::from_secs(10));

    // REST samples along the run: (tick, views)
    let samples: Arc<Mutex<Vec<(u64, Value)>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (http, samples, sampling) = (reader.clone(), samples.clone(), sampling.clone());
        thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                if let Ok(r) = http.call("GET", "/api/v1/views", None) {
                    if let (200, Some(t)) = (r.status, r.body["tick"].as_u64()) {
                        samples.lock().push((t, r.body["views"].clone()));
                    }
                }
                thread::sleep(Duration::from_millis(15));
            }
        })
    };

    // ~300 writes from three threads; one responsible renamed midway
    let book = Arc::new(Book::default());
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (http, book, resp) = (admin.clone(), book.clone(), responsibles.clone());
            thread::spawn(move || write_loop(&http, &book, &resp, w + 1, 100, &format!("w{w}")))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    admin.expect(
        "PATCH",
        &format!("/api/v1/responsibles/{}", responsibles[0]),
        Some(&json!({"version": 1, "full_name": "Responsable 1 (renombrado)"})),
        200,
    );
    for w in writers {
        w.join()
            .expect("writer thread")
            .unwrap_or_else(|e| panic!("a write failed: {e}; server stderr:\n{}", server.stderr()));
    }
    let unexpected = book.unexpected.lock().clone();
    assert!(
        unexpected.is_empty(),
        "unexpected answers:\n{}",
        unexpected.join("\n")
    );
    let phase1_acks = book.acks.lock().clone();
    assert!(
        phase1_acks.len() >= 250,
        "only {} writes acknowledged: {:?}",
        phase1_acks.len(),
        book.counts.lock()
    );

    // a last report changes the views for sure: the client must reach the REST tick
    let mut rng = Rng::new(0xD1CE);
    report(&admin, &book, &mut rng, &responsibles, "last").expect("last report");
    let (tick, log_seq, rest) = reader.views();
    ws.wait_tick(tick, Duration::from_secs(10));
    sampling.store(false, Ordering::SeqCst);
    sampler.join().expect("sampler");
    {
        let s = ws.state();
        assert!(
            s.errors.is_empty(),
            "WebSocket protocol errors:\n{}",
            s.errors.join("\n")
        );
        assert!(s.ended.is_none(), "the stream ended: {:?}", s.ended);
        let held = s.at(tick).expect("client views at the final tick");
        assert_eq!(held.tick, tick, "the client's last tick");
        assert_same_views(
            &format!("final tick {tick}"),
            ("REST views", &rest),
            ("WebSocket-folded views", &held.views),
        );
        // every REST sample equals what the client held at that tick
        let samples = samples.lock();
        let mut compared = 0;
        for (t, v) in samples.iter() {
            if let Some(e) = s.at(*t) {
                assert_same_views(
                    &format!("REST sample at tick {t} vs client entry at tick {}", e.tick),
                    ("REST views", v),
                    ("WebSocket-folded views", &e.views),
                );
                compared += 1;
            }
        }
        assert!(
            compared >= 10,
            "only {compared} of {} REST samples could be compared",
            samples.len()
        );
        // every acknowledged case write was announced on the cases topic
        let silent: Vec<i64> = book
            .acks
            .lock()
            .iter()
            .map(Ack::case_id)
            .filter(|id| !s.cases.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert!(
            silent.is_empty(),
            "cases written but never announced on the stream: {silent:?}"
        );
        eprintln!(
            "phase 1: {} acks {:?}; ws: {} snapshots, {} diffs, {} history entries, {} cases \
             messages before their tick's diff, {compared}/{} REST samples compared; tick {tick}",
            book.acks.lock().len(),
            book.counts.lock(),
            s.snapshots,
            s.diffs,
            s.history.len(),
            s.cases_before_their_diff.len(),
            samples.len()
        );
    }
    ws.close();

    // the embedded log, exported while serving, replays to the same views
    let dump = dir.path().join("dump.jsonl");
    let records = export(&data, &dump);
    assert_eq!(
        records, log_seq,
        "exported records vs the REST log position"
    );
    let (tick_now, _, rest_now) = reader.views();
    assert_eq!(tick_now, tick, "the tick moved without writes");
    check_against_replay("before the crash", &rest_now, &dump, oracle.as_deref());

    // kill -9 during a burst of writes from four threads
    let crash = Arc::new(Book::default());
    *crash.cases.lock() = book.cases.lock().clone();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (http, book, resp) = (admin.clone(), crash.clone(), responsibles.clone());
            thread::spawn(move || {
                write_loop(&http, &book, &resp, 100 + w, 5_000, &format!("crash{w}"))
            })
        })
        .collect();
    wait_until(
        "150 acknowledged writes in the burst",
        Duration::from_secs(30),
        || {
            let n = crash.acked.load(Ordering::SeqCst);
            if n >= 150 {
                Ok(())
            } else {
                Err(format!("{n} so far: {:?}", crash.counts.lock()))
            }
        },
    );
    server.kill9();
    let killed_at = crash.acked.load(Ordering::SeqCst);
    crash.stop.store(true, Ordering::SeqCst);
    let mut failures = 0;
    for w in writers {
        if w.join().expect("writer thread").is_err() {
            failures += 1;
        }
    }
    // (answers already on their way when the server died may still be counted: they are 2xx)
    let crash_acks = crash.acks.lock().clone();
    assert!(crash_acks.len() >= killed_at);
    let unexpected = crash.unexpected.lock().clone();
    assert!(
        unexpected.is_empty(),
        "unexpected answers in the burst:\n{}",
        unexpected.join("\n")
    );

    // restart on the same data dir: every acknowledged write is there
    let server2 = Server::start(&data);
    let (admin, reader) = clients(&server2, &token);
    let mut all_acks = book.acks.lock().clone();
    all_acks.extend(crash_acks.iter().cloned());
    check_acks(&admin, &all_acks);

    let (tick2, log_seq2, rest2) = reader.views();
    let dump2 = dir.path().join("dump-after-crash.jsonl");
    let records2 = export(&data, &dump2);
    assert_eq!(
        records2, log_seq2,
        "exported records vs the REST log position after the restart"
    );
    assert!(
        records2 >= records,
        "the log shrank: {records2} < {records}"
    );
    check_against_replay(
        "after kill -9 and restart",
        &rest2,
        &dump2,
        oracle.as_deref(),
    );

    // a fresh WebSocket client's snapshot is the same state
    let ws = WsClient::connect(&server2.addr, &token);
    ws.wait_tick(tick2, Duration::from_secs(10));
    {
        let s = ws.state();
        let e = s.at(tick2).expect("a snapshot");
        assert_same_views(
            "after the restart",
            ("REST views", &rest2),
            ("WebSocket snapshot", &e.views),
        );
    }
    ws.close();
    eprintln!(
        "crash: {} acks before kill -9 ({failures} writers saw the failure) {:?}; {} records \
         before, {records2} after; took {:?}",
        crash_acks.len(),
        crash.counts.lock(),
        records,
        started.elapsed()
    );
    drop(server2);
}

/// On one stream, `cases` for tick t should not arrive before the `diff` of tick t: a client
/// that reacts to `cases` would otherwise look at views that do not include those writes yet.
/// (Regression: the hub used to publish case notices up to the store's tick while that tick's
/// diff was still queued in its subscription.)
#[test]
fn serve_stream_sends_cases_after_their_tick_diff() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let server = Server::start(&data);
    let (admin, reader) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    let ws = WsClient::connect(&server.addr, &token);
    let book = Arc::new(Book::default());
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (http, book, resp) = (admin.clone(), book.clone(), responsibles.clone());
            thread::spawn(move || write_loop(&http, &book, &resp, w + 7, 60, &format!("o{w}")))
        })
        .collect();
    for w in writers {
        w.join().expect("writer").expect("writes");
    }
    report(&admin, &book, &mut Rng::new(0xFACE), &responsibles, "last").expect("last report");
    let (tick, _, _) = reader.views();
    ws.wait_tick(tick, Duration::from_secs(10));
    let early = ws.state().cases_before_their_diff.clone();
    ws.close();
    assert!(
        early.is_empty(),
        "{} `cases` messages came before their tick's diff (ticks {:?})",
        early.len(),
        &early[..early.len().min(20)]
    );
}

/// Checkpoints under fire: `lpm serve` taking a checkpoint every few dozen changes is killed
/// with SIGKILL during bursts of concurrent writes, `LPM_KILL_ROUNDS` times (20 by default), so
/// kills land before, during and after checkpoint writes. Every restart must load a checkpoint
/// or replay cleanly, keep every acknowledged write, and at the end the views must equal `lpm
/// replay` of the exported log and `oracle.py`.
#[test]
fn checkpoints_survive_rounds_of_kill_9_during_write_bursts() {
    let started = Instant::now();
    let rounds: usize = std::env::var("LPM_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let oracle = support::oracle_script();
    let flags = [
        "--checkpoint-every-changes",
        "60",
        "--checkpoint-interval-s",
        "1",
        "--log-segment-bytes",
        "65536",
    ];
    let mut server = Server::start_with(&data, &flags);
    let (admin, _) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    let book = Arc::new(Book::default());
    let mut restored_starts = 0;
    for round in 0..rounds {
        let (admin, _) = clients(&server, &token);
        book.stop.store(false, Ordering::SeqCst);
        let before = book.acked.load(Ordering::SeqCst);
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (http, book, resp) = (admin.clone(), book.clone(), responsibles.clone());
                let tag = format!("r{round}w{w}");
                thread::spawn(move || {
                    write_loop(&http, &book, &resp, 1000 * round as u64 + w, 5_000, &tag)
                })
            })
            .collect();
        // kill at a different depth into the burst each round
        let target = before + 20 + (round * 37) % 120;
        wait_until(
            "writes acknowledged in the burst",
            Duration::from_secs(60),
            || {
                let n = book.acked.load(Ordering::SeqCst);
                if n >= target {
                    Ok(())
                } else {
                    Err(format!("{n} of {target}: {:?}", book.counts.lock()))
                }
            },
        );
        server.kill9();
        book.stop.store(true, Ordering::SeqCst);
        for w in writers {
            let _ = w.join().expect("writer thread");
        }
        let unexpected = book.unexpected.lock().clone();
        assert!(
            unexpected.is_empty(),
            "round {round}: unexpected answers:\n{}",
            unexpected.join("\n")
        );
        server = Server::start_with(&data, &flags);
        let (admin, reader) = clients(&server, &token);
        check_acks(&admin, &book.acks.lock().clone());
        let metrics = reader
            .call("GET", "/metrics", None)
            .ok()
            .and_then(|r| r.body.as_str().map(str::to_string))
            .unwrap_or_default();
        let restored = metrics
            .lines()
            .find_map(|l| l.strip_prefix("lpm_recovery_restored_entries "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if restored > 0.0 {
            restored_starts += 1;
        }
    }
    assert!(
        restored_starts * 2 >= rounds,
        "only {restored_starts} of {rounds} restarts loaded a checkpoint"
    );
    let (_, reader) = clients(&server, &token);
    let (_, log_seq, rest) = reader.views();
    let dump = dir.path().join("dump.jsonl");
    let records = export(&data, &dump);
    assert_eq!(
        records, log_seq,
        "exported records vs the REST log position"
    );
    check_against_replay("after the kill -9 rounds", &rest, &dump, oracle.as_deref());
    eprintln!(
        "{rounds} kill -9 rounds: {} acknowledged writes, {restored_starts} restarts from a \
         checkpoint, {records} records; took {:?}",
        book.acks.lock().len(),
        started.elapsed()
    );
}

/// The log tail replayed at a start counts toward the next checkpoint: a server killed with
/// changes after its newest checkpoint takes a new one soon after it restarts (its interval
/// elapsed, with those changes pending), so the next restart replays nothing. (Regression: the
/// taker counted changes from where the replay ended, so a replayed tail never triggered a
/// checkpoint and every restart replayed it again.)
#[test]
fn a_tail_replayed_at_start_counts_toward_the_next_checkpoint() {
    use crate::checkpoints::metric;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let never = [
        "--checkpoint-every-changes",
        "1000000",
        "--checkpoint-interval-s",
        "86400",
    ];
    let mut server = Server::start_with(&data, &never);
    let (admin, _) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    let book = Book::default();
    write_loop(&admin, &book, &responsibles, 11, 40, "covered").expect("writes");
    // a clean stop takes a checkpoint; the writes after the next start are its tail
    server.terminate();
    let mut server = Server::start_with(&data, &never);
    let (admin, _) = clients(&server, &token);
    write_loop(&admin, &book, &responsibles, 12, 30, "tail").expect("writes");
    server.kill9();

    let soon = [
        "--checkpoint-every-changes",
        "1000000",
        "--checkpoint-interval-s",
        "1",
    ];
    let mut server = Server::start_with(&data, &soon);
    let (_, reader) = clients(&server, &token);
    let replayed = metric(&reader, "lpm_recovery_replayed_records");
    assert!(replayed > 0.0, "the tail was replayed: {replayed}");
    wait_until(
        "a checkpoint covering the replayed tail",
        Duration::from_secs(30),
        // (the counter has no sample before its first checkpoint)
        || match crate::hardening::metric(&reader, "lpm_checkpoints_total{outcome=\"taken\"}") {
            Some(n) if n >= 1.0 => Ok(()),
            n => Err(format!(
                "{n:?} taken; pending {}",
                metric(&reader, "lpm_checkpoint_pending_changes")
            )),
        },
    );
    server.kill9();
    let server = Server::start_with(&data, &soon);
    let (admin, reader) = clients(&server, &token);
    assert_eq!(
        metric(&reader, "lpm_recovery_replayed_records"),
        0.0,
        "the checkpoint taken after the replay covers the whole log"
    );
    check_acks(&admin, &book.acks.lock().clone());
}

/// `lpm log export` once log retention has retired the first segments: the newest
/// checkpoint's rows as snapshot reads, then the log records after it. `lpm replay` of that
/// dump, and `oracle.py`, equal the server's views. Without a checkpoint the export is refused
/// (non-zero exit, the reason said) and leaves no file.
#[test]
fn log_export_after_retention_starts_with_the_checkpoint_as_a_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let oracle = support::oracle_script();
    let log_dir = data.join("log");
    // a checkpoint every 40 changes, retiring at once what the older kept one covers
    let retiring = [
        "--log-segment-bytes",
        "4096",
        "--log-retention-s",
        "0",
        "--checkpoint-every-changes",
        "40",
        "--checkpoint-interval-s",
        "1",
    ];
    let mut server = Server::start_with(&data, &retiring);
    let (admin, _) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    let book = Book::default();
    write_loop(&admin, &book, &responsibles, 7, 300, "before").expect("writes");
    wait_until("segment 1 retired", Duration::from_secs(30), || {
        if log_dir.join("lpm-log.000001").exists() {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    });
    server.kill9();
    // no checkpoint from here on: what is written now stays the tail after the newest one
    let quiet = [
        "--log-segment-bytes",
        "4096",
        "--checkpoint-every-changes",
        "1000000",
        "--checkpoint-interval-s",
        "86400",
    ];
    let server = Server::start_with(&data, &quiet);
    let (admin, reader) = clients(&server, &token);
    // updates of cases the checkpoint holds, and new reports
    write_loop(&admin, &book, &responsibles, 8, 150, "after").expect("writes");
    let unexpected = book.unexpected.lock().clone();
    assert!(
        unexpected.is_empty(),
        "unexpected answers:\n{}",
        unexpected.join("\n")
    );
    let (_, log_seq, rest) = reader.views();

    let dump = dir.path().join("dump.jsonl");
    let (_, stderr) = lpm_ok(
        &[
            "log",
            "export",
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--out",
            dump.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(stderr.contains("rows as snapshot reads"), "{stderr}");
    let records: u64 = stderr
        .split("exported ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count: {stderr}"));
    assert!(
        records > 0 && records < log_seq,
        "the tail only: {records} of {log_seq} records ({stderr})"
    );
    let text = std::fs::read_to_string(&dump).expect("read the dump");
    let reads = text
        .lines()
        .filter(|l| l.contains(r#"\"op\":\"r\""#))
        .count();
    assert!(reads > 100, "{reads} snapshot reads");
    check_against_replay("export after retention", &rest, &dump, oracle.as_deref());

    // the same log without its checkpoints: refused, and no dump left behind
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(bare.join("log")).expect("mkdir");
    for entry in std::fs::read_dir(&log_dir).expect("list the log") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), bare.join("log").join(entry.file_name())).expect("copy");
    }
    let refused = dir.path().join("refused.jsonl");
    let out = support::lpm(
        &[
            "log",
            "export",
            "--data-dir",
            bare.to_str().expect("utf-8 path"),
            "--out",
            refused.to_str().expect("utf-8 path"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("were retired") && stderr.contains("no checkpoint"),
        "{stderr}"
    );
    assert!(!refused.exists(), "no partial dump");
    drop(server);
}
