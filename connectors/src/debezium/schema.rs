//! What a JsonConverter schema block tells us: envelope or flattened, and each row field's
//! semantic type. Parsed once per distinct schema and cached by the text that precedes the
//! payload, so the ~4 KB schema repeated in every record is compared, not parsed, each time.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::value::FieldSchema;

/// The parsed schema of one value shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaInfo {
    /// A full Debezium envelope (`before`/`after`/`source`/`op`), as opposed to a flattened row.
    pub envelope: bool,
    /// Row fields by column name.
    pub fields: HashMap<String, FieldSchema>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(rename = "type", default)]
    ty: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    fields: Vec<Node>,
    #[serde(default)]
    parameters: Option<HashMap<String, serde_json::Value>>,
}

impl Node {
    fn field_schema(&self) -> FieldSchema {
        let scale = self
            .parameters
            .as_ref()
            .and_then(|p| p.get("scale"))
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| v.as_u64().map(|n| n as u32))
            });
        FieldSchema {
            ty: self.ty.clone(),
            name: self.name.clone(),
            scale,
        }
    }
}

/// Parses a schema block; `None` if it is not a struct schema (e.g. `"schema": null`).
pub fn parse(text: &str) -> Option<SchemaInfo> {
    let root: Node = serde_json::from_str(text).ok()?;
    if root.ty != "struct" {
        return None;
    }
    let row_struct = root
        .fields
        .iter()
        .find(|f| matches!(f.field.as_deref(), Some("after") | Some("before")));
    let envelope =
        row_struct.is_some() || root.fields.iter().any(|f| f.field.as_deref() == Some("op"));
    let cols = match row_struct {
        Some(s) => &s.fields,
        None => &root.fields,
    };
    let fields = cols
        .iter()
        .filter_map(|f| Some((f.field.clone()?, f.field_schema())))
        .collect();
    Some(SchemaInfo { envelope, fields })
}

/// Remembers the schemas seen, keyed by the exact text that precedes the payload.
#[derive(Default)]
pub struct SchemaCache {
    entries: Vec<(Box<[u8]>, Arc<SchemaInfo>)>,
}

impl SchemaCache {
    /// Max distinct shapes remembered (a few per table; old ones are evicted).
    const CAPACITY: usize = 64;

    /// The schema whose prefix `text` starts with, and the prefix length.
    pub fn lookup(&self, text: &[u8]) -> Option<(usize, Arc<SchemaInfo>)> {
        self.entries
            .iter()
            .find(|(p, _)| text.starts_with(p))
            .map(|(p, s)| (p.len(), s.clone()))
    }

    /// Remembers `prefix -> schema`.
    pub fn insert(&mut self, prefix: &[u8], schema: Arc<SchemaInfo>) {
        if self.entries.len() >= Self::CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push((prefix.into(), schema));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields_come_from_after() {
        let s = r#"{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"6","connect.decimal.precision":"9"},"field":"latitude"}],"field":"after"},{"type":"string","field":"op"}],"name":"x.Envelope"}"#;
        let info = parse(s).expect("schema");
        assert!(info.envelope);
        assert_eq!(info.fields["latitude"].scale, Some(6));
        assert_eq!(info.fields["id"].ty, "int64");
    }

    #[test]
    fn flattened_schema_is_the_row() {
        let s = r#"{"type":"struct","fields":[{"type":"int64","field":"id"},{"type":"string","field":"__deleted"}]}"#;
        let info = parse(s).expect("schema");
        assert!(!info.envelope);
        assert!(info.fields.contains_key("__deleted"));
    }
}
