//! The case report's data: one `EngineHandle::case` read (case, person, responsible, actions,
//! history and sightings at one tick) turned into `lpm_reports::CaseReport`.

use std::collections::BTreeMap;

use lpm_engine::read::CaseDetail;
use lpm_engine::views::{is_minor, AgeBand};
use lpm_reports::{
    ActionLine, ActionNote, CaseInfo, CaseReport, HistoryLine, PersonInfo, ResponsibleInfo,
    SightingLine, Stamp,
};
use lpm_service::sor::note::LedgerNote;

/// The report of `d`. `names` maps responsible ids to names for the history rows (the
/// history table stores only ids); the current responsible's own row wins over it.
pub fn report(d: &CaseDetail, names: &BTreeMap<i64, String>, stamp: Stamp) -> CaseReport {
    let rec = &d.record;
    let c = &rec.case;
    let age = rec.person.as_ref().and_then(|p| p.age);
    let mut names = names.clone();
    if let Some(r) = &rec.responsible {
        names.insert(r.id, r.full_name.clone());
    }
    CaseReport {
        stamp,
        case: CaseInfo {
            id: c.id,
            status: c.status.as_str().to_string(),
            priority: c.priority.as_str().to_string(),
            opened_at: c.opened_at,
            closed_at: c.closed_at,
            version: c.version,
            minor: is_minor(age),
            age_band: AgeBand::of(age).label().to_string(),
        },
        person: rec.person.as_ref().map(|p| PersonInfo {
            id: p.id,
            full_name: p.full_name.clone(),
            age: p.age,
            gender: p.gender.clone(),
            last_seen_at: p.last_seen_at,
            last_seen_place: p.last_seen_place.clone(),
            latitude: p.latitude.map(|v| v.to_string()),
            longitude: p.longitude.map(|v| v.to_string()),
            description: p.description.clone(),
            reporter_name: p.reporter_name.clone(),
            reporter_phone: p.reporter_phone.clone(),
            reported_at: p.reported_at,
            version: p.version,
        }),
        responsible: rec.responsible.as_ref().map(|r| ResponsibleInfo {
            id: r.id,
            full_name: r.full_name.clone(),
            agency: r.agency.clone(),
            phone: r.phone.clone(),
            email: r.email.clone(),
            active: r.active,
        }),
        history: d
            .history
            .iter()
            .map(|h| HistoryLine {
                id: h.id,
                responsible_id: h.responsible_id,
                responsible_name: names.get(&h.responsible_id).cloned(),
                assigned_at: h.assigned_at,
                unassigned_at: h.unassigned_at,
            })
            .collect(),
        actions: d
            .actions
            .iter()
            .map(|a| ActionLine {
                id: a.id,
                created_at: a.created_at,
                action_type: a.action_type.clone(),
                responsible_id: a.responsible_id,
                responsible_name: a.responsible_name.clone(),
                notes: a.notes.clone(),
                note: LedgerNote::of(a).map(|n| match n {
                    LedgerNote::StatusChange { from, to } => ActionNote::StatusChange { from, to },
                    LedgerNote::Assignment {
                        responsible_name, ..
                    } => ActionNote::Assignment { responsible_name },
                }),
            })
            .collect(),
        sightings: d
            .sightings
            .iter()
            .map(|s| SightingLine {
                id: s.id,
                seen_at: s.seen_at,
                place: s.place.clone(),
                latitude: s.latitude.map(|v| v.to_string()),
                longitude: s.longitude.map(|v| v.to_string()),
                description: s.description.clone(),
                reporter_name: s.reporter_name.clone(),
                reporter_phone: s.reporter_phone.clone(),
                source: s.source.as_str().to_string(),
            })
            .collect(),
    }
}
