//! The retry of unassigned cases: woken when a linked responder arrives (signs in, or comes
//! back after the TTL) or a responder's load drops (a case closed or reassigned), it assigns
//! the oldest open unassigned case with the same rule and cap as a filing, then the next, until
//! none is left or nobody eligible is under the cap.

use std::sync::Arc;

use super::super::ledger::Command;
use super::super::writer::Writer;
use super::super::SorError;
use super::{AutoAssign, ACTOR};

/// At most this many cases per wake-up, so one wake-up cannot hold the writer forever; the
/// next arrival or dropped load continues.
const MAX_PER_WAKE: usize = 10_000;

/// Runs the retry on the current runtime until aborted (shutdown).
pub fn spawn(writer: Writer, auto: Arc<AutoAssign>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            auto.presence().woken().await;
            let n = drain(&writer, &auto).await;
            if n > 0 {
                tracing::info!(cases = n, "Auto-assignment retry assigned waiting cases.");
            }
        }
    })
}

/// Assigns waiting cases, oldest first, until none is left or nobody eligible is under the cap;
/// how many it assigned.
pub async fn drain(writer: &Writer, auto: &AutoAssign) -> usize {
    let mut assigned = 0;
    while assigned < MAX_PER_WAKE {
        if auto.presence().eligible_contacts().is_empty() {
            break;
        }
        let case_id = match writer.oldest_unassigned().await {
            Ok(Some(id)) => id,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "Auto-assignment retry could not read waiting cases.");
                break;
            }
        };
        match writer
            .submit(Command::AutoAssign { case_id }, ACTOR.to_string())
            .await
        {
            Ok(_) => assigned += 1,
            // everyone present is at the cap: the next arrival or dropped load tries again
            Err(e) if matches!(&e.error, SorError::Invalid { field, .. } if field == "responsible_id") => {
                break
            }
            Err(e) => {
                tracing::warn!(error = %e, case_id, "Auto-assignment retry failed.");
                break;
            }
        }
    }
    assigned
}
