//! `lpm capture` against a real MariaDB (binlog on, `scripts/mariadb.sh` starts one; the URL is
//! `LPM_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3307`). No test is skipped: without a
//! server they fail with the command that starts one.
//!
//! - a mixed workload (multi-row statements, updates, deletes, a rollback, a primary-key change,
//!   ADD/DROP COLUMN, a table rebuild, a binlog rotation, a truncate) captured to a file: the
//!   dump's final rows equal a direct `SELECT`, and `lpm replay` of it equals `oracle.py`;
//! - kill -9 of the capture during the snapshot and at several points of the stream: its dump is
//!   record for record the dump of a capture that was never interrupted (exactly once);
//! - parity with real Debezium output (`connectors/tests/fixtures/capture/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lpm_engine::rng::SplitMix64 as Rng;
use serde_json::{json, Value};

use crate::serve::assert_same_views;
use crate::support::{self, MysqlSession};

const TZ: &str = "America/Guayaquil";

fn url() -> String {
    crate::support::mysql_url()
}

/// A blocking MySQL session for the tests.
pub(crate) struct Db(MysqlSession);

impl std::ops::Deref for Db {
    type Target = MysqlSession;
    fn deref(&self) -> &MysqlSession {
        &self.0
    }
}

impl std::ops::DerefMut for Db {
    fn deref_mut(&mut self) -> &mut MysqlSession {
        &mut self.0
    }
}

impl Db {
    pub(crate) fn connect() -> Db {
        Db(MysqlSession::connect(&url()))
    }

    fn rows(&mut self, sql: &str) -> Vec<mysql_async::Row> {
        self.0.exec_rows(sql)
    }

    /// A fresh database with the lpm schema.
    pub(crate) fn fresh(&mut self, db: &str) {
        self.q(&format!("DROP DATABASE IF EXISTS `{db}`"));
        self.q(&format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"));
        self.q(&format!("USE `{db}`"));
        self.script(include_str!("../connectors/data/schema.sql"));
    }

    /// Runs `;`-separated statements (no `;` inside literals), `--` comments removed.
    fn script(&mut self, sql: &str) {
        let text: String = sql
            .lines()
            .map(|l| l.split("-- ").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            self.q(stmt);
        }
    }

    /// `SHOW MASTER STATUS` as (file, pos).
    pub(crate) fn master(&mut self) -> (String, u64) {
        let row = self
            .rows("SHOW MASTER STATUS")
            .into_iter()
            .next()
            .expect("binlog on");
        (row.get(0).expect("file"), row.get(1).expect("pos"))
    }
}

/// A running `lpm capture`.
struct Capture {
    child: Child,
    dump: PathBuf,
}

impl Capture {
    fn start(db: &str, server_id: u32, dump: &Path, extra: &[&str]) -> Capture {
        let mut args = vec![
            "capture".to_string(),
            "--mysql".into(),
            url(),
            "--database".into(),
            db.into(),
            "--server-id".into(),
            server_id.to_string(),
            "--heartbeat-ms".into(),
            "200".into(),
            "--to".into(),
            dump.to_str().expect("utf-8").into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_lpm"))
            .args(&args)
            .env("LPM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn lpm capture");
        Capture {
            child,
            dump: dump.to_path_buf(),
        }
    }

    /// The stored position, from the offsets file.
    fn stored(&self) -> Option<(String, u64)> {
        let mut name = self.dump.file_name()?.to_os_string();
        name.push(".offsets.json");
        let text = std::fs::read_to_string(self.dump.with_file_name(name)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let p = v.get("position")?;
        Some((p["file"].as_str()?.to_string(), p["pos"].as_u64()?))
    }

    /// Waits until the stored position reaches `(file, pos)`.
    fn wait_for(&mut self, target: &(String, u64), what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.stored() {
                if s.0 > target.0 || (s.0 == target.0 && s.1 >= target.1) {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what}: lpm capture exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the capture did not reach {target:?} (stored {:?})",
                self.stored()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "lpm capture did not exit cleanly: {status}"
        );
    }

    /// SIGTERM that may land before the process has installed its handler (it was just
    /// restarted): then the default action ends it, which loses nothing either.
    fn stop_any(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

const NAMES: [&str; 6] = [
    "María Peña",
    "José Núñez",
    "Ana \"Anita\" Ruiz",
    "Zoë O'Neil",
    "Iñaki",
    "Lucía\nTorres",
];
const GENDERS: [&str; 6] = ["female", "male", "other", "unknown", "F", " Male "];
const STATUSES: [&str; 5] = [
    "open",
    "in_progress",
    "found_alive",
    "found_deceased",
    "closed",
];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn lit(s: &str) -> String {
    format!(
        "'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "''")
            .replace('\n', "\\n")
    )
}

/// Seed rows (read by the snapshot): contacts, persons with cases, actions, history.
pub(crate) fn seed(db: &mut Db, rng: &mut Rng, persons: usize) {
    db.q(
        "INSERT INTO responsible_contacts (full_name, agency, phone) VALUES \
          ('Ana Peña','Cruz Roja','+593 99'),('Luis Ñ','ECU 911',NULL),('Eva','Policía',NULL)",
    );
    for chunk in 0..persons.div_ceil(100) {
        let mut p = Vec::new();
        let mut c = Vec::new();
        for i in 0..100.min(persons - chunk * 100) {
            let id = chunk * 100 + i + 1;
            p.push(person_values(rng));
            c.push(format!(
                "({id}, {}, {}, {}, '2026-10-{:02} 08:00:00.{:03}')",
                lit(STATUSES[rng.below(5) as usize]),
                lit(PRIORITIES[rng.below(4) as usize]),
                if rng.below(3) == 0 {
                    "NULL".into()
                } else {
                    (1 + rng.below(3)).to_string()
                },
                1 + rng.below(28),
                rng.below(1000)
            ));
        }
        db.q(&format!(
            "INSERT INTO persons_lost (full_name, age, gender, last_seen_at, reported_at, last_seen_place, latitude, longitude, description) VALUES {}",
            p.join(",")
        ));
        db.q(&format!(
            "INSERT INTO case_cases (person_id, status, priority, responsible_id, opened_at) VALUES {}",
            c.join(",")
        ));
    }
    db.q("INSERT INTO case_actions (case_id, action_type, notes) SELECT id, 'note', 'seed' FROM case_cases WHERE id % 3 = 0");
    db.q("INSERT INTO case_responsible_history (case_id, responsible_id) SELECT id, responsible_id FROM case_cases WHERE responsible_id IS NOT NULL");
    // sightings: captured like every table, counted by no view (the oracle skips the table)
    db.q("INSERT INTO case_sightings (case_id, seen_at, place, source) SELECT id, '2026-11-05 10:00:00.125', 'Plaza Grande', 'public' FROM case_cases WHERE id % 4 = 0");
}

fn person_values(rng: &mut Rng) -> String {
    let age = match rng.below(10) {
        0 => "NULL".to_string(),
        _ => rng.below(95).to_string(),
    };
    let lat = if rng.below(4) == 0 {
        "NULL".to_string()
    } else {
        format!("-{}.{:06}", rng.below(5), rng.below(1_000_000))
    };
    format!(
        "({}, {age}, {}, '2026-11-{:02} {:02}:{:02}:00.{:03}', '2026-11-{:02} 12:00:00.{:03}', {}, {lat}, -78.467834, {})",
        lit(NAMES[rng.below(6) as usize]),
        lit(GENDERS[rng.below(6) as usize]),
        1 + rng.below(20),
        rng.below(24),
        rng.below(60),
        rng.below(1000),
        1 + rng.below(20),
        rng.below(1000),
        lit("Quito, La Mariscal"),
        if rng.below(2) == 0 { "NULL".into() } else { lit("mochila azul; \"gorra\" roja") },
    )
}

/// The streamed workload: every kind of change the issue names.
pub(crate) fn workload(db: &mut Db, rng: &mut Rng, steps: usize) {
    for step in 0..steps {
        match step {
            s if s == steps / 5 => {
                // a primary-key change
                // (ids moved before are skipped: the workload may run several times on one database)
                db.q("UPDATE case_actions SET id = id + 1000000 WHERE id = (SELECT MIN(id) FROM (SELECT id FROM case_actions WHERE id < 1000000) a)");
            }
            s if s == steps / 4 => {
                // schema change mid-stream: the column appears in row images, then goes
                db.q("ALTER TABLE persons_lost ADD COLUMN tmp_note VARCHAR(20) NULL");
                db.q("UPDATE persons_lost SET tmp_note = 'x', version = version + 1 WHERE id % 10 = 1");
                db.q("ALTER TABLE persons_lost DROP COLUMN tmp_note");
            }
            s if s == steps / 3 => db.q("ALTER TABLE case_cases FORCE"), // a table rebuild
            s if s == steps / 2 => db.q("FLUSH BINARY LOGS"),             // rotation
            s if s == 2 * steps / 3 => {
                db.q("TRUNCATE TABLE case_responsible_history");
                db.q("INSERT INTO case_responsible_history (case_id, responsible_id) VALUES (1, 2), (2, 3)");
            }
            s if s % 10 == 7 => match rng.below(3) {
                0 => db.q(&format!(
                    "INSERT INTO case_sightings (case_id, seen_at, place, latitude, longitude, reporter_name, source) VALUES ({}, '2026-11-{:02} 10:{:02}:00.500', 'Parque El Ejido', -0.2, -78.5, 'Rosa', 'responder')",
                    1 + rng.below(50),
                    1 + rng.below(20),
                    rng.below(60)
                )),
                1 => db.q(&format!(
                    "UPDATE case_sightings SET description = 'visto', version = version + 1 WHERE id % 5 = {}",
                    rng.below(5)
                )),
                _ => db.q(&format!("DELETE FROM case_sightings WHERE id % 7 = {}", rng.below(7))),
            },
            _ => match rng.below(7) {
                0 => {
                    // a report: person + case in one transaction
                    db.q("START TRANSACTION");
                    db.q(&format!(
                        "INSERT INTO persons_lost (full_name, age, gender, last_seen_at, reported_at, last_seen_place, latitude, longitude, description) VALUES {}",
                        person_values(rng)
                    ));
                    db.q("INSERT INTO case_cases (person_id, status, priority) VALUES (LAST_INSERT_ID(), 'open', 'high')");
                    db.q("COMMIT");
                }
                1 => db.q(&format!(
                    "UPDATE case_cases SET status = {}, closed_at = IF({} IN ('open','in_progress'), NULL, NOW(3)), version = version + 1 WHERE id % 11 = {}",
                    lit(STATUSES[rng.below(5) as usize]),
                    lit(STATUSES[rng.below(2) as usize]),
                    rng.below(11)
                )),
                2 => db.q(&format!("DELETE FROM case_actions WHERE id % 13 = {}", rng.below(13))),
                3 => db.q(&format!(
                    "INSERT INTO case_actions (case_id, action_type, notes, responsible_id, responsible_name) VALUES ({}, 'search', 'búsqueda', 1, 'Ana Peña'), ({}, 'call', NULL, NULL, NULL)",
                    1 + rng.below(50),
                    1 + rng.below(50)
                )),
                4 => {
                    // rolled back: must not appear
                    db.q("START TRANSACTION");
                    db.q("DELETE FROM persons_lost WHERE id % 2 = 0");
                    db.q("ROLLBACK");
                }
                5 => db.q(&format!(
                    "UPDATE persons_lost SET age = {}, gender = {}, version = version + 1 WHERE id = {}",
                    rng.below(90),
                    lit(GENDERS[rng.below(6) as usize]),
                    1 + rng.below(60)
                )),
                _ => db.q(&format!("DELETE FROM persons_lost WHERE id = {}", 1 + rng.below(80))),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// final rows, independently on both sides

type Rows = BTreeMap<(String, i64), BTreeMap<String, Value>>;
const TABLES: [&str; 6] = [
    "responsible_contacts",
    "persons_lost",
    "case_cases",
    "case_actions",
    "case_responsible_history",
    "case_sightings",
];
/// The table `oracle.py` does not know (it skips its events): compared with SELECT through the
/// dump, left out of the oracle's rows.
const NOT_IN_ORACLE: &str = "case_sightings";
const DECIMALS: [&str; 2] = ["latitude", "longitude"];

/// Every row of the lpm tables by a direct `SELECT` (binary protocol, session in UTC):
/// DATETIME and TIMESTAMP as epoch ms, DECIMAL as its text, text as strings.
fn select_rows(db: &mut Db, name: &str) -> Rows {
    let mut out = Rows::new();
    for t in TABLES {
        for row in db.rows(&format!("SELECT * FROM `{name}`.`{t}`")) {
            let mut cols = BTreeMap::new();
            for (i, c) in row.columns_ref().iter().enumerate() {
                let v = match row.as_ref(i).expect("value") {
                    mysql_async::Value::NULL => Value::Null,
                    mysql_async::Value::Int(n) => json!(n),
                    mysql_async::Value::UInt(n) => json!(n),
                    mysql_async::Value::Bytes(b) => json!(String::from_utf8_lossy(b)),
                    mysql_async::Value::Date(y, mo, d, h, mi, s, us) => {
                        let t =
                            chrono::NaiveDate::from_ymd_opt((*y).into(), (*mo).into(), (*d).into())
                                .and_then(|d| {
                                    d.and_hms_micro_opt((*h).into(), (*mi).into(), (*s).into(), *us)
                                })
                                .expect("valid date");
                        json!(t.and_utc().timestamp_millis())
                    }
                    other => panic!("{t}.{}: unexpected {other:?}", c.name_str()),
                };
                cols.insert(c.name_str().to_string(), v);
            }
            let id = cols["id"].as_i64().expect("id");
            out.insert((t.to_string(), id), cols);
        }
    }
    out
}

/// One after-image value as [`select_rows`] writes it.
fn normalize(column: &str, v: &Value) -> Value {
    match v {
        Value::String(s) if DECIMALS.contains(&column) => {
            // base64 two's complement (precise mode) or the oracle's decimal text
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) if !s.contains('.') => {
                    let mut n: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                        -1
                    } else {
                        0
                    };
                    for b in bytes {
                        n = (n << 8) | i128::from(b);
                    }
                    let (sign, abs) = if n < 0 { ("-", -n) } else { ("", n) };
                    json!(format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000))
                }
                _ => v.clone(),
            }
        }
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if s.ends_with('Z') && s.len() >= 20 => json!(t.timestamp_millis()),
            _ => v.clone(),
        },
        _ => v.clone(),
    }
}

/// The final rows of a dump, by the rule `shared/bench/README.md` gives (greatest position
/// wins, streamed beats snapshot at equal positions, later line wins, truncate hides older).
fn dump_rows(path: &Path) -> Rows {
    type Pos = (u64, u64, u64, u8, usize);
    type Image = Option<BTreeMap<String, Value>>;
    let mut best: BTreeMap<(String, i64), (Pos, Image)> = BTreeMap::new();
    let mut truncs: BTreeMap<String, Pos> = BTreeMap::new();
    let text = std::fs::read_to_string(path).expect("dump");
    for (n, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).expect("dump line is JSON");
        let table = rec["topic"]
            .as_str()
            .expect("topic")
            .rsplit('.')
            .next()
            .expect("table")
            .to_string();
        let Some(payload) = rec["payload"].as_str() else {
            continue;
        }; // tombstone
        let v: Value = serde_json::from_str(payload).expect("payload JSON");
        let src = &v["source"];
        let file_no: u64 = src["file"]
            .as_str()
            .and_then(|f| f.rsplit('.').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let streamed = u8::from(src["snapshot"] == "false");
        let pos: Pos = (
            file_no,
            src["pos"].as_u64().unwrap_or(0),
            src["row"].as_u64().unwrap_or(0),
            streamed,
            n,
        );
        if v["op"] == "t" {
            truncs.insert(table, pos);
            continue;
        }
        let image = if v["op"] == "d" {
            None
        } else {
            v["after"].as_object().cloned()
        };
        let id = v["after"]["id"]
            .as_i64()
            .or_else(|| v["before"]["id"].as_i64())
            .expect("id");
        let entry = best.entry((table, id)).or_insert((pos, None));
        if pos >= entry.0 {
            *entry = (
                pos,
                image.map(|m| {
                    m.into_iter()
                        .map(|(k, x)| {
                            let y = normalize(&k, &x);
                            (k, y)
                        })
                        .collect()
                }),
            );
        }
    }
    best.into_iter()
        .filter(|((t, _), (pos, _))| {
            truncs
                .get(t)
                .is_none_or(|tp| (pos.0, pos.1, pos.2) > (tp.0, tp.1, tp.2))
        })
        .filter_map(|(k, (_, row))| row.map(|r| (k, r)))
        .collect()
}

/// oracle.py's `--rows` output, normalised the same way.
fn oracle_rows(script: &Path, dump: &Path, dir: &Path) -> Rows {
    let out = Command::new("python3")
        .arg(script)
        .arg(dump)
        .args(["--tz", TZ, "--rows"])
        .arg(dir)
        .output()
        .expect("run oracle.py");
    assert!(
        out.status.success(),
        "oracle.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Rows::new();
    for t in TABLES.into_iter().filter(|t| *t != NOT_IN_ORACLE) {
        let text = std::fs::read_to_string(dir.join(format!("{t}.jsonl"))).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let m: BTreeMap<String, Value> = serde_json::from_str(line).expect("oracle row");
            let m: BTreeMap<String, Value> = m
                .into_iter()
                .map(|(k, v)| {
                    let y = normalize(&k, &v);
                    (k, y)
                })
                .collect();
            rows.insert((t.to_string(), m["id"].as_i64().expect("id")), m);
        }
    }
    rows
}

fn assert_same_rows(what: &str, expected: &Rows, got: &Rows) {
    let mut diffs = Vec::new();
    for (k, e) in expected {
        match got.get(k) {
            None => diffs.push(format!("{k:?} missing")),
            // only the table's current columns: a dropped column stays in older images
            Some(g) if e.iter().any(|(c, v)| g.get(c) != Some(v)) => {
                diffs.push(format!("{k:?}: select {e:?}\n      got {g:?}"))
            }
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !expected.contains_key(*k)) {
        diffs.push(format!("{k:?} should not exist"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} rows differ:\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn check_views(what: &str, dump: &Path, dir: &Path, select: &Rows) {
    let (replayed, stderr) = support::replay(&[dump.to_str().expect("utf-8"), "--tz", TZ]);
    assert!(stderr.contains("decode errors 0"), "{what}: {stderr}");
    if let Some(script) = support::oracle_script() {
        let known: Rows = select
            .iter()
            .filter(|((t, _), _)| t != NOT_IN_ORACLE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_same_rows(
            &format!("{what}: oracle.py rows vs SELECT"),
            &known,
            &oracle_rows(&script, dump, dir),
        );
        let out = Command::new("python3")
            .arg(&script)
            .arg(dump)
            .args(["--tz", TZ])
            .output()
            .expect("oracle");
        assert!(
            out.status.success(),
            "oracle.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let o: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
        assert_same_views(what, ("lpm replay", &replayed), ("oracle.py", &o));
    }
    // without the oracle: the views still count exactly the SELECTed rows
    let persons = select.keys().filter(|(t, _)| t == "persons_lost").count() as u64;
    assert_eq!(
        replayed["kpi"]["total_reports"].as_u64(),
        Some(persons),
        "{what}: total_reports"
    );
}

#[test]
fn capture_of_a_mixed_workload_equals_select_replay_and_oracle() {
    let name = "lpm_cap_mixed";
    let mut db = Db::connect();
    db.fresh(name);
    let mut rng = Rng::new(0x5eed_0001);
    seed(&mut db, &mut rng, 300);
    let dir = tempfile::tempdir().expect("tmp");
    let dump = dir.path().join("capture.jsonl");
    let mut cap = Capture::start(name, 7101, &dump, &[]);
    let end = db.master();
    cap.wait_for(&end, "snapshot");
    workload(&mut db, &mut rng, 300);
    let end = db.master();
    cap.wait_for(&end, "workload");
    cap.stop();

    let select = select_rows(&mut db, name);
    assert!(select.len() > 300, "the workload left rows");
    assert_same_rows("dump vs SELECT", &select, &dump_rows(&dump));
    check_views("mixed workload", &dump, dir.path(), &select);
    // the dump holds every kind of event the workload made
    let text = std::fs::read_to_string(&dump).expect("dump");
    for needle in [
        "\\\"op\\\":\\\"r\\\"",
        "\\\"op\\\":\\\"c\\\"",
        "\\\"op\\\":\\\"u\\\"",
        "\\\"op\\\":\\\"d\\\"",
        "\\\"op\\\":\\\"t\\\"",
        "\"payload\":null",
        "\\\"snapshot\\\":\\\"last\\\"",
    ] {
        assert!(text.contains(needle), "the dump has no {needle}");
    }
    // the workload's FLUSH BINARY LOGS: positions in two files
    let files: std::collections::BTreeSet<String> = records(&dump)
        .iter()
        .filter_map(|(_, v)| v["source"]["file"].as_str().map(String::from))
        .collect();
    assert!(files.len() >= 2, "positions span the rotation: {files:?}");
    // a restart after a clean stop resumes: nothing new, nothing repeated
    let len = std::fs::metadata(&dump).expect("meta").len();
    let out = support::lpm(
        &[
            "capture",
            "--mysql",
            &url(),
            "--database",
            name,
            "--server-id",
            "7101",
            "--to",
            dump.to_str().expect("utf-8"),
            "--until-end",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&dump).expect("meta").len(),
        len,
        "a resumed capture repeated records"
    );
    db.q(&format!("DROP DATABASE `{name}`"));
}

/// The dump without what legitimately differs between two captures of the same changes: the
/// processing times (envelope `ts_*`), the snapshot's own clock (`source.ts_*`, record `ts`) and
/// the snapshot's binlog position (other tests write to the same server meanwhile; this
/// database has no writes between the two snapshots).
fn comparable(dump: &Path) -> Vec<Value> {
    std::fs::read_to_string(dump)
        .expect("dump")
        .lines()
        .map(|l| {
            let mut rec: Value = serde_json::from_str(l).expect("json");
            if let Some(p) = rec["payload"].as_str() {
                let mut v: Value = serde_json::from_str(p).expect("payload");
                let snapshot = v["source"]["snapshot"] != "false";
                if let Some(o) = v.as_object_mut() {
                    for k in ["ts_ms", "ts_us", "ts_ns"] {
                        o.remove(k);
                    }
                }
                if snapshot {
                    if let Some(s) = v["source"].as_object_mut() {
                        for k in ["ts_ms", "ts_us", "ts_ns", "file", "pos"] {
                            s.remove(k);
                        }
                    }
                    rec["ts"] = Value::Null;
                }
                rec["payload"] = v;
            }
            rec
        })
        .collect()
}

#[test]
fn kill_9_mid_snapshot_and_mid_stream_loses_and_repeats_nothing() {
    let name = "lpm_cap_kill";
    let mut db = Db::connect();
    db.fresh(name);
    let mut rng = Rng::new(0x5eed_0002);
    seed(&mut db, &mut rng, 3000);
    let dir = tempfile::tempdir().expect("tmp");
    let (killed_dump, whole_dump) = (
        dir.path().join("killed.jsonl"),
        dir.path().join("whole.jsonl"),
    );
    let start = db.master();
    let mut whole = Capture::start(name, 7201, &whole_dump, &[]);
    // 1. kill during the snapshot (no writes yet, so the retry snapshots the same state)
    let first = Capture::start(name, 7202, &killed_dump, &[]);
    let t0 = Instant::now();
    while std::fs::metadata(&killed_dump)
        .map(|m| m.len())
        .unwrap_or(0)
        == 0
        && t0.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mid_snapshot = first.stored().is_none();
    first.kill9();
    eprintln!(
        "capture kill test: first kill9 {} the snapshot",
        if mid_snapshot { "during" } else { "after" }
    );
    let mut killed = Capture::start(name, 7202, &killed_dump, &[]);
    killed.wait_for(&start, "snapshot after kill");
    whole.wait_for(&start, "reference snapshot");
    // 2. kill at several points of the stream while the workload runs
    let writer = std::thread::spawn(move || {
        let mut rng = Rng::new(0x5eed_0003);
        workload(&mut db, &mut rng, 240);
        db
    });
    for pause in [150u64, 330, 90, 500] {
        std::thread::sleep(Duration::from_millis(pause));
        killed.kill9();
        killed = Capture::start(name, 7202, &killed_dump, &[]);
    }
    let mut db = writer.join().expect("workload");
    let end = db.master();
    killed.wait_for(&end, "killed capture");
    whole.wait_for(&end, "reference capture");
    killed.stop_any();
    whole.stop();

    let (a, b) = (comparable(&killed_dump), comparable(&whole_dump));
    assert!(
        a.len() > 3000,
        "the dumps hold the snapshot and the stream ({} records)",
        a.len()
    );
    if a != b {
        let i = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "the killed capture's dump differs from the uninterrupted one at record {i} ({} vs {} records):\n  killed: {}\n  whole:  {}",
            a.len(),
            b.len(),
            a.get(i).map_or("-".into(), Value::to_string),
            b.get(i).map_or("-".into(), Value::to_string)
        );
    }
    let select = select_rows(&mut db, name);
    assert_same_rows("killed dump vs SELECT", &select, &dump_rows(&killed_dump));
    check_views("after kill -9", &killed_dump, dir.path(), &select);
    db.q(&format!("DROP DATABASE `{name}`"));
}

// ---------------------------------------------------------------------------------------------
// parity with real Debezium output

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/tests/fixtures/capture")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Equal as Debezium values: numbers by value (Java and Rust print floats differently), JSON
/// text columns by parsed value (MariaDB keeps JSON as typed text).
fn same_value(column: &str, ours: &Value, real: &Value) -> bool {
    match (ours, real) {
        (Value::Number(a), Value::Number(b)) => {
            a.as_f64() == b.as_f64()
                || (a
                    .as_f64()
                    .zip(b.as_f64())
                    .is_some_and(|(x, y)| ((x - y) / y).abs() < 1e-6))
        }
        (Value::String(a), Value::String(b)) if column == "json_c" => {
            serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
        }
        _ => ours == real,
    }
}

fn records(dump: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(dump)
        .expect("dump")
        .lines()
        .filter_map(|l| {
            let rec: Value = serde_json::from_str(l).expect("json");
            let payload = rec["payload"].as_str()?;
            Some((
                rec["topic"].as_str().unwrap_or("").to_string(),
                serde_json::from_str(payload).expect("payload"),
            ))
        })
        .collect()
}

#[test]
fn events_match_real_debezium_fixtures() {
    let mut db = Db::connect();
    db.script(&fixture("full_types.sql"));
    db.script(&fixture("customers.sql"));
    let dir = tempfile::tempdir().expect("tmp");
    let dump = dir.path().join("parity.jsonl");
    let base = [
        "capture",
        "--mysql",
        &url(),
        "--database",
        "parity,inventory",
        "--server-id",
        "7301",
        "--prefix",
        "wasm",
        "--until-end",
        "--to",
        dump.to_str().expect("utf-8"),
    ];
    let out = support::lpm(&base, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.script(&fixture("full_types_update.sql"));
    db.script(&fixture("customers_update.sql"));
    let out = support::lpm(&base, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&dump);

    // full_types: every kept column encodes as Flink CDC's Debezium recorded it
    let expected: Value =
        serde_json::from_str(&fixture("full_types.expected.json")).expect("expected");
    let columns: Vec<String> =
        serde_json::from_value(expected["columns"].clone()).expect("columns");
    let real = |k: &str| -> Value {
        let v = &expected[k];
        match v {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
            _ => v.clone(),
        }
    };
    let (snap_real, upd_real) = (real("snapshot_after"), real("update_after"));
    let full: Vec<&Value> = recs
        .iter()
        .filter(|(t, _)| t == "wasm.parity.full_types")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(full.len(), 2, "one read and one update of full_types");
    let (read, update) = (full[0], full[1]);
    assert_eq!(
        (read["op"].as_str(), update["op"].as_str()),
        (Some("r"), Some("u"))
    );
    let mut bad = Vec::new();
    for (ours, real, what) in [
        (&read["after"], &snap_real, "snapshot"),
        (&update["after"], &upd_real, "update"),
    ] {
        for c in &columns {
            let (o, r) = (&ours[c], &real[c]);
            if !same_value(c, o, r) {
                bad.push(format!("{what} {c}: ours {o} real {r}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "values differ from Debezium's:\n{}",
        bad.join("\n")
    );

    // customers: the envelope and source block have Debezium 3.0's fields with the same types
    let real_lines: Vec<Value> = fixture("customers-dbz3.0-engine-schema-exclude.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture"))
        .collect();
    let cust: Vec<&Value> = recs
        .iter()
        .filter(|(t, _)| t == "wasm.inventory.customers")
        .map(|(_, v)| v)
        .collect();
    let ours_read = cust
        .iter()
        .find(|v| v["op"] == "r" && v["after"]["id"] == 1004)
        .expect("read of 1004");
    let ours_upd = cust
        .iter()
        .find(|v| v["op"] == "u")
        .expect("update of 1001");
    for (ours, real) in [(*ours_read, &real_lines[0]), (*ours_upd, &real_lines[1])] {
        let keys = |v: &Value| {
            v.as_object()
                .map(|o| {
                    let mut k: Vec<String> = o.keys().cloned().collect();
                    k.sort();
                    k
                })
                .unwrap_or_default()
        };
        assert_eq!(keys(ours), keys(real), "envelope fields");
        assert_eq!(
            keys(&ours["source"]),
            keys(&real["source"]),
            "source fields"
        );
        for k in keys(&real["source"]) {
            // nullable: GTIDs are on in our server (off in the fixture's), thread is per event
            if ["gtid", "thread"].contains(&k.as_str())
                && (ours["source"][&k].is_null() || real["source"][&k].is_null())
            {
                continue;
            }
            assert_eq!(
                kind(&ours["source"][&k]),
                kind(&real["source"][&k]),
                "source.{k} type ({} vs {})",
                ours["source"][&k],
                real["source"][&k]
            );
        }
        for k in ["before", "after"] {
            assert_eq!(ours[k], real[k], "{k} image");
        }
        for k in ["op", "transaction"] {
            assert_eq!(ours[k], real[k], "{k}");
        }
        for k in ["connector", "name", "db", "table"] {
            assert_eq!(ours["source"][k], real["source"][k], "source.{k}");
        }
    }
    assert_eq!(ours_upd["source"]["snapshot"], "false");
    assert!(ours_read["source"]["snapshot"] != "false");
    // snapshot reads carry server_id 0 and no thread; streamed events the server's id
    assert_eq!(ours_read["source"]["server_id"], 0);
    assert!(ours_upd["source"]["server_id"]
        .as_u64()
        .is_some_and(|id| id > 0));
    db.q("DROP DATABASE parity");
    db.q("DROP DATABASE inventory");
}
