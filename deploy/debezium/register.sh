#!/bin/sh
# Registers the Debezium connector with Kafka Connect, or updates it: PUT
# /connectors/<name>/config creates or replaces, so running this again is harmless. Retries
# until Connect answers, then waits until the connector and its task report RUNNING, and exits
# non-zero (so lpm does not start) if that does not happen in time.
#
# Settings (environment): CONNECT_URL (default http://connect:8083), CONNECTOR_CONFIG (the JSON
# config map, default beside this script; its file name minus .json is the connector name),
# REGISTER_TRIES (default 90, two seconds apart).
set -eu

connect_url=${CONNECT_URL:-http://connect:8083}
config=${CONNECTOR_CONFIG:-$(dirname "$0")/lost-persons-mysql.json}
tries=${REGISTER_TRIES:-90}
name=$(basename "$config" .json)

say() { printf 'register: %s\n' "$*" >&2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

[ -r "$config" ] || { say "cannot read $config"; exit 1; }

# 1. Connect's REST API answers and has the MySQL connector plugin loaded.
n=0
until curl -fsS "$connect_url/connector-plugins" 2>/dev/null | grep -q 'MySqlConnector'; do
  n=$((n + 1))
  [ "$n" -lt "$tries" ] || { say "Kafka Connect at $connect_url did not answer"; exit 1; }
  sleep 2
done

# 2. Create or update (idempotent).
n=0
while :; do
  code=$(curl -sS -o "$out" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/json' --data-binary "@$config" \
    "$connect_url/connectors/$name/config" || echo 000)
  case $code in
    200 | 201) say "connector $name configured (HTTP $code)"; break ;;
  esac
  n=$((n + 1))
  # 409: a rebalance is in progress; 5xx/000: Connect not ready yet. Anything else is final.
  case $code in
    409 | 5?? | 000) ;;
    *) say "PUT failed with HTTP $code: $(cat "$out")"; exit 1 ;;
  esac
  [ "$n" -lt "$tries" ] || { say "PUT kept failing (last HTTP $code)"; exit 1; }
  sleep 2
done

# 3. The connector and its task run (a wrong password or a missing grant shows up here).
n=0
while :; do
  status=$(curl -fsS "$connect_url/connectors/$name/status" 2>/dev/null || true)
  case $status in
    *'"state":"FAILED"'*) say "connector $name FAILED: $status"; exit 1 ;;
  esac
  running=$(printf '%s' "$status" | grep -o '"state":"RUNNING"' | wc -l)
  # One RUNNING for the connector and one for its task.
  if [ "$running" -ge 2 ]; then
    say "connector $name and its task are RUNNING"
    exit 0
  fi
  n=$((n + 1))
  [ "$n" -lt "$tries" ] || { say "connector $name not RUNNING: $status"; exit 1; }
  sleep 2
done
