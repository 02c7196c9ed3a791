//! One benchmark report: `cargo bench -p lpm-benches --bench headline`.
//!
//! Runs the benches that measure the headline figures of issue 21 as child processes
//! (`cargo bench -p lpm-benches --bench <name>`, so each is built and run exactly as on its own),
//! reads the figures each writes to `target/bench-data/figures/<name>.json`
//! ([`lpm_benches::figures`]) and writes one table (figure, median, goal, the baseline or floor
//! measured in the same run, ratio, which runs) with the machine: as the `## headline` section
//! of `target/bench-results.md` and between the markers of `docs/performance.md` (created when
//! absent). It reuses the benches' measurements instead of measuring anything itself, so a
//! figure here is the figure the bench reports.
//!
//! * `throughput` once, with `LPM_BENCH_RUNS` (default here: the headline runs, 3): it takes
//!   the medians of its runs itself. It rewrites the whole of `target/bench-results.md`, so it
//!   runs first.
//! * `serve` `LPM_BENCH_HEADLINE_RUNS` times (3) with `LPM_BENCH_SERVE_PERSONS` set to
//!   `LPM_BENCH_HEADLINE_SMALL,LPM_BENCH_HEADLINE_LARGE` (10000 and 1000000); the table shows
//!   the median of its runs. At 1M persons one run takes several minutes (a 6.7 GB log is
//!   generated once, then copied and replayed every run): `LPM_BENCH_HEADLINE_LARGE=100000` for
//!   a shorter run, which the table names.
//!
//! Every other knob of the two benches (`LPM_BENCH_PERSONS`, `LPM_BENCH_SERVE_WS`, ...) passes
//! through; the ones set are listed under the table. `LPM_BENCH_HEADLINE_SKIP=serve` (or
//! `throughput`) leaves a bench out; `LPM_BENCH_HEADLINE_DOC` names the page to rewrite
//! (`-`: none). A figure that was not measured shows a dash and why; a failing bench loses only
//! its own rows. There are no timing assertions.

mod machine;
mod report;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use lpm_benches::figures::Figures;
use lpm_benches::headline_table::{busy, render_table, replace_between_markers, Row};
use machine::{cpu_model, load_average};
use report::{env_usize, f2, median, replace_section, workspace_and_target};

/// What one bench handed over: its runs' figures, or why it has none.
struct Source {
    bench: &'static str,
    runs: Vec<Figures>,
    asked: usize,
    /// The bench takes medians of its own runs (throughput): `asked` is its internal count.
    internal: bool,
    failures: Vec<String>,
}

impl Source {
    fn skipped(bench: &'static str) -> Source {
        Source {
            bench,
            runs: Vec::new(),
            asked: 0,
            internal: false,
            failures: vec!["skipped (LPM_BENCH_HEADLINE_SKIP)".into()],
        }
    }

    /// The median of `key` over the runs that measured it, or why none did.
    fn value(&self, key: &str) -> Result<f64, String> {
        let values: Vec<f64> = self.runs.iter().filter_map(|f| f.get(key)).collect();
        median(&values).ok_or_else(|| {
            self.runs
                .iter()
                .find_map(|f| f.why_missing(key))
                .map(String::from)
                .or_else(|| self.failures.first().cloned())
                .unwrap_or_else(|| format!("not reported by the {} bench", self.bench))
        })
    }

    /// Which runs a median of `key` comes from.
    fn runs_text(&self, key: &str) -> String {
        let n = self.runs.iter().filter(|f| f.get(key).is_some()).count();
        if n == 0 {
            String::new()
        } else if self.internal {
            format!("median of {} runs inside `{}`", self.asked, self.bench)
        } else if n == self.asked {
            format!("median of {n} `{}` runs", self.bench)
        } else {
            format!("median of {n} of {} `{}` runs", self.asked, self.bench)
        }
    }

    fn note(&self, key: &str) -> Option<&str> {
        self.runs
            .iter()
            .find_map(|f| f.notes.get(key))
            .map(String::as_str)
    }
}

/// Runs `cargo bench -p lpm-benches --bench <bench>` with `envs` and reads its figures.
fn run_bench(
    workspace: &Path,
    target: &Path,
    bench: &'static str,
    envs: &[(&str, String)],
) -> Result<Figures, String> {
    let path = Figures::path(target, bench);
    // a file from an earlier run must not stand in for this one
    let _ = std::fs::remove_file(&path);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("headline: cargo bench -p lpm-benches --bench {bench} {envs:?}");
    let mut cmd = Command::new(cargo);
    // the variables cargo set for this process must not reach the inner cargo (cargo_env says why)
    lpm_testkit::cargo_env::clear_cargo_set(&mut cmd);
    let status = cmd
        .args(["bench", "-p", "lpm-benches", "--bench", bench])
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(workspace)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("starting cargo bench --bench {bench}: {e}"))?;
    match Figures::read(&path) {
        Ok(f) => Ok(f),
        Err(e) if status.success() => Err(format!("`{bench}` wrote no figures ({e})")),
        Err(_) => Err(format!("`{bench}` failed ({status}) and wrote no figures")),
    }
}

// ---------------------------------------------------------------------------------------------
// rows

#[derive(Clone, Copy)]
enum Unit {
    PerSecond(&'static str),
    Ms,
    Seconds,
    Bytes,
    Times,
    Count,
}

impl Unit {
    fn show(self, x: f64) -> String {
        match self {
            Unit::PerSecond(what) => format!("{} {what}", thousands(x)),
            Unit::Ms => format!("{} ms", f2(x)),
            Unit::Seconds => format!("{} s", f2(x)),
            Unit::Bytes => format!("{:.0} MiB", x / (1024.0 * 1024.0)),
            Unit::Times => format!("{x:.2}×"),
            Unit::Count => format!("{x:.0}"),
        }
    }
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A goal: the text shown, and the test on the value (or on value ÷ baseline).
enum Goal {
    None,
    AtLeast(&'static str, f64),
    AtMost(&'static str, f64),
    RatioAtLeast(&'static str, f64),
    /// A goal set for another size than the one measured: shown, not checked.
    Elsewhere(String),
}

/// One figure before it is rendered.
struct Figure {
    name: String,
    value: Result<f64, String>,
    unit: Unit,
    goal: Goal,
    /// The baseline in the same run and what it is.
    baseline: Option<(Result<f64, String>, String)>,
    /// Whether `value ÷ baseline` means something (not for rows that are ratios already).
    ratio: bool,
    runs: String,
}

impl Figure {
    fn row(&self) -> Row {
        let base = self.baseline.as_ref().and_then(|(b, _)| b.as_ref().ok());
        let ratio = match (self.ratio, &self.value, base) {
            (true, Ok(v), Some(b)) if *b > 0.0 => Some(v / b),
            _ => None,
        };
        let (goal, met) = match (&self.goal, &self.value) {
            (Goal::None, _) => (String::new(), None),
            (Goal::AtLeast(t, g), Ok(v)) => (t.to_string(), Some(v >= g)),
            (Goal::AtMost(t, g), Ok(v)) => (t.to_string(), Some(v <= g)),
            (Goal::RatioAtLeast(t, g), _) => (t.to_string(), ratio.map(|r| r >= *g)),
            (Goal::Elsewhere(t), _) => (t.clone(), None),
            (Goal::AtLeast(t, _) | Goal::AtMost(t, _), Err(_)) => (t.to_string(), None),
        };
        Row {
            figure: self.name.clone(),
            value: self
                .value
                .as_ref()
                .map(|v| self.unit.show(*v))
                .map_err(Clone::clone),
            goal,
            met,
            baseline: match &self.baseline {
                Some((Ok(b), what)) => format!("{} ({what})", self.unit.show(*b)),
                Some((Err(_), what)) => format!("— ({what}: not measured)"),
                None => String::new(),
            },
            ratio: ratio.map_or_else(String::new, |r| format!("{r:.2}×")),
            runs: self.runs.clone(),
        }
    }
}

/// `a ÷ b` of two medians, or why not.
fn quotient(a: Result<f64, String>, b: Result<f64, String>) -> Result<f64, String> {
    match (a, b) {
        (Ok(a), Ok(b)) if b > 0.0 => Ok(a / b),
        (Ok(_), Ok(_)) => Err("the divisor is 0".into()),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn throughput_figures(t: &Source) -> Vec<Figure> {
    let dump = |kind: &str| {
        t.note(&format!("dump/{kind}"))
            .map_or_else(String::new, |d| format!(" ({d})"))
    };
    let mut out = Vec::new();
    for (kind, what) in [("plain", "no schemas"), ("schemas", "with schemas")] {
        for w in [1, 2] {
            let key = format!("decode/{kind}/w{w}");
            let goal = match (kind, w) {
                ("plain", _) => Goal::RatioAtLeast("≥ 1.00× the JSON floor", 1.0),
                ("schemas", 2) => Goal::AtLeast("≥ 400,000 records/s", 400_000.0),
                _ => Goal::None,
            };
            out.push(Figure {
                name: format!(
                    "decode + engine (`lpm replay`), {what}, {w} worker(s){}",
                    dump(kind)
                ),
                value: t.value(&key),
                unit: Unit::PerSecond("records/s"),
                goal,
                baseline: Some((
                    t.value(&format!("json_floor/{kind}/t{w}")),
                    format!("JSON parse floor, {w} thread(s)"),
                )),
                ratio: true,
                runs: t.runs_text(&key),
            });
        }
    }
    for w in [1, 2] {
        let key = format!("engine/w{w}");
        out.push(Figure {
            name: format!("engine only (pre-decoded), {w} worker(s)"),
            value: t.value(&key),
            unit: Unit::PerSecond("events/s"),
            goal: Goal::AtLeast("≥ 2,000,000 events/s", 2_000_000.0),
            baseline: Some((t.value("floor/hashmap"), "HashMap floor, 1 thread".into())),
            ratio: true,
            runs: t.runs_text(&key),
        });
    }
    out
}

fn serve_figures(s: &Source, small: usize, large: usize) -> Vec<Figure> {
    let (ls, ll) = (report::size_label(small), report::size_label(large));
    let mut out = Vec::new();
    // reads on the idle server
    for (probe, what, base, base_what) in [
        (
            "grafana_hourly",
            "`/grafana/query` 7-day hourly",
            "grafana_facts",
            "gender = female from the facts",
        ),
        (
            "views",
            "`/api/v1/views`",
            "healthz",
            "`/healthz`, the HTTP floor",
        ),
    ] {
        for (n, l) in [(small, &ls), (large, &ll)] {
            for q in ["p50", "p99"] {
                let key = format!("{n}/{probe}/{q}");
                let goal = match (probe, q) {
                    ("grafana_hourly", "p99") if n == large && large == 1_000_000 => {
                        Goal::AtMost("≤ 5 ms at 1M", 5.0)
                    }
                    ("grafana_hourly", "p99") if n == large => {
                        Goal::Elsewhere(format!("≤ 5 ms at 1M (not checked at {ll})"))
                    }
                    _ => Goal::None,
                };
                out.push(Figure {
                    name: format!("{what} {q}, {l} persons"),
                    value: s.value(&key),
                    unit: Unit::Ms,
                    goal,
                    baseline: Some((s.value(&format!("{n}/{base}/{q}")), base_what.into())),
                    ratio: true,
                    runs: s.runs_text(&key),
                });
            }
        }
        let p99 = |n: usize, p: &str| s.value(&format!("{n}/{p}/p99"));
        out.push(Figure {
            name: format!("{what} p99, {ll} ÷ {ls}"),
            value: quotient(p99(large, probe), p99(small, probe)),
            unit: Unit::Times,
            goal: match probe {
                "grafana_hourly" if (small, large) == (10_000, 1_000_000) => {
                    Goal::AtMost("≤ 2 (1M ÷ 10k)", 2.0)
                }
                "grafana_hourly" => {
                    Goal::Elsewhere(format!("≤ 2 for 1M ÷ 10k (not checked for {ll} ÷ {ls})"))
                }
                _ => Goal::None,
            },
            baseline: Some((
                quotient(p99(large, "healthz"), p99(small, "healthz")),
                "`/healthz` p99, the same ratio".into(),
            )),
            ratio: false,
            runs: format!("ratio of the medians of `{}` runs", s.bench),
        });
    }
    // writes and freshness, without and with the WebSocket clients
    for (n, l) in [(small, &ls), (large, &ll)] {
        let target = s
            .value(&format!("{n}/writes_solo/target_rate"))
            .or_else(|_| s.value(&format!("{n}/writes_ws/target_rate")))
            .map_or_else(|_| String::new(), |r| format!(", offered {r:.0}/s"));
        let clients = s
            .value(&format!("{n}/writes_ws/clients"))
            .map_or_else(|_| "the".to_string(), |c| format!("{c:.0}"));
        let solo = |k: &str| s.value(&format!("{n}/writes_solo/{k}"));
        out.push(Figure {
            name: format!("writes/s achieved, 0 WebSocket clients{target}, {l} persons"),
            value: solo("rate"),
            unit: Unit::PerSecond("writes/s"),
            goal: Goal::None,
            baseline: None,
            ratio: false,
            runs: s.runs_text(&format!("{n}/writes_solo/rate")),
        });
        out.push(Figure {
            name: format!("writes/s achieved, {clients} WebSocket clients{target}, {l} persons"),
            value: s.value(&format!("{n}/writes_ws/rate")),
            unit: Unit::PerSecond("writes/s"),
            goal: match s.value(&format!("{n}/writes_ws/clients")) {
                Ok(c) if c != 500.0 => Goal::Elsewhere(format!(
                    "≥ 990 writes/s with 500 clients (not checked with {c:.0})"
                )),
                _ => Goal::AtLeast("≥ 990 writes/s with 500 clients", 990.0),
            },
            baseline: Some((solo("rate"), "0 clients".into())),
            ratio: true,
            runs: s.runs_text(&format!("{n}/writes_ws/rate")),
        });
        out.push(Figure {
            name: format!(
                "WebSocket clients whose stream ended in an error during that pass (closed by the server), {l} persons"
            ),
            value: s.value(&format!("{n}/writes_ws/client_errors")),
            unit: Unit::Count,
            goal: Goal::None,
            baseline: None,
            ratio: false,
            runs: s.runs_text(&format!("{n}/writes_ws/client_errors")),
        });
        out.push(Figure {
            name: format!(
                "freshness p99 (`lpm_freshness_seconds`), 0 WebSocket clients, {l} persons"
            ),
            value: solo("freshness_p99"),
            unit: Unit::Ms,
            goal: Goal::AtMost("≤ 50 ms", 50.0),
            baseline: None,
            ratio: false,
            runs: s.runs_text(&format!("{n}/writes_solo/freshness_p99")),
        });
        out.push(Figure {
            name: format!(
                "freshness p99 (`lpm_freshness_seconds`), {clients} WebSocket clients, {l} persons"
            ),
            value: s.value(&format!("{n}/writes_ws/freshness_p99")),
            unit: Unit::Ms,
            goal: Goal::AtMost("≤ 50 ms", 50.0),
            baseline: Some((solo("freshness_p99"), "0 clients".into())),
            ratio: true,
            runs: s.runs_text(&format!("{n}/writes_ws/freshness_p99")),
        });
    }
    // restart and memory, at the large size
    for (key, name, unit) in [
        (
            "ready_s",
            "restart: `lpm serve` start to ready (full replay of the log)",
            Unit::Seconds,
        ),
        ("rss_ready", "server RSS when ready", Unit::Bytes),
        ("hwm", "server peak RSS (VmHWM, whole run)", Unit::Bytes),
    ] {
        let key = format!("{large}/{key}");
        out.push(Figure {
            name: format!("{name}, {ll} persons"),
            value: s.value(&key),
            unit,
            goal: Goal::None,
            baseline: None,
            ratio: false,
            runs: s.runs_text(&key),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// the machine and the page

fn git(workspace: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .current_dir(workspace)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The commit measured, and whether the tree had uncommitted changes.
fn commit(workspace: &Path) -> String {
    let Some(head) = git(workspace, &["rev-parse", "--short=10", "HEAD"]) else {
        return "unknown".into();
    };
    match git(
        workspace,
        &["status", "--porcelain", "--untracked-files=no"],
    ) {
        Some(s) if !s.is_empty() => format!("{head} (with uncommitted changes)"),
        _ => head,
    }
}

/// The `LPM_BENCH_*` variables set for the run, for the command that reproduces it.
fn knobs() -> Vec<String> {
    let mut v: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("LPM_BENCH_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    v.sort();
    v
}

/// The page `docs/performance.md` starts as when it is absent: what the figures mean, the
/// goals, how to reproduce them; the table goes between the markers at its end. Later runs
/// rewrite only the block between the markers, so edits to the prose stay.
const PAGE: &str = r#"# Performance

The headline figures of lpm in one table, with the goals of issue 21 and the baseline or floor
measured in the same run, written by `cargo bench -p lpm-benches --bench headline`
([benches/src/headline.rs](../benches/src/headline.rs)). The block between the `headline`
markers at the end of this page is rewritten by every run; the rest is not. Older figures, and
the benches one by one, are in [operations.md](operations.md) and
[benches/README.md](../benches/README.md).

## What each figure is

| figure | bench | what it measures | baseline / floor |
| --- | --- | --- | --- |
| decode + engine, no schemas / with schemas, 1 and 2 workers | `throughput` | Kafka records per second through the release `lpm replay` binary (read, decode, engine), on a generated Debezium dump (`LPM_BENCH_PERSONS`, default 100k persons, no schemas; `LPM_BENCH_PERSONS_SCHEMA`, default 20k, with JsonConverter schemas) | the JSON parse floor: every line, its key and its payload parsed into `serde_json::Value` and dropped, the file already in memory, with as many threads as workers |
| engine only, 1 and 2 workers | `throughput` | change events per second through the dataflow, the no-schema dump decoded into memory beforehand | the HashMap floor: the same changes through a hand-written single-threaded implementation whose final views must equal the engine's |
| `/grafana/query` 7-day hourly, p50 / p99 | `serve` | one keep-alive client on an idle `lpm serve` (release binary, 2 workers): the reports and cases-opened series, hourly over 7 days, at the small and the large size | the same panel filtered to gender = female and read from the per-combination facts instead of the rollup (the `serve` bench's baseline: what the query cost before the rollup) |
| `/api/v1/views`, p50 / p99 | `serve` | the same client, every view as JSON | `GET /healthz`, the HTTP floor |
| p99 large ÷ small | `serve` | whether a read stays flat as the data grows | the HTTP floor's own ratio |
| writes/s achieved, 0 and 500 WebSocket clients | `serve` | 32 keep-alive writers offering 1 000 writes/s for 10 s (50 % reports, 25 % status changes, 25 % actions; a write answers once the engine shows it), without clients and then with 500 clients on `/api/v1/stream?topics=views` in a third process on the same cores | the pass without clients |
| freshness p99 | `serve` | the server's `lpm_freshness_seconds` histogram over each pass (commit to visible), interpolated inside its buckets | the pass without clients |
| restart | `serve` | `lpm serve` start to `/readyz` 200 on a copy of the large data set's log: a full replay (no checkpoint; `cargo bench --bench restart` measures starts from a checkpoint) | — |
| server RSS | `serve` | the server process's `VmRSS` when ready, and its `VmHWM` over the whole run (reads, writes, 500 clients) | — |

Medians: `serve` runs `LPM_BENCH_HEADLINE_RUNS` times (3) and the table shows the median of the
runs; `throughput` runs once and takes the median of its own `LPM_BENCH_RUNS` (3) runs of each
configuration. The `runs` column says which. A figure that was not measured shows a dash and
why.

## Goals (issue 21)

* `/grafana/query` 7-day hourly: p99 ≤ 5 ms at 1M persons, and p99 at 1M ÷ p99 at 10k ≤ 2.
* Writes: ≥ 990 writes/s achieved (1 000 offered) with 500 WebSocket clients connected,
  freshness p99 ≤ 50 ms.
* Decode + engine without schemas: ≥ 1.0× the JSON parse floor at 1 and at 2 workers; with
  schemas ≥ 400 000 records/s at 2 workers.
* Engine only: ≥ 2M events/s.

Restart and RSS are reported without a goal here.

## Reproducing

```
# build once (the benches and the server binary they start)
cargo build --release -p lpm-benches -p lpm --benches --bin lpm
# the full report: 10k and 1M persons (the 1M data set, a 6.7 GB log, is generated once
# into target/bench-data/serve-1000000/; each of the three serve runs replays it)
cargo bench -p lpm-benches --bench headline
# a shorter run: 100k persons as the large size
LPM_BENCH_HEADLINE_LARGE=100000 cargo bench -p lpm-benches --bench headline
```

| variable | default | meaning |
| --- | ---: | --- |
| `LPM_BENCH_HEADLINE_RUNS` | 3 | `serve` runs; also `throughput`'s `LPM_BENCH_RUNS` unless that is set |
| `LPM_BENCH_HEADLINE_SMALL` | 10000 | the small size of `serve` (persons) |
| `LPM_BENCH_HEADLINE_LARGE` | 1000000 | the large size of `serve` |
| `LPM_BENCH_HEADLINE_SKIP` | — | `throughput` and/or `serve` (comma-separated) to leave out; their rows show a dash |
| `LPM_BENCH_HEADLINE_DOC` | `docs/performance.md` | the page whose block is rewritten (relative to the workspace); `-` for none |

Every other knob of the two benches passes through (`LPM_BENCH_PERSONS`,
`LPM_BENCH_SERVE_QUERIES`, `LPM_BENCH_SERVE_SECONDS`, `LPM_BENCH_NO_BUILD`, `LPM_BENCH_BIN`, ...;
see the top of `benches/src/throughput.rs` and `benches/src/serve.rs`); those set are listed
under the table. The same table is the `## headline` section of `target/bench-results.md`
(`throughput` rewrites that file first, then `serve` and `headline` add their sections). On a
machine shared with other work, the rates follow the load (given under the table); ratios within
one run say more.

## Latest
"#;

fn main() {
    let (workspace, target) = workspace_and_target();
    let started = Instant::now();
    let load_start = load_average();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let commit = commit(&workspace);
    let runs = env_usize("LPM_BENCH_HEADLINE_RUNS", 3).max(1);
    let small = env_usize("LPM_BENCH_HEADLINE_SMALL", 10_000).max(1);
    let large = env_usize("LPM_BENCH_HEADLINE_LARGE", 1_000_000).max(1);
    let skip = std::env::var("LPM_BENCH_HEADLINE_SKIP").unwrap_or_default();
    let skipped = |b: &str| skip.split(',').any(|s| s.trim() == b);
    let knobs = knobs();

    // throughput first: it rewrites the whole of bench-results.md
    let throughput = if skipped("throughput") {
        Source::skipped("throughput")
    } else {
        let inner = env_usize("LPM_BENCH_RUNS", runs).max(1);
        let ran = run_bench(
            &workspace,
            &target,
            "throughput",
            &[("LPM_BENCH_RUNS", inner.to_string())],
        );
        let (figs, failures) = match ran {
            Ok(f) => (vec![f], Vec::new()),
            Err(e) => (Vec::new(), vec![e]),
        };
        Source {
            bench: "throughput",
            runs: figs,
            asked: inner,
            internal: true,
            failures,
        }
    };

    let serve = if skipped("serve") {
        Source::skipped("serve")
    } else {
        let mut s = Source {
            bench: "serve",
            runs: Vec::new(),
            asked: runs,
            internal: false,
            failures: Vec::new(),
        };
        for i in 0..runs {
            eprintln!("headline: serve run {}/{runs}", i + 1);
            match run_bench(
                &workspace,
                &target,
                "serve",
                &[("LPM_BENCH_SERVE_PERSONS", format!("{small},{large}"))],
            ) {
                Ok(f) => s.runs.push(f),
                Err(e) => {
                    eprintln!("headline: ERROR: {e}");
                    s.failures.push(e);
                }
            }
        }
        s
    };

    let mut figures = throughput_figures(&throughput);
    figures.extend(serve_figures(&serve, small, large));
    let rows: Vec<Row> = figures.iter().map(Figure::row).collect();

    let load_end = load_average();
    let cores: usize = report::cores().parse().unwrap_or(0);
    let loaded = if busy(&load_start, cores) || busy(&load_end, cores) {
        " (the machine was busy beside the bench: a 1-minute load of half the cores or more; compare ratios within the run rather than rates across runs)"
    } else {
        ""
    };
    let mut block = format!(
        "Measured {date} at commit {commit} with `cargo bench -p lpm-benches --bench headline`: `throughput` once (medians of its runs), `serve` {runs} times at {} and {} persons.\n\n",
        report::size_label(small),
        report::size_label(large)
    );
    block.push_str(&render_table(&rows));
    block.push_str(&format!(
        "\n* machine: {} cores, {}; load average {load_start} at start, {load_end} at end{loaded}; wall time {:.0} s\n",
        report::cores(),
        cpu_model(),
        started.elapsed().as_secs_f64()
    ));
    block.push_str(&format!(
        "* variables set: {}\n",
        if knobs.is_empty() {
            "none (the defaults)".to_string()
        } else {
            knobs
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    for (s, what) in [(&throughput, "throughput"), (&serve, "serve")] {
        for f in &s.failures {
            block.push_str(&format!("* {what}: {f}\n"));
        }
    }

    let section = format!("## headline\n\n{block}");
    println!("{section}");
    let results = target.join("bench-results.md");
    let old = std::fs::read_to_string(&results).unwrap_or_default();
    match std::fs::write(&results, replace_section(&old, "headline", &section)) {
        Ok(()) => eprintln!(
            "headline: wrote the ## headline section of {}",
            results.display()
        ),
        Err(e) => eprintln!("headline: ERROR: writing {}: {e}", results.display()),
    }
    let doc = match std::env::var("LPM_BENCH_HEADLINE_DOC") {
        Ok(p) if p.trim() == "-" => None,
        Ok(p) => Some(workspace.join(p.trim())),
        Err(_) => Some(workspace.join("docs").join("performance.md")),
    };
    if let Some(doc) = doc {
        write_page(&doc, &block);
    }
}

/// Rewrites the block between the markers of `doc` (the page's text when it is absent).
fn write_page(doc: &Path, block: &str) {
    let old = std::fs::read_to_string(doc).unwrap_or_else(|_| PAGE.to_string());
    match std::fs::write(doc, replace_between_markers(&old, block)) {
        Ok(()) => eprintln!("headline: wrote the table into {}", doc.display()),
        Err(e) => eprintln!("headline: ERROR: writing {}: {e}", doc.display()),
    }
}
