//! `lpm`: the command line. Wiring only: parse flags, set up logging, call the crates.
//! Library code lives in `engine/`, `connectors/` and `api/`; this file stays thin so that every
//! behaviour is testable without a process.

mod replay;

/// mimalloc: the decode path allocates many short-lived strings per record; measured faster
/// than the system allocator in `benches/` (see docs/operations.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Lost Persons Monitor: exact live views over Debezium change streams.
#[derive(Parser)]
#[command(name = "lpm", version, about)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `lpm=debug`.
    #[arg(long, env = "LPM_LOG", default_value = "warn", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a topic dump (`kcat -C -J` JSON lines) through the engine and print the views as JSON.
    Replay(replay::ReplayArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Replay(args) => replay::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lpm: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
