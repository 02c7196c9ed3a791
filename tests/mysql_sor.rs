//! MySQL as the system of record, against a real MariaDB over TCP (`LPM_TEST_MYSQL_URL`,
//! default `mysql://root@127.0.0.1:3307`, started by `bash scripts/mariadb.sh start`). No test
//! is skipped: without a server they fail with the command that starts one.
//!
//! - `lpm migrate` twice (the second run is a no-op), two runs at once, a tampered checksum
//!   refused by name, an unreachable server reported readably;
//! - `lpm serve --capture URL --mysql URL/db`: every write route answers with the new version,
//!   the rows are in MySQL, the engine shows them, stale versions answer 409, and a write made
//!   directly in MySQL reaches the engine too;
//! - MySQL stopped mid-run (our own MariaDB on another port and datadir): writes answer 503 with
//!   `Retry-After` within seconds while reads keep answering 200; restarted, writes work again
//!   without restarting lpm.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use crate::serve::{init_data_dir, wait_until, Auth, Http, Server};
use crate::support::MysqlSession;

fn url() -> String {
    crate::support::mysql_url()
}

/// A database name of our own (other engineers' tests share the server).
pub(crate) fn own_db(what: &str) -> String {
    format!("lpm_{what}_{}", std::process::id())
}

/// A blocking MySQL session.
struct Db(MysqlSession);

impl Db {
    fn connect(url: &str) -> Db {
        Db(MysqlSession::connect(url))
    }

    fn q(&mut self, sql: &str) {
        self.0.q(sql);
    }

    /// The first column of the first row, as text.
    fn one(&mut self, sql: &str) -> Option<String> {
        self.0
            .rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.get_opt::<String, usize>(0))
            .and_then(Result::ok)
    }

    /// Every row, each column as text (NULL = "NULL").
    fn rows(&mut self, sql: &str) -> Vec<Vec<String>> {
        self.0
            .rows(sql)
            .into_iter()
            .map(|r| {
                r.unwrap_raw()
                    .into_iter()
                    .map(|v| match v {
                        None | Some(mysql_async::Value::NULL) => "NULL".to_string(),
                        Some(v) => v.as_sql(true).trim_matches('\'').to_string(),
                    })
                    .collect()
            })
            .collect()
    }
}

/// Drops the database when the test ends, passed or not.
pub(crate) struct DropDb(pub(crate) String, pub(crate) String);

impl Drop for DropDb {
    fn drop(&mut self) {
        if let Ok(opts) = mysql_async::Opts::from_url(&self.0) {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(mut c) = mysql_async::Conn::new(opts).await {
                        let _ = c
                            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.1))
                            .await;
                        let _ = c.disconnect().await;
                    }
                });
            }
        }
    }
}

fn lpm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lpm"))
        .args(args)
        .env("LPM_LOG", "warn")
        .env_remove("LPM_MYSQL_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run lpm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

pub(crate) fn migrate_ok(url: &str, db: &str) -> String {
    let out = lpm(&["migrate", "--mysql", url, "--database", db]);
    assert!(
        out.status.success(),
        "lpm migrate failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `url` with `/db` as its path.
pub(crate) fn with_db(url: &str, db: &str) -> String {
    format!("{}/{db}", url.trim_end_matches('/'))
}

#[test]
fn migrate_twice_is_a_no_op_concurrent_runs_are_serialised_and_edits_are_refused() {
    let url = url();
    let mut db = Db::connect(&url);
    let name = own_db("migrate");
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
    let _cleanup = DropDb(url.clone(), name.clone());

    let first = migrate_ok(&url, &name);
    assert!(
        first.contains(&format!("Created database {name}")),
        "{first}"
    );
    assert!(
        first.contains("Applied 0001_lost_persons_schema")
            && first.contains("Applied 0002_case_sightings"),
        "{first}"
    );
    let second = migrate_ok(&url, &name);
    assert!(
        second.contains("up to date") && !second.contains("Applied"),
        "the second run must change nothing: {second}"
    );
    let tables = db.rows(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{name}' ORDER BY 1"
    ));
    let tables: Vec<&str> = tables.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        tables,
        [
            "case_actions",
            "case_cases",
            "case_responsible_history",
            "case_sightings",
            "lpm_schema_migrations",
            "persons_lost",
            "responsible_contacts"
        ]
    );
    let recorded = db.rows(&format!(
        "SELECT version, name, checksum FROM `{name}`.lpm_schema_migrations ORDER BY version"
    ));
    let ours = lpm_service::sor::mysql::migrate::MIGRATIONS;
    assert_eq!(recorded.len(), ours.len(), "one row per migration");
    for (row, m) in recorded.iter().zip(ours) {
        assert_eq!(
            row,
            &[m.version.to_string(), m.name.to_string(), m.checksum()]
        );
    }

    // two runs at once on a fresh database: GET_LOCK serialises them, one row per migration
    let both = own_db("migrate2");
    let _cleanup2 = DropDb(url.clone(), both.clone());
    db.q(&format!("DROP DATABASE IF EXISTS `{both}`"));
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_lpm"))
            .args(["migrate", "--mysql", &url, "--database", &both])
            .env("LPM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lpm migrate")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("lpm migrate");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(
        db.one(&format!(
            "SELECT COUNT(*) FROM `{both}`.lpm_schema_migrations"
        )),
        Some(ours.len().to_string())
    );

    // an applied migration whose checksum differs is refused, naming it
    db.q(&format!(
        "UPDATE `{name}`.lpm_schema_migrations SET checksum = 'deadbeef' WHERE version = 1"
    ));
    let out = lpm(&["migrate", "--mysql", &url, "--database", &name]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a tampered checksum must fail");
    assert!(
        err.contains("migration 0001_lost_persons_schema") && err.contains("deadbeef"),
        "{err}"
    );

    // an unreachable server: one readable line, quickly
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let started = Instant::now();
    let out = lpm(&[
        "migrate",
        "--mysql",
        &format!("mysql://root@127.0.0.1:{closed}"),
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot connect to MySQL at 127.0.0.1:{closed}"))
            && err.contains("refused")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A unique replica id for a capture (several run against one server at once).
pub(crate) fn server_id(salt: u32) -> String {
    (5_900_000 + (std::process::id() % 50_000) * 4 + salt).to_string()
}

/// `lpm serve --capture URL --database DB --mysql URL/DB`, with an admin signed in.
fn serve(url: &str, db: &str, salt: u32, dir: &std::path::Path) -> (Server, Http, Http) {
    let token = init_data_dir(dir);
    let mysql = with_db(url, db);
    let sid = server_id(salt);
    let server = Server::start_with(
        dir,
        &[
            "--capture",
            url,
            "--database",
            db,
            "--server-id",
            &sid,
            "--heartbeat-ms",
            "200",
            "--mysql",
            &mysql,
            "--mysql-timeout-ms",
            "2000",
            "--visible-timeout-ms",
            "15000",
        ],
    );
    let anon = Http::new(&server.addr, Auth::None);
    let admin = anon.with_auth(Auth::Cookie(anon.sign_in()));
    let reader = anon.with_auth(Auth::Bearer(token));
    (server, admin, reader)
}

fn report(responsible: Option<i64>) -> Value {
    json!({"full_name": "María Peña", "age": 15, "gender": "female",
           "last_seen_at": "2026-11-20T14:30", "last_seen_place": "Quito, La Mariscal",
           "latitude": -0.180653, "longitude": -78.467834, "priority": "high",
           "responsible_id": responsible})
}

fn version(b: &Value) -> i64 {
    b["case"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("no case.version in {b}"))
}

#[test]
fn serve_with_mysql_writes_rows_to_mysql_and_the_engine_shows_them() {
    let url = url();
    let mut db = Db::connect(&url);
    let name = own_db("sor");
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
    let _cleanup = DropDb(url.clone(), name.clone());
    migrate_ok(&url, &name);
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, admin, reader) = serve(&url, &name, 0, dir.path());

    // responsibles: created and updated through the API, answered as written, rows in MySQL
    let ana = admin.expect(
        "POST",
        "/api/v1/responsibles",
        Some(&json!({"full_name": "Ana Tapia", "agency": "ECU 911"})),
        201,
    );
    assert_eq!(ana["version"], 1, "{ana}");
    let ana_id = ana["id"].as_i64().expect("id");
    let beto = admin.expect(
        "POST",
        "/api/v1/responsibles",
        Some(&json!({"full_name": "Beto Ruiz", "agency": "Cruz Roja"})),
        201,
    );
    let beto_id = beto["id"].as_i64().expect("id");
    let upd = admin.expect(
        "PATCH",
        &format!("/api/v1/responsibles/{beto_id}"),
        Some(&json!({"version": 1, "phone": "0991234567"})),
        200,
    );
    assert_eq!(
        (upd["version"].as_i64(), upd["phone"].as_str()),
        (Some(2), Some("0991234567"))
    );
    let stale = admin
        .call(
            "PATCH",
            &format!("/api/v1/responsibles/{beto_id}"),
            Some(&json!({"version": 1, "agency": "X"})),
        )
        .expect("call");
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(
        db.rows(&format!(
            "SELECT id, full_name, agency, phone, active, version FROM `{name}`.responsible_contacts ORDER BY id"
        )),
        vec![
            vec![ana_id.to_string(), "Ana Tapia".into(), "ECU 911".into(), "NULL".into(), "1".into(), "1".into()],
            vec![beto_id.to_string(), "Beto Ruiz".into(), "Cruz Roja".into(), "0991234567".into(), "1".into(), "2".into()],
        ]
    );

    // a report: person + case + assignment + action in one transaction, shown by the engine
    let created = admin.expect("POST", "/api/v1/reports", Some(&report(Some(ana_id))), 201);
    let case_id = created["case"]["id"].as_i64().expect("case id");
    assert_eq!(version(&created), 1);
    assert_eq!(created["case"]["status"], "open");
    assert_eq!(created["case"]["responsible"]["id"], ana_id, "{created}");
    let person = db.rows(&format!(
        "SELECT full_name, age, gender, last_seen_at, latitude, longitude, version FROM `{name}`.persons_lost"
    ));
    assert_eq!(
        person,
        vec![vec![
            "María Peña".to_string(),
            "15".into(),
            "female".into(),
            "2026-11-20 14:30:00.000".into(),
            "-0.180653".into(),
            "-78.467834".into(),
            "1".into()
        ]]
    );

    // status + priority, then a stale version
    let patched = admin.expect(
        "PATCH",
        &format!("/api/v1/cases/{case_id}"),
        Some(&json!({"version": 1, "status": "in_progress", "priority": "critical"})),
        200,
    );
    assert_eq!(version(&patched), 2);
    assert_eq!(patched["case"]["status"], "in_progress");
    let stale = admin
        .call(
            "PATCH",
            &format!("/api/v1/cases/{case_id}"),
            Some(&json!({"version": 1, "status": "open"})),
        )
        .expect("call");
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.body["current_version"], 2, "{}", stale.body);

    // reassignment closes the open history row
    let assigned = admin.expect(
        "POST",
        &format!("/api/v1/cases/{case_id}/assignment"),
        Some(&json!({"version": 2, "responsible_id": beto_id})),
        200,
    );
    assert_eq!(version(&assigned), 3);
    assert_eq!(assigned["case"]["responsible"]["id"], beto_id);
    assert_eq!(
        assigned["history"].as_array().map(Vec::len),
        Some(2),
        "{assigned}"
    );

    // an action
    let acted = admin.expect(
        "POST",
        &format!("/api/v1/cases/{case_id}/actions"),
        Some(&json!({"action_type": "search", "notes": "Parque El Ejido"})),
        201,
    );
    assert!(
        acted["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["notes"] == "Parque El Ejido")),
        "{acted}"
    );

    // a sighting: written to MySQL, shown through the capture, the case version unchanged
    let seen = admin.expect(
        "POST",
        &format!("/api/v1/cases/{case_id}/sightings"),
        Some(
            &json!({"seen_at": "2026-11-20T16:45:30.250", "place": "Parque El Ejido",
            "latitude": -0.2, "longitude": -78.5, "reporter_name": "Rosa"}),
        ),
        201,
    );
    assert_eq!(seen["sightings"][0]["place"], "Parque El Ejido", "{seen}");
    assert_eq!(
        seen["sightings"][0]["seen_at"], "2026-11-20T16:45:30.250",
        "{seen}"
    );
    assert_eq!(version(&seen), 3, "{seen}");
    assert_eq!(
        db.rows(&format!(
            "SELECT seen_at, place, latitude, longitude, reporter_name, source, version              FROM `{name}`.case_sightings WHERE case_id = {case_id}"
        )),
        vec![vec![
            "2026-11-20 16:45:30.250".to_string(),
            "Parque El Ejido".into(),
            "-0.200000".into(),
            "-78.500000".into(),
            "Rosa".into(),
            "responder".into(),
            "1".into()
        ]]
    );

    // the rows in MySQL
    assert_eq!(
        db.rows(&format!(
            "SELECT status, priority, responsible_id, version FROM `{name}`.case_cases WHERE id = {case_id}"
        )),
        vec![vec!["in_progress".to_string(), "critical".into(), beto_id.to_string(), "3".into()]]
    );
    assert_eq!(
        db.rows(&format!(
            "SELECT responsible_id, unassigned_at IS NULL FROM `{name}`.case_responsible_history \
             WHERE case_id = {case_id} ORDER BY id"
        )),
        vec![
            vec![ana_id.to_string(), "0".into()],
            vec![beto_id.to_string(), "1".into()]
        ]
    );
    let actions = db.rows(&format!(
        "SELECT action_type FROM `{name}`.case_actions WHERE case_id = {case_id} ORDER BY id"
    ));
    let actions: Vec<&str> = actions.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        actions,
        ["assignment", "status_change", "assignment", "search"]
    );

    // the engine's views and case read (a read-only token)
    let views = reader.expect("GET", "/api/v1/views", None, 200);
    assert_eq!(
        views["views"]["cases_by_status"]["in_progress"], 1,
        "{views}"
    );
    assert_eq!(views["views"]["row_counts"]["case_actions"], 4, "{views}");
    assert!(
        views["views"]["row_counts"].get("case_sightings").is_none(),
        "{views}"
    );
    assert_eq!(views["positions"][0]["source"], "mysql-binlog", "{views}");
    let case = reader.expect("GET", &format!("/api/v1/cases/{case_id}"), None, 200);
    assert_eq!(version(&case), 3);
    assert!(
        case["sightings"][0].get("reporter_name").is_none(),
        "{case}"
    );

    // a write made directly in MySQL reaches the engine, and the API's next write sees it
    db.q(&format!(
        "UPDATE `{name}`.case_cases SET priority = 'low', version = version + 1 WHERE id = {case_id}"
    ));
    wait_until(
        "the direct write in the engine",
        Duration::from_secs(30),
        || {
            let c = reader.call("GET", &format!("/api/v1/cases/{case_id}"), None)?;
            (c.body["case"]["version"] == 4)
                .then_some(())
                .ok_or(format!("{}", c.body["case"]["version"]))
        },
    );
    let stale = admin
        .call(
            "PATCH",
            &format!("/api/v1/cases/{case_id}"),
            Some(&json!({"version": 3, "priority": "high"})),
        )
        .expect("call");
    assert_eq!(stale.status, 409, "{}", stale.body);
    admin.expect(
        "PATCH",
        &format!("/api/v1/cases/{case_id}"),
        Some(&json!({"version": 4, "priority": "high"})),
        200,
    );

    // the contact list is MySQL's: a contact inserted there is listed at once
    db.q(&format!(
        "INSERT INTO `{name}`.responsible_contacts (full_name, agency) VALUES ('Carla Vega', 'Policia Nacional')"
    ));
    let list = admin.expect("GET", "/api/v1/responsibles", None, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["full_name"].as_str())
        .collect();
    assert_eq!(names, ["Ana Tapia", "Beto Ruiz", "Carla Vega"], "{list}");

    // concurrent reports race for the same new ids: duplicate keys and deadlocks are retried,
    // every report is written once
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let admin = admin.clone();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let r = admin
                            .call("POST", "/api/v1/reports", Some(&report(Some(ana_id))))
                            .expect("call");
                        assert!(matches!(r.status, 201 | 202), "{} {}", r.status, r.body);
                        r.location.expect("Location")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut locations: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    locations.sort();
    locations.dedup();
    assert_eq!(locations.len(), 24, "24 reports, 24 distinct cases");
    assert_eq!(
        db.one(&format!("SELECT COUNT(*) FROM `{name}`.case_cases")),
        Some("25".to_string())
    );
    assert_eq!(
        db.one(&format!(
            "SELECT COUNT(*) FROM `{name}`.case_cases c JOIN `{name}`.persons_lost p ON p.id = c.person_id"
        )),
        Some("25".to_string()),
        "each case points at its own person"
    );

    // health and metrics
    let ready = reader.expect("GET", "/readyz", None, 200);
    assert_eq!(ready["mysql"]["up"], true, "{ready}");
    let metrics = reader
        .call("GET", "/metrics", None)
        .expect("metrics")
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(metrics.contains("lpm_mysql_up 1"), "{metrics}");
    let retries = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lpm_mysql_write_retries_total "))
        .unwrap_or("missing");
    eprintln!("mysql_sor: 24 concurrent reports needed {retries} retries");
    drop(server);
}

/// Our own MariaDB (another port and datadir, via `scripts/mariadb.sh`), stopped at the end.
struct OwnMariadb {
    port: u16,
    dir: PathBuf,
}

impl OwnMariadb {
    fn script(&self, cmd: &str) {
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mariadb.sh"))
            .arg(cmd)
            .env("LPM_TEST_MYSQL_PORT", self.port.to_string())
            .env("LPM_TEST_MYSQL_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/mariadb.sh");
        assert!(
            out.status.success(),
            "scripts/mariadb.sh {cmd} (port {}, dir {}) failed: {}",
            self.port,
            self.dir.display(),
            text(&out.stderr)
        );
    }

    fn start() -> OwnMariadb {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let m = OwnMariadb {
            port,
            dir: PathBuf::from(format!("/tmp/lpm-sor-mariadb-{}", std::process::id())),
        };
        m.script("start");
        m
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnMariadb {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mariadb.sh"))
            .arg("stop")
            .env("LPM_TEST_MYSQL_PORT", self.port.to_string())
            .env("LPM_TEST_MYSQL_DIR", &self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn mysql_stopped_mid_run_answers_503_and_writes_resume_when_it_is_back() {
    // the shared instance must be there too (it is what says how to start MariaDB)
    drop(Db::connect(&url()));
    let mariadb = OwnMariadb::start();
    let url = mariadb.url();
    let name = "lost_persons_db";
    migrate_ok(&url, name);
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, admin, reader) = serve(&url, name, 1, dir.path());
    let created = admin.expect("POST", "/api/v1/reports", Some(&report(None)), 201);
    let case_id = created["case"]["id"].as_i64().expect("case id");
    let case_path = format!("/api/v1/cases/{case_id}");

    mariadb.script("stop");
    let stopped = Instant::now();
    let write = admin
        .call(
            "PATCH",
            &case_path,
            Some(&json!({"version": 1, "status": "in_progress"})),
        )
        .expect("call");
    let took = stopped.elapsed();
    assert_eq!(write.status, 503, "{}", write.body);
    assert!(write.retry_after.is_some(), "a 503 must carry Retry-After");
    assert!(
        write.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("MySQL")),
        "{}",
        write.body
    );
    assert!(took < Duration::from_secs(5), "the 503 took {took:?}");
    let r = admin
        .call(
            "POST",
            "/api/v1/responsibles",
            Some(&json!({"full_name": "X", "agency": "Y"})),
        )
        .expect("call");
    assert_eq!(
        (r.status, r.retry_after.is_some()),
        (503, true),
        "{}",
        r.body
    );
    let r = admin
        .call("GET", "/api/v1/responsibles", None)
        .expect("call");
    assert_eq!(
        (r.status, r.retry_after.is_some()),
        (503, true),
        "{}",
        r.body
    );

    // reads keep serving from the engine
    reader.expect("GET", "/api/v1/views", None, 200);
    let case = reader.expect("GET", &case_path, None, 200);
    assert_eq!(version(&case), 1);
    wait_until(
        "/readyz says MySQL is down",
        Duration::from_secs(10),
        || {
            let r = reader.call("GET", "/readyz", None)?;
            (r.status == 200 && r.body["mysql"]["up"] == false)
                .then_some(())
                .ok_or(format!("{} {}", r.status, r.body))
        },
    );
    let metrics = reader.call("GET", "/metrics", None).expect("metrics").body;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(metrics.contains("lpm_mysql_up 0"), "{metrics}");
    assert!(
        metrics.contains("lpm_mysql_write_errors_total{kind=\"connection\"}"),
        "{metrics}"
    );

    // back: writes succeed and become visible, without restarting lpm
    mariadb.script("start");
    let back = Instant::now();
    let first = wait_until(
        "a write accepted after the restart",
        Duration::from_secs(60),
        || {
            let r = admin.call(
                "POST",
                &format!("{case_path}/actions"),
                Some(&json!({"action_type": "note", "notes": "after the restart"})),
            )?;
            matches!(r.status, 201 | 202)
                .then_some(r.status)
                .ok_or(format!("{} {}", r.status, r.body))
        },
    );
    wait_until("the action in the engine", Duration::from_secs(60), || {
        // notes are personal data: the admin sees them, a read-only token does not
        let c = admin.call("GET", &case_path, None)?;
        c.body["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["notes"] == "after the restart"))
            .then_some(())
            .ok_or(format!("{}\nlpm serve's log:\n{}", c.body, server.stderr()))
    });
    let patched = admin.expect(
        "PATCH",
        &case_path,
        Some(&json!({"version": 1, "status": "in_progress"})),
        200,
    );
    assert_eq!(version(&patched), 2);
    let ready = reader.expect("GET", "/readyz", None, 200);
    assert_eq!(ready["mysql"]["up"], true, "{ready}");
    eprintln!(
        "mysql_sor: 503 after {} ms with MySQL stopped; first write after restart answered {first} \
         {} ms after the restart",
        took.as_millis(),
        back.elapsed().as_millis()
    );
    drop(server);
}
