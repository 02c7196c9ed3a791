#!/usr/bin/env python3
"""Seeds for the `log_recovery` fuzz target: embedded-log segments built from real change
events (the `lpm-gen` dump lines: topic, key, Debezium value), one to three events a record,
in the target's chunk format (`mode: u8, length: u16 LE, bytes`; mode 0 frames the bytes as a
record payload, 1 is raw bytes, 2 a wrong CRC, 3 no trailer). Clean logs, and one seed per
kind of damage the recovery handles: torn header, torn payload, bad CRC or trailer or JSON
followed by good records, a `seq` that does not increase, garbage after the last record.

    python3 fuzz/seeds/log.py OUT_DIR LPM_GEN_DUMP   (run from the repository root)
"""
import json
import os
import struct
import sys
import zlib


def chunk(mode, data):
    return bytes([mode]) + struct.pack("<H", len(data)) + data


def record(seq, events, actor=None):
    rec = {"seq": seq, "events": events}
    if actor:
        rec["actor"] = actor
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False).encode()


def frame(payload):
    return (b"\xfa\x01" + struct.pack("<I", len(payload))
            + struct.pack("<I", zlib.crc32(payload)) + payload + b"\n")


def main():
    out, dump = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    events = []
    for line in open(dump).read().splitlines()[:12]:
        rec = json.loads(line)
        events.append({"topic": rec["topic"], "key": rec["key"], "value": rec["payload"],
                       "ts_ms": rec["ts"]})
    events.append(dict(events[0], value=None))  # a tombstone
    recs = [record(1, events[0:2], "responder"), record(2, events[2:3]),
            record(3, events[3:6]), record(4, events[12:13])]
    clean = b"".join(chunk(0, r) for r in recs)
    seeds = {
        "clean": clean,
        "one": chunk(0, recs[0]),
        "torn-header": clean + chunk(1, frame(recs[3])[:7]),
        "torn-payload": clean + chunk(1, frame(record(5, events[6:8]))[:60]),
        "bad-crc-then-good": chunk(0, recs[0]) + chunk(2, recs[1]) + chunk(0, recs[2]),
        "bad-trailer-then-good": chunk(0, recs[0]) + chunk(3, recs[1]) + chunk(0, recs[2]),
        "bad-json-then-good": chunk(0, recs[0]) + chunk(0, b'{"seq":2,"events":[{"topic":1}]}')
        + chunk(0, recs[2]),
        "seq-repeats": chunk(0, recs[1]) + chunk(0, recs[0]) + chunk(0, recs[2]),
        "garbage-tail": clean + chunk(1, b"\x00" * 24),
        "too-long": chunk(0, recs[0]) + chunk(1, b"\xfa\x01\xff\xff\xff\x7f" + b"\x00" * 8),
        "bad-magic": chunk(1, b"{\"seq\":1}\n") + clean,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
