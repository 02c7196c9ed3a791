//! `--demo`: a realistic data set on first start (thousands of reports with cases, actions and
//! assignments over several weeks), then a trickle of new reports and case changes so every
//! dashboard moves. Deterministic (a fixed seed), written through the same commands as the API.

use std::sync::Arc;
use std::time::Duration;

use lpm_engine::model::{Decimal, EpochMs, Key, Priority, SightingSource, Status};
// The data set is a function of this exact stream (see `lpm_engine::rng`).
use lpm_engine::rng::SplitMix64;

use crate::sor::ledger::{Command, NewAction, NewReport, NewSighting, ResponsibleFields};
use crate::sor::{EmbeddedSor, SorError};

const FIRST: [&str; 16] = [
    "María",
    "José",
    "Ana",
    "Luis",
    "Carmen",
    "Jorge",
    "Lucía",
    "Andrés",
    "Sofía",
    "Diego",
    "Valentina",
    "Mateo",
    "Camila",
    "Sebastián",
    "Isabel",
    "Nicolás",
];
const LAST: [&str; 14] = [
    "Peña",
    "Muñoz",
    "Gómez",
    "Rodríguez",
    "Pérez",
    "Zambrano",
    "Cedeño",
    "Vélez",
    "Andrade",
    "Castillo",
    "Ibáñez",
    "Quiñónez",
    "Chávez",
    "Núñez",
];
const PLACES: [(&str, i64, i64); 8] = [
    ("Quito, La Mariscal", -180_653, -78_467_834),
    ("Guayaquil, Malecón 2000", -2_194_900, -79_880_600),
    ("Cuenca, Parque Calderón", -2_897_400, -79_004_500),
    ("Ambato, Mercado Central", -1_241_700, -78_619_700),
    ("Manta, Playa Murciélago", -942_700, -80_730_100),
    ("Loja, Puerta de la Ciudad", -3_993_100, -79_204_200),
    ("Esmeraldas, Las Palmas", 968_200, -79_651_700),
    ("Riobamba, Estación del Tren", -1_670_000, -78_647_000),
];
const AGENCIES: [&str; 4] = ["Policía Nacional", "ECU 911", "Cruz Roja", "DINASED"];
const GENDERS: [&str; 4] = ["female", "male", "male", "female"];
const ACTIONS: [&str; 4] = ["note", "search", "call", "sighting"];

/// How much history to create.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    /// Reports.
    pub reports: usize,
    /// Days of history.
    pub days: i64,
    /// Responsible contacts.
    pub responsibles: usize,
}

impl Default for DemoSize {
    fn default() -> DemoSize {
        DemoSize {
            reports: 3_000,
            days: 42,
            responsibles: 14,
        }
    }
}

fn report(
    rng: &mut SplitMix64,
    at: EpochMs,
    tz_offset_ms: i64,
    responsible: Option<i64>,
) -> NewReport {
    let (place, lat, lon) = *rng.pick(&PLACES);
    let age = if rng.chance(0.05) {
        None
    } else {
        Some(rng.below(85) as i64)
    };
    let jitter = |rng: &mut SplitMix64| rng.below(20_000) as i64 - 10_000;
    NewReport {
        full_name: format!(
            "{} {} {}",
            rng.pick(&FIRST),
            rng.pick(&LAST),
            rng.pick(&LAST)
        ),
        age,
        gender: (*rng.pick(&GENDERS)).to_string(),
        last_seen_at: at + tz_offset_ms - rng.below(36) as i64 * 3_600_000,
        last_seen_place: place.to_string(),
        latitude: Some(Decimal {
            unscaled: (lat + jitter(rng)) as i128,
            scale: 6,
        }),
        longitude: Some(Decimal {
            unscaled: (lon + jitter(rng)) as i128,
            scale: 6,
        }),
        description: Some("Visto por última vez con chaqueta azul y mochila.".into()),
        reporter_name: Some(format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST))),
        reporter_phone: Some(format!("+593 9{:08}", rng.below(100_000_000))),
        priority: match rng.below(10) {
            0 => Priority::Critical,
            1..=3 => Priority::High,
            4..=7 => Priority::Medium,
            _ => Priority::Low,
        },
        responsible_id: responsible,
        first_action: rng.chance(0.5).then(|| NewAction {
            action_type: "note".into(),
            notes: Some("Denuncia recibida; se notifica a las unidades cercanas.".into()),
            responsible_id: None,
        }),
        reported_at: Some(at),
    }
}

/// Loads the history when the log is empty. Returns the number of reports written.
pub fn load(sor: &EmbeddedSor, size: DemoSize, now: EpochMs) -> Result<usize, SorError> {
    if sor.with_ledger(|l| l.case_count()) > 0 {
        return Ok(0);
    }
    let mut rng = SplitMix64::new(0x1A7E_2026);
    let mut sighting_rng = SplitMix64::new(0x516E_2026);
    let tz_offset = -5 * 3_600_000;
    let start = now - size.days * 86_400_000;
    let mut batch: Vec<(Command, EpochMs)> = Vec::new();
    for i in 0..size.responsibles {
        batch.push((
            Command::CreateResponsible(ResponsibleFields {
                full_name: Some(format!(
                    "{} {}",
                    FIRST[i % FIRST.len()],
                    LAST[(i * 5) % LAST.len()]
                )),
                agency: Some(AGENCIES[i % AGENCIES.len()].to_string()),
                phone: Some(Some(format!("+593 2 {:07}", 2_000_000 + i))),
                email: Some(Some(format!("agente{i}@example.org"))),
                active: Some(true),
            }),
            start,
        ));
    }
    sor.submit_many(std::mem::take(&mut batch))?;
    let responsibles: Vec<i64> = sor.with_ledger(|l| l.active_responsibles());
    // reports spread over the range, more in the afternoon and evening
    let span = (now - start - 3_600_000).max(1) as u64;
    let mut times: Vec<EpochMs> = (0..size.reports)
        .map(|_| {
            let t = start + rng.below(span) as i64;
            let hour_bias = if rng.chance(0.4) { 6 * 3_600_000 } else { 0 };
            (t + hour_bias).min(now - 60_000)
        })
        .collect();
    times.sort_unstable();
    let mut written = 0;
    for (n, at) in times.into_iter().enumerate() {
        let resp = rng.chance(0.7).then(|| *rng.pick(&responsibles));
        batch.push((
            Command::CreateReport(Box::new(report(&mut rng, at, tz_offset, resp))),
            at,
        ));
        let case_id = n as i64 + 1;
        // follow-ups: actions, status changes, reassignments
        let mut version = 1;
        let mut t = at;
        for _ in 0..rng.below(4) {
            t += rng.below(36 * 3_600_000) as i64;
            if t >= now {
                break;
            }
            batch.push((
                Command::LogAction {
                    case_id,
                    action: NewAction {
                        action_type: (*rng.pick(&ACTIONS)).into(),
                        notes: Some("Seguimiento en territorio.".into()),
                        responsible_id: None,
                    },
                },
                t,
            ));
        }
        if rng.chance(0.2) && t + 3_600_000 < now {
            t += rng.below(12 * 3_600_000) as i64;
            let to = *rng.pick(&responsibles);
            if Some(to) != resp {
                batch.push((
                    Command::Assign {
                        case_id,
                        version,
                        responsible_id: to,
                    },
                    t.min(now - 1),
                ));
                version += 1;
            }
        }
        let age_days = (now - at) / 86_400_000;
        if age_days > 2 && rng.chance(0.65) {
            t += rng.below(72 * 3_600_000) as i64;
            if t < now {
                batch.push((
                    Command::UpdateCase {
                        case_id,
                        version,
                        status: Some(Status::InProgress),
                        priority: None,
                        public: None,
                    },
                    t,
                ));
                version += 1;
                if rng.chance(0.7) {
                    t += rng.below(96 * 3_600_000) as i64;
                    if t < now {
                        let to = match rng.below(10) {
                            0 => Status::FoundDeceased,
                            1 | 2 => Status::Closed,
                            _ => Status::FoundAlive,
                        };
                        batch.push((
                            Command::UpdateCase {
                                case_id,
                                version,
                                status: Some(to),
                                priority: None,
                                public: None,
                            },
                            t,
                        ));
                    }
                }
            }
        }
        batch.extend(sightings(&mut sighting_rng, case_id, at, now, tz_offset));
        if batch.len() >= 500 {
            written += sor.submit_many(std::mem::take(&mut batch))?.0;
        }
    }
    if !batch.is_empty() {
        written += sor.submit_many(batch)?.0;
    }
    Ok(written)
}

/// Sightings drawn from their own stream, so adding them left every other demo row as it was:
/// about a third of the cases get one to three, seen within a day after `at` and before `now`.
fn sightings(
    rng: &mut SplitMix64,
    case_id: Key,
    at: EpochMs,
    now: EpochMs,
    tz_offset_ms: i64,
) -> Vec<(Command, EpochMs)> {
    if !rng.chance(0.35) {
        return Vec::new();
    }
    let n = 1 + rng.below(3);
    let mut out = Vec::new();
    let mut t = at;
    for i in 0..n {
        t += 600_000 + rng.below(24 * 3_600_000) as i64;
        if t >= now {
            break;
        }
        let (place, lat, lon) = *rng.pick(&PLACES);
        let public = rng.chance(0.4);
        let sighting = NewSighting {
            seen_at: t + tz_offset_ms - rng.below(3 * 3_600_000) as i64,
            place: format!("{place}, cerca de la parada {}", 1 + i),
            latitude: Some(Decimal {
                unscaled: i128::from(lat),
                scale: 6,
            }),
            longitude: Some(Decimal {
                unscaled: i128::from(lon),
                scale: 6,
            }),
            description: Some("Vista caminando; ropa como en la denuncia.".into()),
            reporter_name: Some(format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST))),
            reporter_phone: Some(format!("+593 9{:08}", rng.below(100_000_000))),
            source: if public {
                SightingSource::Public
            } else {
                SightingSource::Responder
            },
        };
        out.push((
            Command::AddSighting {
                case_id,
                sighting: Box::new(sighting),
            },
            t,
        ));
    }
    out
}

/// The trickle: a new report or a case change every `every`, until `stop` is set.
pub fn trickle(
    sor: Arc<EmbeddedSor>,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lpm-demo".into())
        .spawn(move || {
            let mut rng = SplitMix64::new(0xD3_3D ^ chrono::Utc::now().timestamp_millis() as u64);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(every);
                let now = chrono::Utc::now().timestamp_millis();
                let cmd = demo_step(&sor, &mut rng, now);
                if let Some(cmd) = cmd {
                    if let Err(SorError::Unavailable(e)) = sor.submit(cmd, "demo") {
                        tracing::warn!(error = %e, "Demo trickle stopped: the log refuses writes.");
                        return;
                    }
                }
            }
        })
}

fn demo_step(sor: &EmbeddedSor, rng: &mut SplitMix64, now: EpochMs) -> Option<Command> {
    let responsibles = sor.with_ledger(|l| l.active_responsibles());
    if rng.chance(0.5) || responsibles.is_empty() {
        let resp = (rng.chance(0.6) && !responsibles.is_empty()).then(|| *rng.pick(&responsibles));
        let r = report(rng, now, -5 * 3_600_000, resp);
        return Some(Command::CreateReport(Box::new(r)));
    }
    let (n, case) = sor.with_ledger(|l| {
        let n = l.case_count() as u64;
        let id = rng.below(n) as i64 + 1;
        (n, l.case(id).cloned())
    });
    let case = case.filter(|_| n > 0)?;
    let next = match case.status {
        Status::Open => Status::InProgress,
        Status::InProgress => {
            if rng.chance(0.8) {
                Status::FoundAlive
            } else {
                Status::Closed
            }
        }
        _ => Status::Open,
    };
    if rng.chance(0.25) {
        // a sighting now and then, so the case page's live timeline has something to show
        return sightings(rng, case.id, now - 25 * 3_600_000, now, -5 * 3_600_000)
            .pop()
            .map(|(cmd, _)| cmd);
    }
    Some(match rng.below(3) {
        0 => Command::UpdateCase {
            case_id: case.id,
            version: case.version,
            status: Some(next),
            priority: None,
            public: None,
        },
        1 => Command::Assign {
            case_id: case.id,
            version: case.version,
            responsible_id: *rng.pick(&responsibles),
        },
        _ => Command::LogAction {
            case_id: case.id,
            action: NewAction {
                action_type: (*rng.pick(&ACTIONS)).into(),
                notes: Some("Actualización desde el terreno.".into()),
                responsible_id: None,
            },
        },
    })
}
