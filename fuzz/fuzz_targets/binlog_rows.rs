//! Binlog row events through the capture: TABLE_MAP events into [`TableShape`]s (FULL row
//! metadata: names, keys, signedness, charsets, ENUM/SET values) and ROWS events decoded into
//! row images, then encoded as Debezium's image and key, as `capture::stream` does.
//!
//! The input is a list of events, each `type: u8, length: u16 LE, body`; the target writes the
//! 19-byte v4 header (so sizes and positions are consistent, as the server's packets are) and
//! reads them with mysql_common's `EventStreamReader`, as `mysql_async`'s binlog stream does,
//! and picks the rows events as the capture does.
//! Format-description and transaction-payload events are skipped: the reader starts from the
//! default v4 format without checksums. Checks, besides "no panic": every image and key that
//! encodes is valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lpm_connectors::capture::table::TableShape;
use lpm_connectors::fuzzing::{binlog_row_images, binlog_row_values, binlog_rows_event};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;

const HEADER: usize = 19;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;
const TRANSACTION_PAYLOAD_EVENT: u8 = 40;

/// Splits the input into `(type, body)` events.
fn events(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let [ty, lo, hi, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        out.push((*ty, &rest[..len]));
        data = &rest[len..];
    }
    out
}

fn assert_json(text: &str, what: &str) {
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("{what} is not JSON ({e}): {text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut pos = 4u32;
    for (ty, body) in events(data) {
        if ty == FORMAT_DESCRIPTION_EVENT || ty == TRANSACTION_PAYLOAD_EVENT {
            continue;
        }
        let size = (HEADER + body.len()) as u32;
        pos += size;
        let mut bytes = Vec::with_capacity(HEADER + body.len());
        bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes()); // timestamp
        bytes.push(ty);
        bytes.extend_from_slice(&1u32.to_le_bytes()); // server id
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&pos.to_le_bytes()); // next position
        bytes.extend_from_slice(&0u16.to_le_bytes()); // flags
        bytes.extend_from_slice(body);
        let Ok(Some(event)) = reader.read(&bytes[..]) else {
            continue;
        };
        let Some(rows) = binlog_rows_event(&event) else {
            continue;
        };
        let Some(tme) = reader.get_tme(rows.table_id()) else {
            continue;
        };
        // as `Reader::rows`: a table without a primary key is skipped, and the first row that
        // does not read or encode stops the event (the capture returns the error)
        let Ok(shape) = TableShape::from_table_map(tme) else {
            continue;
        };
        if !shape.has_key() {
            continue;
        }
        'rows: for row in binlog_row_images(&rows, tme) {
            let Ok((before, after)) = row else { break };
            for image in [before, after].into_iter().flatten() {
                let Ok(values) = binlog_row_values(&image, &shape) else {
                    break 'rows;
                };
                let Ok(encoded) = shape.encode_binlog(&values) else {
                    break 'rows;
                };
                assert_json(&encoded.image, "a row image");
                assert_json(&encoded.key, "a row key");
            }
        }
    }
});
