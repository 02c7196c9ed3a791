//! The dead-letter sink: every record that could not be decoded, with its reason, as JSON lines.
//! Nothing is lost: the whole original record is kept so it can be fixed and replayed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use parking_lot::Mutex;
use serde::Serialize;

/// One rejected record.
#[derive(Serialize)]
pub struct DeadLetter<'a> {
    /// Stable reason label.
    pub reason: &'a str,
    /// Human-readable error.
    pub error: String,
    /// Ingestion sequence number (line number in a dump).
    pub seq: u64,
    /// The original record, verbatim.
    pub record: &'a str,
}

/// Where dead letters go.
pub struct DeadLetterSink {
    out: Option<Mutex<BufWriter<File>>>,
}

impl DeadLetterSink {
    /// Discards dead letters (they are still counted).
    pub fn none() -> DeadLetterSink {
        DeadLetterSink { out: None }
    }

    /// Appends dead letters to `path`.
    pub fn file(path: &Path) -> std::io::Result<DeadLetterSink> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(DeadLetterSink {
            out: Some(Mutex::new(BufWriter::new(f))),
        })
    }

    /// Writes one dead letter.
    pub fn write(&self, letter: &DeadLetter<'_>) {
        if let Some(out) = &self.out {
            let mut w = out.lock();
            let line = serde_json::to_string(letter).unwrap_or_default();
            if let Err(error) = writeln!(w, "{line}") {
                tracing::error!(%error, "Dead-letter write failed.");
            }
        }
    }

    /// Flushes buffered letters.
    pub fn flush(&self) {
        if let Some(out) = &self.out {
            let mut w = out.lock();
            let _ = w.flush();
        }
    }
}
