//! A per-client-address rate limit for the routes strangers can reach without signing in (the
//! public case page and its sighting form).
//!
//! Fixed windows per address key ([`crate::auth::client_key`]: the IPv4 address or the IPv6
//! /64): at most `max` requests per `window`; the next one is refused with the time left until
//! the window ends. Why fixed windows: one counter and one instant per address, no history to
//! keep, and bursting twice the limit across a window edge is harmless at these limits. Memory
//! is bounded: at `max_entries` addresses, expired windows are swept, and if none has expired
//! the address whose window started first is forgotten (it gets a fresh budget, which at worst
//! doubles one address's rate, never the memory).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::auth::Clock;

/// A limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// Requests allowed per window and address.
    pub max: u32,
    /// The window.
    pub window: Duration,
    /// At most this many addresses are tracked.
    pub max_entries: usize,
}

impl RatePolicy {
    /// Sightings: 5 per address in 10 minutes. A person who saw someone sends one or two; an
    /// office behind one NAT address can still send a few; a script filling the triage queue
    /// with junk is stopped after 5.
    pub const SIGHTINGS: RatePolicy = RatePolicy {
        max: 5,
        window: Duration::from_secs(600),
        max_entries: 100_000,
    };

    /// Public pages: 120 per address a minute, far above a person reading and sharing a page,
    /// low enough that one address cannot make the server do much.
    pub const PAGES: RatePolicy = RatePolicy {
        max: 120,
        window: Duration::from_secs(60),
        max_entries: 100_000,
    };
}

/// The limiter (see the module doc).
pub struct RateLimiter {
    policy: RatePolicy,
    clock: Arc<dyn Clock>,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter with `policy` on `clock`.
    pub fn new(policy: RatePolicy, clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter {
            policy,
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `client`; `Err(wait)` when it is over the limit (the request is
    /// not counted then, so waiting `wait` is always enough).
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let p = self.policy;
        let mut windows = self.windows.lock();
        if !windows.contains_key(client) && windows.len() >= p.max_entries {
            windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < p.window);
            if windows.len() >= p.max_entries {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    windows.remove(&k);
                }
            }
        }
        let (start, n) = windows.entry(client.to_string()).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= p.window {
            (*start, *n) = (now, 0);
        }
        if *n >= p.max {
            return Err(p
                .window
                .saturating_sub(now.saturating_duration_since(*start)));
        }
        *n += 1;
        Ok(())
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.windows.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ManualClock;

    fn limiter(max: u32, max_entries: usize) -> (Arc<ManualClock>, RateLimiter) {
        let clock = Arc::new(ManualClock::new());
        let policy = RatePolicy {
            max,
            window: Duration::from_secs(60),
            max_entries,
        };
        (clock.clone(), RateLimiter::new(policy, clock))
    }

    #[test]
    fn an_address_gets_max_per_window_then_waits_for_the_window_to_end() {
        let (clock, l) = limiter(3, 10);
        for _ in 0..3 {
            assert_eq!(l.check("10.0.0.1"), Ok(()));
        }
        clock.advance(Duration::from_secs(20));
        assert_eq!(l.check("10.0.0.1"), Err(Duration::from_secs(40)));
        assert_eq!(
            l.check("10.0.0.2"),
            Ok(()),
            "other addresses are not affected"
        );
        clock.advance(Duration::from_secs(40));
        assert_eq!(l.check("10.0.0.1"), Ok(()), "a new window");
    }

    #[test]
    fn memory_is_bounded_by_sweeping_then_forgetting_the_oldest() {
        let (clock, l) = limiter(1, 3);
        for a in ["a", "b", "c"] {
            assert_eq!(l.check(a), Ok(()));
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(l.check("d"), Ok(()));
        assert_eq!(l.tracked(), 3, "the oldest (a) was forgotten");
        assert!(l.check("b").is_err(), "b is still limited");
        clock.advance(Duration::from_secs(120));
        assert_eq!(l.check("e"), Ok(()));
        assert_eq!(l.tracked(), 1, "expired windows are swept first");
    }
}
