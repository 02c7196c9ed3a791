//! Every shared Debezium fixture (real messages from public projects, copied verbatim into
//! `tests/fixtures/debezium/`; origins in its README) decodes to the end state its README gives.
//!
//! The fixtures use foreign tables, so each test declares their DDL in a catalog, decodes with
//! the generic decoder and applies events by key and position exactly as the engine's upsert does.

use std::collections::BTreeMap;
use std::sync::Arc;

use lpm_connectors::debezium::value::Value;
use lpm_connectors::debezium::{Decoded, Decoder, Op, Skip};
use lpm_connectors::Catalog;
use lpm_engine::change::{Freshness, Position};
use lpm_engine::model::Decimal;

const DDL: &str = "
CREATE TABLE products (id INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, description VARCHAR(512), weight FLOAT);
CREATE TABLE customers (id INT NOT NULL PRIMARY KEY, first_name VARCHAR(255) NOT NULL, last_name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL);
CREATE TABLE orders (order_number INT NOT NULL PRIMARY KEY, order_date DATE NOT NULL, purchaser INT NOT NULL, quantity INT NOT NULL, product_id INT NOT NULL);
CREATE TABLE rw_orders (O_KEY BIGINT NOT NULL PRIMARY KEY, O_BOOL BOOLEAN, O_TINY TINYINT, O_INT INT, O_REAL REAL, O_DOUBLE DOUBLE,
  O_DECIMAL DECIMAL(15,2), O_CHAR CHAR(15), O_DATE DATE, O_TIME TIME, O_DATETIME DATETIME, O_TIMESTAMP TIMESTAMP, O_JSON JSON);
CREATE TABLE full_types (id SERIAL, tiny_c TINYINT, tiny_un_c TINYINT UNSIGNED, small_c SMALLINT, int_c INT, big_c BIGINT,
  big_un_c BIGINT UNSIGNED, varchar_c VARCHAR(255), real_c REAL, double_c DOUBLE, decimal_c DECIMAL(8,4), numeric_c NUMERIC(6,0),
  big_decimal_c DECIMAL(65,1), bit1_c BIT(1), tiny1_c TINYINT(1), boolean_c BOOLEAN, date_c DATE, time_c TIME(0),
  datetime3_c DATETIME(3), datetime6_c DATETIME(6), timestamp_c TIMESTAMP(0), bit_c BIT(64), year_c YEAR,
  enum_c ENUM('red','white'), set_c SET('a','b','c'), json_c JSON, PRIMARY KEY (id));
";

type State = BTreeMap<(String, i64), (Position, Option<Vec<Value>>)>;

struct Fixture {
    decoder: Decoder,
    catalog: Arc<Catalog>,
    state: State,
    seq: u64,
    skipped: Vec<Skip>,
}

impl Fixture {
    fn new() -> Fixture {
        let catalog = Arc::new(Catalog::parse(DDL).expect("fixture DDL parses"));
        Fixture {
            decoder: Decoder::new(catalog.clone()),
            catalog,
            state: State::new(),
            seq: 0,
            skipped: vec![],
        }
    }

    fn feed(&mut self, topic: &str, key: Option<&str>, value: Option<&str>) {
        self.seq += 1;
        let decoded = self
            .decoder
            .decode(topic, key, value, self.seq)
            .unwrap_or_else(|e| panic!("decoding {value:?}: {e}"));
        let event = match decoded {
            Decoded::Event(e) => e,
            Decoded::Skipped(s) => return self.skipped.push(s),
        };
        let table = event.table.name.clone();
        if let Op::Truncate = event.op {
            self.state.retain(|(t, _), _| *t != table);
            return;
        }
        let key = (table, event.key.expect("row events have keys"));
        let slot = self.state.get(&key);
        match event.op {
            Op::Tombstone => {
                if let Some((p, Some(_))) = slot {
                    let p = *p;
                    self.state.insert(key, (p, None));
                }
            }
            op => {
                if let Some((stored, _)) = slot {
                    if event.position.freshness(stored) != Freshness::Newer {
                        return;
                    }
                }
                let row = match op {
                    Op::Upsert(values) => Some(values),
                    _ => None,
                };
                self.state.insert(key, (event.position, row));
            }
        }
    }

    fn lines(&mut self, topic: &str, file: &str) {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/debezium/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.feed(topic, None, Some(line));
        }
    }

    fn key_values(&mut self, topic_of: impl Fn(&str) -> String, file: &str) {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/debezium/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('\t').expect("key<TAB>value");
            let v = (v != "null").then_some(v);
            self.feed(&topic_of(v.unwrap_or("")), Some(k), v);
        }
    }

    /// Rows of `table`: key -> column values by name.
    fn rows(&self, table: &str) -> BTreeMap<i64, BTreeMap<String, Value>> {
        let def = self.catalog.table(table).expect("table");
        self.state
            .iter()
            .filter(|((t, _), (_, r))| t == table && r.is_some())
            .map(|((_, k), (_, r))| {
                let cols = def
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(r.clone().expect("row"))
                    .collect();
                (*k, cols)
            })
            .collect()
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn customer_names(f: &Fixture) -> Vec<(i64, String, String)> {
    f.rows("customers")
        .into_iter()
        .map(|(k, c)| {
            let name = |n: &str| match &c[n] {
                Value::Text(s) => s.clone(),
                other => panic!("{n}: {other:?}"),
            };
            (k, name("first_name"), name("last_name"))
        })
        .collect()
}

#[test]
fn flink_products_legacy_snapshot_as_creates() {
    let mut f = Fixture::new();
    f.lines(
        "dbserver1.inventory.products",
        "flink/products-dbz1.1-schema-include.jsonl",
    );
    let rows = f.rows("products");
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        (101..=110).collect::<Vec<_>>(),
        "111 was deleted"
    );
    assert_eq!(rows[&106]["name"], text("hammer"));
    assert_eq!(rows[&106]["description"], text("18oz carpenter hammer"));
    assert_eq!(rows[&106]["weight"], Value::Float(1.0));
    assert_eq!(rows[&107]["weight"], Value::Float(5.099999904632568));
    assert_eq!(
        rows[&110]["description"],
        text("new water resistent white wind breaker")
    );
    assert_eq!(rows[&110]["weight"], Value::Float(0.5));
    assert_eq!(rows[&101]["weight"], Value::Float(3.140000104904175));
}

fn risingwave_customers(file: &str) {
    let mut f = Fixture::new();
    f.lines("dbserver1.inventory.customers", file);
    assert_eq!(
        customer_names(&f),
        vec![
            (1001, "Sally".into(), "Thomas".into()),
            (1002, "George".into(), "Bailey".into()),
            (1003, "Edward".into(), "Walker".into()),
            (1004, "Anne1".into(), "Kretchmar".into()),
            (1005, "add".into(), "add2".into()),
        ]
    );
}

#[test]
fn risingwave_customers_with_schema() {
    risingwave_customers("risingwave/customers-dbz1.9-schema-include.jsonl");
}

#[test]
fn risingwave_customers_without_schema() {
    risingwave_customers("risingwave/customers-dbz1.9-schema-exclude.jsonl");
}

#[test]
fn risingwave_embedded_cud_retracts_by_key_not_before_image() {
    let mut f = Fixture::new();
    f.lines(
        "rw.test.rw_orders",
        "risingwave/orders-dbz1.9-rw-embedded-cud.jsonl",
    );
    assert!(f.rows("rw_orders").is_empty());
}

#[test]
fn risingwave_embedded_snapshot_last() {
    let mut f = Fixture::new();
    f.lines(
        "rw.test.rw_orders",
        "risingwave/orders-dbz1.9-rw-embedded-snapshot-last.jsonl",
    );
    let rows = f.rows("rw_orders");
    let r = &rows[&111];
    assert_eq!(r["O_BOOL"], Value::Bool(true));
    assert_eq!(r["O_TINY"], Value::Int(-1));
    assert_eq!(
        r["O_DECIMAL"],
        Value::Decimal(Decimal {
            unscaled: -11111,
            scale: 2
        })
    );
    assert_eq!(r["O_DATETIME"], Value::WallClock(0));
    assert_eq!(r["O_TIMESTAMP"], Value::Instant(1000));
    let (pos, _) = &f.state[&("rw_orders".to_string(), 111)];
    assert!(pos.coords.is_some_and(|c| !c.streamed), "a snapshot read");
}

#[test]
fn schema_change_event_is_not_a_row() {
    let mut f = Fixture::new();
    f.lines("dbserver1", "risingwave/schema-change-dbz2.4-mysql.jsonl");
    assert_eq!(f.skipped, vec![Skip::SchemaChange]);
    assert!(f.state.is_empty());
}

#[test]
fn transaction_markers_are_not_rows() {
    let mut f = Fixture::new();
    f.lines(
        "dbserver1.transaction",
        "risingwave/transaction-topic-postgres.jsonl",
    );
    assert_eq!(f.skipped, vec![Skip::Transaction, Skip::Transaction]);
}

#[test]
fn tutorial_key_value_with_old_tombstone() {
    let mut f = Fixture::new();
    f.key_values(
        |_| "dbserver1.inventory.customers".into(),
        "debezium-tutorial/customers-keyvalue-schema-include.tsv",
    );
    let rows = f.rows("customers");
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        vec![1001, 1002, 1003, 1005, 1006],
        "1004 deleted"
    );
    assert_eq!(rows[&1005]["email"], text("kitt@acme.com"));
    assert_eq!(rows[&1006]["email"], text("kander@acme.com"));
    assert_eq!(
        customer_names(&f)[3],
        (1005, "Sarah".into(), "Thompson".into())
    );
}

#[test]
fn debezium_3_engine_update_of_a_never_seen_row() {
    let mut f = Fixture::new();
    f.lines(
        "dbserver1.inventory.customers",
        "debezium-examples/customers-dbz3.0-engine-schema-exclude.jsonl",
    );
    assert_eq!(
        customer_names(&f),
        vec![
            (1001, "Sarah".into(), "Thomas".into()),
            (1004, "Anne".into(), "Kretchmar".into())
        ]
    );
}

#[test]
fn hazelcast_flattened_rewrite() {
    let mut f = Fixture::new();
    f.key_values(
        |v| {
            let table = if v.contains("\"__table\":\"orders\"") {
                "orders"
            } else {
                "customers"
            };
            format!("dbserver1.inventory.{table}")
        },
        "hazelcast-jet/inventory-flattened-rewrite-keyvalue.tsv",
    );
    assert_eq!(
        f.rows("orders").keys().copied().collect::<Vec<_>>(),
        vec![10002, 10003]
    );
    assert_eq!(f.rows("orders")[&10002]["order_date"], Value::Date(16817));
    assert_eq!(
        customer_names(&f),
        vec![(1003, "Edward".into(), "Walker".into())]
    );
}

fn full_types(file: &str, numeric: bool) {
    let mut f = Fixture::new();
    f.lines("mysql_binlog_source.column_type_test.full_types", file);
    let rows = f.rows("full_types");
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), vec![1]);
    let r = &rows[&1];
    let dec = |u: i128, scale| Value::Decimal(Decimal { unscaled: u, scale });
    assert_eq!(r["id"], dec(1, 0));
    assert_eq!(r["decimal_c"], dec(1_234_567, 4));
    assert_eq!(r["numeric_c"], dec(346, 0));
    assert_eq!(r["big_decimal_c"], dec(345_678_921, 1));
    assert_eq!(r["big_un_c"], dec(18_446_744_073_709_551_615, 0));
    assert_eq!(r["big_c"], Value::Int(i64::MAX));
    assert_eq!(r["bit1_c"], Value::Bool(false));
    assert_eq!(r["tiny1_c"], Value::Bool(true));
    assert_eq!(r["boolean_c"], Value::Bool(true));
    assert_eq!(r["date_c"], Value::Date(18460));
    assert_eq!(r["time_c"], Value::Time(64_822_000_000));
    assert_eq!(r["datetime3_c"], Value::WallClock(1_595_008_822_123_000));
    assert_eq!(r["datetime6_c"], Value::WallClock(1_595_008_822_123_456));
    assert_eq!(
        r["timestamp_c"],
        Value::Instant(1_595_010_802_000),
        "the update's 18:33:22Z"
    );
    assert_eq!(r["year_c"], Value::Int(2021));
    assert_eq!(r["enum_c"], text("red"));
    assert_eq!(r["set_c"], text("a,b"));
    assert_eq!(
        r["json_c"],
        text("{\"key1\":\"value1\"}"),
        "the binlog row's JSON text"
    );
    if !numeric {
        assert_eq!(r["bit_c"], Value::Bytes(vec![4; 8]));
    }
}

#[test]
fn flink_cdc_full_types_with_stale_schema() {
    full_types("flink-cdc/full-types-dbz1.5-schema-include.jsonl", false);
}

#[test]
fn flink_cdc_full_types_base64_decimals() {
    full_types(
        "flink-cdc/full-types-schema-exclude-base64-decimal.jsonl",
        false,
    );
}

#[test]
fn flink_cdc_full_types_numeric_decimals() {
    full_types(
        "flink-cdc/full-types-schema-exclude-numeric-decimal.jsonl",
        true,
    );
}
