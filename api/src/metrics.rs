//! Prometheus metrics: one registry, instruments registered once, names
//! `lpm_<area>_<thing>_<unit>`, labels fixed and bounded (route templates, never ids).
//!
//! Counters that other parts already keep (decode stats, upsert counters) are mirrored into the
//! registry at scrape time, so hot loops never touch Prometheus.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lpm_connectors::DecodeStats;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every instrument.
pub struct Metrics {
    registry: Registry,
    /// The running source, whose own metrics (`lpm_capture_*`, `lpm_kafka_*`) join the
    /// exposition.
    source: std::sync::OnceLock<lpm_service::source::Source>,
    /// `lpm_http_requests_total{route,method,status}`
    pub http_requests: IntCounterVec,
    /// `lpm_http_request_duration_seconds{route,method}`
    pub http_duration: HistogramVec,
    /// `lpm_ws_clients`
    pub ws_clients: IntGauge,
    /// `lpm_ws_resyncs_total`
    pub ws_resyncs: prometheus::IntCounter,
    /// `lpm_engine_tick`
    pub tick: IntGauge,
    /// `lpm_engine_tick_duration_seconds`: push of a tick -> visible in the views.
    pub tick_duration: Histogram,
    /// `lpm_freshness_seconds`: source commit time -> visible in the views.
    pub freshness: Histogram,
    /// `lpm_view_staleness_seconds{view}`: how long the views have lagged the source (0 when
    /// caught up; keeps growing while stuck).
    pub staleness: prometheus::GaugeVec,
    /// `lpm_ingest_events_total{table,op}` (mirrored from the decoder).
    pub ingested: IntCounterVec,
    /// `lpm_decode_errors_total{reason}` (mirrored).
    pub decode_errors: IntCounterVec,
    /// `lpm_decode_skipped_total{reason}` (mirrored).
    pub skipped: IntCounterVec,
    /// `lpm_upsert_duplicates_dropped_total` and friends (mirrored).
    pub upsert_events: IntCounterVec,
    /// `lpm_upsert_state_rows{table}`.
    pub upsert_rows: IntGaugeVec,
    /// `lpm_arrangement_records{arrangement}`: updates held, summed over workers.
    pub arrangement_records: IntGaugeVec,
    /// `lpm_arrangement_batches{arrangement}`: batches held, summed over workers.
    pub arrangement_batches: IntGaugeVec,
    /// `lpm_ready` (1 when ready).
    pub ready: IntGauge,
    /// `lpm_memory_limit_bytes{source}`: the memory this process may use (cgroup limit, else
    /// the host's RAM), set once at start; the "RSS near limit" alert divides by it.
    pub memory_limit: IntGaugeVec,
    /// `lpm_log_records_dropped`: valid records this start's recovery cut from the embedded
    /// log (only with `--allow-log-cut`; a start without it refuses instead). Non-zero fires
    /// the `LpmLogRecordsDropped` alert.
    pub log_records_dropped: IntGauge,
    /// `lpm_http_connections`: open HTTP connections (WebSockets included).
    pub http_connections: IntGauge,
    /// `lpm_http_accept_errors_total`: failed `accept` calls (e.g. out of file descriptors).
    pub http_accept_errors: prometheus::IntCounter,
    /// `lpm_http_connection_limit_waits_total`: times the accept loop paused at the connection cap.
    pub http_connection_limit_waits: prometheus::IntCounter,
    /// `lpm_ws_closed_total{reason}`: WebSocket clients the server closed (`send_timeout`: it
    /// stopped reading; `pong_timeout`: it stopped answering pings).
    pub ws_closed: IntCounterVec,
    /// The last minute of ticks and freshness samples, for the engine page.
    pub recent: crate::recent::RecentWindow,
    stats: Arc<DecodeStats>,
}

/// Latency buckets from 0.5 ms to 10 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

impl Metrics {
    /// Registers every instrument; `stats` is the decoder's counters.
    pub fn new(stats: Arc<DecodeStats>) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: T,
        ) -> Result<T, prometheus::Error> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let m = Metrics {
            source: std::sync::OnceLock::new(),
            http_requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_http_requests_total",
                        "HTTP requests by route and status.",
                    ),
                    &["route", "method", "status"],
                )?,
            )?,
            http_duration: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lpm_http_request_duration_seconds",
                        "HTTP request latency by route.",
                    )
                    .buckets(latency_buckets()),
                    &["route", "method"],
                )?,
            )?,
            ws_clients: reg(
                r,
                IntGauge::new("lpm_ws_clients", "Connected WebSocket clients.")?,
            )?,
            ws_resyncs: reg(
                r,
                prometheus::IntCounter::new(
                    "lpm_ws_resyncs_total",
                    "Snapshots sent to WebSocket clients that fell behind.",
                )?,
            )?,
            tick: reg(
                r,
                IntGauge::new("lpm_engine_tick", "The last complete engine tick.")?,
            )?,
            tick_duration: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lpm_engine_tick_duration_seconds",
                        "From a tick's input to its views being visible.",
                    )
                    .buckets(latency_buckets()),
                )?,
            )?,
            freshness: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lpm_freshness_seconds",
                        "From the source commit time to the change being visible in the views.",
                    )
                    .buckets(latency_buckets()),
                )?,
            )?,
            staleness: reg(
                r,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "lpm_view_staleness_seconds",
                        "How long each view has lagged the source; 0 when caught up.",
                    ),
                    &["view"],
                )?,
            )?,
            ingested: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_ingest_events_total",
                        "Decoded source events by table and op.",
                    ),
                    &["table", "op"],
                )?,
            )?,
            decode_errors: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_decode_errors_total",
                        "Undecodable source records by reason (dead-lettered).",
                    ),
                    &["reason"],
                )?,
            )?,
            skipped: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_decode_skipped_total",
                        "Records skipped on purpose, by reason.",
                    ),
                    &["reason"],
                )?,
            )?,
            upsert_events: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_upsert_events_total",
                        "Upsert outcomes: applied, duplicate, stale, swept.",
                    ),
                    &["outcome"],
                )?,
            )?,
            upsert_rows: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lpm_upsert_state_rows",
                        "Keys held in the upsert state by table.",
                    ),
                    &["table"],
                )?,
            )?,
            arrangement_records: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lpm_arrangement_records",
                        "Updates held by the dataflow's arrangements, by operator name.",
                    ),
                    &["arrangement"],
                )?,
            )?,
            arrangement_batches: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lpm_arrangement_batches",
                        "Batches held by the dataflow's arrangements, by operator name.",
                    ),
                    &["arrangement"],
                )?,
            )?,
            ready: reg(
                r,
                IntGauge::new("lpm_ready", "1 when the service is ready.")?,
            )?,
            memory_limit: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lpm_memory_limit_bytes",
                        "Memory this process may use: the cgroup limit, else the host's RAM.",
                    ),
                    &["source"],
                )?,
            )?,
            log_records_dropped: reg(
                r,
                IntGauge::new(
                    "lpm_log_records_dropped",
                    "Valid records cut from the embedded log by this start's recovery (--allow-log-cut).",
                )?,
            )?,
            http_connections: reg(
                r,
                IntGauge::new("lpm_http_connections", "Open HTTP connections.")?,
            )?,
            http_accept_errors: reg(
                r,
                prometheus::IntCounter::new(
                    "lpm_http_accept_errors_total",
                    "Failed accepts of new connections (e.g. out of file descriptors).",
                )?,
            )?,
            http_connection_limit_waits: reg(
                r,
                prometheus::IntCounter::new(
                    "lpm_http_connection_limit_waits_total",
                    "Times the accept loop paused because the connection cap was reached.",
                )?,
            )?,
            ws_closed: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "lpm_ws_closed_total",
                        "WebSocket clients closed by the server, by reason.",
                    ),
                    &["reason"],
                )?,
            )?,
            recent: crate::recent::RecentWindow::default(),
            registry,
            stats,
        };
        // Every decode-error reason starts at 0, so the first bad record is an increase that
        // rate()/increase() (the LpmDecodeErrors alert) see, not a series born at 1.
        for reason in lpm_connectors::stats::ERROR_REASONS {
            m.decode_errors.with_label_values(&[reason]);
        }
        for reason in crate::stream::CLOSE_REASONS {
            m.ws_closed.with_label_values(&[reason]);
        }
        if let Some((bytes, source)) = crate::memory_limit::detect() {
            m.memory_limit
                .with_label_values(&[source.as_str()])
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(m)
    }

    /// Mirrors counters kept elsewhere into the registry.
    fn mirror(&self) {
        for (table, op, n) in self.stats.ingested_counts() {
            set_counter(&self.ingested.with_label_values(&[table.name(), op]), n);
        }
        for (reason, n) in self.stats.error_counts() {
            set_counter(&self.decode_errors.with_label_values(&[reason]), n);
        }
        for (reason, n) in self.stats.skipped_counts() {
            set_counter(&self.skipped.with_label_values(&[reason]), n);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.mirror();
        let mut out = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        let mut text = String::from_utf8(out).unwrap_or_default();
        if let Some(source) = self.source.get() {
            source.render_metrics(&mut text);
        }
        text
    }

    /// Adds the running source's own metrics to the exposition.
    pub fn set_source(&self, source: lpm_service::source::Source) {
        let _ = self.source.set(source);
    }

    /// Registers an instrument owned elsewhere (the MySQL system of record's, only when it runs).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// The registry, for components that register their own instruments (the sink).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Raises a counter to `total` (counters only go up).
pub fn set_counter(c: &prometheus::IntCounter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// `GET /metrics`.
pub async fn serve_metrics(State(m): State<Arc<Metrics>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

/// Records every request by its route template (never the raw path: ids would explode the
/// label set) and status.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let took = start.elapsed();
    m.http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[&route, &method])
        .observe(took.as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_reasons_start_at_zero() {
        let m = Metrics::new(Arc::new(DecodeStats::default())).expect("metrics");
        let text = m.render();
        for reason in lpm_connectors::stats::ERROR_REASONS {
            let want = format!("lpm_decode_errors_total{{reason=\"{reason}\"}} 0");
            assert!(text.lines().any(|l| l == want), "no `{want}` in:\n{text}");
        }
    }

    #[test]
    fn exposes_the_memory_limit() {
        let m = Metrics::new(Arc::new(DecodeStats::default())).expect("metrics");
        let text = m.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("lpm_memory_limit_bytes{"))
            .unwrap_or_else(|| panic!("no lpm_memory_limit_bytes sample in:\n{text}"));
        let (bytes, source) = crate::memory_limit::detect().expect("a limit on Linux");
        assert_eq!(
            line,
            format!(
                "lpm_memory_limit_bytes{{source=\"{}\"}} {bytes}",
                source.as_str()
            )
        );
    }
}
