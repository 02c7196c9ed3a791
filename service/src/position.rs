//! Where a source stood at a tick: the embedded log's sequence, a binlog `file:pos` (and GTID
//! state), or Kafka offsets per partition, and whether one position has reached another. The
//! REST views answer it beside every tick, and the aggregate sink stores it to know, after a
//! restart, when the engine has caught up with what it wrote.

use lpm_connectors::capture::BinlogPosition;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the source stood at a tick. The JSON shape is the one the API and the sink's stored
/// position have always had: `{"source": "embedded-log" | "mysql-binlog" | "kafka", "log_seq":
/// N, "binlog"?: "file:pos (gtid …)", "offsets"?: [...]}`; each kind carries only its own fields.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "source")]
pub enum SourcePosition {
    /// The embedded log.
    #[serde(rename = "embedded-log")]
    EmbeddedLog {
        /// The last log record the tick includes (records are numbered from 1; 0 = none).
        log_seq: u64,
    },
    /// A binlog capture.
    #[serde(rename = "mysql-binlog")]
    Binlog {
        /// Transactions applied since the capture started.
        log_seq: u64,
        /// `file:pos` (and the GTID of the last transaction) the tick reaches; absent before
        /// the snapshot completes.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "binlog_text")]
        #[schema(value_type = Option<String>, example = "mysql-bin.000003:1234 (gtid 0-1-17)")]
        binlog: Option<BinlogPosition>,
    },
    /// Debezium topics on Kafka.
    #[serde(rename = "kafka")]
    Kafka {
        /// Records (changes and heartbeats) applied since start.
        log_seq: u64,
        /// Per topic partition, the next offset to read (every record below it is in the
        /// tick). Partitions never read are absent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offsets: Vec<PartitionOffset>,
    },
}

/// How a source position relates to one stored earlier (see [`SourcePosition::coverage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Everything the stored position covers is covered here too.
    Covered,
    /// The source has not yet reached the stored position.
    Behind,
    /// The two cannot be compared (different source kinds, binlog files of another server);
    /// says why.
    Incomparable(String),
}

impl SourcePosition {
    /// The source's name: `embedded-log`, `mysql-binlog` or `kafka`.
    pub fn source(&self) -> &'static str {
        match self {
            SourcePosition::EmbeddedLog { .. } => "embedded-log",
            SourcePosition::Binlog { .. } => "mysql-binlog",
            SourcePosition::Kafka { .. } => "kafka",
        }
    }

    /// Records (log records, transactions, Kafka records) applied up to here.
    pub fn log_seq(&self) -> u64 {
        match self {
            SourcePosition::EmbeddedLog { log_seq }
            | SourcePosition::Binlog { log_seq, .. }
            | SourcePosition::Kafka { log_seq, .. } => *log_seq,
        }
    }

    /// Whether this position has reached `stored`: the same source kind, and for the embedded
    /// log `log_seq >=`, for Kafka every stored partition's offset reached, for a binlog the
    /// file name, then the offset in it. An exactly-once consumer (the aggregate sink) must not
    /// write state older than what it stored, so while the engine rebuilds it waits for this.
    pub fn coverage(&self, stored: &SourcePosition) -> Coverage {
        use SourcePosition as P;
        match (self, stored) {
            (P::EmbeddedLog { log_seq: have }, P::EmbeddedLog { log_seq: want }) => {
                reached(have >= want)
            }
            (P::Kafka { offsets: have, .. }, P::Kafka { offsets: want, .. }) => {
                reached(want.iter().all(|s| {
                    have.iter().any(|c| {
                        c.topic == s.topic && c.partition == s.partition && c.offset >= s.offset
                    })
                }))
            }
            (P::Binlog { binlog: have, .. }, P::Binlog { binlog: want, .. }) => {
                let Some(want) = want else {
                    return Coverage::Covered;
                };
                let Some(have) = have else {
                    return Coverage::Behind;
                };
                match (coordinate(have), coordinate(want)) {
                    (Some(h), Some(w)) if h.0 != w.0 => Coverage::Incomparable(format!(
                        "binlog files of different servers: {have} and {want}"
                    )),
                    (Some(h), Some(w)) => reached(h >= w),
                    _ => Coverage::Incomparable(format!(
                        "cannot compare binlog positions {have} and {want}"
                    )),
                }
            }
            _ => Coverage::Incomparable(format!(
                "the source was {:?} and is now {:?}",
                stored.source(),
                self.source()
            )),
        }
    }

    /// [`coverage`](Self::coverage) as a yes/no: positions that cannot be compared count as
    /// covered (waiting for them would wait forever), with a warning.
    pub fn covers(&self, stored: &SourcePosition) -> bool {
        match self.coverage(stored) {
            Coverage::Covered => true,
            Coverage::Behind => false,
            Coverage::Incomparable(why) => {
                tracing::warn!(reason = %why, "Source positions are not comparable; treating the stored one as covered.");
                true
            }
        }
    }
}

fn reached(yes: bool) -> Coverage {
    if yes {
        Coverage::Covered
    } else {
        Coverage::Behind
    }
}

/// A binlog position in order: file base name, then the file's number (`mysql-bin.000010`
/// after `mysql-bin.000009`, even once the number outgrows its zero padding), then the offset.
fn coordinate(p: &BinlogPosition) -> Option<(&str, u64, u64)> {
    let (base, number) = p.file.rsplit_once('.')?;
    Some((base, number.parse().ok()?, p.pos))
}

/// A binlog position as the text the API has always shown: `file:pos` with an optional
/// ` (gtid D-S-N)`.
mod binlog_text {
    use lpm_connectors::capture::BinlogPosition;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Option<BinlogPosition>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.collect_str(p),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BinlogPosition>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("not a binlog position: {text:?}")))
    }

    pub fn parse(text: &str) -> Option<BinlogPosition> {
        let (head, rest) = text.split_once(' ').unwrap_or((text, ""));
        let (file, pos) = head.rsplit_once(':')?;
        let gtid = match rest.trim() {
            "" => None,
            g => Some(g.strip_prefix("(gtid ")?.strip_suffix(')')?.to_string()),
        };
        if file.is_empty() {
            return None;
        }
        Some(BinlogPosition {
            file: file.to_string(),
            pos: pos.parse().ok()?,
            gtid,
        })
    }
}

/// A Kafka consumer position: the next offset of one topic partition.
#[derive(Serialize, serde::Deserialize, ToSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(seq: u64) -> SourcePosition {
        SourcePosition::EmbeddedLog { log_seq: seq }
    }

    fn binlog(at: Option<&str>) -> SourcePosition {
        SourcePosition::Binlog {
            log_seq: 0,
            binlog: at.map(|t| binlog_text::parse(t).expect("a binlog position")),
        }
    }

    fn kafka(offsets: &[(&str, i32, i64)]) -> SourcePosition {
        SourcePosition::Kafka {
            log_seq: 0,
            offsets: offsets
                .iter()
                .map(|(t, p, o)| PartitionOffset {
                    topic: (*t).into(),
                    partition: *p,
                    offset: *o,
                })
                .collect(),
        }
    }

    #[test]
    fn embedded_log_covers_by_sequence() {
        assert!(log(10).covers(&log(10)));
        assert!(log(11).covers(&log(10)));
        assert!(!log(9).covers(&log(10)));
        assert!(log(0).covers(&log(0)));
    }

    #[test]
    fn kafka_covers_when_every_stored_partition_is_reached() {
        let stored = kafka(&[("a", 0, 5), ("a", 1, 7)]);
        assert!(kafka(&[("a", 0, 5), ("a", 1, 7)]).covers(&stored));
        assert!(kafka(&[("a", 0, 9), ("a", 1, 8), ("b", 0, 1)]).covers(&stored));
        assert!(!kafka(&[("a", 0, 9), ("a", 1, 6)]).covers(&stored));
        // a partition not read yet is not reached
        assert!(!kafka(&[("a", 0, 9)]).covers(&stored));
        assert!(kafka(&[]).covers(&kafka(&[])));
    }

    #[test]
    fn binlog_compares_file_then_offset() {
        let stored = binlog(Some("mysql-bin.000003:1234 (gtid 0-1-17)"));
        assert!(binlog(Some("mysql-bin.000003:1234")).covers(&stored));
        assert!(binlog(Some("mysql-bin.000003:2000 (gtid 0-1-18)")).covers(&stored));
        assert!(binlog(Some("mysql-bin.000004:4")).covers(&stored));
        assert!(!binlog(Some("mysql-bin.000003:1000")).covers(&stored));
        assert!(!binlog(Some("mysql-bin.000002:99999")).covers(&stored));
        assert!(!binlog(None).covers(&stored));
        assert!(binlog(None).covers(&binlog(None)));
        // the extension is a number, not a string
        assert!(binlog(Some("mysql-bin.1000000:4")).covers(&binlog(Some("mysql-bin.999999:9"))));
    }

    #[test]
    fn incomparable_positions_count_as_covered() {
        assert_eq!(
            log(1).coverage(&binlog(Some("mysql-bin.000001:4"))),
            Coverage::Incomparable(
                "the source was \"mysql-binlog\" and is now \"embedded-log\"".into()
            )
        );
        assert!(log(1).covers(&kafka(&[("a", 0, 5)])));
        // another server's binlog files (another base name), or a file without a number
        let other = binlog(Some("other-bin.000009:4"));
        assert!(matches!(
            other.coverage(&binlog(Some("mysql-bin.000001:4"))),
            Coverage::Incomparable(_)
        ));
        assert!(other.covers(&binlog(Some("mysql-bin.000001:4"))));
        assert!(matches!(
            binlog(Some("binlog:4")).coverage(&binlog(Some("mysql-bin.000001:4"))),
            Coverage::Incomparable(_)
        ));
    }

    /// The JSON the REST views answer and the sink stores is the one it was before positions
    /// were typed (stored rows of older versions still read).
    #[test]
    fn the_json_shape_is_unchanged() {
        let cases = [
            (log(7), r#"{"source":"embedded-log","log_seq":7}"#),
            (
                binlog(Some("mysql-bin.000003:1234 (gtid 0-1-17)")),
                r#"{"source":"mysql-binlog","log_seq":0,"binlog":"mysql-bin.000003:1234 (gtid 0-1-17)"}"#,
            ),
            (binlog(None), r#"{"source":"mysql-binlog","log_seq":0}"#),
            (
                kafka(&[("t", 0, 5)]),
                r#"{"source":"kafka","log_seq":0,"offsets":[{"topic":"t","partition":0,"offset":5}]}"#,
            ),
        ];
        for (position, json) in cases {
            assert_eq!(serde_json::to_string(&position).expect("serialises"), json);
            let back: SourcePosition = serde_json::from_str(json).expect("parses");
            assert_eq!(back, position);
        }
        // what the untyped version wrote for every kind: empty fields of other kinds
        let old = r#"{"source":"embedded-log","log_seq":3,"offsets":[]}"#;
        assert_eq!(
            serde_json::from_str::<SourcePosition>(old).expect("parses"),
            log(3)
        );
        assert!(serde_json::from_str::<SourcePosition>(
            r#"{"source":"mysql-binlog","log_seq":0,"binlog":"garbage"}"#
        )
        .is_err());
    }
}
