//! What feeds the engine: the embedded log (which is also the write side), a binlog capture, or
//! Debezium topics on Kafka. This enum is the one place that knows which: the REST views, the
//! aggregate sink, the freshness metrics and the engine page ask it for the position of a tick
//! and the ticks that became visible, whatever the source. A new source is one more variant.

use std::sync::Arc;
use std::time::Instant;

use lpm_engine::Tick;

use crate::capture::CaptureSource;
use crate::kafka::KafkaInput;
use crate::position::SourcePosition;
use crate::sor::{EmbeddedSor, PushedTick};

/// The engine's source.
#[derive(Clone)]
pub enum Source {
    /// The embedded fsync'd log (`lpm serve`, read-write).
    Embedded(Arc<EmbeddedSor>),
    /// A MySQL/MariaDB binlog capture (`--capture`).
    Capture(Arc<CaptureSource>),
    /// Debezium topics on Kafka (`--kafka`).
    Kafka(Arc<KafkaInput>),
}

impl Source {
    /// The name positions and reports use: `embedded-log`, `mysql-binlog` or `kafka`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Embedded(_) => "embedded-log",
            Source::Capture(_) => "mysql-binlog",
            Source::Kafka(_) => "kafka",
        }
    }

    /// Where the source stood at `tick`.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        match self {
            Source::Embedded(s) => s.position_at(tick),
            Source::Capture(s) => s.position_at(tick),
            Source::Kafka(s) => s.position_at(tick),
        }
    }

    /// Ticks that became visible (freshness metrics), and since when the oldest invisible one
    /// waits (staleness).
    pub fn take_visible(&self, visible: Option<Tick>) -> (Vec<PushedTick>, Option<Instant>) {
        match self {
            Source::Embedded(s) => s.take_visible(visible),
            Source::Capture(s) => s.take_visible(visible),
            Source::Kafka(s) => s.take_visible(visible),
        }
    }

    /// The embedded log, when it is the source (and so the write side too).
    pub fn embedded(&self) -> Option<&Arc<EmbeddedSor>> {
        match self {
            Source::Embedded(s) => Some(s),
            _ => None,
        }
    }
}
