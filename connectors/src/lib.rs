//! lpm-connectors: where changes come from. Debezium decoding (every envelope variant), the
//! `kcat -C -J` topic-dump source, the one decode-and-reject path every source uses
//! ([`decode`]), and the dead-letter sinks for what cannot be decoded ([`dead_letter`]).
#![deny(missing_docs)]

#[cfg(feature = "capture")]
pub mod capture;
pub mod catalog;
pub mod dead_letter;
pub mod debezium;
pub mod decode;
pub mod dump;
pub mod error;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lock;
pub mod log;
pub mod stats;

pub use catalog::Catalog;
pub use decode::DecodePath;
pub use dump::{DumpFeed, DumpOptions};
pub use error::{DecodeError, DumpError};
pub use stats::DecodeStats;
