//! Notifications (`lpm serve --notify-*`) against a local receiver that misbehaves: it is down
//! (500) while the first writes are made, then drops connections mid-request, answers 500, and
//! takes some requests but drops the connection before answering (so the sender retries what
//! it already has). `lpm serve` is killed with SIGKILL while every notification is still
//! pending and restarted. After dedup by `Idempotency-Key`, each target must hold every
//! expected notification exactly once, the same body for every copy, and no reporter's or
//! witness's contact anywhere. Embedded mode, and MySQL mode (`--capture --mysql`, the
//! MariaDB of `scripts/mariadb.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::serve::{
    case_id_of, clients, create_responsibles, init_data_dir, wait_until, Http, Server,
};

/// One request the receiver took (answered or not).
#[derive(Clone, Debug)]
struct Got {
    path: String,
    key: String,
    body: Value,
    raw: String,
}

#[derive(Default)]
struct Seen {
    requests: u64,
    /// attempts per (path, key): a key is answered 200 from its third attempt on
    attempts: BTreeMap<(String, String), u32>,
    got: Vec<Got>,
    dropped: u64,
    failed: u64,
}

/// The misbehaving receiver on 127.0.0.1:0.
struct Receiver {
    addr: String,
    up: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const FAIL: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("addr").to_string();
        let up = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (u, s) = (up.clone(), seen.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (u, s) = (u.clone(), s.clone());
                thread::spawn(move || serve_one(conn, &u, &s));
            }
        });
        Receiver { addr, up, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Distinct idempotency keys per path, each with every body it came with.
    fn by_key(&self) -> BTreeMap<String, BTreeMap<String, Vec<Got>>> {
        let mut out: BTreeMap<String, BTreeMap<String, Vec<Got>>> = BTreeMap::new();
        for g in &self.seen.lock().got {
            out.entry(g.path.clone())
                .or_default()
                .entry(g.key.clone())
                .or_default()
                .push(g.clone());
        }
        out
    }
}

/// Reads one request; the receiver's mood decides what happens to it.
fn serve_one(mut conn: TcpStream, up: &AtomicBool, seen: &Mutex<Seen>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let key = header("idempotency-key").unwrap_or_default();
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (k, attempt) = {
        let mut s = seen.lock();
        s.requests += 1;
        let a = s.attempts.entry((path.clone(), key.clone())).or_insert(0);
        *a += 1;
        let a = *a;
        (s.requests, a)
    };
    if !up.load(Ordering::SeqCst) {
        seen.lock().failed += 1;
        let _ = conn.write_all(FAIL);
        return;
    }
    // from the third attempt of a key on, it goes through
    let mood = if attempt >= 3 { 3 } else { k % 4 };
    if mood == 0 {
        // mid-request: the body is never read, nothing is answered
        seen.lock().dropped += 1;
        return;
    }
    if mood == 1 {
        seen.lock().failed += 1;
        let _ = conn.write_all(FAIL);
        return;
    }
    while buf.len() < head_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let raw = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let mut s = seen.lock();
    s.got.push(Got {
        path,
        key,
        body,
        raw,
    });
    if mood == 2 {
        // taken, but the answer is lost: the sender must retry, and the receiver dedups
        s.dropped += 1;
        return;
    }
    drop(s);
    let _ = conn.write_all(OK);
}

const REPORTER: &str = "Rita Reportera";
const REPORTER_PHONE: &str = "0991112233";
const WITNESS: &str = "Walter Testigo";
const WITNESS_PHONE: &str = "0987776655";

/// What one batch of writes must notify.
#[derive(Default)]
struct Expected {
    filed: BTreeSet<i64>,
    unassigned: BTreeSet<i64>,
    sightings: BTreeMap<i64, usize>,
}

/// Four reports (critical, a minor, an adult of medium priority, a critical one with a
/// responsible) and two sightings on each of the first two cases.
fn writes(admin: &Http, responsible: i64, tag: &str, exp: &mut Expected) {
    let report = |name: &str, age: i64, priority: &str, responsible: Option<i64>| {
        let mut body = json!({
            "full_name": format!("{name} {tag}"),
            "age": age,
            "gender": "female",
            "last_seen_at": "2026-03-01T10:00",
            "last_seen_place": "Quito",
            "priority": priority,
            "reporter_name": REPORTER,
            "reporter_phone": REPORTER_PHONE,
        });
        if let Some(r) = responsible {
            body["responsible_id"] = json!(r);
        }
        let r = admin
            .call("POST", "/api/v1/reports", Some(&body))
            .expect("POST /api/v1/reports");
        assert!(matches!(r.status, 201 | 202), "{}: {}", r.status, r.body);
        case_id_of(&r).expect("case id")
    };
    let critical = report("Ana", 40, "critical", None);
    let minor = report("Bea", 9, "low", None);
    let plain = report("Carla", 35, "medium", None);
    let assigned = report("Dora", 50, "critical", Some(responsible));
    exp.filed.extend([critical, minor, assigned]);
    exp.unassigned.extend([critical, minor, plain]);
    for case in [critical, plain] {
        for i in 0..2 {
            let r = admin
                .call(
                    "POST",
                    &format!("/api/v1/cases/{case}/sightings"),
                    Some(&json!({
                        "seen_at": format!("2026-03-02T1{i}:00"),
                        "place": "Parque El Ejido",
                        "reporter_name": WITNESS,
                        "reporter_phone": WITNESS_PHONE,
                    })),
                )
                .expect("POST sightings");
            assert!(matches!(r.status, 201 | 202), "{}: {}", r.status, r.body);
            *exp.sightings.entry(case).or_insert(0) += 1;
        }
    }
}

fn flags(rx: &Receiver) -> Vec<String> {
    [
        "--notify-webhook",
        &rx.url("/hook"),
        "--notify-slack-url",
        &rx.url("/slack"),
        "--notify-telegram-url",
        &rx.url("/bot123/sendMessage"),
        "--notify-telegram-chat-id",
        "-100200",
        "--notify-unassigned-after-s",
        "1",
        "--notify-backoff-max-s",
        "1",
        "--public-base-url",
        "https://lpm.example.org",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The webhook's distinct notifications match `exp` exactly.
fn check_webhook(keys: &BTreeMap<String, Vec<Got>>, exp: &Expected) -> Result<(), String> {
    let mut filed = BTreeSet::new();
    let mut unassigned: BTreeMap<i64, usize> = BTreeMap::new();
    let mut sightings: BTreeMap<i64, usize> = BTreeMap::new();
    for (key, copies) in keys {
        let b = &copies[0].body;
        if b["id"] != json!(key) {
            return Err(format!("body id {} under key {key}", b["id"]));
        }
        let case = b["case_id"].as_i64().ok_or("no case_id")?;
        match b["kind"].as_str() {
            Some("case_filed") => {
                filed.insert(case);
            }
            Some("case_unassigned") => *unassigned.entry(case).or_insert(0) += 1,
            Some("sighting_reported") => *sightings.entry(case).or_insert(0) += 1,
            other => return Err(format!("unknown kind {other:?}")),
        }
    }
    let want_unassigned: BTreeMap<i64, usize> = exp.unassigned.iter().map(|&c| (c, 1)).collect();
    if filed != exp.filed || unassigned != want_unassigned || sightings != exp.sightings {
        return Err(format!(
            "filed {filed:?} (want {:?}), unassigned {unassigned:?} (want {want_unassigned:?}), \
             sightings {sightings:?} (want {:?})",
            exp.filed, exp.sightings
        ));
    }
    Ok(())
}

#[test]
fn every_notification_arrives_once_after_dedup_across_a_kill_9() {
    once_after_dedup_across_a_kill_9(&[]);
}

#[test]
fn with_mysql_every_notification_arrives_once_after_dedup_across_a_kill_9() {
    use crate::mysql_sor::{migrate_ok, own_db, server_id, with_db, DropDb};
    let url = crate::support::mysql_url();
    let db = own_db("notify");
    migrate_ok(&url, &db);
    let _cleanup = DropDb(url.clone(), db.clone());
    let flags = [
        "--capture",
        &url,
        "--database",
        &db,
        "--server-id",
        &server_id(3),
        "--heartbeat-ms",
        "200",
        "--mysql",
        &with_db(&url, &db),
        "--visible-timeout-ms",
        "15000",
    ]
    .map(str::to_string);
    once_after_dedup_across_a_kill_9(&flags);
}

/// The test, on the source and system of record `extra` selects.
fn once_after_dedup_across_a_kill_9(extra: &[String]) {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = init_data_dir(dir.path());
    let mut flags = flags(&rx);
    flags.extend_from_slice(extra);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();

    // the receiver is down: everything the first batch notifies stays pending
    let mut server = Server::start_with(dir.path(), &args);
    let (admin, _) = clients(&server, &token);
    let responsible = create_responsibles(&admin)[0];
    let mut exp = Expected::default();
    writes(&admin, responsible, "one", &mut exp);
    // the unassigned check (every second) has had time to queue the first batch's cases
    thread::sleep(Duration::from_millis(2500));
    assert!(rx.seen.lock().got.is_empty(), "the receiver was down");
    server.kill9();

    rx.up.store(true, Ordering::SeqCst);
    let server = Server::start_with(dir.path(), &args);
    let (admin, reader) = clients(&server, &token);
    writes(&admin, responsible, "two", &mut exp);

    let paths = ["/hook", "/slack", "/bot123/sendMessage"];
    wait_until(
        "every notification at every target",
        Duration::from_secs(120),
        || {
            let keys = rx.by_key();
            let hook = keys.get("/hook").ok_or("nothing at the webhook yet")?;
            check_webhook(hook, &exp)?;
            let want: BTreeSet<&String> = hook.keys().collect();
            for p in &paths[1..] {
                let got: BTreeSet<&String> =
                    keys.get(*p).map(|k| k.keys().collect()).unwrap_or_default();
                if got != want {
                    return Err(format!("{p}: {} keys of {}", got.len(), want.len()));
                }
            }
            Ok(())
        },
    );

    let keys = rx.by_key();
    let seen = rx.seen.lock();
    assert!(
        seen.failed > 0 && seen.dropped > 0,
        "the receiver misbehaved"
    );
    let duplicates = seen.got.len() - keys.values().map(BTreeMap::len).sum::<usize>();
    assert!(
        duplicates > 0,
        "some notification was re-sent after its answer was lost"
    );
    for g in &seen.got {
        for secret in [REPORTER, REPORTER_PHONE, WITNESS, WITNESS_PHONE, "Ejido"] {
            assert!(
                !g.raw.contains(secret),
                "{} carries {secret}: {}",
                g.path,
                g.raw
            );
        }
    }
    drop(seen);
    for (path, by_key) in &keys {
        for (key, copies) in by_key {
            assert!(
                copies.iter().all(|c| c.raw == copies[0].raw),
                "{path} {key}: copies differ"
            );
        }
        let sample = &by_key.values().next().expect("a notification")[0].body;
        match path.as_str() {
            "/slack" => assert_eq!(sample.as_object().map(|o| o.len()), Some(1), "{sample}"),
            "/bot123/sendMessage" => assert_eq!(sample["chat_id"], "-100200"),
            _ => assert!(sample["link"]
                .as_str()
                .is_some_and(|l| l.starts_with("https://lpm.example.org/#/cases/"))),
        }
        assert!(sample["text"].as_str().is_some_and(|t| t.contains("#")));
    }
    // and the metrics say so, once the sender has had its 2xx for what the receiver took while
    // dropping the answer
    let text = wait_until("nothing pending", Duration::from_secs(30), || {
        let metrics = reader.expect("GET", "/metrics", None, 200);
        let text = metrics.as_str().unwrap_or_default().to_string();
        for target in ["webhook", "slack", "telegram"] {
            let zero = format!("lpm_notifications_pending{{target=\"{target}\"}} 0");
            if !text.contains(&zero) {
                return Err(format!("{target} still has some pending"));
            }
        }
        Ok(text)
    });
    for target in ["webhook", "slack", "telegram"] {
        assert!(text.contains(&format!(
            "lpm_notifications_sent_total{{target=\"{target}\"}}"
        )));
        assert!(text.contains(&format!(
            "lpm_notifications_failed_total{{target=\"{target}\"}}"
        )));
    }
    assert!(text.contains("lpm_notifications_retried_total"));
    // with nothing left to send, still no key beyond the expected ones
    let keys = rx.by_key();
    check_webhook(&keys["/hook"], &exp).expect("the webhook's notifications at the end");
    for p in &paths[1..] {
        assert_eq!(keys[*p].len(), keys["/hook"].len(), "{p}");
    }
}
