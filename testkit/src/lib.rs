//! Test support for lpm: an independent brute-force reference model ([`reference`]) and a
//! deterministic generator of Debezium MySQL change streams in the `kcat -C -J` dump format
//! ([`gen`]). Neither uses the engine's view code, so they can check it. [`grafana_frames`]
//! is an oracle of how Grafana reads a `/query` answer, for the Grafana API's tests; [`cargo_env`]
//! keeps a nested `cargo` from rebuilding the outer build's crates.
#![deny(missing_docs)]

pub mod cargo_env;
pub mod gen;
pub mod grafana_frames;
pub mod reference;

pub use reference::FinalRows;
