//! The "JSON parse floor": what merely parsing a `kcat -C -J` dump costs, with nothing done
//! with the result.
//!
//! # Why this is a floor
//! Every record of a dump is a JSON line whose `key` and `payload` are themselves JSON texts in
//! escaped strings. Any decoder that reads them through a JSON parser must at least parse the
//! line, then the key and the payload. This does exactly that with `serde_json` into
//! [`serde_json::Value`] (a DOM: the allocating, general route most stream processors take),
//! on `threads` threads over contiguous shares of the lines, and keeps nothing: no schema, no
//! typing, no row, no engine.
//!
//! The dump is read into memory before the clock starts, so the floor does not pay for the
//! file; `lpm replay`'s rate includes its own reading. A ratio above 1 means the whole pipeline
//! (decode, upsert, dataflow, views) runs faster than this parse alone, which a decoder can do
//! by parsing once from the escaped strings into typed rows with borrowed strings, never
//! building a DOM.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

/// What one floor run measured.
pub struct FloorRun {
    /// Records (non-blank lines) parsed.
    pub records: u64,
    /// Seconds spent parsing (the file already in memory).
    pub seconds: f64,
}

/// Parses every line of the dump at `path`, then its `key` and `payload` JSON texts, on
/// `threads` threads. A line that does not parse is an error (generated dumps have none).
pub fn run(path: &Path, threads: usize) -> Result<FloorRun, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let share = lines.len().div_ceil(threads.max(1)).max(1);
    let started = Instant::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(share)
            .map(|part| s.spawn(move || parse_all(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a parse thread panicked".into()))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut records = 0;
    for c in counts {
        records += c?;
    }
    Ok(FloorRun { records, seconds })
}

/// Parses `lines` and the key and payload each holds; returns how many lines.
fn parse_all(lines: &[&str]) -> Result<u64, String> {
    for line in lines {
        let record: Value = serde_json::from_str(line).map_err(|e| format!("a line: {e}"))?;
        for part in ["key", "payload"] {
            if let Some(inner) = record.get(part).and_then(Value::as_str) {
                let parsed: Value =
                    serde_json::from_str(inner).map_err(|e| format!("a {part}: {e}"))?;
                std::hint::black_box(&parsed);
            }
        }
        std::hint::black_box(&record);
    }
    Ok(lines.len() as u64)
}
