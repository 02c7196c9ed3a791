#!/usr/bin/env python3
"""Seeds for the `binlog_rows` fuzz target from a real MariaDB binlog.

Runs the capture fixtures' DDL and DML (every column type, inserts, updates, deletes, ENUM/SET,
a composite key) in a scratch database of the test MariaDB (scripts/mariadb.sh, port 3307),
then cuts that database's TABLE_MAP and ROWS events out of the binlog file and writes them in
the target's input format: `type: u8, length: u16 LE, body` per event, CRC32 stripped (the
target frames events itself). One seed per rows event, preceded by its table map.

    python3 fuzz/seeds/binlog.py OUT_DIR    (run from the repository root)
"""
import os
import re
import struct
import subprocess
import sys

DATADIR = os.environ.get("LPM_TEST_MYSQL_DIR", "/tmp/lpm-test-mariadb")
PORT = os.environ.get("LPM_TEST_MYSQL_PORT", "3307")
TABLE_MAP = 19
ROWS = {23, 24, 25, 30, 31, 32}  # write/update/delete rows, v1 and v2


def sql(text):
    subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", f"-P{PORT}", "-uroot"],
        input=text.encode(), check=True)


def scalar(query):
    out = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", f"-P{PORT}", "-uroot",
         "-N", "-B", "-e", query], check=True, capture_output=True)
    return out.stdout.decode().split()


def workload(db):
    fixtures = "connectors/tests/fixtures/capture"
    full = open(f"{fixtures}/full_types.sql").read().replace("parity", db)
    update = open(f"{fixtures}/full_types_update.sql").read().replace("parity", db)
    schema = open("connectors/data/schema.sql").read()
    sql(full + "\n" + update + f"""
USE {db};
UPDATE full_types SET tiny_c = -128, big_c = -9223372036854775808, varchar_c = 'ñandú ✓',
  decimal_c = -0.0001, big_decimal_c = -9999999999999999999999999999999999999999999999999999999999999999.9,
  date_c = '0000-00-00', time_c = '-838:59:59', datetime6_c = '9999-12-31 23:59:59.999999',
  enum_c = 'white', set_c = '', bit_c = b'1', year_c = 1901, json_c = '[1, 2.5, null, "x"]' WHERE id = 1;
INSERT INTO full_types (id) VALUES (2);
DELETE FROM full_types WHERE id = 2;
CREATE TABLE pair (a INT NOT NULL, b VARCHAR(10) NOT NULL, c SET('x','y','z'), e ENUM('p','q'),
  t TIME(6), PRIMARY KEY (a, b)) DEFAULT CHARSET=latin1;
INSERT INTO pair VALUES (1, 'k', 'x,z', 'q', '12:34:56.789012'), (2, 'l', NULL, NULL, NULL);
UPDATE pair SET a = 3 WHERE a = 1;
DELETE FROM pair;
""")
    sql(f"USE {db};\n" + schema + """
INSERT INTO responsible_contacts (id, full_name, agency, phone, email, active, version)
  VALUES (1, 'Ana Torres', 'ECU 911', NULL, 'ana@example.org', 1, 1);
INSERT INTO persons_lost (id, full_name, age, gender, last_seen_at, reported_at, last_seen_place,
  latitude, longitude, description, reporter_name, reporter_phone, version)
  VALUES (1, 'Persona Uno', 12, 'female', '2024-11-03 01:30:00', '2024-11-03 06:30:00', 'Quito',
  -0.180653, -78.467834, 'chaqueta roja', 'Luis', '+593 99 000 0000', 1);
INSERT INTO case_cases (id, person_id, status, priority, responsible_id, opened_at, closed_at, version)
  VALUES (1, 1, 'open', 'critical', 1, '2024-11-03 06:40:00', NULL, 1);
UPDATE case_cases SET status = 'found_alive', closed_at = '2024-11-04 10:00:00', version = 2 WHERE id = 1;
DELETE FROM case_cases WHERE id = 1;
""")


def events(path):
    data = open(path, "rb").read()
    assert data[:4] == b"\xfebin", "not a binlog file"
    at = 4
    while at + 19 <= len(data):
        ty = data[at + 4]
        size = struct.unpack_from("<I", data, at + 9)[0]
        if size < 19 or at + size > len(data):
            break
        yield ty, data[at + 19:at + size - 4]  # body without the CRC32
        at += size


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    db = f"fuzzseed_{os.getpid()}"
    try:
        workload(db)
        binlog = scalar("SHOW MASTER STATUS")[0]
        maps = {}
        n = 0
        for ty, body in events(os.path.join(DATADIR, binlog)):
            if ty == TABLE_MAP:
                table_id = body[:6]
                name_len = body[8]
                if body[9:9 + name_len].decode(errors="replace") == db:
                    maps[table_id] = body
            elif ty in ROWS and body[:6] in maps:
                tme = maps[body[:6]]
                seed = (bytes([TABLE_MAP]) + struct.pack("<H", len(tme)) + tme
                        + bytes([ty]) + struct.pack("<H", len(body)) + body)
                with open(os.path.join(out, f"seed-{n:03}"), "wb") as f:
                    f.write(seed)
                n += 1
        print(f"{n} seeds in {out}")
    finally:
        sql(f"DROP DATABASE IF EXISTS {db};")


if __name__ == "__main__":
    main()
