#!/usr/bin/env python3
"""Seeds for the `grafana_request` fuzz target: requests shaped as Grafana 10/11 sends them
(simpod JSON data source: /query, /variable, /metric-payload-options, /tag-values) and as the
Infinity plugin sends them (/api/v1/rows/{view} GET query strings and POST bodies), over every
view, zone form, bucket, filter format and ad-hoc operator the API documents.

Input format (see the target): a selector byte (route, caller, content type), then the path
tail/query, a NUL, and the body.

    python3 fuzz/seeds/grafana.py OUT_DIR
"""
import json
import os
import sys

# selector % 10 -> route, as in fuzz_targets/grafana_request.rs
QUERY, ROWS_GET, ROWS_POST, VARIABLE, OPTIONS, TAG_VALUES, HEALTH = 0, 3, 5, 6, 7, 8, 9
SERIES = ["reports", "cases_opened", "cases_closed"]
TABLES = ["age_group", "gender", "hour_of_day", "hourly", "cases_by_status", "open_by_priority",
          "responsible_load", "kpi", "sensitive_open_cases"]


def selector(route, reader=False, content_type=True):
    for sel in range(256):
        if (sel % 10 == route and (sel // 16) % 2 == int(reader)
                and (sel & 0x80 == 0) == content_type):
            return sel
    raise ValueError(route)


def query_body(targets, **extra):
    body = {
        "app": "dashboard", "requestId": "Q101", "timezone": "browser", "panelId": 2,
        "dashboardUID": "lpm-overview",
        "range": {"from": "2024-11-01T00:00:00.000Z", "to": "2024-11-05T00:00:00.000Z",
                  "raw": {"from": "now-7d", "to": "now"}},
        "interval": "1h", "intervalMs": 3600000, "maxDataPoints": 1200,
        "targets": targets, "scopedVars": {}, "startTime": 1730764800000,
    }
    body.update(extra)
    return body


def target(view, ref="A", **payload):
    return {"refId": ref, "datasource": {"type": "simpod-json-datasource", "uid": "lpm"},
            "target": view, "payload": payload}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = []

    def add(route, tail="", body=b"", reader=False, content_type=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        seeds.append(bytes([selector(route, reader, content_type)]) + tail.encode() + b"\0" + body)

    for view in SERIES:
        add(QUERY, body=query_body([target(view, bucket="hour", tz="America/New_York")]))
        add(QUERY, body=query_body([target(view, split_by="gender", gender=["female", "male"],
                                           age_band="{0-11,12-17}")], timezone="utc"))
        add(QUERY, reader=True, body=query_body(
            [target(view, bucket="day", tz="Asia/Kathmandu", split_by="age_band")],
            maxDataPoints=50, adhocFilters=[{"key": "status", "operator": "=~",
                                             "value": "^(open|in_progress)$"}]))
    for view in TABLES:
        add(QUERY, body=query_body([target(view, gender="female|male", priority="All")],
                                   filters=[{"key": "gender", "operator": "!=", "value": "Male"},
                                            {"key": "age_band", "operator": "=|",
                                             "values": ["0-11", "60"]}]))
    # older plugin shapes: payload as a JSON text, epoch-ms range, no content type
    add(QUERY, content_type=False, body=query_body(
        [dict(target("reports"), payload=json.dumps({"bucket": "1d", "split_by": "status"})),
         {"refId": "B", "target": "kpi", "hide": True}],
        range={"from": 1730419200000, "to": "1730764800000"}, intervalMs="86400000"))
    add(QUERY, body={"targets": None, "filters": None, "range": None})
    add(QUERY, body=b" ")
    for view in SERIES + TABLES:
        add(ROWS_GET, f"{view}?from=1730419200000&to=1730764800000&bucket=day&tz=America/New_York")
    add(ROWS_GET, "reports?from=2024-11-01T00:00:00Z&to=2024-11-05T00:00:00Z&split_by=priority"
                  "&status=open&status=closed&max_points=100")
    add(ROWS_GET, "cases_closed?from=2024-11-03%2004:00:00Z&bucket=hour&tz=server&gender={female,male}",
        reader=True)
    add(ROWS_GET, "hourly?age_band=60&maxDataPoints=24&timezone=UTC")
    add(ROWS_GET, "unknown_view?from=x")
    add(ROWS_POST, "reports", {"from": 1730419200000, "to": 1730505600000, "bucket": "hour",
                               "tz": "Asia/Kathmandu", "split_by": "age_band",
                               "age_band": ["0-11", "60+"], "max_points": 48})
    add(ROWS_POST, "sensitive_open_cases", {"gender": "female", "priority": ["high", "critical"]},
        reader=True)
    for name in ["gender", "age_band", "status", "priority", "tz", "bucket", "split_by", "view",
                 "responsible"]:
        add(VARIABLE, body={"payload": {"target": name}, "range": {"from": "now-6h"}})
    add(VARIABLE, body={"payload": "status"})
    add(VARIABLE, body={"target": "priority"})
    for name in ["bucket", "tz", "split_by", "gender", "age_band"]:
        add(OPTIONS, body={"metric": "reports", "name": name, "payload": {"bucket": "auto"}})
    for key in ["gender", "age_band", "status", "priority", "unknown"]:
        add(TAG_VALUES, body={"key": key})
    add(HEALTH)
    for i, seed in enumerate(seeds):
        with open(os.path.join(out, f"seed-{i:03}"), "wb") as f:
            f.write(seed)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
