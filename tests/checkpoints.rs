//! Checkpoints of `lpm serve --capture` against a real MariaDB: a restart loads the newest
//! checkpoint and streams only the binlog written after it, and ends with the same views as a
//! server that took a fresh snapshot, after a clean stop, after kill -9, with another worker
//! count, and when the newest checkpoint is corrupt; a resume position the server no longer
//! has takes a new snapshot that sweeps what it does not re-read. (Kafka: `kafka.rs`.)

use std::path::Path;
use std::time::Duration;

use lpm_engine::rng::SplitMix64 as Rng;
use serde_json::Value;

use crate::capture::{seed, workload, Db};
use crate::serve::{assert_same_views, clients, init_data_dir, wait_until, Http, Server};
use crate::support;

/// `lpm serve --capture` flags for database `db`: a checkpoint every 50 changes or second.
fn flags(db: &str, server_id: u32) -> Vec<String> {
    [
        "--capture",
        &support::mysql_url(),
        "--database",
        db,
        "--server-id",
        &server_id.to_string(),
        "--heartbeat-ms",
        "200",
        "--checkpoint-every-changes",
        "50",
        "--checkpoint-interval-s",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(data: &Path, workers: usize, flags: &[String]) -> Server {
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_workers(data, workers, &args)
}

/// The engine page's `checkpoint` section.
fn checkpoints(reader: &Http) -> Value {
    reader.expect("GET", "/api/v1/engine", None, 200)["checkpoint"].clone()
}

/// One `/metrics` sample.
pub(crate) fn metric(reader: &Http, name: &str) -> f64 {
    let body = reader.expect("GET", "/metrics", None, 200);
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} on /metrics"))
}

/// Waits until both servers show the same views (both follow the same database), then
/// asserts it (the diff names what differs when they never converge).
fn converge(what: &str, left: &Http, right: &Http) {
    let mut last = (Value::Null, Value::Null);
    let same = wait_until_or(Duration::from_secs(90), || {
        let (_, _, l) = left.views();
        let (_, _, r) = right.views();
        let same = l == r;
        last = (l, r);
        same
    });
    if !same {
        assert_same_views(what, ("restarted", &last.0), ("fresh snapshot", &last.1));
    }
}

fn wait_until_or(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Waits until this process has taken a checkpoint.
fn wait_for_checkpoint(reader: &Http, what: &str) {
    wait_until(what, Duration::from_secs(60), || {
        let c = checkpoints(reader);
        match c["taken"].as_u64() {
            Some(n) if n > 0 => Ok(()),
            _ => Err(format!("{c}")),
        }
    });
}

/// The newest checkpoint's manifest in `data`.
pub(crate) fn newest_manifest(data: &Path) -> std::path::PathBuf {
    let mut names: Vec<_> = std::fs::read_dir(data.join("checkpoints"))
        .expect("checkpoints dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    data.join("checkpoints")
        .join(names.last().expect("a checkpoint manifest"))
}

#[test]
fn capture_restarts_from_checkpoints_and_equals_a_fresh_snapshot() {
    let name = format!("lpm_ckpt_cap_{}", std::process::id());
    let mut db = Db::connect();
    db.fresh(&name);
    let mut rng = Rng::new(0x5eed_c4b7);
    seed(&mut db, &mut rng, 400);
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let sid = 5_960_000 + std::process::id() % 30_000;
    let flags = flags(&name, sid);

    // 1. snapshot, stream, checkpoints; a clean stop takes one more
    let mut a = start(&data, 2, &flags);
    let (_, reader) = clients(&a, &token);
    workload(&mut db, &mut rng, 150);
    wait_for_checkpoint(&reader, "a checkpoint while streaming");
    a.terminate();

    // 2. written while lpm is down: only this is streamed after the checkpoint
    workload(&mut db, &mut rng, 60);
    let mut b = start(&data, 1, &flags);
    let (_, reader_b) = clients(&b, &token);
    let c = checkpoints(&reader_b);
    assert!(
        c["restored_entries"].as_i64().unwrap_or(0) > 400,
        "the restart loaded the checkpoint: {c}"
    );
    assert_eq!(c["fallbacks"].as_u64(), Some(0), "{c}");
    let replayed = c["replayed_records"].as_i64().unwrap_or(-1);
    assert!(
        replayed > 0,
        "the binlog written while lpm was down was streamed after the checkpoint: {c}"
    );
    let fresh_dir = tempfile::tempdir().expect("tmp");
    let fresh_data = fresh_dir.path().join("data");
    let fresh_token = init_data_dir(&fresh_data);
    let fresh_flags = self::flags(&name, sid + 1);
    let fresh = start(&fresh_data, 2, &fresh_flags);
    let (_, fresh_reader) = clients(&fresh, &fresh_token);
    let snapshot_rows = metric(&fresh_reader, "lpm_recovery_replayed_records");
    assert!(
        (replayed as f64) < snapshot_rows,
        "the restart streamed {replayed} records, a fresh start read {snapshot_rows}"
    );
    converge(
        "a restart from a checkpoint (1 worker, checkpoint by 2)",
        &reader_b,
        &fresh_reader,
    );
    let (_, _, views) = reader_b.views();
    let cases = views["row_counts"]["case_cases"].as_f64().unwrap_or(0.0);
    eprintln!(
        "capture restart: {} keys restored, {replayed} records streamed after the checkpoint \
         (a fresh start read {snapshot_rows}); {cases} cases in the views",
        c["restored_entries"]
    );
    assert!(cases > 300.0, "the views hold the cases: {views}");

    // 3. live changes, then kill -9 after a checkpoint covers some of them
    workload(&mut db, &mut rng, 80);
    wait_for_checkpoint(&reader_b, "a checkpoint after the restart");
    b.kill9();
    workload(&mut db, &mut rng, 40);
    let b2 = start(&data, 2, &flags);
    let (_, reader_b2) = clients(&b2, &token);
    let c = checkpoints(&reader_b2);
    assert!(c["restored_entries"].as_i64().unwrap_or(0) > 0, "{c}");
    converge("a restart after kill -9", &reader_b2, &fresh_reader);
    drop(b2);

    // 4. a corrupt newest checkpoint: the previous one is loaded, same views
    let manifest = newest_manifest(&data);
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest).expect("manifest"))
        .expect("manifest JSON");
    let state = manifest.with_file_name(m["state_file"].as_str().expect("state file"));
    let mut bytes = std::fs::read(&state).expect("state");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&state, bytes).expect("corrupt the state file");
    let b3 = start(&data, 2, &flags);
    let (_, reader_b3) = clients(&b3, &token);
    let c = checkpoints(&reader_b3);
    assert_eq!(
        c["fallbacks"].as_u64(),
        Some(1),
        "the corrupt newest checkpoint was refused: {c}"
    );
    assert!(
        c["restored_entries"].as_i64().unwrap_or(0) > 0,
        "the previous checkpoint was loaded: {c}"
    );
    converge(
        "a restart past a corrupt checkpoint",
        &reader_b3,
        &fresh_reader,
    );
    drop((b3, fresh));
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
}

#[test]
fn a_lost_binlog_position_takes_a_new_snapshot_that_sweeps_what_it_does_not_reread() {
    let name = format!("lpm_ckpt_lost_{}", std::process::id());
    let mut db = Db::connect();
    db.fresh(&name);
    let mut rng = Rng::new(0x5eed_1057);
    seed(&mut db, &mut rng, 120);
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let sid = 5_990_000 + std::process::id() % 5_000;
    let flags = flags(&name, sid);
    let mut a = start(&data, 2, &flags);
    a.terminate();

    // while lpm is down: a table emptied (no snapshot row will close it), rows deleted and
    // changed; then the checkpoint's position is made one the server does not have, as a
    // PURGE BINARY LOGS past it would (the test server's binlog is shared by other tests)
    db.q("DELETE FROM case_actions");
    db.q("DELETE FROM case_responsible_history");
    db.q("DELETE FROM case_cases WHERE id % 4 = 0");
    db.q("UPDATE persons_lost SET age = 7, version = version + 1 WHERE id % 5 = 0");
    let manifest = newest_manifest(&data);
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let mut m: Value = serde_json::from_str(&text).expect("manifest JSON");
    let binlog = m["position"]["binlog"]
        .as_str()
        .expect("a binlog position")
        .to_string();
    let (file, rest) = binlog.split_once(':').expect("file:pos");
    let gone = format!(
        "{}.999999:{rest}",
        file.rsplit_once('.').expect("numbered").0
    );
    m["position"]["binlog"] = Value::String(gone);
    std::fs::write(&manifest, m.to_string()).expect("rewrite the manifest");

    let b = start(&data, 2, &flags);
    let (_, reader) = clients(&b, &token);
    assert!(
        checkpoints(&reader)["restored_entries"]
            .as_i64()
            .unwrap_or(0)
            > 0,
        "the checkpoint was loaded before its position was found gone"
    );
    assert_eq!(metric(&reader, "lpm_capture_resnapshots_total"), 1.0);
    let fresh_dir = tempfile::tempdir().expect("tmp");
    let fresh_data = fresh_dir.path().join("data");
    let fresh_token = init_data_dir(&fresh_data);
    let fresh = start(&fresh_data, 2, &self::flags(&name, sid + 1));
    let (_, fresh_reader) = clients(&fresh, &fresh_token);
    converge("a re-snapshot over restored rows", &reader, &fresh_reader);
    drop((b, fresh));
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
}
