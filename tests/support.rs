//! Helpers: a kcat `-J` record builder and a way to run the binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// One kcat `-J` line for `table` with `key` id and a value (`None` = tombstone).
pub fn record(table: &str, offset: u64, id: i64, value: Option<Value>) -> String {
    json!({
        "topic": format!("lpm.lost_persons_db.{table}"),
        "partition": 0,
        "offset": offset,
        "tstype": "create",
        "ts": 1_709_900_000_000u64 + offset,
        "broker": 1,
        "key": json!({"id": id}).to_string(),
        "payload": value.map(|v| v.to_string()),
    })
    .to_string()
}

/// A Debezium envelope.
pub fn envelope(
    op: &str,
    after: Option<Value>,
    file: u32,
    pos: u64,
    row: u32,
    snapshot: &str,
) -> Value {
    json!({
        "before": null,
        "after": after,
        "source": {"version": "2.7.3.Final", "connector": "mysql", "name": "lpm", "ts_ms": 1_709_900_000_000u64,
                   "snapshot": snapshot, "db": "lost_persons_db", "table": "t", "server_id": 1,
                   "file": format!("mysql-bin.{file:06}"), "pos": pos, "row": row},
        "op": op,
        "ts_ms": 1_709_900_000_000u64,
    })
}

/// A `persons_lost` row.
pub fn person(id: i64, age: Option<i64>, gender: &str, reported_at: &str) -> Value {
    json!({"id": id, "full_name": format!("Persona {id}"), "age": age, "gender": gender,
           "last_seen_at": 1_709_500_000_000i64, "reported_at": reported_at, "last_seen_place": "Quito",
           "latitude": "/T5T", "longitude": null, "description": "abrigo \"rojo\"\nlentes", "reporter_name": null,
           "reporter_phone": null, "version": 1})
}

/// A `case_cases` row.
/// A `persons_lost` snapshot read (`op: "r"`) of person `id` aged `age`, at binlog `file`/`pos`,
/// with Debezium's `snapshot` marker `mark` (`first`, `true`, `last`).
pub fn snapshot_person(offset: u64, id: i64, age: i64, file: u32, pos: u64, mark: &str) -> String {
    record(
        "persons_lost",
        offset,
        id,
        Some(envelope(
            "r",
            Some(person(id, Some(age), "female", "2024-03-07T10:00:00Z")),
            file,
            pos,
            0,
            mark,
        )),
    )
}

pub fn case(
    id: i64,
    person_id: i64,
    status: &str,
    priority: &str,
    responsible: Option<i64>,
) -> Value {
    json!({"id": id, "person_id": person_id, "status": status, "priority": priority, "responsible_id": responsible,
           "opened_at": "2024-03-07T10:00:00Z", "closed_at": if status == "open" || status == "in_progress" { Value::Null } else { json!("2024-03-07T12:30:00.000Z") },
           "version": 1})
}

/// A `responsible_contacts` row.
pub fn contact(id: i64, name: &str) -> Value {
    json!({"id": id, "full_name": name, "agency": "ECU 911", "phone": null, "email": null, "active": 1, "version": 1})
}

/// Writes lines to `path`.
pub fn write_dump(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).expect("create dump");
    for l in lines {
        writeln!(f, "{l}").expect("write dump");
    }
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `./target`): the one holding the `lpm`
/// binary under test, `<target>/release/lpm`.
pub fn target_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_lpm"))
        .parent()
        .and_then(Path::parent)
        .expect("the lpm binary sits in <target>/<profile>/")
        .to_path_buf()
}

/// Runs `lpm` with `args` (and optional stdin).
pub fn lpm(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lpm"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn lpm");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("lpm runs")
}

/// Runs `lpm replay` and parses the views JSON, asserting success.
pub fn replay(args: &[&str]) -> (Value, String) {
    let mut all = vec!["replay", "--no-progress"];
    all.extend_from_slice(args);
    let out = lpm(&all, None);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "lpm replay failed: {stderr}");
    (
        serde_json::from_slice(&out.stdout).expect("views JSON"),
        stderr,
    )
}

/// `oracle.py`, located like scripts/oracle-check.sh does (`LPM_SHARED`, else `../shared`),
/// when it and python3 are there; says so loudly when not.
pub fn oracle_script() -> Option<std::path::PathBuf> {
    let shared = std::env::var_os("LPM_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("shared")
        });
    let script = shared.join("bench").join("oracle.py");
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if script.is_file() && python {
        return Some(script);
    }
    // outside libtest's capture: this must be seen
    let _ = writeln!(
        std::io::stderr(),
        "\n########## SKIPPED oracle comparison: ../shared not found ({}{}) ##########\n",
        script.display(),
        if python { "" } else { "; no python3" }
    );
    None
}

/// Runs `oracle.py DUMP --tz TZ --check VIEWS --strict` on `views` (written into `dir`) and
/// fails with the oracle's report when they differ in anything.
pub fn assert_oracle_agrees(script: &Path, dump: &Path, tz: &str, views: &Value, dir: &Path) {
    let file = dir.join("lpm-views.json");
    std::fs::write(&file, serde_json::to_vec(views).expect("json")).expect("write");
    let out = Command::new("python3")
        .arg(script)
        .arg(dump)
        .args(["--tz", tz, "--check"])
        .arg(&file)
        .arg("--strict")
        .output()
        .expect("run oracle.py");
    assert!(
        out.status.success(),
        "oracle.py --check of {}: {}{}",
        dump.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The MariaDB the MySQL tests use: `LPM_TEST_MYSQL_URL`, else the binlog-enabled instance
/// `scripts/mariadb.sh` starts.
pub fn mysql_url() -> String {
    std::env::var("LPM_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3307".into())
}

/// A blocking MySQL session for the tests (its own current-thread runtime), in UTC.
pub struct MysqlSession {
    rt: tokio::runtime::Runtime,
    conn: mysql_async::Conn,
}

impl MysqlSession {
    /// Connects, or panics naming the command that starts a server.
    pub fn connect(url: &str) -> MysqlSession {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let opts = mysql_async::Opts::from_url(url).expect("the MySQL URL parses");
        let conn = rt
            .block_on(mysql_async::Conn::new(opts))
            .unwrap_or_else(|e| {
                panic!(
                    "no MariaDB at {url} ({e}); start one with `bash scripts/mariadb.sh start` \
                     (scripts/test.sh does) or set LPM_TEST_MYSQL_URL"
                )
            });
        let mut s = MysqlSession { rt, conn };
        s.q("SET SESSION time_zone = '+00:00'");
        s
    }

    /// Runs a statement.
    pub fn try_q(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        use mysql_async::prelude::Queryable;
        self.rt.block_on(self.conn.query_drop(sql))
    }

    /// Runs a statement, panicking with it on failure.
    pub fn q(&mut self, sql: &str) {
        self.try_q(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Every row (text protocol).
    pub fn try_rows(&mut self, sql: &str) -> Result<Vec<mysql_async::Row>, mysql_async::Error> {
        use mysql_async::prelude::Queryable;
        self.rt.block_on(self.conn.query(sql))
    }

    /// Every row (text protocol), panicking on failure.
    pub fn rows(&mut self, sql: &str) -> Vec<mysql_async::Row> {
        self.try_rows(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every row of a prepared statement (binary protocol: typed values).
    pub fn exec_rows(&mut self, sql: &str) -> Vec<mysql_async::Row> {
        use mysql_async::prelude::Queryable;
        self.rt
            .block_on(self.conn.exec(sql, ()))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A name no other run of the tests uses (topic prefixes, consumer groups): `tag`, this
/// process's id and the clock's milliseconds, so concurrent and repeated runs against one
/// broker do not read each other's records.
pub fn run_id(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis() % 100_000
    )
}
