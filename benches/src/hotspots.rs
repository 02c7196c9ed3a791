//! What the `hotspots` view costs: `cargo bench -p lpm-benches --bench hotspots`.
//!
//! A dump from the testkit generator (`lpm_testkit::gen`, so it runs without `shared/`) is
//! decoded once into memory; then the engine ingests it at its original ticks, with the view
//! off and on (H3 resolution `LPM_BENCH_HOTSPOTS_RES`, default 7), 1 and 2 workers, the two
//! alternating so that a change in the machine's load hits both alike. Each configuration runs
//! `LPM_BENCH_RUNS` times (default 3); the table shows medians of change events per second and
//! the ratio on/off. Size: `LPM_BENCH_HOTSPOTS_PERSONS` (default 100000). With the view on, the
//! other views must equal those of the run without it (checked, not timed). The section
//! `## hotspots` of `target/bench-results.md` is replaced (or appended). No timing assertions.

mod dumps;
mod machine;
mod predecoded;
mod report;

use std::fmt::Write as _;

use lpm_engine::hotspots::{resolution, Resolution};
use lpm_engine::Views;
use machine::{cpu_model, load_average};
use predecoded::{decode, run_engine, Batches};
use report::{env_usize, f2, median, replace_section, workspace_and_target};

/// Median events/s of `runs` ingests with the view off and on, alternating; and the views
/// of the last run of each, for the equality check.
struct Pair {
    off: Vec<f64>,
    on: Vec<f64>,
    views_off: Option<Views>,
    views_on: Option<Views>,
}

fn measure(
    batches: &Batches,
    events: u64,
    workers: usize,
    res: Resolution,
    runs: usize,
) -> Result<Pair, String> {
    let mut pair = Pair {
        off: Vec::new(),
        on: Vec::new(),
        views_off: None,
        views_on: None,
    };
    for i in 0..runs {
        for hotspots in [None, Some(res)] {
            eprintln!(
                "bench: hotspots {} workers={workers} run {}/{runs}",
                if hotspots.is_some() { "on" } else { "off" },
                i + 1
            );
            let r = run_engine(batches.clone(), workers, true, hotspots)?;
            let eps = events as f64 / r.seconds.max(1e-9);
            if hotspots.is_some() {
                pair.on.push(eps);
                pair.views_on = Some(r.views);
            } else {
                pair.off.push(eps);
                pair.views_off = Some(r.views);
            }
        }
    }
    Ok(pair)
}

fn main() {
    let (_, target) = workspace_and_target();
    let data_dir = target.join("bench-data");
    let persons = env_usize("LPM_BENCH_HOTSPOTS_PERSONS", 100_000);
    let runs = env_usize("LPM_BENCH_RUNS", 3).max(1);
    let res_n = env_usize("LPM_BENCH_HOTSPOTS_RES", 7);
    let Some(res) = u8::try_from(res_n).ok().and_then(resolution) else {
        eprintln!("bench: ERROR: LPM_BENCH_HOTSPOTS_RES must be 0 to 15, not {res_n}");
        std::process::exit(2);
    };
    let load_start = load_average();
    let dump = match dumps::ensure(&data_dir, &dumps::Generator::Testkit, persons, false) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bench: ERROR: no dump: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("bench: decoding {} into memory ...", dump.label());
    let (batches, events) = match decode(&dump) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: ERROR: decoding: {e}");
            std::process::exit(1);
        }
    };

    let mut out = String::from("## hotspots\n\n");
    let _ = writeln!(
        out,
        "`cargo bench -p lpm-benches --bench hotspots`: engine-only ingest of {} ({} records, {events} change events, testkit generator, pre-decoded) with the `hotspots` view off and on (H3 resolution {}), medians of {runs} alternating runs.\n",
        dump.label(),
        dump.records,
        u8::from(res)
    );
    out.push_str(
        "| workers | events/s, off | events/s, on | on / off | cells | other views equal |\n",
    );
    out.push_str("| ---: | ---: | ---: | ---: | ---: | --- |\n");
    let mut failed = false;
    for workers in [1, 2] {
        match measure(&batches, events, workers, res, runs) {
            Ok(p) => {
                let (off, on) = (
                    median(&p.off).unwrap_or(f64::NAN),
                    median(&p.on).unwrap_or(f64::NAN),
                );
                let cells = p
                    .views_on
                    .as_ref()
                    .and_then(|v| v.hotspots.as_ref())
                    .map_or(0, |h| h.len());
                let equal = match (p.views_off, p.views_on) {
                    (Some(a), Some(mut b)) => {
                        b.hotspots = None;
                        a == b
                    }
                    _ => false,
                };
                failed |= !equal;
                let _ = writeln!(
                    out,
                    "| {workers} | {off:.0} | {on:.0} | {} | {cells} | {equal} |",
                    f2(on / off)
                );
            }
            Err(e) => {
                eprintln!("bench: ERROR: {e}");
                failed = true;
                let _ = writeln!(out, "| {workers} | error: {e} | | | | |");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n* machine: {}; load average {load_start} at start, {} at end",
        cpu_model(),
        load_average()
    );
    print!("{out}");
    let path = target.join("bench-results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, replace_section(&old, "hotspots", &out)) {
        eprintln!("bench: ERROR: writing {}: {e}", path.display());
    }
    if failed {
        std::process::exit(1);
    }
}
