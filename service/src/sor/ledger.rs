//! The write model of the embedded system of record: the current row of everything a write
//! must check (cases, persons, responsibles, each case's open assignment) and the id counters.
//!
//! Why a separate model and not the engine's read model: a write must see every earlier
//! acknowledged write, even one the engine has not shown yet, and two concurrent writes must
//! not both pass a version check. The ledger is mutated under one lock, in log order, and is
//! rebuilt from the same log the engine replays.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use lpm_engine::model::{
    Action, Assignment, Case, Decimal, EpochMs, Key, Person, Priority, Responsible, Row, Sighting,
    SightingSource, Status, WallClockMs,
};

use super::auto_assign::rule::{choose, Candidate, Eligible, Outcome};
use super::note::LedgerNote;
use super::SorError;

/// A new lost-person report (the person and its case are created together).
#[derive(Clone, Debug)]
pub struct NewReport {
    /// Full name.
    pub full_name: String,
    /// Age in years, if known.
    pub age: Option<i64>,
    /// `female`, `male`, `other` or `unknown`.
    pub gender: String,
    /// Last seen, local wall clock.
    pub last_seen_at: WallClockMs,
    /// Where.
    pub last_seen_place: String,
    /// Latitude (scale 6).
    pub latitude: Option<Decimal>,
    /// Longitude (scale 6).
    pub longitude: Option<Decimal>,
    /// Description.
    pub description: Option<String>,
    /// Reporter.
    pub reporter_name: Option<String>,
    /// Reporter phone.
    pub reporter_phone: Option<String>,
    /// Initial priority.
    pub priority: Priority,
    /// Initial responsible, if any.
    pub responsible_id: Option<Key>,
    /// A first action to log, if any.
    pub first_action: Option<NewAction>,
    /// When the report was filed; `None` = now (the demo loader backdates).
    pub reported_at: Option<EpochMs>,
}

/// An action to log on a case.
#[derive(Clone, Debug)]
pub struct NewAction {
    /// `note`, `search`, `call`, `sighting` (the API also writes `status_change`, `assignment`).
    pub action_type: String,
    /// Free text.
    pub notes: Option<String>,
    /// Who did it; `None` = the case's current responsible.
    pub responsible_id: Option<Key>,
}

/// A sighting to add to a case. The source is a field, not implied by the command, so the
/// responders' route and the public case page share one write path.
#[derive(Clone, Debug)]
pub struct NewSighting {
    /// When the person was seen, local wall clock.
    pub seen_at: WallClockMs,
    /// Where.
    pub place: String,
    /// Latitude (scale 6); both coordinates or neither.
    pub latitude: Option<Decimal>,
    /// Longitude (scale 6).
    pub longitude: Option<Decimal>,
    /// What was seen.
    pub description: Option<String>,
    /// Who reported it.
    pub reporter_name: Option<String>,
    /// Their phone.
    pub reporter_phone: Option<String>,
    /// `responder` (the API) or `public` (the public case page).
    pub source: SightingSource,
}

/// Fields of a responsible contact.
#[derive(Clone, Debug, Default)]
pub struct ResponsibleFields {
    /// Name.
    pub full_name: Option<String>,
    /// Agency.
    pub agency: Option<String>,
    /// Phone (`Some(None)` clears it).
    pub phone: Option<Option<String>>,
    /// Email (`Some(None)` clears it).
    pub email: Option<Option<String>>,
    /// Active flag.
    pub active: Option<bool>,
}

/// A write.
#[derive(Clone, Debug)]
pub enum Command {
    /// File a report.
    CreateReport(Box<NewReport>),
    /// Change status and/or priority.
    UpdateCase {
        /// Case.
        case_id: Key,
        /// The version the client saw.
        version: i64,
        /// New status.
        status: Option<Status>,
        /// New priority.
        priority: Option<Priority>,
        /// Publish (`true`) or unpublish (`false`) the case's public page.
        public: Option<bool>,
    },
    /// Assign an unassigned open case to the responder auto-assignment chooses (the retry of
    /// `--auto-assign`; refused when nobody eligible is under the cap).
    AutoAssign {
        /// Case.
        case_id: Key,
    },
    /// Assign a responsible.
    Assign {
        /// Case.
        case_id: Key,
        /// The version the client saw.
        version: i64,
        /// The new responsible.
        responsible_id: Key,
    },
    /// Log an action.
    LogAction {
        /// Case.
        case_id: Key,
        /// The action.
        action: NewAction,
    },
    /// Add a sighting to a case (any status: a sighting of a closed case is still a fact).
    AddSighting {
        /// Case.
        case_id: Key,
        /// The sighting.
        sighting: Box<NewSighting>,
    },
    /// Create a responsible contact.
    CreateResponsible(ResponsibleFields),
    /// Update (or deactivate) a responsible contact.
    UpdateResponsible {
        /// Contact.
        id: Key,
        /// The version the client saw.
        version: i64,
        /// Changed fields.
        fields: ResponsibleFields,
    },
}

/// What a command changes: each row's previous and new version, in write order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// `(before, after)` per written row.
    pub rows: Vec<(Option<Row>, Row)>,
    /// The id of the main row (the case, the responsible, the action).
    pub id: Key,
    /// The main row's new version (`None` for actions, which have none; 1 for a sighting).
    pub version: Option<i64>,
    /// What auto-assignment decided, when the write asked it to.
    pub auto: Option<Outcome>,
}

impl Command {
    /// Whether auto-assignment decides part of this command: a report filed without a
    /// responsible, or the retry's [`Command::AutoAssign`].
    pub fn wants_auto(&self) -> bool {
        match self {
            Command::CreateReport(r) => r.responsible_id.is_none(),
            Command::AutoAssign { .. } => true,
            _ => false,
        }
    }

    /// The table of the row a command is about (the one [`Plan::id`] names).
    pub(crate) fn main_table(&self) -> lpm_engine::model::Table {
        use lpm_engine::model::Table as T;
        match self {
            Command::CreateReport(_)
            | Command::UpdateCase { .. }
            | Command::Assign { .. }
            | Command::AutoAssign { .. } => T::CaseCases,
            Command::LogAction { .. } => T::CaseActions,
            Command::AddSighting { .. } => T::CaseSightings,
            Command::CreateResponsible(_) | Command::UpdateResponsible { .. } => {
                T::ResponsibleContacts
            }
        }
    }
}

impl Plan {
    /// The written version of row `id` of `table`, if the plan writes it.
    pub(crate) fn row(&self, table: lpm_engine::model::Table, id: Key) -> Option<&Row> {
        self.rows
            .iter()
            .map(|(_, after)| after)
            .find(|r| r.table() == table && r.key() == id)
    }
}

/// The current rows writes depend on. Equality is of content (a restart from a checkpoint
/// must rebuild the same ledger as a full replay).
#[derive(Debug, Default, PartialEq)]
pub struct Ledger {
    persons: HashMap<Key, Arc<Person>>,
    cases: HashMap<Key, Arc<Case>>,
    responsibles: HashMap<Key, Arc<Responsible>>,
    open_assignment: HashMap<Key, Arc<Assignment>>,
    next_id: [Key; lpm_engine::model::Table::COUNT],
    /// Open (`open`, `in_progress`) cases per responsible, derived from `cases` (absent: 0).
    open_load: HashMap<Key, i64>,
    /// The latest `assigned_at` per responsible, derived from the assignment history.
    last_assigned: HashMap<Key, EpochMs>,
    /// Open cases without a responsible, oldest first: `(opened_at, case id)`.
    unassigned: BTreeSet<(EpochMs, Key)>,
}

/// Why an [`Command::AutoAssign`] was refused when nobody could take the case.
pub const NO_ELIGIBLE: &str = "no eligible responder is under the auto-assignment cap";

/// Whether a case may go from `from` to `to`: open and in-progress move freely between them
/// and to any closing status; a closed case can only be reopened.
pub fn transition_allowed(from: &Status, to: &Status) -> bool {
    if from == to {
        return true;
    }
    match (from.is_open(), to.is_open()) {
        (true, _) => to.is_open() || to.is_closed(),
        (false, true) => *to == Status::Open,
        (false, false) => false,
    }
}

impl Ledger {
    /// Applies a row version read back from the log (startup) or just planned.
    pub fn apply(&mut self, row: &Row) {
        let idx = row.table().index();
        self.next_id[idx] = self.next_id[idx].max(row.key() + 1);
        match row {
            Row::Person(p) => {
                self.persons.insert(p.id, p.clone());
            }
            Row::Case(c) => {
                if let Some(old) = self.cases.insert(c.id, c.clone()) {
                    self.index_case(&old, -1);
                }
                self.index_case(c, 1);
            }
            Row::Responsible(r) => {
                self.responsibles.insert(r.id, r.clone());
            }
            Row::Assignment(h) => {
                let last = self.last_assigned.entry(h.responsible_id).or_default();
                *last = (*last).max(h.assigned_at);
                if h.unassigned_at.is_none() {
                    self.open_assignment.insert(h.case_id, h.clone());
                } else if self
                    .open_assignment
                    .get(&h.case_id)
                    .is_some_and(|o| o.id == h.id)
                {
                    self.open_assignment.remove(&h.case_id);
                }
            }
            Row::Action(_) | Row::Sighting(_) => {}
        }
    }

    /// Forgets a deleted row (only seen when replaying a log written by other tools).
    pub fn remove(&mut self, table: lpm_engine::model::Table, key: Key) {
        use lpm_engine::model::Table as T;
        match table {
            T::PersonsLost => drop(self.persons.remove(&key)),
            T::CaseCases => {
                if let Some(old) = self.cases.remove(&key) {
                    self.index_case(&old, -1);
                }
            }
            T::ResponsibleContacts => drop(self.responsibles.remove(&key)),
            T::CaseResponsibleHistory => self.open_assignment.retain(|_, h| h.id != key),
            T::CaseActions | T::CaseSightings => {}
        }
    }

    /// Adds (`sign` 1) or takes away (-1) `case` from the load and unassigned indexes.
    fn index_case(&mut self, case: &Case, sign: i64) {
        if !case.status.is_open() {
            return;
        }
        match case.responsible_id {
            Some(r) => {
                let n = self.open_load.entry(r).or_default();
                *n += sign;
                if *n == 0 {
                    self.open_load.remove(&r);
                }
            }
            None if sign > 0 => drop(self.unassigned.insert((case.opened_at, case.id))),
            None => drop(self.unassigned.remove(&(case.opened_at, case.id))),
        }
    }

    /// Sets what the ledger knows of a responsible's load (MySQL mode: a scratch ledger holds
    /// only the locked rows, so the transaction counts the load and seeds it here).
    pub(crate) fn seed_load(&mut self, id: Key, open_cases: i64, last_assigned: Option<EpochMs>) {
        if open_cases > 0 {
            self.open_load.insert(id, open_cases);
        }
        if let Some(t) = last_assigned {
            self.last_assigned.insert(id, t);
        }
    }

    /// The oldest open case without a responsible (the retry's next one).
    pub fn oldest_unassigned(&self) -> Option<Key> {
        self.unassigned.first().map(|(_, id)| *id)
    }

    /// Open cases of responsible `id`.
    pub fn open_cases_of(&self, id: Key) -> i64 {
        self.open_load.get(&id).copied().unwrap_or(0)
    }

    /// The active eligible responders with their loads.
    fn candidates(&self, eligible: &Eligible) -> Vec<Candidate> {
        eligible
            .contacts
            .iter()
            .filter(|id| self.responsibles.get(id).is_some_and(|r| r.active))
            .map(|&id| Candidate {
                id,
                open_cases: self.open_cases_of(id),
                last_assigned_at: self.last_assigned.get(&id).copied(),
            })
            .collect()
    }

    /// Makes the next id of `table` larger than `max_id` (MySQL mode seeds a scratch ledger
    /// with each table's `MAX(id)`).
    pub(crate) fn seed_max_id(&mut self, table: lpm_engine::model::Table, max_id: Key) {
        let n = &mut self.next_id[table.index()];
        *n = (*n).max(max_id + 1);
    }

    /// The current case.
    pub fn case(&self, id: Key) -> Option<&Arc<Case>> {
        self.cases.get(&id)
    }

    /// Every responsible contact.
    pub fn responsibles(&self) -> impl Iterator<Item = &Arc<Responsible>> {
        self.responsibles.values()
    }

    /// The current responsible.
    pub fn responsible(&self, id: Key) -> Option<&Arc<Responsible>> {
        self.responsibles.get(&id)
    }

    /// Number of cases.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    /// Ids of every case (for the demo trickle).
    pub fn case_ids(&self) -> impl Iterator<Item = Key> + '_ {
        self.cases.keys().copied()
    }

    /// Ids of active responsibles.
    pub fn active_responsibles(&self) -> Vec<Key> {
        let mut v: Vec<Key> = self
            .responsibles
            .values()
            .filter(|r| r.active)
            .map(|r| r.id)
            .collect();
        v.sort_unstable();
        v
    }

    fn id(&mut self, table: lpm_engine::model::Table) -> Key {
        let n = &mut self.next_id[table.index()];
        *n = (*n).max(1);
        let id = *n;
        *n += 1;
        id
    }

    fn active_responsible(&self, id: Key, field: &str) -> Result<Arc<Responsible>, SorError> {
        let r = self
            .responsibles
            .get(&id)
            .ok_or_else(|| SorError::invalid(field, format!("responsible {id} does not exist")))?;
        if !r.active {
            return Err(SorError::invalid(
                field,
                format!("responsible {id} is not active"),
            ));
        }
        Ok(r.clone())
    }

    fn current_case(&self, id: Key, version: Option<i64>) -> Result<Arc<Case>, SorError> {
        let case = self
            .cases
            .get(&id)
            .ok_or_else(|| SorError::NotFound(format!("case {id}")))?;
        if let Some(v) = version {
            if v != case.version {
                return Err(SorError::Conflict {
                    current: case.version,
                });
            }
        }
        Ok(case.clone())
    }

    /// Validates `cmd` against the current rows and computes the rows it writes, applying them
    /// to the ledger. The caller holds the ledger's lock until the record is queued in the log,
    /// so ids and versions are handed out in log order.
    pub fn execute(&mut self, cmd: Command, now: EpochMs) -> Result<Plan, SorError> {
        self.execute_with(cmd, now, None)
    }

    /// As [`execute`](Self::execute), with auto-assignment on (`eligible`): a report filed
    /// without a responsible goes to the responder [`choose`] picks among `eligible`.
    pub fn execute_with(
        &mut self,
        cmd: Command,
        now: EpochMs,
        eligible: Option<&Eligible>,
    ) -> Result<Plan, SorError> {
        let plan = self.plan(cmd, now, eligible)?;
        for (_, row) in &plan.rows {
            self.apply(row);
        }
        Ok(plan)
    }

    fn plan(
        &mut self,
        cmd: Command,
        now: EpochMs,
        eligible: Option<&Eligible>,
    ) -> Result<Plan, SorError> {
        use lpm_engine::model::Table as T;
        match cmd {
            Command::CreateReport(r) => {
                let mut responsible = r
                    .responsible_id
                    .map(|id| self.active_responsible(id, "responsible_id"))
                    .transpose()?;
                let auto = match (&responsible, eligible) {
                    (None, Some(e)) => Some(
                        match choose(&self.candidates(e), e.cap)
                            .and_then(|id| self.responsibles.get(&id).cloned())
                        {
                            Some(chosen) => {
                                let outcome = Outcome::Assigned(chosen.id);
                                responsible = Some(chosen);
                                outcome
                            }
                            None => Outcome::NoEligible,
                        },
                    ),
                    _ => None,
                };
                let first_by = match r.first_action.as_ref().and_then(|a| a.responsible_id) {
                    Some(id) => Some(self.active_responsible(id, "first_action.responsible_id")?),
                    None => responsible.clone(),
                };
                let r = *r;
                let at = r.reported_at.unwrap_or(now);
                let person = Arc::new(Person {
                    id: self.id(T::PersonsLost),
                    full_name: r.full_name,
                    age: r.age,
                    gender: r.gender,
                    last_seen_at: r.last_seen_at,
                    reported_at: at,
                    last_seen_place: r.last_seen_place,
                    latitude: r.latitude,
                    longitude: r.longitude,
                    description: r.description,
                    reporter_name: r.reporter_name,
                    reporter_phone: r.reporter_phone,
                    version: 1,
                });
                let case = Arc::new(Case {
                    id: self.id(T::CaseCases),
                    person_id: person.id,
                    status: Status::Open,
                    priority: r.priority,
                    responsible_id: responsible.as_ref().map(|x| x.id),
                    opened_at: at,
                    closed_at: None,
                    version: 1,
                    public: false,
                    public_id: None,
                });
                let mut rows = vec![(None, Row::Person(person)), (None, Row::Case(case.clone()))];
                if let Some(resp) = &responsible {
                    rows.push((None, Row::Assignment(self.assignment(case.id, resp.id, at))));
                    rows.push((
                        None,
                        Row::Action(
                            self.action(
                                case.id,
                                "assignment",
                                Some(
                                    LedgerNote::Assignment {
                                        responsible_name: resp.full_name.clone(),
                                        auto: auto.is_some(),
                                    }
                                    .text(),
                                ),
                                Some(resp),
                                at,
                            ),
                        ),
                    ));
                }
                if let Some(a) = r.first_action {
                    let row = self.action(case.id, &a.action_type, a.notes, first_by.as_ref(), at);
                    rows.push((None, Row::Action(row)));
                }
                Ok(Plan {
                    id: case.id,
                    version: Some(case.version),
                    rows,
                    auto,
                })
            }
            Command::UpdateCase {
                case_id,
                version,
                status,
                priority,
                public,
            } => {
                let old = self.current_case(case_id, Some(version))?;
                if status.is_none() && priority.is_none() && public.is_none() {
                    return Err(SorError::invalid(
                        "status",
                        "nothing to change: give status, priority and/or public",
                    ));
                }
                let mut new = Case::clone(&old);
                if let Some(public) = public {
                    new.public = public;
                    if public && new.public_id.is_none() {
                        new.public_id = Some(super::public_id::generate()?);
                    }
                }
                let mut rows = Vec::new();
                if let Some(to) = status {
                    if !transition_allowed(&old.status, &to) {
                        return Err(SorError::invalid(
                            "status",
                            format!(
                                "cannot go from {} to {} (a closed case can only be reopened)",
                                old.status.as_str(),
                                to.as_str()
                            ),
                        ));
                    }
                    if to != old.status {
                        new.closed_at = if to.is_closed() {
                            Some(old.closed_at.unwrap_or(now))
                        } else {
                            None
                        };
                        let by = old.responsible_id.and_then(|id| self.responsibles.get(&id));
                        let by = by.cloned();
                        let note = LedgerNote::status_change(&old.status, &to).text();
                        new.status = to;
                        rows.push((
                            None,
                            Row::Action(self.action(
                                case_id,
                                "status_change",
                                Some(note),
                                by.as_ref(),
                                now,
                            )),
                        ));
                    }
                }
                if let Some(p) = priority {
                    new.priority = p;
                }
                new.version = old.version + 1;
                let new = Arc::new(new);
                rows.insert(0, (Some(Row::Case(old)), Row::Case(new.clone())));
                Ok(Plan {
                    id: case_id,
                    version: Some(new.version),
                    rows,
                    auto: None,
                })
            }
            Command::Assign {
                case_id,
                version,
                responsible_id,
            } => {
                let old = self.current_case(case_id, Some(version))?;
                if !old.status.is_open() {
                    return Err(SorError::invalid(
                        "case",
                        "a closed case cannot be assigned; reopen it first",
                    ));
                }
                let resp = self.active_responsible(responsible_id, "responsible_id")?;
                if old.responsible_id == Some(responsible_id) {
                    return Err(SorError::invalid(
                        "responsible_id",
                        "the case is already assigned to this responsible",
                    ));
                }
                Ok(self.reassign(old, &resp, now, false))
            }
            Command::AutoAssign { case_id } => {
                let old = self.current_case(case_id, None)?;
                if !old.status.is_open() || old.responsible_id.is_some() {
                    return Err(SorError::invalid(
                        "case",
                        "only an open case without a responsible is assigned automatically",
                    ));
                }
                let chosen = eligible
                    .and_then(|e| choose(&self.candidates(e), e.cap))
                    .and_then(|id| self.responsibles.get(&id).cloned())
                    .ok_or_else(|| SorError::invalid("responsible_id", NO_ELIGIBLE))?;
                let mut plan = self.reassign(old, &chosen, now, true);
                plan.auto = Some(Outcome::Assigned(chosen.id));
                Ok(plan)
            }
            Command::LogAction { case_id, action } => {
                let case = self.current_case(case_id, None)?;
                let by = match action.responsible_id {
                    Some(id) => Some(self.active_responsible(id, "responsible_id")?),
                    None => case
                        .responsible_id
                        .and_then(|id| self.responsibles.get(&id))
                        .cloned(),
                };
                let row = self.action(case_id, &action.action_type, action.notes, by.as_ref(), now);
                Ok(Plan {
                    id: row.id,
                    version: None,
                    rows: vec![(None, Row::Action(row))],
                    auto: None,
                })
            }
            Command::AddSighting { case_id, sighting } => {
                self.current_case(case_id, None)?;
                let s = *sighting;
                let row = Arc::new(Sighting {
                    id: self.id(T::CaseSightings),
                    case_id,
                    seen_at: s.seen_at,
                    place: s.place,
                    latitude: s.latitude,
                    longitude: s.longitude,
                    description: s.description,
                    reporter_name: s.reporter_name,
                    reporter_phone: s.reporter_phone,
                    source: s.source,
                    created_at: now,
                    version: 1,
                });
                Ok(Plan {
                    id: row.id,
                    version: Some(row.version),
                    rows: vec![(None, Row::Sighting(row))],
                    auto: None,
                })
            }
            Command::CreateResponsible(f) => {
                let r = Arc::new(Responsible {
                    id: self.id(T::ResponsibleContacts),
                    full_name: f
                        .full_name
                        .ok_or_else(|| SorError::invalid("full_name", "required"))?,
                    agency: f
                        .agency
                        .ok_or_else(|| SorError::invalid("agency", "required"))?,
                    phone: f.phone.flatten(),
                    email: f.email.flatten(),
                    active: f.active.unwrap_or(true),
                    version: 1,
                });
                Ok(Plan {
                    id: r.id,
                    version: Some(1),
                    rows: vec![(None, Row::Responsible(r))],
                    auto: None,
                })
            }
            Command::UpdateResponsible {
                id,
                version,
                fields,
            } => {
                let old = self
                    .responsibles
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| SorError::NotFound(format!("responsible {id}")))?;
                if old.version != version {
                    return Err(SorError::Conflict {
                        current: old.version,
                    });
                }
                let mut new = Responsible::clone(&old);
                if let Some(v) = fields.full_name {
                    new.full_name = v;
                }
                if let Some(v) = fields.agency {
                    new.agency = v;
                }
                if let Some(v) = fields.phone {
                    new.phone = v;
                }
                if let Some(v) = fields.email {
                    new.email = v;
                }
                if let Some(v) = fields.active {
                    new.active = v;
                }
                new.version += 1;
                let new = Arc::new(new);
                Ok(Plan {
                    id,
                    version: Some(new.version),
                    rows: vec![(Some(Row::Responsible(old)), Row::Responsible(new))],
                    auto: None,
                })
            }
        }
    }

    /// The rows of assigning open case `old` to `resp`: the open history row closed, a new one,
    /// the case's new version, and an `assignment` action (`auto`: chosen by auto-assignment).
    fn reassign(
        &mut self,
        old: Arc<Case>,
        resp: &Arc<Responsible>,
        now: EpochMs,
        auto: bool,
    ) -> Plan {
        let case_id = old.id;
        let mut rows = Vec::new();
        if let Some(open) = self.open_assignment.get(&case_id).cloned() {
            let mut closed = Assignment::clone(&open);
            closed.unassigned_at = Some(now);
            rows.push((
                Some(Row::Assignment(open)),
                Row::Assignment(Arc::new(closed)),
            ));
        }
        rows.push((
            None,
            Row::Assignment(self.assignment(case_id, resp.id, now)),
        ));
        let mut new = Case::clone(&old);
        new.responsible_id = Some(resp.id);
        new.version = old.version + 1;
        let new = Arc::new(new);
        rows.insert(0, (Some(Row::Case(old)), Row::Case(new.clone())));
        let note = LedgerNote::Assignment {
            responsible_name: resp.full_name.clone(),
            auto,
        };
        let action = self.action(case_id, "assignment", Some(note.text()), Some(resp), now);
        rows.push((None, Row::Action(action)));
        Plan {
            id: case_id,
            version: Some(new.version),
            rows,
            auto: None,
        }
    }

    fn assignment(&mut self, case_id: Key, responsible_id: Key, at: EpochMs) -> Arc<Assignment> {
        Arc::new(Assignment {
            id: self.id(lpm_engine::model::Table::CaseResponsibleHistory),
            case_id,
            responsible_id,
            assigned_at: at,
            unassigned_at: None,
        })
    }

    fn action(
        &mut self,
        case_id: Key,
        action_type: &str,
        notes: Option<String>,
        by: Option<&Arc<Responsible>>,
        at: EpochMs,
    ) -> Arc<Action> {
        Arc::new(Action {
            id: self.id(lpm_engine::model::Table::CaseActions),
            case_id,
            action_type: action_type.to_string(),
            notes,
            responsible_id: by.map(|r| r.id),
            responsible_name: by.map(|r| r.full_name.clone()),
            created_at: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ledger: &mut Ledger, responsible: Option<Key>) -> Plan {
        let r = NewReport {
            full_name: "María Peña".into(),
            age: Some(15),
            gender: "female".into(),
            last_seen_at: 0,
            last_seen_place: "Quito".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            priority: Priority::High,
            responsible_id: responsible,
            first_action: None,
            reported_at: None,
        };
        ledger
            .execute(Command::CreateReport(Box::new(r)), 1_000)
            .expect("report")
    }

    fn responsible(ledger: &mut Ledger, name: &str) -> Key {
        let f = ResponsibleFields {
            full_name: Some(name.into()),
            agency: Some("ECU 911".into()),
            ..Default::default()
        };
        ledger
            .execute(Command::CreateResponsible(f), 0)
            .expect("responsible")
            .id
    }

    #[test]
    fn a_report_creates_person_case_assignment_and_action() {
        let mut l = Ledger::default();
        let r = responsible(&mut l, "Ana");
        let plan = report(&mut l, Some(r));
        let tables: Vec<_> = plan.rows.iter().map(|(_, r)| r.table().name()).collect();
        assert_eq!(
            tables,
            [
                "persons_lost",
                "case_cases",
                "case_responsible_history",
                "case_actions"
            ]
        );
        assert_eq!(l.case(plan.id).map(|c| c.responsible_id), Some(Some(r)));
    }

    #[test]
    fn stale_versions_conflict_and_transitions_are_checked() {
        let mut l = Ledger::default();
        let id = report(&mut l, None).id;
        let upd = |status: Status, version| Command::UpdateCase {
            case_id: id,
            version,
            status: Some(status),
            priority: None,
            public: None,
        };
        let p = l.execute(upd(Status::FoundAlive, 1), 5_000).expect("close");
        assert_eq!(p.version, Some(2));
        assert_eq!(l.case(id).and_then(|c| c.closed_at), Some(5_000));
        assert!(matches!(
            l.execute(upd(Status::Open, 1), 6_000),
            Err(SorError::Conflict { current: 2 })
        ));
        assert!(matches!(
            l.execute(upd(Status::Closed, 2), 6_000),
            Err(SorError::Invalid { .. })
        ));
        l.execute(upd(Status::Open, 2), 7_000).expect("reopen");
        assert_eq!(l.case(id).and_then(|c| c.closed_at), None);
    }

    #[test]
    fn publishing_makes_a_public_id_once_and_keeps_it() {
        let mut l = Ledger::default();
        let id = report(&mut l, None).id;
        assert_eq!(
            l.case(id).map(|c| (c.public, c.public_id.clone())),
            Some((false, None))
        );
        let publish = |public, version| Command::UpdateCase {
            case_id: id,
            version,
            status: None,
            priority: None,
            public: Some(public),
        };
        let p = l.execute(publish(true, 1), 2_000).expect("publish");
        assert_eq!(p.version, Some(2));
        assert_eq!(p.rows.len(), 1, "no action row for a publication");
        let first = l.case(id).and_then(|c| c.public_id.clone()).expect("an id");
        assert_eq!(first.len(), super::super::public_id::LEN);
        l.execute(publish(false, 2), 3_000).expect("unpublish");
        let c = l.case(id).expect("case");
        assert!(!c.public);
        assert_eq!(
            c.public_id.as_deref(),
            Some(first.as_str()),
            "kept while unpublished"
        );
        l.execute(publish(true, 3), 4_000).expect("republish");
        let c = l.case(id).expect("case");
        assert!(c.public);
        assert_eq!(
            c.public_id.as_deref(),
            Some(first.as_str()),
            "the same link again"
        );
        assert!(matches!(
            l.execute(publish(false, 1), 5_000),
            Err(SorError::Conflict { current: 4 })
        ));
    }

    #[test]
    fn reassignment_closes_the_open_history_row() {
        let mut l = Ledger::default();
        let (a, b) = (responsible(&mut l, "Ana"), responsible(&mut l, "Beto"));
        let id = report(&mut l, Some(a)).id;
        let plan = l
            .execute(
                Command::Assign {
                    case_id: id,
                    version: 1,
                    responsible_id: b,
                },
                9_000,
            )
            .expect("assign");
        let closed = plan.rows.iter().find_map(|(before, after)| match after {
            Row::Assignment(h) if before.is_some() => Some(h.clone()),
            _ => None,
        });
        assert_eq!(closed.and_then(|h| h.unassigned_at), Some(9_000));
        assert!(matches!(
            l.execute(
                Command::Assign {
                    case_id: id,
                    version: 2,
                    responsible_id: 99
                },
                9_500
            ),
            Err(SorError::Invalid { .. })
        ));
    }

    #[test]
    fn seeded_ids_continue_after_the_largest_existing_one() {
        // MySQL mode: a scratch ledger knows only the locked rows, so ids come from MAX(id)
        let mut l = Ledger::default();
        l.seed_max_id(lpm_engine::model::Table::PersonsLost, 41);
        l.seed_max_id(lpm_engine::model::Table::CaseCases, 7);
        let plan = report(&mut l, None);
        assert_eq!(plan.id, 8);
        assert_eq!(plan.rows[0].1.key(), 42);
        let case = plan.row(lpm_engine::model::Table::CaseCases, 8);
        assert!(matches!(case, Some(Row::Case(c)) if c.person_id == 42));
        // seeding never moves a counter back
        l.seed_max_id(lpm_engine::model::Table::CaseCases, 1);
        assert_eq!(report(&mut l, None).id, 9);
    }

    fn auto_report(l: &mut Ledger, eligible: &Eligible, at: EpochMs) -> Plan {
        let r = NewReport {
            full_name: "Auto".into(),
            age: None,
            gender: "unknown".into(),
            last_seen_at: 0,
            last_seen_place: "Loja".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            priority: Priority::Medium,
            responsible_id: None,
            first_action: None,
            reported_at: None,
        };
        l.execute_with(Command::CreateReport(Box::new(r)), at, Some(eligible))
            .expect("report")
    }

    #[test]
    fn auto_assignment_follows_the_rule_and_stops_at_the_cap() {
        let mut l = Ledger::default();
        let (a, b, c) = (
            responsible(&mut l, "Ana"),
            responsible(&mut l, "Beto"),
            responsible(&mut l, "Cami"),
        );
        let off = responsible(&mut l, "Dora"); // not present: never chosen
        let manual = report(&mut l, Some(c)).id; // c: load 1, assigned at 1 000
        let e = Eligible {
            contacts: vec![a, b, c],
            cap: 2,
        };
        let got: Vec<Option<Outcome>> = (0..6)
            .map(|i| auto_report(&mut l, &e, 2_000 + i).auto)
            .collect();
        use Outcome::{Assigned, NoEligible};
        assert_eq!(
            got,
            [
                Some(Assigned(a)),
                Some(Assigned(b)),
                Some(Assigned(c)),
                Some(Assigned(a)),
                Some(Assigned(b)),
                Some(NoEligible)
            ]
        );
        assert_eq!(
            [a, b, c, off].map(|r| l.open_cases_of(r)),
            [2, 2, 2, 0],
            "the cap holds"
        );
        // the action says it was automatic; the manual one says not
        let auto_note = auto_report(
            &mut l,
            &Eligible {
                contacts: vec![off],
                cap: 2,
            },
            3_000,
        )
        .rows
        .iter()
        .find_map(|(_, r)| match r {
            Row::Action(x) => LedgerNote::of(x),
            _ => None,
        });
        assert_eq!(
            auto_note,
            Some(LedgerNote::Assignment {
                responsible_name: "Dora".into(),
                auto: true
            })
        );
        // closing a case lowers the load; the oldest waiting case is the retry's
        let waiting = l.oldest_unassigned().expect("a waiting case");
        l.execute(
            Command::UpdateCase {
                case_id: manual,
                version: 1,
                status: Some(Status::Closed),
                priority: None,
                public: None,
            },
            4_000,
        )
        .expect("close");
        assert_eq!(l.open_cases_of(c), 1);
        let plan = l
            .execute_with(Command::AutoAssign { case_id: waiting }, 5_000, Some(&e))
            .expect("retry");
        assert_eq!(plan.auto, Some(Assigned(c)));
        assert_eq!(l.open_cases_of(c), 2);
        assert_eq!(l.oldest_unassigned(), None);
        // nobody under the cap: the retry is refused, naming responsible_id
        let next = auto_report(&mut l, &e, 6_000);
        assert_eq!(next.auto, Some(NoEligible));
        assert!(matches!(
            l.execute_with(Command::AutoAssign { case_id: next.id }, 7_000, Some(&e)),
            Err(SorError::Invalid { field, .. }) if field == "responsible_id"
        ));
        // a person may assign past the cap
        l.execute(
            Command::Assign {
                case_id: next.id,
                version: 1,
                responsible_id: a,
            },
            8_000,
        )
        .expect("manual past the cap");
        assert_eq!(l.open_cases_of(a), 3);
    }

    #[test]
    fn derived_loads_match_a_rebuild_from_the_rows() {
        let mut l = Ledger::default();
        let (a, b) = (responsible(&mut l, "Ana"), responsible(&mut l, "Beto"));
        let e = Eligible {
            contacts: vec![a, b],
            cap: 50,
        };
        let mut rows = Vec::new();
        for i in 0..5 {
            rows.extend(auto_report(&mut l, &e, 1_000 + i).rows);
        }
        let mut rebuilt = Ledger::default();
        for r in l.responsibles().cloned().collect::<Vec<_>>() {
            rebuilt.apply(&Row::Responsible(r));
        }
        for (_, r) in &rows {
            rebuilt.apply(r);
        }
        assert_eq!(rebuilt, l);
        assert_eq!((l.open_cases_of(a), l.open_cases_of(b)), (3, 2));
    }

    #[test]
    fn transitions_table() {
        use Status::*;
        assert!(transition_allowed(&Open, &InProgress));
        assert!(transition_allowed(&InProgress, &Open));
        assert!(transition_allowed(&InProgress, &FoundDeceased));
        assert!(transition_allowed(&Closed, &Open));
        assert!(!transition_allowed(&Closed, &InProgress));
        assert!(!transition_allowed(&FoundAlive, &Closed));
    }
}
