//! What the `lpm user` / `lpm token` commands and first start call: they work on the data
//! directory directly, so they also work while a server runs (it reloads the changed file).

use std::fmt;
use std::path::Path;

use super::{AuthError, AuthStore, Role};

/// The demo admin's name.
pub const DEMO_ADMIN: &str = "admin";
/// The demo admin's password: public, so `--demo` is never for real data.
pub const DEMO_ADMIN_PASSWORD: &str = "admin-demo-password";
/// The demo responder's name.
pub const DEMO_RESPONDER: &str = "responder";
/// The demo responder's password: public.
pub const DEMO_RESPONDER_PASSWORD: &str = "responder-demo-password";
/// The label of the demo read-only token (a fresh one each start; the previous is revoked).
pub const DEMO_READER_LABEL: &str = "demo-reader";
/// Who `--demo` records as the author of what it creates.
const DEMO_ACTOR: &str = "demo";

/// Who the CLI records as the author of a change: `cli:<OS user>`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// `lpm user add --role <role> <name>`: creates a user in `data_dir/auth.json` (argon2id at
/// the default cost). The password must have at least 10 characters.
pub fn cli_add_user(
    data_dir: &Path,
    name: &str,
    password: &str,
    role: Role,
) -> Result<(), AuthError> {
    AuthStore::open(data_dir)?.add_user(name, password, role, &cli_actor())
}

/// `lpm token create <label>`: creates a read-only API token and returns it. Print it once:
/// only its hash is kept.
pub fn cli_create_token(data_dir: &Path, label: &str) -> Result<String, AuthError> {
    Ok(AuthStore::open(data_dir)?
        .create_token(label, &cli_actor())?
        .token)
}

/// `lpm token revoke <id>`: revokes a token (the `<id>` in `lpm_<id>_…`).
pub fn cli_revoke_token(data_dir: &Path, id: &str) -> Result<(), AuthError> {
    AuthStore::open(data_dir)?.revoke_token(id, &cli_actor())
}

/// On first start (no users in `data_dir`), how to create the first admin.
pub fn first_start_hint(data_dir: &Path) -> Result<Option<String>, AuthError> {
    Ok(AuthStore::open(data_dir)?.first_start_hint())
}

/// A demo user and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The user name.
    pub name: String,
    /// The documented demo password.
    pub password: String,
    /// Admin or responder.
    pub role: Role,
    /// False when a user of that name existed already (its password was left alone).
    pub created: bool,
}

/// What `--demo` set up; its `Display` is the text to print at start.
#[derive(Clone, PartialEq, Eq)]
pub struct DemoCredentials {
    /// The demo admin and responder.
    pub users: Vec<DemoUser>,
    /// A fresh read-only token.
    pub reader_token: String,
}

impl fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoCredentials")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for DemoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Demo mode: these accounts have public passwords; never use --demo with real data."
        )?;
        for u in &self.users {
            if u.created {
                writeln!(f, "  {:<10} {:<24} ({})", u.name, u.password, u.role)?;
            } else {
                writeln!(
                    f,
                    "  {:<10} {:<24} ({}; existed already, password unchanged)",
                    u.name, "-", u.role
                )?;
            }
        }
        write!(
            f,
            "  read-only API token: {}  (Authorization: Bearer ...)",
            self.reader_token
        )
    }
}

/// `--demo`: makes sure the demo admin and responder exist (with [`DEMO_ADMIN_PASSWORD`] and
/// [`DEMO_RESPONDER_PASSWORD`]; existing users are not touched) and creates a fresh read-only
/// token, revoking the previous demo token. Blocking (password hashing).
pub fn ensure_demo_users(store: &AuthStore) -> Result<DemoCredentials, AuthError> {
    let existing: Vec<String> = store.users().into_iter().map(|u| u.name).collect();
    let mut users = Vec::new();
    for (name, password, role) in [
        (DEMO_ADMIN, DEMO_ADMIN_PASSWORD, Role::Admin),
        (DEMO_RESPONDER, DEMO_RESPONDER_PASSWORD, Role::Responder),
    ] {
        let created = !existing.iter().any(|n| n == name);
        if created {
            store.add_user(name, password, role, DEMO_ACTOR)?;
        }
        users.push(DemoUser {
            name: name.to_string(),
            password: password.to_string(),
            role,
            created,
        });
    }
    for old in store.tokens() {
        if old.label == DEMO_READER_LABEL && old.created_by == DEMO_ACTOR && !old.revoked {
            store.revoke_token(&old.id, DEMO_ACTOR)?;
        }
    }
    let reader_token = store.create_token(DEMO_READER_LABEL, DEMO_ACTOR)?.token;
    tracing::warn!("Demo users are enabled; their passwords are public.");
    Ok(DemoCredentials {
        users,
        reader_token,
    })
}

/// The users of `store` that no demo made, in creation order: users made by the CLI or by an
/// admin who is not itself demo-made. Demo-made are the demo admin and responder
/// (`created_by == "demo"`) and, transitively, users they created through the API while
/// playing with the demo. `--demo` refuses a data directory where this is not empty: it would
/// add accounts with public passwords to a real server's users.
pub fn real_users(store: &AuthStore) -> Vec<String> {
    let mut demo_made: Vec<String> = Vec::new();
    let mut real = Vec::new();
    // creation order: a user's creator, when it is a user, comes before it
    for user in store.users() {
        if user.created_by == DEMO_ACTOR || demo_made.contains(&user.created_by) {
            demo_made.push(user.name);
        } else {
            real.push(user.name);
        }
    }
    real
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PasswordCost;

    #[test]
    fn cli_helpers_work_on_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hint = first_start_hint(dir.path())
            .expect("hint")
            .expect("no users yet");
        assert!(
            hint.contains("lpm user add --role admin --data-dir "),
            "{hint}"
        );
        cli_add_user(dir.path(), "ana", "0123456789", Role::Admin).expect("add");
        assert_eq!(first_start_hint(dir.path()).expect("hint"), None);
        let token = cli_create_token(dir.path(), "grafana").expect("token");
        let store = AuthStore::open_with_cost(dir.path(), PasswordCost::Fast).expect("open");
        assert!(store.verify_password("ana", "0123456789").is_ok());
        assert!(store.users()[0].created_by.starts_with("cli:"));
        assert!(store.verify_token(&token).is_some());
        let id = store.tokens()[0].id.clone();
        cli_revoke_token(dir.path(), &id).expect("revoke");
        assert!(store.verify_token(&token).is_none());
        assert!(matches!(
            cli_add_user(dir.path(), "ana", "0123456789", Role::Admin),
            Err(AuthError::DuplicateUser(_))
        ));
    }

    #[test]
    fn demo_users_and_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuthStore::open_with_cost(dir.path(), PasswordCost::Fast).expect("open");
        let demo = ensure_demo_users(&store).expect("demo");
        assert!(demo.users.iter().all(|u| u.created));
        let admin = store
            .verify_password(DEMO_ADMIN, DEMO_ADMIN_PASSWORD)
            .expect("admin");
        assert!(admin.is_admin());
        let responder = store
            .verify_password(DEMO_RESPONDER, DEMO_RESPONDER_PASSWORD)
            .expect("responder");
        assert_eq!(responder.role, Role::Responder);
        let reader = store.verify_token(&demo.reader_token).expect("reader");
        assert!(!reader.sees_personal_data());
        let text = demo.to_string();
        assert!(text.contains(DEMO_ADMIN_PASSWORD) && text.contains(&demo.reader_token));
        assert!(!format!("{demo:?}").contains(&demo.reader_token));

        // A second start keeps the users and replaces the token.
        let again = ensure_demo_users(&store).expect("demo again");
        assert!(again.users.iter().all(|u| !u.created));
        assert!(store.verify_token(&demo.reader_token).is_none());
        assert!(store.verify_token(&again.reader_token).is_some());
        assert_eq!(store.users().len(), 2);
    }

    #[test]
    fn real_users_are_those_no_demo_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuthStore::open_with_cost(dir.path(), PasswordCost::Fast).expect("open");
        assert!(
            real_users(&store).is_empty(),
            "an empty store holds no real users"
        );
        ensure_demo_users(&store).expect("demo");
        // played with the demo: its admin created a user, who created another
        store
            .add_user("bob", "0123456789", Role::Admin, DEMO_ADMIN)
            .expect("bob");
        store
            .add_user("carol", "0123456789", Role::Responder, "bob")
            .expect("carol");
        assert!(real_users(&store).is_empty(), "{:?}", store.users());

        // a user from the CLI, and one its admin created, are real
        let real = tempfile::tempdir().expect("tempdir");
        cli_add_user(real.path(), "admin", "0123456789", Role::Admin).expect("cli admin");
        let store = AuthStore::open_with_cost(real.path(), PasswordCost::Fast).expect("open");
        store
            .add_user("dora", "0123456789", Role::Responder, "admin")
            .expect("dora");
        assert_eq!(real_users(&store), ["admin", "dora"]);
    }
}
