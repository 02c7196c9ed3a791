//! The column catalog: each table's columns, types and primary key, parsed from MySQL DDL.
//!
//! Debezium's JSON without schemas loses the column types (DECIMAL scale, DATETIME vs TIMESTAMP
//! precision), so they come from here, never from the values' magnitudes. The default catalog is
//! `data/schema.sql`, a copy of the project's canonical schema.

use std::collections::HashMap;

use crate::error::CatalogError;

/// How a MySQL column type arrives from Debezium and what it decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Integer types, any width; decoded to `i64` (BIGINT UNSIGNED above `i64::MAX` becomes a decimal).
    Int,
    /// TINYINT(1) / BOOLEAN: 0/1 as int8/int16, or a boolean with a converter.
    Flag,
    /// DECIMAL(p, s) / NUMERIC.
    Decimal {
        /// Digits after the point.
        scale: u32,
    },
    /// FLOAT / DOUBLE / REAL.
    Float,
    /// CHAR / VARCHAR / TEXT / ENUM / SET / JSON.
    Text,
    /// DATETIME(fsp): a local wall-clock time, sent as if it were UTC.
    DateTime {
        /// Fractional-second digits (0-6): 0-3 arrive as milliseconds, 4-6 as microseconds.
        fsp: u32,
    },
    /// TIMESTAMP(fsp): an instant, sent as an ISO-8601 UTC string.
    Timestamp,
    /// DATE: days since the epoch.
    Date,
    /// TIME: microseconds since midnight.
    Time,
    /// YEAR.
    Year,
    /// BIT(n) / BINARY / BLOB: base64 bytes.
    Bytes,
}

/// One column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// One table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDef {
    /// Table name.
    pub name: String,
    /// Columns in DDL order.
    pub columns: Vec<ColumnDef>,
    /// The primary-key column (single-column keys only).
    pub primary_key: String,
}

impl TableDef {
    /// The index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Tables by name.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    tables: HashMap<String, TableDef>,
}

/// The canonical schema, embedded.
pub const LPM_SCHEMA: &str = include_str!("../data/schema.sql");

impl Catalog {
    /// The lpm schema (`data/schema.sql`).
    pub fn lpm() -> Catalog {
        // The embedded schema is tested to parse; an error here is a build defect.
        Catalog::parse(LPM_SCHEMA).unwrap_or_default()
    }

    /// Parses `CREATE TABLE` statements (the subset of MySQL DDL our schemas use).
    pub fn parse(ddl: &str) -> Result<Catalog, CatalogError> {
        let mut tables = HashMap::new();
        let text = strip_comments(ddl);
        let lower = text.to_ascii_lowercase();
        let mut at = 0;
        while let Some(i) = lower[at..].find("create table") {
            let start = at + i + "create table".len();
            let open = lower[start..]
                .find('(')
                .map(|o| start + o)
                .ok_or(CatalogError::Syntax("missing '('".into()))?;
            let name = clean_ident(
                text[start..open]
                    .trim()
                    .trim_start_matches("IF NOT EXISTS")
                    .trim_start_matches("if not exists"),
            );
            let close = matching_paren(&text, open).ok_or_else(|| {
                CatalogError::Syntax(format!("unbalanced parentheses in table {name}"))
            })?;
            let table = parse_table(&name, &text[open + 1..close])?;
            tables.insert(name, table);
            at = close;
        }
        Ok(Catalog { tables })
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.get(name)
    }

    /// Every table name (unordered).
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Adds or replaces a table.
    pub fn insert(&mut self, table: TableDef) {
        self.tables.insert(table.name.clone(), table);
    }
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .map(|l| l.find("--").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn clean_ident(s: &str) -> String {
    s.trim()
        .trim_matches('`')
        .rsplit('.')
        .next()
        .unwrap_or("")
        .trim_matches('`')
        .to_string()
}

fn matching_paren(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits a column list at top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut last) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[last..]);
    parts
}

fn parse_table(name: &str, body: &str) -> Result<TableDef, CatalogError> {
    let mut columns = Vec::new();
    let mut primary_key = None;
    for part in split_top(body) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let upper = part.to_ascii_uppercase();
        if upper.starts_with("PRIMARY KEY") {
            let inner = part
                .find('(')
                .zip(part.rfind(')'))
                .map(|(a, b)| &part[a + 1..b])
                .unwrap_or("");
            primary_key = Some(clean_ident(inner.split(',').next().unwrap_or("")));
            continue;
        }
        if [
            "KEY",
            "INDEX",
            "UNIQUE",
            "CONSTRAINT",
            "FOREIGN",
            "FULLTEXT",
            "SPATIAL",
            "CHECK",
        ]
        .iter()
        .any(|k| upper.starts_with(k))
        {
            continue;
        }
        let mut words = part.split_whitespace();
        let col = clean_ident(words.next().unwrap_or(""));
        let ty_text = words.next().unwrap_or("");
        let rest_upper = upper
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ");
        let ty = column_type(ty_text, &rest_upper).ok_or_else(|| CatalogError::UnknownType {
            table: name.into(),
            column: col.clone(),
            ty: ty_text.into(),
        })?;
        let is_pk = rest_upper.contains("PRIMARY KEY");
        let nullable = !rest_upper.contains("NOT NULL") && !is_pk;
        if is_pk {
            primary_key = Some(col.clone());
        }
        columns.push(ColumnDef {
            name: col,
            ty,
            nullable,
        });
    }
    let primary_key = primary_key.ok_or_else(|| CatalogError::NoPrimaryKey(name.into()))?;
    Ok(TableDef {
        name: name.into(),
        columns,
        primary_key,
    })
}

fn type_args(ty: &str) -> Vec<u32> {
    ty.find('(')
        .zip(ty.rfind(')'))
        .map(|(a, b)| {
            ty[a + 1..b]
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn column_type(ty: &str, rest_upper: &str) -> Option<ColumnType> {
    let base = ty.split('(').next().unwrap_or("").to_ascii_uppercase();
    let args = type_args(ty);
    Some(match base.as_str() {
        "TINYINT" if args.first() == Some(&1) => ColumnType::Flag,
        "BOOLEAN" | "BOOL" => ColumnType::Flag,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" | "BIGINT" | "SERIAL" => {
            if base == "BIGINT" && rest_upper.contains("UNSIGNED") || base == "SERIAL" {
                // may exceed i64: Debezium's precise mode sends it as a scale-0 decimal
                ColumnType::Decimal { scale: 0 }
            } else {
                ColumnType::Int
            }
        }
        "DECIMAL" | "NUMERIC" | "DEC" | "FIXED" => ColumnType::Decimal {
            scale: args.get(1).copied().unwrap_or(0),
        },
        "FLOAT" | "DOUBLE" | "REAL" => ColumnType::Float,
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
        | "JSON" => ColumnType::Text,
        "DATETIME" => ColumnType::DateTime {
            fsp: args.first().copied().unwrap_or(0),
        },
        "TIMESTAMP" => ColumnType::Timestamp,
        "DATE" => ColumnType::Date,
        "TIME" => ColumnType::Time,
        "YEAR" => ColumnType::Year,
        "BIT" if args.first().is_none_or(|n| *n == 1) => ColumnType::Flag,
        "BIT" | "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB"
        | "GEOMETRY" | "POINT" => ColumnType::Bytes,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lpm_schema_parses() {
        let c = Catalog::parse(LPM_SCHEMA).expect("schema.sql parses");
        let p = c.table("persons_lost").expect("persons_lost");
        assert_eq!(p.primary_key, "id");
        let col = |n: &str| &p.columns[p.column(n).expect(n)];
        assert_eq!(col("latitude").ty, ColumnType::Decimal { scale: 6 });
        assert_eq!(col("last_seen_at").ty, ColumnType::DateTime { fsp: 3 });
        assert_eq!(col("reported_at").ty, ColumnType::Timestamp);
        assert!(col("age").nullable && !col("gender").nullable && !col("id").nullable);
        let r = c.table("responsible_contacts").expect("contacts");
        assert_eq!(
            r.columns[r.column("active").expect("active")].ty,
            ColumnType::Flag
        );
        for t in ["case_cases", "case_actions", "case_responsible_history"] {
            assert!(c.table(t).is_some(), "{t}");
        }
    }

    #[test]
    fn unknown_types_fail_loudly() {
        let e = Catalog::parse("CREATE TABLE t (id BIGINT PRIMARY KEY, g WEIRDTYPE)")
            .expect_err("must fail");
        assert!(e.to_string().contains("WEIRDTYPE"), "{e}");
    }

    #[test]
    fn primary_key_clause_and_unsigned() {
        let c = Catalog::parse("CREATE TABLE `db`.`t` (k INT NOT NULL, u BIGINT UNSIGNED, d DATETIME(6), PRIMARY KEY (`k`))").expect("parses");
        let t = c.table("t").expect("t");
        assert_eq!(t.primary_key, "k");
        assert_eq!(t.columns[1].ty, ColumnType::Decimal { scale: 0 });
        assert_eq!(t.columns[2].ty, ColumnType::DateTime { fsp: 6 });
    }
}
