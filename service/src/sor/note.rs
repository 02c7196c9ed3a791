//! The notes the ledger writes itself, on the `status_change` and `assignment` actions it adds
//! to a case's timeline, as typed values: written here and parsed back here, nowhere else.
//!
//! They are stored as text in `case_actions.notes` because that column is the source schema's
//! (Debezium, MySQL, the sister systems read it), and the stored text stays as the original
//! system wrote it: `open -> in_progress`, `Asignado a / assigned to Ana Pérez`. Readers (the
//! API's `note` field, then the web UI and the PDFs) get the typed value and render it in their
//! own language; a note that does not parse (typed by a person, or from an older writer) stays
//! free text.

use lpm_engine::model::{Action, Status};

/// What the stored text of an assignment note starts with (bilingual: it predates i18n).
const ASSIGNED_TO: &str = "Asignado a / assigned to ";
/// What the stored text of an automatic assignment's note starts with (`--auto-assign`).
const AUTO_ASSIGNED_TO: &str = "Asignado automáticamente a / auto-assigned to ";
/// Between the old and the new status of a status-change note.
const ARROW: &str = " -> ";

/// A note the ledger writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerNote {
    /// A `status_change` action: the status codes before and after.
    StatusChange {
        /// The old status code, e.g. `open`.
        from: String,
        /// The new status code, e.g. `in_progress`.
        to: String,
    },
    /// An `assignment` action: the name of the responsible the case went to.
    Assignment {
        /// Their full name at the time.
        responsible_name: String,
        /// Chosen by auto-assignment (`mode: auto`) rather than by a person.
        auto: bool,
    },
}

impl LedgerNote {
    /// A status change from `from` to `to`.
    pub fn status_change(from: &Status, to: &Status) -> LedgerNote {
        LedgerNote::StatusChange {
            from: from.as_str().to_string(),
            to: to.as_str().to_string(),
        }
    }

    /// The action type the note belongs to.
    pub fn action_type(&self) -> &'static str {
        match self {
            LedgerNote::StatusChange { .. } => "status_change",
            LedgerNote::Assignment { .. } => "assignment",
        }
    }

    /// The text stored in `case_actions.notes`.
    pub fn text(&self) -> String {
        match self {
            LedgerNote::StatusChange { from, to } => format!("{from}{ARROW}{to}"),
            LedgerNote::Assignment {
                responsible_name,
                auto: false,
            } => format!("{ASSIGNED_TO}{responsible_name}"),
            LedgerNote::Assignment {
                responsible_name,
                auto: true,
            } => format!("{AUTO_ASSIGNED_TO}{responsible_name}"),
        }
    }

    /// The typed note of `action`, or `None` when its notes are not one the ledger writes.
    pub fn of(action: &Action) -> Option<LedgerNote> {
        LedgerNote::parse(&action.action_type, action.notes.as_deref()?)
    }

    /// The typed note of an action of `action_type` whose stored notes are `notes`, or `None`
    /// when it is not one the ledger writes.
    pub fn parse(action_type: &str, notes: &str) -> Option<LedgerNote> {
        match action_type {
            "status_change" => {
                let (from, to) = notes.split_once(ARROW)?;
                let code = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                (code(from) && code(to)).then(|| LedgerNote::StatusChange {
                    from: from.to_string(),
                    to: to.to_string(),
                })
            }
            "assignment" => {
                let (name, auto) = match notes.strip_prefix(AUTO_ASSIGNED_TO) {
                    Some(name) => (name, true),
                    None => (notes.strip_prefix(ASSIGNED_TO)?, false),
                };
                (!name.trim().is_empty()).then(|| LedgerNote::Assignment {
                    responsible_name: name.to_string(),
                    auto,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_note_reads_back_as_written() {
        let notes = [
            LedgerNote::status_change(&Status::Open, &Status::InProgress),
            LedgerNote::status_change(&Status::InProgress, &Status::FoundAlive),
            LedgerNote::Assignment {
                responsible_name: "Ana Pérez -> Núñez".into(),
                auto: false,
            },
            LedgerNote::Assignment {
                responsible_name: "Ana Pérez".into(),
                auto: true,
            },
        ];
        for n in notes {
            assert_eq!(
                LedgerNote::parse(n.action_type(), &n.text()),
                Some(n.clone())
            );
        }
    }

    #[test]
    fn the_stored_text_is_the_original_systems() {
        assert_eq!(
            LedgerNote::status_change(&Status::Open, &Status::Closed).text(),
            "open -> closed"
        );
        assert_eq!(
            LedgerNote::Assignment {
                responsible_name: "Ana".into(),
                auto: false,
            }
            .text(),
            "Asignado a / assigned to Ana"
        );
        assert_eq!(
            LedgerNote::Assignment {
                responsible_name: "Ana".into(),
                auto: true,
            }
            .text(),
            "Asignado automáticamente a / auto-assigned to Ana"
        );
    }

    #[test]
    fn free_text_stays_free_text() {
        for (kind, text) in [
            ("status_change", "reopened by phone"),
            ("status_change", "open -> in progress"),
            ("status_change", "open -> "),
            ("assignment", "assigned by radio"),
            ("assignment", "Asignado a / assigned to  "),
            ("note", "open -> closed"),
            ("search", "Asignado a / assigned to Ana"),
        ] {
            assert_eq!(LedgerNote::parse(kind, text), None, "{kind}: {text}");
        }
    }
}
