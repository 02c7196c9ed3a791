//! `lpm`: the command line. Wiring only: parse flags, set up logging, call the crates.
//! Library code lives in `engine/`, `connectors/` and `api/`; this file stays thin so that every
//! behaviour is testable without a process.

mod capture;
mod cluster;
mod config;
mod generate;
mod kafka;
mod logging;
mod migrate;
mod notify;
mod replay;
mod serve;
mod sink;

/// mimalloc: the decode path allocates many short-lived strings per record; measured faster
/// than the system allocator in `benches/` (see docs/operations.md). The `system-alloc` feature
/// leaves the system allocator in place, for heap profilers that hook `malloc` (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// `lpm --version`: the crate version and the git commit it was built from (build.rs; `unknown`
/// when built without git), so a bug report names the exact code.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LPM_GIT_COMMIT"), ")");

/// Lost Persons Monitor: exact live views over Debezium change streams.
#[derive(Parser)]
#[command(name = "lpm", version = VERSION, about)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `lpm=debug`.
    /// Default: `info` for `serve` and `capture`, `warn` otherwise.
    #[arg(long, env = "LPM_LOG", global = true)]
    log: Option<String>,
    /// Log format on stderr: `text` (coloured only on a terminal) or `json` (one object a line).
    #[arg(
        long,
        env = "LPM_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = logging::LogFormat::Text
    )]
    log_format: logging::LogFormat,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(generate::CompletionsArgs),
    /// Print the man page (or write one page per command with `--out-dir`).
    Man(generate::ManArgs),
}

/// Exit status of a command that ran and failed (unreadable input, unreachable server, refused
/// start). Usage errors (unknown flag, missing argument) exit 2, as clap makes them, so scripts
/// and supervisors can tell "fix the command line" from "the run failed".
const EXIT_RUNTIME_ERROR: u8 = 1;
/// Exit status of a usage error; clap uses it too. An unreadable or invalid configuration file
/// is one: like a bad flag, it is fixed by editing what the operator wrote, not by retrying.
const EXIT_USAGE_ERROR: u8 = 2;

/// Parses the command line. For `serve`, the configuration file's settings (src/config.rs)
/// first become the arguments' defaults, so flags and environment still win over it; that
/// needs a first parse to find the command and `--config`. Returns the file read, if any.
fn parse_command_line() -> Result<(Cli, Option<PathBuf>), std::process::ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let first = Cli::command().get_matches_from(&argv);
    let Some(path) = first.subcommand_matches("serve").and_then(config::path_for) else {
        return Ok((
            Cli::from_arg_matches(&first).unwrap_or_else(|e| e.exit()),
            None,
        ));
    };
    let cmd = config::apply_file(Cli::command(), &path).map_err(|e| {
        eprintln!("lpm: error: {e:#}");
        std::process::ExitCode::from(EXIT_USAGE_ERROR)
    })?;
    let matches = cmd.get_matches_from(&argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Ok((cli, Some(path)))
}

fn main() -> std::process::ExitCode {
    let (cli, config_file) = match parse_command_line() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let default = match cli.command {
        Command::Serve(_) | Command::Capture(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log.as_deref().unwrap_or(default), cli.log_format);
    if let Some(path) = config_file {
        tracing::info!(file = %path.display(), "configuration file read");
    }
    let result = match cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Capture(args) => capture::run(args),
        Command::Kafka(cmd) => kafka::run(cmd),
        Command::Migrate(args) => migrate::run(args),
        Command::User(cmd) => serve::user(cmd),
        Command::Token(cmd) => serve::token(cmd),
        Command::Log(cmd) => serve::log(cmd),
        Command::Completions(args) => generate::completions(args, Cli::command()),
        Command::Man(args) => generate::man(args, Cli::command()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lpm: error: {e:#}");
            std::process::ExitCode::from(EXIT_RUNTIME_ERROR)
        }
    }
}
