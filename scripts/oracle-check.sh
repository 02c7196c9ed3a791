#!/usr/bin/env bash
# Cross-checks `lpm replay` against the shared brute-force oracle (shared/bench/oracle.py) on
# dumps made by the shared generator, over a matrix of seeds and encodings, with 1 and 2
# workers. Needs ../shared (present in CI); says so loudly and fails with LPM_REQUIRE_SHARED=1
# when it is missing. Our own generator + reference model run in `cargo test` regardless.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=${LPM_SHARED:-$(cd "$root/.." && pwd)/shared}
if [ ! -f "$shared/bench/oracle.py" ]; then
  echo "############################################################################" >&2
  echo "## SKIPPED: oracle cross-check: $shared/bench/oracle.py not found.        ##" >&2
  echo "## Set LPM_SHARED to the shared/ directory to run it.                     ##" >&2
  echo "############################################################################" >&2
  [ "${LPM_REQUIRE_SHARED:-0}" = 1 ] && exit 1
  exit 0
fi
persons=${LPM_CHECK_PERSONS:-10000}
persons_schema=${LPM_CHECK_PERSONS_SCHEMA:-2000}
# The binaries as the test build makes them (lpm for the root's tests, lpm-gen for the
# testkit's): `cargo build --release` or `-p lpm-testkit` alone would unify other features of the
# shared dependencies (the workspace's dev-dependencies are not in them) and build every crate
# above them a second time. In .ci/run (LPM_PREBUILT=1) the test build has just made them.
if [ "${LPM_PREBUILT:-0}" != 1 ]; then
  cargo test --workspace --release --no-run -q
fi
lpm="${CARGO_TARGET_DIR:-$root/target}/release/lpm"
lpm_gen="${CARGO_TARGET_DIR:-$root/target}/release/lpm-gen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# seed | persons | generator options                                         | tz
matrix=(
  "1|$persons|--no-schemas|America/Guayaquil"
  "2|$persons_schema||America/Guayaquil"
  "3|$persons_schema|--decimal double|America/Guayaquil"
  "4|$persons_schema|--decimal string --no-gtid --include-query --transaction-metadata|America/Guayaquil"
  "5|$persons|--no-schemas --decimal double|America/Guayaquil"
  "6|$persons|--no-schemas --decimal string --duplicate-rate 0.05|America/Guayaquil"
  "7|$persons|--no-schemas --snapshot-frac 0.3 --duplicate-rate 0.05|America/Guayaquil"
  "8|$persons|--no-schemas --order partition --duplicate-rate 0.05|America/Guayaquil"
  "9|$persons|--no-schemas --partitions 1 --snapshot-frac 0|America/Guayaquil"
  "10|$persons|--no-schemas --partitions 6 --duplicate-rate 0.05 --snapshot-frac 1|America/Guayaquil"
  "11|$persons|--no-schemas --start 2024-02-25 --days 28|America/New_York"
  "12|$persons|--no-schemas --start 2024-10-13 --days 28 --binlog-max-size 200000|Europe/Madrid"
  "13|$persons_schema|--start 2024-03-17 --days 28 --order partition --duplicate-rate 0.05|Europe/Madrid"
)
fail=0
# check_dump LABEL DIR TZ PYTHON [ARGS...]: replays DIR with 1 and 2 workers and checks each
# output with the oracle run by PYTHON; ARGS go to both (e.g. `--hotspots 7`). The two outputs
# must be byte-identical.
check_dump() {
  local label=$1 dir=$2 tz=$3 python=$4
  shift 4
  for w in 1 2; do
    "$lpm" replay "$dir" --tz "$tz" --workers "$w" --no-progress "$@" --out "$dir/lpm-w$w.json" 2>"$dir/lpm-w$w.log"
    if "$python" "$shared/bench/oracle.py" "$dir" --tz "$tz" "$@" --check "$dir/lpm-w$w.json" --strict 2>"$dir/check-w$w.log"; then
      echo "ok    $label workers $w: $(tail -1 "$dir/check-w$w.log")"
    else
      echo "FAIL  $label workers $w"; head -20 "$dir/check-w$w.log"; fail=1
    fi
  done
  cmp -s "$dir/lpm-w1.json" "$dir/lpm-w2.json" || { echo "FAIL  $label: 1 and 2 workers differ"; fail=1; }
  rm -f "$dir/changelog.jsonl"
}
for row in "${matrix[@]}"; do
  IFS='|' read -r seed n opts tz <<<"$row"
  dir="$work/s$seed"
  # shellcheck disable=SC2086
  python3 "$shared/bench/gen_changelog.py" --persons "$n" --seed "$seed" --tz "$tz" $opts --out "$dir" >/dev/null 2>&1
  python3 "$shared/bench/oracle.py" "$dir" --tz "$tz" --out "$dir/oracle.json"
  check_dump "seed $seed ($n persons, $opts, $tz)" "$dir" "$tz" python3
done
# the hotspots view (`replay --hotspots RES` against `oracle.py --hotspots RES`): per H3 cell,
# on small dumps with updates, deletes and re-deliveries, at three resolutions and all three
# decimal encodings, 1 and 2 workers. The oracle needs Python's `h3`, installed once into its
# own venv (Debian's python refuses a system-wide pip install; python3-venv: scripts/test.sh).
h3_version=4.5.0
h3_venv="${XDG_CACHE_HOME:-$HOME/.cache}/lpm/oracle-h3-$h3_version"
if ! "$h3_venv/bin/python" -c 'import h3' >/dev/null 2>&1; then
  rm -rf "$h3_venv"
  python3 -m venv "$h3_venv"
  "$h3_venv/bin/pip" install --quiet "h3==$h3_version"
fi
hotspot_persons=${LPM_CHECK_HOTSPOT_PERSONS:-3000}
# seed | resolution | generator options
hotspot_matrix=(
  "21|5|--no-schemas --update-rate 0.3 --delete-rate 0.05 --duplicate-rate 0.05"
  "22|7|--no-schemas --decimal double --delete-rate 0.05 --duplicate-rate 0.05"
  "23|9|--no-schemas --decimal string --update-rate 0.3 --delete-rate 0.05"
)
for row in "${hotspot_matrix[@]}"; do
  IFS='|' read -r seed res opts <<<"$row"
  dir="$work/h$seed"
  # shellcheck disable=SC2086
  python3 "$shared/bench/gen_changelog.py" --persons "$hotspot_persons" --seed "$seed" $opts --out "$dir" >/dev/null 2>&1
  check_dump "hotspots seed $seed resolution $res ($hotspot_persons persons, $opts)" "$dir" America/Guayaquil "$h3_venv/bin/python" --hotspots "$res"
  [ -f "$dir/lpm-w1.json" ] && echo "      hotspots seed $seed: $("$h3_venv/bin/python" -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("hotspots", {})))' "$dir/lpm-w1.json") cells at resolution $res"
done
# Dumps with `case_sightings` events, which the shared generator does not write: lpm's own
# generator (testkit) writes sightings with corrections, deletes and re-deliveries. The oracle
# ignores the table it does not know, so lpm must count exactly as if it were absent (the
# hotspots section included).
for seed in 31 32 33; do
  dir="$work/g$seed"
  mkdir -p "$dir"
  "$lpm_gen" --persons 3000 --seed "$seed" --duplicate-rate 0.05 --tz America/Guayaquil \
    --out "$dir/changelog.jsonl" 2>/dev/null
  n=$(grep -c 'case_sightings' "$dir/changelog.jsonl" || true)
  if [ "$n" -lt 100 ]; then
    echo "FAIL  lpm-gen seed $seed wrote $n case_sightings records (expected hundreds)"; fail=1; continue
  fi
  check_dump "lpm-gen seed $seed (3000 persons, $n case_sightings records, duplicates 0.05, hotspots 7)" \
    "$dir" America/Guayaquil "$h3_venv/bin/python" --hotspots 7
done
# `lpm replay` as a timely cluster (docs/cluster.md) on loopback: 2 processes x 1 worker and
# 3 x 2, on a dump with a snapshot, re-deliveries and deletes; process 0's views are checked by
# the oracle and must be byte-identical to one process's, the other processes print nothing.
free_ports() {
  python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(",".join("127.0.0.1:%d" % x.getsockname()[1] for x in s))' "$1"
}
cluster_dir="$work/c41"
python3 "$shared/bench/gen_changelog.py" --persons "$persons" --seed 41 --no-schemas \
  --snapshot-frac 0.3 --duplicate-rate 0.05 --delete-rate 0.05 --out "$cluster_dir" >/dev/null 2>&1
"$lpm" replay "$cluster_dir" --no-progress --out "$cluster_dir/single.json" 2>"$cluster_dir/single.log"
for shape in "2 1" "3 2"; do
  read -r n w <<<"$shape"
  peers=$(free_ports "$n")
  pids=()
  ok=1
  for ((i = 1; i < n; i++)); do
    timeout 300 "$lpm" replay "$cluster_dir" --no-progress --workers "$w" --peers "$peers" --process "$i" \
      >"$cluster_dir/p$i.out" 2>"$cluster_dir/p$i.log" &
    pids+=($!)
  done
  timeout 300 "$lpm" replay "$cluster_dir" --no-progress --workers "$w" --peers "$peers" --process 0 \
    --out "$cluster_dir/cluster.json" 2>"$cluster_dir/p0.log" || ok=0
  for pid in "${pids[@]}"; do wait "$pid" || ok=0; done
  for ((i = 1; i < n; i++)); do [ -s "$cluster_dir/p$i.out" ] && ok=0; done
  label="cluster $n processes x $w workers (seed 41, $persons persons, snapshot 0.3, duplicates, deletes)"
  if [ $ok = 1 ] && cmp -s "$cluster_dir/single.json" "$cluster_dir/cluster.json" &&
    python3 "$shared/bench/oracle.py" "$cluster_dir" --tz America/Guayaquil \
      --check "$cluster_dir/cluster.json" --strict 2>"$cluster_dir/check.log"; then
    echo "ok    $label: $(tail -1 "$cluster_dir/check.log")"
  else
    echo "FAIL  $label"; tail -3 "$cluster_dir"/p*.log "$cluster_dir/check.log" 2>/dev/null; fail=1
  fi
done
# the shared Debezium fixtures: decoded by `cargo test -p lpm-connectors --test fixtures` from
# the copies in connectors/tests/fixtures; check the copies still match the originals
if [ -d "$shared/fixtures/debezium" ]; then
  for f in $(cd "$shared/fixtures/debezium" && find . -type f \( -name '*.jsonl' -o -name '*.tsv' \)); do
    if ! cmp -s "$shared/fixtures/debezium/$f" "$root/connectors/tests/fixtures/debezium/$f"; then
      echo "FAIL  fixture copy differs from shared: $f"; fail=1
    fi
  done
  echo "ok    fixture copies match $shared/fixtures/debezium"
fi
[ $fail = 0 ] && echo "oracle cross-check: all OK" || { echo "oracle cross-check: FAILED"; exit 1; }
