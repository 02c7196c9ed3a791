//! lpm-service: the running pipeline without HTTP. What feeds the engine (the embedded log, a
//! binlog capture, Kafka) and where each tick stands in it ([`position`]); the write side, the
//! system of record ([`sor`]: ledger, embedded writer, MySQL writer and its migrations); the
//! MySQL aggregate sink ([`sink`]); the demo data set ([`demo`]); the embedded log's export,
//! with a checkpoint standing in for retired history ([`export`]); and [`pipeline::Service`],
//! which starts them in order and stops them in the reverse. `lpm-api` serves this
//! over HTTP and knows nothing of which source runs (docs/architecture.md).
#![deny(missing_docs)]

pub mod capture;
pub mod checkpoint;
pub mod demo;
pub mod error;
pub mod export;
pub mod kafka;
pub mod notify;
pub mod pipeline;
pub mod position;
pub mod sink;
pub mod sor;
pub mod source;
pub mod wire;

/// Registers `c` in `r` and hands it back (every instrument of the pipeline is made this way).
pub(crate) fn register<T: prometheus::core::Collector + Clone + 'static>(
    r: &prometheus::Registry,
    c: T,
) -> Result<T, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}
