//! The views, all at one tick, with the source position that tick covers.

use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::state::AppState;

/// The view routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/views", get(all_views))
        .route("/api/v1/views/{name}", get(one_view))
}

/// Where the source stood at a tick.
#[derive(Serialize, serde::Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
pub struct SourcePosition {
    /// The source: `embedded-log`, `mysql-binlog` or `kafka`.
    pub source: String,
    /// The last log record the tick includes (records are numbered from 1; 0 = none); for a
    /// binlog capture, the transactions applied since start; for Kafka, the records applied.
    pub log_seq: u64,
    /// For a binlog capture: `file:pos` (and the GTID state) the tick reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<String>,
    /// For a Kafka source: per topic partition, the next offset to read (every record below it
    /// is in the tick). Partitions never read are absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<PartitionOffset>,
}

/// How a source position relates to one stored earlier (see [`SourcePosition::coverage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Everything the stored position covers is covered here too.
    Covered,
    /// The source has not yet reached the stored position.
    Behind,
    /// The two cannot be compared (different source kinds, unparsable binlog position); says why.
    Incomparable(String),
}

impl SourcePosition {
    /// Whether this position has reached `stored`: the same source kind, and for the embedded
    /// log `log_seq >=`, for Kafka every stored partition's offset reached, for a binlog the
    /// file name, then the offset in it. An exactly-once consumer (the aggregate sink) must not
    /// write state older than what it stored, so while the engine rebuilds it waits for this.
    pub fn coverage(&self, stored: &SourcePosition) -> Coverage {
        if self.source != stored.source {
            return Coverage::Incomparable(format!(
                "the source was {:?} and is now {:?}",
                stored.source, self.source
            ));
        }
        match self.source.as_str() {
            "kafka" => {
                let reached = stored.offsets.iter().all(|s| {
                    self.offsets.iter().any(|c| {
                        c.topic == s.topic && c.partition == s.partition && c.offset >= s.offset
                    })
                });
                if reached {
                    Coverage::Covered
                } else {
                    Coverage::Behind
                }
            }
            "mysql-binlog" => {
                let Some(want) = &stored.binlog else {
                    return Coverage::Covered;
                };
                let Some(have) = &self.binlog else {
                    return Coverage::Behind;
                };
                match (BinlogCoordinate::parse(have), BinlogCoordinate::parse(want)) {
                    (Some(h), Some(w)) if h >= w => Coverage::Covered,
                    (Some(_), Some(_)) => Coverage::Behind,
                    _ => Coverage::Incomparable(format!(
                        "cannot compare binlog positions {have:?} and {want:?}"
                    )),
                }
            }
            _ => {
                if self.log_seq >= stored.log_seq {
                    Coverage::Covered
                } else {
                    Coverage::Behind
                }
            }
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

/// `file:pos` of a binlog position, ordered by file (base name, then numeric extension), then
/// offset. `mysql-bin.000010` sorts after `mysql-bin.000009` even once the extension outgrows
/// its zero padding.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct BinlogCoordinate<'a> {
    base: &'a str,
    number: u64,
    pos: u64,
}

impl<'a> BinlogCoordinate<'a> {
    /// Parses `mysql-bin.000003:1234` with an optional ` (gtid …)` suffix.
    fn parse(text: &'a str) -> Option<BinlogCoordinate<'a>> {
        let head = text.split_whitespace().next()?;
        let (file, pos) = head.rsplit_once(':')?;
        let (base, number) = file.rsplit_once('.')?;
        Some(BinlogCoordinate {
            base,
            number: number.parse().ok()?,
            pos: pos.parse().ok()?,
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

/// Every view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewsOut {
    /// The engine tick (`null` before the first).
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The views, in the shape of `oracle.py`.
    #[schema(value_type = Object)]
    pub views: serde_json::Value,
}

/// One view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewOut {
    /// The engine tick.
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The view name.
    pub view: String,
    /// Its value: an object of counts, or for `responsible_load` an array of rows.
    pub value: serde_json::Value,
}

/// The view names (defined once, in the engine).
pub const VIEW_NAMES: [&str; 9] = lpm_engine::ViewName::NAMES;

/// `{name}` of `/api/v1/views/{name}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ViewName {
    /// The view.
    #[param(schema_with = view_name_schema)]
    pub name: String,
}

fn view_name_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input_schema::one_of(&VIEW_NAMES, false)
}

fn snapshot(state: &AppState) -> ApiResult<(Option<u64>, Vec<SourcePosition>, serde_json::Value)> {
    let (tick, views) = state.engine.store().read_shared();
    let positions = tick.map(|t| state.position_at(t)).into_iter().collect();
    let json = serde_json::to_value(&*views)
        .map_err(|e| ApiError::Internal(format!("views did not serialise: {e}")))?;
    Ok((tick, positions, json))
}

/// Every view.
#[utoipa::path(get, path = "/api/v1/views", tag = "views",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "Every view at one tick", body = ViewsOut)))]
pub async fn all_views(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
) -> ApiResult<axum::Json<ViewsOut>> {
    let (tick, positions, views) = snapshot(&state)?;
    Ok(axum::Json(ViewsOut {
        tick,
        positions,
        views,
    }))
}

/// One view by name.
#[utoipa::path(get, path = "/api/v1/views/{name}", tag = "views",
    params(ViewName),
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The view at one tick", body = ViewOut),
        (status = 404, description = "No such view", body = ErrorBody)))]
pub async fn one_view(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ViewOut>> {
    if !VIEW_NAMES.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!("view {name}")));
    }
    let (tick, positions, mut views) = snapshot(&state)?;
    let value = views
        .get_mut(&name)
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    Ok(axum::Json(ViewOut {
        tick,
        positions,
        view: name,
        value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(seq: u64) -> SourcePosition {
        SourcePosition {
            source: "embedded-log".into(),
            log_seq: seq,
            binlog: None,
            offsets: Vec::new(),
        }
    }

    fn binlog(at: Option<&str>) -> SourcePosition {
        SourcePosition {
            source: "mysql-binlog".into(),
            log_seq: 0,
            binlog: at.map(str::to_string),
            offsets: Vec::new(),
        }
    }

    fn kafka(offsets: &[(&str, i32, i64)]) -> SourcePosition {
        SourcePosition {
            source: "kafka".into(),
            log_seq: 0,
            binlog: None,
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
        assert!(matches!(
            binlog(Some("garbage")).coverage(&binlog(Some("mysql-bin.000001:4"))),
            Coverage::Incomparable(_)
        ));
        assert!(binlog(Some("garbage")).covers(&binlog(Some("mysql-bin.000001:4"))));
    }
}
