//! The initial snapshot: every captured row as an `op:"r"` record, read in one consistent
//! transaction whose binlog position is where streaming starts, so nothing is missed or read
//! twice between the two.
//!
//! MariaDB gives the position of a consistent snapshot without a global lock
//! (`START TRANSACTION WITH CONSISTENT SNAPSHOT` + `binlog_snapshot_file/position`); MySQL needs
//! `FLUSH TABLES WITH READ LOCK` held while the transaction starts (Debezium's default too).
//!
//! Markers follow Debezium 2.x: the first record is `first`, a table's first is
//! `first_in_data_collection`, a table's last is `last_in_data_collection`, the very last is
//! `last`, and everything else `true`. Every snapshot record carries the snapshot's binlog
//! file/pos with row 0, server id 0 and no thread, as Debezium's do.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use super::column::{ColumnKind, ColumnSpec};
use super::record::{Batch, BatchKind, BinlogPosition, Record};
use super::settings::ServerInfo;
use super::sink::CaptureSink;
use super::stats::CaptureStats;
use super::table::{EncodedRow, TableShape};
use super::{CaptureConfig, CaptureError};
use crate::debezium::encode::{envelope, EventSource, Op, SnapshotFlag};

/// Takes the snapshot into `sink` and returns the position streaming starts from.
pub async fn run(
    opts: &Opts,
    cfg: &CaptureConfig,
    server: &ServerInfo,
    sink: &mut dyn CaptureSink,
    stats: &CaptureStats,
) -> Result<BinlogPosition, CaptureError> {
    let started = std::time::Instant::now();
    sink.begin_snapshot()?;
    let mut conn = Conn::new(opts.clone()).await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    let position = if server.mariadb {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await?;
        let status: Vec<(String, String)> =
            conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
        let get = |k: &str| {
            status
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let file = get("Binlog_snapshot_file").unwrap_or_default();
        let pos: u64 = get("Binlog_snapshot_position")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if file.is_empty() {
            return Err(CaptureError::Settings(
                "binlog_snapshot_file is empty: binary logging is off".into(),
            ));
        }
        let gtid: Option<Option<String>> = conn
            .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.clone(), pos))
            .await?;
        BinlogPosition {
            file,
            pos,
            gtid: gtid.flatten().filter(|g| !g.is_empty()),
        }
    } else {
        conn.query_drop("FLUSH TABLES WITH READ LOCK").await?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await?;
        let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
        conn.query_drop("UNLOCK TABLES").await?;
        let row =
            row.ok_or_else(|| CaptureError::Settings("SHOW MASTER STATUS is empty".into()))?;
        BinlogPosition {
            file: row.get(0).unwrap_or_default(),
            pos: row.get(1).unwrap_or(0),
            gtid: None,
        }
    };
    tracing::info!(position = %position, "Snapshot started.");
    let shapes = tables(&mut conn, cfg).await?;
    let ts_ms = chrono::Utc::now().timestamp_millis();
    let mut writer = ChunkWriter {
        cfg,
        position: position.clone(),
        ts_ms,
        pending: None,
        chunk: Vec::with_capacity(cfg.snapshot_chunk.max(1)),
        emitted: 0,
        tables_total: shapes.len(),
    };
    for (t, shape) in shapes.iter().enumerate() {
        let query = format!(
            "SELECT {} FROM {}.{}",
            shape
                .columns
                .iter()
                .map(|c| ident(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            ident(&shape.db),
            ident(&shape.table)
        );
        let mut result = conn.query_iter(query).await?;
        let mut first_in_table = true;
        while let Some(row) = result.next().await? {
            let values: Vec<Option<&[u8]>> = (0..shape.columns.len())
                .map(|i| match row.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
                    _ => None,
                })
                .collect();
            let encoded = shape
                .encode_text(&values)
                .map_err(|e| CaptureError::Encode(format!("{}.{}: {e}", shape.db, shape.table)))?;
            writer.push(shape, t, first_in_table, encoded, sink, stats)?;
            first_in_table = false;
        }
        writer.table_done();
    }
    writer.finish(sink, stats)?;
    conn.query_drop("COMMIT").await?;
    let _ = conn.disconnect().await;
    tracing::info!(rows = writer.emitted, tables = shapes.len(), ms = started.elapsed().as_millis() as u64,
        position = %position, "Snapshot complete.");
    Ok(position)
}

/// A snapshot row waiting for its marker (which depends on what follows it).
struct Pending {
    topic: String,
    table: String,
    db: String,
    row: EncodedRow,
    table_index: usize,
    first_in_table: bool,
    last_in_table: bool,
}

struct ChunkWriter<'a> {
    cfg: &'a CaptureConfig,
    position: BinlogPosition,
    ts_ms: i64,
    pending: Option<Pending>,
    chunk: Vec<Record>,
    emitted: u64,
    tables_total: usize,
}

impl ChunkWriter<'_> {
    fn push(
        &mut self,
        shape: &TableShape,
        table_index: usize,
        first_in_table: bool,
        row: EncodedRow,
        sink: &mut dyn CaptureSink,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        if let Some(p) = self.pending.take() {
            self.emit(p);
        }
        self.pending = Some(Pending {
            topic: format!("{}.{}.{}", self.cfg.prefix, shape.db, shape.table),
            table: shape.table.clone(),
            db: shape.db.clone(),
            row,
            table_index,
            first_in_table,
            last_in_table: false,
        });
        if self.chunk.len() >= self.cfg.snapshot_chunk.max(1) {
            self.flush(false, sink, stats)?;
        }
        Ok(())
    }

    /// The current table has no more rows: its held-back row is its last.
    fn table_done(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.last_in_table = true;
        }
    }

    fn emit(&mut self, p: Pending) {
        let first_overall = self.emitted == 0 && p.first_in_table;
        let last_table = p.table_index + 1 == self.tables_total;
        let flag = if p.last_in_table && last_table {
            SnapshotFlag::Last
        } else if first_overall {
            SnapshotFlag::First
        } else if p.last_in_table {
            SnapshotFlag::LastInDataCollection
        } else if p.first_in_table {
            SnapshotFlag::FirstInDataCollection
        } else {
            SnapshotFlag::True
        };
        let source = EventSource {
            prefix: self.cfg.prefix.clone(),
            db: p.db,
            server_id: 0,
            file: self.position.file.clone(),
            pos: self.position.pos,
            row: 0,
            ts_ms: self.ts_ms,
            snapshot: flag,
            gtid: None,
            thread: None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let value = envelope("null", &p.row.image, &source, &p.table, Op::Read, now);
        self.chunk.push(Record {
            topic: p.topic,
            key: Some(p.row.key),
            value: Some(value),
            ts_ms: self.ts_ms,
        });
        self.emitted += 1;
    }

    fn flush(
        &mut self,
        last: bool,
        sink: &mut dyn CaptureSink,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        let records = std::mem::take(&mut self.chunk);
        stats.snapshot_rows(&records);
        sink.write(Batch {
            kind: BatchKind::Snapshot { last },
            records,
            position: self.position.clone(),
            transactions: 0,
            newest_commit_ms: None,
        })?;
        Ok(())
    }

    fn finish(
        &mut self,
        sink: &mut dyn CaptureSink,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        if let Some(p) = self.pending.take() {
            self.emit(p);
        }
        self.flush(true, sink, stats)
    }
}

/// `name` quoted as a MySQL identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The captured tables with their shapes, from `information_schema`, in (db, table) order.
/// Tables without a primary key are skipped with a warning (Debezium would key them `null`;
/// lpm needs a key for every row).
async fn tables(conn: &mut Conn, cfg: &CaptureConfig) -> Result<Vec<TableShape>, CaptureError> {
    let mut out = Vec::new();
    for db in &cfg.databases {
        let names: Vec<String> = conn
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                (db.as_str(),),
            )
            .await?;
        for table in names {
            if !cfg.captures(db, &table) {
                continue;
            }
            type Col = (
                String,
                String,
                String,
                Option<u64>,
                Option<u64>,
                Option<String>,
            );
            let cols: Vec<Col> = conn
                .exec(
                    "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_SCALE, DATETIME_PRECISION, \
                     CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                    (db.as_str(), table.as_str()),
                )
                .await?;
            let key_cols: Vec<String> = conn
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' \
                     ORDER BY SEQ_IN_INDEX",
                    (db.as_str(), table.as_str()),
                )
                .await?;
            let columns: Vec<ColumnSpec> = cols
                .into_iter()
                .map(
                    |(name, data_type, column_type, scale, fsp, charset)| ColumnSpec {
                        kind: ColumnKind::from_information_schema(
                            &data_type,
                            &column_type,
                            scale,
                            fsp,
                            charset.as_deref(),
                        ),
                        name,
                    },
                )
                .collect();
            let key: Vec<usize> = key_cols
                .iter()
                .filter_map(|k| columns.iter().position(|c| &c.name == k))
                .collect();
            if key.is_empty() {
                tracing::warn!(db = %db, table = %table,
                    "Skipping a table without a primary key (lpm keys every row by it).");
                continue;
            }
            out.push(TableShape {
                db: db.clone(),
                table,
                columns,
                key,
            });
        }
    }
    Ok(out)
}
