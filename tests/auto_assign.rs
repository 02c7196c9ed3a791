//! Auto-assignment (`lpm serve --auto-assign`) over real HTTP against a real `lpm serve`, with
//! the embedded log and with MySQL as the system of record (`--capture --mysql`, a real
//! MariaDB: `bash scripts/mariadb.sh start`):
//!
//! - 200 concurrent filings with 3 signed-in responders and a cap of 50: exactly 50 each,
//!   nobody over the cap, the other 50 unassigned and counted (`no_eligible`); a closed case
//!   and a late sign-in pick up the oldest unassigned cases;
//! - the order of the rule on a small sequential run (least loaded, then assigned longest ago,
//!   then lowest id), a manual assignment past the cap, and an expired session getting nothing
//!   until it is seen again;
//! - off by default: a filing stays unassigned and nothing is counted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::mysql_sor::{migrate_ok, own_db, server_id, with_db, DropDb};
use crate::serve::{case_id_of, init_data_dir, wait_until, Auth, Http, Server};
use crate::support::MysqlSession;

const RESPONDER_PASSWORD: &str = "responder-password-1";

/// A server and its signed-in admin (who is linked to no contact: never eligible).
struct Setup {
    _server: Server,
    admin: Http,
    anon: Http,
    _db: Option<DropDb>,
}

/// `lpm serve` with `extra` flags on the embedded log.
fn embedded(dir: &Path, extra: &[&str]) -> Setup {
    init_data_dir(dir);
    let server = Server::start_with(dir, extra);
    let anon = Http::new(&server.addr, Auth::None);
    let admin = anon.with_auth(Auth::Cookie(anon.sign_in()));
    Setup {
        _server: server,
        admin,
        anon,
        _db: None,
    }
}

/// `lpm serve --capture --mysql` on a fresh database of its own, with `extra` flags.
fn mysql(dir: &Path, what: &str, salt: u32, extra: &[&str]) -> Setup {
    let url = crate::support::mysql_url();
    let name = own_db(what);
    MysqlSession::connect(&url).q(&format!("DROP DATABASE IF EXISTS `{name}`"));
    let drop = DropDb(url.clone(), name.clone());
    migrate_ok(&url, &name);
    init_data_dir(dir);
    let sid = server_id(salt);
    let db_url = with_db(&url, &name);
    let mut args = vec![
        "--capture",
        url.as_str(),
        "--database",
        name.as_str(),
        "--server-id",
        sid.as_str(),
        "--heartbeat-ms",
        "200",
        "--mysql",
        db_url.as_str(),
        // 200 filings from 20 threads queue on the candidates' row locks, one commit (two
        // fsyncs) at a time: under a loaded CI machine a write can wait longer than the
        // default (the client gives up at 20 s); this test checks the cap and the spread
        "--mysql-timeout-ms",
        "15000",
        "--visible-timeout-ms",
        "15000",
    ];
    args.extend_from_slice(extra);
    let server = Server::start_with(dir, &args);
    let anon = Http::new(&server.addr, Auth::None);
    let admin = anon.with_auth(Auth::Cookie(anon.sign_in()));
    Setup {
        _server: server,
        admin,
        anon,
        _db: Some(drop),
    }
}

impl Setup {
    /// A contact named `name`; its id.
    fn contact(&self, name: &str) -> i64 {
        self.admin.expect(
            "POST",
            "/api/v1/responsibles",
            Some(&json!({"full_name": name, "agency": "ECU 911"})),
            201,
        )["id"]
            .as_i64()
            .expect("contact id")
    }

    /// A responder user linked (by the admin) to a new contact; the contact id.
    fn responder(&self, user: &str) -> i64 {
        self.admin.expect(
            "POST",
            "/api/v1/users",
            Some(&json!({"username": user, "password": RESPONDER_PASSWORD, "role": "responder"})),
            201,
        );
        let id = self.contact(&format!("Contact of {user}"));
        let linked = self.admin.expect(
            "PUT",
            &format!("/api/v1/responsibles/{id}/user"),
            Some(&json!({"user": user})),
            200,
        );
        assert_eq!(linked, json!({"id": id, "user": user}));
        id
    }

    /// `user` signed in: their client.
    fn sign_in(&self, user: &str) -> Http {
        self.anon
            .with_auth(Auth::Cookie(self.anon.sign_in_as(user, RESPONDER_PASSWORD)))
    }

    /// Files a report (no responsible unless `responsible`); the case id.
    fn file(&self, http: &Http, responsible: Option<i64>) -> i64 {
        file_report(http, responsible)
    }

    /// The case as the engine shows it, once it shows version `at_least`.
    fn case(&self, id: i64, at_least: i64) -> Value {
        wait_until(
            &format!("case {id} at version {at_least}"),
            Duration::from_secs(60),
            || {
                let r = self
                    .admin
                    .call("GET", &format!("/api/v1/cases/{id}"), None)?;
                match (r.status, r.body["case"]["version"].as_i64()) {
                    (200, Some(v)) if v >= at_least => Ok(r.body),
                    _ => Err(format!("{} {}", r.status, r.body)),
                }
            },
        )
    }

    /// The responsible of case `id` (None: unassigned), as the engine shows it.
    fn responsible_of(&self, id: i64) -> Option<i64> {
        self.case(id, 1)["case"]["responsible"]["id"].as_i64()
    }

    /// `lpm_auto_assign_total{outcome}`.
    fn counted(&self, outcome: &str) -> Option<u64> {
        let text = self.anon.expect("GET", "/metrics", None, 200);
        let text = text.as_str().unwrap_or_default().to_string();
        let prefix = format!("lpm_auto_assign_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Open cases per contact, from `GET /api/v1/responsibles` once the engine shows `want`.
    fn wait_loads(&self, want: &BTreeMap<i64, i64>) {
        wait_until("the loads", Duration::from_secs(60), || {
            let b = self.admin.expect("GET", "/api/v1/responsibles", None, 200);
            let got: BTreeMap<i64, i64> = b["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| Some((i["id"].as_i64()?, i["open_cases"].as_i64()?)))
                .filter(|(id, _)| want.contains_key(id))
                .collect();
            (got == *want)
                .then_some(())
                .ok_or(format!("{got:?} != {want:?}"))
        });
    }
}

/// Files a report as `http` (no responsible unless `responsible`); the case id.
fn file_report(http: &Http, responsible: Option<i64>) -> i64 {
    let r = http
        .call("POST", "/api/v1/reports", Some(&report(responsible)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.status == 201 || r.status == 202,
        "filing: {} {}",
        r.status,
        r.body
    );
    case_id_of(&r).expect("a case id")
}

fn report(responsible: Option<i64>) -> Value {
    json!({"full_name": "Persona Buscada", "age": 30, "gender": "female",
           "last_seen_at": "2026-11-20T14:30", "last_seen_place": "Quito",
           "priority": "high", "responsible_id": responsible})
}

/// Every case of `ids` by its responsible (None: unassigned), read from the engine.
fn by_responsible(s: &Setup, ids: &[i64]) -> BTreeMap<Option<i64>, Vec<i64>> {
    let mut out: BTreeMap<Option<i64>, Vec<i64>> = BTreeMap::new();
    for &id in ids {
        out.entry(s.responsible_of(id)).or_default().push(id);
    }
    out
}

/// The oldest (by `opened_at`, then id) `n` unassigned cases of `ids`.
fn oldest_unassigned(s: &Setup, ids: &[i64], n: usize) -> Vec<i64> {
    let mut open: Vec<(String, i64)> = ids
        .iter()
        .map(|&id| s.case(id, 1))
        .filter(|c| c["case"]["responsible"].is_null())
        .map(|c| {
            (
                c["case"]["opened_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                c["case"]["id"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    open.sort();
    open.into_iter().take(n).map(|(_, id)| id).collect()
}

/// 200 concurrent filings, 3 present responders, cap 50; then a closed case and a late
/// sign-in take the oldest unassigned ones.
fn two_hundred_filings(s: &Setup) {
    let contacts: Vec<i64> = ["rosa", "saul", "tere"]
        .iter()
        .map(|u| s.responder(u))
        .collect();
    let sessions: Vec<Http> = ["rosa", "saul", "tere"]
        .iter()
        .map(|u| s.sign_in(u))
        .collect();
    let late = s.responder("ulises"); // linked, not signed in: never eligible until it signs in
    assert_eq!(s.counted("assigned"), Some(0), "shown from the start");
    assert_eq!(s.counted("no_eligible"), Some(0));

    // 200 filings from 20 threads at once, by the admin (linked to no contact)
    let s_ref = Arc::new(s.admin.clone());
    let filers: Vec<_> = (0..20)
        .map(|_| {
            let admin = s_ref.clone();
            thread::spawn(move || {
                (0..10)
                    .map(|_| file_report(&admin, None))
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut ids: Vec<i64> = filers
        .into_iter()
        .flat_map(|t| t.join().expect("filer"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 200);

    let spread = by_responsible(s, &ids);
    for c in &contacts {
        assert_eq!(
            spread.get(&Some(*c)).map(Vec::len),
            Some(50),
            "contact {c} gets exactly the cap: {spread:?}"
        );
    }
    assert_eq!(spread.get(&None).map(Vec::len), Some(50), "the rest wait");
    assert_eq!(spread.get(&Some(late)), None, "not signed in: nothing");
    assert_eq!(s.counted("assigned"), Some(150));
    assert_eq!(s.counted("no_eligible"), Some(50));
    let loads: BTreeMap<i64, i64> = contacts.iter().map(|&c| (c, 50)).collect();
    s.wait_loads(&loads);

    // the action says it was automatic
    let one = spread[&Some(contacts[0])][0];
    let detail = s.case(one, 1);
    let note = detail["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["action_type"] == "assignment")
        .map(|a| a["note"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(note["mode"], "auto", "{detail}");

    // a responder closes 5 cases: their load drops, the 5 oldest waiting cases go to them
    let waiting: Vec<i64> = spread[&None].clone();
    let expect_first = oldest_unassigned(s, &waiting, 5);
    for &id in &spread[&Some(contacts[0])][..5] {
        let v = s.case(id, 1)["case"]["version"].as_i64().expect("version");
        let r = sessions[0]
            .call(
                "PATCH",
                &format!("/api/v1/cases/{id}"),
                Some(&json!({"version": v, "status": "found_alive"})),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.status == 200 || r.status == 202,
            "{} {}",
            r.status,
            r.body
        );
    }
    wait_until(
        "the retry after the closings",
        Duration::from_secs(60),
        || {
            let got = by_responsible(s, &expect_first);
            (got.keys().collect::<Vec<_>>() == [&Some(contacts[0])])
                .then_some(())
                .ok_or(format!("{got:?}"))
        },
    );
    s.wait_loads(&loads);

    // a late sign-in picks up the 45 still waiting, oldest first, up to the cap
    let _late_session = s.sign_in("ulises");
    wait_until(
        "the retry after a sign-in",
        Duration::from_secs(120),
        || {
            let got = by_responsible(s, &waiting);
            let late_n = got.get(&Some(late)).map_or(0, Vec::len);
            (late_n == 45 && !got.contains_key(&None))
                .then_some(())
                .ok_or(format!("{late_n} to the late responder: {got:?}"))
        },
    );
    let mut all = loads.clone();
    all.insert(late, 45);
    s.wait_loads(&all);
    assert_eq!(s.counted("assigned"), Some(200));
    assert_eq!(
        s.counted("no_eligible"),
        Some(50),
        "retries are not counted again"
    );
    drop(sessions);
}

/// The rule's order on a sequential run, the cap, a manual assignment past it, and an
/// expired session (TTL 3 s) that gets nothing until it is seen again.
fn order_cap_and_expiry(s: &Setup) {
    let (a, b, c) = (
        s.responder("ana2"),
        s.responder("beto"),
        s.responder("cami"),
    );
    // cami holds a case assigned by hand before anyone signs in: load 1, assigned first
    let manual = s.file(&s.admin, Some(c));
    assert_eq!(s.responsible_of(manual), Some(c));
    let (sa, sb, sc) = (s.sign_in("ana2"), s.sign_in("beto"), s.sign_in("cami"));
    let (mut ids, mut got) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        // each responder is seen before each filing: the short TTL only matters later
        for x in [&sa, &sb, &sc] {
            x.expect("GET", "/api/v1/session", None, 200);
        }
        let id = s.file(&s.admin, None);
        ids.push(id);
        got.push(s.responsible_of(id));
    }
    // loads 0,0,1 -> a (never assigned, lowest id), then b; 1,1,1 -> c (assigned longest
    // ago), then a, then b; everyone at the cap of 2 -> unassigned
    assert_eq!(got, [Some(a), Some(b), Some(c), Some(a), Some(b), None]);
    assert_eq!(s.counted("no_eligible"), Some(1));

    // a person may assign past the cap
    let waiting = s.file(&s.admin, None);
    assert_eq!(s.responsible_of(waiting), None);
    assert_eq!(s.counted("no_eligible"), Some(2));
    let v = s.case(waiting, 1)["case"]["version"].as_i64().expect("v");
    s.admin.expect(
        "POST",
        &format!("/api/v1/cases/{waiting}/assignment"),
        Some(&json!({"version": v, "responsible_id": a})),
        200,
    );
    let detail = s.case(waiting, v + 1);
    assert_eq!(detail["case"]["responsible"]["id"], a);
    let modes: Vec<Value> = detail["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["action_type"] == "assignment")
        .map(|x| x["note"]["mode"].clone())
        .collect();
    assert_eq!(modes, [json!("manual")]);
    s.wait_loads(&[(a, 3), (b, 2), (c, 2)].into_iter().collect());

    // no responder makes a request for longer than the TTL: none is present any more (their
    // sessions live on)
    thread::sleep(Duration::from_secs(4));
    // the admin closes one of b's cases: b is under the cap again, but not present
    let b_case = ids[1];
    let v = s.case(b_case, 1)["case"]["version"].as_i64().expect("v");
    s.admin.expect(
        "PATCH",
        &format!("/api/v1/cases/{b_case}"),
        Some(&json!({"version": v, "status": "closed"})),
        200,
    );
    s.wait_loads(&[(a, 3), (b, 1), (c, 2)].into_iter().collect());
    let newest = s.file(&s.admin, None);
    assert_eq!(
        s.responsible_of(newest),
        None,
        "b is under the cap but its session was not seen within the TTL"
    );
    assert_eq!(s.counted("no_eligible"), Some(3));
    assert_eq!(s.responsible_of(ids[5]), None, "still waiting");
    // b comes back (any request with its session): the oldest waiting case goes to b, which
    // is then at the cap again, so the newer one keeps waiting
    sb.expect("GET", "/api/v1/session", None, 200);
    wait_until(
        "b picks up the oldest waiting case",
        Duration::from_secs(60),
        || match s.responsible_of(ids[5]) {
            Some(x) if x == b => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    s.wait_loads(&[(a, 3), (b, 2), (c, 2)].into_iter().collect());
    assert_eq!(s.responsible_of(newest), None);
    drop((sa, sc));
}

#[test]
fn auto_assignment_is_off_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = embedded(dir.path(), &[]);
    let c = s.responder("vera");
    let _session = s.sign_in("vera");
    let id = s.file(&s.admin, None);
    assert_eq!(s.responsible_of(id), None);
    assert_eq!(
        s.counted("assigned"),
        None,
        "no counter without --auto-assign"
    );
    let list = s.admin.expect("GET", "/api/v1/responsibles", None, 200);
    assert_eq!(list["auto_assign"], Value::Null);
    let linked = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"] == c)
        .map(|i| i["user"].clone());
    assert_eq!(linked, Some(json!("vera")), "the link is kept either way");
}

#[test]
fn embedded_auto_assignment_caps_spreads_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = embedded(dir.path(), &["--auto-assign"]);
    let list = s.admin.expect("GET", "/api/v1/responsibles", None, 200);
    assert_eq!(
        list["auto_assign"],
        json!({"cap": 50, "session_ttl_s": 300})
    );
    two_hundred_filings(&s);
}

#[test]
fn embedded_auto_assignment_order_cap_and_expired_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = embedded(
        dir.path(),
        &[
            "--auto-assign",
            "--auto-assign-cap",
            "2",
            "--auto-assign-session-ttl-s",
            "3",
        ],
    );
    order_cap_and_expiry(&s);
}

#[test]
fn mysql_auto_assignment_caps_spreads_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = mysql(dir.path(), "autoassign", 40, &["--auto-assign"]);
    two_hundred_filings(&s);
}

#[test]
fn mysql_auto_assignment_order_cap_and_expired_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = mysql(
        dir.path(),
        "autoassign_order",
        41,
        &[
            "--auto-assign",
            "--auto-assign-cap",
            "2",
            "--auto-assign-session-ttl-s",
            "3",
        ],
    );
    order_cap_and_expiry(&s);
}
