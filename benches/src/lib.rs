//! The parts of the bench targets that have unit tests. Every bench target is a
//! `harness = false` program, which `cargo test` never runs; what must be tested without running
//! a benchmark (the figures one bench hands to `headline`, the headline table and where it is
//! written) lives here: `cargo test -p lpm-benches --release`.

pub mod figures;
pub mod headline_table;
