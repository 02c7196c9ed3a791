//! The sink's MySQL side: schema creation, reading the stored state, and the one transaction
//! that writes a group of ticks (rows + source position, atomically).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Params, Row, TxOpts, Value};

use super::tables::{self, Cell, Image, KeyKind, TableChanges, STATE_TABLE, TABLES};
use super::SinkError;
use crate::position::{Coverage, SourcePosition};

/// Rows per multi-row `INSERT` / `DELETE … IN` statement.
const CHUNK: usize = 500;

/// Opens a connection and creates the tables if they are missing.
pub async fn connect(opts: &Opts) -> Result<Conn, SinkError> {
    let mut conn = Conn::new(opts.clone()).await?;
    for stmt in tables::create_statements() {
        conn.query_drop(stmt).await?;
    }
    Ok(conn)
}

/// The position stored for `sink_id`, if any.
pub async fn stored_position(
    conn: &mut Conn,
    sink_id: &str,
) -> Result<Option<SourcePosition>, SinkError> {
    let text: Option<String> = conn
        .exec_first(
            format!("SELECT `position` FROM `{STATE_TABLE}` WHERE `sink_id` = ?"),
            (sink_id,),
        )
        .await?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| SinkError::BadState(e.to_string())))
        .transpose()
}

/// What one transaction writes.
pub struct Write<'a> {
    /// The sink's id (the `agg_sink_state` row).
    pub sink_id: &'a str,
    /// The last tick the group covers.
    pub tick: u64,
    /// The source position that tick covers.
    pub position: &'a SourcePosition,
    /// The views' rows at `tick`.
    pub image: &'a Image,
    /// What the tables held after the last committed transaction of this process; `None`
    /// reconciles (reads every table's keys, deletes strays, upserts every row).
    pub written: Option<&'a Image>,
}

/// What a committed transaction did.
#[derive(Debug)]
pub struct Committed {
    /// Rows upserted or deleted.
    pub rows: usize,
    /// Whether it was a full reconcile.
    pub reconciled: bool,
}

/// One transaction: lock this sink's state row, check that the stored position is not ahead of
/// ours (another process with the same sink id may have written newer state), write the
/// changed rows, store the position, commit. Any error leaves the tables as they were.
pub async fn write(conn: &mut Conn, w: Write<'_>) -> Result<Committed, SinkError> {
    let position = serde_json::to_string(w.position)
        .map_err(|e| SinkError::BadState(format!("position did not serialise: {e}")))?;
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let stored: Option<String> = tx
        .exec_first(
            format!("SELECT `position` FROM `{STATE_TABLE}` WHERE `sink_id` = ? FOR UPDATE"),
            (w.sink_id,),
        )
        .await?;
    if let Some(text) = stored {
        let stored: SourcePosition =
            serde_json::from_str(&text).map_err(|e| SinkError::BadState(e.to_string()))?;
        if w.position.coverage(&stored) == Coverage::Behind {
            tx.rollback().await?;
            return Err(SinkError::Ahead(Box::new(stored)));
        }
    }
    let changes = match w.written {
        Some(old) => tables::diff(old, w.image),
        None => {
            let mut present = Vec::with_capacity(TABLES.len());
            for t in &TABLES {
                present.push(keys(&mut tx, t.name, t.key.0, t.key_kind).await?);
            }
            tables::reconcile(&present, w.image)
        }
    };
    let mut rows = 0;
    for (t, c) in TABLES.iter().zip(&changes) {
        apply(&mut tx, t, c).await?;
        rows += c.len();
    }
    tx.exec_drop(
        format!(
            "INSERT INTO `{STATE_TABLE}` (`sink_id`, `tick`, `position`, `rows`) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE `tick` = VALUES(`tick`), `position` = VALUES(`position`), \
             `rows` = VALUES(`rows`)"
        ),
        (w.sink_id, w.tick, position, w.image.len() as u64),
    )
    .await?;
    tx.commit().await?;
    Ok(Committed {
        rows,
        reconciled: w.written.is_none(),
    })
}

/// Every key a table holds.
async fn keys(
    tx: &mut mysql_async::Transaction<'_>,
    table: &str,
    key: &str,
    kind: KeyKind,
) -> Result<Vec<Cell>, SinkError> {
    let rows: Vec<Row> = tx.query(format!("SELECT `{key}` FROM `{table}`")).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(v) = row.get::<Value, _>(0) else {
            continue;
        };
        let cell = match kind {
            KeyKind::Int => Cell::Int(
                mysql_async::from_value_opt::<i64>(v)
                    .map_err(|e| SinkError::BadState(format!("{table}.{key}: {e}")))?,
            ),
            KeyKind::Text => Cell::Text(
                mysql_async::from_value_opt::<String>(v)
                    .map_err(|e| SinkError::BadState(format!("{table}.{key}: {e}")))?,
            ),
        };
        out.push(cell);
    }
    Ok(out)
}

/// Writes one table's changes: multi-row upserts (absolute values, so applying a tick twice
/// changes nothing) and deletes.
async fn apply(
    tx: &mut mysql_async::Transaction<'_>,
    t: &tables::AggTable,
    c: &TableChanges,
) -> Result<(), SinkError> {
    let mut names = vec![t.key.0];
    names.extend(t.columns.iter().map(|(n, _)| *n));
    let cols = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let updates = t
        .columns
        .iter()
        .map(|(n, _)| format!("`{n}` = VALUES(`{n}`)"))
        .collect::<Vec<_>>()
        .join(", ");
    let tuple = format!("({})", vec!["?"; names.len()].join(", "));
    for chunk in c.upserts.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO `{}` ({cols}) VALUES {} ON DUPLICATE KEY UPDATE {updates}",
            t.name,
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        let params: Vec<Value> = chunk
            .iter()
            .flat_map(|(k, vs)| std::iter::once(k).chain(vs).map(Cell::to_sql))
            .collect();
        tx.exec_drop(sql, Params::Positional(params)).await?;
    }
    for chunk in c.deletes.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM `{}` WHERE `{}` IN ({})",
            t.name,
            t.key.0,
            vec!["?"; chunk.len()].join(", ")
        );
        let params: Vec<Value> = chunk.iter().map(Cell::to_sql).collect();
        tx.exec_drop(sql, Params::Positional(params)).await?;
    }
    Ok(())
}
