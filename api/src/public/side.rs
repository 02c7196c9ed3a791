//! The public side's shared state (held by `AppState`): the public-id index and the per-address
//! rate limits. Its own module so that the application state does not import the public
//! routes, which import the state.

use std::sync::Arc;

use lpm_engine::EngineHandle;

use super::index::PublicIndex;
use super::limiter::{RateLimiter, RatePolicy};
use crate::auth::Clock;

/// The public side's state: the index and the rate limits.
pub struct Public {
    /// Public id → case id.
    pub index: Arc<PublicIndex>,
    /// Page views per address.
    pub pages: RateLimiter,
    /// Sightings per address (for the sighting route).
    pub sightings: RateLimiter,
}

impl Public {
    /// The public side over `engine`, its index thread started.
    pub fn start(engine: EngineHandle, read_timeout: std::time::Duration) -> Arc<Public> {
        Public::with_clock(engine, read_timeout, Arc::new(crate::auth::SystemClock))
    }

    /// The same on `clock` (tests move time).
    pub fn with_clock(
        engine: EngineHandle,
        read_timeout: std::time::Duration,
        clock: Arc<dyn Clock>,
    ) -> Arc<Public> {
        Arc::new(Public {
            index: PublicIndex::start(engine, read_timeout),
            pages: RateLimiter::new(RatePolicy::PAGES, clock.clone()),
            sightings: RateLimiter::new(RatePolicy::SIGHTINGS, clock),
        })
    }
}
