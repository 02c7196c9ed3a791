//! The notes the system writes on its own actions, as data the reports render per language.

/// A note the system wrote on its own action, as data (the service's `LedgerNote`, without a
/// dependency on it: this crate takes plain data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionNote {
    /// The status went from one code to another (`open`, `in_progress`, ...).
    StatusChange {
        /// Old status code.
        from: String,
        /// New status code.
        to: String,
    },
    /// The case was assigned to this responsible.
    Assignment {
        /// Their name at the time.
        responsible_name: String,
    },
}
