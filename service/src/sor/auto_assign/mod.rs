//! Auto-assignment (`lpm serve --auto-assign`): a case filed without a responsible goes to an
//! eligible responder, decided inside the write that files it.
//!
//! ```text
//! api session layer ── Presence::seen(user) ─┐        (every request with a session)
//! admin route ──────── Presence::set_link ───┤
//!                                            ▼
//! write ── AutoAssign::eligible() (contacts whose user was seen within the TTL, the cap)
//!       ── embedded: Ledger::execute_with under the log's queue lock
//!          MySQL:    SELECT … FOR UPDATE the candidates' contact rows, count their open cases
//!       ── rule::choose (least loaded under the cap, then assigned longest ago, then lowest id)
//!       ── an `assignment` action whose note says `mode: auto`; `lpm_auto_assign_total{outcome}`
//! retry (retry.rs) ── woken by a linked user's arrival or a load that dropped ── the oldest
//!                     unassigned open case first, same rule and cap, until nobody is eligible
//! ```
//!
//! Because every candidate's load is read and changed under one lock (the embedded ledger's,
//! or the contacts' row locks in MySQL), concurrent filings never take anyone past the cap. A
//! manual assignment is not capped: people may decide to overload someone.

pub mod presence;
pub mod retry;
pub mod rule;

use std::sync::Arc;
use std::time::Duration;

use lpm_engine::model::Row;
use prometheus::{IntCounterVec, Opts, Registry};

pub use presence::Presence;
pub use rule::{choose, Candidate, Eligible, Outcome};

use super::ledger::Plan;

/// Default `--auto-assign-cap`.
pub const DEFAULT_CAP: i64 = 50;
/// Default `--auto-assign-session-ttl-s`.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(300);
/// The actor recorded with the retry's writes (it acts for nobody in particular).
pub const ACTOR: &str = "auto-assign";

/// `--auto-assign`'s settings.
#[derive(Clone, Debug)]
pub struct AutoAssignConfig {
    /// Most open cases a responder may hold before auto-assignment skips them.
    pub cap: i64,
    /// A session counts as present this long after its last request.
    pub session_ttl: Duration,
}

impl Default for AutoAssignConfig {
    fn default() -> AutoAssignConfig {
        AutoAssignConfig {
            cap: DEFAULT_CAP,
            session_ttl: DEFAULT_SESSION_TTL,
        }
    }
}

/// Auto-assignment as the writers use it: who is present, the cap, the counter.
#[derive(Debug)]
pub struct AutoAssign {
    cap: i64,
    presence: Arc<Presence>,
    total: IntCounterVec,
}

impl AutoAssign {
    /// Auto-assignment with `config`, its counter registered in `registry` (both outcomes
    /// shown from the start, at 0).
    pub fn new(
        config: &AutoAssignConfig,
        registry: &Registry,
    ) -> Result<Arc<AutoAssign>, prometheus::Error> {
        let total = IntCounterVec::new(
            Opts::new(
                "lpm_auto_assign_total",
                "Automatic assignment decisions: `assigned` (a filed case or a retried \
                 unassigned one went to a responder), `no_eligible` (a case was filed while \
                 no present responder was under the cap; it stays unassigned until a retry)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(total.clone()))?;
        for o in [Outcome::Assigned(0), Outcome::NoEligible] {
            total.with_label_values(&[o.label()]);
        }
        Ok(Arc::new(AutoAssign {
            cap: config.cap.max(0),
            presence: Arc::new(Presence::new(config.session_ttl)),
            total,
        }))
    }

    /// Users' links to contacts and their sessions.
    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// The cap.
    pub fn cap(&self) -> i64 {
        self.cap
    }

    /// Who may receive a case now (their load is checked inside the write).
    pub fn eligible(&self) -> Eligible {
        Eligible {
            contacts: self.presence.eligible_contacts(),
            cap: self.cap,
        }
    }

    /// After a committed write: counts its automatic decision, and wakes the retry when the
    /// write lowered a responder's load.
    pub fn committed(&self, plan: &Plan) {
        if let Some(o) = plan.auto {
            self.total.with_label_values(&[o.label()]).inc();
        }
        if drops_a_load(plan) {
            self.presence.wake();
        }
    }
}

/// Whether `plan` takes an open case away from a responsible: the case closed, or went to
/// someone else.
pub fn drops_a_load(plan: &Plan) -> bool {
    plan.rows
        .iter()
        .any(|(before, after)| match (before, after) {
            (Some(Row::Case(old)), Row::Case(new)) => {
                old.status.is_open()
                    && old.responsible_id.is_some()
                    && (!new.status.is_open() || new.responsible_id != old.responsible_id)
            }
            _ => false,
        })
}
