//! Streaming: binlog events from a stored position -> whole transactions of Debezium records.
//!
//! Events of a transaction are buffered until its commit (XID, a `COMMIT` query, or the end of a
//! standalone DDL); only then are they handed to the sink, with the position after the commit.
//! Committed transactions that are already waiting in the socket are grouped into one batch (one
//! fsync for many small commits); a batch is flushed as soon as the stream has nothing more
//! right now.
//!
//! `source.pos` is the position of the rows event that holds the row and `source.row` the row's
//! index in it (Debezium's `EventHeaderV4.getPosition()` convention); `source.ts_ms` is the
//! event's header timestamp (seconds precision, as in the binlog); `source.gtid` is the MariaDB
//! GTID `domain-server-seq` of the transaction.
//!
//! MariaDB quirks handled (see `shared/binlog-capture.md`): `@mariadb_slave_capability=4` so GTID
//! events are not rewritten as `BEGIN`; the GTID event (162) parsed by hand; the fake first
//! ROTATE parsed with a 4-byte checksum attached; GTID resume via `@slave_connect_state` with a
//! plain COM_BINLOG_DUMP.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, Opts, Value};

use super::record::{Batch, BatchKind, BinlogPosition, Record};
use super::settings::ServerInfo;
use super::sink::CaptureSink;
use super::stats::CaptureStats;
use super::table::TableShape;
use super::{CaptureConfig, CaptureError, ResumeBy};
use crate::debezium::encode::{envelope, truncate_envelope, EventSource, Op, SnapshotFlag};

const QUERY_EVENT: u8 = 2;
const STOP_EVENT: u8 = 3;
const ROTATE_EVENT: u8 = 4;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;
const XID_EVENT: u8 = 16;
const HEARTBEAT_EVENT: u8 = 27;
const MARIADB_GTID_EVENT: u8 = 162;
/// WRITE/UPDATE/DELETE_ROWS v1 (MariaDB's) and v2, and MySQL's PARTIAL_UPDATE_ROWS.
const ROWS_EVENTS: [u8; 7] = [23, 24, 25, 30, 31, 32, 39];
/// MariaDB GTID flag: a standalone event group (DDL) that ends without an XID.
const FL_STANDALONE: u8 = 0x01;

/// A transaction being read.
#[derive(Default)]
struct Txn {
    records: Vec<Record>,
    gtid: Option<String>,
    standalone: bool,
    newest_ms: Option<i64>,
}

/// The reader's state across events.
struct Reader<'a> {
    cfg: &'a CaptureConfig,
    position: BinlogPosition,
    /// GTID state per domain (`domain -> "domain-server-seq"`).
    gtid_state: BTreeMap<u32, String>,
    seen_fde: bool,
    txn: Option<Txn>,
    /// Shapes by table id (`None`: not captured); shared, so a rows event does not copy one.
    shapes: HashMap<u64, Option<Arc<TableShape>>>,
    pending: Vec<Record>,
    pending_txns: u64,
    pending_newest: Option<i64>,
}

/// Streams from `from` into `sink` until the stream ends (`stop_at_end`) or fails.
pub async fn run(
    opts: &Opts,
    cfg: &CaptureConfig,
    server: &ServerInfo,
    from: BinlogPosition,
    sink: &mut dyn CaptureSink,
    stats: &CaptureStats,
) -> Result<(), CaptureError> {
    let mut conn = Conn::new(opts.clone()).await?;
    if server.mariadb {
        conn.query_drop("SET @mariadb_slave_capability = 4").await?;
    }
    let period_ns = cfg.heartbeat.as_nanos().max(1_000_000);
    conn.query_drop(format!("SET @master_heartbeat_period = {period_ns}"))
        .await?;
    let by_gtid = cfg.resume_by == ResumeBy::Gtid && server.mariadb && from.gtid.is_some();
    let mut request = BinlogStreamRequest::new(cfg.server_id);
    if by_gtid {
        let state = from.gtid.clone().unwrap_or_default();
        conn.exec_drop("SET @slave_connect_state = ?", (state,))
            .await?;
        conn.query_drop("SET @slave_gtid_strict_mode = 1").await?;
        request = request.with_pos(4u64);
    } else {
        request = request
            .with_filename(from.file.as_bytes())
            .with_pos(from.pos);
    }
    if cfg.stop_at_end {
        request = request.with_non_blocking();
    }
    tracing::info!(position = %from, by_gtid, "Streaming the binlog.");
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| lost(&from, e))?;
    let mut reader = Reader {
        cfg,
        gtid_state: parse_gtid_state(from.gtid.as_deref()),
        position: from.clone(),
        seen_fde: false,
        txn: None,
        shapes: HashMap::new(),
        pending: Vec::new(),
        pending_txns: 0,
        pending_newest: None,
    };
    let idle_limit = cfg.heartbeat * 3 + Duration::from_millis(500);
    loop {
        // what is already buffered is taken without waiting; when nothing is, flush and wait
        let next = match stream.next().now_or_never() {
            Some(ev) => ev,
            None => {
                reader.flush(sink, stats)?;
                match tokio::time::timeout(idle_limit, stream.next()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        return Err(CaptureError::Mysql(mysql_async::Error::Io(
                            mysql_async::IoError::Io(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!(
                                    "no event and no heartbeat for {} ms",
                                    idle_limit.as_millis()
                                ),
                            )),
                        )));
                    }
                }
            }
        };
        let Some(ev) = next else {
            reader.flush(sink, stats)?;
            if cfg.stop_at_end {
                return Ok(()); // end of binlog (non-blocking mode)
            }
            // a blocking dump only ends when the server closes it (shutdown, restart, KILL):
            // a connection failure, so the capture reconnects instead of ending silently
            return Err(CaptureError::Mysql(mysql_async::Error::Io(
                mysql_async::IoError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the server closed the binlog stream",
                )),
            )));
        };
        let ev = ev.map_err(|e| lost(&reader.position, e))?;
        stats.event_seen();
        reader.handle(&ev, &stream, stats)?;
        if ev.header().event_type_raw() == HEARTBEAT_EVENT && reader.txn.is_none() {
            reader.flush(sink, stats)?;
            sink.idle();
        }
        if reader.pending.len() >= cfg.max_batch_records {
            reader.flush(sink, stats)?;
        }
    }
}

/// A server error 1236 on dump means the position is not (or no longer) in the binlog.
fn lost(from: &BinlogPosition, e: mysql_async::Error) -> CaptureError {
    match &e {
        mysql_async::Error::Server(s) if s.code == 1236 => CaptureError::PositionLost {
            position: from.clone(),
            reason: s.message.clone(),
        },
        _ => CaptureError::Mysql(e),
    }
}

fn parse_gtid_state(state: Option<&str>) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for g in state
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        if let Some(domain) = g.split('-').next().and_then(|d| d.parse().ok()) {
            out.insert(domain, g.to_string());
        }
    }
    out
}

impl Reader<'_> {
    fn handle(
        &mut self,
        ev: &Event,
        stream: &mysql_async::BinlogStream,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        let header = ev.header();
        let kind = header.event_type_raw();
        match kind {
            ROTATE_EVENT => {
                if let Ok(Some(EventData::RotateEvent(r))) = ev.read_data() {
                    let mut raw = r.name_raw();
                    // the first, fake ROTATE arrives before any FDE with its CRC32 still attached
                    if !self.seen_fde && header.log_pos() == 0 && raw.len() > 4 {
                        raw = &raw[..raw.len() - 4];
                    }
                    let name: String = String::from_utf8_lossy(raw)
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect();
                    self.position.file = name;
                    self.position.pos = r.position();
                }
            }
            FORMAT_DESCRIPTION_EVENT => self.seen_fde = true,
            STOP_EVENT => {}
            HEARTBEAT_EVENT => stats.heartbeat(),
            MARIADB_GTID_EVENT => {
                let data = ev.data();
                if data.len() >= 13 {
                    let mut seq = [0u8; 8];
                    seq.copy_from_slice(&data[0..8]);
                    let mut domain = [0u8; 4];
                    domain.copy_from_slice(&data[8..12]);
                    let (seq, domain, flags) = (
                        u64::from_le_bytes(seq),
                        u32::from_le_bytes(domain),
                        data[12],
                    );
                    let gtid = format!("{domain}-{}-{seq}", header.server_id());
                    self.gtid_state.insert(domain, gtid.clone());
                    self.txn = Some(Txn {
                        gtid: Some(gtid),
                        standalone: flags & FL_STANDALONE != 0,
                        ..Txn::default()
                    });
                }
            }
            QUERY_EVENT => {
                if let Ok(Some(EventData::QueryEvent(q))) = ev.read_data() {
                    let sql = q.query();
                    let trimmed = sql.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN") {
                        if self.txn.is_none() {
                            self.txn = Some(Txn::default());
                        }
                    } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                        self.commit(u64::from(header.log_pos()));
                    } else {
                        // DDL: table maps change; a TRUNCATE becomes Debezium's `t` event
                        self.shapes.clear();
                        if let Some((db, table)) = truncated_table(trimmed, &q.schema()) {
                            if self.cfg.captures(&db, &table) {
                                let ts_ms = i64::from(header.timestamp()) * 1000;
                                let source = self.source(&db, header, 0, ts_ms);
                                let value = truncate_envelope(&source, &table, now_ms());
                                self.txn
                                    .get_or_insert_with(Txn::default)
                                    .records
                                    .push(Record {
                                        topic: source.topic_of(&table),
                                        key: None,
                                        value: Some(value),
                                        ts_ms,
                                    });
                                stats.record(&table, "t");
                            }
                        }
                        if self.txn.as_ref().is_none_or(|t| t.standalone) {
                            self.commit(u64::from(header.log_pos()));
                        }
                    }
                }
            }
            XID_EVENT => self.commit(u64::from(header.log_pos())),
            _ => {
                if let Some(rows) = rows_event(ev) {
                    self.rows(ev, &rows, stream, stats)?;
                }
            }
        }
        Ok(())
    }

    fn source(
        &self,
        db: &str,
        header: mysql_async::binlog::events::BinlogEventHeader,
        row: u32,
        ts_ms: i64,
    ) -> EventSource {
        EventSource {
            prefix: self.cfg.prefix.clone(),
            db: db.to_string(),
            server_id: header.server_id(),
            file: self.position.file.clone(),
            pos: u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size())),
            row,
            ts_ms,
            snapshot: SnapshotFlag::False,
            gtid: self.txn.as_ref().and_then(|t| t.gtid.clone()),
            thread: None,
        }
    }

    fn rows(
        &mut self,
        ev: &Event,
        rows: &RowsEventData<'_>,
        stream: &mysql_async::BinlogStream,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        let table_id = rows.table_id();
        let Some(tme) = stream.get_tme(table_id) else {
            return Err(CaptureError::Encode(format!(
                "rows event for table id {table_id} without its table map (started mid-transaction?)"
            )));
        };
        if !self.shapes.contains_key(&table_id) {
            let (db, table) = (tme.database_name(), tme.table_name());
            let shape = if self.cfg.captures(&db, &table) {
                let shape = TableShape::from_table_map(tme)
                    .map_err(|e| CaptureError::Encode(e.to_string()))?;
                if shape.has_key() {
                    Some(Arc::new(shape))
                } else {
                    tracing::warn!(db = %db, table = %table,
                        "Skipping a table without a primary key (lpm keys every row by it).");
                    None
                }
            } else {
                None
            };
            self.shapes.insert(table_id, shape);
        }
        let Some(Some(shape)) = self.shapes.get(&table_id) else {
            return Ok(());
        };
        let shape = shape.clone();
        let header = ev.header();
        let ts_ms = i64::from(header.timestamp()) * 1000;
        let mut source = self.source(&shape.db, header, 0, ts_ms);
        let topic = source.topic_of(&shape.table);
        let mut out = Vec::new();
        for (i, row) in row_images(rows, tme).enumerate() {
            let (before, after) = row
                .map_err(|e| CaptureError::Encode(format!("{}.{}: {e}", shape.db, shape.table)))?;
            let encode =
                |r: Option<BinlogRow>| -> Result<Option<super::table::EncodedRow>, CaptureError> {
                    let Some(r) = r else { return Ok(None) };
                    let values = row_values(&r, &shape)?;
                    shape.encode_binlog(&values).map(Some).map_err(|e| {
                        CaptureError::Encode(format!("{}.{}: {e}", shape.db, shape.table))
                    })
                };
            let (before, after) = (encode(before)?, encode(after)?);
            source.row = i as u32;
            let now = now_ms();
            let mut push = |op: Op, b: Option<&str>, a: Option<&str>, key: &str| {
                stats.record(&shape.table, op.code());
                out.push(Record {
                    topic: topic.clone(),
                    key: Some(key.to_string()),
                    value: Some(envelope(
                        b.unwrap_or("null"),
                        a.unwrap_or("null"),
                        &source,
                        &shape.table,
                        op,
                        now,
                    )),
                    ts_ms,
                });
                if op == Op::Delete {
                    out.push(Record {
                        topic: topic.clone(),
                        key: Some(key.to_string()),
                        value: None,
                        ts_ms,
                    });
                }
            };
            match (&before, &after) {
                (None, Some(a)) => push(Op::Create, None, Some(&a.image), &a.key),
                (Some(b), Some(a)) if b.key == a.key => {
                    push(Op::Update, Some(&b.image), Some(&a.image), &a.key)
                }
                (Some(b), Some(a)) => {
                    // a primary-key change: delete (+ tombstone) of the old key, create of the new
                    push(Op::Delete, Some(&b.image), None, &b.key);
                    push(Op::Create, None, Some(&a.image), &a.key);
                }
                (Some(b), None) => push(Op::Delete, Some(&b.image), None, &b.key),
                (None, None) => {}
            }
        }
        let txn = self.txn.get_or_insert_with(Txn::default);
        txn.records.extend(out);
        txn.newest_ms = Some(txn.newest_ms.map_or(ts_ms, |m| m.max(ts_ms)));
        Ok(())
    }

    /// The transaction is committed: its records join the pending batch, and the position moves
    /// past it.
    fn commit(&mut self, next_pos: u64) {
        let txn = self.txn.take().unwrap_or_default();
        self.position.pos = next_pos;
        if !self.gtid_state.is_empty() {
            self.position.gtid = Some(
                self.gtid_state
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        self.pending.extend(txn.records);
        self.pending_txns += 1;
        if let Some(ms) = txn.newest_ms {
            self.pending_newest = Some(self.pending_newest.map_or(ms, |m| m.max(ms)));
        }
    }

    fn flush(
        &mut self,
        sink: &mut dyn CaptureSink,
        stats: &CaptureStats,
    ) -> Result<(), CaptureError> {
        if self.pending_txns == 0 {
            return Ok(());
        }
        let batch = Batch {
            kind: BatchKind::Stream,
            records: std::mem::take(&mut self.pending),
            position: self.position.clone(),
            transactions: std::mem::take(&mut self.pending_txns),
            newest_commit_ms: self.pending_newest.take(),
        };
        let (n, newest) = (batch.transactions, batch.newest_commit_ms);
        sink.write(batch)?;
        stats.committed(n, newest, &self.position);
        Ok(())
    }
}

/// The rows of a row event; `None` for any other event, which is not parsed at all: the capture
/// needs nothing from it, and a corrupt event must not reach mysql_common's parsers (a
/// PREVIOUS_GTIDS count, for one, is allocated for before it is read).
pub(crate) fn rows_event(ev: &Event) -> Option<RowsEventData<'_>> {
    if !ROWS_EVENTS.contains(&ev.header().event_type_raw()) {
        return None;
    }
    match ev.read_data() {
        Ok(Some(EventData::RowsEvent(rows))) => Some(rows),
        _ => None,
    }
}

/// A row's before and after images.
pub(crate) type RowImages = (Option<BinlogRow>, Option<BinlogRow>);

/// The rows of a rows event, ending at the first one that cannot be read. mysql_common yields
/// a row without column values (no image, or images of no column), consuming no bytes, for an
/// event whose columns-present bitmaps are empty: the same row forever (found by
/// fuzz/binlog_rows: the capture spun on one event; no server writes one). Such a row is an
/// error here, and the last item.
pub(crate) fn row_images<'a>(
    rows: &'a RowsEventData<'a>,
    tme: &'a TableMapEvent<'a>,
) -> impl Iterator<Item = Result<RowImages, String>> + 'a {
    let mut failed = false;
    rows.rows(tme).map_while(move |row| {
        if failed {
            return None;
        }
        let item = match row {
            Ok((before, after))
                if before
                    .iter()
                    .chain(after.iter())
                    .all(|image| image.is_empty()) =>
            {
                Err("a row without column values (empty column bitmaps)".to_string())
            }
            Ok(images) => Ok(images),
            Err(e) => Err(format!("unreadable row: {e}")),
        };
        failed = item.is_err();
        Some(item)
    })
}

/// The values of a binlog row by column index (a FULL image has every column).
pub(crate) fn row_values(
    row: &BinlogRow,
    shape: &TableShape,
) -> Result<Vec<Option<Value>>, CaptureError> {
    if row.len() != shape.columns.len() {
        return Err(CaptureError::Encode(format!(
            "{}.{}: a row image has {} of {} columns (binlog_row_image is not FULL for this \
             session?); stopping rather than emitting partial rows",
            shape.db,
            shape.table,
            row.len(),
            shape.columns.len()
        )));
    }
    (0..row.len())
        .map(|i| match row.as_ref(i) {
            None => Ok(None),
            Some(BinlogValue::Value(v)) => Ok(Some(v.clone())),
            Some(BinlogValue::Jsonb(j)) => serde_json::Value::try_from(j.clone())
                .map(|j| Some(Value::Bytes(j.to_string().into_bytes())))
                .map_err(|e| {
                    CaptureError::Encode(format!("{}.{}: JSON: {e}", shape.db, shape.table))
                }),
            Some(BinlogValue::JsonDiff(_)) => Err(CaptureError::Encode(format!(
                "{}.{}: partial JSON update (binlog_row_value_options=PARTIAL_JSON)",
                shape.db, shape.table
            ))),
        })
        .collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `TRUNCATE [TABLE] [db.]name` -> (db, table), with `default_db` when the name has none.
fn truncated_table(sql: &str, default_db: &str) -> Option<(String, String)> {
    let mut words = sql.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("truncate") {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("table") {
        name = words.next()?;
    }
    let name = name.trim_end_matches(';');
    let parts: Vec<String> = name
        .split('.')
        .map(|p| p.trim_matches('`').to_string())
        .collect();
    match parts.as_slice() {
        [t] => Some((default_db.to_string(), t.clone())),
        [d, t] => Some((d.clone(), t.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_statements_name_their_table() {
        assert_eq!(
            truncated_table("TRUNCATE TABLE `case_actions`", "db"),
            Some(("db".into(), "case_actions".into()))
        );
        assert_eq!(
            truncated_table("truncate lost.persons_lost;", "db"),
            Some(("lost".into(), "persons_lost".into()))
        );
        assert_eq!(truncated_table("DELETE FROM t", "db"), None);
        assert_eq!(truncated_table("TRUNCATE", "db"), None);
    }

    /// A v4 event of `ty` around `body`, without a checksum.
    fn event(ty: u8, body: &[u8]) -> Event {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes()); // timestamp
        bytes.push(ty);
        bytes.extend_from_slice(&1u32.to_le_bytes()); // server id
        bytes.extend_from_slice(&(19 + body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes()); // next position
        bytes.extend_from_slice(&0u16.to_le_bytes()); // flags
        bytes.extend_from_slice(body);
        let fde = mysql_async::binlog::events::FormatDescriptionEvent::new(
            mysql_async::binlog::BinlogVersion::Version4,
        );
        Event::read(&fde, &bytes[..]).expect("an event")
    }

    #[test]
    fn a_row_without_column_values_ends_the_event_with_an_error() {
        // Found by fuzz/binlog_rows: a WRITE_ROWS event whose columns-present bitmap is empty
        // made mysql_common yield (None, None) forever without consuming a byte.
        let mut map = vec![1, 0, 0, 0, 0, 0, 0, 0]; // table id 1, flags
        map.extend_from_slice(&[1, b'd', 0, 1, b't', 0]);
        map.extend_from_slice(&[1, 3, 0, 0]); // one INT column, no metadata, null bitmap
        let tme_event = event(19, &map);
        let tme = tme_event
            .read_event::<TableMapEvent<'_>>()
            .expect("table map");
        // WRITE_ROWS v1 of table 1: one column, none present, then a byte of "rows"
        let write = event(23, &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00]);
        let rows = rows_event(&write).expect("a rows event");
        let items: Vec<_> = row_images(&rows, &tme).take(1000).collect();
        assert_eq!(items.len(), 1, "{items:?}");
        assert!(items[0].is_err(), "{items:?}");
    }

    #[test]
    fn only_row_events_are_parsed() {
        // Found by fuzz/binlog_rows: the stream parsed every event it does not handle itself,
        // and mysql_common sizes a PREVIOUS_GTIDS event's list by its count field before
        // reading it: a corrupt count aborted the process on allocation.
        let previous_gtids = event(35, &u64::MAX.to_le_bytes());
        assert!(rows_event(&previous_gtids).is_none());
        // a WRITE_ROWS v1 event of table 7, one column, no rows
        let write = event(23, &[7, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]);
        assert_eq!(rows_event(&write).map(|r| r.table_id()), Some(7));
    }

    #[test]
    fn gtid_state_keeps_one_gtid_per_domain() {
        let s = parse_gtid_state(Some("0-1-15,1-2-7"));
        assert_eq!(s.get(&0).map(String::as_str), Some("0-1-15"));
        assert_eq!(s.get(&1).map(String::as_str), Some("1-2-7"));
        assert!(parse_gtid_state(None).is_empty());
    }
}
