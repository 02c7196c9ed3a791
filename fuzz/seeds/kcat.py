#!/usr/bin/env python3
"""Seeds for the `kcat_line` fuzz target: small `kcat -C -J` dumps (1-3 lines each).

- every shared Debezium fixture message (connectors/tests/fixtures/debezium: values, key/value
  pairs, tombstones, flattened rows, schema-change and transaction topics), wrapped in a kcat
  line the way kcat prints it (payload as an escaped string), and a few in the other accepted
  shapes (payload as an object, fields in another order);
- lpm's own tables from `lpm-gen` dumps (with and without schemas, each decimal mode), in
  pairs so that the second line of a pair hits the schema cache the first one filled.

    python3 fuzz/seeds/kcat.py OUT_DIR [LPM_GEN_DUMP ...]   (run from the repository root)
"""
import json
import os
import sys

FIXTURES = "connectors/tests/fixtures/debezium"
# fixture file -> the topic its messages come from (the last part names the catalog table)
TOPICS = {
    "flink/products-dbz1.1-schema-include.jsonl": "dbserver1.inventory.products",
    "risingwave/customers-dbz1.9-schema-include.jsonl": "dbserver1.inventory.customers",
    "risingwave/customers-dbz1.9-schema-exclude.jsonl": "dbserver1.inventory.customers",
    "risingwave/orders-dbz1.9-rw-embedded-cud.jsonl": "rw.orders.rw_orders",
    "risingwave/orders-dbz1.9-rw-embedded-snapshot-last.jsonl": "rw.orders.rw_orders",
    "risingwave/schema-change-dbz2.4-mysql.jsonl": "dbserver1",
    "risingwave/transaction-topic-postgres.jsonl": "dbserver1.transaction",
    "debezium-examples/customers-dbz3.0-engine-schema-exclude.jsonl": "engine.inventory.customers",
    "flink-cdc/full-types-dbz1.5-schema-include.jsonl": "mysql.column_type_test.full_types",
    "flink-cdc/full-types-schema-exclude-base64-decimal.jsonl": "mysql.column_type_test.full_types",
    "flink-cdc/full-types-schema-exclude-numeric-decimal.jsonl": "mysql.column_type_test.full_types",
    "debezium-tutorial/customers-keyvalue-schema-include.tsv": "dbserver1.inventory.customers",
    "hazelcast-jet/inventory-flattened-rewrite-keyvalue.tsv": "dbserver1.inventory.orders",
}


def kcat(topic, offset, key, value):
    """A line as `kcat -C -J` prints it: fields in kcat's order, payload last."""
    return json.dumps({"topic": topic, "partition": 0, "offset": offset, "tstype": "create",
                       "ts": 1700000000000 + offset, "broker": 1, "key": key,
                       "payload": value}, separators=(",", ":"), ensure_ascii=False)


def write(out, name, lines):
    with open(os.path.join(out, name), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n = 0
    for rel, topic in TOPICS.items():
        lines = []
        for i, raw in enumerate(open(os.path.join(FIXTURES, rel)).read().splitlines()):
            if not raw.strip():
                continue
            if rel.endswith(".tsv"):
                key, value = raw.split("\t", 1)
                value = None if value == "null" else value
            else:
                key, value = None, raw
            lines.append(kcat(topic, i, key, value))
        # each message alone, and consecutive pairs (the cache learned from the first)
        for i, line in enumerate(lines):
            write(out, f"fixture-{n:03}", [line]); n += 1
            if i + 1 < len(lines) and i % 3 == 0:
                write(out, f"fixture-{n:03}", [line, lines[i + 1]]); n += 1
        # other shapes the reader accepts: payload as an object, fields in another order
        first = json.loads(lines[0])
        if first["payload"] is not None and first["payload"].startswith("{"):
            as_object = dict(first, payload=json.loads(first["payload"]))
            write(out, f"shape-{n:03}", [json.dumps(as_object, separators=(",", ":"))]); n += 1
            reordered = {"payload": first["payload"], "key": first["key"], "topic": first["topic"]}
            write(out, f"shape-{n:03}", [json.dumps(reordered)]); n += 1
    for d, dump in enumerate(sys.argv[2:]):
        lines = [l for l in open(dump).read().splitlines() if l.strip()]
        seen = set()
        for i, line in enumerate(lines):
            rec = json.loads(line)
            payload = rec.get("payload") or ""
            op = payload[payload.find('"op":'):][:9] if '"op":' in payload else "tombstone"
            kind = (rec["topic"], op)
            if kind in seen or i + 1 >= len(lines):
                continue
            seen.add(kind)
            write(out, f"lpm-{d}-{n:03}", [line, lines[i + 1]]); n += 1
    print(f"{n} seeds in {out}")


if __name__ == "__main__":
    main()
