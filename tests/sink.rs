//! `lpm serve --sink` against a real MariaDB (`LPM_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3307`; `bash scripts/mariadb.sh start` starts one). No test is
//! skipped: without a server they fail naming that command. Each test uses its own database
//! (and user), dropped at the end.
//!
//! - the demo data set, a clean stop (SIGTERM), a restart and writes over HTTP: the `agg_*`
//!   tables read back with SQL equal `GET /api/v1/views`, every view, and the stored position
//!   is the one the views cover;
//! - kill -9 while the demo trickle writes, restart, more writes: the tables equal the final
//!   views (nothing lost, nothing counted twice) and the stored position never went back;
//! - the sink's MySQL account locked and its connections killed mid-run: the API keeps
//!   serving, the sink counts errors and reports itself down, and once unlocked the tables
//!   converge to the views.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::serve::{
    assert_same_views, case_id_of, clients, create_responsibles, init_data_dir, start_demo,
    version_of, wait_until, Http, Server,
};
use crate::support::MysqlSession;

fn base_url() -> String {
    crate::support::mysql_url()
}

/// A blocking MySQL session on a database of its own, dropped (with its user) at the end.
pub(crate) struct SinkDb {
    s: MysqlSession,
    name: String,
    user: Option<String>,
    /// Whether dropping this session drops the database.
    owned: bool,
}

impl SinkDb {
    pub(crate) fn create(tag: &str) -> SinkDb {
        let mut db = SinkDb::create_session();
        db.name = format!("lpm_sink_{tag}_{}", std::process::id());
        db.owned = true;
        let n = db.name.clone();
        db.q(&format!("DROP DATABASE IF EXISTS `{n}`"));
        db.q(&format!("CREATE DATABASE `{n}` CHARACTER SET utf8mb4"));
        db
    }

    fn q(&mut self, sql: &str) {
        self.s.q(sql);
    }

    fn rows(&mut self, sql: &str) -> Vec<mysql_async::Row> {
        self.s.rows(sql)
    }

    /// `--sink` URL for this database as root (or as `user:pw`).
    pub(crate) fn url(&self, user: Option<(&str, &str)>) -> String {
        let opts = mysql_async::Opts::from_url(&base_url()).expect("LPM_TEST_MYSQL_URL parses");
        let host = opts.ip_or_hostname();
        let port = opts.tcp_port();
        match user {
            Some((u, pw)) => format!("mysql://{u}:{pw}@{host}:{port}/{}", self.name),
            None => {
                let root = opts.user().unwrap_or("root");
                match opts.pass() {
                    Some(pw) => format!("mysql://{root}:{pw}@{host}:{port}/{}", self.name),
                    None => format!("mysql://{root}@{host}:{port}/{}", self.name),
                }
            }
        }
    }

    /// The stored `(tick, position, rows)` of sink `lpm`, if any.
    pub(crate) fn state(&mut self) -> Option<(u64, Value, i64)> {
        let sql = format!(
            "SELECT `tick`, `position`, `rows` FROM `{}`.agg_sink_state WHERE sink_id = 'lpm'",
            self.name
        );
        // the table appears when the sink first connects
        let rows = self.s.try_rows(&sql).ok()?;
        let row = rows.into_iter().next()?;
        let tick: u64 = row.get(0).expect("tick");
        let position: String = row.get(1).expect("position");
        let n: i64 = row.get(2).expect("rows");
        Some((
            tick,
            serde_json::from_str(&position).expect("position is JSON"),
            n,
        ))
    }

    /// Pretends an earlier run got further: stores `position` as the sink's, adds a row no
    /// view has, and returns the tables as they are now (a restarted sink must leave them so
    /// until the engine covers `position`).
    pub(crate) fn tamper(&mut self, position: &Value) -> Value {
        let n = self.name.clone();
        self.q(&format!(
            "UPDATE `{n}`.agg_sink_state SET position = '{position}'"
        ));
        self.q(&format!(
            "INSERT INTO `{n}`.agg_hourly (hour_start, persons) VALUES (3600, 999)"
        ));
        self.views()
    }

    /// The `agg_*` tables, read back as the JSON `GET /api/v1/views` returns under `views`.
    pub(crate) fn views(&mut self) -> Value {
        let db = self.name.clone();
        let mut out = Map::new();
        for (view, table, key, col, numeric) in [
            ("age_group", "agg_age_group", "age_group", "persons", false),
            ("gender", "agg_gender", "gender", "persons", false),
            (
                "hour_of_day",
                "agg_hour_of_day",
                "hour_of_day",
                "persons",
                true,
            ),
            ("hourly", "agg_hourly", "hour_start", "persons", true),
            (
                "cases_by_status",
                "agg_cases_by_status",
                "status",
                "cases",
                false,
            ),
            (
                "open_by_priority",
                "agg_open_by_priority",
                "priority",
                "cases",
                false,
            ),
            (
                "row_counts",
                "agg_row_counts",
                "table_name",
                "row_count",
                false,
            ),
        ] {
            let mut m = Map::new();
            for r in self.rows(&format!("SELECT `{key}`, `{col}` FROM `{db}`.`{table}`")) {
                let k: String = if numeric {
                    r.get::<i64, _>(0).expect("key").to_string()
                } else {
                    r.get::<String, _>(0).expect("key")
                };
                m.insert(k, json!(r.get::<i64, _>(1).expect("count")));
            }
            out.insert(view.into(), Value::Object(m));
        }
        let load: Vec<Value> = self
            .rows(&format!(
                "SELECT responsible_id, full_name, agency, open_cases \
                 FROM `{db}`.agg_responsible_load ORDER BY responsible_id"
            ))
            .into_iter()
            .map(|r| {
                json!({"id": r.get::<i64, _>(0).expect("id"), "full_name": r.get::<String, _>(1).expect("name"),
                       "agency": r.get::<String, _>(2).expect("agency"), "open_cases": r.get::<i64, _>(3).expect("n")})
            })
            .collect();
        out.insert("responsible_load".into(), Value::Array(load));
        let mut kpi = Map::new();
        for r in self.rows(&format!("SELECT name, value FROM `{db}`.agg_kpi")) {
            let name: String = r.get(0).expect("name");
            let value: Option<String> = r.get(1).expect("value");
            let v = match value {
                None => Value::Null,
                Some(text) if name == "mean_hours_to_close" => {
                    json!(text.parse::<f64>().expect("decimal"))
                }
                Some(text) => {
                    let int = text
                        .strip_suffix(".000000")
                        .unwrap_or_else(|| panic!("agg_kpi.{name} = {text} is not a whole number"));
                    json!(int.parse::<i64>().expect("integer"))
                }
            };
            kpi.insert(name, v);
        }
        out.insert("kpi".into(), Value::Object(kpi));
        Value::Object(out)
    }

    /// A user with every privilege on this database only.
    fn create_user(&mut self, user: &str, pw: &str) {
        self.user = Some(user.to_string());
        let db = self.name.clone();
        self.q(&format!("DROP USER IF EXISTS '{user}'@'%'"));
        self.q(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'"));
        self.q(&format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%'"));
    }

    /// Locks (or unlocks) the user; locking also kills its open connections.
    fn lock_user(&mut self, locked: bool) {
        let user = self.user.clone().expect("a user");
        let what = if locked { "LOCK" } else { "UNLOCK" };
        self.q(&format!("ALTER USER '{user}'@'%' ACCOUNT {what}"));
        if locked {
            let ids: Vec<u64> = self
                .rows(&format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{user}'"
                ))
                .into_iter()
                .filter_map(|r| r.get::<u64, _>(0))
                .collect();
            for id in ids {
                // it may have gone by itself meanwhile
                let _ = self.s.try_q(&format!("KILL {id}"));
            }
        }
    }
}

impl Drop for SinkDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let n = self.name.clone();
        let _ = self.s.try_q(&format!("DROP DATABASE IF EXISTS `{n}`"));
        if let Some(u) = self.user.clone() {
            let _ = self.s.try_q(&format!("DROP USER IF EXISTS '{u}'@'%'"));
        }
    }
}

/// SIGTERM (a clean stop) and wait for the exit, which must be a success.
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid} failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait lpm serve") {
            assert!(
                status.success(),
                "lpm serve exited with {status}; stderr:\n{}",
                server.stderr()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lpm serve did not exit within 30 s of SIGTERM; stderr:\n{}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `name value` of one `/metrics` sample.
fn metric(http: &Http, name: &str) -> f64 {
    let r = http.call("GET", "/metrics", None).expect("GET /metrics");
    let text = r.body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// `n` rounds of writes over HTTP: a report, then on its case a status change, an
/// assignment or an action, so every view moves (including `kpi` and `responsible_load`).
fn write_some(admin: &Http, responsibles: &[i64], n: usize, tag: &str) {
    let genders = ["female", "male", "other", " Female ", "unknown"];
    let statuses = ["in_progress", "found_alive", "found_deceased", "closed"];
    let priorities = ["low", "medium", "high", "critical"];
    for i in 0..n {
        let mut body = json!({
            "full_name": format!("Persona {tag} {i}"),
            "gender": genders[i % genders.len()],
            "age": (i * 7) % 90,
            "last_seen_at": format!("2026-03-{:02}T{:02}:{:02}", 1 + i % 28, i % 24, i % 60),
            "last_seen_place": "Quito, La Mariscal",
            "priority": priorities[i % 4],
        });
        if i % 3 == 0 {
            body["responsible_id"] = json!(responsibles[i % responsibles.len()]);
        }
        let r = admin
            .call("POST", "/api/v1/reports", Some(&body))
            .expect("POST /api/v1/reports");
        assert!(
            (200..300).contains(&r.status),
            "POST /api/v1/reports: {} {}",
            r.status,
            r.body
        );
        let id = case_id_of(&r).expect("case id");
        let version = version_of(&r).unwrap_or(1);
        match i % 3 {
            0 => {
                let b = json!({"version": version, "status": statuses[i % statuses.len()]});
                let r = admin
                    .call("PATCH", &format!("/api/v1/cases/{id}"), Some(&b))
                    .expect("PATCH");
                assert!(
                    (200..300).contains(&r.status),
                    "PATCH: {} {}",
                    r.status,
                    r.body
                );
            }
            1 => {
                let b = json!({"version": version, "responsible_id": responsibles[(i + 1) % responsibles.len()]});
                let r = admin
                    .call("POST", &format!("/api/v1/cases/{id}/assignment"), Some(&b))
                    .expect("assign");
                assert!(
                    (200..300).contains(&r.status),
                    "assign: {} {}",
                    r.status,
                    r.body
                );
            }
            _ => {
                let b = json!({"action_type": "search", "notes": format!("note {tag} {i}")});
                let r = admin
                    .call("POST", &format!("/api/v1/cases/{id}/actions"), Some(&b))
                    .expect("action");
                assert!(
                    (200..300).contains(&r.status),
                    "action: {} {}",
                    r.status,
                    r.body
                );
            }
        }
    }
}

/// Waits until the tables equal the views (no writes may be running), then asserts it and
/// that the stored position is the one the views cover.
fn assert_converged(what: &str, db: &mut SinkDb, reader: &Http) {
    let (_, seq, views) = reader.views();
    // the stored position alone is not enough: a test may have stored one that is ahead
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let stored = db.state().and_then(|s| s.1["log_seq"].as_u64());
        if stored == Some(seq) && db.views() == views {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let (_, seq2, views2) = reader.views();
    assert_eq!(seq, seq2, "{what}: the views moved while no one wrote");
    assert_eq!(views, views2, "{what}: the views moved while no one wrote");
    let tables = db.views();
    assert_same_views(
        what,
        ("GET /api/v1/views", &views),
        ("agg_* tables", &tables),
    );
    let (_, position, rows) = db.state().expect("a stored state");
    assert_eq!(
        position,
        json!({"source": "embedded-log", "log_seq": seq}),
        "{what}: the stored position is not the one the views cover"
    );
    let count: i64 = [
        "age_group",
        "gender",
        "hour_of_day",
        "hourly",
        "cases_by_status",
        "open_by_priority",
        "kpi",
        "row_counts",
    ]
    .iter()
    .map(|v| tables[*v].as_object().map_or(0, |m| m.len() as i64))
    .sum::<i64>()
        + tables["responsible_load"]
            .as_array()
            .map_or(0, |a| a.len() as i64);
    assert_eq!(rows, count, "{what}: agg_sink_state.rows");
}

#[test]
fn sink_tables_equal_the_views_after_demo_clean_stop_restart_and_api_writes() {
    let mut db = SinkDb::create("views");
    let url = db.url(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // the demo history plus a fast trickle, then a clean stop: the last tick must be written
    let (server, token) = start_demo(&data, &["--demo-every-ms", "30", "--sink", url.as_str()]);
    let (_, reader) = clients(&server, &token);
    wait_until("the sink's first write", Duration::from_secs(60), || {
        db.state().map(|_| ()).ok_or("nothing stored".to_string())
    });
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(metric(&reader, "lpm_sink_up"), 1.0);
    assert!(metric(&reader, "lpm_sink_reconciles_total") >= 1.0);
    stop(server);
    let stopped_tables = db.views();
    let (_, stopped_at, _) = db.state().expect("a stored state");

    // restarted (no trickle): the rebuilt views are the last ones of the first run
    let server = Server::start_with(&data, &["--sink", url.as_str()]);
    let (admin, reader) = clients(&server, &token);
    let (_, seq, views) = reader.views();
    assert_eq!(
        stopped_at["log_seq"].as_u64(),
        Some(seq),
        "the clean stop did not store the last tick's position"
    );
    assert_same_views(
        "after a clean stop",
        ("the views rebuilt from the log", &views),
        ("agg_* tables written at the stop", &stopped_tables),
    );
    assert!(
        views["hourly"].as_object().is_some_and(|m| m.len() > 100)
            && views["responsible_load"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
        "the demo data should fill the views: {views}"
    );

    let responsibles = create_responsibles(&admin);
    write_some(&admin, &responsibles, 30, "api");
    assert_converged("after HTTP writes", &mut db, &reader);
    assert_eq!(metric(&reader, "lpm_sink_errors_total"), 0.0);
    assert_eq!(metric(&reader, "lpm_sink_up"), 1.0);
    assert_eq!(metric(&reader, "lpm_sink_waiting"), 0.0);
    assert!(metric(&reader, "lpm_sink_transactions_total") >= 2.0);
    stop(server);
}

#[test]
fn sink_survives_kill_9_without_loss_or_double_counting() {
    let mut db = SinkDb::create("kill");
    let url = db.url(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (mut server, token) = start_demo(&data, &["--demo-every-ms", "15", "--sink", url.as_str()]);
    // let the trickle stream, then kill -9 right after reading the stored position
    let first = wait_until("the sink's first write", Duration::from_secs(60), || {
        db.state().ok_or("nothing stored".to_string())
    });
    let mut before = first.1["log_seq"].as_u64().expect("log_seq");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if let Some((_, p, _)) = db.state() {
            before = p["log_seq"].as_u64().expect("log_seq");
        }
        thread::sleep(Duration::from_millis(25));
    }
    server.kill9();
    assert!(
        before > first.1["log_seq"].as_u64().unwrap_or(0),
        "the trickle should have moved the stored position before the kill"
    );

    // watch every position stored from the restart on
    let seen = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, done, name) = (seen.clone(), done.clone(), db.name.clone());
        thread::spawn(move || {
            let mut w = SinkDb::attach(&name);
            while !done.load(Ordering::SeqCst) {
                if let Some((_, p, _)) = w.state() {
                    let s = p["log_seq"].as_u64().expect("log_seq");
                    let mut v = seen.lock();
                    if v.last() != Some(&s) {
                        v.push(s);
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let server = Server::start_with(&data, &["--sink", url.as_str()]);
    let (admin, reader) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    write_some(&admin, &responsibles, 30, "after-kill");
    assert_converged("after kill -9, restart and more writes", &mut db, &reader);
    done.store(true, Ordering::SeqCst);
    watcher.join().expect("watcher");
    let seen = seen.lock().clone();
    assert!(
        seen.iter().all(|s| *s >= before),
        "the stored position went back below {before} after the restart: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the stored position went backwards: {seen:?}"
    );
    assert!(
        seen.len() >= 2,
        "the restarted sink stored nothing new: {seen:?}"
    );
    stop(server);
}

#[test]
fn sink_writes_nothing_until_the_engine_covers_the_stored_position() {
    let mut db = SinkDb::create("cover");
    let url = db.url(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let server = Server::start_with(&data, &["--sink", url.as_str()]);
    let (admin, reader) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    write_some(&admin, &responsibles, 5, "first");
    assert_converged("first run", &mut db, &reader);
    stop(server);

    // pretend an earlier run got further than this log (what a restarting engine looks like
    // while it replays): the stored position is ahead, and the tables hold rows of that state
    let (_, stored, _) = db.state().expect("state");
    let ahead = stored["log_seq"].as_u64().expect("log_seq") + 12;
    let tampered = db.tamper(&json!({"source": "embedded-log", "log_seq": ahead}));

    let server = Server::start_with(&data, &["--sink", url.as_str()]);
    let (admin, reader) = clients(&server, &token);
    wait_until("lpm_sink_waiting = 1", Duration::from_secs(30), || {
        let w = metric(&reader, "lpm_sink_waiting");
        if w == 1.0 {
            Ok(())
        } else {
            Err(format!("lpm_sink_waiting {w}"))
        }
    });
    let mut rounds = 0;
    loop {
        let (_, seq, _) = reader.views();
        if seq >= ahead {
            break;
        }
        // behind the stored position: nothing may have been written
        thread::sleep(Duration::from_millis(100));
        assert_eq!(
            db.state().map(|s| s.1["log_seq"].as_u64()),
            Some(Some(ahead)),
            "the sink wrote its state while the engine (log_seq {seq}) was behind {ahead}"
        );
        assert_eq!(
            db.views(),
            tampered,
            "the sink wrote rows while the engine (log_seq {seq}) was behind {ahead}"
        );
        write_some(&admin, &responsibles, 1, &format!("behind {rounds}"));
        rounds += 1;
    }
    assert!(
        rounds >= 3,
        "expected several writes before catching up, got {rounds}"
    );
    // caught up: the first write reconciles (the stray hour row goes), then diffs follow
    assert_converged("once the stored position is covered", &mut db, &reader);
    write_some(&admin, &responsibles, 3, "after");
    assert_converged("after catching up", &mut db, &reader);
    assert_eq!(metric(&reader, "lpm_sink_waiting"), 0.0);
    stop(server);
}

#[test]
fn sink_recovers_when_mysql_refuses_it_and_converges() {
    let mut db = SinkDb::create("outage");
    let user = format!("lpm_sink_{}", std::process::id());
    db.create_user(&user, "sink-pw");
    let url = db.url(Some((&user, "sink-pw")));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);

    let server = Server::start_with(&data, &["--sink", url.as_str()]);
    let (admin, reader) = clients(&server, &token);
    let responsibles = create_responsibles(&admin);
    write_some(&admin, &responsibles, 10, "before");
    assert_converged("before the outage", &mut db, &reader);

    // the outage: account locked, connections killed; the API keeps taking writes
    db.lock_user(true);
    write_some(&admin, &responsibles, 15, "during");
    wait_until("the sink to notice", Duration::from_secs(30), || {
        let (errors, up) = (
            metric(&reader, "lpm_sink_errors_total"),
            metric(&reader, "lpm_sink_up"),
        );
        if errors >= 1.0 && up == 0.0 {
            Ok(())
        } else {
            Err(format!("errors {errors}, up {up}"))
        }
    });
    let (_, seq, views) = reader.views();
    let (_, stored, _) = db.state().expect("state");
    assert!(
        stored["log_seq"].as_u64() < Some(seq),
        "the sink cannot have written during the outage"
    );
    assert_ne!(
        db.views(),
        views,
        "the tables should be stale during the outage"
    );

    db.lock_user(false);
    write_some(&admin, &responsibles, 5, "after");
    assert_converged("after the outage", &mut db, &reader);
    assert_eq!(metric(&reader, "lpm_sink_up"), 1.0);
    assert!(metric(&reader, "lpm_sink_reconciles_total") >= 2.0);
    stop(server);
}

impl SinkDb {
    /// A second session on an existing test database (not dropped by it).
    fn attach(name: &str) -> SinkDb {
        let mut db = SinkDb::create_session();
        db.name = name.to_string();
        db
    }

    fn create_session() -> SinkDb {
        SinkDb {
            s: MysqlSession::connect(&base_url()),
            name: String::new(),
            user: None,
            owned: false,
        }
    }
}
