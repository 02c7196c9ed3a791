#!/usr/bin/env bash
# Contract tests: schemathesis against the OpenAPI document a real `lpm serve --demo` serves.
#
# Installs schemathesis (pinned, from PyPI) into a venv under ~/.cache once; starts the release
# binary on a free loopback port with a temporary data dir; signs in as the demo admin; mints a
# read-only API token through the tokens route; then runs schemathesis twice, every check on
# (`--checks all`) and every phase (examples, coverage, fuzzing, stateful):
#   1. as the read-only token (reads succeed without personal data, writes and admin routes 403),
#   2. as the admin session (everything, including the stateful sequences the document's links
#      describe: report -> case, responsible -> change/deactivate, token -> revoke).
# The token run goes first because the admin run revokes tokens it can see.
#
# What the admin run may do to itself, and why it cannot: `DELETE /api/v1/session` and
# `POST /api/v1/session` declare no credentials, so schemathesis sends them without the admin
# cookie (a sign-out without a session only expires the cookie; a sign-in creates a session of
# its own, never touching ours). Users are never deleted, so the admin stays. Fuzzed sign-ins
# with wrong passwords may lock the demo admin's name from this address (15 minutes): that does
# not end a session that already exists, and we sign in once, before the runs.
#
# Bounded: `--max-examples` per operation and a time budget per run (aim: under 4 minutes for
# both on 2 cores). The seed is fixed by default, so that the test command gives the same
# verdict on the same code; `LPM_CONTRACT_SEED=random` explores new inputs (do that when you
# change a route or the document, and several times before a release). A failure prints the
# seed and a `curl` to reproduce it.
#
# Usage: bash scripts/contract.sh    (after `cargo test --workspace --release --no-run`, which builds lpm)
# Env: LPM_CONTRACT_MAX_EXAMPLES (default 25), LPM_CONTRACT_MAX_TIME (seconds per run, 100),
#      LPM_CONTRACT_SEED (a number to reproduce a run, `random` for a new one; default fixed).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/lpm/schemathesis-$SCHEMATHESIS_VERSION"
BINARY="${CARGO_TARGET_DIR:-target}/release/lpm"
MAX_EXAMPLES="${LPM_CONTRACT_MAX_EXAMPLES:-25}"
MAX_TIME="${LPM_CONTRACT_MAX_TIME:-100}"
REPORTS="${CARGO_TARGET_DIR:-target}/contract"
DEFAULT_SEED=298477735409005496925845907006891559671

say() { printf '\n== %s\n' "$*"; }

# --- schemathesis, pinned, installed once ---------------------------------------------------
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

[ -x "$BINARY" ] || { echo "$BINARY not found: run cargo test --workspace --release --no-run" >&2; exit 1; }

# --- a demo server on a free loopback port --------------------------------------------------
DATA="$(mktemp -d)"
LOG="$DATA/serve.log"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT
LPM_LOG=warn "$BINARY" serve --demo --data-dir "$DATA" --listen 127.0.0.1:0 >"$LOG" 2>&1 &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 300); do
  BASE="$(sed -n 's#.*serving on \(http://[0-9.:]*\)/.*#\1#p' "$LOG" | head -n1)"
  [ -n "$BASE" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$BASE" ] || { echo "the server did not start" >&2; cat "$LOG" >&2; exit 1; }
for _ in $(seq 1 600); do
  curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null || { echo "the server did not become ready" >&2; exit 1; }
say "lpm serve --demo on $BASE"

# --- credentials: the demo admin's session, and a read-only token minted by it -------------
SESSION="$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"admin-demo-password"}' "$BASE/api/v1/session" \
  | sed -n 's/^[Ss]et-[Cc]ookie: lpm_session=\([^;]*\);.*/\1/p' | tr -d '\r')"
[ -n "$SESSION" ] || { echo "could not sign in as the demo admin" >&2; exit 1; }
TOKEN="$(curl -fsS -H "Cookie: lpm_session=$SESSION" -H 'Content-Type: application/json' \
  -d '{"label":"contract-reader"}' "$BASE/api/v1/tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
[ -n "$TOKEN" ] || { echo "could not mint a read-only token" >&2; exit 1; }

# --- the runs -------------------------------------------------------------------------------
mkdir -p "$REPORTS"
run() {
  local who="$1" config="$2"
  say "schemathesis as $who (max $MAX_EXAMPLES examples per operation, at most ${MAX_TIME}s)"
  local seed=()
  case "${LPM_CONTRACT_SEED:-$DEFAULT_SEED}" in
    random) ;;
    *) seed=(--seed "${LPM_CONTRACT_SEED:-$DEFAULT_SEED}") ;;
  esac
  local started=$SECONDS status=0
  "$VENV/bin/schemathesis" --config-file "$config" run \
    "$BASE/api/v1/openapi.json" --url "$BASE" \
    --checks all --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
    --workers 1 --request-timeout 20 --no-color \
    --report junit --report-dir "$REPORTS/$who" --generation-database none "${seed[@]}" \
    || status=$?
  echo "schemathesis as $who took $((SECONDS - started))s (exit $status)"
  return "$status"
}
CONFIG_DIR="$(mktemp -d)"
trap 'cleanup; rm -rf "$CONFIG_DIR"' EXIT
render() {
  sed -e "s|@SESSION@|$SESSION|g" -e "s|@TOKEN@|$TOKEN|g" scripts/contract/schemathesis.toml \
    | sed -n "/^# BEGIN $1/,/^# END $1/p; /^# BEGIN COMMON/,/^# END COMMON/p" >"$CONFIG_DIR/$1.toml"
}
render READER
render ADMIN
failed=0
run reader "$CONFIG_DIR/READER.toml" || failed=1
run admin "$CONFIG_DIR/ADMIN.toml" || failed=1
[ "$failed" -eq 0 ] || { echo "contract tests failed (reports in $REPORTS)" >&2; exit 1; }
say "contract tests passed"
