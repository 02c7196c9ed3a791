//! Who is at work: which contact each user is linked to, and when each user's session was last
//! seen. The API's session layer records every request made with a session (`seen`); the
//! write side reads the contacts whose user was seen within the TTL (`eligible_contacts`).
//!
//! Why here and not in the API: the writer decides assignments and the API crate depends on
//! this one, not the reverse; this small type is the only thing the two share about sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lpm_engine::model::Key;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Users' links to contacts and their sessions' last sight.
#[derive(Debug)]
pub struct Presence {
    ttl: Duration,
    inner: Mutex<Inner>,
    /// Woken when a linked user becomes present (a retry of unassigned cases may now succeed).
    wake: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// User name -> contact id.
    links: HashMap<String, Key>,
    /// User name -> when a request of theirs with a session was last seen.
    seen: HashMap<String, Instant>,
}

impl Presence {
    /// No links, nobody seen; a session counts as present for `ttl` after its last request.
    pub fn new(ttl: Duration) -> Presence {
        Presence {
            ttl,
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
        }
    }

    /// How long a session counts as present after its last request.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Links `user` to `contact` (`None`: unlinks), dropping any other user's link to that
    /// contact: a contact has at most one user, a user at most one contact.
    pub fn set_link(&self, user: &str, contact: Option<Key>) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.links.remove(user);
        if let Some(c) = contact {
            inner.links.retain(|_, linked| *linked != c);
            inner.links.insert(user.to_string(), c);
            if inner.present(user, now, self.ttl) {
                drop(inner);
                self.wake.notify_one();
            }
        }
    }

    /// The user linked to `contact`, if any.
    pub fn user_of(&self, contact: Key) -> Option<String> {
        let inner = self.inner.lock();
        inner
            .links
            .iter()
            .find(|(_, c)| **c == contact)
            .map(|(u, _)| u.clone())
    }

    /// A request of `user` with a session, now. Wakes the retry when a linked user was not
    /// present until now (a sign-in, or a return after the TTL).
    pub fn seen(&self, user: &str) {
        self.seen_at(user, Instant::now());
    }

    fn seen_at(&self, user: &str, now: Instant) {
        let mut inner = self.inner.lock();
        let arrived = !inner.present(user, now, self.ttl) && inner.links.contains_key(user);
        match inner.seen.get_mut(user) {
            Some(at) => *at = now,
            None => {
                inner.seen.insert(user.to_string(), now);
            }
        }
        drop(inner);
        if arrived {
            self.wake.notify_one();
        }
    }

    /// The contacts whose user was seen within the TTL, ascending.
    pub fn eligible_contacts(&self) -> Vec<Key> {
        self.eligible_at(Instant::now())
    }

    fn eligible_at(&self, now: Instant) -> Vec<Key> {
        let mut inner = self.inner.lock();
        let ttl = self.ttl;
        // forget the long gone, so the map stays as small as the people at work
        inner
            .seen
            .retain(|_, at| now.saturating_duration_since(*at) <= ttl.saturating_mul(2));
        let mut v: Vec<Key> = inner
            .links
            .iter()
            .filter(|(user, _)| inner.present(user, now, ttl))
            .map(|(_, c)| *c)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Wakes the retry of unassigned cases (a responder's load dropped).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`wake`](Self::wake) or a linked user's arrival (a wake while nobody waits
    /// is kept for the next wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

impl Inner {
    fn present(&self, user: &str, now: Instant, ttl: Duration) -> bool {
        self.seen
            .get(user)
            .is_some_and(|at| now.saturating_duration_since(*at) <= ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_linked_users_seen_within_the_ttl_are_eligible() {
        let p = Presence::new(Duration::from_secs(300));
        let t0 = Instant::now();
        p.set_link("ana", Some(3));
        p.set_link("beto", Some(1));
        p.seen_at("ana", t0);
        p.seen_at("beto", t0);
        p.seen_at("carla", t0); // not linked
        assert_eq!(p.eligible_at(t0 + Duration::from_secs(10)), [1, 3]);
        p.seen_at("ana", t0 + Duration::from_secs(200));
        assert_eq!(
            p.eligible_at(t0 + Duration::from_secs(301)),
            [3],
            "beto's session was not seen for longer than the TTL"
        );
        assert!(p.eligible_at(t0 + Duration::from_secs(501)).is_empty());
    }

    #[test]
    fn a_contact_has_one_user_and_a_user_one_contact() {
        let p = Presence::new(Duration::from_secs(300));
        p.set_link("ana", Some(1));
        p.set_link("beto", Some(1));
        assert_eq!(p.user_of(1).as_deref(), Some("beto"));
        p.set_link("beto", Some(2));
        assert_eq!(p.user_of(1), None);
        assert_eq!(p.user_of(2).as_deref(), Some("beto"));
        p.set_link("beto", None);
        assert_eq!(p.user_of(2), None);
    }

    #[tokio::test]
    async fn a_linked_users_arrival_wakes_the_retry() {
        let p = Presence::new(Duration::from_secs(300));
        p.seen("carla"); // not linked: no wake
        p.set_link("ana", Some(1));
        p.seen("ana");
        tokio::time::timeout(Duration::from_secs(1), p.woken())
            .await
            .expect("woken by ana's arrival");
        p.seen("ana"); // already present: no new wake
        assert!(
            tokio::time::timeout(Duration::from_millis(50), p.woken())
                .await
                .is_err(),
            "a request of someone already present wakes nothing"
        );
    }
}
