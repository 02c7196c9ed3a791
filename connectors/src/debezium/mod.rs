//! Debezium decoding: envelopes, schemas, column values, and the mapping to lpm's typed rows.

pub mod encode;
pub mod envelope;
pub mod rows;
pub mod schema;
pub mod value;

pub use envelope::{Decoded, Decoder, Event, KnownSchema, Op, Skip};
