//! `Writer`: the system of record a server writes to, whichever it is. Routes get one from
//! `AppState::writer()` and never look at which.

use std::sync::Arc;

use lpm_engine::model::Responsible;

use super::ledger::Command;
use super::mysql::{MysqlSor, RETRY_AFTER_SECS};
use super::{Committed, EmbeddedSor, SorError};
use crate::error::{ApiError, ApiResult};

/// The active system of record.
#[derive(Clone)]
pub enum Writer {
    /// The embedded fsync'd log (`lpm serve`).
    Embedded(Arc<EmbeddedSor>),
    /// MySQL (`lpm serve --mysql`).
    Mysql(Arc<MysqlSor>),
}

/// MySQL failures answer 503 with a shorter `Retry-After` than the embedded log's.
fn mysql_error(e: SorError) -> ApiError {
    match e {
        SorError::Unavailable(message) => ApiError::Unavailable {
            message,
            retry_after: RETRY_AFTER_SECS,
        },
        other => other.into(),
    }
}

impl Writer {
    /// Validates and writes `cmd` as `actor`.
    pub async fn submit(&self, cmd: Command, actor: String) -> ApiResult<Committed> {
        match self {
            Writer::Embedded(sor) => sor.submit_async(cmd, actor).await,
            Writer::Mysql(sor) => sor.submit(cmd, &actor).await.map_err(mysql_error),
        }
    }

    /// Every contact, by id, from the system of record (MySQL down: 503).
    pub async fn responsibles(&self) -> ApiResult<Vec<Arc<Responsible>>> {
        match self {
            Writer::Embedded(sor) => Ok(sor.responsibles()),
            Writer::Mysql(sor) => sor.responsibles().await.map_err(mysql_error),
        }
    }
}
