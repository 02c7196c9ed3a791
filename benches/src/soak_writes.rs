//! The soak bench's writers and their ledger of acknowledged writes.
//!
//! Writer threads, signed in as a responder, write at a fixed rate (a [`Schedule`]): by write
//! number, 20% new reports, 20% status changes, 20% assignments and 40% actions. A thread only
//! changes the cases it filed itself, so it knows every case's expected state exactly: version,
//! status, responsible, how many actions it has and the ids of the acknowledged ones. Every
//! acknowledged write (200/201 with the case as the engine shows it, or 202 accepted) updates
//! that expectation; a 200/201 body that contradicts it is an anomaly on the spot. At the end
//! [`verify`] reads every case back through `GET /api/v1/cases/{id}` and compares.
//!
//! A write that got no answer (transport error) or a 5xx may or may not have been applied:
//! its case is marked uncertain and left alone from then on (and counted; such errors fail the
//! run anyway).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::serve_http::{ms, next_status, report_body, trim, Client, Resp, Rng, Schedule};

/// Write kinds, by index.
pub const KINDS: [&str; 4] = ["report", "status change", "assignment", "action"];
const REPORT: u8 = 0;
const STATUS: u8 = 1;
const ASSIGN: u8 = 2;
const ACTION: u8 = 3;
/// The kind of write `k`, by `k % 10`: 20% reports, 20% status changes, 20% assignments, 40%
/// actions.
const MIX: [u8; 10] = [
    REPORT, ACTION, STATUS, ACTION, ASSIGN, REPORT, ACTION, STATUS, ACTION, ASSIGN,
];

/// A case a writer filed, and what the server acknowledged about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracked {
    pub id: i64,
    pub version: i64,
    pub status: String,
    pub responsible: Option<i64>,
    /// Actions the case must have: those its report created (assignment, first action), plus
    /// one per acknowledged status change, assignment and action.
    pub actions: usize,
    /// Acknowledged action ids (every action id a 200/201 body showed, and 202 action ids).
    pub action_ids: Vec<i64>,
    /// A write to it got no answer or a 5xx: what it holds is unknown.
    pub uncertain: bool,
}

/// One acknowledged write.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    /// Seconds from the run's epoch to when it was due.
    pub at_s: f32,
    pub kind: u8,
    /// Send -> answer, ms.
    pub ms: f32,
    /// Due -> send, ms (waiting for a free writer: > 0 when the rate is not kept up).
    pub lag_ms: f32,
    /// 200/201 (visible when answered) rather than 202.
    pub visible: bool,
    pub case_id: i64,
    /// The case version after it (status changes, assignments, reports).
    pub version: Option<i64>,
    /// The action it created, when known.
    pub action_id: Option<i64>,
}

/// What the writers did.
#[derive(Debug, Default)]
pub struct WriterOut {
    pub cases: Vec<Tracked>,
    pub acks: Vec<Ack>,
    /// Failed writes by `"<kind>: HTTP 409"` / `"<kind>: transport"`.
    pub errors: BTreeMap<String, u64>,
    /// The first failures, with their answers.
    pub error_examples: Vec<String>,
    /// Acknowledgements whose body contradicted earlier acknowledgements.
    pub anomalies: u64,
    pub anomaly_examples: Vec<String>,
}

impl WriterOut {
    fn error(&mut self, kind: u8, what: String, detail: String) {
        *self
            .errors
            .entry(format!("write {}: {what}", KINDS[kind as usize]))
            .or_default() += 1;
        if self.error_examples.len() < 5 {
            self.error_examples.push(detail);
        }
    }

    fn anomaly(&mut self, what: String) {
        self.anomalies += 1;
        if self.anomaly_examples.len() < 5 {
            self.anomaly_examples.push(what);
        }
    }

    fn merge(&mut self, other: WriterOut) {
        self.cases.extend(other.cases);
        self.acks.extend(other.acks);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.error_examples.extend(other.error_examples);
        self.error_examples.truncate(10);
        self.anomalies += other.anomalies;
        self.anomaly_examples.extend(other.anomaly_examples);
        self.anomaly_examples.truncate(10);
    }
}

/// A case as `GET /api/v1/cases/{id}` (or a write's 200/201 body) shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    pub id: i64,
    pub version: i64,
    pub status: String,
    pub responsible: Option<i64>,
    pub action_ids: Vec<i64>,
}

/// Parses a `CaseDetailOut`.
pub fn detail(body: &str) -> Option<Detail> {
    let v: Value = serde_json::from_str(body).ok()?;
    let c = &v["case"];
    Some(Detail {
        id: c["id"].as_i64()?,
        version: c["version"].as_i64()?,
        status: c["status"].as_str()?.to_string(),
        responsible: c["responsible"]["id"].as_i64(),
        action_ids: v["actions"]
            .as_array()?
            .iter()
            .filter_map(|a| a["id"].as_i64())
            .collect(),
    })
}

/// How `d` differs from what was acknowledged (`None`: it holds every acknowledged write).
pub fn differs(expected: &Tracked, d: &Detail) -> Option<String> {
    let mut out = Vec::new();
    if d.version != expected.version {
        out.push(format!(
            "version {} (acknowledged {})",
            d.version, expected.version
        ));
    }
    if d.status != expected.status {
        out.push(format!(
            "status {} (acknowledged {})",
            d.status, expected.status
        ));
    }
    if d.responsible != expected.responsible {
        out.push(format!(
            "responsible {:?} (acknowledged {:?})",
            d.responsible, expected.responsible
        ));
    }
    if d.action_ids.len() != expected.actions {
        out.push(format!(
            "{} actions (acknowledged {})",
            d.action_ids.len(),
            expected.actions
        ));
    }
    let missing: Vec<i64> = expected
        .action_ids
        .iter()
        .filter(|id| !d.action_ids.contains(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        out.push(format!("acknowledged actions missing: {missing:?}"));
    }
    (!out.is_empty()).then(|| format!("case {}: {}", expected.id, out.join(", ")))
}

/// Running writers.
pub struct Writers {
    schedule: Arc<Schedule>,
    handles: Vec<std::thread::JoinHandle<WriterOut>>,
}

/// Where and how to write.
pub struct WriteSetup {
    pub base: String,
    pub cookie: String,
    pub rate: f64,
    pub seconds: f64,
    pub threads: usize,
    pub responsibles: Vec<i64>,
    pub tz: chrono_tz::Tz,
    /// The run's epoch (the `at_s` of acknowledgements count from it).
    pub epoch: Instant,
}

impl Writers {
    pub fn start(s: WriteSetup) -> std::io::Result<Writers> {
        let schedule = Arc::new(Schedule::new(s.rate, s.seconds));
        let responsibles = Arc::new(s.responsibles);
        let mut handles = Vec::new();
        for t in 0..s.threads.max(1) {
            let client = Client::new(&s.base, ("Cookie", s.cookie.clone()));
            let (schedule, responsibles) = (schedule.clone(), responsibles.clone());
            let (tz, epoch) = (s.tz, s.epoch);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("soak-writer-{t}"))
                    .spawn(move || {
                        let mut w = Writer {
                            client,
                            rng: Rng::new(0x50A6_0000 + t as u64),
                            responsibles,
                            tz,
                            epoch,
                            out: WriterOut::default(),
                        };
                        while let Some((k, due)) = schedule.take() {
                            w.write(MIX[(k % 10) as usize], due);
                        }
                        w.out
                    })?,
            );
        }
        Ok(Writers { schedule, handles })
    }

    /// Whether every writer finished.
    pub fn done(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// Hands out no further writes.
    pub fn stop(&self) {
        self.schedule.stop();
    }

    /// Waits for the writers and merges what they did.
    pub fn join(self) -> WriterOut {
        let mut all = WriterOut::default();
        for h in self.handles {
            match h.join() {
                Ok(o) => all.merge(o),
                Err(_) => {
                    *all.errors
                        .entry("a writer thread panicked".into())
                        .or_default() += 1;
                }
            }
        }
        all.acks.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        all
    }
}

struct Writer {
    client: Client,
    rng: Rng,
    responsibles: Arc<Vec<i64>>,
    tz: chrono_tz::Tz,
    epoch: Instant,
    out: WriterOut,
}

/// The 202 answer: the written row's id and the case's new version.
fn accepted(body: &str) -> Option<(i64, Option<i64>)> {
    let v: Value = serde_json::from_str(body).ok()?;
    Some((v["id"].as_i64()?, v["version"].as_i64()))
}

impl Writer {
    /// One write of kind `want` (a report when there is no case to change yet; a closed case
    /// is reopened instead of assigned).
    fn write(&mut self, want: u8, due: Instant) {
        let n = self.out.cases.len() as u64;
        let pick = (n > 0)
            .then(|| self.rng.below(n) as usize)
            .filter(|&i| !self.out.cases[i].uncertain);
        let assignable = |c: &Tracked| {
            matches!(c.status.as_str(), "open" | "in_progress")
                && self.responsibles.iter().any(|r| Some(*r) != c.responsible)
        };
        let (kind, pick) = match (want, pick) {
            (_, None) | (REPORT, _) => (REPORT, None),
            (ASSIGN, Some(i)) if !assignable(&self.out.cases[i]) => (STATUS, Some(i)),
            (k, Some(i)) => (k, Some(i)),
        };
        // what the case must look like once this write is acknowledged
        let (method, path, body, mut expect) = match (kind, pick) {
            (REPORT, _) | (_, None) => {
                let body = report_body(&mut self.rng, &self.responsibles, self.tz);
                let responsible = body["responsible_id"].as_i64();
                let actions = usize::from(responsible.is_some())
                    + usize::from(body.get("first_action").is_some());
                let expect = Tracked {
                    id: 0,
                    version: 1,
                    status: "open".into(),
                    responsible,
                    actions,
                    action_ids: Vec::new(),
                    uncertain: false,
                };
                ("POST", "/api/v1/reports".to_string(), body, expect)
            }
            (STATUS, Some(i)) => {
                let c = &self.out.cases[i];
                let to = next_status(&mut self.rng, &c.status);
                let mut e = c.clone();
                e.version += 1;
                e.status = to.into();
                e.actions += 1;
                let body = json!({"version": c.version, "status": to});
                ("PATCH", format!("/api/v1/cases/{}", c.id), body, e)
            }
            (ASSIGN, Some(i)) => {
                let c = &self.out.cases[i];
                let others: Vec<i64> = self
                    .responsibles
                    .iter()
                    .copied()
                    .filter(|r| Some(*r) != c.responsible)
                    .collect();
                let to = others[self.rng.below(others.len() as u64) as usize];
                let mut e = c.clone();
                e.version += 1;
                e.responsible = Some(to);
                e.actions += 1;
                let body = json!({"version": c.version, "responsible_id": to});
                (
                    "POST",
                    format!("/api/v1/cases/{}/assignment", c.id),
                    body,
                    e,
                )
            }
            (_, Some(i)) => {
                let c = &self.out.cases[i];
                let action = ["search", "call", "sighting", "note"][self.rng.below(4) as usize];
                let mut e = c.clone();
                e.actions += 1;
                let body =
                    json!({"action_type": action, "notes": "Seguimiento en territorio (soak)."});
                ("POST", format!("/api/v1/cases/{}/actions", c.id), body, e)
            }
        };
        let sent = Instant::now();
        let answer = self.client.send(method, &path, &body.to_string());
        let took = sent.elapsed();
        let resp = match answer {
            Ok(r) => r,
            Err(e) => {
                if let Some(i) = pick {
                    self.out.cases[i].uncertain = true;
                }
                self.out
                    .error(kind, "transport".into(), format!("{method} {path}: {e}"));
                return;
            }
        };
        let Resp { status, body: text } = resp;
        let mut action_id = None;
        match status {
            200 | 201 => {
                let Some(d) = detail(&text) else {
                    self.out.anomaly(format!(
                        "{method} {path}: unreadable answer {}",
                        trim(&text)
                    ));
                    return;
                };
                if kind == REPORT {
                    expect.id = d.id;
                }
                if let Some(diff) = differs(&expect, &d) {
                    self.out
                        .anomaly(format!("{method} {path} answered {status}: {diff}"));
                }
                if kind == ACTION {
                    action_id = d
                        .action_ids
                        .iter()
                        .filter(|id| !expect.action_ids.contains(id))
                        .max()
                        .copied();
                }
                // the body shows the case at a tick that includes this write: learn the ids
                expect.action_ids = d.action_ids;
            }
            202 => {
                let Some((id, version)) = accepted(&text) else {
                    self.out
                        .anomaly(format!("{method} {path}: unreadable 202 {}", trim(&text)));
                    return;
                };
                match kind {
                    REPORT => expect.id = id,
                    ACTION => {
                        expect.action_ids.push(id);
                        action_id = Some(id);
                    }
                    _ => {}
                }
                if kind != ACTION && version != Some(expect.version) {
                    self.out.anomaly(format!(
                        "{method} {path}: 202 with version {version:?}, expected {}",
                        expect.version
                    ));
                    expect.version = version.unwrap_or(expect.version);
                }
            }
            s => {
                if s >= 500 {
                    if let Some(i) = pick {
                        self.out.cases[i].uncertain = true;
                    }
                }
                self.out.error(
                    kind,
                    format!("HTTP {s}"),
                    format!("{method} {path} answered {s}: {}", trim(&text)),
                );
                return;
            }
        }
        self.out.acks.push(Ack {
            at_s: due.saturating_duration_since(self.epoch).as_secs_f32(),
            kind,
            ms: ms(took) as f32,
            lag_ms: ms(sent.saturating_duration_since(due)) as f32,
            visible: status != 202,
            case_id: expect.id,
            version: (kind != ACTION).then_some(expect.version),
            action_id,
        });
        match pick {
            Some(i) if kind != REPORT => self.out.cases[i] = expect,
            _ => self.out.cases.push(expect),
        }
    }
}

/// What reading every case back found.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    pub cases: usize,
    /// Cases skipped because a write to them got no answer.
    pub uncertain: usize,
    /// Cases equal to what was acknowledged.
    pub ok: usize,
    /// 404: the case is gone.
    pub missing: usize,
    /// The case is there but differs.
    pub wrong: usize,
    /// Reads that failed (by `"read back: HTTP 500"` / `"read back: transport"`).
    pub errors: BTreeMap<String, u64>,
    pub examples: Vec<String>,
    pub seconds: f64,
}

impl Verified {
    /// No case missing or different (read errors are counted apart, as HTTP errors).
    pub fn as_acknowledged(&self) -> bool {
        self.missing + self.wrong == 0
    }
}

/// Reads every tracked case back and compares it with what was acknowledged.
pub fn verify(client: &Client, cases: &[Tracked]) -> Verified {
    let t = Instant::now();
    let mut v = Verified {
        cases: cases.len(),
        ..Verified::default()
    };
    let note = |v: &mut Verified, what: String| {
        if v.examples.len() < 10 {
            v.examples.push(what);
        }
    };
    for c in cases {
        if c.uncertain {
            v.uncertain += 1;
            continue;
        }
        let mut tries = 0;
        let r = loop {
            match client.get(&format!("/api/v1/cases/{}", c.id)) {
                // a transport hiccup is retried once; the error is still counted
                Err(e) if tries == 0 => {
                    *v.errors.entry("read back: transport".into()).or_default() += 1;
                    note(&mut v, format!("case {}: {e}", c.id));
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other,
            }
        };
        match r {
            Ok(r) if r.status == 200 => match detail(&r.body) {
                Some(d) => match differs(c, &d) {
                    None => v.ok += 1,
                    Some(diff) => {
                        v.wrong += 1;
                        note(&mut v, diff);
                    }
                },
                None => {
                    v.wrong += 1;
                    note(
                        &mut v,
                        format!("case {}: unreadable {}", c.id, trim(&r.body)),
                    );
                }
            },
            Ok(r) if r.status == 404 => {
                v.missing += 1;
                note(
                    &mut v,
                    format!("case {}: 404, acknowledged version {}", c.id, c.version),
                );
            }
            Ok(r) => {
                *v.errors
                    .entry(format!("read back: HTTP {}", r.status))
                    .or_default() += 1;
                note(
                    &mut v,
                    format!("case {}: HTTP {} {}", c.id, r.status, trim(&r.body)),
                );
            }
            Err(e) => {
                *v.errors.entry("read back: transport".into()).or_default() += 1;
                note(&mut v, format!("case {}: {e}", c.id));
            }
        }
    }
    v.seconds = t.elapsed().as_secs_f64();
    v
}
