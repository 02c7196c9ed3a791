//! Capture benchmark: `cargo bench -p lpm-benches --bench capture`.
//!
//! `lpm_connectors::capture` against the binlog-enabled MariaDB of the capture tests
//! (`LPM_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3307`; `bash scripts/mariadb.sh start`).
//! Every measurement works on a fresh database `lpm_bench_capture` (dropped and created from
//! `connectors/data/schema.sql`); each capture has its own replica `server_id` (5817901..).
//! Every run (`LPM_BENCH_CAPTURE_RUNS`, default 3) does, in order:
//!
//! 1. **Throughput**: `LPM_BENCH_CAPTURE_ROWS` (default 100000) rows into `persons_lost`
//!    (accented names and places, decimals, NULLs, quotes in descriptions), written on one
//!    connection as autocommit INSERTs of 1000 rows each (statements built before timing).
//!    - *live*: a capture into a [`FileSink`] (fsync per batch) snapshots the empty database,
//!      then streams while the writer writes. Writer rows/s = rows / writer time; capture
//!      rows/s = rows / (first INSERT sent -> the sink has stored the last row).
//!    - *from the binlog*, no writer: captures with `stop_at_end` whose sink starts at the
//!      binlog position taken (`SHOW MASTER STATUS`) before the writes, one into a counting
//!      sink (stores nothing), one into a fresh [`FileSink`]. Rows/s = rows / `capture::run`
//!      time (connect, preflight and the dump request included).
//!    - *baseline*: `mariadb-binlog --read-from-remote-server --base64-output=decode-rows
//!      --verbose` (MariaDB's C client) over the same range to /dev/null, timed the same way.
//!      In the first run it also runs once untimed with its output counted (the rows it
//!      decoded). A missing `mariadb-binlog` is reported in the table.
//! 2. **Commit -> stored / visible latency**: `LPM_BENCH_CAPTURE_COMMITS` (default 1000)
//!    single-row autocommit INSERTs scheduled 2 ms apart (after one unmeasured warm-up insert),
//!    each timed from its commit OK at the client:
//!    - library capture: -> the record is stored in a counting sink (the capture's own delay);
//!    - `lpm serve --capture URL --database lpm_bench_capture --workers 2`, the release `lpm`
//!      binary in its own process (`${CARGO_TARGET_DIR:-target}/release/lpm`, built with
//!      `cargo build --release --bin lpm` when missing; `LPM_BENCH_BIN` overrides): -> the
//!      WebSocket `/api/v1/stream?topics=views` diff that raises `row_counts/persons_lost` to
//!      include it arrives at a client (a read-only token from `lpm token create`).
//!
//! A record can be stored before its commit's OK reaches the client (the server sends the
//! binlog to replicas before it answers the client); such samples are negative and counted.
//!
//! Output: a `## capture` section replaced in (or appended to) `target/bench-results.md`, and
//! stdout. Medians over the runs; no timing assertions. The database and the scratch files
//! (`target/bench-data/capture/`) are removed at the end.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod lpm_process;
mod machine;
mod report;
mod serve_http;
use lpm_process::LpmProcess;
use machine::{cpu_model, load_average};
use report::{cores, cpu_seconds, env_usize, f2, median, replace_section, workspace_and_target};

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::capture::{
    self, Batch, BatchKind, BinlogPosition, CaptureConfig, CaptureSink, CaptureStats, FileSink,
    SinkError, Stored,
};
use lpm_engine::rng::SplitMix64;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use parking_lot::Mutex;
use tokio::runtime::Runtime;

const DB: &str = "lpm_bench_capture";
const SCHEMA: &str = include_str!("../../connectors/data/schema.sql");
/// Rows per INSERT statement in the throughput phase.
const ROWS_PER_INSERT: usize = 1000;
/// Spacing of the latency phase's commits.
const COMMIT_EVERY: Duration = Duration::from_millis(2);
const INSERT_COLUMNS: &str = "full_name, age, gender, last_seen_at, reported_at, last_seen_place, \
     latitude, longitude, description, reporter_name, reporter_phone";
const ADMIN: &str = "bench-admin";
const ADMIN_PASSWORD: &str = "bench-admin-password";

/// Replica server ids, one per capture that can run at once (the server's own id is 1).
const ID_LIVE: u32 = 5_817_901;
const ID_REPLAY: u32 = 5_817_902;
const ID_REPLAY_FILE: u32 = 5_817_903;
const ID_LATENCY: u32 = 5_817_904;
const ID_SERVE: u32 = 5_817_905;

fn log(started: Instant, what: &str) {
    eprintln!(
        "bench capture [{:>6.1}s] {what}",
        started.elapsed().as_secs_f64()
    );
}

fn current_rt() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Milliseconds from `a` to `b`, negative when `b` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    match b.checked_duration_since(a) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(a.duration_since(b).as_secs_f64() * 1000.0),
    }
}

// ---------------------------------------------------------------------------------------------
// sinks

/// What a [`Probe`] saw, shared with the measuring thread.
#[derive(Default)]
struct Tally {
    /// Streamed records stored so far.
    records: AtomicU64,
    /// After each streamed batch: (streamed records stored in all, when the sink returned).
    batches: Mutex<Vec<(u64, Instant)>>,
    /// The snapshot's last chunk is stored (streaming starts next).
    snapshot_done: AtomicBool,
}

impl Tally {
    fn records(&self) -> u64 {
        self.records.load(Ordering::Acquire)
    }

    /// When the `n`-th streamed record (1-based) was stored.
    fn stored_at(&self, n: u64) -> Option<Instant> {
        let b = self.batches.lock();
        let i = b.partition_point(|(c, _)| *c < n);
        b.get(i).map(|(_, t)| *t)
    }
}

/// Stores nothing: counts, and remembers the position of the last batch (to resume from).
#[derive(Default)]
struct NullSink {
    position: Option<BinlogPosition>,
}

impl CaptureSink for NullSink {
    fn stored(&self) -> Option<Stored> {
        self.position.clone().map(|position| Stored { position })
    }

    fn begin_snapshot(&mut self) -> Result<(), SinkError> {
        self.position = None;
        Ok(())
    }

    fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        if !matches!(batch.kind, BatchKind::Snapshot { last: false }) {
            self.position = Some(batch.position);
        }
        Ok(())
    }
}

/// Wraps a sink: notes when each streamed batch was stored, and (with `from`) makes a sink with
/// nothing stored start streaming at `from` instead of taking a snapshot.
struct Probe<S> {
    inner: S,
    from: Option<BinlogPosition>,
    tally: Arc<Tally>,
    streamed: u64,
}

impl<S: CaptureSink> Probe<S> {
    fn new(inner: S, from: Option<BinlogPosition>, tally: Arc<Tally>) -> Probe<S> {
        Probe {
            inner,
            from,
            tally,
            streamed: 0,
        }
    }
}

impl<S: CaptureSink> CaptureSink for Probe<S> {
    fn stored(&self) -> Option<Stored> {
        self.inner
            .stored()
            .or_else(|| self.from.clone().map(|position| Stored { position }))
    }

    fn begin_snapshot(&mut self) -> Result<(), SinkError> {
        self.inner.begin_snapshot()
    }

    fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        let (kind, n) = (batch.kind, batch.records.len() as u64);
        self.inner.write(batch)?;
        let now = Instant::now();
        match kind {
            BatchKind::Stream => {
                self.streamed += n;
                self.tally.batches.lock().push((self.streamed, now));
                self.tally.records.store(self.streamed, Ordering::Release);
            }
            BatchKind::Snapshot { last: true } => {
                self.tally.snapshot_done.store(true, Ordering::Release);
            }
            BatchKind::Snapshot { last: false } => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// captures

/// A thread that runs until told to stop (or fails).
struct Worker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    name: &'static str,
}

impl Worker {
    fn spawn(
        name: &'static str,
        body: impl FnOnce(tokio::sync::oneshot::Receiver<()>) -> Result<(), String> + Send + 'static,
    ) -> Result<Worker, String> {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("bench-{name}"))
            .spawn(move || body(stop_rx))
            .map_err(|e| format!("{name} thread: {e}"))?;
        Ok(Worker {
            stop: Some(stop),
            thread: Some(thread),
            name,
        })
    }

    /// Why the thread ended early, if it did.
    fn ended(&mut self) -> Option<String> {
        if !self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            return None;
        }
        let name = self.name;
        Some(match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(()))) => format!("the {name} stopped early"),
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => format!("the {name} thread panicked"),
            None => format!("the {name} is gone"),
        })
    }

    /// Polls `done` every millisecond until it holds, the thread ends, or `timeout`.
    fn wait(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if done() {
                return Ok(());
            }
            if let Some(e) = self.ended() {
                return Err(format!("waiting for {what}: {e}"));
            }
            if t.elapsed() > timeout {
                return Err(format!("waiting for {what}: nothing after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop(mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(format!("the {} thread panicked", self.name)),
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A capture following the binlog on its own thread (as `lpm capture`: a current-thread
/// runtime).
struct Running {
    worker: Worker,
    stats: Arc<CaptureStats>,
}

impl Running {
    fn start(cfg: CaptureConfig, mut sink: Box<dyn CaptureSink>) -> Result<Running, String> {
        let stats = Arc::new(CaptureStats::default());
        let st = stats.clone();
        let worker = Worker::spawn("capture", move |stop| {
            let rt = current_rt()?;
            rt.block_on(capture::run(&cfg, sink.as_mut(), st, async move {
                let _ = stop.await;
            }))
            .map_err(|e| format!("capture: {e}"))
        })?;
        Ok(Running { worker, stats })
    }

    fn wait(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl FnMut() -> bool,
    ) -> Result<(), String> {
        self.worker.wait(what, timeout, done)
    }

    /// Waits until the snapshot is stored and the binlog stream is open.
    fn wait_streaming(&mut self, tally: &Tally) -> Result<(), String> {
        let stats = self.stats.clone();
        self.wait(
            "the snapshot and the stream",
            Duration::from_secs(60),
            || tally.snapshot_done.load(Ordering::Acquire) && stats.snapshot().events > 0,
        )
    }

    fn stop(self) -> Result<(), String> {
        self.worker.stop()
    }
}

/// Runs a `stop_at_end` capture on this thread: (wall seconds, process CPU seconds).
fn capture_to_end(cfg: &CaptureConfig, sink: &mut dyn CaptureSink) -> Result<(f64, f64), String> {
    let rt = current_rt()?;
    let stats = Arc::new(CaptureStats::default());
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    rt.block_on(capture::run(cfg, sink, stats, std::future::pending::<()>()))
        .map_err(|e| format!("capture: {e}"))?;
    Ok((t.elapsed().as_secs_f64(), cpu_seconds() - cpu0))
}

fn capture_config(url: &str, server_id: u32) -> CaptureConfig {
    CaptureConfig {
        url: url.to_string(),
        server_id,
        databases: vec![DB.to_string()],
        ..CaptureConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// SQL

async fn connect(url: &str) -> Result<Conn, String> {
    let opts = Opts::from_url(url).map_err(|e| format!("{url}: {e}"))?;
    Conn::new(opts).await.map_err(|e| {
        format!("connecting to {url}: {e} (start it with `bash scripts/mariadb.sh start`)")
    })
}

async fn exec(conn: &mut Conn, sql: &str) -> Result<(), String> {
    conn.query_drop(sql).await.map_err(|e| {
        let head: String = sql.chars().take(80).collect();
        format!("{head}...: {e}")
    })
}

/// `connectors/data/schema.sql` as statements (comments removed).
fn schema_statements() -> Vec<String> {
    let text: String = SCHEMA
        .lines()
        .map(|l| l.find("--").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Drops and creates the bench database with the schema; the connection uses it afterwards.
async fn reset_db(conn: &mut Conn) -> Result<(), String> {
    exec(conn, &format!("DROP DATABASE IF EXISTS `{DB}`")).await?;
    exec(
        conn,
        &format!("CREATE DATABASE `{DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    )
    .await?;
    exec(conn, &format!("USE `{DB}`")).await?;
    for stmt in schema_statements() {
        exec(conn, &stmt).await?;
    }
    Ok(())
}

async fn master_status(conn: &mut Conn) -> Result<BinlogPosition, String> {
    let row: Option<mysql_async::Row> = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .map_err(|e| format!("SHOW MASTER STATUS: {e}"))?;
    let row = row.ok_or("SHOW MASTER STATUS is empty: binary logging is off")?;
    Ok(BinlogPosition {
        file: row
            .get::<String, _>(0)
            .ok_or("SHOW MASTER STATUS: no file")?,
        pos: row
            .get::<u64, _>(1)
            .ok_or("SHOW MASTER STATUS: no position")?,
        gtid: None,
    })
}

/// The binlog files from `from`'s to `to`'s, and the bytes between the two positions.
async fn binlog_range(
    conn: &mut Conn,
    from: &BinlogPosition,
    to: &BinlogPosition,
) -> Result<(Vec<String>, u64), String> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| format!("SHOW BINARY LOGS: {e}"))?;
    let logs: Vec<(String, u64)> = rows
        .iter()
        .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
        .collect();
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut inside = false;
    for (name, size) in logs {
        inside |= name == from.file;
        if !inside {
            continue;
        }
        let start = if name == from.file { from.pos } else { 4 };
        let end = if name == to.file { to.pos } else { size };
        bytes += end.saturating_sub(start);
        let last = name == to.file;
        files.push(name);
        if last {
            break;
        }
    }
    if files.is_empty() {
        return Err(format!("{} is not among the server's binlogs", from.file));
    }
    Ok((files, bytes))
}

// ---------------------------------------------------------------------------------------------
// the rows

/// Deterministic `persons_lost` rows (the workspace's one generator, `lpm_engine::rng`).
struct Gen {
    rng: SplitMix64,
}

const FIRST: [&str; 16] = [
    "José",
    "María",
    "Andrés",
    "Sofía",
    "Nicolás",
    "Camila",
    "Ángel",
    "Lucía",
    "Martín",
    "Valentina",
    "Iñaki",
    "Zoë",
    "Jesús",
    "Mónica",
    "Raúl",
    "Dolores",
];
const LAST: [&str; 14] = [
    "Pérez",
    "Muñoz",
    "González",
    "Rodríguez",
    "Núñez",
    "Peña",
    "Quiñónez",
    "Cárdenas",
    "Ibáñez",
    "D'Alessandro",
    "Guamán",
    "Chávez",
    "Yánez",
    "O'Brien",
];
const PLACES: [(&str, f64, f64); 10] = [
    ("Quito, Pichincha — parque El Ejido", -0.2105, -78.4993),
    ("Guayaquil, Guayas (Malecón 2000)", -2.1894, -79.8891),
    ("Cuenca, Azuay", -2.9001, -79.0059),
    ("Loja", -3.9931, -79.2042),
    ("Ambato, Tungurahua", -1.2491, -78.6167),
    ("Puerto Baquerizo Moreno, Galápagos", -0.9017, -89.6103),
    ("Riobamba, Chimborazo", -1.6636, -78.6546),
    ("Ibarra, Imbabura", 0.3517, -78.1223),
    ("Santo Domingo de los Tsáchilas", -0.2531, -79.1754),
    ("Baños de Agua Santa; terminal terrestre", -1.3964, -78.4247),
];
const DESCRIPTIONS: [&str; 6] = [
    "Vestía chaqueta azul y zapatos café; fue visto por última vez cerca del mercado.",
    "Salió de casa a las 7h00 rumbo al colegio y no regresó. Lleva mochila roja.",
    "Padece de Alzheimer; responde al nombre de \"Don Lucho\".",
    "Persona con discapacidad auditiva, 1,65 m, cabello castaño, cicatriz en la ceja izquierda.",
    "Última comunicación por WhatsApp: 'ya llego, mami'. Teléfono apagado desde entonces.",
    "Se dirigía a Baños en bus interprovincial (cooperativa Amazonas) — asiento 14\\B.",
];
const GENDERS: [&str; 8] = [
    "female", "male", "female", "male", "female", "male", "other", "unknown",
];

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: SplitMix64::new(seed),
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        self.rng.pick(xs)
    }

    /// Appends one `(…)` tuple of `persons_lost` values.
    fn row(&mut self, out: &mut String) {
        // 2026-11-01 00:00 UTC, minus up to 60 days
        let seen_ms =
            1_793_491_200_000 - (self.below(60 * 24 * 3600) * 1000 + self.below(1000)) as i64;
        let reported_ms = seen_ms + (self.below(72 * 3600) * 1000) as i64;
        let name = format!(
            "{} {} {}",
            self.pick(&FIRST),
            self.pick(&LAST),
            self.pick(&LAST)
        );
        let &(place, lat, lon) = self.pick(&PLACES);
        out.push('(');
        quoted(out, &name);
        out.push(',');
        if self.chance(10) {
            out.push_str("NULL");
        } else {
            let _ = write!(out, "{}", self.below(96));
        }
        out.push(',');
        let gender = *self.pick(&GENDERS);
        quoted(out, gender);
        out.push(',');
        quoted(out, &datetime(seen_ms));
        out.push(',');
        quoted(out, &datetime(reported_ms));
        out.push(',');
        quoted(out, place);
        if self.chance(15) {
            out.push_str(",NULL,NULL");
        } else {
            let jitter = |g: &mut Gen| (g.below(20_000) as f64 - 10_000.0) / 1_000_000.0;
            let (la, lo) = (lat + jitter(self), lon + jitter(self));
            let _ = write!(out, ",{la:.6},{lo:.6}");
        }
        out.push(',');
        if self.chance(30) {
            out.push_str("NULL");
        } else {
            let d = format!(
                "{} (ref. #{})",
                self.pick(&DESCRIPTIONS),
                self.below(100_000)
            );
            quoted(out, &d);
        }
        out.push(',');
        if self.chance(20) {
            out.push_str("NULL");
        } else {
            let r = format!("{} {}", self.pick(&FIRST), self.pick(&LAST));
            quoted(out, &r);
        }
        out.push(',');
        if self.chance(25) {
            out.push_str("NULL");
        } else {
            let p = format!("+593 9{:08}", self.below(100_000_000));
            quoted(out, &p);
        }
        out.push(')');
    }

    /// An `INSERT` of `n` rows.
    fn insert(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n * 420 + 200);
        let _ = write!(s, "INSERT INTO persons_lost ({INSERT_COLUMNS}) VALUES ");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            self.row(&mut s);
        }
        s
    }
}

/// A SQL string literal.
fn quoted(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "2026-11-01 00:00:00.000".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// 1. throughput

/// One throughput run.
#[derive(Clone, Debug)]
struct ThroughputRun {
    rows: u64,
    writer_secs: f64,
    /// First INSERT sent -> the FileSink stored the last row.
    live_secs: f64,
    /// Last INSERT answered -> the FileSink stored the last row.
    live_lag_ms: f64,
    replay_secs: f64,
    replay_cpu: f64,
    replay_file_secs: f64,
    replay_file_cpu: f64,
    baseline: Result<f64, String>,
    /// Rows the untimed, counted `mariadb-binlog` run decoded (first run only).
    baseline_rows: Option<Result<u64, String>>,
    binlog_bytes: u64,
    dump_bytes: u64,
}

fn dump_path(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    remove_dump(&path);
    path
}

fn remove_dump(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".offsets.json");
    let _ = std::fs::remove_file(path.with_file_name(name));
}

fn open_file_sink(path: &Path) -> Result<FileSink, String> {
    FileSink::open(path, 1).map_err(|e| format!("{}: {e}", path.display()))
}

fn check_count(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got} records stored, {want} rows written"))
    }
}

fn throughput_run(
    rt: &Runtime,
    k: &Knobs,
    run: usize,
    started: Instant,
) -> Result<ThroughputRun, String> {
    let mut res = ThroughputRun {
        rows: k.rows as u64,
        writer_secs: 0.0,
        live_secs: 0.0,
        live_lag_ms: 0.0,
        replay_secs: 0.0,
        replay_cpu: 0.0,
        replay_file_secs: 0.0,
        replay_file_cpu: 0.0,
        baseline: Err("not run".into()),
        baseline_rows: None,
        binlog_bytes: 0,
        dump_bytes: 0,
    };
    let mut conn = rt.block_on(connect(&k.url))?;
    rt.block_on(reset_db(&mut conn))?;
    let mut gen = Gen::new(0x5eed_0000 + run as u64);
    let mut statements = Vec::new();
    let mut left = k.rows;
    while left > 0 {
        let n = left.min(ROWS_PER_INSERT);
        statements.push(gen.insert(n));
        left -= n;
    }
    let before = rt.block_on(master_status(&mut conn))?;

    // a. live
    let live_dump = dump_path(&k.dir, "live.jsonl");
    let tally = Arc::new(Tally::default());
    let sink = Probe::new(open_file_sink(&live_dump)?, None, tally.clone());
    let mut running = Running::start(capture_config(&k.url, ID_LIVE), Box::new(sink))?;
    running.wait_streaming(&tally)?;
    log(
        started,
        &format!(
            "run {}: writing {} rows in {} INSERTs, capture following",
            run + 1,
            k.rows,
            statements.len()
        ),
    );
    let t0 = Instant::now();
    for s in &statements {
        rt.block_on(exec(&mut conn, s))?;
    }
    let written = Instant::now();
    let rows = k.rows as u64;
    running.wait("the live capture", Duration::from_secs(600), || {
        tally.records() >= rows
    })?;
    running.stop()?;
    check_count("live capture", tally.records(), rows)?;
    let last = tally
        .stored_at(rows)
        .ok_or("no batch stored the last row")?;
    res.writer_secs = (written - t0).as_secs_f64();
    res.live_secs = (last - t0).as_secs_f64();
    res.live_lag_ms = signed_ms(written, last);
    res.dump_bytes = std::fs::metadata(&live_dump).map_or(0, |m| m.len());
    remove_dump(&live_dump);
    let after = rt.block_on(master_status(&mut conn))?;
    let (files, bytes) = rt.block_on(binlog_range(&mut conn, &before, &after))?;
    res.binlog_bytes = bytes;
    drop(rt.block_on(conn.disconnect()));
    log(
        started,
        &format!(
            "  writer {:.0} rows/s; live capture {:.0} rows/s (last row stored {:.0} ms after the last INSERT); binlog {:.1} MiB",
            rows as f64 / res.writer_secs,
            rows as f64 / res.live_secs,
            res.live_lag_ms,
            bytes as f64 / (1024.0 * 1024.0)
        ),
    );

    // b. from the binlog: counting sink, then FileSink
    let mut cfg = capture_config(&k.url, ID_REPLAY);
    cfg.stop_at_end = true;
    let tally = Arc::new(Tally::default());
    let mut sink = Probe::new(NullSink::default(), Some(before.clone()), tally.clone());
    (res.replay_secs, res.replay_cpu) = capture_to_end(&cfg, &mut sink)?;
    check_count("binlog -> counting sink", tally.records(), rows)?;
    cfg.server_id = ID_REPLAY_FILE;
    let file_dump = dump_path(&k.dir, "replay.jsonl");
    let tally = Arc::new(Tally::default());
    let mut sink = Probe::new(
        open_file_sink(&file_dump)?,
        Some(before.clone()),
        tally.clone(),
    );
    (res.replay_file_secs, res.replay_file_cpu) = capture_to_end(&cfg, &mut sink)?;
    drop(sink);
    remove_dump(&file_dump);
    check_count("binlog -> FileSink", tally.records(), rows)?;
    log(
        started,
        &format!(
            "  from the binlog: counting sink {:.0} rows/s ({:.2} s CPU), FileSink {:.0} rows/s",
            rows as f64 / res.replay_secs,
            res.replay_cpu,
            rows as f64 / res.replay_file_secs
        ),
    );

    // c. mariadb-binlog
    res.baseline = mariadb_binlog(&k.url, &files, &before, &after, false).map(|(s, _)| s);
    if run == 0 && res.baseline.is_ok() {
        res.baseline_rows = Some(
            mariadb_binlog(&k.url, &files, &before, &after, true)
                .and_then(|(_, n)| n.ok_or_else(|| "not counted".to_string())),
        );
    }
    match &res.baseline {
        Ok(s) => log(
            started,
            &format!("  mariadb-binlog {:.0} rows/s", rows as f64 / s),
        ),
        Err(e) => log(started, &format!("  mariadb-binlog: {e}")),
    }
    Ok(res)
}

/// `mariadb-binlog` over `from..to`: wall seconds, and with `count` the decoded `persons_lost`
/// inserts (its output is read instead of going to /dev/null).
fn mariadb_binlog(
    url: &str,
    files: &[String],
    from: &BinlogPosition,
    to: &BinlogPosition,
    count: bool,
) -> Result<(f64, Option<u64>), String> {
    let opts = Opts::from_url(url).map_err(|e| format!("{url}: {e}"))?;
    let mut cmd = Command::new("mariadb-binlog");
    cmd.arg("--no-defaults")
        .arg("--read-from-remote-server")
        .arg("--protocol=tcp")
        .arg(format!("--host={}", opts.ip_or_hostname()))
        .arg(format!("--port={}", opts.tcp_port()))
        .arg(format!("--user={}", opts.user().unwrap_or("root")))
        .arg("--base64-output=decode-rows")
        .arg("--verbose")
        .arg(format!("--start-position={}", from.pos))
        .arg(format!("--stop-position={}", to.pos));
    if let Some(p) = opts.pass() {
        cmd.arg(format!("--password={p}"));
    }
    cmd.args(files)
        .stdin(Stdio::null())
        .stdout(if count { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "`mariadb-binlog` is not installed (package mariadb-client); no baseline".to_string()
        } else {
            format!("starting mariadb-binlog: {e}")
        }
    })?;
    let counted = child.stdout.take().map(|out| {
        let prefix = format!("### INSERT INTO `{DB}`.`persons_lost`");
        BufReader::new(out)
            .split(b'\n')
            .map_while(Result::ok)
            .filter(|l| l.starts_with(prefix.as_bytes()))
            .count() as u64
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("mariadb-binlog: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "mariadb-binlog exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((secs, counted))
}

// ---------------------------------------------------------------------------------------------
// 2. latency

/// Latency percentiles of one run, in ms.
#[derive(Clone, Debug, Default)]
struct Lat {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
    min: f64,
    /// Samples below zero (stored before the client had its OK).
    negative: usize,
    /// Commits per second achieved by the paced writer.
    rate: f64,
}

/// p50/p99 from an HdrHistogram ([`report::Quantiles`]); `min`, `max` and the negatives exact.
fn percentiles(v: Vec<f64>, rate: f64) -> Lat {
    let q = report::Quantiles::of(&v);
    let at = |p: f64| q.as_ref().map_or(f64::NAN, |q| q.at(p));
    let finite = || v.iter().copied().filter(|x| x.is_finite());
    Lat {
        n: q.as_ref().map_or(0, report::Quantiles::len),
        p50: at(0.50),
        p99: at(0.99),
        max: finite().max_by(f64::total_cmp).unwrap_or(f64::NAN),
        min: finite().min_by(f64::total_cmp).unwrap_or(f64::NAN),
        negative: v.iter().filter(|x| **x < 0.0).count(),
        rate,
    }
}

/// Single-row INSERTs (the first is the warm-up).
fn single_inserts(n: usize, seed: u64) -> Vec<String> {
    let mut gen = Gen::new(seed);
    (0..n).map(|_| gen.insert(1)).collect()
}

/// Sends `statements` scheduled `COMMIT_EVERY` apart: each one's commit OK instant, and the
/// commits per second achieved.
fn paced_commits(
    rt: &Runtime,
    conn: &mut Conn,
    statements: &[String],
) -> Result<(Vec<Instant>, f64), String> {
    rt.block_on(async {
        let mut oks = Vec::with_capacity(statements.len());
        let t0 = Instant::now();
        for (i, s) in statements.iter().enumerate() {
            let due = t0 + COMMIT_EVERY * i as u32;
            tokio::time::sleep_until(due.into()).await;
            exec(conn, s).await?;
            oks.push(Instant::now());
        }
        let rate = statements.len() as f64 / t0.elapsed().as_secs_f64();
        Ok((oks, rate))
    })
}

/// Commit OK -> stored in a counting sink, library capture only.
fn latency_library(rt: &Runtime, k: &Knobs, run: usize) -> Result<Lat, String> {
    let mut conn = rt.block_on(connect(&k.url))?;
    rt.block_on(reset_db(&mut conn))?;
    let statements = single_inserts(k.commits + 1, 0x1a7e_0000 + run as u64);
    let tally = Arc::new(Tally::default());
    let sink = Probe::new(NullSink::default(), None, tally.clone());
    let mut running = Running::start(capture_config(&k.url, ID_LATENCY), Box::new(sink))?;
    running.wait_streaming(&tally)?;
    rt.block_on(exec(&mut conn, &statements[0]))?;
    running.wait("the warm-up insert", Duration::from_secs(30), || {
        tally.records() >= 1
    })?;
    let (oks, rate) = paced_commits(rt, &mut conn, &statements[1..])?;
    let want = 1 + oks.len() as u64;
    running.wait("the last commit", Duration::from_secs(60), || {
        tally.records() >= want
    })?;
    running.stop()?;
    drop(rt.block_on(conn.disconnect()));
    check_count("latency capture", tally.records(), want)?;
    let mut samples = Vec::with_capacity(oks.len());
    for (i, ok) in oks.iter().enumerate() {
        let stored = tally
            .stored_at(i as u64 + 2)
            .ok_or_else(|| format!("commit {i} was never stored"))?;
        samples.push(signed_ms(*ok, stored));
    }
    Ok(percentiles(samples, rate))
}

// ---------------------------------------------------------------------------------------------
// the report

/// The knobs.
struct Knobs {
    url: String,
    runs: usize,
    rows: usize,
    commits: usize,
    /// Scratch directory for dumps and the server's data.
    dir: PathBuf,
}

/// What the whole bench measured.
#[derive(Default)]
struct Results {
    server_version: String,
    throughput: Vec<ThroughputRun>,
    library: Vec<Lat>,
    serve: Vec<Lat>,
    errors: Vec<String>,
}

fn main() {
    let started = Instant::now();
    let load_start = load_average();
    let (_, target) = workspace_and_target();
    let k = Knobs {
        url: std::env::var("LPM_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".into()),
        runs: env_usize("LPM_BENCH_CAPTURE_RUNS", 3).max(1),
        rows: env_usize("LPM_BENCH_CAPTURE_ROWS", 100_000).max(1),
        commits: env_usize("LPM_BENCH_CAPTURE_COMMITS", 1000).max(1),
        dir: target.join("bench-data").join("capture"),
    };
    let results = run_all(&k, started);
    let report = render(&k, &results, &load_start, started.elapsed());
    println!("{report}");
    let path = target.join("bench-results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    match std::fs::write(&path, replace_section(&old, "capture", &report)) {
        Ok(()) => eprintln!("bench: wrote the ## capture section of {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
    if !results.errors.is_empty() {
        std::process::exit(1);
    }
}

fn run_all(k: &Knobs, started: Instant) -> Results {
    let mut res = Results::default();
    let rt = match current_rt() {
        Ok(rt) => rt,
        Err(e) => {
            res.errors.push(e);
            return res;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&k.dir) {
        res.errors
            .push(format!("creating {}: {e}", k.dir.display()));
        return res;
    }
    match rt.block_on(async {
        let mut c = connect(&k.url).await?;
        let v: Option<String> = c
            .query_first("SELECT @@version")
            .await
            .map_err(|e| e.to_string())?;
        let _ = c.disconnect().await;
        Ok::<_, String>(v.unwrap_or_default())
    }) {
        Ok(v) => res.server_version = v,
        Err(e) => {
            res.errors.push(e);
            return res;
        }
    }
    for run in 0..k.runs {
        match throughput_run(&rt, k, run, started) {
            Ok(r) => res.throughput.push(r),
            Err(e) => {
                log(started, &format!("run {}: throughput: ERROR: {e}", run + 1));
                res.errors.push(format!("run {}: throughput: {e}", run + 1));
            }
        }
        log(
            started,
            &format!(
                "run {}: {} commits {} ms apart, library capture",
                run + 1,
                k.commits,
                COMMIT_EVERY.as_millis()
            ),
        );
        match latency_library(&rt, k, run) {
            Ok(l) => {
                log(
                    started,
                    &format!(
                        "  commit -> stored: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        l.p50, l.p99, l.max
                    ),
                );
                res.library.push(l);
            }
            Err(e) => {
                log(started, &format!("run {}: latency: ERROR: {e}", run + 1));
                res.errors
                    .push(format!("run {}: library latency: {e}", run + 1));
            }
        }
        log(
            started,
            &format!(
                "run {}: {} commits, lpm serve --capture",
                run + 1,
                k.commits
            ),
        );
        match serve::latency(&rt, k, run) {
            Ok(l) => {
                log(
                    started,
                    &format!(
                        "  commit -> views diff: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        l.p50, l.p99, l.max
                    ),
                );
                res.serve.push(l);
            }
            Err(e) => {
                log(
                    started,
                    &format!("run {}: serve latency: ERROR: {e}", run + 1),
                );
                res.errors
                    .push(format!("run {}: serve latency: {e}", run + 1));
            }
        }
    }
    // leave nothing behind
    let _ = rt.block_on(async {
        let mut c = connect(&k.url).await?;
        exec(&mut c, &format!("DROP DATABASE IF EXISTS `{DB}`")).await?;
        let _ = c.disconnect().await;
        Ok::<_, String>(())
    });
    let _ = std::fs::remove_dir_all(&k.dir);
    res
}

fn thousands(n: f64) -> String {
    if !n.is_finite() {
        return "—".into();
    }
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn label(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

/// Median rows/s of `secs` over the runs.
fn rate_of(runs: &[ThroughputRun], secs: impl Fn(&ThroughputRun) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| secs(r).filter(|s| *s > 0.0).map(|s| r.rows as f64 / s))
        .collect();
    median(&v)
}

/// Each run's rows/s, for the spread.
fn per_run(runs: &[ThroughputRun], secs: impl Fn(&ThroughputRun) -> Option<f64>) -> String {
    runs.iter()
        .map(|r| secs(r).map_or("—".into(), |s| thousands(r.rows as f64 / s)))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn lat_row(s: &mut String, what: &str, lats: &[Lat]) {
    let m = |f: fn(&Lat) -> f64| median(&lats.iter().map(f).collect::<Vec<_>>());
    let cell = |x: Option<f64>| x.map_or("—".into(), f2);
    let negative: usize = lats.iter().map(|l| l.negative).sum();
    let n: usize = lats.iter().map(|l| l.n).sum();
    let _ = writeln!(
        s,
        "| {what} | {} | {} | {} | {} | {} of {} | {} |",
        cell(m(|l| l.p50)),
        cell(m(|l| l.p99)),
        cell(m(|l| l.max)),
        cell(m(|l| l.min)),
        negative,
        n,
        m(|l| l.rate).map_or("—".into(), |r| format!("{r:.0}")),
    );
}

fn render(k: &Knobs, r: &Results, load_start: &str, elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## capture\n");
    let _ = writeln!(
        s,
        "`cargo bench -p lpm-benches --bench capture` ({}): `lpm_connectors::capture` against MariaDB {} at {} (ROW, FULL image and metadata, `sync_binlog=0`, `innodb_flush_log_at_trx_commit=1`), a fresh database per measurement, everything on the same cores. {} run(s); medians over the runs.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        if r.server_version.is_empty() { "?" } else { &r.server_version },
        Opts::from_url(&k.url).map_or_else(|_| k.url.clone(), |o| format!("{}:{}", o.ip_or_hostname(), o.tcp_port())),
        k.runs,
    );
    let t = &r.throughput;
    if !t.is_empty() {
        let base = rate_of(t, |x| x.baseline.as_ref().ok().copied());
        let writer = rate_of(t, |x| Some(x.writer_secs));
        let live = rate_of(t, |x| Some(x.live_secs));
        let replay = rate_of(t, |x| Some(x.replay_secs));
        let replay_file = rate_of(t, |x| Some(x.replay_file_secs));
        let lag = median(&t.iter().map(|x| x.live_lag_ms).collect::<Vec<_>>());
        let mb = median(&t.iter().map(|x| x.binlog_bytes as f64).collect::<Vec<_>>())
            .unwrap_or(0.0)
            / (1024.0 * 1024.0);
        let cpu = median(
            &t.iter()
                .map(|x| x.replay_cpu / x.replay_secs)
                .collect::<Vec<_>>(),
        );
        let cpu_file = median(
            &t.iter()
                .map(|x| x.replay_file_cpu / x.replay_file_secs)
                .collect::<Vec<_>>(),
        );
        let dump = median(&t.iter().map(|x| x.dump_bytes as f64).collect::<Vec<_>>())
            .unwrap_or(0.0)
            / (1024.0 * 1024.0);
        let _ = writeln!(
            s,
            "| {} rows into `persons_lost` ({ROWS_PER_INSERT}-row autocommit INSERTs, {:.0} MiB of binlog) | rows/s | lpm ÷ mariadb-binlog | each run | notes |",
            label(k.rows),
            mb
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | --- |");
        let _ = writeln!(
            s,
            "| writer (one connection, capture following) | {} | | {} | |",
            writer.map_or("—".into(), thousands),
            per_run(t, |x| Some(x.writer_secs)),
        );
        let _ = writeln!(
            s,
            "| live capture → FileSink (first INSERT → last row fsynced) | {} | ({}) | {} | last row stored {} ms after the last INSERT's OK; dump {:.0} MiB |",
            live.map_or("—".into(), thousands),
            ratio(live, base),
            per_run(t, |x| Some(x.live_secs)),
            lag.map_or("—".into(), |l| format!("{l:.0}")),
            dump,
        );
        let _ = writeln!(
            s,
            "| binlog → counting sink (`stop_at_end`, no writer) | {} | **{}** | {} | capture process {:.2} cores |",
            replay.map_or("—".into(), thousands),
            ratio(replay, base),
            per_run(t, |x| Some(x.replay_secs)),
            cpu.unwrap_or(f64::NAN),
        );
        let _ = writeln!(
            s,
            "| binlog → FileSink (fsync per batch) | {} | {} | {} | capture process {:.2} cores |",
            replay_file.map_or("—".into(), thousands),
            ratio(replay_file, base),
            per_run(t, |x| Some(x.replay_file_secs)),
            cpu_file.unwrap_or(f64::NAN),
        );
        let base_note = match t.iter().find_map(|x| x.baseline.as_ref().err()) {
            Some(e) if base.is_none() => format!("**not measured**: {e}"),
            Some(e) => format!("failed in some runs: {e}"),
            None => match t.iter().find_map(|x| x.baseline_rows.clone()) {
                Some(Ok(n)) => format!(
                    "decodes to `### INSERT` text, output to /dev/null; a counted run decoded {n} of {} rows",
                    k.rows
                ),
                Some(Err(e)) => format!("counted run failed: {e}"),
                None => "decodes to `### INSERT` text, output to /dev/null".into(),
            },
        };
        let _ = writeln!(
            s,
            "| baseline: `mariadb-binlog -R --base64-output=decode-rows -v` | {} | 1.00× | {} | {base_note} |",
            base.map_or("—".into(), thousands),
            per_run(t, |x| x.baseline.as_ref().ok().copied()),
        );
        let _ = writeln!(s);
    }
    if !r.library.is_empty() || !r.serve.is_empty() {
        let _ = writeln!(
            s,
            "| {} single-row commits, {} ms apart: from the client's commit OK to … (ms) | p50 | p99 | max | min | before the OK | commits/s |",
            label(k.commits),
            COMMIT_EVERY.as_millis()
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        if !r.library.is_empty() {
            lat_row(
                &mut s,
                "baseline: library capture, record stored in a counting sink",
                &r.library,
            );
        }
        if r.serve.is_empty() {
            let _ = writeln!(
                s,
                "| `lpm serve --capture`: **not measured** (see the errors below) | — | — | — | — | — | — |"
            );
        } else {
            lat_row(
                &mut s,
                "`lpm serve --capture`: the views diff arrives on a WebSocket client",
                &r.serve,
            );
        }
        let _ = writeln!(s);
    }
    for e in &r.errors {
        let _ = writeln!(s, "* **ERROR**: {}", e.replace('\n', " "));
    }
    let _ = writeln!(
        s,
        "* machine: {} cores, {}; load average {load_start} at start, {} at end; harness wall time {:.0}s",
        cores(),
        cpu_model(),
        load_average(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "* rows/s: rows ÷ the time from the first INSERT sent (live) or from `capture::run` called (binlog; connect, preflight and the binlog dump request included) or from `mariadb-binlog` started, to the sink having stored the last row or the process having exited. The writer's statements are built before timing; MariaDB, the writer and the capture share the cores, so the live capture cannot outrun the writer (its ratio is in parentheses: not a like-for-like comparison). \"each run\" lists the runs' rows/s in order."
    );
    let _ = writeln!(
        s,
        "* latency: each commit's client-side OK instant against the instant the counting sink returned from storing its record (library) or the WebSocket diff that first counts it arrived (serve); p50/p99/max/min are medians of the runs' values. The server writes the binlog and lets replicas read it before it answers the client, so a record can be stored before its OK (\"before the OK\" counts those samples; they are negative)."
    );
    s
}

// ---------------------------------------------------------------------------------------------
// 2b. `lpm serve --capture`

mod serve {
    use super::*;

    use futures_util::StreamExt as _;
    use lpm_service::wire::{ServerMessage, WireRow};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    /// Engine workers (as `lpm serve`'s default).
    const WORKERS: usize = 2;

    /// `row_counts/persons_lost` as a WebSocket client sees it.
    #[derive(Default)]
    struct Seen {
        /// The count after each diff that raised it, and when that diff arrived.
        raised: Mutex<Vec<(i64, Instant)>>,
        /// The latest count; -1 until the first snapshot.
        latest: AtomicI64,
    }

    impl Seen {
        fn latest(&self) -> i64 {
            self.latest.load(Ordering::Acquire)
        }

        /// When the count first reached `n`.
        fn reached(&self, n: i64) -> Option<Instant> {
            self.raised
                .lock()
                .iter()
                .find(|(c, _)| *c >= n)
                .map(|(_, t)| *t)
        }
    }

    fn persons(row: &WireRow) -> Option<i64> {
        (row.view == lpm_engine::ViewName::RowCounts.name() && row.key == "persons_lost")
            .then(|| row.value.as_i64())
            .flatten()
    }

    /// One `/api/v1/stream?topics=views` client.
    async fn watch(
        url: String,
        token: String,
        seen: Arc<Seen>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<(), String> {
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{url}: {e}"))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| format!("token header: {e}"))?;
        req.headers_mut().insert("authorization", auth);
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("connecting {url}: {e}"))?;
        loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = &mut stop => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            };
            let arrived = Instant::now();
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(f))) => {
                    return Err(format!("the server closed the stream: {f:?}"))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("reading the stream: {e}")),
                None => return Err("the stream ended".into()),
            };
            match serde_json::from_str::<ServerMessage>(text.as_str()) {
                Ok(ServerMessage::Snapshot { rows, .. }) => {
                    let n = rows.iter().find_map(persons).unwrap_or(0);
                    seen.latest.store(n, Ordering::Release);
                }
                Ok(ServerMessage::Diff { changes, .. }) => {
                    let n = changes
                        .iter()
                        .filter(|c| c.diff > 0)
                        .find_map(|c| persons(&c.row));
                    if let Some(n) = n {
                        seen.raised.lock().push((n, arrived));
                        seen.latest.store(n, Ordering::Release);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(format!("a message that does not parse: {e}")),
            }
        }
    }

    /// Commit OK -> the views diff that counts the row arrives on a WebSocket client of
    /// `lpm serve --capture` (the release binary, in its own process).
    pub fn latency(rt: &Runtime, k: &Knobs, run: usize) -> Result<Lat, String> {
        let mut conn = rt.block_on(connect(&k.url))?;
        rt.block_on(reset_db(&mut conn))?;
        let statements = single_inserts(k.commits + 1, 0x5e7e_0000 + run as u64);
        let dir = k.dir.join("serve");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // an admin and a read-only token, made by the binary itself (as an operator would)
        let (workspace, target) = workspace_and_target();
        let bin = lpm_process::binary(&workspace, &target)?;
        lpm_process::add_user(&bin, &dir, ADMIN, "admin", ADMIN_PASSWORD)?;
        let token = lpm_process::create_token(&bin, &dir, "bench-capture")?;
        let server_id = ID_SERVE.to_string();
        let server = LpmProcess::start_with(
            &bin,
            &dir,
            WORKERS,
            &k.dir.join("serve.log"),
            &[
                "--capture",
                &k.url,
                "--database",
                DB,
                "--server-id",
                &server_id,
            ],
        )?;
        let addr = server.base.trim_start_matches("http://").to_string();

        let seen = Arc::new(Seen {
            latest: AtomicI64::new(-1),
            ..Seen::default()
        });
        let url = format!("ws://{addr}/api/v1/stream?topics=views");
        let s = seen.clone();
        let mut client = Worker::spawn("WebSocket client", move |stop| {
            current_rt()?.block_on(watch(url, token, s, stop))
        })?;
        client.wait("the views snapshot", Duration::from_secs(30), || {
            seen.latest() >= 0
        })?;
        let base = seen.latest();
        rt.block_on(exec(&mut conn, &statements[0]))?;
        client.wait(
            "the warm-up insert in the views",
            Duration::from_secs(30),
            || seen.latest() > base,
        )?;
        let (oks, rate) = paced_commits(rt, &mut conn, &statements[1..])?;
        let want = base + 1 + oks.len() as i64;
        client.wait(
            "the last commit in the views",
            Duration::from_secs(60),
            || seen.latest() >= want,
        )?;
        client.stop()?;
        let stopped = server.stop(Duration::from_secs(60));
        if !stopped.clean {
            return Err(format!(
                "lpm serve --capture stopped with {}",
                stopped.status
            ));
        }
        drop(rt.block_on(conn.disconnect()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut samples = Vec::with_capacity(oks.len());
        for (i, ok) in oks.iter().enumerate() {
            let at = seen
                .reached(base + 2 + i as i64)
                .ok_or_else(|| format!("commit {i} never showed in the views"))?;
            samples.push(signed_ms(*ok, at));
        }
        Ok(percentiles(samples, rate))
    }
}
