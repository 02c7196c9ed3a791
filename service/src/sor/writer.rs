//! `Writer`: the system of record a server writes to, whichever it is. Routes get one from
//! `AppState::writer()` in lpm-api and never look at which.

use std::sync::Arc;

use lpm_engine::model::{Key, Responsible};

use super::ledger::Command;
use super::mysql::{MysqlSor, RETRY_AFTER_SECS};
use super::{Committed, EmbeddedSor, SorError};

/// The active system of record.
#[derive(Clone)]
pub enum Writer {
    /// The embedded fsync'd log (`lpm serve`).
    Embedded(Arc<EmbeddedSor>),
    /// MySQL (`lpm serve --mysql`).
    Mysql(Arc<MysqlSor>),
}

/// How long a client should wait before retrying a write the embedded log could not take.
pub const EMBEDDED_RETRY_AFTER_SECS: u64 = 5;

/// A failed write, and how long to wait before retrying it when it is temporary: MySQL
/// recovers sooner than a failing disk, so its `Retry-After` is shorter.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct WriteError {
    /// What went wrong.
    pub error: SorError,
    /// Seconds to wait before retrying an [`SorError::Unavailable`].
    pub retry_after: u64,
}

fn embedded_error(error: SorError) -> WriteError {
    WriteError {
        error,
        retry_after: EMBEDDED_RETRY_AFTER_SECS,
    }
}

fn mysql_error(error: SorError) -> WriteError {
    WriteError {
        error,
        retry_after: RETRY_AFTER_SECS,
    }
}

impl Writer {
    /// Validates and writes `cmd` as `actor`.
    pub async fn submit(&self, cmd: Command, actor: String) -> Result<Committed, WriteError> {
        match self {
            Writer::Embedded(sor) => sor.submit_async(cmd, actor).await.map_err(embedded_error),
            Writer::Mysql(sor) => sor.submit(cmd, &actor).await.map_err(mysql_error),
        }
    }

    /// The oldest open case without a responsible (auto-assignment's retry).
    pub async fn oldest_unassigned(&self) -> Result<Option<Key>, WriteError> {
        match self {
            Writer::Embedded(sor) => Ok(sor.oldest_unassigned()),
            Writer::Mysql(sor) => sor.oldest_unassigned().await.map_err(mysql_error),
        }
    }

    /// Every contact, by id, from the system of record (MySQL down: 503).
    pub async fn responsibles(&self) -> Result<Vec<Arc<Responsible>>, WriteError> {
        match self {
            Writer::Embedded(sor) => Ok(sor.responsibles()),
            Writer::Mysql(sor) => sor.responsibles().await.map_err(mysql_error),
        }
    }
}
