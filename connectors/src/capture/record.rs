//! What the capture emits: Kafka-shaped records, grouped in batches that end at a point the
//! capture can resume from, and the binlog position that point is.

use serde::{Deserialize, Serialize};

/// One Kafka record as Debezium would produce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `<prefix>.<db>.<table>`.
    pub topic: String,
    /// Key JSON (`{"id":5}`); `None` for a truncate.
    pub key: Option<String>,
    /// Value JSON; `None` for a tombstone.
    pub value: Option<String>,
    /// Record timestamp, epoch ms (the commit time of the change).
    pub ts_ms: i64,
}

/// Where the capture resumes: a binlog file and the position right after a committed
/// transaction, plus the MariaDB GTID state at that point when the server has GTIDs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file, e.g. `mysql-bin.000003`.
    pub file: String,
    /// Position of the next event after the last committed transaction.
    pub pos: u64,
    /// The GTID of the last committed transaction (`domain-server-seq`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

impl BinlogPosition {
    /// The file's number (`mysql-bin.000042` -> 42), when the name ends in digits.
    pub fn file_number(&self) -> Option<u32> {
        let digits = self
            .file
            .bytes()
            .rev()
            .take_while(u8::is_ascii_digit)
            .count();
        self.file[self.file.len() - digits..].parse().ok()
    }
}

/// Whether `have` is at or past `want` in one server's binlog: file number, then offset (the
/// GTID is not compared). Positions whose files cannot be ordered count as reached.
pub fn reached(have: &BinlogPosition, want: &BinlogPosition) -> bool {
    match (have.file_number(), want.file_number()) {
        (Some(h), Some(w)) => (h, have.pos) >= (w, want.pos),
        _ => true,
    }
}

/// The engine coordinate of a binlog position (a snapshot taken there), when its file has a
/// number.
pub fn coords_of(p: &BinlogPosition) -> Option<lpm_engine::Coords> {
    Some(lpm_engine::Coords {
        file: p.file_number()?,
        pos: p.pos,
        row: 0,
        streamed: false,
    })
}

/// What a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    /// A chunk of snapshot reads; `last` when the snapshot is complete with it.
    Snapshot {
        /// The final chunk.
        last: bool,
    },
    /// One or more whole committed transactions.
    Stream,
}

/// Records that belong together, and where to resume after them.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Snapshot chunk or streamed transactions.
    pub kind: BatchKind,
    /// The records in order.
    pub records: Vec<Record>,
    /// Where to resume once this batch is stored: after a snapshot's last chunk, the snapshot's
    /// binlog position; after transactions, the end of the last one. Meaningless (the snapshot's
    /// start) for a snapshot chunk that is not the last: an interrupted snapshot starts over.
    pub position: BinlogPosition,
    /// Transactions in the batch (0 for snapshot chunks).
    pub transactions: u64,
    /// Commit time of the newest change in the batch, epoch ms (capture lag).
    pub newest_commit_ms: Option<i64>,
}

/// Kafka's default partitioner for keyed records: `toPositive(murmur2(key)) % partitions`
/// (`org.apache.kafka.clients.producer.internals.BuiltInPartitioner`). Keyless records go to 0.
pub fn partition_for(key: Option<&str>, partitions: u32) -> i32 {
    match key {
        Some(k) if partitions > 1 => {
            ((murmur2(k.as_bytes()) & 0x7fff_ffff) as u32 % partitions) as i32
        }
        _ => 0,
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, pos: u64) -> BinlogPosition {
        BinlogPosition {
            file: file.into(),
            pos,
            gtid: None,
        }
    }

    #[test]
    fn positions_order_by_file_number_then_offset() {
        assert_eq!(at("mysql-bin.000042", 4).file_number(), Some(42));
        assert_eq!(at("binlog", 4).file_number(), None);
        assert!(reached(
            &at("mysql-bin.000003", 4),
            &at("mysql-bin.000002", 9000)
        ));
        assert!(reached(
            &at("mysql-bin.000002", 900),
            &at("mysql-bin.000002", 900)
        ));
        assert!(!reached(
            &at("mysql-bin.000002", 899),
            &at("mysql-bin.000002", 900)
        ));
        // file numbers, not names: 1000000 sorts before 999999 as text
        assert!(reached(
            &at("mysql-bin.1000000", 4),
            &at("mysql-bin.999999", 4)
        ));
        assert_eq!(
            coords_of(&at("mysql-bin.000007", 120)).map(|c| (c.file, c.pos, c.streamed)),
            Some((7, 120, false))
        );
    }

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // org.apache.kafka.common.utils.UtilsTest#testMurmur2
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2(s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn keyless_and_single_partition_records_go_to_zero() {
        assert_eq!(partition_for(None, 6), 0);
        assert_eq!(partition_for(Some("{\"id\":1}"), 1), 0);
        let p = partition_for(Some("{\"id\":1}"), 6);
        assert!((0..6).contains(&p));
    }
}
