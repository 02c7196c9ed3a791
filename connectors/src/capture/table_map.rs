//! A bounds check of a TABLE_MAP event's ENUM and SET value lists, before mysql_common reads
//! them.
//!
//! mysql_common sizes each column's list of ENUM/SET strings by the count the event carries
//! (`Vec::with_capacity(count)`) before reading a single string, so a corrupt count (no server
//! writes one, a damaged relay or a hostile peer can) aborts the whole process on allocation,
//! which no `Result` can catch. Found by `fuzz/binlog_rows`. This walks the event as the
//! binlog format lays it out (post-header, names, column types, metadata, null bitmap, then
//! the optional-metadata TLVs) and checks every count against the bytes that follow it.

use mysql_async::binlog::events::TableMapEvent;
use mysql_common::proto::MySerialize;

/// Optional-metadata field types (MySQL's `Table_map_log_event::Optional_metadata_field_type`).
const SET_STR_VALUE: u8 = 5;
const ENUM_STR_VALUE: u8 = 6;

/// Why the event's ENUM/SET lists cannot be read safely.
pub(crate) fn check_value_counts(tme: &TableMapEvent<'_>) -> Result<(), String> {
    let mut raw = Vec::new();
    tme.serialize(&mut raw);
    let mut b = Cursor(&raw);
    b.skip(8)?; // table id (6 bytes), flags (2)
    for _ in 0..2 {
        // database and table name: a length byte, the name, a NUL
        let len = b.u8()?;
        b.skip(usize::from(len) + 1)?;
    }
    let columns = b.lenenc()?;
    b.skip(columns)?; // one type byte per column
    let metadata = b.lenenc()?;
    b.skip(metadata)?;
    b.skip(columns.div_ceil(8))?; // null bitmap
    while !b.0.is_empty() {
        let field = b.u8()?;
        let len = b.lenenc()?;
        let mut value = Cursor(b.take(len)?);
        if field == SET_STR_VALUE || field == ENUM_STR_VALUE {
            while !value.0.is_empty() {
                let count = value.lenenc()?;
                // every string takes at least its length byte
                if count > value.0.len() {
                    return Err(format!(
                        "an ENUM/SET column claims {count} values in {} bytes",
                        value.0.len()
                    ));
                }
                for _ in 0..count {
                    let n = value.lenenc()?;
                    value.skip(n)?;
                }
            }
        }
    }
    Ok(())
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!("{n} bytes expected, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A length-encoded integer, as a length in this buffer.
    fn lenenc(&mut self) -> Result<usize, String> {
        let width = match self.u8()? {
            n @ 0..=0xfa => return Ok(usize::from(n)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            other => return Err(format!("0x{other:02x} is not a length")),
        };
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(self.take(width)?);
        usize::try_from(u64::from_le_bytes(le)).map_err(|e| e.to_string())
    }
}
