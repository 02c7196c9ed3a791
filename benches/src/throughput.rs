//! Throughput and memory harness: `cargo bench -p lpm-benches`.
//!
//! One run measures, on generated dumps (see [`dumps`]):
//!
//! * **decode + engine**: the release `lpm replay` binary as a subprocess, 1 and 2 workers, on a
//!   dump without schemas and one with schemas. Events/s, peak RSS and time to the first
//!   complete tick come from its stderr summary line.
//! * **engine only**: the no-schema dump decoded once into memory, then `Engine::start` over a
//!   feed that hands out the pre-decoded batches (same ticks), 1 and 2 workers.
//! * **HashMap floor**: the same pre-decoded changes through [`floor`], a single-threaded
//!   hand-written implementation; its final views must equal the engine's.
//! * **JSON parse floor**: every line of each dump, then its key and payload, parsed into
//!   `serde_json::Value` and dropped ([`json_floor`]), 1 and 2 threads; decode + engine is
//!   shown as a ratio to it at the same thread count.
//!
//! Every configuration runs `LPM_BENCH_RUNS` times (default 3); the table shows medians. Sizes:
//! `LPM_BENCH_PERSONS` (default 100000, no schemas) and `LPM_BENCH_PERSONS_SCHEMA` (default
//! 20000, with schemas). `LPM_BENCH_NO_BUILD=1` skips `cargo build --release -p lpm`. The table
//! goes to stdout and to `target/bench-results.md` (the whole file is rewritten), and the headline
//! figures (medians) to `target/bench-data/figures/throughput.json` for the `headline` bench.
//! There are no timing assertions.

mod dumps;
mod machine;
mod report;
use machine::{cpu_model, load_average};
use report::{env_usize, median};
mod floor;
mod json_floor;
mod predecoded;
use predecoded::{decode, run_engine};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lpm_benches::figures::Figures;
use lpm_engine::Views;

use dumps::Dump;

use predecoded::TZ;

fn thousands(n: f64) -> String {
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

/// A dump's kind in the figures' names (`plain`: no schemas).
fn kind(dump: &Dump) -> &'static str {
    if dump.schemas {
        "schemas"
    } else {
        "plain"
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------------------------
// the machine

fn nproc() -> String {
    Command::new("nproc")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------------
// decode + engine: the `lpm replay` subprocess

/// What one `lpm replay` run reported.
#[derive(Clone, Debug)]
struct ReplayRun {
    records: u64,
    rate: f64,
    first_tick_ms: Option<f64>,
    peak_rss: Option<f64>,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// Parses `lpm replay: N records in Xs (R/s), W workers, ..., first tick after F ms, peak RSS B
/// bytes, ...`. The rate falls back to `records / wall` if the line has none.
fn parse_summary(stderr: &str, wall: Duration) -> Option<ReplayRun> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("lpm replay:") && l.contains(" records in "))?;
    let records: u64 = between(line, "lpm replay: ", " records in ")?
        .trim()
        .parse()
        .ok()?;
    let rate = between(line, "(", "/s)")
        .and_then(|r| r.trim().parse::<f64>().ok())
        .unwrap_or(records as f64 / wall.as_secs_f64().max(1e-9));
    let first_tick_ms = between(line, "first tick after ", " ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v >= 0.0);
    let peak_rss = between(line, "peak RSS ", " bytes")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0);
    Some(ReplayRun {
        records,
        rate,
        first_tick_ms,
        peak_rss,
    })
}

fn run_replay(lpm: &Path, dump: &Dump, workers: usize, out: &Path) -> Result<ReplayRun, String> {
    let started = Instant::now();
    let output = Command::new(lpm)
        .arg("replay")
        .arg(&dump.path)
        .args(["--workers", &workers.to_string(), "--no-progress", "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", lpm.display()))?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "lpm replay exited with {}: {}",
            output.status,
            stderr.trim()
        ));
    }
    parse_summary(&stderr, wall)
        .ok_or_else(|| format!("no summary line in lpm replay's stderr: {}", stderr.trim()))
}

/// Builds the release `lpm` binary (a no-op when it is fresh). Returns its path.
fn build_lpm(workspace: &Path, target: &Path) -> Result<PathBuf, String> {
    let bin = target.join("release").join("lpm");
    if std::env::var_os("LPM_BENCH_NO_BUILD").is_some() && bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p lpm ...");
    let mut cmd = Command::new(cargo);
    lpm_testkit::cargo_env::clear_cargo_set(&mut cmd);
    let status = cmd
        .args(["build", "--release", "-p", "lpm"])
        .current_dir(workspace)
        .status();
    match status {
        Ok(s) if s.success() => Ok(bin),
        other if bin.is_file() => {
            eprintln!(
                "bench: WARNING: building lpm failed ({other:?}); using the existing {}",
                bin.display()
            );
            Ok(bin)
        }
        other => Err(format!("building lpm failed: {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// the report

struct Row {
    benchmark: String,
    dump: String,
    workers: String,
    eps: Option<f64>,
    vs_floor: String,
    /// `lpm replay` ÷ the JSON parse floor at the same thread count.
    vs_json: String,
    rss: String,
    first_tick: String,
    error: Option<String>,
}

impl Row {
    fn error(benchmark: &str, dump: &str, workers: &str, error: String) -> Row {
        Row {
            benchmark: benchmark.into(),
            dump: dump.into(),
            workers: workers.into(),
            eps: None,
            vs_floor: "—".into(),
            vs_json: "—".into(),
            rss: "—".into(),
            first_tick: "—".into(),
            error: Some(error),
        }
    }
}

/// `engine / floor` throughput, and per core for more than one worker.
fn ratio(eps: f64, floor: Option<f64>, workers: usize) -> String {
    match floor {
        Some(f) if f > 0.0 => {
            let r = eps / f;
            if workers > 1 {
                format!("{r:.2}× ({:.2}×/core)", r / workers as f64)
            } else {
                format!("{r:.2}× ({:.1}× the floor's time)", 1.0 / r)
            }
        }
        _ => "—".into(),
    }
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    let data_dir = target.join("bench-data");
    let persons = env_usize("LPM_BENCH_PERSONS", 100_000);
    let persons_schema = env_usize("LPM_BENCH_PERSONS_SCHEMA", 20_000);
    let runs = env_usize("LPM_BENCH_RUNS", 3).max(1);
    let load_start = load_average();
    let bench_started = Instant::now();

    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // the medians `headline` reads; keys: decode/<plain|schemas>/w<N>, json_floor/<kind>/t<N>,
    // engine/w<N>, floor/hashmap
    let mut figs = Figures::default();
    figs.set("runs", runs as f64);

    // dumps
    let generator = dumps::Generator::pick(&workspace);
    let plain = dumps::ensure(&data_dir, &generator, persons, false);
    let with_schemas = dumps::ensure(&data_dir, &generator, persons_schema, true);
    let mut dumps_ok: Vec<Dump> = Vec::new();
    for (d, what) in [(&plain, "no-schemas"), (&with_schemas, "schemas")] {
        match d {
            Ok(d) => dumps_ok.push(d.clone()),
            Err(e) => {
                eprintln!("bench: ERROR: no {what} dump: {e}");
                let kind = if what == "schemas" {
                    "schemas"
                } else {
                    "plain"
                };
                for group in ["decode", "json_floor"] {
                    figs.miss(format!("{group}/{kind}/"), format!("no {what} dump: {e}"));
                }
                if kind == "plain" {
                    figs.miss("engine/", format!("no {what} dump: {e}"));
                    figs.miss("floor/", format!("no {what} dump: {e}"));
                }
                rows.push(Row::error("(dump)", what, "—", e.clone()));
            }
        }
    }

    // decode + engine (subprocess); its no-schema outputs are checked against the floor later
    let mut replay_outputs: Vec<(String, PathBuf)> = Vec::new();
    let mut replay_rows: Vec<(Dump, usize, Vec<ReplayRun>)> = Vec::new();
    match build_lpm(&workspace, &target) {
        Ok(lpm) => {
            for dump in &dumps_ok {
                for workers in [1, 2] {
                    let out = data_dir.join(format!(
                        "replay-{}-w{workers}.json",
                        dump.label().replace(' ', "-")
                    ));
                    let mut ok = Vec::new();
                    for i in 0..runs {
                        eprintln!(
                            "bench: decode+engine {} workers={workers} run {}/{runs}",
                            dump.label(),
                            i + 1
                        );
                        match run_replay(&lpm, dump, workers, &out) {
                            Ok(r) => ok.push(r),
                            Err(e) => {
                                eprintln!("bench: ERROR: {e}");
                                figs.miss(
                                    format!("decode/{}/w{workers}", kind(dump)),
                                    format!("lpm replay failed: {e}"),
                                );
                                rows.push(Row::error(
                                    "decode + engine",
                                    &dump.label(),
                                    &workers.to_string(),
                                    e,
                                ));
                                break;
                            }
                        }
                    }
                    if ok.len() == runs {
                        if !dump.schemas {
                            replay_outputs.push((format!("lpm replay, {workers} worker(s)"), out));
                        }
                        replay_rows.push((dump.clone(), workers, ok));
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("bench: ERROR: {e}");
            figs.miss("decode/", e.clone());
            rows.push(Row::error("decode + engine", "all", "—", e));
        }
    }

    // engine only and the floor, on the pre-decoded no-schema dump
    let mut floor_eps = None;
    let mut engine_rows: Vec<Row> = Vec::new();
    let mut floor_row: Option<Row> = None;
    if let Ok(dump) = &plain {
        eprintln!("bench: decoding {} into memory ...", dump.label());
        let t = Instant::now();
        match decode(dump) {
            Ok((batches, events)) => {
                notes.push(format!(
                    "pre-decoded {}: {events} change events in {} batches over {} ticks (decoded once, single-threaded, in {:.2}s; not timed)",
                    dump.label(),
                    batches.len(),
                    batches.last().map_or(0, |b| b.0 + 1),
                    t.elapsed().as_secs_f64()
                ));
                // the floor
                let mut times = Vec::new();
                let mut floor_views: Option<(Views, u64)> = None;
                let mut floor_error = None;
                for i in 0..runs {
                    eprintln!("bench: HashMap floor run {}/{runs}", i + 1);
                    let input = batches.clone();
                    let t = Instant::now();
                    match floor::run(input, TZ) {
                        Ok(v) => {
                            times.push(t.elapsed().as_secs_f64());
                            floor_views = Some(v);
                        }
                        Err(e) => {
                            floor_error = Some(e.to_string());
                            break;
                        }
                    }
                }
                floor_eps = median(&times).map(|s| events as f64 / s);
                // the engine
                let mut engine_views: Vec<(String, Views, u64)> = Vec::new();
                // each worker count with differential's arrangement log on (as `lpm serve`
                // runs) and off, to show what the arrangement-size figures cost
                for (workers, arrangement_log) in [(1, true), (1, false), (2, true), (2, false)] {
                    let label = if arrangement_log {
                        "engine only (pre-decoded)"
                    } else {
                        "engine only, arrangement log off"
                    };
                    let mut secs = Vec::new();
                    let mut firsts = Vec::new();
                    let mut error = None;
                    for i in 0..runs {
                        eprintln!("bench: {label} workers={workers} run {}/{runs}", i + 1);
                        match run_engine(batches.clone(), workers, arrangement_log, None) {
                            Ok(r) => {
                                secs.push(r.seconds);
                                firsts.extend(r.first_tick_ms);
                                if i == 0 && arrangement_log {
                                    engine_views.push((
                                        format!("engine only, {workers} worker(s)"),
                                        r.views,
                                        r.applied,
                                    ));
                                }
                            }
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                    let row = match (error, median(&secs)) {
                        (None, Some(s)) => {
                            let eps = events as f64 / s;
                            if arrangement_log {
                                figs.set(format!("engine/w{workers}"), eps);
                            }
                            Row {
                                benchmark: label.into(),
                                dump: dump.label(),
                                workers: workers.to_string(),
                                eps: Some(eps),
                                vs_floor: ratio(eps, floor_eps, workers),
                                vs_json: "—".into(),
                                rss: "n/a (in-process)".into(),
                                first_tick: median(&firsts)
                                    .map_or("—".into(), |ms| format!("{ms:.0} ms")),
                                error: None,
                            }
                        }
                        (e, _) => {
                            let e = e.unwrap_or_else(|| "no run".into());
                            if arrangement_log {
                                figs.miss(format!("engine/w{workers}"), e.clone());
                            }
                            Row::error(label, &dump.label(), &workers.to_string(), e)
                        }
                    };
                    engine_rows.push(row);
                }
                // equality of final views
                floor_row = Some(match (floor_error, floor_views, floor_eps) {
                    (Some(e), _, _) => {
                        figs.miss("floor/hashmap", e.clone());
                        Row::error("HashMap floor", &dump.label(), "1", e)
                    }
                    (None, Some((fv, applied)), Some(eps)) => {
                        let diffs = compare(&fv, applied, &engine_views, &replay_outputs);
                        notes.push(format!(
                            "final views: floor vs {} → {}",
                            engine_views
                                .iter()
                                .map(|(n, _, _)| n.as_str())
                                .chain(replay_outputs.iter().map(|(n, _)| n.as_str()))
                                .collect::<Vec<_>>()
                                .join(", "),
                            if diffs.is_empty() {
                                "identical".to_string()
                            } else {
                                format!("DIFFERENT: {}", diffs.join("; "))
                            }
                        ));
                        if diffs.is_empty() {
                            figs.set("floor/hashmap", eps);
                            Row {
                                benchmark: "HashMap floor".into(),
                                dump: dump.label(),
                                workers: "1".into(),
                                eps: Some(eps),
                                vs_floor: "1.00×".into(),
                                vs_json: "—".into(),
                                rss: "n/a (in-process)".into(),
                                first_tick: "—".into(),
                                error: None,
                            }
                        } else {
                            let path = data_dir.join("floor-views.json");
                            let _ =
                                serde_json::to_string_pretty(&fv).map(|s| std::fs::write(&path, s));
                            figs.miss(
                                "floor/hashmap",
                                format!(
                                    "the floor's final views differ from the engine's ({})",
                                    diffs.join("; ")
                                ),
                            );
                            let mut r = Row::error(
                                "HashMap floor",
                                &dump.label(),
                                "1",
                                format!(
                                    "final views differ from the engine's ({}); floor views in {}",
                                    diffs.join("; "),
                                    path.display()
                                ),
                            );
                            r.eps = Some(eps);
                            r
                        }
                    }
                    _ => Row::error("HashMap floor", &dump.label(), "1", "no run".into()),
                });
            }
            Err(e) => {
                figs.miss("engine/", format!("decoding the dump: {e}"));
                figs.miss("floor/", format!("decoding the dump: {e}"));
                engine_rows.push(Row::error(
                    "engine only (pre-decoded)",
                    &dump.label(),
                    "1, 2",
                    e,
                ));
            }
        }
    }

    // the JSON parse floor of each dump, at each thread count
    let mut json_floors: Vec<(PathBuf, usize, f64)> = Vec::new();
    let mut json_rows: Vec<Row> = Vec::new();
    for dump in &dumps_ok {
        for threads in [1, 2] {
            let mut rates = Vec::new();
            let mut error = None;
            for i in 0..runs {
                eprintln!(
                    "bench: JSON parse floor {} threads={threads} run {}/{runs}",
                    dump.label(),
                    i + 1
                );
                match json_floor::run(&dump.path, threads) {
                    Ok(r) => rates.push(r.records as f64 / r.seconds.max(1e-9)),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            json_rows.push(match (error, median(&rates)) {
                (None, Some(rate)) => {
                    json_floors.push((dump.path.clone(), threads, rate));
                    figs.set(format!("json_floor/{}/t{threads}", kind(dump)), rate);
                    Row {
                        benchmark: "JSON parse floor (serde_json → Value)".into(),
                        dump: dump.label(),
                        workers: format!("{threads} (threads)"),
                        eps: Some(rate),
                        vs_floor: "—".into(),
                        vs_json: "1.00×".into(),
                        rss: "n/a (in-process)".into(),
                        first_tick: "—".into(),
                        error: None,
                    }
                }
                (e, _) => {
                    let e = e.unwrap_or_else(|| "no run".into());
                    figs.miss(format!("json_floor/{}/t{threads}", kind(dump)), e.clone());
                    Row::error("JSON parse floor", &dump.label(), &threads.to_string(), e)
                }
            });
        }
    }

    // decode + engine rows (now that the floors are known)
    let mut table_rows: Vec<Row> = Vec::new();
    for (dump, workers, ok) in &replay_rows {
        let rates: Vec<f64> = ok.iter().map(|r| r.rate).collect();
        let eps = median(&rates).unwrap_or(0.0);
        figs.set(format!("decode/{}/w{workers}", kind(dump)), eps);
        let rss: Vec<f64> = ok.iter().filter_map(|r| r.peak_rss).collect();
        let first: Vec<f64> = ok.iter().filter_map(|r| r.first_tick_ms).collect();
        let same_dump = plain.as_ref().is_ok_and(|p| p.path == dump.path);
        if let Some(r) = ok.first() {
            if r.records != dump.records {
                notes.push(format!(
                    "lpm replay read {} records of {} ({} lines)",
                    r.records,
                    dump.label(),
                    dump.records
                ));
            }
        }
        table_rows.push(Row {
            benchmark: "decode + engine (`lpm replay`)".into(),
            dump: dump.label(),
            workers: workers.to_string(),
            eps: Some(eps),
            vs_floor: if same_dump {
                ratio(eps, floor_eps, *workers)
            } else {
                "—".into()
            },
            vs_json: json_floors
                .iter()
                .find(|(p, t, _)| *p == dump.path && t == workers)
                .map_or("—".into(), |(_, _, floor)| format!("{:.2}×", eps / floor)),
            rss: median(&rss).map_or("—".into(), mib),
            first_tick: median(&first).map_or("—".into(), |ms| format!("{ms:.0} ms")),
            error: None,
        });
    }
    table_rows.extend(json_rows);
    table_rows.extend(engine_rows);
    table_rows.extend(floor_row);
    table_rows.extend(rows);

    for d in &dumps_ok {
        figs.note(
            format!("dump/{}", kind(d)),
            format!("{} ({} records)", d.label(), d.records),
        );
    }
    match figs.write(&target, "throughput") {
        Ok(p) => eprintln!("bench: wrote {}", p.display()),
        Err(e) => eprintln!("bench: ERROR: writing the figures: {e}"),
    }

    let report = render(
        &table_rows,
        &notes,
        &dumps_ok,
        runs,
        &load_start,
        bench_started.elapsed(),
    );
    println!("{report}");
    let path = target.join("bench-results.md");
    match std::fs::write(&path, &report) {
        Ok(()) => eprintln!("bench: wrote {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
}

/// Differences between the floor's final views and every engine result (empty when equal).
fn compare(
    floor: &Views,
    floor_applied: u64,
    engine: &[(String, Views, u64)],
    replay_outputs: &[(String, PathBuf)],
) -> Vec<String> {
    let mut diffs = Vec::new();
    let floor_json = match serde_json::to_value(floor) {
        Ok(v) => v,
        Err(e) => return vec![format!("serialising the floor's views: {e}")],
    };
    let check = |name: &str, other: &serde_json::Value| -> Option<String> {
        if *other == floor_json {
            return None;
        }
        let sections: Vec<String> = match (floor_json.as_object(), other.as_object()) {
            (Some(a), Some(b)) => a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => vec!["(shape)".into()],
        };
        Some(format!("{name}: {}", sections.join(", ")))
    };
    for (name, views, applied) in engine {
        match serde_json::to_value(views) {
            Ok(v) => diffs.extend(check(name, &v)),
            Err(e) => diffs.push(format!("{name}: {e}")),
        }
        if *applied != floor_applied {
            diffs.push(format!(
                "{name}: applied {applied} events, the floor {floor_applied}"
            ));
        }
    }
    for (name, path) in replay_outputs {
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => diffs.extend(check(name, &v)),
            Err(e) => diffs.push(format!("{name}: reading {}: {e}", path.display())),
        }
    }
    diffs
}

fn render(
    rows: &[Row],
    notes: &[String],
    dumps: &[Dump],
    runs: usize,
    load_start: &str,
    elapsed: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## lpm throughput\n");
    let _ = writeln!(
        s,
        "| benchmark | dump | workers | events/s (median of {runs}) | vs floor | vs JSON floor | peak RSS | first tick |"
    );
    let _ = writeln!(s, "| --- | --- | --- | ---: | --- | --- | ---: | ---: |");
    for r in rows {
        let eps = r.eps.map_or("—".into(), thousands);
        let vs = match &r.error {
            Some(e) => format!("**ERROR**: {}", e.replace('|', "\\|").replace('\n', " ")),
            None => r.vs_floor.clone(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {eps} | {vs} | {} | {} | {} |",
            r.benchmark, r.dump, r.workers, r.vs_json, r.rss, r.first_tick
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "* machine: nproc {}, {}; load average {load_start} at start, {} at end; harness wall time {:.0}s",
        nproc(),
        cpu_model(),
        load_average(),
        elapsed.as_secs_f64()
    );
    for d in dumps {
        let _ = writeln!(
            s,
            "* dump {}: {} persons, schemas {}, seed {}, {} records, {} bytes ({:.2} GB), {} generator, `{}`",
            d.label(),
            d.persons,
            if d.schemas { "on" } else { "off" },
            dumps::SEED,
            d.records,
            d.bytes,
            d.bytes as f64 / 1e9,
            d.generator,
            d.path.display()
        );
    }
    for n in notes {
        let _ = writeln!(s, "* {n}");
    }
    let _ = writeln!(
        s,
        "* events/s: decode + engine = Kafka records / `lpm replay`'s own elapsed time (engine start to last tick applied, as it reports); engine only and floor = decoded change events / wall time over the in-memory batches. \
         vs floor = events/s ÷ the floor's events/s (the floor runs on the no-schema dump only; decode + engine includes JSON decoding, the floor does not); ×/core divides by the worker count. \
         vs JSON floor = `lpm replay`'s records/s ÷ the JSON parse floor's records/s on the same dump with as many threads as workers (the floor parses each line, its key and its payload into `serde_json::Value` and drops them, the file already in memory; `lpm replay` reads its file too); for these two rows events/s are records/s. \
         Peak RSS and first tick come from `lpm replay`'s summary (first tick = time from engine start to the first complete tick)."
    );
    s
}
