//! `lpm-gen`: writes a deterministic Debezium MySQL change stream as a `kcat -C -J` dump and,
//! with `--expected`, the views a correct consumer must compute from it (the simulator's own
//! final database run through the reference model).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::{Parser, ValueEnum};
use lpm_testkit::gen::{self, DecimalMode, GenOptions, Order};
use lpm_testkit::reference;

#[derive(Clone, Copy, ValueEnum)]
enum DecimalArg {
    Precise,
    Double,
    String,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Binlog,
    Partition,
}

/// Deterministic Debezium change-stream generator for lpm tests.
#[derive(Parser)]
#[command(name = "lpm-gen")]
struct Args {
    /// Number of lost-person reports.
    #[arg(long, default_value_t = 1000)]
    persons: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bare keys and values instead of JsonConverter schema envelopes.
    #[arg(long)]
    no_schemas: bool,
    /// DECIMAL encoding.
    #[arg(long, value_enum, default_value = "precise")]
    decimal: DecimalArg,
    /// Fraction of streamed records re-delivered by connector restarts.
    #[arg(long, default_value_t = 0.005)]
    duplicate_rate: f64,
    /// Fraction of reports made before the connector started (snapshotted).
    #[arg(long, default_value_t = 0.1)]
    snapshot_frac: f64,
    /// Partitions per topic.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Line order.
    #[arg(long, value_enum, default_value = "binlog")]
    order: OrderArg,
    /// Local time zone of the source system.
    #[arg(long, default_value = "America/Guayaquil")]
    tz: String,
    /// First local day of reports (YYYY-MM-DD).
    #[arg(long, default_value = "2024-03-01")]
    start: String,
    /// Days with reports.
    #[arg(long, default_value_t = 28)]
    days: u32,
    /// Leave `case_sightings` out (the dump then has only the five tables the oracle reads).
    #[arg(long)]
    no_sightings: bool,
    /// Dump file ('-' for stdout).
    #[arg(long)]
    out: PathBuf,
    /// Also write the expected views JSON here.
    #[arg(long)]
    expected: Option<PathBuf>,
}

fn run(args: Args) -> Result<(), String> {
    let tz: Tz = args
        .tz
        .parse()
        .map_err(|e| format!("--tz {}: {e}", args.tz))?;
    let start = NaiveDate::parse_from_str(&args.start, "%Y-%m-%d")
        .map_err(|e| format!("--start {}: {e}", args.start))?;
    let opts = GenOptions {
        persons: args.persons,
        seed: args.seed,
        schemas: !args.no_schemas,
        decimal: match args.decimal {
            DecimalArg::Precise => DecimalMode::Precise,
            DecimalArg::Double => DecimalMode::Double,
            DecimalArg::String => DecimalMode::String,
        },
        duplicate_rate: args.duplicate_rate,
        snapshot_frac: args.snapshot_frac,
        partitions: args.partitions.max(1),
        order: match args.order {
            OrderArg::Binlog => Order::Binlog,
            OrderArg::Partition => Order::Partition,
        },
        tz,
        start,
        days: args.days.max(1),
        sightings: !args.no_sightings,
    };
    let truth = if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = BufWriter::new(stdout.lock());
        gen::generate(&opts, &mut w)
    } else {
        let file = File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        gen::generate(&opts, &mut w)
    }
    .map_err(|e| format!("writing the dump: {e}"))?;
    if let Some(path) = &args.expected {
        let views = reference::views(&truth.rows, tz);
        let text = serde_json::to_string(&views).map_err(|e| e.to_string())?;
        let mut f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(f, "{text}").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "lpm-gen: {} records ({} snapshot, {} tombstones, {} re-delivered), {} binlog files",
        truth.records,
        truth.snapshot_records,
        truth.tombstones,
        truth.redelivered,
        truth.binlog_files
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lpm-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
