//! `lpm migrate`: versioned schema migrations compiled into the binary from
//! `migrations/NNNN_name.sql`, applied in order and recorded in `lpm_schema_migrations`.
//!
//! - The database is created when missing (`utf8mb4`).
//! - Concurrent runs are serialised with `GET_LOCK('lpm_migrate.<db>')` (a server-side named
//!   lock, released when the connection ends, so a killed run never leaves it held).
//! - A migration already applied whose recorded checksum (CRC32 of the file, as Flyway does)
//!   differs from the binary's is refused, naming it: an edited migration would leave
//!   databases that ran the old text and databases that ran the new one silently different.
//! - MySQL cannot roll DDL back: a migration that fails half-way leaves its first statements
//!   applied and no row in the table; the error names the statement so it can be repaired.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::error::MysqlError;

/// One migration compiled into the binary.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// `NNNN` of the file name.
    pub version: u32,
    /// The rest of the file name, without `.sql`.
    pub name: &'static str,
    /// The file's text.
    pub sql: &'static str,
}

impl Migration {
    /// `0001_lost_persons_schema`: how messages name it (the file name without `.sql`).
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }

    /// CRC32 of the file's bytes, as hex.
    pub fn checksum(&self) -> String {
        format!("{:08x}", crc32fast::hash(self.sql.as_bytes()))
    }
}

/// Every migration, in order. Append only; never edit or reorder an entry.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "lost_persons_schema",
        sql: include_str!("../../../migrations/0001_lost_persons_schema.sql"),
    },
    Migration {
        version: 2,
        name: "case_sightings",
        sql: include_str!("../../../migrations/0002_case_sightings.sql"),
    },
    Migration {
        version: 3,
        name: "case_publication",
        sql: include_str!("../../../migrations/0003_case_publication.sql"),
    },
];

/// The table that records applied migrations.
pub const TABLE: &str = "lpm_schema_migrations";

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS lpm_schema_migrations (
  version     INT          NOT NULL PRIMARY KEY,
  name        VARCHAR(200) NOT NULL,
  checksum    VARCHAR(64)  NOT NULL,
  applied_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
)";

/// How long a run waits for another run's lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The URL does not parse, or the database name is unusable.
    #[error("{0}")]
    Config(String),
    /// MySQL cannot be reached.
    #[error("cannot connect to MySQL at {address}: {reason}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why (the innermost cause, e.g. `Connection refused`).
        reason: String,
    },
    /// An applied migration differs from the binary's.
    #[error(
        "migration {label} was applied with checksum {applied}, but this lpm has {ours}: the \
         file was edited after it ran; restore it and add a new migration instead"
    )]
    Checksum {
        /// The migration.
        label: String,
        /// Recorded checksum.
        applied: String,
        /// The binary's checksum.
        ours: String,
    },
    /// The database has migrations this binary does not know (a newer lpm migrated it).
    #[error("the database has migration {0} applied, which this lpm does not know (a newer lpm migrated it)")]
    Unknown(String),
    /// Another run holds the lock too long.
    #[error("another `lpm migrate` has held the lock on {database} for {} s", LOCK_WAIT.as_secs())]
    Locked {
        /// The database.
        database: String,
    },
    /// A statement failed.
    #[error("migration {label} failed at statement {index} ({statement}): {error}")]
    Statement {
        /// The migration.
        label: String,
        /// 1-based statement number.
        index: usize,
        /// Its first line.
        statement: String,
        /// Why.
        #[source]
        error: mysql_async::Error,
    },
    /// Any other MySQL failure.
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The database.
    pub database: String,
    /// Whether it had to be created.
    pub created_database: bool,
    /// Labels of the migrations applied now, in order.
    pub applied: Vec<String>,
    /// How many were applied before.
    pub already: usize,
}

/// The state of a database's migrations.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Labels of the migrations not yet applied.
    pub pending: Vec<String>,
}

/// A database name usable in backquotes and in a lock name.
fn check_database(db: &str) -> Result<(), MigrateError> {
    let ok = !db.is_empty()
        && db.len() <= 64
        && db
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(MigrateError::Config(format!(
            "database name {db:?}: use 1-64 ASCII letters, digits, `_` or `$`"
        )))
    }
}

/// Splits a script into statements at `;`, outside quotes and comments; comments are dropped.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                cur.push(c);
                while let Some(d) = chars.next() {
                    cur.push(d);
                    if d == '\\' && c != '`' {
                        if let Some(e) = chars.next() {
                            cur.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                cur.push(' ');
            }
            ';' => {
                let s = cur.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    let s = cur.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}

/// The innermost cause of `e` (driver errors wrap the same I/O error several times).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Connects to the server named by `url` without selecting a database (it may not exist yet).
async fn connect(url: &str) -> Result<Conn, MigrateError> {
    let opts = Opts::from_url(url).map_err(|e| MigrateError::Config(format!("--mysql: {e}")))?;
    let address = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    let opts = OptsBuilder::from_opts(opts)
        .db_name(None::<String>)
        .prefer_socket(false);
    let connecting = Conn::new(opts);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(MigrateError::Connect {
            address,
            reason: root_cause(&e),
        }),
        Err(_) => Err(MigrateError::Connect {
            address,
            reason: MysqlError::Timeout(Duration::from_secs(10)).to_string(),
        }),
    }
}

/// The database `lpm migrate` works on: `--database`, else the URL's, else `lost_persons_db`.
pub fn database_of(url: &str, database: Option<&str>) -> Result<String, MigrateError> {
    let opts = Opts::from_url(url).map_err(|e| MigrateError::Config(format!("--mysql: {e}")))?;
    Ok(database
        .map(str::to_string)
        .or_else(|| opts.db_name().map(str::to_string))
        .unwrap_or_else(|| crate::sor::DATABASE.to_string()))
}

/// `(version, name, checksum)` of every applied migration.
async fn applied(conn: &mut Conn) -> Result<Vec<(u32, String, String)>, MigrateError> {
    Ok(conn
        .query(format!(
            "SELECT version, name, checksum FROM {TABLE} ORDER BY version"
        ))
        .await?)
}

/// Compares the applied migrations with the binary's: refuses edited and unknown ones, returns
/// the pending ones.
fn compare(applied: &[(u32, String, String)]) -> Result<Vec<&'static Migration>, MigrateError> {
    for (version, name, checksum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(m) if m.checksum() != *checksum => {
                return Err(MigrateError::Checksum {
                    label: m.label(),
                    applied: checksum.clone(),
                    ours: m.checksum(),
                })
            }
            Some(_) => {}
            None => return Err(MigrateError::Unknown(format!("{version:04}_{name}"))),
        }
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _, _)| *v == m.version))
        .collect())
}

/// Brings `database` up to date: creates it when missing, then applies every migration not yet
/// applied, in order, under the lock.
pub async fn migrate(url: &str, database: &str) -> Result<Migrated, MigrateError> {
    check_database(database)?;
    let mut conn = connect(url).await?;
    let result = migrate_on(&mut conn, database).await;
    let _ = conn.disconnect().await;
    result
}

async fn migrate_on(conn: &mut Conn, database: &str) -> Result<Migrated, MigrateError> {
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (database,),
        )
        .await?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4"
    ))
    .await?;
    conn.query_drop(format!("USE `{database}`")).await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
    let lock = format!("lpm_migrate.{database}");
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (&lock, LOCK_WAIT.as_secs()))
        .await?;
    if got.flatten() != Some(1) {
        return Err(MigrateError::Locked {
            database: database.into(),
        });
    }
    let result = apply_pending(conn, database, exists.is_none()).await;
    let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (&lock,)).await;
    result
}

async fn apply_pending(
    conn: &mut Conn,
    database: &str,
    created_database: bool,
) -> Result<Migrated, MigrateError> {
    conn.query_drop(CREATE_TABLE).await?;
    let done = applied(conn).await?;
    let pending = compare(&done)?;
    let mut out = Migrated {
        database: database.into(),
        created_database,
        applied: Vec::new(),
        already: done.len(),
    };
    for m in pending {
        tracing::info!(migration = %m.label(), database, "Applying a migration.");
        for (i, stmt) in statements(m.sql).iter().enumerate() {
            conn.query_drop(stmt.as_str())
                .await
                .map_err(|error| MigrateError::Statement {
                    label: m.label(),
                    index: i + 1,
                    statement: stmt.lines().next().unwrap_or_default().to_string(),
                    error,
                })?;
        }
        conn.exec_drop(
            format!("INSERT INTO {TABLE} (version, name, checksum) VALUES (?, ?, ?)"),
            (m.version, m.name, m.checksum()),
        )
        .await?;
        out.applied.push(m.label());
    }
    Ok(out)
}

/// Which migrations `conn`'s database lacks (for `lpm serve --mysql` at start); refuses edited
/// and unknown ones like [`migrate`].
pub async fn status(conn: &mut Conn) -> Result<Status, MigrateError> {
    let has_table: Option<String> = conn
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (TABLE,),
        )
        .await?;
    let done = match has_table {
        Some(_) => applied(conn).await?,
        None => Vec::new(),
    };
    Ok(Status {
        pending: compare(&done)?.iter().map(|m| m.label()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_leave_the_schema_the_catalog_describes() {
        // the catalog the decoder compiles in is the shared schema (0001 and 0002's
        // case_sightings) plus the columns 0003 adds to case_cases; `public` is NOT NULL in the
        // database but nullable in the catalog, because a missing NOT NULL column is a decode
        // error and events of the original schema (the shared generator's dumps) lack it
        use lpm_connectors::catalog::{Catalog, ColumnType};
        let ours: Vec<String> = MIGRATIONS[..2]
            .iter()
            .flat_map(|m| statements(m.sql))
            .collect();
        assert_eq!(ours.len(), 6);
        assert!(ours.iter().all(|s| s.starts_with("CREATE TABLE")));
        let first = Catalog::parse(&format!("{}\n{}", MIGRATIONS[0].sql, MIGRATIONS[1].sql))
            .expect("0001 and 0002 parse");
        let catalog = Catalog::lpm();
        for t in [
            "persons_lost",
            "case_actions",
            "case_responsible_history",
            "case_sightings",
            "responsible_contacts",
        ] {
            assert_eq!(first.table(t), catalog.table(t), "{t}");
        }
        let (old, new) = (
            first.table("case_cases").expect("0001 case_cases"),
            catalog.table("case_cases").expect("catalog case_cases"),
        );
        assert_eq!(new.columns[..old.columns.len()], old.columns[..]);
        let added: Vec<_> = new.columns[old.columns.len()..]
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable))
            .collect();
        assert_eq!(
            added,
            [
                ("public", ColumnType::Flag, true),
                ("public_id", ColumnType::Text, true)
            ]
        );
        let alter = statements(MIGRATIONS[2].sql);
        assert_eq!(alter.len(), 1);
        assert!(alter[0].contains("ADD COLUMN public    TINYINT(1)  NOT NULL DEFAULT 0"));
        assert!(alter[0].contains("ADD COLUMN public_id VARCHAR(32) NULL"));
    }

    #[test]
    fn versions_are_increasing_and_labels_name_the_file() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].version < w[1].version);
        }
        assert_eq!(MIGRATIONS[0].label(), "0001_lost_persons_schema");
        assert_eq!(MIGRATIONS[0].checksum().len(), 8);
    }

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let sql = "-- a; comment\nCREATE TABLE t (a INT); # x;y\n\
                   INSERT INTO t VALUES ('a;b', \"c;\\\"d\"); /* e; f */ SELECT `g;h`;\n";
        assert_eq!(
            statements(sql),
            [
                "CREATE TABLE t (a INT)",
                "INSERT INTO t VALUES ('a;b', \"c;\\\"d\")",
                "SELECT `g;h`"
            ]
        );
    }

    #[test]
    fn edited_and_unknown_migrations_are_refused() {
        let m = MIGRATIONS[0];
        let row = |m: &Migration| (m.version, m.name.to_string(), m.checksum());
        let ok: Vec<_> = MIGRATIONS.iter().map(row).collect();
        assert!(compare(&ok).expect("same").is_empty());
        assert_eq!(compare(&[]).expect("fresh").len(), MIGRATIONS.len());
        // a database migrated by the previous release lacks only the newer migrations
        let pending = compare(&ok[..1]).expect("older");
        assert_eq!(
            pending.iter().map(|m| m.label()).collect::<Vec<_>>(),
            ["0002_case_sightings", "0003_case_publication"]
        );
        let edited = [(m.version, m.name.to_string(), "00000000".to_string())];
        let err = compare(&edited).expect_err("edited");
        assert!(
            err.to_string().contains("0001_lost_persons_schema"),
            "{err}"
        );
        let unknown = [(9999, "future".to_string(), "x".to_string())];
        assert!(matches!(compare(&unknown), Err(MigrateError::Unknown(_))));
    }

    #[test]
    fn database_names_are_checked_before_use_in_sql() {
        assert!(check_database("lost_persons_db").is_ok());
        assert!(check_database("a`; DROP").is_err());
        assert!(check_database("").is_err());
    }
}
