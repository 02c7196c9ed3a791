//! The sink's instruments (`lpm_sink_*`), registered once in the server's registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Every sink instrument.
#[derive(Clone)]
pub struct SinkMetrics {
    /// `lpm_sink_transactions_total`: committed transactions.
    pub transactions: IntCounter,
    /// `lpm_sink_reconciles_total`: committed transactions that reconciled whole tables.
    pub reconciles: IntCounter,
    /// `lpm_sink_rows_written_total`: rows upserted or deleted.
    pub rows_written: IntCounter,
    /// `lpm_sink_errors_total`: failed connects and transactions.
    pub errors: IntCounter,
    /// `lpm_sink_tick`: the last tick written.
    pub tick: IntGauge,
    /// `lpm_sink_lag_ticks`: the engine's tick minus the last tick written.
    pub lag: IntGauge,
    /// `lpm_sink_up`: 1 when the last MySQL round trip succeeded.
    pub up: IntGauge,
    /// `lpm_sink_waiting`: 1 while the engine has not yet reached the stored position.
    pub waiting: IntGauge,
    /// `lpm_sink_ticks_per_transaction`: how many ticks each transaction grouped.
    pub group: Histogram,
}

impl SinkMetrics {
    /// Creates and registers the instruments.
    pub fn register(r: &Registry) -> Result<SinkMetrics, prometheus::Error> {
        use crate::register as reg;
        Ok(SinkMetrics {
            transactions: reg(
                r,
                IntCounter::new(
                    "lpm_sink_transactions_total",
                    "Committed sink transactions.",
                )?,
            )?,
            reconciles: reg(
                r,
                IntCounter::new(
                    "lpm_sink_reconciles_total",
                    "Committed sink transactions that reconciled whole tables.",
                )?,
            )?,
            rows_written: reg(
                r,
                IntCounter::new(
                    "lpm_sink_rows_written_total",
                    "Aggregate rows upserted or deleted by the sink.",
                )?,
            )?,
            errors: reg(
                r,
                IntCounter::new(
                    "lpm_sink_errors_total",
                    "Failed sink connects and transactions.",
                )?,
            )?,
            tick: reg(
                r,
                IntGauge::new("lpm_sink_tick", "The last engine tick the sink wrote.")?,
            )?,
            lag: reg(
                r,
                IntGauge::new(
                    "lpm_sink_lag_ticks",
                    "Engine ticks not yet written by the sink.",
                )?,
            )?,
            up: reg(
                r,
                IntGauge::new(
                    "lpm_sink_up",
                    "1 when the sink's last MySQL round trip succeeded.",
                )?,
            )?,
            waiting: reg(
                r,
                IntGauge::new(
                    "lpm_sink_waiting",
                    "1 while the engine has not yet reached the position the sink stored.",
                )?,
            )?,
            group: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lpm_sink_ticks_per_transaction",
                        "Engine ticks grouped into one sink transaction.",
                    )
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
                )?,
            )?,
        })
    }
}
