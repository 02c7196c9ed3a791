//! `lpm`: the command line. Wiring only: parse flags, set up logging, call the crates.
//! Library code lives in `engine/`, `connectors/` and `api/`; this file stays thin so that every
//! behaviour is testable without a process.

mod capture;
mod kafka;
mod migrate;
mod replay;
mod serve;
mod sink;

/// mimalloc: the decode path allocates many short-lived strings per record; measured faster
/// than the system allocator in `benches/` (see docs/operations.md). The `system-alloc` feature
/// leaves the system allocator in place, for heap profilers that hook `malloc` (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Lost Persons Monitor: exact live views over Debezium change streams.
#[derive(Parser)]
#[command(name = "lpm", version, about)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `lpm=debug`.
    /// Default: `info` for `serve`, `warn` otherwise.
    #[arg(long, env = "LPM_LOG", global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a topic dump (`kcat -C -J` JSON lines) through the engine and print the views as JSON.
    Replay(replay::ReplayArgs),
    /// Serve the API, the Grafana data source, the WebSocket stream and metrics (embedded log).
    Serve(Box<serve::ServeArgs>),
    /// Capture a MySQL/MariaDB binlog as Debezium MySQL-connector events (a kcat-style dump).
    Capture(capture::CaptureArgs),
    /// Kafka tools (load a topic dump into a broker).
    #[command(subcommand)]
    Kafka(kafka::KafkaCommand),
    /// Create or upgrade the MySQL schema (versioned migrations compiled into lpm).
    Migrate(migrate::MigrateArgs),
    /// Manage users.
    #[command(subcommand)]
    User(serve::UserCommand),
    /// Manage read-only API tokens.
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Inspect the embedded log.
    #[command(subcommand)]
    Log(serve::LogCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Serve(_) | Command::Capture(_) => "info",
        _ => "warn",
    };
    let filter = cli.log.as_deref().unwrap_or(default);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Capture(args) => capture::run(args),
        Command::Kafka(cmd) => kafka::run(cmd),
        Command::Migrate(args) => migrate::run(args),
        Command::User(cmd) => serve::user(cmd),
        Command::Token(cmd) => serve::token(cmd),
        Command::Log(cmd) => serve::log(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lpm: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
