//! The choice rule of auto-assignment, as a pure function: the least loaded eligible
//! responder under the cap, then the one whose latest assignment is oldest (never assigned
//! counts as oldest), then the lowest contact id.
//!
//! Why pure: the embedded ledger (under its lock) and the MySQL writer (inside the transaction
//! that locked the candidates' rows) both decide with it, so the two modes cannot drift, and
//! the rule is tested without a server.

use lpm_engine::model::{EpochMs, Key};

/// Who may receive an automatic assignment at the time of a write: the contacts whose linked
/// user's session was seen within the TTL ([`super::Presence`]), and the cap. Whether each is
/// still active and how loaded it is are read inside the write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eligible {
    /// Contact ids, ascending, without duplicates.
    pub contacts: Vec<Key>,
    /// Most open (`open`, `in_progress`) cases a responder may hold before auto-assignment
    /// skips them.
    pub cap: i64,
}

/// One eligible responder as the write sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The contact.
    pub id: Key,
    /// Its open or in-progress cases.
    pub open_cases: i64,
    /// When it was last assigned a case (automatically or by hand); `None`: never.
    pub last_assigned_at: Option<EpochMs>,
}

/// What an auto-assignment decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The case went to this contact.
    Assigned(Key),
    /// Nobody eligible was under the cap: the case stays unassigned.
    NoEligible,
}

impl Outcome {
    /// The `outcome` label of `lpm_auto_assign_total`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Assigned(_) => "assigned",
            Outcome::NoEligible => "no_eligible",
        }
    }
}

/// The responder a new case goes to, or `None` when every candidate holds `cap` cases or more.
pub fn choose(candidates: &[Candidate], cap: i64) -> Option<Key> {
    candidates
        .iter()
        .filter(|c| c.open_cases < cap)
        // `None` sorts before every `Some`: never assigned is "assigned longest ago"
        .min_by_key(|c| (c.open_cases, c.last_assigned_at, c.id))
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: Key, open_cases: i64, last: Option<EpochMs>) -> Candidate {
        Candidate {
            id,
            open_cases,
            last_assigned_at: last,
        }
    }

    #[test]
    fn the_least_loaded_goes_first() {
        let cs = [c(1, 3, None), c(2, 1, Some(9)), c(3, 2, Some(1))];
        assert_eq!(choose(&cs, 50), Some(2));
    }

    #[test]
    fn equal_loads_go_to_the_one_assigned_longest_ago_never_first() {
        let cs = [c(1, 2, Some(500)), c(2, 2, Some(100)), c(3, 2, Some(300))];
        assert_eq!(choose(&cs, 50), Some(2));
        let cs = [c(1, 2, Some(500)), c(2, 2, Some(100)), c(3, 2, None)];
        assert_eq!(choose(&cs, 50), Some(3), "never assigned is the oldest");
    }

    #[test]
    fn full_ties_go_to_the_lowest_id() {
        let cs = [c(7, 0, None), c(3, 0, None), c(5, 0, None)];
        assert_eq!(choose(&cs, 50), Some(3));
        let cs = [c(7, 1, Some(10)), c(3, 1, Some(10))];
        assert_eq!(choose(&cs, 50), Some(3));
    }

    #[test]
    fn the_cap_is_never_reached_by_an_automatic_assignment() {
        let cs = [c(1, 50, None), c(2, 49, Some(5))];
        assert_eq!(choose(&cs, 50), Some(2));
        let cs = [c(1, 50, None), c(2, 51, None)];
        assert_eq!(choose(&cs, 50), None, "everyone at or over the cap");
        assert_eq!(choose(&[], 50), None, "nobody eligible");
        assert_eq!(
            choose(&[c(1, 0, None)], 0),
            None,
            "a cap of 0 assigns nothing"
        );
    }

    #[test]
    fn spreads_evenly_when_applied_in_turn() {
        let mut cs = vec![c(1, 0, None), c(2, 0, None), c(3, 0, None)];
        let mut order = Vec::new();
        for t in 0..9 {
            let Some(id) = choose(&cs, 3) else { break };
            order.push(id);
            let x = cs.iter_mut().find(|x| x.id == id).expect("chosen");
            x.open_cases += 1;
            x.last_assigned_at = Some(t);
        }
        assert_eq!(order, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
        assert_eq!(choose(&cs, 3), None);
    }
}
