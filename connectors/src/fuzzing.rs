//! Entry points for the fuzz targets in `fuzz/` (`cargo fuzz`). The decoders they reach are
//! private to their modules; these wrappers let the targets run exactly the code the sources
//! run, instead of a copy that could drift. Hidden from the docs: not an API.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::debezium::Decoded;
use crate::dump::{decode_line, WorkerDecoder};
use crate::error::DecodeError;

/// One worker's `kcat -C -J` line decoder, as [`crate::DumpFeed`] runs it (schema caches
/// included, so a sequence of lines exercises the cached paths too).
pub struct KcatLineDecoder(WorkerDecoder);

impl KcatLineDecoder {
    /// A decoder over `catalog` with empty caches.
    pub fn new(catalog: Arc<Catalog>) -> KcatLineDecoder {
        KcatLineDecoder(WorkerDecoder::new(catalog))
    }

    /// Decodes one line, trimmed and non-empty as the dump reader hands it over.
    pub fn decode(&mut self, line: &[u8], seq: u64) -> Result<Decoded, DecodeError> {
        decode_line(&mut self.0, line, seq)
    }
}

/// The values of one binlog row image by column index, as the binlog stream reads them
/// before [`crate::capture::table::TableShape::encode_binlog`].
#[cfg(feature = "capture")]
pub fn binlog_row_values(
    row: &mysql_async::binlog::row::BinlogRow,
    shape: &crate::capture::table::TableShape,
) -> Result<Vec<Option<mysql_async::Value>>, crate::capture::CaptureError> {
    crate::capture::stream::row_values(row, shape)
}

/// The before/after images of a rows event's rows, ending at the first that cannot be read,
/// as the binlog stream iterates them.
#[cfg(feature = "capture")]
pub fn binlog_row_images<'a>(
    rows: &'a mysql_async::binlog::events::RowsEventData<'a>,
    tme: &'a mysql_async::binlog::events::TableMapEvent<'a>,
) -> impl Iterator<
    Item = Result<
        (
            Option<mysql_async::binlog::row::BinlogRow>,
            Option<mysql_async::binlog::row::BinlogRow>,
        ),
        String,
    >,
> + 'a {
    crate::capture::stream::row_images(rows, tme)
}

/// The rows of a binlog row event (`None` for other events, left unparsed), as the binlog
/// stream picks them.
#[cfg(feature = "capture")]
pub fn binlog_rows_event(
    event: &mysql_async::binlog::events::Event,
) -> Option<mysql_async::binlog::events::RowsEventData<'_>> {
    crate::capture::stream::rows_event(event)
}
