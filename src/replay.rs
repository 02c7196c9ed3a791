//! `lpm replay`: a topic dump through the engine, views out as `oracle.py --check` JSON.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use lpm_connectors::debezium::rows::{row_to_json, RowShape};
use lpm_connectors::{Catalog, DecodeStats, DumpFeed, DumpOptions};
use lpm_engine::model::Table;
use lpm_engine::{Engine, EngineConfig};

/// `lpm replay` flags.
#[derive(Args)]
pub struct ReplayArgs {
    /// The dump: a file, `*.gz`, `-` for stdin, or a directory holding `changelog.jsonl`.
    file: PathBuf,
    /// IANA zone for the hour views.
    #[arg(long, env = "LPM_TZ", default_value = "America/Guayaquil", value_parser = parse_tz)]
    tz: chrono_tz::Tz,
    /// Dataflow worker threads (results are identical for any count).
    #[arg(long, short = 'w', env = "LPM_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Also write the final rows of each table to DIR/<table>.jsonl, sorted by id.
    #[arg(long, value_name = "DIR")]
    rows: Option<PathBuf>,
    /// Write the views here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Indent the JSON.
    #[arg(long)]
    pretty: bool,
    /// Append undecodable records, with their reason, to this file (JSON lines).
    #[arg(long, value_name = "FILE", env = "LPM_DEAD_LETTERS")]
    dead_letters: Option<PathBuf>,
    /// Records per tick (a tick is the unit of consistency and of work).
    #[arg(long, default_value_t = 200_000)]
    tick_records: u64,
    /// Also maintain the case read model (case + person + responsible, actions, history).
    #[arg(long)]
    case_model: bool,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Accept an input that cannot be read to its end (a truncated or corrupt gzip, an I/O
    /// error): print the views of the records read before the error, and say how many.
    /// Without it such an input fails the command, because the views would silently miss the rest.
    #[arg(long)]
    allow_truncated: bool,
    /// Also maintain the `hotspots` view at this H3 resolution (0-15) and print it (the
    /// section `oracle.py --hotspots RES` computes).
    #[arg(long, value_name = "RES", value_parser = clap::value_parser!(u8).range(0..=15))]
    hotspots: Option<u8>,
    #[command(flatten)]
    cluster: crate::cluster::ClusterArgs,
}

/// `--tz` of `replay` and `serve`, checked while parsing: an unknown zone is a usage error
/// (exit status 2, with clap's usage line), not a failed run.
pub fn parse_tz(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse()
        .map_err(|_| "unknown IANA time zone (e.g. America/Guayaquil, Europe/Madrid, UTC)".into())
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let tz = args.tz;
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let mut path = args.file.clone();
    if path.is_dir() {
        path = path.join("changelog.jsonl");
    }
    let mut options = DumpOptions::new(&path);
    options.workers = args.workers;
    options.tick_records = args.tick_records.max(1);
    options.dead_letters = args.dead_letters.clone();
    // Views read a few columns; keep the free text only when something will show it.
    if args.rows.is_none() && !args.case_model {
        options.shape = if args.hotspots.is_some() {
            RowShape::ViewsWithCoordinates
        } else {
            RowShape::ViewsOnly
        };
    }
    let cluster = args
        .cluster
        .config(cluster_settings(&args, &path, options.shape))?;
    if let Some(c) = &cluster {
        if args.rows.is_some() {
            bail!("--rows is not supported with --peers: each process holds only its share of the rows");
        }
        options.share = (c.process, c.peers.len());
        options.hold_on_error = !args.allow_truncated;
    }
    let leader = cluster.as_ref().is_none_or(|c| c.process == 0);
    let traffic = cluster
        .as_ref()
        .map(|c| (c.process, c.peers.len(), c.traffic.clone()));
    let stats = Arc::new(DecodeStats::default());
    let feed = Arc::new(
        DumpFeed::open(&options, Arc::new(Catalog::lpm()), stats.clone())
            .with_context(|| format!("opening {}", path.display()))?,
    );
    let config = EngineConfig {
        workers: args.workers,
        tz,
        case_model: args.case_model,
        collect_rows: args.rows.is_some(),
        hotspots: args
            .hotspots
            .and_then(lpm_engine::hotspots::resolution)
            .into_iter()
            .collect(),
        ..EngineConfig::default()
    };
    let started = Instant::now();
    let clustered = cluster.is_some();
    let engine = Engine::start_in(config, feed.clone(), cluster)?;
    let store = engine.handle().store().clone();
    let progress = (!args.no_progress).then(|| progress_bar(feed.total_bytes));
    let show_progress = || {
        if let Some(bar) = &progress {
            bar.set_position(feed.bytes_read());
            bar.set_message(format!(
                "{} records",
                stats.records.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
    };
    // A cluster process whose input broke holds its feed open (the cluster cannot finish
    // without its share) and stops here: fail-stop, so no process prints views that miss it.
    let broken = || {
        match (feed.read_error(), clustered && !args.allow_truncated) {
        (Some(e), true) => bail!("{e}; no views written (a cluster is fail-stop; --allow-truncated accepts the records read before the error)"),
        _ => Ok(()),
    }
    };
    // only process 0 holds worker 0, where the views gather: the others wait for the workers
    if leader {
        crate::cluster::wait(
            &engine,
            &broken,
            |wait| store.wait_finished(wait),
            show_progress,
        )?;
    }
    let (tick, views) = store.read();
    let first_tick = store.first_tick_at();
    let summary = if clustered {
        crate::cluster::join(engine, &broken, || {
            if let Some(bar) = &progress {
                bar.set_position(feed.bytes_read());
            }
        })?
    } else {
        engine.join()?
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    feed.finish();
    let elapsed = started.elapsed();

    // A partial input fails before any output: views of part of a dump look like real views.
    let read_error = feed.read_error();
    if let (Some(e), false) = (read_error, args.allow_truncated) {
        bail!(
            "{e}; no views written (--allow-truncated accepts the records read before the error)"
        );
    }

    if leader {
        print_views(&args, &views)?;
    }
    if let Some(dir) = &args.rows {
        write_rows(dir, &summary.rows)?;
    }

    let records = stats.records.load(std::sync::atomic::Ordering::Relaxed);
    let u = summary.upsert;
    let first_tick_ms = first_tick.map_or(-1.0, |t| t.duration_since(started).as_secs_f64() * 1e3);
    eprintln!(
        "lpm replay: {records} records in {:.2}s ({:.0}/s), {} workers, last tick {}, first tick after {first_tick_ms:.0} ms, peak RSS {} bytes, {} state entries; applied {}, duplicates {}, stale {}, unknown deletes {}, truncated {}, swept {}, decode errors {}",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64().max(1e-9),
        args.workers,
        tick.map_or("none".to_string(), |t| t.to_string()),
        peak_rss_bytes().unwrap_or(0),
        summary.state_entries,
        u.applied,
        u.duplicates,
        u.stale,
        u.unknown_deletes,
        u.truncated,
        u.swept,
        stats.errors_total(),
    );
    if let Some((process, processes, traffic)) = traffic {
        let sent = traffic.sent.load(std::sync::atomic::Ordering::Relaxed);
        let received = traffic.received.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "lpm replay: cluster process {process} of {processes} (the counts above are this process's share); exchanged with the other processes: {sent} bytes sent, {received} bytes received"
        );
    }
    for (reason, n) in stats.error_counts() {
        eprintln!("lpm replay: {n} records dead-lettered: {reason}");
    }
    if let Some(lpm_connectors::DumpError::Truncated {
        path,
        records,
        source,
    }) = read_error
    {
        eprintln!("lpm replay: input truncated: read {records} records of {path}, then: {source}");
    }
    Ok(())
}

/// The views as JSON on stdout or in `--out`.
fn print_views(args: &ReplayArgs, views: &lpm_engine::Views) -> anyhow::Result<()> {
    let json = serde_json::to_value(views)?;
    let text = if args.pretty {
        serde_json::to_string_pretty(&json)?
    } else {
        serde_json::to_string(&json)?
    };
    match &args.out {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?
        }
        None => writeln!(std::io::stdout().lock(), "{text}")?,
    }
    Ok(())
}

/// What every process of a replay cluster must share, beyond what the engine checks itself:
/// everything that shapes the dataflow or the answer (the views, the zone, the case model, the
/// tick size, the decoded columns) and the input's size, so that a process started on another
/// dump is refused rather than silently mixed in.
fn cluster_settings(
    args: &ReplayArgs,
    path: &std::path::Path,
    shape: RowShape,
) -> Vec<(String, String)> {
    let input = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        std::fs::metadata(path)
            .map_or_else(|_| "unreadable".into(), |m| format!("{} bytes", m.len()))
    };
    vec![
        ("command".into(), "replay".into()),
        ("tz".into(), args.tz.name().into()),
        ("case model".into(), args.case_model.to_string()),
        (
            "hotspots".into(),
            args.hotspots.map_or("off".into(), |r| r.to_string()),
        ),
        ("tick records".into(), args.tick_records.max(1).to_string()),
        ("decoded columns".into(), format!("{shape:?}")),
        ("input size".into(), input),
    ]
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn write_rows(dir: &std::path::Path, rows: &[lpm_engine::model::Row]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for table in Table::ALL {
        let mut mine: Vec<_> = rows.iter().filter(|r| r.table() == table).collect();
        mine.sort_by_key(|r| r.key());
        let path = dir.join(format!("{}.jsonl", table.name()));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        for r in mine {
            writeln!(out, "{}", serde_json::to_string(&row_to_json(r))?)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
