//! Connector errors. [`DecodeError::reason`] is the stable label used in metrics and dead letters.

/// A DDL the catalog cannot read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Malformed DDL.
    #[error("schema syntax: {0}")]
    Syntax(String),
    /// A column type we do not know how Debezium encodes.
    #[error("table {table}, column {column}: unknown type {ty}")]
    UnknownType {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The type text.
        ty: String,
    },
    /// No primary key declared.
    #[error("table {0} has no primary key")]
    NoPrimaryKey(String),
}

/// Why one message could not be decoded. The message is dead-lettered and ingestion goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The dump line is not a kcat `-J` record.
    #[error("not a kcat -J record: {0}")]
    BadRecord(String),
    /// The key or value is not valid JSON.
    #[error("invalid JSON in the {part}: {detail}")]
    Json {
        /// `key` or `value`.
        part: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// The value is not a Debezium envelope nor a flattened row.
    #[error("not a Debezium change event: {0}")]
    NotAnEvent(String),
    /// An `op` we do not know.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// No usable primary key in the key or the row.
    #[error("no primary key: {0}")]
    MissingKey(String),
    /// `c`/`r`/`u` without an `after` row.
    #[error("op {0} without an after image")]
    MissingAfter(String),
    /// A NOT NULL column is NULL or absent (e.g. a MINIMAL row image).
    #[error("column {column} is NOT NULL but the event has no value")]
    NullInNotNull {
        /// The column.
        column: String,
    },
    /// A value that does not fit its column's type.
    #[error("column {column}: {detail}")]
    BadValue {
        /// The column.
        column: String,
        /// What is wrong.
        detail: String,
    },
    /// The topic's events changed shape (full envelope vs flattened) mid-stream.
    #[error("topic {0} switched envelope kind")]
    EnvelopeMismatch(String),
    /// ExtractNewRecordState in `drop` mode cannot express deletes; such a topic is refused.
    #[error("flattened record without __deleted or __op: deletes would be lost")]
    FlattenedWithoutDeletes,
}

impl DecodeError {
    /// A stable, bounded label for metrics and dead letters.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::BadRecord(_) => "bad_record",
            DecodeError::Json { .. } => "invalid_json",
            DecodeError::NotAnEvent(_) => "not_an_event",
            DecodeError::UnknownOp(_) => "unknown_op",
            DecodeError::MissingKey(_) => "missing_key",
            DecodeError::MissingAfter(_) => "missing_after",
            DecodeError::NullInNotNull { .. } => "null_in_not_null",
            DecodeError::BadValue { .. } => "bad_value",
            DecodeError::EnvelopeMismatch(_) => "envelope_mismatch",
            DecodeError::FlattenedWithoutDeletes => "flattened_without_deletes",
        }
    }
}

/// A topic dump that cannot be read, or not to its end.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Reading stopped at an error before the end of the input: a truncated or corrupt gzip,
    /// or an I/O error. The records before it were delivered; the rest of the input was not.
    #[error(
        "reading {path} failed after {records} records (truncated or corrupt input): {source}"
    )]
    Truncated {
        /// The path (`-` for stdin).
        path: String,
        /// Complete records (lines) read before the error.
        records: u64,
        /// The error.
        source: std::io::Error,
    },
}
