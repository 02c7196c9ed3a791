//! lpm-engine: the change model, per-key upsert state, the timely/differential dataflow that
//! keeps every view exact, consistent reads at one tick, and per-tick diffs for subscribers.
//!
//! The engine knows nothing of Kafka, HTTP or JSON wire formats: sources hand it [`Change`]s
//! through a [`Feed`]; readers use an [`EngineHandle`].
#![deny(missing_docs)]

pub mod arrangements;
pub mod change;
pub mod checkpoint;
pub mod cluster;
pub mod dataflow;
pub mod dims;
pub mod error;
pub mod feed;
pub mod hotspots;
pub mod model;
pub mod names;
pub mod read;
pub mod rng;
pub mod runtime;
pub mod series;
pub mod store;
pub mod tick;
pub mod upsert;
pub mod views;

pub use change::{Change, ChangeKind, Coords, Position, RowChange, SnapshotMark};
pub use dataflow::CaseRecord;
pub use error::EngineError;
pub use feed::PushFeed;
pub use names::ViewName;
pub use runtime::{
    CasePredicate, Engine, EngineConfig, EngineHandle, EngineStats, Feed, FeedItem, RunSummary,
};
pub use store::ViewStore;
pub use tick::{Tick, TickMap};
pub use views::Views;
