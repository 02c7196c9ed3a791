//! Our own generator (testkit) across encodings, orders, duplicates, snapshots, partitions and
//! DST zones: `lpm replay` with 1 and 2 workers must reach the simulator's own final database
//! state, as computed by the independent reference model. Runs without `../shared`; the shared
//! oracle cross-check (`scripts/oracle-check.sh`) adds the same matrix on the shared generator.

use chrono::NaiveDate;
use lpm_testkit::gen::{generate, DecimalMode, GenOptions, Order};
use lpm_testkit::reference;

use crate::support::replay;

fn run(name: &str, opts: GenOptions) {
    run_at(name, opts, None);
}

/// [`run`], with the `hotspots` view at H3 resolution `hotspots` when given (`--hotspots`).
fn run_at(name: &str, opts: GenOptions, hotspots: Option<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("changelog.jsonl");
    let truth = {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&dump).expect("create"));
        generate(&opts, &mut f).expect("generate")
    };
    let mut expected = reference::views(&truth.rows, opts.tz);
    let res = hotspots.map(|r| r.to_string());
    if let Some(r) = hotspots {
        let r = lpm_engine::hotspots::resolution(r).expect("a resolution");
        expected["hotspots"] = reference::hotspots(&truth.rows, r);
    }
    let tz = opts.tz.name().to_string();
    let mut outputs = vec![];
    for workers in ["1", "2"] {
        let mut args = vec![
            dump.to_str().expect("path"),
            "--tz",
            &tz,
            "--workers",
            workers,
            "--tick-records",
            "5000",
        ];
        if let Some(r) = &res {
            args.extend(["--hotspots", r.as_str()]);
        }
        let (actual, _) = replay(&args);
        let diffs = reference::compare(&expected, &actual);
        assert!(
            diffs.is_empty(),
            "{name}, {workers} workers: {} differences, first: {:?}",
            diffs.len(),
            &diffs[..diffs.len().min(10)]
        );
        outputs.push(actual);
    }
    assert_eq!(outputs[0], outputs[1], "{name}: worker counts differ");
}

fn base(seed: u64, persons: usize) -> GenOptions {
    GenOptions {
        seed,
        persons,
        ..GenOptions::default()
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

#[test]
fn schemas_precise_decimals() {
    run("schemas precise", base(1, 1500));
}

#[test]
fn schemas_double_decimals() {
    run(
        "schemas double",
        GenOptions {
            decimal: DecimalMode::Double,
            ..base(2, 1500)
        },
    );
}

#[test]
fn schemas_string_decimals_partition_order() {
    run(
        "schemas string partition",
        GenOptions {
            decimal: DecimalMode::String,
            order: Order::Partition,
            ..base(3, 1500)
        },
    );
}

#[test]
fn no_schemas_with_duplicates() {
    run(
        "no schemas dup",
        GenOptions {
            schemas: false,
            duplicate_rate: 0.05,
            ..base(4, 5000)
        },
    );
}

#[test]
fn no_schemas_big_snapshot() {
    run(
        "snapshot 0.3",
        GenOptions {
            schemas: false,
            snapshot_frac: 0.3,
            ..base(5, 5000)
        },
    );
}

#[test]
fn no_schemas_everything_snapshotted() {
    run(
        "snapshot 1",
        GenOptions {
            schemas: false,
            snapshot_frac: 1.0,
            ..base(6, 3000)
        },
    );
}

#[test]
fn one_partition_no_snapshot() {
    run(
        "1 partition",
        GenOptions {
            schemas: false,
            partitions: 1,
            snapshot_frac: 0.0,
            ..base(7, 5000)
        },
    );
}

#[test]
fn six_partitions_partition_order_duplicates() {
    run(
        "6 partitions",
        GenOptions {
            schemas: false,
            partitions: 6,
            order: Order::Partition,
            duplicate_rate: 0.05,
            ..base(8, 5000)
        },
    );
}

#[test]
fn new_york_spring_forward() {
    let tz = "America/New_York".parse().expect("tz");
    run(
        "new york",
        GenOptions {
            schemas: false,
            tz,
            start: date(2024, 3, 1),
            days: 20,
            ..base(9, 5000)
        },
    );
}

#[test]
fn madrid_fall_back() {
    let tz = "Europe/Madrid".parse().expect("tz");
    run(
        "madrid fall",
        GenOptions {
            schemas: false,
            tz,
            start: date(2024, 10, 20),
            days: 14,
            decimal: DecimalMode::String,
            ..base(10, 5000)
        },
    );
}

#[test]
fn madrid_spring_forward_with_schemas() {
    let tz = "Europe/Madrid".parse().expect("tz");
    run(
        "madrid spring",
        GenOptions {
            tz,
            start: date(2024, 3, 25),
            days: 14,
            order: Order::Partition,
            ..base(11, 1500)
        },
    );
}

#[test]
fn kolkata_half_hour_offset() {
    let tz = "Asia/Kolkata".parse().expect("tz");
    run(
        "kolkata",
        GenOptions {
            schemas: false,
            tz,
            duplicate_rate: 0.1,
            snapshot_frac: 0.5,
            partitions: 5,
            ..base(12, 4000)
        },
    );
}

/// A dump with `case_sightings` inserts, corrections, deletes and re-deliveries: the views are
/// those of the same dump without them (the other rows come from their own random stream),
/// the reference model's, and `oracle.py`'s (it skips the table) when `../shared` is there.
#[test]
fn sightings_move_no_view_and_agree_with_the_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump_of = |sightings: bool| {
        let opts = GenOptions {
            sightings,
            duplicate_rate: 0.05,
            ..base(18, 1200)
        };
        let path = dir.path().join(format!("sightings-{sightings}.jsonl"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let truth = generate(&opts, &mut f).expect("generate");
        drop(f);
        (path, truth, opts)
    };
    let (with, truth, opts) = dump_of(true);
    let (without, _, _) = dump_of(false);
    let text = std::fs::read_to_string(&with).expect("read dump");
    let topic = "\"lpm.lost_persons_db.case_sightings\"";
    assert!(
        text.lines().filter(|l| l.contains(topic)).count() > 100,
        "the dump holds sightings"
    );
    assert!(
        truth.rows.count(lpm_engine::model::Table::CaseSightings) > 50,
        "sightings survive to the end"
    );
    let tz = opts.tz.name().to_string();
    let views = |dump: &std::path::Path| {
        replay(&[dump.to_str().expect("path"), "--tz", &tz, "--workers", "2"]).0
    };
    let (a, b) = (views(&with), views(&without));
    assert_eq!(a, b, "sightings changed a view");
    let diffs = reference::compare(&reference::views(&truth.rows, opts.tz), &a);
    assert!(diffs.is_empty(), "{diffs:?}");
    if let Some(script) = crate::support::oracle_script() {
        crate::support::assert_oracle_agrees(&script, &with, &tz, &a, dir.path());
    }
}

#[test]
fn hotspots_at_three_resolutions() {
    for (seed, res) in [(21, 5), (22, 7), (23, 9)] {
        let opts = GenOptions {
            schemas: false,
            duplicate_rate: 0.05,
            decimal: [
                DecimalMode::Precise,
                DecimalMode::Double,
                DecimalMode::String,
            ][(seed % 3) as usize],
            ..base(seed, 2000)
        };
        run_at(&format!("hotspots at resolution {res}"), opts, Some(res));
    }
}
