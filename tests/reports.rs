//! PDF reports of a real `lpm serve`, read back with poppler (`pdftotext -layout`, `pdfinfo`,
//! `pdftoppm`): the case report (accents and ñ, Spanish and English words, every action and
//! history row, page numbers, readers refused) and the analytics reports (totals equal to the
//! views at the stamped tick; a narrower period gives the subset computed from
//! `/api/v1/cases`). One rendered page of the case and demographic reports is kept in
//! `<target dir>/pdf-artifacts/`; render times are printed (not asserted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Days, NaiveDate, Timelike};
use serde_json::{json, Value};

use crate::serve::{clients, init_data_dir, start_demo, wait_until, Auth, Http, Server, TZ};

// ---------------------------------------------------------------------------------------------
// poppler

/// Runs a poppler tool, failing loudly when it is not installed (scripts/test.sh installs
/// poppler-utils).
fn poppler(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} is required by the PDF tests (Debian package poppler-utils; scripts/test.sh installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A PDF on disk with its text and page count; every page rendered to PNG.
struct Pdf {
    text: String,
    pages: usize,
    pngs: Vec<PathBuf>,
}

fn read_pdf(dir: &Path, name: &str, bytes: &[u8]) -> Pdf {
    assert!(bytes.starts_with(b"%PDF-"), "{name} is not a PDF");
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, bytes).expect("write pdf");
    let p = path.to_str().expect("utf-8 path");
    let info = poppler("pdfinfo", &[p]);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo gave no page count: {info}"));
    assert!(
        info.contains("595") && info.contains("842"),
        "not A4: {info}"
    );
    let text = poppler("pdftotext", &["-layout", p, "-"]);
    let prefix = dir.join(format!("{name}-page"));
    poppler(
        "pdftoppm",
        &["-r", "50", "-png", p, prefix.to_str().expect("utf-8")],
    );
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-page")) && n.ends_with(".png"))
        })
        .collect();
    pngs.sort();
    assert_eq!(
        pngs.len(),
        pages,
        "pdftoppm rendered {} of {pages} pages",
        pngs.len()
    );
    for png in &pngs {
        let len = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} is (nearly) empty", png.display());
    }
    Pdf { text, pages, pngs }
}

fn keep_artifact(png: &Path, name: &str) {
    let dir = crate::support::target_dir().join("pdf-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    std::fs::copy(png, dir.join(name)).expect("copy artifact");
}

/// Every page says "Página i de n" (or "Page i of n").
fn assert_numbered(pdf: &Pdf, page: &str, of: &str) {
    for i in 1..=pdf.pages {
        let want = format!("{page} {i} {of} {}", pdf.pages);
        assert!(pdf.text.contains(&want), "{want:?} missing");
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP for binary bodies

struct Download {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Download {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// `GET path` with a cookie or Bearer header (`("cookie", ..)` / `("authorization", ..)`).
fn download(addr: &str, path: &str, auth: (&str, &str)) -> Download {
    let req = ureq::http::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .header(auth.0, auth.1)
        .body(())
        .expect("request");
    let mut resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .expect("body");
    Download {
        status,
        headers,
        body,
    }
}

fn pdf_ok(addr: &str, path: &str, auth: (&str, &str)) -> (u64, Download) {
    let d = download(addr, path, auth);
    assert_eq!(
        d.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&d.body)
    );
    assert_eq!(
        d.headers.get("content-type").map(String::as_str),
        Some("application/pdf")
    );
    let tick = d
        .headers
        .get("x-lpm-tick")
        .and_then(|t| t.parse().ok())
        .expect("X-Lpm-Tick");
    (tick, d)
}

/// Signs `user` in; the `lpm_session=…` cookie.
fn sign_in_as(addr: &str, user: &str, password: &str) -> String {
    Http::new(addr, Auth::None).sign_in_as(user, password)
}

// ---------------------------------------------------------------------------------------------
// reading numbers back from the text

/// The numbers at the end of the first line that starts with `label` followed only by
/// numbers (so "Total 1 2" matches, a heading "Total (3)" does not).
fn numbers_after(text: &str, label: &str) -> Vec<i64> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(label))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .find_map(|rest| {
            let nums: Option<Vec<i64>> = rest.split_whitespace().map(|w| w.parse().ok()).collect();
            nums.filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| panic!("no line {label:?} followed by numbers in:\n{text}"))
}

fn stamped_tick(text: &str, word: &str) -> u64 {
    text.split(&format!("{word}: "))
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {word:?} stamp"))
}

const BANDS_ES: [(&str, &str); 7] = [
    ("0-11", "0-11"),
    ("12-17", "12-17"),
    ("18-29", "18-29"),
    ("30-44", "30-44"),
    ("45-59", "45-59"),
    ("60+", "60+"),
    ("unknown", "edad desconocida"),
];
const GENDERS: [&str; 4] = ["female", "male", "other", "unknown"];

fn view_n(views: &Value, path: &[&str]) -> i64 {
    let mut v = views;
    for p in path {
        v = &v[*p];
    }
    v.as_i64().unwrap_or(0)
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// the tests

#[test]
fn case_report_shows_every_row_with_accents_in_spanish_and_english() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let server = Server::start_with(&data, &[]);
    let (admin, _) = clients(&server, &token);
    let cookie = sign_in_as(&server.addr, "ana", "correct-horse-battery");
    let as_admin = ("cookie", cookie.as_str());
    let bearer = format!("Bearer {token}");
    let as_reader = ("authorization", bearer.as_str());

    let mut people = Vec::new();
    for name in ["Begoña Ibáñez Solís", "Joaquín Núñez Ortú"] {
        let b = admin.expect(
            "POST",
            "/api/v1/responsibles",
            Some(&json!({"full_name": name, "agency": "Policía Nacional", "phone": "+34 941 000 000"})),
            201,
        );
        people.push(b["id"].as_i64().expect("id"));
    }
    let created = admin.expect(
        "POST",
        "/api/v1/reports",
        Some(&json!({
            "full_name": "Íñigo Muñoz Peñalver", "age": 34, "gender": "male",
            "last_seen_at": "2026-11-20T14:30", "last_seen_place": "Logroño",
            "latitude": 42.465, "longitude": -2.445,
            "description": "Chaqueta azul, mochila pequeña; camina con bastón.",
            "reporter_name": "María José Añón", "reporter_phone": "+34 600 000 000",
            "priority": "high", "responsible_id": people[0],
            "first_action": {"action_type": "search", "notes": "búsqueda en el río"}
        })),
        201,
    );
    let id = created["case"]["id"].as_i64().expect("case id");
    let version = created["case"]["version"].as_i64().expect("version");
    let b = admin.expect(
        "POST",
        &format!("/api/v1/cases/{id}/assignment"),
        Some(&json!({"version": version, "responsible_id": people[1]})),
        200,
    );
    let version = b["case"]["version"].as_i64().expect("version");
    admin.expect(
        "PATCH",
        &format!("/api/v1/cases/{id}"),
        Some(&json!({"version": version, "status": "in_progress"})),
        200,
    );
    // enough actions to fill more than one page
    let types = ["note", "search", "call", "sighting"];
    for i in 0..48 {
        admin.expect(
            "POST",
            &format!("/api/v1/cases/{id}/actions"),
            Some(&json!({"action_type": types[i % 4], "notes": format!("acción {i}: búsqueda en el río")})),
            201,
        );
    }
    // two sightings: printed newest first, with the reporter (the report is for responders)
    for (seen, place) in [
        ("2026-11-21T08:15", "Quitumbe"),
        ("2026-11-21T19:40", "Ibarra"),
    ] {
        admin.expect(
            "POST",
            &format!("/api/v1/cases/{id}/sightings"),
            Some(
                &json!({"seen_at": seen, "place": place, "reporter_name": "Ramón Ávila",
                "reporter_phone": "+593 98 111 2222", "description": "gorra roja"}),
            ),
            201,
        );
    }
    let detail = admin.expect("GET", &format!("/api/v1/cases/{id}"), None, 200);
    let actions = detail["actions"].as_array().expect("actions").clone();
    let history = detail["history"].as_array().expect("history").clone();
    assert!(actions.len() >= 50 && history.len() == 2);

    // Spanish (the default)
    let (tick, es) = pdf_ok(
        &server.addr,
        &format!("/api/v1/cases/{id}/report.pdf"),
        as_admin,
    );
    assert_eq!(
        es.headers.get("content-disposition").map(String::as_str),
        Some(format!("attachment; filename=\"caso-{id}.pdf\"").as_str())
    );
    let pdf = read_pdf(dir.path(), "case-es", &es.body);
    let t = &pdf.text;
    assert!(pdf.pages >= 2, "{} actions fit on one page", actions.len());
    assert_numbered(&pdf, "Página", "de");
    assert_eq!(stamped_tick(t, "Tick del motor"), tick);
    assert!(
        t.contains("(America/Guayaquil)") && t.contains("(UTC)"),
        "generated-at zones"
    );
    for want in [
        "Íñigo Muñoz Peñalver",
        "Logroño",
        "búsqueda en el río",
        "Chaqueta azul, mochila pequeña; camina con bastón.",
        "María José Añón",
        "+34 600 000 000",
        "42.465000, -2.445000",
        "34 años",
        "masculino",
        "alta",
        "en curso",
        "Begoña Ibáñez Solís",
        "Joaquín Núñez Ortú",
        "Policía Nacional",
        "vigente",
        "2026-11-20 14:30",
    ] {
        assert!(
            t.contains(want),
            "{want:?} missing from the Spanish case report"
        );
    }
    assert!(t.contains(&format!("Acciones ({})", actions.len())));
    // table cells wrap, so single words
    assert!(t.contains("Avistamientos (2)") && t.contains("respuesta"));
    assert!(t.contains("Ramón") && t.contains("gorra"));
    let (newer, older) = (t.find("Ibarra"), t.find("Quitumbe"));
    assert!(
        newer.is_some() && older.is_some() && newer < older,
        "sightings newest first"
    );
    assert!(t.contains(&format!("Historial de responsables ({})", history.len())));
    for a in &actions {
        let Some(n) = a["notes"].as_str() else {
            continue;
        };
        // the ledger's own notes print in the report's language (`Tr::action_note`): an
        // assignment as the name alone, a status change as translated statuses
        match (
            a["action_type"].as_str(),
            n.strip_prefix("Asignado a / assigned to "),
        ) {
            (Some("assignment"), Some(name)) => {
                assert!(t.contains(name), "action {} ({name:?}) missing", a["id"]);
                assert!(!t.contains(n), "action {} printed untranslated", a["id"]);
            }
            (Some("status_change"), _) if n.contains(" -> ") => {
                assert!(!t.contains(n), "action {} ({n:?}) untranslated", a["id"]);
                assert!(t.contains('\u{2192}'), "no translated status change");
            }
            _ => assert!(t.contains(n), "action {} ({n:?}) missing", a["id"]),
        }
    }
    for word in [
        "búsqueda",
        "llamada",
        "avistamiento",
        "nota",
        "asignación",
        "cambio de estado",
    ] {
        assert!(t.contains(word), "action type {word:?} missing");
    }
    keep_artifact(&pdf.pngs[0], "case-report.png");

    // English
    let (_, en) = pdf_ok(
        &server.addr,
        &format!("/api/v1/cases/{id}/report.pdf?lang=en"),
        as_admin,
    );
    assert_eq!(
        en.headers.get("content-disposition").map(String::as_str),
        Some(format!("attachment; filename=\"case-{id}.pdf\"").as_str())
    );
    let pdf = read_pdf(dir.path(), "case-en", &en.body);
    assert_numbered(&pdf, "Page", "of");
    for want in [
        "Case report",
        "Íñigo Muñoz Peñalver",
        "high",
        "in progress",
        "male",
        "34 years",
        "sighting",
        "status change",
        "Responsible history (2)",
        "Sightings (2)",
        "responder",
        "current",
        "Engine tick",
    ] {
        assert!(
            pdf.text.contains(want),
            "{want:?} missing from the English case report"
        );
    }
    assert!(!pdf.text.contains("en curso") && !pdf.text.contains("Página"));

    // who may see it, and bad input
    let r = download(
        &server.addr,
        &format!("/api/v1/cases/{id}/report.pdf"),
        as_reader,
    );
    assert_eq!(r.status, 403, "a reader must not get personal data");
    let r = download(&server.addr, "/api/v1/cases/999999/report.pdf", as_admin);
    assert_eq!(r.status, 404);
    let r = download(
        &server.addr,
        &format!("/api/v1/cases/{id}/report.pdf?lang=fr"),
        as_admin,
    );
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("lang")));
    let r = download(
        &server.addr,
        &format!("/api/v1/cases/{id}/report.pdf"),
        ("x-none", "1"),
    );
    assert_eq!(r.status, 401);
}

/// Everything `/api/v1/cases` says, read page by page at one tick.
fn all_cases(admin: &Http, tick: u64) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let b = admin.expect(
            "GET",
            &format!("/api/v1/cases?per_page=200&page={page}&sort=id&order=asc"),
            None,
            200,
        );
        assert_eq!(
            b["tick"].as_u64(),
            Some(tick),
            "the data moved while paging"
        );
        let items = b["items"].as_array().expect("items").clone();
        if items.is_empty() {
            break;
        }
        out.extend(items);
    }
    out
}

fn ms(iso: &Value) -> i64 {
    DateTime::parse_from_rfc3339(iso.as_str().expect("time"))
        .expect("rfc3339")
        .timestamp_millis()
}

/// America/Guayaquil is UTC-5 all year, so a local date is the UTC date five hours earlier.
fn local(ms: i64) -> chrono::NaiveDateTime {
    DateTime::from_timestamp_millis(ms - 5 * 3_600_000)
        .expect("instant")
        .naive_utc()
}

#[test]
fn analytics_reports_equal_the_views_at_their_tick_and_narrow_to_a_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // the demo history, and a trickle too slow to move the tick during the test
    let (server, token) = start_demo(&data, &["--demo-every-ms", "3600000"]);
    let (admin, reader) = clients(&server, &token);
    let cookie = sign_in_as(&server.addr, "ana", "correct-horse-battery");
    let as_admin = ("cookie", cookie.as_str());
    let responder = sign_in_as(&server.addr, "responder", "responder-demo-password");
    let as_responder = ("cookie", responder.as_str());
    let bearer = format!("Bearer {token}");
    let as_reader = ("authorization", bearer.as_str());
    let (tick, views) = wait_until("the demo data to settle", Duration::from_secs(120), || {
        let (t1, _, v) = reader.views();
        std::thread::sleep(Duration::from_millis(500));
        let (t2, _, _) = reader.views();
        if t1 == t2 && view_n(&v, &["kpi", "total_reports"]) > 1000 {
            Ok((t1, v))
        } else {
            Err(format!("tick {t1} -> {t2}"))
        }
    });

    // demographic: age group × gender equals age_group and gender
    let (t, d) = pdf_ok(&server.addr, "/api/v1/reports/demographic.pdf", as_reader);
    assert_eq!(t, tick);
    let pdf = read_pdf(dir.path(), "demographic", &d.body);
    assert_eq!(stamped_tick(&pdf.text, "Tick del motor"), tick);
    assert_numbered(&pdf, "Página", "de");
    for (code, label) in BANDS_ES {
        let row = numbers_after(&pdf.text, label);
        assert_eq!(row.len(), 5, "{label}: {row:?}");
        assert_eq!(row[4], view_n(&views, &["age_group", code]), "band {code}");
        assert_eq!(row[..4].iter().sum::<i64>(), row[4]);
    }
    let totals = numbers_after(&pdf.text, "Total");
    for (i, g) in GENDERS.iter().enumerate() {
        assert_eq!(totals[i], view_n(&views, &["gender", g]), "gender {g}");
    }
    assert_eq!(totals[4], view_n(&views, &["kpi", "total_reports"]));
    for w in [
        "femenino",
        "masculino",
        "otro",
        "no indicado",
        "Denuncias por grupo de edad",
    ] {
        assert!(pdf.text.contains(w), "{w:?} missing");
    }
    keep_artifact(&pdf.pngs[0], "demographic-report.png");
    let (_, en) = pdf_ok(
        &server.addr,
        "/api/v1/reports/demographic.pdf?lang=en",
        as_reader,
    );
    let en = read_pdf(dir.path(), "demographic-en", &en.body);
    for w in [
        "female",
        "male",
        "not stated",
        "age unknown",
        "Page 1 of",
        "Engine tick",
    ] {
        assert!(en.text.contains(w), "{w:?} missing in English");
    }

    // hourly: hour of day equals hour_of_day; the days add up to the total
    let (t, h) = pdf_ok(&server.addr, "/api/v1/reports/hourly.pdf", as_reader);
    assert_eq!(t, tick);
    let pdf = read_pdf(dir.path(), "hourly", &h.body);
    for hour in 0..24 {
        let n = numbers_after(&pdf.text, &format!("{hour:02}:00–{hour:02}:59"));
        assert_eq!(
            n,
            vec![view_n(&views, &["hour_of_day", &hour.to_string()])],
            "hour {hour}"
        );
    }
    let day_sum: i64 = pdf
        .text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            NaiveDate::parse_from_str(w.first()?, "%Y-%m-%d").ok()?;
            w.last()?.parse::<i64>().ok()
        })
        .sum();
    assert_eq!(
        day_sum,
        view_n(&views, &["kpi", "total_reports"]),
        "per-day rows"
    );

    // operational: open high/critical and unassigned equal the views
    let (t, o) = pdf_ok(&server.addr, "/api/v1/reports/operational.pdf", as_reader);
    assert_eq!(t, tick);
    let pdf = read_pdf(dir.path(), "operational", &o.body);
    let high = view_n(&views, &["open_by_priority", "high"])
        + view_n(&views, &["open_by_priority", "critical"]);
    assert_eq!(
        numbers_after(&pdf.text, "Casos abiertos de prioridad alta o crítica"),
        vec![high]
    );
    assert_eq!(
        numbers_after(&pdf.text, "Casos abiertos sin responsable"),
        vec![view_n(&views, &["kpi", "unassigned_open_cases"])]
    );
    assert!(
        pdf.pages > 1,
        "{high} alert rows should flow onto more pages"
    );
    assert_numbered(&pdf, "Página", "de");

    // sensitive: counts for everyone, names for responders only
    let cases = all_cases(&admin, tick);
    let minor_names: Vec<String> = cases
        .iter()
        .filter(|c| {
            c["minor"] == json!(true)
                && ["open", "in_progress"].contains(&c["status"].as_str().unwrap_or(""))
        })
        .filter_map(|c| c["person"]["full_name"].as_str().map(str::to_string))
        .collect();
    let minors = view_n(&views, &["kpi", "open_minor_cases"]);
    assert_eq!(minor_names.len() as i64, minors);
    assert!(minors > 0, "the demo has open cases of minors");
    let (_, s) = pdf_ok(&server.addr, "/api/v1/reports/sensitive.pdf", as_responder);
    let pdf = read_pdf(dir.path(), "sensitive-responder", &s.body);
    assert_eq!(
        numbers_after(&pdf.text, "Casos abiertos de menores"),
        vec![minors]
    );
    for n in &minor_names {
        // a long name may wrap in its cell: check its first word is there
        let first = n.split_whitespace().next().unwrap_or(n);
        assert!(pdf.text.contains(first), "{n:?} missing for a responder");
    }
    let (_, s) = pdf_ok(&server.addr, "/api/v1/reports/sensitive.pdf", as_reader);
    let pdf = read_pdf(dir.path(), "sensitive-reader", &s.body);
    assert_eq!(
        numbers_after(&pdf.text, "Casos abiertos de menores"),
        vec![minors]
    );
    for n in &minor_names {
        assert!(!pdf.text.contains(n.as_str()), "{n:?} shown to a reader");
    }
    assert!(pdf.text.contains("solo cantidades"));

    // a narrower period: the subset computed from /api/v1/cases
    let days: Vec<NaiveDate> = cases
        .iter()
        .map(|c| local(ms(&c["person"]["reported_at"])).date())
        .collect();
    let (lo, hi) = (
        days.iter().min().copied().expect("days"),
        days.iter().max().copied().expect("days"),
    );
    let from = lo + Days::days((hi - lo).num_days() / 3);
    let to = from + Days::days(4);
    let q = format!("?from={from}&to={to}&tz={TZ}");
    let in_period = |t: i64| (from..=to).contains(&local(t).date());
    let picked: Vec<&Value> = cases
        .iter()
        .filter(|c| in_period(ms(&c["person"]["reported_at"])))
        .collect();
    assert!(!picked.is_empty() && picked.len() < cases.len());
    let (t, d) = pdf_ok(
        &server.addr,
        &format!("/api/v1/reports/demographic.pdf{q}"),
        as_reader,
    );
    assert_eq!(t, tick);
    let pdf = read_pdf(dir.path(), "demographic-period", &d.body);
    assert!(pdf
        .text
        .contains(&format!("desde {from} hasta {to} ({TZ})")));
    for (code, label) in BANDS_ES {
        let want = picked
            .iter()
            .filter(|c| c["age_band"] == json!(code))
            .count() as i64;
        assert_eq!(
            numbers_after(&pdf.text, label)[4],
            want,
            "band {code} in the period"
        );
    }
    let totals = numbers_after(&pdf.text, "Total");
    for (i, g) in GENDERS.iter().enumerate() {
        let want = picked.iter().filter(|c| c["gender"] == json!(g)).count() as i64;
        assert_eq!(totals[i], want, "gender {g} in the period");
    }
    let (_, h) = pdf_ok(
        &server.addr,
        &format!("/api/v1/reports/hourly.pdf{q}"),
        as_reader,
    );
    let pdf = read_pdf(dir.path(), "hourly-period", &h.body);
    for hour in 0..24u32 {
        let want = picked
            .iter()
            .filter(|c| local(ms(&c["person"]["reported_at"])).hour() == hour)
            .count() as i64;
        assert_eq!(
            numbers_after(&pdf.text, &format!("{hour:02}:00–{hour:02}:59")),
            vec![want]
        );
    }
    let open_in: Vec<&Value> = cases
        .iter()
        .filter(|c| ["open", "in_progress"].contains(&c["status"].as_str().unwrap_or("")))
        .filter(|c| in_period(ms(&c["opened_at"])))
        .collect();
    let (_, o) = pdf_ok(
        &server.addr,
        &format!("/api/v1/reports/operational.pdf{q}&lang=en"),
        as_reader,
    );
    let pdf = read_pdf(dir.path(), "operational-period", &o.body);
    let want_high = open_in
        .iter()
        .filter(|c| ["high", "critical"].contains(&c["priority"].as_str().unwrap_or("")))
        .count() as i64;
    let want_unassigned = open_in
        .iter()
        .filter(|c| c["unassigned"] == json!(true))
        .count() as i64;
    assert_eq!(
        numbers_after(&pdf.text, "Open high or critical priority cases"),
        vec![want_high]
    );
    assert_eq!(
        numbers_after(&pdf.text, "Unassigned open cases"),
        vec![want_unassigned]
    );
    let (_, s) = pdf_ok(
        &server.addr,
        &format!("/api/v1/reports/sensitive.pdf{q}"),
        as_reader,
    );
    let pdf = read_pdf(dir.path(), "sensitive-period", &s.body);
    let want_minors = open_in.iter().filter(|c| c["minor"] == json!(true)).count() as i64;
    assert_eq!(
        numbers_after(&pdf.text, "Casos abiertos de menores"),
        vec![want_minors]
    );

    // bad input names the field; an unknown report is a 404
    for (query, field) in [
        ("?from=2026-02-30", "from"),
        ("?to=soon", "to"),
        ("?from=2026-11-02&to=2026-11-01", "to"),
        ("?tz=Mars/Olympus", "tz"),
        ("?lang=de", "lang"),
    ] {
        let r = download(
            &server.addr,
            &format!("/api/v1/reports/hourly.pdf{query}"),
            as_reader,
        );
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }
    assert_eq!(
        download(&server.addr, "/api/v1/reports/weekly.pdf", as_reader).status,
        404
    );
    assert_eq!(
        download(&server.addr, "/api/v1/reports/hourly", as_reader).status,
        404
    );

    // render times over the demo data (printed, not asserted)
    let case_id = cases[0]["id"].as_i64().expect("id");
    let time = |path: &str| {
        let v: Vec<f64> = (0..9)
            .map(|_| {
                let t0 = Instant::now();
                pdf_ok(&server.addr, path, as_admin);
                t0.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        median_ms(v)
    };
    let case_ms = time(&format!("/api/v1/cases/{case_id}/report.pdf"));
    let demo_ms = time("/api/v1/reports/demographic.pdf");
    let hourly_ms = time("/api/v1/reports/hourly.pdf");
    let op_ms = time("/api/v1/reports/operational.pdf");
    eprintln!(
        "PDF render (HTTP round trip, median of 9, {} reports): case {case_ms:.1} ms, demographic {demo_ms:.1} ms, hourly {hourly_ms:.1} ms, operational {op_ms:.1} ms",
        cases.len()
    );
}

/// The poster of a published case: A4, the name with its accents, and a QR code that
/// `zbarimg` (Debian `zbar-tools`) reads, from the page `pdftoppm` renders, as exactly the
/// case's `public_url`; that URL answers 200 without a session, and a reader gets no poster.
#[test]
fn poster_qr_code_is_the_public_url_and_the_page_answers_without_a_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let server = Server::start_with(&data, &[]);
    let (admin, _) = clients(&server, &token);
    let cookie = sign_in_as(&server.addr, "ana", "correct-horse-battery");
    let as_admin = ("cookie", cookie.as_str());
    let bearer = format!("Bearer {token}");
    let as_reader = ("authorization", bearer.as_str());

    let resp = admin.expect(
        "POST",
        "/api/v1/responsibles",
        Some(&json!({"full_name": "Begoña Ibáñez", "agency": "Policía Nacional", "phone": "+593 2 600 7000"})),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    let created = admin.expect(
        "POST",
        "/api/v1/reports",
        Some(&json!({
            "full_name": "Íñigo Muñoz Peñalver", "age": 34, "gender": "male",
            "last_seen_at": "2026-11-20T14:30", "last_seen_place": "Logroño, Calle Laurel",
            "description": "Chaqueta azul, mochila pequeña; camina con bastón.",
            "reporter_name": "María José Añón", "reporter_phone": "+34 600 000 000",
            "responsible_id": resp,
        })),
        201,
    );
    let id = created["case"]["id"].as_i64().expect("case id");
    let poster_path = format!("/api/v1/cases/{id}/poster.pdf");
    let unpublished = download(&server.addr, &poster_path, as_admin);
    assert_eq!(unpublished.status, 409);
    assert_eq!(unpublished.json()["code"], "not_published");

    let version = created["case"]["version"].as_i64().expect("version");
    let published = admin.expect(
        "PATCH",
        &format!("/api/v1/cases/{id}"),
        Some(&json!({"version": version, "public": true})),
        200,
    );
    let url = published["case"]["public_url"]
        .as_str()
        .expect("public_url")
        .to_string();
    // the default --public-base-url is the address the server bound
    assert!(
        url.starts_with(&format!("http://{}/public/cases/", server.addr)),
        "{url}"
    );

    let (_, poster) = pdf_ok(&server.addr, &poster_path, as_admin);
    let pdf = read_pdf(dir.path(), "poster", &poster.body);
    assert_eq!(pdf.pages, 1);
    for want in [
        "SE BUSCA",
        "Íñigo Muñoz Peñalver",
        "34 años",
        "Logroño, Calle Laurel",
        "+593 2 600 7000",
    ] {
        assert!(
            pdf.text.contains(want),
            "{want:?} missing from:\n{}",
            pdf.text
        );
    }
    assert!(!pdf.text.contains("Añón"), "no reporter on a poster");
    // render in grey at print-like resolution and decode the QR code
    let pdf_file = dir.path().join("poster.pdf");
    let prefix = dir.path().join("poster-qr");
    poppler(
        "pdftoppm",
        &[
            "-r",
            "150",
            "-gray",
            "-png",
            "-singlefile",
            pdf_file.to_str().expect("utf-8"),
            prefix.to_str().expect("utf-8"),
        ],
    );
    let png = dir.path().join("poster-qr.png");
    keep_artifact(&png, "poster.png");
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", png.to_str().expect("utf-8")])
        .output()
        .unwrap_or_else(|e| {
            panic!("zbarimg is required by the poster test (Debian package zbar-tools; scripts/test.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "zbarimg found no code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        decoded.trim_end_matches('\n'),
        url,
        "the QR code is exactly case.public_url"
    );

    // the URL works without a session, and shows the person
    let page = download(
        &server.addr,
        &url[url.find("/public/").expect("path")..],
        ("accept-language", "es"),
    );
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("Íñigo Muñoz Peñalver") && !html.contains("Añón"));
    // in English too
    let (_, en) = pdf_ok(&server.addr, &format!("{poster_path}?lang=en"), as_admin);
    let en = read_pdf(dir.path(), "poster-en", &en.body);
    assert!(en.text.contains("MISSING") && en.text.contains("34 years"));
    // readers get no poster
    assert_eq!(download(&server.addr, &poster_path, as_reader).status, 403);
}

/// The rows of the top-cells table: `cell lat lon reports open_cases open_minor_cases`, the
/// first word a cell key of 15 hex digits.
fn cell_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| w.len() == 6 && w[0].len() == 15 && w[0].chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

#[test]
fn the_top_cells_report_equals_the_hotspots_view_for_each_caller() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (server, token) = start_demo(&data, &["--demo-every-ms", "3600000"]);
    let (_, reader) = clients(&server, &token);
    wait_until("the demo data to settle", Duration::from_secs(120), || {
        let (t1, _, v) = reader.views();
        std::thread::sleep(Duration::from_millis(500));
        let (t2, _, _) = reader.views();
        if t1 == t2 && view_n(&v, &["kpi", "total_reports"]) > 1000 {
            Ok(t1)
        } else {
            Err(format!("tick {t1} -> {t2}"))
        }
    });
    let responder = sign_in_as(&server.addr, "responder", "responder-demo-password");
    let bearer = format!("Bearer {token}");
    let mut below_k = Vec::new();
    for (auth, lang, title, k_label, want_k) in [
        (
            ("cookie", responder.as_str()),
            "en",
            "Top cells by reports",
            "Fewest reports of a shown cell",
            0,
        ),
        (
            ("authorization", bearer.as_str()),
            "es",
            "Celdas con más denuncias",
            "Denuncias mínimas por celda mostrada",
            5,
        ),
    ] {
        let view = download(&server.addr, "/api/v1/views/hotspots", auth).json();
        let rows = download(&server.addr, "/api/v1/views/hotspots?format=rows", auth).json();
        let (tick, pdf) = pdf_ok(
            &server.addr,
            &format!("/api/v1/reports/hotspots.pdf?lang={lang}"),
            auth,
        );
        assert_eq!(
            Some(tick),
            view["tick"].as_u64(),
            "the PDF's tick is the view's"
        );
        assert_eq!(view["min_reports"], want_k);
        let pdf = read_pdf(dir.path(), &format!("hotspots-{lang}"), &pdf.body);
        assert!(pdf.text.contains(title), "{title:?} missing:\n{}", pdf.text);
        assert_eq!(numbers_after(&pdf.text, k_label), vec![want_k]);
        let cells = view["value"].as_object().expect("cells");
        if want_k == 0 {
            below_k = cells
                .iter()
                .filter(|(_, f)| f["reports"].as_i64().unwrap_or(0) < 5)
                .map(|(c, _)| c.clone())
                .collect();
        }
        // the ten cells with the most reports, ties by cell, each with the view's figures
        let mut ranked: Vec<(&String, &Value)> = cells.iter().collect();
        ranked.sort_by(|a, b| {
            b.1["reports"]
                .as_i64()
                .cmp(&a.1["reports"].as_i64())
                .then_with(|| a.0.cmp(b.0))
        });
        ranked.truncate(10);
        assert!(!ranked.is_empty(), "the demo has cells to show");
        let centers: BTreeMap<&str, (f64, f64)> = rows
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| {
                Some((
                    r["cell"].as_str()?,
                    (r["lat"].as_f64()?, r["lon"].as_f64()?),
                ))
            })
            .collect();
        let lines = cell_lines(&pdf.text);
        let got: Vec<Vec<String>> = lines;
        let want: Vec<Vec<String>> = ranked
            .iter()
            .map(|(c, f)| {
                let (lat, lon) = centers[c.as_str()];
                vec![
                    c.to_string(),
                    format!("{lat:.6}"),
                    format!("{lon:.6}"),
                    f["reports"].to_string(),
                    f["open_cases"].to_string(),
                    f["open_minor_cases"].to_string(),
                ]
            })
            .collect();
        assert_eq!(got, want, "the table is the view's top ten:\n{}", pdf.text);
        if want_k == 5 {
            for c in &below_k {
                assert!(
                    !pdf.text.contains(c.as_str()),
                    "{c} is below the readers' k"
                );
            }
        }
    }
}
