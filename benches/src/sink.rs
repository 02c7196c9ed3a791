//! Aggregate sink benchmark: `cargo bench -p lpm-benches --bench sink` (needs a MariaDB:
//! `bash scripts/mariadb.sh start`; URL from `LPM_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3307`).
//!
//! Writes `LPM_BENCH_SINK_TICKS` (default 1000) synthetic ticks to a fresh database with the
//! sink's own transaction (`lpm_service::sink::mysql::write`), once per group size in
//! `LPM_BENCH_SINK_GROUPS` (default `1,8,64`): group 1 is one transaction per tick, larger
//! groups write the views at each group's last tick in one transaction, as the sink does when
//! ticks wait. The views start at a demo-sized state (1 000 hourly rows, 50 responsibles) and
//! each tick is one new report (about 11 changed rows; every 5th also closes a case). Reported:
//! ticks/s, rows/s and transactions/s; a `## sink` section is replaced in
//! `target/bench-results.md`.

mod report;

use std::path::PathBuf;
use std::time::Instant;

use lpm_engine::views::{LoadEntry, Views};
use lpm_service::position::SourcePosition;
use lpm_service::sink::mysql::{self, Write};
use lpm_service::sink::tables::{self, Image};
use mysql_async::prelude::Queryable;
use report::{env_usize, f2, replace_section};

fn base_views() -> Views {
    let mut v = Views::default();
    for (i, n) in v.age_group.values_mut().enumerate() {
        *n = 100 + i as i64;
    }
    for h in 0..1000i64 {
        v.hourly.insert((1_794_000_000 + h * 3600).to_string(), 3);
    }
    v.responsible_load = (1..=50)
        .map(|id| LoadEntry {
            id,
            full_name: format!("Responsable {id}"),
            agency: "ECU 911".into(),
            open_cases: 10,
        })
        .collect();
    v.kpi.total_reports = 3000;
    v.kpi.mean_hours_to_close = Some(12.5);
    v
}

/// The views after one more report (and every 5th tick a closed case).
fn step(v: &mut Views, tick: usize) {
    let bump = |m: &mut std::collections::BTreeMap<String, i64>, k: &str| {
        *m.entry(k.to_string()).or_default() += 1;
    };
    bump(&mut v.age_group, ["0-11", "18-29", "60+"][tick % 3]);
    bump(&mut v.gender, ["female", "male"][tick % 2]);
    bump(&mut v.hour_of_day, &(tick % 24).to_string());
    bump(
        &mut v.hourly,
        &(1_794_000_000 + (1000 + tick as i64 / 10) * 3600).to_string(),
    );
    bump(&mut v.cases_by_status, "open");
    bump(&mut v.open_by_priority, ["low", "high"][tick % 2]);
    bump(&mut v.row_counts, "persons_lost");
    bump(&mut v.row_counts, "case_cases");
    v.kpi.total_reports += 1;
    v.kpi.open_cases += 1;
    if tick.is_multiple_of(5) {
        v.kpi.closed_cases += 1;
        v.kpi.mean_hours_to_close = Some(12.5 + (tick % 7) as f64 / 8.0);
        let i = tick % v.responsible_load.len();
        v.responsible_load[i].open_cases += 1;
    }
}

struct Run {
    group: usize,
    ticks: usize,
    transactions: usize,
    rows: usize,
    seconds: f64,
}

async fn run(url: &str, db: &str, group: usize, ticks: usize) -> Result<Run, String> {
    let root = mysql_async::Opts::from_url(url).map_err(|e| e.to_string())?;
    let mut admin = mysql_async::Conn::new(root.clone())
        .await
        .map_err(|e| format!("{url}: {e} (start one with `bash scripts/mariadb.sh start`)"))?;
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await
        .map_err(|e| e.to_string())?;
    admin
        .query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .map_err(|e| e.to_string())?;
    let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(root)
        .db_name(Some(db))
        .into();
    let mut conn = mysql::connect(&opts).await.map_err(|e| e.to_string())?;
    let mut views = base_views();
    let position = |tick: usize| SourcePosition::EmbeddedLog {
        log_seq: tick as u64,
    };
    // the starting state, by reconcile (not timed)
    let mut written: Image = tables::image(&views);
    mysql::write(
        &mut conn,
        Write {
            sink_id: "bench",
            tick: 0,
            position: &position(0),
            image: &written,
            written: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let (mut transactions, mut rows) = (0, 0);
    let started = Instant::now();
    let mut tick = 0;
    while tick < ticks {
        let last = (tick + group).min(ticks);
        while tick < last {
            tick += 1;
            step(&mut views, tick);
        }
        let image = tables::image(&views);
        let c = mysql::write(
            &mut conn,
            Write {
                sink_id: "bench",
                tick: tick as u64,
                position: &position(tick),
                image: &image,
                written: Some(&written),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        written = image;
        transactions += 1;
        rows += c.rows;
    }
    let seconds = started.elapsed().as_secs_f64();
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Run {
        group,
        ticks,
        transactions,
        rows,
        seconds,
    })
}

fn main() {
    let url = std::env::var("LPM_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".into());
    let ticks = env_usize("LPM_BENCH_SINK_TICKS", 1000);
    let groups: Vec<usize> = std::env::var("LPM_BENCH_SINK_GROUPS")
        .unwrap_or_else(|_| "1,8,64".into())
        .split(',')
        .filter_map(|g| g.trim().parse().ok())
        .filter(|g| *g > 0)
        .collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench sink: ERROR: runtime: {e}");
            std::process::exit(1);
        }
    };
    let db = format!("lpm_sink_bench_{}", std::process::id());
    let mut lines = vec![
        "## sink".to_string(),
        String::new(),
        format!(
            "{ticks} ticks (one report each, ~11 changed rows) written by `lpm_service::sink::mysql::write` \
             to MariaDB at {url}; cores: {}.",
            report::cores()
        ),
        String::new(),
        "| ticks per transaction | transactions | rows written | seconds | ticks/s | rows/s | transactions/s |".into(),
        "|---|---|---|---|---|---|---|".into(),
    ];
    for g in groups {
        match rt.block_on(run(&url, &db, g, ticks)) {
            Ok(r) => lines.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.transactions,
                r.rows,
                f2(r.seconds),
                f2(r.ticks as f64 / r.seconds),
                f2(r.rows as f64 / r.seconds),
                f2(r.transactions as f64 / r.seconds)
            )),
            Err(e) => {
                eprintln!("bench sink: group {g}: ERROR: {e}");
                std::process::exit(1);
            }
        }
    }
    let report = lines.join("\n");
    println!("{report}");
    let target = target_dir();
    let path = target.join("bench-results.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    match std::fs::write(&path, replace_section(&old, "sink", &report)) {
        Ok(()) => eprintln!("bench: wrote the ## sink section of {}", path.display()),
        Err(e) => eprintln!("bench: ERROR: writing {}: {e}", path.display()),
    }
}

fn target_dir() -> PathBuf {
    report::workspace_and_target().1
}
