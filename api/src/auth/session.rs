//! UI sessions: random ids in an `HttpOnly; SameSite=Strict` cookie, kept in memory with a
//! sliding 12-hour expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use cookie::Cookie;
use parking_lot::Mutex;

use super::password;
use super::{AuthError, Clock, Principal};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lpm_session";

/// A session ends after this long without a request.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// At most this many live sessions; beyond it the one closest to expiry is dropped. Sessions
/// are only created by a successful sign-in, so this is a backstop, not a limit anyone meets.
const MAX_SESSIONS: usize = 100_000;

#[derive(Debug)]
struct Session {
    principal: Principal,
    expires_at: Instant,
}

/// Signed-in sessions, by id.
pub struct SessionStore {
    clock: Arc<dyn Clock>,
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("ttl", &self.ttl)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// An empty store with the 12-hour sliding expiry.
    pub fn new(clock: Arc<dyn Clock>) -> SessionStore {
        SessionStore {
            clock,
            ttl: SESSION_TTL,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `principal` and returns its id (32 random bytes, base64url).
    pub fn create(&self, principal: Principal) -> Result<String, AuthError> {
        let id = password::random_b64url::<32>()?;
        let now = self.clock.now();
        let mut sessions = self.sessions.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires_at > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                principal,
                expires_at: now + self.ttl,
            },
        );
        Ok(id)
    }

    /// The principal of a live session, extending it by the full TTL; an expired session is
    /// removed.
    pub fn get(&self, id: &str) -> Option<Principal> {
        let now = self.clock.now();
        let mut sessions = self.sessions.lock();
        let session = sessions.get_mut(id)?;
        if session.expires_at <= now {
            sessions.remove(id);
            return None;
        }
        session.expires_at = now + self.ttl;
        Some(session.principal.clone())
    }

    /// Ends a session; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        self.sessions.lock().remove(id).is_some()
    }

    /// Ends every session of user `name` (after a password change or deactivation); how many.
    pub fn remove_user(&self, name: &str) -> usize {
        let mut sessions = self.sessions.lock();
        let before = sessions.len();
        sessions.retain(|_, s| s.principal.name != name);
        before - sessions.len()
    }

    /// Live and not yet pruned sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `Set-Cookie` value that stores session `id`. No `Max-Age`: the browser drops it when
/// it closes, and the server's sliding expiry decides the rest.
pub fn session_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn expired_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// Every `lpm_session` value in the request's `Cookie` headers, in order (a browser may send
/// more than one, e.g. a stale one for another path), parsed by the `cookie` crate (quotes
/// stripped, no percent-decoding: ids are base64url).
///
/// Not axum-extra's `CookieJar` (which wraps the same crate): a jar keeps one cookie per name,
/// so a stale cookie sent next to the live one could hide it.
pub fn session_ids(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == SESSION_COOKIE && !c.value_trimmed().is_empty())
        .map(|c| c.value_trimmed().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ManualClock, Role, Via};
    use axum::http::HeaderValue;

    fn principal(name: &str) -> Principal {
        Principal {
            name: name.into(),
            role: Role::Responder,
            via: Via::Session,
        }
    }

    #[test]
    fn create_get_remove() {
        let store = SessionStore::new(Arc::new(ManualClock::new()));
        let id = store.create(principal("ana")).expect("create");
        assert_eq!(id.len(), 43);
        assert_eq!(store.get(&id), Some(principal("ana")));
        assert_eq!(store.get("nope"), None);
        assert!(store.remove(&id));
        assert!(!store.remove(&id));
        assert_eq!(store.get(&id), None);
    }

    #[test]
    fn expiry_slides_with_use() {
        let clock = Arc::new(ManualClock::new());
        let store = SessionStore::new(clock.clone());
        let id = store.create(principal("ana")).expect("create");
        // Used every 11 hours: stays alive well past 12 hours after sign-in.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(11 * 3600));
            assert!(store.get(&id).is_some());
        }
        // Idle for 12 hours: gone.
        clock.advance(SESSION_TTL);
        assert_eq!(store.get(&id), None);
        assert!(store.is_empty());
    }

    #[test]
    fn remove_user_ends_only_their_sessions() {
        let store = SessionStore::new(Arc::new(ManualClock::new()));
        let a1 = store.create(principal("ana")).expect("create");
        let a2 = store.create(principal("ana")).expect("create");
        let b = store.create(principal("bob")).expect("create");
        assert_ne!(a1, a2);
        assert_eq!(store.remove_user("ana"), 2);
        assert!(store.get(&a1).is_none() && store.get(&a2).is_none());
        assert!(store.get(&b).is_some());
    }

    #[test]
    fn cookie_attributes() {
        let plain = session_cookie("abc", false);
        assert_eq!(plain, "lpm_session=abc; HttpOnly; SameSite=Strict; Path=/");
        let secure = session_cookie("abc", true);
        assert!(secure.ends_with("; Secure"), "{secure}");
        let gone = expired_session_cookie(false);
        assert!(gone.starts_with("lpm_session=;") && gone.contains("Max-Age=0"));
        assert!(gone.contains("HttpOnly") && gone.contains("SameSite=Strict"));
        assert!(!gone.contains("Secure"));
        assert!(expired_session_cookie(true).contains("; Secure"));
    }

    #[test]
    fn parses_cookie_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; lpm_session=one ;x=y"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("lpm_session=\"two\""),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("lpm_session="));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("lpm_sessionx=three"),
        );
        assert_eq!(session_ids(&headers), ["one", "two"]);
        assert!(session_ids(&HeaderMap::new()).is_empty());
    }
}
