//! Log output on stderr: `--log` picks what, `--log-format` picks the shape.
//!
//! Text is for people at a terminal; JSON (one object per line) is for log collectors, which
//! otherwise have to parse a human format and choke on colour codes. Colour is only used when
//! stderr is a terminal, so redirected and collected text logs carry no ANSI escapes either.

use std::io::IsTerminal;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured only when stderr is a terminal.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// Installs the global subscriber. An invalid `filter` falls back to `warn` (and says so), so a
/// typo in `LPM_LOG` never stops a server from starting.
pub fn init(filter: &str, format: LogFormat) {
    let (env_filter, invalid) = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (tracing_subscriber::EnvFilter::new("warn"), Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    if let Some(e) = invalid {
        tracing::warn!(filter, error = %e, "Invalid log filter; using `warn`.");
    }
}
