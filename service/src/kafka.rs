//! `lpm serve --kafka BROKERS`: the engine fed from Debezium change topics on Kafka.
//!
//! The source itself (consumer thread, per-worker decoding, commits of visible offsets, dead
//! letters) is `lpm_connectors::kafka`; this module connects it to the server: the engine's
//! visible tick for commits, freshness from the records' Kafka timestamps, the positions each
//! tick covers for `/api/v1/views`, readiness once the partitions are caught up.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use lpm_connectors::kafka::{self, KafkaConfig, KafkaError, KafkaSource};
use lpm_connectors::{Catalog, DecodeStats};
use lpm_engine::{Tick, ViewStore};

use crate::position::{PartitionOffset, SourcePosition};
use crate::sor::{PendingTicks, PushedTick};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running Kafka source, as the API sees it.
pub struct KafkaInput {
    /// The source (feed, stats, positions).
    pub source: KafkaSource,
    pending: Arc<Mutex<PendingTicks>>,
    store: Arc<OnceLock<Arc<ViewStore>>>,
}

impl KafkaInput {
    /// Creates the consumer and its feed. The engine must then be started on
    /// [`KafkaSource::feed`] and its store handed over with [`KafkaInput::attach`].
    pub fn start(
        cfg: KafkaConfig,
        workers: usize,
        decode_stats: Arc<DecodeStats>,
    ) -> Result<KafkaInput, KafkaError> {
        let store: Arc<OnceLock<Arc<ViewStore>>> = Arc::new(OnceLock::new());
        let pending = Arc::new(Mutex::new(PendingTicks::default()));
        let s = store.clone();
        let visible = Arc::new(move || s.get().and_then(|st| st.tick()));
        let p = pending.clone();
        let on_tick = Box::new(move |tick: Tick, stamps: &[i64]| {
            let mut pending = lock(&p);
            pending.insert(tick, stamps.to_vec());
            pending.trim(100_000);
        });
        let source = kafka::start(
            cfg,
            workers,
            Arc::new(Catalog::lpm()),
            decode_stats,
            visible,
            on_tick,
        )?;
        Ok(KafkaInput {
            source,
            pending,
            store,
        })
    }

    /// Hands over the engine's store (commits and readiness follow its ticks).
    pub fn attach(&self, store: Arc<ViewStore>) {
        let _ = self.store.set(store);
    }

    /// The source position a tick covers.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        let p = self.source.position_at(tick);
        SourcePosition::Kafka {
            log_seq: p.records,
            offsets: p
                .offsets
                .into_iter()
                .map(|(topic, partition, offset)| PartitionOffset {
                    topic,
                    partition,
                    offset,
                })
                .collect(),
        }
    }

    /// Ticks at or below `visible` (freshness from their records' Kafka timestamps) and since
    /// when the oldest invisible one waits.
    pub fn take_visible(&self, visible: Option<Tick>) -> (Vec<PushedTick>, Option<Instant>) {
        lock(&self.pending).take_visible(visible)
    }
}
