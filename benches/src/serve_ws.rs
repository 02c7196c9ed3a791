//! The WebSocket side of the serve and soak benches: many `/api/v1/stream?topics=views`
//! clients on one small tokio runtime, each rebuilding the view rows from the snapshot and the
//! diffs.
//!
//! Every client keeps its rows as a multiset of 64-bit row hashes (compact: 500 clients hold
//! ~1 500 rows each); a sample of clients also keeps the rows themselves, which are turned back
//! into `Views` and compared with `GET /api/v1/views` exactly. Every other client's multiset
//! must equal the first exactly-checked client's.
//!
//! A lost diff shows as a removal of a row the client does not hold (every count change is a
//! removal of the old row and an insertion of the new one). Snapshots after the first are
//! resyncs the server announced (the client fell behind); they replace the state.
// each bench target compiles this module and uses a different subset of it
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lpm_engine::Views;
use lpm_service::wire::{from_wire, ServerMessage, WireRow};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientOut {
    pub index: usize,
    pub snapshots: u64,
    pub diffs: u64,
    pub changes: u64,
    pub heartbeats: u64,
    /// Removals of rows the client did not hold.
    pub lost: u64,
    /// Diffs whose tick was not after the last one.
    pub out_of_order: u64,
    pub last_tick: u64,
    pub bytes: u64,
    pub error: Option<String>,
    /// The server ended the stream (a close frame, a reset, or the end of the connection)
    /// before the client closed it.
    pub dropped: bool,
    /// Row hash -> multiplicity.
    pub state: HashMap<u64, i64>,
    /// The rows themselves (sampled clients only).
    pub rows: Option<BTreeMap<String, (WireRow, i64)>>,
}

fn row_key(r: &WireRow) -> String {
    // serde_json::Value objects have sorted keys: a canonical text
    format!("{}\u{1}{}\u{1}{}", r.view, r.key, r.value)
}

fn row_hash(key: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl ClientOut {
    fn apply(&mut self, text: &str, activity: &AtomicU64, epoch: Instant) {
        self.bytes += text.len() as u64;
        let msg: ServerMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("bad message: {e}"));
                return;
            }
        };
        match msg {
            ServerMessage::Snapshot { tick, rows } => {
                self.snapshots += 1;
                self.state.clear();
                if let Some(full) = &mut self.rows {
                    full.clear();
                }
                for r in rows {
                    self.add(r, 1);
                }
                self.last_tick = tick;
            }
            ServerMessage::Diff { tick, changes } => {
                self.diffs += 1;
                if tick <= self.last_tick {
                    self.out_of_order += 1;
                }
                self.last_tick = tick;
                for c in changes {
                    self.changes += 1;
                    self.add(c.row, c.diff);
                }
            }
            ServerMessage::Heartbeat { .. } => {
                self.heartbeats += 1;
                return;
            }
            ServerMessage::Cases { .. } => return,
        }
        activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn add(&mut self, row: WireRow, diff: i64) {
        let key = row_key(&row);
        let h = row_hash(&key);
        let n = self.state.entry(h).or_insert(0);
        if *n + diff < 0 {
            self.lost += 1;
        }
        *n += diff;
        if *n <= 0 {
            self.state.remove(&h);
        }
        if let Some(full) = &mut self.rows {
            let n = {
                let e = full.entry(key.clone()).or_insert((row, 0));
                e.1 += diff;
                e.1
            };
            if n <= 0 {
                full.remove(&key);
            }
        }
    }

    /// The views this client holds (sampled clients only).
    pub fn views(&self) -> Option<serde_json::Value> {
        let full = self.rows.as_ref()?;
        let rows: Vec<_> = full
            .values()
            .filter(|(_, n)| *n > 0)
            .flat_map(|(r, n)| std::iter::repeat_n(r, *n as usize))
            .filter_map(from_wire)
            .collect();
        serde_json::to_value(Views::from_rows(rows.iter())).ok()
    }

    /// Heap held by the state (estimate: entries * their size, hash tables at 1.15x).
    pub fn state_bytes(&self) -> usize {
        let mut b = self.state.capacity() * (16 + 1) * 115 / 100;
        if let Some(full) = &self.rows {
            b += full
                .iter()
                .map(|(k, (r, _))| k.len() * 2 + r.view.len() + r.key.len() + 96)
                .sum::<usize>();
        }
        b
    }
}

/// Shared progress counters.
#[derive(Default)]
pub struct Progress {
    /// Each client's last view tick.
    pub ticks: Vec<AtomicU64>,
    /// Clients the server closed (or whose stream ended) before the end.
    pub closed: AtomicUsize,
    /// Clients that received their first snapshot.
    pub ready: AtomicUsize,
    /// Clients that ended (error or close).
    pub ended: AtomicUsize,
    /// ms since `epoch` of the last view message any client got.
    pub activity: AtomicU64,
}

/// Opens `url` with `Authorization: Bearer <token>` (a read-only token, as a dashboard has).
pub async fn connect(
    url: String,
    token: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = url.into_client_request()?;
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        req.headers_mut().insert("authorization", v);
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn client(
    index: usize,
    url: String,
    token: String,
    sample: bool,
    mut stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
    epoch: Instant,
) -> ClientOut {
    let mut out = ClientOut {
        index,
        rows: sample.then(BTreeMap::new),
        ..ClientOut::default()
    };
    let mut ws = match connect(url, &token).await {
        Ok(ws) => ws,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            progress.ended.fetch_add(1, Ordering::Relaxed);
            return out;
        }
    };
    let mut counted = false;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    out.apply(t.as_str(), &progress.activity, epoch);
                    if let Some(slot) = progress.ticks.get(index) {
                        slot.store(out.last_tick, Ordering::Relaxed);
                    }
                    if !counted && out.snapshots > 0 {
                        counted = true;
                        progress.ready.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    out.error.get_or_insert_with(|| format!("server closed the stream: {f:?}"));
                    out.dropped = true;
                    progress.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    out.error.get_or_insert_with(|| format!("read: {e}"));
                    out.dropped = true;
                    break;
                }
                None => {
                    out.error.get_or_insert_with(|| "the stream ended without a close frame".into());
                    out.dropped = true;
                    progress.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            },
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    let _ = ws.close(None).await;
                    break;
                }
            }
        }
    }
    progress.ended.fetch_add(1, Ordering::Relaxed);
    out
}

/// The clients, on their own runtime thread.
pub struct Fleet {
    stop: watch::Sender<bool>,
    pub progress: Arc<Progress>,
    pub epoch: Instant,
    thread: std::thread::JoinHandle<Vec<ClientOut>>,
}

impl Fleet {
    /// Starts `n` clients on `threads` runtime threads (1 = a current-thread runtime); the first
    /// `sample` keep full rows. Connects at most 50 at a time.
    pub fn start(
        n: usize,
        sample: usize,
        threads: usize,
        url: String,
        token: String,
    ) -> std::io::Result<Fleet> {
        let (stop, stop_rx) = watch::channel(false);
        let progress = Arc::new(Progress {
            ticks: (0..n).map(|_| AtomicU64::new(0)).collect(),
            ..Progress::default()
        });
        let epoch = Instant::now();
        let p = progress.clone();
        let rt = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("bench-ws")
                .enable_all()
                .build()?
        };
        let thread = std::thread::Builder::new()
            .name("bench-ws".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut handles = Vec::with_capacity(n);
                    for i in 0..n {
                        // pace the handshakes: at most 50 outstanding
                        while i.saturating_sub(
                            p.ready.load(Ordering::Relaxed) + p.ended.load(Ordering::Relaxed),
                        ) > 50
                        {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        handles.push(tokio::spawn(client(
                            i,
                            url.clone(),
                            token.clone(),
                            i < sample,
                            stop_rx.clone(),
                            p.clone(),
                            epoch,
                        )));
                    }
                    let mut outs = Vec::with_capacity(n);
                    for h in handles {
                        match h.await {
                            Ok(o) => outs.push(o),
                            Err(e) => outs.push(ClientOut {
                                error: Some(format!("task: {e}")),
                                ..ClientOut::default()
                            }),
                        }
                    }
                    outs
                })
            })?;
        Ok(Fleet {
            stop,
            progress,
            epoch,
            thread,
        })
    }

    /// Waits until every client got its snapshot or ended, up to `timeout`.
    pub fn wait_ready(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let done = self.progress.ready.load(Ordering::Relaxed)
                + self.progress.ended.load(Ordering::Relaxed);
            if done >= n {
                return self.progress.ended.load(Ordering::Relaxed) == 0;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Milliseconds since the last view message any client received.
    pub fn quiet_for(&self) -> Duration {
        let last = self.progress.activity.load(Ordering::Relaxed);
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }

    /// How many open clients are behind the newest tick any client holds, and that tick.
    pub fn behind(&self) -> (usize, u64) {
        let ticks: Vec<u64> = self
            .progress
            .ticks
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect();
        let max = ticks.iter().copied().max().unwrap_or(0);
        (ticks.iter().filter(|t| **t < max).count(), max)
    }

    /// Waits until the streams are quiet after the writes stopped: no view message for 1 s, the
    /// server's tick (`views()`: `GET /api/v1/views`) unchanged, and every client at the newest
    /// tick (or 10 s of quiet). Returns the views read then and the seconds it took; gives up
    /// after `timeout` with a warning and returns the last views read (`None` if none could be).
    pub fn settle(
        &self,
        views: &dyn Fn() -> Option<serde_json::Value>,
        timeout: Duration,
    ) -> Option<(serde_json::Value, f64)> {
        let t = Instant::now();
        let mut last_tick = None;
        let mut last_views = None;
        loop {
            if let Some(v) = views() {
                let tick = v["tick"].as_u64();
                let quiet = self.quiet_for();
                let (behind, _) = self.behind();
                let done = quiet >= Duration::from_secs(1)
                    && tick == last_tick
                    && (behind == 0 || quiet >= Duration::from_secs(10));
                if done {
                    return Some((v, t.elapsed().as_secs_f64()));
                }
                last_tick = tick;
                last_views = Some(v);
            }
            if t.elapsed() > timeout {
                eprintln!(
                    "bench: WARNING: streams not settled after {} s; comparing anyway",
                    timeout.as_secs()
                );
                return last_views.map(|v| (v, t.elapsed().as_secs_f64()));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Closes every client and returns what each saw.
    pub fn finish(self) -> Vec<ClientOut> {
        let _ = self.stop.send(true);
        self.thread.join().unwrap_or_default()
    }
}

/// The fleet's verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WsResult {
    pub clients: usize,
    pub runtime_threads: usize,
    pub connect_seconds: f64,
    pub connected: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub snapshots: u64,
    /// Snapshots after each client's first.
    pub resyncs: u64,
    pub clients_resynced: usize,
    /// `lpm_ws_resyncs_total` (server side, lagged clients).
    pub server_resyncs: f64,
    pub diff_messages: u64,
    pub row_changes: u64,
    pub mbytes_received: f64,
    pub lost: u64,
    pub out_of_order: u64,
    pub sampled: usize,
    pub sampled_exact: usize,
    /// Clients whose rows equal the exactly-checked reference client's.
    pub fingerprint_equal: usize,
    pub mismatched: Vec<usize>,
    pub last_tick_min: u64,
    pub last_tick_max: u64,
    pub views_tick: u64,
    pub settle_seconds: f64,
    /// Estimated heap of all the clients' row state (it is in this process's RSS).
    pub client_state_mib: f64,
}

/// Compares every client with `views` (the `views` member of `GET /api/v1/views`).
pub fn verdict(outs: &[ClientOut], views: &serde_json::Value) -> WsResult {
    let mut r = WsResult {
        clients: outs.len(),
        ..WsResult::default()
    };
    let mut reference: Option<&HashMap<u64, i64>> = None;
    for o in outs {
        if let Some(e) = &o.error {
            r.errors += 1;
            r.first_error.get_or_insert_with(|| {
                format!("client {}: {e} (at tick {})", o.index, o.last_tick)
            });
        }
        if o.snapshots > 0 {
            r.connected += 1;
        }
        r.snapshots += o.snapshots;
        r.resyncs += o.snapshots.saturating_sub(1);
        if o.snapshots > 1 {
            r.clients_resynced += 1;
        }
        r.diff_messages += o.diffs;
        r.row_changes += o.changes;
        r.mbytes_received += o.bytes as f64 / 1e6;
        r.lost += o.lost;
        r.out_of_order += o.out_of_order;
        r.client_state_mib += o.state_bytes() as f64 / (1024.0 * 1024.0);
        if let Some(v) = o.views() {
            r.sampled += 1;
            if &v == views {
                r.sampled_exact += 1;
                reference.get_or_insert(&o.state);
            } else {
                r.mismatched.push(o.index);
            }
        }
    }
    r.last_tick_min = outs.iter().map(|o| o.last_tick).min().unwrap_or(0);
    r.last_tick_max = outs.iter().map(|o| o.last_tick).max().unwrap_or(0);
    if let Some(reference) = reference {
        for o in outs.iter().filter(|o| o.rows.is_none()) {
            if &o.state == reference {
                r.fingerprint_equal += 1;
            } else {
                r.mismatched.push(o.index);
            }
        }
        r.fingerprint_equal += r.sampled_exact;
    }
    r
}
