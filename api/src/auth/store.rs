//! `AuthStore`: users and API tokens, persisted in `<data_dir>/auth.json`.
//!
//! The file holds argon2id hashes only, never a password or a token secret. It is replaced
//! atomically on every change (temporary file with mode 0600, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new version. Each change first reloads
//! the file if another process (the `lpm user add` / `lpm token create` CLI) replaced it, and
//! reads notice a replaced file by its inode, so a running server picks up CLI changes.
//! Two processes writing in the same instant can still lose one change (there is no file
//! lock); the CLI is meant for an operator at a prompt, where that does not happen.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{SecondsFormat, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::password::{self, PasswordCost};
use super::{AuthError, Principal, Role, Via};

/// The auth file's name inside the data directory.
pub const AUTH_FILE: &str = "auth.json";

/// The `version` written to the file; a newer one is refused rather than misread.
const FORMAT_VERSION: u32 = 1;

/// Shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (bounds the work of hashing it).
const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest user name or token label.
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    version: u32,
    #[serde(default)]
    users: Vec<UserRecord>,
    #[serde(default)]
    tokens: Vec<TokenRecord>,
}

impl Default for AuthFile {
    fn default() -> AuthFile {
        AuthFile {
            version: FORMAT_VERSION,
            users: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRecord {
    name: String,
    role: Role,
    /// Argon2id PHC string.
    password_hash: String,
    active: bool,
    created_at: String,
    created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_by: Option<String>,
    /// The responsible contact this user works as (auto-assignment gives that contact cases
    /// while this user's session is seen). Kept here, not in `responsible_contacts`: that
    /// table is the source schema other systems read through CDC, and a login is lpm's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    id: String,
    label: String,
    /// Argon2id PHC string of the whole token (`lpm_<id>_<secret>`).
    secret_hash: String,
    created_at: String,
    created_by: String,
    revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_by: Option<String>,
}

/// A user as listed to admins (no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// The sign-in name.
    pub name: String,
    /// Admin or responder.
    pub role: Role,
    /// Whether the user may sign in.
    pub active: bool,
    /// When the user was created (RFC 3339, UTC).
    pub created_at: String,
    /// Who created it (`cli`, `demo` or an admin's name).
    pub created_by: String,
}

/// An API token as listed to admins (no secret, no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The id: the `<id>` in `lpm_<id>_<secret>`.
    pub id: String,
    /// What it is for (`grafana`, an analyst's name).
    pub label: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// A token just created: the only time its secret is known.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The id, for listing and revoking.
    pub id: String,
    /// The whole token to give to the client: `lpm_<id>_<secret>`.
    pub token: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Identifies one version of the file on disk: every write renames a new file into place, so
/// the inode changes with each version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Stamp {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    file: AuthFile,
    /// The version of the file `file` came from; `None` when there was no file.
    stamp: Option<Stamp>,
}

/// Users and API tokens. Share it as `Arc<AuthStore>`; every method takes `&self`.
pub struct AuthStore {
    dir: PathBuf,
    path: PathBuf,
    cost: PasswordCost,
    /// Verified against for unknown users, so they take as long as known ones.
    dummy_hash: String,
    state: RwLock<Loaded>,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("path", &self.path)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The stamp of the file at `path`, `None` when it does not exist.
fn stamp_of(path: &Path) -> io::Result<Option<Stamp>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the file; a missing file is an empty store.
fn load(path: &Path) -> Result<Loaded, AuthError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Loaded {
                file: AuthFile::default(),
                stamp: None,
            })
        }
        Err(e) => return Err(io_error(path)(e)),
    };
    // The stamp of the open handle matches the bytes read, even if the file is replaced now.
    let meta = f.metadata().map_err(io_error(path))?;
    warn_if_exposed(path, &meta);
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io_error(path))?;
    let file: AuthFile = serde_json::from_str(&text).map_err(|source| AuthError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    if file.version != FORMAT_VERSION {
        return Err(AuthError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "auth file version {} is not supported (expected {FORMAT_VERSION})",
                    file.version
                ),
            ),
        });
    }
    Ok(Loaded {
        file,
        stamp: Some(Stamp::of(&meta)),
    })
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path, meta: &fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "Auth file is readable by other users; it will be rewritten with mode 600 on the next change."
        );
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path, _meta: &fs::Metadata) {}

/// Writes `file` to `path` atomically with mode 0600 and returns the new version's stamp.
fn persist(dir: &Path, path: &Path, file: &AuthFile) -> Result<Stamp, AuthError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut text = serde_json::to_vec_pretty(file).map_err(|source| AuthError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    // A rename keeps the inode, so this is the stamp of the file once it is in place.
    let meta =
        lpm_connectors::fs::replace_file_with_mode(path, &text, 0o600).map_err(io_error(path))?;
    Ok(Stamp::of(&meta))
}

/// User names: `[a-z0-9._-]{1,64}`.
pub(crate) fn validate_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid {
            field: "username",
            message: format!(
                "user names are 1 to {MAX_NAME_CHARS} characters of a-z, 0-9, '.', '_' and '-'"
            ),
        })
    }
}

fn validate_password(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid {
            field: "password",
            message: format!("passwords need at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::Invalid {
            field: "password",
            message: format!("passwords have at most {MAX_PASSWORD_CHARS} characters"),
        });
    }
    Ok(())
}

fn validate_user_role(role: Role) -> Result<(), AuthError> {
    match role {
        Role::Admin | Role::Responder => Ok(()),
        Role::Reader => Err(AuthError::Invalid {
            field: "role",
            message: "users are admin or responder; read-only access uses an API token".into(),
        }),
    }
}

fn validate_label(label: &str) -> Result<(), AuthError> {
    let chars = label.chars().count();
    if label.trim().is_empty() || chars > MAX_NAME_CHARS || label.chars().any(char::is_control) {
        return Err(AuthError::Invalid {
            field: "label",
            message: format!("labels are 1 to {MAX_NAME_CHARS} printable characters"),
        });
    }
    Ok(())
}

/// Splits `lpm_<id>_<secret>` into its id, checking the shape (12 hex digits, 43 base64url
/// characters) before any lookup.
fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix("lpm_")?.split_once('_')?;
    let id_ok = id.len() == 12 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

impl AuthStore {
    /// Opens the store in `dir` (the file is `dir/auth.json`; missing means no users yet, and
    /// it is created on the first change). Passwords use argon2id's default cost.
    pub fn open(dir: impl AsRef<Path>) -> Result<AuthStore, AuthError> {
        AuthStore::open_with_cost(dir, PasswordCost::Default)
    }

    /// Like [`AuthStore::open`], hashing new passwords at `cost` ([`PasswordCost::Fast`] is for
    /// tests only).
    pub fn open_with_cost(
        dir: impl AsRef<Path>,
        cost: PasswordCost,
    ) -> Result<AuthStore, AuthError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(AUTH_FILE);
        let loaded = load(&path)?;
        let dummy = password::random_b64url::<16>()?;
        Ok(AuthStore {
            dummy_hash: password::hash_password(&dummy, cost)?,
            dir,
            path,
            cost,
            state: RwLock::new(loaded),
        })
    }

    /// The auth file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads the file if another process replaced it. A file that cannot be read keeps the
    /// last good state (and is reported once per version).
    fn refresh(&self) {
        let current = match stamp_of(&self.path) {
            Ok(stamp) => stamp,
            Err(_) => return,
        };
        if self.state.read().stamp == current {
            return;
        }
        let mut state = self.state.write();
        if state.stamp == current {
            return;
        }
        match load(&self.path) {
            Ok(loaded) => {
                tracing::info!(path = %self.path.display(), "Auth file changed on disk; reloaded.");
                *state = loaded;
            }
            Err(error) => {
                tracing::warn!(%error, "Auth file changed on disk but cannot be read; keeping the previous users and tokens.");
                state.stamp = current;
            }
        }
    }

    /// Applies `change` to the current file (reloaded first if another process replaced it)
    /// and persists the result; memory is updated only once the file is written.
    fn mutate<R>(
        &self,
        change: impl FnOnce(&mut AuthFile) -> Result<R, AuthError>,
    ) -> Result<R, AuthError> {
        let mut state = self.state.write();
        let current = stamp_of(&self.path).map_err(io_error(&self.path))?;
        if current != state.stamp {
            *state = load(&self.path)?;
        }
        let mut next = state.file.clone();
        let result = change(&mut next)?;
        next.version = FORMAT_VERSION;
        let stamp = persist(&self.dir, &self.path, &next)?;
        *state = Loaded {
            file: next,
            stamp: Some(stamp),
        };
        Ok(result)
    }

    /// Creates a user. `name` is `[a-z0-9._-]{1,64}`, `password` has at least 10 characters,
    /// `role` is admin or responder; `actor` (who is doing it: `cli`, an admin's name) is
    /// recorded. Hashing takes tens of milliseconds: call it from a blocking context.
    pub fn add_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
        actor: &str,
    ) -> Result<(), AuthError> {
        validate_name(name)?;
        validate_password(password)?;
        validate_user_role(role)?;
        if self.state.read().file.users.iter().any(|u| u.name == name) {
            return Err(AuthError::DuplicateUser(name.to_string()));
        }
        let password_hash = password::hash_password(password, self.cost)?;
        self.mutate(|file| {
            if file.users.iter().any(|u| u.name == name) {
                return Err(AuthError::DuplicateUser(name.to_string()));
            }
            file.users.push(UserRecord {
                name: name.to_string(),
                role,
                password_hash,
                active: true,
                created_at: now_rfc3339(),
                created_by: actor.to_string(),
                updated_at: None,
                updated_by: None,
                contact_id: None,
            });
            Ok(())
        })?;
        tracing::info!(user = name, %role, actor, "User created.");
        Ok(())
    }

    /// Replaces a user's password (at least 10 characters). Blocking, like
    /// [`AuthStore::add_user`]. Open sessions are not ended here: the caller also calls
    /// [`SessionStore::remove_user`](super::SessionStore::remove_user).
    pub fn set_password(&self, name: &str, password: &str, actor: &str) -> Result<(), AuthError> {
        validate_password(password)?;
        let password_hash = password::hash_password(password, self.cost)?;
        self.mutate(|file| {
            let user = file
                .users
                .iter_mut()
                .find(|u| u.name == name)
                .ok_or_else(|| AuthError::UnknownUser(name.to_string()))?;
            user.password_hash = password_hash;
            user.updated_at = Some(now_rfc3339());
            user.updated_by = Some(actor.to_string());
            Ok(())
        })?;
        tracing::info!(user = name, actor, "Password changed.");
        Ok(())
    }

    /// Enables or disables a user; a disabled user cannot sign in.
    pub fn set_active(&self, name: &str, active: bool, actor: &str) -> Result<(), AuthError> {
        self.mutate(|file| {
            let user = file
                .users
                .iter_mut()
                .find(|u| u.name == name)
                .ok_or_else(|| AuthError::UnknownUser(name.to_string()))?;
            user.active = active;
            user.updated_at = Some(now_rfc3339());
            user.updated_by = Some(actor.to_string());
            Ok(())
        })?;
        tracing::info!(user = name, active, actor, "User activation changed.");
        Ok(())
    }

    /// Links `user` to responsible contact `contact` (`None`: unlinks). A contact has at most
    /// one user: whoever was linked to it before is unlinked.
    pub fn set_contact(
        &self,
        user: &str,
        contact: Option<i64>,
        actor: &str,
    ) -> Result<(), AuthError> {
        self.mutate(|file| {
            if !file.users.iter().any(|u| u.name == user) {
                return Err(AuthError::UnknownUser(user.to_string()));
            }
            for u in &mut file.users {
                let this = u.name == user;
                if this || (contact.is_some() && u.contact_id == contact) {
                    u.contact_id = if this { contact } else { None };
                    u.updated_at = Some(now_rfc3339());
                    u.updated_by = Some(actor.to_string());
                }
            }
            Ok(())
        })?;
        tracing::info!(
            user,
            ?contact,
            actor,
            "User linked to a responsible contact."
        );
        Ok(())
    }

    /// Every `(user, contact)` link.
    pub fn contact_links(&self) -> Vec<(String, i64)> {
        self.refresh();
        self.state
            .read()
            .file
            .users
            .iter()
            .filter_map(|u| u.contact_id.map(|c| (u.name.clone(), c)))
            .collect()
    }

    /// Checks a password. Unknown and disabled users take as long as known ones (a dummy hash
    /// is verified) and give the same error. Blocking: tens of milliseconds.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Principal, AuthError> {
        self.refresh();
        let found = {
            let state = self.state.read();
            state
                .file
                .users
                .iter()
                .find(|u| u.name == name)
                .map(|u| (u.password_hash.clone(), u.role, u.active))
        };
        match found {
            Some((hash, role, active)) => {
                if password::verify(password, &hash) && active {
                    Ok(Principal {
                        name: name.to_string(),
                        role,
                        via: Via::Session,
                    })
                } else {
                    Err(AuthError::BadCredentials)
                }
            }
            None => {
                std::hint::black_box(password::verify(password, &self.dummy_hash));
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Creates a read-only API token labelled `label` and returns it; the secret is not
    /// stored and cannot be shown again.
    pub fn create_token(&self, label: &str, actor: &str) -> Result<NewToken, AuthError> {
        validate_label(label)?;
        let token = self.mutate(|file| {
            let id = loop {
                let id = password::random_hex::<6>()?;
                if !file.tokens.iter().any(|t| t.id == id) {
                    break id;
                }
            };
            let token = format!("lpm_{id}_{}", password::random_b64url::<32>()?);
            file.tokens.push(TokenRecord {
                id: id.clone(),
                label: label.to_string(),
                secret_hash: password::hash_token_secret(&token)?,
                created_at: now_rfc3339(),
                created_by: actor.to_string(),
                revoked: false,
                revoked_at: None,
                revoked_by: None,
            });
            Ok(NewToken { id, token })
        })?;
        tracing::info!(token_id = %token.id, label, actor, "API token created.");
        Ok(token)
    }

    /// The reader behind a token, if it is well formed, known and not revoked. Fast (a
    /// minimum-cost argon2id hash): fine on every request.
    pub fn verify_token(&self, token: &str) -> Option<Principal> {
        let id = token_id(token)?;
        self.refresh();
        let hash = {
            let state = self.state.read();
            let record = state.file.tokens.iter().find(|t| t.id == id)?;
            if record.revoked {
                return None;
            }
            record.secret_hash.clone()
        };
        password::verify(token, &hash).then(|| Principal {
            name: format!("token:{id}"),
            role: Role::Reader,
            via: Via::Token,
        })
    }

    /// Revokes a token; it stops working at once (also in a running server, which notices
    /// the file change). Revoking a revoked token is not an error.
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<(), AuthError> {
        self.mutate(|file| {
            let token = file
                .tokens
                .iter_mut()
                .find(|t| t.id == id)
                .ok_or_else(|| AuthError::UnknownToken(id.to_string()))?;
            if !token.revoked {
                token.revoked = true;
                token.revoked_at = Some(now_rfc3339());
                token.revoked_by = Some(actor.to_string());
            }
            Ok(())
        })?;
        tracing::info!(token_id = id, actor, "API token revoked.");
        Ok(())
    }

    /// All users, in creation order.
    pub fn users(&self) -> Vec<UserInfo> {
        self.refresh();
        self.state
            .read()
            .file
            .users
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                role: u.role,
                active: u.active,
                created_at: u.created_at.clone(),
                created_by: u.created_by.clone(),
            })
            .collect()
    }

    /// All tokens (revoked ones too), in creation order.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.refresh();
        self.state
            .read()
            .file
            .tokens
            .iter()
            .map(|t| TokenInfo {
                id: t.id.clone(),
                label: t.label.clone(),
                created_at: t.created_at.clone(),
                created_by: t.created_by.clone(),
                revoked: t.revoked,
                revoked_at: t.revoked_at.clone(),
                revoked_by: t.revoked_by.clone(),
            })
            .collect()
    }

    /// Whether there are no users yet (first start).
    pub fn is_empty(&self) -> bool {
        self.refresh();
        self.state.read().file.users.is_empty()
    }

    /// On first start (no users), how to create the first admin; `None` otherwise. The command
    /// names this store's directory, so it is right whatever `--data-dir` the server was given
    /// (`lpm user add` without one would write into `./data`).
    pub fn first_start_hint(&self) -> Option<String> {
        self.is_empty().then(|| {
            format!(
                "No users yet, so nobody can sign in. Create the first admin with\n\
                 \n    lpm user add --role admin --data-dir {} <name>\n\n\
                 (it asks for a password of at least {MIN_PASSWORD_CHARS} characters), or start \
                 with --demo to create demo users. Users are kept in {}.",
                shell_word(&self.dir.display().to_string()),
                self.path.display()
            )
        })
    }
}

/// `s` as one POSIX shell word: as is when it holds only characters no shell treats specially,
/// else single-quoted, so a printed command can be pasted whatever the path holds.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+,=".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> AuthStore {
        AuthStore::open_with_cost(dir, PasswordCost::Fast).expect("open")
    }

    #[test]
    fn password_round_trip_wrong_password_unknown_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        assert!(s.is_empty());
        s.add_user("ana.perez", "0123456789", Role::Responder, "test")
            .expect("add");
        assert!(!s.is_empty());
        let p = s
            .verify_password("ana.perez", "0123456789")
            .expect("verify");
        assert_eq!(p.name, "ana.perez");
        assert_eq!(p.role, Role::Responder);
        assert_eq!(p.via, Via::Session);
        assert!(matches!(
            s.verify_password("ana.perez", "0123456780"),
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            s.verify_password("nobody", "0123456789"),
            Err(AuthError::BadCredentials)
        ));
    }

    #[test]
    fn add_user_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let field = |r: Result<(), AuthError>| match r {
            Err(AuthError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(
            field(s.add_user("Ana", "0123456789", Role::Admin, "t")),
            "username"
        );
        assert_eq!(
            field(s.add_user("", "0123456789", Role::Admin, "t")),
            "username"
        );
        assert_eq!(
            field(s.add_user("a b", "0123456789", Role::Admin, "t")),
            "username"
        );
        assert_eq!(
            field(s.add_user(&"a".repeat(65), "0123456789", Role::Admin, "t")),
            "username"
        );
        assert_eq!(
            field(s.add_user("ana", "012345678", Role::Admin, "t")),
            "password"
        );
        assert_eq!(
            field(s.add_user("ana", "0123456789", Role::Reader, "t")),
            "role"
        );
        s.add_user(&"a".repeat(64), "0123456789", Role::Admin, "t")
            .expect("64 chars is fine");
        s.add_user("a-b_c.9", "ñandú-ñandú", Role::Admin, "t")
            .expect("non-ASCII passwords count characters");
        assert!(matches!(
            s.add_user("a-b_c.9", "0123456789", Role::Responder, "t"),
            Err(AuthError::DuplicateUser(_))
        ));
    }

    #[test]
    fn set_password_and_set_active() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        s.add_user("ana", "first-password", Role::Admin, "t")
            .expect("add");
        s.set_password("ana", "second-password", "t").expect("set");
        assert!(s.verify_password("ana", "first-password").is_err());
        assert!(s.verify_password("ana", "second-password").is_ok());
        s.set_active("ana", false, "t").expect("disable");
        assert!(matches!(
            s.verify_password("ana", "second-password"),
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            s.set_password("bob", "0123456789", "t"),
            Err(AuthError::UnknownUser(_))
        ));
    }

    #[test]
    fn token_create_verify_revoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let t = s.create_token("grafana", "admin").expect("create");
        assert!(t.token.starts_with(&format!("lpm_{}_", t.id)));
        assert_eq!(token_id(&t.token), Some(t.id.as_str()));
        let p = s.verify_token(&t.token).expect("valid");
        assert_eq!(p.role, Role::Reader);
        assert_eq!(p.via, Via::Token);
        assert_eq!(p.name, format!("token:{}", t.id));
        assert!(!p.can_write() && !p.sees_personal_data());

        // A changed character, a truncated token, garbage: all rejected.
        let mut wrong = t.token.clone();
        let last = wrong.pop().expect("non-empty");
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(s.verify_token(&wrong).is_none());
        assert!(s.verify_token(&t.token[..t.token.len() - 1]).is_none());
        assert!(s.verify_token("lpm_").is_none());
        assert!(s.verify_token("").is_none());

        let listed = s.tokens();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].label, "grafana");
        assert_eq!(listed[0].created_by, "admin");
        assert!(!listed[0].revoked);

        s.revoke_token(&t.id, "admin").expect("revoke");
        assert!(s.verify_token(&t.token).is_none());
        s.revoke_token(&t.id, "admin")
            .expect("revoking twice is fine");
        assert!(matches!(
            s.revoke_token("000000000000", "admin"),
            Err(AuthError::UnknownToken(_))
        ));
        let listed = s.tokens();
        assert!(listed[0].revoked);
        assert_eq!(listed[0].revoked_by.as_deref(), Some("admin"));
        assert!(matches!(
            s.create_token("", "admin"),
            Err(AuthError::Invalid { field: "label", .. })
        ));
    }

    #[test]
    fn persists_across_reopen_without_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = {
            let s = store(dir.path());
            s.add_user("ana", "0123456789", Role::Admin, "cli")
                .expect("add");
            s.create_token("grafana", "cli").expect("token").token
        };
        let s = store(dir.path());
        assert!(s.verify_password("ana", "0123456789").is_ok());
        assert!(s.verify_token(&token).is_some());
        assert_eq!(s.users().len(), 1);
        assert_eq!(s.users()[0].created_by, "cli");

        let text = fs::read_to_string(dir.path().join(AUTH_FILE)).expect("read");
        assert!(!text.contains("0123456789"));
        let secret = token.rsplit('_').next().expect("secret");
        assert!(!text.contains(secret));
        assert!(text.contains("$argon2id$"));
    }

    #[cfg(unix)]
    #[test]
    fn file_mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        s.add_user("ana", "0123456789", Role::Admin, "t")
            .expect("add");
        let mode = fs::metadata(s.path()).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(AUTH_FILE)]);
    }

    #[test]
    fn sees_changes_made_by_another_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = store(dir.path());
        server
            .add_user("ana", "0123456789", Role::Admin, "t")
            .expect("add");
        // The CLI opens its own store on the same directory.
        let cli = store(dir.path());
        let token = cli.create_token("grafana", "cli").expect("token");
        cli.add_user("bob", "0123456789", Role::Responder, "cli")
            .expect("add");
        assert!(server.verify_token(&token.token).is_some());
        assert!(server.verify_password("bob", "0123456789").is_ok());
        // A change through the server keeps the CLI's changes.
        server
            .add_user("eva", "0123456789", Role::Responder, "ana")
            .expect("add");
        let names: Vec<_> = store(dir.path())
            .users()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["ana", "bob", "eva"]);
        cli.revoke_token(&token.id, "cli").expect("revoke");
        assert!(server.verify_token(&token.token).is_none());
    }

    #[test]
    fn corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(AUTH_FILE), "{not json").expect("write");
        assert!(matches!(
            AuthStore::open_with_cost(dir.path(), PasswordCost::Fast),
            Err(AuthError::Corrupt { .. })
        ));
        fs::write(dir.path().join(AUTH_FILE), r#"{"version":99}"#).expect("write");
        assert!(matches!(
            AuthStore::open_with_cost(dir.path(), PasswordCost::Fast),
            Err(AuthError::Io { .. })
        ));
    }

    #[test]
    fn first_start_hint_only_without_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let hint = s.first_start_hint().expect("hint");
        let command = format!(
            "lpm user add --role admin --data-dir {} <name>",
            shell_word(&dir.path().display().to_string())
        );
        assert!(hint.contains(&command), "{hint}");
        s.add_user("ana", "0123456789", Role::Admin, "t")
            .expect("add");
        assert!(s.first_start_hint().is_none());
    }

    #[test]
    fn shell_words_paste_back_as_one_argument() {
        assert_eq!(shell_word("./data"), "./data");
        assert_eq!(shell_word("/var/lib/lpm"), "/var/lib/lpm");
        assert_eq!(shell_word("my data"), "'my data'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
