//! The system of record in MySQL mode (`lpm serve --mysql URL`): the API's writes are MySQL
//! transactions; the engine learns about them from whatever source shows MySQL's changes
//! (`--capture` today), exactly as it learns about writes made by any other MySQL client.
//!
//! ```text
//! submit(cmd) ─ BEGIN (READ COMMITTED) ─ SELECT … FOR UPDATE the rows cmd needs ─ scratch Ledger
//!   ─ Ledger::execute (same validation and plan as embedded mode) ─ INSERT / UPDATE … WHERE
//!   id = ? AND version = ? ─ COMMIT ─┐   (1213, 1205, 1062, broken connection: retry with jitter)
//!                                    └─ wait until the engine's case model shows the write
//!                                       (binlog → capture → engine) ─ (tick, shown | not yet)
//! ```
//!
//! - Ids are explicit: `MAX(id) + 1` read in the transaction; two concurrent inserts of the same
//!   id end in 1062 for one of them, which retries with fresh ids.
//! - Every connection runs `time_zone = '+00:00'` and a short `innodb_lock_wait_timeout`; each
//!   attempt is bounded by [`MysqlConfig::timeout`], so an unreachable MySQL answers 503 with
//!   `Retry-After` in about that time, never after a TCP timeout. The pool reconnects by itself
//!   when MySQL is back: nothing to restart.
//! - The signed-in user is logged with each write; `schema.sql` has no column for it.

pub mod error;
pub mod health;
pub mod migrate;
pub mod rows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_engine::model::{EpochMs, Key, Responsible, Row, Table};
use lpm_engine::read::CaseDetail;
use lpm_engine::{EngineHandle, Tick};
use mysql_async::prelude::Queryable;
use mysql_async::{IsolationLevel, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, TxOpts};

use super::auto_assign::{AutoAssign, Eligible};
use super::ledger::{Command, Ledger, Plan};
use super::{Committed, SorError, Visibility};
pub use error::{ErrorKind, MysqlError};
use health::{MysqlHealth, MysqlMetrics};
use rows::{ASSIGNMENT_COLUMNS, CASE_COLUMNS, RESPONSIBLE_COLUMNS};

/// Seconds a client should wait before retrying a write MySQL could not take.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Attempts per write when the connection is what fails.
const CONNECTION_ATTEMPTS: u32 = 3;

/// How `lpm serve --mysql` reaches MySQL.
#[derive(Clone, Debug)]
pub struct MysqlConfig {
    /// `mysql://user:pass@host:port/database`.
    pub url: String,
    /// Largest number of pooled connections.
    pub pool_max: usize,
    /// Bound of one write attempt (connect, statements, commit) and of the probe.
    pub timeout: Duration,
    /// Attempts per write (the first included) when a race or a broken connection fails it.
    pub attempts: u32,
}

impl MysqlConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> MysqlConfig {
        MysqlConfig {
            url: url.into(),
            pool_max: 16,
            timeout: Duration::from_secs(3),
            attempts: 8,
        }
    }

    /// The database the URL names (required: it is where writes go).
    pub fn database(&self) -> Result<String, MysqlError> {
        let opts = Opts::from_url(&self.url).map_err(|e| MysqlError::Url(e.to_string()))?;
        opts.db_name().map(str::to_string).ok_or_else(|| {
            MysqlError::Url(format!(
                "{} names no database; add it to the path, e.g. mysql://user:pass@host:3306/{}",
                redact(&self.url),
                super::DATABASE
            ))
        })
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && url[s + 3..at].contains(':') => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// What a write attempt ended with.
enum Attempt {
    /// Committed.
    Done(Plan),
    /// The command breaks a rule (validation, version, missing row): the client's answer.
    Refused(SorError),
}

/// The MySQL system of record.
pub struct MysqlSor {
    pool: Pool,
    database: String,
    config: MysqlConfig,
    engine: EngineHandle,
    visible_timeout: Duration,
    read_timeout: Duration,
    health: MysqlHealth,
    clock: fn() -> EpochMs,
    /// `--auto-assign`, set once at start.
    auto: std::sync::OnceLock<Arc<AutoAssign>>,
}

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

/// A little randomness for backoff (no RNG crate: the OS source, else the clock).
fn jitter_ms(below: u64) -> u64 {
    let mut b = [0u8; 8];
    let seed = match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => now_ms() as u64,
    };
    seed % below.max(1)
}

impl MysqlSor {
    /// A pool for `config` (connections are made lazily: MySQL may be down at start, writes then
    /// answer 503 until it is up). `visible_timeout` bounds the wait for the engine after COMMIT.
    pub fn new(
        config: MysqlConfig,
        engine: EngineHandle,
        visible_timeout: Duration,
        read_timeout: Duration,
        metrics: &prometheus::Registry,
    ) -> Result<MysqlSor, MysqlError> {
        let database = config.database()?;
        let opts = Opts::from_url(&config.url).map_err(|e| MysqlError::Url(e.to_string()))?;
        let constraints = PoolConstraints::new(0, config.pool_max.max(1))
            .ok_or_else(|| MysqlError::Url("pool constraints".into()))?;
        let lock_wait = config.timeout.as_secs().clamp(1, 50);
        let opts = OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .setup(vec![
                "SET SESSION time_zone = '+00:00'".to_string(),
                format!("SET SESSION innodb_lock_wait_timeout = {lock_wait}"),
            ])
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(60))
                    .with_ttl_check_interval(Duration::from_secs(30)),
            );
        let metrics =
            MysqlMetrics::register(metrics).map_err(|e| MysqlError::Data(e.to_string()))?;
        Ok(MysqlSor {
            pool: Pool::new(opts),
            database,
            config,
            engine,
            visible_timeout,
            read_timeout,
            health: MysqlHealth::new(metrics),
            clock: now_ms,
            auto: std::sync::OnceLock::new(),
        })
    }

    /// The database writes go to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// MySQL's reachability (for `/readyz`).
    pub fn health(&self) -> &MysqlHealth {
        &self.health
    }

    /// Runs `f` on a pooled connection within [`MysqlConfig::timeout`], recording whether MySQL
    /// answered.
    async fn bounded<T, F>(&self, f: F) -> Result<T, MysqlError>
    where
        F: std::future::Future<Output = Result<T, MysqlError>>,
    {
        let result = match tokio::time::timeout(self.config.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(MysqlError::Timeout(self.config.timeout)),
        };
        match &result {
            Ok(_) => self.health.reached(),
            Err(e) if e.kind().means_down() => self.health.unreachable(&e.to_string()),
            Err(_) => self.health.reached(),
        }
        result
    }

    /// Checks at start that the database has every migration (a warning when MySQL is down:
    /// the server starts, and writes answer 503 until it is up).
    pub async fn check_schema(&self) -> Result<(), SorError> {
        let checked = self
            .bounded(async {
                let mut conn = self.pool.get_conn().await?;
                Ok(migrate::status(&mut conn).await)
            })
            .await;
        match checked {
            Ok(Ok(s)) if s.pending.is_empty() => Ok(()),
            Ok(Ok(s)) => Err(SorError::Unavailable(format!(
                "database {} lacks migrations {}; run `lpm migrate --mysql URL` first",
                self.database,
                s.pending.join(", ")
            ))),
            Ok(Err(e)) => Err(SorError::Unavailable(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "MySQL is not reachable at start; writes answer 503 until it is.");
                Ok(())
            }
        }
    }

    /// Probes MySQL every `every` (`SELECT 1`), so `lpm_mysql_up` and `/readyz` follow it even
    /// without writes. Ends when `stop` is set.
    pub fn spawn_probe(
        self: &Arc<Self>,
        every: Duration,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = me.upgrade() else { return };
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let _ = me
                    .bounded(async {
                        let mut conn = me.pool.get_conn().await?;
                        conn.query_drop("SELECT 1").await?;
                        Ok(())
                    })
                    .await;
            }
        });
    }

    /// Validates and writes `cmd` in one transaction, retrying races, then waits for the engine
    /// to show it. `actor` is logged.
    pub async fn submit(&self, cmd: Command, actor: &str) -> Result<Committed, SorError> {
        let case_of_cmd = super::case_of_command(&cmd);
        let main_table = cmd.main_table();
        let started = Instant::now();
        let mut attempt = 0;
        let plan = loop {
            attempt += 1;
            let now = (self.clock)();
            let eligible = self
                .auto
                .get()
                .filter(|_| cmd.wants_auto())
                .map(|a| a.eligible());
            match self
                .bounded(self.attempt(cmd.clone(), now, eligible.as_ref()))
                .await
            {
                Ok(Attempt::Done(plan)) => break plan,
                Ok(Attempt::Refused(e)) => return Err(e),
                Err(e) => {
                    let kind = e.kind();
                    self.health.failed(kind);
                    let budget_left = started.elapsed() < self.config.timeout;
                    // a broken connection is retried only to skip pooled connections that died
                    // with a restart: when MySQL is down, answer 503 at once
                    let limit = match kind {
                        ErrorKind::Connection => self.config.attempts.min(CONNECTION_ATTEMPTS),
                        _ => self.config.attempts,
                    };
                    if kind.retryable() && attempt < limit && budget_left {
                        self.health.retried();
                        let wait = 5 * (1u64 << attempt.min(6)) + jitter_ms(25);
                        tracing::debug!(error = %e, attempt, wait_ms = wait, "Retrying a MySQL write.");
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        continue;
                    }
                    tracing::warn!(error = %e, attempt, kind = kind.label(), "A MySQL write failed.");
                    return Err(SorError::Unavailable(format!(
                        "MySQL (the system of record at {}) cannot take writes now: {e}",
                        self.database
                    )));
                }
            }
        };
        tracing::debug!(
            actor,
            id = plan.id,
            attempts = attempt,
            "Write committed to MySQL."
        );
        if let Some(a) = self.auto.get() {
            a.committed(&plan);
        }
        let row = plan.row(main_table, plan.id).cloned();
        // responsibles are not in the case model: their answer is the row as written
        let (tick, visibility) = match main_table {
            Table::ResponsibleContacts => {
                (self.engine.store().tick().unwrap_or(0), Visibility::Shown)
            }
            _ => {
                self.wait_visible(case_of_cmd.unwrap_or(plan.id), &plan)
                    .await
            }
        };
        Ok(Committed {
            id: plan.id,
            case_id: case_of_cmd.unwrap_or(plan.id),
            version: plan.version,
            seq: 0,
            tick,
            row,
            visibility,
        })
    }

    /// One transaction: lock and load what `cmd` needs, plan with the ledger, write, commit.
    async fn attempt(
        &self,
        cmd: Command,
        now: EpochMs,
        eligible: Option<&Eligible>,
    ) -> Result<Attempt, MysqlError> {
        let mut conn = self.pool.get_conn().await?;
        let mut opts = TxOpts::default();
        opts.with_isolation_level(IsolationLevel::ReadCommitted);
        let mut tx = conn.start_transaction(opts).await?;
        let mut ledger = Ledger::default();
        load(&mut tx, &cmd, &mut ledger).await?;
        if let Some(e) = eligible {
            lock_candidates(&mut tx, e, &mut ledger).await?;
        }
        // after every lock: an auto-assigning write that waited for the candidates' locks
        // must not take ids a write committed meanwhile (1062, a retry)
        seed_ids(&mut tx, &mut ledger).await?;
        let plan = match ledger.execute_with(cmd, now, eligible) {
            Ok(p) => p,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Attempt::Refused(e));
            }
        };
        for (before, after) in &plan.rows {
            rows::write(&mut tx, before.as_ref(), after).await?;
        }
        tx.commit().await?;
        Ok(Attempt::Done(plan))
    }

    /// Waits (up to the visible timeout, on the store's tick condition, no spinning) until the
    /// engine's case model shows the case at the written version (an action: the action).
    async fn wait_visible(&self, case_id: Key, plan: &Plan) -> (Tick, Visibility) {
        let engine = self.engine.clone();
        let (timeout, read_timeout) = (self.visible_timeout, self.read_timeout);
        let version = plan.version;
        let action = plan.rows.iter().find_map(|(_, r)| match r {
            Row::Action(a) if plan.version.is_none() => Some(a.id),
            _ => None,
        });
        // a sighting is its own row with its own version: wait for the row, not a case version
        let sighting = plan.rows.iter().find_map(|(_, r)| match r {
            Row::Sighting(s) => Some(s.id),
            _ => None,
        });
        let shows = move |d: &CaseDetail| match (sighting, version, action) {
            (Some(s), _, _) => d.sightings.iter().any(|x| x.id == s),
            (None, Some(v), _) => d.record.case.version >= v,
            (None, None, Some(a)) => d.actions.iter().any(|x| x.id == a),
            (None, None, None) => true,
        };
        let waited = tokio::task::spawn_blocking(move || {
            let store = engine.store().clone();
            let deadline = Instant::now() + timeout;
            loop {
                let seen = store.tick();
                if seen.is_some() {
                    if let Ok(Some(d)) = engine.case(case_id, read_timeout) {
                        if shows(&d) {
                            return (d.tick, Visibility::Shown);
                        }
                    }
                }
                let next = seen.map_or(0, |t| t + 1);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !store.wait_for(next, left) {
                    return (next, Visibility::NotYet);
                }
            }
        })
        .await;
        waited.unwrap_or((0, Visibility::NotYet))
    }

    /// Turns auto-assignment on (`--auto-assign`; once, at start).
    pub fn set_auto_assign(&self, auto: Arc<AutoAssign>) {
        let _ = self.auto.set(auto);
    }

    /// The oldest open case without a responsible, read from MySQL.
    pub async fn oldest_unassigned(&self) -> Result<Option<Key>, SorError> {
        self.read(|mut conn| async move {
            let id: Option<i64> = conn
                .query_first(
                    "SELECT id FROM case_cases WHERE responsible_id IS NULL \
                     AND status IN ('open', 'in_progress') ORDER BY opened_at, id LIMIT 1",
                )
                .await?;
            Ok(id)
        })
        .await
    }

    /// Every contact, read from MySQL (the system of record).
    pub async fn responsibles(&self) -> Result<Vec<Arc<Responsible>>, SorError> {
        self.read(|mut conn| async move { rows::all_responsibles(&mut conn).await })
            .await
    }

    /// One contact, read from MySQL.
    pub async fn responsible(&self, id: Key) -> Result<Option<Arc<Responsible>>, SorError> {
        self.read(|mut conn| async move {
            Ok(rows::one_responsible(&mut conn, id).await?.map(Arc::new))
        })
        .await
    }

    async fn read<T, F, Fut>(&self, f: F) -> Result<T, SorError>
    where
        F: FnOnce(mysql_async::Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, MysqlError>>,
    {
        self.bounded(async {
            let conn = self.pool.get_conn().await?;
            f(conn).await
        })
        .await
        .map_err(|e| {
            SorError::Unavailable(format!(
                "MySQL (the system of record at {}) cannot be read now: {e}",
                self.database
            ))
        })
    }

    /// Closes the pool (shutdown), waiting at most the timeout.
    pub async fn close(&self) {
        let pool = self.pool.clone();
        let _ = tokio::time::timeout(self.config.timeout, pool.disconnect()).await;
    }
}

/// Loads, with row locks, every row `cmd` reads into `ledger`.
async fn load(
    tx: &mut mysql_async::Transaction<'_>,
    cmd: &Command,
    ledger: &mut Ledger,
) -> Result<(), MysqlError> {
    let mut responsibles: Vec<Key> = Vec::new();
    match cmd {
        Command::CreateReport(r) => {
            responsibles.extend(r.responsible_id);
            responsibles.extend(r.first_action.as_ref().and_then(|a| a.responsible_id));
        }
        Command::UpdateCase { case_id, .. } => {
            responsibles.extend(lock_case(tx, *case_id, ledger).await?);
        }
        Command::Assign {
            case_id,
            responsible_id,
            ..
        } => {
            lock_case(tx, *case_id, ledger).await?;
            responsibles.push(*responsible_id);
            lock_open_assignment(tx, *case_id, ledger).await?;
        }
        Command::LogAction { case_id, action } => {
            let current = lock_case(tx, *case_id, ledger).await?;
            responsibles.extend(action.responsible_id.or(current));
        }
        Command::AddSighting { case_id, .. } => {
            lock_case(tx, *case_id, ledger).await?;
        }
        Command::AutoAssign { case_id } => {
            lock_case(tx, *case_id, ledger).await?;
            lock_open_assignment(tx, *case_id, ledger).await?;
        }
        Command::CreateResponsible(_) => {}
        Command::UpdateResponsible { id, .. } => {
            let row: Option<mysql_async::Row> = tx
                .exec_first(
                    format!(
                        "SELECT {RESPONSIBLE_COLUMNS} FROM responsible_contacts WHERE id = ? FOR UPDATE"
                    ),
                    (id,),
                )
                .await?;
            if let Some(r) = row {
                ledger.apply(&Row::Responsible(Arc::new(rows::responsible_of(r)?)));
            }
        }
    }
    responsibles.sort_unstable();
    responsibles.dedup();
    for id in responsibles {
        // shared: a concurrent deactivation waits until this write is done
        let row: Option<mysql_async::Row> = tx
            .exec_first(
                format!(
                    "SELECT {RESPONSIBLE_COLUMNS} FROM responsible_contacts WHERE id = ? \
                     LOCK IN SHARE MODE"
                ),
                (id,),
            )
            .await?;
        if let Some(r) = row {
            ledger.apply(&Row::Responsible(Arc::new(rows::responsible_of(r)?)));
        }
    }
    Ok(())
}

/// Seeds `ledger`'s id counters with the tables' current largest ids.
async fn seed_ids(
    tx: &mut mysql_async::Transaction<'_>,
    ledger: &mut Ledger,
) -> Result<(), MysqlError> {
    let max: Option<(i64, i64, i64, i64, i64, i64)> = tx
        .query_first(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM case_actions), \
                    (SELECT COALESCE(MAX(id), 0) FROM case_cases), \
                    (SELECT COALESCE(MAX(id), 0) FROM case_responsible_history), \
                    (SELECT COALESCE(MAX(id), 0) FROM case_sightings), \
                    (SELECT COALESCE(MAX(id), 0) FROM persons_lost), \
                    (SELECT COALESCE(MAX(id), 0) FROM responsible_contacts)",
        )
        .await?;
    let (a, c, h, s, p, r) = max.ok_or_else(|| MysqlError::Data("no MAX(id) row".into()))?;
    for (table, id) in [
        (Table::CaseActions, a),
        (Table::CaseCases, c),
        (Table::CaseResponsibleHistory, h),
        (Table::CaseSightings, s),
        (Table::PersonsLost, p),
        (Table::ResponsibleContacts, r),
    ] {
        ledger.seed_max_id(table, id);
    }
    Ok(())
}

/// Locks and loads the open assignment of a case.
async fn lock_open_assignment(
    tx: &mut mysql_async::Transaction<'_>,
    case_id: Key,
    ledger: &mut Ledger,
) -> Result<(), MysqlError> {
    let open: Vec<mysql_async::Row> = tx
        .exec(
            format!(
                "SELECT {ASSIGNMENT_COLUMNS} FROM case_responsible_history \
                 WHERE case_id = ? AND unassigned_at IS NULL ORDER BY id FOR UPDATE"
            ),
            (case_id,),
        )
        .await?;
    for r in open {
        ledger.apply(&Row::Assignment(Arc::new(rows::assignment_of(r)?)));
    }
    Ok(())
}

/// Locks (exclusively, in id order) the contact rows of auto-assignment's candidates and loads
/// them with their open cases and latest assignment. Every write that auto-assigns takes these
/// locks, and a manual assignment takes a shared lock on its contact, so loads are counted
/// and raised one write at a time: concurrent filings never pass the cap.
async fn lock_candidates(
    tx: &mut mysql_async::Transaction<'_>,
    eligible: &Eligible,
    ledger: &mut Ledger,
) -> Result<(), MysqlError> {
    if eligible.contacts.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; eligible.contacts.len()].join(", ");
    let ids: Vec<mysql_async::Value> = eligible.contacts.iter().map(|&i| i.into()).collect();
    let contacts: Vec<mysql_async::Row> = tx
        .exec(
            format!(
                "SELECT {RESPONSIBLE_COLUMNS} FROM responsible_contacts WHERE id IN ({marks}) \
                 ORDER BY id FOR UPDATE"
            ),
            ids.clone(),
        )
        .await?;
    for r in contacts {
        ledger.apply(&Row::Responsible(Arc::new(rows::responsible_of(r)?)));
    }
    // READ COMMITTED: these statements see every write committed before the locks were ours
    let loads: Vec<mysql_async::Row> = tx
        .exec(
            format!(
                "SELECT responsible_id, COUNT(*) FROM case_cases WHERE responsible_id IN ({marks}) \
                 AND status IN ('open', 'in_progress') GROUP BY responsible_id"
            ),
            ids.clone(),
        )
        .await?;
    let lasts: Vec<mysql_async::Row> = tx
        .exec(
            format!(
                "SELECT responsible_id, MAX(assigned_at) FROM case_responsible_history \
                 WHERE responsible_id IN ({marks}) GROUP BY responsible_id"
            ),
            ids,
        )
        .await?;
    let mut last = std::collections::HashMap::new();
    for r in lasts {
        let (id, at) = rows::id_and_time(r)?;
        last.insert(id, at);
    }
    let mut open = std::collections::HashMap::new();
    for r in loads {
        let (id, n) = rows::id_and_count(r)?;
        open.insert(id, n);
    }
    for &id in &eligible.contacts {
        ledger.seed_load(
            id,
            open.get(&id).copied().unwrap_or(0),
            last.get(&id).copied(),
        );
    }
    Ok(())
}

/// Locks and loads a case; returns its responsible.
async fn lock_case(
    tx: &mut mysql_async::Transaction<'_>,
    id: Key,
    ledger: &mut Ledger,
) -> Result<Option<Key>, MysqlError> {
    let row: Option<mysql_async::Row> = tx
        .exec_first(
            format!("SELECT {CASE_COLUMNS} FROM case_cases WHERE id = ? FOR UPDATE"),
            (id,),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let case = rows::case_of(row)?;
    let responsible = case.responsible_id;
    ledger.apply(&Row::Case(Arc::new(case)));
    Ok(responsible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_database_and_passwords_stay_out_of_messages() {
        let c = MysqlConfig::new("mysql://lpm:secret@db:3306/lost_persons_db");
        assert_eq!(c.database().expect("db"), "lost_persons_db");
        let err = MysqlConfig::new("mysql://lpm:secret@db:3306")
            .database()
            .expect_err("no db");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("names no database"), "{err}");
        assert_eq!(redact("mysql://lpm:pw@h:1/d"), "mysql://lpm:***@h:1/d");
        assert_eq!(redact("mysql://h:1/d"), "mysql://h:1/d");
        assert_eq!(redact("mysql://root@h:1/d"), "mysql://root@h:1/d");
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        for _ in 0..100 {
            assert!(jitter_ms(25) < 25);
        }
    }
}
