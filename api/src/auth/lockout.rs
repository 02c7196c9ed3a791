//! Brute-force lockout: failed sign-ins counted per (user name, client address), and per client
//! address alone (user [`ANY_USER`], with [`LockoutPolicy::per_client`]).
//!
//! 5 failures within 15 minutes lock that pair for 15 minutes; while it is locked every
//! attempt is refused with the time left, even one with the right password. A success clears
//! the count. Attempts still being verified count as pending failures, so firing many requests
//! in parallel does not buy more than 5 guesses. Memory is bounded: expired pairs are swept
//! every window, and at the cap the oldest unlocked pair is evicted first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Clock;

/// The lockout's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock the pair.
    pub max_failures: usize,
    /// How far back failures count.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock_for: Duration,
    /// At most this many (user, client) pairs are tracked.
    pub max_entries: usize,
}

impl Default for LockoutPolicy {
    /// 5 failures in 15 minutes lock for 15 minutes; 100k pairs (a few tens of MB at most).
    fn default() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
            max_entries: 100_000,
        }
    }
}

impl LockoutPolicy {
    /// The per-address budget, whatever the user name: 30 failures in 15 minutes lock the
    /// address for 15 minutes. Higher than the per-user limit so that an office behind one
    /// NAT address survives a few people mistyping, low enough that guessing across names
    /// from one address stops after 30 tries.
    pub fn per_client() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 30,
            ..LockoutPolicy::default()
        }
    }
}

/// The key [`Lockout::begin`] takes as the user for a per-address lockout.
pub const ANY_USER: &str = "";

/// The lockout key for a client address: the IPv4 address, the /64 of an IPv6 address (one
/// host usually owns a whole /64), or `unknown` when the server has no peer address.
pub fn client_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_string(),
    }
}

type Key = (String, String);

#[derive(Debug)]
struct Entry {
    /// Failure times within the window, oldest first (at most `max_failures`).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Attempts begun and not yet finished.
    in_flight: usize,
    last_seen: Instant,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            failures: VecDeque::new(),
            locked_until: None,
            in_flight: 0,
            last_seen: now,
        }
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    fn forget_old(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
        }
    }

    /// Nothing left to remember: no lock, no recent failure, no attempt running.
    fn idle(&self, now: Instant, window: Duration) -> bool {
        self.in_flight == 0
            && !self.locked(now)
            && self
                .failures
                .back()
                .is_none_or(|t| now.duration_since(*t) >= window)
    }
}

#[derive(Debug)]
struct Entries {
    map: HashMap<Key, Entry>,
    next_sweep: Instant,
}

/// Failed sign-in counters.
pub struct Lockout {
    clock: Arc<dyn Clock>,
    policy: LockoutPolicy,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("policy", &self.policy)
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

/// One sign-in attempt in progress; finish it with [`Attempt::succeeded`] or
/// [`Attempt::failed`]. Dropped unfinished (the client went away), it counts as neither.
#[derive(Debug)]
#[must_use = "finish the attempt with succeeded() or failed()"]
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    key: Key,
    finished: bool,
}

impl Lockout {
    /// A lockout with no history.
    pub fn new(clock: Arc<dyn Clock>, policy: LockoutPolicy) -> Lockout {
        let now = clock.now();
        Lockout {
            clock,
            policy,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                next_sweep: now + policy.window,
            }),
        }
    }

    /// Starts an attempt by `user` from `client` (see [`client_key`]), or says how long to
    /// wait when the pair is locked (or has as many attempts running as it has tries left).
    pub fn begin(&self, user: &str, client: &str) -> Result<Attempt<'_>, Duration> {
        // Only the first 64 characters: longer names are never valid, and keys stay small.
        let key: Key = (user.chars().take(64).collect(), client.to_string());
        let now = self.clock.now();
        let policy = self.policy;
        let mut entries = self.entries.lock();
        if now >= entries.next_sweep {
            entries.map.retain(|_, e| !e.idle(now, policy.window));
            entries.next_sweep = now + policy.window;
        }
        if !entries.map.contains_key(&key) && entries.map.len() >= policy.max_entries {
            make_room(&mut entries.map, now, policy);
        }
        let entry = entries
            .map
            .entry(key.clone())
            .or_insert_with(|| Entry::new(now));
        entry.last_seen = now;
        if let Some(until) = entry.locked_until.filter(|until| *until > now) {
            return Err(until - now);
        }
        entry.forget_old(now, policy.window);
        if entry.failures.len() + entry.in_flight >= policy.max_failures {
            // Every remaining try is already being checked: wait for those to finish.
            return Err(Duration::from_secs(1));
        }
        entry.in_flight += 1;
        Ok(Attempt {
            lockout: self,
            key,
            finished: false,
        })
    }

    /// How long `user` from `client` is still locked out, if at all.
    pub fn locked_for(&self, user: &str, client: &str) -> Option<Duration> {
        let key: Key = (user.chars().take(64).collect(), client.to_string());
        let now = self.clock.now();
        let entries = self.entries.lock();
        let until = entries.map.get(&key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// How many (user, client) pairs are tracked.
    pub fn tracked(&self) -> usize {
        self.entries.lock().map.len()
    }
}

/// Frees one slot: sweeps idle pairs, and if none were idle evicts the least recently seen
/// pair, preferring unlocked ones.
fn make_room(map: &mut HashMap<Key, Entry>, now: Instant, policy: LockoutPolicy) {
    map.retain(|_, e| !e.idle(now, policy.window));
    if map.len() < policy.max_entries {
        return;
    }
    let victim = map
        .iter()
        .min_by_key(|(_, e)| (e.locked(now), e.last_seen))
        .map(|(k, _)| k.clone());
    if let Some(victim) = victim {
        map.remove(&victim);
    }
}

impl Attempt<'_> {
    /// The password was right: the pair's failures are forgotten.
    pub fn succeeded(mut self) {
        self.finished = true;
        let now = self.lockout.clock.now();
        let window = self.lockout.policy.window;
        let mut entries = self.lockout.entries.lock();
        if let Some(entry) = entries.map.get_mut(&self.key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.failures.clear();
            if entry.idle(now, window) {
                entries.map.remove(&self.key);
            }
        }
    }

    /// The password was wrong. Returns the lock's duration when this failure locked the pair.
    pub fn failed(mut self) -> Option<Duration> {
        self.finished = true;
        let now = self.lockout.clock.now();
        let policy = self.lockout.policy;
        let mut entries = self.lockout.entries.lock();
        // The entry may have been evicted meanwhile: count the failure in a fresh one.
        let entry = entries
            .map
            .entry(self.key.clone())
            .or_insert_with(|| Entry::new(now));
        entry.in_flight = entry.in_flight.saturating_sub(1);
        entry.last_seen = now;
        entry.forget_old(now, policy.window);
        entry.failures.push_back(now);
        if entry.failures.len() >= policy.max_failures {
            entry.failures.clear();
            entry.locked_until = Some(now + policy.lock_for);
            return Some(policy.lock_for);
        }
        None
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let now = self.lockout.clock.now();
        let window = self.lockout.policy.window;
        let mut entries = self.lockout.entries.lock();
        if let Some(entry) = entries.map.get_mut(&self.key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.idle(now, window) {
                entries.map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ManualClock;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MIN: Duration = Duration::from_secs(60);

    fn lockout(clock: &Arc<ManualClock>) -> Lockout {
        Lockout::new(clock.clone(), LockoutPolicy::default())
    }

    fn fail(l: &Lockout, user: &str, client: &str) -> Option<Duration> {
        l.begin(user, client).expect("not locked").failed()
    }

    #[test]
    fn five_failures_lock_for_fifteen_minutes() {
        let clock = Arc::new(ManualClock::new());
        let l = lockout(&clock);
        for _ in 0..4 {
            assert_eq!(fail(&l, "ana", "10.0.0.1"), None);
        }
        assert_eq!(fail(&l, "ana", "10.0.0.1"), Some(15 * MIN));
        assert_eq!(l.begin("ana", "10.0.0.1").err(), Some(15 * MIN));
        clock.advance(14 * MIN);
        assert_eq!(l.begin("ana", "10.0.0.1").err(), Some(MIN));
        assert_eq!(l.locked_for("ana", "10.0.0.1"), Some(MIN));
        clock.advance(MIN);
        assert_eq!(l.locked_for("ana", "10.0.0.1"), None);
        // Unlocked with a clean slate: one more failure does not lock again.
        assert_eq!(fail(&l, "ana", "10.0.0.1"), None);
        l.begin("ana", "10.0.0.1").expect("unlocked").succeeded();
    }

    #[test]
    fn the_lock_is_per_user_and_client() {
        let clock = Arc::new(ManualClock::new());
        let l = lockout(&clock);
        for _ in 0..5 {
            fail(&l, "ana", "10.0.0.1");
        }
        assert!(l.begin("ana", "10.0.0.1").is_err());
        l.begin("ana", "10.0.0.2")
            .expect("other client")
            .succeeded();
        l.begin("bob", "10.0.0.1").expect("other user").succeeded();
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let clock = Arc::new(ManualClock::new());
        let l = lockout(&clock);
        for _ in 0..4 {
            fail(&l, "ana", "c");
            clock.advance(4 * MIN);
        }
        // The first failure is 16 minutes old now: 4 within the window, no lock.
        assert_eq!(fail(&l, "ana", "c"), None);
        assert_eq!(fail(&l, "ana", "c"), Some(15 * MIN));
    }

    #[test]
    fn success_resets_the_count() {
        let clock = Arc::new(ManualClock::new());
        let l = lockout(&clock);
        for _ in 0..4 {
            fail(&l, "ana", "c");
        }
        l.begin("ana", "c").expect("open").succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&l, "ana", "c"), None);
        }
        assert_eq!(l.tracked(), 1);
        l.begin("ana", "c").expect("open").succeeded();
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn parallel_attempts_count_as_pending_failures() {
        let clock = Arc::new(ManualClock::new());
        let l = lockout(&clock);
        fail(&l, "ana", "c");
        let running: Vec<_> = (0..4).map(|_| l.begin("ana", "c").expect("open")).collect();
        assert!(l.begin("ana", "c").is_err(), "no sixth guess in flight");
        let mut locked = None;
        for attempt in running {
            locked = locked.or(attempt.failed());
        }
        assert_eq!(locked, Some(15 * MIN));
        // An abandoned attempt frees its slot.
        clock.advance(15 * MIN);
        drop(l.begin("ana", "c").expect("open"));
        for _ in 0..4 {
            assert_eq!(fail(&l, "ana", "c"), None);
        }
    }

    #[test]
    fn memory_is_bounded() {
        let clock = Arc::new(ManualClock::new());
        let policy = LockoutPolicy {
            max_entries: 10,
            ..LockoutPolicy::default()
        };
        let l = Lockout::new(clock.clone(), policy);
        for _ in 0..5 {
            fail(&l, "victim", "c");
        }
        for i in 0..100 {
            clock.advance(Duration::from_secs(1));
            fail(&l, &format!("user{i}"), "c");
            assert!(l.tracked() <= 10);
        }
        // The locked pair was kept while unlocked ones were evicted.
        assert!(l.locked_for("victim", "c").is_some());
        // After the window everything idle is swept.
        clock.advance(16 * MIN);
        l.begin("x", "c").expect("open").succeeded();
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn client_keys() {
        assert_eq!(client_key(None), "unknown");
        assert_eq!(
            client_key(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))),
            "192.0.2.7"
        );
        let v6: Ipv6Addr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().expect("ip");
        assert_eq!(client_key(Some(IpAddr::V6(v6))), "2001:db8:1:2::/64");
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_key(Some(IpAddr::V6(mapped))), "192.0.2.7");
    }
}
