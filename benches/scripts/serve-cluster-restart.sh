#!/usr/bin/env bash
# A serving cluster's catch-up and restart, by hand (docs/scale-out.md, "Measured"): two
# `lpm serve --kafka --peers` processes x 2 workers on a broker at 127.0.0.1:19092
# (`bash scripts/tansu.sh start`), PERSONS (100k) persons: a cold catch-up, kill -9 and a
# restart from the checkpoints with some records re-delivered while down, and one process
# reading the same topics for comparison. Needs `cargo build --release` (lpm, lpm-gen), curl, bc.
# Times are from start to the applied offsets (lpm_kafka_partition_applied_offset) covering
# every record on the broker.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
LPM=$BIN/lpm
B=127.0.0.1:19092
P=${P:-m$$}
W=/tmp/meas; rm -rf $W; mkdir -p $W
PERSONS=${PERSONS:-100000}
$BIN/lpm-gen --persons $PERSONS --out $W/gen.jsonl >/dev/null
sed "s/\"lpm\.lost_persons_db\./\"$P.lost_persons_db./" $W/gen.jsonl > $W/dump.jsonl
rm $W/gen.jsonl
TOTAL=$(wc -l < $W/dump.jsonl)
python3 - "$W/dump.jsonl" "$W/again.jsonl" <<'PY'
import json, sys, collections
# the newest 1200 records of every partition (tansu answers "latest" below a partition's end
# until new records arrive there: every partition must get some)
last = collections.defaultdict(lambda: collections.deque(maxlen=1200))
for line in open(sys.argv[1]):
    r = json.loads(line)
    last[(r["topic"], r["partition"])].append(line)
with open(sys.argv[2], "w") as out:
    for q in last.values():
        out.writelines(q)
PY
AGAIN=$(wc -l < $W/again.jsonl)
t0=$(date +%s.%N); $LPM kafka produce --brokers $B $W/dump.jsonl >/dev/null 2>&1; t1=$(date +%s.%N)
echo "records $TOTAL produced in $(echo "$t1 - $t0" | bc) s"
for i in 0 1 s; do mkdir -p $W/d$i; done
TOKEN=$($LPM token create m --data-dir $W/d0 | tail -1)
TOKENS=$($LPM token create m --data-dir $W/ds | tail -1)
PEERS=127.0.0.1:4101,127.0.0.1:4102
applied() { # sum of applied offsets on the given ports
  local s=0
  for port in "$@"; do
    v=$(curl -s -H "Authorization: Bearer $TOKEN" -H "X-Unused: 1" http://127.0.0.1:$port/metrics 2>/dev/null | awk '/^lpm_kafka_partition_applied_offset\{/ {s+=$2} END {print s+0}')
    s=$((s + ${v%.*}))
  done
  echo $s
}
start() { # process port group data extra...
  local i=$1 port=$2 group=$3 data=$4; shift 4
  LPM_LOG=warn $LPM serve --listen 127.0.0.1:$port -w 2 --data-dir $data --kafka $B --kafka-prefix $P \
    --kafka-group $group --kafka-dead-letter-topic $P.dl --kafka-heartbeat-topic none "$@" >/dev/null 2>>$W/log &
  echo $!
}
wait_applied() { # target ports...
  local target=$1; shift
  local s=$(date +%s.%N)
  while [ "$(applied "$@")" -lt "$target" ]; do sleep 0.2; done
  echo "$(date +%s.%N) - $s" | bc
}
rss() { awk '/VmHWM/ {print int($2/1024) " MiB"}' /proc/$1/status; }

echo "== cluster, cold (every partition from the beginning)"
ts=$(date +%s.%N)
p0=$(start 0 18080 ${P}g $W/d0 --peers $PEERS --process 0 --checkpoint-interval-s 10)
p1=$(start 1 18081 ${P}g $W/d1 --peers $PEERS --process 1 --checkpoint-interval-s 10)
sleep 0.5
wait_applied $TOTAL 18080 18081 >/dev/null
echo "cold catch-up: $(echo "$(date +%s.%N) - $ts" | bc) s; peak RSS p0 $(rss $p0), p1 $(rss $p1)"
# a checkpoint taken after the catch-up on both
sleep 12
for port in 18080 18081; do curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$port/metrics | grep -E "^lpm_checkpoint_(last_tick|bytes|duration_seconds) "; done
kill -9 $p1; while kill -0 $p0 2>/dev/null; do sleep 0.1; done  # fail-stop: process 0 exits 1
$LPM kafka produce --brokers $B $W/again.jsonl >/dev/null 2>&1
echo "== cluster, restart from checkpoints ($AGAIN records re-delivered while down)"
ts=$(date +%s.%N)
p0=$(start 0 18080 ${P}g $W/d0 --peers $PEERS --process 0 --checkpoint-interval-s 10)
p1=$(start 1 18081 ${P}g $W/d1 --peers $PEERS --process 1 --checkpoint-interval-s 10)
sleep 0.5
wait_applied $((TOTAL + AGAIN)) 18080 18081 >/dev/null
echo "restart catch-up: $(echo "$(date +%s.%N) - $ts" | bc) s; peak RSS p0 $(rss $p0), p1 $(rss $p1)"
for port in 18080 18081; do curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$port/metrics | grep -E "^lpm_recovery_restored_entries |^lpm_kafka_records_total "; done
kill $p0 $p1; wait $p0 $p1 2>/dev/null || true
echo "== one process, cold (2 workers)"
TOKEN=$TOKENS
ts=$(date +%s.%N)
ps_=$(start s 18082 ${P}s $W/ds)
sleep 0.5
wait_applied $((TOTAL + AGAIN)) 18082 >/dev/null
echo "one process catch-up: $(echo "$(date +%s.%N) - $ts" | bc) s; peak RSS $(rss $ps_)"
kill $ps_; wait $ps_ 2>/dev/null || true
