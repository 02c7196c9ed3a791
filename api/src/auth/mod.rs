//! Who may call lpm, and what they may see.
//!
//! # The model
//!
//! There are three roles ([`Role`]):
//!
//! - **admin**: a person; signs in with a password, may write, manages users and API tokens.
//! - **responder**: a person; signs in with a password, may write (case status, assignments,
//!   actions) and sees personal data.
//! - **reader**: an API token for analysts and Grafana. It can only read, and it never sees
//!   personal data (names, phones, descriptions, exact coordinates): only the views and
//!   anonymised rows. Handlers ask [`Principal::sees_personal_data`] before serialising a row.
//!
//! People (admins, responders) are users in `<data_dir>/auth.json`, created with
//! `lpm user add --role admin <name>` ([`cli_add_user`]) or by an admin through
//! `POST /api/v1/users`. Tokens are created with `lpm token create <label>` ([`cli_create_token`])
//! or `POST /api/v1/tokens`. The UI uses a session cookie (`lpm_session`: `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, plus `Secure` behind TLS); the API uses
//! `Authorization: Bearer <token>`. A Bearer header is only ever an API token, never a session id,
//! so a leaked cookie cannot be replayed as a header by a script on another origin.
//!
//! Every handler that writes takes [`RequireWriter`] (or [`RequireAdmin`]) and records
//! [`Principal::name`] with the write, so each change says who made it.
//!
//! # Why it is built this way
//!
//! - **Passwords** are hashed with argon2id at the library's default cost (19 MiB, 2 passes),
//!   the OWASP recommendation. Verification runs on the blocking pool, at most one per core at a
//!   time (a burst of sign-ins cannot exhaust memory). An unknown or disabled user is checked
//!   against a dummy hash, so the response time does not reveal whether a name exists.
//! - **API tokens** are `lpm_<id>_<secret>`, the secret being 32 random bytes (256 bits). Only a
//!   hash is stored, so a copy of `auth.json` does not grant access. Slow hashing protects
//!   guessable secrets; a 256-bit secret cannot be guessed, so tokens are hashed with argon2id at
//!   its minimum cost (8 KiB, 1 pass, which is a Blake2b-based hash taking microseconds). That
//!   keeps per-request verification cheap without a cache and without another crypto crate.
//! - **Per-address budget**: 30 failures within 15 minutes from one client address, whatever
//!   the user names, lock that address for 15 minutes ([`LockoutPolicy::per_client`]); without
//!   it one address cycling through random names never tripped a per-user lock and kept the
//!   hashing permits busy for everyone.
//! - **Lockout** counts failures per (user name, client address): 5 failures within 15 minutes
//!   lock that pair for 15 minutes, and while locked even the right password answers 429 with
//!   `Retry-After`. Scoping it to the pair means an attacker cannot lock a responder out from
//!   everywhere by failing on purpose (the responder's own machine still signs in), while each
//!   attacking address gets only 5 guesses per 15 minutes per account. Attempts still being
//!   checked count as failures-in-waiting, so a burst of parallel requests gets no more than 5
//!   guesses either. IPv6 clients are grouped by their /64. The map is bounded (100k pairs,
//!   oldest evicted first). The client address is the TCP peer ([`axum::extract::ConnectInfo`]);
//!   `X-Forwarded-For` is not trusted, because any client can set it. Behind a reverse proxy,
//!   every client shares the proxy's address: serve with the proxy passing the peer through
//!   (PROXY protocol) or add a trusted-proxy header setting before relying on the lockout.
//! - **Sessions** live in memory only (a restart signs everyone out), expire after 12 hours
//!   without use (sliding), and their ids are 32 random bytes. `SameSite=Strict` keeps the
//!   cookie off cross-site requests, which is the CSRF defence for cookie-authenticated writes.
//! - **`auth.json`** is written atomically (temporary file, fsync, rename, fsync of the
//!   directory) with mode 0600. A running server notices when `lpm user add` or
//!   `lpm token create` replaced the file (its inode changes) and reloads it, so new tokens and
//!   revocations take effect without a restart.

pub mod api_doc;
mod cli;
mod clock;
mod error;
mod extract;
mod lockout;
mod password;
pub(crate) mod routes;
mod session;
mod store;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use cli::{
    cli_add_user, cli_create_token, cli_revoke_token, ensure_demo_users, first_start_hint,
    real_users, DemoCredentials, DemoUser, DEMO_ADMIN, DEMO_ADMIN_PASSWORD, DEMO_READER_LABEL,
    DEMO_RESPONDER, DEMO_RESPONDER_PASSWORD,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AuthError;
pub use extract::{Caller, ClientAddr, MaybeCaller, RequireAdmin, RequireWriter};
pub use lockout::{client_key, Attempt, Lockout, LockoutPolicy};
pub use password::PasswordCost;
pub use routes::router;
pub use session::{
    expired_session_cookie, session_cookie, session_ids, SessionStore, SESSION_COOKIE, SESSION_TTL,
};
pub(crate) use store::validate_name;
pub use store::{AuthStore, NewToken, TokenInfo, UserInfo, AUTH_FILE};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A person who may write and manage users and tokens.
    Admin,
    /// A person who may write (cases, assignments, actions) and sees personal data.
    Responder,
    /// A read-only API token: views and anonymised rows only.
    Reader,
}

impl Role {
    /// The lowercase name used in JSON, the CLI and `auth.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Responder => "responder",
            Role::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    /// Parses `admin`, `responder` or `reader` (exact, lowercase).
    fn from_str(s: &str) -> Result<Role, AuthError> {
        match s {
            "admin" => Ok(Role::Admin),
            "responder" => Ok(Role::Responder),
            "reader" => Ok(Role::Reader),
            other => Err(AuthError::Invalid {
                field: "role",
                message: format!("unknown role {other:?}: expected admin, responder or reader"),
            }),
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The `lpm_session` cookie, set by `POST /api/v1/session`.
    Session,
    /// `Authorization: Bearer lpm_…`, an API token.
    Token,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: the user name, or `token:<id>` for an API token. Record it with every write.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// How they signed in.
    pub via: Via,
}

impl Principal {
    /// Whether this caller may change data (responder or admin).
    pub fn can_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Responder)
    }

    /// Whether this caller may see personal data: names, phones, descriptions, exact
    /// coordinates. False for read-only tokens, which get views and anonymised rows only.
    pub fn sees_personal_data(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Responder)
    }

    /// Whether this caller may manage users and tokens.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Everything the extractors and the auth routes need; cheap to clone.
///
/// The app state provides it with `impl FromRef<AppState> for AuthState`.
#[derive(Clone)]
pub struct AuthState {
    /// Users and tokens (`auth.json`).
    pub store: Arc<AuthStore>,
    /// Signed-in UI sessions.
    pub sessions: Arc<SessionStore>,
    /// Failed sign-in counters per (user name, client address).
    pub lockout: Arc<Lockout>,
    /// Failed sign-in counters per client address, whatever the user name: without it, one
    /// address trying random names never locks anything and keeps the hashing permits busy
    /// (540 attempts in 9 s slowed real sign-ins from 18 ms to 1.1 s in the hardening review).
    pub client_lockout: Arc<Lockout>,
    /// Add `Secure` to the session cookie (set when serving over TLS).
    pub secure_cookies: bool,
    /// Bounds concurrent password hashing (each argon2 run holds 19 MiB).
    hash_permits: Arc<Semaphore>,
    /// `--auto-assign`: every request made with a session is recorded here, so the write side
    /// knows which responders are at work.
    pub presence: Option<Arc<lpm_service::sor::auto_assign::Presence>>,
}

impl AuthState {
    /// Auth over `store` with the system clock. `secure_cookies` should be true when serving
    /// over TLS.
    pub fn new(store: Arc<AuthStore>, secure_cookies: bool) -> AuthState {
        AuthState::with_clock(store, secure_cookies, Arc::new(SystemClock))
    }

    /// Like [`AuthState::new`] with an injected clock (tests move time with [`ManualClock`]).
    pub fn with_clock(
        store: Arc<AuthStore>,
        secure_cookies: bool,
        clock: Arc<dyn Clock>,
    ) -> AuthState {
        // One argon2 run per core at a time: more would only queue on the CPU while holding
        // memory.
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
        AuthState {
            store,
            sessions: Arc::new(SessionStore::new(clock.clone())),
            lockout: Arc::new(Lockout::new(clock.clone(), LockoutPolicy::default())),
            client_lockout: Arc::new(Lockout::new(clock, LockoutPolicy::per_client())),
            secure_cookies,
            hash_permits: Arc::new(Semaphore::new(permits)),
            presence: None,
        }
    }

    /// Runs `f` (which hashes or verifies a password) on the blocking pool, bounded by the
    /// hashing permits.
    pub(crate) async fn hash_blocking<T, F>(&self, f: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .hash_permits
            .acquire()
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?
    }
}

impl AuthState {
    /// A request (or the sign-in) of `who` with a session: they are at work now.
    pub(crate) fn saw_session(&self, who: &Principal) {
        if let (Some(p), Via::Session) = (&self.presence, who.via) {
            p.seen(&who.name);
        }
    }
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("store", &self.store)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in [Role::Admin, Role::Responder, Role::Reader] {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
            assert_eq!(
                serde_json::to_string(&role).ok(),
                Some(format!("\"{role}\""))
            );
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn principal_rights_follow_the_role() {
        let p = |role| Principal {
            name: "x".into(),
            role,
            via: Via::Session,
        };
        let admin = p(Role::Admin);
        let responder = p(Role::Responder);
        let reader = p(Role::Reader);
        assert!(admin.can_write() && admin.sees_personal_data() && admin.is_admin());
        assert!(responder.can_write() && responder.sees_personal_data() && !responder.is_admin());
        assert!(!reader.can_write() && !reader.sees_personal_data() && !reader.is_admin());
    }
}
