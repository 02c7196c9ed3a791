//! `kcat -C -J` lines through the topic-dump decoder: the kcat record (fast path and any-order
//! fallback), the Debezium envelope in every variant, the schema caches, column values, and the
//! mapping to engine changes.
//!
//! The input is a dump: lines separated by `\n`, decoded in order by one worker decoder (so
//! the schema learned from one line serves the next, as in `DumpFeed`). Checks, besides "no
//! panic": each line decoded a second time, now with warm caches, gives the same outcome as
//! the first time (a cache must never change what a record means).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use lpm_connectors::debezium::rows::RowShape;
use lpm_connectors::fuzzing::KcatLineDecoder;
use lpm_connectors::{Catalog, DecodeStats};

/// The foreign tables of the shared Debezium fixtures (every MySQL column type), beside lpm's
/// (the DDL of `connectors/tests/fixtures.rs`).
const FIXTURE_DDL: &str = "
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

static CATALOG: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    let mut catalog = Catalog::lpm();
    let fixtures = Catalog::parse(FIXTURE_DDL).expect("fixture DDL parses");
    for name in fixtures.table_names() {
        if let Some(t) = fixtures.table(name) {
            catalog.insert(t.clone());
        }
    }
    Arc::new(catalog)
});

fuzz_target!(|data: &[u8]| {
    let mut decoder = KcatLineDecoder::new(CATALOG.clone());
    let stats = DecodeStats::default();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let seq = i as u64 + 1;
        let first = decoder.decode(line, seq);
        let again = decoder.decode(line, seq);
        match (&first, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "a warm cache changed the decoded event"),
            (Err(a), Err(b)) => assert_eq!(
                a.reason(),
                b.reason(),
                "a warm cache changed the error: {a} / {b}"
            ),
            _ => panic!("a warm cache changed the outcome: {first:?} / {again:?}"),
        }
        if let Err(e) = &first {
            // what the dead letter and the log line carry
            let _ = (e.reason(), e.to_string());
        }
        match stats.change_of(first, RowShape::Full) {
            Ok(_) => {}
            Err(e) => {
                let _ = (e.reason(), e.to_string());
            }
        }
        let _ = stats.change_of(again, RowShape::ViewsOnly);
    }
});
