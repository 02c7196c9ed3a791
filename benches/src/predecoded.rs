//! Dumps decoded once into memory, and the engine run over them at their original ticks:
//! "engine only" figures, without the decoding cost (shared by the throughput and hotspots
//! benches).
// each bench target that includes this module uses a part of it
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::{Catalog, DecodeStats, DumpFeed, DumpOptions};
use lpm_engine::change::Change;
use lpm_engine::hotspots::Resolution;
use lpm_engine::{Engine, EngineConfig, Feed, FeedItem, Views};
use parking_lot::Mutex;

use crate::dumps::Dump;

/// The zone of every bench run.
pub const TZ: chrono_tz::Tz = chrono_tz::America::Guayaquil;

/// Pre-decoded batches with their ticks.
pub type Batches = Vec<(u64, Vec<Change>)>;

/// Decodes a dump into memory through `DumpFeed`, on this thread.
pub fn decode(dump: &Dump) -> Result<(Batches, u64), String> {
    let options = DumpOptions::new(&dump.path);
    let stats = Arc::new(DecodeStats::default());
    let feed = DumpFeed::open(&options, Arc::new(Catalog::lpm()), stats.clone())
        .map_err(|e| format!("opening {}: {e}", dump.path.display()))?;
    let mut batches = Vec::new();
    let mut events = 0u64;
    loop {
        match feed.next(0) {
            FeedItem::Batch { tick, changes } => {
                events += changes.len() as u64;
                batches.push((tick, changes));
            }
            FeedItem::Control { .. } | FeedItem::Idle { .. } => {}
            FeedItem::End => break,
        }
    }
    if let Some(e) = feed.read_error() {
        return Err(e.to_string());
    }
    let errors = stats.errors_total();
    if errors > 0 {
        eprintln!(
            "bench: WARNING: {errors} records of {} failed to decode",
            dump.label()
        );
    }
    Ok((batches, events))
}

/// Hands out pre-decoded batches to whichever worker asks next, at their original ticks.
pub struct PreDecoded {
    batches: Mutex<std::vec::IntoIter<(u64, Vec<Change>)>>,
}

impl Feed for PreDecoded {
    fn next(&self, _worker: usize) -> FeedItem {
        let next = self.batches.lock().next();
        match next {
            Some((tick, changes)) => FeedItem::Batch { tick, changes },
            None => FeedItem::End,
        }
    }
}

pub struct EngineRun {
    /// Wall time from `Engine::start` to the end of the input.
    pub seconds: f64,
    /// When the first tick completed.
    pub first_tick_ms: Option<f64>,
    /// The final views.
    pub views: Views,
    /// Row events the upsert applied.
    pub applied: u64,
}

/// Runs the engine over pre-decoded `batches`; `hotspots` turns the `hotspots` view on.
pub fn run_engine(
    batches: Batches,
    workers: usize,
    arrangement_log: bool,
    hotspots: Option<Resolution>,
) -> Result<EngineRun, String> {
    let feed = Arc::new(PreDecoded {
        batches: Mutex::new(batches.into_iter()),
    });
    let config = EngineConfig {
        workers,
        tz: TZ,
        case_model: false,
        collect_rows: false,
        arrangement_log,
        hotspots: hotspots.into_iter().collect(),
        ..EngineConfig::default()
    };
    let started = Instant::now();
    let engine = Engine::start(config, feed).map_err(|e| format!("Engine::start: {e}"))?;
    let store = engine.handle().store().clone();
    while !store.wait_finished(Duration::from_secs(1)) {}
    let (_tick, views) = store.read();
    let first = store.first_tick_at();
    let summary = engine.join().map_err(|e| format!("engine: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(EngineRun {
        seconds,
        first_tick_ms: first.map(|t| t.duration_since(started).as_secs_f64() * 1e3),
        views,
        applied: summary.upsert.applied,
    })
}
