//! The shape of a captured table (columns, kinds, primary key), read from a binlog TABLE_MAP
//! event with FULL row metadata (streaming) or from `information_schema` (snapshot), and how one
//! row of it becomes Debezium's key and row image.

use std::fmt::Write as _;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use mysql_async::Value;

use super::column::{binlog_json, text_json, ColumnKind, ColumnSpec, ValueError};
use crate::debezium::encode::json_str;

/// A captured table's columns in DDL order and its primary-key columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Columns in DDL order.
    pub columns: Vec<ColumnSpec>,
    /// Indexes into `columns` of the primary key, in key order.
    pub key: Vec<usize>,
}

/// Why a TABLE_MAP event cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// `binlog_row_metadata` is not FULL (no column names).
    #[error(
        "{db}.{table}: the binlog has no column names; set binlog_row_metadata=FULL on the server"
    )]
    NoColumnNames {
        /// Database.
        db: String,
        /// Table.
        table: String,
    },
    /// The metadata could not be read.
    #[error("{db}.{table}: unreadable table map: {reason}")]
    Unreadable {
        /// Database.
        db: String,
        /// Table.
        table: String,
        /// Why.
        reason: String,
    },
}

impl TableShape {
    /// From a TABLE_MAP event. Needs `binlog_row_metadata=FULL` for names, keys, signedness,
    /// charsets and ENUM/SET values.
    pub fn from_table_map(tme: &TableMapEvent<'_>) -> Result<TableShape, ShapeError> {
        let db = tme.database_name().into_owned();
        let table = tme.table_name().into_owned();
        let unreadable = |reason: String| ShapeError::Unreadable {
            db: db.clone(),
            table: table.clone(),
            reason,
        };
        let n = usize::try_from(tme.columns_count()).map_err(|e| unreadable(e.to_string()))?;
        super::table_map::check_value_counts(tme).map_err(&unreadable)?;
        let mut names = Vec::new();
        let mut signedness = Vec::new();
        let mut key = Vec::new();
        let mut enum_values: Vec<Vec<String>> = Vec::new();
        let mut set_values: Vec<Vec<String>> = Vec::new();
        let mut default_charset: Option<(u16, Vec<(usize, u16)>)> = None;
        let mut column_charsets: Option<Vec<u16>> = None;
        for field in tme.iter_optional_meta() {
            match field.map_err(|e| unreadable(e.to_string()))? {
                OptionalMetadataField::ColumnName(cols) => {
                    for name in cols.iter_names() {
                        names.push(
                            name.map_err(|e| unreadable(e.to_string()))?
                                .name()
                                .into_owned(),
                        );
                    }
                }
                OptionalMetadataField::Signedness(bits) => {
                    signedness = bits.iter().by_vals().collect();
                }
                OptionalMetadataField::SimplePrimaryKey(pk) => {
                    for i in pk.iter_indexes() {
                        key.push(
                            usize::try_from(i.map_err(|e| unreadable(e.to_string()))?)
                                .map_err(|e| unreadable(e.to_string()))?,
                        );
                    }
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                    for k in pk.iter_keys() {
                        let k = k.map_err(|e| unreadable(e.to_string()))?;
                        key.push(
                            usize::try_from(k.column_index())
                                .map_err(|e| unreadable(e.to_string()))?,
                        );
                    }
                }
                OptionalMetadataField::EnumStrValue(vals) => {
                    for v in vals.iter_values() {
                        let v = v.map_err(|e| unreadable(e.to_string()))?;
                        enum_values
                            .push(v.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
                OptionalMetadataField::SetStrValue(vals) => {
                    for v in vals.iter_values() {
                        let v = v.map_err(|e| unreadable(e.to_string()))?;
                        set_values
                            .push(v.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
                OptionalMetadataField::DefaultCharset(dc) => {
                    let mut non_default = Vec::new();
                    for x in dc.iter_non_default() {
                        let x = x.map_err(|e| unreadable(e.to_string()))?;
                        non_default.push((
                            usize::try_from(x.column_index()).unwrap_or(usize::MAX),
                            x.charset(),
                        ));
                    }
                    default_charset = Some((dc.default_charset(), non_default));
                }
                OptionalMetadataField::ColumnCharset(cc) => {
                    let mut all = Vec::new();
                    for c in cc.iter_charsets() {
                        all.push(c.map_err(|e| unreadable(e.to_string()))?);
                    }
                    column_charsets = Some(all);
                }
                _ => {}
            }
        }
        if names.len() != n {
            return Err(ShapeError::NoColumnNames { db, table });
        }
        let (mut numeric_i, mut char_i, mut enum_i, mut set_i) = (0usize, 0usize, 0usize, 0usize);
        let mut columns = Vec::with_capacity(n);
        for (i, name) in names.into_iter().enumerate() {
            let ty = tme
                .get_column_type(i)
                .map_err(|e| unreadable(e.to_string()))?
                .ok_or_else(|| unreadable(format!("column {i} has no type")))?;
            let meta = tme.get_column_metadata(i).unwrap_or(&[]);
            // mysql_common indexes a column's metadata bytes by its type while reading a row,
            // without checking their length: a TABLE_MAP cut short (no server writes one)
            // would panic on the first row, so the shape refuses it up front
            let needed = metadata_bytes(ty);
            if meta.len() < needed {
                return Err(unreadable(format!(
                    "column {name} of type {ty:?} has {} metadata bytes, {needed} expected",
                    meta.len()
                )));
            }
            // mysql_common reads a DECIMAL(p, s) value as p - s integer digits: s > p (which no
            // server writes) would underflow on the first row, a panic or a huge allocation
            if let (ColumnType::MYSQL_TYPE_NEWDECIMAL, [precision, scale, ..]) = (ty, meta) {
                if scale > precision {
                    return Err(unreadable(format!(
                        "column {name} is DECIMAL({precision},{scale}): more scale than precision"
                    )));
                }
            }
            let unsigned = if ty.is_numeric_type() {
                let u = signedness.get(numeric_i).copied().unwrap_or(false);
                numeric_i += 1;
                u
            } else {
                false
            };
            let charset = if ty.is_character_type() {
                let c = match (&default_charset, &column_charsets) {
                    (Some((default, non_default)), _) => non_default
                        .iter()
                        .find(|(idx, _)| *idx == char_i)
                        .map_or(*default, |(_, c)| *c),
                    (None, Some(all)) => all.get(char_i).copied().unwrap_or(0),
                    (None, None) => 0,
                };
                char_i += 1;
                c
            } else {
                0
            };
            let values = match ty {
                ColumnType::MYSQL_TYPE_ENUM => {
                    enum_i += 1;
                    enum_values.get(enum_i - 1).cloned()
                }
                ColumnType::MYSQL_TYPE_SET => {
                    set_i += 1;
                    set_values.get(set_i - 1).cloned()
                }
                _ => None,
            };
            columns.push(ColumnSpec {
                name,
                kind: ColumnKind::from_binlog(ty, meta, unsigned, charset, values),
            });
        }
        Ok(TableShape {
            db,
            table,
            columns,
            key,
        })
    }

    /// Whether the table has a primary key (Debezium keys records by it; we skip keyless tables).
    pub fn has_key(&self) -> bool {
        !self.key.is_empty()
    }

    /// The Kafka key (`{"id":5}`) picked out of a row image already encoded column by column.
    pub fn key_of(&self, column_json: &[String]) -> String {
        let mut out = String::from("{");
        for (n, &i) in self.key.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let name = self.columns.get(i).map_or("", |c| c.name.as_str());
            let v = column_json.get(i).map_or("null", String::as_str);
            let _ = write!(out, "{}:{v}", json_str(name));
        }
        out.push('}');
        out
    }
}

/// A row image plus its key, encoded together so each value is encoded once.
pub struct EncodedRow {
    /// `{"col":v,...}`.
    pub image: String,
    /// `{"id":v}`.
    pub key: String,
}

impl TableShape {
    /// Encodes a binlog row into image and key.
    pub fn encode_binlog(&self, values: &[Option<Value>]) -> Result<EncodedRow, ValueError> {
        let cells: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| match values.get(i).and_then(|v| v.as_ref()) {
                Some(v) => binlog_json(&col.name, &col.kind, v),
                None => Ok("null".into()),
            })
            .collect::<Result<_, _>>()?;
        Ok(self.assemble(cells))
    }

    /// Encodes a text-protocol row into image and key.
    pub fn encode_text(&self, values: &[Option<&[u8]>]) -> Result<EncodedRow, ValueError> {
        let cells: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| text_json(&col.name, &col.kind, values.get(i).copied().flatten()))
            .collect::<Result<_, _>>()?;
        Ok(self.assemble(cells))
    }

    fn assemble(&self, cells: Vec<String>) -> EncodedRow {
        let key = self.key_of(&cells);
        let mut image =
            String::with_capacity(cells.iter().map(|c| c.len() + 16).sum::<usize>() + 2);
        image.push('{');
        for (i, (col, cell)) in self.columns.iter().zip(&cells).enumerate() {
            if i > 0 {
                image.push(',');
            }
            let _ = write!(image, "{}:{cell}", json_str(&col.name));
        }
        image.push('}');
        EncodedRow { image, key }
    }
}

/// How many metadata bytes mysql_common's row reader indexes for a column of type `ty`.
fn metadata_bytes(ty: ColumnType) -> usize {
    use ColumnType::*;
    match ty {
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_BIT
        | MYSQL_TYPE_NEWDECIMAL
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET
        | MYSQL_TYPE_TYPED_ARRAY => 2,
        MYSQL_TYPE_TIMESTAMP2
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIME2
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_GEOMETRY
        | MYSQL_TYPE_VECTOR => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use mysql_async::binlog::events::{Event, FormatDescriptionEvent};
    use mysql_async::binlog::BinlogVersion;

    use super::*;

    /// A binlog TABLE_MAP event of `d.t` with one column `c`, its primary key, of type `ty`.
    fn table_map_event(ty: u8, meta: &[u8]) -> Event {
        table_map_event_with(ty, meta, &[])
    }

    /// [`table_map_event`] with `extra` optional-metadata fields after the name and the key.
    fn table_map_event_with(ty: u8, meta: &[u8], extra: &[u8]) -> Event {
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0]; // table id 1, flags
        body.extend_from_slice(&[1, b'd', 0, 1, b't', 0]);
        body.extend_from_slice(&[1, ty, meta.len() as u8]); // one column: type, metadata
        body.extend_from_slice(meta);
        body.push(0); // null bitmap
        body.extend_from_slice(&[4, 2, 1, b'c']); // optional metadata: COLUMN_NAME ["c"]
        body.extend_from_slice(&[8, 1, 0]); // SIMPLE_PRIMARY_KEY [0]
        body.extend_from_slice(extra);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes()); // timestamp
        bytes.push(19); // TABLE_MAP_EVENT
        bytes.extend_from_slice(&1u32.to_le_bytes()); // server id
        bytes.extend_from_slice(&(19 + body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes()); // next position
        bytes.extend_from_slice(&0u16.to_le_bytes()); // flags
        bytes.extend_from_slice(&body);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        Event::read(&fde, &bytes[..]).expect("a TABLE_MAP event")
    }

    #[test]
    fn a_decimal_with_more_scale_than_precision_is_refused() {
        // Found by fuzz/binlog_rows: mysql_common sizes a DECIMAL(p, s) value with p - s integer
        // digits, which underflows for s > p (a panic, or a huge allocation in a release build)
        // as soon as a row of the table is read. The shape is read first, so it refuses.
        let ok = table_map_event(246, &[10, 2]);
        let tme = ok.read_event::<TableMapEvent<'_>>().expect("table map");
        let shape = TableShape::from_table_map(&tme).expect("DECIMAL(10,2)");
        assert_eq!(shape.columns[0].kind, ColumnKind::Decimal { scale: 2 });
        let bad = table_map_event(246, &[2, 9]);
        let tme = bad.read_event::<TableMapEvent<'_>>().expect("table map");
        let refused = TableShape::from_table_map(&tme);
        assert!(
            matches!(refused, Err(ShapeError::Unreadable { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_column_with_too_few_metadata_bytes_is_refused() {
        // Found by fuzz/binlog_rows: mysql_common reads a VARCHAR's length from two metadata
        // bytes without checking that the TABLE_MAP has them, so a short one panicked on the
        // first row. The shape refuses it before any row is read.
        let ok = table_map_event(15, &[0x20, 0x00]); // VARCHAR(32)
        let tme = ok.read_event::<TableMapEvent<'_>>().expect("table map");
        assert!(TableShape::from_table_map(&tme).is_ok());
        for (ty, meta) in [(15u8, &[0x20][..]), (247, &[][..]), (252, &[][..])] {
            let bad = table_map_event(ty, meta);
            let tme = bad.read_event::<TableMapEvent<'_>>().expect("table map");
            let refused = TableShape::from_table_map(&tme);
            assert!(
                matches!(refused, Err(ShapeError::Unreadable { .. })),
                "type {ty} with {} metadata bytes: {refused:?}",
                meta.len()
            );
        }
    }

    #[test]
    fn an_enum_value_count_past_the_event_is_refused() {
        // Found by fuzz/binlog_rows: mysql_common allocates an ENUM's list of values by the
        // count in the event before reading them; a corrupt count aborted the process.
        // ENUM('a','bc') as MySQL writes it: a STRING column (254) with ENUM in its metadata.
        let values = [6, 6, 2, 1, b'a', 2, b'b', b'c']; // ENUM_STR_VALUE, 6 bytes, 2 values
        let ok = table_map_event_with(254, &[247, 1], &values);
        let tme = ok.read_event::<TableMapEvent<'_>>().expect("table map");
        let shape = TableShape::from_table_map(&tme).expect("an ENUM column");
        assert_eq!(
            shape.columns[0].kind,
            ColumnKind::Enum(vec!["a".into(), "bc".into()])
        );
        // the same field claiming 2^40 values
        let huge = [6, 9, 0xfe, 0, 0, 0, 0, 1, 0, 0, 0];
        let bad = table_map_event_with(254, &[247, 1], &huge);
        let tme = bad.read_event::<TableMapEvent<'_>>().expect("table map");
        let refused = TableShape::from_table_map(&tme);
        assert!(
            matches!(refused, Err(ShapeError::Unreadable { .. })),
            "{refused:?}"
        );
    }

    fn shape() -> TableShape {
        TableShape {
            db: "d".into(),
            table: "t".into(),
            columns: vec![
                ColumnSpec {
                    name: "id".into(),
                    kind: ColumnKind::Int {
                        bytes: 8,
                        unsigned: false,
                    },
                },
                ColumnSpec {
                    name: "name".into(),
                    kind: ColumnKind::Text,
                },
            ],
            key: vec![0],
        }
    }

    #[test]
    fn both_paths_give_the_same_image_and_key() {
        let s = shape();
        let a = s
            .encode_binlog(&[
                Some(Value::Int(7)),
                Some(Value::Bytes(b"Pe\xc3\xb1a".to_vec())),
            ])
            .expect("binlog");
        let b = s
            .encode_text(&[Some(b"7"), Some("Peña".as_bytes())])
            .expect("text");
        assert_eq!(a.image, "{\"id\":7,\"name\":\"Peña\"}");
        assert_eq!(a.image, b.image);
        assert_eq!(a.key, "{\"id\":7}");
        assert_eq!(a.key, b.key);
        let n = s.encode_binlog(&[Some(Value::Int(7)), None]).expect("ok");
        assert_eq!(n.image, "{\"id\":7,\"name\":null}");
        assert_eq!(
            n.image,
            s.encode_text(&[Some(b"7"), None]).expect("ok").image
        );
    }
}
